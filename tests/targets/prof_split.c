/* prof_split CPU_MS SLEEP_MS SECONDS: alternates computing for CPU_MS of
 * CPU time and sleeping SLEEP_MS until SECONDS of wall time have passed,
 * then prints the ground truth: "waiting=<fraction of wall spent in
 * nanosleep>". A target with a known CPU/wait split for accuracy checks. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: prof_split CPU_MS SLEEP_MS SECONDS\n");
        return 2;
    }
    double cpu = atof(argv[1]) / 1000, nap = atof(argv[2]) / 1000, total = atof(argv[3]);
    volatile unsigned long x = 0;
    double start = clock_s(CLOCK_MONOTONIC), slept = 0;
    while (clock_s(CLOCK_MONOTONIC) - start < total) {
        double until = clock_s(CLOCK_THREAD_CPUTIME_ID) + cpu;
        while (clock_s(CLOCK_THREAD_CPUTIME_ID) < until)
            for (int i = 0; i < 20000; i++)
                x += (unsigned long)i * 2654435761u;
        struct timespec ts = {(time_t)nap, (long)((nap - (double)(time_t)nap) * 1e9)};
        double t0 = clock_s(CLOCK_MONOTONIC);
        nanosleep(&ts, NULL);
        slept += clock_s(CLOCK_MONOTONIC) - t0;
    }
    printf("waiting=%.4f\n", slept / (clock_s(CLOCK_MONOTONIC) - start));
    return 0;
}
