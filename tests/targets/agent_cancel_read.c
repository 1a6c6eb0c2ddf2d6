/* agent_cancel_read OUT: the main thread, single-threaded so far, makes
 * 3000 quick reads of /dev/zero through one call site (agent_site_read),
 * then starts a thread and reads a pipe nobody writes, through the same
 * site. The thread cancels the main thread and joins it; the read is a
 * cancellation point, so the join returns PTHREAD_CANCELED and OUT gets
 * "cancelled". Exits 1 (OUT "stuck") when the main thread is still in its
 * read 20 s after the cancel.
 *
 * Under the agent: while the target is single-threaded the agent issues
 * read() as a direct system call, which is no cancellation point, and the
 * main thread's countdown word for read says so (interpose.c,
 * FAST_VIA_REAL). Creating the thread must turn that word to glibc's read,
 * or the cancelled read blocks for ever. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static pthread_t main_thread;
static const char *out_path;

__attribute__((noinline)) static ssize_t agent_site_read(int fd, void *buf, size_t n)
{
    return read(fd, buf, n);
}

static void report(const char *what)
{
    FILE *f = fopen(out_path, "w");
    if (f) {
        fprintf(f, "%s\n", what);
        fclose(f);
    }
}

static void *canceller(void *arg)
{
    (void)arg;
    pthread_cancel(main_thread);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20;
    void *ret = NULL;
    if (pthread_timedjoin_np(main_thread, &ret, &until) != 0) {
        report("stuck");
        _exit(1);
    }
    report(ret == PTHREAD_CANCELED ? "cancelled" : "returned");
    exit(ret == PTHREAD_CANCELED ? 0 : 1);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    out_path = argv[1];
    int zero = open("/dev/zero", O_RDONLY);
    int p[2];
    if (zero < 0 || pipe(p) != 0)
        return 2;
    char buf[64];
    for (int i = 0; i < 3000; i++)
        if (agent_site_read(zero, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
            return 3;
    main_thread = pthread_self();
    pthread_t t;
    if (pthread_create(&t, NULL, canceller, NULL) != 0)
        return 2;
    agent_site_read(p[0], buf, 1); /* nobody writes: only the cancel ends it */
    report("read returned");
    return 3;
}
