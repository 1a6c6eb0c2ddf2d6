/* prof_busy [SECONDS] [THREADS] [IDLE_THREADS]: spins THREADS threads until
 * each has used SECONDS of CPU time (default 1 s, 1 thread) while
 * IDLE_THREADS more sit parked on a condition variable, like an idle worker
 * pool. CPU time, not wall time, so the work is the same on a busy machine. */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

static double seconds = 1.0;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int done;

static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *spin(void *arg)
{
    volatile unsigned long x = 0;
    while (thread_cpu() < seconds)
        for (int i = 0; i < 100000; i++)
            x += (unsigned long)i * 2654435761u;
    return arg;
}

static void *idle(void *arg)
{
    pthread_mutex_lock(&lock);
    while (!done)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    return arg;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        seconds = atof(argv[1]);
    int nbusy = argc > 2 ? atoi(argv[2]) : 1;
    int nidle = argc > 3 ? atoi(argv[3]) : 0;
    pthread_t t[64];
    int n = 0;
    for (int i = 0; i < nidle && n < 64; i++)
        pthread_create(&t[n++], NULL, idle, NULL);
    for (int i = 1; i < nbusy && n < 64; i++)
        pthread_create(&t[n++], NULL, spin, NULL);
    spin(NULL);
    pthread_mutex_lock(&lock);
    done = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    return 0;
}
