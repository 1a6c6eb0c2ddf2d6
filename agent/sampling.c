/*
 * sampling.c -- on-CPU sampling: each thread's one-shot CPU-clock timer
 * (re-armed with a jittered interval) and the SIGPROF handler that unwinds
 * the interrupted stack into the thread's ring. Design: agent.c, "On-CPU
 * sampling".
 */
#include <sys/resource.h>
#include <ucontext.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "agent_core.h"
#include "pyagent.h"

/* ---- timers ---- */

uint64_t wl__next_interval(struct wl_slot *s)
{
    uint32_t x = s->rng ? s->rng : 0x9e3779b9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    s->rng = x;
    /* uniform in [0.5, 1.5) x mean */
    return wl__agent.mean_ns / 2 + (uint64_t)((double)wl__agent.mean_ns * ((double)x / 4294967296.0));
}

void wl__timer_arm(struct wl_slot *s, uint64_t ns)
{
    struct itimerspec its;
    memset(&its, 0, sizeof(its));
    its.it_value.tv_sec = (time_t)(ns / 1000000000ull);
    its.it_value.tv_nsec = (long)(ns % 1000000000ull);
    timer_settime(s->timer, 0, &its, NULL);
}

/* Creates the CPU-clock timer of thread tid (the caller itself when tid ==
 * own tid) and arms it. */
int wl__timer_setup(struct wl_slot *s, int tid, int self)
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
    if (atomic_load(&wl__agent.cpu_on))
        wl__timer_arm(s, wl__next_interval(s));
    return 0;
}

void wl__timer_teardown(struct wl_slot *s)
{
    if (atomic_exchange(&s->has_timer, 0))
        timer_delete(s->timer);
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

void wl__on_sigprof(int sig, siginfo_t *si, void *ucv)
{
    int saved_errno = errno;
    int saved_inside = wl__t.inside;
    (void)sig;
    wl__t.inside = 1; /* libunwind's own sigprocmask/mutex calls must pass through */
    if (si->si_code != SI_TIMER || !atomic_load_explicit(&wl__agent.cpu_on, memory_order_relaxed))
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
    wl__timer_arm(s, wl__next_interval(s));

    if (s->busy) {
        atomic_fetch_add_explicit(&s->dropped, 1, memory_order_relaxed);
        goto out;
    }
    void *raw[WL_WIRE_MAX_FRAMES + 8];
    int n = unw_backtrace(raw, WL_WIRE_MAX_FRAMES + 8);
    wl_wire_pyframe py[WL_WIRE_MAX_PYFRAMES];
    uint32_t pysize;
    int npy = take_pyframes(s->tid, 0, py, &pysize);
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

int wl__agent_sampling(void)
{
    /* Agent code (wl__t.inside) keeps the masks it asks for: libunwind blocks
     * every signal around its locks, SIGPROF included, and must. */
    return !wl__t.inside && atomic_load_explicit(&wl__agent.cpu_on, memory_order_relaxed);
}

void wl__stop_timers(void)
{
    atomic_store(&wl__agent.cpu_on, 0);
    int used = wl__slots_used();
    for (int i = 0; i < used; i++) {
        struct wl_slot *s = &wl__slots[i];
        if (atomic_load(&s->has_timer))
            wl__timer_arm(s, 0);
    }
}
