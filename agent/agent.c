/*
 * agent.c -- the sampling core of libwlprof-agent.so: on-CPU stacks from
 * per-thread CPU-clock timers, per-thread lock-free rings, and a writer
 * thread that drains them to a per-process file (format: wire.h).
 *
 * How it is loaded
 *   `wlprof profile` puts the .so in LD_PRELOAD and names a directory in
 *   WLPROF_AGENT_DIR; the constructor starts sampling when that is set. A
 *   program may instead link the .so and call wlprof_agent_start/stop (the
 *   in-process API in wl_agent does), in which case the constructor stays
 *   dormant. Children inherit the environment, so exec'd images load the
 *   agent again and write their own file.
 *
 * On-CPU sampling
 *   Every registered thread owns a POSIX timer on its own CPU clock that
 *   sends SIGPROF to that thread only (SIGEV_THREAD_ID). A CPU clock only
 *   advances while the thread runs, so a sleeping thread is never
 *   interrupted: no EINTR is introduced into nanosleep/poll/epoll_wait. The
 *   timer is one-shot and re-armed by the handler with an interval drawn
 *   uniformly from [0.5, 1.5] x the mean, against aliasing with periodic
 *   work. The handler reads the thread's CPU clock (sample weight = CPU time
 *   since the previous sample) and RUSAGE_THREAD (its user/system split),
 *   unwinds with libunwind and appends one record to the thread's ring.
 *   Threads are registered by the pthread_create hook (interpose.c), by the
 *   constructor (main thread), or, for the in-process API, by scanning
 *   /proc/self/task at start.
 *
 * Wait timing (the interposers' fast path, inline in agent_internal.h)
 *   Every wrapped call pays it, so a call that does not block must cost a
 *   few ns. Measured on a 2-vCPU KVM guest (vDSO clock_gettime ~16 ns,
 *   write(/dev/null) ~90 ns): the original two clock_gettime, errno saves
 *   and slot lookups added ~65 ns per call, of which ~30 ns was not ours:
 *   the writer thread makes the process multi-threaded, and glibc then
 *   wraps every cancellable syscall in async-cancel enable/disable (atomic
 *   RMWs). Three measures, each kept because it paid:
 *   1. Cycle counter instead of clock_gettime: rdtsc (x86-64, only with
 *      constant_tsc + nonstop_tsc) or cntvct_el0 (aarch64); otherwise, or
 *      with WLPROF_AGENT_CLOCK=mono, CLOCK_MONOTONIC. The writer thread
 *      converts: every cycle it takes a (ticks, CLOCK_MONOTONIC) pair
 *      (bracketed by two clock reads < 2 us apart) and publishes ns/tick
 *      from the start pair, plus a candidate threshold in ticks 1 % below
 *      the exact one; a rate that drifts > 1 % between cycles switches new
 *      waits to CLOCK_MONOTONIC for good. Before the first calibration the
 *      filter assumes >= 0.5 ticks/ns (lets more through, never fewer) and
 *      a candidate converts with the rate measured since the start pair.
 *      The end of a call compares a tick delta; only candidates go to
 *      wl__wait_end_slow. 2 x rdtsc ~ 15 ns here, vs ~32 ns.
 *   2. Hot state in one TLS block (wl__t: slot, gen, inside, CPU charged)
 *      and one global (wl__g); no errno traffic, atomics or calls on the
 *      fast path. Direct syscalls while the target is single-threaded
 *      (interpose.c, "Direct system calls") remove glibc's cancel wrapper.
 *   3. Per-call-site sampling (wl_site): a site whose last 16 timed calls
 *      were quick is timed with probability 1/period (period doubling to
 *      WL_SITE_MAX_PERIOD; WLPROF_AGENT_SITE_SAMPLING=0 turns it off), via
 *      a geometric countdown, and a timed call's blocked time is recorded
 *      x period, so expected totals stay exact (Horvitz-Thompson). The
 *      first timed call that blocks pins the site to timing every call for
 *      good, so sites that block keep exact per-call attribution; only the
 *      first wait at a site that had been quick for hundreds of calls is
 *      seen with probability 1/period (and then weighted), not always.
 *      Without the pin, a site blocking once every 40 calls climbed back up
 *      between blocks and its total had a 34 % spread (simulated).
 *
 * Data layout
 *   g_slots[WL_MAX_SLOTS], one per live thread:
 *     state FREE -> LIVE (claimed by CAS) -> EXITED (thread gone) -> FREE
 *     ring: WL_RING_BYTES bytes, mmap'ed once per slot and reused; records
 *     (wire.h) are 8-aligned and never wrap: a PAD record fills the tail.
 *     head: bytes ever written (producer), tail: bytes ever read (writer).
 *
 * Threading rules
 *   Producers of a ring are its own thread only: the SIGPROF handler and the
 *   interposers (waits). An interposer sets slot->busy while it appends; a
 *   signal arriving then drops its sample (counted) instead of racing. The
 *   handler never allocates, locks or calls anything outside the
 *   async-signal-safe set plus libunwind's local unwinder (which is designed
 *   for signal handlers). The single consumer is whoever holds g_drain_lock:
 *   the writer thread every 50 ms, or exit/exec/_exit/stop for a final
 *   flush. The file is opened, appended and closed on each drain, so the
 *   agent never holds a descriptor the target could close or dup2 over.
 *
 * Fork: the child keeps only the forking thread, empties its ring (the
 *   parent drains those samples), opens its own file and re-arms; exec:
 *   flush, disarm and discard a pending SIGPROF first (its default action
 *   would kill the new image).
 */
#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "agent_internal.h"
#include "pyagent.h"
#include "wlprof/agent.h"

#define WL_MAX_SLOTS 1024
#define WL_RING_BYTES (64 * 1024)
#define WL_DRAIN_PERIOD_NS (50 * 1000 * 1000)
#define WL_NAME_REFRESH_CYCLES 20 /* re-read thread names every ~1 s */
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
    _Atomic uint64_t tail;      /* bytes consumed (holder of g_drain_lock) */
    _Atomic uint64_t dropped;   /* samples lost: ring full or busy */
    uint64_t dropped_sent;      /* consumer: dropped already reported */
    volatile sig_atomic_t busy; /* an interposer is appending */
    uint64_t last_cpu_ns;       /* handler: thread CPU clock at last sample */
    uint64_t last_user_ns;      /* handler: RUSAGE_THREAD at last sample */
    uint64_t last_sys_ns;
    uint32_t rng;               /* xorshift state for interval jitter */
    char name[16];              /* thread name as last read */
    char name_sent[16];         /* consumer: name in the file */
    int tid_sent;               /* consumer: tid the THREAD record was for */
};

static struct {
    _Atomic int cpu_on;         /* SIGPROF handler is ours and timers run */
    int pid;                    /* process whose state this is */
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
    _Atomic int live_threads;    /* threads registered by register_self, not yet exited */
    _Atomic int writer_stop;
    unsigned long long mod_adds, mod_subs; /* dl_iterate_phdr change counters */
    int mods_written;
    unsigned cycles;
    pthread_key_t key;
    int key_ok;
    int inited;
    int py_probed;              /* looked for CPython in this image */
    int (*real_pthread_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
    int (*real_pthread_join)(pthread_t, void **);
    int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);
    int (*real_sigmask)(int, const sigset_t *, sigset_t *);
} g;

static struct wl_slot g_slots[WL_MAX_SLOTS];
static atomic_flag g_drain_lock = ATOMIC_FLAG_INIT;
/* Cycle-counter calibration: the start pair is written by start before any
 * wait uses WL_CLK_TICKS; the rest by the writer thread. */
static struct {
    uint64_t ticks0, mono0;           /* reference pair taken at start */
    uint64_t last_ticks, last_mono;   /* writer: pair of the last steadiness check */
    _Atomic uint64_t ns_per_tick_q32; /* ns per tick x 2^32; 0 until calibrated */
} g_cal;
static unsigned char g_out[WL_OUTBUF_BYTES]; /* consumer's batch, under g_drain_lock */
static size_t g_out_len;

struct wl_agent_hot wl__g;
__thread struct wl_thread_hot wl__t __attribute__((tls_model("initial-exec")));

/* ---- small helpers (async-signal-safe) ---- */

static uint64_t ts_ns(const struct timespec *ts)
{
    return (uint64_t)ts->tv_sec * 1000000000ull + (uint64_t)ts->tv_nsec;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts_ns(&ts);
}

static int sys_gettid(void)
{
    return (int)syscall(SYS_gettid);
}

static void notice(const char *what, int err)
{
    /* The one line the agent may print; raw write so stdio state is untouched. */
    char buf[512];
    int n = snprintf(buf, sizeof(buf), "wlprof-agent: %s: %s; stacks disabled for pid %d\n",
                     what, strerror(err), (int)getpid());
    if (n > 0)
        (void)!syscall(SYS_write, 2, buf, (size_t)(n < (int)sizeof(buf) ? n : (int)sizeof(buf) - 1));
}

static void lock_drain(void)
{
    while (atomic_flag_test_and_set_explicit(&g_drain_lock, memory_order_acquire))
        syscall(SYS_sched_yield);
}

static void unlock_drain(void)
{
    atomic_flag_clear_explicit(&g_drain_lock, memory_order_release);
}

void *wl__agent_next(const char *name, const char *version)
{
    void *p = version ? dlvsym(RTLD_NEXT, name, version) : NULL;
    if (!p)
        p = dlsym(RTLD_NEXT, name);
    if (!p) {
        char buf[160];
        int n = snprintf(buf, sizeof(buf), "wlprof-agent: no next definition of %s\n", name);
        (void)!syscall(SYS_write, 2, buf, (size_t)n);
        abort();
    }
    return p;
}

/* ---- rings ---- */

/* Reserves size bytes (multiple of 8) in s's ring; returns NULL when full.
 * Only the owning thread calls this (handler or interposer, never both at
 * once thanks to slot->busy). */
static void *ring_reserve(struct wl_slot *s, uint32_t size, uint64_t *newhead)
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

static void ring_commit(struct wl_slot *s, uint64_t newhead)
{
    atomic_store_explicit(&s->head, newhead, memory_order_release);
}

/* ---- timers ---- */

static uint64_t next_interval(struct wl_slot *s)
{
    uint32_t x = s->rng ? s->rng : 0x9e3779b9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    s->rng = x;
    /* uniform in [0.5, 1.5) x mean */
    return g.mean_ns / 2 + (uint64_t)((double)g.mean_ns * ((double)x / 4294967296.0));
}

static void timer_arm(struct wl_slot *s, uint64_t ns)
{
    struct itimerspec its;
    memset(&its, 0, sizeof(its));
    its.it_value.tv_sec = (time_t)(ns / 1000000000ull);
    its.it_value.tv_nsec = (long)(ns % 1000000000ull);
    timer_settime(s->timer, 0, &its, NULL);
}

/* Creates the CPU-clock timer of thread tid (the caller itself when tid ==
 * own tid) and arms it. */
static int timer_setup(struct wl_slot *s, int tid, int self)
{
    clockid_t clk = CLOCK_THREAD_CPUTIME_ID;
    if (!self)
        clk = (clockid_t)((~(unsigned)tid << 3) | 6); /* kernel MAKE_THREAD_CPUCLOCK(tid, SCHED) */
    struct sigevent sev;
    memset(&sev, 0, sizeof(sev));
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = SIGPROF;
    sev._sigev_un._tid = tid;
    if (timer_create(clk, &sev, &s->timer) != 0)
        return -errno;
    struct timespec ts;
    if (clock_gettime(clk, &ts) == 0)
        s->last_cpu_ns = ts_ns(&ts);
    if (self) {
        struct rusage ru;
        if (getrusage(RUSAGE_THREAD, &ru) == 0) {
            s->last_user_ns = (uint64_t)ru.ru_utime.tv_sec * 1000000000ull + (uint64_t)ru.ru_utime.tv_usec * 1000ull;
            s->last_sys_ns = (uint64_t)ru.ru_stime.tv_sec * 1000000000ull + (uint64_t)ru.ru_stime.tv_usec * 1000ull;
            wl__t.nvcsw = ru.ru_nvcsw; /* baseline for wl__wait_end_slow from the start */
            wl__t.nvcsw_ok = 1;
        }
    }
    atomic_store(&s->has_timer, 1);
    if (atomic_load(&g.cpu_on))
        timer_arm(s, next_interval(s));
    return 0;
}

static void timer_teardown(struct wl_slot *s)
{
    if (atomic_exchange(&s->has_timer, 0))
        timer_delete(s->timer);
}

/* ---- slots ---- */

static struct wl_slot *slot_claim(int tid)
{
    for (int i = 0; i < WL_MAX_SLOTS; i++) {
        struct wl_slot *s = &g_slots[i];
        int expect = SLOT_FREE;
        if (!atomic_compare_exchange_strong(&s->state, &expect, SLOT_CLAIMED))
            continue;
        if (!s->ring) {
            void *m = mmap(NULL, WL_RING_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (m == MAP_FAILED) {
                atomic_store(&s->state, SLOT_FREE);
                return NULL;
            }
            s->ring = m;
        }
        s->tid = tid;
        atomic_store(&s->head, 0);
        atomic_store(&s->tail, 0);
        atomic_store(&s->dropped, 0);
        s->dropped_sent = 0;
        s->busy = 0;
        s->last_cpu_ns = s->last_user_ns = s->last_sys_ns = 0;
        s->rng = (uint32_t)tid * 2654435761u ^ (uint32_t)mono_ns();
        s->name[0] = '\0';
        s->name_sent[0] = '\0';
        s->tid_sent = 0;
        return s;
    }
    return NULL;
}

static void read_task_name(int tid, char name[16])
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d/comm", tid);
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char buf[32];
    ssize_t n = syscall(SYS_read, fd, buf, sizeof(buf) - 1);
    syscall(SYS_close, fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = '\0';
    buf[15] = '\0';
    memcpy(name, buf, 16);
}

/* Registers the calling thread and arms its timer. */
static struct wl_slot *register_self(void)
{
    int tid = sys_gettid();
    struct wl_slot *s = slot_claim(tid);
    if (!s)
        return NULL;
    prctl(PR_GET_NAME, s->name);
    s->name[15] = '\0';
    wl__t.slot = s;
    wl__t.gen = atomic_load(&wl__g.gen);
    atomic_fetch_add(&g.live_threads, 1);
    struct rusage ru; /* wait_blocked()'s first baseline */
    if (getrusage(RUSAGE_THREAD, &ru) == 0) {
        wl__t.nvcsw = ru.ru_nvcsw;
        wl__t.nvcsw_ok = 1;
    }
    atomic_store(&s->state, SLOT_LIVE);
    if (timer_setup(s, tid, 1) != 0) {
        /* still usable for waits */
    }
    return s;
}

/* The slot of the calling thread for this generation, or NULL, when the
 * cached one is stale. From the handler too: a thread registered by another
 * (in-process start) is found by tid once and cached. Preserves errno. */
struct wl_slot *wl__current_slot_slow(void)
{
    unsigned gen = atomic_load_explicit(&wl__g.gen, memory_order_acquire);
    if (wl__t.gen == gen)
        return wl__t.slot;
    int saved = errno;
    int tid = sys_gettid();
    errno = saved;
    for (int i = 0; i < WL_MAX_SLOTS; i++) {
        struct wl_slot *s = &g_slots[i];
        if (atomic_load(&s->state) == SLOT_LIVE && s->tid == tid) {
            wl__t.slot = s;
            wl__t.gen = gen;
            return s;
        }
    }
    wl__t.slot = NULL;
    wl__t.gen = gen;
    return NULL;
}

static struct wl_slot *current_slot(void)
{
    return wl__current_slot_slow();
}

/* ---- clock calibration (writer thread) ---- */

/* True when the cycle counter runs at a constant rate through frequency
 * changes and idle states, so ticks convert to ns with one ratio. */
static int ticks_usable(void)
{
#if defined(__x86_64__)
    char buf[16384];
    int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/cpuinfo", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    size_t len = 0;
    ssize_t n;
    while (len < sizeof(buf) - 1 && (n = syscall(SYS_read, fd, buf + len, sizeof(buf) - 1 - len)) > 0)
        len += (size_t)n;
    syscall(SYS_close, fd);
    buf[len] = '\0';
    char *flags = strstr(buf, "\nflags");
    if (!flags)
        return 0;
    char *eol = strchr(flags + 1, '\n');
    if (eol)
        *eol = '\0';
    return strstr(flags, " constant_tsc") && strstr(flags, " nonstop_tsc");
#elif defined(__aarch64__)
    return 1; /* the architected generic timer has a fixed frequency */
#else
    return 0;
#endif
}

/* A (ticks, CLOCK_MONOTONIC) pair read close together: the counter between
 * two clock reads less than 2 us apart, paired with their midpoint. */
static int clock_pair(uint64_t *ticks, uint64_t *mono)
{
    for (int i = 0; i < 5; i++) {
        uint64_t m0 = wl__mono_now();
        uint64_t t = wl__ticks_now();
        uint64_t m1 = wl__mono_now();
        if (m1 - m0 < 2000) {
            *ticks = t;
            *mono = m0 + (m1 - m0) / 2;
            return 0;
        }
    }
    return -EAGAIN;
}

static void cal_publish(double ns_per_tick)
{
    atomic_store_explicit(&g_cal.ns_per_tick_q32, (uint64_t)(ns_per_tick * 4294967296.0), memory_order_relaxed);
    /* 1 % under the exact count: the candidate filter must never hide a wait. */
    atomic_store_explicit(&wl__g.cand_ticks, (uint64_t)((double)wl__g.threshold_ns / ns_per_tick * 0.99),
                          memory_order_relaxed);
}

/* Chooses the clock for waits at start. Until the writer's first
 * calibration, the candidate filter assumes the slowest plausible counter
 * (WL_TICKS_MIN_PER_NS), which lets through more calls, never fewer. */
static void clock_init(void)
{
    atomic_store(&wl__g.clk, WL_CLK_MONO);
    atomic_store(&g_cal.ns_per_tick_q32, 0);
    const char *force = getenv("WLPROF_AGENT_CLOCK");
    if ((force && strcmp(force, "mono") == 0) || !ticks_usable())
        return;
    if (clock_pair(&g_cal.ticks0, &g_cal.mono0) != 0)
        return;
    g_cal.last_ticks = g_cal.ticks0;
    g_cal.last_mono = g_cal.mono0;
    atomic_store(&wl__g.cand_ticks, (uint64_t)((double)wl__g.threshold_ns * WL_TICKS_MIN_PER_NS));
#if defined(__aarch64__)
    uint64_t frq;
    __asm__ __volatile__("mrs %0, cntfrq_el0" : "=r"(frq));
    if (frq)
        cal_publish(1e9 / (double)frq);
#endif
    atomic_store(&wl__g.clk, WL_CLK_TICKS);
}

/* Refines ns-per-tick from the start pair and a fresh one (the longer the
 * baseline, the finer), and falls back to CLOCK_MONOTONIC for good when the
 * counter is not steady: the rate over the last interval must agree with
 * the long-run rate within 1 %. Writer thread only. */
static void clock_calibrate(void)
{
    if (atomic_load_explicit(&wl__g.clk, memory_order_relaxed) != WL_CLK_TICKS)
        return;
    uint64_t t, m;
    if (clock_pair(&t, &m) != 0)
        return;
    if (t <= g_cal.last_ticks || m <= g_cal.last_mono)
        goto unsteady;
    double total = (double)(m - g_cal.mono0) / (double)(t - g_cal.ticks0);
    if (!(total > 0.01 && total < 100))
        goto unsteady;
    if (m - g_cal.last_mono >= WL_CAL_MIN_WINDOW_NS) {
        double recent = (double)(m - g_cal.last_mono) / (double)(t - g_cal.last_ticks);
        if (recent < total * 0.99 || recent > total * 1.01)
            goto unsteady;
        g_cal.last_ticks = t;
        g_cal.last_mono = m;
    }
    if (m - g_cal.mono0 >= WL_CAL_MIN_WINDOW_NS)
        cal_publish(total);
    return;
unsteady:
    atomic_store(&wl__g.clk, WL_CLK_MONO); /* waits already under way still convert */
}

/* Ticks to ns for a candidate wait. Before the first calibration the rate is
 * measured now against the start pair: the call began after that pair, so
 * the baseline is at least as long as the call. */
static uint64_t ticks_to_ns(uint64_t d)
{
    if ((int64_t)d < 0)
        return 0; /* read on another CPU slightly behind: no wait */
    uint64_t q = atomic_load_explicit(&g_cal.ns_per_tick_q32, memory_order_relaxed);
    if (q)
        return (uint64_t)((double)d * ((double)q / 4294967296.0));
    uint64_t t, m;
    if (clock_pair(&t, &m) != 0) {
        t = wl__ticks_now();
        m = wl__mono_now();
    }
    if (t <= g_cal.ticks0 || m <= g_cal.mono0)
        return 0;
    return (uint64_t)((double)d * (double)(m - g_cal.mono0) / (double)(t - g_cal.ticks0));
}

/* ---- the SIGPROF handler ---- */

/* Writes the PYFRAMES record of n Python frames at p (reserved with the
 * CPU or WAIT record it follows). Nothing when n is 0. */
static void put_pyframes(unsigned char *p, int tid, const wl_wire_pyframe *py, int n)
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

static int walk_from_context(ucontext_t *uc, uint64_t *pcs, int max)
{
    unw_cursor_t cur;
    if (unw_init_local2(&cur, (unw_context_t *)uc, UNW_INIT_SIGNAL_FRAME) != 0)
        return 0;
    int n = 0;
    do {
        unw_word_t ip;
        if (unw_get_reg(&cur, UNW_REG_IP, &ip) != 0 || ip == 0)
            break;
        pcs[n++] = ip;
    } while (n < max && unw_step(&cur) > 0);
    return n;
}

static void on_sigprof(int sig, siginfo_t *si, void *ucv)
{
    int saved_errno = errno;
    int saved_inside = wl__t.inside;
    (void)sig;
    wl__t.inside = 1; /* libunwind's own sigprocmask/mutex calls must pass through */
    if (si->si_code != SI_TIMER || !atomic_load_explicit(&g.cpu_on, memory_order_relaxed))
        goto out;
    struct wl_slot *s = current_slot();
    if (!s || !atomic_load_explicit(&s->has_timer, memory_order_relaxed))
        goto out;

    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    uint64_t now = ts_ns(&ts);
    uint64_t cpu = now > s->last_cpu_ns ? now - s->last_cpu_ns : 0;
    s->last_cpu_ns = now;
    struct rusage ru;
    uint64_t du = 0, ds = 0;
    if (getrusage(RUSAGE_THREAD, &ru) == 0) {
        uint64_t u = (uint64_t)ru.ru_utime.tv_sec * 1000000000ull + (uint64_t)ru.ru_utime.tv_usec * 1000ull;
        uint64_t sy = (uint64_t)ru.ru_stime.tv_sec * 1000000000ull + (uint64_t)ru.ru_stime.tv_usec * 1000ull;
        du = u > s->last_user_ns ? u - s->last_user_ns : 0;
        ds = sy > s->last_sys_ns ? sy - s->last_sys_ns : 0;
        s->last_user_ns = u;
        s->last_sys_ns = sy;
        /* A fresh baseline for wait_blocked(), unless a timed call is in
         * progress (it would hide that call's own switch). */
        if (!saved_inside) {
            wl__t.nvcsw = ru.ru_nvcsw;
            wl__t.nvcsw_ok = 1;
        }
    }
    wl__t.cpu_ns += cpu;
    timer_arm(s, next_interval(s));

    if (s->busy) {
        atomic_fetch_add_explicit(&s->dropped, 1, memory_order_relaxed);
        goto out;
    }
    void *raw[WL_WIRE_MAX_FRAMES + 8];
    int n = unw_backtrace(raw, WL_WIRE_MAX_FRAMES + 8);
    wl_wire_pyframe py[WL_WIRE_MAX_PYFRAMES];
    int npy = wl__py_agent_capture(s->tid, 0, py, WL_WIRE_MAX_PYFRAMES);
    uint32_t pysize = npy ? (uint32_t)(sizeof(wl_wire_pyframes) + (size_t)npy * sizeof(*py)) : 0;
#if defined(__x86_64__)
    uintptr_t pc = (uintptr_t)((ucontext_t *)ucv)->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    uintptr_t pc = (uintptr_t)((ucontext_t *)ucv)->uc_mcontext.pc;
#else
    uintptr_t pc = 0; /* no interrupted pc: the unwinder's own first frame stands */
#endif
    int first = -1;
    for (int i = 0; i < n && i < 8; i++) {
        if ((uintptr_t)raw[i] == pc) {
            first = i;
            break;
        }
    }
    uint64_t newhead;
    uint32_t size;
    wl_wire_cpu *r;
    if (first >= 0) {
        int nf = n - first;
        if (nf > WL_WIRE_MAX_FRAMES)
            nf = WL_WIRE_MAX_FRAMES;
        size = (uint32_t)(sizeof(*r) + (size_t)nf * 8);
        r = ring_reserve(s, size + pysize, &newhead);
        if (!r)
            goto full;
        memcpy((uint64_t *)(r + 1), raw + first, (size_t)nf * 8);
        r->h.nframes = (uint16_t)nf;
    } else {
        uint64_t pcs[WL_WIRE_MAX_FRAMES];
        int nf = walk_from_context(ucv, pcs, WL_WIRE_MAX_FRAMES);
        if (nf == 0) {
            pcs[0] = pc;
            nf = 1;
        }
        size = (uint32_t)(sizeof(*r) + (size_t)nf * 8);
        r = ring_reserve(s, size + pysize, &newhead);
        if (!r)
            goto full;
        memcpy((uint64_t *)(r + 1), pcs, (size_t)nf * 8);
        r->h.nframes = (uint16_t)nf;
    }
    r->h.type = WL_REC_CPU;
    r->h.size = size;
    r->tid = s->tid;
    r->pad = 0;
    r->cpu_ns = cpu;
    r->mono_ns = mono_ns(); /* vDSO: async-signal-safe, ~20 ns */
    if (du + ds > 0) {
        r->sys_ns = (uint64_t)((double)cpu * (double)ds / (double)(du + ds));
        r->user_ns = cpu - r->sys_ns;
    } else {
        r->user_ns = cpu;
        r->sys_ns = 0;
    }
    put_pyframes((unsigned char *)r + size, s->tid, py, npy);
    ring_commit(s, newhead);
    goto out;
full:
    atomic_fetch_add_explicit(&s->dropped, 1, memory_order_relaxed);
out:
    wl__t.inside = saved_inside;
    errno = saved_errno;
}

/* ---- waits (called by interpose.c) ---- */

int wl__agent_sampling(void)
{
    /* Agent code (wl__t.inside) keeps the masks it asks for: libunwind blocks
     * every signal around its locks, SIGPROF included, and must. */
    return !wl__t.inside && atomic_load_explicit(&g.cpu_on, memory_order_relaxed);
}

/* Whether a call that took long really blocked, by the kernel's own
 * accounting: a thread that blocks is switched out voluntarily, one that is
 * only preempted (a loaded machine, a timeslice ending inside the call) is
 * not. So a long call counts as a wait only when the thread's voluntary
 * context switches (RUSAGE_THREAD) went up since the last look: the last
 * candidate, or the last SIGPROF taken outside a timed call.
 *
 * Why: on a loaded machine a quick call (read of /dev/zero, ~0.2 us) is
 * preempted now and then for milliseconds; timed with the cycle counter it
 * looked like a block, so it was recorded as waiting and pinned its site to
 * timing every call. Measured (dd bs=64, 4 M calls, 2 vCPUs shared with
 * other jobs): dd's read and write sites were pinned within the first
 * second and the two rdtsc per call were 55 % of the interposer's user time.
 * One getrusage (~0.3 us) per candidate is paid only by calls that already
 * took >= the threshold (100 us), and costs nothing on the fast path. The
 * look-back can include a voluntary switch of an untimed call since the
 * last look; then a preempted call still counts, as it did before. */
static int wait_blocked(void)
{
    struct rusage ru;
    if (syscall(SYS_getrusage, RUSAGE_THREAD, &ru) != 0)
        return 1; /* cannot tell: trust the clock */
    int changed = !wl__t.nvcsw_ok || ru.ru_nvcsw != wl__t.nvcsw;
    wl__t.nvcsw = ru.ru_nvcsw;
    wl__t.nvcsw_ok = 1;
    return changed;
}

void wl__wait_end_slow(wl_wait_ctx *c, enum wl_wire_call call, uint64_t elapsed)
{
    struct wl_slot *s = c->slot;
    int saved = errno;
    uint64_t wall = c->clk == WL_CLK_TICKS ? ticks_to_ns(elapsed) : elapsed;
    /* CPU the sampler saw during the call was not waiting: the kernel ran. */
    uint64_t cpu = wl__t.cpu_ns - c->cpu0_ns;
    uint64_t blocked = wall > cpu ? wall - cpu : 0;
    struct wl_site *e = c->site;
    if (blocked < wl__g.threshold_ns || !atomic_load_explicit(&wl__g.active, memory_order_relaxed) ||
        !wait_blocked()) {
        if (++e->calm >= WL_SITE_PROMOTE || e->period > 1)
            wl__site_next(e);
        goto out;
    }
    /* This call stood for period calls of its site (Horvitz-Thompson). */
    blocked *= e->period;
    e->period = 1;
    e->calm = 0;
    e->skip = 0;
    e->pinned = 1;
    void *raw[WL_WIRE_MAX_FRAMES + 4];
    int n = unw_backtrace(raw, WL_WIRE_MAX_FRAMES + 4);
    int first = 0;
    while (first < n && (uintptr_t)raw[first] >= g.self_lo && (uintptr_t)raw[first] < g.self_hi)
        first++;
    int nf = n - first;
    if (nf > WL_WIRE_MAX_FRAMES)
        nf = WL_WIRE_MAX_FRAMES;
    uint32_t size = (uint32_t)(sizeof(wl_wire_wait) + (size_t)nf * 8);
    s->busy = 1;
    atomic_signal_fence(memory_order_seq_cst);
    wl_wire_pyframe py[WL_WIRE_MAX_PYFRAMES];
    int npy = wl__py_agent_capture(s->tid, 1, py, WL_WIRE_MAX_PYFRAMES);
    uint32_t pysize = npy ? (uint32_t)(sizeof(wl_wire_pyframes) + (size_t)npy * sizeof(*py)) : 0;
    uint64_t newhead;
    wl_wire_wait *r = ring_reserve(s, size + pysize, &newhead);
    if (r) {
        r->h.type = WL_REC_WAIT;
        r->h.nframes = (uint16_t)nf;
        r->h.size = size;
        r->tid = s->tid;
        r->call = (uint16_t)call;
        r->pad = 0;
        r->wait_ns = blocked;
        r->mono_ns = mono_ns(); /* slow path only: the call blocked */
        memcpy((uint64_t *)(r + 1), raw + first, (size_t)nf * 8);
        put_pyframes((unsigned char *)r + size, s->tid, py, npy);
        ring_commit(s, newhead);
    } else {
        atomic_fetch_add_explicit(&s->dropped, 1, memory_order_relaxed);
    }
    atomic_signal_fence(memory_order_seq_cst);
    s->busy = 0;
out:
    wl__t.inside = 0;
    errno = saved;
}

/* After a timed quick call of site e: promote the site when it earned it,
 * then draw how many calls to let through before the next timed one. The
 * gap is geometric with mean period, so every call is timed independently
 * with probability 1/period: a timed call weighted by period keeps the
 * expected total exact whatever the pattern of blocking calls. */
void wl__site_next(struct wl_site *e)
{
    if (e->pinned) {
        e->calm = 0; /* back here in WL_SITE_PROMOTE calls, not on every one */
        return;
    }
    if (e->calm >= WL_SITE_PROMOTE && e->period < wl__g.max_period) {
        e->period *= 2;
        e->calm = 0;
    } else if (e->calm >= WL_SITE_PROMOTE) {
        e->calm = WL_SITE_PROMOTE; /* no overflow at the cap */
    }
    if (e->period <= 1) {
        e->skip = 0;
        return;
    }
    uint32_t x = wl__t.rng ? wl__t.rng : (uint32_t)wl__ticks_now() | 1u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    wl__t.rng = x;
    double u = ((double)x + 1.0) / 4294967297.0; /* (0, 1) */
    /* 1 / log1p(-1/period) for the periods the doubling reaches (powers of
     * 2 up to WL_SITE_MAX_PERIOD): a third of this function's cost was
     * log1p, paid on every timed call (callgrind, dd bs=64: ~150 -> ~110
     * instructions per call here). Other periods compute it. */
    static const double inv_log1p_pow2[] = {0, -1.4426950408889634, -3.476059496782207,
                                            -7.4888756894186175, -15.49462216322538,
                                            -31.497354319586677, -63.49868764234396};
    unsigned p = e->period;
    unsigned lg = (unsigned)__builtin_ctz(p);
    double inv = (p & (p - 1)) == 0 && lg < sizeof(inv_log1p_pow2) / sizeof(inv_log1p_pow2[0])
                     ? inv_log1p_pow2[lg]
                     : 1.0 / log1p(-1.0 / (double)p);
    double k = log(u) * inv;
    e->skip = k < 1e9 ? (uint32_t)k : 1000000000u;
}

/* ---- output (holder of g_drain_lock only) ---- */

static void out_flush(void)
{
    if (!g_out_len)
        return;
    int fd = (int)syscall(SYS_openat, AT_FDCWD, g.path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd >= 0) {
        size_t off = 0;
        while (off < g_out_len) {
            ssize_t w = syscall(SYS_write, fd, g_out + off, g_out_len - off);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        syscall(SYS_close, fd);
    }
    g_out_len = 0;
}

static void out_put(const void *p, size_t n)
{
    if (g_out_len + n > sizeof(g_out))
        out_flush();
    if (n > sizeof(g_out)) /* cannot happen: records are < 2 KiB, modules capped */
        return;
    memcpy(g_out + g_out_len, p, n);
    g_out_len += n;
}

struct mod_walk {
    unsigned char buf[64 * 1024];
    size_t len;
    uint32_t count;
    int changed_only;
    int unchanged;
};

static int mod_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    struct mod_walk *w = arg;
    (void)size;
    if (w->changed_only) {
        w->changed_only = 0;
        if (g.mods_written && info->dlpi_adds == g.mod_adds && info->dlpi_subs == g.mod_subs) {
            w->unchanged = 1;
            return 1;
        }
        g.mod_adds = info->dlpi_adds;
        g.mod_subs = info->dlpi_subs;
    }
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uint64_t a = info->dlpi_addr + ph->p_vaddr;
        if (a < lo)
            lo = a;
        if (a + ph->p_memsz > hi)
            hi = a + ph->p_memsz;
    }
    if (hi == 0)
        return 0;
    const char *name = info->dlpi_name && info->dlpi_name[0] ? info->dlpi_name : g.exe;
    size_t plen = strlen(name);
    if (plen > 1000)
        plen = 1000;
    size_t ent = (26 + plen + 7) & ~(size_t)7;
    if (w->len + ent > sizeof(w->buf))
        return 1;
    unsigned char *p = w->buf + w->len;
    memset(p, 0, ent);
    uint64_t bias = info->dlpi_addr;
    uint16_t l16 = (uint16_t)plen;
    memcpy(p, &bias, 8);
    memcpy(p + 8, &lo, 8);
    memcpy(p + 16, &hi, 8);
    memcpy(p + 24, &l16, 2);
    memcpy(p + 26, name, plen);
    w->len += ent;
    w->count++;
    return 0;
}

static void emit_modules(int changed_only)
{
    static struct mod_walk w; /* under g_drain_lock */
    w.len = 16; /* header + count + pad */
    w.count = 0;
    w.changed_only = changed_only;
    w.unchanged = 0;
    dl_iterate_phdr(mod_cb, &w);
    if (w.unchanged)
        return;
    wl_wire_rec h = {.type = WL_REC_MODULES, .nframes = 0, .size = (uint32_t)w.len};
    memcpy(w.buf, &h, sizeof(h));
    memcpy(w.buf + 8, &w.count, 4);
    memset(w.buf + 12, 0, 4);
    out_put(w.buf, w.len);
    g.mods_written = 1;
}

static void emit_thread(struct wl_slot *s)
{
    wl_wire_thread r;
    memset(&r, 0, sizeof(r));
    r.h.type = WL_REC_THREAD;
    r.h.size = sizeof(r);
    r.tid = s->tid;
    memcpy(r.name, s->name, 16);
    r.name[15] = '\0';
    out_put(&r, sizeof(r));
    memcpy(s->name_sent, s->name, 16);
    s->tid_sent = s->tid;
}

static void drain_slot(struct wl_slot *s, int refresh_name)
{
    int st = atomic_load(&s->state);
    if (st != SLOT_LIVE && st != SLOT_EXITED)
        return;
    if (refresh_name && st == SLOT_LIVE)
        read_task_name(s->tid, s->name);
    if (s->tid_sent != s->tid || memcmp(s->name, s->name_sent, 16) != 0)
        emit_thread(s);
    uint64_t head = atomic_load_explicit(&s->head, memory_order_acquire);
    uint64_t tail = atomic_load_explicit(&s->tail, memory_order_relaxed);
    while (tail < head) {
        uint64_t pos = tail % WL_RING_BYTES;
        const wl_wire_rec *r = (const wl_wire_rec *)(s->ring + pos);
        if (r->size < sizeof(*r) || r->size > WL_RING_BYTES - pos)
            break; /* corrupt: give up on this batch rather than loop */
        /* A sample's Python frames follow it in the same reservation; the
         * code objects they name are described before both, so that the
         * two stay adjacent in the file. */
        const wl_wire_rec *next = (const wl_wire_rec *)(s->ring + pos + r->size);
        if ((r->type == WL_REC_CPU || r->type == WL_REC_WAIT) && tail + r->size < head &&
            pos + r->size + sizeof(*next) <= WL_RING_BYTES && next->type == WL_REC_PYFRAMES &&
            next->size <= WL_RING_BYTES - pos - r->size)
            wl__py_agent_describe(next, out_put);
        if (r->type != WL_REC_PAD)
            out_put(r, r->size);
        tail += r->size;
    }
    atomic_store_explicit(&s->tail, head, memory_order_release);
    uint64_t d = atomic_load(&s->dropped);
    if (d != s->dropped_sent) {
        wl_wire_dropped r;
        memset(&r, 0, sizeof(r));
        r.h.type = WL_REC_DROPPED;
        r.h.size = sizeof(r);
        r.tid = s->tid;
        r.count = d - s->dropped_sent;
        out_put(&r, sizeof(r));
        s->dropped_sent = d;
    }
    if (st == SLOT_EXITED)
        atomic_store(&s->state, SLOT_FREE);
}

/* Drains every ring to the file. Caller holds g_drain_lock. */
static void drain_all_locked(int final)
{
    int refresh = final || (++g.cycles % WL_NAME_REFRESH_CYCLES) == 0;
    emit_modules(1);
    for (int i = 0; i < WL_MAX_SLOTS; i++)
        drain_slot(&g_slots[i], refresh);
    out_flush();
}

static void drain_all(int final)
{
    lock_drain();
    if (atomic_load(&wl__g.active) && g.pid == getpid())
        drain_all_locked(final);
    unlock_drain();
}

/* Whether any thread of the process other than the caller is alive. The
 * writer is an ordinary thread, so when the target's last thread leaves
 * through pthread_exit (main included), the writer would keep the process
 * alive for ever: glibc ends a process only when its last thread exits. */
static int other_threads_alive(int skip_tid)
{
    int me = sys_gettid();
    int alive = 1; /* when /proc cannot tell, assume the target still runs */
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return alive;
    alive = 0;
    struct dirent *de;
    while (!alive && (de = readdir(d)) != NULL) {
        int tid = atoi(de->d_name);
        if (tid <= 0 || tid == me || tid == skip_tid)
            continue;
        char path[64], buf[256];
        snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        const char *rp = strrchr(buf, ')');
        alive = !rp || (rp[2] != 'Z' && rp[2] != 'X'); /* a zombie leader does not count */
    }
    closedir(d);
    return alive;
}

/* The writer's own file-descriptor table.
 *
 * A thread shares the process's fd table (CLONE_FILES), and while a table
 * has more than one user the kernel can no longer take the light path of
 * fdget() on every read/write/...: each call then takes and drops a
 * reference on the file (two atomic RMWs on a shared cache line). For a
 * single-threaded target, the writer alone made its table shared. Measured
 * (dd bs=64 of /dev/zero to /dev/null, 4 M calls, 2-vCPU KVM guest, CPU
 * time, median of 5): bare 0.55 s; plus one idle thread 0.76-0.93 s
 * (glibc's cancellation wrapper in user space + fget in the kernel); the
 * same idle thread after close_range(CLOSE_RANGE_UNSHARE) 0.61-0.67 s, all
 * of it user time: system time back to the bare 0.30 s. The interposers'
 * direct syscalls (interpose.c) remove the user half; this removes the
 * kernel half.
 *
 * So the writer leaves the shared table as soon as it runs, closing its
 * copies of every descriptor (a copy of a pipe's write end would keep the
 * reader from seeing EOF). It opens its output file by path on every drain
 * and needs no descriptor of the target. WLPROF_AGENT_SHARED_FDS=1 keeps
 * the table shared (to measure the difference).
 *
 * The price: the process's table is now released when its last target
 * thread exits, not when the process does. When the target's last thread
 * leaves through pthread_exit (main included), glibc would have called
 * exit(0) in that thread; with the writer alive it does not, and the
 * writer's exit(0) below would run atexit handlers and flush stdio with no
 * descriptors. last_thread_exit() (the thread-exit destructor) therefore
 * calls exit(0) itself, in the last thread, while its descriptors are
 * still open. */
#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif
static void writer_leave_fd_table(void)
{
#ifdef SYS_close_range
    const char *keep = getenv("WLPROF_AGENT_SHARED_FDS");
    if (keep && strcmp(keep, "1") == 0)
        return;
    if (syscall(SYS_close_range, 0u, ~0u, CLOSE_RANGE_UNSHARE) == 0)
        atomic_store(&g.writer_private_fds, 1);
#endif
}

/* Thread-exit path of a target thread: when no other target thread is
 * alive, end the process as glibc would have (see above). */
static void last_thread_exit(int counted)
{
    /* Only the last counted thread looks at /proc (threads the agent did
     * not register are found there), so thread exits stay O(1). */
    if (counted && atomic_fetch_sub(&g.live_threads, 1) > 1)
        return;
    int writer = atomic_load(&g.writer_tid);
    if (!atomic_load(&g.writer_private_fds) || !writer || g.pid != getpid() ||
        !atomic_load(&wl__g.active))
        return;
    if (!other_threads_alive(writer))
        exit(0);
}

static void *writer_main(void *arg)
{
    (void)arg;
    wl__t.inside = 1; /* our own calls are never recorded */
    prctl(PR_SET_NAME, "wlprof-agent");
    writer_leave_fd_table();
    atomic_store(&g.writer_tid, sys_gettid());
    while (!atomic_load(&g.writer_stop)) {
        struct timespec ts = {0, WL_DRAIN_PERIOD_NS};
        syscall(SYS_nanosleep, &ts, NULL);
        clock_calibrate();
        drain_all(0);
        if (!other_threads_alive(0))
            exit(0); /* what the last thread's pthread_exit would have done */
    }
    return NULL;
}

static void writer_start(void)
{
    atomic_store(&g.writer_stop, 0);
    atomic_store(&g.writer_tid, 0);
    atomic_store(&g.writer_private_fds, 0);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    /* The writer blocks every signal (it inherits the mask at creation):
     * otherwise the kernel may hand it a process-directed signal the target
     * keeps blocked on purpose (to read it from a signalfd or sigwait), and
     * the default action kills the target. */
    sigset_t all, old;
    sigfillset(&all);
    g.real_sigmask(SIG_SETMASK, &all, &old);
    wl__t.inside++;
    g.writer_running = g.real_pthread_create(&g.writer, &attr, writer_main, NULL) == 0;
    wl__t.inside--;
    g.real_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
}

/* ---- file ---- */

static int open_file(void)
{
    static unsigned seq;
    g.pid = getpid();
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(g.path, sizeof(g.path), "%s/" WL_WIRE_FILE_PREFIX "%d-%llu-%u" WL_WIRE_FILE_SUFFIX,
                 g.dir, g.pid, (unsigned long long)mono_ns(), seq++);
        int fd = (int)syscall(SYS_openat, AT_FDCWD, g.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 && errno == EEXIST)
            continue;
        if (fd < 0)
            return -errno;
        wl_wire_header h;
        memset(&h, 0, sizeof(h));
        memcpy(h.magic, WL_WIRE_MAGIC, 8);
        h.version = WL_WIRE_VERSION;
        h.pid = g.pid;
        h.ppid = getppid();
        h.hz = g.hz;
        h.wait_threshold_s = (double)wl__g.threshold_ns * 1e-9;
        h.start_mono_ns = mono_ns();
        memcpy(h.exe, g.exe, sizeof(h.exe));
        ssize_t w = syscall(SYS_write, fd, &h, sizeof(h));
        int err = w == (ssize_t)sizeof(h) ? 0 : (w < 0 ? -errno : -EIO);
        syscall(SYS_close, fd);
        g.mods_written = 0;
        wl__py_agent_new_file();
        return err;
    }
    return -EEXIST;
}

/* ---- threads ---- */

struct tramp {
    void *(*start)(void *);
    void *arg;
};

static void on_thread_exit(void *p)
{
    struct wl_slot *s = p;
    int counted = s && wl__t.slot == s;
    if (counted) {
        wl__t.slot = NULL; /* a late SIGPROF now finds no slot */
        timer_teardown(s);
        prctl(PR_GET_NAME, s->name);
        s->name[15] = '\0';
        atomic_store(&s->state, SLOT_EXITED);
    }
    last_thread_exit(counted);
}

static void *trampoline(void *p)
{
    struct tramp t = *(struct tramp *)p;
    free(p);
    if (atomic_load(&wl__g.active) && g.pid == getpid()) {
        struct wl_slot *s = register_self();
        if (s && g.key_ok)
            pthread_setspecific(g.key, s);
    }
    return t.start(t.arg);
}

int wl__agent_wrap_thread(void *(*start)(void *), void *arg, void *(**start_out)(void *), void **arg_out)
{
    if (!atomic_load(&wl__g.active) || wl__t.inside)
        return -1;
    struct tramp *t = malloc(sizeof(*t));
    if (!t)
        return -1;
    t->start = start;
    t->arg = arg;
    *start_out = trampoline;
    *arg_out = t;
    return 0;
}

void wl__agent_unwrap_thread(void *arg)
{
    free(arg);
}

/* ---- fork / exec / exit ---- */

static void atfork_prepare(void)
{
    lock_drain();
}

static void atfork_parent(void)
{
    unlock_drain();
}

static void atfork_child(void)
{
    atomic_flag_clear(&g_drain_lock);
    if (!atomic_load(&wl__g.active))
        return;
    struct wl_slot *mine = wl__t.slot;
    for (int i = 0; i < WL_MAX_SLOTS; i++) {
        struct wl_slot *s = &g_slots[i];
        atomic_store(&s->has_timer, 0); /* timers are not inherited */
        if (s != mine)
            atomic_store(&s->state, SLOT_FREE);
    }
    atomic_fetch_add(&wl__g.gen, 1);
    g.writer_running = 0;
    wl__py_agent_after_fork();
    atomic_store(&g.live_threads, mine ? 1 : 0); /* the forking thread only */
    if (open_file() != 0) {
        atomic_store(&g.cpu_on, 0);
        atomic_store(&wl__g.active, 0);
        return;
    }
    if (mine) {
        atomic_store(&mine->head, 0);
        atomic_store(&mine->tail, 0);
        atomic_store(&mine->dropped, 0);
        mine->dropped_sent = 0;
        mine->tid = sys_gettid();
        mine->tid_sent = 0;
        wl__t.gen = atomic_load(&wl__g.gen);
        timer_setup(mine, mine->tid, 1);
    } else {
        register_self();
    }
    writer_start();
}

static void discard_pending_sigprof(void)
{
    struct sigaction ign, old;
    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    /* Setting SIG_IGN discards a pending SIGPROF; then put ours back (exec
     * resets it to the default, which is what the new image expects). */
    if (g.real_sigaction(SIGPROF, &ign, &old) == 0)
        g.real_sigaction(SIGPROF, &old, NULL);
}

void wl__agent_before_exec(void)
{
    if (!atomic_load(&wl__g.active) || g.pid != getpid())
        return; /* also: a vfork child shares our memory but is not us */
    drain_all(1);
    struct wl_slot *s = current_slot();
    if (s && atomic_load(&s->has_timer))
        timer_arm(s, 0);
    discard_pending_sigprof();
}

void wl__agent_exec_failed(void)
{
    if (!atomic_load(&wl__g.active) || g.pid != getpid())
        return;
    struct wl_slot *s = current_slot();
    if (s && atomic_load(&s->has_timer) && atomic_load(&g.cpu_on))
        timer_arm(s, next_interval(s));
}

static void stop_timers(void)
{
    atomic_store(&g.cpu_on, 0);
    for (int i = 0; i < WL_MAX_SLOTS; i++) {
        struct wl_slot *s = &g_slots[i];
        if (atomic_load(&s->has_timer))
            timer_arm(s, 0);
    }
}

void wl__agent_before_exit(void)
{
    if (!atomic_load(&wl__g.active) || g.pid != getpid())
        return;
    stop_timers();
    drain_all(1);
}

void wl__agent_yield_sigprof(void)
{
    if (atomic_load(&g.cpu_on) && g.pid == getpid())
        stop_timers();
}

/* ---- start / stop ---- */

static void init_once(void)
{
    if (g.inited)
        return;
    g.inited = 1;
    g.real_pthread_create = wl__agent_next("pthread_create", NULL);
    g.real_pthread_join = wl__agent_next("pthread_join", NULL);
    g.real_sigaction = wl__agent_next("sigaction", NULL);
    g.real_sigmask = wl__agent_next("pthread_sigmask", NULL);
    g.key_ok = pthread_key_create(&g.key, on_thread_exit) == 0;
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

static int self_range_cb(struct dl_phdr_info *info, size_t sz, void *arg)
{
    (void)sz;
    Dl_info *di = arg;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        if (a < lo)
            lo = a;
        if (a + ph->p_memsz > hi)
            hi = a + ph->p_memsz;
    }
    if ((uintptr_t)di->dli_fbase >= lo && (uintptr_t)di->dli_fbase < hi) {
        g.self_lo = lo;
        g.self_hi = hi;
        return 1;
    }
    return 0;
}

int wlprof_agent_start(const char *dir, double hz, double wait_threshold_s)
{
    if (!dir || !*dir || hz <= 0 || hz > 100000)
        return -EINVAL;
    if (atomic_load(&wl__g.active))
        return -EBUSY;
    wl__t.inside++;
    init_once();
    Dl_info di;
    if (!g.self_hi && dladdr((void *)wlprof_agent_start, &di))
        dl_iterate_phdr(self_range_cb, &di);
    snprintf(g.dir, sizeof(g.dir), "%s", dir);
    ssize_t n = readlink("/proc/self/exe", g.exe, sizeof(g.exe) - 1);
    g.exe[n > 0 ? n : 0] = '\0';
    g.hz = hz;
    g.mean_ns = (uint64_t)(1e9 / hz);
    wl__g.threshold_ns = (uint64_t)((wait_threshold_s > 0 ? wait_threshold_s : 100e-6) * 1e9);
    g.cycles = 0;
    const char *sample = getenv("WLPROF_AGENT_SITE_SAMPLING");
    wl__g.max_period = sample && strcmp(sample, "0") == 0 ? 1 : WL_SITE_MAX_PERIOD;
    clock_init();
    if (!g.py_probed) {
        g.py_probed = 1;
        wl__py_agent_init(); /* once per image: the interpreter stays where it is */
    }
    int err = open_file();
    if (err) {
        wl__t.inside--;
        return err;
    }
    /* Warm libunwind's caches outside any signal handler. */
    void *warm[8];
    unw_backtrace(warm, 8);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigprof;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    int sig_ok = g.real_sigaction(SIGPROF, &sa, NULL) == 0;
    atomic_store(&g.cpu_on, sig_ok);
    atomic_fetch_add(&wl__g.gen, 1);
    atomic_store(&wl__g.active, 1);

    /* Register every thread alive now: the caller arms its own timer, the
     * others get a timer on their CPU clock aimed at them. */
    int me = sys_gettid();
    int others = 0;
    struct wl_slot *mine = register_self();
    if (mine && g.key_ok)
        pthread_setspecific(g.key, mine); /* its exit, too, may be the last */
    DIR *d = opendir("/proc/self/task");
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            int tid = atoi(e->d_name);
            if (tid <= 0 || tid == me)
                continue;
            others++;
            struct wl_slot *s = slot_claim(tid);
            if (!s)
                break;
            read_task_name(tid, s->name);
            atomic_store(&s->state, SLOT_LIVE);
            if (timer_setup(s, tid, 0) != 0) {
                /* thread gone already */
            }
        }
        closedir(d);
    }
    /* Before the writer exists: only the target's own threads count. */
    atomic_store(&wl__g.direct_syscalls, d && others == 0);
    wl__interpose_direct_changed();
    lock_drain();
    emit_modules(0);
    out_flush();
    unlock_drain();
    writer_start();
    wl__t.inside--;
    return 0;
}

int wlprof_agent_stop(void)
{
    if (!atomic_load(&wl__g.active))
        return -EINVAL;
    if (g.pid != getpid())
        return -EINVAL;
    wl__t.inside++;
    stop_timers();
    for (int i = 0; i < WL_MAX_SLOTS; i++)
        timer_teardown(&g_slots[i]);
    atomic_store(&g.writer_stop, 1);
    if (g.writer_running)
        g.real_pthread_join(g.writer, NULL);
    g.writer_running = 0;
    lock_drain();
    drain_all_locked(1);
    atomic_store(&wl__g.active, 0);
    for (int i = 0; i < WL_MAX_SLOTS; i++)
        atomic_store(&g_slots[i].state, SLOT_FREE);
    atomic_store(&g.live_threads, 0);
    atomic_fetch_add(&wl__g.gen, 1);
    unlock_drain();
    wl__t.inside--;
    return 0;
}

int wlprof_agent_active(void)
{
    return atomic_load(&wl__g.active);
}

const char *wlprof_agent_file(void)
{
    return atomic_load(&wl__g.active) ? g.path : NULL;
}

__attribute__((constructor)) static void agent_ctor(void)
{
    const char *dir = getenv("WLPROF_AGENT_DIR");
    if (!dir || !*dir)
        return;
    int saved = errno;
    const char *hz_s = getenv("WLPROF_AGENT_HZ");
    const char *wait_s = getenv("WLPROF_AGENT_WAIT_US");
    double hz = hz_s ? strtod(hz_s, NULL) : 100.0;
    if (!(hz > 0 && hz <= 100000))
        hz = 100.0;
    double wait_us = wait_s ? strtod(wait_s, NULL) : 100.0;
    int err = wlprof_agent_start(dir, hz, wait_us > 0 ? wait_us * 1e-6 : 100e-6);
    if (err)
        notice(dir, -err);
    else
        g.preloaded = 1;
    errno = saved;
}

__attribute__((destructor)) static void agent_dtor(void)
{
    int saved = errno;
    wl__agent_before_exit();
    errno = saved;
}
