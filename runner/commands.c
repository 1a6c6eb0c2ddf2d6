/*
 * commands.c -- command mode: a list of shell commands, like xargs -P, with
 * the concurrency chosen from a profile of the first command(s).
 *
 *   pilot   wl_profile_command("/bin/sh -c CMD") with its stdout/stderr
 *           redirected into temporary files (or DIR/N.out, DIR/N.err), then
 *           replayed with the "[N] " prefix; classify; choose (choose.c)
 *   main    `workers` worker tasks on one coroutine loop; each spawns the
 *           next command with uv_spawn and awaits it (a wl_waiter woken
 *           when the process has exited and both pipes have closed)
 *
 * Output: each job's stdout and stderr come through pipes read on the
 * loop. Bytes are kept per job and stream until a newline; only complete
 * lines are written, each with one fwrite of "[N] line\n", so lines of
 * different jobs never mix mid-line. A line longer than LINE_MAX_BYTES is
 * cut into pieces of that size. With --output-dir the pipes are replaced by
 * the job's own files and nothing is buffered.
 *
 * Fail-fast: the failing worker returns the failure, the wl_group cancels
 * the others; a cancelled wait sends SIGTERM to its command's process group
 * (each command runs in a session of its own) and still waits for it to
 * exit, so no child is left behind.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LINE_MAX_BYTES (64 * 1024)

typedef struct cmd_run {
    char *const *cmds;
    const wl_run_opts *o;
    wl_run_result *r;
    run_progress prog;
    double t0;
    FILE *out;
    FILE *err;
    uv_loop_t uv;
    wl_loop loop;
    size_t next;
    size_t end;
    size_t in_flight;
    int stop;
} cmd_run;

typedef struct linebuf {
    char *buf;
    size_t len;
    size_t cap;
} linebuf;

typedef struct cmd_job {
    cmd_run *cr;
    size_t i;
    uv_process_t proc;
    uv_pipe_t pipes[2]; /* child's stdout, stderr */
    linebuf lb[2];
    int open_handles;
    int exited;
    int status;         /* shell style */
    char rbuf[65536];
    wl_waiter *w;
} cmd_job;

/* ---- output -------------------------------------------------------------- */

static void emit(cmd_run *cr, int stream, int line, const char *p, size_t n)
{
    FILE *f = stream == 0 ? cr->out : cr->err;
    char prefix[24];
    int k = snprintf(prefix, sizeof(prefix), "[%d] ", line);
    char *buf = malloc((size_t)k + n + 1);
    if (!buf)
        return;
    memcpy(buf, prefix, (size_t)k);
    memcpy(buf + k, p, n);
    buf[(size_t)k + n] = '\n';
    run__progress_clear(&cr->prog);
    fwrite(buf, 1, (size_t)k + n + 1, f);
    fflush(f);
    free(buf);
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

/* Replays a captured file with the job's prefix (pilot output). */
static void replay(cmd_run *cr, int stream, int line, int fd)
{
    linebuf lb = {0};
    char buf[8192];
    ssize_t k;
    lseek(fd, 0, SEEK_SET);
    while ((k = read(fd, buf, sizeof(buf))) > 0) {
        if (lb_append(&lb, buf, (size_t)k) < 0)
            break;
        drain(cr, stream, line, &lb, 0);
    }
    drain(cr, stream, line, &lb, 1);
    free(lb.buf);
}

/* ---- one command on the loop ---------------------------------------------- */

static void handle_closed(uv_handle_t *h)
{
    cmd_job *j = h->data;
    if (--j->open_handles == 0 && j->w)
        wl_waiter_wake(j->w, 0);
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
    int line = j->cr->r->jobs[j->i].line;
    if (n > 0) {
        if (lb_append(&j->lb[stream], buf->base, (size_t)n) == 0)
            drain(j->cr, stream, line, &j->lb[stream], 0);
        return;
    }
    if (n < 0) {
        drain(j->cr, stream, line, &j->lb[stream], 1);
        uv_read_stop(s);
        uv_close((uv_handle_t *)s, handle_closed);
    }
}

static void on_process_exit(uv_process_t *p, int64_t exit_status, int term_signal)
{
    cmd_job *j = p->data;
    j->exited = 1;
    j->status = term_signal ? 128 + term_signal : (int)exit_status;
    uv_close((uv_handle_t *)p, handle_closed);
}

static void on_cancel(wl_waiter *w)
{
    cmd_job *j = w->data;
    /* The whole process group: sh may have children holding the pipes. */
    if (!j->exited)
        kill(-j->proc.pid, SIGTERM);
}

static int open_job_file(const char *dir, int line, const char *ext)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%d.%s", dir, line, ext);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    return fd < 0 ? -errno : fd;
}

/* Spawns command i and waits for it. Returns its shell-style status (>= 0)
 * or a negative error when it could not be started; *err says why. */
static int run_command(cmd_run *cr, size_t i, int *interrupted, char *err, size_t errlen)
{
    cmd_job *j = calloc(1, sizeof(*j));
    wl_waiter *w = malloc(sizeof(*w));
    int files[2] = {-1, -1};
    int line = cr->r->jobs[i].line;
    int rc;

    *interrupted = 0;
    if (!j || !w) {
        free(j);
        free(w);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    j->cr = cr;
    j->i = i;
    char *argv[] = {"/bin/sh", "-c", cr->cmds[i], NULL};
    uv_stdio_container_t stdio[3];
    uv_process_options_t po = {0};
    stdio[0].flags = UV_IGNORE;
    if (cr->o->output_dir) {
        for (int s = 0; s < 2; s++) {
            files[s] = open_job_file(cr->o->output_dir, line, s == 0 ? "out" : "err");
            if (files[s] < 0) {
                rc = files[s];
                snprintf(err, errlen, "cannot create %s/%d.%s: %s", cr->o->output_dir, line,
                         s == 0 ? "out" : "err", strerror(-rc));
                goto close_files;
            }
            stdio[s + 1].flags = UV_INHERIT_FD;
            stdio[s + 1].data.fd = files[s];
        }
    } else {
        for (int s = 0; s < 2; s++) {
            uv_pipe_init(&cr->uv, &j->pipes[s], 0);
            j->pipes[s].data = j;
            j->open_handles++;
            stdio[s + 1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
            stdio[s + 1].data.stream = (uv_stream_t *)&j->pipes[s];
        }
    }
    po.file = argv[0];
    po.args = argv;
    po.stdio = stdio;
    po.stdio_count = 3;
    po.exit_cb = on_process_exit;
    po.flags = UV_PROCESS_DETACHED; /* own process group, so cancelling reaches it all */
    j->proc.data = j;
    wl_waiter_init(w);
    w->data = j;
    w->cancel = on_cancel;
    j->w = w;
    rc = uv_spawn(&cr->uv, &j->proc, &po);
    if (rc < 0) {
        snprintf(err, errlen, "cannot start /bin/sh: %s", uv_strerror(rc));
        j->open_handles++; /* uv_spawn failed: the process handle still needs closing */
        uv_close((uv_handle_t *)&j->proc, handle_closed);
        for (int s = 0; s < 2 && !cr->o->output_dir; s++)
            uv_close((uv_handle_t *)&j->pipes[s], handle_closed);
        wl_waiter_wait(w);
        goto close_files;
    }
    j->open_handles++;
    for (int s = 0; s < 2 && !cr->o->output_dir; s++)
        uv_read_start((uv_stream_t *)&j->pipes[s], on_alloc, on_read);
    /* Interrupted (fail-fast): on_cancel killed it; the wait still lasts
     * until every handle has closed. */
    *interrupted = wl_waiter_wait(w) != 0;
    rc = j->status;

close_files:
    for (int s = 0; s < 2; s++)
        if (files[s] >= 0)
            close(files[s]);
    free(j->lb[0].buf);
    free(j->lb[1].buf);
    free(j);
    free(w);
    return rc;
}

static int run_job(cmd_run *cr, size_t i)
{
    char err[256] = "";
    int interrupted;
    double start = run__now();

    cr->in_flight++;
    cr->prog.running = cr->in_flight;
    if (cr->in_flight > cr->r->max_in_flight)
        cr->r->max_in_flight = cr->in_flight;
    int st = run_command(cr, i, &interrupted, err, sizeof(err));
    cr->in_flight--;
    cr->prog.running = cr->in_flight;
    wl_job_state state = st == 0 ? WL_JOB_OK : interrupted ? WL_JOB_CANCELLED : WL_JOB_FAILED;
    if (st > 0 && !err[0]) {
        if (st == 127)
            snprintf(err, sizeof(err), "exit status 127 (command not found)");
        else if (st > 128)
            snprintf(err, sizeof(err), "killed by signal %d", st - 128);
        else
            snprintf(err, sizeof(err), "exit status %d", st);
    }
    run__job_end(cr->r, i, state, st, state == WL_JOB_OK ? NULL : err, start - cr->t0,
                 run__now() - cr->t0);
    if (state != WL_JOB_CANCELLED)
        run__progress_job(&cr->prog, state == WL_JOB_OK);
    return st == 0 ? 0 : st > 0 ? -ECHILD : st;
}

static int worker_task(void *arg, void **result)
{
    cmd_run *cr = arg;
    while (!cr->stop && cr->next < cr->end && !wl_task_cancelled()) {
        int rc = run_job(cr, cr->next++);
        if (rc != 0 && cr->o->fail_fast) {
            cr->stop = 1;
            return rc;
        }
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

/* ---- pilot ----------------------------------------------------------------- */

/* Profiles command i with its output captured; returns its exit status or
 * a negative error. The profile goes to *prof. */
static int pilot_one(cmd_run *cr, size_t i, wl_profile *prof, char *err, size_t errlen)
{
    int line = cr->r->jobs[i].line;
    int fds[2] = {-1, -1};
    int saved[2] = {-1, -1};
    int rc = 0;

    for (int s = 0; s < 2; s++) {
        if (cr->o->output_dir) {
            fds[s] = open_job_file(cr->o->output_dir, line, s == 0 ? "out" : "err");
        } else {
            FILE *t = tmpfile();
            fds[s] = t ? dup(fileno(t)) : -1;
            if (fds[s] < 0)
                fds[s] = -errno;
            if (t)
                fclose(t);
        }
        if (fds[s] < 0) {
            rc = fds[s];
            snprintf(err, errlen, "cannot capture the pilot's output: %s", strerror(-rc));
            goto close_fds;
        }
    }
    fflush(stdout);
    fflush(stderr);
    fflush(cr->out);
    fflush(cr->err);
    saved[0] = dup(1);
    saved[1] = dup(2);
    if (saved[0] < 0 || saved[1] < 0) {
        /* without a way back, stdout would stay in the capture file */
        rc = -errno;
        snprintf(err, errlen, "cannot capture the pilot's output: %s", strerror(-rc));
        goto close_fds;
    }
    dup2(fds[0], 1);
    dup2(fds[1], 2);
    char *argv[] = {"/bin/sh", "-c", cr->cmds[i], NULL};
    wl_profile_opts po = {.hz = 200};
    double start = run__now();
    rc = wl_profile_command(argv, &po, prof);
    dup2(saved[0], 1);
    dup2(saved[1], 2);
    if (rc < 0) {
        snprintf(err, errlen, "cannot run /bin/sh: %s", strerror(-rc));
        goto close_fds;
    }
    if (!cr->o->output_dir) {
        replay(cr, 0, line, fds[0]);
        replay(cr, 1, line, fds[1]);
    }
    rc = prof->exit_status;
    char msg[64] = "";
    if (rc == 127)
        snprintf(msg, sizeof(msg), "exit status 127 (command not found)");
    else if (rc > 128)
        snprintf(msg, sizeof(msg), "killed by signal %d", rc - 128);
    else if (rc)
        snprintf(msg, sizeof(msg), "exit status %d", rc);
    run__job_end(cr->r, i, rc == 0 ? WL_JOB_OK : WL_JOB_FAILED, rc, msg, start - cr->t0,
                 start - cr->t0 + prof->wall_s);
    cr->r->jobs[i].pilot = true;
    run__progress_job(&cr->prog, rc == 0);

close_fds:
    for (int s = 0; s < 2; s++) {
        if (saved[s] >= 0)
            close(saved[s]);
        if (fds[s] >= 0)
            close(fds[s]);
    }
    return rc;
}

static int run_pilot(cmd_run *cr, size_t npilot, char *err, size_t errlen)
{
    wl_run_result *r = cr->r;
    double start = run__now();
    run__progress_note(&cr->prog, "pilot: %zu command%s one at a time under the profiler",
                       npilot, npilot == 1 ? "" : "s");
    for (size_t i = 0; i < npilot && !cr->stop; i++) {
        wl_profile prof;
        int rc = pilot_one(cr, i, &prof, err, errlen);
        if (rc < 0)
            return rc;
        r->pilot_jobs++;
        /* The longest pilot command stands for the batch. */
        if (!r->have_profile || prof.wall_s > r->profile.wall_s) {
            wl_profile_free(&r->profile);
            r->profile = prof;
            r->have_profile = true;
        } else {
            wl_profile_free(&prof);
        }
        if (rc != 0 && cr->o->fail_fast)
            cr->stop = 1;
    }
    r->pilot_wall_s = run__now() - start;
    if (r->have_profile)
        r->have_verdict = wl_classify(&r->profile, NULL, &r->verdict) == 0;
    return 0;
}

int wl_run_commands(char *const *cmds, const int *lines, size_t n, const wl_run_opts *opts,
                    wl_run_result *out, char *err, size_t errlen)
{
    cmd_run *cr = calloc(1, sizeof(*cr));
    int rc = run__result_init(out, WL_RUN_COMMANDS, n, "commands");
    if (!cr || rc < 0) {
        free(cr);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        out->jobs[i].line = lines[i];
    if (opts->workers < 0 || opts->limit < 0) {
        snprintf(err, errlen, "--workers and --limit must be at least 1");
        rc = -EINVAL;
        goto free_run;
    }
    if (opts->output_dir && mkdir(opts->output_dir, 0755) < 0 && errno != EEXIST) {
        rc = -errno;
        snprintf(err, errlen, "cannot create %s: %s", opts->output_dir, strerror(errno));
        goto free_run;
    }
    cr->cmds = cmds;
    cr->o = opts;
    cr->r = out;
    cr->out = opts->out ? opts->out : stdout;
    cr->err = opts->err ? opts->err : stderr;
    cr->t0 = run__now();
    run__progress_init(&cr->prog, opts, out, cr->t0);

    size_t npilot = opts->pilot > 0                ? (size_t)opts->pilot
                    : opts->pilot < 0              ? 0
                    : opts->workers > 0            ? 0
                                                   : RUN_DEFAULT_PILOT_COMMANDS;
    if (npilot > n)
        npilot = n;
    if (npilot > 0) {
        rc = run_pilot(cr, npilot, err, errlen);
        if (rc < 0)
            goto free_run;
    }
    run__choose(out, opts, n - out->pilot_jobs);
    if (npilot > 0)
        run__progress_note(&cr->prog, "pilot: %.2f s, %s -> %d at once", out->pilot_wall_s,
                           out->have_verdict ? wl_kind_name(out->verdict.kind) : "unclassified",
                           out->workers);

    rc = uv_loop_init(&cr->uv);
    if (rc < 0) {
        snprintf(err, errlen, "cannot create the event loop: %s", uv_strerror(rc));
        goto free_run;
    }
    rc = wl_loop_init(&cr->loop, &cr->uv, NULL);
    if (rc < 0) {
        snprintf(err, errlen, "cannot create the coroutine loop: %s", wl_strerror(rc));
        goto close_uv;
    }
    double main_t0 = run__now();
    if (!cr->stop && out->pilot_jobs < n) {
        cr->next = out->pilot_jobs;
        cr->end = n;
        run__progress_start(&cr->prog, &cr->uv);
        wl_run(&cr->loop, "main", main_task, cr, NULL);
        run__progress_stop(&cr->prog);
    }
    out->main_wall_s = run__now() - main_t0;
    out->total_wall_s = run__now() - cr->t0;
    rc = 0;
    wl_loop_close(&cr->loop);
    uv_run(&cr->uv, UV_RUN_DEFAULT);
close_uv:
    uv_loop_close(&cr->uv);
free_run:
    run__result_count(out);
    free(cr);
    return rc;
}
