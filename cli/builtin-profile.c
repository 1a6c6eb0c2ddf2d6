/*
 * builtin-profile.c -- `wlprof profile [OPTIONS] [--] CMD [ARGS...]`.
 *
 * Runs CMD under the profiler, classifies the profile (wlprof/classify.h),
 * prints the summary and the verdict on stderr (stdout stays the target's),
 * writes the JSON report -- with "classification" and "recommendation" --
 * atomically when asked, and exits
 * with the target's own status (128+signal when it was killed), like time(1)
 * and perf stat.
 *
 * The steps, one function each: parse the options (--pid hands over to
 * builtin-profile-pid.c), check and open every output before anything runs,
 * run the command with the stack agent armed (cli-stacks.h: stubs when
 * built without it), print, and write the report.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "cli-stacks.h"
#include "wlprof/classify.h"
#include "wlprof/profile.h"
#include "wlprof/report.h"

#define HZ_MAX 10000.0

enum { OPT_NO_STACKS = 1000, OPT_FOLDED, OPT_SPEEDSCOPE, OPT_HTML, OPT_PID, OPT_DURATION, OPT_CHILDREN,
       OPT_SORT, OPT_GRACE };

/* The command line, parsed. */
struct profile_args {
    wl_profile_opts opts;       /* hz, seed, grace */
    struct profile_paths out;   /* -o, --html, --folded, --speedscope FILE */
    int quiet;                  /* -q */
    int no_stacks;              /* --no-stacks */
    int sort_total;             /* --sort total */
    const char *pids;           /* --pid PIDS */
    double duration;            /* --duration S */
    int children;               /* --children */
    char **cmd;                 /* COMMAND [ARGS...], NULL-terminated */
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: wlprof profile [OPTIONS] [--] COMMAND [ARGS...]\n"
            "       wlprof profile [OPTIONS] --pid PID[,PID...] [--duration S] [--children]\n"
            "\n"
            "Runs COMMAND and samples every thread of its process tree from /proc:\n"
            "user CPU, system CPU, and off-CPU waiting with the reason for each wait\n"
            "(sleep, network, disk, pipe, lock, gil, poll, child, terminal, other).\n"
            "\n"
            "Options:\n"
            "  -F, --hz N        mean sampling rate per second (default 100, max 10000);\n"
            "                    intervals are randomised around it\n"
            "  -o, --json FILE   write the JSON report (schema " WL_REPORT_SCHEMA ") to FILE\n"
            "  -q, --quiet       print no summary\n"
            "      --no-stacks   do not preload the stack sampler (libwlprof-agent.so)\n"
            "      --folded FILE     write folded stacks (flamegraph.pl, speedscope)\n"
            "      --speedscope FILE write a speedscope JSON profile\n"
            "      --html FILE   write a self-contained HTML report (timeline, flame graph)\n"
            "      --sort self|total  order of the functions table: self time (default)\n"
            "                    or total time including callees\n"
            "      --seed N      seed for interval jitter (repeatable runs)\n"
            "      --grace S     after SIGINT/SIGTERM/SIGHUP, seconds before what is\n"
            "                    left of the command's process tree is SIGKILLed (default 5)\n"
            "  -p, --pid PIDS    attach to running processes instead of running COMMAND;\n"
            "                    stacks by stopping one running thread at a time (ptrace)\n"
            "  -d, --duration S  with --pid: stop after S seconds (else at Ctrl-C or exit)\n"
            "      --children    with --pid: also follow their descendants\n"
            "  -h, --help        show this help\n"
            "\n"
            "FILE may be '-' (stdout), a device, a FIFO or a symlink (the file it\n"
            "points to is replaced, the link stays); outputs must be distinct files.\n"
            "\n"
            "Exit status: the command's own, 128+N when it was killed by signal N or\n"
            "wlprof received signal N, 126 when it cannot be executed, 127 when it is\n"
            "not found, 2 on bad usage, 1 when the report or the stacks cannot be written.\n"
            "With --pid: 0 when the report was made (Ctrl-C or the processes exiting end\n"
            "it normally), 128+N after SIGTERM/SIGHUP, 1 for a pid that cannot be\n"
            "profiled; the processes are never signalled and keep running.\n");
}


/* ---- parse ---- */

static int parse_hz(const char *v, double *hz)
{
    if (wl__cli_parse_positive(v, HZ_MAX, hz) == 0)
        return 0;
    wl__cli_error("profile", "--hz must be a number above 0 and at most %.0f, not '%s'", HZ_MAX, v);
    return -1;
}

static int parse_seed(const char *v, unsigned *seed)
{
    double d;
    if (wl__cli_parse_positive(v, 4294967295.0, &d) < 0) {
        wl__cli_error("profile", "--seed must be a positive integer, not '%s'", v);
        return -1;
    }
    *seed = (unsigned)d;
    return 0;
}

static int parse_duration(const char *v, double *duration)
{
    if (wl__cli_parse_positive(v, 1e7, duration) == 0)
        return 0;
    wl__cli_error("profile", "--duration must be a number of seconds above 0, not '%s'", v);
    return -1;
}

static int parse_sort(const char *v, int *sort_total)
{
    if (strcmp(v, "self") != 0 && strcmp(v, "total") != 0) {
        wl__cli_error("profile", "--sort must be 'self' or 'total', not '%s'", v);
        return -1;
    }
    *sort_total = strcmp(v, "total") == 0;
    return 0;
}

static int parse_grace(const char *v, double *grace_s)
{
    char *end;
    double g = strtod(v, &end);
    if (end == v || *end || !(g >= 0 && g <= 86400)) {
        wl__cli_error("profile", "--grace must be seconds from 0 to 86400, not '%s'", v);
        return -1;
    }
    *grace_s = g > 0 ? g : -1; /* -1: no grace at all */
    return 0;
}

/* One option c with value v (optarg) into *a. Returns a CLI_PARSE_* code. */
static int parse_option(char **argv, int c, const char *v, void *ctx)
{
    struct profile_args *a = ctx;
    int rc = 0;
    switch (c) {
    case 'F':
        rc = parse_hz(v, &a->opts.hz);
        break;
    case 'o':
        a->out.json = v;
        break;
    case 'q':
        a->quiet = 1;
        break;
    case 's':
        rc = parse_seed(v, &a->opts.seed);
        break;
    case OPT_NO_STACKS:
        a->no_stacks = 1;
        break;
    case OPT_FOLDED:
        a->out.folded = v;
        break;
    case OPT_SPEEDSCOPE:
        a->out.speedscope = v;
        break;
    case OPT_HTML:
        a->out.html = v;
        break;
    case 'p':
        a->pids = v;
        break;
    case 'd':
        rc = parse_duration(v, &a->duration);
        break;
    case OPT_CHILDREN:
        a->children = 1;
        break;
    case OPT_SORT:
        rc = parse_sort(v, &a->sort_total);
        break;
    case OPT_GRACE:
        rc = parse_grace(v, &a->opts.grace_s);
        break;
    default:
        return wl__cli_option_rest("profile", argv, c, usage);
    }
    return rc < 0 ? CLI_PARSE_ERROR : CLI_PARSE_OK;
}

/* The options, then COMMAND [ARGS...] (a->cmd, NULL when none). Returns a
 * CLI_PARSE_* code. */
static int parse_args(int argc, char **argv, struct profile_args *a)
{
    static const struct option longopts[] = {
        {"hz", required_argument, NULL, 'F'},  {"json", required_argument, NULL, 'o'},
        {"quiet", no_argument, NULL, 'q'},     {"seed", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {"no-stacks", no_argument, NULL, OPT_NO_STACKS},
        {"folded", required_argument, NULL, OPT_FOLDED},
        {"speedscope", required_argument, NULL, OPT_SPEEDSCOPE},
        {"html", required_argument, NULL, OPT_HTML},
        {"pid", required_argument, NULL, 'p'},
        {"duration", required_argument, NULL, 'd'},
        {"children", no_argument, NULL, OPT_CHILDREN},
        {"sort", required_argument, NULL, OPT_SORT},
        {"grace", required_argument, NULL, OPT_GRACE},
        {NULL, 0, NULL, 0},
    };
    /* '+': stop at the first non-option, so the command's own flags pass through. */
    int rc = wl__cli_parse_options(argc, argv, "+:F:o:qhp:d:", longopts, parse_option, a);
    if (rc != CLI_PARSE_OK)
        return rc;
    a->cmd = optind < argc ? argv + optind : NULL;
    return CLI_PARSE_OK;
}

/* --pid, --duration, --children: attach instead (builtin-profile-pid.c). */
static int profile_pids(const struct profile_args *a)
{
    if (!a->pids) {
        wl__cli_error("profile", "--duration and --children need --pid");
        return WL_EXIT_USAGE;
    }
    if (a->cmd) {
        wl__cli_error("profile", "give either --pid or a command, not both");
        return WL_EXIT_USAGE;
    }
    struct profile_pid_args pa = {
        .pids = a->pids, .duration = a->duration, .children = a->children, .opts = a->opts,
        .out = a->out, .quiet = a->quiet, .no_stacks = a->no_stacks,
    };
    return cmd_profile_pid(&pa);
}

/* ---- open outputs ---- */

void wl__cli_profile_abort(struct profile_outputs *o)
{
    wl_atomic_abort(&o->json);
    wl_atomic_abort(&o->html);
    wl_atomic_abort(&o->folded);
    wl_atomic_abort(&o->speedscope);
}

int wl__cli_profile_check(const struct profile_paths *p)
{
    wl_outputs outs = {0};
    wl_outputs_add(&outs, "--json", p->json);
    wl_outputs_add(&outs, "--folded", p->folded);
    wl_outputs_add(&outs, "--speedscope", p->speedscope);
    wl_outputs_add(&outs, "--html", p->html);
    return wl__cli_check_outputs("profile", &outs);
}

int wl__cli_profile_open(struct profile_outputs *o, const struct profile_paths *p)
{
    char err[512];
    memset(o, 0, sizeof(*o));
    if ((p->json && wl_atomic_open(&o->json, p->json, err, sizeof(err)) < 0) ||
        (p->html && wl_atomic_open(&o->html, p->html, err, sizeof(err)) < 0) ||
        (p->folded && wl_atomic_open(&o->folded, p->folded, err, sizeof(err)) < 0) ||
        (p->speedscope && wl_atomic_open(&o->speedscope, p->speedscope, err, sizeof(err)) < 0)) {
        wl__cli_error("profile", "%s", err);
        wl__cli_profile_abort(o);
        return WL_EXIT_FAILURE;
    }
    return 0;
}

/* Every output checked, then opened: a bad path fails before any work.
 * Returns 0 or the exit code (after one line). */
static int open_outputs(const struct profile_args *a, struct profile_outputs *o)
{
    if (wl__cli_profile_check(&a->out) < 0)
        return WL_EXIT_USAGE;
    if (a->no_stacks && (a->out.folded || a->out.speedscope)) {
        wl__cli_error("profile", "%s needs the stack sampler: it cannot be written with --no-stacks",
                  a->out.folded ? "--folded" : "--speedscope");
        return WL_EXIT_USAGE;
    }
    if (cli_stacks_outputs_possible(a->out.folded, a->out.speedscope) < 0)
        return WL_EXIT_FAILURE;
    return wl__cli_profile_open(o, &a->out);
}

/* ---- run ---- */

/* The exit code for a command that could not be started (rc < 0). */
static int not_run(const char *cmd, int rc)
{
    if (rc == -ENOENT) {
        wl__cli_error("profile", "cannot run '%s': command not found", cmd);
        return WL_EXIT_NOTFOUND;
    }
    wl__cli_error("profile", "cannot run '%s': %s", cmd, strerror(-rc));
    return rc == -EACCES || rc == -ENOEXEC || rc == -EISDIR ? WL_EXIT_NOEXEC : WL_EXIT_FAILURE;
}

/* Runs the command with the stack agent armed: *prof is its profile, *st
 * its stacks (written to --folded/--speedscope, whose status is
 * *stacks_status). Returns 0, or the exit code when nothing ran (every
 * output then aborted, *st freed). */
static int run_command(const struct profile_args *a, struct profile_outputs *o, wl_profile *prof,
                       cli_stacks *st, int *stacks_status)
{
    wl__cli_stacks_init(st);
    if (wl__cli_stacks_begin(st, a->no_stacks, a->out.folded, a->out.speedscope, a->cmd[0], a->opts.hz) < 0) {
        wl__cli_profile_abort(o);
        return WL_EXIT_FAILURE;
    }
    int rc = wl_profile_command(a->cmd, &a->opts, prof);
    if (rc < 0) { /* nothing ran: leave no empty stack files behind */
        wl_atomic_abort(&o->folded);
        wl_atomic_abort(&o->speedscope);
    }
    *stacks_status = wl__cli_stacks_end(st, &o->folded, &o->speedscope, a->cmd[0]);
    if (rc == 0)
        return 0;
    wl__cli_stacks_free(st);
    wl__cli_profile_abort(o);
    return not_run(a->cmd[0], rc);
}

/* ---- print and write ---- */

/* What the run found. */
struct profile_result {
    wl_profile prof;
    cli_stacks stacks;
    wl_verdict verdict;     /* empty when not classified */
    int classified;         /* a run too short to cover any time has no verdict */
    json_t *stack_sections; /* "functions" and "stacks", when recorded */
};

static void classify(struct profile_result *r)
{
    r->classified = wl_classify(&r->prof, NULL, &r->verdict) == 0;
    r->stack_sections = wl__cli_stacks_sections(&r->stacks);
    if (r->classified && r->stack_sections)
        wl_verdict_add_functions(&r->verdict, r->stack_sections); /* no names if out of memory */
}

/* What to act on first: the split, the recommendation (and a pitfall), the
 * functions; the measurements behind them after. On stderr. */
static void print_summary(const struct profile_args *a, const struct profile_result *r)
{
    int color = wl__cli_use_color(stderr);
    int width = wl_text_width(stderr);
    fflush(stdout);
    wl_report_print_summary(stderr, &r->prof, color, width);
    if (r->classified)
        wl_verdict_print(stderr, &r->verdict);
    wl__cli_stacks_print_functions(&r->stacks, stderr, a->sort_total, width);
    wl_report_print_details(stderr, &r->prof, color, width);
}

int wl__cli_profile_write(struct profile_outputs *o, const struct profile_paths *p,
                      const wl_profile *prof, const json_t *stack_sections, const wl_verdict *v)
{
    char err[512];
    int status = 0;
    if (!p->json && !p->html)
        return 0;
    json_t *root = wl_report_to_json(prof);
    if (root && stack_sections)
        json_object_update(root, (json_t *)stack_sections); /* copies the references */
    if (root && v && wl_verdict_to_report(v, root) < 0) {
        json_decref(root);
        root = NULL;
    }
    if (root && p->html && wl_atomic_commit_html(&o->html, root, err, sizeof(err)) < 0) {
        wl__cli_error("profile", "%s", err);
        status = WL_EXIT_FAILURE;
    }
    if (!root) {
        wl__cli_error("profile", "cannot write %s: out of memory", p->json ? p->json : p->html);
        wl_atomic_abort(&o->json);
        wl_atomic_abort(&o->html);
        status = WL_EXIT_FAILURE;
    } else if (p->json && wl_atomic_commit_json(&o->json, root, err, sizeof(err)) < 0) {
        wl__cli_error("profile", "%s", err);
        status = WL_EXIT_FAILURE;
    }
    json_decref(root);
    return status;
}

/* The command's own status; a stacks output's failure when it succeeded;
 * the shell's 128+N when wlprof was stopped by signal N. */
static int exit_status(const wl_profile *prof, int stacks_status)
{
    int status = prof->exit_status;
    if (status == 0 && stacks_status)
        status = stacks_status;
    if (prof->signal_received)
        status = 128 + prof->signal_received;
    return status;
}

int cmd_profile(int argc, char **argv)
{
    struct profile_args a = {0};
    struct profile_outputs o;
    struct profile_result r = {0};
    int stacks_status = 0;

    int rc = parse_args(argc, argv, &a);
    if (rc != CLI_PARSE_OK)
        return cli_parse_exit(rc);
    if (a.pids || a.duration > 0 || a.children)
        return profile_pids(&a);
    if (!a.cmd) {
        wl__cli_error("profile", "no command given (usage: wlprof profile [OPTIONS] -- COMMAND)");
        return WL_EXIT_USAGE;
    }
    rc = open_outputs(&a, &o);
    if (rc == 0)
        rc = run_command(&a, &o, &r.prof, &r.stacks, &stacks_status);
    if (rc != 0)
        return rc;

    classify(&r);
    if (!a.quiet)
        print_summary(&a, &r);
    int status = exit_status(&r.prof, stacks_status);
    if (wl__cli_profile_write(&o, &a.out, &r.prof, r.stack_sections,
                          r.classified ? &r.verdict : NULL) != 0)
        status = WL_EXIT_FAILURE;
    json_decref(r.stack_sections);
    wl_verdict_free(&r.verdict);
    wl_profile_free(&r.prof);
    wl__cli_stacks_free(&r.stacks);
    return status;
}
