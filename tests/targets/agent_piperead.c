/* agent_piperead OUT: reads 40 bytes from a pipe that a child fills one
 * byte every 10 ms, so each read blocks ~10 ms; writes "blocked S" to OUT,
 * the seconds the program itself measured inside those reads. */
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

__attribute__((noinline)) static double agent_pipe_reads(int fd)
{
    double total = 0;
    char c;
    for (int i = 0; i < 40; i++) {
        double t0 = now();
        if (read(fd, &c, 1) != 1)
            return -1;
        total += now() - t0;
    }
    return total;
}

int main(int argc, char **argv)
{
    int p[2];
    if (argc != 2 || pipe(p) != 0)
        return 2;
    pid_t pid = fork();
    if (pid < 0)
        return 2;
    if (pid == 0) {
        close(p[0]);
        struct timespec ts = {0, 10 * 1000 * 1000};
        for (int i = 0; i < 40; i++) {
            nanosleep(&ts, NULL);
            if (write(p[1], "x", 1) != 1)
                _exit(1);
        }
        _exit(0);
    }
    close(p[1]);
    double blocked = agent_pipe_reads(p[0]);
    waitpid(pid, NULL, 0);
    FILE *f = fopen(argv[1], "w");
    if (!f || blocked < 0)
        return 3;
    fprintf(f, "blocked %.6f\n", blocked);
    return fclose(f) == 0 ? 0 : 3;
}
