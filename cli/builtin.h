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

#include "wlprof/classify.h"
#include "wlprof/profile.h"
#include "wlprof/report.h"

/* ---- `wlprof profile`'s outputs, either mode (builtin-profile.c) ---- */

/* The output paths (NULL: not asked for). */
struct profile_paths {
    const char *json, *html, *folded, *speedscope;
};

/* Their temporaries, opened before anything runs. */
struct profile_outputs {
    wl_atomic_file json, html, folded, speedscope;
};

/* Checks the paths together (wl__cli_check_outputs). Returns 0, or -1 after
 * one line (a usage error). */
int wl__cli_profile_check(const struct profile_paths *p);

/* Opens each given path's temporary into *o. Returns 0, or
 * WL_EXIT_FAILURE after one line when one cannot be made (none is then
 * left open). */
int wl__cli_profile_open(struct profile_outputs *o, const struct profile_paths *p);

/* Aborts every temporary in *o (safe on any, committed or not). */
void wl__cli_profile_abort(struct profile_outputs *o);

/* Commits --json and --html: the report of prof, with stack_sections
 * ("functions" and "stacks", borrowed, or NULL) and the verdict v (NULL:
 * none). Both are aborted on failure. Returns 0 or WL_EXIT_FAILURE. */
int wl__cli_profile_write(struct profile_outputs *o, const struct profile_paths *p,
                      const wl_profile *prof, const json_t *stack_sections, const wl_verdict *v);

/* `wlprof profile --pid` (builtin-profile-pid.c), after option parsing. */
struct profile_pid_args {
    const char *pids;         /* "PID[,PID...]" */
    double duration;          /* seconds, 0: until Ctrl-C or exit */
    int children;
    wl_profile_opts opts;     /* hz, seed */
    struct profile_paths out; /* -o, --html, --folded, --speedscope */
    int quiet, no_stacks;
};
int cmd_profile_pid(const struct profile_pid_args *a);

/* Prints "wlprof CMD: message" on stderr (one line). */
void wl__cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reports the option getopt_long just rejected (unknown, or missing its
 * value) as one line, for subcommand cmd. */
void wl__cli_bad_option(const char *cmd, char **argv, int c);

/* What a subcommand's option parser returns: go on, or stop -- after
 * printing --help (exit 0), or after one line on a bad command line
 * (exit 2); cli_parse_exit gives that exit code. */
enum { CLI_PARSE_ERROR = -1, CLI_PARSE_OK = 0, CLI_PARSE_HELP = 1 };
static inline int cli_parse_exit(int parsed)
{
    return parsed == CLI_PARSE_HELP ? WL_EXIT_OK : WL_EXIT_USAGE;
}

/* The last case of every subcommand's option switch, for what getopt_long
 * returned that cmd does not handle itself: 'h' prints usage on stdout
 * (CLI_PARSE_HELP); anything else is a bad option, reported as one line by
 * wl__cli_bad_option (CLI_PARSE_ERROR). */
int wl__cli_option_rest(const char *cmd, char **argv, int c, void (*print_usage)(FILE *f));

/* Parses the options of a subcommand (argv[0] is its name) with
 * getopt_long -- opterr off: errors are reported by the command, one line
 * each -- handing each to one(argv, c, optarg, ctx), which returns a
 * CLI_PARSE_* code (wl__cli_option_rest for what it does not know). Stops at the
 * first that is not CLI_PARSE_OK and returns it; the operands start at
 * optind afterwards. */
struct option;
typedef int cli_option_fn(char **argv, int c, const char *v, void *ctx);
int wl__cli_parse_options(int argc, char **argv, const char *shortopts,
                      const struct option *longopts, cli_option_fn *one, void *ctx);

/* Parses a positive number no larger than max; 0 on success. */
int wl__cli_parse_positive(const char *s, double max, double *out);

/* Parses option opt's value s as a whole number from min to max (one
 * convention for every subcommand: util's wl__parse_count) into *out; on
 * error prints one line for cmd and returns -EINVAL. A max of at least
 * WL_CLI_COUNT_UNBOUNDED is stated as "at least min". */
#define WL_CLI_COUNT_UNBOUNDED 1000000L
int wl__cli_parse_count(const char *cmd, const char *opt, const char *s, long min, long max, int *out);

/* Whether colours should be used on this stream (a TTY, NO_COLOR unset). */
int wl__cli_use_color(FILE *f);

/* ---- reading saved reports (cli-report.c: report, recommend, diff) ---- */

/* The one REPORT.json operand of cmd after its options (argv[optind]) into
 * *path (borrowed from argv). None, or more than one, is one line and
 * CLI_PARSE_ERROR; else CLI_PARSE_OK. */
int wl__cli_one_report(const char *cmd, int argc, char **argv, const char **path);

/* Checks a command's output and input paths together (wl_outputs_check:
 * two outputs on one file, "-" included, or an output on an input).
 * Returns 0, or -1 after one line for cmd (a usage error). */
int wl__cli_check_outputs(const char *cmd, const wl_outputs *paths);

/* Reads the saved report at path into *root (a new reference)
 * and *prof (the caller's: wl_profile_free). Returns 0, or -1 after one
 * line for cmd, with *root NULL and *prof empty. */
int wl__cli_load_report(const char *cmd, const char *path, json_t **root, wl_profile *prof);

#endif
