/* prof_crash [SECONDS]: computes for SECONDS (default 0.2), then dies of
 * SIGSEGV, like a buggy program. */
#include <signal.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 0.2;
    volatile unsigned long x = 0;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        for (int i = 0; i < 1000000; i++)
            x += (unsigned long)i * 2654435761u;
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) * 1e-9 < seconds);
    raise(SIGSEGV);
    return 0;
}
