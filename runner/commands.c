/*
 * commands.c -- command mode: a list of shell commands, like xargs -P or GNU
 * parallel, with the concurrency chosen from a profile of the first one.
 *
 *   pilot   a forked profiler process (own process group, PR_SET_PDEATHSIG)
 *           runs wl_profile_command("/bin/sh -c CMD") and sends the profile
 *           back as JSON; we watch its output pipes, the signal self-pipe
 *           and the --timeout deadline with poll(); classify; choose
 *   main    `workers` worker tasks on one coroutine loop; each starts the
 *           next command (fork + exec, in a session of its own, listed with
 *           the guardian by the child itself before exec) and awaits it: a
 *           wl_waiter woken when its pidfd said it exited, its pipes have
 *           closed and its timer is done
 *
 * Output: each job's stdout and stderr come through pipes read on the loop.
 * By default a job's output is kept until it ends and then written whole
 * (stdout, then stderr), so jobs never mix (parallel's --group); with
 * --keep-order in input order; with --line-buffer complete lines are
 * written as they come. Each line gets one fwrite of "[N] line\n" (N = the
 * command's line number; --no-prefix leaves it out). A line longer than
 * LINE_MAX_BYTES is cut into pieces of that size. With --output-dir the
 * pipes are replaced by the job's own files and nothing is buffered.
 *
 * Stopping a job (its --timeout, --halt now, a signal to wlprof): the
 * signal (TERM, or the one wlprof received) goes to the job's whole process
 * group, and a timer sends SIGKILL after the grace period; the job still
 * ends only when its process has exited and its pipes have closed, so no
 * child is left behind. A job stopped this way is recorded timed_out or
 * cancelled whatever its exit status (a command that traps SIGTERM and
 * exits 0 is not "ok"). The guardian (control.c) knows every job's group.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "wlprof/report.h"

#define LINE_MAX_BYTES (64 * 1024)

typedef struct linebuf {
    char *buf;
    size_t len;
    size_t cap;
} linebuf;

typedef struct cmd_job cmd_job;

/* A job's grouped output on one stream: in memory, then (past
 * HELD_MEM_MAX) in an unlinked temporary file, so a chatty job costs disk,
 * not memory. */
typedef struct held_out {
    linebuf mem;
    FILE *spill;
} held_out;

#define HELD_MEM_MAX (1024 * 1024)

typedef struct cmd_run {
    char *const *cmds;
    const wl_run_opts *o;
    wl_run_result *r;
    run_progress prog;
    double t0;
    double epoch0;       /* wall-clock seconds at t0, for the joblog */
    FILE *out;
    FILE *err;
    uv_loop_t uv;
    wl_loop loop;
    size_t *order;       /* indexes of the jobs to run (not skipped) */
    size_t norder;
    size_t next;         /* into order */
    size_t end;
    size_t in_flight;
    int stop;            /* start no new job */
    size_t failures;
    held_out (*held)[2]; /* grouped output per job, until written */
    size_t next_print;   /* --keep-order: next position in order to write */
    bool *printable;     /* --keep-order: job ended, output complete */
    cmd_job *live;       /* running jobs */
    char *ebuf;          /* emit()'s line buffer */
    size_t ebuf_cap;
    uv_poll_t sigpoll;
    int have_sigpoll;
} cmd_run;

enum { END_NORMAL = 0, END_TIMEOUT, END_CANCEL };

struct cmd_job {
    cmd_run *cr;
    size_t i;
    pid_t pid;          /* the job's sh, leader of its session and group */
    int pidfd;
    uv_poll_t exit_poll; /* the pidfd: readable once the sh has exited */
    uv_pipe_t pipes[2]; /* child's stdout, stderr */
    uv_timer_t timer;   /* --timeout, then the grace period */
    linebuf lb[2];      /* --line-buffer: the incomplete last line */
    int open_handles;
    int exited;
    int spawned;
    int status;         /* shell style */
    int ended_by;       /* END_* */
    int killing;        /* the grace timer runs: SIGKILL next */
    char rbuf[65536];
    wl_waiter *w;
    cmd_job *next, *prev;
};

/* ---- output -------------------------------------------------------------- */

/* One line, prefixed, in one fwrite (from one reused buffer). */
static void emit(cmd_run *cr, int stream, int line, const char *p, size_t n)
{
    FILE *f = stream == 0 ? cr->out : cr->err;
    char prefix[24] = "";
    int k = cr->o->no_prefix ? 0 : snprintf(prefix, sizeof(prefix), "[%d] ", line);
    size_t len = (size_t)k + n + 1;
    if (len > cr->ebuf_cap) {
        char *b = realloc(cr->ebuf, len);
        if (!b)
            return;
        cr->ebuf = b;
        cr->ebuf_cap = len;
    }
    memcpy(cr->ebuf, prefix, (size_t)k);
    memcpy(cr->ebuf + k, p, n);
    cr->ebuf[len - 1] = '\n';
    wl__run_progress_clear(&cr->prog);
    fwrite(cr->ebuf, 1, len, f);
}

/* Emits every complete line of lb; with flush, the remainder too. */
static void drain(cmd_run *cr, int stream, int line, linebuf *lb, int flush)
{
    size_t start = 0;
    for (size_t i = 0; i < lb->len; i++) {
        if (lb->buf[i] == '\n') {
            emit(cr, stream, line, lb->buf + start, i - start);
            start = i + 1;
        } else if (i - start + 1 >= LINE_MAX_BYTES) {
            emit(cr, stream, line, lb->buf + start, i - start + 1);
            start = i + 1;
        }
    }
    if (flush && start < lb->len) {
        emit(cr, stream, line, lb->buf + start, lb->len - start);
        start = lb->len;
    }
    if (start > 0) {
        memmove(lb->buf, lb->buf + start, lb->len - start);
        lb->len -= start;
    }
    fflush(stream == 0 ? cr->out : cr->err);
}

static int lb_append(linebuf *lb, const char *p, size_t n)
{
    if (lb->len + n > lb->cap) {
        size_t cap = lb->cap ? lb->cap : 4096;
        while (cap < lb->len + n)
            cap *= 2;
        char *b = realloc(lb->buf, cap);
        if (!b)
            return -ENOMEM;
        lb->buf = b;
        lb->cap = cap;
    }
    memcpy(lb->buf + lb->len, p, n);
    lb->len += n;
    return 0;
}

static void held_append(held_out *h, const char *p, size_t n)
{
    if (!h->spill && h->mem.len + n > HELD_MEM_MAX) {
        h->spill = tmpfile();
        if (h->spill && h->mem.len)
            fwrite(h->mem.buf, 1, h->mem.len, h->spill);
        if (h->spill)
            h->mem.len = 0;
    }
    if (h->spill)
        fwrite(p, 1, n, h->spill);
    else
        lb_append(&h->mem, p, n);
}

/* Output bytes of job i arrived on stream (0 stdout, 1 stderr). */
static void job_output(cmd_run *cr, size_t i, linebuf *partial, int stream, const char *p,
                       size_t n)
{
    int line = cr->r->jobs[i].line;
    if (cr->o->line_buffer) {
        if (lb_append(partial, p, n) == 0)
            drain(cr, stream, line, partial, 0);
    } else {
        held_append(&cr->held[i][stream], p, n);
    }
}

/* Job i's stream ended (an attempt's pipe closed). */
static void job_output_end(cmd_run *cr, size_t i, linebuf *partial, int stream)
{
    if (cr->o->line_buffer)
        drain(cr, stream, cr->r->jobs[i].line, partial, 1);
}

static void write_held(cmd_run *cr, size_t i)
{
    int line = cr->r->jobs[i].line;
    for (int s = 0; s < 2; s++) {
        held_out *h = &cr->held[i][s];
        if (h->spill) {
            char buf[65536];
            size_t k;
            rewind(h->spill);
            while ((k = fread(buf, 1, sizeof(buf), h->spill)) > 0)
                if (lb_append(&h->mem, buf, k) == 0)
                    drain(cr, s, line, &h->mem, 0);
            fclose(h->spill);
            h->spill = NULL;
        }
        if (h->mem.len)
            drain(cr, s, line, &h->mem, 1);
        free(h->mem.buf);
        memset(&h->mem, 0, sizeof(h->mem));
    }
}

/* Job i has ended for good: its grouped output can be written. */
static void job_output_done(cmd_run *cr, size_t i)
{
    if (cr->o->line_buffer || cr->o->output_dir)
        return;
    if (!cr->o->keep_order) {
        write_held(cr, i);
        return;
    }
    cr->printable[i] = true;
    while (cr->next_print < cr->norder && cr->printable[cr->order[cr->next_print]])
        write_held(cr, cr->order[cr->next_print++]);
}

/* Jobs that never ran still release their place in --keep-order. */
static void flush_all_output(cmd_run *cr)
{
    if (cr->o->line_buffer || cr->o->output_dir)
        return;
    for (; cr->next_print < cr->norder; cr->next_print++)
        write_held(cr, cr->order[cr->next_print]);
}

/* ---- the joblog (GNU parallel's columns) ---------------------------------- */

static void joblog_write(cmd_run *cr, size_t i)
{
    FILE *f = cr->o->joblog;
    const wl_job_result *j = &cr->r->jobs[i];
    if (!f || j->nattempts == 0)
        return;
    const wl_job_attempt *a = &j->attempts[j->nattempts - 1];
    int st = a->status;
    int exitval = st > 128 ? 0 : st < 0 ? -1 : st;
    int sig = st > 128 ? st - 128 : 0;
    /* A command has no newline; a tab would shift nothing after it. */
    fprintf(f, "%zu\t:\t%.3f\t%.3f\t0\t0\t%d\t%d\t%s\n", i + 1, cr->epoch0 + a->start_s,
            a->wall_s, exitval, sig, cr->cmds[i]);
    fflush(f);
}

/* ---- job bookkeeping ------------------------------------------------------ */

static wl_job_state attempt_state(cmd_run *cr, int st, int ended_by)
{
    if (ended_by == END_TIMEOUT)
        return WL_JOB_TIMED_OUT;
    if (ended_by == END_CANCEL)
        return WL_JOB_CANCELLED;
    return st == 0 ? WL_JOB_OK : WL_JOB_FAILED;
}

static void attempt_end(cmd_run *cr, size_t i, int st, int ended_by, const char *why,
                        double start)
{
    char msg[256] = "";
    wl_job_state state = attempt_state(cr, st, ended_by);
    if (why && *why)
        snprintf(msg, sizeof(msg), "%s", why);
    else if (state == WL_JOB_TIMED_OUT)
        snprintf(msg, sizeof(msg), "timed out after %.3g s", cr->o->timeout_s);
    else if (state == WL_JOB_CANCELLED && cr->r->signal)
        snprintf(msg, sizeof(msg), "cancelled by %s",
                 wl__run_signal_name(cr->r->signal) ? wl__run_signal_name(cr->r->signal)
                                                 : "a signal");
    else if (state == WL_JOB_CANCELLED)
        snprintf(msg, sizeof(msg), "cancelled (--halt)");
    else
        wl__run_status_text(st, msg, sizeof(msg));
    wl__run_job_end(cr->r, i, state, st, state == WL_JOB_OK ? NULL : msg, start - cr->t0,
                 wl__run_now() - cr->t0);
}

/* After the last attempt of job i. Returns whether the run halts now. */
static int job_done(cmd_run *cr, size_t i)
{
    wl_job_state st = cr->r->jobs[i].state;
    joblog_write(cr, i);
    job_output_done(cr, i);
    if (st != WL_JOB_CANCELLED)
        wl__run_progress_job(&cr->prog, st == WL_JOB_OK);
    if (st == WL_JOB_OK || st == WL_JOB_CANCELLED)
        return 0;
    int halt = wl__run_halt_mode(cr->o);
    if (halt != WL_HALT_NEVER && ++cr->failures >= (size_t)wl__run_halt_after(cr->o)) {
        cr->stop = 1;
        cr->r->halted = true;
        return halt == WL_HALT_NOW;
    }
    return 0;
}

/* ---- one command on the loop ---------------------------------------------- */

static void handle_closed(uv_handle_t *h)
{
    cmd_job *j = h->data;
    j->open_handles--;
    /* Process exited and pipes closed: only the timer is left. While the
     * grace period runs, its SIGKILL for the group is due now. */
    if (j->open_handles == 1 && j->exited && !uv_is_closing((uv_handle_t *)&j->timer)) {
        if (j->killing)
            kill(-j->pid, SIGKILL);
        uv_close((uv_handle_t *)&j->timer, handle_closed);
        return;
    }
    if (j->open_handles == 0) {
        if (j->spawned)
            wl__run_guard_remove(j->pid);
        if (j->w)
            wl_waiter_wake(j->w, 0);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    cmd_job *j = h->data;
    buf->base = j->rbuf;
    buf->len = sizeof(j->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    cmd_job *j = s->data;
    int stream = s == (uv_stream_t *)&j->pipes[0] ? 0 : 1;
    if (n > 0) {
        job_output(j->cr, j->i, &j->lb[stream], stream, buf->base, (size_t)n);
        return;
    }
    if (n < 0) {
        job_output_end(j->cr, j->i, &j->lb[stream], stream);
        uv_read_stop(s);
        uv_close((uv_handle_t *)s, handle_closed);
    }
}

static void on_timer(uv_timer_t *t);

/* Sends sig to the job's group and arms SIGKILL after the grace period. */
static void job_stop(cmd_job *j, int sig, int ended_by)
{
    if (!j->ended_by)
        j->ended_by = ended_by;
    kill(-j->pid, sig);
    if (!j->killing) {
        j->killing = 1;
        uv_timer_stop(&j->timer);
        uv_timer_start(&j->timer, on_timer, (uint64_t)(wl__run_grace(j->cr->o) * 1000), 0);
    }
}

static void on_timer(uv_timer_t *t)
{
    cmd_job *j = t->data;
    if (j->killing) {
        kill(-j->pid, SIGKILL);
        return;
    }
    job_stop(j, SIGTERM, END_TIMEOUT);
}

static void exit_poll_closed(uv_handle_t *h)
{
    cmd_job *j = h->data;
    close(j->pidfd);
    handle_closed(h);
}

static void on_exit_readable(uv_poll_t *p, int status, int events)
{
    cmd_job *j = p->data;
    int ws;
    pid_t got = waitpid(j->pid, &ws, WNOHANG);
    if (got == 0 || (got < 0 && errno == EINTR))
        return; /* not yet */
    j->exited = 1;
    j->status = got < 0               ? 255
                : WIFSIGNALED(ws) ? 128 + WTERMSIG(ws)
                                  : WEXITSTATUS(ws);
    /* Descendants still holding the pipes keep the job open; the group may
     * still need the grace timer's SIGKILL, so the timer stays. */
    if (!j->killing)
        uv_timer_stop(&j->timer);
    uv_poll_stop(p);
    uv_close((uv_handle_t *)p, exit_poll_closed);
}

/* fork + exec of /bin/sh -c CMD in a session of its own. The child lists
 * its group with the guardian before exec: there is no moment at which a
 * SIGKILLed wlprof leaves a job the guardian does not know. Only
 * async-signal-safe calls between fork and exec. Returns the pid or -errno. */
static pid_t spawn_job(const char *cmd, int out_fd, int err_fd)
{
    char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        setsid();
        wl__run_guard_add(getpid());
        if (wl__run_pdeathsig(parent) < 0) /* the sh itself; the guardian does its group */
            _exit(127);
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0)
            dup2(null, 0);
        dup2(out_fd, 1);
        dup2(err_fd, 2);
        struct sigaction dfl;
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        for (int sig = 1; sig < NSIG; sig++)
            sigaction(sig, &dfl, NULL); /* fails harmlessly for KILL, STOP */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static void on_cancel(wl_waiter *w)
{
    cmd_job *j = w->data;
    /* --halt now: the whole process group, sh may have children. */
    job_stop(j, SIGTERM, END_CANCEL);
}

static int open_job_file(const char *dir, int line, const char *ext)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%d.%s", dir, line, ext);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    return fd < 0 ? -errno : fd;
}

static void live_add(cmd_run *cr, cmd_job *j)
{
    j->next = cr->live;
    j->prev = NULL;
    if (cr->live)
        cr->live->prev = j;
    cr->live = j;
}

static void live_remove(cmd_run *cr, cmd_job *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        cr->live = j->next;
    if (j->next)
        j->next->prev = j->prev;
}

/* The child's stdout and stderr for the job on input line `line`: files
 * in --output-dir, else pipes (rd: our ends). files[] holds what the child
 * writes to (wr[]), for the caller to close. Returns 0 or a negative errno
 * with err set. */
static int open_job_outputs(cmd_run *cr, int line, int files[2], int rd[2], int wr[2], char *err,
                            size_t errlen)
{
    for (int s = 0; s < 2; s++) {
        if (cr->o->output_dir) {
            files[s] = open_job_file(cr->o->output_dir, line, s == 0 ? "out" : "err");
            if (files[s] < 0) {
                snprintf(err, errlen, "cannot create %s/%d.%s: %s", cr->o->output_dir, line,
                         s == 0 ? "out" : "err", strerror(-files[s]));
                return files[s];
            }
            wr[s] = files[s];
        } else {
            int p[2];
            if (pipe2(p, O_CLOEXEC) < 0) {
                int rc = -errno;
                snprintf(err, errlen, "cannot create a pipe: %s", strerror(errno));
                return rc;
            }
            rd[s] = p[0];
            wr[s] = files[s] = p[1];
        }
    }
    return 0;
}

/* Spawns command j->i under /bin/sh writing to wr[] and opens a pidfd on
 * it. Returns 0, or a negative errno with err set and nothing left running. */
static int job_spawn(cmd_run *cr, cmd_job *j, const int wr[2], char *err, size_t errlen)
{
    j->pid = spawn_job(cr->cmds[j->i], wr[0], wr[1]);
    if (j->pid < 0) {
        snprintf(err, errlen, "cannot start /bin/sh: %s", strerror(-j->pid));
        return j->pid;
    }
    j->spawned = 1;
    j->pidfd = (int)syscall(SYS_pidfd_open, j->pid, 0);
    if (j->pidfd < 0) {
        int rc = -errno;
        snprintf(err, errlen, "cannot watch /bin/sh: pidfd_open: %s", strerror(errno));
        kill(-j->pid, SIGKILL);
        waitpid(j->pid, NULL, 0);
        wl__run_guard_remove(j->pid);
        return rc;
    }
    return 0;
}

/* Puts the running job on the loop: its output pipes (taking our ends rd[]
 * and closing the child's, files[]), its --timeout, its exit, and w to
 * wait on; stops it at once when a signal came while it was spawned. */
static void job_watch(cmd_run *cr, cmd_job *j, wl_waiter *w, int files[2], int rd[2])
{
    for (int s = 0; s < 2 && !cr->o->output_dir; s++) {
        close(files[s]); /* the child's end */
        files[s] = -1;
        uv_pipe_init(&cr->uv, &j->pipes[s], 0);
        j->pipes[s].data = j;
        uv_pipe_open(&j->pipes[s], rd[s]);
        rd[s] = -1;
        j->open_handles++;
    }
    uv_timer_init(&cr->uv, &j->timer);
    j->timer.data = j;
    j->open_handles++;
    uv_poll_init(&cr->uv, &j->exit_poll, j->pidfd);
    j->exit_poll.data = j;
    j->open_handles++;
    wl_waiter_init(w);
    w->data = j;
    w->cancel = on_cancel;
    j->w = w;
    uv_poll_start(&j->exit_poll, UV_READABLE, on_exit_readable);
    live_add(cr, j);
    if (cr->o->timeout_s > 0)
        uv_timer_start(&j->timer, on_timer, (uint64_t)ceil(cr->o->timeout_s * 1000), 0);
    if (cr->r->signal) /* a signal came while we were spawning */
        job_stop(j, cr->r->signal, END_CANCEL);
    for (int s = 0; s < 2 && !cr->o->output_dir; s++)
        uv_read_start((uv_stream_t *)&j->pipes[s], on_alloc, on_read);
}

/* Spawns command i and waits for it. Returns its shell-style status (>= 0)
 * or a negative error when it could not be started; *err says why. */
static int run_command(cmd_run *cr, size_t i, int *ended_by, char *err, size_t errlen)
{
    cmd_job *j = calloc(1, sizeof(*j));
    wl_waiter *w = malloc(sizeof(*w));
    int files[2] = {-1, -1};
    int wr[2] = {-1, -1}; /* the child's stdout and stderr */
    int rd[2] = {-1, -1};
    int rc;

    *ended_by = END_NORMAL;
    if (!j || !w) {
        free(j);
        free(w);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    j->cr = cr;
    j->i = i;
    rc = open_job_outputs(cr, cr->r->jobs[i].line, files, rd, wr, err, errlen);
    if (rc == 0)
        rc = job_spawn(cr, j, wr, err, errlen);
    if (rc == 0) {
        job_watch(cr, j, w, files, rd);
        /* Woken when every handle has closed, even when cancelled (--halt
         * now: on_cancel stopped the job first). */
        wl_waiter_wait(w);
        live_remove(cr, j);
        *ended_by = j->ended_by;
        rc = j->status;
    }
    for (int s = 0; s < 2; s++) {
        if (files[s] >= 0)
            close(files[s]);
        if (rd[s] >= 0)
            close(rd[s]);
    }
    free(j->lb[0].buf);
    free(j->lb[1].buf);
    free(j);
    free(w);
    return rc;
}

/* Job i with its retries. Returns non-zero when the run must halt now. */
static int run_job(cmd_run *cr, size_t i)
{
    for (;;) {
        char err[256] = "";
        int ended_by;
        double start = wl__run_now();
        cr->in_flight++;
        cr->prog.running = cr->in_flight;
        if (cr->in_flight > cr->r->max_in_flight)
            cr->r->max_in_flight = cr->in_flight;
        int st = run_command(cr, i, &ended_by, err, sizeof(err));
        cr->in_flight--;
        cr->prog.running = cr->in_flight;
        if (wl_task_cancelled() && ended_by == END_NORMAL && st != 0)
            ended_by = END_CANCEL;
        attempt_end(cr, i, st, ended_by, err, start);
        if (cr->stop || wl_task_cancelled() ||
            !wl__run_should_retry(cr->o, cr->r->jobs[i].state, cr->r->jobs[i].nattempts))
            break;
    }
    return job_done(cr, i);
}

static int worker_task(void *arg, void **result)
{
    cmd_run *cr = arg;
    while (!cr->stop && cr->next < cr->end && !wl_task_cancelled()) {
        if (run_job(cr, cr->order[cr->next++]))
            return -EIO; /* --halt now: the group cancels the other workers */
    }
    return 0;
}

static int main_task(void *arg, void **result)
{
    cmd_run *cr = arg;
    wl_group g;
    wl_group_init(&g, NULL);
    for (int w = 0; w < cr->r->workers; w++)
        if (wl_group_spawn(&g, NULL, "worker", worker_task, cr) < 0)
            break;
    return wl_group_wait(&g);
}

static void on_signal(uv_poll_t *p, int status, int events)
{
    cmd_run *cr = p->data;
    wl__run_signals_drain();
    if (!wl__run_sig_first)
        return;
    int again = cr->r->signal != 0;
    if (!again)
        cr->r->signal = wl__run_sig_first;
    cr->stop = 1;
    for (cmd_job *j = cr->live; j; j = j->next) {
        if (again)
            kill(-j->pid, SIGKILL); /* a second signal: no more grace */
        else
            job_stop(j, cr->r->signal, END_CANCEL);
        j->ended_by = END_CANCEL;
    }
}

/* ---- pilot ----------------------------------------------------------------- */

typedef struct pilot_child {
    size_t i;           /* the job */
    pid_t pid;
    int fds[3];         /* stdout, stderr, profile JSON; -1 once at EOF */
    linebuf partial[2]; /* --line-buffer: incomplete lines */
    linebuf json;
    double start;
    double deadline;
    int ended_by;
    int killing;
} pilot_child;

static void pilot_child_main(cmd_run *cr, size_t i, int out_fds[2], int json_fd)
    __attribute__((noreturn));
static void pilot_child_main(cmd_run *cr, size_t i, int out_fds[2], int json_fd)
{
    dup2(out_fds[0], 1);
    dup2(out_fds[1], 2);
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0)
        dup2(null, 0);
    char *argv[] = {"/bin/sh", "-c", cr->cmds[i], NULL};
    wl_profile_opts po = {.hz = 200};
    wl_profile prof;
    int rc = wl_profile_command(argv, &po, &prof);
    if (rc < 0)
        _exit(126);
    json_t *root = wl_report_to_json(&prof);
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    if (!text)
        _exit(125);
    _exit(wl__run_write_full(json_fd, text, strlen(text)) == 0 ? 0 : 124);
}

static int pilot_start(cmd_run *cr, size_t i, pilot_child *pc, char *err, size_t errlen)
{
    int p[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
    int line = cr->r->jobs[i].line;
    int rc = 0;
    for (int s = 0; s < 3; s++) {
        if (s < 2 && cr->o->output_dir) {
            p[s][1] = open_job_file(cr->o->output_dir, line, s == 0 ? "out" : "err");
            if (p[s][1] < 0) {
                rc = p[s][1];
                snprintf(err, errlen, "cannot create %s/%d.%s: %s", cr->o->output_dir, line,
                         s == 0 ? "out" : "err", strerror(-rc));
                goto fail;
            }
        } else if (pipe2(p[s], O_CLOEXEC) < 0) {
            rc = -errno;
            snprintf(err, errlen, "cannot capture the pilot's output: %s", strerror(-rc));
            goto fail;
        }
    }
    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    fflush(cr->out);
    fflush(cr->err);
    pid_t pid = fork();
    if (pid < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot start the pilot: %s", strerror(-rc));
        goto fail;
    }
    if (pid == 0) {
        wl__run_child_setup();
        setpgid(0, 0); /* its own group: wlprof forwards signals to it */
        if (wl__run_pdeathsig(parent) < 0)
            _exit(1);
        int outs[2] = {p[0][1], p[1][1]};
        pilot_child_main(cr, i, outs, p[2][1]);
    }
    setpgid(pid, pid);
    wl__run_guard_add(pid);
    pc->pid = pid;
    for (int s = 0; s < 3; s++) {
        close(p[s][1]);
        pc->fds[s] = p[s][0];
    }
    return 0;

fail:
    for (int s = 0; s < 3; s++)
        for (int k = 0; k < 2; k++)
            if (p[s][k] >= 0)
                close(p[s][k]);
    return rc;
}

/* Watches pilot children until every one's pipes reached EOF: their
 * output, the signal self-pipe (forwarded to each child's group), and each
 * --timeout deadline (TERM, then KILL after the grace period). */
static void pilot_watch(cmd_run *cr, pilot_child *pcs, size_t n)
{
    double grace = wl__run_grace(cr->o);
    int sigfd = wl__run_signals_fd();
    char buf[65536];
    for (;;) {
        struct pollfd pf[3 * RUN_PILOT_SLOTS + 1];
        int who[3 * RUN_PILOT_SLOTS + 1], which[3 * RUN_PILOT_SLOTS + 1];
        int m = 0;
        double deadline = INFINITY;
        for (size_t c = 0; c < n; c++) {
            int open_fds = 0;
            for (int s = 0; s < 3; s++)
                if (pcs[c].fds[s] >= 0) {
                    pf[m] = (struct pollfd){.fd = pcs[c].fds[s], .events = POLLIN};
                    who[m] = (int)c;
                    which[m++] = s;
                    open_fds++;
                }
            if (open_fds && pcs[c].deadline < deadline)
                deadline = pcs[c].deadline;
        }
        if (m == 0)
            return;
        if (sigfd >= 0) {
            pf[m] = (struct pollfd){.fd = sigfd, .events = POLLIN};
            who[m] = -1;
            which[m++] = -1;
        }
        int k = poll(pf, (nfds_t)m, wl__run_poll_ms(deadline));
        if (k < 0 && errno != EINTR)
            return;
        for (int x = 0; k > 0 && x < m; x++) {
            if (who[x] < 0 || !(pf[x].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            pilot_child *pc = &pcs[who[x]];
            int s = which[x];
            ssize_t got = read(pc->fds[s], buf, sizeof(buf));
            if (got > 0) {
                if (s == 2)
                    lb_append(&pc->json, buf, (size_t)got);
                else
                    job_output(cr, pc->i, &pc->partial[s], s, buf, (size_t)got);
            } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
                if (s < 2)
                    job_output_end(cr, pc->i, &pc->partial[s], s);
                close(pc->fds[s]);
                pc->fds[s] = -1;
            }
        }
        if (sigfd >= 0 && wl__run_sig_first) {
            wl__run_signals_drain();
            int again = cr->r->signal != 0;
            if (!again)
                cr->r->signal = wl__run_sig_first;
            cr->stop = 1;
            for (size_t c = 0; c < n; c++) {
                pilot_child *pc = &pcs[c];
                if (again) {
                    kill(-pc->pid, SIGKILL);
                } else {
                    pc->ended_by = END_CANCEL;
                    kill(-pc->pid, cr->r->signal);
                    pc->deadline = wl__run_now() + grace;
                    pc->killing = 1;
                }
            }
        }
        double now = wl__run_now();
        for (size_t c = 0; c < n; c++) {
            pilot_child *pc = &pcs[c];
            if (now < pc->deadline)
                continue;
            if (!pc->killing) {
                pc->ended_by = END_TIMEOUT;
                kill(-pc->pid, SIGTERM);
                pc->deadline = now + grace;
                pc->killing = 1;
            } else {
                kill(-pc->pid, SIGKILL);
                pc->deadline = INFINITY;
            }
        }
    }
}

/* Starts command i in a forked profiler. */
static int pilot_begin(cmd_run *cr, size_t i, pilot_child *pc, char *err, size_t errlen)
{
    memset(pc, 0, sizeof(*pc));
    pc->i = i;
    pc->start = wl__run_now();
    pc->deadline = cr->o->timeout_s > 0 ? pc->start + cr->o->timeout_s : INFINITY;
    return pilot_start(cr, i, pc, err, errlen);
}

/* Reaps a watched pilot child and records its attempt; the profile goes to
 * *prof (zeroed when there is none). */
static void pilot_end(cmd_run *cr, pilot_child *pc, wl_profile *prof)
{
    size_t i = pc->i;
    int ws = 0;
    memset(prof, 0, sizeof(*prof));
    while (waitpid(pc->pid, &ws, 0) < 0 && errno == EINTR)
        ;
    if (pc->killing)
        kill(-pc->pid, SIGKILL); /* descendants that outlived the profiler */
    wl__run_guard_remove(pc->pid);

    int st;
    char why[128] = "";
    json_t *root = NULL;
    if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0 && pc->json.len) {
        json_error_t je;
        root = json_loadb(pc->json.buf, pc->json.len, 0, &je);
    }
    if (root && wl_report_from_json(root, prof, why, sizeof(why)) == 0) {
        st = prof->term_signal ? 128 + prof->term_signal : prof->exit_code;
        why[0] = '\0';
    } else {
        wl_profile_free(prof);
        memset(prof, 0, sizeof(*prof));
        if (WIFEXITED(ws) && WEXITSTATUS(ws) == 126) {
            st = 126;
            snprintf(why, sizeof(why), "cannot run /bin/sh");
        } else {
            st = WIFSIGNALED(ws) ? 128 + WTERMSIG(ws) : 255;
            if (!pc->ended_by)
                snprintf(why, sizeof(why), "the pilot's profiler ended without a profile");
        }
    }
    json_decref(root);
    free(pc->json.buf);
    free(pc->partial[0].buf);
    free(pc->partial[1].buf);
    attempt_end(cr, i, st, pc->ended_by, why, pc->start);
    cr->r->pilot_job_s += cr->r->jobs[i].attempts[cr->r->jobs[i].nattempts - 1].wall_s;
}

/* Keeps the longest pilot command's profile: it stands for the batch. */
static void keep_profile(wl_run_result *r, wl_profile *prof)
{
    if (prof->wall_s > 0 && (!r->have_profile || prof->wall_s > r->profile.wall_s)) {
        wl_profile_free(&r->profile);
        r->profile = *prof;
        r->have_profile = true;
    } else {
        wl_profile_free(prof);
    }
}

/* The first pilot command alone, then the others at once (each in its own
 * profiler): the pilot costs about two jobs' time, not npilot. */
static int run_pilot(cmd_run *cr, size_t npilot, char *err, size_t errlen)
{
    static pilot_child pcs[RUN_PILOT_SLOTS];
    wl_run_result *r = cr->r;
    double start = wl__run_now();
    if (npilot > RUN_PILOT_SLOTS + 1)
        npilot = RUN_PILOT_SLOTS + 1;
    wl__run_progress_note(&cr->prog, "pilot: %zu command%s under the profiler, the first alone",
                       npilot, npilot == 1 ? "" : "s");
    size_t round[RUN_PILOT_SLOTS + 1];
    size_t nround = 1;
    size_t next = 1; /* into order: the next pilot command not yet begun */
    round[0] = cr->order[0];
    while (nround > 0 && !cr->stop) {
        size_t n = 0;
        int rc = 0;
        for (size_t k = 0; k < nround && rc == 0; k++) {
            rc = pilot_begin(cr, round[k], &pcs[n], err, errlen);
            if (rc == 0) {
                r->jobs[round[k]].pilot = true;
                n++;
            }
        }
        pilot_watch(cr, pcs, n);
        nround = 0;
        for (size_t c = 0; c < n; c++) {
            wl_profile prof;
            size_t i = pcs[c].i;
            pilot_end(cr, &pcs[c], &prof);
            keep_profile(r, &prof);
            if (!cr->stop && wl__run_should_retry(cr->o, r->jobs[i].state, r->jobs[i].nattempts))
                round[nround++] = i; /* again, in the next round */
            else
                job_done(cr, i);
        }
        if (rc < 0)
            return rc;
        if (nround == 0) /* no retries pending: the rest, at once */
            while (next < npilot && nround < RUN_PILOT_SLOTS)
                round[nround++] = cr->order[next++];
    }
    r->pilot_jobs = 0;
    for (size_t k = 0; k < npilot; k++)
        if (r->jobs[cr->order[k]].pilot)
            r->pilot_jobs++;
    cr->next = r->pilot_jobs;
    r->pilot_wall_s = wl__run_now() - start;
    if (r->have_profile)
        r->have_verdict = wl_classify(&r->profile, NULL, &r->verdict) == 0;
    return 0;
}

/* Fills cr and out's jobs for the n commands (skipped ones marked), checks
 * the options and makes the output directory. Returns 0 or a negative
 * errno with err set; cr is commands_free's to release either way. */
static int commands_prepare(cmd_run *cr, char *const *cmds, const int *lines, size_t n,
                            const wl_run_opts *opts, wl_run_result *out, char *err,
                            size_t errlen)
{
    cr->order = calloc(n ? n : 1, sizeof(*cr->order));
    cr->held = calloc(n ? n : 1, sizeof(*cr->held));
    cr->printable = calloc(n ? n : 1, sizeof(*cr->printable));
    if (!cr->order || !cr->held || !cr->printable) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        out->jobs[i].line = lines[i];
        out->jobs[i].command = strdup(cmds[i]);
        if (opts->skip && opts->skip[i])
            out->jobs[i].state = WL_JOB_SKIPPED;
        else
            cr->order[cr->norder++] = i;
    }
    if (opts->workers < 0 || opts->limit < 0) {
        snprintf(err, errlen, "--workers and --limit must be at least 1");
        return -EINVAL;
    }
    if (opts->output_dir && mkdir(opts->output_dir, 0755) < 0 && errno != EEXIST) {
        int rc = -errno;
        snprintf(err, errlen, "cannot create %s: %s", opts->output_dir, strerror(errno));
        return rc;
    }
    cr->cmds = cmds;
    cr->o = opts;
    cr->r = out;
    cr->out = opts->out ? opts->out : stdout;
    cr->err = opts->err ? opts->err : stderr;
    cr->t0 = wl__run_now();
    struct timeval tv;
    gettimeofday(&tv, NULL);
    cr->epoch0 = (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
    wl__run_progress_init(&cr->prog, opts, out, cr->t0);
    return 0;
}

/* How many commands the pilot runs: --pilot, none with --workers (or
 * --pilot < 0), else the default; at most the commands there are. */
static size_t pilot_count(const cmd_run *cr)
{
    const wl_run_opts *opts = cr->o;
    size_t npilot = opts->pilot > 0     ? (size_t)opts->pilot
                    : opts->pilot < 0   ? 0
                    : opts->workers > 0 ? 0
                                        : RUN_DEFAULT_PILOT_COMMANDS;
    return npilot > cr->norder ? cr->norder : npilot;
}

/* Runs the commands the pilot left, r->workers at once, on a coroutine
 * loop of its own that also watches for signals; fills the phase's wall
 * times. Returns 0 or a negative errno with err set. */
static int commands_main_phase(cmd_run *cr, char *err, size_t errlen)
{
    wl_run_result *out = cr->r;
    int rc = uv_loop_init(&cr->uv);
    if (rc < 0) {
        snprintf(err, errlen, "cannot create the event loop: %s", uv_strerror(rc));
        return rc;
    }
    rc = wl_loop_init(&cr->loop, &cr->uv, NULL);
    if (rc < 0) {
        snprintf(err, errlen, "cannot create the coroutine loop: %s", wl_strerror(rc));
        uv_loop_close(&cr->uv);
        return rc;
    }
    if (cr->o->handle_signals &&
        uv_poll_init(&cr->uv, &cr->sigpoll, wl__run_signals_fd()) == 0) {
        cr->sigpoll.data = cr;
        uv_poll_start(&cr->sigpoll, UV_READABLE, on_signal);
        uv_unref((uv_handle_t *)&cr->sigpoll);
        cr->have_sigpoll = 1;
    }
    double main_t0 = wl__run_now();
    if (!cr->stop && wl__run_sig_first == 0 && cr->next < cr->norder) {
        cr->end = cr->norder;
        wl__run_progress_start(&cr->prog, &cr->uv);
        wl_run(&cr->loop, "main", main_task, cr, NULL);
        wl__run_progress_stop(&cr->prog);
    }
    if (wl__run_sig_first && !out->signal)
        out->signal = wl__run_sig_first;
    out->main_wall_s = wl__run_now() - main_t0;
    out->total_wall_s = wl__run_now() - cr->t0;
    if (cr->have_sigpoll)
        uv_close((uv_handle_t *)&cr->sigpoll, NULL);
    wl_loop_close(&cr->loop);
    uv_run(&cr->uv, UV_RUN_DEFAULT);
    uv_loop_close(&cr->uv);
    return 0;
}

/* Releases what cr holds for its n commands, and cr. */
static void commands_free(cmd_run *cr, size_t n)
{
    if (cr->held)
        for (size_t i = 0; i < n; i++) {
            for (int k = 0; k < 2; k++) {
                free(cr->held[i][k].mem.buf);
                if (cr->held[i][k].spill)
                    fclose(cr->held[i][k].spill);
            }
        }
    free(cr->held);
    free(cr->ebuf);
    free(cr->printable);
    free(cr->order);
    free(cr);
}

int wl_run_commands(char *const *cmds, const int *lines, size_t n, const wl_run_opts *opts,
                    wl_run_result *out, char *err, size_t errlen)
{
    cmd_run *cr = calloc(1, sizeof(*cr));
    int rc = wl__run_result_init(out, WL_RUN_COMMANDS, n, "commands");
    if (!cr || rc < 0) {
        free(cr);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    rc = commands_prepare(cr, cmds, lines, n, opts, out, err, errlen);
    if (rc < 0)
        goto free_run;
    if (opts->handle_signals && wl__run_signals_install() < 0) {
        snprintf(err, errlen, "cannot install the signal handlers: %s", strerror(errno));
        rc = -EIO;
        goto free_run;
    }
    wl__run_guard_start();

    size_t npilot = pilot_count(cr);
    if (npilot > 0) {
        rc = run_pilot(cr, npilot, err, errlen);
        if (rc < 0)
            goto stop_guard;
    }
    wl__run_choose(out, opts, cr->norder - out->pilot_jobs);
    if (npilot > 0)
        wl__run_progress_note(&cr->prog, "pilot: %.2f s, %s -> %d at once", out->pilot_wall_s,
                           out->have_verdict ? wl_kind_name(out->verdict.kind) : "unclassified",
                           out->workers);
    rc = commands_main_phase(cr, err, errlen);

stop_guard:
    flush_all_output(cr);
    fflush(cr->out);
    fflush(cr->err);
    wl__run_guard_stop();
free_run:
    wl__run_result_count(out);
    commands_free(cr, n);
    return rc;
}
