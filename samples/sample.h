/*
 * sample.h -- the few helpers every sample program needs, kept out of the
 * samples so each one shows only its lesson.
 *
 * Header-only (static inline): a sample stays one .c file plus this header,
 * and build/samples/NAME needs no extra library. Nothing here is part of the
 * wlprof API.
 *
 *   sample_now()          monotonic wall clock in seconds
 *   sample_scale_arg()    the value of "--scale F" (durations multiplier)
 *   sample_loop_init()    wl_loop_init that says on stderr why it failed
 *   sample_uv_open/close  a libuv loop owned by main, shared by a wl_loop and
 *                         the pools (wlprof/pools.h) that run on it
 */
#ifndef WLPROF_SAMPLE_H
#define WLPROF_SAMPLE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wlprof/sched.h"

/* Seconds on the monotonic clock; only differences mean anything. */
static inline double sample_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The F of "--scale F" in argv (the last one wins), 1.0 without one. Every
 * duration of the brief is multiplied by it, so tests can run a sample
 * faster. Other arguments are ignored. */
static inline double sample_scale_arg(int argc, char **argv)
{
    double scale = 1.0;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--scale") == 0 && i + 1 < argc)
            scale = atof(argv[++i]);
    return scale;
}

/* wl_loop_init(loop, uv, opts); on failure prints why on stderr. Returns
 * wl_loop_init's result. */
static inline int sample_loop_init(wl_loop *loop, uv_loop_t *uv, const wl_loop_options *opts)
{
    int rc = wl_loop_init(loop, uv, opts);
    if (rc)
        fprintf(stderr, "wl_loop_init: %s\n", wl_strerror(rc));
    return rc;
}

/* Initialises the caller's libuv loop uv and a wl_loop on it, for samples
 * that also run pools on uv. Returns 0 or a negative errno. */
static inline int sample_uv_open(uv_loop_t *uv, wl_loop *loop)
{
    int rc = uv_loop_init(uv);
    if (rc)
        return rc;
    rc = sample_loop_init(loop, uv, NULL);
    if (rc)
        uv_loop_close(uv);
    return rc;
}

/* Closes what sample_uv_open opened. Call after the pools on uv were closed
 * (wl_tpool_close / wl_ppool_close): runs uv until their handles are gone,
 * closes the wl_loop, runs uv again for the loop's own handles, then closes
 * uv. */
static inline void sample_uv_close(uv_loop_t *uv, wl_loop *loop)
{
    uv_run(uv, UV_RUN_DEFAULT);
    wl_loop_close(loop);
    uv_run(uv, UV_RUN_DEFAULT);
    uv_loop_close(uv);
}

#endif
