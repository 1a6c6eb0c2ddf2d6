/*
 * attach.c -- sampling processes that are already running (see
 * wlprof/attach.h).
 *
 * The same sampler as wl_profile_command (sampler.c), told to follow only
 * the roots (or their descendants too), with the baseline taken by
 * wl__sampler_prime before the first tick: every counter a thread accumulated
 * before we looked is subtracted, so CPU and schedstat time are those of
 * the session. The loop sleeps in ppoll on a pidfd per root (any process's
 * exit makes its pidfd readable, child or not) and an optional wake fd (the
 * live view's keyboard).
 *
 * Nothing here acts on a target: no signal (except to a command the
 * session started itself), no ptrace, no wait on a process that is not our
 * child. /proc/PID/io is read every tick, because it is gone once a
 * process has exited and been reaped by its parent.
 */
#include "wlprof/attach.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "procfs.h"
#include "sampler.h"
#include "ticking.h"
#include "util/util.h"

#define HZ_DEFAULT 100.0
#define HZ_MAX 10000.0
#define MAX_ROOTS 64

extern char **environ;

struct root {
    int pid;
    int pidfd;            /* -1 once it exited (or when pidfd_open failed) */
    uint64_t starttime;   /* identity: pids are reused */
    wl_io_stat io0, io1;  /* first and latest /proc/PID/io */
    long hwm_kb;          /* latest VmHWM */
    bool exited;
};

struct wl_attach {
    sampler s;
    struct root roots[MAX_ROOTS];
    size_t nroots;
    pid_t child;          /* a command we started, else 0 */
    int child_status;
    bool child_reaped;
    double t0, last, next, interval, end;
    unsigned seed;
    double started_at;
    struct rusage self0;
    uint64_t late_ticks, missed_ticks;
    double max_lateness_s;
    char **argv;          /* for the report */
    int argc;
    wl_tick_done_fn on_tick; /* the caller's per-tick hook, with its context */
    void *hook_ctx;
};

/* A "Key:\tvalue" number from /proc/PID/status, or -1. */
static long status_field(int pid, const char *key)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    if (wl__procfs_read(path, buf, sizeof(buf)) < 0)
        return -1;
    size_t klen = strlen(key);
    for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, key, klen) == 0 && line[klen] == ':')
            return strtol(line + klen + 1, NULL, 10);
    return -1;
}

int wl_attach_check_pid(int *pid, char *why, size_t whylen)
{
    char path[64];
    proc_stat st;
    why[0] = '\0';
    if (*pid <= 0) {
        snprintf(why, whylen, "'%d' is not a process id", *pid);
        return -EINVAL;
    }
    snprintf(path, sizeof(path), "/proc/%d/stat", *pid);
    if (wl__procfs_stat(path, &st) < 0) {
        snprintf(why, whylen, "no process with pid %d", *pid);
        return -ESRCH;
    }
    long tgid = status_field(*pid, "Tgid");
    char notice[160] = "";
    if (tgid > 0 && tgid != *pid) {
        snprintf(notice, sizeof(notice), "%d is a thread of process %ld: profiling the process",
                 *pid, tgid);
        *pid = (int)tgid;
        snprintf(path, sizeof(path), "/proc/%d/stat", *pid);
        if (wl__procfs_stat(path, &st) < 0) {
            snprintf(why, whylen, "no process with pid %d", *pid);
            return -ESRCH;
        }
    }
    if (*pid == getpid()) {
        snprintf(why, whylen, "pid %d is this wlprof itself", *pid);
        return -EINVAL;
    }
    if (*pid == 1) {
        snprintf(why, whylen, "pid 1 (%s) is the init process: wlprof does not attach to it",
                 st.comm);
        return -EINVAL;
    }
    if (*pid == 2 || st.ppid == 2) {
        snprintf(why, whylen, "pid %d (%s) is a kernel thread: it has no user space to profile",
                 *pid, st.comm);
        return -EINVAL;
    }
    if (st.state == 'Z' || st.state == 'X') {
        snprintf(why, whylen,
                 "pid %d (%s) has already exited (a zombie waiting for its parent, pid %d)",
                 *pid, st.comm, st.ppid);
        return -ECHILD;
    }
    /* /proc/PID/io, syscall and wchan need ptrace-read access: without it
     * the sampler still sees CPU and scheduler states. */
    snprintf(path, sizeof(path), "/proc/%d/io", *pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && (errno == EACCES || errno == EPERM)) {
        long uid = status_field(*pid, "Uid");
        snprintf(why, whylen,
                 "%s%spid %d belongs to uid %ld and wlprof runs as uid %d without the right to "
                 "inspect it: CPU and scheduler states only, no wait reasons, I/O or stacks",
                 notice, notice[0] ? "; " : "", *pid, uid, (int)geteuid());
        return 0;
    }
    if (fd >= 0)
        close(fd);
    snprintf(why, whylen, "%s", notice);
    return 0;
}

static char **split_cmdline(int pid, int *argc)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
    long n = wl__procfs_read(path, buf, sizeof(buf));
    int count = 0;
    for (long i = 0; i < n; i++)
        count += buf[i] == '\0';
    if (n > 0 && buf[n - 1] != '\0') {
        buf[n] = '\0';
        count++;
    }
    char **argv = calloc((size_t)count + 2, sizeof(*argv));
    if (!argv)
        return NULL;
    int k = 0;
    for (long i = 0; i < n && k < count; i += (long)strlen(buf + i) + 1)
        argv[k++] = strdup(buf + i);
    if (k == 0) { /* no command line (it is exiting): its name */
        proc_stat st;
        snprintf(path, sizeof(path), "/proc/%d/stat", pid);
        argv[k++] = strdup(wl__procfs_stat(path, &st) == 0 ? st.comm : "?");
    }
    *argc = k;
    return argv;
}

static void free_argv(char **argv)
{
    for (int i = 0; argv && argv[i]; i++)
        free(argv[i]);
    free(argv);
}

static int session_new(wl_attach **out, const wl_attach_opts *opts, char *err, size_t errlen)
{
    double hz = opts && opts->hz != 0 ? opts->hz : HZ_DEFAULT;
    if (!(hz > 0) || hz > HZ_MAX || isnan(hz)) {
        snprintf(err, errlen, "sampling rate must be above 0 and at most %.0f Hz", HZ_MAX);
        return -EINVAL;
    }
    wl_attach *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    a->interval = 1.0 / hz;
    a->seed = opts && opts->seed ? opts->seed : (unsigned)time(NULL) ^ (unsigned)getpid();
    struct timeval real0;
    gettimeofday(&real0, NULL);
    a->started_at = wl__tv_s(real0);
    getrusage(RUSAGE_SELF, &a->self0);
    *out = a;
    return 0;
}

/* Adds root pid to the session and the sampler. */
static int add_root(wl_attach *a, int pid, char *err, size_t errlen)
{
    char path[64];
    proc_stat st;
    if (a->nroots == MAX_ROOTS) {
        snprintf(err, errlen, "at most %d processes at once", MAX_ROOTS);
        return -E2BIG;
    }
    for (size_t i = 0; i < a->nroots; i++)
        if (a->roots[i].pid == pid)
            return 0; /* named twice */
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    int rc = wl__procfs_stat(path, &st) < 0 ? -ESRCH : wl__sampler_add_root(&a->s, pid);
    if (rc < 0) {
        snprintf(err, errlen, rc == -ENOMEM ? "out of memory"
                                            : "pid %d exited before wlprof could attach", pid);
        return rc == -ENOMEM ? rc : -ESRCH;
    }
    struct root *r = &a->roots[a->nroots++];
    memset(r, 0, sizeof(*r));
    r->pid = pid;
    r->starttime = st.starttime;
    r->pidfd = open_pidfd(pid);
    if (wl__procfs_io(pid, &r->io0) == 0)
        r->io1 = r->io0;
    return 0;
}

static void session_start(wl_attach *a, const wl_attach_opts *opts)
{
    a->s.no_discovery = !(opts && opts->children);
    if (opts) {
        a->s.thread_hook = opts->on_thread;
        a->s.hook_ctx = opts->hook_ctx;
        a->on_tick = opts->on_tick;
        a->hook_ctx = opts->hook_ctx;
    }
    wl__sampler_prime(&a->s, 0);
    a->last = a->t0;
    a->next = a->t0 + a->interval * jitter(&a->seed);
}

static void session_free(wl_attach *a)
{
    for (size_t i = 0; i < a->nroots; i++)
        if (a->roots[i].pidfd >= 0)
            close(a->roots[i].pidfd);
    wl__sampler_free(&a->s);
    free_argv(a->argv);
    free(a);
}

int wl_attach_begin(wl_attach **out, const int *pids, size_t npids, const wl_attach_opts *opts,
                    char *err, size_t errlen)
{
    *out = NULL;
    err[0] = '\0';
    if (npids == 0) {
        snprintf(err, errlen, "no process given");
        return -EINVAL;
    }
    wl_attach *a;
    int rc = session_new(&a, opts, err, errlen);
    if (rc < 0)
        return rc;
    a->t0 = wl__mono_s();
    rc = wl__sampler_init(&a->s, pids[0], 0);
    if (rc < 0) {
        snprintf(err, errlen, "out of memory");
        free(a);
        return rc;
    }
    /* wl__sampler_init adopted pids[0] if it could; add_root checks it again. */
    for (size_t i = 0; i < npids && rc == 0; i++)
        rc = add_root(a, pids[i], err, errlen);
    if (rc < 0) {
        session_free(a);
        return rc;
    }
    a->argv = split_cmdline(pids[0], &a->argc);
    session_start(a, opts);
    *out = a;
    return 0;
}

int wl_attach_spawn(wl_attach **out, char *const argv[], bool quiet_stdio,
                    const wl_attach_opts *opts, char *err, size_t errlen)
{
    *out = NULL;
    err[0] = '\0';
    if (!argv || !argv[0] || !argv[0][0]) {
        snprintf(err, errlen, "no command given");
        return -EINVAL;
    }
    wl_attach *a;
    int rc = session_new(&a, opts, err, errlen);
    if (rc < 0)
        return rc;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (quiet_stdio)
        for (int fd = 0; fd < 3; fd++)
            posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", fd ? O_WRONLY : O_RDONLY, 0);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t empty, defaults;
    sigemptyset(&empty);
    sigfillset(&defaults);
    posix_spawnattr_setsigmask(&attr, &empty);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    a->t0 = wl__mono_s();
    pid_t pid;
    rc = -posix_spawnp(&pid, argv[0], &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc < 0) {
        snprintf(err, errlen, rc == -ENOENT ? "cannot run '%s': command not found"
                                            : "cannot run '%s': %s", argv[0], strerror(-rc));
        free(a);
        return rc;
    }
    a->child = pid;
    rc = wl__sampler_init(&a->s, pid, 0);
    if (rc == 0) {
        struct root *r = &a->roots[a->nroots++];
        memset(r, 0, sizeof(*r));
        r->pid = pid;
        r->pidfd = open_pidfd(pid);
    }
    int n = 0;
    while (argv[n])
        n++;
    a->argv = calloc((size_t)n + 1, sizeof(*a->argv));
    for (int i = 0; a->argv && i < n; i++)
        a->argv[i] = strdup(argv[i]);
    a->argc = a->argv ? n : 0;
    if (rc < 0 || !a->argv) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        a->child = 0;
        session_free(a);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    wl_attach_opts o = opts ? *opts : (wl_attach_opts){0};
    o.children = true;
    session_start(a, &o);
    *out = a;
    return 0;
}

/* Reaps the command we started once it exited (its io first). */
static void reap_child(wl_attach *a, double now)
{
    if (!a->child || a->child_reaped)
        return;
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    if (waitid(P_PID, (id_t)a->child, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
        return;
    /* A ptrace stop of it (the stack sampler's) is reported here too. */
    if (si.si_code != CLD_EXITED && si.si_code != CLD_KILLED && si.si_code != CLD_DUMPED)
        return;
    wl__procfs_io(a->child, &a->roots[0].io1);
    wl__sampler_process_final_io(&a->s, a->child);
    struct rusage ru;
    if (wait4(a->child, &a->child_status, 0, &ru) == a->child) {
        wl__sampler_process_exited(&a->s, a->child, a->child_status, &ru, now - a->t0);
        a->roots[0].hwm_kb = ru.ru_maxrss;
    }
    a->child_reaped = true;
    a->roots[0].exited = true;
}

/* Reads what disappears with a process: its io and peak memory. */
static void read_roots(wl_attach *a)
{
    for (size_t i = 0; i < a->nroots; i++) {
        struct root *r = &a->roots[i];
        if (r->exited || (a->child && a->child_reaped))
            continue;
        wl_io_stat io;
        if (wl__procfs_io(r->pid, &io) == 0)
            r->io1 = io;
        long hwm = status_field(r->pid, "VmHWM");
        if (hwm > r->hwm_kb)
            r->hwm_kb = hwm;
    }
}

/* The session ends with the named processes (descendants that outlive
 * them are not waited for, as wl_profile_command ends with its child). */
static bool all_gone(wl_attach *a)
{
    if (a->child)
        return a->child_reaped;
    for (size_t i = 0; i < a->nroots; i++)
        if (!a->roots[i].exited)
            return false;
    return true;
}

/* Marks roots whose pidfd says they exited (or, without a pidfd, whose
 * /proc entry is gone or a zombie). */
static void check_roots(wl_attach *a, const struct pollfd *pfd, size_t npfd)
{
    for (size_t i = 0; i < a->nroots; i++) {
        struct root *r = &a->roots[i];
        if (r->exited)
            continue;
        if (r->pidfd >= 0) {
            for (size_t k = 0; k < npfd; k++)
                if (pfd[k].fd == r->pidfd && pfd[k].revents)
                    r->exited = true;
        } else {
            char path[64];
            proc_stat st;
            snprintf(path, sizeof(path), "/proc/%d/stat", r->pid);
            if (wl__procfs_stat(path, &st) < 0 || st.starttime != r->starttime || st.state == 'Z')
                r->exited = true;
        }
        if (r->exited && a->child && r->pid == a->child)
            r->exited = false; /* the child is done when reaped */
    }
}

static void tick(wl_attach *a, double now)
{
    wl__sampler_tick(&a->s, now - a->t0, now - a->last);
    a->last = now;
    read_roots(a);
    if (a->on_tick)
        a->on_tick(a->hook_ctx, now - a->t0);
}

wl_attach_why wl_attach_run(wl_attach *a, double until, const volatile sig_atomic_t *stop,
                            int wake_fd)
{
    for (;;) {
        if (stop && *stop) {
            a->end = wl__mono_s();
            return WL_ATTACH_STOPPED;
        }
        double now = wl__mono_s();
        if (all_gone(a)) {
            a->end = a->end > 0 ? a->end : now;
            return WL_ATTACH_GONE;
        }
        double deadline = a->next;
        if (until >= 0 && a->t0 + until < deadline)
            deadline = a->t0 + until;
        struct pollfd pfd[MAX_ROOTS + 1];
        size_t npfd = 0;
        for (size_t i = 0; i < a->nroots; i++)
            if (!a->roots[i].exited && a->roots[i].pidfd >= 0)
                pfd[npfd++] = (struct pollfd){.fd = a->roots[i].pidfd, .events = POLLIN};
        if (wake_fd >= 0)
            pfd[npfd++] = (struct pollfd){.fd = wake_fd, .events = POLLIN};
        double left = deadline - now;
        if (left > 0) {
            struct timespec ts = {(time_t)left, (long)((left - floor(left)) * 1e9)};
            ppoll(pfd, npfd, &ts, NULL);
        } else {
            for (size_t k = 0; k < npfd; k++)
                pfd[k].revents = 0;
        }
        now = wl__mono_s();
        check_roots(a, pfd, npfd);
        reap_child(a, now);
        if (all_gone(a)) {
            /* The last stretch since the previous tick still counts. */
            if (now - a->last > a->interval * 0.05)
                tick(a, now);
            a->end = now;
            return WL_ATTACH_GONE;
        }
        if (now >= a->next) {
            double late = now - a->next;
            if (late > a->interval * 0.5)
                a->late_ticks++;
            if (late > a->max_lateness_s)
                a->max_lateness_s = late;
            tick(a, now);
            if (late > a->interval) {
                a->missed_ticks += (uint64_t)(late / a->interval);
                a->next = now;
            }
            a->next += a->interval * jitter(&a->seed);
        }
        if (wake_fd >= 0 && npfd > 0 && pfd[npfd - 1].revents) {
            a->end = now;
            return WL_ATTACH_WOKEN;
        }
        if (until >= 0 && now >= a->t0 + until) {
            a->end = now;
            return WL_ATTACH_DEADLINE;
        }
    }
}

double wl_attach_elapsed(const wl_attach *a)
{
    return wl__mono_s() - a->t0;
}

int wl_attach_pid(const wl_attach *a)
{
    return a->child ? a->child : a->roots[0].pid;
}

int wl_attach_signal_child(wl_attach *a, int sig)
{
    if (!a->child)
        return -EPERM;
    if (a->child_reaped)
        return -ESRCH;
    return kill(a->child, sig) == 0 ? 0 : -errno;
}

static int copy_argv(wl_profile *out, char *const *argv, int argc)
{
    out->argv = calloc((size_t)argc + 1, sizeof(*out->argv));
    if (!out->argv)
        return -ENOMEM;
    for (int i = 0; i < argc; i++) {
        out->argv[i] = strdup(argv[i] ? argv[i] : "");
        if (!out->argv[i])
            return -ENOMEM;
    }
    out->argc = argc;
    return 0;
}

/* The profile from the sampler (consumed when final) plus the session's
 * totals: CPU as the sum of the processes' /proc deltas, io as the roots'
 * /proc/PID/io deltas, the peak memory the kernel kept (VmHWM). */
static int fill_profile(wl_attach *a, wl_profile *out, bool final)
{
    memset(out, 0, sizeof(*out));
    int rc = final ? wl__sampler_finish(&a->s, out) : wl__sampler_snapshot(&a->s, out);
    if (rc == 0)
        rc = copy_argv(out, a->argv, a->argc);
    if (rc < 0) {
        wl_profile_free(out);
        return rc;
    }
    double end = final && a->end > 0 ? a->end : wl__mono_s();
    out->wall_s = end - a->t0;
    for (size_t i = 0; i < out->nprocs; i++) {
        out->user_s += out->procs[i].user_s;
        out->sys_s += out->procs[i].sys_s;
    }
    out->io.valid = false;
    for (size_t i = 0; i < a->nroots; i++) {
        const struct root *r = &a->roots[i];
        if (r->hwm_kb > out->maxrss_kb)
            out->maxrss_kb = r->hwm_kb;
        if (!r->io1.valid)
            continue;
        out->io.valid = true;
        out->io.rchar += r->io1.rchar - r->io0.rchar;
        out->io.wchar += r->io1.wchar - r->io0.wchar;
        out->io.syscr += r->io1.syscr - r->io0.syscr;
        out->io.syscw += r->io1.syscw - r->io0.syscw;
        out->io.read_bytes += r->io1.read_bytes - r->io0.read_bytes;
        out->io.write_bytes += r->io1.write_bytes - r->io0.write_bytes;
    }
    out->pid = wl_attach_pid(a);
    out->exit_code = -1;
    if (a->child_reaped) {
        int st = a->child_status;
        if (WIFEXITED(st)) {
            out->exit_code = WEXITSTATUS(st);
        } else if (WIFSIGNALED(st)) {
            out->term_signal = WTERMSIG(st);
            out->core_dumped = WCOREDUMP(st) != 0;
        }
    }
    out->attached = a->child == 0;
    out->hz = 1.0 / a->interval;
    out->started_at = a->started_at;
    struct rusage self1;
    getrusage(RUSAGE_SELF, &self1);
    out->self_user_s = wl__tv_s(self1.ru_utime) - wl__tv_s(a->self0.ru_utime);
    out->self_sys_s = wl__tv_s(self1.ru_stime) - wl__tv_s(a->self0.ru_stime);
    out->late_ticks = a->late_ticks;
    out->missed_ticks = a->missed_ticks;
    out->max_lateness_s = a->max_lateness_s;
    wl_profile_derive(out);
    return 0;
}

int wl_attach_snapshot(wl_attach *a, wl_profile *out)
{
    return fill_profile(a, out, false);
}

int wl_attach_end(wl_attach *a, wl_profile *out)
{
    if (a->end <= 0)
        a->end = wl__mono_s();
    if (a->child && !a->child_reaped) {
        /* The caller signalled it: wait for it like a shell would. */
        wl__procfs_io(a->child, &a->roots[0].io1);
        struct rusage ru;
        while (wait4(a->child, &a->child_status, 0, &ru) < 0 && errno == EINTR)
            ;
        wl__sampler_process_exited(&a->s, a->child, a->child_status, &ru, a->end - a->t0);
        a->child_reaped = true;
    }
    int rc = fill_profile(a, out, true);
    session_free(a);
    return rc;
}
