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
    if (cli_parse_positive(s, 1.0, out) < 0) {
        cli_error("recommend", "%s must be a number above 0 and at most 1, not '%s'", name, s);
        return -EINVAL;
    }
    return 0;
}

static int parse_count(const char *name, const char *s, int *out)
{
    return cli_parse_count("recommend", name, s, 1, (long)WORKERS_MAX, out);
}

int cmd_recommend(int argc, char **argv)
{
    enum { OPT_IO = 256, OPT_CPU, OPT_CORES, OPT_CONC };
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
    wl_classify_opts opts = {0};
    const char *json_path = NULL;
    int quiet = 0;
    char err[512];

    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":o:qh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_IO:
            if (parse_share("--io-threshold", optarg, &opts.io_threshold) < 0)
                return WL_EXIT_USAGE;
            break;
        case OPT_CPU:
            if (parse_share("--cpu-threshold", optarg, &opts.cpu_threshold) < 0)
                return WL_EXIT_USAGE;
            break;
        case OPT_CORES:
            if (parse_count("--cores", optarg, &opts.cores) < 0)
                return WL_EXIT_USAGE;
            break;
        case OPT_CONC:
            if (parse_count("--concurrency", optarg, &opts.concurrency) < 0)
                return WL_EXIT_USAGE;
            break;
        case 'o':
            json_path = optarg;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'h':
            usage(stdout);
            return WL_EXIT_OK;
        default:
            cli_bad_option("recommend", argv, c);
            return WL_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        cli_error("recommend", "no report given (usage: wlprof recommend [OPTIONS] REPORT.json)");
        return WL_EXIT_USAGE;
    }
    if (optind + 1 < argc) {
        cli_error("recommend", "one report at a time ('%s' is extra)", argv[optind + 1]);
        return WL_EXIT_USAGE;
    }
    const char *path = argv[optind];

    wl_outputs paths = {0};
    wl_outputs_add_input(&paths, "REPORT", path);
    wl_outputs_add(&paths, "--json", json_path);
    if (wl_outputs_check(&paths, err, sizeof(err)) < 0) {
        cli_error("recommend", "%s", err);
        return WL_EXIT_USAGE;
    }

    json_t *root = NULL;
    wl_profile prof = {0};
    wl_verdict v = {0};
    int status = WL_EXIT_FAILURE;
    int rc;

    if (wl_report_load(path, &root, err, sizeof(err)) < 0) {
        cli_error("recommend", "%s", err);
        return WL_EXIT_FAILURE;
    }
    if (wl_report_from_json(root, &prof, err, sizeof(err)) < 0) {
        cli_error("recommend", "%s: %s", path, err);
        goto free_root;
    }
    rc = wl_classify(&prof, &opts, &v);
    if (rc < 0) {
        cli_error("recommend", "%s: cannot classify: %s", path,
                  rc == -ENODATA ? "the report covers no time" : strerror(-rc));
        goto free_profile;
    }
    if (wl_verdict_add_functions(&v, root) < 0) {
        cli_error("recommend", "out of memory");
        goto free_verdict;
    }
    if (!quiet) /* stdout may be the JSON's (-o -) */
        wl_verdict_print(json_path && strcmp(json_path, "-") == 0 ? stderr : stdout, &v);
    if (json_path) {
        if (wl_verdict_to_report(&v, root) < 0) {
            cli_error("recommend", "out of memory");
            goto free_verdict;
        }
        if (wl_json_write_atomic(json_path, root, err, sizeof(err)) < 0) {
            cli_error("recommend", "%s", err);
            goto free_verdict;
        }
    }
    status = WL_EXIT_OK;

free_verdict:
    wl_verdict_free(&v);
free_profile:
    wl_profile_free(&prof);
free_root:
    json_decref(root);
    return status;
}
