/*
 * builtin-run.c -- `wlprof run`: measure a pilot, choose an executor, run
 * the whole batch (runner/, wlprof/run.h).
 *
 *   wlprof run --lib LIB --task NAME --inputs FILE   task library mode
 *   wlprof run --sample NAME                         a built-in sample task
 *   wlprof run --commands FILE|-                     shell command list
 *   wlprof run [OPTIONS] CMD... ::: ARG...           GNU parallel style
 *   wlprof run [OPTIONS] CMD... :::: FILE            (or -a FILE)
 *
 * Progress and the summary go to stderr (stdout carries the jobs' own
 * output in command mode); the JSON report is written atomically, its
 * temporary created before any work so a bad path fails at once.
 *
 * Exit status: 0 when every job succeeded, 1 when any failed or the batch
 * could not run (missing library, bad input), 2 on bad usage, 128+N when
 * signal N stopped the run (the report is still written). Not parallel's
 * failure count: 1..100 would collide with 2 and with the jobs' own codes,
 * and 101 would mean "many"; the counts are in the report and joblog.
 */
#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "builtin.h"
#include "wlprof/report.h"
#include "wlprof/run.h"
#include "wlprof/samples.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: wlprof run --lib LIB --task NAME --inputs FILE [OPTIONS]\n"
            "       wlprof run --sample NAME [--jobs N] [OPTIONS]\n"
            "       wlprof run --commands FILE|- [OPTIONS]\n"
            "       wlprof run [OPTIONS] COMMAND... ::: ARG...   (or :::: FILE, -a FILE)\n"
            "\n"
            "Runs the first jobs while measuring them (the pilot; the first alone),\n"
            "classifies the pilot as waiting (I/O) or computing (CPU), and runs the rest\n"
            "under the executor that suits it:\n"
            "  tasks:    waiting on sockets, pipes or timers, with an async form ->\n"
            "            coroutine loop; other waiting, or blocking only -> thread pool;\n"
            "            CPU-bound -> process pool\n"
            "  commands: waiting-bound -> many at once (--limit); CPU-bound -> one per core\n"
            "Task pilot jobs run in a worker process: a crash, exit or hang fails that job.\n"
            "\n"
            "A task library exports  int NAME(const wl_bytes *in, wl_bytes *out)  and/or\n"
            "NAME_async (a coroutine on wlprof's loop); see include/wlprof/run.h. Each line\n"
            "of --inputs (JSONL) is one job's input. In a COMMAND template {} is the\n"
            "argument (shell-quoted), {#} the job number; without either, \" {}\" is added.\n"
            "\n"
            "Options:\n"
            "  -e, --executor E   auto (default), coroutine, thread, process, or slurm\n"
            "  -w, -j, --workers N  jobs in flight (default: from the pilot's verdict)\n"
            "  -l, --limit N      most jobs in flight (default 64)\n"
            "  -p, --pilot N      pilot jobs (default 3 for tasks, 1 for commands; 0: none)\n"
            "  -n, --jobs N       --sample: how many jobs (default per sample)\n"
            "      --timeout S    stop a job after S seconds (TERM, KILL after --grace):\n"
            "                     timed_out\n"
            "      --grace S      TERM -> KILL delay for timeouts, --halt and signals (3)\n"
            "      --retries N    run a failed or timed-out job up to N more times\n"
            "      --halt WHEN,fail=N  after N failed jobs: soon = start no new job,\n"
            "                     now = also stop the running ones; never (default)\n"
            "      --fail-fast    --halt now,fail=1\n"
            "      --skip-bad     skip malformed input lines instead of stopping\n"
            "  -o, --json FILE    write the run report (schema " WL_RUN_SCHEMA ")\n"
            "  -q, --quiet        no progress, no summary\n"
            "\n"
            "On a Slurm cluster (--executor slurm; docs/slurm.md): workers start on the\n"
            "allocation's nodes with one srun step and take jobs over TCP. Inside an\n"
            "allocation (SLURM_JOB_ID) that one is used, else salloc asks for one.\n"
            "      --nodes N      nodes to use / ask for (default: all, or 1)\n"
            "      --ntasks-per-node N  worker processes per node (default 1)\n"
            "      --partition P, --time T   passed to salloc for a new allocation\n"
            "      --bind ADDR    address the workers connect to (default: this host's)\n"
            "      (--retries, --timeout and --grace apply there too)\n"
            "  -h, --help         show this help\n"
            "Commands only:\n"
            "  -a, --arg-file FILE  arguments for COMMAND, one a line (like :::: FILE)\n"
            "  -d, --output-dir DIR  each job's output in DIR/N.out, DIR/N.err\n"
            "                     (default: lines prefixed \"[N] \", each job's output whole)\n"
            "      --line-buffer  write lines as they come (jobs interleave by line)\n"
            "  -k, --keep-order   write the jobs' output in input order\n"
            "      --no-prefix    no \"[N] \" before each line\n"
            "      --joblog FILE  one line per finished job, GNU parallel's columns\n"
            "      --resume       skip the jobs already in --joblog FILE, append to it\n"
            "      --dry-run      print the commands, run nothing\n"
            "\n"
            "Signals: SIGINT, SIGTERM or SIGHUP (a terminal's Ctrl-C too) go to every\n"
            "running job, which gets SIGKILL after --grace; the report is written.\n"
            "Exit status: 0 when every job succeeded, 1 when any failed, timed out or did\n"
            "not run, or the batch could not run, 2 on bad usage, 128+N after signal N.\n");
}

static int parse_count(const char *opt, const char *s, int min, int *out)
{
    return wl__cli_parse_count("run", opt, s, min, WL_CLI_COUNT_UNBOUNDED, out);
}

static int parse_seconds(const char *opt, const char *s, double *out)
{
    if (wl__cli_parse_positive(s, 1e7, out) < 0) {
        wl__cli_error("run", "%s must be a positive number of seconds, not '%s'", opt, s);
        return -1;
    }
    return 0;
}

/* never | now,fail=N | soon,fail=N (parallel's --halt, the failure kind). */
static int parse_halt(const char *s, wl_run_opts *o)
{
    if (strcmp(s, "never") == 0) {
        o->halt = WL_HALT_NEVER;
        return 0;
    }
    const char *rest = NULL;
    if (strncmp(s, "now,", 4) == 0) {
        o->halt = WL_HALT_NOW;
        rest = s + 4;
    } else if (strncmp(s, "soon,", 5) == 0) {
        o->halt = WL_HALT_SOON;
        rest = s + 5;
    }
    char *end;
    long n = 0;
    if (rest && strncmp(rest, "fail=", 5) == 0) {
        errno = 0;
        n = strtol(rest + 5, &end, 10);
        if (!errno && end != rest + 5 && !*end && n >= 1 && n <= 1000000) {
            o->halt_fail = (int)n;
            return 0;
        }
    }
    wl__cli_error("run", "--halt must be never, now,fail=N or soon,fail=N (N >= 1), not '%s'", s);
    return -1;
}

typedef struct run_args {
    const char *lib;
    const char *task;
    const char *inputs;
    const char *commands;
    const char *sample;
    const char *json;
    const char *joblog;
    const char *arg_file;
    char *template;      /* COMMAND words joined (owned) */
    char **args;         /* ::: arguments (borrowed from argv) */
    size_t nargs;
    bool have_template;  /* COMMAND or ::: given */
    bool resume;
    bool dry_run;
    int jobs;
    bool skip_bad;
    bool quiet;
    bool slurm;
    wl_slurm_opts so;
    wl_run_opts o;
} run_args;

/* COMMAND... [::: ARG... | :::: FILE] after the options. */
static int parse_template(int argc, char **argv, int i, run_args *a)
{
    size_t len = 0;
    int first = i;
    for (; i < argc && strcmp(argv[i], ":::") && strcmp(argv[i], "::::"); i++)
        len += strlen(argv[i]) + 1;
    a->template = calloc(1, len + 1);
    if (!a->template)
        return -1;
    for (int k = first; k < i; k++) {
        if (k > first)
            strcat(a->template, " ");
        strcat(a->template, argv[k]);
    }
    a->have_template = true;
    if (i < argc && strcmp(argv[i], ":::") == 0) {
        a->args = argv + i + 1;
        for (i++; i < argc && strcmp(argv[i], ":::") && strcmp(argv[i], "::::"); i++)
            a->nargs++;
        if (a->nargs == 0) {
            wl__cli_error("run", "::: needs at least one argument");
            return -1;
        }
    } else if (i < argc) {
        if (i + 2 != argc) {
            wl__cli_error("run", ":::: takes one FILE");
            return -1;
        }
        if (a->arg_file) {
            wl__cli_error("run", "give one source of arguments (-a FILE, ::: or :::: FILE)");
            return -1;
        }
        a->arg_file = argv[i + 1];
        i += 2;
    }
    if (i < argc) {
        wl__cli_error("run", "give one source of arguments (-a FILE, ::: or :::: FILE)");
        return -1;
    }
    if (a->args && a->arg_file) {
        wl__cli_error("run", "give one source of arguments (-a FILE, ::: or :::: FILE)");
        return -1;
    }
    if (!a->args && !a->arg_file) {
        wl__cli_error("run", "COMMAND needs arguments: ::: ARG..., :::: FILE or -a FILE");
        return -1;
    }
    return 0;
}

/* What one option group's parser says of option c: not one of its
 * options, taken, or refused (after one line). */
enum { OPT_NOT_MINE = 1, OPT_TAKEN = 0, OPT_BAD = -1 };

enum { OPT_NODES = 1001, OPT_NTASKS, OPT_PARTITION, OPT_TIME, OPT_BIND };

/* --executor NAME. */
static int parse_executor(const char *v, run_args *a)
{
    if (strcmp(v, "auto") == 0)
        a->o.executor = WL_RUN_AUTO;
    else if (strcmp(v, "coroutine") == 0)
        a->o.executor = WL_EXEC_COROUTINE;
    else if (strcmp(v, "thread") == 0 || strcmp(v, "thread_pool") == 0)
        a->o.executor = WL_EXEC_THREAD_POOL;
    else if (strcmp(v, "process") == 0 || strcmp(v, "process_pool") == 0)
        a->o.executor = WL_EXEC_PROCESS_POOL;
    else if (strcmp(v, "slurm") == 0)
        a->slurm = true;
    else {
        wl__cli_error("run", "--executor must be auto, coroutine, thread, process or slurm, not '%s'",
                  v);
        return OPT_BAD;
    }
    return OPT_TAKEN;
}

/* What to run: --lib/--task/--inputs, --commands, --sample, -a, --jobs,
 * --executor; and where its report goes (-o, -q). */
static int parse_what_option(int c, const char *v, run_args *a)
{
    switch (c) {
    case 'L':
        a->lib = v;
        break;
    case 'T':
        a->task = v;
        break;
    case 'I':
        a->inputs = v;
        break;
    case 'C':
        a->commands = v;
        break;
    case 'S':
        a->sample = v;
        break;
    case 'a':
        a->arg_file = v;
        break;
    case 'n':
        return parse_count("--jobs", v, 1, &a->jobs) < 0 ? OPT_BAD : OPT_TAKEN;
    case 'e':
        return parse_executor(v, a);
    case 'o':
        a->json = v;
        break;
    case 'q':
        a->quiet = true;
        break;
    default:
        return OPT_NOT_MINE;
    }
    return OPT_TAKEN;
}

/* How many at once, for how long, how often, when to stop: --workers/-j,
 * --limit, --pilot, --timeout, --grace, --retries, --halt, --fail-fast,
 * --skip-bad. */
static int parse_how_option(int c, const char *v, run_args *a)
{
    int rc = 0, n;
    switch (c) {
    case 'w':
    case 'j':
        rc = parse_count(c == 'j' ? "-j" : "--workers", v, 1, &a->o.workers);
        break;
    case 'l':
        rc = parse_count("--limit", v, 1, &a->o.limit);
        break;
    case 'p':
        rc = parse_count("--pilot", v, 0, &n);
        if (rc == 0)
            a->o.pilot = n == 0 ? -1 : n;
        break;
    case 't':
        rc = parse_seconds("--timeout", v, &a->o.timeout_s);
        break;
    case 'G':
        rc = parse_seconds("--grace", v, &a->o.grace_s);
        break;
    case 'R':
        rc = parse_count("--retries", v, 0, &a->o.retries);
        break;
    case 'H':
        rc = parse_halt(v, &a->o);
        break;
    case 'F':
        a->o.fail_fast = true;
        break;
    case 'B':
        a->skip_bad = true;
        break;
    default:
        return OPT_NOT_MINE;
    }
    return rc < 0 ? OPT_BAD : OPT_TAKEN;
}

/* Command lists' own: --joblog, --resume, --keep-order, --line-buffer,
 * --dry-run, --no-prefix, --output-dir. */
static int parse_commands_option(int c, const char *v, run_args *a)
{
    switch (c) {
    case 'J':
        a->joblog = v;
        break;
    case 'r':
        a->resume = true;
        break;
    case 'k':
        a->o.keep_order = true;
        break;
    case 'b':
        a->o.line_buffer = true;
        break;
    case 'D':
        a->dry_run = true;
        break;
    case 'P':
        a->o.no_prefix = true;
        break;
    case 'd':
        a->o.output_dir = v;
        break;
    default:
        return OPT_NOT_MINE;
    }
    return OPT_TAKEN;
}

/* --executor slurm's: --nodes, --ntasks-per-node, --partition, --time,
 * --bind. */
static int parse_slurm_option(int c, const char *v, run_args *a)
{
    int rc = 0;
    switch (c) {
    case OPT_NODES:
        rc = parse_count("--nodes", v, 1, &a->so.nodes);
        break;
    case OPT_NTASKS:
        rc = parse_count("--ntasks-per-node", v, 1, &a->so.ntasks_per_node);
        break;
    case OPT_PARTITION:
        a->so.partition = v;
        break;
    case OPT_TIME:
        a->so.time_limit = v;
        break;
    case OPT_BIND:
        a->so.bind = v;
        break;
    default:
        return OPT_NOT_MINE;
    }
    return rc < 0 ? OPT_BAD : OPT_TAKEN;
}

/* One option c with value v into *a, by group. Returns a CLI_PARSE_* code. */
static int parse_option(char **argv, int c, const char *v, void *ctx)
{
    run_args *a = ctx;
    int rc = parse_what_option(c, v, a);
    if (rc == OPT_NOT_MINE)
        rc = parse_how_option(c, v, a);
    if (rc == OPT_NOT_MINE)
        rc = parse_commands_option(c, v, a);
    if (rc == OPT_NOT_MINE)
        rc = parse_slurm_option(c, v, a);
    if (rc == OPT_NOT_MINE)
        return wl__cli_option_rest("run", argv, c, usage);
    return rc == OPT_BAD ? CLI_PARSE_ERROR : CLI_PARSE_OK;
}

/* The operands after the options (COMMAND... ::: ARG... and -a FILE), and
 * exactly one mode. Returns a CLI_PARSE_* code. */
static int check_mode(int argc, char **argv, run_args *a)
{
    if (optind < argc && (a->lib || a->task || a->inputs || a->commands || a->sample)) {
        wl__cli_error("run", "unexpected argument '%s' (see --help)", argv[optind]);
        return CLI_PARSE_ERROR;
    }
    if (optind < argc && parse_template(argc, argv, optind, a) < 0)
        return CLI_PARSE_ERROR;
    if (a->arg_file && !a->have_template) {
        a->have_template = true; /* -a FILE alone: each line is a command */
        a->template = strdup("");
    }
    int modes = (a->lib || a->task || a->inputs) + !!a->commands + !!a->sample + a->have_template;
    if (modes != 1) {
        wl__cli_error("run", "give exactly one of --lib/--task/--inputs, --commands, --sample or "
                         "COMMAND ::: ARG...");
        return CLI_PARSE_ERROR;
    }
    return CLI_PARSE_OK;
}

/* The options that apply to one mode only, and those that exclude each
 * other. Returns a CLI_PARSE_* code. */
static int check_options(const run_args *a)
{
    bool cmd_mode = a->commands || a->have_template;
    const char *bad = NULL;
    if (!cmd_mode && (a->joblog || a->resume || a->dry_run || a->o.keep_order ||
                      a->o.line_buffer || a->o.no_prefix))
        bad = "--joblog, --resume, --dry-run, --keep-order, --line-buffer and --no-prefix apply "
              "to command lists";
    else if (a->resume && !a->joblog)
        bad = "--resume needs --joblog FILE (the jobs it lists are skipped)";
    else if (a->o.keep_order && a->o.line_buffer)
        bad = "--keep-order and --line-buffer exclude each other";
    else if (a->o.fail_fast && a->o.halt != WL_HALT_NEVER)
        bad = "--fail-fast is --halt now,fail=1: give one of them";
    else if ((a->lib || a->task || a->inputs) && !(a->lib && a->task && a->inputs))
        bad = "task mode needs all of --lib, --task and --inputs";
    else if (a->jobs && !a->sample)
        bad = "--jobs only applies to --sample";
    else if (a->o.output_dir && !cmd_mode)
        bad = "--output-dir only applies to --commands";
    if (bad)
        wl__cli_error("run", "%s", bad);
    return bad ? CLI_PARSE_ERROR : CLI_PARSE_OK;
}

/* What the executor allows: --executor slurm's options and limits; none
 * but auto for commands. Returns a CLI_PARSE_* code. */
static int check_executor_options(const run_args *a)
{
    bool cmd_mode = a->commands || a->have_template;
    const char *bad = NULL;
    if ((a->so.nodes || a->so.ntasks_per_node || a->so.partition || a->so.time_limit ||
         a->so.bind) && !a->slurm)
        bad = "--nodes, --ntasks-per-node, --partition, --time and --bind need --executor slurm";
    else if (a->slurm && a->sample)
        bad = "--executor slurm runs --commands or --lib tasks, not --sample";
    else if (a->slurm && (a->o.halt || a->o.keep_order || a->o.line_buffer || a->joblog))
        bad = "--halt, --keep-order, --line-buffer and --joblog are not (yet) supported with "
              "--executor slurm";
    else if (cmd_mode && a->o.executor != WL_RUN_AUTO)
        bad = "--executor applies to tasks; commands always run as processes (use --workers to "
              "fix their number)";
    if (bad)
        wl__cli_error("run", "%s", bad);
    return bad ? CLI_PARSE_ERROR : CLI_PARSE_OK;
}

/* The whole command line into *a (a->template is then the caller's to
 * free). Returns a CLI_PARSE_* code. */
static int parse_args(int argc, char **argv, run_args *a)
{
    static const struct option longopts[] = {
        {"lib", required_argument, NULL, 'L'},     {"task", required_argument, NULL, 'T'},
        {"inputs", required_argument, NULL, 'I'},  {"commands", required_argument, NULL, 'C'},
        {"sample", required_argument, NULL, 'S'},  {"executor", required_argument, NULL, 'e'},
        {"workers", required_argument, NULL, 'w'}, {"limit", required_argument, NULL, 'l'},
        {"pilot", required_argument, NULL, 'p'},   {"jobs", required_argument, NULL, 'n'},
        {"fail-fast", no_argument, NULL, 'F'},     {"skip-bad", no_argument, NULL, 'B'},
        {"json", required_argument, NULL, 'o'},    {"output-dir", required_argument, NULL, 'd'},
        {"quiet", no_argument, NULL, 'q'},         {"help", no_argument, NULL, 'h'},
        {"nodes", required_argument, NULL, OPT_NODES},
        {"ntasks-per-node", required_argument, NULL, OPT_NTASKS},
        {"partition", required_argument, NULL, OPT_PARTITION},
        {"time", required_argument, NULL, OPT_TIME},
        {"bind", required_argument, NULL, OPT_BIND},
        {"timeout", required_argument, NULL, 't'}, {"grace", required_argument, NULL, 'G'},
        {"retries", required_argument, NULL, 'R'}, {"halt", required_argument, NULL, 'H'},
        {"joblog", required_argument, NULL, 'J'},  {"resume", no_argument, NULL, 'r'},
        {"keep-order", no_argument, NULL, 'k'},    {"line-buffer", no_argument, NULL, 'b'},
        {"dry-run", no_argument, NULL, 'D'},       {"no-prefix", no_argument, NULL, 'P'},
        {"arg-file", required_argument, NULL, 'a'},
        {NULL, 0, NULL, 0},
    };
    a->o.executor = WL_RUN_AUTO;
    /* '+': options stop at COMMAND, whose own options are its business. */
    int rc = wl__cli_parse_options(argc, argv, "+:e:w:j:l:p:n:o:d:a:kqh", longopts, parse_option, a);
    if (rc != CLI_PARSE_OK)
        return rc;
    if (check_mode(argc, argv, a) != CLI_PARSE_OK || check_options(a) != CLI_PARSE_OK ||
        check_executor_options(a) != CLI_PARSE_OK)
        return CLI_PARSE_ERROR;
    a->o.progress = a->quiet ? 0 : isatty(STDERR_FILENO) ? 2 : 1;
    a->o.handle_signals = true;
    return CLI_PARSE_OK;
}

/* The paths srun hands to the nodes must be absolute: this executable,
 * and the task library. */
static int prepare_slurm(run_args *a, char *self, size_t selflen, char *lib, size_t liblen)
{
    ssize_t n = readlink("/proc/self/exe", self, selflen - 1);
    if (n <= 0) {
        wl__cli_error("run", "cannot find wlprof's own path: %s", strerror(errno));
        return -1;
    }
    self[n] = '\0';
    a->so.self = self;
    if (a->lib) {
        if (!realpath(a->lib, lib)) {
            wl__cli_error("run", "cannot open %s: %s", a->lib, strerror(errno));
            return -1;
        }
        (void)liblen;
        a->so.lib = lib;
        a->so.task = a->task;
    }
    return 0;
}

/* Builds the sample's inputs after starting what it needs. */
static int sample_inputs(const wl_sample *s, int jobs, void **ctx, wl_inputs *in)
{
    int rc = s->setup ? s->setup(ctx) : 0;
    if (rc < 0)
        return rc;
    in->items = calloc((size_t)jobs, sizeof(*in->items));
    in->lines = calloc((size_t)jobs, sizeof(*in->lines));
    if (!in->items || !in->lines)
        return -ENOMEM;
    for (int i = 0; i < jobs; i++) {
        rc = s->input(*ctx, i, &in->items[i]);
        if (rc < 0)
            return rc;
        in->lines[i] = i + 1;
        in->n++;
    }
    return 0;
}

static int write_report(wl_atomic_file *out, const char *path, const wl_run_result *r)
{
    char err[512];
    json_t *root = wl_run_report_json(r);
    if (!root) {
        wl__cli_error("run", "cannot write %s: out of memory", path);
        wl_atomic_abort(out);
        return -1;
    }
    int rc = wl_atomic_commit_json(out, root, err, sizeof(err));
    json_decref(root);
    if (rc < 0) {
        wl__cli_error("run", "%s", err);
        return -1;
    }
    return 0;
}

/* The command list: --commands FILE, or COMMAND over its arguments. */
static int load_commands(const run_args *a, char ***cmds, int **lines, size_t *n, char *err,
                         size_t errlen)
{
    if (a->commands)
        return wl_commands_load(a->commands, cmds, lines, n, err, errlen);
    char **args = NULL;
    size_t nargs = 0;
    int rc = 0;
    if (a->arg_file) {
        rc = wl_args_load(a->arg_file, &args, lines, &nargs, err, errlen);
        if (rc < 0)
            return rc;
    } else {
        nargs = a->nargs;
        args = a->args;
        *lines = calloc(nargs, sizeof(**lines));
        if (!*lines) {
            snprintf(err, errlen, "out of memory");
            return -ENOMEM;
        }
        for (size_t i = 0; i < nargs; i++)
            (*lines)[i] = (int)i + 1;
    }
    rc = wl_commands_expand(a->template, args, nargs, cmds, err, errlen);
    if (a->arg_file) {
        for (size_t i = 0; i < nargs; i++)
            free(args[i]);
        free(args);
    }
    if (rc < 0) {
        free(*lines);
        *lines = NULL;
        return rc;
    }
    *n = nargs;
    return 0;
}

/* --joblog FILE: read for --resume, then appended to (or started anew).
 * Written as jobs finish, like parallel's, so an interrupted run leaves
 * the lines of every job that ended. */
static int open_joblog(const run_args *a, size_t n, bool *skip, FILE **out, char *err,
                       size_t errlen)
{
    if (a->resume) {
        int rc = wl_joblog_read(a->joblog, n, skip, err, errlen);
        if (rc < 0)
            return rc;
    }
    struct stat st;
    bool fresh = !a->resume || stat(a->joblog, &st) < 0 || st.st_size == 0;
    *out = fopen(a->joblog, a->resume ? "ae" : "we");
    if (!*out) {
        snprintf(err, errlen, "cannot write %s: %s", a->joblog, strerror(errno));
        return -errno;
    }
    if (fresh)
        wl_joblog_header(*out);
    return 0;
}

/* What one `wlprof run` holds while it runs; run_state_free releases it. */
typedef struct run_state {
    wl_atomic_file report;  /* --json's temporary */
    wl_run_result res;
    wl_inputs in;           /* task mode's inputs */
    wl_task_def task;
    void *lib;              /* --lib, dlopen'ed */
    const wl_sample *sample;
    void *sample_ctx;
    char **cmds;            /* command mode: the expanded command lines */
    int *lines;             /* ... and the input line of each */
    size_t ncmds;
    bool *skip;             /* --resume: the jobs the joblog lists as done */
    FILE *joblog;
    char self[4096];        /* --executor slurm: this executable, absolute */
    char libpath[4096];     /* ... and the task library */
    char err[1024];         /* why the batch could not run */
} run_state;

/* Every output and input checked together (util/atomic.c's rules), then
 * --json's temporary opened. Returns 0 or the exit code (after one line). */
static int open_report(const run_args *a, run_state *s)
{
    wl_outputs paths = {0};
    wl_outputs_add(&paths, "--json", a->json);
    wl_outputs_add(&paths, "--joblog", a->joblog);
    wl_outputs_add_input(&paths, "--commands", a->commands);
    wl_outputs_add_input(&paths, "--arg-file", a->arg_file);
    wl_outputs_add_input(&paths, "--inputs", a->inputs);
    wl_outputs_add_input(&paths, "--lib", a->lib);
    if (wl__cli_check_outputs("run", &paths) < 0)
        return WL_EXIT_USAGE;
    if (a->json && wl_atomic_open(&s->report, a->json, s->err, sizeof(s->err)) < 0) {
        wl__cli_error("run", "%s", s->err);
        return WL_EXIT_FAILURE;
    }
    return 0;
}

/* Command mode (--commands, COMMAND ::: ...): loads the list, opens the
 * joblog and runs it. Returns 0 or < 0 (s->err says why); *exit_now >= 0
 * when the command is done without a batch (--dry-run printed the list). */
static int run_command_list(run_args *a, run_state *s, int *exit_now)
{
    int rc = load_commands(a, &s->cmds, &s->lines, &s->ncmds, s->err, sizeof(s->err));
    if (rc == 0 && a->joblog) {
        s->skip = calloc(s->ncmds ? s->ncmds : 1, sizeof(*s->skip));
        rc = s->skip ? open_joblog(a, s->ncmds, s->skip, &s->joblog, s->err, sizeof(s->err))
                     : -ENOMEM;
        a->o.skip = s->skip;
        a->o.joblog = s->joblog;
    }
    if (rc == 0 && a->dry_run) {
        for (size_t i = 0; i < s->ncmds; i++)
            if (!s->skip || !s->skip[i])
                printf("%s\n", s->cmds[i]);
        *exit_now = fflush(stdout) == 0 ? WL_EXIT_OK : WL_EXIT_FAILURE;
        return 0;
    }
    if (rc == 0 && a->slurm)
        rc = wl_run_slurm_commands(s->cmds, s->lines, s->ncmds, &a->o, &a->so, &s->res, s->err,
                                   sizeof(s->err));
    else if (rc == 0)
        rc = wl_run_commands(s->cmds, s->lines, s->ncmds, &a->o, &s->res, s->err, sizeof(s->err));
    return rc;
}

/* --sample NAME: its task and inputs. Returns 0 or < 0 (s->err says why);
 * *exit_now = WL_EXIT_USAGE for an unknown name (after one line). */
static int load_sample(const run_args *a, run_state *s, int *exit_now)
{
    s->sample = wl_sample_find(a->sample);
    if (!s->sample) {
        wl__cli_error("run", "no sample named '%s' (see 'wlprof samples')", a->sample);
        *exit_now = WL_EXIT_USAGE;
        return 0;
    }
    s->task = s->sample->task;
    int rc = sample_inputs(s->sample, a->jobs ? a->jobs : s->sample->default_jobs, &s->sample_ctx,
                           &s->in);
    if (rc < 0)
        snprintf(s->err, sizeof(s->err), "cannot set up sample '%s': %s", a->sample,
                 strerror(-rc));
    return rc;
}

/* --lib LIB --task NAME --inputs FILE: the task and its inputs. Returns 0
 * or < 0 (s->err says why). */
static int load_task_lib(const run_args *a, run_state *s)
{
    int rc = wl_task_lib_open(a->lib, a->task, &s->task, &s->lib, s->err, sizeof(s->err));
    if (rc == 0)
        rc = wl_inputs_load(a->inputs, a->skip_bad, &s->in, s->err, sizeof(s->err));
    if (rc == 0 && s->in.skipped && !a->quiet)
        fprintf(stderr, "wlprof run: skipped %zu malformed input line%s\n", s->in.skipped,
                s->in.skipped == 1 ? "" : "s");
    return rc;
}

/* Task mode (--sample, --lib/--task/--inputs): runs the batch and names it
 * in the result. Returns 0 or < 0 (s->err says why); *exit_now as
 * load_sample. */
static int run_task_batch(run_args *a, run_state *s, int *exit_now)
{
    int rc = a->sample ? load_sample(a, s, exit_now) : load_task_lib(a, s);
    if (rc < 0 || *exit_now >= 0)
        return rc;
    if (a->slurm)
        rc = wl_run_slurm_tasks(&s->in, &a->o, &a->so, &s->res, s->err, sizeof(s->err));
    else
        rc = wl_run_tasks(&s->task, &s->in, &a->o, &s->res, s->err, sizeof(s->err));
    if (rc < 0)
        return rc;
    char what[1024];
    if (s->lib)
        snprintf(what, sizeof(what), "task %s from %s", a->task, a->lib);
    else
        snprintf(what, sizeof(what), "sample %s", s->sample->name);
    free(s->res.what);
    s->res.what = strdup(what);
    return 0;
}

/* After the batch: the summary on stderr, the report, the exit status (1
 * when any job did not succeed, 128+N after signal N). */
static int finish(const run_args *a, run_state *s)
{
    if (!a->quiet) {
        fflush(stdout);
        wl_run_print_summary(stderr, &s->res);
    }
    const wl_run_result *r = &s->res;
    int status = r->failed || r->cancelled || r->not_run || r->timed_out ? WL_EXIT_FAILURE
                                                                         : WL_EXIT_OK;
    if (a->json && write_report(&s->report, a->json, r) < 0)
        status = WL_EXIT_FAILURE;
    if (r->signal)
        status = 128 + r->signal; /* the shell's convention, report written */
    return status;
}

/* Releases everything s holds; returns status, or WL_EXIT_FAILURE when it
 * was 0 and the joblog cannot be written. */
static int run_state_free(const run_args *a, run_state *s, int status)
{
    wl_atomic_abort(&s->report);
    wl_run_result_free(&s->res);
    wl_inputs_free(&s->in);
    if (s->sample && s->sample->teardown && s->sample_ctx)
        s->sample->teardown(s->sample_ctx);
    if (s->lib)
        dlclose(s->lib);
    for (size_t i = 0; i < s->ncmds; i++)
        free(s->cmds[i]);
    free(s->cmds);
    free(s->lines);
    free(s->skip);
    if (s->joblog && fclose(s->joblog) != 0 && status == WL_EXIT_OK) {
        wl__cli_error("run", "cannot write %s: %s", a->joblog, strerror(errno));
        status = WL_EXIT_FAILURE;
    }
    return status;
}

int cmd_run(int argc, char **argv)
{
    run_args a = {0};
    run_state s = {0};
    int rc = parse_args(argc, argv, &a);
    if (rc != CLI_PARSE_OK) {
        free(a.template);
        return cli_parse_exit(rc);
    }
    rc = open_report(&a, &s);
    if (rc != 0) {
        free(a.template);
        return rc;
    }

    int status = WL_EXIT_FAILURE, exit_now = -1;
    if (!a.slurm || prepare_slurm(&a, s.self, sizeof(s.self), s.libpath, sizeof(s.libpath)) == 0) {
        rc = a.commands || a.have_template ? run_command_list(&a, &s, &exit_now)
                                           : run_task_batch(&a, &s, &exit_now);
        if (exit_now >= 0)
            status = exit_now;
        else if (rc < 0)
            wl__cli_error("run", "%s", s.err);
        else
            status = finish(&a, &s);
    }
    status = run_state_free(&a, &s, status);
    free(a.template);
    return status;
}
