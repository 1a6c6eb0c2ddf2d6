/*
 * bench_tpool -- the thread pool against uv_queue_work, measured in one run.
 *
 *  1. no-op throughput: 200 000 jobs, 1024 in flight (each done_cb submits
 *     the next), both with 4 threads (libuv's default size);
 *  2. 10 us jobs: the same shape with jobs that spin 10 us of their own
 *     thread's CPU time, 256 in flight, 4 threads each.
 *
 * Runs alternate ours/uv so machine load hits both alike; each figure is
 * the median of BENCH_REPS runs with its spread (bench.h). The rate is
 * jobs per second of wall time, and the rows also print CPU seconds per
 * 1000 jobs (the process's user+sys), which a loaded machine disturbs far
 * less than wall time.
 *
 *   bench_tpool                       all rows
 *   bench_tpool --only ours|uv noop|10us N   N runs of one side (for
 *                                     perf stat / callgrind on one process)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench.h"
#include "wlprof/pools.h"

#define NOOP_JOBS 200000
#define NOOP_WINDOW 1024
#define SPIN_JOBS 20000
#define SPIN_WINDOW 256
#define SPIN_NS 10000

static long jobs_total;
static long window;
static long submitted;
static long done;
static int spin_jobs;
static wl_tpool tpool;
static wl_tpool_req tp_reqs[NOOP_WINDOW];
static uv_work_t uv_reqs[NOOP_WINDOW];

static void job_body(void)
{
    if (!spin_jobs)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    long long end = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec + SPIN_NS;
    do
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    while ((long long)ts.tv_sec * 1000000000LL + ts.tv_nsec < end);
}

static void *tp_fn(void *arg)
{
    job_body();
    return arg;
}

static void tp_done_cb(wl_tpool_req *req, int status)
{
    (void)status;
    done++;
    if (submitted < jobs_total) {
        submitted++;
        wl_tpool_submit(&tpool, req, tp_fn, NULL, tp_done_cb);
    }
}

static void uv_fn(uv_work_t *req)
{
    (void)req;
    job_body();
}

static void uv_after(uv_work_t *req, int status)
{
    (void)status;
    done++;
    if (submitted < jobs_total) {
        submitted++;
        uv_queue_work(req->loop, req, uv_fn, uv_after);
    }
}

static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

/* One run; returns jobs/s of wall time and sets *cpu_per_k (CPU s per
 * 1000 jobs). */
static double run_once(int ours, double *cpu_per_k)
{
    uv_loop_t loop;
    wl_tpool_opts opts = {.threads = 4};

    uv_loop_init(&loop);
    if (ours)
        wl_tpool_init(&loop, &tpool, &opts);
    submitted = done = 0;
    double c0 = cpu_now();
    double t0 = bench_now();
    for (long i = 0; i < window; i++) {
        submitted++;
        if (ours)
            wl_tpool_submit(&tpool, &tp_reqs[i], tp_fn, NULL, tp_done_cb);
        else
            uv_queue_work(&loop, &uv_reqs[i], uv_fn, uv_after);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    double t = bench_now() - t0;
    *cpu_per_k = (cpu_now() - c0) / (double)done * 1000;
    if (ours) {
        wl_tpool_close(&tpool, WL_POOL_CLOSE_WAIT, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(&loop);
    return (double)done / t;
}

static void setup(int spin)
{
    spin_jobs = spin;
    jobs_total = spin ? SPIN_JOBS : NOOP_JOBS;
    window = spin ? SPIN_WINDOW : NOOP_WINDOW;
}

static void rows(int spin)
{
    double ours[BENCH_REPS], base[BENCH_REPS], ocpu[BENCH_REPS], bcpu[BENCH_REPS];
    char name[96];

    setup(spin);
    run_once(1, &ocpu[0]); /* warm up both: first-touch, thread starts */
    run_once(0, &bcpu[0]);
    for (int r = 0; r < BENCH_REPS; r++) {
        base[r] = run_once(0, &bcpu[r]);
        ours[r] = run_once(1, &ocpu[r]);
    }
    bench_stat so = bench_stats(ours, BENCH_REPS), sb = bench_stats(base, BENCH_REPS);
    snprintf(name, sizeof(name), "tpool %s throughput (4 thr, %ld in flight)",
             spin ? "10 us job" : "no-op", window);
    bench_row2(name, so, sb, "jobs/s", "uv_queue_work", so.median / sb.median, ">= 1.0x",
               so.median / sb.median >= 1.0);
    so = bench_stats(ocpu, BENCH_REPS);
    sb = bench_stats(bcpu, BENCH_REPS);
    snprintf(name, sizeof(name), "tpool %s CPU per 1000 jobs (reference)", spin ? "10 us job" : "no-op");
    bench_row2(name, so, sb, "CPU s", "uv_queue_work", sb.median / so.median, "(reference)", 1);
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--only") == 0) {
        int ours = strcmp(argv[2], "ours") == 0;
        setup(strcmp(argv[3], "10us") == 0);
        int n = atoi(argv[4]);
        for (int i = 0; i < n; i++) {
            double cpu;
            double rate = run_once(ours, &cpu);
            printf("%s %s: %.0f jobs/s, %.4f CPU s per 1000 jobs\n", ours ? "ours" : "uv", argv[3],
                   rate, cpu);
        }
        return 0;
    }
    rows(0);
    rows(1);
    return 0;
}
