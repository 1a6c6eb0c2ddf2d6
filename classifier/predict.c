/*
 * predict.c -- the speed-up model behind every recommendation.
 *
 * Two questions, answered separately and labelled so (docs/classifier.md):
 *
 * 1. A batch of N such jobs (what `wlprof run` does): jobs are independent,
 *    each needing the measured computing and waiting. An executor keeps
 *    n_flight jobs in flight and lets their computing use n_cpu cores:
 *
 *        per job = serial * wall
 *                + (1 - serial) * max(cpu / n_cpu, (cpu + wait) / n_flight)
 *
 * 2. This program, one run: the same bound, but never below its critical
 *    path -- a single blocking call cannot overlap with itself, and one
 *    thread's run of computing between two waits cannot be split:
 *
 *        this run = serial * wall
 *                 + max(longest_wait, longest_cpu_run, (1 - serial) * batch part)
 *
 *    (no faster than now when only the critical path limits it).
 *
 *   executor      n_flight               n_cpu
 *   coroutine     concurrency            1      (one loop thread computes)
 *   thread pool   threads (sized below)  min(threads, cores); 1 for CPython
 *   process pool  cores                  cores
 *   split         its waiting side       cores  (computing sent to processes)
 *
 * cpu is core-seconds, so a program that already keeps two cores busy gains
 * nothing from two processes, and loses half its speed if squeezed onto one
 * coroutine loop: the model says so instead of promising a gain. CPython
 * threads take turns on the GIL, so a thread pool runs their computing on
 * one core at a time whatever the pool's size.
 */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct shape {
    int n_flight;
    int n_cpu;
} shape;

static double batch_part(const wl_model *m, shape s)
{
    double compute = m->cpu_s / (double)s.n_cpu;
    double slots = (m->cpu_s + m->wait_s) / (double)s.n_flight;
    return compute > slots ? compute : slots;
}

static void predict_one(const wl_model *m, const wl_classify_opts *o, shape s, int workers,
                        wl_prediction *program, wl_prediction *batch)
{
    double serial = o->serial_fraction * m->wall_s;
    double part = (1.0 - o->serial_fraction) * batch_part(m, s);
    double t_batch = serial + part;
    double path = fmax(m->longest_wait_s, m->longest_cpu_s);
    double t_run = serial + fmax(path, part);
    /* The critical path only says what cannot be gained; it never makes an
     * executor that adds no contention slower than the program is now. */
    if (t_run > m->wall_s && t_batch <= m->wall_s)
        t_run = m->wall_s;
    batch->workers = program->workers = workers;
    batch->speedup = t_batch > 0 ? m->wall_s / t_batch : 1.0;
    program->speedup = t_run > 0 ? m->wall_s / t_run : 1.0;
}

/* The classic sizing rule for a pool mixing waiting and computing:
 * threads = cores * (1 + wait/compute), so that every core stays busy while
 * the other threads wait; at least the cores, at most max_threads. */
int wl__cls_thread_pool_size(const wl_model *m, const wl_classify_opts *o)
{
    double per_core;
    if (m->cpu_s <= 0)
        per_core = (double)o->max_threads;
    else
        per_core = 1.0 + m->wait_s / m->cpu_s;
    double n = ceil((double)o->cores * per_core);
    if (n < o->cores)
        n = o->cores;
    if (n > o->max_threads)
        n = o->max_threads;
    return (int)n;
}

void wl__cls_predict(const wl_model *m, const wl_classify_opts *o, wl_verdict *v)
{
    int threads = wl__cls_thread_pool_size(m, o);
    int thread_cpu = m->cpython ? 1 : threads < o->cores ? threads : o->cores;
    /* A split's waiting side is whatever classify chose (loop or threads). */
    int flight = v->wait_side_workers > 0 ? v->wait_side_workers : o->concurrency;

    predict_one(m, o, (shape){o->concurrency, 1}, o->concurrency,
                &v->predicted[WL_EXEC_COROUTINE], &v->batch[WL_EXEC_COROUTINE]);
    predict_one(m, o, (shape){threads, thread_cpu}, threads, &v->predicted[WL_EXEC_THREAD_POOL],
                &v->batch[WL_EXEC_THREAD_POOL]);
    predict_one(m, o, (shape){o->cores, o->cores}, o->cores,
                &v->predicted[WL_EXEC_PROCESS_POOL], &v->batch[WL_EXEC_PROCESS_POOL]);
    predict_one(m, o, (shape){flight, o->cores}, o->cores, &v->predicted[WL_EXEC_SPLIT],
                &v->batch[WL_EXEC_SPLIT]);
    double best = 0;
    for (int e = 0; e < WL_EXEC_COUNT; e++)
        best = fmax(best, v->predicted[e].speedup);
    v->model.critical_path_s = best > 0 ? m->wall_s / best : m->wall_s;
}

/* ---- the predictions as sentences ----------------------------------------- */

static const char *const exec_words[WL_EXEC_COUNT] = {
    [WL_EXEC_COROUTINE] = "coroutine",
    [WL_EXEC_THREAD_POOL] = "thread pool",
    [WL_EXEC_PROCESS_POOL] = "process pool",
    [WL_EXEC_SPLIT] = "split",
};

static const char *const prefixes[] = {"this program (one run): ", "a batch of N such jobs",
                                       "for this program alone "};

static bool is_prediction_reason(const char *r)
{
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (strncmp(r, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    return false;
}

/* Why the decision tree's executor is not the one this run predicts best. */
static const char *why_not_best(wl_executor rec, wl_executor best)
{
    if (rec == WL_EXEC_COROUTINE)
        return "it already multiplexes its waits on a loop: more tasks in flight need no "
               "threads";
    if (rec == WL_EXEC_THREAD_POOL && best == WL_EXEC_COROUTINE)
        return "its calls block: a loop needs them rewritten non-blocking first";
    if (best == WL_EXEC_COROUTINE)
        return "a loop runs all computing on one thread, which batches of jobs feel first";
    return "the figures are upper bounds; the choice follows how it waits and computes "
           "(above)";
}

int wl__cls_prediction_reasons(wl_verdict *v)
{
    /* Drop the previous statement of the predictions, remembering where
     * it stood. */
    size_t at = v->nreasons;
    size_t keep = 0;
    for (size_t i = 0; i < v->nreasons; i++) {
        if (is_prediction_reason(v->reasons[i])) {
            if (at == v->nreasons || i < at)
                at = keep;
            free(v->reasons[i]);
            continue;
        }
        v->reasons[keep++] = v->reasons[i];
    }
    v->nreasons = keep;
    if (at > keep)
        at = keep;

    const wl_prediction *pr = v->predicted;
    const wl_prediction *ba = v->batch;
    const wl_model *m = &v->model;
    char *add[3] = {NULL, NULL, NULL};
    int n = 0;
    char wait[64] = "";
    if (m->longest_wait_call[0])
        snprintf(wait, sizeof(wait), " (%s)", m->longest_wait_call);
    if (asprintf(&add[n++],
                 "this program (one run): coroutine %.2fx, thread pool %.2fx, process pool "
                 "%.2fx, split %.2fx -- no faster than its critical path, %.2f s: the longest "
                 "single wait %.2f s%s cannot overlap itself, the longest CPU run of one thread "
                 "%.2f s cannot be split%s; %s",
                 pr[WL_EXEC_COROUTINE].speedup, pr[WL_EXEC_THREAD_POOL].speedup,
                 pr[WL_EXEC_PROCESS_POOL].speedup, pr[WL_EXEC_SPLIT].speedup,
                 m->critical_path_s, m->longest_wait_s, wait, m->longest_cpu_s,
                 m->cpython ? ", and CPython threads compute one at a time" : "",
                 m->independent) < 0)
        add[n - 1] = NULL;
    if (asprintf(&add[n++],
                 "a batch of N such jobs (what 'wlprof run' does), per job: coroutine %.2fx (%d "
                 "tasks), thread pool %.2fx (%d threads), process pool %.2fx (%d processes), "
                 "split %.2fx",
                 ba[WL_EXEC_COROUTINE].speedup, ba[WL_EXEC_COROUTINE].workers,
                 ba[WL_EXEC_THREAD_POOL].speedup, ba[WL_EXEC_THREAD_POOL].workers,
                 ba[WL_EXEC_PROCESS_POOL].speedup, ba[WL_EXEC_PROCESS_POOL].workers,
                 ba[WL_EXEC_SPLIT].speedup) < 0)
        add[n - 1] = NULL;
    wl_executor best = v->executor;
    for (int e = 0; e < WL_EXEC_COUNT; e++)
        if (pr[e].speedup > pr[best].speedup * 1.05)
            best = (wl_executor)e;
    if (best != v->executor) {
        int k;
        if (ba[v->executor].speedup >= ba[best].speedup * 0.95)
            k = asprintf(&add[n++],
                         "for this program alone %s predicts more (%.2fx vs %.2fx); %s is "
                         "recommended for batches of such jobs (%.2fx vs %.2fx)",
                         exec_words[best], pr[best].speedup, pr[v->executor].speedup,
                         exec_words[v->executor], ba[v->executor].speedup, ba[best].speedup);
        else
            k = asprintf(&add[n++], "for this program alone %s predicts more (%.2fx vs %.2fx), "
                                    "but %s: %s",
                         exec_words[best], pr[best].speedup, pr[v->executor].speedup,
                         exec_words[v->executor], why_not_best(v->executor, best));
        if (k < 0)
            add[n - 1] = NULL;
    }
    for (int i = 0; i < n; i++)
        if (!add[i])
            goto nomem;
    char **grown = realloc(v->reasons, (v->nreasons + (size_t)n) * sizeof(*grown));
    if (!grown)
        goto nomem;
    v->reasons = grown;
    memmove(&grown[at + (size_t)n], &grown[at], (v->nreasons - at) * sizeof(*grown));
    for (int i = 0; i < n; i++)
        grown[at + (size_t)i] = add[i];
    v->nreasons += (size_t)n;
    return 0;
nomem:
    for (int i = 0; i < n; i++)
        free(add[i]);
    return -ENOMEM;
}
