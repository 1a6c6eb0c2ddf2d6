/*
 * remote.c -- the worker side of a process pool over TCP: a supervisor
 * that keeps `slots` connections to a remote pool (wl_ppool_init_remote),
 * each served by a forked process running the same job loop as a local
 * worker (worker.c).
 *
 *   wlprof worker (supervisor)          coordinator (remote pool)
 *     ├─ serving process 1  ── TCP ──►  hello, then job frames / replies
 *     ├─ serving process 2  ── TCP ──►  + a heartbeat frame every second
 *     └─ ...
 *
 * Why a process per connection: a job that crashes (a task's segfault, a
 * task calling _exit) takes down one serving process, whose connection
 * closes, so the pool fails that one job; the supervisor then connects a
 * fresh process. The node keeps serving its share of the batch.
 *
 * Liveness both ways: each serving process has a heartbeat thread that
 * sends WL_PPOOL_MSG_HEARTBEAT every second (the pool drops a worker silent for
 * its heartbeat timeout: a node that vanished without closing its
 * sockets), and that watches the socket for the pool's end (POLLRDHUP).
 * When the pool goes away mid-job -- it closed the connection to cancel or
 * time out the job, or the coordinator died -- the thread kills the job's
 * process group (wl_ppool_worker_track_pgid) and exits with EXIT_POOL_GONE,
 * which the supervisor does not replace. Idle, the job loop sees EOF and
 * exits 0.
 *
 * The token travels in the hello frame, read by the supervisor from its
 * caller (wlprof worker takes it from the environment, never argv).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define EXIT_POOL_GONE 3   /* the pool closed or vanished: do not replace */
#define EXIT_NO_CONNECT 4  /* could not connect or the token was refused */
#define HEARTBEAT_MS 1000
#define RESPAWN_MAX 1000   /* replacements per slot: a job that always crashes ends */

static pid_t job_pgid; /* __atomic: the running job's process group, or 0 */

void wl_ppool_worker_track_pgid(pid_t pgid)
{
    __atomic_store_n(&job_pgid, pgid, __ATOMIC_RELEASE);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Connects to host:port, retrying until timeout_ms. Returns the fd, or a
 * negative errno. */
static int connect_pool(const char *host, int port, unsigned timeout_ms)
{
    uint64_t end = mono_ms() + timeout_ms;
    char portstr[16];
    int err = -ECONNREFUSED;

    snprintf(portstr, sizeof(portstr), "%d", port);
    do {
        struct addrinfo hints;
        struct addrinfo *res = NULL;

        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        if (getaddrinfo(host, portstr, &hints, &res) == 0) {
            for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
                int one = 1;
                int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
                if (fd < 0)
                    continue;
                if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    freeaddrinfo(res);
                    return fd;
                }
                err = -errno;
                close(fd);
            }
            freeaddrinfo(res);
        } else {
            err = -EHOSTUNREACH;
        }
        usleep(100 * 1000);
    } while (mono_ms() < end);
    return err;
}

typedef struct heartbeat {
    int fd;
} heartbeat;

static void *heartbeat_main(void *arg)
{
    heartbeat *hb = arg;

    for (;;) {
        struct pollfd pfd = {.fd = hb->fd, .events = POLLRDHUP};
        int n = poll(&pfd, 1, HEARTBEAT_MS);

        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0) {
            if (wl__ppool_send_msg(hb->fd, 0, WL_PPOOL_MSG_HEARTBEAT, NULL) == 0)
                continue;
        }
        /* The pool's end closed (or the socket broke). Idle, the job loop
         * sees EOF itself; mid-job, stop the job here. */
        if (!wl__ppool_job_running()) {
            usleep(200 * 1000); /* let the job loop read its EOF and exit 0 */
            if (!wl__ppool_job_running())
                _exit(0);
        }
        pid_t pg = __atomic_load_n(&job_pgid, __ATOMIC_ACQUIRE);
        if (pg > 0)
            kill(-pg, SIGKILL);
        _exit(EXIT_POOL_GONE);
    }
    return NULL;
}

/* Waits for the pool's ack of our hello. Returns 0, or -1 (refused: EOF,
 * or nothing within 30 s). */
static int read_ack(int fd)
{
    uint8_t hdr[WL_PPOOL_MSG_HDR];
    size_t got = 0;

    while (got < sizeof(hdr)) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        ssize_t n;
        if (poll(&pfd, 1, 30000) <= 0)
            return -1;
        n = read(fd, hdr + got, sizeof(hdr) - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    uint32_t len = 0;
    uint32_t aux = 0;
    wl__ppool_msg_get_hdr(hdr, &len, &aux);
    return len == 0 && aux == WL_PPOOL_MSG_HELLO ? 0 : -1;
}

/* One serving process: connect, hello, serve. Never returns. */
static void serve_connection(const wl_ppool_worker_opts *o, pid_t supervisor)
{
    char hello[WL_REMOTE_HELLO_MAX];
    wl__pctl *ctl;
    heartbeat hb;
    pthread_t thread;
    int n;
    int fd;

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != supervisor)
        _exit(EXIT_POOL_GONE);
    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL);
    fd = connect_pool(o->host, o->port, o->connect_timeout_ms ? o->connect_timeout_ms : 10000);
    if (fd < 0)
        _exit(EXIT_NO_CONNECT);
    n = snprintf(hello, sizeof(hello), "%s%c%s%c%d", o->token, 0, o->node ? o->node : "", 0,
                 (int)getpid());
    if (n < 0 || (size_t)n + 1 > sizeof(hello))
        _exit(EXIT_NO_CONNECT);
    if (wl__ppool_send_msg(fd, (uint32_t)n + 1, WL_PPOOL_MSG_HELLO, hello) < 0)
        _exit(EXIT_NO_CONNECT);
    if (read_ack(fd) < 0)
        _exit(EXIT_NO_CONNECT); /* token refused */
    ctl = calloc(1, sizeof(*ctl)); /* not shared: nothing is ever revoked */
    if (!ctl)
        _exit(127);
    hb.fd = fd;
    if (pthread_create(&thread, NULL, heartbeat_main, &hb) != 0)
        _exit(127);
    _exit(wl__ppool_serve(fd, ctl) == 0 ? 0 : 127);
}

static pid_t spawn_server(const wl_ppool_worker_opts *o)
{
    pid_t self = getpid();
    pid_t pid = fork();

    if (pid == 0)
        serve_connection(o, self);
    return pid;
}

int wl_ppool_worker_run(const wl_ppool_worker_opts *o, char *err, size_t errlen)
{
    unsigned slots;
    pid_t *pids;
    unsigned *respawns;
    unsigned live = 0;
    int ret = 0;
    int served = 0; /* some connection was accepted: later failures are the pool's end */

    if (!o || !o->host || !o->token || o->port <= 0 || o->port > 65535) {
        snprintf(err, errlen, "worker: host, port and token are needed");
        return -EINVAL;
    }
    wl_ppool_worker_opts again = *o;

    again.connect_timeout_ms = 1000; /* reconnecting: the pool is up, or gone */
    slots = o->slots ? o->slots : 1;
    pids = calloc(slots, sizeof(*pids));
    respawns = calloc(slots, sizeof(*respawns));
    if (!pids || !respawns) {
        free(pids);
        free(respawns);
        snprintf(err, errlen, "worker: out of memory");
        return -ENOMEM;
    }
    for (unsigned i = 0; i < slots; i++) {
        pids[i] = spawn_server(o);
        if (pids[i] < 0) {
            ret = -errno;
            snprintf(err, errlen, "worker: fork: %s", strerror(errno));
            break;
        }
        live++;
    }
    while (live) {
        int wstatus = 0;
        pid_t pid = waitpid(-1, &wstatus, 0);
        unsigned i;

        if (pid < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (i = 0; i < slots && pids[i] != pid; i++)
            ;
        if (i == slots)
            continue; /* not ours (a reparented job's process) */
        pids[i] = 0;
        live--;
        if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) {
            served = 1; /* the pool closed this connection normally */
            continue;
        }
        if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == EXIT_POOL_GONE) {
            /* the pool closed our connection mid-job: it cancelled or timed
             * the job out, or it is gone. A new connection tells which
             * (refused at once when the pool has stopped listening). */
            served = 1;
            pids[i] = spawn_server(&again);
            if (pids[i] > 0)
                live++;
            else
                pids[i] = 0;
            continue;
        }
        if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == EXIT_NO_CONNECT) {
            if (!served && !ret) {
                ret = -ECONNREFUSED;
                snprintf(err, errlen, "worker: cannot connect to %s:%d or token refused",
                         o->host, o->port);
            }
            continue;
        }
        /* A job crashed its serving process: connect a fresh one. */
        served = 1;
        if (++respawns[i] > RESPAWN_MAX)
            continue;
        pids[i] = spawn_server(&again);
        if (pids[i] > 0)
            live++;
        else
            pids[i] = 0;
    }
    free(pids);
    free(respawns);
    if (served)
        return 0;
    return ret;
}
