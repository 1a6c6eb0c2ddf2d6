/*
 * interpose.c -- the libc functions libwlprof-agent.so replaces.
 *
 * Three groups, each a thin wrapper around the next definition (dlsym
 * RTLD_NEXT, resolved on first use):
 *
 *  - blocking calls (read ... waitpid): timed with wl__wait_begin/end; the
 *    agent records the caller's stack when the call blocked longer than the
 *    threshold. Arguments, results and errno pass through untouched.
 *    read/write/readv/writev/pread/pwrite, which syscall-heavy programs
 *    make millions of times a second, have a fast path of their own (13
 *    instructions when untimed on x86-64: "The fast I/O path" below, with what it
 *    costs per call, measured, and the trade-offs taken).
 *    The sleep and poll families are never restarted after a signal handler
 *    (signal(7)), so SIGPROF is blocked for their duration: a CPU-clock
 *    signal that became pending just as the thread went to sleep can then
 *    never turn into an EINTR the target did not ask for.
 *    pthread_mutex_lock tries the lock first and times only contended locks.
 *
 *  - process and thread life: pthread_create (arm new threads), the exec
 *    family (flush, disarm, drop a pending SIGPROF), _exit/_Exit (flush).
 *
 *  - signal plumbing: when the target installs its own SIGPROF disposition
 *    the agent stops on-CPU sampling for good; masks the target sets never
 *    block SIGPROF while sampling runs (thread pools often block "all"
 *    signals, which would silence their threads).
 *
 * Calls made inside glibc (fread calling read) do not go through the PLT, so
 * they are not seen twice; the agent's own I/O uses raw syscalls.
 */
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent_internal.h"
#include "pyagent.h"

/* Pointer to the next definition of name, resolved once (racing resolvers
 * store the same value). */
#define REAL(name) REAL_V(name, NULL)
#define REAL_V(name, version)                                                                   \
    static __typeof__(name) *real_##name;                                                       \
    if (!__atomic_load_n(&real_##name, __ATOMIC_ACQUIRE))                                       \
        __atomic_store_n(&real_##name, (__typeof__(name) *)wl__agent_next(#name, version),      \
                         __ATOMIC_RELEASE)

/* Direct system calls. While the target has no thread of its own besides
 * the main one, only the agent's writer thread makes the process
 * multi-threaded, and that alone switches glibc's cancellable calls (read,
 * write, ...) to a path that enables and disables asynchronous cancellation
 * around each syscall: two atomic read-modify-writes per call, a third of
 * the cost of a read from /dev/zero. In that state nobody can cancel
 * anybody (a thread cancelling itself goes through our pthread_cancel
 * first), so the simplest I/O calls issue the system call themselves, which
 * is what glibc does in a single-threaded process. Only when the next
 * definition is glibc's own (not a sanitizer's or another preload's), and
 * for good once the target creates a thread or calls pthread_cancel
 * (wl__g.direct_syscalls, cleared by the hooks below). */
#define REAL_DIRECT(name)                                                                       \
    REAL(name);                                                                                 \
    static int direct_##name; /* 0 unknown, 1 glibc's, 2 someone else's */                    \
    if (!__atomic_load_n(&direct_##name, __ATOMIC_RELAXED))                                     \
        __atomic_store_n(&direct_##name, is_glibc((void *)real_##name) ? 1 : 2, __ATOMIC_RELAXED)

#if defined(__x86_64__) || defined(__aarch64__) /* 64-bit offsets, no socketcall */
#define DIRECT(name)                                                                            \
    (direct_##name == 1 && atomic_load_explicit(&wl__g.direct_syscalls, memory_order_relaxed))
#else
#define DIRECT(name) ((void)direct_##name, 0)
#endif

/* The address range of libc.so.6's mappings, found once: dladdr costs
 * ~93 k instructions per lookup (it walks every symbol table), paid once
 * per interposed function in every process, 30-50 us per short-lived
 * shell; one dl_iterate_phdr pass costs a few hundred. */
struct libc_range {
    uintptr_t lo, hi;
};

static int libc_range_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct libc_range *r = arg;
    if (!info->dlpi_name || !strstr(info->dlpi_name, "/libc.so.6"))
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        if (!r->lo || lo < r->lo)
            r->lo = lo;
        if (hi > r->hi)
            r->hi = hi;
    }
    return 1;
}

static int is_glibc(void *fn)
{
    static uintptr_t lo, hi; /* racing finders store the same values */
    if (!__atomic_load_n(&hi, __ATOMIC_ACQUIRE)) {
        struct libc_range r = {0, 0};
        int saved = errno;
        dl_iterate_phdr(libc_range_cb, &r);
        errno = saved;
        if (!r.hi)
            return 0;
        __atomic_store_n(&lo, r.lo, __ATOMIC_RELAXED);
        __atomic_store_n(&hi, r.hi, __ATOMIC_RELEASE);
    }
    uintptr_t a = (uintptr_t)fn;
    return a >= __atomic_load_n(&lo, __ATOMIC_RELAXED) && a < hi;
}

/* A timed call: evaluates expr between begin and end, returns its value.
 * The untimed case (most calls: agent code, or a call site's sampler lets
 * the call through) is tested first and only issues the call, so the
 * compiler keeps the timing code and its register spills off that path. */
#define TIMED(call, type, expr)                                                                 \
    do {                                                                                        \
        uintptr_t pc_ = (uintptr_t)__builtin_return_address(0);                                 \
        if (__builtin_expect(wl__wait_untimed(pc_), 1))                                         \
            return (expr);                                                                      \
        wl_wait_ctx ctx_;                                                                       \
        wl__wait_begin_picked(&ctx_, pc_);                                                      \
        type r_ = (expr);                                                                       \
        wl__wait_end(&ctx_, WL_CALL_##call);                                                    \
        return r_;                                                                              \
    } while (0)

/* A timed wait on lock: recorded as WL_CALL_gil when lock is part of the
 * CPython GIL's state (pyagent.h), else as call. */
#define TIMED_LOCK(call, lock, type, expr)                                                      \
    do {                                                                                        \
        wl_wait_ctx ctx_;                                                                       \
        wl__wait_begin(&ctx_, (uintptr_t)__builtin_return_address(0));                          \
        type r_ = (expr);                                                                       \
        wl__wait_end(&ctx_, wl__py_is_gil(lock) ? WL_CALL_gil : WL_CALL_##call);                \
        return r_;                                                                              \
    } while (0)

/* System calls issued inline while DIRECT() holds: glibc's syscall() is a
 * variadic call through the PLT that spills all six arguments, about a
 * tenth of the whole interposer on a 64-byte read of /dev/zero. errno is
 * set as syscall() would. */
#if defined(__x86_64__)
static inline long sys6(long nr, long a, long b, long c, long d, long e, long f)
{
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    long ret;
    __asm__ __volatile__("syscall"
                         : "=a"(ret)
                         : "0"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                         : "rcx", "r11", "memory");
    return ret;
}
/* Fewer registers to set up for the hot three- and four-argument calls. */
static inline long sys3(long nr, long a, long b, long c)
{
    long ret;
    __asm__ __volatile__("syscall" : "=a"(ret) : "0"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return ret;
}
static inline long sys4(long nr, long a, long b, long c, long d)
{
    register long r10 __asm__("r10") = d;
    long ret;
    __asm__ __volatile__("syscall"
                         : "=a"(ret)
                         : "0"(nr), "D"(a), "S"(b), "d"(c), "r"(r10)
                         : "rcx", "r11", "memory");
    return ret;
}
#elif defined(__aarch64__)
static inline long sys6(long nr, long a, long b, long c, long d, long e, long f)
{
    register long x8 __asm__("x8") = nr;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    register long x5 __asm__("x5") = f;
    __asm__ __volatile__("svc 0"
                         : "+r"(x0)
                         : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                         : "memory");
    return x0;
}
#endif
#if defined(__aarch64__)
#define sys3(nr, a, b, c) sys6(nr, a, b, c, 0, 0, 0)
#define sys4(nr, a, b, c, d) sys6(nr, a, b, c, d, 0, 0)
#endif
#if defined(__x86_64__) || defined(__aarch64__)
static __attribute__((noinline, cold)) long sys_fail(long r)
{
    errno = (int)-r;
    return -1;
}

static inline long sys_result(long r)
{
    return __builtin_expect((unsigned long)r > -4096UL, 0) ? sys_fail(r) : r;
}
#define SYS(nr, a, b, c, d, e, f)                                                               \
    sys_result(sys6((nr), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f)))
#define SYS3(nr, a, b, c) sys_result(sys3((nr), (long)(a), (long)(b), (long)(c)))
#define SYS4(nr, a, b, c, d) sys_result(sys4((nr), (long)(a), (long)(b), (long)(c), (long)(d)))
#else
#define SYS(nr, a, b, c, d, e, f) syscall((nr), (a), (b), (c), (d), (e), (f))
#define SYS3(nr, a, b, c) syscall((nr), (a), (b), (c))
#define SYS4(nr, a, b, c, d) syscall((nr), (a), (b), (c), (d))
#endif

/* ---- SIGPROF blocking for never-restarted calls (raw syscalls: our own
 * sigprocmask wrapper would filter SIGPROF out again) ---- */

static int prof_block(sigset_t *old)
{
    if (!wl__agent_sampling())
        return 0;
    int saved = errno;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPROF);
    int ok = syscall(SYS_rt_sigprocmask, SIG_BLOCK, &set, old, _NSIG / 8) == 0;
    errno = saved;
    return ok;
}

static void prof_restore(int blocked, const sigset_t *old)
{
    if (!blocked)
        return;
    int saved = errno;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, old, NULL, _NSIG / 8);
    errno = saved;
}

/* Same, for calls that take their own mask for the duration (ppoll...). */
static const sigset_t *with_prof(const sigset_t *mask, sigset_t *copy)
{
    if (!mask || !wl__agent_sampling())
        return mask;
    *copy = *mask;
    sigaddset(copy, SIGPROF);
    return copy;
}

/* A timed call with SIGPROF blocked. */
#define TIMED_NOINTR(call, type, expr)                                                          \
    do {                                                                                        \
        sigset_t old_;                                                                          \
        int blocked_ = prof_block(&old_);                                                       \
        wl_wait_ctx ctx_;                                                                       \
        wl__wait_begin(&ctx_, (uintptr_t)__builtin_return_address(0));                                                                  \
        type r_ = (expr);                                                                       \
        prof_restore(blocked_, &old_); /* a deferred sample lands before wait_end */            \
        wl__wait_end(&ctx_, WL_CALL_##call);                                                    \
        return r_;                                                                              \
    } while (0)

/* ---- I/O ---- */

/* ---- The fast I/O path ----
 *
 * The plain I/O calls are what syscall-heavy programs make millions of
 * times a second, so each is two functions: the exported one does only the
 * untimed fast path and calls an out-of-line twin (name##_timed) for
 * everything else. Kept apart, the fast path needs no stack frame and no
 * callee-saved registers.
 *
 * The fast path's countdown is a pair of words of its own per function and
 * thread, wl__t.fast[ix] = {call site, calls left untimed}: one compare
 * tells "same site as last time", one subtract-from-memory and a jump on
 * its borrow spend a call of the countdown or find it spent, with no
 * hashing, then the system call. Everything else moved off it, into the
 * twin:
 *  - the function's mode (direct system call or the next definition): the
 *    tag carries it (FAST_VIA_REAL), set by the twin when it lends;
 *  - whether the agent records at all (wl__g.active) and whether this is
 *    agent code or a call nested in a timed one (wl__t.inside): a
 *    countdown is only ever handed out by the twin after those checks, and
 *    letting an untimed call through untimed is right in every state (the
 *    worst an agent-internal or post-stop call does is spend one count of
 *    its site's countdown, i.e. shift which call gets timed);
 *  - the site sampler itself (wl_site, agent_internal.h): the twin lends
 *    the site's countdown to the word when another site called last (and
 *    gives the previous site's remaining count back), times the call when
 *    the countdown is spent, and lends the sampler's next countdown after.
 *    So the sampling decisions -- which calls are timed, their weights,
 *    pinning a site that blocked -- are exactly those of wl__wait_untimed
 *    and wl__site_next, only the bookkeeping moved.
 * A spent countdown reads UINT64_MAX (it borrowed), which the twin reads as
 * 0: a real countdown is a wl_site.skip, under 2^32.
 *
 * Measured with callgrind on `dd bs=64` (user-space instructions per
 * wrapped call; glibc's own read is 7): the first interposers 119 (two
 * clock reads on a site pinned by a preemption, syscall() through the PLT,
 * a full frame); 36 with the kernel's voluntary-switch test (sites stay
 * sampled), inline system calls and the frameless fast path; 31 with one
 * mode load instead of three checks; 19 with the countdown word; 17 with
 * the way of issuing the call in the word too (FAST_VIA_REAL) instead of
 * a mode load; 13 with tag and count in two words, the count spent by one
 * `sub $1, mem` whose borrow is the test (gcc makes a load, lea, store and
 * test of the same thing in C, so x86-64 has it in one asm statement).
 * Per call over glibc's read, counting the sampled timed calls (~250
 * instructions and two counter reads each, one call in 64 at the cap) and
 * the warm-up: 29.0 with the 31-instruction path, 15.3 with the 17, 10.3
 * now (dd's own loop and libc: 96.5 per call). Same-run figures, from the
 * wrapper's functions in `valgrind --tool=callgrind` of 300 k iterations,
 * WLPROF_AGENT_HZ=0.001 and WLPROF_AGENT_WAIT_US=1e12 so no sample is
 * taken and no site pins (valgrind serialises threads, so calls there
 * switch voluntarily and would pin dd's read site). At ~150 ns per dd call
 * on the 2-vCPU guest, where the instructions right after a system call
 * run at well under one per cycle, each one is worth ~0.2-0.3 % of dd.
 *
 * What was not done, and why: sampling per function instead of per site
 * (no tag test: 3 instructions less) would pin every read of a program
 * once one read site blocked; a larger cap than 64 calls per timed call
 * (-3.5 instructions per call at 256) would see the first block at a site
 * that had been quick for long with probability 1/256. The trade-off kept:
 * every call still goes through its site's sampler, so a call that blocks
 * is timed exactly once its site has blocked (no per-fd classification
 * that a descriptor reused behind our back -- fclose() closes inside
 * glibc -- could make wrong). */
/* A fast call's mode, one load on the fast path instead of three (resolved?
 * glibc's? process still single-threaded?): */
enum { FAST_UNRESOLVED = 0, FAST_DIRECT, FAST_GLIBC, FAST_OTHER };

#if defined(__x86_64__) || defined(__aarch64__)
#define FAST_CAN_DIRECT 1
#else
#define FAST_CAN_DIRECT 0
#endif

enum { FAST_IX_read, FAST_IX_write, FAST_IX_readv, FAST_IX_writev, FAST_IX_pread, FAST_IX_pread64,
       FAST_IX_pwrite, FAST_IX_pwrite64, FAST_IX_COUNT };
_Static_assert(FAST_IX_COUNT <= WL_FAST_FNS, "wl_thread_hot.fast[] too small");

/* Set in a tag lent while its function went to the next definition
 * (FAST_GLIBC, FAST_OTHER); clear: lent while FAST_DIRECT. So the fast path
 * reads no mode: the tag says how to issue the call. User addresses stay
 * below this bit. Direct calls end (pthread_create, pthread_cancel) in the
 * target's only thread, which sets the bit in its own tags then
 * (wl__interpose_direct_changed; test: agent_cost's cancellable read). The
 * one difference from a global mode: a thread glibc starts internally
 * (timer_create's SIGEV_THREAD helper), which never went through our
 * pthread_create and so already made direct calls beside the target, keeps
 * them for up to its countdown after the target's first thread, instead of
 * none. */
#define FAST_VIA_REAL (1ull << 63)

static __attribute__((noinline, cold)) void resolve_fast(void **real, int *mode, const char *name)
{
    void *fn = wl__agent_next(name, NULL);
    __atomic_store_n(real, fn, __ATOMIC_RELEASE);
    int m = !is_glibc(fn) ? FAST_OTHER
            : FAST_CAN_DIRECT && atomic_load(&wl__g.direct_syscalls) ? FAST_DIRECT
                                                                    : FAST_GLIBC;
    __atomic_store_n(mode, m, __ATOMIC_RELEASE);
}

/* The fast path's test: the word names this site (and way: via) and had a
 * call left, which it spends. left - 1 borrows exactly when left was 0
 * (x86-64: one `sub $1, mem` and a jump on carry); a spent countdown then
 * reads UINT64_MAX, which fast_pick reads as 0 (struct wl_fast_word). */
static inline __attribute__((always_inline)) int fast_hit(struct wl_fast_word *f, uintptr_t pc, uint64_t via)
{
    if (f->tag != (via | pc))
        return 0;
#if defined(__x86_64__) && defined(__GCC_ASM_FLAG_OUTPUTS__)
    /* gcc makes a load, lea, store and test of the C below */
    int borrow;
    __asm__("subq $1, %0" : "+m"(f->left), "=@ccc"(borrow));
    return !borrow;
#else
    uint64_t left = f->left;
    f->left = left - 1;
    return left != 0;
#endif
}

static inline uint64_t fast_via(const int *mode)
{
    return __atomic_load_n(mode, __ATOMIC_ACQUIRE) == FAST_DIRECT ? 0 : FAST_VIA_REAL;
}

/* Hands site pc's countdown, from its sampler, to word f (the previous
 * site's remaining count goes back to its own sampler). */
static inline void fast_lend(struct wl_fast_word *f, uintptr_t pc, uint64_t via)
{
    if (f->tag) {
        uintptr_t old = (uintptr_t)(f->tag & ~FAST_VIA_REAL);
        struct wl_site *eo = wl__site_of(old);
        if (eo->pc == old)
            eo->skip = (uint32_t)f->left;
    }
    struct wl_site *e = wl__site_of(pc);
    uint64_t skip = 0;
    if (e->pc == pc) {
        skip = e->skip;
        e->skip = 0;
    }
    f->tag = via | pc;
    f->left = skip;
}

/* The twin's decision for a call from pc that missed the fast path: 1 to
 * time it. Spends the countdown otherwise (0). */
static inline __attribute__((always_inline)) int fast_pick(struct wl_fast_word *f, uintptr_t pc, const int *mode)
{
    if (f->left > UINT32_MAX)
        f->left = 0; /* spent by the fast path; so the next call misses too */
    if (!atomic_load_explicit(&wl__g.active, memory_order_relaxed) || wl__t.inside)
        return 0;
    uint64_t via = fast_via(mode);
    if (f->tag != (via | pc))
        fast_lend(f, pc, via);
    if (f->left) {
        f->left--;
        return 0;
    }
    return 1;
}

/* After timing a call from pc: its sampler's next countdown goes to the
 * word (wl__wait_end drew it, or pinned the site: 0). */
static inline __attribute__((always_inline)) void fast_settle(struct wl_fast_word *f, uintptr_t pc, const int *mode)
{
    f->tag = 0; /* pc's own sampler holds everything again */
    f->left = 0;
    fast_lend(f, pc, fast_via(mode));
}

#define UNPAREN(...) __VA_ARGS__
#define FAST_IO(name, call, P, A, S)                                                            \
    static __typeof__(name) *real_##name;                                                       \
    static int mode_##name; /* FAST_* */                                                        \
    static inline __attribute__((always_inline)) ssize_t name##_issue(UNPAREN P)                \
    {                                                                                           \
        return __atomic_load_n(&mode_##name, __ATOMIC_RELAXED) == FAST_DIRECT ? (ssize_t)S      \
                                                                              : real_##name A;  \
    }                                                                                           \
    /* The whole path: resolution on first use, the sampler, timing. */                        \
    static __attribute__((noinline)) ssize_t name##_timed(uintptr_t pc_, UNPAREN P)             \
    {                                                                                           \
        if (!__atomic_load_n(&mode_##name, __ATOMIC_ACQUIRE))                                   \
            resolve_fast((void **)&real_##name, &mode_##name, #name);                           \
        struct wl_fast_word *f_ = &wl__t.fast[FAST_IX_##name];                                  \
        if (!fast_pick(f_, pc_, &mode_##name))                                                  \
            return name##_issue A;                                                              \
        wl_wait_ctx ctx_;                                                                       \
        wl__wait_begin_picked(&ctx_, pc_);                                                      \
        ssize_t r_ = name##_issue A;                                                            \
        wl__wait_end(&ctx_, WL_CALL_##call);                                                    \
        fast_settle(f_, pc_, &mode_##name);                                                     \
        return r_;                                                                              \
    }                                                                                           \
    /* Only tail calls off the fast path: no frame, no saved registers. */                     \
    WL_AGENT_EXPORT ssize_t name(UNPAREN P)                                                     \
    {                                                                                           \
        uintptr_t pc_ = (uintptr_t)__builtin_return_address(0);                                 \
        struct wl_fast_word *f_ = &wl__t.fast[FAST_IX_##name];                                  \
        if (__builtin_expect(fast_hit(f_, pc_, 0), 1))                                          \
            return (ssize_t)S;                                                                  \
        if (fast_hit(f_, pc_, FAST_VIA_REAL))                                                   \
            return real_##name A;                                                               \
        return name##_timed(pc_, UNPAREN A);                                                    \
    }

FAST_IO(read, read, (int fd, void *buf, size_t n), (fd, buf, n), SYS3(SYS_read, fd, buf, n))
FAST_IO(write, write, (int fd, const void *buf, size_t n), (fd, buf, n), SYS3(SYS_write, fd, buf, n))
FAST_IO(readv, readv, (int fd, const struct iovec *iov, int n), (fd, iov, n), SYS3(SYS_readv, fd, iov, n))
FAST_IO(writev, writev, (int fd, const struct iovec *iov, int n), (fd, iov, n), SYS3(SYS_writev, fd, iov, n))
FAST_IO(pread, pread, (int fd, void *buf, size_t n, off_t off), (fd, buf, n, off), SYS4(SYS_pread64, fd, buf, n, off))
FAST_IO(pread64, pread, (int fd, void *buf, size_t n, off_t off), (fd, buf, n, off), SYS4(SYS_pread64, fd, buf, n, off))
FAST_IO(pwrite, pwrite, (int fd, const void *buf, size_t n, off_t off), (fd, buf, n, off), SYS4(SYS_pwrite64, fd, buf, n, off))
FAST_IO(pwrite64, pwrite, (int fd, const void *buf, size_t n, off_t off), (fd, buf, n, off), SYS4(SYS_pwrite64, fd, buf, n, off))

static int *const fast_modes[] = {&mode_read,   &mode_write,   &mode_readv,  &mode_writev,
                                  &mode_pread,  &mode_pread64, &mode_pwrite, &mode_pwrite64};

/* wl__g.direct_syscalls changed: the resolved fast calls follow. Only ever
 * called while no other thread of the target can be in them (the premise
 * of direct syscalls: see above). */
void wl__interpose_direct_changed(void)
{
    int on = FAST_CAN_DIRECT && atomic_load(&wl__g.direct_syscalls);
    for (size_t i = 0; i < sizeof(fast_modes) / sizeof(fast_modes[0]); i++) {
        int m = __atomic_load_n(fast_modes[i], __ATOMIC_RELAXED);
        if (m == (on ? FAST_GLIBC : FAST_DIRECT))
            __atomic_store_n(fast_modes[i], on ? FAST_DIRECT : FAST_GLIBC, __ATOMIC_RELEASE);
    }
    /* The words say how to issue the call (FAST_VIA_REAL): while direct
     * calls were allowed this thread was the target's only one, so its own
     * words are the only direct ones; from now on they go to glibc. (Words
     * lent through glibc while direct calls become allowed stay so until
     * lent again: slower, never wrong.) */
    if (!on)
        for (int i = 0; i < FAST_IX_COUNT; i++)
            if (wl__t.fast[i].tag)
                wl__t.fast[i].tag |= FAST_VIA_REAL;
}

/* Looks up, now, in normal context, the next definitions of what our
 * SIGPROF handler reaches through libunwind: its locks block signals with
 * sigprocmask and take pthread_mutex_lock (trylock first, here), its
 * memory validator reads a pipe. Left to their first call, a lazy image's
 * first handler would call dlsym, which waits for the loader's lock:
 * forever when the thread holding it (in dlopen) waits, on anything, for
 * the thread the handler interrupted. Caller: inside the agent. */
void wl__interpose_resolve_for_handler(void)
{
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&m);
    pthread_mutex_unlock(&m);
    int saved = errno;
    (void)!read(-1, NULL, 0);
    errno = saved;
}

WL_AGENT_EXPORT int fsync(int fd)
{
    REAL(fsync);
    TIMED(fsync, int, real_fsync(fd));
}

WL_AGENT_EXPORT int fdatasync(int fd)
{
    REAL(fdatasync);
    TIMED(fdatasync, int, real_fdatasync(fd));
}

WL_AGENT_EXPORT int flock(int fd, int op)
{
    REAL(flock);
    TIMED(flock, int, real_flock(fd, op));
}

WL_AGENT_EXPORT size_t fread(void *p, size_t size, size_t n, FILE *f)
{
    REAL(fread);
    TIMED(fread, size_t, real_fread(p, size, n, f));
}

WL_AGENT_EXPORT size_t fwrite(const void *p, size_t size, size_t n, FILE *f)
{
    REAL(fwrite);
    TIMED(fwrite, size_t, real_fwrite(p, size, n, f));
}

WL_AGENT_EXPORT int fflush(FILE *f)
{
    REAL(fflush);
    TIMED(fflush, int, real_fflush(f));
}

WL_AGENT_EXPORT char *fgets(char *s, int n, FILE *f)
{
    REAL(fgets);
    TIMED(fgets, char *, real_fgets(s, n, f));
}

WL_AGENT_EXPORT ssize_t getline(char **line, size_t *n, FILE *f)
{
    REAL(getline);
    TIMED(getline, ssize_t, real_getline(line, n, f));
}

WL_AGENT_EXPORT ssize_t getdelim(char **line, size_t *n, int delim, FILE *f)
{
    REAL(getdelim);
    TIMED(getdelim, ssize_t, real_getdelim(line, n, delim, f));
}

/* ---- sockets ---- */

WL_AGENT_EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
    REAL_DIRECT(recv);
    TIMED(recv, ssize_t, DIRECT(recv) ? (ssize_t)SYS(SYS_recvfrom, fd, buf, n, flags, NULL, NULL) : real_recv(fd, buf, n, flags));
}

WL_AGENT_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *a, socklen_t *al)
{
    REAL_DIRECT(recvfrom);
    TIMED(recvfrom, ssize_t, DIRECT(recvfrom) ? (ssize_t)SYS(SYS_recvfrom, fd, buf, n, flags, a, al) : real_recvfrom(fd, buf, n, flags, a, al));
}

WL_AGENT_EXPORT ssize_t recvmsg(int fd, struct msghdr *m, int flags)
{
    REAL_DIRECT(recvmsg);
    TIMED(recvmsg, ssize_t, DIRECT(recvmsg) ? (ssize_t)SYS(SYS_recvmsg, fd, m, flags, 0, 0, 0) : real_recvmsg(fd, m, flags));
}

WL_AGENT_EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
    REAL_DIRECT(send);
    TIMED(send, ssize_t, DIRECT(send) ? (ssize_t)SYS(SYS_sendto, fd, buf, n, flags, NULL, 0) : real_send(fd, buf, n, flags));
}

WL_AGENT_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *a, socklen_t al)
{
    REAL_DIRECT(sendto);
    TIMED(sendto, ssize_t, DIRECT(sendto) ? (ssize_t)SYS(SYS_sendto, fd, buf, n, flags, a, al) : real_sendto(fd, buf, n, flags, a, al));
}

WL_AGENT_EXPORT ssize_t sendmsg(int fd, const struct msghdr *m, int flags)
{
    REAL_DIRECT(sendmsg);
    TIMED(sendmsg, ssize_t, DIRECT(sendmsg) ? (ssize_t)SYS(SYS_sendmsg, fd, m, flags, 0, 0, 0) : real_sendmsg(fd, m, flags));
}

WL_AGENT_EXPORT int accept(int fd, struct sockaddr *a, socklen_t *al)
{
    REAL(accept);
    TIMED(accept, int, real_accept(fd, a, al));
}

WL_AGENT_EXPORT int accept4(int fd, struct sockaddr *a, socklen_t *al, int flags)
{
    REAL(accept4);
    TIMED(accept4, int, real_accept4(fd, a, al, flags));
}

WL_AGENT_EXPORT int connect(int fd, const struct sockaddr *a, socklen_t al)
{
    REAL(connect);
    TIMED(connect, int, real_connect(fd, a, al));
}

/* ---- multiplexing and sleeping: never restarted, so SIGPROF is held off ---- */

WL_AGENT_EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
    REAL(poll);
    TIMED_NOINTR(poll, int, real_poll(fds, n, timeout));
}

WL_AGENT_EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *t, const sigset_t *mask)
{
    REAL(ppoll);
    sigset_t copy;
    const sigset_t *m = with_prof(mask, &copy);
    TIMED_NOINTR(ppoll, int, real_ppoll(fds, n, t, m));
}

WL_AGENT_EXPORT int select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *t)
{
    REAL(select);
    TIMED_NOINTR(select, int, real_select(n, r, w, e, t));
}

WL_AGENT_EXPORT int pselect(int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *t, const sigset_t *mask)
{
    REAL(pselect);
    sigset_t copy;
    const sigset_t *m = with_prof(mask, &copy);
    TIMED_NOINTR(pselect, int, real_pselect(n, r, w, e, t, m));
}

WL_AGENT_EXPORT int epoll_wait(int fd, struct epoll_event *ev, int n, int timeout)
{
    REAL(epoll_wait);
    TIMED_NOINTR(epoll_wait, int, real_epoll_wait(fd, ev, n, timeout));
}

WL_AGENT_EXPORT int epoll_pwait(int fd, struct epoll_event *ev, int n, int timeout, const sigset_t *mask)
{
    REAL(epoll_pwait);
    sigset_t copy;
    const sigset_t *m = with_prof(mask, &copy);
    TIMED_NOINTR(epoll_pwait, int, real_epoll_pwait(fd, ev, n, timeout, m));
}

WL_AGENT_EXPORT int nanosleep(const struct timespec *req, struct timespec *rem)
{
    REAL(nanosleep);
    TIMED_NOINTR(nanosleep, int, real_nanosleep(req, rem));
}

WL_AGENT_EXPORT int clock_nanosleep(clockid_t clk, int flags, const struct timespec *req, struct timespec *rem)
{
    REAL(clock_nanosleep);
    TIMED_NOINTR(clock_nanosleep, int, real_clock_nanosleep(clk, flags, req, rem));
}

WL_AGENT_EXPORT int usleep(useconds_t us)
{
    REAL(usleep);
    TIMED_NOINTR(usleep, int, real_usleep(us));
}

WL_AGENT_EXPORT unsigned int sleep(unsigned int s)
{
    REAL(sleep);
    TIMED_NOINTR(sleep, unsigned int, real_sleep(s));
}

WL_AGENT_EXPORT int pause(void)
{
    REAL(pause);
    sigset_t old;
    int blocked = prof_block(&old);
    int r = real_pause();
    prof_restore(blocked, &old);
    return r;
}

WL_AGENT_EXPORT int sigsuspend(const sigset_t *mask)
{
    REAL(sigsuspend);
    sigset_t copy;
    return real_sigsuspend(with_prof(mask, &copy));
}

/* ---- threads and locks ---- */

WL_AGENT_EXPORT int pthread_mutex_lock(pthread_mutex_t *m)
{
    REAL(pthread_mutex_lock);
    REAL(pthread_mutex_trylock);
    int r = real_pthread_mutex_trylock(m);
    if (r != EBUSY)
        return r; /* taken, or an error lock would report the same way */
    TIMED_LOCK(pthread_mutex_lock, m, int, real_pthread_mutex_lock(m));
}

/* The unversioned names resolve to the pre-2.3.2 condition variables; ask
 * for the current ones explicitly. */
WL_AGENT_EXPORT int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
    REAL_V(pthread_cond_wait, "GLIBC_2.3.2");
    TIMED_LOCK(pthread_cond_wait, c, int, real_pthread_cond_wait(c, m));
}

WL_AGENT_EXPORT int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *t)
{
    REAL_V(pthread_cond_timedwait, "GLIBC_2.3.2");
    TIMED_LOCK(pthread_cond_timedwait, c, int, real_pthread_cond_timedwait(c, m, t));
}

WL_AGENT_EXPORT int pthread_join(pthread_t t, void **ret)
{
    REAL(pthread_join);
    TIMED(pthread_join, int, real_pthread_join(t, ret));
}

WL_AGENT_EXPORT int sem_wait(sem_t *s)
{
    REAL(sem_wait);
    TIMED(sem_wait, int, real_sem_wait(s));
}

WL_AGENT_EXPORT int pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*start)(void *), void *arg)
{
    REAL(pthread_create);
    atomic_store(&wl__g.direct_syscalls, 0); /* before the thread exists */
    wl__interpose_direct_changed();
    int saved = errno;
    void *(*start2)(void *);
    void *arg2;
    if (wl__agent_wrap_thread(start, arg, &start2, &arg2) != 0) {
        errno = saved;
        return real_pthread_create(t, a, start, arg);
    }
    int r = real_pthread_create(t, a, start2, arg2);
    if (r != 0)
        wl__agent_unwrap_thread(arg2);
    errno = saved;
    return r;
}

WL_AGENT_EXPORT int pthread_cancel(pthread_t t)
{
    REAL(pthread_cancel);
    atomic_store(&wl__g.direct_syscalls, 0); /* cancellation points must be glibc's again */
    wl__interpose_direct_changed();
    return real_pthread_cancel(t);
}

/* ---- children ---- */

WL_AGENT_EXPORT pid_t waitpid(pid_t pid, int *st, int opts)
{
    REAL(waitpid);
    TIMED(waitpid, pid_t, real_waitpid(pid, st, opts));
}

WL_AGENT_EXPORT pid_t wait(int *st)
{
    REAL(wait);
    TIMED(wait, pid_t, real_wait(st));
}

WL_AGENT_EXPORT pid_t wait4(pid_t pid, int *st, int opts, struct rusage *ru)
{
    REAL(wait4);
    TIMED(wait4, pid_t, real_wait4(pid, st, opts, ru));
}

WL_AGENT_EXPORT int waitid(idtype_t type, id_t id, siginfo_t *info, int opts)
{
    REAL(waitid);
    TIMED(waitid, int, real_waitid(type, id, info, opts));
}

WL_AGENT_EXPORT int system(const char *cmd)
{
    REAL(system);
    TIMED(system, int, real_system(cmd));
}

/* ---- exec and exit ---- */

WL_AGENT_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
    REAL(execve);
    wl__agent_before_exec();
    int r = real_execve(path, argv, envp);
    int saved = errno;
    wl__agent_exec_failed();
    errno = saved;
    return r;
}

WL_AGENT_EXPORT int execv(const char *path, char *const argv[])
{
    REAL(execv);
    wl__agent_before_exec();
    int r = real_execv(path, argv);
    int saved = errno;
    wl__agent_exec_failed();
    errno = saved;
    return r;
}

WL_AGENT_EXPORT int execvp(const char *file, char *const argv[])
{
    REAL(execvp);
    wl__agent_before_exec();
    int r = real_execvp(file, argv);
    int saved = errno;
    wl__agent_exec_failed();
    errno = saved;
    return r;
}

WL_AGENT_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
    REAL(execvpe);
    wl__agent_before_exec();
    int r = real_execvpe(file, argv, envp);
    int saved = errno;
    wl__agent_exec_failed();
    errno = saved;
    return r;
}

WL_AGENT_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
    REAL(fexecve);
    wl__agent_before_exec();
    int r = real_fexecve(fd, argv, envp);
    int saved = errno;
    wl__agent_exec_failed();
    errno = saved;
    return r;
}

/* The execl forms: gather the variadic arguments, then take the path above
 * (glibc's own execl calls execve internally, bypassing our wrapper). */
#define GATHER_ARGS(arg0, ap, argv, extra)                                                      \
    size_t n_ = 1;                                                                              \
    va_start(ap, arg0);                                                                         \
    while (va_arg(ap, const char *) != NULL)                                                    \
        n_++;                                                                                   \
    va_end(ap);                                                                                 \
    char *argv[n_ + 1];                                                                         \
    va_start(ap, arg0);                                                                         \
    argv[0] = (char *)arg0;                                                                     \
    for (size_t i_ = 1; i_ <= n_; i_++)                                                         \
        argv[i_] = va_arg(ap, char *);                                                          \
    extra;                                                                                      \
    va_end(ap)

WL_AGENT_EXPORT int execl(const char *path, const char *arg0, ...)
{
    va_list ap;
    GATHER_ARGS(arg0, ap, argv, (void)0);
    return execv(path, argv);
}

WL_AGENT_EXPORT int execlp(const char *file, const char *arg0, ...)
{
    va_list ap;
    GATHER_ARGS(arg0, ap, argv, (void)0);
    return execvp(file, argv);
}

WL_AGENT_EXPORT int execle(const char *path, const char *arg0, ...)
{
    va_list ap;
    char **envp;
    GATHER_ARGS(arg0, ap, argv, envp = va_arg(ap, char **));
    return execve(path, argv, envp);
}

WL_AGENT_EXPORT void _exit(int status)
{
    REAL(_exit);
    wl__agent_before_exit();
    real__exit(status);
    __builtin_unreachable();
}

WL_AGENT_EXPORT void _Exit(int status)
{
    REAL(_Exit);
    wl__agent_before_exit();
    real__Exit(status);
    __builtin_unreachable();
}

/* ---- signal plumbing ---- */

WL_AGENT_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    REAL(sigaction);
    if (sig == SIGPROF && act && wl__agent_sampling())
        wl__agent_yield_sigprof();
    return real_sigaction(sig, act, old);
}

WL_AGENT_EXPORT sighandler_t signal(int sig, sighandler_t h)
{
    REAL(signal);
    if (sig == SIGPROF && wl__agent_sampling())
        wl__agent_yield_sigprof();
    return real_signal(sig, h);
}

static const sigset_t *without_prof(int how, const sigset_t *set, sigset_t *copy)
{
    if (!set || how == SIG_UNBLOCK || !wl__agent_sampling() || !sigismember(set, SIGPROF))
        return set;
    *copy = *set;
    sigdelset(copy, SIGPROF);
    return copy;
}

WL_AGENT_EXPORT int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
    REAL(pthread_sigmask);
    sigset_t copy;
    return real_pthread_sigmask(how, without_prof(how, set, &copy), old);
}

WL_AGENT_EXPORT int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
    REAL(sigprocmask);
    sigset_t copy;
    return real_sigprocmask(how, without_prof(how, set, &copy), old);
}
