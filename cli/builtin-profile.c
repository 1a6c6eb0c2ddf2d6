/*
 * builtin-profile.c -- `wlprof profile [OPTIONS] [--] CMD [ARGS...]`.
 *
 * Runs CMD under the profiler, classifies the profile (wlprof/classify.h),
 * prints the summary and the verdict on stderr (stdout stays the target's),
 * writes the JSON report -- with "classification" and "recommendation" --
 * atomically when asked, and exits
 * with the target's own status (128+signal when it was killed), like time(1)
 * and perf stat.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "wlprof/classify.h"
#include "wlprof/profile.h"
#include "wlprof/report.h"
#ifdef WL_HAVE_STACKS
#include "wlprof/stacks.h"
#endif

#define HZ_MAX 10000.0

/* ---- stack sampling hooks (agent/): kept apart from the /proc profile ---- */

enum { OPT_NO_STACKS = 1000, OPT_FOLDED, OPT_SPEEDSCOPE, OPT_HTML, OPT_PID, OPT_DURATION, OPT_CHILDREN,
       OPT_SORT, OPT_GRACE };

struct stack_opts {
    int off;                    /* --no-stacks */
    const char *folded;         /* --folded FILE */
    const char *speedscope;     /* --speedscope FILE */
};

#ifdef WL_HAVE_STACKS
/* Arms the agent for cmd unless disabled; prints the one-line notice when
 * the target cannot take it. Returns -1 when stacks output was asked for
 * and cannot be produced (the notice is then an error). */
static int stacks_begin(wl_stacks_session *sess, const struct stack_opts *so, const char *cmd,
                        double hz)
{
    memset(sess, 0, sizeof(*sess));
    if (so->off)
        return 0;
    char notice[512];
    wl_stacks_session_begin(sess, cmd, hz > 0 ? hz : 100.0, notice, sizeof(notice));
    if (notice[0] && !sess->active && (so->folded || so->speedscope)) {
        cli_error("profile", "%s: cannot write %s", notice, so->folded ? so->folded : so->speedscope);
        return -1;
    }
    if (notice[0])
        fprintf(stderr, "wlprof: %s\n", notice);
    return 0;
}

static int speedscope_fn(const wl_stacks *s, FILE *f, const char *name)
{
    return wl_stacks_write_speedscope(s, f, name);
}

static int folded_fn(const wl_stacks *s, FILE *f, const char *name)
{
    (void)name;
    return wl_stacks_write_folded(s, f);
}

/* Writes one stacks output into its already-open temporary and commits it.
 * Returns 0 or WL_EXIT_FAILURE. */
static int stacks_output(wl_atomic_file *af, const wl_stacks *st, const char *name,
                         int (*fn)(const wl_stacks *, FILE *, const char *))
{
    char err[512];
    if (!af->f)
        return 0;
    const char *path = af->path;
    int rc = fn(st, af->f, name);
    if (rc < 0) {
        cli_error("profile", "cannot write %s: %s", path, strerror(-rc));
        wl_atomic_abort(af);
        return WL_EXIT_FAILURE;
    }
    if (wl_atomic_commit(af, err, sizeof(err)) < 0) {
        cli_error("profile", "%s", err);
        return WL_EXIT_FAILURE;
    }
    return 0;
}

/* Collects the stacks and writes --folded/--speedscope into their
 * temporaries (opened before the run). Returns 0 or WL_EXIT_FAILURE. */
static int stacks_end(wl_stacks_session *sess, wl_atomic_file *folded,
                      wl_atomic_file *speedscope, wl_stacks *st, const char *name)
{
    memset(st, 0, sizeof(*st));
    if (!sess->active) {
        wl_atomic_abort(folded);
        wl_atomic_abort(speedscope);
        return 0;
    }
    int rc = wl_stacks_session_end(sess, st);
    if (rc < 0)
        cli_error("profile", "cannot read the agent's stacks: %s", strerror(-rc));
    if ((folded->f || speedscope->f) && st->processes == 0) {
        /* Known only now: no process took the agent (e.g. the command
         * exec'd a static program). Say so rather than write empty files. */
        cli_error("profile", "no process of '%s' ran the stack agent: %s%s%s%s not written", name,
                  folded->f ? "--folded " : "", folded->f ? folded->path : "",
                  folded->f && speedscope->f ? ", --speedscope " : speedscope->f ? "--speedscope " : "",
                  speedscope->f ? speedscope->path : "");
        wl_atomic_abort(folded);
        wl_atomic_abort(speedscope);
        return WL_EXIT_FAILURE;
    }
    if ((folded->f || speedscope->f) && st->samples == 0)
        fprintf(stderr, "wlprof: no stack samples were recorded (the command ran too briefly, "
                        "or exec'd a program that cannot take the agent): the stacks output is "
                        "empty\n");
    int status = stacks_output(folded, st, name, folded_fn);
    if (stacks_output(speedscope, st, name, speedscope_fn))
        status = WL_EXIT_FAILURE;
    return status;
}
#endif

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

int cmd_profile(int argc, char **argv)
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
    struct profile_pid_args pa = {0};
    wl_profile_opts opts = {0};
    const char *json_path = NULL, *html_path = NULL;
    int quiet = 0;
    int sort_total = 0; /* --sort total */
    struct stack_opts so = {0};
    char err[512];

    optind = 1;
    opterr = 0;
    int c;
    /* '+': stop at the first non-option, so the command's own flags pass through. */
    while ((c = getopt_long(argc, argv, "+:F:o:qhp:d:", longopts, NULL)) != -1) {
        switch (c) {
        case 'F':
            if (cli_parse_positive(optarg, HZ_MAX, &opts.hz) < 0) {
                cli_error("profile", "--hz must be a number above 0 and at most %.0f, not '%s'",
                          HZ_MAX, optarg);
                return WL_EXIT_USAGE;
            }
            break;
        case 'o':
            json_path = optarg;
            break;
        case 'q':
            quiet = 1;
            break;
        case 's': {
            double seed;
            if (cli_parse_positive(optarg, 4294967295.0, &seed) < 0) {
                cli_error("profile", "--seed must be a positive integer, not '%s'", optarg);
                return WL_EXIT_USAGE;
            }
            opts.seed = (unsigned)seed;
            break;
        }
        case OPT_NO_STACKS:
            so.off = 1;
            break;
        case OPT_FOLDED:
            so.folded = optarg;
            break;
        case OPT_SPEEDSCOPE:
            so.speedscope = optarg;
            break;
        case OPT_HTML:
            html_path = optarg;
            break;
        case 'p':
            pa.pids = optarg;
            break;
        case 'd':
            if (cli_parse_positive(optarg, 1e7, &pa.duration) < 0) {
                cli_error("profile", "--duration must be a number of seconds above 0, not '%s'",
                          optarg);
                return WL_EXIT_USAGE;
            }
            break;
        case OPT_CHILDREN:
            pa.children = 1;
            break;
        case OPT_SORT:
            if (strcmp(optarg, "self") != 0 && strcmp(optarg, "total") != 0) {
                cli_error("profile", "--sort must be 'self' or 'total', not '%s'", optarg);
                return WL_EXIT_USAGE;
            }
            sort_total = strcmp(optarg, "total") == 0;
            break;
        case OPT_GRACE: {
            char *end;
            double g = strtod(optarg, &end);
            if (end == optarg || *end || !(g >= 0 && g <= 86400)) {
                cli_error("profile", "--grace must be seconds from 0 to 86400, not '%s'", optarg);
                return WL_EXIT_USAGE;
            }
            opts.grace_s = g > 0 ? g : -1; /* -1: no grace at all */
            break;
        }
        case 'h':
            usage(stdout);
            return WL_EXIT_OK;
        default:
            cli_bad_option("profile", argv, c);
            return WL_EXIT_USAGE;
        }
    }
    if (pa.pids || pa.duration > 0 || pa.children) {
        if (!pa.pids) {
            cli_error("profile", "--duration and --children need --pid");
            return WL_EXIT_USAGE;
        }
        if (optind < argc) {
            cli_error("profile", "give either --pid or a command, not both");
            return WL_EXIT_USAGE;
        }
        pa.opts = opts;
        pa.json = json_path;
        pa.html = html_path;
        pa.quiet = quiet;
        pa.no_stacks = so.off;
        pa.folded = so.folded;
        pa.speedscope = so.speedscope;
        return cmd_profile_pid(&pa);
    }
    (void)sort_total; /* only the stacks' table has an order */
    if (optind >= argc) {
        cli_error("profile", "no command given (usage: wlprof profile [OPTIONS] -- COMMAND)");
        return WL_EXIT_USAGE;
    }

    /* Every output checked together, then opened: a bad path fails before
     * any work. */
    wl_outputs outs = {0};
    wl_outputs_add(&outs, "--json", json_path);
    wl_outputs_add(&outs, "--folded", so.folded);
    wl_outputs_add(&outs, "--speedscope", so.speedscope);
    wl_outputs_add(&outs, "--html", html_path);
    if (wl_outputs_check(&outs, err, sizeof(err)) < 0) {
        cli_error("profile", "%s", err);
        return WL_EXIT_USAGE;
    }
    if (so.off && (so.folded || so.speedscope)) {
        cli_error("profile", "%s needs the stack sampler: it cannot be written with --no-stacks",
                  so.folded ? "--folded" : "--speedscope");
        return WL_EXIT_USAGE;
    }
#ifndef WL_HAVE_STACKS
    if (so.folded || so.speedscope) {
        cli_error("profile", "this wlprof was built without stack sampling (libdw missing): "
                             "%s cannot be written", so.folded ? "--folded" : "--speedscope");
        return WL_EXIT_FAILURE;
    }
#endif
    wl_atomic_file out = {0}, folded_out = {0}, speedscope_out = {0}, html_out = {0};
    if ((json_path && wl_atomic_open(&out, json_path, err, sizeof(err)) < 0) ||
        (html_path && wl_atomic_open(&html_out, html_path, err, sizeof(err)) < 0) ||
        (so.folded && wl_atomic_open(&folded_out, so.folded, err, sizeof(err)) < 0) ||
        (so.speedscope && wl_atomic_open(&speedscope_out, so.speedscope, err, sizeof(err)) < 0)) {
        cli_error("profile", "%s", err);
        wl_atomic_abort(&out);
        wl_atomic_abort(&html_out);
        wl_atomic_abort(&folded_out);
        return WL_EXIT_FAILURE;
    }

    wl_profile prof;
#ifdef WL_HAVE_STACKS
    wl_stacks_session sess;
    wl_stacks stacks;
    if (stacks_begin(&sess, &so, argv[optind], opts.hz) < 0) {
        wl_atomic_abort(&out);
        wl_atomic_abort(&folded_out);
        wl_atomic_abort(&speedscope_out);
        return WL_EXIT_FAILURE;
    }
#endif
    int rc = wl_profile_command(argv + optind, &opts, &prof);
    if (rc < 0) { /* nothing ran: leave no empty stack files behind */
        wl_atomic_abort(&folded_out);
        wl_atomic_abort(&speedscope_out);
    }
#ifdef WL_HAVE_STACKS
    int stacks_status = stacks_end(&sess, &folded_out, &speedscope_out, &stacks, argv[optind]);
#else
    int stacks_status = 0;
    wl_atomic_abort(&folded_out);
    wl_atomic_abort(&speedscope_out);
#endif
    if (rc < 0) {
#ifdef WL_HAVE_STACKS
        wl_stacks_free(&stacks);
#endif
        wl_atomic_abort(&out);
        wl_atomic_abort(&html_out);
        if (rc == -ENOENT) {
            cli_error("profile", "cannot run '%s': command not found", argv[optind]);
            return WL_EXIT_NOTFOUND;
        }
        cli_error("profile", "cannot run '%s': %s", argv[optind], strerror(-rc));
        return rc == -EACCES || rc == -ENOEXEC || rc == -EISDIR ? WL_EXIT_NOEXEC
                                                                 : WL_EXIT_FAILURE;
    }

    /* A run too short to cover any time has no verdict; the report is
     * still written without one. */
    wl_verdict verdict;
    int classified = wl_classify(&prof, NULL, &verdict) == 0;
    json_t *stack_sections = NULL; /* "functions" and "stacks", when recorded */
#ifdef WL_HAVE_STACKS
    if (sess.dir[0])
        stack_sections = wl_stacks_to_json(&stacks, 200, 200);
#endif
    if (classified && stack_sections)
        wl_verdict_add_functions(&verdict, stack_sections); /* no names if out of memory */

    if (!quiet) {
        /* What to act on first: the split, the recommendation (and a
         * pitfall), the functions; the measurements behind them after. */
        int color = cli_use_color(stderr);
        int width = wl_text_width(stderr);
        fflush(stdout);
        wl_report_print_summary(stderr, &prof, color, width);
        if (classified)
            wl_verdict_print(stderr, &verdict);
#ifdef WL_HAVE_STACKS
        if (sess.dir[0])
            wl_stacks_print_functions(&stacks, stderr, 10, sort_total, width);
#endif
        wl_report_print_details(stderr, &prof, color, width);
    }

    int status = prof.exit_status;
    if (status == 0 && stacks_status)
        status = stacks_status;
    if (prof.signal_received) /* the shell's convention for a command stopped by signal N */
        status = 128 + prof.signal_received;
    if (json_path || html_path) {
        json_t *root = wl_report_to_json(&prof);
        if (root && stack_sections)
            json_object_update(root, stack_sections);
        if (root && classified && wl_verdict_to_report(&verdict, root) < 0) {
            json_decref(root);
            root = NULL;
        }
        if (root && html_path && wl_atomic_commit_html(&html_out, root, err, sizeof(err)) < 0) {
            cli_error("profile", "%s", err);
            status = WL_EXIT_FAILURE;
        }
        if (!root) {
            cli_error("profile", "cannot write %s: out of memory", json_path ? json_path : html_path);
            wl_atomic_abort(&out);
            wl_atomic_abort(&html_out);
            status = WL_EXIT_FAILURE;
        } else if (json_path && wl_atomic_commit_json(&out, root, err, sizeof(err)) < 0) {
            cli_error("profile", "%s", err);
            status = WL_EXIT_FAILURE;
        }
        json_decref(root);
    }
    json_decref(stack_sections);
    wl_verdict_free(&verdict); /* empty when not classified */
    wl_profile_free(&prof);
#ifdef WL_HAVE_STACKS
    wl_stacks_free(&stacks);
#endif
    return status;
}
