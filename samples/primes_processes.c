/*
 * primes_processes -- the brief's CPU-bound example (count primes below
 * 10,000 and 15,000 with run_in_executor on a process pool), plus a heavier
 * setting, run three ways: sequentially on the loop thread, on the thread
 * pool (wl_to_thread) and on the process pool (wl_run_in_process).
 *
 * Note for readers coming from Python: C has no GIL, so threads speed
 * CPU-bound C code up as well as processes do; processes add isolation (a
 * crash or leak stays in the worker) at the price of copying bytes.
 *
 *   usage: primes_processes [heavy_limit]   (default 1500000, 2 x cores jobs)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "primes.h"
#include "wlprof/pools.h"
#include "wlprof/sched.h"
#include "sample.h"

#define MAX_JOBS 64

static wl_tpool tpool;
static wl_ppool ppool;
static long limits[MAX_JOBS];
static long counts[MAX_JOBS];
static int njobs;

/* Process-pool flavour: decimal text in, decimal text out. */
static int count_primes_job(const void *in, size_t inlen, wl_bytes *out)
{
    char buf[32];
    int n;

    snprintf(buf, sizeof(buf), "%.*s", (int)inlen, (const char *)in);
    n = snprintf(buf, sizeof(buf), "%ld", count_primes(atol(buf)));
    return wl_bytes_append(out, buf, (size_t)n);
}

static void *count_primes_thread(void *arg)
{
    return (void *)count_primes(*(long *)arg);
}

static int thread_task(void *arg, void **result)
{
    long *slot = arg;
    void *res = NULL;
    int st = wl_to_thread(&tpool, count_primes_thread, slot, &res);
    counts[slot - limits] = (long)res;
    return st;
}

static int process_task(void *arg, void **result)
{
    long *slot = arg;
    char in[32];
    char txt[32];
    wl_bytes out = {0};
    int st;

    snprintf(in, sizeof(in), "%ld", *slot);
    st = wl_run_in_process(&ppool, "count_primes", in, strlen(in), 0, &out, NULL, 0);
    if (st == 0) {
        snprintf(txt, sizeof(txt), "%.*s", (int)out.len, (const char *)out.data);
        counts[slot - limits] = atol(txt);
    }
    wl_bytes_free(&out);
    return st;
}

/* Runs the current job set one way; returns wall seconds. */
static double run_way(const char *way)
{
    wl_task *tasks[MAX_JOBS];
    int statuses[MAX_JOBS];
    double t0 = sample_now();

    memset(counts, 0, sizeof(counts));
    if (strcmp(way, "sequential") == 0) {
        for (int i = 0; i < njobs; i++)
            counts[i] = count_primes(limits[i]);
    } else {
        wl_task_fn fn = strcmp(way, "threads") == 0 ? thread_task : process_task;
        for (int i = 0; i < njobs; i++)
            wl_spawn(&tasks[i], NULL, way, fn, &limits[i]);
        wl_gather(tasks, (size_t)njobs, statuses, NULL);
    }
    return sample_now() - t0;
}

static void run_setting(const char *title)
{
    const char *ways[3] = {"sequential", "threads", "processes"};
    double t[3];

    printf("== %s: %d job(s):", title, njobs);
    for (int i = 0; i < njobs; i++)
        printf(" %ld", limits[i]);
    printf("\n");
    for (int w = 0; w < 3; w++) {
        t[w] = run_way(ways[w]);
        printf("  %-10s %8.3f s  speed-up %5.2fx  results:", ways[w], t[w], t[0] / t[w]);
        for (int i = 0; i < njobs && i < 4; i++)
            printf(" %ld", counts[i]);
        printf("%s\n", njobs > 4 ? " ..." : "");
    }
}

static long heavy_limit = 1500000;

static int main_task(void *arg, void **result)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);

    njobs = 2;
    limits[0] = 10000;
    limits[1] = 15000;
    run_setting("the brief (primes below 10,000 and 15,000)");
    njobs = (int)(2 * cores > MAX_JOBS ? MAX_JOBS : 2 * cores);
    for (int i = 0; i < njobs; i++)
        limits[i] = heavy_limit;
    run_setting("heavier (2 x cores jobs)");
    printf("(%ld cores; process results: Process 1 completed: %ld primes, ...)\n", cores,
           counts[0]);
    return 0;
}

int main(int argc, char **argv)
{
    uv_loop_t uv;
    wl_loop loop;
    int rc;

    if (argc > 1)
        heavy_limit = atol(argv[1]);
    wl_ppool_register("count_primes", count_primes_job);
    if (sample_uv_open(&uv, &loop) != 0)
        return 1;
    wl_tpool_init(&uv, &tpool, NULL);
    if (wl_ppool_init(&uv, &ppool, NULL) != 0) /* one worker per core */
        return 1;
    rc = wl_run(&loop, "main", main_task, NULL, NULL);
    wl_tpool_close(&tpool, WL_POOL_CLOSE_WAIT, NULL);
    wl_ppool_close(&ppool, WL_POOL_CLOSE_WAIT, NULL);
    sample_uv_close(&uv, &loop);
    return rc == 0 ? 0 : 1;
}
