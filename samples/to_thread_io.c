/*
 * to_thread_io -- the brief's asyncio.to_thread example: blocking calls
 * moved to a thread pool so the coroutine loop keeps running.
 *
 * Each fetch_data(i) blocks its thread for 1 s in a blocking read (poll on
 * a pipe nobody writes, like a slow server) -- the kind of call a library
 * without async support makes. N of them run through wl_to_thread on a
 * dedicated pool while a ticker task shows the loop is never blocked: the
 * whole batch takes about 1 s instead of N s.
 *
 *   usage: to_thread_io [N]   (default 5)
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "wlprof/pools.h"
#include "wlprof/sched.h"
#include "sample.h"

static wl_tpool pool;
static int n_calls = 5;
static int ticks;

/* A plain blocking function: waits 1 s for data that never comes. */
static void *fetch_data(void *arg)
{
    long param = (long)arg;
    int fds[2];
    struct pollfd p;
    char *result = malloc(32);

    printf("Do something with %ld...\n", param);
    fflush(stdout);
    if (pipe(fds) == 0) {
        p.fd = fds[0];
        p.events = POLLIN;
        poll(&p, 1, 1000); /* blocks this pool thread, not the loop */
        close(fds[0]);
        close(fds[1]);
    }
    printf("Done with %ld\n", param);
    fflush(stdout);
    snprintf(result, 32, "Result of %ld", param);
    return result;
}

static int fetch_task(void *arg, void **result)
{
    return wl_to_thread(&pool, fetch_data, arg, result);
}

static int ticker(void *arg, void **result)
{
    while (wl_sleep(100) == 0)
        ticks++;
    return 0;
}

static int main_task(void *arg, void **result)
{
    wl_task *tasks[64];
    wl_task *tick;
    double t0 = sample_now();

    wl_spawn(&tick, NULL, "ticker", ticker, NULL);
    for (long i = 0; i < n_calls; i++)
        wl_spawn(&tasks[i], NULL, "fetch", fetch_task, (void *)(i + 1));
    for (int i = 0; i < n_calls; i++) {
        char *res = NULL;
        int st = wl_await(tasks[i], (void **)&res);
        printf("Thread %d fully completed: %s (status %d)\n", i + 1, res ? res : "-", st);
        free(res);
    }
    double elapsed = sample_now() - t0;
    wl_task_cancel(tick);
    wl_await(tick, NULL);
    printf("\n%d blocking 1 s calls on the thread pool: %.2f s (sequential: %d s)\n", n_calls,
           elapsed, n_calls);
    printf("loop ticks meanwhile (every 100 ms): %d -> the loop was never blocked\n", ticks);
    return 0;
}

int main(int argc, char **argv)
{
    uv_loop_t uv;
    wl_loop loop;
    int rc;

    if (argc > 1)
        n_calls = atoi(argv[1]);
    if (n_calls < 1 || n_calls > 64)
        n_calls = 5;
    if (sample_uv_open(&uv, &loop) != 0)
        return 1;
    wl_tpool_init(&uv, &pool, NULL); /* 4 x cores threads, started on demand */
    rc = wl_run(&loop, "main", main_task, NULL, NULL);
    wl_tpool_close(&pool, WL_POOL_CLOSE_WAIT, NULL);
    sample_uv_close(&uv, &loop);
    return rc == 0 ? 0 : 1;
}
