/*
 * builtin-recommend.c -- `wlprof recommend [OPTIONS] REPORT.json`.
 *
 * Re-classifies a saved report: reads it (wl_report_load checks it is JSON
 * and a wlprof report of our schema version), rebuilds the profile from it,
 * runs the classifier with the thresholds given here (naming functions
 * when the report has the stack agent's sections), and prints the
 * verdict on stdout. With --json it also writes the report back out, with
 * its "classification" and "recommendation" replaced by the new verdict.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "builtin.h"
#include "wlprof/classify.h"
#include "wlprof/profile.h"
#include "wlprof/report.h"

#define WORKERS_MAX 100000.0

enum { OPT_IO = 256, OPT_CPU, OPT_CORES, OPT_CONC };

static void usage(FILE *f)
{
    fprintf(f,
            "usage: wlprof recommend [OPTIONS] REPORT.json\n"
            "\n"
            "Classifies a saved report (from 'wlprof profile --json') as I/O-bound,\n"
            "CPU-bound or mixed, and recommends an executor: coroutine, thread_pool,\n"
            "process_pool or split, with the reasons and predicted speed-ups.\n"
            "\n"
            "Options:\n"
            "      --io-threshold X   share of wall time waiting or in the kernel from\n"
            "                         which a program is I/O-bound (0 < X <= 1, default 0.65)\n"
            "      --cpu-threshold Y  share of wall time in user CPU from which it is\n"
            "                         CPU-bound (0 < Y <= 1, default 0.65)\n"
            "      --cores N          cores to size process pools for (default: this machine)\n"
            "      --concurrency N    tasks in flight on a coroutine loop (default 64)\n"
            "  -o, --json FILE        write the report with the new verdict to FILE ('-':\n"
            "                         stdout, the verdict then goes to stderr); not REPORT\n"
            "  -q, --quiet            print nothing (with --json)\n"
            "  -h, --help             show this help\n"
            "\n"
            "Thresholds and the model behind the figures: docs/classifier.md.\n"
            "Exit status: 0, 1 when the report cannot be read or written, 2 on bad usage.\n");
}

/* Parses a share in (0, 1] for option `name`. */
static int parse_share(const char *name, const char *s, double *out)
{
    if (wl__cli_parse_positive(s, 1.0, out) < 0) {
        wl__cli_error("recommend", "%s must be a number above 0 and at most 1, not '%s'", name, s);
        return -EINVAL;
    }
    return 0;
}

static int parse_count(const char *name, const char *s, int *out)
{
    return wl__cli_parse_count("recommend", name, s, 1, (long)WORKERS_MAX, out);
}

/* The command line, parsed. */
struct recommend_args {
    wl_classify_opts opts;  /* thresholds, cores, concurrency */
    const char *path;       /* REPORT.json */
    const char *json;       /* -o FILE, or NULL */
    int quiet;              /* -q */
};

/* One option c with value v into *a. Returns a CLI_PARSE_* code. */
static int parse_option(char **argv, int c, const char *v, void *ctx)
{
    struct recommend_args *a = ctx;
    int rc = 0;
    switch (c) {
    case OPT_IO:
        rc = parse_share("--io-threshold", v, &a->opts.io_threshold);
        break;
    case OPT_CPU:
        rc = parse_share("--cpu-threshold", v, &a->opts.cpu_threshold);
        break;
    case OPT_CORES:
        rc = parse_count("--cores", v, &a->opts.cores);
        break;
    case OPT_CONC:
        rc = parse_count("--concurrency", v, &a->opts.concurrency);
        break;
    case 'o':
        a->json = v;
        break;
    case 'q':
        a->quiet = 1;
        break;
    default:
        return wl__cli_option_rest("recommend", argv, c, usage);
    }
    return rc < 0 ? CLI_PARSE_ERROR : CLI_PARSE_OK;
}

/* The options and the one REPORT.json, which -o may not overwrite.
 * Returns a CLI_PARSE_* code. */
static int parse_args(int argc, char **argv, struct recommend_args *a)
{
    static const struct option longopts[] = {
        {"io-threshold", required_argument, NULL, OPT_IO},
        {"cpu-threshold", required_argument, NULL, OPT_CPU},
        {"cores", required_argument, NULL, OPT_CORES},
        {"concurrency", required_argument, NULL, OPT_CONC},
        {"json", required_argument, NULL, 'o'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int rc = wl__cli_parse_options(argc, argv, ":o:qh", longopts, parse_option, a);
    if (rc != CLI_PARSE_OK)
        return rc;
    if (wl__cli_one_report("recommend", argc, argv, &a->path) != CLI_PARSE_OK)
        return CLI_PARSE_ERROR;
    wl_outputs paths = {0};
    wl_outputs_add_input(&paths, "REPORT", a->path);
    wl_outputs_add(&paths, "--json", a->json);
    return wl__cli_check_outputs("recommend", &paths) < 0 ? CLI_PARSE_ERROR : CLI_PARSE_OK;
}

/* Classifies the report's profile with the options' thresholds and names
 * its functions. 0, or -1 after one line (*v then empty). */
static int classify(const struct recommend_args *a, const wl_profile *prof, const json_t *root,
                    wl_verdict *v)
{
    int rc = wl_classify(prof, &a->opts, v);
    if (rc < 0) {
        wl__cli_error("recommend", "%s: cannot classify: %s", a->path,
                  rc == -ENODATA ? "the report covers no time" : strerror(-rc));
        return -1;
    }
    if (wl_verdict_add_functions(v, root) < 0) {
        wl__cli_error("recommend", "out of memory");
        return -1;
    }
    return 0;
}

/* -o: the report with its "classification" and "recommendation" replaced
 * by v. 0 or -1 after one line. */
static int write_report(const char *json_path, json_t *root, const wl_verdict *v)
{
    char err[512];
    if (wl_verdict_to_report(v, root) < 0) {
        wl__cli_error("recommend", "out of memory");
        return -1;
    }
    if (wl_json_write_atomic(json_path, root, err, sizeof(err)) < 0) {
        wl__cli_error("recommend", "%s", err);
        return -1;
    }
    return 0;
}

int cmd_recommend(int argc, char **argv)
{
    struct recommend_args a = {0};
    json_t *root = NULL;
    wl_profile prof = {0};
    wl_verdict v = {0};
    int rc = parse_args(argc, argv, &a);
    if (rc != CLI_PARSE_OK)
        return cli_parse_exit(rc);
    if (wl__cli_load_report("recommend", a.path, &root, &prof) < 0)
        return WL_EXIT_FAILURE;

    int status = WL_EXIT_FAILURE;
    if (classify(&a, &prof, root, &v) == 0) {
        if (!a.quiet) /* stdout may be the JSON's (-o -) */
            wl_verdict_print(a.json && strcmp(a.json, "-") == 0 ? stderr : stdout, &v);
        if (!a.json || write_report(a.json, root, &v) == 0)
            status = WL_EXIT_OK;
    }
    wl_verdict_free(&v);
    wl_profile_free(&prof);
    json_decref(root);
    return status;
}
