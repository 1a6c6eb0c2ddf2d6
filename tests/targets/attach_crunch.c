/* attach_crunch [CYCLES [BURST_MS SLEEP_MS]]: alternates BURST_MS (50) of
 * CPU in crunch_loop() and SLEEP_MS (50) asleep, for CYCLES cycles (default
 * or -1: until stdin reaches EOF, checked between cycles). Prints "ready" on stdout once started. Exits 0, or 3 when
 * a sleep was cut short (EINTR): a profiler attached to it must not change
 * what it sees. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

__attribute__((noinline)) double crunch_loop(double seconds)
{
    volatile double x = 1.0;
    double end = cpu_now() + seconds;
    while (cpu_now() < end)
        for (int i = 0; i < 5000; i++)
            x = x * 1.0000001 + 0.5 / (x + 1.0);
    return x;
}

static int stdin_closed(void)
{
    struct pollfd p = {.fd = 0, .events = POLLIN};
    char c;
    return poll(&p, 1, 0) > 0 && read(0, &c, 1) <= 0;
}

int main(int argc, char **argv)
{
    long cycles = argc > 1 ? atol(argv[1]) : -1;
    double burst = argc > 3 ? atof(argv[2]) / 1000 : 0.05, nap = argc > 3 ? atof(argv[3]) / 1000 : 0.05;
    printf("ready\n");
    fflush(stdout);
    for (long i = 0; cycles < 0 || i < cycles; i++) {
        crunch_loop(burst);
        struct timespec ts = {(time_t)nap, (long)((nap - (double)(time_t)nap) * 1e9)};
        if (nanosleep(&ts, NULL) != 0 && errno == EINTR)
            return 3;
        if (cycles < 0 && stdin_closed())
            break;
    }
    return 0;
}
