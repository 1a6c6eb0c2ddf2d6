/* prof_thread_exec: computes for 0.2 s of CPU time, then a second thread
 * execs `sleep 1`: the new image takes over the leader's pid and tid with
 * fresh CPU counters. The run is mostly waiting. */
#include <pthread.h>
#include <time.h>
#include <unistd.h>

static void *exec_sleep(void *arg)
{
    execl("/bin/sleep", "sleep", "1", (char *)NULL);
    return arg;
}

int main(void)
{
    volatile unsigned long x = 0;
    struct timespec ts;
    do {
        for (int i = 0; i < 100000; i++)
            x += (unsigned long)i;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    } while ((double)ts.tv_sec + (double)ts.tv_nsec * 1e-9 < 0.2);
    pthread_t t;
    pthread_create(&t, NULL, exec_sleep, NULL);
    pause();
    return 1;
}
