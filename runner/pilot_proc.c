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
 * wlprof is forwarded to the workers and stops the run.
 *
 * The first job runs alone. Its measurement then says how to run the rest
 * of the pilot: mostly waiting -> all at once (up to RUN_PILOT_SLOTS
 * workers), so an I/O-bound pilot costs about two jobs' time, not N;
 * computing -> one worker per core, so they do not slow each other down.
 * The profile covers the job-seconds, so it reads as one job's behaviour.
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
#include <time.h>
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
        if (wl__run_write_full(rep, &r, sizeof(r)) < 0 ||
            (r.msglen && wl__run_write_full(rep, out.data, r.msglen) < 0))
            _exit(124);
        wl_bytes_free(&out);
    }
    fflush(stdout);
    fflush(stderr);
    _exit(0);
}

/* Every pilot pipe end the parent holds: a worker forked later must not
 * keep another worker's request pipe open (that worker would never see
 * EOF), so each child closes them all but its own. */
static int open_fds[2 * RUN_PILOT_SLOTS];
static int nopen_fds;

static void fd_track(int fd)
{
    if (nopen_fds < (int)(sizeof(open_fds) / sizeof(open_fds[0])))
        open_fds[nopen_fds++] = fd;
}

static void fd_untrack(int fd)
{
    for (int i = 0; i < nopen_fds; i++)
        if (open_fds[i] == fd) {
            open_fds[i] = open_fds[--nopen_fds];
            return;
        }
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
        wl__run_child_setup();
        setpgid(0, 0); /* the terminal's Ctrl-C reaches wlprof, which forwards it */
        if (wl__run_pdeathsig(parent) < 0)
            _exit(1);
        close(a[1]);
        close(b[0]);
        for (int i = 0; i < nopen_fds; i++)
            close(open_fds[i]);
        worker_main(task, in, a[0], b[1]);
    }
    setpgid(pid, pid);
    close(a[0]);
    close(b[1]);
    w->pid = pid;
    w->req = a[1];
    w->rep = b[0];
    fd_track(w->req);
    fd_track(w->rep);
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
    fd_untrack(w->req);
    fd_untrack(w->rep);
    close(w->req);
    close(w->rep);
    if (kill_it)
        kill(w->pid, SIGKILL);
    /* It exits at EOF; one that does not within 5 s is killed. */
    double end = wl__run_now() + 5;
    pid_t got;
    while ((got = wait4(w->pid, &st, kill_it ? 0 : WNOHANG, &ru)) == 0 ||
           (got < 0 && errno == EINTR)) {
        if (got == 0 && wl__run_now() > end) {
            kill(w->pid, SIGKILL);
            kill_it = 1;
        } else if (got == 0) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
    if (got < 0)
        memset(&ru, 0, sizeof(ru));
    t->user += tv_s(ru.ru_utime);
    t->sys += tv_s(ru.ru_stime);
    t->nvcsw += ru.ru_nvcsw;
    t->nivcsw += ru.ru_nivcsw;
    w->pid = 0;
    return st;
}

/* ---- the pilot's jobs over a few worker slots ------------------------------- */

#define NO_JOB ((size_t)-1)

typedef struct job_outcome {
    wl_job_state state;
    int rc;
    size_t out_len;
    char msg[MSG_MAX + 64];
    int signal; /* a signal to wlprof stopped it */
} job_outcome;

typedef struct slot {
    pilot_worker w;  /* pid 0: none started */
    size_t job;      /* NO_JOB: free */
    double start;
    double deadline; /* --timeout, then the grace period */
    int killing;     /* 0, 1 SIGTERM sent (timeout), 2 signal forwarded */
    int timed_out;
    int signal;
    int dead;        /* the request could not be written */
} slot;

typedef struct pilot_ctx {
    const wl_task_def *task;
    const wl_inputs *in;
    const wl_run_opts *o;
    wl_run_result *r;
    double t0;
    run_sampler s;
    pilot_totals tot;
    size_t failures;
    int *stop;
    size_t next;     /* next job to start */
    size_t end;      /* one past the last pilot job */
} pilot_ctx;

static void record(pilot_ctx *c, size_t idx, wl_job_state st, int rc, const char *msg,
                   double start)
{
    double now = wl__run_now();
    wl__run_job_end(c->r, idx, st, rc, st == WL_JOB_OK ? NULL : msg, start - c->t0, now - c->t0);
    c->s.job_s += now - start;
}

/* Starts (an attempt of) job idx on slot k. */
static void slot_begin(pilot_ctx *c, int k, slot *sl, size_t idx)
{
    sl->job = idx;
    sl->start = wl__run_now();
    sl->deadline = INFINITY;
    sl->killing = sl->timed_out = sl->signal = sl->dead = 0;
    if (sl->w.pid == 0) {
        int rc = worker_start(&sl->w, c->task, c->in);
        if (rc < 0) {
            char msg[128];
            snprintf(msg, sizeof(msg), "cannot start a worker process: %s", strerror(-rc));
            record(c, idx, WL_JOB_FAILED, rc, msg, sl->start);
            sl->dead = -1; /* recorded: finish only releases the slot */
            return;
        }
    }
    wl__run_sampler_follow(&c->s, k, sl->w.pid);
    /* the job's time starts once its worker exists (a fork can be slow) */
    sl->start = wl__run_now();
    sl->deadline = c->o->timeout_s > 0 ? sl->start + c->o->timeout_s : INFINITY;
    uint32_t i32 = (uint32_t)idx;
    if (wl__run_write_full(sl->w.req, &i32, sizeof(i32)) < 0)
        sl->dead = 1;
}

/* The reply (or EOF) of slot k's job: its outcome. */
static void slot_outcome(pilot_ctx *c, slot *sl, job_outcome *oc)
{
    memset(oc, 0, sizeof(*oc));
    oc->signal = sl->signal;
    reply rp;
    if (!sl->dead && read_full(sl->w.rep, &rp, sizeof(rp)) == (ssize_t)sizeof(rp) &&
        rp.msglen <= MSG_MAX) {
        char msg[MSG_MAX + 1] = "";
        if (rp.msglen == 0 || read_full(sl->w.rep, msg, rp.msglen) == (ssize_t)rp.msglen) {
            msg[rp.msglen] = '\0';
            for (char *p = msg; *p; p++)
                if (*p == '\n' || *p == '\r')
                    *p = ' ';
            oc->rc = rp.rc;
            oc->out_len = rp.out_len;
            oc->state = sl->signal      ? WL_JOB_CANCELLED
                        : sl->timed_out ? WL_JOB_TIMED_OUT
                        : rp.rc == 0    ? WL_JOB_OK
                                        : WL_JOB_FAILED;
            if (rp.rc != 0)
                snprintf(oc->msg, sizeof(oc->msg), "%s", msg[0] ? msg : wl_strerror(rp.rc));
            if (oc->state == WL_JOB_TIMED_OUT)
                snprintf(oc->msg, sizeof(oc->msg), "timed out after %.3g s", c->o->timeout_s);
            if (oc->state == WL_JOB_CANCELLED)
                snprintf(oc->msg, sizeof(oc->msg), "cancelled by %s",
                         wl__run_signal_name(sl->signal) ? wl__run_signal_name(sl->signal)
                                                      : "a signal");
            /* a worker stopped by us is not reused */
            if (sl->signal || sl->timed_out)
                worker_reap(&sl->w, &c->tot, 1);
            return;
        }
    }
    pid_t pid = sl->w.pid;
    int st = worker_reap(&sl->w, &c->tot, 0);
    char how[96];
    wl__run_status_text(WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st), how, sizeof(how));
    oc->rc = -ECHILD;
    if (sl->signal) {
        oc->state = WL_JOB_CANCELLED;
        snprintf(oc->msg, sizeof(oc->msg), "cancelled by %s",
                 wl__run_signal_name(sl->signal) ? wl__run_signal_name(sl->signal) : "a signal");
    } else if (sl->timed_out) {
        oc->state = WL_JOB_TIMED_OUT;
        oc->rc = -ETIMEDOUT;
        snprintf(oc->msg, sizeof(oc->msg), "timed out after %.3g s (worker %d %s)",
                 c->o->timeout_s, (int)pid, how[0] ? how : "exited");
    } else {
        oc->state = WL_JOB_FAILED;
        snprintf(oc->msg, sizeof(oc->msg), "worker %d %s", (int)pid,
                 how[0] ? how : "exited with status 0 before replying");
    }
}

/* Slot k's job ended (reply or EOF): record, retry, or free the slot. */
static void slot_finish(pilot_ctx *c, int k, slot *sl)
{
    size_t idx = sl->job;
    job_outcome oc;
    if (sl->dead < 0) { /* could not start: already recorded */
        oc.state = WL_JOB_FAILED;
        oc.signal = 0;
    } else {
        slot_outcome(c, sl, &oc);
        record(c, idx, oc.state, oc.rc, oc.msg, sl->start);
        c->r->jobs[idx].out_bytes = oc.out_len;
    }
    wl__run_sampler_follow(&c->s, k, 0);
    sl->job = NO_JOB;
    if (!oc.signal && !*c->stop &&
        wl__run_should_retry(c->o, oc.state, c->r->jobs[idx].nattempts)) {
        slot_begin(c, k, sl, idx);
        return;
    }
    c->r->jobs[idx].pilot = true;
    if (oc.signal) {
        c->r->signal = oc.signal;
        *c->stop = 1;
    } else if (oc.state != WL_JOB_OK && ++c->failures >= (size_t)wl__run_halt_after(c->o) &&
               wl__run_halt_mode(c->o) != WL_HALT_NEVER) {
        c->r->halted = true;
        *c->stop = 1;
    }
}

/* Runs jobs [c->next, c->end) on nslots slots until all ended (or a signal
 * or --halt stopped the pilot: the jobs not started stay not_run). */
static void run_slots(pilot_ctx *c, slot *slots, int nslots)
{
    double grace = wl__run_grace(c->o);
    int sigfd = wl__run_signals_fd();
    for (;;) {
        for (int k = 0; k < nslots; k++) {
            if (wl__run_sig_first && !c->r->signal) {
                c->r->signal = wl__run_sig_first;
                *c->stop = 1;
            }
            if (slots[k].job == NO_JOB && !*c->stop && c->next < c->end)
                slot_begin(c, k, &slots[k], c->next++);
        }
        struct pollfd pf[RUN_PILOT_SLOTS + 1];
        int map[RUN_PILOT_SLOTS + 1];
        int n = 0;
        double deadline = INFINITY;
        for (int k = 0; k < nslots; k++) {
            slot *sl = &slots[k];
            if (sl->job == NO_JOB)
                continue;
            if (sl->dead) { /* nothing to wait for */
                slot_finish(c, k, sl);
                n = -1;
                break;
            }
            pf[n] = (struct pollfd){.fd = sl->w.rep, .events = POLLIN};
            map[n++] = k;
            if (sl->deadline < deadline)
                deadline = sl->deadline;
        }
        if (n < 0)
            continue;
        if (n == 0)
            return;
        if (sigfd >= 0) {
            pf[n] = (struct pollfd){.fd = sigfd, .events = POLLIN};
            map[n++] = -1;
        }
        int got = poll(pf, (nfds_t)n, wl__run_poll_ms(deadline));
        if (got < 0 && errno != EINTR)
            return;
        if (sigfd >= 0 && wl__run_sig_first) {
            int again = c->r->signal != 0 && wl__run_sig_count > 1;
            wl__run_signals_drain();
            c->r->signal = wl__run_sig_first;
            *c->stop = 1;
            for (int k = 0; k < nslots; k++) {
                slot *sl = &slots[k];
                if (sl->job == NO_JOB || sl->w.pid <= 0)
                    continue;
                if (again) {
                    kill(sl->w.pid, SIGKILL);
                } else if (!sl->signal) {
                    sl->signal = wl__run_sig_first;
                    kill(sl->w.pid, sl->signal);
                    sl->deadline = wl__run_now() + grace;
                    sl->killing = 2;
                }
            }
        }
        double now = wl__run_now();
        for (int k = 0; k < nslots; k++) {
            slot *sl = &slots[k];
            if (sl->job == NO_JOB || sl->w.pid <= 0 || now < sl->deadline)
                continue;
            if (sl->killing == 0) {
                sl->timed_out = 1;
                kill(sl->w.pid, SIGTERM);
                sl->deadline = now + grace;
                sl->killing = 1;
            } else {
                kill(sl->w.pid, SIGKILL);
                sl->deadline = INFINITY;
            }
        }
        for (int x = 0; got > 0 && x < n; x++)
            if (map[x] >= 0 && (pf[x].revents & (POLLIN | POLLHUP | POLLERR)))
                slot_finish(c, map[x], &slots[map[x]]);
    }
}

int wl__run_pilot_tasks(const wl_task_def *task, const wl_inputs *in, size_t n, const wl_run_opts *o,
                     wl_run_result *r, double t0, int *stop, char *err, size_t errlen)
{
    static slot slots[RUN_PILOT_SLOTS];
    pilot_ctx c = {.task = task, .in = in, .o = o, .r = r, .t0 = t0, .stop = stop};
    for (int k = 0; k < RUN_PILOT_SLOTS; k++) {
        memset(&slots[k], 0, sizeof(slots[k]));
        slots[k].job = NO_JOB;
    }
    int rc = wl__run_sampler_start_proc(&c.s);
    if (rc < 0) {
        snprintf(err, errlen, "cannot start the pilot sampler: %s", strerror(-rc));
        return rc;
    }
    /* The first job alone. */
    c.next = 0;
    c.end = n > 0 ? 1 : 0;
    run_slots(&c, slots, 1);
    if (slots[0].w.pid > 0)
        worker_reap(&slots[0].w, &c.tot, 0); /* its exact CPU, from wait4 */
    /* The rest: at once when the first mostly waited, else one per core. */
    double share = c.s.job_s > 0 ? (c.tot.user + c.tot.sys) / c.s.job_s : 1;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    size_t par = share < 0.5 ? RUN_PILOT_SLOTS : (size_t)(cores > 0 ? cores : 1);
    if (par > RUN_PILOT_SLOTS)
        par = RUN_PILOT_SLOTS;
    if (n > 1 && par > n - 1)
        par = n - 1;
    c.end = n;
    if (c.next < n)
        run_slots(&c, slots, (int)par);
    for (size_t k = 0; k < par || k == 0; k++)
        if (slots[k].w.pid > 0)
            worker_reap(&slots[k].w, &c.tot, 0);
    wl__run_sampler_stop_proc(&c.s);
    r->pilot_jobs = c.next;
    r->pilot_wall_s = c.s.t1 - c.s.t0;
    r->pilot_job_s = c.s.job_s;

    /* The workers' exact CPU figures, from wait4. */
    c.s.user_s = c.tot.user;
    c.s.sys_s = c.tot.sys;
    c.s.cpu_s = c.tot.user + c.tot.sys;
    c.s.nvcsw = c.tot.nvcsw;
    c.s.nivcsw = c.tot.nivcsw;
    char label[128];
    snprintf(label, sizeof(label), "pilot of task %s", task->name);
    rc = wl__run_sampler_profile(&c.s, label, &r->profile);
    if (rc < 0) {
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    r->have_profile = true;
    r->have_verdict = wl_classify(&r->profile, NULL, &r->verdict) == 0;
    return 0;
}
