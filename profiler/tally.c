/*
 * tally.c -- a profile from observations a caller took itself
 * (wlprof/profiler.h: wl_thread_tally, wl_profile_from_tally).
 *
 * The caller samples one thread, or like threads taken as one, with
 * wl_thread_observe at an interval of its own, and measures the exact
 * totals (wall time, user and system CPU, context switches) itself -- the
 * task pilot of `wlprof run` samples the main thread of its worker
 * processes from a helper thread and takes their CPU from wait4. The tally
 * counts the ticks, the running ones and the others by wait reason.
 *
 * Ticks become seconds by their share of the measured wall time. State R
 * is on a CPU or queued for one: the exact CPU time is the computing part
 * and the rest of the R ticks waited for a CPU (a busy machine), which is
 * neither computing nor the program's own waiting. The result is a
 * one-thread profile the classifier and the reports read like any other.
 *
 * A caller that measured whole runs exactly (the Slurm pilot: each job's
 * wall, CPU and run-queue time from its worker, no ticks) says so in
 * exact_runs; then the totals split the wall time themselves, and an empty
 * tally stands for one tick per run, so the classifier reads the split as
 * measured (its run queue kept apart) rather than as bare totals.
 */
#include "wlprof/profiler.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "waitlist.h"

int wl_thread_tally_add(wl_thread_tally *t, const wl_thread_now *now)
{
    t->ticks++;
    if (now->state == 'R') {
        t->running++;
        return 0;
    }
    return wl__waits_add(&t->waits, &t->nwaits, &t->cap_waits, now->kind, now->wchan,
                         now->syscall, 0);
}

void wl_thread_tally_free(wl_thread_tally *t)
{
    free(t->waits);
    memset(t, 0, sizeof(*t));
}

/* The exact CPU split, scaled onto the finer on-CPU clock when there is
 * one (rusage counts in coarse steps). */
static void exact_cpu(const wl_tally_totals *m, double *user, double *sys, double *cpu)
{
    *user = m->user_s;
    *sys = m->sys_s;
    *cpu = m->cpu_s > 0 ? m->cpu_s : m->user_s + m->sys_s;
    if (*user + *sys > 0 && *cpu > 0) {
        double k = *cpu / (*user + *sys);
        *user *= k;
        *sys *= k;
    } else if (*cpu > 0) {
        *user = *cpu;
    }
}

/* The ticks as wall seconds: running (exact CPU), run queue, waiting. */
static void tick_seconds(const wl_thread_tally *t, double wall, double cpu, wl_profile *p)
{
    p->ticks = t->ticks;
    p->ticks_running = t->running;
    p->ticks_waiting = t->ticks - t->running;
    p->thread_samples = t->ticks;
    p->max_running_threads = t->running ? 1 : 0;
    p->mean_running_threads = t->running ? 1 : 0;
    if (!t->ticks)
        return;
    double tick_s = wall / (double)t->ticks;
    double r_s = tick_s * (double)t->running;
    p->sampled_s = wall;
    p->running_s = cpu < wall ? cpu : wall;
    p->runqueue_s = r_s > p->running_s ? r_s - p->running_s : 0;
    p->waiting_s = tick_s * (double)(t->ticks - t->running);
    if (p->running_s + p->runqueue_s + p->waiting_s > wall)
        p->waiting_s = wall > p->running_s + p->runqueue_s ? wall - p->running_s - p->runqueue_s
                                                           : 0;
}

/* The totals' own split, for runs measured whole (m->exact_runs): the
 * ticks, if any, only count the states. */
static void exact_seconds(const wl_thread_tally *t, const wl_tally_totals *m, double cpu,
                          wl_profile *p)
{
    double wall = m->wall_s > 0 ? m->wall_s : 0;
    double runq = m->runq_s > 0 ? m->runq_s : 0;
    p->ticks = t->ticks ? t->ticks : m->exact_runs;
    p->ticks_running = t->running;
    p->ticks_waiting = t->ticks - t->running;
    p->thread_samples = t->ticks;
    p->max_running_threads = t->running ? 1 : 0;
    p->mean_running_threads = t->running ? 1 : 0;
    p->sampled_s = wall;
    p->running_s = cpu < wall ? cpu : wall;
    p->runqueue_s = runq < wall - p->running_s ? runq : wall - p->running_s;
    p->waiting_s = wall - p->running_s - p->runqueue_s;
}

/* The one thread: the profile's figures, and its own copy of the waits. */
static int fill_thread(const wl_tally_totals *m, double user, double sys, double cpu,
                       wl_profile *p)
{
    p->threads = calloc(1, sizeof(*p->threads));
    if (!p->threads)
        return -ENOMEM;
    wl_thread_stat *th = &p->threads[0];
    p->nthreads = 1;
    p->max_threads = 1;
    th->pid = p->pid;
    th->tid = p->pid;
    snprintf(th->comm, sizeof(th->comm), "%s", m->comm ? m->comm : "");
    th->last_seen_s = p->wall_s;
    th->user_s = user;
    th->sys_s = sys;
    th->cpu_s = cpu;
    th->samples_running = p->ticks_running;
    th->samples_waiting = p->ticks_waiting;
    th->running_s = p->running_s;
    th->runq_s = p->runqueue_s;
    th->waiting_s = p->waiting_s;
    if (p->nwaits) {
        th->waits = malloc(p->nwaits * sizeof(*th->waits));
        if (!th->waits)
            return -ENOMEM;
        memcpy(th->waits, p->waits, p->nwaits * sizeof(*th->waits));
        th->nwaits = p->nwaits;
    }
    return 0;
}

int wl_profile_from_tally(const wl_thread_tally *t, const wl_tally_totals *m, wl_profile *p)
{
    memset(p, 0, sizeof(*p));
    double user, sys, cpu;
    exact_cpu(m, &user, &sys, &cpu);

    p->argv = calloc(2, sizeof(*p->argv));
    if (!p->argv)
        return -ENOMEM;
    p->argv[0] = strdup(m->label ? m->label : "");
    p->argc = 1;
    p->waits = calloc(t->nwaits ? t->nwaits : 1, sizeof(*p->waits));
    if (!p->argv[0] || !p->waits)
        goto nomem;

    p->pid = m->pid;
    p->wall_s = m->wall_s;
    p->user_s = user;
    p->sys_s = sys;
    p->nvcsw = m->nvcsw;
    p->nivcsw = m->nivcsw;
    p->hz = m->interval_s > 0 ? 1.0 / m->interval_s : 0;
    /* seconds per waiting tick: a tick's share of the wall time, or with
     * an exact split the waiting time's share */
    double wait_tick_s;
    if (m->exact_runs) {
        exact_seconds(t, m, cpu, p);
        wait_tick_s = p->ticks_waiting ? p->waiting_s / (double)p->ticks_waiting : 0;
    } else {
        tick_seconds(t, m->wall_s, cpu, p);
        wait_tick_s = t->ticks ? m->wall_s / (double)t->ticks : 0;
    }
    for (size_t i = 0; i < t->nwaits; i++) {
        p->waits[i] = t->waits[i];
        p->waits[i].seconds = wait_tick_s * (double)t->waits[i].samples;
    }
    p->nwaits = t->nwaits;
    wl__waits_sort(p->waits, p->nwaits);
    wl__waits_sum_kinds(p->waits, p->nwaits, p->wait_kind_s, p->wait_kind_samples);

    if (fill_thread(m, user, sys, cpu, p) < 0)
        goto nomem;
    p->started_at = (double)time(NULL) - m->wall_s;
    wl_profile_derive(p);
    return 0;

nomem:
    wl_profile_free(p);
    return -ENOMEM;
}
