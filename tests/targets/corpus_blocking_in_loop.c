/*
 * corpus_blocking_in_loop.c -- label: mixed, split, and the pitfall
 * "blocking call inside the event loop".
 *
 * The brief's Example 5: an event loop (epoll + timerfd) whose handlers
 * call a blocking sleep (time.sleep inside a coroutine) or crunch numbers
 * on the loop thread. Three rounds of: wait 50 ms in epoll, sleep 150 ms
 * in the handler, wait 50 ms in epoll, compute 250 ms in the handler --
 * about 1.5 s; while a handler runs, nothing else on the loop can.
 */
#include "corpus_server.h"

static void arm(int tfd, int ms)
{
    struct itimerspec its;
    memset(&its, 0, sizeof(its));
    its.it_value.tv_nsec = (long)ms * 1000000L;
    if (timerfd_settime(tfd, 0, &its, NULL) < 0)
        corpus_die("timerfd_settime");
}

int main(void)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    if (ep < 0 || tfd < 0)
        corpus_die("epoll/timerfd");
    corpus_epoll_add(ep, tfd, 0);
    uint64_t h = 1;
    int events = 0;
    arm(tfd, 50);
    while (events < 6) {
        struct epoll_event ev;
        int n = epoll_wait(ep, &ev, 1, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            corpus_die("epoll_wait");
        uint64_t exp;
        if (read(tfd, &exp, sizeof(exp)) < 0)
            corpus_die("read timerfd");
        if (events % 2 == 0) {
            /* the blocking call inside the loop */
            struct timespec ts = {0, 150 * 1000 * 1000};
            while (nanosleep(&ts, &ts) != 0)
                ;
        } else {
            /* the CPU burst inside the loop */
            h = corpus_compute_for(0.25, h);
        }
        events++;
        arm(tfd, 50);
    }
    close(tfd);
    close(ep);
    printf("blocking_in_loop: %d events (%llu)\n", events, (unsigned long long)(h % 1000));
    return 0;
}
