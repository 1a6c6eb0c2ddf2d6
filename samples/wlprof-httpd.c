/*
 * wlprof-httpd -- the local image server of the download_images sample, in
 * a process of its own (wlprof/httpd.h does the serving).
 *
 *   usage: wlprof-httpd CMD_FD RSP_FD DELAY_MS
 *
 * Writes the bound port to RSP_FD, then answers one line "MAX REQUESTS"
 * (peak requests in flight, requests served) per command byte read from
 * CMD_FD: 'r' resets the counters first, 's' only reports; 'q' or the end
 * of CMD_FD stops it. `wlprof profile` leaves a process of this name out of
 * a profile: it is the sample's testbed, not the program under study.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "wlprof/httpd.h"

#define IMAGE_BYTES (256 * 1024) /* as download_images expects */

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: wlprof-httpd CMD_FD RSP_FD DELAY_MS (started by download_images)\n");
        return 2;
    }
    int cmd_fd = atoi(argv[1]);
    FILE *out = fdopen(atoi(argv[2]), "w");
    wl_httpd *srv;
    wl_httpd_opts o = {.delay_ms = (unsigned)atoi(argv[3]), .image_bytes = IMAGE_BYTES};
    if (!out || wl_httpd_start(&srv, &o) < 0) {
        perror("wlprof-httpd");
        return 1;
    }
    fprintf(out, "%d\n", wl_httpd_port(srv));
    fflush(out);
    char c;
    while (read(cmd_fd, &c, 1) == 1 && c != 'q') {
        if (c == 'r')
            wl_httpd_reset(srv);
        fprintf(out, "%d %lu\n", wl_httpd_max_in_flight(srv), wl_httpd_requests(srv));
        fflush(out);
    }
    wl_httpd_stop(srv);
    return 0;
}
