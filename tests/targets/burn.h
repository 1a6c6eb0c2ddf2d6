/*
 * burn.h -- computes for a given amount of the calling thread's CPU time.
 * Always inlined, so the CPU lands in the caller: the agent tests attribute
 * samples to named functions (agent_child_compute, region_compute).
 */
#ifndef WL_TESTS_BURN_H
#define WL_TESTS_BURN_H

#include <time.h>

static inline __attribute__((always_inline)) double burn_cpu_for(double seconds)
{
    struct timespec ts;
    double x = 1.0, end;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    end = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9 + seconds;
    for (;;) {
        for (int i = 0; i < 2000; i++)
            x = x * 1.0000001 + 0.5 / (x + 1.0);
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        if ((double)ts.tv_sec + (double)ts.tv_nsec * 1e-9 >= end)
            break;
    }
    return x;
}

#endif
