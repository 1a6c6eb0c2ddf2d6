/*
 * corpus_mt_hasher.c [THREADS] -- label: CPU-bound, process pool; already
 * uses several cores.
 *
 * One thread per core (default: the online cores, at least 2), each hashing
 * its own buffer over and over for 1.2 s of its CPU time (not wall time: a
 * loaded machine must not shrink the computing) -- no shared state --
 * while the main thread waits in pthread_join (a futex: coordination, not
 * I/O).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

enum { BUF = 1 << 16 };
static const double RUN_SECONDS = 1.2;

static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *hash_worker(void *arg)
{
    uint64_t *out = arg;
    unsigned char *buf = malloc(BUF);
    if (!buf)
        return NULL;
    for (int i = 0; i < BUF; i++)
        buf[i] = (unsigned char)(i * 7 + (int)*out);
    uint64_t h = 14695981039346656037ULL;
    double end = thread_cpu() + RUN_SECONDS;
    while (thread_cpu() < end)
        for (int i = 0; i < BUF; i++) {
            h ^= buf[i];
            h *= 1099511628211ULL;
        }
    free(buf);
    *out = h;
    return NULL;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 2)
        n = 2;
    if (n > 64)
        n = 64;
    pthread_t th[64];
    uint64_t res[64];
    for (long i = 0; i < n; i++) {
        res[i] = (uint64_t)i;
        if (pthread_create(&th[i], NULL, hash_worker, &res[i]) != 0) {
            perror("pthread_create");
            return 2;
        }
    }
    uint64_t x = 0;
    for (long i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        x ^= res[i];
    }
    printf("mt_hasher: %ld threads (%llu)\n", n, (unsigned long long)(x % 1000));
    return 0;
}
