/*
 * agent_internal.h -- what the interposers (interpose.c) need from the
 * sampling core (agent.c). Private to libwlprof-agent.so.
 */
#ifndef WL_AGENT_INTERNAL_H
#define WL_AGENT_INTERNAL_H

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "wire.h"

/* Exported from the agent .so (it interposes libc), hidden otherwise. */
#define WL_AGENT_EXPORT __attribute__((visibility("default")))

struct wl_slot;

/* Hidden but shared between the agent's translation units. */
#define WL_AGENT_HIDDEN __attribute__((visibility("hidden")))

/* ---- the wait-timing fast path ----
 *
 * Every interposed call pays wl__wait_begin + wl__wait_end, so they are
 * inline and, for a call that returns quickly, touch only: two globals, the
 * thread's hot TLS block (initial-exec: one %fs-relative access) and the
 * cycle counter. No errno traffic, no atomics beyond plain loads, no
 * clock_gettime. The slow halves live in agent.c (design: its top comment,
 * "Wait timing"). */

/* Clock kinds a wait can be timed with. */
enum { WL_CLK_MONO = 0, WL_CLK_TICKS = 1 };

/* Process-wide state read on every call; written by start/stop/fork and by
 * the writer thread's calibration. */
struct wl_agent_hot {
    _Atomic int active;            /* recording (file open, state valid) */
    _Atomic unsigned gen;          /* bumped on every start/stop/fork */
    _Atomic int clk;               /* WL_CLK_*: what new waits are timed with */
    _Atomic uint64_t cand_ticks;   /* WL_CLK_TICKS: a shorter call cannot have blocked the threshold */
    uint64_t threshold_ns;         /* record waits blocked at least this long */
    _Atomic int direct_syscalls;   /* the target is single-threaded: see interpose.c */
    unsigned max_period;           /* call-site sampling cap (power of 2; 1: time every call) */
};

/* Timing sampler of one call site (return address) on one thread: after
 * WL_SITE_PROMOTE timed calls in a row that returned quickly, the site is
 * timed on average once every `period` calls (doubling up to
 * wl__g.max_period); a timed call stands for period calls, so its blocked
 * time is recorded x period, and the first one that blocks pins the site to
 * timing every call from then on (a site that blocks now and then would
 * otherwise climb back up between blocks and be seen at random). */
struct wl_site {
    uintptr_t pc;                  /* call site; 0: free */
    uint32_t skip;                 /* calls left to let through untimed */
    uint16_t period;               /* mean calls per timed call (weight) */
    uint8_t calm;                  /* timed quick calls in a row at this period */
    uint8_t pinned;                /* has blocked: timed on every call */
};
#define WL_SITES 32                /* per thread, direct-mapped by pc */
#define WL_SITE_PROMOTE 16

/* Fast I/O functions (interpose.c FAST_IO) with a countdown word of their
 * own in wl_thread_hot.fast[]. */
#define WL_FAST_FNS 8

/* A fast I/O function's countdown (interpose.c, "The fast I/O path").
 * tag: the site's pc, with FAST_VIA_REAL when lent while the function went
 * to the next definition; 0: none. left: calls it may still let through
 * untimed; a value over UINT32_MAX is a countdown spent by the fast path
 * (it decrements past 0) and means 0. */
struct wl_fast_word {
    uint64_t tag;
    uint64_t left;
};

/* Per-thread state read on every call (and by the SIGPROF handler, which
 * runs on the same thread). */
struct wl_thread_hot {
    /* Per fast I/O function: the call site that called it last and that
     * site's calls left untimed, so its untimed path is one compare and
     * one decrement, with no hashing (interpose.c, "The fast I/O path").
     * While a site's countdown lives here its wl_site.skip is 0. */
    struct wl_fast_word fast[WL_FAST_FNS];
    struct wl_slot *slot;          /* this thread's slot for generation gen */
    unsigned gen;                  /* wl__g.gen slot was looked up for */
    int inside;                    /* in agent code or in an interposed call */
    volatile uint64_t cpu_ns;      /* CPU time the sampler charged to this thread */
    uint32_t rng;                  /* xorshift state for the samplers' gaps */
    struct wl_site sites[WL_SITES];
    long nvcsw;                    /* voluntary context switches at the last look */
    int nvcsw_ok;                  /* nvcsw was read at least once */
};

extern struct wl_agent_hot wl__g WL_AGENT_HIDDEN;
extern __thread struct wl_thread_hot wl__t WL_AGENT_HIDDEN __attribute__((tls_model("initial-exec")));

/* Timing of one interposed blocking call: filled by wl__wait_begin, read by
 * wl__wait_end. Lives on the caller's stack. */
typedef struct wl_wait_ctx {
    struct wl_slot *slot; /* NULL: not timed (agent off, nested, agent thread, sampled out) */
    struct wl_site *site; /* the call site's sampler */
    int clk;              /* WL_CLK_* t0 was read with */
    uint64_t t0;          /* clock at entry, in the units of clk */
    uint64_t cpu0_ns;     /* wl__t.cpu_ns at entry */
} wl_wait_ctx;

static inline uint64_t wl__mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The cycle counter: invariant TSC on x86-64, the virtual counter on
 * aarch64. Elsewhere WL_CLK_TICKS is never selected. */
static inline uint64_t wl__ticks_now(void)
{
#if defined(__x86_64__)
    return __rdtsc();
#elif defined(__aarch64__)
    uint64_t v;
    __asm__ __volatile__("mrs %0, cntvct_el0" : "=r"(v));
    return v;
#else
    return wl__mono_now();
#endif
}

static inline uint64_t wl__clock_now(int clk)
{
    return clk == WL_CLK_TICKS ? wl__ticks_now() : wl__mono_now();
}

/* Slow halves (agent.c). */
struct wl_slot *wl__current_slot_slow(void) WL_AGENT_HIDDEN;
void wl__wait_end_slow(wl_wait_ctx *c, enum wl_wire_call call, uint64_t elapsed) WL_AGENT_HIDDEN;
void wl__site_next(struct wl_site *e) WL_AGENT_HIDDEN;

/* The sampler of call site pc on this thread (direct-mapped: may name
 * another site, or none). */
static inline __attribute__((always_inline)) struct wl_site *wl__site_of(uintptr_t pc)
{
    return &wl__t.sites[(pc ^ (pc >> 7)) % WL_SITES];
}

/* The untimed fast path, first thing in every interposer: 1 when this call
 * is not to be timed (agent off, agent code or a nested call, or the
 * site's sampler lets it through: the countdown is spent here). Then the
 * interposer issues the call and returns, touching nothing else. Never
 * touches errno. */
static inline __attribute__((always_inline)) int wl__wait_untimed(uintptr_t pc)
{
    if (__builtin_expect(!atomic_load_explicit(&wl__g.active, memory_order_relaxed) || wl__t.inside, 0))
        return 1;
    struct wl_site *e = wl__site_of(pc);
    if (__builtin_expect(e->pc == pc && e->skip, 1)) {
        e->skip--;
        return 1;
    }
    return 0;
}

/* Starts timing a call made from pc that wl__wait_untimed picked. */
static inline __attribute__((always_inline)) void wl__wait_begin_picked(wl_wait_ctx *c, uintptr_t pc)
{
    c->slot = NULL;
    struct wl_site *e = wl__site_of(pc);
    if (e->pc != pc) {
        e->pc = pc;
        e->skip = 0;
        e->period = 1;
        e->calm = 0;
        e->pinned = 0;
    }
    struct wl_slot *s = wl__t.slot;
    if (__builtin_expect(wl__t.gen != atomic_load_explicit(&wl__g.gen, memory_order_acquire), 0))
        s = wl__current_slot_slow();
    if (!s)
        return;
    wl__t.inside = 1;
    c->slot = s;
    c->site = e;
    c->cpu0_ns = wl__t.cpu_ns;
    c->clk = atomic_load_explicit(&wl__g.clk, memory_order_relaxed);
    c->t0 = wl__clock_now(c->clk);
}

/* Starts timing a call made from pc when the agent records waits on this
 * thread and the site's sampler picks this call. Never touches errno. */
static inline __attribute__((always_inline)) void wl__wait_begin(wl_wait_ctx *c, uintptr_t pc)
{
    c->slot = NULL;
    if (wl__wait_untimed(pc))
        return;
    wl__wait_begin_picked(c, pc);
}

/* Ends timing; when the call blocked at least the threshold, records the
 * caller's stack and the blocked time as a WAIT record. Preserves errno. */
static inline __attribute__((always_inline)) void wl__wait_end(wl_wait_ctx *c, enum wl_wire_call call)
{
    if (!c->slot)
        return;
    uint64_t d = wl__clock_now(c->clk) - c->t0;
    uint64_t cand = c->clk == WL_CLK_TICKS ? atomic_load_explicit(&wl__g.cand_ticks, memory_order_relaxed)
                                           : wl__g.threshold_ns;
    if (__builtin_expect(d < cand, 1)) {
        struct wl_site *e = c->site;
        if (++e->calm >= WL_SITE_PROMOTE || e->period > 1)
            wl__site_next(e);
        wl__t.inside = 0;
        return;
    }
    wl__wait_end_slow(c, call, d);
}

/* Resolves the next definition of a libc symbol (dlsym RTLD_NEXT, with the
 * given version when not NULL). Aborts with a one-line notice if missing:
 * an interposer without its real function cannot keep the target running. */
void *wl__agent_next(const char *name, const char *version);

/* wl__g.direct_syscalls was just stored: the fast I/O interposers follow
 * (interpose.c). */
void wl__interpose_direct_changed(void) WL_AGENT_HIDDEN;
void wl__interpose_resolve_for_handler(void) WL_AGENT_HIDDEN;

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
