/* agent_behave: checks that blocking calls behave exactly as documented
 * while CPU time is being burnt in between (so a CPU-clock sampler fires
 * often): usleep/nanosleep/poll/select sleep their full time and return 0,
 * nothing returns EINTR, errno is left alone on success and set right on
 * failure, data passes through pipes intact. Exit 0 when all held,
 * 1 otherwise (the failing check on stderr). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "burn.h"

static volatile double sink;
static int failures;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU time, not wall time: the same work, and so as many CPU-clock
 * samples, on a loaded machine. */
static void burn(double ms)
{
    sink = burn_cpu_for(ms / 1000.0);
}

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "agent_behave: round %d: %s failed (errno %d)\n", round, #cond, \
                    errno);                                                                \
            failures++;                                                                    \
        }                                                                                  \
    } while (0)

int main(void)
{
    int fds[2];
    if (pipe(fds) != 0)
        return 2;
    for (int round = 0; round < 30; round++) {
        burn(3);
        double t0 = now();
        CHECK(usleep(4000) == 0);
        CHECK(now() - t0 >= 0.004);
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        t0 = now();
        CHECK(poll(&p, 1, 4) == 0);
        CHECK(now() - t0 >= 0.004);
        struct timespec req = {0, 4000000}, rem = {9, 9};
        t0 = now();
        CHECK(nanosleep(&req, &rem) == 0);
        CHECK(now() - t0 >= 0.004);
        fd_set rs;
        FD_ZERO(&rs);
        FD_SET(fds[0], &rs);
        struct timeval tv = {0, 4000};
        t0 = now();
        CHECK(select(fds[0] + 1, &rs, NULL, NULL, &tv) == 0);
        CHECK(now() - t0 >= 0.004);
        char c = 0;
        errno = 0;
        CHECK(read(-1, &c, 1) == -1 && errno == EBADF);
        errno = 777;
        CHECK(write(fds[1], "x", 1) == 1 && errno == 777);
        CHECK(read(fds[0], &c, 1) == 1 && c == 'x' && errno == 777);
    }
    return failures ? 1 : 0;
}
