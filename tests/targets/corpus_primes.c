/*
 * corpus_primes.c [SECONDS] -- label: CPU-bound, process pool.
 *
 * The brief's cpu_intensive_task(): count primes by trial division, going
 * up from 2 for SECONDS of its CPU time (default 1.0; bounded by time so
 * Debug, sanitizer and release builds all run about as long, and by CPU
 * time so a loaded machine does not shrink the computing to a sliver of
 * the run).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int is_prime(long n)
{
    for (long j = 2; j * j <= n; j++)
        if (n % j == 0)
            return 0;
    return 1;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    double end = cpu_now() + seconds;
    long count = 0;
    long i = 2;
    while (cpu_now() < end) {
        for (long stop = i + 2000; i < stop; i++)
            count += is_prime(i);
    }
    printf("primes below %ld: %ld\n", i, count);
    return 0;
}
