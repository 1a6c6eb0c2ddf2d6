/* agent_threads: four threads each burning ~0.3 s of CPU in agent_spin.
 * Usage: agent_threads [ms per thread]. */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

static volatile double sink;
static int ms = 300;

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

__attribute__((noinline)) static void *agent_spin(void *arg)
{
    double end = cpu_now() + ms / 1000.0, x = (double)(long)arg;
    while (cpu_now() < end)
        for (int i = 0; i < 2000; i++)
            x = x * 1.0000001 + 0.5 / (x + 1.0);
    sink = x;
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        ms = atoi(argv[1]);
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        if (pthread_create(&t[i], NULL, agent_spin, (void *)i) != 0)
            return 2;
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    return 0;
}
