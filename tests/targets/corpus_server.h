/*
 * corpus_server.h -- a slow local server for the classifier's corpus
 * programs (header-only: each corpus program is one .c file).
 *
 * It stands in for "the network" of the brief's download examples: it
 * listens on 127.0.0.1 (ephemeral port), and for every 4-byte request
 * (a big-endian byte count) it waits `latency_ms`, then sends that many
 * bytes. It runs as one thread with one epoll loop; each connection has a
 * timerfd for its pending reply, so the server itself only ever waits in
 * epoll_wait. That matters: the profiler ranks a poll wait below a blocking
 * read, so while the client blocks in recv, the tick is the client's.
 *
 *   epoll: listen fd -> accept; conn fd -> read request, arm its timerfd;
 *          timerfd -> write the reply; eventfd -> stop.
 */
#ifndef CORPUS_SERVER_H
#define CORPUS_SERVER_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

enum { CORPUS_MAX_CONNS = 64 };

typedef struct corpus_conn {
    int fd;        /* accepted socket, -1 when free */
    int timer;     /* timerfd for the pending reply */
    uint32_t want; /* bytes to send when the timer fires */
} corpus_conn;

typedef struct corpus_server {
    int listen_fd;
    int port;
    int epfd;
    int stop_fd;
    int latency_ms;
    pthread_t thread;
    corpus_conn conns[CORPUS_MAX_CONNS];
} corpus_server;

/* epoll data: small integers tag the fixed fds, conn slots are 16 + 2i
 * (socket) and 17 + 2i (timer). */
enum { TAG_LISTEN = 1, TAG_STOP = 2, TAG_CONN0 = 16 };

static inline void corpus_die(const char *what)
{
    perror(what);
    exit(2);
}

static inline int corpus_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static inline int corpus_read_all(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = recv(fd, p, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static inline void corpus_epoll_add(int epfd, int fd, uint64_t tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        corpus_die("epoll_ctl");
}

static inline void corpus_conn_close(corpus_server *s, corpus_conn *c)
{
    close(c->fd);
    close(c->timer);
    c->fd = -1;
    c->timer = -1;
    (void)s;
}

static inline void corpus_accept(corpus_server *s)
{
    int fd = accept(s->listen_fd, NULL, NULL);
    if (fd < 0)
        return;
    for (int i = 0; i < CORPUS_MAX_CONNS; i++) {
        corpus_conn *c = &s->conns[i];
        if (c->fd >= 0)
            continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->fd = fd;
        c->timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
        if (c->timer < 0)
            corpus_die("timerfd_create");
        corpus_epoll_add(s->epfd, c->fd, TAG_CONN0 + 2 * (uint64_t)i);
        corpus_epoll_add(s->epfd, c->timer, TAG_CONN0 + 2 * (uint64_t)i + 1);
        return;
    }
    close(fd);
}

static inline void corpus_on_request(corpus_server *s, corpus_conn *c)
{
    uint32_t req;
    if (corpus_read_all(c->fd, &req, sizeof(req)) < 0) {
        corpus_conn_close(s, c);
        return;
    }
    c->want = ntohl(req);
    struct itimerspec its;
    memset(&its, 0, sizeof(its));
    its.it_value.tv_sec = s->latency_ms / 1000;
    its.it_value.tv_nsec = (long)(s->latency_ms % 1000) * 1000000L;
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
        its.it_value.tv_nsec = 1;
    timerfd_settime(c->timer, 0, &its, NULL);
}

static inline void corpus_on_timer(corpus_server *s, corpus_conn *c)
{
    static char chunk[16384];
    uint64_t expirations;
    if (read(c->timer, &expirations, sizeof(expirations)) < 0)
        return;
    uint32_t left = c->want;
    while (left > 0) {
        uint32_t n = left < sizeof(chunk) ? left : (uint32_t)sizeof(chunk);
        if (corpus_write_all(c->fd, chunk, n) < 0) {
            corpus_conn_close(s, c);
            return;
        }
        left -= n;
    }
}

static inline void *corpus_server_main(void *arg)
{
    corpus_server *s = arg;
    struct epoll_event evs[16];
    for (;;) {
        int n = epoll_wait(s->epfd, evs, 16, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            corpus_die("epoll_wait");
        for (int i = 0; i < n; i++) {
            uint64_t tag = evs[i].data.u64;
            if (tag == TAG_STOP)
                return NULL;
            if (tag == TAG_LISTEN) {
                corpus_accept(s);
                continue;
            }
            corpus_conn *c = &s->conns[(tag - TAG_CONN0) / 2];
            if (c->fd < 0)
                continue;
            if ((tag - TAG_CONN0) % 2 == 0)
                corpus_on_request(s, c);
            else
                corpus_on_timer(s, c);
        }
    }
}

/* Starts the server thread; s->port is the port to connect to. */
static inline void corpus_server_start(corpus_server *s, int latency_ms)
{
    memset(s, 0, sizeof(*s));
    for (int i = 0; i < CORPUS_MAX_CONNS; i++)
        s->conns[i].fd = s->conns[i].timer = -1;
    s->latency_ms = latency_ms;
    s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->listen_fd < 0)
        corpus_die("socket");
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof(a);
    if (bind(s->listen_fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        listen(s->listen_fd, CORPUS_MAX_CONNS) < 0 ||
        getsockname(s->listen_fd, (struct sockaddr *)&a, &alen) < 0)
        corpus_die("bind/listen");
    s->port = ntohs(a.sin_port);
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    s->stop_fd = eventfd(0, EFD_CLOEXEC);
    if (s->epfd < 0 || s->stop_fd < 0)
        corpus_die("epoll_create1/eventfd");
    corpus_epoll_add(s->epfd, s->listen_fd, TAG_LISTEN);
    corpus_epoll_add(s->epfd, s->stop_fd, TAG_STOP);
    if (pthread_create(&s->thread, NULL, corpus_server_main, s) != 0)
        corpus_die("pthread_create");
}

static inline void corpus_server_stop(corpus_server *s)
{
    uint64_t one = 1;
    if (write(s->stop_fd, &one, sizeof(one)) < 0)
        corpus_die("write eventfd");
    pthread_join(s->thread, NULL);
    for (int i = 0; i < CORPUS_MAX_CONNS; i++)
        if (s->conns[i].fd >= 0)
            corpus_conn_close(s, &s->conns[i]);
    close(s->listen_fd);
    close(s->epfd);
    close(s->stop_fd);
}

/* A connected blocking client socket. */
static inline int corpus_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        corpus_die("socket");
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        corpus_die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* Seconds on the monotonic clock. */
static inline double corpus_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU work with a result the compiler cannot drop: mixes buf into h. */
static inline uint64_t corpus_hash(const unsigned char *buf, size_t len, uint64_t h)
{
    for (size_t i = 0; i < len; i++) {
        h ^= buf[i];
        h *= 1099511628211ULL; /* FNV-1a prime */
    }
    return h;
}

/* This thread's CPU seconds. */
static inline double corpus_thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Computes for `seconds` of this thread's CPU time: bounded by time, not
 * by work, so Debug and sanitizer builds keep the same balance; and CPU
 * time, not wall time, so a loaded machine (whose run-queue delays wlprof
 * counts as neither computing nor waiting) does not shift it either. */
static inline uint64_t corpus_compute_for(double seconds, uint64_t h)
{
    unsigned char block[4096];
    for (size_t i = 0; i < sizeof(block); i++)
        block[i] = (unsigned char)(i * 31 + h);
    double end = corpus_thread_cpu() + seconds;
    while (corpus_thread_cpu() < end)
        h = corpus_hash(block, sizeof(block), h);
    return h;
}

#endif
