/*
 * threadpool.c -- a dedicated thread pool whose jobs complete on a libuv
 * loop (the to_thread executor).
 *
 * Why not uv_queue_work: libuv's pool is shared by the whole process (file
 * system, DNS, user work) and has 4 threads by default; a few long blocking
 * calls there starve every fs request. This pool has its own threads.
 *
 * Data layout (everything below guarded by pool->mu_, except the staged
 * list, which only the loop thread touches):
 *
 *   submit ──► queue_          pending FIFO (util's wl__q_*: cancel unlinks)
 *     │           │ a thread pops the head
 *     │           ▼
 *     │        running (on a pool thread, outside the lock)
 *     │           │
 *     │           ▼
 *     │     doneq_             finished or cancelled, waiting for the loop
 *     │           │ one uv_async_t; async_pending_ makes the wakeups
 *     │           ▼ coalesce: only the first job of a batch sends it
 *     │        done_cb on the loop thread (outside the lock)
 *     │           │ a done_cb that submits again (the usual pattern)
 *     └── stagedq_: jobs submitted while a batch of
 *                 completions is delivered; appended to the FIFO in one
 *                 lock hold when the batch ends (or every STAGE_FLUSH jobs)
 *
 *   idle_ ──► thread ──► thread    parked threads, a stack; each parks on
 *                                  its OWN condition variable
 *
 * Wake-up rule: wake only as many threads as there are jobs no thread is
 * already coming for. waking_ counts threads that were signalled (or
 * started) and have not yet taken the lock to look for work; while
 * queued_ > waking_ a parked thread is popped and signalled (per-thread
 * condition variables: no thundering herd, no lost wake-ups), or a new
 * thread started while fewer than max_threads_ exist; otherwise the job
 * waits for a busy thread to come back. Signals are sent after the lock is
 * released, so the woken thread does not block on the mutex its waker
 * holds. A thread that finishes a job takes the next one in the same lock
 * hold that publishes the finished one.
 *
 * Why (measured on the no-op benchmark, bench/bench_tpool.c, 2 vCPUs,
 * CPU time and context switches from perf stat, 600 k jobs): waking one
 * thread per submit, each woken thread then blocking on the submitter's
 * mutex, cost 0.15 context switches per job against libuv's 0.05; the
 * batch flush and the waking_ count leave a thread woken only for work no
 * one else will pick up.
 *
 * Request states: QUEUED -> RUNNING -> DONE -> FINISHED, or QUEUED ->
 * DONE (cancelled); STAGED is QUEUED before it reached the FIFO. Only
 * QUEUED/STAGED can be cancelled; a thread moves a request out of QUEUED
 * under the same lock, so a cancelled job never runs.
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

enum { REQ_QUEUED = 1, REQ_RUNNING, REQ_DONE, REQ_FINISHED, REQ_STAGED };

#define REQ_OF(n) wl__q_data(n, wl_tpool_req, qnode_)

#define TPOOL_DEFAULT_QUEUE 65536u
#define STAGE_FLUSH 64u /* staged jobs wait for at most this many done_cbs */
#define WAKE_BATCH 16   /* threads signalled after unlocking; more under the lock */

struct wl_tpool_thread {
    wl_tpool *pool;
    pthread_t tid;
    pthread_cond_t cond; /* this thread parks here */
    int wake;            /* set by whoever popped it from idle_ */
    wl_tpool_thread *next_idle;
};

/* Threads to signal once the lock is released. */
typedef struct wake_list {
    wl_tpool_thread *t[WAKE_BATCH];
    int n;
} wake_list;

/* Appends req to the done list; caller holds the lock. Returns 1 when the
 * caller must uv_async_send (first entry of a batch). */
static int done_push_locked(wl_tpool *pool, wl_tpool_req *req, int status)
{
    req->state_ = REQ_DONE;
    req->status_ = status;
    wl__q_push(&pool->doneq_, &req->qnode_);
    if (pool->async_pending_)
        return 0;
    pool->async_pending_ = 1;
    return 1;
}

static void queue_unlink_locked(wl_tpool *pool, wl_tpool_req *req)
{
    wl__q_remove(&req->qnode_);
    pool->queued_--;
}

static void *tpool_thread_main(void *arg)
{
    wl_tpool_thread *t = arg;
    wl_tpool *pool = t->pool;
    int send = 0;

    pthread_mutex_lock(&pool->mu_);
    pool->waking_--; /* counted when started */
    for (;;) {
        if (!wl__q_empty(&pool->queue_)) {
            wl_tpool_req *req = REQ_OF(pool->queue_.next);
            queue_unlink_locked(pool, req);
            req->state_ = REQ_RUNNING;
            pthread_mutex_unlock(&pool->mu_);
            if (send) /* the previous job's completion, outside the lock */
                uv_async_send(&pool->async_);
            req->result = req->fn_(req->arg_);
            pthread_mutex_lock(&pool->mu_);
            send = done_push_locked(pool, req, 0);
            continue;
        }
        if (send) { /* never park on an unannounced completion */
            pthread_mutex_unlock(&pool->mu_);
            uv_async_send(&pool->async_);
            send = 0;
            pthread_mutex_lock(&pool->mu_);
            continue;
        }
        if (pool->stopping_)
            break;
        t->wake = 0;
        t->next_idle = pool->idle_;
        pool->idle_ = t;
        while (!t->wake)
            pthread_cond_wait(&t->cond, &pool->mu_);
        pool->waking_--;
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
    pool->waking_++; /* before it can run: it decrements on its first lock */
    err = pthread_create(&t->tid, &pool->attr_, tpool_thread_main, t);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        pool->waking_--;
        pthread_cond_destroy(&t->cond);
        return -err;
    }
    pool->nthreads_++;
    return 0;
}

/* Pops a parked thread and marks it woken; the signal goes out through wl
 * after the unlock (or now, when wl is full). */
static void wake_one_locked(wl_tpool *pool, wake_list *wl)
{
    wl_tpool_thread *t = pool->idle_;
    pool->idle_ = t->next_idle;
    t->next_idle = NULL;
    t->wake = 1;
    pool->waking_++;
    pool->wakeups_++;
    if (wl->n < WAKE_BATCH)
        wl->t[wl->n++] = t;
    else
        pthread_cond_signal(&t->cond);
}

/* Caller released the lock. A thread's condition variable lives until the
 * loop thread joins it, and every waker is the loop thread. */
static void wake_list_send(wake_list *wl)
{
    for (int i = 0; i < wl->n; i++)
        pthread_cond_signal(&wl->t[i]->cond);
    wl->n = 0;
}

/* Brings threads to the queued jobs no thread is coming for yet: a parked
 * one, else a new one. Caller holds the lock. A failed start is not an
 * error here: jobs wait for the threads that exist (submit makes sure one
 * does). */
static void kick_locked(wl_tpool *pool, wake_list *wl)
{
    while (pool->queued_ > pool->waking_) {
        if (pool->idle_)
            wake_one_locked(pool, wl);
        else if (pool->nthreads_ >= pool->max_threads_ || thread_start_locked(pool) != 0)
            break;
    }
}

/* Moves the staged jobs to the FIFO in one lock hold (loop thread). */
static void stage_flush_locked(wl_tpool *pool, wake_list *wl)
{
    if (wl__q_empty(&pool->stagedq_))
        return;
    for (wl_qnode *n = pool->stagedq_.next; n != &pool->stagedq_; n = n->next)
        REQ_OF(n)->state_ = REQ_QUEUED;
    wl__q_splice(&pool->queue_, &pool->stagedq_);
    pool->queued_ += pool->staged_;
    pool->staged_ = 0;
    kick_locked(pool, wl);
}

static void stage_flush(wl_tpool *pool)
{
    wake_list wl = {.n = 0};
    pthread_mutex_lock(&pool->mu_);
    stage_flush_locked(pool, &wl);
    pthread_mutex_unlock(&pool->mu_);
    wake_list_send(&wl);
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
    wl_qnode batch;

    pthread_mutex_lock(&pool->mu_);
    wl__q_move(&pool->doneq_, &batch);
    pool->async_pending_ = 0;
    pthread_mutex_unlock(&pool->mu_);

    pool->delivering_ = 1;
    /* Walked without unlinking: a delivered req's links are stale until it
     * is submitted again (which relinks it), and nothing reads them. */
    for (wl_qnode *n = batch.next, *next; n != &batch; n = next) {
        wl_tpool_req *req = REQ_OF(n);
        next = n->next; /* done_cb may free or resubmit req */
        req->state_ = REQ_FINISHED;
        pool->outstanding_--;
        if (pool->outstanding_ == 0 && !pool->closing_)
            uv_unref((uv_handle_t *)&pool->async_);
        req->done_(req, req->status_);
        if (pool->staged_ >= STAGE_FLUSH)
            stage_flush(pool);
    }
    pool->delivering_ = 0;
    stage_flush(pool);
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
    wl__q_init(&pool->queue_);
    wl__q_init(&pool->doneq_);
    wl__q_init(&pool->stagedq_);
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
    wake_list wl = {.n = 0};
    int err = 0;

    if (!pool || !req || !fn || !done)
        return -EINVAL;
    req->pool_ = pool;
    req->fn_ = fn;
    req->arg_ = arg;
    req->done_ = done;
    req->result = NULL;
    req->status_ = 0;
    if (pool->closing_) /* loop-thread state: no lock needed */
        return -ESHUTDOWN;
    if (pool->delivering_ && pool->nthreads_ > 0) {
        /* From a done_cb: staged, appended to the FIFO with the rest of the
         * batch. queued_ is only ever raised by this thread, so the bound
         * read without the lock can only be stale on the safe side. */
        if (__atomic_load_n(&pool->queued_, __ATOMIC_RELAXED) + pool->staged_ >= pool->max_queue_)
            return -EAGAIN;
        req->state_ = REQ_STAGED;
        wl__q_push(&pool->stagedq_, &req->qnode_);
        pool->staged_++;
        goto accepted;
    }
    pthread_mutex_lock(&pool->mu_);
    if (pool->queued_ + pool->staged_ >= pool->max_queue_) {
        err = -EAGAIN;
        goto unlock;
    }
    /* A thread must exist to take the job (a failed start is fatal only
     * when no thread exists at all). */
    if (pool->nthreads_ == 0) {
        err = thread_start_locked(pool);
        if (err)
            goto unlock;
    }
    req->state_ = REQ_QUEUED;
    wl__q_push(&pool->queue_, &req->qnode_);
    pool->queued_++;
    kick_locked(pool, &wl);
unlock:
    pthread_mutex_unlock(&pool->mu_);
    wake_list_send(&wl);
    if (err)
        return err;
accepted:
    if (pool->outstanding_++ == 0 && !pool->closing_)
        uv_ref((uv_handle_t *)&pool->async_);
    return 0;
}

int wl_tpool_cancel(wl_tpool_req *req)
{
    wl_tpool *pool;
    int err = -EBUSY;

    if (!req || !req->pool_)
        return -EINVAL;
    pool = req->pool_;
    if (req->state_ == REQ_STAGED) { /* loop thread: only it touches the staged list */
        wl__q_remove(&req->qnode_);
        pool->staged_--;
        pthread_mutex_lock(&pool->mu_);
        if (done_push_locked(pool, req, -ECANCELED))
            uv_async_send(&pool->async_);
        pthread_mutex_unlock(&pool->mu_);
        return 0;
    }
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
    wake_list wl = {.n = 0};

    if (!pool || pool->closing_)
        return -EINVAL;
    pool->closing_ = 1;
    pool->close_cb_ = close_cb;
    uv_ref((uv_handle_t *)&pool->async_);
    pthread_mutex_lock(&pool->mu_);
    stage_flush_locked(pool, &wl); /* staged jobs are queued jobs */
    pool->stopping_ = 1;
    if (mode == WL_POOL_CLOSE_CANCEL) {
        while (!wl__q_empty(&pool->queue_)) {
            wl_tpool_req *req = REQ_OF(pool->queue_.next);
            queue_unlink_locked(pool, req);
            done_push_locked(pool, req, -ECANCELED);
        }
    }
    while (pool->idle_)
        wake_one_locked(pool, &wl);
    pool->async_pending_ = 1;
    pthread_mutex_unlock(&pool->mu_);
    wake_list_send(&wl);
    /* Always go through the loop once: close_cb never runs re-entrantly. */
    uv_async_send(&pool->async_);
    return 0;
}

unsigned wl_tpool_threads(const wl_tpool *pool)
{
    return pool->nthreads_;
}

unsigned long wl_tpool_wakeups(const wl_tpool *pool)
{
    return __atomic_load_n(&pool->wakeups_, __ATOMIC_RELAXED);
}
