/* agent_waitexact: blocking calls whose true blocked time the program
 * measures itself, for checking the agent's wait totals. Single-threaded.
 *   agent_quick_writes  200000 write(/dev/null): never blocks, so the
 *                       agent's per-site sampling backs off to its cap
 *   agent_sleeps        10 x usleep(20 ms): blocks on every call
 *   agent_mixed_site    300 x (40 x poll(idle pipe, 0) + poll(idle pipe,
 *                       1 ms)) from ONE call site: mostly quick, sometimes
 *                       blocking, so blocking calls meet a sampled site
 * Usage: agent_waitexact OUT -- writes "sleeps S\nmixed M\n" to OUT, the
 * seconds spent inside the blocking usleep and 1 ms poll calls. */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

__attribute__((noinline)) static int agent_quick_writes(void)
{
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char b[64] = {0};
    for (int i = 0; i < 200000; i++)
        if (write(fd, b, sizeof(b)) != (ssize_t)sizeof(b))
            return -1;
    close(fd);
    return 0;
}

__attribute__((noinline)) static double agent_sleeps(void)
{
    double total = 0;
    for (int i = 0; i < 10; i++) {
        double t0 = now();
        usleep(20000);
        total += now() - t0;
    }
    return total;
}

/* The one call site both kinds of poll go through. */
__attribute__((noinline)) static int site_poll(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms);
}

__attribute__((noinline)) static double agent_mixed_site(int fd)
{
    double total = 0;
    for (int r = 0; r < 300; r++) {
        for (int i = 0; i < 40; i++)
            if (site_poll(fd, 0) != 0)
                return -1;
        double t0 = now();
        if (site_poll(fd, 1) != 0)
            return -1;
        total += now() - t0;
    }
    return total;
}

int main(int argc, char **argv)
{
    int fds[2];
    if (argc != 2 || pipe(fds) != 0)
        return 2;
    if (agent_quick_writes() != 0)
        return 3;
    double sleeps = agent_sleeps();
    double mixed = agent_mixed_site(fds[0]);
    if (mixed < 0)
        return 4;
    FILE *f = fopen(argv[1], "w");
    if (!f)
        return 5;
    fprintf(f, "sleeps %.6f\nmixed %.6f\n", sleeps, mixed);
    return fclose(f) == 0 ? 0 : 6;
}
