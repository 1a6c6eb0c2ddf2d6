/*
 * internal.h -- private interfaces between the runner's files.
 *
 *   inputs.c   JSONL inputs, command lists, task libraries (dlopen)
 *   pilot.c    in-process measurement of a pilot thread -> wl_profile
 *   choose.c   verdict -> executor and size, with the reason
 *   tasks.c    task mode: pilot, classify, dispatch on the loop
 *   commands.c command mode: profile the pilot, run the rest via /bin/sh
 *   progress.c the progress line and job bookkeeping
 *   control.c  signals, the guardian of job groups, halt/retry rules
 *   pilot_proc.c task pilot jobs in a sacrificial worker process
 *   report.c   wlprof.run/2 JSON and the summary
 *   slurm.c    --executor slurm; slurm_size.c its pilot's profile and size
 *   remote_jobs.c what a Slurm worker runs, and the reply both ends read
 *   samples.c  the sample table; sample_tasks.c the sample task functions
 *   httpd.c    the samples' local image server
 */
#ifndef WL_RUNNER_INTERNAL_H
#define WL_RUNNER_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "wlprof/run.h"
#include "wlprof/sched.h"
#include "util/util.h"

#define RUN_DEFAULT_LIMIT 64
#define RUN_DEFAULT_PILOT_TASKS 3
#define RUN_DEFAULT_PILOT_COMMANDS 1
#define RUN_DEFAULT_GRACE_S 3.0

extern const wl_task_def wl__run_sample_sleep;
extern const wl_task_def wl__run_sample_download;
extern const wl_task_def wl__run_sample_blocking_read;
extern const wl_task_def wl__run_sample_primes;

/* Monotonic seconds. */
static inline double wl__run_now(void)
{
    return wl__mono_s();
}

/* ---- control (control.c) ---- */

/* The first of SIGINT/SIGTERM/SIGHUP received since install, and how many. */
extern volatile sig_atomic_t wl__run_sig_first;
extern volatile sig_atomic_t wl__run_sig_count;
/* Installs the handlers; returns the self-pipe's read end (readable once a
 * signal came) or a negative errno. */
int wl__run_signals_install(void);
void wl__run_signals_uninstall(void);
/* The self-pipe's read end, -1 when not installed. */
int wl__run_signals_fd(void);
void wl__run_signals_drain(void);

/* The guardian: SIGKILLs the listed process groups when wlprof dies. */
int wl__run_guard_start(void);
void wl__run_guard_add(pid_t pgid);
void wl__run_guard_remove(pid_t pgid);
void wl__run_guard_stop(void);

/* In a child forked by the runner: closes the runner's private fds and
 * takes the default signal dispositions back. */
void wl__run_child_setup(void);
/* PR_SET_PDEATHSIG(SIGKILL); -1 when parent is already gone. */
int wl__run_pdeathsig(pid_t parent);

double wl__run_grace(const wl_run_opts *o);
/* --halt with --fail-fast folded in: WL_HALT_* and the failure count. */
int wl__run_halt_mode(const wl_run_opts *o);
int wl__run_halt_after(const wl_run_opts *o);
const char *wl__run_signal_name(int sig);
/* poll()'s timeout until a wl__run_now() deadline (INFINITY: -1). */
int wl__run_poll_ms(double deadline);
/* write() all n bytes (EINTR retried); 0 or -1. */
int wl__run_write_full(int fd, const void *p, size_t n);
/* "exit status 3", "killed by signal 11 (SIGSEGV)", "" for 0. */
void wl__run_status_text(int shell_status, char *buf, size_t len);

/* ---- task pilot in a worker process (pilot_proc.c) ---- */

/* Runs jobs [0, n) of task over inputs one at a time in a sacrificial
 * worker process, measured from outside; a crash or exit of the worker
 * fails only its job (and a new worker takes the next one), a job past
 * o->timeout_s is killed. Records every job in r (pilot = true). Sets
 * *stop when a signal or --halt ended the pilot. Fills r->profile. */
int wl__run_pilot_tasks(const wl_task_def *task, const wl_inputs *in, size_t n, const wl_run_opts *o,
                     wl_run_result *r, double t0, int *stop, char *err, size_t errlen);

/* ---- inputs (inputs.c) ---- */

/* "-" is stdin; otherwise fopen, with err set on failure (*rc = -errno). */
FILE *wl__run_open_input(const char *path, char *err, size_t errlen, int *rc);
void wl__run_close_input(FILE *f);
/* "FILE:LINE: a NUL byte in the line"; returns -EINVAL. */
int wl__run_nul_error(const char *path, int lineno, char *err, size_t errlen);

/* ---- pilot ---- */

/* Up to RUN_PILOT_SLOTS worker processes sampled at once. */
#define RUN_PILOT_SLOTS 16

/* Samples the main thread of each worker process running a pilot job, from
 * a helper thread: its /proc state, wait channel and syscall every
 * interval, tallied by the profiler (wl_thread_tally). The CPU figures and
 * job-seconds are the caller's to fill (from wait4's rusage and the jobs'
 * wall times). Caller-allocated. */
typedef struct run_sampler {
    pthread_t thread;
    pid_t tid;             /* the first worker sampled (the profile's thread) */
    atomic_int pids[RUN_PILOT_SLOTS]; /* > 0: sample it */
    atomic_int stop;
    double interval_s;
    wl_thread_tally tally; /* the helper thread's until stopped */
    double t0, t1;         /* wall, at start and stop */
    double job_s;          /* the jobs' wall seconds, summed (0: t1 - t0) */
    double user_s, sys_s;  /* the workers' exact CPU, from wait4 */
    double cpu_s;          /* exact on-CPU seconds; 0: user_s + sys_s */
    long nvcsw, nivcsw;
} run_sampler;

int wl__run_sampler_start_proc(run_sampler *s);
/* Slot's process (<= 0: nothing to sample there now). */
void wl__run_sampler_follow(run_sampler *s, int slot, pid_t pid);
void wl__run_sampler_stop_proc(run_sampler *s);
/* Fills *p (zeroed first; owned by the caller) from the stopped sampler
 * through the profiler (wl_profile_from_tally), and releases the tally.
 * label becomes argv[0]. Returns 0 or -ENOMEM. */
int wl__run_sampler_profile(run_sampler *s, const char *label, wl_profile *p);

/* ---- bookkeeping ---- */

int wl__run_result_init(wl_run_result *r, wl_run_mode mode, size_t n, const char *what);
/* Records an attempt of job i; the last one is the job's outcome. err:
 * message (copied) or NULL. */
void wl__run_job_end(wl_run_result *r, size_t i, wl_job_state st, int status, const char *err,
                  double start_s, double end_s);
/* Whether job i, having just ended in state st after `attempts` attempts,
 * runs again under --retries. */
int wl__run_should_retry(const wl_run_opts *o, wl_job_state st, size_t attempts);
void wl__run_result_count(wl_run_result *r);

/* ---- executor choice ---- */

/* Picks executor and workers for the main phase from the verdict (or the
 * user's options) and writes r->executor, r->workers, r->reason. njobs:
 * jobs left for the main phase. The executor is the classifier's, adapted
 * to the task's forms (wl__run_adapt_executor); commands run as processes. */
void wl__run_choose(wl_run_result *r, const wl_run_opts *o, size_t njobs);

/* Which rule of choose.c's adaptation table applied. */
typedef enum run_adaptation {
    RUN_ADAPT_AS_IS = 0,          /* the verdict's executor, unchanged */
    RUN_ADAPT_ON_LOOP,            /* waits a loop can wait on + an async form */
    RUN_ADAPT_ONLY_ASYNC,         /* no blocking form: the loop is all there is */
    RUN_ADAPT_NO_ASYNC,           /* waits for a loop, but no async form: threads */
    RUN_ADAPT_WAITS_NEED_THREADS, /* an async form, but waits no loop can wait on */
    RUN_ADAPT_SPLIT_ON_THREADS    /* a split, but a task is one function */
} run_adaptation;

/* The executor a task with these forms runs for verdict v (the classifier
 * decided; this only maps its decision onto the forms), and why. */
wl_executor wl__run_adapt_executor(const wl_verdict *v, bool has_async, bool has_blocking,
                                run_adaptation *why);

/* ---- progress ---- */

typedef struct run_progress {
    uv_timer_t timer;
    wl_run_result *r;
    FILE *f;
    int mode;            /* 0 off, 1 plain, 2 tty */
    double t0;           /* run start */
    double main_t0;      /* main phase start */
    size_t main_done0;   /* jobs done when the main phase started */
    double last_plain;
    double every_s;
    size_t done;
    size_t failed;
    size_t running;
    int shown;           /* a TTY line is on screen */
} run_progress;

void wl__run_progress_init(run_progress *p, const wl_run_opts *o, wl_run_result *r, double t0);
void wl__run_progress_start(run_progress *p, uv_loop_t *uv);
/* Erases the TTY line before other output; the next tick redraws it. */
void wl__run_progress_clear(run_progress *p);
void wl__run_progress_job(run_progress *p, int ok);
/* Stops the timer (closes it on the loop) and prints the final line. */
void wl__run_progress_stop(run_progress *p);
/* A one-off line outside the loop (pilot phases). */
void wl__run_progress_note(run_progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- remote jobs (remote_jobs.c, slurm.c) ---- */

#define RUN__REMOTE_COMMAND "wl.command"
#define RUN__REMOTE_TASK "wl.task"
#define RUN__REMOTE_HDR 48u

/* A remote job's reply, parsed (out/err point into the reply). */
typedef struct run_remote_result {
    int status;
    double wall_s, user_s, sys_s, runq_s;
    uint32_t out_len, err_len;
    const uint8_t *out;
    const uint8_t *err;
} run_remote_result;

/* Returns 0, or -EPROTO when p/len is not a remote job's reply. */
int wl__run_remote_result_parse(const uint8_t *p, size_t len, run_remote_result *r);

/* ---- Slurm sizing (slurm_size.c, slurm.c) ---- */

/* What the workers measured of the Slurm pilot's jobs, summed over the
 * ones that replied (run_remote_result). */
typedef struct run_remote_pilot {
    size_t jobs;                          /* pilot jobs measured */
    double wall_s, user_s, sys_s, runq_s; /* their sums */
} run_remote_pilot;

/* The allocation a Slurm batch runs on. */
typedef struct run_slurm_shape {
    int cpus;    /* allocated cores in all */
    int nodes;
    size_t most; /* serving processes the workers open, in all */
} run_slurm_shape;

/* Fills *p (zeroed first; owned by the caller, wl_profile_free) with the
 * pilot's profile, through the profiler like the task pilot's
 * (wl_profile_from_tally: no ticks, the jobs as exact runs). label becomes
 * argv[0]. Returns 0 or -ENOMEM. */
int wl__run_remote_pilot_profile(const run_remote_pilot *m, const char *label, wl_profile *p);

/* Sizes the main phase: --workers when given, else from the pilot's
 * profile and verdict (filled into r when the pilot measured anything),
 * else one job per core; at most o->limit and a->most, at least 1. Sets
 * r's executor, workers, reason and auto_chosen; returns the jobs to keep
 * in flight. */
size_t wl__run_slurm_size(const wl_run_opts *o, const run_slurm_shape *a,
                          const run_remote_pilot *m, const char *label, wl_run_result *r);

#endif
