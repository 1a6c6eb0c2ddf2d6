/*
 * choose.c -- from the pilot's verdict to the main phase's executor and
 * size, with a sentence saying why (it goes into the summary and report).
 *
 *   task mode                              command mode (always processes)
 *   I/O-bound + async form -> coroutine    waiting-bound -> limit at once
 *   I/O-bound, blocking    -> thread pool  CPU-bound     -> one per core
 *   CPU-bound              -> process pool mixed         -> cores / CPU share
 *   mixed                  -> threads sized cores / CPU share (C threads
 *                             compute in parallel: no interpreter lock)
 *
 * "cores / CPU share" is the number of jobs that keeps every core busy when
 * each job computes only that share of its wall time; bounded by --limit.
 */
#include "internal.h"

#include <math.h>
#include <string.h>

static int bound(int n, int lo, int hi)
{
    return n < lo ? lo : n > hi ? hi : n;
}

static int by_fraction(const wl_verdict *v, int limit)
{
    double share = v->user_share + v->sys_share;
    if (share < 1.0 / limit)
        return limit;
    return bound((int)ceil(v->cores / share), v->cores, limit);
}

void run__choose(wl_run_result *r, const wl_run_opts *o, size_t njobs)
{
    int limit = o->limit > 0 ? o->limit : RUN_DEFAULT_LIMIT;
    const wl_verdict *v = r->have_verdict ? &r->verdict : NULL;
    int cores = v ? v->cores : wl_classify_defaults().cores;
    bool tasks = r->mode == WL_RUN_TASKS;
    int workers = 0;
    char why[384] = "";

    r->auto_chosen = o->executor == WL_RUN_AUTO;
    if (!r->auto_chosen) {
        r->executor = o->executor;
        snprintf(why, sizeof(why), "%s chosen with --executor",
                 wl_executor_name((wl_executor)o->executor));
    } else if (!v) {
        r->executor = tasks && r->has_async ? WL_EXEC_COROUTINE : WL_EXEC_THREAD_POOL;
        snprintf(why, sizeof(why), "no pilot profile: %s by default",
                 wl_executor_name((wl_executor)r->executor));
    } else if (v->kind == WL_KIND_IO_BOUND) {
        double wait = 100 * (v->wait_share + v->sys_share);
        if (!tasks) {
            r->executor = v->executor;
            workers = limit;
            snprintf(why, sizeof(why),
                     "the pilot waited %.0f%% of its wall time: I/O-bound, so many jobs at "
                     "once (--limit %d)",
                     wait, limit);
        } else if (r->has_async) {
            r->executor = WL_EXEC_COROUTINE;
            snprintf(why, sizeof(why),
                     "the pilot waited %.0f%% of its wall time: I/O-bound, and the task has an "
                     "async form: many tasks in flight on one coroutine loop",
                     wait);
        } else {
            r->executor = WL_EXEC_THREAD_POOL;
            snprintf(why, sizeof(why),
                     "the pilot waited %.0f%% of its wall time: I/O-bound, and the task only "
                     "blocks (no async form): the blocking calls go to a thread pool",
                     wait);
        }
    } else if (v->kind == WL_KIND_CPU_BOUND) {
        r->executor = WL_EXEC_PROCESS_POOL;
        workers = cores;
        snprintf(why, sizeof(why),
                 "the pilot computed %.0f%% of its wall time: CPU-bound, so one %s per core "
                 "(%d)",
                 100 * v->user_share, tasks ? "worker process" : "job", cores);
        if (tasks && !r->has_blocking) {
            r->executor = WL_EXEC_COROUTINE;
            workers = 0;
            snprintf(why, sizeof(why),
                     "the pilot computed %.0f%% of its wall time: CPU-bound, but the task has "
                     "only an async form, which runs on the loop: no pool can help",
                     100 * v->user_share);
        }
    } else {
        workers = by_fraction(v, limit);
        r->executor = tasks && !r->has_blocking ? WL_EXEC_COROUTINE
                      : tasks                        ? WL_EXEC_THREAD_POOL
                                                     : v->executor;
        snprintf(why, sizeof(why),
                 "mixed: the pilot computed %.0f%% and waited %.0f%% of its wall time; %d "
                 "%s at once keep %d cores busy (cores / CPU share)",
                 100 * (v->user_share + v->sys_share), 100 * v->wait_share, workers,
                 tasks && r->executor == WL_EXEC_THREAD_POOL ? "threads" : "jobs", cores);
    }

    if (o->workers > 0) {
        workers = o->workers;
        size_t len = strlen(why);
        snprintf(why + len, sizeof(why) - len, "; %d workers from --workers", workers);
    } else if (workers == 0) {
        switch (r->executor) {
        case WL_EXEC_COROUTINE:
            workers = limit;
            break;
        case WL_EXEC_THREAD_POOL:
            workers = v ? v->predicted[WL_EXEC_THREAD_POOL].workers : 4 * cores;
            if (workers < cores)
                workers = cores;
            break;
        default:
            workers = cores;
            break;
        }
    }
    if (workers > limit && o->workers <= 0)
        workers = limit;
    if (njobs > 0 && (size_t)workers > njobs)
        workers = (int)njobs;
    if (workers < 1)
        workers = 1;
    r->workers = workers;
    snprintf(r->reason, sizeof(r->reason), "%s", why);
}
