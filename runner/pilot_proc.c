/*
 * pilot_proc.c -- the task pilot, run where it cannot hurt: a sacrificial
 * worker process forked after the library was loaded, fed one job index at
 * a time over a pipe, measured from outside.
 *
 *   parent                                 worker (own process group,
 *     write job index ------------------>   PR_SET_PDEATHSIG)
 *     poll(reply, signals, deadline)         run the blocking form, or the
 *     <-------- rc, result size, message     async form on a loop of its own
 *
 * Measured from outside: a helper thread samples the worker's main thread
 * through /proc (pilot.c), and wait4's rusage of each worker gives its exact
 * user and system CPU and context switches. So a job that crashes, calls
 * _exit or hangs ends only itself: EOF on the reply pipe fails that job
 * with the worker's signal or status, a --timeout kills it (TERM, KILL
 * after the grace period), and the next job gets a new worker. A signal to
 * wlprof is forwarded to the worker and stops the run.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define MSG_MAX 255

typedef struct reply {
    int32_t rc;
    uint32_t msglen;
    uint64_t out_len;
} reply;

typedef struct pilot_worker {
    pid_t pid;
    int req;  /* job indexes to the worker */
    int rep;  /* replies from it */
} pilot_worker;

typedef struct pilot_totals {
    double user, sys;
    long nvcsw, nivcsw;
} pilot_totals;

static int write_full(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t k = write(fd, c, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

static ssize_t read_full(int fd, void *p, size_t n)
{
    char *c = p;
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, c + got, n - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return k < 0 ? -1 : (ssize_t)got;
        got += (size_t)k;
    }
    return (ssize_t)got;
}

/* ---- the worker ---------------------------------------------------------- */

typedef struct async_job {
    const wl_task_def *task;
    const wl_bytes *in;
    wl_bytes *out;
    int rc;
} async_job;

static int async_entry(void *arg, void **result)
{
    async_job *aj = arg;
    aj->rc = aj->task->async(aj->in, aj->out);
    return 0;
}

static void worker_main(const wl_task_def *task, const wl_inputs *in, int req, int rep)
    __attribute__((noreturn));
static void worker_main(const wl_task_def *task, const wl_inputs *in, int req, int rep)
{
    uv_loop_t uv;
    wl_loop loop;
    int have_loop = 0;
    uint32_t idx;
    while (read_full(req, &idx, sizeof(idx)) == (ssize_t)sizeof(idx)) {
        wl_bytes out = {0};
        int rc;
        if (idx >= in->n) {
            rc = -EINVAL;
        } else if (task->blocking) {
            rc = task->blocking(&in->items[idx], &out);
        } else {
            if (!have_loop) {
                if (uv_loop_init(&uv) < 0 || wl_loop_init(&loop, &uv, NULL) < 0)
                    _exit(125);
                have_loop = 1;
            }
            async_job aj = {.task = task, .in = &in->items[idx], .out = &out, .rc = 0};
            wl_run(&loop, "pilot", async_entry, &aj, NULL);
            rc = aj.rc;
        }
        reply r = {.rc = rc, .out_len = out.len, .msglen = 0};
        if (rc != 0)
            r.msglen = (uint32_t)(out.len < MSG_MAX ? out.len : MSG_MAX);
        if (write_full(rep, &r, sizeof(r)) < 0 ||
            (r.msglen && write_full(rep, out.data, r.msglen) < 0))
            _exit(124);
        wl_bytes_free(&out);
    }
    fflush(stdout);
    fflush(stderr);
    _exit(0);
}

static int worker_start(pilot_worker *w, const wl_task_def *task, const wl_inputs *in)
{
    int a[2], b[2];
    if (pipe2(a, O_CLOEXEC) < 0)
        return -errno;
    if (pipe2(b, O_CLOEXEC) < 0) {
        int e = errno;
        close(a[0]);
        close(a[1]);
        return -e;
    }
    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(a[0]);
        close(a[1]);
        close(b[0]);
        close(b[1]);
        return -e;
    }
    if (pid == 0) {
        run__child_setup();
        setpgid(0, 0); /* the terminal's Ctrl-C reaches wlprof, which forwards it */
        if (run__pdeathsig(parent) < 0)
            _exit(1);
        close(a[1]);
        close(b[0]);
        worker_main(task, in, a[0], b[1]);
    }
    setpgid(pid, pid);
    close(a[0]);
    close(b[1]);
    w->pid = pid;
    w->req = a[1];
    w->rep = b[0];
    return 0;
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

/* Closes the pipes and reaps the worker (which exits at EOF, or was
 * killed); adds its rusage. Returns its wait status. */
static int worker_reap(pilot_worker *w, pilot_totals *t, int kill_it)
{
    int st = 0;
    struct rusage ru;
    if (w->pid <= 0)
        return 0;
    close(w->req);
    close(w->rep);
    if (kill_it)
        kill(w->pid, SIGKILL);
    while (wait4(w->pid, &st, 0, &ru) < 0 && errno == EINTR)
        ;
    t->user += tv_s(ru.ru_utime);
    t->sys += tv_s(ru.ru_stime);
    t->nvcsw += ru.ru_nvcsw;
    t->nivcsw += ru.ru_nivcsw;
    w->pid = 0;
    return st;
}

/* ---- one job -------------------------------------------------------------- */

typedef struct job_outcome {
    wl_job_state state;
    int rc;
    size_t out_len;
    char msg[MSG_MAX + 64];
    int signal; /* a signal to wlprof stopped it */
} job_outcome;

static int poll_ms(double deadline)
{
    if (isinf(deadline))
        return -1;
    double left = deadline - run__now();
    return left <= 0 ? 0 : (int)ceil(left * 1000);
}

/* Runs input idx on worker w (started by the caller) and fills *oc. The
 * worker is reaped (w->pid = 0) when it died or was killed. */
static void run_one(pilot_worker *w, uint32_t idx, const wl_run_opts *o, pilot_totals *t,
                    job_outcome *oc)
{
    memset(oc, 0, sizeof(*oc));
    double grace = run__grace(o);
    double deadline = o->timeout_s > 0 ? run__now() + o->timeout_s : INFINITY;
    int killing = 0; /* 0 none, 1 TERM sent (timeout), 2 signal forwarded, then KILL */
    int sigfd = run__signals_fd();

    if (write_full(w->req, &idx, sizeof(idx)) < 0)
        goto died;
    for (;;) {
        struct pollfd pf[2] = {{.fd = w->rep, .events = POLLIN}, {.fd = sigfd, .events = POLLIN}};
        int n = poll(pf, sigfd >= 0 ? 2 : 1, poll_ms(deadline));
        if (n < 0 && errno != EINTR)
            break;
        if (n > 0 && (pf[0].revents & (POLLIN | POLLHUP | POLLERR)))
            break;
        if (sigfd >= 0 && run__sig_first && !oc->signal) {
            run__signals_drain();
            oc->signal = run__sig_first;
            kill(w->pid, oc->signal);
            deadline = run__now() + grace;
            killing = 2;
            continue;
        }
        if (n == 0 && run__now() >= deadline) {
            if (killing == 0) {
                oc->state = WL_JOB_TIMED_OUT;
                kill(w->pid, SIGTERM);
                deadline = run__now() + grace;
                killing = 1;
            } else {
                kill(w->pid, SIGKILL);
                deadline = INFINITY;
            }
        }
    }
    reply r;
    ssize_t k = read_full(w->rep, &r, sizeof(r));
    if (k == (ssize_t)sizeof(r) && r.msglen <= MSG_MAX) {
        char msg[MSG_MAX + 1] = "";
        if (r.msglen && read_full(w->rep, msg, r.msglen) != (ssize_t)r.msglen)
            goto died;
        msg[r.msglen] = '\0';
        for (char *p = msg; *p; p++)
            if (*p == '\n' || *p == '\r')
                *p = ' ';
        oc->rc = r.rc;
        oc->out_len = r.out_len;
        if (oc->signal) {
            oc->state = WL_JOB_CANCELLED;
        } else if (killing == 1) {
            oc->state = WL_JOB_TIMED_OUT;
        } else {
            oc->state = r.rc == 0 ? WL_JOB_OK : WL_JOB_FAILED;
        }
        if (r.rc != 0)
            snprintf(oc->msg, sizeof(oc->msg), "%s", msg[0] ? msg : wl_strerror(r.rc));
        if (oc->state == WL_JOB_TIMED_OUT)
            snprintf(oc->msg, sizeof(oc->msg), "timed out after %.3g s", o->timeout_s);
        return;
    }

died:;
    pid_t pid = w->pid;
    int st = worker_reap(w, t, 0);
    char how[96];
    run__status_text(WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st), how, sizeof(how));
    oc->rc = -ECHILD;
    if (oc->signal) {
        oc->state = WL_JOB_CANCELLED;
        snprintf(oc->msg, sizeof(oc->msg), "cancelled by %s",
                 run__signal_name(oc->signal) ? run__signal_name(oc->signal) : "a signal");
    } else if (killing == 1) {
        oc->state = WL_JOB_TIMED_OUT;
        oc->rc = -ETIMEDOUT;
        snprintf(oc->msg, sizeof(oc->msg), "timed out after %.3g s (worker %d %s)", o->timeout_s,
                 (int)pid, how[0] ? how : "exited");
    } else {
        oc->state = WL_JOB_FAILED;
        snprintf(oc->msg, sizeof(oc->msg), "worker %d %s", (int)pid,
                 how[0] ? how : "exited with status 0 before replying");
    }
}

/* ---- the pilot ------------------------------------------------------------ */

int run__pilot_tasks(const wl_task_def *task, const wl_inputs *in, size_t n, const wl_run_opts *o,
                     wl_run_result *r, double t0, int *stop, char *err, size_t errlen)
{
    pilot_worker w = {0};
    pilot_totals tot = {0};
    run_sampler s;
    size_t failures = 0;
    int rc = worker_start(&w, task, in);
    if (rc < 0) {
        snprintf(err, errlen, "cannot start the pilot's worker process: %s", strerror(-rc));
        return rc;
    }
    rc = run__sampler_start_proc(&s, w.pid);
    if (rc < 0) {
        worker_reap(&w, &tot, 1);
        snprintf(err, errlen, "cannot start the pilot sampler: %s", strerror(-rc));
        return rc;
    }
    size_t done = 0;
    for (size_t i = 0; i < n && !*stop; i++) {
        job_outcome oc;
        do {
            if (w.pid == 0) {
                rc = worker_start(&w, task, in);
                if (rc < 0) {
                    snprintf(oc.msg, sizeof(oc.msg), "cannot start a worker process: %s",
                             strerror(-rc));
                    oc.state = WL_JOB_FAILED;
                    oc.rc = rc;
                    oc.signal = 0;
                    oc.out_len = 0;
                    double now = run__now() - t0;
                    run__job_end(r, i, oc.state, oc.rc, oc.msg, now, now);
                    break;
                }
                run__sampler_follow(&s, w.pid);
            }
            double start = run__now();
            run_one(&w, (uint32_t)i, o, &tot, &oc);
            if (w.pid == 0)
                run__sampler_follow(&s, -1);
            else if (oc.state == WL_JOB_TIMED_OUT || oc.signal)
                worker_reap(&w, &tot, 1), run__sampler_follow(&s, -1);
            run__job_end(r, i, oc.state, oc.rc, oc.state == WL_JOB_OK ? NULL : oc.msg,
                         start - t0, run__now() - t0);
            r->jobs[i].out_bytes = oc.out_len;
        } while (!oc.signal && run__should_retry(o, oc.state, r->jobs[i].nattempts));
        r->jobs[i].pilot = true;
        done = i + 1;
        if (oc.signal) {
            r->signal = oc.signal;
            *stop = 1;
        } else if (oc.state != WL_JOB_OK && ++failures >= (size_t)run__halt_after(o) &&
                   run__halt_mode(o) != WL_HALT_NEVER) {
            r->halted = true;
            *stop = 1;
        }
    }
    if (w.pid > 0)
        worker_reap(&w, &tot, 0);
    run__sampler_stop_proc(&s);
    r->pilot_jobs = done;
    r->pilot_wall_s = s.t1 - s.t0;

    /* The worker's exact CPU figures, from wait4. */
    s.user1 = tot.user;
    s.sys1 = tot.sys;
    s.cpu1 = tot.user + tot.sys;
    s.nvcsw1 = tot.nvcsw;
    s.nivcsw1 = tot.nivcsw;
    char label[128];
    snprintf(label, sizeof(label), "pilot of task %s", task->name);
    rc = run__sampler_profile(&s, label, &r->profile);
    if (rc < 0) {
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    r->have_profile = true;
    r->have_verdict = wl_classify(&r->profile, NULL, &r->verdict) == 0;
    return 0;
}
