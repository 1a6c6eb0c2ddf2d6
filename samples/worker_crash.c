/*
 * worker_crash -- a process-pool job that segfaults fails alone.
 *
 * Eight jobs go to a process pool; job 4 dereferences a bad pointer. Its
 * worker dies with SIGSEGV: that one job fails with an error naming the
 * signal, the pool forks a replacement, and the seven others complete
 * (Python's ProcessPoolExecutor would raise BrokenProcessPool for all of
 * them).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wlprof/pools.h"
#include "wlprof/sched.h"
#include "sample.h"

static wl_ppool pool;

static int square(const void *in, size_t inlen, wl_bytes *out)
{
    char buf[64];
    long x;
    int n;

    snprintf(buf, sizeof(buf), "%.*s", (int)inlen, (const char *)in); /* bytes, not a string */
    x = atol(buf);
    usleep(50 * 1000);
    n = snprintf(buf, sizeof(buf), "%ld (pid %d)", x * x, (int)getpid());
    return wl_bytes_append(out, buf, (size_t)n);
}

static int crash(const void *in, size_t inlen, wl_bytes *out)
{
    /* volatile pointer to volatile: the compiler cannot see it is NULL and
     * must keep the store (with only the pointer volatile, gcc -O2 drops a
     * store whose result nobody reads, and the job "succeeds") */
    volatile int *volatile bad = NULL;
    *bad = 42;
    return 0;
}

static int job_task(void *arg, void **result)
{
    long i = (long)arg;
    char in[16];
    char err[128] = "";
    wl_bytes out = {0};
    int st;

    snprintf(in, sizeof(in), "%ld", i);
    st = wl_run_in_process(&pool, i == 4 ? "crash" : "square", in, strlen(in), 0, &out, err,
                           sizeof(err));
    if (st == 0)
        printf("job %ld: ok, %.*s\n", i, (int)out.len, (const char *)out.data);
    else
        printf("job %ld: FAILED: %s\n", i, err);
    wl_bytes_free(&out);
    return st;
}

static int main_task(void *arg, void **result)
{
    wl_task *tasks[8];
    int statuses[8];
    int failed;

    for (long i = 0; i < 8; i++)
        wl_spawn(&tasks[i], NULL, "job", job_task, (void *)(i + 1));
    failed = wl_gather(tasks, 8, statuses, NULL);
    printf("\n%d of 8 jobs failed; the pool forked %lu replacement worker(s) and kept going\n",
           failed, wl_ppool_respawns(&pool));
    return failed == 1 ? 0 : 1;
}

int main(void)
{
    uv_loop_t uv;
    wl_loop loop;
    wl_ppool_opts opts = {.workers = 2};
    int rc;

    wl_ppool_register("square", square);
    wl_ppool_register("crash", crash);
    if (sample_uv_open(&uv, &loop) != 0)
        return 1;
    if (wl_ppool_init(&uv, &pool, &opts) != 0)
        return 1;
    rc = wl_run(&loop, "main", main_task, NULL, NULL);
    wl_ppool_close(&pool, WL_POOL_CLOSE_WAIT, NULL);
    sample_uv_close(&uv, &loop);
    return rc == 0 ? 0 : 1;
}
