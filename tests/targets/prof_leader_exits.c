/* prof_leader_exits [CPU_SECONDS]: main starts a worker that computes for
 * CPU_SECONDS (default 0.5) of its own CPU time, then leaves through
 * pthread_exit. The process lives on as a zombie leader with a live thread,
 * and must still end (exit status 0) when the worker returns. */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

static double seconds = 0.5;

static void *work(void *arg)
{
    volatile unsigned long x = 0;
    struct timespec ts;
    do {
        for (int i = 0; i < 100000; i++)
            x += (unsigned long)i;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    } while ((double)ts.tv_sec + (double)ts.tv_nsec * 1e-9 < seconds);
    return arg;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        seconds = atof(argv[1]);
    pthread_t t;
    if (pthread_create(&t, NULL, work, NULL) != 0)
        return 1;
    pthread_exit(NULL);
}
