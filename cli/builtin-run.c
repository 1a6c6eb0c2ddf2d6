/*
 * builtin-run.c -- `wlprof run`: measure a pilot, choose an executor, run
 * the whole batch (runner/, wlprof/run.h).
 *
 *   wlprof run --lib LIB --task NAME --inputs FILE   task library mode
 *   wlprof run --sample NAME                         a built-in sample task
 *   wlprof run --commands FILE|-                     shell command list
 *
 * Progress and the summary go to stderr (stdout carries the jobs' own
 * output in command mode); the JSON report is written atomically, its
 * temporary created before any work so a bad path fails at once.
 *
 * Exit status: 0 when every job succeeded, 1 when any failed or the batch
 * could not run (missing library, bad input), 2 on bad usage.
 */
#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "builtin.h"
#include "wlprof/report.h"
#include "wlprof/run.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: wlprof run --lib LIB --task NAME --inputs FILE [OPTIONS]\n"
            "       wlprof run --sample NAME [--jobs N] [OPTIONS]\n"
            "       wlprof run --commands FILE|- [OPTIONS]\n"
            "\n"
            "Runs the first jobs one at a time while measuring them (the pilot),\n"
            "classifies the pilot as waiting (I/O) or computing (CPU), and runs the rest\n"
            "under the executor that suits it:\n"
            "  tasks:    I/O-bound with an async form -> coroutine loop; I/O-bound,\n"
            "            blocking only -> thread pool; CPU-bound -> process pool\n"
            "  commands: waiting-bound -> many at once (--limit); CPU-bound -> one per core\n"
            "\n"
            "A task library exports  int NAME(const wl_bytes *in, wl_bytes *out)  and/or\n"
            "NAME_async (a coroutine on wlprof's loop); see include/wlprof/run.h. Each line\n"
            "of --inputs (JSONL) is one job's input.\n"
            "\n"
            "Options:\n"
            "  -e, --executor E   auto (default), coroutine, thread or process\n"
            "  -w, --workers N    jobs in flight (default: from the pilot's verdict)\n"
            "  -l, --limit N      most jobs in flight (default 64)\n"
            "  -p, --pilot N      pilot jobs (default 3 for tasks, 1 for commands; 0: none)\n"
            "  -n, --jobs N       --sample: how many jobs (default per sample)\n"
            "      --fail-fast    the first failing job cancels the others\n"
            "      --skip-bad     skip malformed input lines instead of stopping\n"
            "  -o, --json FILE    write the run report (schema " WL_RUN_SCHEMA ")\n"
            "  -d, --output-dir DIR  commands: each job's output in DIR/N.out, DIR/N.err\n"
            "                     (default: lines prefixed \"[N] \" on stdout/stderr)\n"
            "  -q, --quiet        no progress, no summary\n"
            "  -h, --help         show this help\n"
            "\n"
            "Exit status: 0 when every job succeeded, 1 when any failed or the batch\n"
            "could not run, 2 on bad usage.\n");
}

static int parse_count(const char *opt, const char *s, int min, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > 1000000) {
        cli_error("run", "%s must be a whole number of at least %d, not '%s'", opt, min, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

typedef struct run_args {
    const char *lib;
    const char *task;
    const char *inputs;
    const char *commands;
    const char *sample;
    const char *json;
    int jobs;
    bool skip_bad;
    bool quiet;
    wl_run_opts o;
} run_args;

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
        {NULL, 0, NULL, 0},
    };
    int c;
    int pilot;
    optind = 1;
    opterr = 0;
    a->o.executor = WL_RUN_AUTO;
    while ((c = getopt_long(argc, argv, ":e:w:l:p:n:o:d:qh", longopts, NULL)) != -1) {
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
            else {
                cli_error("run", "--executor must be auto, coroutine, thread or process, not '%s'",
                          optarg);
                return -1;
            }
            break;
        case 'w':
            if (parse_count("--workers", optarg, 1, &a->o.workers) < 0)
                return -1;
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
        case 'h':
            usage(stdout);
            return 1;
        default:
            cli_bad_option("run", argv, c);
            return -1;
        }
    }
    if (optind < argc) {
        cli_error("run", "unexpected argument '%s' (see --help)", argv[optind]);
        return -1;
    }
    int modes = (a->lib || a->task || a->inputs) + !!a->commands + !!a->sample;
    if (modes != 1) {
        cli_error("run", "give exactly one of --lib/--task/--inputs, --commands or --sample");
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
    if (a->o.output_dir && !a->commands) {
        cli_error("run", "--output-dir only applies to --commands");
        return -1;
    }
    if (a->commands && a->o.executor != WL_RUN_AUTO) {
        cli_error("run", "--executor applies to tasks; commands always run as processes "
                         "(use --workers to fix their number)");
        return -1;
    }
    a->o.progress = a->quiet ? 0 : isatty(STDERR_FILENO) ? 2 : 1;
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
    int status = WL_EXIT_FAILURE;
    int rc;

    rc = parse_args(argc, argv, &a);
    if (rc != 0)
        return rc > 0 ? WL_EXIT_OK : WL_EXIT_USAGE;
    /* Outputs and inputs checked together (reports/atomic.c's rules). */
    wl_outputs paths = {0};
    wl_outputs_add(&paths, "--json", a.json);
    wl_outputs_add_input(&paths, "--commands", a.commands);
    wl_outputs_add_input(&paths, "--inputs", a.inputs);
    wl_outputs_add_input(&paths, "--lib", a.lib);
    if (wl_outputs_check(&paths, err, sizeof(err)) < 0) {
        cli_error("run", "%s", err);
        return WL_EXIT_USAGE;
    }
    if (a.json && wl_atomic_open(&report, a.json, err, sizeof(err)) < 0) {
        cli_error("run", "%s", err);
        return WL_EXIT_FAILURE;
    }

    if (a.commands) {
        rc = wl_commands_load(a.commands, &cmds, &lines, &ncmds, err, sizeof(err));
        if (rc == 0)
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
        if (rc == 0)
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
    status = res.failed || res.cancelled || res.not_run ? WL_EXIT_FAILURE : WL_EXIT_OK;
    if (a.json && write_report(&report, a.json, &res) < 0)
        status = WL_EXIT_FAILURE;

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
    return status;
}
