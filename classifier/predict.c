/*
 * predict.c -- the speed-up model behind every recommendation.
 *
 * Assumption (stated in docs/classifier.md): the measured run is a batch of
 * independent tasks, each needing some computing and some waiting, like the
 * brief's fetch_data/process calls. An executor keeps n_flight tasks in
 * flight and lets their computing use n_cpu cores. Two bounds hold:
 *
 *     computing alone needs          cpu_s / n_cpu
 *     each in-flight slot carries    (cpu_s + wait_s) / n_flight
 *
 * so the parallel part takes the larger of the two. Amdahl adds the part
 * of the run no executor overlaps (serial_fraction of the wall time):
 *
 *     predicted = serial * wall + (1 - serial) * max(cpu/n_cpu, (cpu+wait)/n_flight)
 *     speed-up  = wall / predicted
 *
 *   executor      n_flight               n_cpu
 *   coroutine     concurrency            1      (one loop thread computes)
 *   thread pool   threads (sized below)  min(threads, cores)
 *   process pool  cores                  cores
 *   split         its waiting side       cores  (computing sent to processes)
 *
 * cpu_s is core-seconds, so a program that already keeps two cores busy
 * gains nothing from two processes, and loses half its speed if squeezed
 * onto one coroutine loop: the model says so instead of promising a gain.
 * The figures are upper bounds for perfectly divisible work; `wlprof run`
 * measures what is really achieved.
 */
#include "internal.h"

#include <math.h>

static double predicted_wall(const cls_work *w, double serial, int n_flight, int n_cpu)
{
    double compute = w->cpu_s / (double)n_cpu;
    double slots = (w->cpu_s + w->wait_s) / (double)n_flight;
    double parallel = compute > slots ? compute : slots;
    return serial * w->wall_s + (1.0 - serial) * parallel;
}

static void predict_one(const cls_work *w, const wl_classify_opts *o, int n_flight, int n_cpu,
                        wl_prediction *out, int workers)
{
    double t = predicted_wall(w, o->serial_fraction, n_flight, n_cpu);
    out->workers = workers;
    out->speedup = t > 0 ? w->wall_s / t : 1.0;
}

/* The classic sizing rule for a pool mixing waiting and computing:
 * threads = cores * (1 + wait/compute), so that every core stays busy while
 * the other threads wait; at least the cores, at most max_threads. */
int cls__thread_pool_size(const cls_work *w, const wl_classify_opts *o)
{
    double per_core;
    if (w->cpu_s <= 0)
        per_core = (double)o->max_threads;
    else
        per_core = 1.0 + w->wait_s / w->cpu_s;
    double n = ceil((double)o->cores * per_core);
    if (n < o->cores)
        n = o->cores;
    if (n > o->max_threads)
        n = o->max_threads;
    return (int)n;
}

void cls__predict(const cls_work *w, const wl_classify_opts *o, wl_verdict *v)
{
    int threads = cls__thread_pool_size(w, o);
    int thread_cpu = threads < o->cores ? threads : o->cores;

    predict_one(w, o, o->concurrency, 1, &v->predicted[WL_EXEC_COROUTINE], o->concurrency);
    predict_one(w, o, threads, thread_cpu, &v->predicted[WL_EXEC_THREAD_POOL], threads);
    predict_one(w, o, o->cores, o->cores, &v->predicted[WL_EXEC_PROCESS_POOL], o->cores);
    /* A split's waiting side is whatever classify chose (loop or threads). */
    int flight = v->wait_side_workers > 0 ? v->wait_side_workers : o->concurrency;
    predict_one(w, o, flight, o->cores, &v->predicted[WL_EXEC_SPLIT], o->cores);
}
