/*
 * await_order -- the brief's Example 4: the order of awaits does not change
 * the total. Two tasks (1 s and 2 s) are spawned; main awaits the longer one
 * first. Both run concurrently from the moment main first waits, the 1 s
 * task finishes while main is still waiting for the 2 s one, and awaiting it
 * afterwards returns at once. Total: 2 s, same as awaiting in spawn order.
 *
 * Usage: await_order [--scale F]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wlprof/sched.h"

static double scale = 1.0;
static double t_start;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int fetch_data(void *arg, void **result)
{
    int param = (int)(intptr_t)arg;
    printf("[%5.2f s] Do something with %d...\n", now() - t_start, param);
    int rc = wl_sleep((uint64_t)(param * 1000 * scale));
    printf("[%5.2f s] Done with %d\n", now() - t_start, param);
    *result = param == 1 ? "Result of 1" : "Result of 2";
    return rc;
}

static int main_task(void *arg, void **result)
{
    wl_task *t1;
    wl_task *t2;
    void *r1;
    void *r2;
    int rc = wl_spawn(&t1, NULL, "fetch_data(1)", fetch_data, (void *)1);
    if (rc == 0)
        rc = wl_spawn(&t2, NULL, "fetch_data(2)", fetch_data, (void *)2);
    if (rc)
        return rc;
    wl_await(t2, &r2); /* the longer one first */
    printf("[%5.2f s] Task 2 fully completed\n", now() - t_start);
    wl_await(t1, &r1); /* already finished: returns at once */
    printf("[%5.2f s] Task 1 fully completed\n", now() - t_start);
    printf("[%s, %s]\n", (char *)r1, (char *)r2);
    return 0;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--scale") == 0 && i + 1 < argc)
            scale = atof(argv[++i]);
    setvbuf(stdout, NULL, _IOLBF, 0);
    wl_loop loop;
    int rc = wl_loop_init(&loop, NULL, NULL);
    if (rc) {
        fprintf(stderr, "wl_loop_init: %s\n", wl_strerror(rc));
        return 1;
    }
    t_start = now();
    rc = wl_run(&loop, "main", main_task, NULL, NULL);
    printf("total: %.2f s (expected %.2f s)\n", now() - t_start, 2 * scale);
    wl_loop_close(&loop);
    return rc != 0;
}
