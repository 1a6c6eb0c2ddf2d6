/*
 * pilot.c -- measuring the task pilot's worker processes from outside, and
 * turning the figures into a wl_profile the classifier reads like any
 * other.
 *
 * Exact figures come from the caller: the pilot jobs' wall times, and each
 * worker's user and system CPU and context switches from wait4's rusage.
 *
 * The wait reasons come from a helper thread that looks at the main thread
 * of every worker running a job every 5 ms through
 * /proc/PID/task/PID/{stat,wchan,syscall}: state R is a running tick; any
 * other state is a waiting tick attributed to (kind, wchan, syscall),
 * grouped by the profiler's own rules (wl_thread_observe). The helper never
 * touches the workers, so their CPU figures stay clean.
 *
 * Ticks become seconds by their share of the job-seconds measured (several
 * jobs may run at once), so the profile describes one job's worth of
 * behaviour. Computing is the exact CPU time; running ticks beyond it were
 * spent queued for a CPU (a busy machine) and count as run-queue time, so a
 * loaded machine does not make a waiting task look like a computing one.
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
    if (wl_thread_observe(pid, pid, &now) < 0)
        return;
    s->ticks++;
    if (now.state == 'R') {
        s->running++;
        return;
    }
    wl_wait_kind kind = now.kind;
    const char *wchan = now.wchan, *sysname = now.syscall;
    for (size_t i = 0; i < s->nwaits; i++) {
        struct run_wait *w = &s->waits[i];
        if (w->kind == kind && strcmp(w->wchan, wchan) == 0 && strcmp(w->syscall, sysname) == 0) {
            w->samples++;
            return;
        }
    }
    if (s->nwaits < sizeof(s->waits) / sizeof(s->waits[0])) {
        struct run_wait *w = &s->waits[s->nwaits++];
        w->kind = kind;
        snprintf(w->wchan, sizeof(w->wchan), "%s", wchan);
        snprintf(w->syscall, sizeof(w->syscall), "%s", sysname);
        w->samples = 1;
    }
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

int run__sampler_start_proc(run_sampler *s)
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
    s->t0 = run__now();
    return rc;
}

void run__sampler_follow(run_sampler *s, int slot, pid_t pid)
{
    if (pid > 0 && !s->tid)
        s->tid = pid;
    atomic_store(&s->pids[slot], (int)pid);
}

void run__sampler_stop_proc(run_sampler *s)
{
    s->t1 = run__now();
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
}

static int cmp_wait(const void *a, const void *b)
{
    const wl_wait_stat *x = a;
    const wl_wait_stat *y = b;
    return (x->samples < y->samples) - (x->samples > y->samples);
}

int run__sampler_profile(const run_sampler *s, const char *label, wl_profile *p)
{
    memset(p, 0, sizeof(*p));
    double wall = s->job_s > 0 ? s->job_s : s->t1 - s->t0;
    double user = s->user1 - s->user0;
    double sys = s->sys1 - s->sys0;
    double cpu = s->cpu1 - s->cpu0;
    /* rusage ticks in coarse steps; the thread clock is exact: scale the
     * split onto it. */
    if (user + sys > 0 && cpu > 0) {
        double k = cpu / (user + sys);
        user *= k;
        sys *= k;
    } else if (cpu > 0) {
        user = cpu;
    }

    p->argv = calloc(2, sizeof(*p->argv));
    if (!p->argv)
        return -ENOMEM;
    p->argv[0] = strdup(label);
    p->argc = 1;
    p->waits = calloc(s->nwaits ? s->nwaits : 1, sizeof(*p->waits));
    p->threads = calloc(1, sizeof(*p->threads));
    if (!p->argv[0] || !p->waits || !p->threads)
        goto nomem;

    p->pid = s->tid;
    p->wall_s = wall;
    p->user_s = user;
    p->sys_s = sys;
    p->nvcsw = s->nvcsw1 - s->nvcsw0;
    p->nivcsw = s->nivcsw1 - s->nivcsw0;
    p->hz = 1.0 / s->interval_s;
    p->ticks = s->ticks;
    p->ticks_running = s->running;
    p->ticks_waiting = s->ticks - s->running;
    p->thread_samples = s->ticks;
    p->max_threads = 1;
    p->max_running_threads = s->running ? 1 : 0;
    p->mean_running_threads = s->running ? 1 : 0;
    double tick_s = s->ticks ? wall / (double)s->ticks : 0;
    if (s->ticks) {
        p->sampled_s = wall;
        /* State R is on a CPU or queued for one: the exact CPU time is the
         * computing part, the rest of the R ticks waited for a CPU (a busy
         * machine), which is neither computing nor the job's own waiting. */
        double r_s = tick_s * (double)s->running;
        p->running_s = cpu < wall ? cpu : wall;
        p->runqueue_s = r_s > p->running_s ? r_s - p->running_s : 0;
        p->waiting_s = tick_s * (double)(s->ticks - s->running);
        if (p->running_s + p->runqueue_s + p->waiting_s > wall)
            p->waiting_s = wall > p->running_s + p->runqueue_s
                               ? wall - p->running_s - p->runqueue_s
                               : 0;
    }
    for (size_t i = 0; i < s->nwaits; i++) {
        wl_wait_stat *w = &p->waits[p->nwaits++];
        w->kind = s->waits[i].kind;
        snprintf(w->wchan, sizeof(w->wchan), "%s", s->waits[i].wchan);
        snprintf(w->syscall, sizeof(w->syscall), "%s", s->waits[i].syscall);
        w->samples = s->waits[i].samples;
        w->seconds = tick_s * (double)w->samples;
        p->wait_kind_s[w->kind] += w->seconds;
        p->wait_kind_samples[w->kind] += w->samples;
    }
    qsort(p->waits, p->nwaits, sizeof(*p->waits), cmp_wait);

    wl_thread_stat *t = &p->threads[0];
    p->nthreads = 1;
    t->pid = p->pid;
    t->tid = s->tid;
    snprintf(t->comm, sizeof(t->comm), "pilot");
    t->last_seen_s = wall;
    t->user_s = user;
    t->sys_s = sys;
    t->cpu_s = cpu;
    t->samples_running = p->ticks_running;
    t->samples_waiting = p->ticks_waiting;
    t->running_s = p->running_s;
    t->runq_s = p->runqueue_s;
    t->waiting_s = p->waiting_s;
    if (p->nwaits) {
        t->waits = malloc(p->nwaits * sizeof(*t->waits));
        if (!t->waits)
            goto nomem;
        memcpy(t->waits, p->waits, p->nwaits * sizeof(*t->waits));
        t->nwaits = p->nwaits;
    }
    p->started_at = (double)time(NULL) - wall;
    wl_profile_derive(p);
    return 0;

nomem:
    wl_profile_free(p);
    return -ENOMEM;
}
