/*
 * pygil.h -- is a thread blocked in futex waiting for CPython's GIL?
 * (internal to the profiler)
 *
 * A thread that waits for the GIL sleeps in futex on a word inside the
 * interpreter's GIL state (its mutex or condition variables), which lies in
 * _PyRuntime; any other futex is the program's own lock. The GIL's address
 * range comes from the Python frame reader (pyreader/pyreader.h): _PyRuntime
 * from the target's ELF dynamic symbols and its load address in
 * /proc/PID/maps. Looked up once per process image (again after an exec,
 * seen as a changed comm), only for processes seen waiting in futex.
 */
#ifndef WL_PROFILER_PYGIL_H
#define WL_PROFILER_PYGIL_H

#include <stdint.h>

#include "intmap.h"

typedef struct pygil_entry pygil_entry;

typedef struct pygil_cache {
    intmap index; /* pid -> entries */
    pygil_entry *entries;
    size_t n, cap;
    int ready;
} pygil_cache;

/* Whether futex word uaddr of process pid (started at starttime, clock
 * ticks after boot; its comm now is comm) is the GIL's. c may be a zeroed
 * cache (initialised on first use). */
int wl__pygil_is_gil(pygil_cache *c, int pid, uint64_t starttime, const char *comm, uint64_t uaddr);

void wl__pygil_free(pygil_cache *c);

#endif
