/* agent_burst: quiet, then a burst of wait records faster than the agent's
 * writer drains on its long sleep (agent/writer.c, "Drain period").
 * Usage: agent_burst N -- sleeps 0.6 s (the writer's period climbs to its
 * longest), then makes N usleep(150 us) calls 24 frames deep: each blocks,
 * and each is one WAIT record of ~250 bytes, ~1 MB/s, so a 64 KiB ring
 * fills in ~60 ms unless its producer wakes the writer. */
#include <stdlib.h>
#include <unistd.h>

__attribute__((noinline)) static void agent_burst_wait(int depth)
{
    if (depth > 0) {
        agent_burst_wait(depth - 1);
        __asm__ volatile("" ::: "memory"); /* not a tail call: keep the frame */
        return;
    }
    usleep(150);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 3000;
    usleep(600 * 1000);
    for (int i = 0; i < n; i++)
        agent_burst_wait(24);
    return 0;
}
