/* agent_twosites OUT: two call sites of read() take turns, as in a program
 * that reads a file and a pipe: each of 60 rounds makes 500 quick reads of
 * /dev/zero (agent_quick_zero_reads), then one read of a pipe that blocks
 * until a child, told to go just before, writes a byte ~2 ms later
 * (agent_turn_pipe_reads). Writes "blocked S" to OUT, the seconds the
 * program itself measured inside the pipe reads.
 *
 * The agent keeps one countdown word per fast I/O function (interpose.c,
 * "The fast I/O path"), so here the word changes hands between the two
 * sites twice a round: the pipe site's "time every call" (it blocked) and
 * the /dev/zero site's sampled countdown must both survive the turns. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 60
#define QUICK 500

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

__attribute__((noinline)) static int agent_quick_zero_reads(int fd)
{
    char buf[64];
    for (int i = 0; i < QUICK; i++)
        if (read(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
            return -1;
    return 0;
}

__attribute__((noinline)) static double agent_turn_pipe_reads(int go, int in)
{
    char c = 'g';
    if (write(go, &c, 1) != 1)
        return -1;
    double t0 = now();
    if (read(in, &c, 1) != 1)
        return -1;
    return now() - t0;
}

int main(int argc, char **argv)
{
    int data[2], go[2];
    int zero = open("/dev/zero", O_RDONLY);
    if (argc != 2 || zero < 0 || pipe(data) != 0 || pipe(go) != 0)
        return 2;
    pid_t pid = fork();
    if (pid < 0)
        return 2;
    if (pid == 0) {
        close(data[0]);
        close(go[1]);
        struct timespec ts = {0, 2 * 1000 * 1000};
        char c;
        while (read(go[0], &c, 1) == 1) {
            nanosleep(&ts, NULL);
            if (write(data[1], "x", 1) != 1)
                _exit(1);
        }
        _exit(0);
    }
    close(data[1]);
    close(go[0]);
    double blocked = 0;
    for (int r = 0; r < ROUNDS; r++) {
        if (agent_quick_zero_reads(zero) != 0)
            return 3;
        double b = agent_turn_pipe_reads(go[1], data[0]);
        if (b < 0)
            return 3;
        blocked += b;
    }
    close(go[1]);
    waitpid(pid, NULL, 0);
    FILE *f = fopen(argv[1], "w");
    if (!f)
        return 3;
    fprintf(f, "blocked %.6f\n", blocked);
    return fclose(f) == 0 ? 0 : 3;
}
