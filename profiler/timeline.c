/*
 * timeline.c -- the per-thread timeline: every thread's state at every
 * tick, run-length encoded as the sampler observes it.
 *
 * Layout (wl_timeline, wlprof/profile.h):
 *   tick_s[nticks]          the time of each tick, seconds since the start
 *   details[ndetails]       distinct (syscall, wchan) pairs, interned
 *   threads[i]              one per sampler thread slot (same index), each
 *                           first_tick + runs {ticks, state, detail}
 *
 * A thread's runs cover the ticks from its first_tick onward without gaps:
 * a tick in which the thread was not observed (a /proc read failed) extends
 * its previous run, which is what it most likely still did. Memory grows
 * with changes of state, not with time, so an idle thread costs one run.
 * Single-threaded, like the sampler.
 */
#include "timeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* wl_timeline_free and wl_timeline_state_name are the model's
 * (model/profile_model.c): readers of saved reports use them too. */

/* Grows *arr (element size es, capacity *cap) to hold need elements. */
static int grow(void **arr, size_t *cap, size_t need, size_t es)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 16;
    while (c < need)
        c *= 2;
    void *p = realloc(*arr, c * es);
    if (!p)
        return -1;
    *arr = p;
    *cap = c;
    return 0;
}

int wl__timeline_tick(wl_timeline *tl, double now)
{
    if (tl->nticks >= WL_TIMELINE_MAX_TICKS) {
        tl->truncated = true;
        return -1;
    }
    if (grow((void **)&tl->tick_s, &tl->cap_ticks, tl->nticks + 1, sizeof(double)) < 0)
        return -1;
    tl->tick_s[tl->nticks++] = now;
    return 0;
}

static int32_t intern_detail(wl_timeline *tl, const char *syscall, const char *wchan)
{
    if (!syscall[0] && !wchan[0])
        return -1;
    for (size_t i = tl->ndetails; i-- > 0;)
        if (strcmp(tl->details[i].syscall, syscall) == 0 && strcmp(tl->details[i].wchan, wchan) == 0)
            return (int32_t)i;
    if (grow((void **)&tl->details, &tl->cap_details, tl->ndetails + 1, sizeof(*tl->details)) < 0)
        return -1;
    wl_timeline_detail *d = &tl->details[tl->ndetails];
    snprintf(d->syscall, sizeof(d->syscall), "%s", syscall);
    snprintf(d->wchan, sizeof(d->wchan), "%s", wchan);
    return (int32_t)tl->ndetails++;
}

void wl__timeline_observe(wl_timeline *tl, size_t slot, int pid, int tid, unsigned state,
                      const char *syscall, const char *wchan)
{
    if (tl->nticks == 0 || tl->truncated)
        return;
    uint64_t tick = tl->nticks - 1;
    if (slot >= tl->nthreads) {
        if (grow((void **)&tl->threads, &tl->cap_threads, slot + 1, sizeof(*tl->threads)) < 0)
            return;
        /* Slots are handed out in order; any skipped one stays empty. */
        memset(tl->threads + tl->nthreads, 0, (slot + 1 - tl->nthreads) * sizeof(*tl->threads));
        tl->nthreads = slot + 1;
    }
    wl_thread_timeline *th = &tl->threads[slot];
    if (th->nruns == 0) {
        th->pid = pid;
        th->tid = tid;
        th->first_tick = tick;
    }
    int32_t detail = state >= WL_TL_WAIT ? intern_detail(tl, syscall ? syscall : "", wchan ? wchan : "") : -1;
    if (th->nruns > 0) {
        wl_timeline_run *last = &th->runs[th->nruns - 1];
        if (tick < th->end_tick)
            return; /* seen twice in one tick: the first look stands */
        last->ticks += (uint32_t)(tick - th->end_tick); /* unobserved ticks */
        th->end_tick = tick + 1;
        if (last->state == state && last->detail == detail) {
            last->ticks++;
            return;
        }
    }
    th->end_tick = tick + 1;
    if (grow((void **)&th->runs, &th->cap_runs, th->nruns + 1, sizeof(*th->runs)) < 0) {
        if (th->nruns > 0)
            th->runs[th->nruns - 1].ticks++;
        return;
    }
    th->runs[th->nruns++] = (wl_timeline_run){.ticks = 1, .state = (uint16_t)state, .detail = detail};
}
