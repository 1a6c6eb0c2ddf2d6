/*
 * profile.c -- runs a command and samples its process tree until it exits.
 *
 * The loop: spawn the target (posix_spawnp, so "not found" and "not
 * executable" come back as errors instead of a child exiting 127), become a
 * child subreaper so orphaned descendants are reparented to us and reaped
 * here, then alternate between sleeping until the next tick and sampling.
 * Sleeping is a ppoll on a pidfd of the target, so its exit ends the wall
 * clock at once rather than at the next tick.
 *
 * Intervals are drawn uniformly from [0.5, 1.5] x the mean (a fixed rate
 * aliases with periodic work, py-spy's lesson); each tick stands for the
 * measured time since the previous one, so late ticks never skew seconds.
 *
 * When the target exits it is first observed as a zombie (waitid WNOWAIT)
 * so its /proc/PID/io -- which by then includes every descendant it reaped
 * -- can still be read, then reaped with wait4. Exact CPU totals for the
 * whole tree come from the growth of getrusage(RUSAGE_CHILDREN).
 *
 * Signals: SIGINT/SIGTERM/SIGHUP/SIGQUIT sent to us by another process are
 * forwarded to the target at once (from the handler). Those from the
 * terminal are not: the tty already delivered them to the whole foreground
 * process group, target included. Then the loop sends the first signal to
 * every live process of the tree it knows -- children that left the
 * process group or the session, and orphans reparented to us (we are their
 * subreaper) -- skipping our own process group for a terminal's signal.
 * Whatever is still alive grace_s later is SIGKILLed, and the call returns
 * only once the whole tree is gone, so nothing outlives an interrupted
 * profile; the report is still written, and the caller exits 128+N.
 *
 * If the profiler itself is SIGKILLed nothing can be forwarded: the target
 * and its tree keep running, reparented to init (or the nearest subreaper),
 * exactly as if wlprof had never been there (like time(1)).
 */
#include "wlprof/profiler.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "procfs.h"
#include "util/util.h"
#include "sampler.h"
#include "ticking.h"

#define WL_HZ_DEFAULT 100.0
#define WL_HZ_MAX 10000.0

extern char **environ;

static const int forwarded_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
#define NFORWARDED (sizeof(forwarded_signals) / sizeof(forwarded_signals[0]))

#define WL_GRACE_DEFAULT_S 5.0

/* The process-wide state: where a forwarded signal goes, and the first
 * signal received (with whether the terminal sent it). */
static volatile sig_atomic_t forward_pid;
static volatile sig_atomic_t first_signal;
static volatile sig_atomic_t first_signal_from_tty;

static void forward_signal(int sig, siginfo_t *info, void *uctx)
{
    (void)uctx;
    int saved = errno;
    int by_process = info && info->si_code <= 0; /* SI_USER, SI_QUEUE, ...: sent by a process */
    if (!first_signal) {
        first_signal_from_tty = !by_process;
        first_signal = sig;
    }
    if (forward_pid > 0 && by_process)
        kill((pid_t)forward_pid, sig);
    errno = saved;
}

/* Sleeps until `deadline` (monotonic seconds) or until pidfd is readable
 * (the target exited). */
static void wait_until(int pidfd, double deadline)
{
    double left = deadline - wl__mono_s();
    if (left <= 0)
        return;
    struct timespec ts;
    ts.tv_sec = (time_t)left;
    ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
    if (pidfd >= 0) {
        struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
        ppoll(&pfd, 1, &ts, NULL);
    } else {
        nanosleep(&ts, NULL);
    }
}

/* Reaps every exited descendant except the target, which is left as a
 * zombie for the caller. Returns 1 when the target has exited. */
static int reap_children(sampler *s, pid_t target, double now, long *maxrss_kb)
{
    for (;;) {
        siginfo_t si;
        memset(&si, 0, sizeof(si));
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
            return 0;
        if (si.si_pid == target)
            return 1;
        int status;
        struct rusage ru;
        wl__sampler_process_final_io(s, si.si_pid);
        if (wait4(si.si_pid, &status, 0, &ru) == si.si_pid) {
            wl__sampler_process_exited(s, si.si_pid, status, &ru, now);
            if (ru.ru_maxrss > *maxrss_kb)
                *maxrss_kb = ru.ru_maxrss;
        }
    }
}

/* Shutting the tree down after a signal to the profiler. */
typedef struct stop_state {
    int signal;      /* the signal being forwarded, 0 before any */
    int from_tty;
    int killed;      /* SIGKILL sent to what was left */
    double grace_s;
    double kill_at;  /* monotonic seconds */
} stop_state;

/* On the first signal: to the whole tree (the target had it already);
 * after the grace period: SIGKILL to all. */
static void stop_tree(stop_state *st, sampler *s, pid_t target, double now, double t0)
{
    if (!first_signal || st->killed)
        return;
    if (!st->signal) {
        st->signal = first_signal;
        st->from_tty = first_signal_from_tty;
        st->kill_at = now + st->grace_s;
        wl__sampler_signal_tree(s, st->signal, target, st->from_tty ? getpgrp() : 0, now - t0);
    }
    if (now >= st->kill_at) {
        kill(target, SIGKILL);
        wl__sampler_signal_tree(s, SIGKILL, -1, 0, now - t0);
        st->killed = 1;
    }
}

/* After the target was reaped: waits until no process of the tree is
 * left, SIGKILLing the rest when the grace period ends, reaping the
 * orphans that come back to us. */
static void drain_tree(stop_state *st, sampler *s, double t0, wl_profile *out)
{
    for (;;) {
        double now = wl__mono_s();
        if (!st->signal) { /* the signal came as the target exited */
            st->signal = first_signal;
            st->from_tty = first_signal_from_tty;
            st->kill_at = now + st->grace_s;
            wl__sampler_signal_tree(s, st->signal, -1, st->from_tty ? getpgrp() : 0, now - t0);
        }
        int sig = now >= st->kill_at ? SIGKILL : 0; /* 0: only count, new ones get st->signal */
        int live = wl__sampler_signal_tree(s, sig ? sig : st->signal, -1,
                                       sig ? 0 : st->from_tty ? getpgrp() : 0, now - t0);
        reap_children(s, -1, now - t0, &out->maxrss_kb);
        if (live == 0)
            break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    out->signal_received = st->signal;
}

static char **copy_argv(char *const argv[], int *argc)
{
    int n = 0;
    while (argv[n])
        n++;
    char **copy = calloc((size_t)n + 1, sizeof(*copy));
    if (!copy)
        return NULL;
    for (int i = 0; i < n; i++) {
        copy[i] = strdup(argv[i]);
        if (!copy[i]) {
            while (i-- > 0)
                free(copy[i]);
            free(copy);
            return NULL;
        }
    }
    *argc = n;
    return copy;
}

static int spawn_target(char *const argv[], pid_t *pid)
{
    posix_spawnattr_t attr;
    sigset_t defaults, empty;
    int rc = posix_spawnattr_init(&attr);
    if (rc)
        return -rc;
    sigemptyset(&empty);
    sigemptyset(&defaults);
    for (size_t i = 0; i < NFORWARDED; i++)
        sigaddset(&defaults, forwarded_signals[i]);
    sigaddset(&defaults, SIGPIPE);
    posix_spawnattr_setsigmask(&attr, &empty);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    rc = posix_spawnp(pid, argv[0], NULL, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
    return -rc;
}

/* What a run changes in the whole process, and puts back afterwards: the
 * child-subreaper flag, the handlers of the forwarded signals and an
 * ignored SIGCHLD. */
typedef struct saved_signals {
    int was_subreaper;
    struct sigaction forwarded[NFORWARDED];
    struct sigaction chld;
} saved_signals;

/* Becomes a child subreaper, forwards the signals (forward_signal) and
 * takes SIGCHLD's default for the run; the old state goes into *sv. */
static void signals_take(saved_signals *sv)
{
    sv->was_subreaper = 0;
    prctl(PR_GET_CHILD_SUBREAPER, &sv->was_subreaper);
    prctl(PR_SET_CHILD_SUBREAPER, 1);

    first_signal = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = forward_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < NFORWARDED; i++)
        sigaction(forwarded_signals[i], &sa, &sv->forwarded[i]);
    /* With SIGCHLD ignored the kernel reaps children itself and their exit
     * status and rusage are lost: take the default for the run. */
    struct sigaction chld_default;
    memset(&chld_default, 0, sizeof(chld_default));
    chld_default.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, NULL, &sv->chld);
    if (sv->chld.sa_handler == SIG_IGN)
        sigaction(SIGCHLD, &chld_default, NULL);
}

/* Undoes signals_take. */
static void signals_restore(const saved_signals *sv)
{
    forward_pid = 0;
    first_signal = 0;
    for (size_t i = 0; i < NFORWARDED; i++)
        sigaction(forwarded_signals[i], &sv->forwarded[i], NULL);
    if (sv->chld.sa_handler == SIG_IGN)
        sigaction(SIGCHLD, &sv->chld, NULL);
    prctl(PR_SET_CHILD_SUBREAPER, sv->was_subreaper);
}

/* One profiled run, from the spawn to the final reap. */
typedef struct profile_run {
    sampler s;
    pid_t pid;        /* the target, the direct child */
    int pidfd;        /* readable once it exited; -1 when unavailable */
    double t0;        /* monotonic seconds at the spawn */
    double interval;  /* mean seconds between ticks */
    unsigned seed;    /* interval jitter state */
    stop_state stop;  /* shutting the tree down after a signal */
} profile_run;

/* Copies argv into out, spawns the target and starts its sampler. Returns
 * 0, or a negative errno with nothing left running (out owns what it got). */
static int target_start(profile_run *pr, char *const argv[], wl_profile *out)
{
    out->argv = copy_argv(argv, &out->argc);
    if (!out->argv)
        return -ENOMEM;
    struct timeval real0;
    gettimeofday(&real0, NULL);
    pr->t0 = wl__mono_s();
    int rc = spawn_target(argv, &pr->pid);
    if (rc < 0)
        return rc;
    forward_pid = pr->pid;
    out->pid = pr->pid;
    out->started_at = wl__tv_s(real0);
    out->mono_start_s = pr->t0;
    rc = wl__sampler_init(&pr->s, pr->pid, pr->t0);
    if (rc < 0) {
        kill(pr->pid, SIGKILL);
        waitpid(pr->pid, NULL, 0);
        return rc;
    }
    pr->pidfd = open_pidfd(pr->pid);
    return 0;
}

/* Samples the tree at jittered intervals until the target exits (leaving
 * it a zombie), counting late and missed ticks in out; after a signal,
 * shuts the tree down (stop_tree). Returns the monotonic time of the exit. */
static double tick_loop(profile_run *pr, wl_profile *out)
{
    double interval = pr->interval;
    double last = pr->t0;
    double next = pr->t0 + interval * jitter(&pr->seed);
    for (;;) {
        const stop_state *st = &pr->stop;
        wait_until(pr->pidfd, st->signal && !st->killed && st->kill_at < next ? st->kill_at : next);
        double now = wl__mono_s();
        stop_tree(&pr->stop, &pr->s, pr->pid, now, pr->t0);
        if (reap_children(&pr->s, pr->pid, now - pr->t0, &out->maxrss_kb)) {
            /* The last stretch since the previous tick still counts. */
            if (now - last > interval * 0.05)
                wl__sampler_tick(&pr->s, now - pr->t0, now - last);
            return now;
        }
        if (now < next)
            continue; /* woken early by a spurious ppoll return */
        double late = now - next;
        if (late > interval * 0.5)
            out->late_ticks++;
        if (late > out->max_lateness_s)
            out->max_lateness_s = late;
        wl__sampler_tick(&pr->s, now - pr->t0, now - last);
        last = now;
        if (late > interval) {
            out->missed_ticks += (uint64_t)(late / interval);
            next = now;
        }
        next += interval * jitter(&pr->seed);
    }
}

/* The target exited at t_exit: reads its io while it is a zombie, reaps it
 * and the orphans that already exited, after a signal waits until the
 * whole tree is gone (drain_tree), and fills the wall time, peak RSS and
 * exit status. */
static void target_reap(profile_run *pr, double t_exit, wl_profile *out)
{
    forward_pid = 0;
    if (pr->pidfd >= 0)
        close(pr->pidfd);
    pr->pidfd = -1;

    wl__procfs_io(pr->pid, &out->io);
    wl__sampler_process_final_io(&pr->s, pr->pid);
    int status = 0;
    struct rusage ru;
    pid_t reaped;
    while ((reaped = wait4(pr->pid, &status, 0, &ru)) < 0 && errno == EINTR)
        ;
    out->wall_s = t_exit - pr->t0;
    if (reaped == pr->pid) {
        wl__sampler_process_exited(&pr->s, pr->pid, status, &ru, out->wall_s);
        /* wait4's peak covers the target and every descendant it reaped;
         * orphans reaped here are added in reap_children. RUSAGE_CHILDREN
         * would also remember children of earlier runs in this process. */
        if (ru.ru_maxrss > out->maxrss_kb)
            out->maxrss_kb = ru.ru_maxrss;
    } else {
        status = W_EXITCODE(255, 0); /* cannot happen unless someone else reaped it */
    }
    reap_children(&pr->s, -1, out->wall_s, &out->maxrss_kb); /* orphans that already exited */
    if (first_signal)
        drain_tree(&pr->stop, &pr->s, pr->t0, out);

    if (WIFEXITED(status)) {
        out->exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        out->exit_code = -1;
        out->term_signal = WTERMSIG(status);
        out->core_dumped = WCOREDUMP(status) != 0;
    }
}

/* The whole tree's exact totals (the growth of RUSAGE_CHILDREN since
 * kids0) and the profiler's own cost (of RUSAGE_SELF since self0). */
static void add_rusage_totals(wl_profile *out, const struct rusage *self0,
                              const struct rusage *kids0)
{
    struct rusage self1, kids1;
    getrusage(RUSAGE_CHILDREN, &kids1);
    getrusage(RUSAGE_SELF, &self1);
    out->user_s = wl__tv_s(kids1.ru_utime) - wl__tv_s(kids0->ru_utime);
    out->sys_s = wl__tv_s(kids1.ru_stime) - wl__tv_s(kids0->ru_stime);
    out->minflt = kids1.ru_minflt - kids0->ru_minflt;
    out->majflt = kids1.ru_majflt - kids0->ru_majflt;
    out->nvcsw = kids1.ru_nvcsw - kids0->ru_nvcsw;
    out->nivcsw = kids1.ru_nivcsw - kids0->ru_nivcsw;
    out->inblock = kids1.ru_inblock - kids0->ru_inblock;
    out->oublock = kids1.ru_oublock - kids0->ru_oublock;
    out->self_user_s = wl__tv_s(self1.ru_utime) - wl__tv_s(self0->ru_utime);
    out->self_sys_s = wl__tv_s(self1.ru_stime) - wl__tv_s(self0->ru_stime);
}

int wl_profile_command(char *const argv[], const wl_profile_opts *opts, wl_profile *out)
{
    memset(out, 0, sizeof(*out));
    if (!argv || !argv[0] || !argv[0][0])
        return -EINVAL;
    double hz = opts && opts->hz != 0 ? opts->hz : WL_HZ_DEFAULT;
    if (!(hz > 0) || hz > WL_HZ_MAX || isnan(hz))
        return -EINVAL;
    double grace = opts && opts->grace_s != 0 ? opts->grace_s : WL_GRACE_DEFAULT_S;
    profile_run pr = {
        .pidfd = -1,
        .interval = 1.0 / hz,
        .seed = opts && opts->seed ? opts->seed : (unsigned)time(NULL) ^ (unsigned)getpid(),
        .stop = {.grace_s = grace < 0 ? 0 : grace},
    };
    out->hz = hz;

    struct rusage self0, kids0;
    getrusage(RUSAGE_SELF, &self0);
    getrusage(RUSAGE_CHILDREN, &kids0);
    saved_signals saved;
    signals_take(&saved);

    int rc = target_start(&pr, argv, out);
    if (rc == 0) {
        double t_exit = tick_loop(&pr, out);
        target_reap(&pr, t_exit, out);
        add_rusage_totals(out, &self0, &kids0);
        rc = wl__sampler_finish(&pr.s, out);
        wl__sampler_free(&pr.s);
        if (rc == 0)
            wl_profile_derive(out);
    }

    signals_restore(&saved);
    if (rc < 0)
        wl_profile_free(out);
    return rc;
}
