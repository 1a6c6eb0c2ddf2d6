/*
 * faulty_tasks.c -- a task library whose jobs misbehave on request, for
 * the runner's fault tests. Input: {"op": OP, "ms": N} with OP one of
 *   ok     sleep N ms, return 0        segv   crash with SIGSEGV
 *   exit   _exit(3)                     hang   block forever (pause)
 *   fail   return -EIO with a message   spin   compute N ms of CPU
 * `faulty` is the blocking form (exported: the build hides symbols).
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct wl_bytes {
    unsigned char *data;
    size_t len;
    size_t cap;
} wl_bytes;

static int put(wl_bytes *b, const char *s)
{
    size_t n = strlen(s);
    if (b->len + n > b->cap) {
        unsigned char *p = realloc(b->data, b->len + n);
        if (!p)
            return -ENOMEM;
        b->data = p;
        b->cap = b->len + n;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

static int has(const wl_bytes *in, const char *needle)
{
    char buf[512];
    size_t n = in->len < sizeof(buf) - 1 ? in->len : sizeof(buf) - 1;
    memcpy(buf, in->data, n);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

static long ms_of(const wl_bytes *in)
{
    char buf[512];
    size_t n = in->len < sizeof(buf) - 1 ? in->len : sizeof(buf) - 1;
    memcpy(buf, in->data, n);
    buf[n] = '\0';
    const char *p = strstr(buf, "\"ms\":");
    return p ? strtol(p + 5, NULL, 10) : 0;
}

__attribute__((visibility("default"))) int faulty(const wl_bytes *in, wl_bytes *out)
{
    long ms = ms_of(in);
    if (has(in, "\"segv\"")) {
        /* a real invalid access (raise() would return through a handler) */
        volatile uintptr_t addr = 16; /* opaque to the optimiser's bounds checks */
        *(volatile int *)addr = 1;
    } else if (has(in, "\"exit\"")) {
        _exit(3);
    } else if (has(in, "\"hang\"")) {
        for (;;)
            pause();
    } else if (has(in, "\"fail\"")) {
        put(out, "asked to fail");
        return -EIO;
    } else if (has(in, "\"spin\"")) {
        struct timespec t0, t;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
        volatile unsigned long x = 0;
        do {
            for (int i = 0; i < 100000; i++)
                x += (unsigned long)i * 2654435761u;
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
        } while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
    } else if (ms > 0) {
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
    }
    return put(out, "done");
}

/* An async-only task: `napper_async` awaits wl_sleep(ms) on wlprof's loop
 * (the symbol resolves against the wlprof executable), or crashes like
 * `faulty` for "segv". */
int wl_sleep(uint64_t ms);

__attribute__((visibility("default"))) int napper_async(const wl_bytes *in, wl_bytes *out)
{
    if (has(in, "\"segv\"")) {
        volatile uintptr_t addr = 16; /* opaque to the optimiser's bounds checks */
        *(volatile int *)addr = 1;
    }
    int rc = wl_sleep((uint64_t)ms_of(in));
    return rc ? rc : put(out, "slept");
}
