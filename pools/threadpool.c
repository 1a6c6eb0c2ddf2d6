/*
 * threadpool.c -- a dedicated thread pool whose jobs complete on a libuv
 * loop (the to_thread executor).
 *
 * Why not uv_queue_work: libuv's pool is shared by the whole process (file
 * system, DNS, user work) and has 4 threads by default; a few long blocking
 * calls there starve every fs request. This pool has its own threads.
 *
 * Data layout (everything below guarded by pool->mu_):
 *
 *   submit ──► head_ … tail_   pending FIFO, doubly linked (cancel unlinks)
 *                 │ a thread pops the head
 *                 ▼
 *              running (on a pool thread, outside the lock)
 *                 │
 *                 ▼
 *   done_head_ … done_tail_    finished or cancelled, waiting for the loop
 *                 │ one uv_async_t; async_pending_ makes the wakeups
 *                 ▼ coalesce: only the first job of a batch sends it
 *              done_cb on the loop thread (outside the lock)
 *
 *   idle_ ──► thread ──► thread    parked threads, a stack; each parks on
 *                                  its OWN condition variable
 *
 * Wake-up rule: a submit pops one parked thread and wakes exactly that one
 * (per-thread condition variables, no thundering herd, no lost wake-ups);
 * with none parked it starts a new thread while fewer than max_threads_
 * exist; otherwise the job waits for a busy thread to come back. So at most
 * one thread is woken per job, and threads exist only if work needed them.
 *
 * Request states: QUEUED -> RUNNING -> DONE -> FINISHED, or QUEUED ->
 * DONE (cancelled). Only QUEUED can be cancelled; a thread moves a request
 * out of QUEUED under the same lock, so a cancelled job never runs.
 *
 * Threading: pool threads touch only the queues under the lock and
 * uv_async_send (thread-safe). Everything else is loop-thread only. Pool
 * threads block every signal so that signals go to the application's
 * threads.
 *
 * Liveness: the async handle is referenced only while jobs are
 * outstanding or the pool closes, so an idle pool does not keep uv_run
 * going (as with uv_queue_work).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

enum { REQ_QUEUED = 1, REQ_RUNNING, REQ_DONE, REQ_FINISHED };

#define TPOOL_DEFAULT_QUEUE 65536u

struct wl_tpool_thread {
    wl_tpool *pool;
    pthread_t tid;
    pthread_cond_t cond; /* this thread parks here */
    int wake;            /* set by whoever popped it from idle_ */
    wl_tpool_thread *next_idle;
};

/* Appends req to the done list; caller holds the lock. Returns 1 when the
 * caller must uv_async_send (first entry of a batch). */
static int done_push_locked(wl_tpool *pool, wl_tpool_req *req, int status)
{
    req->state_ = REQ_DONE;
    req->status_ = status;
    req->next_ = NULL;
    if (pool->done_tail_)
        pool->done_tail_->next_ = req;
    else
        pool->done_head_ = req;
    pool->done_tail_ = req;
    if (pool->async_pending_)
        return 0;
    pool->async_pending_ = 1;
    return 1;
}

static void queue_unlink_locked(wl_tpool *pool, wl_tpool_req *req)
{
    if (req->prev_)
        req->prev_->next_ = req->next_;
    else
        pool->head_ = req->next_;
    if (req->next_)
        req->next_->prev_ = req->prev_;
    else
        pool->tail_ = req->prev_;
    req->next_ = req->prev_ = NULL;
    pool->queued_--;
}

static void *tpool_thread_main(void *arg)
{
    wl_tpool_thread *t = arg;
    wl_tpool *pool = t->pool;
    int send;

    pthread_mutex_lock(&pool->mu_);
    for (;;) {
        wl_tpool_req *req = pool->head_;
        if (req) {
            queue_unlink_locked(pool, req);
            req->state_ = REQ_RUNNING;
            pthread_mutex_unlock(&pool->mu_);
            req->result = req->fn_(req->arg_);
            pthread_mutex_lock(&pool->mu_);
            if (done_push_locked(pool, req, 0))
                uv_async_send(&pool->async_);
            continue;
        }
        if (pool->stopping_)
            break;
        t->wake = 0;
        t->next_idle = pool->idle_;
        pool->idle_ = t;
        while (!t->wake)
            pthread_cond_wait(&t->cond, &pool->mu_);
    }
    pool->nexited_++;
    send = pool->nexited_ == pool->nthreads_ && !pool->async_pending_;
    if (send)
        pool->async_pending_ = 1;
    pthread_mutex_unlock(&pool->mu_);
    if (send)
        uv_async_send(&pool->async_); /* lets the loop finish closing */
    return NULL;
}

/* Starts one more thread; caller holds the lock. All signals are blocked
 * around pthread_create so the new thread inherits a full mask. */
static int thread_start_locked(wl_tpool *pool)
{
    wl_tpool_thread *t = &pool->threads_[pool->nthreads_];
    sigset_t all;
    sigset_t old;
    int err;

    t->pool = pool;
    t->wake = 0;
    t->next_idle = NULL;
    err = pthread_cond_init(&t->cond, NULL);
    if (err)
        return -err;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    err = pthread_create(&t->tid, &pool->attr_, tpool_thread_main, t);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        pthread_cond_destroy(&t->cond);
        return -err;
    }
    pool->nthreads_++;
    return 0;
}

static void wake_one_locked(wl_tpool *pool)
{
    wl_tpool_thread *t = pool->idle_;
    pool->idle_ = t->next_idle;
    t->next_idle = NULL;
    t->wake = 1;
    pthread_cond_signal(&t->cond);
}

static void on_async_closed(uv_handle_t *h)
{
    wl_tpool *pool = h->data;
    wl_tpool_close_cb cb = pool->close_cb_;

    pthread_attr_destroy(&pool->attr_);
    pthread_mutex_destroy(&pool->mu_);
    free(pool->threads_);
    pool->threads_ = NULL;
    if (cb)
        cb(pool);
}

/* Loop thread: once closing, every job delivered and every thread gone,
 * join the threads and close the async handle. */
static void maybe_finish_close(wl_tpool *pool)
{
    int all_exited;

    if (pool->closing_ != 1 || pool->outstanding_)
        return;
    pthread_mutex_lock(&pool->mu_);
    all_exited = pool->nexited_ == pool->nthreads_;
    pthread_mutex_unlock(&pool->mu_);
    if (!all_exited)
        return;
    for (unsigned i = 0; i < pool->nthreads_; i++) {
        pthread_join(pool->threads_[i].tid, NULL);
        pthread_cond_destroy(&pool->threads_[i].cond);
    }
    pool->closing_ = 2;
    uv_close((uv_handle_t *)&pool->async_, on_async_closed);
}

static void on_async(uv_async_t *h)
{
    wl_tpool *pool = h->data;
    wl_tpool_req *req;

    pthread_mutex_lock(&pool->mu_);
    req = pool->done_head_;
    pool->done_head_ = pool->done_tail_ = NULL;
    pool->async_pending_ = 0;
    pthread_mutex_unlock(&pool->mu_);

    while (req) {
        wl_tpool_req *next = req->next_; /* done_cb may free req */
        req->state_ = REQ_FINISHED;
        req->next_ = NULL;
        pool->outstanding_--;
        if (pool->outstanding_ == 0 && !pool->closing_)
            uv_unref((uv_handle_t *)&pool->async_);
        req->done_(req, req->status_);
        req = next;
    }
    maybe_finish_close(pool);
}

int wl_tpool_init(uv_loop_t *loop, wl_tpool *pool, const wl_tpool_opts *opts)
{
    unsigned max_threads = opts && opts->threads ? opts->threads : 4 * wl__online_cpus();
    int err;

    if (!loop || !pool)
        return -EINVAL;
    memset(pool, 0, sizeof(*pool));
    pool->loop_ = loop;
    pool->max_threads_ = max_threads;
    pool->max_queue_ = opts && opts->max_queue ? opts->max_queue : TPOOL_DEFAULT_QUEUE;
    pool->threads_ = calloc(max_threads, sizeof(*pool->threads_));
    if (!pool->threads_)
        return -ENOMEM;
    err = -pthread_attr_init(&pool->attr_);
    if (err)
        goto free_threads;
    if (opts && opts->stack_size) {
        err = -pthread_attr_setstacksize(&pool->attr_, opts->stack_size);
        if (err)
            goto destroy_attr;
    }
    err = -pthread_mutex_init(&pool->mu_, NULL);
    if (err)
        goto destroy_attr;
    err = uv_async_init(loop, &pool->async_, on_async);
    if (err)
        goto destroy_mutex;
    pool->async_.data = pool;
    uv_unref((uv_handle_t *)&pool->async_);
    return 0;

destroy_mutex:
    pthread_mutex_destroy(&pool->mu_);
destroy_attr:
    pthread_attr_destroy(&pool->attr_);
free_threads:
    free(pool->threads_);
    pool->threads_ = NULL;
    return err;
}

int wl_tpool_submit(wl_tpool *pool, wl_tpool_req *req, wl_tpool_fn fn, void *arg,
                    wl_tpool_done_cb done)
{
    int err = 0;

    if (!pool || !req || !fn || !done)
        return -EINVAL;
    pthread_mutex_lock(&pool->mu_);
    if (pool->closing_) {
        err = -ESHUTDOWN;
        goto unlock;
    }
    if (pool->queued_ >= pool->max_queue_) {
        err = -EAGAIN;
        goto unlock;
    }
    /* A thread must exist to take the job: wake a parked one, or start one
     * (a failed start is fatal only when no thread exists at all). */
    if (!pool->idle_ && pool->nthreads_ < pool->max_threads_) {
        err = thread_start_locked(pool);
        if (err && pool->nthreads_ > 0)
            err = 0;
        if (err)
            goto unlock;
    }
    req->pool_ = pool;
    req->fn_ = fn;
    req->arg_ = arg;
    req->done_ = done;
    req->result = NULL;
    req->status_ = 0;
    req->state_ = REQ_QUEUED;
    req->next_ = NULL;
    req->prev_ = pool->tail_;
    if (pool->tail_)
        pool->tail_->next_ = req;
    else
        pool->head_ = req;
    pool->tail_ = req;
    pool->queued_++;
    if (pool->idle_)
        wake_one_locked(pool);
unlock:
    pthread_mutex_unlock(&pool->mu_);
    if (!err && pool->outstanding_++ == 0 && !pool->closing_)
        uv_ref((uv_handle_t *)&pool->async_);
    return err;
}

int wl_tpool_cancel(wl_tpool_req *req)
{
    wl_tpool *pool;
    int err = -EBUSY;

    if (!req || !req->pool_)
        return -EINVAL;
    pool = req->pool_;
    pthread_mutex_lock(&pool->mu_);
    if (req->state_ == REQ_QUEUED) {
        queue_unlink_locked(pool, req);
        if (done_push_locked(pool, req, -ECANCELED))
            uv_async_send(&pool->async_);
        err = 0;
    }
    pthread_mutex_unlock(&pool->mu_);
    return err;
}

int wl_tpool_close(wl_tpool *pool, wl_pool_close_mode mode, wl_tpool_close_cb close_cb)
{
    if (!pool || pool->closing_)
        return -EINVAL;
    pool->closing_ = 1;
    pool->close_cb_ = close_cb;
    uv_ref((uv_handle_t *)&pool->async_);
    pthread_mutex_lock(&pool->mu_);
    pool->stopping_ = 1;
    if (mode == WL_POOL_CLOSE_CANCEL) {
        while (pool->head_) {
            wl_tpool_req *req = pool->head_;
            queue_unlink_locked(pool, req);
            done_push_locked(pool, req, -ECANCELED);
        }
    }
    while (pool->idle_)
        wake_one_locked(pool);
    pool->async_pending_ = 1;
    pthread_mutex_unlock(&pool->mu_);
    /* Always go through the loop once: close_cb never runs re-entrantly. */
    uv_async_send(&pool->async_);
    return 0;
}

unsigned wl_tpool_threads(const wl_tpool *pool)
{
    return pool->nthreads_;
}
