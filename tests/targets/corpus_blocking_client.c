/*
 * corpus_blocking_client.c -- label: I/O-bound, thread pool (blocking recv).
 *
 * The brief's requests-based download: one blocking socket, one request at
 * a time, each answered after 80 ms by a local server (corpus_server.h, a
 * thread in this process that only waits in epoll). Fourteen requests of
 * 16 KiB: about 1.1 s, almost all of it the client blocked in recv.
 */
#include "corpus_server.h"

int main(void)
{
    corpus_server srv;
    corpus_server_start(&srv, 80);
    int fd = corpus_connect(srv.port);
    static unsigned char reply[16384];
    uint64_t h = 14695981039346656037ULL;
    for (int i = 0; i < 14; i++) {
        uint32_t req = htonl(sizeof(reply));
        if (corpus_write_all(fd, &req, sizeof(req)) < 0 ||
            corpus_read_all(fd, reply, sizeof(reply)) < 0)
            corpus_die("request");
        h = corpus_hash(reply, sizeof(reply), h);
    }
    close(fd);
    corpus_server_stop(&srv);
    printf("blocking_client: 14 replies (%llu)\n", (unsigned long long)(h % 1000));
    return 0;
}
