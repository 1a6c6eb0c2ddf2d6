/*
 * create_task.c -- the tutorial's create_task example, built by the install
 * test against the installed headers and libwlprof alone (pkg-config and
 * find_package(wlprof)).
 *
 * main spawns say_after(1 s, "hello") and say_after(2 s, "world") before
 * awaiting either, so the two sleeps overlap: about 2 s in all, not 3.
 * Prints one line the test parses:
 *   elapsed=E start1=S1 end1=E1 start2=S2 end2=E2   (seconds from main's start)
 */
#include <stdio.h>
#include <time.h>

#include <wlprof/sched.h>

typedef struct say_after {
    unsigned secs;
    const char *what;
    double start, end;
} say_after;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int say(void *arg, void **result)
{
    say_after *s = arg;
    s->start = now();
    int rc = wl_sleep(s->secs * 1000u);
    s->end = now();
    if (rc == 0)
        printf("%s\n", s->what);
    return rc;
}

static int main_task(void *arg, void **result)
{
    say_after *s = arg;
    wl_task *t1;
    wl_task *t2;
    int rc = wl_spawn(&t1, NULL, "hello", say, &s[0]);
    if (rc)
        return rc;
    rc = wl_spawn(&t2, NULL, "world", say, &s[1]);
    if (rc) {
        wl_task_cancel(t1);
        wl_await(t1, NULL);
        return rc;
    }
    int rc1 = wl_await(t1, NULL);
    int rc2 = wl_await(t2, NULL);
    return rc1 ? rc1 : rc2;
}

int main(void)
{
    say_after s[2] = {{1, "hello", 0, 0}, {2, "world", 0, 0}};
    wl_loop loop;
    int rc = wl_loop_init(&loop, NULL, NULL);
    if (rc) {
        fprintf(stderr, "wl_loop_init: %s\n", wl_strerror(rc));
        return 1;
    }
    double t0 = now();
    rc = wl_run(&loop, "main", main_task, s, NULL);
    double el = now() - t0;
    wl_loop_close(&loop);
    if (rc) {
        fprintf(stderr, "create_task: %s\n", wl_strerror(rc));
        return 1;
    }
    printf("elapsed=%.3f start1=%.3f end1=%.3f start2=%.3f end2=%.3f\n", el, s[0].start - t0,
           s[0].end - t0, s[1].start - t0, s[1].end - t0);
    return 0;
}
