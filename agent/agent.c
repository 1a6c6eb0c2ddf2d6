/*
 * agent.c -- libwlprof-agent.so's start/stop API, constructor and process
 * state; and the design of the sampling core: on-CPU stacks from
 * per-thread CPU-clock timers, per-thread lock-free rings, and a writer
 * thread that drains them to a per-process file (format: wire.h). Which
 * file does what: agent_core.h.
 *
 * How it is loaded
 *   `wlprof profile` puts the .so in LD_PRELOAD and names a directory in
 *   WLPROF_AGENT_DIR; the constructor starts sampling when that is set. A
 *   program may instead link the .so and call wl_agent_start/stop (the
 *   in-process API in wl_agent does), in which case the constructor stays
 *   dormant. Children inherit the environment, so exec'd images load the
 *   agent again and write their own file.
 *
 * What a short process costs
 *   Preloaded, the agent is in every process of the tree, and most live a
 *   millisecond (a shell's commands). Started from the constructor it is
 *   lazy: the image's file, its module list and libunwind's first-use
 *   set-up wait until the image records something; it only announces
 *   itself in the directory's tally (wire.h), so it is still counted. Per
 *   /bin/true in a shell loop (loaded 2-core KVM guest, whole-tree CPU):
 *   1.46 ms before, 0.57 ms after; what remains is mostly the loader
 *   mapping and relocating libunwind (+liblzma) and libm (~0.2 ms) and
 *   the writer thread (~0.08 ms). Both could wait too only with a safe
 *   point in normal context to start them from, which a process that
 *   only computes never offers (a signal handler cannot create a thread).
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
 *   interposers (waits). An interposer sets slot->busy while it unwinds and
 *   appends; a signal arriving then drops its sample (counted) instead of
 *   racing. The
 *   handler never allocates, locks or calls anything outside the
 *   async-signal-safe set plus libunwind's local unwinder (which is designed
 *   for signal handlers). The single consumer is whoever holds g_drain_lock:
 *   the writer thread every 50-200 ms (writer.c, "Drain period"), or
 *   exit/exec/_exit/stop for a final flush. The writer keeps its
 *   descriptors in an fd table of its own; every other drainer opens,
 *   appends and closes, so the agent never holds a descriptor in the
 *   target's table that the target could close or dup2 over.
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
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/single_threaded.h>

#include "agent_core.h"
#include "pyagent.h"
#include "wlprof/agent.h"

struct wl_agent_state wl__agent;
struct wl_agent_hot wl__g;
__thread struct wl_thread_hot wl__t __attribute__((tls_model("initial-exec")));

void wl__notice(const char *what, int err)
{
    /* The one line the agent may print; raw write so stdio state is untouched. */
    char buf[512];
    int n = snprintf(buf, sizeof(buf), "wlprof-agent: %s: %s; stacks disabled for pid %d\n",
                     what, strerror(err), (int)getpid());
    if (n > 0)
        (void)!syscall(SYS_write, 2, buf, (size_t)(n < (int)sizeof(buf) ? n : (int)sizeof(buf) - 1));
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

/* ---- start / stop ---- */

static void init_once(void)
{
    if (wl__agent.inited)
        return;
    wl__agent.inited = 1;
    wl__agent.real_pthread_create = wl__agent_next("pthread_create", NULL);
    wl__agent.real_pthread_join = wl__agent_next("pthread_join", NULL);
    wl__agent.real_sigaction = wl__agent_next("sigaction", NULL);
    wl__agent.real_sigmask = wl__agent_next("pthread_sigmask", NULL);
    wl__agent.key_ok = pthread_key_create(&wl__agent.key, wl__on_thread_exit) == 0;
    pthread_atfork(wl__atfork_prepare, wl__atfork_parent, wl__atfork_child);
}

static int self_range_cb(struct dl_phdr_info *info, size_t sz, void *arg)
{
    (void)sz;
    uintptr_t self = (uintptr_t)arg;
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
    if (self >= lo && self < hi) {
        wl__agent.self_lo = lo;
        wl__agent.self_hi = hi;
        return 1;
    }
    return 0;
}

/* Whether this image may run CPython: a loaded object (the executable
 * included) whose base name says python, as the frame reader's probe
 * requires. Saves the probe's read of /proc/self/maps in every other
 * process (a shell script's commands). */
static int python_cb(struct dl_phdr_info *info, size_t sz, void *arg)
{
    (void)sz;
    (void)arg;
    const char *name = info->dlpi_name ? info->dlpi_name : "";
    const char *base = strrchr(name, '/');
    return strstr(base ? base + 1 : name, "python") != NULL;
}

static int maybe_python(void)
{
    const char *base = strrchr(wl__agent.exe, '/');
    if (strstr(base ? base + 1 : wl__agent.exe, "python"))
        return 1;
    return dl_iterate_phdr(python_cb, NULL);
}

/* Starts recording. lazy (the preloaded constructor): what only a process
 * that records something needs -- its file, the module list, libunwind's
 * first-use set-up (then done by the first unwind) -- waits until it does
 * (wire.h: a process that records nothing leaves no file). */
static int start(const char *dir, double hz, double wait_threshold_s, int lazy)
{
    if (!dir || !*dir || hz <= 0 || hz > 100000)
        return -EINVAL;
    if (atomic_load(&wl__g.active))
        return -EBUSY;
    if (lazy && access(dir, W_OK | X_OK) != 0)
        return -errno; /* the file will be made later: fail now, as eager start would */
    wl__t.inside++;
    init_once();
    if (!wl__agent.self_hi)
        dl_iterate_phdr(self_range_cb, (void *)(uintptr_t)self_range_cb);
    wl__agent.lazy = lazy;
    snprintf(wl__agent.dir, sizeof(wl__agent.dir), "%s", dir);
    ssize_t n = readlink("/proc/self/exe", wl__agent.exe, sizeof(wl__agent.exe) - 1);
    wl__agent.exe[n > 0 ? n : 0] = '\0';
    wl__agent.hz = hz;
    wl__agent.mean_ns = (uint64_t)(1e9 / hz);
    wl__g.threshold_ns = (uint64_t)((wait_threshold_s > 0 ? wait_threshold_s : 100e-6) * 1e9);
    wl__agent.names_ns = 0;
    const char *sample = getenv("WLPROF_AGENT_SITE_SAMPLING");
    wl__g.max_period = sample && strcmp(sample, "0") == 0 ? 1 : WL_SITE_MAX_PERIOD;
    wl__clock_init();
    if (!wl__agent.py_probed) {
        wl__agent.py_probed = 1;
        if (maybe_python())
            wl__py_agent_init(); /* once per image: the interpreter stays where it is */
    }
    int err = wl__begin_image();
    if (err) {
        wl__t.inside--;
        return err;
    }
    if (!lazy) {
        /* Warm libunwind's caches outside any signal handler. Lazy: the
         * first unwind does it (~0.2-0.4 ms), as it already did for every
         * thread but this one -- most short processes never unwind.
         *
         * Why the first unwind may be in the SIGPROF handler: libunwind's
         * one-time set-up (tdep_init: its caches, the memory validator)
         * holds its lock with every signal blocked, so no handler on the
         * holding thread can want it, and another thread only waits for a
         * holder that is running; the per-thread trace cache is made in the
         * handler on every thread's first sample anyway; and the module
         * lookups (dl_iterate_phdr) are those of every later unwind. What
         * must never happen is the handler unwinding while this thread is
         * inside a normal-context unwind (a wait's, wait.c): the cache's
         * set-up runs under pthread_once with no signal blocked, and the
         * handler would wait on it for ever -- so that unwind runs under
         * slot->busy and the handler drops its sample. The alternative tried, the set-up in the writer thread, is wrong:
         * after it leaves the shared fd table the validator's pipe is in
         * the writer's table only (two agent_cost tests broke), and before
         * it the clean-clone CI hung prof_signalfd on every run. */
        void *warm[8];
        unw_backtrace(warm, 8);
    }
    wl__interpose_resolve_for_handler(); /* no dlsym in the handler */

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = wl__on_sigprof;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    int sig_ok = wl__agent.real_sigaction(SIGPROF, &sa, NULL) == 0;
    atomic_store(&wl__agent.cpu_on, sig_ok);
    atomic_fetch_add(&wl__g.gen, 1);
    atomic_store(&wl__g.active, 1);

    /* Register every thread alive now: the caller arms its own timer, the
     * others get a timer on their CPU clock aimed at them. */
    int me = sys_gettid();
    int others = 0;
    struct wl_slot *mine = wl__register_self();
    if (mine && wl__agent.key_ok)
        pthread_setspecific(wl__agent.key, mine); /* its exit, too, may be the last */
    /* glibc: no thread was ever created, so there is none to find. */
    DIR *d = __libc_single_threaded ? NULL : opendir("/proc/self/task");
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            int tid = atoi(e->d_name);
            if (tid <= 0 || tid == me)
                continue;
            others++;
            struct wl_slot *s = wl__slot_claim(tid);
            if (!s)
                break;
            wl__read_task_name(tid, s->name);
            atomic_store(&s->state, SLOT_LIVE);
            if (wl__timer_setup(s, tid, 0) != 0) {
                /* thread gone already */
            }
        }
        closedir(d);
    }
    /* Before the writer exists: only the target's own threads count. */
    atomic_store(&wl__g.direct_syscalls, (d || __libc_single_threaded) && others == 0);
    wl__interpose_direct_changed();
    if (wl__agent.file_open) {
        lock_drain();
        wl__emit_modules(0);
        wl__out_flush();
        unlock_drain();
    }
    wl__writer_start();
    wl__t.inside--;
    return 0;
}

int wl_agent_start(const char *dir, double hz, double wait_threshold_s)
{
    return start(dir, hz, wait_threshold_s, 0);
}

int wl_agent_stop(void)
{
    if (!atomic_load(&wl__g.active))
        return -EINVAL;
    if (wl__agent.pid != getpid())
        return -EINVAL;
    wl__t.inside++;
    wl__stop_timers();
    for (int i = 0; i < wl__slots_used(); i++)
        wl__timer_teardown(&wl__slots[i]);
    atomic_store(&wl__agent.writer_stop, 1);
    atomic_store(&wl__agent.writer_wake, 0);
    wl__writer_nudge(); /* out of its sleep now, not in up to 200 ms */
    if (wl__agent.writer_running)
        wl__agent.real_pthread_join(wl__agent.writer, NULL);
    wl__agent.writer_running = 0;
    lock_drain();
    wl__drain_all_locked(1);
    atomic_store(&wl__g.active, 0);
    for (int i = 0; i < wl__slots_used(); i++)
        atomic_store(&wl__slots[i].state, SLOT_FREE);
    atomic_store(&wl__agent.live_threads, 0);
    atomic_fetch_add(&wl__g.gen, 1);
    unlock_drain();
    wl__t.inside--;
    return 0;
}

int wl_agent_active(void)
{
    return atomic_load(&wl__g.active);
}

const char *wl_agent_file(void)
{
    return atomic_load(&wl__g.active) && wl__agent.file_open ? wl__agent.path : NULL;
}

/* The deprecated names (wlprof/agent.h): one release of grace. */
int wlprof_agent_start(const char *dir, double hz, double wait_threshold_s)
{
    return wl_agent_start(dir, hz, wait_threshold_s);
}

int wlprof_agent_stop(void)
{
    return wl_agent_stop();
}

int wlprof_agent_active(void)
{
    return wl_agent_active();
}

const char *wlprof_agent_file(void)
{
    return wl_agent_file();
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
    int err = start(dir, hz, wait_us > 0 ? wait_us * 1e-6 : 100e-6, 1);
    if (err)
        wl__notice(dir, -err);
    else
        wl__agent.preloaded = 1;
    errno = saved;
}

__attribute__((destructor)) static void agent_dtor(void)
{
    int saved = errno;
    wl__agent_before_exit();
    errno = saved;
}
