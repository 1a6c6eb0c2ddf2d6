/*
 * clock.c -- the cycle counter as a clock for waits: whether it is usable,
 * its calibration against CLOCK_MONOTONIC (writer thread) and the
 * conversion of a candidate wait's ticks to ns. Design: agent.c, "Wait
 * timing", measure 1.
 */
#if defined(__x86_64__)
#include <cpuid.h>
#endif
#include <fcntl.h>
#include <stdlib.h>

#include "agent_core.h"

struct wl_agent_cal wl__cal;

/* True when the cycle counter runs at a constant rate through frequency
 * changes and idle states, so ticks convert to ns with one ratio. */
static int ticks_usable(void)
{
#if defined(__x86_64__)
    /* The invariant-TSC bit (CPUID 0x80000007 EDX[8]) is what makes Linux
     * set both flags on Intel and AMD: one instruction instead of reading
     * /proc/cpuinfo (~70 us of the kernel formatting it) in every process.
     * Without the bit, the kernel's own verdict decides, as before. */
    unsigned a, b, c, d;
    if (__get_cpuid(0x80000007, &a, &b, &c, &d) && (d & (1u << 8)))
        return 1;
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
    atomic_store_explicit(&wl__cal.ns_per_tick_q32, (uint64_t)(ns_per_tick * 4294967296.0), memory_order_relaxed);
    /* 1 % under the exact count: the candidate filter must never hide a wait. */
    atomic_store_explicit(&wl__g.cand_ticks, (uint64_t)((double)wl__g.threshold_ns / ns_per_tick * 0.99),
                          memory_order_relaxed);
}

/* Chooses the clock for waits at start. Until the writer's first
 * calibration, the candidate filter assumes the slowest plausible counter
 * (WL_TICKS_MIN_PER_NS), which lets through more calls, never fewer. */
void wl__clock_init(void)
{
    atomic_store(&wl__g.clk, WL_CLK_MONO);
    atomic_store(&wl__cal.ns_per_tick_q32, 0);
    const char *force = getenv("WLPROF_AGENT_CLOCK");
    if ((force && strcmp(force, "mono") == 0) || !ticks_usable())
        return;
    if (clock_pair(&wl__cal.ticks0, &wl__cal.mono0) != 0)
        return;
    wl__cal.last_ticks = wl__cal.ticks0;
    wl__cal.last_mono = wl__cal.mono0;
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
void wl__clock_calibrate(void)
{
    if (atomic_load_explicit(&wl__g.clk, memory_order_relaxed) != WL_CLK_TICKS)
        return;
    uint64_t t, m;
    if (clock_pair(&t, &m) != 0)
        return;
    if (t <= wl__cal.last_ticks || m <= wl__cal.last_mono)
        goto unsteady;
    double total = (double)(m - wl__cal.mono0) / (double)(t - wl__cal.ticks0);
    if (!(total > 0.01 && total < 100))
        goto unsteady;
    if (m - wl__cal.last_mono >= WL_CAL_MIN_WINDOW_NS) {
        double recent = (double)(m - wl__cal.last_mono) / (double)(t - wl__cal.last_ticks);
        if (recent < total * 0.99 || recent > total * 1.01)
            goto unsteady;
        wl__cal.last_ticks = t;
        wl__cal.last_mono = m;
    }
    if (m - wl__cal.mono0 >= WL_CAL_MIN_WINDOW_NS)
        cal_publish(total);
    return;
unsteady:
    atomic_store(&wl__g.clk, WL_CLK_MONO); /* waits already under way still convert */
}

/* Ticks to ns for a candidate wait. Before the first calibration the rate is
 * measured now against the start pair: the call began after that pair, so
 * the baseline is at least as long as the call. */
uint64_t wl__ticks_to_ns(uint64_t d)
{
    if ((int64_t)d < 0)
        return 0; /* read on another CPU slightly behind: no wait */
    uint64_t q = atomic_load_explicit(&wl__cal.ns_per_tick_q32, memory_order_relaxed);
    if (q)
        return (uint64_t)((double)d * ((double)q / 4294967296.0));
    uint64_t t, m;
    if (clock_pair(&t, &m) != 0) {
        t = wl__ticks_now();
        m = wl__mono_now();
    }
    if (t <= wl__cal.ticks0 || m <= wl__cal.mono0)
        return 0;
    return (uint64_t)((double)d * (double)(m - wl__cal.mono0) / (double)(t - wl__cal.ticks0));
}
