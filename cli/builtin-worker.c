/*
 * builtin-worker.c -- `wlprof worker`: the process `wlprof run --executor
 * slurm` starts on every node with srun. It connects back to the
 * coordinator, presents the run's token (from WLPROF_TOKEN, which srun
 * carries in the environment: never on a command line), and runs the jobs
 * it is sent until the coordinator closes the connection or goes away.
 *
 *   wlprof worker --connect HOST:PORT [--slots N] [--lib LIB --task NAME]
 *
 * Not meant to be typed by people; documented for those who start workers
 * by other means (e.g. their own srun or ssh).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "builtin.h"
#include "wlprof/run.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: WLPROF_TOKEN=... wlprof worker --connect HOST:PORT [--slots N]\n"
               "                                    [--lib LIB --task NAME] [--node NAME]\n"
               "\n"
               "Serves the jobs of a 'wlprof run --executor slurm' coordinator: shell\n"
               "commands, and with --lib/--task the blocking form of that task. Started on\n"
               "every node by the coordinator's srun step; exits when the coordinator closes.\n"
               "\n"
               "  --connect HOST:PORT  the coordinator's address\n"
               "  --slots N            jobs at once, each in its own process (default 1)\n"
               "  --node NAME          this node's name in reports (default $SLURMD_NODENAME,\n"
               "                       else the host name)\n"
               "  WLPROF_TOKEN         the run's secret (environment only)\n");
}

int cmd_worker(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"connect", required_argument, NULL, 'c'}, {"slots", required_argument, NULL, 's'},
        {"lib", required_argument, NULL, 'L'},     {"task", required_argument, NULL, 'T'},
        {"node", required_argument, NULL, 'N'},    {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    wl_run_worker_opts o = {0};
    char host[256] = "";
    char node[256] = "";
    char err[1024] = "";
    const char *connect = NULL;
    double v;
    int c;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            connect = optarg;
            break;
        case 's':
            if (cli_parse_positive(optarg, 1024, &v) < 0 || v != (unsigned)v) {
                cli_error("worker", "--slots must be a whole number from 1 to 1024, not '%s'",
                          optarg);
                return WL_EXIT_USAGE;
            }
            o.slots = (unsigned)v;
            break;
        case 'L':
            o.lib = optarg;
            break;
        case 'T':
            o.task = optarg;
            break;
        case 'N':
            snprintf(node, sizeof(node), "%s", optarg);
            break;
        case 'h':
            usage(stdout);
            return WL_EXIT_OK;
        default:
            cli_bad_option("worker", argv, c);
            return WL_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        cli_error("worker", "unexpected argument '%s' (see --help)", argv[optind]);
        return WL_EXIT_USAGE;
    }
    const char *colon = connect ? strrchr(connect, ':') : NULL;
    if (!colon || colon == connect || (size_t)(colon - connect) >= sizeof(host)) {
        cli_error("worker", "--connect HOST:PORT is needed");
        return WL_EXIT_USAGE;
    }
    memcpy(host, connect, (size_t)(colon - connect));
    if (cli_parse_positive(colon + 1, 65535, &v) < 0 || v != (int)v) {
        cli_error("worker", "bad port in --connect '%s'", connect);
        return WL_EXIT_USAGE;
    }
    o.host = host;
    o.port = (int)v;
    if (!!o.lib != !!o.task) {
        cli_error("worker", "--lib and --task go together");
        return WL_EXIT_USAGE;
    }
    o.token = getenv("WLPROF_TOKEN");
    if (!o.token || !*o.token) {
        cli_error("worker", "WLPROF_TOKEN is not set (the coordinator's srun sets it)");
        return WL_EXIT_USAGE;
    }
    if (!node[0]) {
        const char *n = getenv("SLURMD_NODENAME");
        if (n && *n)
            snprintf(node, sizeof(node), "%s", n);
        else
            gethostname(node, sizeof(node) - 1);
    }
    o.node = node;
    if (wl_run_worker(&o, err, sizeof(err)) < 0) {
        cli_error(NULL, "%s", err);
        return WL_EXIT_FAILURE;
    }
    return WL_EXIT_OK;
}
