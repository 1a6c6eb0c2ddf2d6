/*
 * choose.c -- from the pilot's verdict to the main phase's executor and
 * size, with a sentence saying why (it goes into the summary and report).
 *
 * The classifier decides the executor (wl_verdict.executor); this file only
 * adapts that decision to what the job can run as. A command is always a
 * process: the verdict names the executor and sets how many run at once. A
 * task is one function in a blocking form, an async form or both, and runs
 * only where one of its forms can:
 *
 *   verdict                        both forms     async only   blocking only
 *   coroutine                      coroutine      coroutine    thread pool
 *   thread pool, loop_can_wait     coroutine      coroutine    thread pool
 *   thread pool, other waits       thread pool    coroutine    thread pool
 *   process pool                   process pool   coroutine    process pool
 *   split                          thread pool    coroutine    thread pool
 *
 * (loop_can_wait: the classifier found the waits could sit on a loop --
 * readiness-based calls -- so an async form waits there at no thread's
 * cost; disk and lock waits stay on threads. A split needs the job cut in
 * two, and a task is one function: C threads both wait and compute in
 * parallel, with no interpreter lock, so a thread pool sized to keep the
 * cores busy is the nearest.)
 *
 * Sizes: a coroutine loop --limit tasks in flight; a thread pool the
 * classifier's thread count (at least one per core); a process pool one
 * per core; a split "cores / CPU share", the number of jobs that keeps
 * every core busy when each computes only that share of its wall time;
 * waiting commands --limit at once. All bounded by --limit and the jobs
 * left.
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

/* The adaptation table above; why says which row and column applied. */
wl_executor wl__run_adapt_executor(const wl_verdict *v, bool has_async, bool has_blocking,
                                run_adaptation *why)
{
    if (!has_blocking) {
        *why = RUN_ADAPT_ONLY_ASYNC;
        return WL_EXEC_COROUTINE;
    }
    switch (v->executor) {
    case WL_EXEC_COROUTINE:
    case WL_EXEC_THREAD_POOL:
        if (has_async && v->loop_can_wait) {
            *why = RUN_ADAPT_ON_LOOP;
            return WL_EXEC_COROUTINE;
        }
        *why = !has_async ? RUN_ADAPT_NO_ASYNC : RUN_ADAPT_WAITS_NEED_THREADS;
        return WL_EXEC_THREAD_POOL;
    case WL_EXEC_PROCESS_POOL:
        *why = RUN_ADAPT_AS_IS;
        return WL_EXEC_PROCESS_POOL;
    default:
        *why = RUN_ADAPT_SPLIT_ON_THREADS;
        return WL_EXEC_THREAD_POOL;
    }
}

/* The sentence for a task's adapted verdict (see wl__run_adapt_executor). */
static void task_reason(const wl_verdict *v, run_adaptation how, int workers, int cores,
                        char *why, size_t len)
{
    double wait = 100 * (v->wait_share + v->sys_share);
    double cpu = 100 * v->user_share;
    if (v->executor == WL_EXEC_SPLIT) {
        snprintf(why, len,
                 "mixed: the pilot computed %.0f%% and waited %.0f%% of its wall time; %d %s "
                 "at once keep %d cores busy (cores / CPU share)",
                 100 * (v->user_share + v->sys_share), 100 * v->wait_share, workers,
                 how == RUN_ADAPT_SPLIT_ON_THREADS ? "threads" : "jobs", cores);
        return;
    }
    if (v->executor == WL_EXEC_PROCESS_POOL) {
        if (how == RUN_ADAPT_ONLY_ASYNC)
            snprintf(why, len,
                     "the pilot computed %.0f%% of its wall time: CPU-bound, but the task has "
                     "only an async form, which runs on the loop: no pool can help",
                     cpu);
        else
            snprintf(why, len,
                     "the pilot computed %.0f%% of its wall time: CPU-bound, so one worker "
                     "process per core (%d)",
                     cpu, cores);
        return;
    }
    switch (how) {
    case RUN_ADAPT_ON_LOOP:
    case RUN_ADAPT_ONLY_ASYNC:
        snprintf(why, len,
                 "the pilot waited %.0f%% of its wall time: I/O-bound, and the task has an "
                 "async form%s: many tasks in flight on one coroutine loop",
                 wait,
                 how == RUN_ADAPT_ONLY_ASYNC ? " (and no other)"
                 : v->executor == WL_EXEC_COROUTINE
                     ? " (the pilot already multiplexes its waits)"
                     : " (its waits have a readiness-based form)");
        break;
    case RUN_ADAPT_WAITS_NEED_THREADS:
        snprintf(why, len,
                 "the pilot waited %.0f%% of its wall time: I/O-bound, in calls no loop can "
                 "wait on (disk, locks, children): the blocking form on a thread pool, though "
                 "the task has an async form",
                 wait);
        break;
    default:
        snprintf(why, len,
                 "the pilot waited %.0f%% of its wall time: I/O-bound, and the task only "
                 "blocks (no async form): the blocking calls go to a thread pool",
                 wait);
        break;
    }
}

/* Commands are processes whatever the verdict: it sets how many at once. */
static int commands_choice(const wl_verdict *v, int limit, int cores, char *why, size_t len)
{
    switch (v->executor) {
    case WL_EXEC_PROCESS_POOL:
        snprintf(why, len,
                 "the pilot computed %.0f%% of its wall time: CPU-bound, so one job per core "
                 "(%d)",
                 100 * v->user_share, cores);
        return cores;
    case WL_EXEC_SPLIT: {
        int workers = by_fraction(v, limit);
        snprintf(why, len,
                 "mixed: the pilot computed %.0f%% and waited %.0f%% of its wall time; %d jobs "
                 "at once keep %d cores busy (cores / CPU share)",
                 100 * (v->user_share + v->sys_share), 100 * v->wait_share, workers, cores);
        return workers;
    }
    default:
        snprintf(why, len,
                 "the pilot waited %.0f%% of its wall time: I/O-bound, so many jobs at once "
                 "(--limit %d)",
                 100 * (v->wait_share + v->sys_share), limit);
        return limit;
    }
}

/* The size for an executor nothing else sized. */
static int default_workers(const wl_run_result *r, const wl_verdict *v, int limit, int cores)
{
    switch (r->executor) {
    case WL_EXEC_COROUTINE:
        return limit;
    case WL_EXEC_THREAD_POOL: {
        int workers = v ? v->predicted[WL_EXEC_THREAD_POOL].workers : 4 * cores;
        return workers < cores ? cores : workers;
    }
    default:
        return cores;
    }
}

void wl__run_choose(wl_run_result *r, const wl_run_opts *o, size_t njobs)
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
    } else if (!tasks) {
        r->executor = v->executor;
        workers = commands_choice(v, limit, cores, why, sizeof(why));
    } else {
        run_adaptation how;
        r->executor = wl__run_adapt_executor(v, r->has_async, r->has_blocking, &how);
        if (v->executor == WL_EXEC_SPLIT)
            workers = by_fraction(v, limit);
        else if (r->executor == WL_EXEC_PROCESS_POOL)
            workers = cores;
        task_reason(v, how, workers, cores, why, sizeof(why));
    }

    if (o->workers > 0) {
        workers = o->workers;
        size_t len = strlen(why);
        snprintf(why + len, sizeof(why) - len, "; %d workers from --workers", workers);
    } else if (workers == 0) {
        workers = default_workers(r, v, limit, cores);
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
