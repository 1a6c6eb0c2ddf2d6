/*
 * sampler.c -- follows a process tree through /proc and turns periodic
 * observations of its threads into a profile.
 *
 * Every tick:
 *   1. discovery: adopt every new pid whose parent is already tracked (or
 *      is us: orphans are reparented to the profiler, which is a child
 *      subreaper). Where the kernel has /proc/PID/task/TID/children, only
 *      the children of our own threads and of the tracked threads are
 *      read; otherwise all of /proc is listed, and pids found not to be
 *      ours are remembered in `foreign` so each is read once, not every
 *      tick. (At 1000 Hz on a machine with 200 processes, listing /proc
 *      was 62 % of the sampler's CPU: getdents64 over every pid.)
 *   2. observation: for each tracked process, read its stat (process CPU,
 *      including threads that already exited), then each thread's stat and
 *      schedstat; for a thread that is not runnable also its wchan and
 *      syscall, and for read/write-like calls what the fd points at.
 *   3. attribution: the tick's wall time (dt) is "running" when any thread
 *      is runnable, else "waiting", split among the blocked threads whose
 *      wait is most telling (see wait_priority) -- so idle pool threads on
 *      a futex never outvote the thread that sleeps or reads.
 *
 * Data layout: procs[] and threads[] only grow (exited entries stay for the
 * report); pid_index/tid_index map live ids to their slots. Single-threaded:
 * only the profiler's sampling loop touches a sampler.
 */
#include "sampler.h"

#include <dirent.h>
#include <sys/syscall.h>
#include <signal.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "procfs.h"
#include "timeline.h"
#include "waitkind.h"
#include "waitlist.h"

struct thread_track {
    int pid;
    int tid;
    uint64_t starttime;       /* identity: tids are reused */
    char comm[17];
    uint64_t utime, stime;    /* latest, clock ticks */
    uint64_t run_ns, wait_ns; /* latest schedstat */
    double carry_run, carry_rq; /* schedstat time not yet given to a tick */
    int slices_changed;       /* scheduled in again since the last tick */
    double rq_pending;        /* its waiting of intervals that ended runnable */
    double prog_wait_s;       /* the program's waiting of those intervals */
    uint64_t waited_tick;     /* last such interval */
    int has_schedstat;        /* run_ns/wait_ns were read at least once */
    double first_seen, last_seen;
    uint64_t samples_running, samples_waiting;
    double running_s, runq_s, waiting_s;
    double burst_s, longest_burst_s;
    double block_s, longest_block_s;
    char block_syscall[24];   /* syscall of the current blocked stretch */
    char longest_block_syscall[24];
    /* CPU runs and the event loop (see track_runs_and_loop) */
    uint64_t slices;          /* schedstat's times-scheduled-in */
    uint64_t nvcsw;           /* voluntary context switches, when read */
    int has_nvcsw;
    int gil;                  /* seen waiting for CPython's GIL: its on-CPU time
                                 alternates with the other GIL threads' */
    double cpu_run_s, longest_cpu_run_s;
    int loop;                 /* LOOP_NONE / LOOP_READINESS / LOOP_EPOLL_FD */
    double loop_first;
    double loop_run_s;        /* on-CPU since the last wait, inside the loop */
    int loop_run_inside;      /* the current run began after loop_first */
    double loop_burst_s;
    double pending_block_s;   /* longest block since the last readiness wait */
    char pending_block_syscall[24];
    double loop_block_s;
    char loop_block_syscall[24];
    double wait_s_now, longest_wait_s; /* one-call stretches, coordination left out */
    char wait_syscall[24], longest_wait_syscall[24];
    wl_wait_stat *waits;
    size_t nwaits, cap_waits;
    uint64_t last_tick;
    int live;
    uint64_t utime0, stime0, run_ns0; /* attach: counters at the first look */
    procfs_file f_stat, f_sched, f_children; /* kept open while live */
};

struct proc_track {
    int pid;
    int ppid;
    uint64_t starttime;
    char comm[17];
    char *cmdline;
    double start_s, end_s;
    int exit_code, term_signal;
    uint64_t utime, stime; /* process-wide, clock ticks */
    uint32_t threads_seen;
    wl_io_stat io;
    int live;
    uint64_t utime0, stime0; /* attach: counters at the first look */
    uint64_t event_checked_tick; /* when /proc/PID/fd was last scanned, 0 never */
    int has_event_instance;      /* holds an epoll or io_uring instance */
    procfs_file f_stat; /* kept open while live */
    DIR *task_dir;      /* /proc/PID/task, kept open and rewound */
    int signalled;            /* last signal wl__sampler_signal_tree sent it */
};

enum { LOOP_NONE = 0, LOOP_READINESS, LOOP_EPOLL_FD };
/* Processes by this name are left unobserved: the samples' local servers. */
#define WL_HELPER_PROCESS_COMM "wlprof-httpd"
/* A single-threaded process blocked this long outside a readiness call has
 * its fds looked at for an epoll/io_uring instance (asyncio's loop, running
 * callbacks that never let it wait: the tutorial's time.sleep pitfall). */
#define LOOP_FD_CHECK_S 0.05
/* ... at most once per this many ticks per process. */
#define LOOP_FD_CHECK_TICKS 20

/* Which blocked threads explain a waiting tick: lower is more telling. A
 * thread sleeping or reading is the reason; one polling an event loop less
 * so; a parent in wait4 or a worker on a futex waits for someone else. */
static int wait_priority(wl_wait_kind k)
{
    switch (k) {
    case WL_WAIT_SLEEP:
    case WL_WAIT_NETWORK:
    case WL_WAIT_DISK:
    case WL_WAIT_PIPE:
    case WL_WAIT_TERMINAL:
        return 0;
    case WL_WAIT_POLL:
        return 1;
    case WL_WAIT_CHILD:
        return 2;
    case WL_WAIT_LOCK:
    case WL_WAIT_GIL:
        return 3;
    default:
        return 4;
    }
}

/* What one tick saw across all threads (see wl__sampler_tick). */
typedef struct tick_obs {
    uint32_t nthreads;      /* threads observed */
    uint32_t nrunning;      /* threads in state R at the sample instant */
    double prod_not_run;    /* product over threads of (1 - on-CPU share) */
    double prod_not_busy;   /* product of (1 - (on-CPU + runqueue) share) */
    double gil_on;          /* sum of the on-CPU shares of GIL-bound threads */
    double gil_busy;        /* ... of their on-CPU + runqueue shares */
    double late_rq;         /* run-queue seconds of earlier ticks first read as waiting */
    uint64_t tick;          /* the tick being observed */
    struct blocked_obs *blocked;
    size_t nblocked, cap_blocked;
} tick_obs;

/* Ticks between two clearings of the foreign-pid cache (10 s at 100 Hz). */
#define FOREIGN_FORGET_TICKS 1000

/* One blocked thread seen in the current tick. */
typedef struct blocked_obs {
    wl_wait_kind kind;
    char wchan[48];
    char syscall[24];
} blocked_obs;

static double ticks_to_s(const sampler *s, uint64_t ticks)
{
    return (double)ticks / (double)s->clk_tck;
}

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(*arr, ncap * elem);
    if (!p)
        return -ENOMEM;
    memset((char *)p + *cap * elem, 0, (ncap - *cap) * elem);
    *arr = p;
    *cap = ncap;
    return 0;
}

/* Adds dt seconds to the (kind, wchan, syscall) entry of a reason list;
 * out of memory, the reason is lost and sampling goes on. */
static void add_wait(wl_wait_stat **arr, size_t *n, size_t *cap, const blocked_obs *o,
                     double seconds)
{
    (void)wl__waits_add(arr, n, cap, o->kind, o->wchan, o->syscall, seconds);
}

static proc_track *adopt_proc(sampler *s, const proc_stat *st, double now);

int wl__sampler_init(sampler *s, int root_pid, double t0)
{
    memset(s, 0, sizeof(*s));
    s->root_pid = root_pid;
    s->self_pid = getpid();
    s->t0 = t0;
    s->clk_tck = wl__procfs_clk_tck();
    /* Three kept-open files per thread at most; leave the target's share
     * of descriptors alone (profile may run inside a program). */
    struct rlimit rl;
    long budget = 512;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (long)rl.rlim_cur / 2 - 64 < budget)
        budget = (long)rl.rlim_cur / 2 - 64;
    s->fd_budget = budget > 0 ? (int)budget : 0;
    if (intmap_init(&s->pid_index) < 0)
        goto fail_pid;
    if (intmap_init(&s->tid_index) < 0)
        goto fail_tid;
    if (intmap_init(&s->foreign) < 0)
        goto fail_foreign;
    /* Adopt the root now rather than find it among every pid on the
     * machine; its descendants are found through their parents. */
    char path[64];
    proc_stat st;
    snprintf(path, sizeof(path), "/proc/%d/stat", root_pid);
    if (wl__procfs_stat(path, &st) == 0) {
        proc_track *p = adopt_proc(s, &st, 0);
        if (p)
            p->cmdline = wl__procfs_cmdline(root_pid);
    } else {
        s->read_errors++; /* /proc hidden or not mounted: totals only */
    }
    return 0;
fail_foreign:
    intmap_free(&s->tid_index);
fail_tid:
    intmap_free(&s->pid_index);
fail_pid:
    return -ENOMEM;
}

static proc_track *adopt_proc(sampler *s, const proc_stat *st, double now)
{
    if (grow((void **)&s->procs, &s->cap_procs, s->nprocs + 1, sizeof(*s->procs)) < 0)
        return NULL;
    if (intmap_put(&s->pid_index, st->pid, (int)s->nprocs) < 0)
        return NULL;
    proc_track *p = &s->procs[s->nprocs++];
    memset(p, 0, sizeof(*p));
    p->pid = st->pid;
    p->ppid = st->ppid;
    p->starttime = st->starttime;
    memcpy(p->comm, st->comm, sizeof(p->comm));
    p->start_s = now;
    p->end_s = now;
    p->exit_code = -1;
    p->live = 1;
    return p;
}

static int is_tracked_parent(const sampler *s, int ppid)
{
    return ppid == s->self_pid || intmap_get(&s->pid_index, ppid, NULL);
}

/* Step 1 by listing /proc: adopt new descendants. Parents may be new in
 * the same scan, so candidates are retried until a pass adopts nothing. */
static void discover_scan(sampler *s, double now)
{
    DIR *d = opendir("/proc");
    if (!d) {
        s->read_errors++;
        return;
    }
    proc_stat *cand = s->candidates;
    size_t ncand = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        int pid = atoi(de->d_name);
        if (pid == s->self_pid || intmap_get(&s->pid_index, pid, NULL) ||
            intmap_get(&s->foreign, pid, NULL))
            continue;
        if (grow((void **)&cand, &s->cap_candidates, ncand + 1, sizeof(*cand)) < 0)
            break; /* out of memory: look at the rest next tick */
        s->candidates = cand;
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/stat", pid);
        if (wl__procfs_stat(path, &cand[ncand]) == 0)
            ncand++;
    }
    closedir(d);

    int adopted;
    do {
        adopted = 0;
        for (size_t i = 0; i < ncand; i++) {
            if (cand[i].pid == 0 || !is_tracked_parent(s, cand[i].ppid))
                continue;
            proc_track *p = adopt_proc(s, &cand[i], now);
            if (p)
                p->cmdline = wl__procfs_cmdline(p->pid);
            cand[i].pid = 0;
            adopted = 1;
        }
    } while (adopted);
    /* What is left is not ours -- unless its parent was forked after the
     * scan passed the parent's place in /proc: a parent neither tracked,
     * nor foreign, nor seen in this scan is unknown yet, so its child is
     * looked at again next tick. */
    for (size_t i = 0; i < ncand; i++) {
        if (cand[i].pid == 0)
            continue;
        int parent_known = cand[i].ppid <= 2 || intmap_get(&s->foreign, cand[i].ppid, NULL);
        for (size_t j = 0; j < ncand && !parent_known; j++)
            parent_known = cand[j].pid == cand[i].ppid;
        if (parent_known)
            intmap_put(&s->foreign, cand[i].pid, 1);
    }
}

static thread_track *live_thread(sampler *s, int pid, int tid)
{
    int idx;
    if (!intmap_get(&s->tid_index, tid, &idx))
        return NULL;
    thread_track *t = &s->threads[idx];
    return t->live && t->pid == pid ? t : NULL;
}

/* /proc/PID/task of a tracked process, rewound for another listing: kept
 * open while descriptors last (the path walk of opendir is most of a
 * small listing's cost), else opened afresh; *fresh says which (the caller
 * closes a fresh one). */
static DIR *task_dir_of(sampler *s, proc_track *p, int *fresh)
{
    char path[64];
    *fresh = 0;
    if (p && p->task_dir) {
        rewinddir(p->task_dir);
        return p->task_dir;
    }
    snprintf(path, sizeof(path), "/proc/%d/task", p ? p->pid : s->self_pid);
    if (!p && s->self_task_dir) {
        rewinddir(s->self_task_dir);
        return s->self_task_dir;
    }
    DIR *d = opendir(path);
    if (d && s->fd_budget > 0) {
        s->fd_budget--;
        if (p)
            p->task_dir = d;
        else
            s->self_task_dir = d;
        return d;
    }
    *fresh = d != NULL;
    return d;
}

static void task_dir_release(sampler *s, proc_track *p)
{
    if (p->task_dir) {
        closedir(p->task_dir);
        p->task_dir = NULL;
        s->fd_budget++;
    }
}

static void thread_release(sampler *s, thread_track *t)
{
    wl__procfs_file_close(&t->f_stat, &s->fd_budget);
    wl__procfs_file_close(&t->f_sched, &s->fd_budget);
    wl__procfs_file_close(&t->f_children, &s->fd_budget);
}

/* Children of one thread (its /proc children file) into the worklist:
 * each new one is adopted and queued so its own children are read in the
 * same tick. Returns -1 when the list did not fit (the caller scans). */
static int adopt_children_of(sampler *s, int pid, int tid, size_t *nwork, double now)
{
    char path[96], buf[8192];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, tid);
    thread_track *t = pid == s->self_pid ? NULL : live_thread(s, pid, tid);
    procfs_file *f = t ? &t->f_children : pid == tid ? &s->self_children : NULL;
    long n = f ? wl__procfs_file_read(f, path, buf, sizeof(buf), &s->fd_budget)
               : wl__procfs_read(path, buf, sizeof(buf));
    if (n < 0)
        return 0; /* thread gone: its children, if any, are reparented */
    if ((size_t)n >= sizeof(buf) - 1)
        return -1;
    char *p = buf;
    while (*p) {
        char *end;
        long c = strtol(p, &end, 10);
        if (end == p)
            break;
        p = end;
        if (c <= 0 || c == s->self_pid || intmap_get(&s->pid_index, (int)c, NULL))
            continue;
        proc_stat st;
        snprintf(path, sizeof(path), "/proc/%ld/stat", c);
        if (wl__procfs_stat(path, &st) != 0 || !is_tracked_parent(s, st.ppid))
            continue;
        proc_track *np = adopt_proc(s, &st, now);
        if (!np)
            continue;
        np->cmdline = wl__procfs_cmdline(np->pid);
        if (grow((void **)&s->work, &s->cap_work, *nwork + 1, sizeof(*s->work)) == 0)
            s->work[(*nwork)++] = np->pid;
    }
    return 0;
}

/* Step 1 through children files: our own threads' children (the root, and
 * orphans reparented to us) and every tracked process's threads'. */
static int discover_children(sampler *s, double now)
{
    size_t nwork = 0;
    if (grow((void **)&s->work, &s->cap_work, s->nprocs + 1, sizeof(*s->work)) < 0)
        return -1;
    s->work[nwork++] = s->self_pid;
    for (size_t i = 0; i < s->nprocs; i++)
        if (s->procs[i].live)
            s->work[nwork++] = s->procs[i].pid;
    for (size_t i = 0; i < nwork; i++) {
        int pid = s->work[i], idx, fresh;
        proc_track *p = NULL;
        if (pid != s->self_pid && intmap_get(&s->pid_index, pid, &idx))
            p = &s->procs[idx];
        DIR *d = task_dir_of(s, p, &fresh);
        if (!d)
            continue;
        struct dirent *de;
        int rc = 0;
        while (rc == 0 && (de = readdir(d)) != NULL)
            if (de->d_name[0] >= '1' && de->d_name[0] <= '9')
                rc = adopt_children_of(s, pid, atoi(de->d_name), &nwork, now);
        if (fresh)
            closedir(d);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static void discover(sampler *s, double now)
{
    if (s->discovery == 0) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/task/%d/children", s->self_pid, s->self_pid);
        s->discovery = access(path, R_OK) == 0 ? 1 : -1;
    }
    if (s->discovery < 0 || discover_children(s, now) < 0)
        discover_scan(s, now);
}

static thread_track *find_or_add_thread(sampler *s, int pid, const proc_stat *st, double now)
{
    int idx;
    if (intmap_get(&s->tid_index, st->pid, &idx)) {
        thread_track *t = &s->threads[idx];
        if (t->starttime == st->starttime && t->pid == pid)
            return t;
        t->live = 0; /* tid reused by a new thread */
        thread_release(s, t);
    }
    if (grow((void **)&s->threads, &s->cap_threads, s->nthreads + 1, sizeof(*s->threads)) < 0)
        return NULL;
    if (intmap_put(&s->tid_index, st->pid, (int)s->nthreads) < 0)
        return NULL;
    thread_track *t = &s->threads[s->nthreads++];
    memset(t, 0, sizeof(*t));
    t->pid = pid;
    t->tid = st->pid;
    t->starttime = st->starttime;
    t->first_seen = now;
    t->live = 1;
    int pidx;
    if (intmap_get(&s->pid_index, pid, &pidx))
        s->procs[pidx].threads_seen++;
    return t;
}

/* Reads why a blocked thread waits; *futex_word is the address a thread in
 * futex waits on (0 otherwise). */
static void observe_blocked(int pid, int tid, char state, blocked_obs *o, uint64_t *futex_word)
{
    *futex_word = 0;
    char path[96];
    proc_syscall sc;
    char target[256] = "";
    snprintf(path, sizeof(path), "/proc/%d/task/%d/wchan", pid, tid);
    wl__procfs_wchan(path, o->wchan, sizeof(o->wchan));
    snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", pid, tid);
    o->syscall[0] = '\0';
    if (wl__procfs_syscall(path, &sc) == 0 && sc.valid) {
        const char *name = wl__waitkind_syscall_name(sc.nr);
        if (name)
            snprintf(o->syscall, sizeof(o->syscall), "%s", name);
        else
            snprintf(o->syscall, sizeof(o->syscall), "syscall_%ld", sc.nr);
        if (wl__waitkind_syscall_uses_fd(sc.nr) && sc.args[0] < 1u << 20)
            wl__procfs_fd_target(pid, (int)sc.args[0], target, sizeof(target));
        if (sc.nr == SYS_futex)
            *futex_word = sc.args[0];
    }
    o->kind = wl__waitkind_classify(state, o->wchan, o->syscall, target);
}

int wl_thread_observe(int pid, int tid, wl_thread_now *out)
{
    char path[96];
    proc_stat st;
    snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
    int rc = wl__procfs_stat(path, &st);
    if (rc < 0)
        return rc;
    memset(out, 0, sizeof(*out));
    out->state = st.state;
    if (st.state == 'R')
        return 0;
    blocked_obs o;
    uint64_t futex_word;
    observe_blocked(pid, tid, st.state, &o, &futex_word);
    out->kind = o.kind;
    memcpy(out->wchan, o.wchan, sizeof(out->wchan));
    memcpy(out->syscall, o.syscall, sizeof(out->syscall));
    return 0;
}

/* How a thread spent the tick's dt: on a CPU, runnable but waiting for
 * one (run queue), or blocked. schedstat gives the first two in
 * nanoseconds; the kernel updates them at scheduler events, so a delta can
 * lag or overshoot one interval -- the excess is carried into the next
 * tick instead of being clipped, which keeps every nanosecond. Without
 * schedstat the state letter decides the whole interval. */
static void thread_time_split(sampler *s, thread_track *t, int pid, int tid, char state, int first,
                              double dt, tick_obs *obs, double *on_out, double *queued_out)
{
    char path[96];
    proc_schedstat ss;
    double run, rq;
    snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", pid, tid);
    if (wl__procfs_schedstat_cached(&t->f_sched, path, &ss, &s->fd_budget) == 0) {
        uint64_t run0 = t->has_schedstat ? t->run_ns : 0;
        uint64_t wait0 = t->has_schedstat ? t->wait_ns : 0;
        if (ss.run_ns < run0 || ss.wait_ns < wait0) {
            /* Counters went back: another thread took over this tid (a
             * non-leader thread calling exec becomes the leader). Start
             * afresh rather than read a wrapped-around delta. */
            run0 = ss.run_ns;
            wait0 = ss.wait_ns;
            t->carry_run = t->carry_rq = 0;
        }
        run = (double)(ss.run_ns - run0) * 1e-9 + t->carry_run;
        rq = (double)(ss.wait_ns - wait0) * 1e-9 + t->carry_rq;
        t->run_ns = ss.run_ns;
        t->wait_ns = ss.wait_ns;
        t->has_schedstat = 1;
        t->slices_changed = ss.slices != t->slices;
        t->slices = ss.slices;
    } else {
        run = state == 'R' ? dt : 0;
        rq = 0;
    }
    double on = run < dt ? run : dt;
    double queued = rq < dt - on ? rq : dt - on;
    t->carry_run = run - on;
    /* Run-queue delay that does not fit this interval is mostly delay of
     * earlier ones: the kernel adds it to schedstat only when the thread
     * gets a CPU again, so a starved thread's intervals first read as
     * blocked. Give it back to them -- to this thread's waiting of the
     * intervals that ended with it runnable (only those can hide queueing:
     * one that ended asleep was waiting), and to the program's waiting of
     * those intervals (obs->late_rq, the largest such share: threads queue
     * at the same time) -- rather than carry it forward. */
    double late = rq - queued;
    double back = late < t->rq_pending ? late : t->rq_pending;
    if (back > t->waiting_s)
        back = t->waiting_s;
    if (back > 0) {
        t->waiting_s -= back;
        t->rq_pending -= back;
        t->runq_s += back;
    }
    double pback = late < t->prog_wait_s ? late : t->prog_wait_s;
    if (pback > 0) {
        t->prog_wait_s -= pback;
        if (pback > obs->late_rq)
            obs->late_rq = pback;
    }
    /* What is left cannot be placed; carried on it would fill the next
     * interval's room, most often a sleep's, so it is dropped. */
    t->carry_rq = 0;
    t->running_s += on;
    t->runq_s += queued;
    double rest = dt - on - queued;
    /* A thread born during the interval did not wait before it existed. */
    if (!first)
        t->waiting_s += rest;
    if (state == 'R' && rest > 0) { /* also when first: the program waited meanwhile */
        if (!first)
            t->rq_pending += rest;
        t->waited_tick = obs->tick;
    }
    /* the program's running/busy shares: tick_add_share, by the caller */
    *on_out = on;
    *queued_out = queued;
}

/* A thread's share of the tick in the program's running/busy estimate.
 * Threads are taken as independent (1 - prod(1 - on_i)), except threads
 * taking turns on CPython's GIL: their on-CPU stretches are disjoint, so
 * they add up (capped at the whole tick). */
static void tick_add_share(tick_obs *obs, const thread_track *t, double on, double queued,
                           double dt)
{
    if (t->gil) {
        obs->gil_on += on / dt;
        obs->gil_busy += (on + queued) / dt;
    } else {
        obs->prod_not_run *= 1.0 - on / dt;
        obs->prod_not_busy *= 1.0 - (on + queued) / dt;
    }
}

/* voluntary_ctxt_switches of /proc/PID/task/TID/status; -1 when unreadable. */
static long long read_nvcsw(int pid, int tid)
{
    char path[96], buf[2048];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, tid);
    if (wl__procfs_read(path, buf, sizeof(buf)) <= 0)
        return -1;
    const char *v = strstr(buf, "\nvoluntary_ctxt_switches:");
    return v ? strtoll(v + 26, NULL, 10) : -1;
}

/* Whether the thread waited voluntarily since the last tick, though it is
 * runnable now: only asked when the kernel scheduled it in again (schedstat's
 * count moved), which preemption on a busy machine also does -- so the
 * voluntary count decides, and run-queue time never ends a run. */
static int waited_since_last_tick(thread_track *t, int pid, int tid)
{
    if (!t->slices_changed)
        return 0;
    long long n = read_nvcsw(pid, tid);
    if (n < 0)
        return 0;
    int waited = t->has_nvcsw && (uint64_t)n != t->nvcsw;
    t->nvcsw = (uint64_t)n;
    t->has_nvcsw = 1;
    return waited;
}

/* Ends the thread's current run inside its event loop (it waited): a
 * burst between two returns to the loop. */
static void end_loop_run(thread_track *t)
{
    if (t->loop == LOOP_READINESS && t->loop_run_inside && t->loop_run_s > t->loop_burst_s)
        t->loop_burst_s = t->loop_run_s;
    t->loop_run_s = 0;
    t->loop_run_inside = t->loop == LOOP_READINESS;
}

/* CPU runs (on-CPU seconds between two voluntary waits: schedstat time,
 * never state R, so a busy machine's run queue does not lengthen them) and
 * event-loop stalls, for one observed thread. kind/syscall describe its
 * wait when blocked (blocked != 0). */
static void track_runs_and_loop(thread_track *t, int pid, int tid, double on, double queued,
                                double dt, int blocked, const blocked_obs *o, double now)
{
    if (!blocked && waited_since_last_tick(t, pid, tid)) {
        /* Any wait is a return to a loop; for the critical path only one
         * that kept the thread off a CPU for a tenth of the tick splits its
         * computing (a page fault or an instant poll does not). */
        end_loop_run(t);
        if (on + queued < 0.9 * dt)
            t->cpu_run_s = 0;
    }
    t->cpu_run_s += on;
    t->loop_run_s += on;
    if (t->cpu_run_s > t->longest_cpu_run_s)
        t->longest_cpu_run_s = t->cpu_run_s;
    if (!blocked)
        return;
    /* The voluntary count is not read here: once the thread runs again, a
     * count that moved while it was blocked ends a run that is empty. */
    end_loop_run(t);
    t->cpu_run_s = 0;
    if (wl_is_readiness_call(o->syscall)) {
        /* A return to the loop: what blocked since the last one was a
         * blocking call inside it. */
        if (t->loop != LOOP_NONE && t->pending_block_s > t->loop_block_s) {
            t->loop_block_s = t->pending_block_s;
            memcpy(t->loop_block_syscall, t->pending_block_syscall,
                   sizeof(t->loop_block_syscall));
        }
        if (t->loop != LOOP_READINESS) {
            t->loop = LOOP_READINESS;
            t->loop_first = now;
        }
        t->pending_block_s = 0;
        t->loop_run_inside = 1;
        return;
    }
    if (t->loop != LOOP_NONE && t->block_s > t->pending_block_s) {
        t->pending_block_s = t->block_s;
        snprintf(t->pending_block_syscall, sizeof(t->pending_block_syscall), "%s",
                 t->block_syscall);
        if (t->loop == LOOP_EPOLL_FD && t->pending_block_s > t->loop_block_s) {
            t->loop_block_s = t->pending_block_s; /* its loop never waited: no return to wait for */
            memcpy(t->loop_block_syscall, t->pending_block_syscall,
                   sizeof(t->loop_block_syscall));
        }
    }
}

/* Whether process pid holds an epoll or io_uring instance. */
static int holds_event_instance(int pid)
{
    char path[64], link[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", pid);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int found = 0;
    struct dirent *de;
    while (!found && (de = readdir(d)) != NULL) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        char fdpath[96];
        snprintf(fdpath, sizeof(fdpath), "%s/%.20s", path, de->d_name);
        ssize_t n = readlink(fdpath, link, sizeof(link) - 1);
        if (n <= 0)
            continue;
        link[n] = '\0';
        found = strcmp(link, "anon_inode:[eventpoll]") == 0 ||
                strcmp(link, "anon_inode:[io_uring]") == 0;
    }
    closedir(d);
    return found;
}

/* A process whose only thread blocks outside any readiness call while it
 * holds an epoll/io_uring instance: that thread is an event loop that never
 * got to wait (every callback ran straight into the blocking call). The
 * caller has seen t as p's only thread in this tick. */
static void check_silent_loop(sampler *s, proc_track *p, thread_track *t, const blocked_obs *o,
                              double now)
{
    if (t->loop != LOOP_NONE || t->block_s < LOOP_FD_CHECK_S || wl_is_readiness_call(o->syscall) ||
        o->kind == WL_WAIT_CHILD)
        return;
    if (p->event_checked_tick && s->tick - p->event_checked_tick < LOOP_FD_CHECK_TICKS &&
        !p->has_event_instance)
        return;
    if (!p->has_event_instance || s->tick - p->event_checked_tick >= LOOP_FD_CHECK_TICKS) {
        p->has_event_instance = holds_event_instance(p->pid);
        p->event_checked_tick = s->tick;
    }
    if (!p->has_event_instance)
        return;
    t->loop = LOOP_EPOLL_FD;
    t->loop_first = now - t->block_s;
    t->pending_block_s = t->block_s;
    snprintf(t->pending_block_syscall, sizeof(t->pending_block_syscall), "%s", t->block_syscall);
    t->loop_block_s = t->block_s;
    snprintf(t->loop_block_syscall, sizeof(t->loop_block_syscall), "%s", t->block_syscall);
}

/* Tells the caller's hook (attach: the stack sampler) what one thread did
 * this tick; o is NULL for a runnable thread. */
static void call_thread_hook(sampler *s, const thread_track *t, char state, const blocked_obs *o)
{
    if (!s->thread_hook)
        return;
    wl_thread_tick v = {
        .pid = t->pid,
        .tid = t->tid,
        .state = state,
        .comm = t->comm,
        .slices = t->slices,
        .utime = t->utime,
        .stime = t->stime,
        .running_s = t->running_s,
        .waiting_s = t->waiting_s,
        .kind = o ? o->kind : WL_WAIT_OTHER,
        .syscall = o ? o->syscall : "",
    };
    s->thread_hook(s->hook_ctx, &v);
}

/* Step 2 for one process: observe its threads. Returns 0, or -ENOENT when
 * the process is gone. */
/* Reads thread tid's stat into *ts: through its kept-open file when it is
 * tracked, else (or when that file is stale) by path. Returns 0, or -ESRCH
 * when it cannot be read (counted as a read error). */
static int read_thread_stat(sampler *s, int pid, int tid, proc_stat *ts)
{
    char path[96];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
    thread_track *known = live_thread(s, pid, tid);
    int rc = known ? wl__procfs_stat_cached(&known->f_stat, path, ts, &s->fd_budget) : -ESRCH;
    if (rc == 0 && ts->starttime != known->starttime)
        rc = -ESRCH; /* cannot happen through an open file; be safe */
    if (rc < 0 && known)
        thread_release(s, known); /* stale: read by path below */
    if (rc < 0 && wl__procfs_stat(path, ts) < 0) {
        s->read_errors++;
        return -ESRCH;
    }
    return 0;
}

/* A runnable thread's tick: its timeline state (tl_state), its computing
 * burst (CPU time only: waiting on a run queue is the machine's contention,
 * not the program computing); a run ends its blocked stretches. */
static void thread_running(sampler *s, thread_track *t, int tid, unsigned tl_state, double on,
                           double queued, double dt, tick_obs *obs, double now)
{
    wl__timeline_observe(&s->timeline, (size_t)(t - s->threads), t->pid, tid, tl_state, NULL, NULL);
    obs->nrunning++;
    t->samples_running++;
    t->burst_s += on;
    if (t->burst_s > t->longest_burst_s)
        t->longest_burst_s = t->burst_s;
    t->block_s = 0;
    t->wait_s_now = 0;
    track_runs_and_loop(t, t->pid, tid, on, queued, dt, 0, NULL, now);
    tick_add_share(obs, t, on, queued, dt);
    call_thread_hook(s, t, 'R', NULL);
}

/* A stretch in one call (cur, in call cur_call): it grows by dt while the
 * thread stays in the same call, starts again in another, and is over
 * (0) when `ends`; the longest one is kept in *longest / longest_call.
 * The call names are char[24]. */
static void stretch_add(double *cur, char *cur_call, double *longest, char *longest_call,
                        int ends, const char *call, double dt)
{
    if (ends) {
        *cur = 0;
    } else if (*cur > 0 && strcmp(cur_call, call) == 0) {
        *cur += dt;
    } else {
        *cur = dt;
        snprintf(cur_call, 24, "%s", call);
    }
    if (*cur > *longest) {
        *longest = *cur;
        memcpy(longest_call, cur_call, 24);
    }
}

/* A blocked thread's stretches in one call, and the longest of each: the
 * blocked stretch (an event loop idling in a readiness wait is not
 * "blocking") and the one-call wait (coordination -- locks, the GIL,
 * children -- left out: it stands behind someone else's work). */
static void track_stretches(thread_track *t, const blocked_obs *o, double dt)
{
    _Static_assert(sizeof(t->block_syscall) == 24 && sizeof(t->longest_block_syscall) == 24 &&
                       sizeof(t->wait_syscall) == 24 && sizeof(t->longest_wait_syscall) == 24,
                   "stretch_add's call names are char[24]");
    stretch_add(&t->block_s, t->block_syscall, &t->longest_block_s, t->longest_block_syscall,
                o->kind == WL_WAIT_POLL, o->syscall, dt);
    stretch_add(&t->wait_s_now, t->wait_syscall, &t->longest_wait_s, t->longest_wait_syscall,
                o->kind == WL_WAIT_LOCK || o->kind == WL_WAIT_GIL || o->kind == WL_WAIT_CHILD,
                o->syscall, dt);
}

/* A blocked thread's tick: why it waits (a futex inside CPython's GIL
 * state is the interpreter lock), kept in the tick's list of blocked
 * threads for the attribution, and its stretches. */
static void thread_blocked(sampler *s, proc_track *p, thread_track *t, int tid, char state,
                           double on, double queued, double dt, tick_obs *obs, double now,
                           blocked_obs *seen)
{
    t->burst_s = 0;
    blocked_obs local, *o = &local;
    if (grow((void **)&obs->blocked, &obs->cap_blocked, obs->nblocked + 1,
             sizeof(*obs->blocked)) == 0)
        o = &obs->blocked[obs->nblocked++];
    uint64_t futex_word;
    observe_blocked(p->pid, tid, state, o, &futex_word);
    if (o->kind == WL_WAIT_LOCK && futex_word &&
        wl__pygil_is_gil(&s->pygil, p->pid, p->starttime, p->comm, futex_word))
        o->kind = WL_WAIT_GIL;
    wl__timeline_observe(&s->timeline, (size_t)(t - s->threads), p->pid, tid,
                     WL_TL_WAIT + (unsigned)o->kind, o->syscall, o->wchan);
    if (o->kind == WL_WAIT_GIL)
        t->gil = 1;
    tick_add_share(obs, t, on, queued, dt);
    t->samples_waiting++;
    /* Weights only: wl__sampler_finish scales each thread's reasons to its
     * measured waiting seconds. */
    add_wait(&t->waits, &t->nwaits, &t->cap_waits, o, dt);
    track_stretches(t, o, dt);
    track_runs_and_loop(t, p->pid, tid, on, queued, dt, 1, o, now);
    call_thread_hook(s, t, state, o);
    if (seen)
        *seen = *o;
}

/* What observe_proc keeps of the last thread it observed: enough for the
 * silent-loop check once the pass shows it was the process's only one. */
typedef struct last_thread {
    size_t slot; /* in s->threads (which may move while the pass adds) */
    int blocked; /* o is its wait this tick */
    blocked_obs o;
} last_thread;

/* One live thread of p in this tick, its stat just read into *ts; *last
 * describes it afterwards. Returns 1 when it was observed, 0 when it could
 * not be tracked (*last untouched). */
static int observe_thread(sampler *s, proc_track *p, int tid, const proc_stat *ts, double now,
                          double dt, tick_obs *obs, last_thread *last)
{
    thread_track *t = find_or_add_thread(s, p->pid, ts, now);
    if (!t)
        return 0;
    last->slot = (size_t)(t - s->threads);
    last->blocked = ts->state != 'R';
    memcpy(t->comm, ts->comm, sizeof(t->comm));
    uint64_t du = ts->utime - t->utime, ds = ts->stime - t->stime; /* for the timeline */
    t->utime = ts->utime;
    t->stime = ts->stime;
    t->last_seen = now;
    t->last_tick = s->tick;
    int first = t->samples_running + t->samples_waiting == 0;
    double on0 = t->running_s, rq0 = t->runq_s;
    double on, queued;
    thread_time_split(s, t, p->pid, tid, ts->state, first, dt, obs, &on, &queued);
    s->thread_samples++;
    obs->nthreads++;
    if (ts->state == 'R') {
        unsigned tl_state = t->runq_s - rq0 > t->running_s - on0 ? WL_TL_RUNQUEUE
                            : ds > du                            ? WL_TL_SYSTEM
                                                                 : WL_TL_USER;
        thread_running(s, t, tid, tl_state, on, queued, dt, obs, now);
    } else {
        thread_blocked(s, p, t, tid, ts->state, on, queued, dt, obs, now, &last->o);
    }
    return 1;
}

static int observe_proc(sampler *s, proc_track *p, double now, double dt, tick_obs *obs)
{
    char path[96];
    proc_stat st;
    snprintf(path, sizeof(path), "/proc/%d/stat", p->pid);
    if (wl__procfs_stat_cached(&p->f_stat, path, &st, &s->fd_budget) < 0 || st.starttime != p->starttime)
        return -ENOENT;
    if ((st.state == 'Z' || st.state == 'X') && st.num_threads <= 1) {
        p->utime = st.utime;
        p->stime = st.stime;
        return 0; /* exited, waiting to be reaped: nothing runs */
    }
    /* A zombie leader with live threads (main called pthread_exit) still
     * runs: its threads are observed below, the leader itself skipped. */
    p->utime = st.utime;
    p->stime = st.stime;
    p->ppid = st.ppid;
    memcpy(p->comm, st.comm, sizeof(p->comm)); /* exec may rename it */
    p->end_s = now;

    /* A sample's own test server (samples/download_images.c names its
     * process so): the testbed, not the program under study. */
    if (strcmp(p->comm, WL_HELPER_PROCESS_COMM) == 0)
        return 0;
    int fresh;
    DIR *d = task_dir_of(s, p, &fresh);
    if (!d)
        return -ENOENT;
    /* Threads are looked at in one pass; how many the process has this tick
     * is only known at the end, so the silent-loop check (one thread only)
     * waits for it. The previous tick's count will not do: a loop that
     * starts its worker pool between two ticks (node, libuv) shows the new
     * workers blocked on their futex for a whole interval -- 50 ms and more
     * when a loaded machine starves the sampler -- in the tick right after
     * one that saw a single thread, and each would be taken for a loop that
     * never got to wait. */
    uint32_t nseen = 0;
    last_thread last = {0};
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        int tid = atoi(de->d_name);
        proc_stat ts;
        if (read_thread_stat(s, p->pid, tid, &ts) < 0)
            continue;
        if (ts.state == 'Z' || ts.state == 'X')
            continue;
        /* The stack agent's writer thread (agent/agent.c) works for us, not
         * for the target: its sleeps must not become the target's waits. */
        if (strcmp(ts.comm, "wlprof-agent") == 0)
            continue;
        nseen += (uint32_t)observe_thread(s, p, tid, &ts, now, dt, obs, &last);
    }
    if (nseen == 1 && last.blocked)
        check_silent_loop(s, p, &s->threads[last.slot], &last.o, now);
    if (fresh)
        closedir(d);
    return 0;
}

static void proc_gone(sampler *s, proc_track *p, double now)
{
    p->live = 0;
    p->end_s = now;
    wl__procfs_file_close(&p->f_stat, &s->fd_budget);
    task_dir_release(s, p);
    intmap_del(&s->pid_index, p->pid);
    for (size_t i = 0; i < s->nthreads; i++) {
        if (s->threads[i].pid == p->pid && s->threads[i].live) {
            thread_release(s, &s->threads[i]);
            s->threads[i].live = 0;
            intmap_del(&s->tid_index, s->threads[i].tid);
        }
    }
}

/* Step 3: the tick's wall time. The program computes while any thread is
 * on a CPU; treating threads as independent, that share is
 * 1 - prod(1 - on_i/dt), exact for one thread and between the busiest
 * thread's share and the sum for several. Threads seen waiting for
 * CPython's GIL are not independent -- they take turns -- so their shares
 * add up (min(1, sum)) before joining the product. Run-queue time (runnable, no CPU
 * free) is kept apart: it is the machine's contention, not the program's
 * computing or waiting. */
void wl__sampler_tick(sampler *s, double now, double dt)
{
    tick_obs obs = {
        .tick = s->tick + 1,
        .prod_not_run = 1.0,
        .prod_not_busy = 1.0,
        .blocked = s->scratch,
        .cap_blocked = s->cap_scratch,
    };

    s->tick++;
    wl__timeline_tick(&s->timeline, now);
    /* Pids are reused once the counter wraps: forget what was foreign now
     * and then, so a descendant that gets a once-foreign pid is found. */
    if (s->tick % FOREIGN_FORGET_TICKS == 0)
        intmap_clear(&s->foreign);
    if (!s->no_discovery)
        discover(s, now);
    for (size_t i = 0; i < s->nprocs; i++) {
        proc_track *p = &s->procs[i];
        if (!p->live)
            continue;
        if (observe_proc(s, p, now, dt, &obs) < 0)
            proc_gone(s, p, now);
    }
    /* Threads not seen this tick have exited. */
    uint32_t nalive = 0;
    for (size_t i = 0; i < s->nthreads; i++) {
        thread_track *t = &s->threads[i];
        if (!t->live)
            continue;
        if (t->last_tick != s->tick) {
            thread_release(s, t);
            t->live = 0;
            intmap_del(&s->tid_index, t->tid);
        } else {
            nalive++;
        }
    }
    if (nalive > s->max_threads)
        s->max_threads = nalive;
    s->scratch = obs.blocked;
    s->cap_scratch = obs.cap_blocked;
    if (obs.nthreads == 0)
        return; /* nothing alive to observe (between exit and reap) */

    double gil_on = obs.gil_on < 1.0 ? obs.gil_on : 1.0;
    double gil_busy = obs.gil_busy < 1.0 ? obs.gil_busy : 1.0;
    double on = 1.0 - obs.prod_not_run * (1.0 - gil_on);
    double busy = 1.0 - obs.prod_not_busy * (1.0 - gil_busy);
    s->running_s += on * dt;
    s->runq_s += (busy - on) * dt;
    s->waiting_s += (1.0 - busy) * dt;
    double back = obs.late_rq < s->waiting_s ? obs.late_rq : s->waiting_s;
    s->waiting_s -= back; /* see thread_time_split */
    s->runq_s += back;
    if (busy < 1.0) /* what each blocked thread may later give back */
        for (size_t i = 0; i < s->nthreads; i++)
            if (s->threads[i].live && s->threads[i].waited_tick == s->tick)
                s->threads[i].prog_wait_s += (1.0 - busy) * dt;

    if (obs.nrunning > 0) {
        s->ticks_running++;
        s->running_threads_sum += obs.nrunning;
        if (obs.nrunning > s->max_running)
            s->max_running = obs.nrunning;
        return;
    }
    if (obs.nblocked == 0)
        return;
    /* Nothing runnable at the sample instant: the blocked threads' reasons
     * get the tick, the most telling kind first (weights; wl__sampler_finish
     * scales them to the measured waiting seconds). */
    s->ticks_waiting++;
    int best = 99;
    for (size_t i = 0; i < obs.nblocked; i++)
        if (wait_priority(obs.blocked[i].kind) < best)
            best = wait_priority(obs.blocked[i].kind);
    size_t nbest = 0;
    for (size_t i = 0; i < obs.nblocked; i++)
        nbest += wait_priority(obs.blocked[i].kind) == best;
    for (size_t i = 0; i < obs.nblocked; i++)
        if (wait_priority(obs.blocked[i].kind) == best)
            add_wait(&s->waits, &s->nwaits, &s->cap_waits, &obs.blocked[i],
                     dt / (double)nbest);
}

static proc_track *find_proc_any(sampler *s, int pid)
{
    int idx;
    if (intmap_get(&s->pid_index, pid, &idx))
        return &s->procs[idx];
    /* Already gone from the index (seen exiting): the newest slot wins. */
    for (size_t i = s->nprocs; i-- > 0;)
        if (s->procs[i].pid == pid)
            return &s->procs[i];
    return NULL;
}

void wl__sampler_process_final_io(sampler *s, int pid)
{
    proc_track *p = find_proc_any(s, pid);
    if (p)
        wl__procfs_io(pid, &p->io);
}

void wl__sampler_process_exited(sampler *s, int pid, int status, const struct rusage *ru,
                            double now)
{
    proc_track *p = find_proc_any(s, pid);
    if (!p)
        return;
    if (WIFEXITED(status)) {
        p->exit_code = WEXITSTATUS(status);
        p->term_signal = 0;
    } else if (WIFSIGNALED(status)) {
        p->exit_code = -1;
        p->term_signal = WTERMSIG(status);
    }
    if (ru) {
        /* wait4's rusage is exact and includes threads we never saw. */
        p->utime = (uint64_t)((double)ru->ru_utime.tv_sec * s->clk_tck +
                              (double)ru->ru_utime.tv_usec * s->clk_tck / 1e6);
        p->stime = (uint64_t)((double)ru->ru_stime.tv_sec * s->clk_tck +
                              (double)ru->ru_stime.tv_usec * s->clk_tck / 1e6);
    }
    if (p->live)
        proc_gone(s, p, now);
}

/* Reasons were accumulated as tick weights; give them the measured waiting
 * seconds in proportion. Waiting that no tick caught in the act (short
 * waits between samples) goes to an "other" reason rather than vanish. */
static void scale_waits(wl_wait_stat **arr, size_t *n, size_t *cap, double total)
{
    double sum = 0;
    for (size_t i = 0; i < *n; i++)
        sum += (*arr)[i].seconds;
    if (sum > 0) {
        for (size_t i = 0; i < *n; i++)
            (*arr)[i].seconds *= total / sum;
    } else if (total > 1e-4) {
        if (wl__waits_add(arr, n, cap, WL_WAIT_OTHER, "", "", total) == 0)
            (*arr)[*n - 1].samples = 0;
    }
}

static int cmp_thread_cpu(const void *a, const void *b)
{
    const wl_thread_stat *x = a, *y = b;
    double cx = x->user_s + x->sys_s, cy = y->user_s + y->sys_s;
    if (cx != cy)
        return cx < cy ? 1 : -1;
    return (x->waiting_s < y->waiting_s) - (x->waiting_s > y->waiting_s);
}

int wl__sampler_finish(sampler *s, wl_profile *p)
{
    p->ticks = s->tick;
    p->ticks_running = s->ticks_running;
    p->ticks_waiting = s->ticks_waiting;
    p->running_s = s->running_s;
    p->runqueue_s = s->runq_s;
    p->waiting_s = s->waiting_s;
    p->sampled_s = s->running_s + s->runq_s + s->waiting_s;
    p->mean_running_threads =
        s->ticks_running ? s->running_threads_sum / (double)s->ticks_running : 0;
    p->max_running_threads = s->max_running;
    p->max_threads = s->max_threads;
    p->thread_samples = s->thread_samples;
    p->proc_read_errors += s->read_errors;
    p->timeline = s->timeline;
    memset(&s->timeline, 0, sizeof(s->timeline));

    scale_waits(&s->waits, &s->nwaits, &s->cap_waits, s->waiting_s);
    wl__waits_sort(s->waits, s->nwaits);
    p->waits = s->waits;
    p->nwaits = s->nwaits;
    s->waits = NULL;
    s->nwaits = s->cap_waits = 0;
    wl__waits_sum_kinds(p->waits, p->nwaits, p->wait_kind_s, p->wait_kind_samples);

    p->threads = calloc(s->nthreads ? s->nthreads : 1, sizeof(*p->threads));
    p->procs = calloc(s->nprocs ? s->nprocs : 1, sizeof(*p->procs));
    if (!p->threads || !p->procs)
        return -ENOMEM;
    for (size_t i = 0; i < s->nthreads; i++) {
        thread_track *t = &s->threads[i];
        wl_thread_stat *o = &p->threads[p->nthreads++];
        o->pid = t->pid;
        o->tid = t->tid;
        memcpy(o->comm, t->comm, sizeof(o->comm));
        o->first_seen_s = t->first_seen;
        o->last_seen_s = t->last_seen;
        o->user_s = ticks_to_s(s, t->utime - t->utime0);
        o->sys_s = ticks_to_s(s, t->stime - t->stime0);
        o->cpu_s = (double)(t->run_ns - t->run_ns0) * 1e-9;
        o->runq_s = t->runq_s;
        o->samples_running = t->samples_running;
        o->samples_waiting = t->samples_waiting;
        o->running_s = t->running_s;
        o->waiting_s = t->waiting_s;
        o->longest_burst_s = t->longest_burst_s;
        o->longest_block_s = t->longest_block_s;
        memcpy(o->longest_block_syscall, t->longest_block_syscall,
               sizeof(o->longest_block_syscall));
        o->longest_cpu_run_s = t->longest_cpu_run_s;
        o->loop_first_s = t->loop != LOOP_NONE ? t->loop_first : -1;
        snprintf(o->loop_evidence, sizeof(o->loop_evidence), "%s",
                 t->loop == LOOP_READINESS ? "readiness"
                 : t->loop == LOOP_EPOLL_FD ? "epoll_fd"
                                            : "");
        o->loop_block_s = t->loop_block_s;
        memcpy(o->loop_block_syscall, t->loop_block_syscall, sizeof(o->loop_block_syscall));
        o->loop_burst_s = t->loop_burst_s;
        o->longest_wait_s = t->longest_wait_s;
        memcpy(o->longest_wait_syscall, t->longest_wait_syscall, sizeof(o->longest_wait_syscall));
        scale_waits(&t->waits, &t->nwaits, &t->cap_waits, t->waiting_s);
        wl__waits_sort(t->waits, t->nwaits);
        o->waits = t->waits;
        o->nwaits = t->nwaits;
        t->waits = NULL;
        t->nwaits = 0;
    }
    if (p->nthreads > 1)
        qsort(p->threads, p->nthreads, sizeof(*p->threads), cmp_thread_cpu);
    for (size_t i = 0; i < s->nprocs; i++) {
        proc_track *t = &s->procs[i];
        wl_process_stat *o = &p->procs[p->nprocs++];
        o->pid = t->pid;
        o->ppid = t->ppid;
        memcpy(o->comm, t->comm, sizeof(o->comm));
        o->cmdline = t->cmdline;
        t->cmdline = NULL;
        o->start_s = t->start_s;
        o->end_s = t->end_s;
        o->exit_code = t->exit_code;
        o->term_signal = t->term_signal;
        o->user_s = ticks_to_s(s, t->utime - t->utime0);
        o->sys_s = ticks_to_s(s, t->stime - t->stime0);
        o->threads_seen = t->threads_seen;
        o->io = t->io;
    }
    return 0;
}

void wl__sampler_free(sampler *s)
{
    for (size_t i = 0; i < s->nthreads; i++) {
        thread_release(s, &s->threads[i]);
        free(s->threads[i].waits);
    }
    for (size_t i = 0; i < s->nprocs; i++) {
        wl__procfs_file_close(&s->procs[i].f_stat, &s->fd_budget);
        task_dir_release(s, &s->procs[i]);
        free(s->procs[i].cmdline);
    }
    if (s->self_task_dir)
        closedir(s->self_task_dir);
    wl__procfs_file_close(&s->self_children, NULL);
    free(s->work);
    free(s->threads);
    free(s->procs);
    free(s->waits);
    free(s->scratch);
    free(s->candidates);
    wl_timeline_free(&s->timeline);
    intmap_free(&s->pid_index);
    intmap_free(&s->tid_index);
    intmap_free(&s->foreign);
    wl__pygil_free(&s->pygil);
    memset(s, 0, sizeof(*s));
}

/* ---- attaching to running processes (profiler/attach.c) ---- */

int wl__sampler_add_root(sampler *s, int pid)
{
    char path[64];
    proc_stat st;
    if (intmap_get(&s->pid_index, pid, NULL))
        return 0;
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    int rc = wl__procfs_stat(path, &st);
    if (rc < 0)
        return rc;
    proc_track *p = adopt_proc(s, &st, 0);
    if (!p)
        return -ENOMEM;
    p->cmdline = wl__procfs_cmdline(pid);
    return 0;
}

/* Threads that ran before we looked have counters from their whole life:
 * take them as the baseline so only what happens from now on is counted
 * (a first tick would otherwise see years of CPU in one interval). */
int wl__sampler_prime(sampler *s, double now)
{
    if (!s->no_discovery)
        discover(s, now);
    for (size_t i = 0; i < s->nprocs; i++) {
        proc_track *p = &s->procs[i];
        char path[96];
        proc_stat st;
        snprintf(path, sizeof(path), "/proc/%d/stat", p->pid);
        if (!p->live || wl__procfs_stat(path, &st) < 0)
            continue;
        p->utime = p->utime0 = st.utime;
        p->stime = p->stime0 = st.stime;
        snprintf(path, sizeof(path), "/proc/%d/task", p->pid);
        DIR *d = opendir(path);
        if (!d)
            continue;
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (de->d_name[0] < '1' || de->d_name[0] > '9')
                continue;
            int tid = atoi(de->d_name);
            proc_stat ts;
            proc_schedstat ss;
            snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", p->pid, tid);
            if (wl__procfs_stat(path, &ts) < 0 || strcmp(ts.comm, "wlprof-agent") == 0)
                continue;
            thread_track *t = find_or_add_thread(s, p->pid, &ts, now);
            if (!t)
                continue;
            memcpy(t->comm, ts.comm, sizeof(t->comm));
            t->utime = t->utime0 = ts.utime;
            t->stime = t->stime0 = ts.stime;
            t->last_tick = s->tick;
            snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", p->pid, tid);
            if (wl__procfs_schedstat(path, &ss) == 0) {
                t->run_ns = t->run_ns0 = ss.run_ns;
                t->wait_ns = ss.wait_ns;
                t->slices = ss.slices;
                t->has_schedstat = 1;
            }
        }
        closedir(d);
    }
    return 0;
}

static void *dup_array(const void *a, size_t n, size_t elem)
{
    void *p = malloc(n ? n * elem : 1);
    if (p && n)
        memcpy(p, a, n * elem);
    return p;
}

int wl__sampler_snapshot(const sampler *s, wl_profile *p)
{
    sampler c = *s; /* shares the indexes, which wl__sampler_finish does not touch */
    int rc = -ENOMEM;
    /* a snapshot carries no timeline: wl__sampler_finish would hand over the
     * live one, which the session keeps growing and frees itself */
    memset(&c.timeline, 0, sizeof(c.timeline));
    c.waits = dup_array(s->waits, s->nwaits, sizeof(*s->waits));
    c.cap_waits = s->nwaits;
    c.threads = dup_array(s->threads, s->nthreads, sizeof(*s->threads));
    c.procs = dup_array(s->procs, s->nprocs, sizeof(*s->procs));
    size_t nt = 0, np = 0;
    if (!c.waits || !c.threads || !c.procs)
        goto out;
    for (; nt < s->nthreads; nt++) {
        thread_track *t = &c.threads[nt];
        t->waits = dup_array(s->threads[nt].waits, t->nwaits, sizeof(*t->waits));
        t->cap_waits = t->nwaits;
        if (!t->waits)
            goto out;
    }
    for (; np < s->nprocs; np++) {
        proc_track *t = &c.procs[np];
        t->cmdline = s->procs[np].cmdline ? strdup(s->procs[np].cmdline) : NULL;
    }
    rc = wl__sampler_finish(&c, p);
out:
    for (size_t i = 0; i < nt; i++)
        free(c.threads[i].waits); /* NULL once handed over */
    for (size_t i = 0; i < np; i++)
        free(c.procs[i].cmdline);
    free(c.threads);
    free(c.procs);
    free(c.waits);
    return rc;
}

size_t wl__sampler_nlive(const sampler *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nprocs; i++)
        n += s->procs[i].live != 0;
    return n;
}

int wl__sampler_signal_tree(sampler *s, int sig, int skip_pid, int skip_pgrp, double now)
{
    discover(s, now); /* children forked since the last tick, and orphans */
    int live = 0;
    for (size_t i = 0; i < s->nprocs; i++) {
        proc_track *p = &s->procs[i];
        if (!p->live)
            continue;
        char path[64];
        proc_stat st;
        snprintf(path, sizeof(path), "/proc/%d/stat", p->pid);
        /* gone, reused by another process, or a zombie its parent will reap */
        if (wl__procfs_stat(path, &st) < 0 || st.starttime != p->starttime || st.state == 'Z' ||
            st.state == 'X')
            continue;
        live++;
        if (p->signalled == sig || p->pid == skip_pid ||
            (skip_pgrp > 0 && getpgid(p->pid) == skip_pgrp))
            continue;
        p->signalled = sig; /* once each: a handler must not see it again and again */
        kill(p->pid, sig);
    }
    return live;
}
