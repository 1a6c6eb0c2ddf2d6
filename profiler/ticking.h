/*
 * ticking.h -- interval jitter and the pidfd shared by the two sampling
 * loops (profile.c runs a command, attach.c attaches); the clock is util's
 * (wl__mono_s, wl__tv_s). Internal to the profiler; header-only because
 * each is a few lines.
 */
#ifndef WL_PROFILER_TICKING_H
#define WL_PROFILER_TICKING_H

#include <errno.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* xorshift32 in [0.5, 1.5): cheap, seeded, good enough to de-alias
 * sampling (a fixed rate aliases with periodic work). */
static inline double jitter(unsigned *state)
{
    unsigned x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x ? x : 0x9e3779b9u;
    return 0.5 + (double)(x & 0xffffff) / (double)0x1000000;
}

/* A pidfd for pid (readable once it exited, child or not), or -1. */
static inline int open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

#endif
