/*
 * pools/internal.h -- what the process pool's parent side (procpool.c) and
 * worker side (worker.c) share: the message format and the worker entry.
 *
 * Messages (both directions, native byte order: both ends are the same
 * binary on the same machine). Called "messages", wl__ppool_msg_*, so they
 * are not taken for stack frames (wl_frame, wlprof/stacks.h) or for the
 * agent's stack files (agent/wire.h, WL_WIRE_*):
 *
 *   +---------+---------+---------------------------+
 *   | u32 len | u32 aux | body: len bytes           |
 *   +---------+---------+---------------------------+
 *   job:    aux = name length | window slot << 8; body = name bytes, then
 *           the payload
 *   reply:  aux = status (int32: 0 or negative errno);
 *           body = result bytes, or an error message when status < 0
 *
 * A worker has up to WL_PPOOL_WINDOW jobs in flight, answered in order.
 * Each in-flight job owns one slot of a control block shared with that
 * worker (MAP_SHARED, set up before the fork). The parent sets the slot to
 * SENT before writing the message; the worker atomically exchanges it to
 * RUNNING just before it starts the job and skips the job (reply
 * -ECANCELED) if it finds CANCELLED. The parent takes back a job that has
 * not started by a compare-and-swap SENT -> CANCELLED: when that succeeds
 * the job will never run in that worker (cancel, work stealing, re-queueing
 * after a death); when it fails the job has started.
 */
#ifndef WL_POOLS_INTERNAL_H
#define WL_POOLS_INTERNAL_H

#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "wlprof/pools.h"
#include "util/util.h" /* wl__bytes_reserve, wl__mono_ns, wl__q_* */

#define WL_PPOOL_MSG_HDR 8u
#define WL_PPOOL_MSG_MAX (1u << 30) /* body limit, both directions */
#define WL_PPOOL_NAME_MAX 63u

static inline void wl__ppool_msg_put_hdr(uint8_t *p, uint32_t len, uint32_t aux)
{
    memcpy(p, &len, sizeof(len));
    memcpy(p + 4, &aux, sizeof(aux));
}

static inline void wl__ppool_msg_get_hdr(const uint8_t *p, uint32_t *len, uint32_t *aux)
{
    memcpy(len, p, sizeof(*len));
    memcpy(aux, p + 4, sizeof(*aux));
}

#define WL_PPOOL_WINDOW 16u /* jobs in flight per worker; slot numbers fit aux */

enum { WL_SLOT_SENT = 1, WL_SLOT_RUNNING, WL_SLOT_CANCELLED };

/* Shared between the parent and one worker; see the top of this file. */
typedef struct wl__pctl {
    uint32_t slot[WL_PPOOL_WINDOW]; /* WL_SLOT_*, accessed with __atomic builtins */
} wl__pctl;

/* Online CPUs, at least 1: the default pool sizes. */
unsigned wl__online_cpus(void);

/* Body of a forked worker: serves jobs on fd until EOF, then _exit(0).
 * parent is the pid that forked it (to catch a parent that died before
 * PR_SET_PDEATHSIG was armed); ctl its shared control block. Never
 * returns. */
void wl__ppool_worker_main(int fd, pid_t parent, wl__pctl *ctl) __attribute__((noreturn));

/* The serving loop itself: runs job messages from fd in order and replies,
 * until EOF (0) or a broken stream (negative errno). */
int wl__ppool_serve(int fd, wl__pctl *ctl);
/* Sends one message (header + len body bytes) whole, serialised with the
 * replies. Returns 0, or -1 when the peer is gone. */
int wl__ppool_send_msg(int fd, uint32_t len, uint32_t aux, const void *body);
/* 1 while a job function runs in this worker. */
int wl__ppool_job_running(void);

/* Control messages of remote workers (worker -> pool). Replies carry a
 * status <= 0 in aux; these carry a positive code, so the two never mix. */
#define WL_PPOOL_MSG_HEARTBEAT 1u /* len 0: "still here", every second */
#define WL_PPOOL_MSG_HELLO 2u     /* body: "token\0node\0pid\0": first message */
#define WL_REMOTE_HELLO_MAX 512u

#endif
