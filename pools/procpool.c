/*
 * procpool.c -- the parent side of the process pool: forks workers once,
 * sends them jobs over socketpairs watched by the libuv loop, and survives
 * their deaths (the run_in_executor executor for CPU-bound work).
 *
 * Data layout (loop thread only; no locks):
 *
 *   pool ─ queue_                 queued jobs (util's wl__q_*: cancel unlinks)
 *        ─ deferredq_             cancelled jobs whose done_cb is pending
 *        ─ workers_               every forked worker not yet reaped
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
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

enum { W_IDLE = 1, W_BUSY, W_RETIRING, W_KILLED, W_HELLO };
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
    wl_qnode node;                       /* pool->workers_ */
    /* remote workers (a TCP connection, no child of ours) */
    int remote;
    uint64_t heard_ns;                   /* uv_hrtime() of its last frame */
    char nodename[64];
};

#define WORKER_OF(n) wl__q_data(n, wl_pworker, node)
#define REQ_OF(n) wl__q_data(n, wl_ppool_req, qnode_)
/* for (each worker w of pool): w may not be removed inside the loop. */
#define FOR_EACH_WORKER(w, pool)                                                               \
    for (wl_qnode *w##_n = (pool)->workers_.next;                                              \
         w##_n != &(pool)->workers_ && ((w) = WORKER_OF(w##_n), 1); w##_n = w##_n->next)

/* The same where w may be removed (a remote worker is, when detached). */
#define FOR_EACH_WORKER_SAFE(w, pool)                                                          \
    for (wl_qnode *w##_n = (pool)->workers_.next, *w##_next = w##_n->next;                     \
         w##_n != &(pool)->workers_ && ((w) = WORKER_OF(w##_n), 1);                            \
         w##_n = w##_next, w##_next = w##_n->next)

/* The first queued job, or NULL. */
static wl_ppool_req *queue_first(const wl_ppool *pool)
{
    wl_qnode *n = wl__q_first(&pool->queue_);
    return n ? REQ_OF(n) : NULL;
}

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
    wl__q_push(&pool->deferredq_, &req->qnode_);
    uv_async_send(&pool->deferred_);
}

static void on_deferred(uv_async_t *h)
{
    wl_ppool *pool = h->data;

    wl_qnode *n;
    while ((n = wl__q_first(&pool->deferredq_))) {
        wl_ppool_req *req = REQ_OF(n);
        wl__q_remove(n);
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

    if (w->remote)
        return 0; /* sent over the network: it may have started */
    return __atomic_compare_exchange_n(&w->ctl->slot[slot], &expect, WL_SLOT_CANCELLED, 0,
                                       __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

static int slot_started(const wl_pworker *w, unsigned slot)
{
    if (w->remote)
        return 1;
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
static void remote_forget(wl_pworker *w);

static void worker_detach(wl_pworker *w)
{
    if (w->detached)
        return;
    w->detached = 1;
    if (w->remote && !w->reaped)
        remote_forget(w); /* our side closes: nothing to reap later */
    uv_close((uv_handle_t *)&w->poll, on_worker_handle_closed);
    uv_close((uv_handle_t *)&w->timer, on_worker_handle_closed);
}

/* w stops serving jobs (it is retiring, killed or dead). */
static void worker_unserve(wl_pworker *w, int state)
{
    wl_ppool *pool = w->pool;

    if (w->state == W_IDLE || w->state == W_BUSY) {
        pool->serving_--;
        if (w->remote && pool->remote_cb_)
            pool->remote_cb_(pool, w->nodename, (int)w->pid, 0);
    }
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
    wl__q_push_front(&pool->workers_, &w->node);
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
           (pool->closing_ == CLOSE_NONE || (pool->closing_ == CLOSE_DRAINING && !wl__q_empty(&pool->queue_)))) {
        int err = worker_spawn(pool);
        if (err) {
            pool->spawn_error_ = err;
            break;
        }
        pool->respawns_++;
    }
    if (pool->serving_ == 0 && !pool->remote_) {
        /* No worker and none can be forked: fail the queue, don't hang.
         * (A remote pool's jobs wait for workers to connect.) */
        wl_ppool_req *req;
        while ((req = queue_first(pool))) {
            wl__q_remove(&req->qnode_);
            req_error(req, "no worker: fork failed (%s)", strerror(-pool->spawn_error_));
            req_defer(req, pool->spawn_error_ ? pool->spawn_error_ : -EAGAIN);
        }
    }
}

/* Moves every job of back (in order) to the front of the pool queue. */
static void queue_push_front(wl_ppool *pool, wl_qnode *back)
{
    while (!wl__q_empty(back)) {
        wl_qnode *n = back->prev;
        wl__q_remove(n);
        wl__q_push_front(&pool->queue_, n);
    }
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
    wl_qnode back; /* revoked jobs, in window order */
    wl__q_init(&back);

    for (unsigned k = 0; k < w->rcount; k++) {
        unsigned slot = ring_slot(w, k);
        wl_ppool_req *req = w->ring[slot];
        if (!req)
            continue;
        window_drop(w, req);
        if (slot_revoke(w, slot)) {
            req->worker_pid = 0;
            req->state_ = R_QUEUED;
            wl__q_push(&back, &req->qnode_);
        } else {
            snprintf(req->error, sizeof(req->error), "%s", why);
            req->term_signal = term_signal;
            req_defer(req, status);
        }
    }
    w->rcount = 0;
    w->timed = NULL;
    uv_timer_stop(&w->timer);
    queue_push_front(pool, &back);
}

/* Stops w's job the hard way: SIGKILL for a child of ours; for a remote
 * worker, closing the connection (its heartbeat thread then kills the job
 * and exits). */
static void worker_hard_stop(wl_pworker *w)
{
    if (w->remote)
        shutdown(w->fd, SHUT_RDWR);
    else
        kill(w->pid, SIGKILL);
}

/* SIGKILLs w, detaches it and empties its window. The job it is killed for
 * must already be out of the window (window_drop). */
static void worker_kill(wl_pworker *w)
{
    char why[96];

    worker_hard_stop(w);
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
           w->rcount < (w->remote ? 1u : WL_PPOOL_WINDOW) && (!pool->max_jobs_ || w->assigned < pool->max_jobs_);
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
    wl__ppool_msg_get_hdr(req->frame_, &len, &aux);
    wl__ppool_msg_put_hdr(req->frame_, len, (aux & 0xffu) | slot << 8);
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
    snprintf(req->node, sizeof(req->node), "%s", w->nodename);
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
static void remote_lost(wl_pworker *w, const char *why);
static int remote_hello(wl_pworker *w, const uint8_t *body, uint32_t len);

static void worker_read(wl_pworker *w)
{
    size_t off = 0;
    int drained = 0; /* the last read() left room: the socket is empty */

    for (;;) {
        ssize_t n;
        size_t room;

        while (w->rbuf.len - off >= WL_PPOOL_MSG_HDR) {
            uint32_t len = 0;
            uint32_t aux = 0;
            int32_t code;
            wl__ppool_msg_get_hdr(w->rbuf.data + off, &len, &aux);
            code = (int32_t)aux;
            if (w->remote && code > 0 && len <= WL_REMOTE_HELLO_MAX) {
                /* a control frame: heartbeat, or the hello */
                if (w->rbuf.len - off < WL_PPOOL_MSG_HDR + len)
                    break;
                if (code == WL_PPOOL_MSG_HELLO && w->state == W_HELLO) {
                    if (remote_hello(w, w->rbuf.data + off + WL_PPOOL_MSG_HDR, len) < 0) {
                        w->rbuf.len = 0;
                        return;
                    }
                } else if (code != WL_PPOOL_MSG_HEARTBEAT || w->state == W_HELLO) {
                    remote_lost(w, "protocol error");
                    w->rbuf.len = 0;
                    return;
                }
                off += WL_PPOOL_MSG_HDR + len;
                continue;
            }
            if (len > WL_PPOOL_MSG_MAX || w->rcount == 0 || w->state == W_HELLO) {
                /* protocol broken: replace it */
                if (w->remote) {
                    remote_lost(w, "protocol error");
                } else {
                    kill(w->pid, SIGKILL);
                    uv_poll_stop(&w->poll);
                }
                w->rbuf.len = 0;
                return;
            }
            if (w->rbuf.len - off < WL_PPOOL_MSG_HDR + len)
                break;
            worker_reply(w, w->rbuf.data + off + WL_PPOOL_MSG_HDR, len, (int32_t)aux);
            off += WL_PPOOL_MSG_HDR + len;
            if (w->state == W_KILLED || w->detached) {
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
            if (w->remote) /* no SIGCHLD will tell: the connection is the worker */
                remote_lost(w, n == 0 ? "connection closed" : strerror(errno));
            return;
        }
        if (w->remote)
            w->heard_ns = uv_hrtime();
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

static void worker_unlink(wl_pworker *w)
{
    wl_ppool *pool = w->pool;

    (void)pool;
    w->reaped = 1;
    wl__q_remove(&w->node);
}

/* w is gone (reaped, or its connection lost): the job it was running
 * fails with why, the ones it had not started go back to the queue. */
static void worker_gone(wl_pworker *w, const char *why, int term_signal)
{
    wl_ppool *pool = w->pool;

    worker_unlink(w);
    worker_unserve(w, W_KILLED);
    worker_evict(w, -ECHILD, why, term_signal);
    if (w->detached) {
        if (w->handles == 0)
            worker_free(w);
    } else {
        worker_detach(w);
    }
    worker_top_up(pool);
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
    if (known)
        describe_exit(why, sizeof(why), w->pid, wstatus);
    else
        snprintf(why, sizeof(why), "worker %d vanished (reaped elsewhere)", (int)w->pid);
    worker_gone(w, why, known && WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0);
}

static void on_sigchld(uv_signal_t *h, int signum)
{
    wl_ppool *pool = h->data;
    wl_qnode *n = pool->workers_.next;

    /* SIGCHLD coalesces: look at every worker, not just one. */
    while (n != &pool->workers_) {
        wl_pworker *w = WORKER_OF(n);
        wl_qnode *next = n->next;
        int wstatus = 0;
        pid_t r;
        if (w->remote) { /* not our child */
            n = next;
            continue;
        }
        r = waitpid(w->pid, &wstatus, WNOHANG);
        if (r == w->pid)
            worker_reaped(w, wstatus, 1);
        else if (r < 0 && errno == ECHILD)
            worker_reaped(w, 0, 0);
        n = next;
    }
    pool_dispatch(pool);
    pool_maybe_close(pool);
}

/* ---- pool ------------------------------------------------------------ */

/* The worker with room and the fewest live jobs in its window, or NULL. */
static unsigned node_load(const wl_ppool *pool, const char *node)
{
    unsigned n = 0;

    const wl_pworker *w;

    FOR_EACH_WORKER(w, pool)
        if (w->remote && strcmp(w->nodename, node) == 0)
            n += w->live;
    return n;
}

static wl_pworker *least_loaded(wl_ppool *pool)
{
    wl_pworker *best = NULL;
    wl_pworker *w;

    if (pool->remote_) {
        /* the least-loaded NODE first: with one job per core wanted, jobs
         * must spread over the machines, not fill one node's connections */
        unsigned best_load = 0;
        FOR_EACH_WORKER(w, pool) {
            unsigned load;
            if (!worker_has_room(w))
                continue;
            load = node_load(pool, w->nodename);
            if (!best || load < best_load) {
                best = w;
                best_load = load;
            }
        }
        return best;
    }
    FOR_EACH_WORKER(w, pool)
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
    wl_pworker *w;

    FOR_EACH_WORKER(w, pool)
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
        wl_ppool_req *req = queue_first(pool);

        if (!w)
            break;
        if (req)
            wl__q_remove(&req->qnode_);
        else if (w->live == 0)
            req = steal_for(pool, w);
        if (!req)
            break;
        if (worker_assign(w, req)) {
            req->state_ = R_QUEUED;
            wl__q_push_front(&pool->queue_, &req->qnode_);
            break; /* out of memory: retried on the next event */
        }
    }
    if (pool->in_reply_)
        return;
    int sent = 0;
    wl_pworker *w;
    FOR_EACH_WORKER(w, pool)
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
    wl_pworker *w;

    FOR_EACH_WORKER(w, pool)
        if (!w->remote)
            kill(w->pid, SIGKILL);
}

static void on_pool_handle_closed(uv_handle_t *h)
{
    wl_ppool *pool = h->data;

    if (--pool->handles_ == 0) {
        if (pool->remote_) {
            close(pool->listen_fd_);
            pool->listen_fd_ = -1;
            free(pool->token_);
            pool->token_ = NULL;
        }
        if (pool->close_cb_)
            pool->close_cb_(pool);
    }
}

static void remote_close_handles(wl_ppool *pool);

static void pool_maybe_close(wl_ppool *pool)
{
    if (pool->closing_ == CLOSE_DRAINING && wl__q_empty(&pool->queue_) && !pool->busy_) {
        wl_pworker *w;
        pool->closing_ = CLOSE_STOPPING;
        FOR_EACH_WORKER_SAFE(w, pool) { /* detaching a remote worker unlinks it */
            worker_unserve(w, W_RETIRING);
            worker_detach(w);
        }
        uv_timer_start(&pool->kill_timer_, on_kill_timer, KILL_GRACE_MS, 0);
        if (pool->remote_) { /* no more workers wanted */
            uv_poll_stop(&pool->listen_);
            uv_timer_stop(&pool->heartbeat_);
        }
    }
    if (pool->closing_ == CLOSE_STOPPING && wl__q_empty(&pool->workers_) && !pool->whandles_ &&
        wl__q_empty(&pool->deferredq_) &&
        !pool->outstanding_) {
        pool->closing_ = CLOSE_HANDLES;
        uv_close((uv_handle_t *)&pool->sigchld_, on_pool_handle_closed);
        uv_close((uv_handle_t *)&pool->deferred_, on_pool_handle_closed);
        uv_close((uv_handle_t *)&pool->kill_timer_, on_pool_handle_closed);
        uv_close((uv_handle_t *)&pool->spin_, on_pool_handle_closed);
        if (pool->remote_)
            remote_close_handles(pool);
    }
}

/* The state every pool starts from: zeroed, its queues empty. */
static void pool_reset(uv_loop_t *loop, wl_ppool *pool)
{
    memset(pool, 0, sizeof(*pool));
    wl__q_init(&pool->queue_);
    wl__q_init(&pool->deferredq_);
    wl__q_init(&pool->workers_);
    pool->loop_ = loop;
}

/* Initialises the four handles every pool has, none started and none
 * keeping the loop alive but the kill timer (while it runs): deferred_,
 * kill_timer_, spin_, sigchld_. Returns 0 or uv_async_init's error (then
 * nothing needs closing). */
static int pool_init_handles(wl_ppool *pool)
{
    int err = uv_async_init(pool->loop_, &pool->deferred_, on_deferred);
    if (err)
        return err;
    pool->deferred_.data = pool;
    uv_unref((uv_handle_t *)&pool->deferred_);
    uv_timer_init(pool->loop_, &pool->kill_timer_);
    pool->kill_timer_.data = pool;
    uv_idle_init(pool->loop_, &pool->spin_);
    pool->spin_.data = pool;
    uv_unref((uv_handle_t *)&pool->spin_); /* never keeps the loop alive */
    uv_signal_init(pool->loop_, &pool->sigchld_);
    pool->sigchld_.data = pool;
    uv_unref((uv_handle_t *)&pool->sigchld_);
    pool->handles_ = 4;
    return 0;
}

int wl_ppool_init(uv_loop_t *loop, wl_ppool *pool, const wl_ppool_opts *opts)
{
    unsigned workers = opts && opts->workers ? opts->workers : wl__online_cpus();
    int err;

    if (!loop || !pool)
        return -EINVAL;
    pool_reset(loop, pool);
    pool->target_ = workers;
    pool->max_jobs_ = opts ? opts->max_jobs_per_worker : 0;
    pool->timeout_ms_ = opts ? opts->job_timeout_ms : 0;
    err = pool_init_handles(pool);
    if (err)
        return err;
    /* Watch SIGCHLD before the first fork, so no death goes unseen. */
    err = uv_signal_start(&pool->sigchld_, on_sigchld, SIGCHLD);
    if (err)
        goto close_handles;
    for (unsigned i = 0; i < workers; i++) {
        err = worker_spawn(pool);
        if (err)
            goto kill_workers;
    }
    return 0;

kill_workers:
    /* Init failed: take the forked workers down synchronously. */
    pool->closing_ = CLOSE_HANDLES; /* no respawn from worker_reaped */
    while (!wl__q_empty(&pool->workers_)) {
        wl_pworker *w = WORKER_OF(pool->workers_.next);
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
    if (inlen > WL_PPOOL_MSG_MAX - name_len)
        return -EMSGSIZE;
    if (pool->serving_ == 0 && !pool->remote_) {
        worker_top_up(pool);
        if (pool->serving_ == 0)
            return pool->spawn_error_ ? pool->spawn_error_ : -EAGAIN;
    }
    body = name_len + inlen;
    memset(req, 0, offsetof(wl_ppool_req, pool_)); /* public fields only */
    req->data = NULL;
    req->frame_ = malloc(WL_PPOOL_MSG_HDR + body);
    if (!req->frame_)
        return -ENOMEM;
    wl__ppool_msg_put_hdr(req->frame_, (uint32_t)body, (uint32_t)name_len);
    memcpy(req->frame_ + WL_PPOOL_MSG_HDR, name, name_len);
    if (inlen)
        memcpy(req->frame_ + WL_PPOOL_MSG_HDR + name_len, in, inlen);
    req->frame_len_ = WL_PPOOL_MSG_HDR + body;
    req->pool_ = pool;
    req->done_ = done;
    req->worker_ = NULL;
    req->timeout_ms_ = timeout_ms ? timeout_ms : pool->timeout_ms_;
    req->state_ = R_QUEUED;
    wl__q_push(&pool->queue_, &req->qnode_);
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
        wl__q_remove(&req->qnode_);
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
        wl_ppool_req *req;
        wl_pworker *w;
        while ((req = queue_first(pool))) {
            wl__q_remove(&req->qnode_);
            req_error(req, "cancelled: pool closed");
            req_defer(req, -ECANCELED);
        }
        FOR_EACH_WORKER_SAFE(w, pool) { /* detaching a remote worker unlinks it */
            if (w->state != W_BUSY)
                continue;
            worker_hard_stop(w);
            worker_unserve(w, W_KILLED);
            worker_detach(w);
            for (unsigned k = 0; k < w->rcount; k++) {
                req = w->ring[ring_slot(w, k)];
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
    const wl_pworker *w;

    FOR_EACH_WORKER(w, pool) {
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

unsigned wl_ppool_serving(const wl_ppool *pool)
{
    return pool->serving_;
}

/* ---- remote workers ---------------------------------------------------
 *
 * A remote pool listens on TCP. A connection becomes a wl_pworker in state
 * W_HELLO; its first frame must be the hello (WL_PPOOL_MSG_HELLO: token, node,
 * pid) with the pool's token, else it is dropped. From then on it is a
 * worker like a forked one, except: its window is one job (slot_revoke
 * cannot take back a job sent over the network), it is "reaped" when its
 * connection closes or it falls silent (heartbeat timer), and nobody
 * replaces it here. */

#define REMOTE_HEARTBEAT_TIMEOUT_MS 5000u

static void remote_forget(wl_pworker *w)
{
    worker_unlink(w);
}

static void remote_lost(wl_pworker *w, const char *what)
{
    char why[256];

    if (w->reaped)
        return;
    snprintf(why, sizeof(why), "worker on %s (pid %d) lost: %s", w->nodename[0] ? w->nodename : "?",
             (int)w->pid, what);
    worker_gone(w, why, 0);
}

/* Constant-time comparison, so the token cannot be guessed byte by byte. */
static int token_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    unsigned char diff = alen != blen;
    size_t n = alen < blen ? alen : blen;

    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

static void worker_flush(wl_pworker *w);

static int remote_hello(wl_pworker *w, const uint8_t *body, uint32_t len)
{
    wl_ppool *pool = w->pool;
    const char *p = (const char *)body;
    const char *end = p + len;
    const char *token = p;
    const char *node;
    const char *pid;
    size_t tlen;

    tlen = strnlen(token, (size_t)(end - token));
    node = token + tlen + 1;
    if (node >= end) {
        remote_lost(w, "bad hello");
        return -1;
    }
    pid = node + strnlen(node, (size_t)(end - node)) + 1;
    if (pid > end || !token_equal(token, tlen, pool->token_, strlen(pool->token_))) {
        remote_lost(w, "token refused");
        return -1;
    }
    snprintf(w->nodename, sizeof(w->nodename), "%.*s", (int)strnlen(node, (size_t)(end - node)), node);
    w->pid = pid < end ? (pid_t)strtol(pid, NULL, 10) : 0;
    /* the ack: the worker waits for it before serving (a refused token
     * is an EOF instead) */
    if (wl__bytes_reserve(&w->obuf, WL_PPOOL_MSG_HDR) == 0) {
        wl__ppool_msg_put_hdr(w->obuf.data + w->obuf.len, 0, WL_PPOOL_MSG_HELLO);
        w->obuf.len += WL_PPOOL_MSG_HDR;
        worker_flush(w);
    }
    w->state = W_IDLE;
    pool->serving_++;
    if (pool->remote_cb_)
        pool->remote_cb_(pool, w->nodename, (int)w->pid, 1);
    return 0;
}

static void on_listen(uv_poll_t *h, int status, int events)
{
    wl_ppool *pool = h->data;

    if (status < 0)
        return;
    for (;;) {
        wl_pworker *w;
        int one = 1;
        int fd = accept4(pool->listen_fd_, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0)
            break; /* EAGAIN, or a transient error: the next event retries */
        if (pool->closing_) {
            close(fd);
            continue;
        }
        w = calloc(1, sizeof(*w));
        if (w)
            w->ctl = mmap(NULL, sizeof(*w->ctl), PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (!w || w->ctl == MAP_FAILED) {
            free(w);
            close(fd);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        w->pool = pool;
        w->fd = fd;
        w->remote = 1;
        w->state = W_HELLO;
        w->heard_ns = uv_hrtime();
        wl__q_push_front(&pool->workers_, &w->node);
        uv_timer_init(pool->loop_, &w->timer);
        w->timer.data = w;
        w->handles++;
        pool->whandles_++;
        uv_poll_init(pool->loop_, &w->poll, fd);
        w->poll.data = w;
        w->handles++;
        pool->whandles_++;
        uv_unref((uv_handle_t *)&w->poll);
        uv_poll_start(&w->poll, UV_READABLE, on_poll);
    }
    pool_dispatch(pool);
}

static void on_heartbeat(uv_timer_t *h)
{
    wl_ppool *pool = h->data;
    uint64_t now = uv_hrtime();
    uint64_t limit = (uint64_t)pool->heartbeat_timeout_ms_ * 1000000u;

    wl_pworker *w;

    FOR_EACH_WORKER_SAFE(w, pool) {
        if (w->remote && !w->detached && now - w->heard_ns > limit) {
            char what[64];
            snprintf(what, sizeof(what), "no heartbeat for %u ms", pool->heartbeat_timeout_ms_);
            remote_lost(w, what);
        }
    }
    pool_dispatch(pool);
    pool_maybe_close(pool);
}

static void remote_close_handles(wl_ppool *pool)
{
    uv_close((uv_handle_t *)&pool->listen_, on_pool_handle_closed);
    uv_close((uv_handle_t *)&pool->heartbeat_, on_pool_handle_closed);
}

static int listen_on(const char *host, int port, int *out_fd, int *out_port)
{
    struct addrinfo hints;
    struct addrinfo *res = NULL;
    char portstr[16];
    int err = -EADDRNOTAVAIL;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    snprintf(portstr, sizeof(portstr), "%d", port);
    if (getaddrinfo(host, portstr, &hints, &res) != 0)
        return -EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int one = 1;
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);

        if (fd < 0) {
            err = -errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0 ||
            getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
            err = -errno;
            close(fd);
            continue;
        }
        *out_fd = fd;
        *out_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                   : ((struct sockaddr_in *)&ss)->sin_port);
        freeaddrinfo(res);
        return 0;
    }
    freeaddrinfo(res);
    return err;
}

int wl_ppool_init_remote(uv_loop_t *loop, wl_ppool *pool, const wl_ppool_opts *opts,
                         const wl_ppool_remote_opts *ro)
{
    size_t tlen;
    int err;

    if (!loop || !pool || !ro || !ro->token)
        return -EINVAL;
    tlen = strlen(ro->token);
    if (tlen < 16 || tlen > 255 || ro->port < 0 || ro->port > 65535)
        return -EINVAL;
    pool_reset(loop, pool);
    pool->remote_ = 1;
    pool->timeout_ms_ = opts ? opts->job_timeout_ms : 0;
    pool->heartbeat_timeout_ms_ =
        ro->heartbeat_timeout_ms ? ro->heartbeat_timeout_ms : REMOTE_HEARTBEAT_TIMEOUT_MS;
    pool->remote_cb_ = ro->worker_cb;
    pool->token_ = strdup(ro->token);
    if (!pool->token_)
        return -ENOMEM;
    err = listen_on(ro->host, ro->port, &pool->listen_fd_, &pool->port_);
    if (err) {
        free(pool->token_);
        pool->token_ = NULL;
        return err;
    }
    err = pool_init_handles(pool); /* sigchld_ never started: no children */
    if (err) {
        close(pool->listen_fd_);
        free(pool->token_);
        pool->token_ = NULL;
        return err;
    }
    uv_poll_init(loop, &pool->listen_, pool->listen_fd_);
    pool->listen_.data = pool;
    uv_unref((uv_handle_t *)&pool->listen_);
    uv_timer_init(loop, &pool->heartbeat_);
    pool->heartbeat_.data = pool;
    uv_unref((uv_handle_t *)&pool->heartbeat_);
    pool->handles_ += 2;
    uv_poll_start(&pool->listen_, UV_READABLE, on_listen);
    uv_timer_start(&pool->heartbeat_, on_heartbeat, 1000, 1000);
    return 0;
}

int wl_ppool_remote_port(const wl_ppool *pool)
{
    return pool->remote_ ? pool->port_ : -EINVAL;
}
