/*
 * wlprof/run.h -- measure, decide, run: the engine behind `wlprof run`.
 *
 * A batch of independent jobs is handed over; the runner runs a small pilot
 * while measuring it (the first job alone), classifies the pilot
 * (wlprof/classify.h), and runs the rest under the executor the verdict
 * calls for, on one coroutine loop (wlprof/sched.h) with the pools of
 * wlprof/pools.h:
 *
 *   jobs of a task library                   jobs of a command list
 *   pilot: in sacrificial worker processes,  pilot: wl_profile_command on the
 *   wait4 rusage, /proc wait sampling of     first job(s), in a forked
 *   their threads (a crash fails one job)    profiler process
 *          \                                     /
 *           wl_classify -> executor + workers (or the user's choice)
 *          /                                     \
 *   I/O-bound, async form  -> coroutine loop    CPU-bound -> about one per core
 *   I/O-bound, blocking    -> thread pool       waiting   -> many at once (limit)
 *   CPU-bound              -> process pool      mixed     -> by the CPU fraction
 *
 * ---- The task-library ABI ---------------------------------------------
 *
 * A task library is a shared object exporting, for a task NAME:
 *
 *   int NAME(const wl_bytes *in, wl_bytes *out);        blocking form
 *   int NAME_async(const wl_bytes *in, wl_bytes *out);  async form (optional)
 *
 * `in` is one job's input (a JSONL line, compact JSON text, not
 * NUL-terminated; borrowed). The function appends its result to `out`
 * (empty on entry, owned and freed by the runner; append with
 * wl_bytes_append) and returns 0, or a negative errno on failure, with an
 * optional one-line error message in `out`. The blocking form may run on
 * any thread or in a worker process, concurrently with itself: it must not
 * depend on shared mutable state. The async form runs as a coroutine task on
 * the runner's loop and may await anything in wlprof/sched.h (wl_sleep,
 * wl_tcp_connect, wl_read, wl_fs_write, ...) but must never block the
 * thread. Those wl_* symbols are resolved against the wlprof executable
 * when the library is loaded: link the library with nothing but libc (and
 * what it uses itself).
 *
 * Either form alone is enough; a library with only NAME_async runs its
 * pilot on a loop too.
 *
 * Threading: every function here runs on the calling thread and returns
 * when the batch is done; it creates (and closes) its own loop and pools.
 */
#ifndef WLPROF_RUN_H
#define WLPROF_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <jansson.h>

#include "wlprof/common.h"
#include "wlprof/classify.h"
#include "wlprof/bytes.h"
#include "wlprof/profile.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WL_RUN_SCHEMA "wlprof.run/2"

/* A job function: the blocking or async form of a task (see above). */
typedef int (*wl_job_fn)(const wl_bytes *in, wl_bytes *out);

/* One task: a name and its forms (at least one non-NULL). Borrowed. The
 * definition of what each job runs -- not a wl_task, which is a running
 * coroutine of wlprof/sched.h (the _def says so). */
typedef struct wl_task_def {
    const char *name;
    wl_job_fn blocking; /* NAME */
    wl_job_fn async;    /* NAME_async */
} wl_task_def;

/* Inputs: one byte string per job and the input line it came from. */
typedef struct wl_inputs {
    wl_bytes *items; /* owned */
    int *lines;      /* 1-based line numbers, owned */
    size_t n;
    size_t skipped;  /* malformed lines skipped (skip_bad) */
} wl_inputs;

/* Executor choices: auto, or one of wl_executor's first three. */
#define WL_RUN_AUTO (-1)

typedef enum wl_run_mode { WL_RUN_TASKS = 0, WL_RUN_COMMANDS } wl_run_mode;

typedef struct wl_run_opts {
    int executor;           /* WL_RUN_AUTO or WL_EXEC_COROUTINE/THREAD_POOL/PROCESS_POOL */
    int workers;            /* > 0: exactly this many in flight; 0: from the verdict */
    int limit;              /* most jobs in flight; 0 = 64 */
    int pilot;              /* pilot jobs; 0 = 3 for tasks, 1 for commands; -1 = none */
    bool fail_fast;         /* the first failure cancels the rest (task-group style) */
    int progress;           /* 0 none, 1 plain periodic lines, 2 a TTY status line */
    FILE *progress_out;     /* where progress goes; NULL = stderr */
    double progress_every_s;/* plain-line period; 0 = 2 s */
    const char *output_dir; /* commands: per-job files DIR/N.out, DIR/N.err */
    FILE *out;              /* commands: prefixed stdout lines; NULL = stdout */
    FILE *err;              /* commands: prefixed stderr lines; NULL = stderr */
    /* ---- bounds and signals (wlprof.run/2) ---- */
    double timeout_s;       /* > 0: a job running longer is stopped (TERM, then KILL
                               after grace_s) and recorded timed_out */
    double grace_s;         /* TERM -> KILL delay for timeouts, --halt now and signals;
                               0 = 3 s */
    int retries;            /* a failed or timed-out job runs again up to N times */
    int halt;               /* WL_HALT_NEVER, _SOON (start no new job), _NOW (stop
                               the running ones too) once halt_fail jobs failed */
    int halt_fail;          /* failures that trigger halt (>= 1); fail_fast = now,1 */
    bool handle_signals;    /* SIGINT/SIGTERM/SIGHUP stop the run: forwarded to every
                               job, KILL after grace_s, result->signal set */
    /* ---- command lists (GNU parallel's options) ---- */
    bool line_buffer;       /* stream lines as they come (default: grouped per job) */
    bool keep_order;        /* print each job's output in input order */
    bool no_prefix;         /* no "[N] " before each line */
    FILE *joblog;           /* parallel's --joblog lines, one per finished job */
    const bool *skip;       /* n flags: job done in an earlier run (--resume) */
} wl_run_opts;

enum { WL_HALT_NEVER = 0, WL_HALT_SOON, WL_HALT_NOW };

/* What happened to one job. */
typedef enum wl_job_state {
    WL_JOB_NOT_RUN = 0, /* never started (fail-fast stopped the batch) */
    WL_JOB_OK,
    WL_JOB_FAILED,
    WL_JOB_CANCELLED,   /* started, then cancelled by --halt now or a signal */
    WL_JOB_TIMED_OUT,   /* stopped after --timeout */
    WL_JOB_SKIPPED,     /* done in an earlier run (--resume from a joblog) */
} wl_job_state;

/* One attempt of a job (several with --retries). */
typedef struct wl_job_attempt {
    wl_job_state state;
    int status;
    double start_s;
    double wall_s;
    char *error;       /* owned, or NULL */
} wl_job_attempt;

typedef struct wl_job_result {
    int line;          /* input line (tasks) or command line number */
    bool pilot;        /* ran in the pilot */
    wl_job_state state;
    int status;        /* tasks: the function's return (0 / -errno); commands:
                          the shell-style exit status (128+signal if killed) */
    double start_s;    /* seconds since the run started */
    double wall_s;
    char *error;       /* one-line message when failed (owned), else NULL */
    size_t out_bytes;  /* size of the task's result */
    char *node;        /* slurm: the node it ran on last (owned), else NULL */
    wl_job_attempt *attempts; /* every attempt, in order (owned); the last is the job's */
    size_t nattempts;
    char *command;     /* commands: the command line run (owned), else NULL */
} wl_job_result;

/* The outcome of a run; everything owned (wl_run_result_free). */
typedef struct wl_run_result {
    wl_run_mode mode;
    char *what;              /* "task NAME from LIB", "commands from FILE" ... */
    size_t njobs;
    wl_job_result *jobs;     /* njobs entries, in input order */
    size_t pilot_jobs;
    double pilot_wall_s;     /* the pilot's wall time */
    double pilot_job_s;      /* its jobs' wall seconds, summed (they may overlap
                                after the first); 0 = pilot_wall_s */
    double main_wall_s;      /* the rest, under the chosen executor */
    double total_wall_s;
    size_t ok, failed, cancelled, not_run, timed_out, skipped;
    int signal;              /* the signal that stopped the run, else 0 */
    bool halted;             /* --halt (or --fail-fast) stopped the run */

    bool have_profile;
    wl_profile profile;      /* the pilot's profile (tasks: in-process) */
    bool have_verdict;
    wl_verdict verdict;

    int executor;            /* wl_executor used for the main phase (commands:
                                the process count follows the verdict) */
    int workers;             /* jobs in flight in the main phase */
    bool auto_chosen;        /* the verdict chose (false: the user did) */
    char reason[512];        /* why this executor and size */
    bool has_async;          /* tasks: an async form exists */
    bool has_blocking;       /* tasks: a blocking form exists */
    size_t max_in_flight;    /* most jobs observed running at once */
    char *cluster;           /* slurm: "job 12 on n[1-3]" (owned), else NULL */
} wl_run_result;

/* Reads JSONL: one JSON value a line, blank lines ignored. Each job's input
 * is the line re-serialised compactly. A NUL byte is an error naming
 * FILE:LINE (never a silently cut line). A malformed line is an error
 * (-EINVAL, err names the file and line) unless skip_bad, then it is
 * counted in out->skipped. No job at all: -ENODATA. Cannot read: -errno.
 * path "-" is stdin. *out owned by the caller: wl_inputs_free. */
WL_API int wl_inputs_load(const char *path, bool skip_bad, wl_inputs *out, char *err,
                          size_t errlen);
WL_API void wl_inputs_free(wl_inputs *in);

/* Reads one shell command a line ("-" = stdin); blank lines and lines
 * starting with '#' are skipped; a NUL byte is an error naming FILE:LINE. *cmds / *lines are owned by the caller
 * (free each string, then both arrays). Returns 0, -ENODATA when empty, or
 * -errno (err says why). */
WL_API int wl_commands_load(const char *path, char ***cmds, int **lines, size_t *n, char *err,
                            size_t errlen);

/* ---- GNU parallel's command lines (runner/parallel.c) ---- */

/* Reads an argument file: every line one argument (the newline dropped;
 * empty lines are empty arguments). A NUL byte is an error naming
 * FILE:LINE. Same ownership and returns as wl_commands_load. */
WL_API int wl_args_load(const char *path, char ***args, int **lines, size_t *n, char *err,
                        size_t errlen);

/* One command per argument from a template: {} becomes the argument,
 * quoted for the shell when it needs it, {#} the job's sequence number
 * (1-based); a template with neither gets " {}" appended. An empty
 * template runs each argument as a command. *cmds: n owned strings. */
WL_API int wl_commands_expand(const char *tmpl, char *const *args, size_t n, char ***cmds,
                              char *err, size_t errlen);

/* Reads a joblog written by --joblog (or by GNU parallel) and sets
 * skip[seq-1] for every job listed in it (n jobs in this run). A missing
 * file skips nothing. Returns how many were marked, or -errno. */
WL_API int wl_joblog_read(const char *path, size_t n, bool *skip, char *err, size_t errlen);

/* Writes the joblog's header line (parallel's columns). */
WL_API void wl_joblog_header(FILE *f);

/* Opens a task library and looks NAME and NAME_async up. *handle receives
 * the dlopen handle (dlclose it after the run). Returns 0, -ENOENT (no such
 * file or no such symbol), -ENOEXEC (not a loadable library); err says
 * which, with dlerror's words. */
WL_API int wl_task_lib_open(const char *path, const char *name, wl_task_def *out,
                            void **handle, char *err, size_t errlen);

/* Runs task over inputs (borrowed). Returns 0 when the batch ran (see
 * out->failed for failed jobs), or a negative errno when it could not run
 * at all (err says why): -EINVAL bad options, -ENOTSUP executor without
 * the needed form. *out owned by the caller afterwards (wl_run_result_free),
 * also on error. */
WL_API int wl_run_tasks(const wl_task_def *task, const wl_inputs *inputs,
                        const wl_run_opts *opts, wl_run_result *out, char *err, size_t errlen);

/* Runs shell commands (each through /bin/sh -c), like xargs -P with the
 * concurrency chosen from a profile of the pilot. Output lines are prefixed
 * "[N] " (N = the command's line number) and never interleaved mid-line, or
 * go to opts->output_dir/N.out and N.err. Same return convention. */
WL_API int wl_run_commands(char *const *cmds, const int *lines, size_t n,
                           const wl_run_opts *opts, wl_run_result *out, char *err,
                           size_t errlen);

/* The run report (schema wlprof.run/2, docs/run-schema.md). New reference,
 * NULL when out of memory. */
WL_API json_t *wl_run_report_json(const wl_run_result *r);

/* Prints the summary: executor and why, totals, speed-up, failures. */
WL_API void wl_run_print_summary(FILE *f, const wl_run_result *r);

/* Pilot throughput over the main phase's: the speed-up of the chosen
 * executor over running the main phase at the pilot's sequential pace. 0
 * when there was no pilot or no main phase. */
WL_API double wl_run_speedup(const wl_run_result *r);

WL_API void wl_run_result_free(wl_run_result *r);

/* ---- Slurm: the batch over a cluster (runner/slurm.c) -------------------
 *
 * The coordinator (this process) listens on TCP, starts one worker per node
 * of a Slurm allocation with a single `srun` step (`wlprof worker`, see
 * wl_run_worker), and feeds them the jobs over the process pool's framing
 * (wl_ppool_init_remote). Inside an allocation (SLURM_JOB_ID set) it uses
 * that one; outside it asks for one with `salloc --no-shell` and releases
 * it at the end. The pilot's first job runs on a worker, measured there;
 * its verdict sizes the batch: CPU-bound, one job per allocated core;
 * waiting, enough jobs in flight to keep the cores busy (cores divided by
 * the pilot's CPU share, at most --limit). A lost worker or node fails
 * only the job it was running (retried up to opts->retries times). */
typedef struct wl_slurm_opts {
    int nodes;               /* --nodes; 0: the allocation's, or 1 for a new one */
    int ntasks_per_node;     /* worker processes per node; 0 = 1 */
    const char *partition;   /* new allocation only; NULL = default */
    const char *time_limit;  /* new allocation only (salloc --time); NULL = default */
    const char *bind;        /* address to listen on and give the workers;
                                NULL = this host's address */
    const char *self;        /* the wlprof executable srun starts on the nodes */
    const char *lib;         /* tasks: the library path the workers load */
    const char *task;        /* tasks: its name */
    /* --retries, --timeout and --grace come from wl_run_opts */
} wl_slurm_opts;

/* Runs commands / task jobs on the cluster. Same return convention as
 * wl_run_commands; r->signal is set when a signal ended the batch. */
WL_API int wl_run_slurm_commands(char *const *cmds, const int *lines, size_t n,
                                 const wl_run_opts *opts, const wl_slurm_opts *so,
                                 wl_run_result *out, char *err, size_t errlen);
WL_API int wl_run_slurm_tasks(const wl_inputs *inputs, const wl_run_opts *opts,
                              const wl_slurm_opts *so, wl_run_result *out, char *err,
                              size_t errlen);

/* The worker side (`wlprof worker`): connects to the coordinator and runs
 * its jobs until it closes. */
typedef struct wl_run_worker_opts {
    const char *host;  /* the coordinator */
    int port;
    const char *token; /* from the environment (WLPROF_TOKEN), never argv */
    const char *node;  /* this node's name (SLURMD_NODENAME) */
    unsigned slots;    /* jobs at once */
    const char *lib;   /* task mode: the library and task; NULL = commands only */
    const char *task;
} wl_run_worker_opts;

WL_API int wl_run_worker(const wl_run_worker_opts *o, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
