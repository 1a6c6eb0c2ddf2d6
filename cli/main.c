/*
 * main.c -- wlprof's entry point: a table of subcommands, --help and
 * --version. Every subcommand lives in its own builtin-*.c.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "builtin.h"
#include "util/util.h"

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"profile", cmd_profile, "run a command and measure where its time goes"},
    {"recommend", cmd_recommend, "classify a saved report and recommend an executor"},
    {"report", cmd_report, "print a saved report; re-export it as HTML, folded, speedscope"},
    {"diff", cmd_diff, "compare two saved reports: time, waits, functions, verdict"},
    {"run", cmd_run, "measure a pilot, pick an executor, run a batch of tasks or commands"},
    {"samples", cmd_samples, "list the built-in sample workloads of 'wlprof run --sample'"},
    {"worker", cmd_worker, "serve a 'run --executor slurm' coordinator (started by srun)"},
    {"top", cmd_top, "live view of a running program: split, waits, functions, threads"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: wlprof [--version] [--help] COMMAND [ARGS]\n\n"
               "Is this workload waiting on I/O or burning CPU -- and how should it run?\n\n"
               "Commands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nSee 'wlprof help COMMAND' (or 'wlprof COMMAND --help') for its options.\n");
}

void wl__cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "wlprof%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void wl__cli_bad_option(const char *cmd, char **argv, int c)
{
    /* A long option is named as typed (without any "=value"); a short one
     * by its letter, which may sit inside a cluster like "-qz". */
    const char *arg = argv[optind - 1];
    char name[64];
    if (strncmp(arg, "--", 2) == 0)
        snprintf(name, sizeof(name), "%.*s", (int)strcspn(arg, "="), arg);
    else
        snprintf(name, sizeof(name), "-%c", optopt);
    if (c == ':')
        wl__cli_error(cmd, "option '%s' needs a value (see --help)", name);
    else
        wl__cli_error(cmd, "option '%s' is unknown (see --help)", name);
}

int wl__cli_option_rest(const char *cmd, char **argv, int c, void (*print_usage)(FILE *f))
{
    if (c == 'h') {
        print_usage(stdout);
        return CLI_PARSE_HELP;
    }
    wl__cli_bad_option(cmd, argv, c);
    return CLI_PARSE_ERROR;
}

int wl__cli_parse_options(int argc, char **argv, const char *shortopts,
                      const struct option *longopts, cli_option_fn *one, void *ctx)
{
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        int rc = one(argv, c, optarg, ctx);
        if (rc != CLI_PARSE_OK)
            return rc;
    }
    return CLI_PARSE_OK;
}

int wl__cli_parse_positive(const char *s, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !isfinite(v) || v <= 0 || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

int wl__cli_parse_count(const char *cmd, const char *opt, const char *s, long min, long max, int *out)
{
    long v;
    if (max > INT_MAX)
        max = INT_MAX;
    if (wl__parse_count(s, min, max, &v) < 0) {
        if (max >= WL_CLI_COUNT_UNBOUNDED)
            wl__cli_error(cmd, "%s must be a whole number of at least %ld, not '%s'", opt, min, s);
        else
            wl__cli_error(cmd, "%s must be a whole number from %ld to %ld, not '%s'", opt, min, max, s);
        return -EINVAL;
    }
    *out = (int)v;
    return 0;
}

int wl__cli_use_color(FILE *f)
{
    const char *no = getenv("NO_COLOR");
    return isatty(fileno(f)) && !(no && *no);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return WL_EXIT_USAGE;
    }
    const char *name = argv[1];
    /* `wlprof help COMMAND` is `wlprof COMMAND --help`. */
    if (strcmp(name, "help") == 0 && argc > 2) {
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
            if (strcmp(argv[2], commands[i].name) == 0) {
                char *help_argv[] = {argv[2], "--help", NULL};
                return commands[i].fn(2, help_argv);
            }
        }
        wl__cli_error(NULL, "'%s' is not a command (see 'wlprof --help')", argv[2]);
        return WL_EXIT_USAGE;
    }
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        usage(stdout);
        return WL_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
        printf("wlprof %s\n", WL_VERSION);
        return WL_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(name, commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    wl__cli_error(NULL, "'%s' is not a command (see 'wlprof --help')", name);
    return WL_EXIT_USAGE;
}
