/*
 * builtin-report.c -- `wlprof report [OPTIONS] REPORT.json`.
 *
 * Reads a saved profile report back and prints the whole terminal summary
 * `wlprof profile` printed (split, waits, threads, functions, verdict), and
 * re-exports it: --html (the self-contained page), --folded and
 * --speedscope (from the report's complete stack table, report/3). A
 * report without that table (older, or profiled with --no-stacks) cannot
 * give stacks: that is said in one line and the command fails, writing
 * nothing. `wlprof recommend` stays the verdict-only view.
 *
 * Every output's temporary is opened before any work, so a bad path fails
 * at once; an output on the input's path, or two outputs on one path, are
 * usage errors.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "builtin.h"
#include "cli-stacks.h"
#include "wlprof/classify.h"
#include "wlprof/profile.h"
#include "wlprof/report.h"

enum { OUT_HTML, OUT_FOLDED, OUT_SPEEDSCOPE, NOUT };
static const char *const out_opt[NOUT] = {"--html", "--folded", "--speedscope"};

/* The command line, parsed. */
struct report_args {
    const char *path;         /* REPORT.json */
    const char *out[NOUT];    /* output paths, by OUT_*, or NULL */
    int roots_none;           /* --folded-roots none */
    int quiet;                /* -q */
};

/* The report read back, and the outputs' temporaries. */
struct report_state {
    json_t *root;
    wl_profile prof;
    cli_stacks st;
    wl_verdict v;             /* empty when not classified */
    int classified;           /* the report covers some time */
    wl_atomic_file af[NOUT];
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: wlprof report [OPTIONS] REPORT.json\n"
            "\n"
            "Prints the summary of a saved profile (from 'wlprof profile --json') as\n"
            "'wlprof profile' printed it: the split, why it waits, the threads, the\n"
            "functions and the verdict; and re-exports it.\n"
            "\n"
            "Options:\n"
            "      --html FILE        write the self-contained HTML report\n"
            "      --folded FILE      write folded stacks (flamegraph.pl)\n"
            "      --folded-roots R   what folded lines start with: 'thread' (default,\n"
            "                         \"process PID;thread TID;...\") or 'none' (the outermost frame)\n"
            "      --speedscope FILE  write a speedscope profile (one per thread, in time order)\n"
            "  -q, --quiet            print no summary\n"
            "  -h, --help             show this help\n"
            "\n"
            "Stacks are re-exported from reports written by wlprof with schema\n" WL_REPORT_SCHEMA
            " and the stack agent.\n"
            "Exit status: 0, 1 when the report cannot be read or an output written, 2 on bad usage.\n");
}

/* ---- parse ---- */

static int parse_roots(const char *v, int *roots_none)
{
    if (strcmp(v, "none") != 0 && strcmp(v, "thread") != 0) {
        wl__cli_error("report", "--folded-roots must be 'thread' or 'none', not '%s'", v);
        return CLI_PARSE_ERROR;
    }
    *roots_none = strcmp(v, "none") == 0;
    return CLI_PARSE_OK;
}

enum { OPT_HTML = 256, OPT_FOLDED, OPT_ROOTS, OPT_SPEEDSCOPE };

/* One option c with value v into *ctx (a struct report_args). Returns a
 * CLI_PARSE_* code. */
static int parse_option(char **argv, int c, const char *v, void *ctx)
{
    struct report_args *a = ctx;
    switch (c) {
    case OPT_HTML:
        a->out[OUT_HTML] = v;
        break;
    case OPT_FOLDED:
        a->out[OUT_FOLDED] = v;
        break;
    case OPT_SPEEDSCOPE:
        a->out[OUT_SPEEDSCOPE] = v;
        break;
    case OPT_ROOTS:
        return parse_roots(v, &a->roots_none);
    case 'q':
        a->quiet = 1;
        break;
    default:
        return wl__cli_option_rest("report", argv, c, usage);
    }
    return CLI_PARSE_OK;
}

/* The options and the one REPORT.json; no output may be the report or
 * share a path with another ("-" included). Returns a CLI_PARSE_* code. */
static int parse_args(int argc, char **argv, struct report_args *a)
{
    static const struct option longopts[] = {
        {"html", required_argument, NULL, OPT_HTML},
        {"folded", required_argument, NULL, OPT_FOLDED},
        {"folded-roots", required_argument, NULL, OPT_ROOTS},
        {"speedscope", required_argument, NULL, OPT_SPEEDSCOPE},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int rc = wl__cli_parse_options(argc, argv, ":qh", longopts, parse_option, a);
    if (rc == CLI_PARSE_OK)
        rc = wl__cli_one_report("report", argc, argv, &a->path);
    if (rc != CLI_PARSE_OK)
        return rc;
    wl_outputs paths = {0};
    wl_outputs_add_input(&paths, "REPORT", a->path);
    for (int i = 0; i < NOUT; i++)
        wl_outputs_add(&paths, out_opt[i], a->out[i]);
    return wl__cli_check_outputs("report", &paths) < 0 ? CLI_PARSE_ERROR : CLI_PARSE_OK;
}

/* ---- load, open, classify ---- */

/* Reads the report, and its stack table when it has one (needed for
 * --folded and --speedscope), then opens every output. Returns 0 or -1
 * after one line. */
static int load_and_open(const struct report_args *a, struct report_state *s)
{
    char err[512];
    if (wl__cli_load_report("report", a->path, &s->root, &s->prof) < 0)
        return -1;
    if (wl__cli_stacks_from_report(&s->st, s->root, a->path,
                               a->out[OUT_FOLDED] || a->out[OUT_SPEEDSCOPE]) < 0)
        return -1;
    for (int i = 0; i < NOUT; i++)
        if (a->out[i] && wl_atomic_open(&s->af[i], a->out[i], err, sizeof(err)) < 0) {
            wl__cli_error("report", "%s", err);
            return -1;
        }
    return 0;
}

/* The verdict afresh, naming the report's functions. 0, or -1 after one
 * line (out of memory). */
static int classify(struct report_state *s)
{
    s->classified = wl_classify(&s->prof, NULL, &s->v) == 0;
    if (s->classified && wl_verdict_add_functions(&s->v, s->root) < 0) {
        wl__cli_error("report", "out of memory");
        return -1;
    }
    return 0;
}

/* ---- print and write ---- */

/* The summary as `wlprof profile` printed it, on stdout. */
static void print_summary(const struct report_state *s)
{
    wl_report_print_text(stdout, &s->prof, wl__cli_use_color(stdout));
    wl__cli_stacks_print_table(&s->st, stdout);
    if (s->classified) {
        fputc('\n', stdout);
        wl_verdict_print(stdout, &s->v);
    } else {
        printf("\n  no verdict: the report covers no time\n");
    }
    fflush(stdout);
}

/* --html: the page shows the verdict the report was saved with; a report
 * saved without one gets the verdict computed here. 0 or -1. */
static int write_html(struct report_state *s)
{
    char err[512];
    if (s->classified && !json_object_get(s->root, "classification"))
        wl_verdict_to_report(&s->v, s->root);
    if (wl_atomic_commit_html(&s->af[OUT_HTML], s->root, err, sizeof(err)) < 0) {
        wl__cli_error("report", "%s", err);
        return -1;
    }
    return 0;
}

static void state_free(struct report_state *s)
{
    for (int i = 0; i < NOUT; i++)
        wl_atomic_abort(&s->af[i]);
    wl__cli_stacks_free(&s->st);
    wl_verdict_free(&s->v);
    wl_profile_free(&s->prof);
    json_decref(s->root);
}

int cmd_report(int argc, char **argv)
{
    struct report_args a = {0};
    struct report_state s = {0};
    int rc = parse_args(argc, argv, &a);
    if (rc != CLI_PARSE_OK)
        return cli_parse_exit(rc);

    wl__cli_stacks_init(&s.st);
    int status = WL_EXIT_FAILURE;
    if (load_and_open(&a, &s) == 0 && classify(&s) == 0) {
        if (!a.quiet)
            print_summary(&s);
        status = WL_EXIT_OK;
        if (a.out[OUT_HTML] && write_html(&s) < 0)
            status = WL_EXIT_FAILURE;
        const char *name = s.prof.argv && s.prof.argv[0] ? s.prof.argv[0] : a.path;
        int folded = a.roots_none ? CLI_STACKS_FOLDED_PLAIN : CLI_STACKS_FOLDED;
        if (wl__cli_stacks_export(&s.st, "report", &s.af[OUT_FOLDED], folded, name) < 0)
            status = WL_EXIT_FAILURE;
        if (wl__cli_stacks_export(&s.st, "report", &s.af[OUT_SPEEDSCOPE], CLI_STACKS_SPEEDSCOPE,
                              name) < 0)
            status = WL_EXIT_FAILURE;
    }
    state_free(&s);
    return status;
}
