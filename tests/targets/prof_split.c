/* prof_split CPU_MS SLEEP_MS SECONDS: alternates computing for CPU_MS of
 * CPU time and sleeping SLEEP_MS until SECONDS of wall time have passed,
 * then prints the ground truth from its own exact kernel accounting:
 * "waiting=<blocked share>", where blocked = wall - CPU - run-queue delay
 * and the share is of wall minus run-queue delay (time spent runnable with
 * no free CPU is neither computing nor waiting, as in wlprof's split). On
 * an idle machine that is simply the share of wall spent in nanosleep. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Seconds this thread has spent runnable but waiting for a CPU. */
static double runq_s(void)
{
    unsigned long long run = 0, wait = 0;
    FILE *f = fopen("/proc/thread-self/schedstat", "r");
    if (f) {
        if (fscanf(f, "%llu %llu", &run, &wait) != 2)
            wait = 0;
        fclose(f);
    }
    return (double)wait * 1e-9;
}

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
    double burst = atof(argv[1]) / 1000, nap = atof(argv[2]) / 1000, total = atof(argv[3]);
    volatile unsigned long x = 0;
    double start = clock_s(CLOCK_MONOTONIC), cpu0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    double rq0 = runq_s();
    while (clock_s(CLOCK_MONOTONIC) - start < total) {
        double until = clock_s(CLOCK_THREAD_CPUTIME_ID) + burst;
        while (clock_s(CLOCK_THREAD_CPUTIME_ID) < until)
            for (int i = 0; i < 20000; i++)
                x += (unsigned long)i * 2654435761u;
        struct timespec ts = {(time_t)nap, (long)((nap - (double)(time_t)nap) * 1e9)};
        nanosleep(&ts, NULL);
    }
    double wall = clock_s(CLOCK_MONOTONIC) - start;
    double cpu = clock_s(CLOCK_THREAD_CPUTIME_ID) - cpu0, rq = runq_s() - rq0;
    printf("waiting=%.4f\n", (wall - cpu - rq) / (wall - rq));
    return 0;
}
