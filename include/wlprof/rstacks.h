/*
 * wlprof/rstacks.h -- native stacks of processes we did not start, read
 * from outside (libunwind's remote unwinding), for `wlprof profile --pid`
 * and `wlprof top`.
 *
 * It plugs into an attach session (wlprof/attach.h) as its thread hook and
 * tick hook. Every tick:
 *  - a thread that is running (and has been getting a CPU) is stopped
 *    alone (PTRACE_SEIZE + PTRACE_INTERRUPT) by a worker thread, its
 *    registers and the top of its stack copied, and let go at once; the
 *    unwinding runs afterwards on the copy, so a pause costs the copy, not
 *    the unwind. Never more than one thread stands stopped, and at most a
 *    few are asked for per tick (py-spy#872);
 *  - a thread blocked in a system call is never stopped (stopping it could
 *    end an epoll_wait with EINTR): its user stack pointer and pc come from
 *    /proc/PID/task/TID/syscall and its stack is read in place, once per
 *    blocked stretch (the scheduler's count of its runs tells whether it
 *    ran since), and the stack is kept while it stays blocked.
 * Samples are written in the agent's file format (agent/wire.h) and read
 * back with wl_stacks_read, so reports, folded and speedscope output are
 * the same as for `wlprof profile CMD`. CPU samples carry the thread's
 * on-CPU time since its previous sample (so seconds are exact sums); a
 * blocked stretch carries its waiting seconds.
 *
 * Where ptrace is refused (Yama ptrace_scope, another user, a container
 * without CAP_SYS_PTRACE, a debugger already attached) the session says
 * why in one line and records nothing: the /proc profile goes on.
 *
 * Library: wl_stacks. Threading: one thread.
 */
#ifndef WLPROF_RSTACKS_H
#define WLPROF_RSTACKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wlprof/attach.h"
#include "wlprof/common.h"
#include "wlprof/stacks.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wl_rstacks wl_rstacks;

/* What stopping threads cost the target (for the report and the summary). */
typedef struct wl_rstacks_stats {
    uint64_t stops;         /* threads stopped (one at a time) */
    double pause_total_s;   /* wall seconds they stood stopped, summed */
    double pause_max_s;     /* the longest single stop */
    uint64_t blocked_reads; /* stacks of blocked threads read without a stop */
    uint64_t cpu_samples;   /* CPU samples recorded */
    uint64_t skipped;       /* not stopped: it had blocked by the time we looked again */
    bool refused;           /* ptrace not allowed: no stacks */
} wl_rstacks_stats;

/* One function's self time (the leaf of the stacks), since the start. */
typedef struct wl_rstacks_func {
    const char *name;       /* borrowed, valid until wl_rstacks_free */
    const char *module;
    double cpu_s;           /* on-CPU seconds with it as the leaf */
    double wait_s;          /* blocked seconds with it as the leaf */
} wl_rstacks_func;

/* Per-sample extension point (Python frames): called after each native
 * sample with the pid and tid it is for, whether it is on-CPU, and its
 * weight in seconds. A frame reader working from outside (process_vm_readv
 * with the pid) can record its own frames here; the native sample is
 * written whatever it does. */
typedef void (*wl_rstacks_sample_fn)(void *ctx, int pid, int tid, bool on_cpu, double weight_s);

/* Makes a sampler writing into a private temporary directory. hz is the
 * session's sampling rate (for the samples/seconds scale of the output).
 * Returns 0, or -errno with a one-line notice (no remote unwinding on this
 * architecture, cannot make the directory). */
WL_API int wl_rstacks_new(wl_rstacks **out, double hz, char *notice, size_t nlen);

/* Whether pid's stacks can be read (ptrace and /proc/PID/mem allowed,
 * no other tracer) before anything is done to it. Returns 0, or -EPERM
 * with a one-line notice saying why not. */
WL_API int wl_rstacks_probe(int pid, char *notice, size_t nlen);

/* Sets the hooks of opts (on_thread, on_tick, hook_ctx) to r. */
WL_API void wl_rstacks_hook(wl_rstacks *r, wl_attach_opts *opts);

/* Sets the per-sample extension hook (NULL: none). */
WL_API void wl_rstacks_set_sample_hook(wl_rstacks *r, wl_rstacks_sample_fn fn, void *ctx);

/* The one-line notice of the first refusal ("" when none), borrowed. */
WL_API const char *wl_rstacks_notice(const wl_rstacks *r);

WL_API void wl_rstacks_get_stats(const wl_rstacks *r, wl_rstacks_stats *out);

/* Functions by self time so far, symbolised as needed; *out is borrowed
 * until the next call. Returns 0 or -ENOMEM. */
WL_API int wl_rstacks_functions(wl_rstacks *r, const wl_rstacks_func **out, size_t *n);

/* Closes the open waits and the files, reads them into *out (free with
 * wl_stacks_free) and removes the directory. Returns 0 or -errno. */
WL_API int wl_rstacks_finish(wl_rstacks *r, wl_stacks *out);

/* Lets go of every thread (none stays traced) and frees r. */
WL_API void wl_rstacks_free(wl_rstacks *r);

#ifdef __cplusplus
}
#endif
#endif
