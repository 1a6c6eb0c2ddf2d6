/*
 * wait.c -- the slow half of wait timing (a call that took at least the
 * threshold: did it block? then record its stack as a WAIT) and the
 * call-site sampler's next step (wl_site). The inline fast path is in
 * agent_internal.h. Design: agent.c, "Wait timing".
 */
#include <math.h>
#include <sys/resource.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "agent_core.h"
#include "pyagent.h"

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
    uint64_t wall = c->clk == WL_CLK_TICKS ? wl__ticks_to_ns(elapsed) : elapsed;
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
    /* Busy from before the unwind: libunwind must not be re-entered on this
     * thread by our SIGPROF handler (which drops its sample when busy).
     * Its trace cache is per thread, and its first use in the process --
     * in a lazy image often this unwind -- runs a set-up under
     * pthread_once with no signal blocked: a handler unwinding then waits
     * on that once for ever (tests/targets/agent_unwind_reentry.c). */
    s->busy = 1;
    atomic_signal_fence(memory_order_seq_cst);
    void *raw[WL_WIRE_MAX_FRAMES + 4];
    int n = unw_backtrace(raw, WL_WIRE_MAX_FRAMES + 4);
    int first = 0;
    while (first < n && (uintptr_t)raw[first] >= wl__agent.self_lo && (uintptr_t)raw[first] < wl__agent.self_hi)
        first++;
    int nf = n - first;
    if (nf > WL_WIRE_MAX_FRAMES)
        nf = WL_WIRE_MAX_FRAMES;
    uint32_t size = (uint32_t)(sizeof(wl_wire_wait) + (size_t)nf * 8);
    wl_wire_pyframe py[WL_WIRE_MAX_PYFRAMES];
    uint32_t pysize;
    int npy = take_pyframes(s->tid, 1, py, &pysize);
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
