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

#include "wlprof/sched.h"
#include "sample.h"

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
    double t0 = sample_now();
    wl_task *t[3];
    for (int i = 0; i < 3; i++) {
        int rc = wl_spawn(&t[i], NULL, jobs[i].name, run_job, (void *)&jobs[i]);
        if (rc)
            return rc;
    }
    int st[3];
    void *res[3];
    int failed = wl_gather(t, 3, st, res);
    printf("gather: %.2f s (expected %.2f s), %d failed:", sample_now() - t0, 2.0 * scale, failed);
    for (int i = 0; i < 3; i++)
        printf(" %s", st[i] ? wl_strerror(st[i]) : (char *)res[i]);
    printf("\n\n== task group: fail fast ==\n");

    t0 = sample_now();
    wl_group g;
    wl_group_init(&g, NULL);
    for (int i = 0; i < 3; i++) {
        int rc = wl_group_spawn(&g, NULL, jobs[i].name, run_job, (void *)&jobs[i]);
        if (rc)
            return rc;
    }
    int rc = wl_group_wait(&g);
    printf("group: %.2f s (expected %.2f s), first error: %s\n", sample_now() - t0, 0.5 * scale,
           wl_strerror(rc));
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
    rc = wl_run(&loop, "main", main_task, NULL, NULL);
    wl_loop_close(&loop);
    return rc != 0;
}
