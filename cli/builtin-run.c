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
            "  tasks:    I/O-bound with an async form -> coroutine loop; I/O-bound,\n"
            "            blocking only -> thread pool; CPU-bound -> process pool\n"
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
    return cli_parse_count("run", opt, s, min, WL_CLI_COUNT_UNBOUNDED, out);
}

static int parse_seconds(const char *opt, const char *s, double *out)
{
    if (cli_parse_positive(s, 1e7, out) < 0) {
        cli_error("run", "%s must be a positive number of seconds, not '%s'", opt, s);
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
    cli_error("run", "--halt must be never, now,fail=N or soon,fail=N (N >= 1), not '%s'", s);
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
            cli_error("run", "::: needs at least one argument");
            return -1;
        }
    } else if (i < argc) {
        if (i + 2 != argc) {
            cli_error("run", ":::: takes one FILE");
            return -1;
        }
        if (a->arg_file) {
            cli_error("run", "give one source of arguments (-a FILE, ::: or :::: FILE)");
            return -1;
        }
        a->arg_file = argv[i + 1];
        i += 2;
    }
    if (i < argc) {
        cli_error("run", "give one source of arguments (-a FILE, ::: or :::: FILE)");
        return -1;
    }
    if (a->args && a->arg_file) {
        cli_error("run", "give one source of arguments (-a FILE, ::: or :::: FILE)");
        return -1;
    }
    if (!a->args && !a->arg_file) {
        cli_error("run", "COMMAND needs arguments: ::: ARG..., :::: FILE or -a FILE");
        return -1;
    }
    return 0;
}

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
        {"nodes", required_argument, NULL, 1001},  {"ntasks-per-node", required_argument, NULL, 1002},
        {"partition", required_argument, NULL, 1003}, {"time", required_argument, NULL, 1004},
        {"bind", required_argument, NULL, 1005},
        {"timeout", required_argument, NULL, 't'}, {"grace", required_argument, NULL, 'G'},
        {"retries", required_argument, NULL, 'R'}, {"halt", required_argument, NULL, 'H'},
        {"joblog", required_argument, NULL, 'J'},  {"resume", no_argument, NULL, 'r'},
        {"keep-order", no_argument, NULL, 'k'},    {"line-buffer", no_argument, NULL, 'b'},
        {"dry-run", no_argument, NULL, 'D'},       {"no-prefix", no_argument, NULL, 'P'},
        {"arg-file", required_argument, NULL, 'a'},
        {NULL, 0, NULL, 0},
    };
    double secs;
    int count;
    int c;
    int pilot;
    optind = 1;
    opterr = 0;
    a->o.executor = WL_RUN_AUTO;
    /* '+': options stop at COMMAND, whose own options are its business. */
    while ((c = getopt_long(argc, argv, "+:e:w:j:l:p:n:o:d:a:kqh", longopts, NULL)) != -1) {
        switch (c) {
        case 'L':
            a->lib = optarg;
            break;
        case 'T':
            a->task = optarg;
            break;
        case 'I':
            a->inputs = optarg;
            break;
        case 'C':
            a->commands = optarg;
            break;
        case 'S':
            a->sample = optarg;
            break;
        case 'e':
            if (strcmp(optarg, "auto") == 0)
                a->o.executor = WL_RUN_AUTO;
            else if (strcmp(optarg, "coroutine") == 0)
                a->o.executor = WL_EXEC_COROUTINE;
            else if (strcmp(optarg, "thread") == 0 || strcmp(optarg, "thread_pool") == 0)
                a->o.executor = WL_EXEC_THREAD_POOL;
            else if (strcmp(optarg, "process") == 0 || strcmp(optarg, "process_pool") == 0)
                a->o.executor = WL_EXEC_PROCESS_POOL;
            else if (strcmp(optarg, "slurm") == 0)
                a->slurm = true;
            else {
                cli_error("run",
                          "--executor must be auto, coroutine, thread, process or slurm, not '%s'",
                          optarg);
                return -1;
            }
            break;
        case 'w':
        case 'j':
            if (parse_count(c == 'j' ? "-j" : "--workers", optarg, 1, &a->o.workers) < 0)
                return -1;
            break;
        case 't':
            if (parse_seconds("--timeout", optarg, &a->o.timeout_s) < 0)
                return -1;
            break;
        case 'G':
            if (parse_seconds("--grace", optarg, &secs) < 0)
                return -1;
            a->o.grace_s = secs;
            break;
        case 'R':
            if (parse_count("--retries", optarg, 0, &count) < 0)
                return -1;
            a->o.retries = count;
            break;
        case 'H':
            if (parse_halt(optarg, &a->o) < 0)
                return -1;
            break;
        case 'J':
            a->joblog = optarg;
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
        case 'a':
            a->arg_file = optarg;
            break;
        case 'l':
            if (parse_count("--limit", optarg, 1, &a->o.limit) < 0)
                return -1;
            break;
        case 'p':
            if (parse_count("--pilot", optarg, 0, &pilot) < 0)
                return -1;
            a->o.pilot = pilot == 0 ? -1 : pilot;
            break;
        case 'n':
            if (parse_count("--jobs", optarg, 1, &a->jobs) < 0)
                return -1;
            break;
        case 'F':
            a->o.fail_fast = true;
            break;
        case 'B':
            a->skip_bad = true;
            break;
        case 'o':
            a->json = optarg;
            break;
        case 'd':
            a->o.output_dir = optarg;
            break;
        case 'q':
            a->quiet = true;
            break;
        case 1001:
            if (parse_count("--nodes", optarg, 1, &a->so.nodes) < 0)
                return -1;
            break;
        case 1002:
            if (parse_count("--ntasks-per-node", optarg, 1, &a->so.ntasks_per_node) < 0)
                return -1;
            break;
        case 1003:
            a->so.partition = optarg;
            break;
        case 1004:
            a->so.time_limit = optarg;
            break;
        case 1005:
            a->so.bind = optarg;
            break;
        case 'h':
            usage(stdout);
            return 1;
        default:
            cli_bad_option("run", argv, c);
            return -1;
        }
    }
    if (optind < argc && (a->lib || a->task || a->inputs || a->commands || a->sample)) {
        cli_error("run", "unexpected argument '%s' (see --help)", argv[optind]);
        return -1;
    }
    if (optind < argc && parse_template(argc, argv, optind, a) < 0)
        return -1;
    if (a->arg_file && !a->have_template) {
        a->have_template = true; /* -a FILE alone: each line is a command */
        a->template = strdup("");
    }
    int modes = (a->lib || a->task || a->inputs) + !!a->commands + !!a->sample + a->have_template;
    if (modes != 1) {
        cli_error("run", "give exactly one of --lib/--task/--inputs, --commands, --sample or "
                         "COMMAND ::: ARG...");
        return -1;
    }
    bool cmd_mode = a->commands || a->have_template;
    if (!cmd_mode && (a->joblog || a->resume || a->dry_run || a->o.keep_order ||
                      a->o.line_buffer || a->o.no_prefix)) {
        cli_error("run", "--joblog, --resume, --dry-run, --keep-order, --line-buffer and "
                         "--no-prefix apply to command lists");
        return -1;
    }
    if (a->resume && !a->joblog) {
        cli_error("run", "--resume needs --joblog FILE (the jobs it lists are skipped)");
        return -1;
    }
    if (a->o.keep_order && a->o.line_buffer) {
        cli_error("run", "--keep-order and --line-buffer exclude each other");
        return -1;
    }
    if (a->o.fail_fast && a->o.halt != WL_HALT_NEVER) {
        cli_error("run", "--fail-fast is --halt now,fail=1: give one of them");
        return -1;
    }
    if ((a->lib || a->task || a->inputs) && !(a->lib && a->task && a->inputs)) {
        cli_error("run", "task mode needs all of --lib, --task and --inputs");
        return -1;
    }
    if (a->jobs && !a->sample) {
        cli_error("run", "--jobs only applies to --sample");
        return -1;
    }
    if (a->o.output_dir && !cmd_mode) {
        cli_error("run", "--output-dir only applies to --commands");
        return -1;
    }
    if ((a->so.nodes || a->so.ntasks_per_node || a->so.partition || a->so.time_limit ||
         a->so.bind) && !a->slurm) {
        cli_error("run", "--nodes, --ntasks-per-node, --partition, --time and --bind "
                         "need --executor slurm");
        return -1;
    }
    if (a->slurm && a->sample) {
        cli_error("run", "--executor slurm runs --commands or --lib tasks, not --sample");
        return -1;
    }
    if (a->slurm && (a->o.halt || a->o.keep_order || a->o.line_buffer || a->joblog)) {
        cli_error("run", "--halt, --keep-order, --line-buffer and --joblog are not (yet) "
                         "supported with --executor slurm");
        return -1;
    }
    if (cmd_mode && a->o.executor != WL_RUN_AUTO) {
        cli_error("run", "--executor applies to tasks; commands always run as processes "
                         "(use --workers to fix their number)");
        return -1;
    }
    a->o.progress = a->quiet ? 0 : isatty(STDERR_FILENO) ? 2 : 1;
    a->o.handle_signals = true;
    return 0;
}

/* The paths srun hands to the nodes must be absolute: this executable,
 * and the task library. */
static int prepare_slurm(run_args *a, char *self, size_t selflen, char *lib, size_t liblen)
{
    ssize_t n = readlink("/proc/self/exe", self, selflen - 1);
    if (n <= 0) {
        cli_error("run", "cannot find wlprof's own path: %s", strerror(errno));
        return -1;
    }
    self[n] = '\0';
    a->so.self = self;
    if (a->lib) {
        if (!realpath(a->lib, lib)) {
            cli_error("run", "cannot open %s: %s", a->lib, strerror(errno));
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
        cli_error("run", "cannot write %s: out of memory", path);
        wl_atomic_abort(out);
        return -1;
    }
    int rc = wl_atomic_commit_json(out, root, err, sizeof(err));
    json_decref(root);
    if (rc < 0) {
        cli_error("run", "%s", err);
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

static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (!a || !b || strcmp(a, "-") == 0 || strcmp(b, "-") == 0)
        return false;
    if (strcmp(a, b) == 0)
        return true;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* --joblog FILE: read for --resume, then appended to (or started anew).
 * Written as jobs finish, like parallel's, so an interrupted run leaves
 * the lines of every job that ended. */
static int open_joblog(const run_args *a, size_t n, bool *skip, FILE **out, char *err,
                       size_t errlen)
{
    if (same_file(a->joblog, a->commands) || same_file(a->joblog, a->arg_file) ||
        same_file(a->joblog, a->json)) {
        snprintf(err, errlen, "--joblog %s is also an input or the report", a->joblog);
        return -EINVAL;
    }
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

int cmd_run(int argc, char **argv)
{
    run_args a = {0};
    char err[1024] = "";
    wl_atomic_file report = {0};
    wl_run_result res = {0};
    wl_inputs in = {0};
    wl_task_def task = {0};
    void *lib = NULL;
    void *sample_ctx = NULL;
    const wl_sample *sample = NULL;
    char **cmds = NULL;
    int *lines = NULL;
    size_t ncmds = 0;
    bool *skip = NULL;
    FILE *joblog = NULL;
    int status = WL_EXIT_FAILURE;
    char self[4096];
    char libpath[4096];
    int rc;

    rc = parse_args(argc, argv, &a);
    if (rc != 0) {
        free(a.template);
        return rc > 0 ? WL_EXIT_OK : WL_EXIT_USAGE;
    }
    /* Outputs and inputs checked together (reports/atomic.c's rules). */
    wl_outputs paths = {0};
    wl_outputs_add(&paths, "--json", a.json);
    wl_outputs_add(&paths, "--joblog", a.joblog);
    wl_outputs_add_input(&paths, "--commands", a.commands);
    wl_outputs_add_input(&paths, "--inputs", a.inputs);
    wl_outputs_add_input(&paths, "--lib", a.lib);
    if (wl_outputs_check(&paths, err, sizeof(err)) < 0) {
        cli_error("run", "%s", err);
        free(a.template);
        return WL_EXIT_USAGE;
    }
    if (a.json && wl_atomic_open(&report, a.json, err, sizeof(err)) < 0) {
        cli_error("run", "%s", err);
        free(a.template);
        return WL_EXIT_FAILURE;
    }

    if (a.slurm && prepare_slurm(&a, self, sizeof(self), libpath, sizeof(libpath)) < 0)
        goto cleanup;
    if (a.commands || a.have_template) {
        rc = load_commands(&a, &cmds, &lines, &ncmds, err, sizeof(err));
        if (rc == 0 && a.joblog) {
            skip = calloc(ncmds ? ncmds : 1, sizeof(*skip));
            rc = skip ? open_joblog(&a, ncmds, skip, &joblog, err, sizeof(err)) : -ENOMEM;
            a.o.skip = skip;
            a.o.joblog = joblog;
        }
        if (rc == 0 && a.dry_run) {
            for (size_t i = 0; i < ncmds; i++)
                if (!skip || !skip[i])
                    printf("%s\n", cmds[i]);
            status = fflush(stdout) == 0 ? WL_EXIT_OK : WL_EXIT_FAILURE;
            goto cleanup;
        }
        if (rc == 0 && a.slurm)
            rc = wl_run_slurm_commands(cmds, lines, ncmds, &a.o, &a.so, &res, err, sizeof(err));
        else if (rc == 0)
            rc = wl_run_commands(cmds, lines, ncmds, &a.o, &res, err, sizeof(err));
    } else {
        if (a.sample) {
            sample = wl_sample_find(a.sample);
            if (!sample) {
                cli_error("run", "no sample named '%s' (see 'wlprof samples')", a.sample);
                status = WL_EXIT_USAGE;
                goto cleanup;
            }
            task = sample->task;
            rc = sample_inputs(sample, a.jobs ? a.jobs : sample->default_jobs, &sample_ctx, &in);
            if (rc < 0)
                snprintf(err, sizeof(err), "cannot set up sample '%s': %s", a.sample,
                         strerror(-rc));
        } else {
            rc = wl_task_lib_open(a.lib, a.task, &task, &lib, err, sizeof(err));
            if (rc == 0)
                rc = wl_inputs_load(a.inputs, a.skip_bad, &in, err, sizeof(err));
            if (rc == 0 && in.skipped && !a.quiet)
                fprintf(stderr, "wlprof run: skipped %zu malformed input line%s\n", in.skipped,
                        in.skipped == 1 ? "" : "s");
        }
        if (rc == 0 && a.slurm)
            rc = wl_run_slurm_tasks(&in, &a.o, &a.so, &res, err, sizeof(err));
        else if (rc == 0)
            rc = wl_run_tasks(&task, &in, &a.o, &res, err, sizeof(err));
        if (rc == 0 && lib) {
            free(res.what);
            char what[1024];
            snprintf(what, sizeof(what), "task %s from %s", a.task, a.lib);
            res.what = strdup(what);
        } else if (rc == 0 && sample) {
            free(res.what);
            char what[256];
            snprintf(what, sizeof(what), "sample %s", sample->name);
            res.what = strdup(what);
        }
    }
    if (rc < 0) {
        cli_error("run", "%s", err);
        goto cleanup;
    }
    if (!a.quiet) {
        fflush(stdout);
        wl_run_print_summary(stderr, &res);
    }
    status = res.failed || res.cancelled || res.not_run || res.timed_out ? WL_EXIT_FAILURE
                                                                          : WL_EXIT_OK;
    if (a.json && write_report(&report, a.json, &res) < 0)
        status = WL_EXIT_FAILURE;
    if (res.signal)
        status = 128 + res.signal; /* the shell's convention, report written */

cleanup:
    wl_atomic_abort(&report);
    wl_run_result_free(&res);
    wl_inputs_free(&in);
    if (sample && sample->teardown && sample_ctx)
        sample->teardown(sample_ctx);
    if (lib)
        dlclose(lib);
    for (size_t i = 0; i < ncmds; i++)
        free(cmds[i]);
    free(cmds);
    free(lines);
    free(skip);
    if (joblog && fclose(joblog) != 0 && status == WL_EXIT_OK) {
        cli_error("run", "cannot write %s: %s", a.joblog, strerror(errno));
        status = WL_EXIT_FAILURE;
    }
    free(a.template);
    return status;
}
