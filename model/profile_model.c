/*
 * profile_model.c -- the profile data model's own operations (wlprof/profile.h):
 * the derived fields and the release of what a wl_profile owns. Shared by
 * the profiler that fills a profile, the report reader that loads one and
 * the runner's pilot; no process, file or clock here.
 */
#include "wlprof/profile_model.h"

#include <stdlib.h>
#include <string.h>

void wl_profile_derive(wl_profile *p)
{
    /* each kind's seconds summed over threads (GIL waits overlap a running
     * thread, so the program-level wait_kind_s hardly sees them) */
    for (int k = 0; k < WL_WAIT_KIND_COUNT; k++)
        p->thread_wait_kind_s[k] = 0;
    for (size_t i = 0; i < p->nthreads; i++)
        for (size_t j = 0; j < p->threads[i].nwaits; j++)
            if ((unsigned)p->threads[i].waits[j].kind < WL_WAIT_KIND_COUNT)
                p->thread_wait_kind_s[p->threads[i].waits[j].kind] += p->threads[i].waits[j].seconds;
    p->exit_status = p->term_signal ? 128 + p->term_signal : p->exit_code;
    p->cores_busy = p->wall_s > 0 ? (p->user_s + p->sys_s) / p->wall_s : 0;
    /* Shares of the time the program either computed or waited; run-queue
     * time (the machine busy with others) belongs to neither. */
    double span = p->running_s + p->waiting_s;
    if (span > 0) {
        double run = p->running_s / span;
        double cpu = p->user_s + p->sys_s;
        double user_share = cpu > 0 ? p->user_s / cpu : 1.0;
        p->user_frac = run * user_share;
        p->sys_frac = run - p->user_frac;
        p->wait_frac = p->waiting_s / span;
    } else {
        p->user_frac = p->sys_frac = p->wait_frac = 0;
    }
}

void wl_profile_free(wl_profile *p)
{
    if (p->argv) {
        for (int i = 0; p->argv[i]; i++)
            free(p->argv[i]);
        free(p->argv);
    }
    for (size_t i = 0; i < p->nthreads; i++)
        free(p->threads[i].waits);
    for (size_t i = 0; i < p->nprocs; i++)
        free(p->procs[i].cmdline);
    free(p->threads);
    free(p->procs);
    free(p->waits);
    wl_timeline_free(&p->timeline);
    memset(p, 0, sizeof(*p));
}

/* ---- the per-thread timeline (filled by profiler/timeline.c) ---- */

static const char *const fixed_names[WL_TL_WAIT] = {"user", "system", "runqueue"};

const char *wl_timeline_state_name(unsigned state)
{
    if (state < WL_TL_WAIT)
        return fixed_names[state];
    if (state < WL_TL_STATE_COUNT)
        return wl_wait_kind_name((wl_wait_kind)(state - WL_TL_WAIT));
    return "other";
}

void wl_timeline_free(wl_timeline *tl)
{
    for (size_t i = 0; i < tl->nthreads; i++)
        free(tl->threads[i].runs);
    free(tl->threads);
    free(tl->details);
    free(tl->tick_s);
    memset(tl, 0, sizeof(*tl));
}

