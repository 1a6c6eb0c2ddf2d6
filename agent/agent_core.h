/*
 * agent_core.h -- what the sampling core's files share (slots and rings,
 * the SIGPROF handler, clock calibration, the writer thread, thread and
 * fork/exec/exit handling, start/stop). Private to libwlprof-agent.so; the
 * interposers' view is agent_internal.h. Design: agent.c's top comment.
 *
 *   slots.c      slots (one per thread) and their registration
 *   sampling.c   per-thread CPU-clock timers and the SIGPROF handler
 *   clock.c      cycle-counter calibration (writer thread) and conversion
 *   wait.c       the slow half of wait timing and call-site sampling
 *   writer.c     the writer thread, draining rings to the output file
 *   lifecycle.c  thread start/exit, fork, exec and _exit
 *   agent.c      start/stop API, constructor/destructor, process state
 *
 * Everything here is async-signal-safe unless its comment says otherwise.
 */
#ifndef WL_AGENT_CORE_H
#define WL_AGENT_CORE_H

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "agent_internal.h"
#include "pyagent.h"

#define WL_MAX_SLOTS 1024
#define WL_RING_BYTES (64 * 1024)
#define WL_DRAIN_PERIOD_NS (50 * 1000 * 1000)      /* the writer's shortest sleep */
#define WL_DRAIN_MAX_PERIOD_NS (200 * 1000 * 1000) /* and its longest: writer.c, "Drain period" */
#define WL_NAME_REFRESH_NS (1000 * 1000 * 1000)    /* re-read thread names every 1 s */
#define WL_LIVENESS_CYCLES 10 /* writer.c, others_alive: while counted threads live */
#define WL_OUTBUF_BYTES (256 * 1024)
#define WL_SITE_MAX_PERIOD 64                 /* see wl_site in agent_internal.h */
#define WL_TICKS_MIN_PER_NS 0.5               /* no invariant TSC runs below 500 MHz */
#define WL_CAL_MIN_WINDOW_NS (5 * 1000 * 1000) /* shortest baseline worth a rate */

enum { SLOT_FREE = 0, SLOT_CLAIMED, SLOT_LIVE, SLOT_EXITED };

struct wl_slot {
    _Atomic int state;          /* SLOT_* */
    int tid;                    /* owner thread */
    timer_t timer;              /* its CPU-clock timer */
    _Atomic int has_timer;      /* timer created and not deleted */
    unsigned char *ring;        /* WL_RING_BYTES, mmap'ed on first claim */
    _Atomic uint64_t head;      /* bytes written (producer: owner thread) */
    _Atomic uint64_t tail;      /* bytes consumed (holder of wl__drain_lock) */
    _Atomic uint64_t dropped;   /* samples lost: ring full or busy */
    uint64_t dropped_sent;      /* consumer: dropped already reported */
    volatile sig_atomic_t busy; /* an interposer is unwinding or appending */
    uint64_t last_cpu_ns;       /* handler: thread CPU clock at last sample */
    uint64_t last_user_ns;      /* handler: RUSAGE_THREAD at last sample */
    uint64_t last_sys_ns;
    uint32_t rng;               /* xorshift state for interval jitter */
    char name[16];              /* thread name as last read */
    char name_sent[16];         /* consumer: name in the file */
    int tid_sent;               /* consumer: tid the THREAD record was for */
};

struct wl_agent_state {
    _Atomic int cpu_on;         /* SIGPROF handler is ours and timers run */
    int pid;                    /* process whose state this is */
    int ppid;                   /* its parent when the image started */
    int preloaded;              /* started from the environment */
    double hz;
    uint64_t mean_ns;           /* mean sampling interval */
    char dir[PATH_MAX - 64];
    char path[PATH_MAX];        /* current output file */
    char exe[256];
    uintptr_t self_lo, self_hi; /* this .so's text, to skip our frames */
    pthread_t writer;
    int writer_running;
    _Atomic int writer_tid;      /* 0 until the writer runs */
    _Atomic int writer_private_fds; /* the writer left the shared fd table */
    _Atomic int live_threads;    /* threads registered by wl__register_self, not yet exited */
    _Atomic int writer_stop;
    int writer_fd;              /* the writer's own descriptor of path (its table), or -1 */
    _Atomic unsigned slots_hwm;  /* slots [0, hwm) were ever claimed: loops stop there */
    int lazy;                   /* preloaded: the file is made by the first drain with records */
    int file_open;              /* this image's file exists (path) */
    uint64_t start_ns;          /* CLOCK_MONOTONIC when this image started recording */
    unsigned long long mod_adds, mod_subs; /* dl_iterate_phdr change counters */
    int mods_written;
    uint64_t names_ns;          /* mono time thread names were last re-read */
    _Atomic int writer_wake;    /* futex: 1 asks the writer to drain now */
    pthread_key_t key;
    int key_ok;
    int inited;
    int py_probed;              /* looked for CPython in this image */
    int (*real_pthread_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
    int (*real_pthread_join)(pthread_t, void **);
    int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);
    int (*real_sigmask)(int, const sigset_t *, sigset_t *);
};

/* Cycle-counter calibration: the start pair is written by start before any
 * wait uses WL_CLK_TICKS; the rest by the writer thread. */
struct wl_agent_cal {
    uint64_t ticks0, mono0;           /* reference pair taken at start */
    uint64_t last_ticks, last_mono;   /* writer: pair of the last steadiness check */
    _Atomic uint64_t ns_per_tick_q32; /* ns per tick x 2^32; 0 until calibrated */
};

extern struct wl_agent_state wl__agent WL_AGENT_HIDDEN;
extern struct wl_agent_cal wl__cal WL_AGENT_HIDDEN;
extern struct wl_slot wl__slots[WL_MAX_SLOTS] WL_AGENT_HIDDEN;
extern atomic_flag wl__drain_lock WL_AGENT_HIDDEN;

/* ---- small helpers (async-signal-safe) ---- */

/* Slots to look at: those ever claimed (untouched ones cost page faults). */
static inline int wl__slots_used(void)
{
    return (int)atomic_load_explicit(&wl__agent.slots_hwm, memory_order_acquire);
}

static inline uint64_t ts_ns(const struct timespec *ts)
{
    return (uint64_t)ts->tv_sec * 1000000000ull + (uint64_t)ts->tv_nsec;
}

static inline uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts_ns(&ts);
}

static inline int sys_gettid(void)
{
    return (int)syscall(SYS_gettid);
}

static inline void lock_drain(void)
{
    while (atomic_flag_test_and_set_explicit(&wl__drain_lock, memory_order_acquire))
        syscall(SYS_sched_yield);
}

static inline void unlock_drain(void)
{
    atomic_flag_clear_explicit(&wl__drain_lock, memory_order_release);
}

/* ---- rings ---- */

/* Reserves size bytes (multiple of 8) in s's ring; returns NULL when full.
 * Only the owning thread calls this (handler or interposer, never both at
 * once thanks to slot->busy). */
static inline void *ring_reserve(struct wl_slot *s, uint32_t size, uint64_t *newhead)
{
    uint64_t head = atomic_load_explicit(&s->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&s->tail, memory_order_acquire);
    uint64_t pos = head % WL_RING_BYTES;
    uint64_t pad = (pos + size > WL_RING_BYTES) ? WL_RING_BYTES - pos : 0;
    if (WL_RING_BYTES - (head - tail) < pad + size)
        return NULL;
    if (pad) {
        wl_wire_rec *p = (wl_wire_rec *)(s->ring + pos);
        p->type = WL_REC_PAD;
        p->nframes = 0;
        p->size = (uint32_t)pad;
        pos = 0;
    }
    *newhead = head + pad + size;
    return s->ring + pos;
}

/* Asks the writer to drain now (async-signal-safe: one futex wake, and only
 * when no request is pending). */
static inline void wl__writer_nudge(void)
{
    if (!atomic_exchange_explicit(&wl__agent.writer_wake, 1, memory_order_acq_rel))
        syscall(SYS_futex, &wl__agent.writer_wake, 1 /* FUTEX_WAKE */ | 128 /* _PRIVATE */, 1, NULL, NULL, 0);
}

static inline void ring_commit(struct wl_slot *s, uint64_t newhead)
{
    atomic_store_explicit(&s->head, newhead, memory_order_release);
    /* Half full: the writer may be in a long sleep (writer.c, "Drain period"). */
    if (newhead - atomic_load_explicit(&s->tail, memory_order_relaxed) > WL_RING_BYTES / 2)
        wl__writer_nudge();
}

/* The calling thread's Python frames, into py (WL_WIRE_MAX_PYFRAMES): their
 * count, 0 when none; *pysize: the PYFRAMES record they make (0 for none).
 * Frames naming a code object not described yet wake the writer, to read
 * it while it is alive (pyagent.c, "At exit"). */
static inline int take_pyframes(int tid, int is_wait, wl_wire_pyframe *py, uint32_t *pysize)
{
    int n = wl__py_agent_capture(tid, is_wait, py, WL_WIRE_MAX_PYFRAMES);
    if (n && wl__py_agent_any_new(py, n))
        wl__writer_nudge();
    *pysize = n ? (uint32_t)(sizeof(wl_wire_pyframes) + (size_t)n * sizeof(*py)) : 0;
    return n;
}

/* Writes the PYFRAMES record of n Python frames at p (reserved with the
 * CPU or WAIT record it follows). Nothing when n is 0. */
static inline void put_pyframes(unsigned char *p, int tid, const wl_wire_pyframe *py, int n)
{
    if (n <= 0)
        return;
    wl_wire_pyframes *r = (wl_wire_pyframes *)p;
    r->h.type = WL_REC_PYFRAMES;
    r->h.nframes = (uint16_t)n;
    r->h.size = (uint32_t)(sizeof(*r) + (size_t)n * sizeof(*py));
    r->tid = tid;
    r->pad = 0;
    memcpy(r + 1, py, (size_t)n * sizeof(*py));
}

/* The calling thread's slot for this generation, or NULL (slots.c). */
static inline struct wl_slot *current_slot(void)
{
    return wl__current_slot_slow();
}

/* ---- agent.c ---- */

/* The one line the agent may print: "stacks disabled" for what (errno err). */
void wl__notice(const char *what, int err) WL_AGENT_HIDDEN;

/* ---- slots.c ---- */

/* Claims a free slot for thread tid (its ring emptied), or NULL. */
struct wl_slot *wl__slot_claim(int tid) WL_AGENT_HIDDEN;
/* Reads thread tid's name from /proc into name (unchanged on failure). */
void wl__read_task_name(int tid, char name[16]) WL_AGENT_HIDDEN;
/* Registers the calling thread and arms its timer. */
struct wl_slot *wl__register_self(void) WL_AGENT_HIDDEN;

/* ---- sampling.c ---- */

uint64_t wl__next_interval(struct wl_slot *s) WL_AGENT_HIDDEN;
void wl__timer_arm(struct wl_slot *s, uint64_t ns) WL_AGENT_HIDDEN;
int wl__timer_setup(struct wl_slot *s, int tid, int self) WL_AGENT_HIDDEN;
void wl__timer_teardown(struct wl_slot *s) WL_AGENT_HIDDEN;
/* Stops on-CPU sampling: disarms every timer. */
void wl__stop_timers(void) WL_AGENT_HIDDEN;
void wl__on_sigprof(int sig, siginfo_t *si, void *ucv) WL_AGENT_HIDDEN;

/* ---- clock.c ---- */

void wl__clock_init(void) WL_AGENT_HIDDEN;
void wl__clock_calibrate(void) WL_AGENT_HIDDEN;
uint64_t wl__ticks_to_ns(uint64_t d) WL_AGENT_HIDDEN;

/* ---- writer.c (the wl__out_* and wl__drain_all_locked: drain lock held) ---- */

void wl__out_flush(void) WL_AGENT_HIDDEN;
void wl__emit_modules(int changed_only) WL_AGENT_HIDDEN;
void wl__drain_all_locked(int final) WL_AGENT_HIDDEN;
void wl__drain_all(int final) WL_AGENT_HIDDEN;
void wl__last_thread_exit(int counted) WL_AGENT_HIDDEN;
void wl__writer_start(void) WL_AGENT_HIDDEN;
int wl__open_file(void) WL_AGENT_HIDDEN;
/* A new process image starts recording (start, fork child): its pid and
 * start time; the file now, or (lazy) when it first has records. */
int wl__begin_image(void) WL_AGENT_HIDDEN;

/* ---- lifecycle.c ---- */

void wl__on_thread_exit(void *p) WL_AGENT_HIDDEN;
void wl__atfork_prepare(void) WL_AGENT_HIDDEN;
void wl__atfork_parent(void) WL_AGENT_HIDDEN;
void wl__atfork_child(void) WL_AGENT_HIDDEN;

#endif
