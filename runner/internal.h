/*
 * internal.h -- private interfaces between the runner's files.
 *
 *   inputs.c   JSONL inputs, command lists, task libraries (dlopen)
 *   pilot.c    in-process measurement of a pilot thread -> wl_profile
 *   choose.c   verdict -> executor and size, with the reason
 *   tasks.c    task mode: pilot, classify, dispatch on the loop
 *   commands.c command mode: profile the pilot, run the rest via /bin/sh
 *   progress.c the progress line and job bookkeeping
 *   report.c   wlprof.run/1 JSON and the summary
 *   samples.c  the sample table; sample_tasks.c the sample task functions
 *   httpd.c    the samples' local image server
 */
#ifndef WL_RUNNER_INTERNAL_H
#define WL_RUNNER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "wlprof/run.h"
#include "wlprof/sched.h"
#include "util/util.h"

#define RUN_DEFAULT_LIMIT 64
#define RUN_DEFAULT_PILOT_TASKS 3
#define RUN_DEFAULT_PILOT_COMMANDS 1

extern const wl_task_def run__sample_sleep;
extern const wl_task_def run__sample_download;
extern const wl_task_def run__sample_blocking_read;
extern const wl_task_def run__sample_primes;

/* Monotonic seconds. */
static inline double run__now(void)
{
    return wl__mono_s();
}

/* ---- pilot ---- */

/* Samples one thread of this process from a helper thread: its /proc state,
 * wait channel and syscall every interval, plus its CPU clock and rusage
 * at start and stop. Caller-allocated. */
typedef struct run_sampler {
    pthread_t thread;
    pid_t tid;             /* the sampled thread */
    atomic_int stop;
    double interval_s;
    uint64_t ticks;
    uint64_t running;
    struct run_wait {
        wl_wait_kind kind;
        char wchan[48];
        char syscall[24];
        uint64_t samples;
    } waits[32];
    size_t nwaits;
    /* measured on the sampled thread itself */
    double t0, t1;         /* wall */
    double cpu0, cpu1;     /* CLOCK_THREAD_CPUTIME_ID */
    double user0, user1, sys0, sys1;
    long nvcsw0, nvcsw1, nivcsw0, nivcsw1;
} run_sampler;

/* Both called ON the thread to sample: start spawns the helper, stop joins
 * it and records the end figures. */
int run__sampler_start(run_sampler *s);
void run__sampler_stop(run_sampler *s);
/* Fills *p (zeroed first; owned by the caller) from the sampler. label
 * becomes argv[0]. */
int run__sampler_profile(const run_sampler *s, const char *label, wl_profile *p);

/* ---- bookkeeping ---- */

int run__result_init(wl_run_result *r, wl_run_mode mode, size_t n, const char *what);
/* Records job i's end. err: message (copied) or NULL. */
void run__job_end(wl_run_result *r, size_t i, wl_job_state st, int status, const char *err,
                  double start_s, double end_s);
void run__result_count(wl_run_result *r);

/* ---- executor choice ---- */

/* Picks executor and workers for the main phase from the verdict (or the
 * user's options) and writes r->executor, r->workers, r->reason. njobs:
 * jobs left for the main phase. */
void run__choose(wl_run_result *r, const wl_run_opts *o, size_t njobs);

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

void run__progress_init(run_progress *p, const wl_run_opts *o, wl_run_result *r, double t0);
void run__progress_start(run_progress *p, uv_loop_t *uv);
/* Erases the TTY line before other output; the next tick redraws it. */
void run__progress_clear(run_progress *p);
void run__progress_job(run_progress *p, int ok);
/* Stops the timer (closes it on the loop) and prints the final line. */
void run__progress_stop(run_progress *p);
/* A one-off line outside the loop (pilot phases). */
void run__progress_note(run_progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

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
int run__remote_result_parse(const uint8_t *p, size_t len, run_remote_result *r);

#endif
