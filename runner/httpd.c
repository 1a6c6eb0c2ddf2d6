/*
 * httpd.c -- the samples' local image server (wlprof/httpd.h).
 *
 * Layout: one listening socket on 127.0.0.1, an acceptor thread blocked in
 * accept(), and a detached thread per connection that reads the request
 * line, waits the delay, writes headers and the generated body, closes.
 *
 * Counting: `in_flight` goes up when a request line has been read and down
 * when its response has been written; `max_in_flight` keeps the peak. Both
 * under one mutex (a few hundred requests a second at most: contention is
 * not a concern, exactness is).
 *
 * Shutdown: shutdown(listen_fd) wakes accept() with an error; the acceptor
 * exits, then stop waits on a condition variable until the live connection
 * count reaches zero before freeing the server.
 */
#include "wlprof/httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct wl_httpd {
    int fd;                /* listening socket */
    int port;
    unsigned delay_ms;     /* default delay */
    size_t image_bytes;    /* default size */
    pthread_t acceptor;
    pthread_mutex_t mu;
    pthread_cond_t idle;   /* signalled when live reaches 0 */
    int live;              /* connection threads running */
    int in_flight;         /* requests between request line and response end */
    int max_in_flight;
    unsigned long served;
    int stopping;
};

typedef struct conn {
    wl_httpd *s;
    int fd;
} conn;

uint8_t wl_httpd_image_byte(long n, size_t i)
{
    return (uint8_t)((i * 31u + (size_t)n * 17u + (i >> 8)) & 0xff);
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t k = send(fd, p, len, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

/* Reads until the end of the request headers (or 4 KiB); 0 or -1. */
static int read_request(int fd, char *buf, size_t cap)
{
    size_t used = 0;
    while (used + 1 < cap) {
        ssize_t k = recv(fd, buf + used, cap - 1 - used, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        used += (size_t)k;
        buf[used] = '\0';
        if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n"))
            return 0;
    }
    return 0;
}

static void query_param(const char *q, const char *key, unsigned long *out)
{
    size_t klen = strlen(key);
    for (const char *p = q; p && *p; p = strchr(p, '&')) {
        if (*p == '&' || *p == '?')
            p++;
        if (strncmp(p, key, klen) == 0 && p[klen] == '=')
            *out = strtoul(p + klen + 1, NULL, 10);
    }
}

static void serve(wl_httpd *s, int fd)
{
    char req[4096];
    if (read_request(fd, req, sizeof(req)) < 0)
        return;
    pthread_mutex_lock(&s->mu);
    s->in_flight++;
    if (s->in_flight > s->max_in_flight)
        s->max_in_flight = s->in_flight;
    pthread_mutex_unlock(&s->mu);

    long n = -1;
    unsigned long delay = s->delay_ms;
    unsigned long size = s->image_bytes;
    char path[256] = "";
    if (sscanf(req, "GET %255s", path) == 1 && strncmp(path, "/img/", 5) == 0) {
        char *end;
        n = strtol(path + 5, &end, 10);
        if (end == path + 5 || n < 0)
            n = -1;
        if (n >= 0 && *end == '?') {
            query_param(end, "delay", &delay);
            query_param(end, "size", &size);
        }
    }
    if (n < 0) {
        static const char nf[] = "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        write_all(fd, nf, sizeof(nf) - 1);
    } else {
        struct timespec ts = {(time_t)(delay / 1000), (long)(delay % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
        char head[128];
        int hl = snprintf(head, sizeof(head),
                          "HTTP/1.0 200 OK\r\nContent-Type: image/x-raw\r\n"
                          "Content-Length: %lu\r\n\r\n",
                          size);
        int ok = write_all(fd, head, (size_t)hl) == 0;
        uint8_t chunk[16384];
        for (size_t off = 0; ok && off < size; off += sizeof(chunk)) {
            size_t len = size - off < sizeof(chunk) ? size - off : sizeof(chunk);
            for (size_t i = 0; i < len; i++)
                chunk[i] = wl_httpd_image_byte(n, off + i);
            ok = write_all(fd, chunk, len) == 0;
        }
    }
    pthread_mutex_lock(&s->mu);
    s->in_flight--;
    s->served++;
    pthread_mutex_unlock(&s->mu);
}

static void *conn_main(void *arg)
{
    conn *c = arg;
    wl_httpd *s = c->s;
    serve(s, c->fd);
    shutdown(c->fd, SHUT_WR);
    close(c->fd);
    free(c);
    pthread_mutex_lock(&s->mu);
    if (--s->live == 0)
        pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void *acceptor_main(void *arg)
{
    wl_httpd *s = arg;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (;;) {
        int fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            pthread_mutex_lock(&s->mu);
            int stop = s->stopping;
            pthread_mutex_unlock(&s->mu);
            if (stop)
                break;
            usleep(1000); /* EMFILE and friends: back off, keep serving */
            continue;
        }
        conn *c = malloc(sizeof(*c));
        pthread_t t;
        if (!c) {
            close(fd);
            continue;
        }
        c->s = s;
        c->fd = fd;
        pthread_mutex_lock(&s->mu);
        s->live++;
        pthread_mutex_unlock(&s->mu);
        if (pthread_create(&t, &attr, conn_main, c) != 0) {
            close(fd);
            free(c);
            pthread_mutex_lock(&s->mu);
            if (--s->live == 0)
                pthread_cond_broadcast(&s->idle);
            pthread_mutex_unlock(&s->mu);
        }
    }
    pthread_attr_destroy(&attr);
    return NULL;
}

int wl_httpd_start(wl_httpd **out, const wl_httpd_opts *opts)
{
    wl_httpd_opts o = {0};
    struct sockaddr_in addr = {.sin_family = AF_INET};
    socklen_t alen = sizeof(addr);
    int one = 1;
    int rc;

    if (opts)
        o = *opts;
    wl_httpd *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->delay_ms = o.delay_ms;
    s->image_bytes = o.image_bytes ? o.image_bytes : 64 * 1024;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->idle, NULL);
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        rc = -errno;
        goto free_server;
    }
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((uint16_t)o.port);
    if (bind(s->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(s->fd, 512) < 0 ||
        getsockname(s->fd, (struct sockaddr *)&addr, &alen) < 0) {
        rc = -errno;
        goto close_socket;
    }
    s->port = ntohs(addr.sin_port);
    /* The acceptor must not take the caller's signals (SIGCHLD, SIGINT). */
    sigset_t all;
    sigset_t old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = -pthread_create(&s->acceptor, NULL, acceptor_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc < 0)
        goto close_socket;
    *out = s;
    return 0;

close_socket:
    close(s->fd);
free_server:
    pthread_cond_destroy(&s->idle);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return rc;
}

int wl_httpd_port(const wl_httpd *s)
{
    return s->port;
}

int wl_httpd_max_in_flight(const wl_httpd *s)
{
    wl_httpd *m = (wl_httpd *)s;
    pthread_mutex_lock(&m->mu);
    int v = m->max_in_flight;
    pthread_mutex_unlock(&m->mu);
    return v;
}

unsigned long wl_httpd_requests(const wl_httpd *s)
{
    wl_httpd *m = (wl_httpd *)s;
    pthread_mutex_lock(&m->mu);
    unsigned long v = m->served;
    pthread_mutex_unlock(&m->mu);
    return v;
}

void wl_httpd_reset(wl_httpd *s)
{
    pthread_mutex_lock(&s->mu);
    s->max_in_flight = s->in_flight;
    s->served = 0;
    pthread_mutex_unlock(&s->mu);
}

void wl_httpd_stop(wl_httpd *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_mutex_unlock(&s->mu);
    shutdown(s->fd, SHUT_RDWR);
    pthread_join(s->acceptor, NULL);
    close(s->fd);
    pthread_mutex_lock(&s->mu);
    while (s->live > 0)
        pthread_cond_wait(&s->idle, &s->mu);
    pthread_mutex_unlock(&s->mu);
    pthread_cond_destroy(&s->idle);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
