/*
 * tasks.c -- task mode: a task function over a list of inputs.
 *
 *   1. pilot: the first jobs run one after the other on this thread (the
 *      blocking form; the async form on a loop when it is the only one),
 *      measured by pilot.c;
 *   2. classify the pilot's profile, choose executor and size (choose.c);
 *   3. main phase: one coroutine loop; `workers` worker tasks pull the next
 *      job index from a shared counter and run it under the executor:
 *        coroutine    call the async form directly (it awaits on the loop)
 *        thread pool  wl_to_thread(blocking form) on a dedicated wl_tpool
 *        process pool wl_run_in_process on a wl_ppool whose workers were
 *                     forked after the library was loaded; they find the
 *                     task through one registry entry, RUN_PROC_FN, that
 *                     calls the task this process was given.
 *      The workers run as members of one wl_group: with --fail-fast a
 *      worker whose job failed returns the failure and the group cancels
 *      the others (their running jobs end as "cancelled", the rest are
 *      "not run"); otherwise a worker records the failure and goes on.
 *
 * Memory: job inputs are borrowed from the caller; results are dropped
 * after their size is recorded (a task's output is its own business: files,
 * sockets); thread-pool job state lives on the worker task's stack, which
 * is a dedicated stack that stays put while the task waits.
 */
#include "internal.h"

#include <errno.h>
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
    int stop;         /* fail-fast triggered */
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
    if (rc != 0) {
        st = rc == WL_ECANCELED && tr->stop ? WL_JOB_CANCELLED : WL_JOB_FAILED;
        job_error(rc, out, err, msg, sizeof(msg));
    }
    run__job_end(tr->r, i, st, rc, st == WL_JOB_OK ? NULL : msg, start - tr->t0,
                 run__now() - tr->t0);
    tr->r->jobs[i].out_bytes = out->len;
    if (st != WL_JOB_CANCELLED)
        run__progress_job(&tr->prog, st == WL_JOB_OK);
}

/* Runs job i under the chosen executor (from a worker task). */
static int run_job(task_run *tr, size_t i)
{
    const wl_bytes *in = &tr->in->items[i];
    wl_bytes out = {0};
    char err[128] = "";
    double start = run__now();
    int rc;

    tr->in_flight++;
    tr->prog.running = tr->in_flight;
    if (tr->in_flight > tr->r->max_in_flight)
        tr->r->max_in_flight = tr->in_flight;
    switch (tr->r->executor) {
    case WL_EXEC_COROUTINE:
        rc = tr->task->async(in, &out);
        break;
    case WL_EXEC_THREAD_POOL: {
        thread_job tj = {.task = tr->task, .in = in, .rc = -ECANCELED};
        rc = wl_to_thread(&tr->tpool, thread_entry, &tj, NULL);
        if (rc == 0)
            rc = tj.rc;
        out = tj.out;
        break;
    }
    default:
        rc = wl_run_in_process(&tr->ppool, RUN_PROC_FN, in->data, in->len, 0, &out, err,
                               sizeof(err));
        break;
    }
    tr->in_flight--;
    tr->prog.running = tr->in_flight;
    record(tr, i, rc, &out, err, start);
    wl_bytes_free(&out);
    return rc;
}

static int worker_task(void *arg, void **result)
{
    task_run *tr = arg;
    while (!tr->stop && tr->next < tr->end && !wl_task_cancelled()) {
        int rc = run_job(tr, tr->next++);
        if (rc != 0 && tr->o->fail_fast) {
            tr->stop = 1;
            return rc; /* the group cancels the other workers */
        }
    }
    return 0;
}

static int main_task(void *arg, void **result)
{
    task_run *tr = arg;
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

/* The pilot's jobs one at a time, each a direct call of fn (the blocking
 * form on this thread, or the async form from a task). */
static void pilot_sequence(task_run *tr, wl_job_fn fn)
{
    for (; tr->next < tr->end && !tr->stop; tr->next++) {
        wl_bytes out = {0};
        double start = run__now();
        int rc = fn(&tr->in->items[tr->next], &out);
        record(tr, tr->next, rc, &out, NULL, start);
        wl_bytes_free(&out);
        if (rc != 0 && tr->o->fail_fast)
            tr->stop = 1;
    }
}

/* Async-only pilot: the sequence inside one task on the loop. */
static int pilot_async_task(void *arg, void **result)
{
    task_run *tr = arg;
    pilot_sequence(tr, tr->task->async);
    return 0;
}

static int run_pilot(task_run *tr, size_t npilot, char *err, size_t errlen)
{
    run_sampler s;
    wl_run_result *r = tr->r;
    int rc;

    run__progress_note(&tr->prog, "pilot: %zu job%s one at a time, measuring", npilot,
                       npilot == 1 ? "" : "s");
    tr->next = 0;
    tr->end = npilot;
    rc = run__sampler_start(&s);
    if (rc < 0) {
        snprintf(err, errlen, "cannot start the pilot sampler: %s", strerror(-rc));
        return rc;
    }
    if (tr->task->blocking) {
        pilot_sequence(tr, tr->task->blocking);
    } else {
        wl_run(&tr->loop, "pilot", pilot_async_task, tr, NULL);
    }
    run__sampler_stop(&s);
    r->pilot_jobs = tr->next;
    r->pilot_wall_s = s.t1 - s.t0;
    for (size_t i = 0; i < r->pilot_jobs; i++)
        r->jobs[i].pilot = true;

    char label[128];
    snprintf(label, sizeof(label), "pilot of task %s", tr->task->name);
    rc = run__sampler_profile(&s, label, &r->profile);
    if (rc < 0) {
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    r->have_profile = true;
    rc = wl_classify(&r->profile, NULL, &r->verdict);
    r->have_verdict = rc == 0;
    return 0;
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

int wl_run_tasks(const wl_task_def *task, const wl_inputs *inputs, const wl_run_opts *opts,
                 wl_run_result *out, char *err, size_t errlen)
{
    task_run *tr = calloc(1, sizeof(*tr));
    char what[512];
    int rc;

    snprintf(what, sizeof(what), "task %s", task->name);
    rc = run__result_init(out, WL_RUN_TASKS, inputs->n, what);
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
    tr->t0 = run__now();
    run__progress_init(&tr->prog, opts, out, tr->t0);
    rc = uv_loop_init(&tr->uv);
    if (rc < 0) {
        snprintf(err, errlen, "cannot create the event loop: %s", wl_strerror(rc));
        goto free_run;
    }
    rc = wl_loop_init(&tr->loop, &tr->uv, NULL);
    if (rc < 0) {
        snprintf(err, errlen, "cannot create the coroutine loop: %s", wl_strerror(rc));
        goto close_uv;
    }

    /* Pilot: only for auto (a user's choice needs no measurement) unless
     * asked for explicitly. */
    size_t npilot = opts->pilot > 0    ? (size_t)opts->pilot
                    : opts->pilot < 0  ? 0
                    : opts->executor == WL_RUN_AUTO ? RUN_DEFAULT_PILOT_TASKS
                                                    : 0;
    if (npilot > inputs->n)
        npilot = inputs->n;
    if (npilot > 0) {
        rc = run_pilot(tr, npilot, err, errlen);
        if (rc < 0)
            goto close_loop;
    }
    run__choose(out, opts, inputs->n - out->pilot_jobs);
    if (npilot > 0) {
        run__progress_note(&tr->prog, "pilot: %zu jobs in %.2f s (%.2f jobs/s), %s -> %s, %d at once",
                           out->pilot_jobs, out->pilot_wall_s,
                           out->pilot_wall_s > 0 ? (double)out->pilot_jobs / out->pilot_wall_s : 0,
                           out->have_verdict ? wl_kind_name(out->verdict.kind) : "unclassified",
                           wl_executor_name((wl_executor)out->executor), out->workers);
    }

    double main_t0 = run__now();
    if (!tr->stop && out->pilot_jobs < inputs->n) {
        rc = start_pool(tr, err, errlen);
        if (rc < 0)
            goto close_loop;
        tr->next = out->pilot_jobs;
        tr->end = inputs->n;
        run__progress_start(&tr->prog, &tr->uv);
        wl_run(&tr->loop, "main", main_task, tr, NULL);
        run__progress_stop(&tr->prog);
    }
    out->main_wall_s = run__now() - main_t0;
    out->total_wall_s = run__now() - tr->t0;
    rc = 0;

    if (tr->have_tpool)
        wl_tpool_close(&tr->tpool, WL_POOL_CLOSE_CANCEL, NULL);
    if (tr->have_ppool)
        wl_ppool_close(&tr->ppool, WL_POOL_CLOSE_CANCEL, NULL);
    uv_run(&tr->uv, UV_RUN_DEFAULT);
close_loop:
    wl_loop_close(&tr->loop);
    uv_run(&tr->uv, UV_RUN_DEFAULT);
close_uv:
    uv_loop_close(&tr->uv);
free_run:
    run__result_count(out);
    free(tr);
    return rc;
}
