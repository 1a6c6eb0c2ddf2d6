/*
 * seq_vs_concurrent -- the brief's Examples 1-3 in C.
 *
 *   1. synchronous: fetch_data(1) then fetch_data(2) with a blocking sleep:  3 s
 *   2. "async but awaited at once": the coroutine version called directly
 *      from a task, one after the other (like awaiting coroutine objects
 *      that were never scheduled): still 3 s, no concurrency
 *   3. both spawned first (create_task), then awaited: 2 s, they overlap
 *   4. the same in a task group (asyncio.TaskGroup): 2 s, and no task
 *      handle to forget -- the form to copy
 *
 * Every status is checked: an await returns the task's status, and a task
 * spawned before a later step failed is still cancelled and awaited, never
 * left behind.
 *
 * Usage: seq_vs_concurrent [--scale F]   (F multiplies every duration; 1 = the brief)
 */
#include <stdio.h>
#include <unistd.h>

#include "wlprof/sched.h"
#include "sample.h"

static double scale = 1.0;

static uint64_t ms_of(int secs)
{
    return (uint64_t)(secs * 1000 * scale);
}

/* Example 1: the blocking function. */
static const char *fetch_data_sync(int param)
{
    printf("Do something with %d...\n", param);
    usleep((useconds_t)(ms_of(param) * 1000));
    printf("Done with %d\n", param);
    return param == 1 ? "Result of 1" : "Result of 2";
}

/* Examples 2-3: the awaiting version. arg = the parameter. */
static int fetch_data(void *arg, void **result)
{
    int param = (int)(intptr_t)arg;
    printf("Do something with %d...\n", param);
    int rc = wl_sleep(ms_of(param));
    printf("Done with %d\n", param);
    *result = param == 1 ? "Result of 1" : "Result of 2";
    return rc;
}

static int example2(void *arg, void **result)
{
    void *r1;
    void *r2;
    int rc = fetch_data((void *)1, &r1); /* called directly: runs to completion first */
    if (rc)
        return rc;
    printf("Task 1 fully completed\n");
    rc = fetch_data((void *)2, &r2);
    if (rc)
        return rc;
    printf("Task 2 fully completed\n");
    printf("[%s, %s]\n", (char *)r1, (char *)r2);
    return 0;
}

static int example3(void *arg, void **result)
{
    wl_task *t1;
    wl_task *t2;
    void *r1;
    void *r2;
    int rc = wl_spawn(&t1, NULL, "fetch_data(1)", fetch_data, (void *)1);
    if (rc)
        return rc;
    rc = wl_spawn(&t2, NULL, "fetch_data(2)", fetch_data, (void *)2);
    if (rc) {
        /* t1 is already scheduled: cancel it and consume its handle */
        wl_task_cancel(t1);
        wl_await(t1, NULL);
        return rc;
    }
    int rc1 = wl_await(t1, &r1);
    if (rc1 == 0)
        printf("Task 1 fully completed\n");
    int rc2 = wl_await(t2, &r2); /* awaited even when t1 failed: no leak */
    if (rc1 || rc2)
        return rc1 ? rc1 : rc2;
    printf("Task 2 fully completed\n");
    printf("[%s, %s]\n", (char *)r1, (char *)r2);
    return 0;
}

/* Example 4: a task group owns its members. wl_group_wait waits for all,
 * cancels the rest when one fails, returns the first error, and frees them;
 * a member spawned before a later spawn failed is cancelled and awaited. */
typedef struct fetch_job {
    int param;
    void *result;
} fetch_job;

static int fetch_job_fn(void *arg, void **result)
{
    fetch_job *j = arg;
    return fetch_data((void *)(intptr_t)j->param, &j->result);
}

static int example4(void *arg, void **result)
{
    fetch_job jobs[2] = {{1, NULL}, {2, NULL}};
    wl_task *members[2];
    wl_group g;
    int rc = 0;
    wl_group_init(&g, NULL);
    for (int i = 0; i < 2 && rc == 0; i++) {
        rc = wl_group_spawn(&g, &members[i], i == 0 ? "fetch_data(1)" : "fetch_data(2)",
                            fetch_job_fn, &jobs[i]);
        if (rc)
            for (int k = 0; k < i; k++)
                wl_task_cancel(members[k]);
    }
    int wait_rc = wl_group_wait(&g); /* always: it frees the members */
    if (rc == 0)
        rc = wait_rc;
    if (rc)
        return rc;
    printf("Both tasks fully completed\n");
    printf("[%s, %s]\n", (char *)jobs[0].result, (char *)jobs[1].result);
    return 0;
}

static int run_example(int n, wl_task_fn fn, double expect)
{
    wl_loop loop;
    int rc = sample_loop_init(&loop, NULL, NULL);
    if (rc)
        return 1;
    double t0 = sample_now();
    rc = wl_run(&loop, "main", fn, NULL, NULL);
    double el = sample_now() - t0;
    wl_loop_close(&loop);
    if (rc) {
        fprintf(stderr, "example %d failed: %s\n", n, wl_strerror(rc));
        return 1;
    }
    printf("example %d: %.2f s (expected %.2f s)\n\n", n, el, expect);
    return 0;
}

int main(int argc, char **argv)
{
    scale = sample_scale_arg(argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);

    printf("== Example 1: synchronous, blocking sleep ==\n");
    double t0 = sample_now();
    const char *r1 = fetch_data_sync(1);
    printf("Fetch 1 fully completed\n");
    const char *r2 = fetch_data_sync(2);
    printf("Fetch 2 fully completed\n[%s, %s]\n", r1, r2);
    printf("example 1: %.2f s (expected %.2f s)\n\n", sample_now() - t0, 3 * scale);

    printf("== Example 2: async, but each call awaited at once ==\n");
    int bad = run_example(2, example2, 3 * scale);
    printf("== Example 3: spawned first, then awaited ==\n");
    bad |= run_example(3, example3, 2 * scale);
    printf("== Example 4: a task group ==\n");
    bad |= run_example(4, example4, 2 * scale);
    return bad;
}
