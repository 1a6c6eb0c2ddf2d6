/*
 * advice_output.c -- a target for the text output checks: a function with
 * a C++ (Itanium ABI) name computes 0.3 s of CPU, then the program waits
 * 0.3 s in a system call the wait-reason table does not list
 * (mq_timedreceive), so its name must come from the full syscall table.
 */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "burn.h"

/* "wlprof_test::hot_loop(int)" once demangled. */
double hot_loop(int rounds) __asm__("_ZN11wlprof_test8hot_loopEi");
double __attribute__((noinline)) hot_loop(int rounds)
{
    double x = 0;
    for (int i = 0; i < rounds; i++)
        x += burn_cpu_for(0.1);
    return x;
}

int main(void)
{
    double x = hot_loop(3);
    char name[64];
    snprintf(name, sizeof(name), "/wlprof-advice-%d", (int)getpid());
    struct mq_attr attr = {.mq_maxmsg = 1, .mq_msgsize = 16};
    mqd_t q = mq_open(name, O_CREAT | O_RDONLY, 0600, &attr);
    if (q != (mqd_t)-1) {
        mq_unlink(name);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 300 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        char buf[16];
        while (mq_timedreceive(q, buf, sizeof(buf), NULL, &until) < 0 && errno == EINTR)
            ;
        mq_close(q);
    }
    printf("%.1f\n", x > 0 ? 1.0 : 0.0);
    return 0;
}
