/*
 * agent_internal.h -- what the interposers (interpose.c) need from the
 * sampling core (agent.c). Private to libwlprof-agent.so.
 */
#ifndef WL_AGENT_INTERNAL_H
#define WL_AGENT_INTERNAL_H

#include <signal.h>
#include <stdint.h>

#include "wire.h"

/* Exported from the agent .so (it interposes libc), hidden otherwise. */
#define WL_AGENT_EXPORT __attribute__((visibility("default")))

struct wl_slot;

/* Timing of one interposed blocking call: filled by wl__wait_begin, read by
 * wl__wait_end. Lives on the caller's stack. */
typedef struct wl_wait_ctx {
    struct wl_slot *slot; /* NULL: not timed (agent off, nested, agent thread) */
    uint64_t t0_ns;       /* CLOCK_MONOTONIC at entry */
    uint64_t cpu0_ns;     /* CPU the sampler saw on this thread at entry */
} wl_wait_ctx;

/* Resolves the next definition of a libc symbol (dlsym RTLD_NEXT, with the
 * given version when not NULL). Aborts with a one-line notice if missing:
 * an interposer without its real function cannot keep the target running. */
void *wl__agent_next(const char *name, const char *version);

/* Starts timing a call when the agent records waits on this thread. Never
 * touches errno. */
void wl__wait_begin(wl_wait_ctx *c);

/* Ends timing; when the call blocked at least the threshold, records the
 * caller's stack and the blocked time as a WAIT record. Preserves errno. */
void wl__wait_end(wl_wait_ctx *c, enum wl_wire_call call);

/* True while on-CPU sampling runs (the SIGPROF handler is ours). */
int wl__agent_sampling(void);

/* The target replaces the SIGPROF disposition: stop on-CPU sampling for good
 * (waits are still recorded) so its handler never sees our signals. */
void wl__agent_yield_sigprof(void);

/* Before an exec in this process: flush the rings, disarm this thread's
 * timer and discard a pending SIGPROF (which would kill the new image). */
void wl__agent_before_exec(void);

/* The exec failed: re-arm this thread's timer. */
void wl__agent_exec_failed(void);

/* Before _exit: flush everything recorded so far. */
void wl__agent_before_exit(void);

/* The pthread_create hook: wraps start so the new thread registers and arms
 * its timer. Returns 0 and fills start_out and arg_out with the trampoline, or
 * -1 to create the thread unchanged. */
int wl__agent_wrap_thread(void *(*start)(void *), void *arg, void *(**start_out)(void *),
                          void **arg_out);

/* Releases a wrapper made by wl__agent_wrap_thread when pthread_create failed. */
void wl__agent_unwrap_thread(void *arg);

#endif
