/*
 * bytes.c -- wl_bytes, the growable buffer of wlprof/bytes.h.
 */
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int wl__bytes_reserve(wl_bytes *b, size_t n)
{
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 64;
        uint8_t *data;
        while (cap - b->len < n) {
            if (cap > SIZE_MAX / 2)
                return -ENOMEM;
            cap *= 2;
        }
        data = realloc(b->data, cap);
        if (!data)
            return -ENOMEM;
        b->data = data;
        b->cap = cap;
    }
    return 0;
}

int wl_bytes_append(wl_bytes *b, const void *p, size_t n)
{
    if (wl__bytes_reserve(b, n) < 0)
        return -ENOMEM;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

void wl_bytes_free(wl_bytes *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
