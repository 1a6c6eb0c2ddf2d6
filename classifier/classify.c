/*
 * classify.c -- the decision: kind of workload, executor, confidence,
 * reasons, pitfall.
 *
 * Input is a wl_profile; nothing here touches a process, a file or the
 * clock, so every rule can be tested with hand-made profiles.
 *
 * The decision tree (from the product brief, the Python asyncio tutorial):
 *
 *   shares of wall time: user | system | waiting (off-CPU)
 *     io score  = waiting + system   >= io_threshold  -> I/O-bound
 *     cpu score = user               >= cpu_threshold -> CPU-bound
 *     otherwise                                       -> mixed
 *   (when waiting < min_wait_share there is nothing to overlap: system CPU
 *   then counts as computing, io = waiting, cpu = user + system)
 *
 *   I/O-bound:  I/O waits mostly in epoll/poll/select/io_uring
 *                 (>= multiplex_share)                -> coroutine loop
 *               else blocking calls                   -> thread pool, naming
 *                 the calls (and whether they have a non-blocking form)
 *   CPU-bound:                                        -> process pool, one per core
 *   mixed:                                            -> split: waits on the loop
 *                 (or threads), computing on processes
 *
 *   independently: a thread that idles in poll-like waits (an event loop)
 *   but also blocks or computes for long stretches -> pitfall "blocking call
 *   inside the event loop", with the calls to move off it.
 *
 * Waits on locks and on children (futex, wait4) are coordination, not I/O:
 * the profiler already ranks them below the wait they stand behind, and
 * here they count towards neither style unless nothing else waited.
 *
 * All thresholds: the `defaults` table below, nowhere else.
 */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The one table of tunables. docs/classifier.md explains each value. */
static const wl_classify_opts defaults = {
    .io_threshold = 0.65,    /* 2:1 majority: below it the other side caps a
                                one-sided executor at < 3x (Amdahl) */
    .cpu_threshold = 0.65,
    .min_wait_share = 0.1,   /* less waiting than this: nothing to overlap, the
                                kernel's CPU time is computing too */
    .multiplex_share = 0.5,  /* most I/O waiting already goes through a poller */
    .loop_poll_s = 0.05,     /* five 100 Hz ticks in epoll: an event loop */
    .pitfall_block_s = 0.1,  /* asyncio's slow_callback_duration */
    .pitfall_burst_s = 0.1,
    .parallel_cores = 1.5,   /* well above one core: already parallel */
    .serial_fraction = 0.05, /* start-up, ordering and merging stay serial */
    .cores = 0,              /* 0: sysconf(_SC_NPROCESSORS_ONLN) */
    .concurrency = 64,       /* tasks in flight on one loop */
    .max_threads = 32,       /* threads cost a stack each */
    .min_ticks = 50,         /* half a second at 100 Hz */
};

/* Calls listed in a verdict, and busiest threads named per side. */
enum { MAX_CALLS = 5, MAX_COMPUTE_SIDE = 3 };
/* A call or thread below this share of its total is not worth naming. */
static const double NAME_MIN_SHARE = 0.05;

wl_classify_opts wl_classify_defaults(void)
{
    wl_classify_opts o = defaults;
    if (o.cores <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        o.cores = n > 0 ? (int)n : 1;
    }
    return o;
}

static int effective_opts(const wl_classify_opts *in, wl_classify_opts *o)
{
    *o = wl_classify_defaults();
    if (!in)
        return 0;
#define TAKE(field)              \
    do {                         \
        if (in->field < 0)       \
            return -EINVAL;      \
        if (in->field > 0)       \
            o->field = in->field; \
    } while (0)
    TAKE(io_threshold);
    TAKE(cpu_threshold);
    TAKE(min_wait_share);
    TAKE(multiplex_share);
    TAKE(loop_poll_s);
    TAKE(pitfall_block_s);
    TAKE(pitfall_burst_s);
    TAKE(parallel_cores);
    TAKE(serial_fraction);
    TAKE(cores);
    TAKE(concurrency);
    TAKE(max_threads);
    TAKE(min_ticks);
#undef TAKE
    if (o->io_threshold > 1 || o->cpu_threshold > 1 || o->multiplex_share > 1 ||
        o->min_wait_share > 1 ||
        o->serial_fraction >= 1)
        return -EINVAL;
    return 0;
}

/* ---- measured shares ---------------------------------------------------- */

/* Shares of wall time. From the samples when there are any (the profile's
 * derived fractions, which add up to 1), else from the exact totals: a run
 * too short for one tick still gets a verdict, with less confidence. */
static int measure_shares(const wl_profile *p, const wl_classify_opts *o, wl_verdict *v)
{
    double sum = p->user_frac + p->sys_frac + p->wait_frac;
    if (p->sampled_s > 0 && p->ticks > 0 && fabs(sum - 1.0) < 0.01) {
        v->user_share = p->user_frac;
        v->sys_share = p->sys_frac;
        v->wait_share = p->wait_frac;
        v->from_samples = true;
    } else {
        if (!(p->wall_s > 0))
            return -ENODATA;
        double cpu = p->user_s + p->sys_s;
        double run = cpu / p->wall_s;
        if (run > 1)
            run = 1;
        v->user_share = cpu > 0 ? run * p->user_s / cpu : 0;
        v->sys_share = cpu > 0 ? run * p->sys_s / cpu : 0;
        v->wait_share = 1 - run;
        v->from_samples = false;
    }
    /* Time nothing ran because threads queued for CPython's GIL is CPU
     * demand the interpreter serialised, not waiting: it moves to the
     * computing side (user CPU, where the interpreter runs). */
    double gil = p->wall_s > 0 ? p->wait_kind_s[WL_WAIT_GIL] / p->wall_s : 0;
    if (v->from_samples && p->sampled_s > 0)
        gil = p->wait_kind_s[WL_WAIT_GIL] / p->sampled_s;
    gil = fmin(gil, v->wait_share);
    v->wait_share -= gil;
    v->user_share += gil;
    /* System CPU sides with waiting (the brief: "system time is time
     * waiting for I/O services") -- when there is waiting. A program that
     * hardly waits is computing, in user space or in the kernel. */
    v->sys_is_computing = v->wait_share < o->min_wait_share;
    v->io_score = v->wait_share + (v->sys_is_computing ? 0 : v->sys_share);
    v->cpu_score = v->user_share + (v->sys_is_computing ? v->sys_share : 0);
    v->cores_busy = p->wall_s > 0 ? (p->user_s + p->sys_s) / p->wall_s : p->cores_busy;
    return 0;
}

static wl_kind decide_kind(const wl_verdict *v, const wl_classify_opts *o)
{
    bool io = v->io_score >= o->io_threshold;
    bool cpu = v->cpu_score >= o->cpu_threshold;
    /* Both only when a user sets thresholds below one half: the larger
     * margin wins. */
    if (io && cpu)
        return v->io_score - o->io_threshold > v->cpu_score - o->cpu_threshold
                   ? WL_KIND_IO_BOUND
                   : WL_KIND_CPU_BOUND;
    if (io)
        return WL_KIND_IO_BOUND;
    if (cpu)
        return WL_KIND_CPU_BOUND;
    return WL_KIND_MIXED;
}

/* ---- waits ------------------------------------------------------------- */

static bool is_coordination(wl_wait_kind k)
{
    return k == WL_WAIT_LOCK || k == WL_WAIT_CHILD || k == WL_WAIT_GIL;
}

/* How the program waits, from the program-level wait reasons. */
typedef struct wait_mix {
    double total_s;    /* all waiting seconds */
    double poll_s;     /* in poll-like calls */
    double blocking_s; /* in blocking calls that count as I/O */
    bool coordination_only; /* nothing but locks/children: count those */
} wait_mix;

static void measure_waits(const wl_profile *p, wait_mix *m)
{
    memset(m, 0, sizeof(*m));
    double coord = 0;
    for (int k = 0; k < WL_WAIT_KIND_COUNT; k++) {
        double s = p->wait_kind_s[k];
        if (k == WL_WAIT_GIL)
            continue; /* CPU demand (measure_shares) */
        m->total_s += s;
        if (k == WL_WAIT_POLL)
            m->poll_s += s;
        else if (is_coordination((wl_wait_kind)k))
            coord += s;
        else
            m->blocking_s += s;
    }
    if (m->poll_s + m->blocking_s <= 0 && coord > 0) {
        m->blocking_s = coord;
        m->coordination_only = true;
    }
}

static int cmp_call_seconds(const void *a, const void *b)
{
    const wl_call *x = a;
    const wl_call *y = b;
    return (x->seconds < y->seconds) - (x->seconds > y->seconds);
}

/* Adds w to the list, merged with an entry for the same call: the profiler
 * keeps one reason per (kind, wait channel, syscall), but a user moves a
 * call, wherever in the kernel it happened to sleep. The list stays sorted
 * most first and holds at most MAX_CALLS calls. */
static int add_call(wl_call **calls, size_t *n, const wl_wait_stat *w, double total_s)
{
    wl_call *c = NULL;
    for (size_t i = 0; i < *n && !c; i++)
        if ((*calls)[i].kind == w->kind && strcmp((*calls)[i].syscall, w->syscall) == 0)
            c = &(*calls)[i];
    if (!c) {
        if (*n >= MAX_CALLS)
            return 0;
        wl_call *grown = realloc(*calls, (*n + 1) * sizeof(**calls));
        if (!grown)
            return -ENOMEM;
        *calls = grown;
        c = &grown[(*n)++];
        memset(c, 0, sizeof(*c));
        c->kind = w->kind;
        snprintf(c->syscall, sizeof(c->syscall), "%s", w->syscall);
        snprintf(c->wchan, sizeof(c->wchan), "%s", w->wchan); /* the largest one's */
    }
    c->seconds += w->seconds;
    /* fmin: the parts are summed in another order than the total, and a
     * share must never read 1.00001 */
    c->share = total_s > 0 ? fmin(1.0, c->seconds / total_s) : 0;
    qsort(*calls, *n, sizeof(**calls), cmp_call_seconds);
    return 0;
}

/* The blocking calls worth moving: non-poll waits (coordination waits only
 * when nothing else waited), most first. */
static int collect_blocking_calls(const wl_profile *p, const wait_mix *m, wl_verdict *v)
{
    for (size_t i = 0; i < p->nwaits; i++) {
        const wl_wait_stat *w = &p->waits[i];
        if (w->kind == WL_WAIT_POLL)
            continue;
        if (is_coordination(w->kind) && !m->coordination_only)
            continue;
        int rc = add_call(&v->calls, &v->ncalls, w, m->total_s);
        if (rc < 0)
            return rc;
    }
    /* Drop what is too small to name, now that pieces are merged. */
    while (v->ncalls > 0 && m->total_s > 0 &&
           v->calls[v->ncalls - 1].seconds < NAME_MIN_SHARE * m->total_s)
        v->ncalls--;
    return 0;
}

/* "clock_nanosleep (sleep, 0.98 s)" for the first n calls, comma-separated. */
static void format_calls(const wl_call *calls, size_t n, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used + 1 < len; i++) {
        const wl_call *c = &calls[i];
        const char *name = c->syscall[0] ? c->syscall : c->wchan[0] ? c->wchan : "(unknown call)";
        int k = snprintf(buf + used, len - used, "%s%s (%s, %.2f s)", i ? ", " : "", name,
                         wl_wait_kind_name(c->kind), c->seconds);
        if (k < 0)
            break;
        used += (size_t)k;
    }
}

/* Whether every listed call has a readiness-based (non-blocking) form that
 * an event loop can drive: sockets, pipes, terminals, timers. Disk waits do
 * not (short of io_uring), so they stay on threads. */
static bool calls_have_async_form(const wl_call *calls, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (calls[i].kind) {
        case WL_WAIT_SLEEP:
        case WL_WAIT_NETWORK:
        case WL_WAIT_PIPE:
        case WL_WAIT_TERMINAL:
            break;
        default:
            return false;
        }
    }
    return n > 0;
}

/* ---- computing side ------------------------------------------------------ */

/* Names the busiest threads. The profile lists threads busiest first.
 * Functions come from the report's stack sections, when the stack agent
 * ran: wl_verdict_add_functions (functions.c). */
static int collect_compute_side(const wl_profile *p, wl_verdict *v)
{
    double total = p->user_s + p->sys_s;
    for (size_t i = 0; i < p->nthreads && v->ncompute_side < MAX_COMPUTE_SIDE; i++) {
        const wl_thread_stat *t = &p->threads[i];
        double cpu = t->user_s + t->sys_s;
        if (total <= 0 || cpu < NAME_MIN_SHARE * total)
            continue;
        /* a profile built from totals (the Slurm pilot) has no ids */
        int rc = t->pid > 0 ? wl__cls_strv_addf(&v->compute_side, &v->ncompute_side,
                                                "thread %d '%s' (pid %d): %.2f s CPU", t->tid, t->comm,
                                                t->pid, cpu)
                            : wl__cls_strv_addf(&v->compute_side, &v->ncompute_side,
                                                "thread '%s': %.2f s CPU", t->comm, cpu);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- pitfall ------------------------------------------------------------- */

static double thread_poll_s(const wl_thread_stat *t)
{
    double s = 0;
    for (size_t i = 0; i < t->nwaits; i++)
        if (t->waits[i].kind == WL_WAIT_POLL)
            s += t->waits[i].seconds;
    return s;
}

/* Finds the event-loop thread with the longest stall over its threshold: a
 * blocking call between two returns to the loop, or a run of on-CPU time
 * (schedstat, so run-queue time on a busy machine never counts) between two
 * waits -- both only after the thread first waited in a readiness call,
 * so interpreter start-up before any loop exists is not a burst. The
 * profiler measures both (wl_thread_stat.loop_*). */
static int detect_pitfall(const wl_profile *p, const wl_classify_opts *o, wl_pitfall *pf)
{
    const wl_thread_stat *worst = NULL;
    double worst_stall = 0;
    for (size_t i = 0; i < p->nthreads; i++) {
        const wl_thread_stat *t = &p->threads[i];
        if (!t->loop_evidence[0])
            continue;
        bool blocks = t->loop_block_s >= o->pitfall_block_s;
        bool bursts = t->loop_burst_s >= o->pitfall_burst_s;
        if (!blocks && !bursts)
            continue;
        double stall = fmax(blocks ? t->loop_block_s : 0, bursts ? t->loop_burst_s : 0);
        if (stall > worst_stall) {
            worst_stall = stall;
            worst = t;
        }
    }
    if (!worst)
        return 0;
    pf->detected = true;
    pf->pid = worst->pid;
    pf->tid = worst->tid;
    snprintf(pf->comm, sizeof(pf->comm), "%s", worst->comm);
    snprintf(pf->evidence, sizeof(pf->evidence), "%s", worst->loop_evidence);
    pf->poll_s = thread_poll_s(worst);
    pf->longest_block_s = worst->loop_block_s;
    snprintf(pf->block_syscall, sizeof(pf->block_syscall), "%s", worst->loop_block_syscall);
    pf->longest_burst_s = worst->loop_burst_s;
    pf->blocks = worst->loop_block_s >= o->pitfall_block_s;
    pf->bursts = worst->loop_burst_s >= o->pitfall_burst_s;
    snprintf(pf->call, sizeof(pf->call), "%s", pf->blocks ? pf->block_syscall : "");
    for (size_t i = 0; i < worst->nwaits; i++) {
        if (worst->waits[i].kind == WL_WAIT_POLL || is_coordination(worst->waits[i].kind))
            continue;
        int rc = add_call(&pf->calls, &pf->ncalls, &worst->waits[i], worst->waiting_s);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- threads: CPython, the GIL, idle helpers --------------------------------- */

static bool starts_with(const char *s, const char *prefix)
{
    return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* A CPython target: a process of the tree runs the python interpreter
 * (its name, or its command's first word, is python...). */
static bool is_cpython(const wl_profile *p)
{
    for (size_t i = 0; i < p->nprocs; i++) {
        const wl_process_stat *pr = &p->procs[i];
        if (starts_with(pr->comm, "python"))
            return true;
        if (pr->cmdline) {
            size_t n = strcspn(pr->cmdline, " ");
            const char *base = pr->cmdline;
            for (size_t k = 0; k < n; k++)
                if (pr->cmdline[k] == '/')
                    base = pr->cmdline + k + 1;
            if (starts_with(base, "python"))
                return true;
        }
    }
    if (p->argc > 0 && p->argv && p->argv[0]) {
        const char *base = strrchr(p->argv[0], '/');
        if (starts_with(base ? base + 1 : p->argv[0], "python"))
            return true;
    }
    return false;
}

/* A helper thread parked in a pool-worker or coordination wait all its
 * life (libuv's workers in uv_cond_wait, a runtime's idle threads): it
 * computes nothing and waits for nobody. */
static bool is_idle_helper(const wl_thread_stat *t, double wall_s)
{
    double cpu = t->user_s + t->sys_s;
    if (t->nwaits == 0 || cpu > 0.01 * wall_s + 0.005)
        return false;
    for (size_t i = 0; i < t->nwaits; i++)
        if (t->waits[i].kind != WL_WAIT_LOCK && t->waits[i].samples > 0)
            return false;
    return true;
}

/* Per-thread figures for the model and the GIL reason. */
static void measure_threads(const wl_profile *p, wl_verdict *v)
{
    double gil_s = 0, gil_threads_wait = 0;
    for (size_t i = 0; i < p->nthreads; i++) {
        const wl_thread_stat *t = &p->threads[i];
        if (is_idle_helper(t, p->wall_s)) {
            v->idle_threads++;
            continue;
        }
        if (t->longest_wait_s > v->model.longest_wait_s) {
            v->model.longest_wait_s = t->longest_wait_s;
            snprintf(v->model.longest_wait_call, sizeof(v->model.longest_wait_call), "%s",
                     t->longest_wait_syscall);
        }
        v->model.longest_cpu_s = fmax(v->model.longest_cpu_s, t->longest_cpu_run_s);
        double g = 0;
        for (size_t k = 0; k < t->nwaits; k++)
            if (t->waits[k].kind == WL_WAIT_GIL)
                g += t->waits[k].seconds;
        if (g > 0) {
            v->gil_threads++;
            gil_s += g;
            gil_threads_wait += t->waiting_s;
        }
    }
    v->gil_wait_share = gil_threads_wait > 0 ? fmin(1.0, gil_s / gil_threads_wait) : 0;
    snprintf(v->model.independent, sizeof(v->model.independent),
             "no stacks: consecutive samples in one call count as one call, so repeated "
             "calls look like one long one");
}

/* ---- confidence ---------------------------------------------------------- */

static double clamp01(double x)
{
    return x < 0 ? 0 : x > 1 ? 1 : x;
}

/* 0.5 at a threshold, 1 far from it (or, for mixed, in the middle of the
 * band between the two); scaled down for few samples, and for an I/O-bound
 * verdict by how clearly the program waits one way (multiplexed or not). */
static double confidence(const wl_verdict *v, const wl_profile *p, const wl_classify_opts *o)
{
    double margin;
    switch (v->kind) {
    case WL_KIND_IO_BOUND:
        margin = (v->io_score - o->io_threshold) / (1 - o->io_threshold + 1e-9);
        break;
    case WL_KIND_CPU_BOUND:
        margin = (v->cpu_score - o->cpu_threshold) / (1 - o->cpu_threshold + 1e-9);
        break;
    default: {
        double lo = 1 - o->cpu_threshold;
        double half = (o->io_threshold - lo) / 2;
        margin = half > 0 ? 1 - fabs(v->io_score - (lo + half)) / half : 0;
        break;
    }
    }
    double c = 0.5 + 0.5 * clamp01(margin);
    double data = v->from_samples ? clamp01((double)p->ticks / (double)o->min_ticks) : 0;
    c *= 0.5 + 0.5 * data;
    if (v->kind == WL_KIND_IO_BOUND)
        c *= fmax(v->multiplexed, 1 - v->multiplexed);
    return round(c * 100) / 100;
}

/* ---- reasons ------------------------------------------------------------- */

#define REASON(...)                                                      \
    do {                                                                 \
        int rc_ = wl__cls_strv_addf(&v->reasons, &v->nreasons, __VA_ARGS__); \
        if (rc_ < 0)                                                     \
            return rc_;                                                  \
    } while (0)

static int reason_shares(const wl_profile *p, const wl_classify_opts *o, wl_verdict *v)
{
    char source[64];
    if (v->from_samples)
        snprintf(source, sizeof(source), "%llu samples", (unsigned long long)p->ticks);
    else
        snprintf(source, sizeof(source), "exact totals, no samples");
    REASON("of %.3g s wall: waiting off-CPU %.1f%%, system CPU %.1f%%, user CPU %.1f%% (%s)",
           p->wall_s, 100 * v->wait_share, 100 * v->sys_share, 100 * v->user_share, source);
    switch (v->kind) {
    case WL_KIND_IO_BOUND:
        REASON("waiting + system = %.1f%% >= io threshold %.0f%%: I/O-bound",
               100 * v->io_score, 100 * o->io_threshold);
        break;
    case WL_KIND_CPU_BOUND:
        if (v->sys_is_computing)
            REASON("it hardly waits (%.1f%% < %.0f%%), so system CPU is computing too: "
                   "user + system = %.1f%% >= cpu threshold %.0f%%: CPU-bound",
                   100 * v->wait_share, 100 * o->min_wait_share, 100 * v->cpu_score,
                   100 * o->cpu_threshold);
        else
            REASON("user CPU = %.1f%% >= cpu threshold %.0f%%: CPU-bound", 100 * v->cpu_score,
                   100 * o->cpu_threshold);
        break;
    default:
        REASON("neither side dominates (waiting + system %.1f%% < %.0f%%, user %.1f%% < "
               "%.0f%%): mixed",
               100 * v->io_score, 100 * o->io_threshold, 100 * v->cpu_score,
               100 * o->cpu_threshold);
        break;
    }
    if (p->nwaits > 0) {
        const wl_wait_stat *w = &p->waits[0];
        double total = 0;
        for (int k = 0; k < WL_WAIT_KIND_COUNT; k++)
            total += p->wait_kind_s[k];
        /* Name the call and wait channel when the sampler saw them; waits
         * no tick caught (samples == 0) have neither. */
        char where[96] = "";
        if (w->samples == 0)
            snprintf(where, sizeof(where), ": waits too short for any sample to catch");
        else if (w->syscall[0] || w->wchan[0])
            snprintf(where, sizeof(where), " in %s%s%s%s", w->syscall, w->wchan[0] ? " [" : "",
                     w->wchan, w->wchan[0] ? "]" : "");
        REASON("dominant wait: %s %.2f s (%.0f%% of waiting)%s", wl_wait_kind_name(w->kind),
               w->seconds, total > 0 ? 100 * w->seconds / total : 0.0, where);
    }
    return 0;
}

static int reason_waiting_side(const wl_profile *p, const wl_classify_opts *o,
                               const wait_mix *m, wl_executor side, int workers, wl_verdict *v)
{
    if (side == WL_EXEC_COROUTINE) {
        REASON("%.0f%% of I/O waiting is in epoll/poll/select (>= %.0f%%): it already "
               "multiplexes; more tasks in flight on one coroutine loop (%d) overlap the waits",
               100 * v->multiplexed, 100 * o->multiplex_share, workers);
        return 0;
    }
    if (m->total_s <= 0) {
        REASON("no wait was sampled: the run is too short to tell how it waits");
        return 0;
    }
    char calls[256];
    format_calls(v->calls, v->ncalls, calls, sizeof(calls));
    REASON("%.0f%% of I/O waiting is in blocking calls: %s", 100 * (1 - v->multiplexed),
           calls[0] ? calls : "(none named)");
    if (m->coordination_only)
        REASON("it only waits on locks or children: the waits stand behind shared state, "
               "more threads help only if the work is independent");
    else if (v->loop_can_wait)
        REASON("move them onto a thread pool of %d, or rewrite them non-blocking on a "
               "coroutine loop (they have a readiness-based form)",
               workers);
    else
        REASON("move them onto a thread pool of %d: disk and other waits have no "
               "readiness-based form a loop could drive",
               workers);
    return 0;
}

static int reason_computing_side(const wl_profile *p, const wl_classify_opts *o,
                                 wl_verdict *v)
{
    int cores = v->cores;
    REASON("%.2f cores busy on average (%.3g s CPU over %.3g s wall, at most %u thread%s alive); "
           "computing scales to %d processes, one per core",
           v->cores_busy, p->user_s + p->sys_s, p->wall_s, p->max_threads, p->max_threads == 1 ? "" : "s",
           cores);
    if (v->model.cpython) {
        if (v->gil_threads >= 2)
            REASON("%d threads, %.2f cores busy, %.0f%% of their wait is the GIL: CPython "
                   "runs their computing one thread at a time -> processes",
                   v->gil_threads, v->cores_busy, 100 * v->gil_wait_share);
        else
            REASON("a CPython target: its threads compute one at a time (the GIL), so only "
                   "processes run its computing in parallel");
    } else {
        REASON("C code without shared state can use %d threads equally (no interpreter lock)",
               cores);
    }
    /* Parallel already: by the cores it got, or by the threads that wanted
     * one (on a loaded machine runnable threads queue for a core). */
    if (v->cores_busy >= o->parallel_cores || p->mean_running_threads >= o->parallel_cores)
        REASON("it already runs in parallel: %.2f runnable threads on average, %.2f of %d "
               "cores busy: a pool adds at most %.2fx",
               p->mean_running_threads, v->cores_busy, cores,
               v->predicted[WL_EXEC_PROCESS_POOL].speedup);
    if (cores <= 1)
        REASON("only one core: no pool makes the computing faster");
    return 0;
}

static int reason_pitfall(wl_verdict *v)
{
    const wl_pitfall *pf = &v->pitfall;
    if (!pf->detected)
        return 0;
    char calls[256];
    format_calls(pf->calls, pf->ncalls, calls, sizeof(calls));
    const char *how = strcmp(pf->evidence, "epoll_fd") == 0
                          ? "runs an event loop (it holds an epoll instance) that never got to "
                            "wait"
                          : "is an event loop (it waited in epoll/poll/select)";
    if (pf->blocks)
        REASON("blocking call inside the event loop: thread %d '%s' %s but blocked %.2f s at a "
               "stretch in %s; move %s off the loop",
               pf->tid, pf->comm, how, pf->longest_block_s,
               pf->block_syscall[0] ? pf->block_syscall : "?", calls[0] ? calls : "it");
    if (pf->bursts)
        REASON("CPU burst inside the event loop: thread %d '%s' computed %.2f s on-CPU "
               "between two waits; every other task stalls meanwhile: send it to a "
               "process pool",
               pf->tid, pf->comm, pf->longest_burst_s);
    return 0;
}

#undef REASON

/* ---- entry point --------------------------------------------------------- */

/* The decision: the waiting side (a loop when the program already
 * multiplexes, else threads), the speed-up model's inputs, and the
 * executor and its size for the kind (out->kind). The waiting side's
 * executor and size go to *wait_side and *wait_workers. */
static void decide_executor(const wl_profile *p, const wl_classify_opts *o, const wait_mix *m,
                            wl_verdict *out, wl_executor *wait_side, int *wait_workers)
{
    out->multiplexed = m->poll_s + m->blocking_s > 0 ? m->poll_s / (m->poll_s + m->blocking_s) : 0;
    *wait_side = out->multiplexed >= o->multiplex_share ? WL_EXEC_COROUTINE : WL_EXEC_THREAD_POOL;

    /* The model's run leaves out run-queue time: the machine's other load
     * (or more busy threads than cores) is nothing an executor of this
     * program changes, and on-CPU runs are measured without it. */
    double busy_wall = p->wall_s;
    if (out->from_samples && p->sampled_s > 0)
        busy_wall = p->wall_s * fmin(1.0, (p->running_s + p->waiting_s) / p->sampled_s);
    out->model.wall_s = busy_wall;
    out->model.wait_s = out->wait_share * busy_wall;
    out->model.cpu_s = p->user_s + p->sys_s;
    out->model.cpython = is_cpython(p);
    measure_threads(p, out);
    int threads = wl__cls_thread_pool_size(&out->model, o);
    *wait_workers = *wait_side == WL_EXEC_COROUTINE ? o->concurrency : threads;

    switch (out->kind) {
    case WL_KIND_IO_BOUND:
        out->executor = *wait_side;
        out->suggested_workers = *wait_workers;
        break;
    case WL_KIND_CPU_BOUND:
        out->executor = WL_EXEC_PROCESS_POOL;
        out->suggested_workers = o->cores;
        break;
    default:
        out->executor = WL_EXEC_SPLIT;
        out->suggested_workers = o->cores;
        out->wait_side = *wait_side;
        out->wait_side_workers = *wait_workers;
        break;
    }
}

/* What the decision moves: the blocking calls (and whether a loop could
 * wait on them), the computing side, the event-loop pitfall, and the
 * confidence. Returns 0 or -ENOMEM. */
static int collect_evidence(const wl_profile *p, const wl_classify_opts *o, const wait_mix *m,
                            wl_executor wait_side, wl_verdict *out)
{
    int rc;
    if (out->executor != WL_EXEC_PROCESS_POOL && out->executor != WL_EXEC_COROUTINE) {
        rc = collect_blocking_calls(p, m, out);
        if (rc < 0)
            return rc;
    }
    out->loop_can_wait = out->kind != WL_KIND_CPU_BOUND &&
                         (wait_side == WL_EXEC_COROUTINE ||
                          calls_have_async_form(out->calls, out->ncalls));
    if (out->executor == WL_EXEC_PROCESS_POOL || out->executor == WL_EXEC_SPLIT) {
        rc = collect_compute_side(p, out);
        if (rc < 0)
            return rc;
    }
    rc = detect_pitfall(p, o, &out->pitfall);
    if (rc < 0)
        return rc;
    out->confidence = confidence(out, p, o);
    return 0;
}

/* The sentences with the numbers used, side by side as the kind has them,
 * then the predictions, the pitfall and a low sample count. Returns 0 or
 * -ENOMEM. */
static int add_reasons(const wl_profile *p, const wl_classify_opts *o, const wait_mix *m,
                       wl_executor wait_side, int wait_workers, wl_verdict *out)
{
    int rc = reason_shares(p, o, out);
    if (rc == 0 && out->kind != WL_KIND_CPU_BOUND) {
        rc = reason_waiting_side(p, o, m, wait_side, wait_workers, out);
        if (rc == 0 && out->sys_share > out->wait_share && out->kind == WL_KIND_IO_BOUND)
            rc = wl__cls_strv_addf(&out->reasons, &out->nreasons,
                                "system CPU (%.1f%%) outweighs waiting (%.1f%%): the kernel "
                                "work itself runs in parallel only on several threads",
                                100 * out->sys_share, 100 * out->wait_share);
    }
    if (rc == 0 && out->kind != WL_KIND_IO_BOUND)
        rc = reason_computing_side(p, o, out);
    if (rc == 0 && out->kind == WL_KIND_MIXED) {
        char side[160];
        snprintf(side, sizeof(side), "%s", out->ncompute_side ? out->compute_side[0] : "-");
        rc = wl__cls_strv_addf(&out->reasons, &out->nreasons,
                            "split: the waiting side on a %s of %d, the computing side (%s) "
                            "on %d processes",
                            wait_side == WL_EXEC_COROUTINE ? "coroutine loop" : "thread pool",
                            wait_workers, side, o->cores);
    }
    if (rc == 0)
        rc = wl__cls_prediction_reasons(out);
    if (rc == 0)
        rc = reason_pitfall(out);
    if (rc == 0 && (!out->from_samples || p->ticks < (uint64_t)o->min_ticks))
        rc = wl__cls_strv_addf(&out->reasons, &out->nreasons,
                            "only %llu samples (full confidence from %d): confidence reduced",
                            (unsigned long long)p->ticks, o->min_ticks);
    return rc;
}

int wl_classify(const wl_profile *p, const wl_classify_opts *opts, wl_verdict *out)
{
    wl_classify_opts o;
    wait_mix m;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = effective_opts(opts, &o);
    if (rc < 0)
        return rc;
    rc = measure_shares(p, &o, out);
    if (rc < 0)
        return rc;
    out->used = o;
    out->cores = o.cores;
    out->kind = decide_kind(out, &o);

    measure_waits(p, &m);
    wl_executor wait_side;
    int wait_workers;
    decide_executor(p, &o, &m, out, &wait_side, &wait_workers);
    wl__cls_predict(&out->model, &o, out);
    rc = collect_evidence(p, &o, &m, wait_side, out);
    if (rc == 0)
        rc = add_reasons(p, &o, &m, wait_side, wait_workers, out);
    if (rc < 0)
        wl_verdict_free(out);
    return rc;
}
