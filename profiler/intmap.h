/*
 * intmap.h -- a tiny open-addressing map from non-negative int keys (pids,
 * tids) to int values (indexes into the sampler's arrays). Linear probing,
 * tombstones on delete, doubles at 50 % load. Internal to the profiler.
 */
#ifndef WL_PROFILER_INTMAP_H
#define WL_PROFILER_INTMAP_H

#include <stddef.h>

typedef struct intmap {
    int *keys;    /* -1 empty, -2 deleted */
    int *values;
    size_t cap;   /* power of two */
    size_t used;  /* live + deleted slots */
} intmap;

int intmap_init(intmap *m);                  /* 0 or -ENOMEM */
void intmap_free(intmap *m);
int intmap_get(const intmap *m, int key, int *value); /* 1 found, 0 not */
int intmap_put(intmap *m, int key, int value);        /* 0 or -ENOMEM */
void intmap_del(intmap *m, int key);
void intmap_clear(intmap *m);                 /* removes every key */

#endif
