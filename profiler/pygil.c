/*
 * pygil.c -- see pygil.h. One entry per process: the comm it was probed
 * under and the GIL's [lo, hi) (0, 0 when it runs no supported CPython).
 */
#include "pygil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyreader/pyreader.h"

struct pygil_entry {
    int pid;
    uint64_t starttime; /* with pid: the process */
    char comm[17];      /* changes on exec: another image */
    uint64_t lo, hi;
};

static void probe(pygil_entry *e, int pid, uint64_t starttime, const char *comm)
{
    wl_py_target t;
    e->pid = pid;
    e->starttime = starttime;
    snprintf(e->comm, sizeof(e->comm), "%s", comm ? comm : "");
    e->lo = e->hi = 0;
    if (wl_py_probe(pid, 0, &t) == 0) {
        e->lo = t.gil_lo;
        e->hi = t.gil_hi;
    }
}

int wl__pygil_is_gil(pygil_cache *c, int pid, uint64_t starttime, const char *comm, uint64_t uaddr)
{
    if (!c->ready) {
        if (intmap_init(&c->index) < 0)
            return 0;
        c->ready = 1;
    }
    int idx;
    pygil_entry *e;
    if (intmap_get(&c->index, pid, &idx)) {
        e = &c->entries[idx];
        if (e->starttime != starttime || strcmp(e->comm, comm ? comm : "") != 0)
            probe(e, pid, starttime, comm); /* pid reused, or exec'd since */
    } else {
        if (c->n == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 16;
            pygil_entry *p = realloc(c->entries, cap * sizeof(*p));
            if (!p)
                return 0;
            c->entries = p;
            c->cap = cap;
        }
        if (intmap_put(&c->index, pid, (int)c->n) < 0)
            return 0;
        e = &c->entries[c->n++];
        probe(e, pid, starttime, comm);
    }
    return uaddr >= e->lo && uaddr < e->hi;
}

void wl__pygil_free(pygil_cache *c)
{
    if (c->ready)
        intmap_free(&c->index);
    free(c->entries);
    memset(c, 0, sizeof(*c));
}
