/* agent_leader_flush: main writes a line into stdio's buffer (stdout is not
 * a terminal, so it stays buffered), starts a worker and leaves through
 * pthread_exit; the worker sleeps 50 ms and returns. The process then ends
 * as glibc ends it when its last thread exits -- exit(0), which flushes the
 * line -- and so it must under the agent. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static void *worker(void *arg)
{
    usleep(50000);
    return arg;
}

int main(void)
{
    printf("flushed at exit\n");
    pthread_t t;
    if (pthread_create(&t, NULL, worker, NULL) != 0)
        return 1;
    pthread_exit(NULL);
}
