/*
 * blocking_pitfall -- the brief's Example 5: a blocking sleep() inside a
 * task. The two tasks are spawned as in Example 3, but each blocks the loop
 * thread instead of awaiting, so nothing else can run meanwhile: 3 s instead
 * of 2 s. The loop's watchdog (watchdog_ms) notices and names each task that
 * held the loop too long. The fixed version (wl_sleep) then takes 2 s and
 * triggers no warning.
 *
 * Usage: blocking_pitfall [--scale F]
 */
#include <stdio.h>
#include <unistd.h>

#include "wlprof/sched.h"
#include "sample.h"

static double scale = 1.0;
static int blocking;

static int fetch_data(void *arg, void **result)
{
    int param = (int)(intptr_t)arg;
    uint64_t ms = (uint64_t)(param * 1000 * scale);
    printf("Do something with %d...\n", param);
    int rc = 0;
    if (blocking)
        usleep((useconds_t)(ms * 1000)); /* WRONG: blocks the whole loop */
    else
        rc = wl_sleep(ms);
    printf("Done with %d\n", param);
    return rc;
}

static int main_task(void *arg, void **result)
{
    wl_task *t1;
    wl_task *t2;
    int rc = wl_spawn(&t1, NULL, "fetch_data(1)", fetch_data, (void *)1);
    if (rc == 0)
        rc = wl_spawn(&t2, NULL, "fetch_data(2)", fetch_data, (void *)2);
    if (rc)
        return rc;
    wl_await(t1, NULL);
    printf("Task 1 fully completed\n");
    wl_await(t2, NULL);
    printf("Task 2 fully completed\n");
    return 0;
}

static int run(const char *title, double expect)
{
    wl_loop_options o = {.watchdog_ms = 100};
    wl_loop loop;
    int rc = sample_loop_init(&loop, NULL, &o);
    if (rc)
        return 1;
    printf("== %s ==\n", title);
    double t0 = sample_now();
    rc = wl_run(&loop, "main", main_task, NULL, NULL);
    printf("total: %.2f s (expected %.2f s)\n\n", sample_now() - t0, expect);
    wl_loop_close(&loop);
    return rc != 0;
}

int main(int argc, char **argv)
{
    scale = sample_scale_arg(argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);
    blocking = 1;
    int bad = run("blocking sleep() inside tasks: serialised", 3 * scale);
    blocking = 0;
    bad |= run("wl_sleep(): concurrent", 2 * scale);
    return bad;
}
