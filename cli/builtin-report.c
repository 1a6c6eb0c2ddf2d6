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
#include "wlprof/classify.h"
#include "wlprof/profile.h"
#include "wlprof/report.h"
#ifdef WL_HAVE_STACKS
#include "wlprof/stacks.h"
#endif

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

int cmd_report(int argc, char **argv)
{
    enum { OPT_HTML = 256, OPT_FOLDED, OPT_ROOTS, OPT_SPEEDSCOPE };
    static const struct option longopts[] = {
        {"html", required_argument, NULL, OPT_HTML},
        {"folded", required_argument, NULL, OPT_FOLDED},
        {"folded-roots", required_argument, NULL, OPT_ROOTS},
        {"speedscope", required_argument, NULL, OPT_SPEEDSCOPE},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *out_path[3] = {NULL, NULL, NULL}; /* html, folded, speedscope */
    const char *out_opt[3] = {"--html", "--folded", "--speedscope"};
    int roots_none = 0, quiet = 0;
    char err[512];

    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":qh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_HTML:
            out_path[0] = optarg;
            break;
        case OPT_FOLDED:
            out_path[1] = optarg;
            break;
        case OPT_SPEEDSCOPE:
            out_path[2] = optarg;
            break;
        case OPT_ROOTS:
            if (strcmp(optarg, "none") == 0) {
                roots_none = 1;
            } else if (strcmp(optarg, "thread") == 0) {
                roots_none = 0;
            } else {
                cli_error("report", "--folded-roots must be 'thread' or 'none', not '%s'", optarg);
                return WL_EXIT_USAGE;
            }
            break;
        case 'q':
            quiet = 1;
            break;
        case 'h':
            usage(stdout);
            return WL_EXIT_OK;
        default:
            cli_bad_option("report", argv, c);
            return WL_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        cli_error("report", "no report given (usage: wlprof report [OPTIONS] REPORT.json)");
        return WL_EXIT_USAGE;
    }
    if (optind + 1 < argc) {
        cli_error("report", "one report at a time ('%s' is extra)", argv[optind + 1]);
        return WL_EXIT_USAGE;
    }
    const char *path = argv[optind];
    for (int i = 0; i < 3; i++) {
        if (!out_path[i])
            continue;
        if (strcmp(out_path[i], "-") != 0 && cli_same_file(out_path[i], path)) {
            cli_error("report", "%s %s is the input report: refusing to overwrite it", out_opt[i], out_path[i]);
            return WL_EXIT_USAGE;
        }
        for (int j = 0; j < i; j++)
            if (out_path[j] && strcmp(out_path[i], "-") != 0 && cli_same_file(out_path[i], out_path[j])) {
                cli_error("report", "%s and %s are both %s", out_opt[j], out_opt[i], out_path[i]);
                return WL_EXIT_USAGE;
            }
    }

    json_t *root = NULL;
    wl_profile prof = {0};
    wl_verdict v = {0};
    wl_atomic_file af[3] = {{0}};
    int status = WL_EXIT_FAILURE;
    int classified = 0;
#ifdef WL_HAVE_STACKS
    wl_stacks st = {0};
    int have_stacks = 0;
#endif

    if (wl_report_load(path, &root, err, sizeof(err)) < 0) {
        cli_error("report", "%s", err);
        return WL_EXIT_FAILURE;
    }
    if (wl_report_from_json(root, &prof, err, sizeof(err)) < 0) {
        cli_error("report", "%s: %s", path, err);
        goto out;
    }
#ifdef WL_HAVE_STACKS
    char serr[256] = "";
    int src = wl_stacks_from_json(root, &st, serr, sizeof(serr));
    have_stacks = src == 0;
    if (src == -EINVAL || src == -ENOMEM) {
        cli_error("report", "%s: %s", path, serr);
        goto out;
    }
    if (!have_stacks && (out_path[1] || out_path[2])) {
        cli_error("report", "%s: %s", path, serr);
        goto out;
    }
#else
    if (out_path[1] || out_path[2]) {
        cli_error("report", "this wlprof was built without stack support (libdw missing)");
        goto out;
    }
#endif
    for (int i = 0; i < 3; i++)
        if (out_path[i] && wl_atomic_open(&af[i], out_path[i], err, sizeof(err)) < 0) {
            cli_error("report", "%s", err);
            goto out;
        }

    classified = wl_classify(&prof, NULL, &v) == 0;
    if (classified && wl_verdict_add_functions(&v, root) < 0) {
        cli_error("report", "out of memory");
        goto out;
    }
    if (!quiet) {
        wl_report_print_text(stdout, &prof, cli_use_color(stdout));
#ifdef WL_HAVE_STACKS
        if (have_stacks)
            wl_stacks_print_table(&st, stdout, 10);
#endif
        if (classified) {
            fputc('\n', stdout);
            wl_verdict_print(stdout, &v);
        } else {
            printf("\n  no verdict: the report covers no time\n");
        }
        fflush(stdout);
    }

    status = WL_EXIT_OK;
    if (out_path[0]) {
        /* The page shows the verdict the report was saved with; a report
         * saved without one gets the verdict computed here. */
        if (classified && !json_object_get(root, "classification"))
            wl_verdict_to_report(&v, root);
        if (wl_atomic_commit_html(&af[0], root, err, sizeof(err)) < 0) {
            cli_error("report", "%s", err);
            status = WL_EXIT_FAILURE;
        }
    }
#ifdef WL_HAVE_STACKS
    for (int i = 1; i < 3; i++) {
        if (!out_path[i])
            continue;
        int rc = i == 1 ? wl_stacks_write_folded_roots(&st, af[i].f,
                                                       roots_none ? WL_FOLDED_ROOTS_NONE : WL_FOLDED_ROOTS_THREAD)
                        : wl_stacks_write_speedscope(&st, af[i].f, prof.argv && prof.argv[0] ? prof.argv[0] : path);
        if (rc < 0) {
            cli_error("report", "cannot write %s: %s", out_path[i], strerror(-rc));
            wl_atomic_abort(&af[i]);
            status = WL_EXIT_FAILURE;
        } else if (wl_atomic_commit(&af[i], err, sizeof(err)) < 0) {
            cli_error("report", "%s", err);
            status = WL_EXIT_FAILURE;
        }
    }
#endif
    (void)roots_none;

out:
    for (int i = 0; i < 3; i++)
        wl_atomic_abort(&af[i]);
#ifdef WL_HAVE_STACKS
    wl_stacks_free(&st);
#endif
    wl_verdict_free(&v);
    wl_profile_free(&prof);
    json_decref(root);
    return status;
}
