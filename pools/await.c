/*
 * await.c -- coroutine awaits over the pools: wl_to_thread (asyncio's
 * to_thread) and wl_run_in_process (loop.run_in_executor with a process
 * pool), built on the scheduler's generic waiter (wlprof/sched.h).
 *
 * Each call keeps its operation state (waiter + pool request) in one heap
 * block, never on the task's stack: the pools write into the request while
 * the task is suspended, which would be wrong in the scheduler's
 * copy-stack mode. The pool's done callback runs on the loop thread and
 * wakes the waiter; the task resumes in the same loop iteration.
 *
 * Interruption (task cancelled, timeout scope expired): the waiter's cancel
 * hook cancels the pool request.
 *  - thread job still queued: it is taken off the queue, never runs, and
 *    the wait ends at once;
 *  - thread job running: a thread cannot be interrupted safely, so the
 *    wait lasts until the job returns (its arguments may live on the
 *    task's stack, which must stay valid); the call then reports the
 *    interruption and still hands back the job's result for release;
 *  - process job queued or running: it is cancelled, a running worker is
 *    SIGKILLed and replaced, and the wait ends within a loop turn.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wlprof/pools.h"
#include "wlprof/sched.h"

typedef struct thread_op {
    wl_waiter w;
    wl_tpool_req req;
} thread_op;

typedef struct process_op {
    wl_waiter w;
    wl_ppool_req req;
} process_op;

/* 0 when called from a task of the loop that owns pool_loop. */
static int check_task_loop(uv_loop_t *pool_loop)
{
    wl_loop *loop = wl_task_loop();

    if (!wl_task_current() || !loop)
        return -EINVAL;
    return wl_loop_uv(loop) == pool_loop ? 0 : -EINVAL;
}

static void thread_done(wl_tpool_req *req, int status)
{
    thread_op *op = req->data;
    wl_waiter_wake(&op->w, status);
}

static void thread_cancel(wl_waiter *w)
{
    thread_op *op = w->data;
    wl_tpool_cancel(&op->req); /* -EBUSY when running: we wait for it */
}

int wl_to_thread(wl_tpool *pool, wl_tpool_fn fn, void *arg, void **result)
{
    thread_op *op;
    int err;

    if (result)
        *result = NULL;
    if (!pool || !fn)
        return -EINVAL;
    err = check_task_loop(pool->loop_);
    if (err)
        return err;
    op = calloc(1, sizeof(*op));
    if (!op)
        return -ENOMEM;
    wl_waiter_init(&op->w);
    op->w.cancel = thread_cancel;
    op->w.data = op;
    op->req.data = op;
    err = wl_tpool_submit(pool, &op->req, fn, arg, thread_done);
    if (err)
        goto free_op;
    err = wl_waiter_wait(&op->w);
    if (op->w.status_ == 0 && result) /* fn ran: hand its value back */
        *result = op->req.result;
free_op:
    free(op);
    return err;
}

static void process_done(wl_ppool_req *req, int status)
{
    process_op *op = req->data;
    wl_waiter_wake(&op->w, status);
}

static void process_cancel(wl_waiter *w)
{
    process_op *op = w->data;
    wl_ppool_cancel(&op->req);
}

/* Submits through submit (bytes or JSON) and waits; fills out/err. */
static int process_wait(process_op *op, wl_bytes *out, char *err, size_t errlen)
{
    int status = wl_waiter_wait(&op->w);

    if (err && errlen)
        snprintf(err, errlen, "%s",
                 status ? (op->req.error[0] ? op->req.error : wl_strerror(status)) : "");
    if (status == 0 && out) {
        *out = op->req.result; /* ownership moves to the caller */
        memset(&op->req.result, 0, sizeof(op->req.result));
    }
    wl_ppool_req_cleanup(&op->req);
    return status;
}

static process_op *process_op_new(void)
{
    process_op *op = calloc(1, sizeof(*op));

    if (!op)
        return NULL;
    wl_waiter_init(&op->w);
    op->w.cancel = process_cancel;
    op->w.data = op;
    op->req.data = op;
    return op;
}

int wl_run_in_process(wl_ppool *pool, const char *name, const void *in, size_t inlen,
                      unsigned timeout_ms, wl_bytes *out, char *err, size_t errlen)
{
    process_op *op;
    int rc;

    if (out)
        memset(out, 0, sizeof(*out));
    if (!pool)
        return -EINVAL;
    rc = check_task_loop(pool->loop_);
    if (rc)
        return rc;
    op = process_op_new();
    if (!op)
        return -ENOMEM;
    rc = wl_ppool_submit(pool, &op->req, name, in, inlen, timeout_ms, process_done);
    if (rc == 0)
        rc = process_wait(op, out, err, errlen);
    else if (err && errlen)
        snprintf(err, errlen, "%s", wl_strerror(rc));
    free(op);
    return rc;
}

int wl_run_in_process_json(wl_ppool *pool, const char *name, json_t *args, unsigned timeout_ms,
                           json_t **result, char *err, size_t errlen)
{
    wl_bytes out = {0};
    json_error_t jerr;
    char *text;
    int rc;

    if (result)
        *result = NULL;
    if (!args)
        return -EINVAL;
    text = json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text)
        return -ENOMEM;
    rc = wl_run_in_process(pool, name, text, strlen(text), timeout_ms, &out, err, errlen);
    free(text);
    if (rc == 0 && result) {
        *result = json_loadb((const char *)out.data, out.len, JSON_DECODE_ANY, &jerr);
        if (!*result) {
            rc = -EPROTO;
            if (err && errlen)
                snprintf(err, errlen, "result is not JSON: %s", jerr.text);
        }
    }
    wl_bytes_free(&out);
    return rc;
}
