/*
 * fake_profile.h -- hand-made profiles for the suites that test what is
 * made of a profile (the classifier's verdicts, the advice, the reports)
 * without running anything. Header-only, like testutil.h; the arrays are
 * grown with realloc, so a fake is an ordinary profile: wl_profile_free
 * releases it.
 *
 * A program-level wait reason (fake_wait) adds to the per-kind sums as the
 * profiler does; a thread's (fake_thread_wait) adds to its waiting time.
 * Samples are counted at 100 Hz.
 */
#ifndef WL_FAKE_PROFILE_H
#define WL_FAKE_PROFILE_H

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wlprof/classify.h"
#include "wlprof/profile.h"

/* Appends a wait reason to *arr (of *n) and returns it. */
static inline wl_wait_stat *fake_push_wait(wl_wait_stat **arr, size_t *n, wl_wait_kind kind,
                                           const char *wchan, const char *sc, double seconds)
{
    wl_wait_stat *grown = realloc(*arr, (*n + 1) * sizeof(**arr));
    ck_assert_ptr_nonnull(grown);
    *arr = grown;
    wl_wait_stat *w = &grown[(*n)++];
    memset(w, 0, sizeof(*w));
    w->kind = kind;
    snprintf(w->wchan, sizeof(w->wchan), "%s", wchan);
    snprintf(w->syscall, sizeof(w->syscall), "%s", sc);
    w->seconds = seconds;
    w->samples = (uint64_t)llround(seconds * 100);
    return w;
}

/* Program-level wait reason; call in most-first order, like the profiler. */
static inline void fake_wait(wl_profile *p, wl_wait_kind kind, const char *wchan, const char *sc,
                             double seconds)
{
    wl_wait_stat *w = fake_push_wait(&p->waits, &p->nwaits, kind, wchan, sc, seconds);
    p->wait_kind_s[kind] += seconds;
    p->wait_kind_samples[kind] += w->samples;
}

/* A thread of process 1000 that computed cpu_s seconds (all user time)
 * and never waited in an event loop. comm NULL: "t<tid>". */
static inline wl_thread_stat *fake_thread(wl_profile *p, int tid, const char *comm, double cpu_s)
{
    wl_thread_stat *grown = realloc(p->threads, (p->nthreads + 1) * sizeof(*grown));
    ck_assert_ptr_nonnull(grown);
    p->threads = grown;
    wl_thread_stat *t = &grown[p->nthreads++];
    memset(t, 0, sizeof(*t));
    t->pid = 1000;
    t->tid = tid;
    if (comm)
        snprintf(t->comm, sizeof(t->comm), "%s", comm);
    else
        snprintf(t->comm, sizeof(t->comm), "t%d", tid);
    t->user_s = cpu_s;
    t->cpu_s = cpu_s;
    t->running_s = cpu_s;
    t->loop_first_s = -1;
    return t;
}

/* A thread's wait reason; adds to its waiting time. */
static inline void fake_thread_wait(wl_thread_stat *t, wl_wait_kind kind, const char *sc,
                                    double seconds)
{
    fake_push_wait(&t->waits, &t->nwaits, kind, "", sc, seconds);
    t->waiting_s += seconds;
}

/* The profile's one process, pid 1000, named comm. */
static inline void fake_process(wl_profile *p, const char *comm)
{
    p->procs = calloc(1, sizeof(*p->procs));
    ck_assert_ptr_nonnull(p->procs);
    p->nprocs = 1;
    p->procs[0].pid = 1000;
    snprintf(p->procs[0].comm, sizeof(p->procs[0].comm), "%s", comm);
}

/* Classifier options with every default but the core count. */
static inline wl_classify_opts fake_opts_cores(int cores)
{
    wl_classify_opts o;
    memset(&o, 0, sizeof(o));
    o.cores = cores;
    return o;
}

/* Whether any of the verdict's reasons contains needle. */
static inline int reasons_have(const wl_verdict *v, const char *needle)
{
    for (size_t i = 0; i < v->nreasons; i++)
        if (strstr(v->reasons[i], needle))
            return 1;
    return 0;
}

#endif
