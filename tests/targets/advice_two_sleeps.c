/*
 * advice_two_sleeps.c -- two sequential sleeps, 0.5 s then 1.0 s, from two
 * call sites. Label: the best any executor can do for this program is the
 * longest single wait (1.0 s of 1.5 s), so every prediction is <= 2x.
 */
#include <time.h>

static void __attribute__((noinline)) short_wait(void)
{
    struct timespec ts = {0, 500 * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void __attribute__((noinline)) long_wait(void)
{
    struct timespec ts = {1, 0};
    while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) != 0)
        ;
}

int main(void)
{
    short_wait();
    long_wait();
    return 0;
}
