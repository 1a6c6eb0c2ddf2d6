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

#include "wlprof/sched.h"
#include "sample.h"

static double scale = 1.0;
static double t_start;

static int fetch_data(void *arg, void **result)
{
    int param = (int)(intptr_t)arg;
    printf("[%5.2f s] Do something with %d...\n", sample_now() - t_start, param);
    int rc = wl_sleep((uint64_t)(param * 1000 * scale));
    printf("[%5.2f s] Done with %d\n", sample_now() - t_start, param);
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
    printf("[%5.2f s] Task 2 fully completed\n", sample_now() - t_start);
    wl_await(t1, &r1); /* already finished: returns at once */
    printf("[%5.2f s] Task 1 fully completed\n", sample_now() - t_start);
    printf("[%s, %s]\n", (char *)r1, (char *)r2);
    return 0;
}

int main(int argc, char **argv)
{
    scale = sample_scale_arg(argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);
    wl_loop loop;
    int rc = sample_loop_init(&loop, NULL, NULL);
    if (rc)
        return 1;
    t_start = sample_now();
    rc = wl_run(&loop, "main", main_task, NULL, NULL);
    printf("total: %.2f s (expected %.2f s)\n", sample_now() - t_start, 2 * scale);
    wl_loop_close(&loop);
    return rc != 0;
}
