/*
 * worker.c -- the worker side of the process pool: the function registry,
 * the byte buffer, and the loop a forked worker runs.
 *
 * Registry: a fixed table of (name, function) filled by the application
 * before it creates pools. A worker is a fork of the application, so it
 * holds the same table; a job names its function, which keeps the job
 * format independent of addresses (the same frames would work for an
 * exec'd or remote worker).
 *
 * Worker loop: blocking reads into a reused buffer; one read() usually
 * returns several job frames (the parent keeps up to WL_PPOOL_WINDOW in
 * flight and writes them together), which are run in order. Before each
 * job the worker claims its slot in the shared control block (SENT ->
 * RUNNING); a slot the parent revoked (CANCELLED) is skipped with an empty
 * -ECANCELED reply, so replies stay one per frame, in order. Each reply is
 * sent as soon as its job ends (one sendmsg() of header + body): a reply
 * held back to batch it would be lost if a later job crashed the worker.
 *
 * Death: the worker arms PR_SET_PDEATHSIG(SIGKILL) and exits on EOF, so it
 * never outlives the pool or its parent. It resets every signal handler it
 * inherited (the parent's, libuv's, a sanitizer's) so that a crash kills it
 * with the real signal, which the parent reports.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define REGISTRY_MAX 64

/* How long a worker polls for its next job before it blocks. Waking a
 * process that went to sleep costs tens of microseconds on an idle machine
 * (the CPU leaves its idle state; measured here: 51 us per round trip with
 * both sides blocking, 17 us with the worker polling 50 us first). Jobs
 * that come back to back therefore find the worker awake; a pool with no
 * work costs each worker at most this much CPU once, then it sleeps. */
#define WORKER_SPIN_NS 50000

/* read(2) of the next bytes from the parent: poll without blocking for up
 * to WORKER_SPIN_NS, then block. */
static ssize_t read_next(int fd, void *buf, size_t len)
{
    uint64_t end = wl__mono_ns() + WORKER_SPIN_NS;
    do {
        ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);
        if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
            return n;
    } while (wl__mono_ns() < end);
    return read(fd, buf, len);
}

typedef struct registry_entry {
    char name[WL_PPOOL_NAME_MAX + 1];
    wl_ppool_fn fn;           /* bytes flavour, or NULL */
    wl_ppool_json_fn json_fn; /* JSON flavour, or NULL */
} registry_entry;

/* Replies and heartbeats share the socket (remote.c's heartbeat thread). */
static pthread_mutex_t send_mu = PTHREAD_MUTEX_INITIALIZER;
/* Whether a job is running now, for the heartbeat thread. */
static int job_running;

int wl__ppool_job_running(void)
{
    return __atomic_load_n(&job_running, __ATOMIC_ACQUIRE);
}

static registry_entry registry[REGISTRY_MAX];
static int registry_len;

unsigned wl__online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

static int registry_add(const char *name, wl_ppool_fn fn, wl_ppool_json_fn json_fn)
{
    size_t len;

    if (!name || !*name || (!fn && !json_fn))
        return -EINVAL;
    len = strlen(name);
    if (len > WL_PPOOL_NAME_MAX)
        return -ENAMETOOLONG;
    for (int i = 0; i < registry_len; i++)
        if (strcmp(registry[i].name, name) == 0)
            return -EEXIST;
    if (registry_len == REGISTRY_MAX)
        return -ENOSPC;
    memcpy(registry[registry_len].name, name, len + 1);
    registry[registry_len].fn = fn;
    registry[registry_len].json_fn = json_fn;
    registry_len++;
    return 0;
}

int wl_ppool_register(const char *name, wl_ppool_fn fn)
{
    return registry_add(name, fn, NULL);
}

int wl_ppool_register_json(const char *name, wl_ppool_json_fn fn)
{
    return registry_add(name, NULL, fn);
}

static const registry_entry *registry_find(const uint8_t *name, size_t len)
{
    for (int i = 0; i < registry_len; i++)
        if (strlen(registry[i].name) == len && memcmp(registry[i].name, name, len) == 0)
            return &registry[i];
    return NULL;
}

static int call_json(const registry_entry *e, const uint8_t *in, size_t inlen, wl_bytes *out)
{
    json_error_t jerr;
    json_t *args = json_loadb((const char *)in, inlen, JSON_DECODE_ANY, &jerr);
    json_t *result = NULL;
    char *text;
    int err;

    if (!args) {
        const char msg[] = "payload is not JSON";
        wl_bytes_append(out, msg, sizeof(msg) - 1);
        return -EINVAL;
    }
    err = e->json_fn(args, &result);
    json_decref(args);
    if (err < 0) {
        json_decref(result);
        return err;
    }
    if (!result)
        result = json_null();
    text = json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(result);
    if (!text)
        return -ENOMEM;
    err = wl_bytes_append(out, text, strlen(text));
    free(text);
    return err;
}

/* Runs one job; the reply status is the return value, *out the body. */
static int run_job(const uint8_t *body, uint32_t len, uint32_t name_len, wl_bytes *out)
{
    const registry_entry *e;
    char msg[WL_PPOOL_NAME_MAX + 64];
    int n;

    if (name_len > len || name_len > WL_PPOOL_NAME_MAX)
        return -EPROTO;
    e = registry_find(body, name_len);
    if (!e) {
        n = snprintf(msg, sizeof(msg), "no function '%.*s' registered", (int)name_len, body);
        wl_bytes_append(out, msg, (size_t)n);
        return -ENOENT;
    }
    if (e->fn)
        return e->fn(body + name_len, len - name_len, out);
    return call_json(e, body + name_len, len - name_len, out);
}

/* Writes one whole frame (header + body) under send_mu. Returns 0, or -1
 * when the peer is gone. */
int wl__ppool_send_msg(int fd, uint32_t len, uint32_t aux, const void *body)
{
    uint8_t hdr[WL_PPOOL_MSG_HDR];
    struct iovec iov[2];
    struct msghdr msg;
    int ret = 0;

    wl__ppool_msg_put_hdr(hdr, len, aux);
    iov[0].iov_base = hdr;
    iov[0].iov_len = sizeof(hdr);
    iov[1].iov_base = (void *)body;
    iov[1].iov_len = len;
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = iov;
    msg.msg_iovlen = len ? 2 : 1;
    pthread_mutex_lock(&send_mu);
    while (msg.msg_iovlen) {
        ssize_t sent = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR)
                continue;
            ret = -1;
            break;
        }
        while (msg.msg_iovlen && (size_t)sent >= msg.msg_iov->iov_len) {
            sent -= (ssize_t)msg.msg_iov->iov_len;
            msg.msg_iov++;
            msg.msg_iovlen--;
        }
        if (msg.msg_iovlen) {
            msg.msg_iov->iov_base = (uint8_t *)msg.msg_iov->iov_base + sent;
            msg.msg_iov->iov_len -= (size_t)sent;
        }
    }
    pthread_mutex_unlock(&send_mu);
    return ret;
}

static int send_reply(int fd, int status, const wl_bytes *out)
{
    size_t len = out->len;

    if (len > WL_PPOOL_MSG_MAX) {
        status = -EMSGSIZE;
        len = 0;
    }
    return wl__ppool_send_msg(fd, (uint32_t)len, (uint32_t)status, out->data);
}

static void worker_detach_from_parent(int *fd, pid_t parent)
{
    sigset_t none;

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(0); /* the parent died before the line above */
    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL); /* fails harmlessly for SIGKILL, SIGSTOP, ... */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (*fd != 3) {
        if (dup2(*fd, 3) < 0)
            _exit(127);
        *fd = 3;
    }
    /* Drop every other descriptor: the sibling workers' sockets above all,
     * or a dead sibling's parent end would never see EOF. */
    close_range(4, ~0u, 0);
}

/* Serves job frames on fd until EOF (returns 0) or a broken stream
 * (returns -EPROTO / -errno). Replies go out under send_mu, which the
 * remote worker's heartbeat thread shares. */
int wl__ppool_serve(int fd, wl__pctl *ctl)
{
    wl_bytes in = {0};
    wl_bytes out = {0};
    size_t off = 0; /* start of the first unprocessed frame in `in` */
    int ret = 0;

    for (;;) {
        size_t need = WL_PPOOL_MSG_HDR;
        ssize_t n;

        /* Run every complete frame buffered, in order. */
        while (in.len - off >= WL_PPOOL_MSG_HDR) {
            uint32_t len = 0;
            uint32_t aux = 0;
            uint32_t slot;
            int status;

            wl__ppool_msg_get_hdr(in.data + off, &len, &aux);
            if (len > WL_PPOOL_MSG_MAX) {
                ret = -EPROTO;
                goto out;
            }
            need = WL_PPOOL_MSG_HDR + len;
            if (in.len - off < need)
                break;
            slot = aux >> 8;
            if (slot >= WL_PPOOL_WINDOW) {
                ret = -EPROTO;
                goto out;
            }
            out.len = 0;
            if (__atomic_exchange_n(&ctl->slot[slot], WL_SLOT_RUNNING, __ATOMIC_ACQ_REL) ==
                WL_SLOT_CANCELLED) {
                status = -ECANCELED; /* taken back before it started */
            } else {
                __atomic_store_n(&job_running, 1, __ATOMIC_RELEASE);
                status = run_job(in.data + off + WL_PPOOL_MSG_HDR, len, aux & 0xffu, &out);
                __atomic_store_n(&job_running, 0, __ATOMIC_RELEASE);
            }
            if (send_reply(fd, status, &out) < 0)
                goto out; /* parent gone */
            off += need;
            need = WL_PPOOL_MSG_HDR;
        }
        if (off) {
            memmove(in.data, in.data + off, in.len - off);
            in.len -= off;
            off = 0;
        }
        if (wl__bytes_reserve(&in, need - in.len > 4096 ? need - in.len : 4096) < 0) {
            ret = -ENOMEM;
            goto out;
        }
        n = read_next(fd, in.data + in.len, in.cap - in.len);
        if (n == 0)
            goto out; /* EOF: pool closed or parent died */
        if (n < 0) {
            if (errno == EINTR)
                continue;
            goto out;
        }
        in.len += (size_t)n;
    }
out:
    wl_bytes_free(&in);
    wl_bytes_free(&out);
    return ret;
}

void wl__ppool_worker_main(int fd, pid_t parent, wl__pctl *ctl)
{
    worker_detach_from_parent(&fd, parent);
    _exit(wl__ppool_serve(fd, ctl) == 0 ? 0 : 127);
}
