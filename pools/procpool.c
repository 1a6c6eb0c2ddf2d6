/*
 * procpool.c -- the parent side of the process pool: forks workers once,
 * sends them jobs over socketpairs watched by the libuv loop, and survives
 * their deaths (the run_in_executor executor for CPU-bound work).
 *
 * Data layout (loop thread only; no locks):
 *
 *   pool ─ head_ … tail_          queued jobs (doubly linked: cancel)
 *        ─ dhead_ … dtail_        cancelled jobs whose done_cb is pending
 *        ─ workers_ ⇄ worker ⇄ …  every forked worker not yet reaped
 *
 *   worker ─ fd       parent end of a SOCK_STREAM socketpair
 *          ─ poll     uv_poll_t on fd: READABLE always, WRITABLE while
 *                     job frames are only partly sent
 *          ─ ctl      control block shared with the worker (internal.h)
 *          ─ ring     its window: up to WL_PPOOL_WINDOW jobs sent and not
 *                     yet answered, oldest first; ring index = ctl slot.
 *                     NULL entries were taken back (cancel, steal) and
 *                     wait only for their skip reply.
 *          ─ obuf     job frames written to the window but not yet to fd
 *          ─ timer    timeout of the oldest live job in the window
 *          ─ state    IDLE ⇄ BUSY → RETIRING (fd closed, EOF makes it exit)
 *                                 → KILLED   (SIGKILLed: timeout/cancel)
 *
 * Windows (why): with one job per worker at a time, every no-op job cost a
 * worker sleep/wake-up and four syscalls, and throughput was bounded by
 * round trips. With a window the worker finds its next job already in its
 * socket, and frames queued during one batch of reply callbacks go out in
 * one send(). Jobs are spread over the least-loaded workers; a worker that
 * runs dry while the queue is empty steals the newest unstarted job from
 * the fullest window, so one long job does not hold up the short ones
 * queued behind it. The guarantees hold per job through the shared slots:
 * a cancelled job that has not started never runs (its slot is revoked);
 * when a worker dies, only the job whose slot says RUNNING fails, the
 * others are revoked and go back to the front of the queue in order.
 *
 * Lifecycle: a worker is forked, serves jobs, and is reaped when SIGCHLD
 * arrives (uv_signal_t; waitpid(pid, WNOHANG) on each of OUR pids only, so
 * other children of the program, e.g. uv_spawn's, are left alone). If it
 * died while BUSY, only its job fails, with -ECHILD and the signal's name;
 * a replacement is forked whenever serving workers drop below the target
 * (death, timeout kill, cancel kill, max_jobs recycling). A worker struct
 * is freed once it is reaped AND its two handles are closed; the fd is
 * closed in the poll handle's close callback (closing it earlier could
 * let libuv unregister a reused descriptor number).
 *
 * Why fork and not uv_spawn of an exec'd worker: job functions are plain C
 * functions of the application; a fork holds the same registry with no
 * re-exec protocol, and the name-addressed frames keep an exec'd or remote
 * worker possible later. Forking happens on the loop thread; a worker
 * runs only its own loop (worker.c) and the job functions.
 *
 * Liveness: the deferred async handle is referenced while jobs are
 * outstanding or the pool closes; everything else is unreferenced, so an
 * idle pool does not keep uv_run going.
 *
 * Close: stop taking jobs; (CANCEL) cancel the queue and kill the busy
 * workers; once no job is left, close every worker's fd (EOF -> exit),
 * SIGKILL stragglers after 2 s, reap all, close the pool's handles, call
 * close_cb. No zombie, no orphan.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

enum { W_IDLE = 1, W_BUSY, W_RETIRING, W_KILLED };
enum { R_QUEUED = 1, R_SENT, R_DEFERRED, R_FINISHED };
enum { CLOSE_NONE = 0, CLOSE_DRAINING, CLOSE_STOPPING, CLOSE_HANDLES };

#define KILL_GRACE_MS 2000

struct wl_pworker {
    wl_ppool *pool;
    pid_t pid;
    int fd;       /* parent end; closed with the poll handle */
    int state;    /* W_* */
    int handles;  /* open handles of this worker (poll, timer) */
    int detached; /* handles closing or closed */
    int reaped;
    uv_poll_t poll;
    uv_timer_t timer;
    wl__pctl *ctl;                       /* shared with the worker */
    wl_ppool_req *ring[WL_PPOOL_WINDOW]; /* window, see above */
    unsigned rhead;                      /* slot of the oldest entry */
    unsigned rcount;                     /* entries (live or taken back) */
    unsigned live;                       /* non-NULL entries */
    wl_ppool_req *timed;                 /* job the timer runs for */
    wl_bytes obuf;                       /* frames not yet written */
    size_t osent;                        /* bytes of obuf written */
    int want_write;                      /* WRITABLE armed */
    unsigned assigned;                   /* jobs ever sent to it */
    unsigned jobs_done;                  /* replies received */
    wl_bytes rbuf;                       /* reply bytes read so far */
    wl_pworker *next;                    /* pool->workers_ */
    wl_pworker *prev;
};

static void worker_top_up(wl_ppool *pool);
static void pool_dispatch(wl_ppool *pool);
static void pool_spin(wl_ppool *pool);
static void pool_maybe_close(wl_ppool *pool);
static void on_poll(uv_poll_t *h, int status, int events);
static void worker_arm_timer(wl_pworker *w);
static void worker_free(wl_pworker *w);

static void req_error(wl_ppool_req *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void req_error(wl_ppool_req *req, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(req->error, sizeof(req->error), fmt, ap);
    va_end(ap);
}

/* ---- requests ----------------------------------------------------- */

static void queue_unlink(wl_ppool *pool, wl_ppool_req *req)
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
}

/* Ends req and runs its callback now (we are in a loop callback). */
static void req_finish(wl_ppool_req *req, int status)
{
    wl_ppool *pool = req->pool_;

    req->status = status;
    req->state_ = R_FINISHED;
    req->worker_ = NULL;
    free(req->frame_);
    req->frame_ = NULL;
    if (--pool->outstanding_ == 0 && !pool->closing_)
        uv_unref((uv_handle_t *)&pool->deferred_);
    req->done_(req, status);
}

/* Ends req on a later loop turn: for calls made by the user (cancel,
 * close), so that callbacks never run re-entrantly inside them. */
static void req_defer(wl_ppool_req *req, int status)
{
    wl_ppool *pool = req->pool_;

    req->status = status;
    req->state_ = R_DEFERRED;
    req->next_ = NULL;
    req->prev_ = NULL;
    if (pool->dtail_)
        pool->dtail_->next_ = req;
    else
        pool->dhead_ = req;
    pool->dtail_ = req;
    uv_async_send(&pool->deferred_);
}

static void on_deferred(uv_async_t *h)
{
    wl_ppool *pool = h->data;

    while (pool->dhead_) {
        wl_ppool_req *req = pool->dhead_;
        pool->dhead_ = req->next_;
        if (!pool->dhead_)
            pool->dtail_ = NULL;
        req->next_ = NULL;
        req_finish(req, req->status);
    }
    pool_maybe_close(pool);
}

/* ---- workers ------------------------------------------------------ */

static void worker_free(wl_pworker *w)
{
    wl_bytes_free(&w->rbuf);
    wl_bytes_free(&w->obuf);
    munmap(w->ctl, sizeof(*w->ctl));
    free(w);
}

static unsigned ring_slot(const wl_pworker *w, unsigned k)
{
    return (w->rhead + k) % WL_PPOOL_WINDOW;
}

/* Takes back the job in slot if the worker has not started it. Returns 1
 * when it now never will, 0 when it has started. */
static int slot_revoke(wl_pworker *w, unsigned slot)
{
    uint32_t expect = WL_SLOT_SENT;
    return __atomic_compare_exchange_n(&w->ctl->slot[slot], &expect, WL_SLOT_CANCELLED, 0,
                                       __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

static int slot_started(const wl_pworker *w, unsigned slot)
{
    return __atomic_load_n(&w->ctl->slot[slot], __ATOMIC_ACQUIRE) == WL_SLOT_RUNNING;
}

static void on_worker_handle_closed(uv_handle_t *h)
{
    wl_pworker *w = h->data;
    wl_ppool *pool = w->pool;

    if (h == (uv_handle_t *)&w->poll) {
        close(w->fd);
        w->fd = -1;
    }
    pool->whandles_--;
    if (--w->handles == 0 && w->reaped)
        worker_free(w);
    pool_maybe_close(pool);
}

/* Stops listening to w: closes its handles (and so its fd, which the
 * worker sees as EOF). Idempotent. */
static void worker_detach(wl_pworker *w)
{
    if (w->detached)
        return;
    w->detached = 1;
    uv_close((uv_handle_t *)&w->poll, on_worker_handle_closed);
    uv_close((uv_handle_t *)&w->timer, on_worker_handle_closed);
}

/* w stops serving jobs (it is retiring, killed or dead). */
static void worker_unserve(wl_pworker *w, int state)
{
    wl_ppool *pool = w->pool;

    if (w->state == W_IDLE || w->state == W_BUSY)
        pool->serving_--;
    if (w->state == W_BUSY)
        pool->busy_--;
    w->state = state;
}

static int worker_spawn(wl_ppool *pool)
{
    wl_pworker *w;
    int sv[2];
    pid_t parent = getpid();
    int err;

    w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->ctl = mmap(NULL, sizeof(*w->ctl), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (w->ctl == MAP_FAILED) {
        err = -errno;
        goto free_worker;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        err = -errno;
        goto unmap_ctl;
    }
    w->pid = fork();
    if (w->pid < 0) {
        err = -errno;
        goto close_pair;
    }
    if (w->pid == 0) {
        close(sv[0]);
        wl__ppool_worker_main(sv[1], parent, w->ctl);
    }
    close(sv[1]);
    w->pool = pool;
    w->fd = sv[0];
    w->state = W_IDLE;
    fcntl(w->fd, F_SETFL, fcntl(w->fd, F_GETFL) | O_NONBLOCK);
    /* From here on the child exists: failures below kill it and let the
     * SIGCHLD path reap it like any other worker. */
    w->next = pool->workers_;
    if (pool->workers_)
        pool->workers_->prev = w;
    pool->workers_ = w;
    pool->serving_++;
    uv_timer_init(pool->loop_, &w->timer);
    w->timer.data = w;
    w->handles++;
    pool->whandles_++;
    err = uv_poll_init(pool->loop_, &w->poll, w->fd);
    if (err == 0) {
        w->poll.data = w;
        w->handles++;
        pool->whandles_++;
        uv_unref((uv_handle_t *)&w->poll);
        err = uv_poll_start(&w->poll, UV_READABLE, on_poll);
    }
    if (err) {
        kill(w->pid, SIGKILL);
        worker_unserve(w, W_KILLED);
        if (w->handles == 2) {
            worker_detach(w);
        } else { /* poll never initialised: close timer, fd by hand */
            w->detached = 1;
            close(w->fd);
            uv_close((uv_handle_t *)&w->timer, on_worker_handle_closed);
        }
        return err;
    }
    return 0;

close_pair:
    close(sv[0]);
    close(sv[1]);
unmap_ctl:
    munmap(w->ctl, sizeof(*w->ctl));
free_worker:
    free(w);
    return err;
}

/* Forks workers until the pool is at its size again. While closing, only
 * if queued jobs still need them. */
static void worker_top_up(wl_ppool *pool)
{
    while (pool->serving_ < pool->target_ &&
           (pool->closing_ == CLOSE_NONE || (pool->closing_ == CLOSE_DRAINING && pool->head_))) {
        int err = worker_spawn(pool);
        if (err) {
            pool->spawn_error_ = err;
            break;
        }
        pool->respawns_++;
    }
    if (pool->serving_ == 0) {
        /* No worker and none can be forked: fail the queue, don't hang. */
        while (pool->head_) {
            wl_ppool_req *req = pool->head_;
            queue_unlink(pool, req);
            req_error(req, "no worker: fork failed (%s)", strerror(-pool->spawn_error_));
            req_defer(req, pool->spawn_error_ ? pool->spawn_error_ : -EAGAIN);
        }
    }
}

/* Prepends the jobs first..last (linked through next_, in order) to the
 * pool queue. */
static void queue_push_front(wl_ppool *pool, wl_ppool_req *first, wl_ppool_req *last)
{
    if (!first)
        return;
    first->prev_ = NULL;
    last->next_ = pool->head_;
    if (pool->head_)
        pool->head_->prev_ = last;
    else
        pool->tail_ = last;
    pool->head_ = first;
}

/* Takes req out of its worker's window (the slot itself stays until the
 * worker's reply for it, or the worker's end). */
static void window_drop(wl_pworker *w, wl_ppool_req *req)
{
    w->ring[req->slot_] = NULL;
    w->live--;
    req->worker_ = NULL;
    if (w->timed == req)
        w->timed = NULL;
}

/* Empties w's window after w was killed or died (it takes no more jobs):
 * a job that never started is revoked and re-queued at the front, in
 * order; one that started fails with status and the message why (its
 * callback runs on a later loop turn). */
static void worker_evict(wl_pworker *w, int status, const char *why, int term_signal)
{
    wl_ppool *pool = w->pool;
    wl_ppool_req *first = NULL;
    wl_ppool_req *last = NULL;

    for (unsigned k = 0; k < w->rcount; k++) {
        unsigned slot = ring_slot(w, k);
        wl_ppool_req *req = w->ring[slot];
        if (!req)
            continue;
        window_drop(w, req);
        if (slot_revoke(w, slot)) {
            req->worker_pid = 0;
            req->state_ = R_QUEUED;
            req->next_ = NULL;
            req->prev_ = last;
            if (last)
                last->next_ = req;
            else
                first = req;
            last = req;
        } else {
            snprintf(req->error, sizeof(req->error), "%s", why);
            req->term_signal = term_signal;
            req_defer(req, status);
        }
    }
    w->rcount = 0;
    w->timed = NULL;
    uv_timer_stop(&w->timer);
    queue_push_front(pool, first, last);
}

/* SIGKILLs w, detaches it and empties its window. The job it is killed for
 * must already be out of the window (window_drop). */
static void worker_kill(wl_pworker *w)
{
    char why[96];

    kill(w->pid, SIGKILL);
    worker_unserve(w, W_KILLED);
    worker_detach(w);
    snprintf(why, sizeof(why), "worker %d killed because of another job", (int)w->pid);
    worker_evict(w, -ECHILD, why, SIGKILL);
}

static void on_timeout(uv_timer_t *h)
{
    wl_pworker *w = h->data;
    wl_ppool *pool = w->pool;
    wl_ppool_req *req = w->timed;

    if (!req || w->state != W_BUSY)
        return;
    if (!slot_started(w, req->slot_)) {
        /* the worker has not reached the job yet: its time starts later */
        uv_update_time(pool->loop_); /* from now, not from this turn's start */
        uv_timer_start(&w->timer, on_timeout, req->timeout_ms_, 0);
        return;
    }
    window_drop(w, req);
    worker_kill(w);
    req_error(req, "job timed out after %u ms; worker %d killed", req->timeout_ms_, (int)w->pid);
    worker_top_up(pool);
    req_finish(req, -ETIMEDOUT);
    pool_dispatch(pool);
    pool_maybe_close(pool);
}

/* Arms the timer for the oldest live job of the window: the job running
 * now or next. Its time counts from when it became the oldest, extended
 * while the worker has not started it. */
static void worker_arm_timer(wl_pworker *w)
{
    wl_ppool_req *head = NULL;

    for (unsigned k = 0; k < w->rcount && !head; k++)
        head = w->ring[ring_slot(w, k)];
    if (head == w->timed)
        return;
    w->timed = head;
    if (head && head->timeout_ms_) {
        uv_update_time(w->pool->loop_); /* from now, not from this turn's start */
        uv_timer_start(&w->timer, on_timeout, head->timeout_ms_, 0);
    }
    else
        uv_timer_stop(&w->timer);
}

/* Writes as much of obuf as the socket takes; arms WRITABLE for the rest.
 * A dead peer (EPIPE) is left to the SIGCHLD path. */
static void worker_flush(wl_pworker *w)
{
    while (w->osent < w->obuf.len) {
        ssize_t n = send(w->fd, w->obuf.data + w->osent, w->obuf.len - w->osent,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if ((errno == EAGAIN || errno == EWOULDBLOCK) && !w->want_write) {
                w->want_write = 1;
                uv_poll_start(&w->poll, UV_READABLE | UV_WRITABLE, on_poll);
            }
            return;
        }
        w->osent += (size_t)n;
    }
    w->obuf.len = 0;
    w->osent = 0;
    if (w->obuf.cap > (1u << 20))
        wl_bytes_free(&w->obuf); /* a big payload passed: don't keep its copy's room */
    if (w->want_write) {
        w->want_write = 0;
        uv_poll_start(&w->poll, UV_READABLE, on_poll);
    }
}

/* Whether w can take one more job now. */
static int worker_has_room(const wl_pworker *w)
{
    const wl_ppool *pool = w->pool;

    return (w->state == W_IDLE || w->state == W_BUSY) && !w->detached &&
           w->rcount < WL_PPOOL_WINDOW && (!pool->max_jobs_ || w->assigned < pool->max_jobs_);
}

/* Puts req in w's window and its frame in obuf (the caller flushes).
 * Returns 0 or -ENOMEM (nothing changed). */
static int worker_assign(wl_pworker *w, wl_ppool_req *req)
{
    wl_ppool *pool = w->pool;
    unsigned slot = ring_slot(w, w->rcount);
    uint32_t len = 0;
    uint32_t aux = 0;

    if (wl__bytes_reserve(&w->obuf, req->frame_len_))
        return -ENOMEM;
    wl_frame_get_hdr(req->frame_, &len, &aux);
    wl_frame_put_hdr(req->frame_, len, (aux & 0xffu) | slot << 8);
    __atomic_store_n(&w->ctl->slot[slot], WL_SLOT_SENT, __ATOMIC_RELEASE);
    memcpy(w->obuf.data + w->obuf.len, req->frame_, req->frame_len_);
    w->obuf.len += req->frame_len_;
    w->ring[slot] = req;
    w->rcount++;
    w->live++;
    w->assigned++;
    if (w->state == W_IDLE) {
        w->state = W_BUSY;
        pool->busy_++;
    }
    req->worker_ = w;
    req->worker_pid = w->pid;
    req->slot_ = slot;
    req->state_ = R_SENT;
    worker_arm_timer(w);
    return 0;
}

/* The reply for the oldest window entry is body/len/status: end that job
 * (unless it was taken back: then this is its skip reply), free the slot. */
static void worker_reply(wl_pworker *w, const uint8_t *body, uint32_t len, int status)
{
    wl_ppool *pool = w->pool;
    wl_ppool_req *req = w->ring[w->rhead];
    int err = 0;

    if (req)
        window_drop(w, req);
    w->rhead = (w->rhead + 1) % WL_PPOOL_WINDOW;
    w->rcount--;
    w->jobs_done++;
    if (w->rcount == 0 && w->state == W_BUSY) {
        pool->busy_--;
        w->state = W_IDLE;
    }
    if (pool->max_jobs_ && w->assigned >= pool->max_jobs_ && w->rcount == 0 &&
        w->state == W_IDLE) {
        worker_unserve(w, W_RETIRING);
        worker_detach(w);
        worker_top_up(pool);
    }
    worker_arm_timer(w);
    if (!req)
        return;
    if (status == 0) {
        err = wl_bytes_append(&req->result, body, len);
        if (err)
            req_error(req, "out of memory for a %u-byte result", len);
    } else {
        if (len)
            snprintf(req->error, sizeof(req->error), "%.*s", (int)len, (const char *)body);
        else
            req_error(req, "job failed: %s", strerror(-status));
    }
    req_finish(req, err ? err : status);
}

/* Reads what the worker sent and handles every complete reply, in window
 * order. EOF or error stops the watcher: the death itself is handled when
 * SIGCHLD reaps the worker. A reply callback may kill or retire w: then
 * the rest is dropped. */
static void worker_read(wl_pworker *w)
{
    size_t off = 0;
    int drained = 0; /* the last read() left room: the socket is empty */

    for (;;) {
        ssize_t n;
        size_t room;

        while (w->rbuf.len - off >= WL_FRAME_HDR) {
            uint32_t len = 0;
            uint32_t aux = 0;
            wl_frame_get_hdr(w->rbuf.data + off, &len, &aux);
            if (len > WL_FRAME_MAX || w->rcount == 0) {
                kill(w->pid, SIGKILL); /* protocol broken: replace it */
                uv_poll_stop(&w->poll);
                w->rbuf.len = 0;
                return;
            }
            if (w->rbuf.len - off < WL_FRAME_HDR + len)
                break;
            worker_reply(w, w->rbuf.data + off + WL_FRAME_HDR, len, (int32_t)aux);
            off += WL_FRAME_HDR + len;
            if (w->state == W_KILLED) {
                w->rbuf.len = 0;
                return;
            }
        }
        if (off) {
            memmove(w->rbuf.data, w->rbuf.data + off, w->rbuf.len - off);
            w->rbuf.len -= off;
            off = 0;
        }
        /* a short read emptied the socket: no second read() just to see
         * EAGAIN (the poll is level-triggered, more data means another
         * event) -- one syscall less per round trip */
        if (w->detached || drained)
            return;
        if (wl__bytes_reserve(&w->rbuf, 4096))
            return; /* out of memory: retried on the next readable event */
        room = w->rbuf.cap - w->rbuf.len;
        n = read(w->fd, w->rbuf.data + w->rbuf.len, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            uv_poll_stop(&w->poll);
            return;
        }
        w->rbuf.len += (size_t)n;
        drained = (size_t)n < room;
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    wl_pworker *w = h->data;
    wl_ppool *pool = w->pool;

    if (status < 0) {
        uv_poll_stop(h);
        return;
    }
    if ((events & UV_WRITABLE) && w->osent < w->obuf.len)
        worker_flush(w);
    if (events & UV_READABLE) {
        /* jobs submitted by the reply callbacks go out in one send */
        pool->in_reply_++;
        worker_read(w);
        pool->in_reply_--;
        pool_dispatch(pool);
        pool_maybe_close(pool);
    }
}

static void describe_exit(char *buf, size_t size, pid_t pid, int wstatus)
{
    if (WIFSIGNALED(wstatus)) {
        const char *abbrev = sigabbrev_np(WTERMSIG(wstatus));
        if (abbrev)
            snprintf(buf, size, "worker %d killed by SIG%s", (int)pid, abbrev);
        else
            snprintf(buf, size, "worker %d killed by signal %d", (int)pid, WTERMSIG(wstatus));
    } else if (WIFEXITED(wstatus)) {
        snprintf(buf, size, "worker %d exited with status %d", (int)pid, WEXITSTATUS(wstatus));
    } else {
        snprintf(buf, size, "worker %d ended (wait status %#x)", (int)pid, wstatus);
    }
}

static void worker_reaped(wl_pworker *w, int wstatus, int known)
{
    wl_ppool *pool = w->pool;
    char why[128];

    /* Replies may have been written just before the worker died. */
    if (w->rcount && !w->detached) {
        pool->in_reply_++;
        worker_read(w);
        pool->in_reply_--;
    }
    w->reaped = 1;
    if (w->prev)
        w->prev->next = w->next;
    else
        pool->workers_ = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->next = w->prev = NULL;
    worker_unserve(w, W_KILLED);
    if (known)
        describe_exit(why, sizeof(why), w->pid, wstatus);
    else
        snprintf(why, sizeof(why), "worker %d vanished (reaped elsewhere)", (int)w->pid);
    /* the job it was running fails; the ones it had not started go back */
    worker_evict(w, -ECHILD, why, known && WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0);
    if (w->detached) {
        if (w->handles == 0)
            worker_free(w);
    } else {
        worker_detach(w);
    }
    worker_top_up(pool);
}

static void on_sigchld(uv_signal_t *h, int signum)
{
    wl_ppool *pool = h->data;
    wl_pworker *w = pool->workers_;

    /* SIGCHLD coalesces: look at every worker, not just one. */
    while (w) {
        wl_pworker *next = w->next;
        int wstatus = 0;
        pid_t r = waitpid(w->pid, &wstatus, WNOHANG);
        if (r == w->pid)
            worker_reaped(w, wstatus, 1);
        else if (r < 0 && errno == ECHILD)
            worker_reaped(w, 0, 0);
        w = next;
    }
    pool_dispatch(pool);
    pool_maybe_close(pool);
}

/* ---- pool ------------------------------------------------------------ */

/* The worker with room and the fewest live jobs in its window, or NULL. */
static wl_pworker *least_loaded(wl_ppool *pool)
{
    wl_pworker *best = NULL;

    for (wl_pworker *w = pool->workers_; w; w = w->next)
        if (worker_has_room(w) && (!best || w->live < best->live))
            best = w;
    return best;
}

/* For an idle worker when the queue is empty: takes back the newest
 * unstarted job of the fullest window (never its oldest, which is running
 * or about to). NULL if there is none. */
static wl_ppool_req *steal_for(wl_ppool *pool, const wl_pworker *thief)
{
    wl_pworker *victim = NULL;

    for (wl_pworker *w = pool->workers_; w; w = w->next)
        if (w != thief && !w->detached && w->live >= 2 && (!victim || w->live > victim->live))
            victim = w;
    if (!victim)
        return NULL;
    for (unsigned k = victim->rcount; k-- > 1;) {
        unsigned slot = ring_slot(victim, k);
        wl_ppool_req *req = victim->ring[slot];
        if (!req)
            continue;
        if (!slot_revoke(victim, slot))
            return NULL; /* started: so has everything before it */
        window_drop(victim, req);
        worker_arm_timer(victim);
        return req;
    }
    return NULL;
}

/* Fills the windows from the queue (least-loaded worker first), lets idle
 * workers steal, and writes the frames -- unless reply callbacks are being
 * run, whose caller writes once at the end. */
static void pool_dispatch(wl_ppool *pool)
{
    for (;;) {
        wl_pworker *w = least_loaded(pool);
        wl_ppool_req *req = pool->head_;

        if (!w)
            break;
        if (req)
            queue_unlink(pool, req);
        else if (w->live == 0)
            req = steal_for(pool, w);
        if (!req)
            break;
        if (worker_assign(w, req)) {
            req->state_ = R_QUEUED;
            queue_push_front(pool, req, req);
            break; /* out of memory: retried on the next event */
        }
    }
    if (pool->in_reply_)
        return;
    int sent = 0;
    for (wl_pworker *w = pool->workers_; w; w = w->next)
        if (w->osent < w->obuf.len && !w->want_write && !w->detached) {
            worker_flush(w);
            sent = 1;
        }
    if (sent)
        pool_spin(pool);
}

/* After jobs are sent the loop polls without blocking for PARENT_SPIN_NS
 * (an active idle handle makes libuv poll with a zero timeout), so a quick
 * reply finds the parent awake: waking a process that went to sleep costs
 * tens of microseconds on an idle machine. Bounded, and only while jobs are
 * in flight; see also the worker's own spin in worker.c. */
#define PARENT_SPIN_NS 50000

static void on_spin(uv_idle_t *h)
{
    wl_ppool *pool = h->data;

    if (uv_hrtime() > pool->spin_until_ || pool->busy_ == 0)
        uv_idle_stop(h);
}

static void pool_spin(wl_ppool *pool)
{
    if (pool->closing_ >= CLOSE_HANDLES)
        return;
    pool->spin_until_ = uv_hrtime() + PARENT_SPIN_NS;
    if (!uv_is_active((uv_handle_t *)&pool->spin_))
        uv_idle_start(&pool->spin_, on_spin);
}

static void on_kill_timer(uv_timer_t *h)
{
    wl_ppool *pool = h->data;

    for (wl_pworker *w = pool->workers_; w; w = w->next)
        kill(w->pid, SIGKILL);
}

static void on_pool_handle_closed(uv_handle_t *h)
{
    wl_ppool *pool = h->data;

    if (--pool->handles_ == 0 && pool->close_cb_)
        pool->close_cb_(pool);
}

static void pool_maybe_close(wl_ppool *pool)
{
    if (pool->closing_ == CLOSE_DRAINING && !pool->head_ && !pool->busy_) {
        pool->closing_ = CLOSE_STOPPING;
        for (wl_pworker *w = pool->workers_; w; w = w->next) {
            worker_unserve(w, W_RETIRING);
            worker_detach(w);
        }
        uv_timer_start(&pool->kill_timer_, on_kill_timer, KILL_GRACE_MS, 0);
    }
    if (pool->closing_ == CLOSE_STOPPING && !pool->workers_ && !pool->whandles_ && !pool->dhead_ &&
        !pool->outstanding_) {
        pool->closing_ = CLOSE_HANDLES;
        uv_close((uv_handle_t *)&pool->sigchld_, on_pool_handle_closed);
        uv_close((uv_handle_t *)&pool->deferred_, on_pool_handle_closed);
        uv_close((uv_handle_t *)&pool->kill_timer_, on_pool_handle_closed);
        uv_close((uv_handle_t *)&pool->spin_, on_pool_handle_closed);
    }
}

int wl_ppool_init(uv_loop_t *loop, wl_ppool *pool, const wl_ppool_opts *opts)
{
    unsigned workers = opts && opts->workers ? opts->workers : wl__online_cpus();
    int err;

    if (!loop || !pool)
        return -EINVAL;
    memset(pool, 0, sizeof(*pool));
    pool->loop_ = loop;
    pool->target_ = workers;
    pool->max_jobs_ = opts ? opts->max_jobs_per_worker : 0;
    pool->timeout_ms_ = opts ? opts->job_timeout_ms : 0;
    err = uv_async_init(loop, &pool->deferred_, on_deferred);
    if (err)
        return err;
    pool->deferred_.data = pool;
    uv_unref((uv_handle_t *)&pool->deferred_);
    pool->handles_++;
    uv_timer_init(loop, &pool->kill_timer_);
    pool->kill_timer_.data = pool;
    pool->handles_++;
    uv_idle_init(loop, &pool->spin_);
    pool->spin_.data = pool;
    uv_unref((uv_handle_t *)&pool->spin_); /* never keeps the loop alive */
    pool->handles_++;
    uv_signal_init(loop, &pool->sigchld_);
    pool->sigchld_.data = pool;
    pool->handles_++;
    /* Watch SIGCHLD before the first fork, so no death goes unseen. */
    err = uv_signal_start(&pool->sigchld_, on_sigchld, SIGCHLD);
    if (err)
        goto close_handles;
    uv_unref((uv_handle_t *)&pool->sigchld_);
    for (unsigned i = 0; i < workers; i++) {
        err = worker_spawn(pool);
        if (err)
            goto kill_workers;
    }
    return 0;

kill_workers:
    /* Init failed: take the forked workers down synchronously. */
    pool->closing_ = CLOSE_HANDLES; /* no respawn from worker_reaped */
    while (pool->workers_) {
        wl_pworker *w = pool->workers_;
        kill(w->pid, SIGKILL);
        waitpid(w->pid, NULL, 0);
        worker_reaped(w, 0, 1);
    }
close_handles:
    /* The caller may not run the loop after a failed init: a closing
     * handle needs one turn, which we take here. */
    pool->closing_ = CLOSE_HANDLES;
    pool->close_cb_ = NULL;
    uv_close((uv_handle_t *)&pool->sigchld_, on_pool_handle_closed);
    uv_close((uv_handle_t *)&pool->deferred_, on_pool_handle_closed);
    uv_close((uv_handle_t *)&pool->kill_timer_, on_pool_handle_closed);
    uv_close((uv_handle_t *)&pool->spin_, on_pool_handle_closed);
    uv_run(loop, UV_RUN_NOWAIT);
    return err;
}

static int submit_frame(wl_ppool *pool, wl_ppool_req *req, const char *name, const void *in,
                        size_t inlen, unsigned timeout_ms, wl_ppool_done_cb done)
{
    size_t name_len;
    size_t body;

    if (!pool || !req || !name || !done || (inlen && !in))
        return -EINVAL;
    if (pool->closing_)
        return -ESHUTDOWN;
    name_len = strlen(name);
    if (name_len == 0 || name_len > WL_PPOOL_NAME_MAX)
        return -ENAMETOOLONG;
    if (inlen > WL_FRAME_MAX - name_len)
        return -EMSGSIZE;
    if (pool->serving_ == 0) {
        worker_top_up(pool);
        if (pool->serving_ == 0)
            return pool->spawn_error_ ? pool->spawn_error_ : -EAGAIN;
    }
    body = name_len + inlen;
    memset(req, 0, offsetof(wl_ppool_req, pool_)); /* public fields only */
    req->data = NULL;
    req->frame_ = malloc(WL_FRAME_HDR + body);
    if (!req->frame_)
        return -ENOMEM;
    wl_frame_put_hdr(req->frame_, (uint32_t)body, (uint32_t)name_len);
    memcpy(req->frame_ + WL_FRAME_HDR, name, name_len);
    if (inlen)
        memcpy(req->frame_ + WL_FRAME_HDR + name_len, in, inlen);
    req->frame_len_ = WL_FRAME_HDR + body;
    req->pool_ = pool;
    req->done_ = done;
    req->worker_ = NULL;
    req->timeout_ms_ = timeout_ms ? timeout_ms : pool->timeout_ms_;
    req->state_ = R_QUEUED;
    req->next_ = NULL;
    req->prev_ = pool->tail_;
    if (pool->tail_)
        pool->tail_->next_ = req;
    else
        pool->head_ = req;
    pool->tail_ = req;
    if (pool->outstanding_++ == 0)
        uv_ref((uv_handle_t *)&pool->deferred_);
    pool_dispatch(pool);
    return 0;
}

int wl_ppool_submit(wl_ppool *pool, wl_ppool_req *req, const char *name, const void *in,
                    size_t inlen, unsigned timeout_ms, wl_ppool_done_cb done)
{
    void *data = req ? req->data : NULL;
    int err = submit_frame(pool, req, name, in, inlen, timeout_ms, done);

    if (req)
        req->data = data; /* the user slot survives submit */
    return err;
}

int wl_ppool_submit_json(wl_ppool *pool, wl_ppool_req *req, const char *name, json_t *args,
                         unsigned timeout_ms, wl_ppool_done_cb done)
{
    char *text;
    int err;

    if (!args)
        return -EINVAL;
    text = json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text)
        return -ENOMEM;
    err = wl_ppool_submit(pool, req, name, text, strlen(text), timeout_ms, done);
    free(text);
    return err;
}

json_t *wl_ppool_req_json(const wl_ppool_req *req)
{
    if (!req->result.len)
        return NULL;
    return json_loadb((const char *)req->result.data, req->result.len, JSON_DECODE_ANY, NULL);
}

void wl_ppool_req_cleanup(wl_ppool_req *req)
{
    wl_bytes_free(&req->result);
}

int wl_ppool_cancel(wl_ppool_req *req)
{
    wl_ppool *pool;
    wl_pworker *w;

    if (!req || !req->pool_)
        return -EINVAL;
    pool = req->pool_;
    if (req->state_ == R_QUEUED) {
        queue_unlink(pool, req);
        req_error(req, "cancelled before it started");
        req_defer(req, -ECANCELED);
        return 0;
    }
    if (req->state_ != R_SENT)
        return -EBUSY;
    w = req->worker_;
    if (slot_revoke(w, req->slot_)) {
        /* in the worker's window but not started: now it never will */
        window_drop(w, req);
        worker_arm_timer(w);
        req_error(req, "cancelled before it started");
        req_defer(req, -ECANCELED);
        return 0;
    }
    window_drop(w, req);
    worker_kill(w);
    req_error(req, "cancelled while running; worker %d killed", (int)w->pid);
    req_defer(req, -ECANCELED);
    worker_top_up(pool);
    pool_dispatch(pool);
    return 0;
}

int wl_ppool_close(wl_ppool *pool, wl_pool_close_mode mode, wl_ppool_close_cb close_cb)
{
    if (!pool || pool->closing_)
        return -EINVAL;
    pool->closing_ = CLOSE_DRAINING;
    pool->close_cb_ = close_cb;
    uv_ref((uv_handle_t *)&pool->deferred_);
    if (mode == WL_POOL_CLOSE_CANCEL) {
        while (pool->head_) {
            wl_ppool_req *req = pool->head_;
            queue_unlink(pool, req);
            req_error(req, "cancelled: pool closed");
            req_defer(req, -ECANCELED);
        }
        for (wl_pworker *w = pool->workers_; w; w = w->next) {
            if (w->state != W_BUSY)
                continue;
            kill(w->pid, SIGKILL);
            worker_unserve(w, W_KILLED);
            worker_detach(w);
            for (unsigned k = 0; k < w->rcount; k++) {
                wl_ppool_req *req = w->ring[ring_slot(w, k)];
                if (!req)
                    continue;
                window_drop(w, req);
                req_error(req, "cancelled: pool closed; worker %d killed", (int)w->pid);
                req_defer(req, -ECANCELED);
            }
            w->rcount = 0;
            w->timed = NULL;
            uv_timer_stop(&w->timer);
        }
    }
    /* The rest happens on the loop (on_deferred -> pool_maybe_close). */
    uv_async_send(&pool->deferred_);
    return 0;
}

int wl_ppool_worker_pids(const wl_ppool *pool, pid_t *pids, int max)
{
    int n = 0;

    for (const wl_pworker *w = pool->workers_; w; w = w->next) {
        if (n < max)
            pids[n] = w->pid;
        n++;
    }
    return n;
}

unsigned long wl_ppool_respawns(const wl_ppool *pool)
{
    return pool->respawns_;
}
