/* prof_fsync DIR [SECONDS]: appends 4 KiB blocks to a file in DIR and
 * fsyncs after each, for SECONDS (default 1): a disk-bound writer. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        if (write(fd, block, sizeof(block)) != (ssize_t)sizeof(block) || fsync(fd) != 0) {
            perror("write/fsync");
            return 1;
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) * 1e-9 < seconds);
    close(fd);
    unlink(path);
    return 0;
}
