/*
 * util/util.h -- the small helpers every module shares (library wl_util,
 * the bottom of the module graph: it includes nothing of ours but the
 * public wlprof/common.h and wlprof/bytes.h). Internal: wl__ names, not
 * exported from libwlprof; the wl_bytes functions are public (wlprof/bytes.h).
 *
 *   time     wl__mono_s, wl__mono_ns, wl__tv_s
 *   numbers  wl__parse_count (the CLI's whole-number options)
 *   bytes    wl__bytes_reserve (room in a wl_bytes)
 *   queues   wl__q_*: the one intrusive doubly linked queue (circular, the
 *            head a sentinel wl_qnode), header-only; used by scheduler/ and
 *            pools/ (procpool.c, threadpool.c).
 *
 * Also in wl_util, with a public header of its own: the atomic output
 * files and one command's output rules (atomic.c, wlprof/outputs.h).
 */
#ifndef WL_UTIL_H
#define WL_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#include "wlprof/bytes.h"
#include "wlprof/common.h"

/* ---- time ---- */

/* Seconds on CLOCK_MONOTONIC; only differences mean anything. */
double wl__mono_s(void);
/* Nanoseconds on CLOCK_MONOTONIC. */
uint64_t wl__mono_ns(void);
/* A struct timeval (rusage times, gettimeofday) in seconds. */
static inline double wl__tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

/* ---- numbers ---- */

/* Parses s as a whole decimal number from min to max (no sign other than
 * '-', no fraction, nothing after it). Returns 0 and sets *out, -EINVAL when
 * s is not such a number, -ERANGE when it is outside [min, max]. */
int wl__parse_count(const char *s, long min, long max, long *out);

/* ---- bytes ---- */

/* Makes room for n more bytes. Returns 0 or -ENOMEM. */
int wl__bytes_reserve(wl_bytes *b, size_t n);

/* ---- intrusive queues (circular, head is a sentinel) ---- */

static inline void wl__q_init(wl_qnode *q)
{
    q->prev = q;
    q->next = q;
}
static inline bool wl__q_empty(const wl_qnode *q)
{
    return q->next == q;
}
/* Appends n at the tail of q. */
static inline void wl__q_push(wl_qnode *q, wl_qnode *n)
{
    n->prev = q->prev;
    n->next = q;
    q->prev->next = n;
    q->prev = n;
}
/* Inserts n at the head of q. */
static inline void wl__q_push_front(wl_qnode *q, wl_qnode *n)
{
    wl__q_push(q->next, n);
}
/* Unlinks n (a no-op on an unlinked, self-linked node). */
static inline void wl__q_remove(wl_qnode *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n;
    n->next = n;
}
/* Moves every node of from, in order, to the tail of q; from is left
 * empty. O(1). */
static inline void wl__q_splice(wl_qnode *q, wl_qnode *from)
{
    if (from->next == from)
        return;
    from->next->prev = q->prev;
    q->prev->next = from->next;
    from->prev->next = q;
    q->prev = from->prev;
    wl__q_init(from);
}
/* Makes to (uninitialised or empty) the queue from was; from is left
 * empty. */
static inline void wl__q_move(wl_qnode *from, wl_qnode *to)
{
    wl__q_init(to);
    wl__q_splice(to, from);
}
/* The first node of q, or NULL when q is empty. */
static inline wl_qnode *wl__q_first(const wl_qnode *q)
{
    return q->next == q ? NULL : q->next;
}
#define wl__q_data(n, type, field) ((type *)((char *)(n) - offsetof(type, field)))

#endif
