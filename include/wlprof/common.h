/*
 * wlprof/common.h -- what every public wlprof header shares.
 *
 * The libraries are built with hidden visibility (-fvisibility=hidden);
 * WL_API marks the functions that form the public API, and is the one
 * export macro: libwlprof.so exports exactly the WL_API functions of the
 * installed headers (tests/install checks it). Internal functions shared
 * between files carry the wl__ prefix and no WL_API. Included by every
 * header in include/wlprof/, never needed directly by callers.
 */
#ifndef WLPROF_COMMON_H
#define WLPROF_COMMON_H

#define WL_API __attribute__((visibility("default")))

/* Doubly linked intrusive queue node, embedded in public structs (private
 * fields; operated on by util/util.h's wl__q_* only). */
typedef struct wl_qnode {
    struct wl_qnode *prev;
    struct wl_qnode *next;
} wl_qnode;

#endif
