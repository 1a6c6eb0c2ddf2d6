/* intmap.c -- see intmap.h. */
#include "intmap.h"

#include <errno.h>
#include <stdlib.h>

#define SLOT_EMPTY (-1)
#define SLOT_DELETED (-2)

static size_t slot_of(int key, size_t cap)
{
    /* Fibonacci hashing spreads consecutive pids across the table. */
    return (size_t)(((unsigned)key * 2654435769u) & (cap - 1));
}

static int alloc_table(wl__intmap *m, size_t cap)
{
    m->keys = malloc(cap * sizeof(*m->keys));
    m->values = malloc(cap * sizeof(*m->values));
    if (!m->keys || !m->values) {
        free(m->keys);
        free(m->values);
        m->keys = m->values = NULL;
        return -ENOMEM;
    }
    for (size_t i = 0; i < cap; i++)
        m->keys[i] = SLOT_EMPTY;
    m->cap = cap;
    m->used = 0;
    return 0;
}

int wl__intmap_init(wl__intmap *m)
{
    return alloc_table(m, 64);
}

void wl__intmap_free(wl__intmap *m)
{
    free(m->keys);
    free(m->values);
    m->keys = m->values = NULL;
    m->cap = m->used = 0;
}

int wl__intmap_get(const wl__intmap *m, int key, int *value)
{
    for (size_t i = slot_of(key, m->cap), n = 0; n < m->cap; i = (i + 1) & (m->cap - 1), n++) {
        if (m->keys[i] == SLOT_EMPTY)
            return 0;
        if (m->keys[i] == key) {
            if (value)
                *value = m->values[i];
            return 1;
        }
    }
    return 0;
}

static int grow(wl__intmap *m)
{
    wl__intmap old = *m;
    if (alloc_table(m, old.cap * 2) < 0) {
        *m = old;
        return -ENOMEM;
    }
    for (size_t i = 0; i < old.cap; i++)
        if (old.keys[i] >= 0)
            wl__intmap_put(m, old.keys[i], old.values[i]);
    wl__intmap_free(&old);
    return 0;
}

int wl__intmap_put(wl__intmap *m, int key, int value)
{
    if ((m->used + 1) * 2 > m->cap && grow(m) < 0)
        return -ENOMEM;
    size_t free_slot = (size_t)-1;
    for (size_t i = slot_of(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key) {
            m->values[i] = value;
            return 0;
        }
        if (m->keys[i] == SLOT_DELETED && free_slot == (size_t)-1)
            free_slot = i;
        if (m->keys[i] == SLOT_EMPTY) {
            if (free_slot == (size_t)-1) {
                free_slot = i;
                m->used++;
            }
            m->keys[free_slot] = key;
            m->values[free_slot] = value;
            return 0;
        }
    }
}

void wl__intmap_del(wl__intmap *m, int key)
{
    for (size_t i = slot_of(key, m->cap), n = 0; n < m->cap; i = (i + 1) & (m->cap - 1), n++) {
        if (m->keys[i] == SLOT_EMPTY)
            return;
        if (m->keys[i] == key) {
            m->keys[i] = SLOT_DELETED;
            return;
        }
    }
}

void wl__intmap_clear(wl__intmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        m->keys[i] = SLOT_EMPTY;
    m->used = 0;
}
