/*
 * advice_cpu_then_wait.c -- 1 s of CPU in one function (thread CPU time,
 * so a busy machine stretches its wall time, not its work), then 1 s of
 * waiting. Label: its critical path holds the whole 1 s computing run, so
 * every prediction for this program is <= 2x.
 */
#include <stdio.h>
#include <time.h>

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static unsigned long __attribute__((noinline)) crunch(double seconds)
{
    volatile unsigned long h = 1469598103934665603UL;
    double end = cpu_now() + seconds;
    while (cpu_now() < end)
        for (int i = 0; i < 10000; i++)
            h = (h ^ (unsigned long)i) * 1099511628211UL;
    return h;
}

int main(void)
{
    unsigned long h = crunch(1.0);
    struct timespec ts = {1, 0};
    while (nanosleep(&ts, &ts) != 0)
        ;
    printf("%lu\n", h % 1000);
    return 0;
}
