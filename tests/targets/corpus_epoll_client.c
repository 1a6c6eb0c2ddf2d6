/*
 * corpus_epoll_client.c -- label: I/O-bound, coroutine loop (multiplexed).
 *
 * The brief's asyncio + httpx version: eight non-blocking connections
 * driven by one epoll loop, each making twelve 100 ms requests in turn, so
 * the eight overlap: about 1.2 s, spent idling in epoll_wait.
 */
#include <fcntl.h>

#include "corpus_server.h"

enum { NCONN = 8, ROUNDS = 12, REPLY = 8192 };

typedef struct client {
    int fd;
    int done;      /* requests answered */
    uint32_t got;  /* bytes of the current reply */
} client;

static void send_request(client *c)
{
    uint32_t req = htonl(REPLY);
    if (corpus_write_all(c->fd, &req, sizeof(req)) < 0)
        corpus_die("send");
    c->got = 0;
}

int main(void)
{
    corpus_server srv;
    corpus_server_start(&srv, 100);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    client cl[NCONN];
    for (int i = 0; i < NCONN; i++) {
        cl[i].fd = corpus_connect(srv.port);
        cl[i].done = 0;
        fcntl(cl[i].fd, F_SETFL, fcntl(cl[i].fd, F_GETFL) | O_NONBLOCK);
        corpus_epoll_add(ep, cl[i].fd, (uint64_t)i);
        send_request(&cl[i]);
    }
    int finished = 0;
    uint64_t h = 14695981039346656037ULL;
    static unsigned char buf[REPLY];
    while (finished < NCONN) {
        struct epoll_event evs[NCONN];
        int n = epoll_wait(ep, evs, NCONN, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            corpus_die("epoll_wait");
        for (int k = 0; k < n; k++) {
            client *c = &cl[evs[k].data.u64];
            ssize_t r = recv(c->fd, buf, REPLY - c->got, 0);
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (r <= 0)
                corpus_die("recv");
            h = corpus_hash(buf, (size_t)r, h);
            c->got += (uint32_t)r;
            if (c->got < REPLY)
                continue;
            if (++c->done == ROUNDS)
                finished++;
            else
                send_request(c);
        }
    }
    for (int i = 0; i < NCONN; i++)
        close(cl[i].fd);
    close(ep);
    corpus_server_stop(&srv);
    printf("epoll_client: %d replies (%llu)\n", NCONN * ROUNDS, (unsigned long long)(h % 1000));
    return 0;
}
