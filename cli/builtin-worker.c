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

/* The command line, parsed into the worker's options. */
struct worker_args {
    wl_run_worker_opts o;
    const char *connect; /* --connect HOST:PORT */
    char host[256];      /* its HOST */
    char node[256];      /* --node NAME, "" until defaulted */
};

/* One option c with value v into *ctx (a struct worker_args). Returns a
 * CLI_PARSE_* code. */
static int parse_option(char **argv, int c, const char *v, void *ctx)
{
    struct worker_args *a = ctx;
    double n;
    switch (c) {
    case 'c':
        a->connect = v;
        break;
    case 's':
        if (wl__cli_parse_positive(v, 1024, &n) < 0 || n != (unsigned)n) {
            wl__cli_error("worker", "--slots must be a whole number from 1 to 1024, not '%s'", v);
            return CLI_PARSE_ERROR;
        }
        a->o.slots = (unsigned)n;
        break;
    case 'L':
        a->o.lib = v;
        break;
    case 'T':
        a->o.task = v;
        break;
    case 'N':
        snprintf(a->node, sizeof(a->node), "%s", v);
        break;
    default:
        return wl__cli_option_rest("worker", argv, c, usage);
    }
    return CLI_PARSE_OK;
}

/* --connect HOST:PORT into a->o.host and a->o.port. Returns a CLI_PARSE_*
 * code. */
static int parse_connect(struct worker_args *a)
{
    double port;
    const char *colon = a->connect ? strrchr(a->connect, ':') : NULL;
    if (!colon || colon == a->connect || (size_t)(colon - a->connect) >= sizeof(a->host)) {
        wl__cli_error("worker", "--connect HOST:PORT is needed");
        return CLI_PARSE_ERROR;
    }
    memcpy(a->host, a->connect, (size_t)(colon - a->connect));
    if (wl__cli_parse_positive(colon + 1, 65535, &port) < 0 || port != (int)port) {
        wl__cli_error("worker", "bad port in --connect '%s'", a->connect);
        return CLI_PARSE_ERROR;
    }
    a->o.host = a->host;
    a->o.port = (int)port;
    return CLI_PARSE_OK;
}

/* The options, then what the environment gives: the token, the node's
 * name. Returns a CLI_PARSE_* code. */
static int parse_args(int argc, char **argv, struct worker_args *a)
{
    static const struct option longopts[] = {
        {"connect", required_argument, NULL, 'c'}, {"slots", required_argument, NULL, 's'},
        {"lib", required_argument, NULL, 'L'},     {"task", required_argument, NULL, 'T'},
        {"node", required_argument, NULL, 'N'},    {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int rc = wl__cli_parse_options(argc, argv, ":h", longopts, parse_option, a);
    if (rc != CLI_PARSE_OK)
        return rc;
    if (optind < argc) {
        wl__cli_error("worker", "unexpected argument '%s' (see --help)", argv[optind]);
        return CLI_PARSE_ERROR;
    }
    if (parse_connect(a) != CLI_PARSE_OK)
        return CLI_PARSE_ERROR;
    if (!!a->o.lib != !!a->o.task) {
        wl__cli_error("worker", "--lib and --task go together");
        return CLI_PARSE_ERROR;
    }
    a->o.token = getenv("WLPROF_TOKEN");
    if (!a->o.token || !*a->o.token) {
        wl__cli_error("worker", "WLPROF_TOKEN is not set (the coordinator's srun sets it)");
        return CLI_PARSE_ERROR;
    }
    if (!a->node[0]) {
        const char *n = getenv("SLURMD_NODENAME");
        if (n && *n)
            snprintf(a->node, sizeof(a->node), "%s", n);
        else
            gethostname(a->node, sizeof(a->node) - 1);
    }
    a->o.node = a->node;
    return CLI_PARSE_OK;
}

int cmd_worker(int argc, char **argv)
{
    struct worker_args a = {0};
    char err[1024] = "";
    int rc = parse_args(argc, argv, &a);
    if (rc != CLI_PARSE_OK)
        return cli_parse_exit(rc);
    if (wl_run_worker(&a.o, err, sizeof(err)) < 0) {
        wl__cli_error(NULL, "%s", err);
        return WL_EXIT_FAILURE;
    }
    return WL_EXIT_OK;
}
