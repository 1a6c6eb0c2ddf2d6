/*
 * io.c -- awaitable I/O over libuv: sleep, files (uv_fs_*), name resolution
 * (uv_getaddrinfo), TCP connect/read/write/accept and handle close.
 *
 * Each call starts one libuv operation whose callback wakes a wl_waiter,
 * then waits on it (dogfooding the primitive the pools module uses). The
 * operation state (request + waiter) is a small heap block, so libuv and the
 * thread pool never write into a task stack that copy-stack mode may have
 * moved away; user buffers on the shared stack are refused with UV_EINVAL.
 *
 * Cancellation hooks: timers are stopped, thread-pool requests get
 * uv_cancel (if the work already runs, its completion arrives normally), a
 * pending read is stopped, a connect closes its socket. Writes and closes
 * are not interruptible: they complete on their own.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static int io_check(const void *buf, size_t len)
{
    wl_task *t = wl__current;
    if (!t)
        return UV_EINVAL;
    if (buf && wl__on_shared_stack(t->loop, buf, len))
        return UV_EINVAL;
    return 0;
}

/* ---- sleep: the task's own timer, the task's own waiter ---- */

static void on_sleep_timer(uv_timer_t *h)
{
    wl_task *t = h->data;
    wl_waiter_wake(&t->self_wait, 0);
}

static void sleep_cancel(wl_waiter *w)
{
    wl_task *t = w->data;
    uv_timer_stop(&t->sleep_timer);
    wl_waiter_wake(w, w->reason_);
}

int wl_sleep(uint64_t ms)
{
    wl_task *t = wl__current;
    if (!t)
        return UV_EINVAL;
    if (!t->sleep_timer_init) {
        uv_timer_init(t->loop->uv_, &t->sleep_timer);
        t->sleep_timer.data = t;
        t->sleep_timer_init = 1;
    }
    wl_waiter *w = &t->self_wait;
    wl_waiter_init(w);
    w->cancel = sleep_cancel;
    w->data = t;
    uv_timer_start(&t->sleep_timer, on_sleep_timer, wl__timer_delay(t->loop->uv_, ms), 0);
    return wl_waiter_wait(w);
}

/* ---- files ---- */

typedef struct fs_op {
    wl_waiter w;
    uv_fs_t req;
} fs_op;

static void on_fs_done(uv_fs_t *req)
{
    fs_op *op = req->data;
    wl_waiter_wake(&op->w, (int)req->result);
}

static void req_cancel(wl_waiter *w)
{
    /* fails when the work already runs; its completion then wakes us */
    uv_cancel((uv_req_t *)w->data);
}

/* Checks the call (in a task, buf not on the shared stack) and allocates
 * the operation. Returns 0 or an error (then *out is NULL). */
static int fs_op_new(const void *buf, size_t len, fs_op **out)
{
    *out = NULL;
    int rc = io_check(buf, len);
    if (rc)
        return rc;
    fs_op *op = calloc(1, sizeof(*op));
    if (!op)
        return UV_ENOMEM;
    op->w.cancel = req_cancel;
    op->w.data = &op->req;
    op->req.data = op;
    *out = op;
    return 0;
}

/* Waits for op's request started with start_rc; frees op. */
static ssize_t fs_finish(fs_op *op, int start_rc)
{
    ssize_t rc = start_rc;
    if (start_rc == 0) {
        wl_waiter_wait(&op->w);
        rc = op->w.reason_ ? op->w.reason_ : (ssize_t)op->req.result;
        /* an open that completed although we were interrupted: don't leak */
        if (op->w.reason_ && op->req.fs_type == UV_FS_OPEN && op->req.result >= 0) {
            uv_fs_t c;
            uv_fs_close(NULL, &c, (uv_file)op->req.result, NULL);
            uv_fs_req_cleanup(&c);
        }
    }
    uv_fs_req_cleanup(&op->req);
    free(op);
    return rc;
}

int wl_fs_open(const char *path, int flags, int mode)
{
    fs_op *op;
    int rc = fs_op_new(NULL, 0, &op);
    if (rc)
        return rc;
    rc = uv_fs_open(wl__current->loop->uv_, &op->req, path, flags, mode, on_fs_done);
    return (int)fs_finish(op, rc);
}

ssize_t wl_fs_read(int fd, void *buf, size_t len, int64_t offset)
{
    fs_op *op;
    int rc = fs_op_new(buf, len, &op);
    if (rc)
        return rc;
    uv_buf_t b = uv_buf_init(buf, (unsigned)len);
    rc = uv_fs_read(wl__current->loop->uv_, &op->req, fd, &b, 1, offset < 0 ? -1 : offset,
                    on_fs_done);
    return fs_finish(op, rc);
}

ssize_t wl_fs_write(int fd, const void *buf, size_t len, int64_t offset)
{
    fs_op *op;
    int rc = fs_op_new(buf, len, &op);
    if (rc)
        return rc;
    uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
    rc = uv_fs_write(wl__current->loop->uv_, &op->req, fd, &b, 1, offset < 0 ? -1 : offset,
                     on_fs_done);
    return fs_finish(op, rc);
}

int wl_fs_fsync(int fd)
{
    fs_op *op;
    int rc = fs_op_new(NULL, 0, &op);
    if (rc)
        return rc;
    rc = uv_fs_fsync(wl__current->loop->uv_, &op->req, fd, on_fs_done);
    return (int)fs_finish(op, rc);
}

int wl_fs_close(int fd)
{
    fs_op *op;
    int rc = fs_op_new(NULL, 0, &op);
    if (rc)
        return rc;
    op->w.nointr_ = 1; /* the descriptor must really be closed */
    rc = uv_fs_close(wl__current->loop->uv_, &op->req, fd, on_fs_done);
    return (int)fs_finish(op, rc);
}

/* ---- name resolution ---- */

typedef struct gai_op {
    wl_waiter w;
    uv_getaddrinfo_t req;
    struct addrinfo *res;
} gai_op;

static void on_gai_done(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    gai_op *op = req->data;
    op->res = res;
    wl_waiter_wake(&op->w, status);
}

int wl_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                   struct addrinfo **res)
{
    *res = NULL;
    int rc = io_check(NULL, 0);
    if (rc)
        return rc;
    gai_op *op = calloc(1, sizeof(*op));
    if (!op)
        return UV_ENOMEM;
    op->w.cancel = req_cancel;
    op->w.data = &op->req;
    op->req.data = op;
    rc = uv_getaddrinfo(wl__current->loop->uv_, &op->req, on_gai_done, node, service, hints);
    if (rc == 0) {
        rc = wl_waiter_wait(&op->w);
        if (rc == 0)
            *res = op->res;
        else if (op->res)
            uv_freeaddrinfo(op->res);
    }
    free(op);
    return rc;
}

/* ---- closing any handle ---- */

static void on_handle_closed(uv_handle_t *h)
{
    wl_waiter_wake(h->data, 0);
}

void wl_close(uv_handle_t *handle)
{
    wl_task *t = wl__current;
    if (uv_is_closing(handle))
        return;
    if (!t) {
        uv_close(handle, NULL);
        return;
    }
    wl_waiter *w = &t->self_wait;
    wl_waiter_init(w);
    w->nointr_ = 1;
    handle->data = w;
    uv_close(handle, on_handle_closed);
    wl_waiter_wait(w);
}

/* ---- TCP ---- */

typedef struct conn_op {
    wl_waiter w;
    uv_connect_t req;
    uv_tcp_t *tcp;
    wl_waiter closed; /* set up when the cancel hook closed the socket */
    int closing;
} conn_op;

static void on_connected(uv_connect_t *req, int status)
{
    conn_op *op = req->data;
    wl_waiter_wake(&op->w, status);
}

static void on_conn_closed(uv_handle_t *h)
{
    conn_op *op = h->data;
    wl_waiter_wake(&op->closed, 0);
}

static void connect_cancel(wl_waiter *w)
{
    conn_op *op = w->data;
    /* closing the socket makes libuv complete the connect with ECANCELED */
    op->closing = 1;
    op->tcp->data = op;
    uv_close((uv_handle_t *)op->tcp, on_conn_closed);
}

int wl_tcp_connect(uv_tcp_t *tcp, const struct sockaddr *addr)
{
    int rc = io_check(NULL, 0);
    if (rc)
        return rc;
    conn_op *op = calloc(1, sizeof(*op));
    if (!op)
        return UV_ENOMEM;
    op->w.cancel = connect_cancel;
    op->w.data = op;
    op->closed.nointr_ = 1;
    op->tcp = tcp;
    op->req.data = op;
    rc = uv_tcp_init(wl__current->loop->uv_, tcp);
    if (rc)
        goto out_free;
    rc = uv_tcp_connect(&op->req, tcp, addr, on_connected);
    if (rc == 0)
        rc = wl_waiter_wait(&op->w);
    if (op->closing)
        wl_waiter_wait(&op->closed);
    else if (rc)
        wl_close((uv_handle_t *)tcp);
out_free:
    free(op);
    return rc;
}

typedef struct read_op {
    wl_waiter w;
    char *buf;
    size_t len;
    ssize_t nread;
} read_op;

static void on_read_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    read_op *op = h->data;
    *buf = uv_buf_init(op->buf, (unsigned)op->len);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    read_op *op = s->data;
    if (nread == 0)
        return; /* EAGAIN: keep waiting */
    uv_read_stop(s);
    op->nread = nread;
    wl_waiter_wake(&op->w, 0);
}

static void read_cancel(wl_waiter *w)
{
    uv_read_stop(w->data);
    wl_waiter_wake(w, w->reason_);
}

ssize_t wl_read(uv_stream_t *stream, void *buf, size_t len)
{
    int rc = io_check(buf, len);
    if (rc)
        return rc;
    read_op *op = calloc(1, sizeof(*op));
    if (!op)
        return UV_ENOMEM;
    op->w.cancel = read_cancel;
    op->w.data = stream;
    op->buf = buf;
    op->len = len;
    void *saved = stream->data;
    stream->data = op;
    ssize_t n = uv_read_start(stream, on_read_alloc, on_read);
    if (n == 0) {
        n = wl_waiter_wait(&op->w);
        if (n == 0)
            n = op->nread == UV_EOF ? 0 : op->nread;
    }
    stream->data = saved;
    free(op);
    return n;
}

typedef struct write_op {
    wl_waiter w;
    uv_write_t req;
} write_op;

static void on_written(uv_write_t *req, int status)
{
    write_op *op = req->data;
    wl_waiter_wake(&op->w, status);
}

int wl_write(uv_stream_t *stream, const void *buf, size_t len)
{
    int rc = io_check(buf, len);
    if (rc)
        return rc;
    uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
    /* fast path: the socket buffer takes it all now, no wait at all */
    int n = uv_try_write(stream, &b, 1);
    if (n == (int)len)
        return 0;
    if (n > 0) {
        b.base += n;
        b.len -= (size_t)n;
    } else if (n != UV_EAGAIN && n != UV_ENOSYS) {
        return n;
    }
    write_op *op = calloc(1, sizeof(*op));
    if (!op)
        return UV_ENOMEM;
    op->req.data = op;
    rc = uv_write(&op->req, stream, &b, 1, on_written);
    if (rc == 0)
        rc = wl_waiter_wait(&op->w); /* no cancel hook: a write completes */
    free(op);
    return rc;
}

static void on_connection(uv_stream_t *server, int status)
{
    wl_listener *l = server->data;
    if (status < 0)
        l->error_ = status;
    else
        l->pending_++;
    if (l->waiter_) {
        wl_waiter *w = l->waiter_;
        l->waiter_ = NULL;
        wl_waiter_wake(w, 0);
    }
}

int wl_listen(wl_listener *l, const struct sockaddr *addr, int backlog)
{
    int rc = io_check(NULL, 0);
    if (rc)
        return rc;
    if (wl__on_shared_stack(wl__current->loop, l, sizeof(*l)))
        return UV_EINVAL;
    memset(l, 0, sizeof(*l));
    rc = uv_tcp_init(wl__current->loop->uv_, &l->tcp);
    if (rc)
        return rc;
    l->tcp.data = l;
    rc = uv_tcp_bind(&l->tcp, addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->tcp, backlog, on_connection);
    if (rc)
        wl_close((uv_handle_t *)&l->tcp);
    return rc;
}

int wl_listener_port(wl_listener *l)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    int rc = uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&ss, &len);
    if (rc)
        return rc;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static void accept_cancel(wl_waiter *w)
{
    wl_listener *l = w->data;
    l->waiter_ = NULL;
    wl_waiter_wake(w, w->reason_);
}

int wl_accept(wl_listener *l, uv_tcp_t *client)
{
    wl_task *t = wl__current;
    if (!t)
        return UV_EINVAL;
    while (l->pending_ == 0 && l->error_ == 0) {
        if (l->waiter_)
            return UV_EBUSY;
        wl_waiter *w = &t->self_wait;
        wl_waiter_init(w);
        w->cancel = accept_cancel;
        w->data = l;
        l->waiter_ = w;
        int rc = wl_waiter_wait(w);
        if (rc)
            return rc;
    }
    if (l->pending_ == 0) {
        int err = l->error_;
        l->error_ = 0;
        return err;
    }
    l->pending_--;
    int rc = uv_tcp_init(t->loop->uv_, client);
    if (rc)
        return rc;
    rc = uv_accept((uv_stream_t *)&l->tcp, (uv_stream_t *)client);
    if (rc)
        wl_close((uv_handle_t *)client);
    return rc;
}

void wl_listener_close(wl_listener *l)
{
    if (l->waiter_) { /* a task blocked in wl_accept: like libuv, abort it */
        wl_waiter *w = l->waiter_;
        l->waiter_ = NULL;
        wl_waiter_wake(w, UV_ECANCELED);
    }
    wl_close((uv_handle_t *)&l->tcp);
}
