/*
 * corpus_fsync_writer.c [DIR] -- label: I/O-bound, thread pool (disk).
 *
 * A journal writer: append 4 KiB, fdatasync, repeat, for 1.2 s of wall
 * time (bounded by time: disks differ). DIR must be on a real disk (tmpfs
 * makes fdatasync free); default ".". The file is removed at the end.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/corpus_fsync_writer.%d.tmp", argc > 1 ? argv[1] : ".",
             (int)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror(path);
        return 2;
    }
    char block[4096];
    memset(block, 'j', sizeof(block));
    double end = now() + 1.2;
    long n = 0;
    while (now() < end) {
        if (write(fd, block, sizeof(block)) != (ssize_t)sizeof(block) || fdatasync(fd) < 0) {
            perror("write/fdatasync");
            unlink(path);
            return 2;
        }
        n++;
    }
    close(fd);
    unlink(path);
    printf("fsync_writer: %ld synced writes\n", n);
    return 0;
}
