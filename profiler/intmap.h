/*
 * intmap.h -- a tiny open-addressing map from non-negative int keys (pids,
 * tids) to int values (indexes into the sampler's arrays). Linear probing,
 * tombstones on delete, doubles at 50 % load. Internal to the profiler.
 */
#ifndef WL_PROFILER_INTMAP_H
#define WL_PROFILER_INTMAP_H

#include <stddef.h>

typedef struct wl__intmap {
    int *keys;    /* -1 empty, -2 deleted */
    int *values;
    size_t cap;   /* power of two */
    size_t used;  /* live + deleted slots */
} wl__intmap;

int wl__intmap_init(wl__intmap *m);                  /* 0 or -ENOMEM */
void wl__intmap_free(wl__intmap *m);
int wl__intmap_get(const wl__intmap *m, int key, int *value); /* 1 found, 0 not */
int wl__intmap_put(wl__intmap *m, int key, int value);        /* 0 or -ENOMEM */
void wl__intmap_del(wl__intmap *m, int key);
void wl__intmap_clear(wl__intmap *m);                 /* removes every key */

/* The names sampler.c still uses (it was being changed in parallel when
 * the symbols got the wl__ prefix): rename its calls, then drop these. */
typedef wl__intmap intmap;
#define intmap_init wl__intmap_init
#define intmap_free wl__intmap_free
#define intmap_get wl__intmap_get
#define intmap_put wl__intmap_put
#define intmap_del wl__intmap_del
#define intmap_clear wl__intmap_clear

#endif
