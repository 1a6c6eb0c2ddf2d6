/*
 * builtin.h -- the subcommands of wlprof, one file each (builtin-NAME.c),
 * in the manner of perf's builtin-*.c. Each takes the arguments after its
 * name (argv[0] is the subcommand name) and returns the process exit code.
 */
#ifndef WL_CLI_BUILTIN_H
#define WL_CLI_BUILTIN_H

#include <stdio.h>

/* Exit codes shared by the subcommands (beyond a target's own status). */
enum {
    WL_EXIT_OK = 0,
    WL_EXIT_FAILURE = 1,  /* the work failed (I/O error, bad report...) */
    WL_EXIT_USAGE = 2,    /* bad command line */
    WL_EXIT_NOEXEC = 126, /* the command exists but cannot be run */
    WL_EXIT_NOTFOUND = 127,
};

int cmd_profile(int argc, char **argv);
int cmd_recommend(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_samples(int argc, char **argv);
int cmd_worker(int argc, char **argv);
int cmd_top(int argc, char **argv);

/* `wlprof profile --pid` (builtin-profile-pid.c), after option parsing. */
#include "wlprof/profile.h"
struct profile_pid_args {
    const char *pids;       /* "PID[,PID...]" */
    double duration;        /* seconds, 0: until Ctrl-C or exit */
    int children;
    wl_profile_opts opts;   /* hz, seed */
    const char *json, *folded, *speedscope, *html;
    int quiet, no_stacks;
};
int cmd_profile_pid(const struct profile_pid_args *a);

/* Prints "wlprof CMD: message" on stderr (one line). */
void cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reports the option getopt_long just rejected (unknown, or missing its
 * value) as one line, for subcommand cmd. */
void cli_bad_option(const char *cmd, char **argv, int c);

/* Parses a positive number no larger than max; 0 on success. */
int cli_parse_positive(const char *s, double max, double *out);

/* Parses option opt's value s as a whole number from min to max (one
 * convention for every subcommand: util's wl__parse_count) into *out; on
 * error prints one line for cmd and returns -EINVAL. A max of at least
 * WL_CLI_COUNT_UNBOUNDED is stated as "at least min". */
#define WL_CLI_COUNT_UNBOUNDED 1000000L
int cli_parse_count(const char *cmd, const char *opt, const char *s, long min, long max, int *out);
/* Whether two paths name one file: equal strings, or the same existing
 * file (device and inode). */
int cli_same_file(const char *a, const char *b);

/* Whether colours should be used on this stream (a TTY, NO_COLOR unset). */
int cli_use_color(FILE *f);

#endif
