/*
 * bmap.h -- a byte-string -> uint32 hash map (open addressing, linear
 * probing, power-of-two capacity). Keys are copied; values are indices into
 * the caller's arrays. Private to wl_stacks.
 */
#ifndef WL_BMAP_H
#define WL_BMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct wl_bmap {
    struct wl_bmap_ent *ents; /* capacity entries; key == NULL: empty */
    size_t cap;
    size_t len;
} wl_bmap;

/* Looks key up; when absent inserts it with value *val. Either way *val ends
 * up holding the stored value. Returns 1 when found, 0 when inserted,
 * -ENOMEM. */
int wl__bmap_intern(wl_bmap *m, const void *key, size_t klen, uint32_t *val);

/* Looks key up without inserting: 1 and *val when found, else 0. */
int wl__bmap_find(const wl_bmap *m, const void *key, size_t klen, uint32_t *val);

/* Releases the map (not the values). Safe on a zeroed map. */
void wl__bmap_free(wl_bmap *m);

#endif
