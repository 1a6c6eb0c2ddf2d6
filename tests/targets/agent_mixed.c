/* agent_mixed: one function that computes, one that waits (sleeps, then
 * polls a pipe nobody writes to). Single-threaded so every wait belongs to
 * agent_block. Usage: agent_mixed [rounds] (default 25 rounds of ~20 ms
 * computing + ~20 ms waiting). Used by the agent tests for attribution. */
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include "burn.h"

static volatile double sink;

/* Burns ms milliseconds of this thread's CPU time (CPU, not wall time: the
 * same work, and the same samples, on a loaded machine). */
__attribute__((noinline)) static void agent_compute(double ms)
{
    sink = burn_cpu_for(ms / 1000.0);
}

/* Waits about ms milliseconds: half asleep, half polling an idle pipe. */
__attribute__((noinline)) static void agent_block(int fd, int ms)
{
    usleep((useconds_t)ms * 500);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, ms / 2) != 0)
        exit(3);
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 25;
    int fds[2];
    if (pipe(fds) != 0)
        return 2;
    for (int i = 0; i < rounds; i++) {
        agent_compute(20);
        agent_block(fds[0], 20);
    }
    return 0;
}
