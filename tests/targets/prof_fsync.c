/* prof_fsync DIR [SECONDS]: appends 4 KiB blocks to a file in DIR and
 * fsyncs after each, until it has been blocked in fsync for SECONDS
 * (default 1; at most 30 s of wall time): a disk-bound writer.
 *
 * "Blocked" is the target's own ground truth, the time inside fsync less
 * the CPU it used there and the run-queue wait it had there (schedstat):
 * on a loaded machine or a fast disk a fixed wall time of fsyncs may block
 * for only a fraction of it, so the test's floor would measure the disk. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double clock_s(clockid_t clk)
{
    struct timespec t;
    clock_gettime(clk, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Run-queue wait of this thread so far, s (0 without schedstat). */
static double runq_s(void)
{
    unsigned long long run = 0, wait = 0;
    FILE *f = fopen("/proc/thread-self/schedstat", "r");
    if (f) {
        if (fscanf(f, "%llu %llu", &run, &wait) != 2)
            wait = 0;
        fclose(f);
    }
    return (double)wait * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: prof_fsync DIR [SECONDS]\n");
        return 2;
    }
    double seconds = argc > 2 ? atof(argv[2]) : 1.0;
    char path[4096];
    snprintf(path, sizeof(path), "%s/prof_fsync.%d", argv[1], (int)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror(path);
        return 1;
    }
    char block[4096];
    memset(block, 'x', sizeof(block));
    double start = clock_s(CLOCK_MONOTONIC), blocked = 0;
    do {
        if (write(fd, block, sizeof(block)) != (ssize_t)sizeof(block)) {
            perror("write");
            return 1;
        }
        double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_THREAD_CPUTIME_ID), q0 = runq_s();
        if (fsync(fd) != 0) {
            perror("fsync");
            return 1;
        }
        double q1 = runq_s(), c1 = clock_s(CLOCK_THREAD_CPUTIME_ID), w1 = clock_s(CLOCK_MONOTONIC);
        double b = (w1 - w0) - (c1 - c0) - (q1 - q0);
        if (b > 0)
            blocked += b;
    } while (blocked < seconds && clock_s(CLOCK_MONOTONIC) - start < 30);
    close(fd);
    unlink(path);
    printf("blocked in fsync %.3f s\n", blocked);
    return 0;
}
