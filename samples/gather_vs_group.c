/*
 * gather_vs_group -- the two error styles when one of three tasks fails.
 *
 *   wl_gather (asyncio.gather(..., return_exceptions=True)): every task runs
 *   to its end; the caller gets each result or error after the slowest
 *   one (2 s): [ok, error, ok].
 *
 *   task group (asyncio.TaskGroup): the failure at 0.5 s cancels the two
 *   siblings at once; the group waits for them to unwind and returns the
 *   first error after ~0.5 s.
 *
 * Usage: gather_vs_group [--scale F]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wlprof/sched.h"

static double scale = 1.0;

typedef struct job {
    const char *name;
    double secs;
    int fail; /* status after the sleep */
} job;

static const job jobs[3] = {
    {"download-a", 1.0, 0},
    {"download-b", 0.5, UV_ECONNRESET},
    {"download-c", 2.0, 0},
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int run_job(void *arg, void **result)
{
    const job *j = arg;
    int rc = wl_sleep((uint64_t)(j->secs * 1000 * scale));
    if (rc) {
        printf("  %s: cancelled (%s), cleaning up\n", j->name, wl_strerror(rc));
        return rc;
    }
    if (j->fail) {
        printf("  %s: failed (%s)\n", j->name, wl_strerror(j->fail));
        return j->fail;
    }
    printf("  %s: done\n", j->name);
    *result = (void *)j->name;
    return 0;
}

static int main_task(void *arg, void **result)
{
    printf("== gather: collect all ==\n");
    double t0 = now();
    wl_task *t[3];
    for (int i = 0; i < 3; i++) {
        int rc = wl_spawn(&t[i], NULL, jobs[i].name, run_job, (void *)&jobs[i]);
        if (rc)
            return rc;
    }
    int st[3];
    void *res[3];
    int failed = wl_gather(t, 3, st, res);
    printf("gather: %.2f s (expected %.2f s), %d failed:", now() - t0, 2.0 * scale, failed);
    for (int i = 0; i < 3; i++)
        printf(" %s", st[i] ? wl_strerror(st[i]) : (char *)res[i]);
    printf("\n\n== task group: fail fast ==\n");

    t0 = now();
    wl_group g;
    wl_group_init(&g, NULL);
    for (int i = 0; i < 3; i++) {
        int rc = wl_group_spawn(&g, NULL, jobs[i].name, run_job, (void *)&jobs[i]);
        if (rc)
            return rc;
    }
    int rc = wl_group_wait(&g);
    printf("group: %.2f s (expected %.2f s), first error: %s\n", now() - t0, 0.5 * scale,
           wl_strerror(rc));
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
    rc = wl_run(&loop, "main", main_task, NULL, NULL);
    wl_loop_close(&loop);
    return rc != 0;
}
