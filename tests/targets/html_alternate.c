/*
 * html_alternate.c -- computes 50 ms in compute_phase(), then sleeps 50 ms
 * in sleep_phase(), N times (argv[1], default 10): the HTML report's test
 * target, whose timeline must alternate and whose flame graph must name
 * both functions. Optional argv[2]: sleep milliseconds instead of 50.
 */
#include <stdlib.h>
#include <time.h>

#include "burn.h"

volatile double sink;

__attribute__((noinline)) void compute_phase(void)
{
    sink += burn_cpu_for(0.05);
}

__attribute__((noinline)) void sleep_phase(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    __asm__ volatile("" ::: "memory"); /* keep the frame: no tail call */
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 10;
    long ms = argc > 2 ? atol(argv[2]) : 50;
    for (int i = 0; i < n; i++) {
        compute_phase();
        sleep_phase(ms);
    }
    return 0;
}
