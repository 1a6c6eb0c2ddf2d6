/*
 * pilot.c -- the task pilot's sampler: a helper thread that watches the
 * pilot's worker processes from outside, and hands what it saw to the
 * profiler, which turns it into a wl_profile the classifier reads like any
 * other (wl_profile_from_tally).
 *
 * Exact figures come from the caller: the pilot jobs' wall times, and each
 * worker's user and system CPU and context switches from wait4's rusage.
 *
 * The wait reasons come from the helper thread, which looks at the main
 * thread of every worker running a job every 5 ms through
 * /proc/PID/task/PID/{stat,wchan,syscall} (wl_thread_observe) and tallies
 * the observations the profiler's way (wl_thread_tally_add). The helper
 * never touches the workers, so their CPU figures stay clean.
 *
 * The profiler gives the ticks seconds by their share of the job-seconds
 * measured (several jobs may run at once), so the profile describes one
 * job's worth of behaviour; running ticks beyond the exact CPU time count
 * as run-queue time (a loaded machine), not computing.
 */
#include "internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SAMPLE_INTERVAL_S 0.005

static void sample_pid(run_sampler *s, int pid);

static void sample_once(run_sampler *s)
{
    for (int k = 0; k < RUN_PILOT_SLOTS; k++) {
        int pid = atomic_load(&s->pids[k]);
        if (pid > 0)
            sample_pid(s, pid);
    }
}

static void sample_pid(run_sampler *s, int pid)
{
    wl_thread_now now;
    if (wl_thread_observe(pid, pid, &now) == 0)
        (void)wl_thread_tally_add(&s->tally, &now); /* out of memory: the tick still counts */
}

static void *sampler_main(void *arg)
{
    run_sampler *s = arg;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    long step_ns = (long)(s->interval_s * 1e9);
    while (!atomic_load(&s->stop)) {
        next.tv_nsec += step_ns;
        while (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
            ;
        if (atomic_load(&s->stop))
            break;
        sample_once(s);
    }
    return NULL;
}

int wl__run_sampler_start_proc(run_sampler *s)
{
    memset(s, 0, sizeof(*s));
    for (int k = 0; k < RUN_PILOT_SLOTS; k++)
        atomic_init(&s->pids[k], 0);
    s->interval_s = SAMPLE_INTERVAL_S;
    atomic_init(&s->stop, 0);
    sigset_t all;
    sigset_t old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = -pthread_create(&s->thread, NULL, sampler_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    s->t0 = wl__run_now();
    return rc;
}

void wl__run_sampler_follow(run_sampler *s, int slot, pid_t pid)
{
    if (pid > 0 && !s->tid)
        s->tid = pid;
    atomic_store(&s->pids[slot], (int)pid);
}

void wl__run_sampler_stop_proc(run_sampler *s)
{
    s->t1 = wl__run_now();
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
}

int wl__run_sampler_profile(run_sampler *s, const char *label, wl_profile *p)
{
    wl_tally_totals m = {
        .label = label,
        .comm = "pilot",
        .pid = s->tid,
        .interval_s = s->interval_s,
        .wall_s = s->job_s > 0 ? s->job_s : s->t1 - s->t0,
        .user_s = s->user_s,
        .sys_s = s->sys_s,
        .cpu_s = s->cpu_s,
        .nvcsw = s->nvcsw,
        .nivcsw = s->nivcsw,
    };
    int rc = wl_profile_from_tally(&s->tally, &m, p);
    wl_thread_tally_free(&s->tally);
    return rc;
}
