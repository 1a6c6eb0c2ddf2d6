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

#define HZ_MAX 10000.0

static void usage(FILE *f)
{
    fprintf(f,
            "usage: wlprof profile [OPTIONS] [--] COMMAND [ARGS...]\n"
            "\n"
            "Runs COMMAND and samples every thread of its process tree from /proc:\n"
            "user CPU, system CPU, and off-CPU waiting with the reason for each wait\n"
            "(sleep, network, disk, pipe, lock, poll, child, terminal, other).\n"
            "\n"
            "Options:\n"
            "  -F, --hz N        mean sampling rate per second (default 100, max 10000);\n"
            "                    intervals are randomised around it\n"
            "  -o, --json FILE   write the JSON report (schema " WL_REPORT_SCHEMA ") to FILE\n"
            "  -q, --quiet       print no summary\n"
            "      --seed N      seed for interval jitter (repeatable runs)\n"
            "  -h, --help        show this help\n"
            "\n"
            "Exit status: the command's own, 128+N when it was killed by signal N,\n"
            "126 when it cannot be executed, 127 when it is not found, 2 on bad usage,\n"
            "1 when the report cannot be written.\n");
}

int cmd_profile(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"hz", required_argument, NULL, 'F'},  {"json", required_argument, NULL, 'o'},
        {"quiet", no_argument, NULL, 'q'},     {"seed", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0},
    };
    wl_profile_opts opts = {0};
    const char *json_path = NULL;
    int quiet = 0;
    char err[512];

    optind = 1;
    opterr = 0;
    int c;
    /* '+': stop at the first non-option, so the command's own flags pass through. */
    while ((c = getopt_long(argc, argv, "+F:o:qh", longopts, NULL)) != -1) {
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
        case 'h':
            usage(stdout);
            return WL_EXIT_OK;
        default:
            if (optopt)
                cli_error("profile", "option '-%c' is unknown or needs a value (see --help)",
                          optopt);
            else
                cli_error("profile", "option '%s' is unknown or needs a value (see --help)",
                          argv[optind - 1]);
            return WL_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        cli_error("profile", "no command given (usage: wlprof profile [OPTIONS] -- COMMAND)");
        return WL_EXIT_USAGE;
    }

    /* Open the report's temporary first: a bad path fails before any work. */
    wl_atomic_file out = {0};
    if (json_path && wl_atomic_open(&out, json_path, err, sizeof(err)) < 0) {
        cli_error("profile", "%s", err);
        return WL_EXIT_FAILURE;
    }

    wl_profile prof;
    int rc = wl_profile_command(argv + optind, &opts, &prof);
    if (rc < 0) {
        wl_atomic_abort(&out);
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

    if (!quiet) {
        fflush(stdout);
        wl_report_print_text(stderr, &prof, cli_use_color(stderr));
        if (classified) {
            fputc('\n', stderr);
            wl_verdict_print(stderr, &verdict);
        }
    }

    int status = prof.exit_status;
    if (json_path) {
        json_t *root = wl_report_to_json(&prof);
        if (root && classified && wl_verdict_to_report(&verdict, root) < 0) {
            json_decref(root);
            root = NULL;
        }
        if (!root || json_dumpf(root, out.f, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) != 0 ||
            fputc('\n', out.f) == EOF) {
            cli_error("profile", "cannot write %s: %s", json_path,
                      root ? strerror(errno) : "out of memory");
            wl_atomic_abort(&out);
            status = WL_EXIT_FAILURE;
        } else if (wl_atomic_commit(&out, err, sizeof(err)) < 0) {
            cli_error("profile", "%s", err);
            status = WL_EXIT_FAILURE;
        }
        json_decref(root);
    }
    wl_verdict_free(&verdict); /* empty when not classified */
    wl_profile_free(&prof);
    return status;
}
