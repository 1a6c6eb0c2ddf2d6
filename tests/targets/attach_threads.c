/* attach_threads NTHREADS ITERATIONS: NTHREADS threads each run a fixed
 * number of iterations of arithmetic (fixed work, not fixed CPU time, so a
 * profiler's pauses show as a longer run). Prints "ready" once the threads
 * exist, waits for a line on stdin, runs them, and prints the wall seconds
 * the work took. Used by tests/attach (a thread id to attach to) and
 * bench/bench_attach.c (the slowdown of an attached target). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long iterations;
static pthread_barrier_t start;

__attribute__((noinline)) static double crunch_fixed(long n)
{
    volatile double x = 1.0;
    for (long i = 0; i < n; i++)
        x = x * 1.0000001 + 0.5 / (x + 1.0);
    return x;
}

static void *worker(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&start);
    crunch_fixed(iterations);
    return NULL;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: attach_threads NTHREADS ITERATIONS\n");
        return 2;
    }
    int n = atoi(argv[1]);
    iterations = atol(argv[2]);
    if (n < 1 || n > 4096 || iterations < 0)
        return 2;
    pthread_t *t = calloc((size_t)n, sizeof(*t));
    pthread_barrier_init(&start, NULL, (unsigned)n + 1);
    for (int i = 0; i < n; i++)
        if (pthread_create(&t[i], NULL, worker, NULL) != 0)
            return 1;
    printf("ready\n");
    fflush(stdout);
    char line[16];
    if (!fgets(line, sizeof(line), stdin))
        return 1;
    double t0 = now();
    pthread_barrier_wait(&start);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    printf("%.6f\n", now() - t0);
    free(t);
    return 0;
}
