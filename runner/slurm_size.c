/*
 * slurm_size.c -- how many jobs the Slurm executor (slurm.c) keeps in
 * flight after its pilot, and the pilot's profile and verdict.
 *
 * The pilot's jobs ran on workers, which measured each one whole (wall,
 * user and system CPU, run-queue time: remote_jobs.c) and took no ticks.
 * Those totals become a wl_profile the profiler's way, like the task
 * pilot's (pilot.c): an empty tally and the totals as exact runs
 * (wl_profile_from_tally, exact_runs), so the classifier reads the same
 * one-thread shape from both runners, the run queue kept apart.
 *
 * The verdict sizes the batch for the allocation: CPU-bound (or a process
 * pool), one job per allocated core; otherwise cores / CPU share jobs in
 * flight -- enough to keep the cores busy -- at most --limit and the slots
 * the workers opened.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

#include "wlprof/classify.h"
#include "wlprof/profiler.h"

int wl__run_remote_pilot_profile(const run_remote_pilot *m, const char *label, wl_profile *p)
{
    wl_thread_tally none = {0}; /* the workers measured, nobody ticked */
    wl_tally_totals t = {
        .label = label,
        .comm = "pilot",
        .wall_s = m->wall_s,
        .user_s = m->user_s,
        .sys_s = m->sys_s,
        .exact_runs = m->jobs,
        .runq_s = m->runq_s,
    };
    return wl_profile_from_tally(&none, &t, p);
}

static void size_from_pilot(const run_slurm_shape *a, wl_run_result *r, size_t *cap)
{
    const wl_profile *p = &r->profile;
    wl_classify_opts co = wl_classify_defaults();
    co.cores = a->cpus;
    if (wl_classify(p, &co, &r->verdict) == 0)
        r->have_verdict = true;
    /* the CPU share of the time it was not queued for a CPU */
    double share =
        p->running_s + p->waiting_s > 0 ? p->running_s / (p->running_s + p->waiting_s) : 1;
    r->auto_chosen = true;
    if (r->have_verdict &&
        (r->verdict.kind == WL_KIND_CPU_BOUND || r->verdict.executor == WL_EXEC_PROCESS_POOL)) {
        *cap = (size_t)a->cpus;
        snprintf(r->reason, sizeof(r->reason),
                 "pilot computes %.0f%% of its wall time: one job per allocated core "
                 "(%d cores on %d node%s)",
                 100 * share, a->cpus, a->nodes, a->nodes == 1 ? "" : "s");
    } else {
        double want = (double)a->cpus / (share > 1.0 / 64 ? share : 1.0 / 64);
        *cap = (size_t)(want + 0.5);
        snprintf(r->reason, sizeof(r->reason),
                 "pilot waits %.0f%% of its wall time: %d cores / %.2f CPU share = "
                 "%.0f jobs in flight over %d node%s",
                 100 * (1 - share), a->cpus, share, want, a->nodes, a->nodes == 1 ? "" : "s");
    }
}

size_t wl__run_slurm_size(const wl_run_opts *o, const run_slurm_shape *a, const run_remote_pilot *m,
                          const char *label, wl_run_result *r)
{
    size_t limit = (size_t)(o->limit > 0 ? o->limit : RUN_DEFAULT_LIMIT);
    size_t cap;

    if (o->workers > 0) {
        cap = (size_t)o->workers;
        r->auto_chosen = false;
        snprintf(r->reason, sizeof(r->reason), "--workers %d over %d node%s", o->workers, a->nodes,
                 a->nodes == 1 ? "" : "s");
    } else if (m->jobs && m->wall_s > 0 &&
               wl__run_remote_pilot_profile(m, label, &r->profile) == 0) {
        r->have_profile = true;
        size_from_pilot(a, r, &cap);
    } else {
        cap = (size_t)a->cpus;
        r->auto_chosen = true;
        snprintf(r->reason, sizeof(r->reason), "%s: one job per allocated core",
                 m->jobs && m->wall_s > 0 ? "no pilot profile (out of memory)" : "no pilot");
    }
    if (cap > limit)
        cap = limit;
    if (cap > a->most)
        cap = a->most;
    if (cap < 1)
        cap = 1;
    r->executor = WL_EXEC_PROCESS_POOL;
    r->workers = (int)cap;
    return cap;
}
