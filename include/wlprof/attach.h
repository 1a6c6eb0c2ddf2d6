/*
 * wlprof/attach.h -- profiling processes that are already running
 * (`wlprof profile --pid`, `wlprof top`).
 *
 * An attach session samples the given processes (and, on request, their
 * descendants as they appear) from /proc the way wl_profile_command does,
 * but it never signals, stops or reaps them: totals are deltas of
 * /proc/PID/stat and /proc/PID/io between the first look and the last, and
 * the targets keep running after the session ends. A caller can hook every
 * thread observation (the remote stack sampler, wlprof/rstacks.h, does) and
 * take a snapshot of the profile so far at any time (the live view).
 *
 * The session can also start a command itself (for `wlprof top -- CMD`):
 * then it is that command's parent and reaps it, and its exit status is
 * known.
 *
 * Threading: a session belongs to one thread. Library: wl_profiler.
 */
#ifndef WLPROF_ATTACH_H
#define WLPROF_ATTACH_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wlprof/common.h"
#include "wlprof/profiler.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What one thread did in one tick, as the sampler saw it. Strings are
 * borrowed for the duration of the call. */
typedef struct wl_thread_tick {
    int pid, tid;
    char state;           /* /proc state letter at the sample instant */
    const char *comm;
    uint64_t slices;      /* times it was scheduled in (schedstat): when this
                             has not changed, the thread has not run */
    uint64_t utime, stime;  /* clock ticks, its whole life */
    double running_s;     /* on-CPU seconds counted so far (cumulative) */
    double waiting_s;     /* blocked seconds counted so far (cumulative) */
    wl_wait_kind kind;    /* when blocked: why */
    const char *syscall;  /* when blocked: the call, "" if none */
} wl_thread_tick;

typedef void (*wl_thread_tick_fn)(void *ctx, const wl_thread_tick *t);
/* Called after every tick, once all threads were observed; now is seconds
 * since the session started. */
typedef void (*wl_tick_done_fn)(void *ctx, double now);

typedef struct wl_attach_opts {
    double hz;                /* mean sampling rate; 0 means 100 */
    unsigned seed;            /* interval jitter seed; 0 means time-based */
    bool children;            /* also follow descendants (new and existing) */
    wl_thread_tick_fn on_thread; /* optional hooks, with their context */
    wl_tick_done_fn on_tick;
    void *hook_ctx;
} wl_attach_opts;

typedef struct wl_attach wl_attach;

/* Why a pid cannot be profiled, before anything is done to it. Returns 0
 * when it can (notice may then hold a one-line warning, e.g. "another
 * user's process: no wait reasons"; "" otherwise), or a negative errno
 * with a one-line reason in why: -ESRCH no such process, -EINVAL pid 1,
 * our own pid, a kernel thread, -ECHILD a zombie. A thread id is replaced
 * by its process id in *pid (with a notice). */
WL_API int wl_attach_check_pid(int *pid, char *why, size_t whylen);

/* Starts a session on npids running processes (checked with
 * wl_attach_check_pid first) and takes the baseline. Returns 0 with *out
 * set, or a negative errno with err filled (-ESRCH: a process exited
 * during start-up). */
WL_API int wl_attach_begin(wl_attach **out, const int *pids, size_t npids,
                           const wl_attach_opts *opts, char *err, size_t errlen);

/* Starts argv (PATH lookup; stdin, stdout and stderr to /dev/null when
 * quiet_stdio) and a session on it and its descendants. Returns 0, or
 * -ENOENT / -EACCES when it cannot be started (err filled). */
WL_API int wl_attach_spawn(wl_attach **out, char *const argv[], bool quiet_stdio,
                           const wl_attach_opts *opts, char *err, size_t errlen);

/* Why wl_attach_run returned. */
typedef enum wl_attach_why {
    WL_ATTACH_DEADLINE = 0, /* until was reached */
    WL_ATTACH_GONE,         /* every profiled process has exited */
    WL_ATTACH_STOPPED,      /* *stop became non-zero (a signal handler) */
    WL_ATTACH_WOKEN,        /* wake_fd became readable (a key was pressed) */
} wl_attach_why;

/* Samples until `until` seconds since the start (a negative value: no
 * deadline), *stop set (may be NULL), wake_fd readable (-1: none), or every
 * process gone, whichever comes first. Signals interrupt the wait between
 * ticks, so a handler that sets *stop ends it at once. */
WL_API wl_attach_why wl_attach_run(wl_attach *a, double until,
                                   const volatile sig_atomic_t *stop, int wake_fd);

/* Seconds since the session started. */
WL_API double wl_attach_elapsed(const wl_attach *a);

/* The pid of the command wl_attach_spawn started, else of the first root. */
WL_API int wl_attach_pid(const wl_attach *a);

/* Sends sig to the command wl_attach_spawn started (never to an attached
 * process). Returns 0 or -errno (-EPERM for an attached session). */
WL_API int wl_attach_signal_child(wl_attach *a, int sig);

/* The profile so far, without ending the session (caller frees it with
 * wl_profile_free). Returns 0 or -ENOMEM. */
WL_API int wl_attach_snapshot(wl_attach *a, wl_profile *out);

/* Ends the session: a command it started is waited for (it must have
 * exited or been signalled), attached processes are left running. Fills
 * *out (free with wl_profile_free) and frees a. Returns 0 or -ENOMEM. */
WL_API int wl_attach_end(wl_attach *a, wl_profile *out);

#ifdef __cplusplus
}
#endif
#endif
