/*
 * tasks.c -- task mode: a task function over a list of inputs.
 *
 *   1. pilot: the first jobs run one after the other in a sacrificial
 *      worker process (pilot_proc.c), measured from outside: a job that
 *      crashes, exits or hangs there fails alone;
 *   2. classify the pilot's profile, choose executor and size (choose.c);
 *   3. main phase: one coroutine loop; `workers` worker tasks pull the next
 *      job index from a shared counter and run it under the executor:
 *        coroutine    call the async form directly (it awaits on the loop)
 *        thread pool  wl_to_thread(blocking form) on a dedicated wl_tpool
 *        process pool wl_run_in_process on a wl_ppool whose workers were
 *                     forked after the library was loaded; they find the
 *                     task through one registry entry, RUN_PROC_FN, that
 *                     calls the task this process was given.
 *      The workers run as members of one wl_group: under --halt now (or
 *      --fail-fast) the worker whose failure reaches the count returns it
 *      and the group cancels the others (their running jobs end as
 *      "cancelled", the rest are "not run"); --halt soon only stops new
 *      jobs; otherwise a worker records the failure and goes on.
 *
 * Bounds: --timeout is the pool's job timeout (the worker is killed and
 * replaced) or a wl_timeout scope around a coroutine job; a thread cannot
 * be stopped, so a thread-pool job past its timeout is recorded timed_out
 * when it returns. --retries runs a failed or timed-out job again.
 *
 * Signals (opts->handle_signals): the loop watches the self-pipe of
 * control.c; the first signal stops new jobs and is forwarded to every
 * process-pool worker; after the grace period (at once for coroutines and
 * threads, which cannot receive it) the main task is cancelled, which
 * cancels every running job (process-pool workers are killed).
 *
 * Memory: job inputs are borrowed from the caller; results are dropped
 * after their size is recorded (a task's output is its own business: files,
 * sockets); thread-pool job state lives on the worker task's stack, which
 * is a dedicated stack that stays put while the task waits.
 */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "wlprof/pools.h"

#define RUN_PROC_FN "wlprof.run.task"

typedef struct task_run {
    const wl_task_def *task;
    const wl_inputs *in;
    const wl_run_opts *o;
    wl_run_result *r;
    run_progress prog;
    double t0;
    uv_loop_t uv;
    wl_loop loop;
    wl_tpool tpool;
    wl_ppool ppool;
    int have_tpool;
    int have_ppool;
    size_t next;      /* next job index to start */
    size_t end;       /* one past the last job */
    size_t in_flight;
    int stop;         /* halt, or a signal: start no new job */
    size_t failures;  /* jobs failed for good (after retries) */
    wl_task *main;    /* the main phase's task, cancelled on a signal */
    uv_poll_t sigpoll;
    uv_timer_t grace;
    int have_sigpoll;
    int have_grace;
} task_run;

/* The task the process-pool workers run (set before they are forked). */
static const wl_task_def *proc_task;

static int proc_entry(const void *in, size_t inlen, wl_bytes *out)
{
    wl_bytes b = {.data = (uint8_t *)in, .len = inlen, .cap = inlen};
    if (!proc_task || !proc_task->blocking)
        return -ENOENT;
    return proc_task->blocking(&b, out);
}

typedef struct thread_job {
    const wl_task_def *task;
    const wl_bytes *in;
    wl_bytes out;
    int rc;
} thread_job;

static void *thread_entry(void *arg)
{
    thread_job *tj = arg;
    tj->rc = tj->task->blocking(tj->in, &tj->out);
    return NULL;
}

/* The one-line error of a failed job: the task's message, else the code's. */
static void job_error(int rc, const wl_bytes *out, const char *err, char *buf, size_t len)
{
    if (err && *err) {
        snprintf(buf, len, "%s", err);
    } else if (out->len > 0) {
        size_t n = out->len < len - 1 ? out->len : len - 1;
        memcpy(buf, out->data, n);
        buf[n] = '\0';
        for (char *p = buf; *p; p++)
            if (*p == '\n' || *p == '\r')
                *p = ' ';
    } else {
        snprintf(buf, len, "%s", rc < 0 ? wl_strerror(rc) : "failed");
    }
}

static void record(task_run *tr, size_t i, int rc, const wl_bytes *out, const char *err,
                   double start)
{
    char msg[256] = "";
    wl_job_state st = WL_JOB_OK;
    double end = wl__run_now();
    if (rc != 0) {
        st = (rc == WL_ECANCELED && tr->stop) || tr->r->signal ? WL_JOB_CANCELLED
             : rc == WL_ETIMEDOUT || rc == -ETIMEDOUT          ? WL_JOB_TIMED_OUT
                                                              : WL_JOB_FAILED;
        job_error(rc, out, err, msg, sizeof(msg));
    }
    /* A thread cannot be stopped: past its timeout it counts as timed out. */
    if (tr->o->timeout_s > 0 && end - start > tr->o->timeout_s && st != WL_JOB_CANCELLED)
        st = WL_JOB_TIMED_OUT;
    if (st == WL_JOB_TIMED_OUT)
        snprintf(msg, sizeof(msg), "timed out after %.3g s", tr->o->timeout_s);
    if (st == WL_JOB_CANCELLED && tr->r->signal)
        snprintf(msg, sizeof(msg), "cancelled by %s",
                 wl__run_signal_name(tr->r->signal) ? wl__run_signal_name(tr->r->signal) : "a signal");
    wl__run_job_end(tr->r, i, st, rc, st == WL_JOB_OK ? NULL : msg, start - tr->t0, end - tr->t0);
    tr->r->jobs[i].out_bytes = out->len;
}

/* The progress line, once per job (not per attempt). */
static void counted(task_run *tr, size_t i)
{
    wl_job_state st = tr->r->jobs[i].state;
    if (st != WL_JOB_CANCELLED)
        wl__run_progress_job(&tr->prog, st == WL_JOB_OK);
}

/* Runs job i once under the chosen executor (from a worker task). */
static int run_attempt(task_run *tr, size_t i)
{
    const wl_bytes *in = &tr->in->items[i];
    wl_bytes out = {0};
    char err[128] = "";
    double start = wl__run_now();
    int rc;

    tr->in_flight++;
    tr->prog.running = tr->in_flight;
    if (tr->in_flight > tr->r->max_in_flight)
        tr->r->max_in_flight = tr->in_flight;
    unsigned timeout_ms = tr->o->timeout_s > 0 ? (unsigned)ceil(tr->o->timeout_s * 1000) : 0;
    switch (tr->r->executor) {
    case WL_EXEC_COROUTINE: {
        wl_timeout t;
        int scoped = timeout_ms && wl_timeout_enter(&t, timeout_ms) == 0;
        rc = tr->task->async(in, &out);
        if (scoped && wl_timeout_exit(&t) == WL_ETIMEDOUT && rc != 0)
            rc = WL_ETIMEDOUT;
        break;
    }
    case WL_EXEC_THREAD_POOL: {
        thread_job tj = {.task = tr->task, .in = in, .rc = -ECANCELED};
        rc = wl_to_thread(&tr->tpool, thread_entry, &tj, NULL);
        if (rc == 0)
            rc = tj.rc;
        out = tj.out;
        break;
    }
    default:
        rc = wl_run_in_process(&tr->ppool, RUN_PROC_FN, in->data, in->len, timeout_ms, &out,
                               err, sizeof(err));
        break;
    }
    tr->in_flight--;
    tr->prog.running = tr->in_flight;
    record(tr, i, rc, &out, err, start);
    wl_bytes_free(&out);
    return rc;
}

/* Job i with its retries; 0 when it ended ok. */
static int run_job(task_run *tr, size_t i)
{
    int rc;
    do {
        rc = run_attempt(tr, i);
    } while (rc != 0 && !tr->stop && !wl_task_cancelled() &&
             wl__run_should_retry(tr->o, tr->r->jobs[i].state, tr->r->jobs[i].nattempts));
    counted(tr, i);
    return rc;
}

static int worker_task(void *arg, void **result)
{
    task_run *tr = arg;
    while (!tr->stop && tr->next < tr->end && !wl_task_cancelled()) {
        int rc = run_job(tr, tr->next++);
        wl_job_state st = tr->r->jobs[tr->next - 1].state;
        if (rc == 0 || st == WL_JOB_CANCELLED)
            continue;
        int halt = wl__run_halt_mode(tr->o);
        if (halt != WL_HALT_NEVER && ++tr->failures >= (size_t)wl__run_halt_after(tr->o)) {
            tr->stop = 1;
            tr->r->halted = true;
            if (halt == WL_HALT_NOW)
                return -EIO; /* the group cancels the other workers */
        }
    }
    return 0;
}

/* ---- signals ---------------------------------------------------------------- */

static void cancel_main(task_run *tr)
{
    if (tr->main)
        wl_task_cancel(tr->main);
}

static void on_grace(uv_timer_t *t)
{
    cancel_main(t->data);
}

static void on_signal(uv_poll_t *p, int status, int events)
{
    task_run *tr = p->data;
    wl__run_signals_drain();
    if (!wl__run_sig_first)
        return;
    if (tr->r->signal) { /* a second signal: no more grace */
        cancel_main(tr);
        return;
    }
    tr->r->signal = wl__run_sig_first;
    tr->stop = 1;
    if (tr->have_ppool) {
        pid_t pids[1024];
        int n = wl_ppool_worker_pids(&tr->ppool, pids, 1024);
        for (int k = 0; k < n && k < 1024; k++)
            kill(pids[k], tr->r->signal);
        uv_timer_start(&tr->grace, on_grace, (uint64_t)(wl__run_grace(tr->o) * 1000), 0);
    } else {
        cancel_main(tr);
    }
}

static int main_task(void *arg, void **result)
{
    task_run *tr = arg;
    tr->main = wl_task_current();
    wl_group g;
    wl_group_init(&g, NULL);
    for (int w = 0; w < tr->r->workers; w++) {
        int rc = wl_group_spawn(&g, NULL, "worker", worker_task, tr);
        if (rc < 0) {
            tr->stop = 1;
            break;
        }
    }
    return wl_group_wait(&g);
}

static int check_forms(const wl_task_def *t, const wl_run_opts *o, char *err, size_t errlen)
{
    if (o->workers < 0 || o->limit < 0) {
        snprintf(err, errlen, "--workers and --limit must be at least 1");
        return -EINVAL;
    }
    if (o->executor == WL_EXEC_COROUTINE && !t->async) {
        snprintf(err, errlen,
                 "task '%s' has no async form (%s_async): it cannot run on the coroutine loop; "
                 "use --executor thread or process",
                 t->name, t->name);
        return -ENOTSUP;
    }
    if ((o->executor == WL_EXEC_THREAD_POOL || o->executor == WL_EXEC_PROCESS_POOL) &&
        !t->blocking) {
        snprintf(err, errlen, "task '%s' has only an async form: use --executor coroutine",
                 t->name);
        return -ENOTSUP;
    }
    if (o->executor != WL_RUN_AUTO && o->executor != WL_EXEC_COROUTINE &&
        o->executor != WL_EXEC_THREAD_POOL && o->executor != WL_EXEC_PROCESS_POOL) {
        snprintf(err, errlen, "executor must be auto, coroutine, thread or process");
        return -EINVAL;
    }
    return 0;
}

static int start_pool(task_run *tr, char *err, size_t errlen)
{
    static int registered;
    int rc = 0;
    if (tr->r->executor == WL_EXEC_THREAD_POOL) {
        wl_tpool_opts to = {.threads = (unsigned)tr->r->workers};
        rc = wl_tpool_init(&tr->uv, &tr->tpool, &to);
        tr->have_tpool = rc == 0;
    } else if (tr->r->executor == WL_EXEC_PROCESS_POOL) {
        if (!registered) {
            rc = wl_ppool_register(RUN_PROC_FN, proc_entry);
            registered = rc == 0;
        }
        proc_task = tr->task;
        wl_ppool_opts po = {.workers = (unsigned)tr->r->workers};
        if (rc == 0)
            rc = wl_ppool_init(&tr->uv, &tr->ppool, &po);
        tr->have_ppool = rc == 0;
    }
    if (rc < 0)
        snprintf(err, errlen, "cannot start the %s: %s",
                 wl_executor_name((wl_executor)tr->r->executor), wl_strerror(rc));
    return rc;
}

/* The loop the run lives on: libuv's, the coroutine loop on it, the
 * signal watch (with handle_signals) and the grace timer. Returns 0, or a
 * negative errno with err set and nothing left open. */
static int tasks_open_loop(task_run *tr, char *err, size_t errlen)
{
    int rc = uv_loop_init(&tr->uv);
    if (rc < 0) {
        snprintf(err, errlen, "cannot create the event loop: %s", wl_strerror(rc));
        return rc;
    }
    rc = wl_loop_init(&tr->loop, &tr->uv, NULL);
    if (rc < 0) {
        snprintf(err, errlen, "cannot create the coroutine loop: %s", wl_strerror(rc));
        uv_loop_close(&tr->uv);
        return rc;
    }
    if (tr->o->handle_signals) {
        int fd = wl__run_signals_install();
        if (fd >= 0 && uv_poll_init(&tr->uv, &tr->sigpoll, fd) == 0) {
            tr->sigpoll.data = tr;
            uv_poll_start(&tr->sigpoll, UV_READABLE, on_signal);
            uv_unref((uv_handle_t *)&tr->sigpoll);
            tr->have_sigpoll = 1;
        }
    }
    uv_timer_init(&tr->uv, &tr->grace);
    tr->grace.data = tr;
    uv_unref((uv_handle_t *)&tr->grace);
    tr->have_grace = 1;
    return 0;
}

/* Undoes tasks_open_loop once nothing else runs on the loop. */
static void tasks_close_loop(task_run *tr)
{
    if (tr->have_sigpoll)
        uv_close((uv_handle_t *)&tr->sigpoll, NULL);
    if (tr->have_grace)
        uv_close((uv_handle_t *)&tr->grace, NULL);
    wl_loop_close(&tr->loop);
    uv_run(&tr->uv, UV_RUN_DEFAULT);
    uv_loop_close(&tr->uv);
}

/* Pilot jobs: only for auto (a user's choice needs no measurement) unless
 * asked for explicitly; at most the n jobs there are. */
static size_t task_pilot_count(const wl_run_opts *opts, size_t n)
{
    size_t npilot = opts->pilot > 0                 ? (size_t)opts->pilot
                    : opts->pilot < 0               ? 0
                    : opts->executor == WL_RUN_AUTO ? RUN_DEFAULT_PILOT_TASKS
                                                    : 0;
    return npilot > n ? n : npilot;
}

/* Runs npilot jobs in worker processes (wl__run_pilot_tasks), counts them in
 * the progress and the failures, then chooses the main phase's executor
 * and size (wl__run_choose). Returns 0 or a negative errno with err set. */
static int tasks_pilot_and_choose(task_run *tr, size_t npilot, char *err, size_t errlen)
{
    wl_run_result *out = tr->r;
    if (npilot > 0) {
        wl__run_progress_note(&tr->prog, "pilot: %zu job%s in worker processes, the first alone",
                           npilot, npilot == 1 ? "" : "s");
        int rc = wl__run_pilot_tasks(tr->task, tr->in, npilot, tr->o, out, tr->t0, &tr->stop, err,
                                  errlen);
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < out->pilot_jobs; i++)
            if (out->jobs[i].state != WL_JOB_CANCELLED)
                wl__run_progress_job(&tr->prog, out->jobs[i].state == WL_JOB_OK);
        for (size_t i = 0; i < out->pilot_jobs; i++)
            if (out->jobs[i].state != WL_JOB_OK && out->jobs[i].state != WL_JOB_CANCELLED)
                tr->failures++;
    }
    wl__run_choose(out, tr->o, tr->in->n - out->pilot_jobs);
    if (npilot > 0) {
        wl__run_progress_note(&tr->prog, "pilot: %zu jobs in %.2f s (%.2f jobs/s), %s -> %s, %d at once",
                           out->pilot_jobs, out->pilot_wall_s,
                           out->pilot_wall_s > 0 ? (double)out->pilot_jobs / out->pilot_wall_s : 0,
                           out->have_verdict ? wl_kind_name(out->verdict.kind) : "unclassified",
                           wl_executor_name((wl_executor)out->executor), out->workers);
    }
    return 0;
}

/* The jobs after the pilot's on the chosen executor, unless a signal or
 * --halt stopped the run; then closes the pools. Fills the phase's wall
 * times. Returns 0 or a negative errno (the pool did not start) with err
 * set. */
static int tasks_main_phase(task_run *tr, char *err, size_t errlen)
{
    wl_run_result *out = tr->r;
    double main_t0 = wl__run_now();
    if (wl__run_sig_first && tr->o->handle_signals && !out->signal)
        out->signal = wl__run_sig_first; /* came between the pilot and now */
    if (!tr->stop && !out->signal && out->pilot_jobs < tr->in->n) {
        int rc = start_pool(tr, err, errlen);
        if (rc < 0)
            return rc;
        tr->next = out->pilot_jobs;
        tr->end = tr->in->n;
        wl__run_progress_start(&tr->prog, &tr->uv);
        wl_run(&tr->loop, "main", main_task, tr, NULL);
        wl__run_progress_stop(&tr->prog);
    }
    out->main_wall_s = wl__run_now() - main_t0;
    out->total_wall_s = wl__run_now() - tr->t0;
    if (tr->have_tpool)
        wl_tpool_close(&tr->tpool, WL_POOL_CLOSE_CANCEL, NULL);
    if (tr->have_ppool)
        wl_ppool_close(&tr->ppool, WL_POOL_CLOSE_CANCEL, NULL);
    uv_run(&tr->uv, UV_RUN_DEFAULT);
    return 0;
}

int wl_run_tasks(const wl_task_def *task, const wl_inputs *inputs, const wl_run_opts *opts,
                 wl_run_result *out, char *err, size_t errlen)
{
    task_run *tr = calloc(1, sizeof(*tr));
    char what[512];
    int rc;

    snprintf(what, sizeof(what), "task %s", task->name);
    rc = wl__run_result_init(out, WL_RUN_TASKS, inputs->n, what);
    if (!tr || rc < 0) {
        free(tr);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    out->has_async = task->async != NULL;
    out->has_blocking = task->blocking != NULL;
    for (size_t i = 0; i < inputs->n; i++)
        out->jobs[i].line = inputs->lines[i];
    rc = check_forms(task, opts, err, errlen);
    if (rc < 0)
        goto free_run;

    tr->task = task;
    tr->in = inputs;
    tr->o = opts;
    tr->r = out;
    tr->t0 = wl__run_now();
    wl__run_progress_init(&tr->prog, opts, out, tr->t0);
    rc = tasks_open_loop(tr, err, errlen);
    if (rc < 0)
        goto free_run;
    rc = tasks_pilot_and_choose(tr, task_pilot_count(opts, inputs->n), err, errlen);
    if (rc == 0)
        rc = tasks_main_phase(tr, err, errlen);
    tasks_close_loop(tr);
free_run:
    wl__run_result_count(out);
    free(tr);
    return rc;
}
