/*
 * bmap.c -- see bmap.h. FNV-1a hashes, keys stored in their own allocation
 * next to their length; the table doubles at 50 % load.
 */
#include "bmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct wl_bmap_ent {
    unsigned char *key; /* owned copy, NULL when the slot is empty */
    size_t klen;
    uint64_t hash;
    uint32_t val;
};

static uint64_t fnv1a(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

static int grow(wl_bmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    struct wl_bmap_ent *e = calloc(cap, sizeof(*e));
    if (!e)
        return -ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->ents[i].key)
            continue;
        size_t j = m->ents[i].hash & (cap - 1);
        while (e[j].key)
            j = (j + 1) & (cap - 1);
        e[j] = m->ents[i];
    }
    free(m->ents);
    m->ents = e;
    m->cap = cap;
    return 0;
}

int wl__bmap_intern(wl_bmap *m, const void *key, size_t klen, uint32_t *val)
{
    if ((m->len + 1) * 2 > m->cap && grow(m) != 0)
        return -ENOMEM;
    uint64_t h = fnv1a(key, klen);
    size_t j = h & (m->cap - 1);
    while (m->ents[j].key) {
        struct wl_bmap_ent *e = &m->ents[j];
        if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0) {
            *val = e->val;
            return 1;
        }
        j = (j + 1) & (m->cap - 1);
    }
    unsigned char *copy = malloc(klen ? klen : 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, key, klen);
    m->ents[j] = (struct wl_bmap_ent){copy, klen, h, *val};
    m->len++;
    return 0;
}

int wl__bmap_find(const wl_bmap *m, const void *key, size_t klen, uint32_t *val)
{
    if (!m->cap)
        return 0;
    uint64_t h = fnv1a(key, klen);
    for (size_t j = h & (m->cap - 1); m->ents[j].key; j = (j + 1) & (m->cap - 1)) {
        const struct wl_bmap_ent *e = &m->ents[j];
        if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0) {
            *val = e->val;
            return 1;
        }
    }
    return 0;
}

void wl__bmap_free(wl_bmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->ents[i].key);
    free(m->ents);
    memset(m, 0, sizeof(*m));
}
