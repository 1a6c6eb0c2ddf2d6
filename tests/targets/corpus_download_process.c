/*
 * corpus_download_process.c -- label: mixed, split.
 *
 * The brief's download_and_process(): fetch eight 64 KiB "images" from a
 * local server one after another (100 ms latency each, blocking recv,
 * about 0.8 s), then process them for 0.8 s of computing. Half waiting,
 * half computing: neither a loop nor a process pool alone helps both.
 */
#include "corpus_server.h"

enum { IMAGES = 8, IMAGE = 65536 };

int main(void)
{
    corpus_server srv;
    corpus_server_start(&srv, 100);
    int fd = corpus_connect(srv.port);
    static unsigned char images[IMAGES][IMAGE];
    for (int i = 0; i < IMAGES; i++) {
        uint32_t req = htonl(IMAGE);
        if (corpus_write_all(fd, &req, sizeof(req)) < 0 ||
            corpus_read_all(fd, images[i], IMAGE) < 0)
            corpus_die("download");
    }
    close(fd);
    corpus_server_stop(&srv);

    uint64_t h = 14695981039346656037ULL;
    for (int i = 0; i < IMAGES; i++)
        h = corpus_hash(images[i], IMAGE, h);
    h = corpus_compute_for(0.8, h);
    printf("download_process: %d images (%llu)\n", IMAGES, (unsigned long long)(h % 1000));
    return 0;
}
