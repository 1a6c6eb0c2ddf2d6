/*
 * advice_loop_starts_pool.c -- an idle event loop that starts its worker
 * pool, the shape of `node -e 'setTimeout(()=>{},1000)'`: one thread with
 * an epoll instance idles in epoll_wait (start-up, argv[1] seconds), then
 * starts argv[2] workers that park on a condition variable for good, then
 * idles in epoll_wait again (argv[3] seconds) and exits.
 *
 * Nothing here blocks inside the loop: the workers' futex waits are idle
 * pool threads, not a loop that never got to wait. Profiled with a slow
 * tick (-F 10) the workers are first seen blocked for a whole tick right
 * after a tick that saw one thread only.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;

static void *worker(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    for (;;)
        pthread_cond_wait(&never, &lock);
    return NULL;
}

static void idle(int ep, double seconds)
{
    struct epoll_event ev;
    epoll_wait(ep, &ev, 1, (int)(seconds * 1000));
}

int main(int argc, char **argv)
{
    double before = argc > 1 ? atof(argv[1]) : 0.5;
    int nworkers = argc > 2 ? atoi(argv[2]) : 4;
    double after = argc > 3 ? atof(argv[3]) : 1.0;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        perror("epoll_create1");
        return 1;
    }
    idle(ep, before);
    for (int i = 0; i < nworkers; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, worker, NULL) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }
        pthread_detach(t);
    }
    idle(ep, after);
    return 0; /* exit() ends the parked workers */
}
