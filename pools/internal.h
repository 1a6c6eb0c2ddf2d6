/*
 * pools/internal.h -- what the process pool's parent side (procpool.c) and
 * worker side (worker.c) share: the frame format and the worker entry.
 *
 * Frames (both directions, native byte order: both ends are the same
 * binary on the same machine):
 *
 *   +---------+---------+---------------------------+
 *   | u32 len | u32 aux | body: len bytes           |
 *   +---------+---------+---------------------------+
 *   job:    aux = name length; body = name bytes, then the payload
 *   reply:  aux = status (int32: 0 or negative errno);
 *           body = result bytes, or an error message when status < 0
 */
#ifndef WL_POOLS_INTERNAL_H
#define WL_POOLS_INTERNAL_H

#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "wlprof/pools.h"

#define WL_FRAME_HDR 8u
#define WL_FRAME_MAX (1u << 30) /* body limit, both directions */
#define WL_PPOOL_NAME_MAX 63u

static inline void wl_frame_put_hdr(uint8_t *p, uint32_t len, uint32_t aux)
{
    memcpy(p, &len, sizeof(len));
    memcpy(p + 4, &aux, sizeof(aux));
}

static inline void wl_frame_get_hdr(const uint8_t *p, uint32_t *len, uint32_t *aux)
{
    memcpy(len, p, sizeof(*len));
    memcpy(aux, p + 4, sizeof(*aux));
}

/* Online CPUs, at least 1: the default pool sizes. */
unsigned wl__online_cpus(void);

/* Makes room for n more bytes in b. Returns 0 or -ENOMEM. */
int wl__bytes_reserve(wl_bytes *b, size_t n);

/* Body of a forked worker: serves jobs on fd until EOF, then _exit(0).
 * parent is the pid that forked it (to catch a parent that died before
 * PR_SET_PDEATHSIG was armed). Never returns. */
void wl__ppool_worker_main(int fd, pid_t parent) __attribute__((noreturn));

#endif
