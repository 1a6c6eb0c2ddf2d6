/*
 * wlprof/bytes.h -- a growable byte buffer: the payloads and results of
 * pool jobs (wlprof/pools.h) and of the runner's tasks (wlprof/run.h).
 * Library: util/ (in libwlprof).
 */
#ifndef WLPROF_BYTES_H
#define WLPROF_BYTES_H

#include <stddef.h>
#include <stdint.h>

#include "wlprof/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A growable byte buffer. Zero-initialise it; free with wl_bytes_free. */
typedef struct wl_bytes {
    uint8_t *data;
    size_t len;
    size_t cap;
} wl_bytes;

/* Appends n bytes. Returns 0 or -ENOMEM (b unchanged). */
WL_API int wl_bytes_append(wl_bytes *b, const void *p, size_t n);
/* Frees the data and zeroes *b. */
WL_API void wl_bytes_free(wl_bytes *b);

#ifdef __cplusplus
}
#endif
#endif
