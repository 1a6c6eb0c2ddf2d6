/*
 * samples.c -- the built-in sample workloads of `wlprof samples` and
 * `wlprof run --sample NAME`: a task (sample_tasks.c) plus the inputs, and
 * for the network ones a local image server (httpd.c) started for the run.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wlprof/httpd.h"
#include "wlprof/samples.h"

#define SAMPLE_DELAY_MS 200
#define SAMPLE_IMAGE_BYTES (256 * 1024)

static int put(wl_bytes *in, const char *fmt, long a, long b)
{
    char buf[128];
    int k = snprintf(buf, sizeof(buf), fmt, a, b);
    return wl_bytes_append(in, buf, (size_t)k);
}

static int server_setup(void **ctx)
{
    wl_httpd_opts o = {.delay_ms = SAMPLE_DELAY_MS, .image_bytes = SAMPLE_IMAGE_BYTES};
    return wl_httpd_start((wl_httpd **)ctx, &o);
}

static void server_teardown(void *ctx)
{
    wl_httpd_stop(ctx);
}

static int image_input(void *ctx, int i, wl_bytes *in)
{
    return put(in, "{\"port\":%ld,\"id\":%ld}", wl_httpd_port(ctx), i + 1);
}

static int sleep_input(void *ctx, int i, wl_bytes *in)
{
    return put(in, "{\"ms\":%ld}", SAMPLE_DELAY_MS, 0);
}

static int primes_input(void *ctx, int i, wl_bytes *in)
{
    return put(in, "{\"n\":%ld}", 1500000 + 1000 * (long)i, 0);
}

static const wl_sample samples[] = {
    {"sleep", "waits 200 ms per job on a timer (async form: wl_sleep) -> coroutine loop",
     {0}, 20, NULL, sleep_input, NULL},
    {"download", "GETs a 256 KiB image from a local server answering after 200 ms "
                 "(async form: wl_tcp_connect/wl_read) -> coroutine loop",
     {0}, 20, server_setup, image_input, server_teardown},
    {"blocking_read", "the same download with blocking sockets only (no async form) "
                      "-> thread pool",
     {0}, 20, server_setup, image_input, server_teardown},
    {"primes", "counts primes below ~1.5 million by trial division (CPU) -> process pool",
     {0}, 8, NULL, primes_input, NULL},
};

static const wl_task_def *sample_task(size_t i)
{
    static const wl_task_def *const defs[] = {&wl__run_sample_sleep, &wl__run_sample_download,
                                              &wl__run_sample_blocking_read, &wl__run_sample_primes};
    return defs[i];
}

const wl_sample *wl_samples(size_t *n)
{
    static wl_sample table[sizeof(samples) / sizeof(samples[0])];
    static int filled;
    if (!filled) {
        for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
            table[i] = samples[i];
            table[i].task = *sample_task(i);
        }
        filled = 1;
    }
    *n = sizeof(samples) / sizeof(samples[0]);
    return table;
}

const wl_sample *wl_sample_find(const char *name)
{
    size_t n;
    const wl_sample *s = wl_samples(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(s[i].name, name) == 0)
            return &s[i];
    return NULL;
}
