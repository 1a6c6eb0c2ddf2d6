/*
 * pyagent.h -- the agent's use of the Python frame reader (pyreader.h):
 * which interpreter runs in this process, the current thread's Python
 * frames for a sample, and the code objects those samples name. Private to
 * libwlprof-agent.so.
 */
#ifndef WL_AGENT_PYAGENT_H
#define WL_AGENT_PYAGENT_H

#include <stddef.h>
#include <stdint.h>

#include "agent_internal.h"
#include "wire.h"

/* The GIL's state in this process ([lo, hi), both 0 when not CPython). */
extern uintptr_t wl__py_gil_lo WL_AGENT_HIDDEN;
extern uintptr_t wl__py_gil_hi WL_AGENT_HIDDEN;

/* Whether a condition variable or mutex lies inside the GIL's state. */
static inline int wl__py_is_gil(const void *p)
{
    return (uintptr_t)p - wl__py_gil_lo < wl__py_gil_hi - wl__py_gil_lo;
}

/* Looks for CPython in this process image (once per image, outside signal
 * handlers). An unsupported version prints one notice; stacks stay native.
 * WLPROF_AGENT_PYTHON=0 turns Python frames off; WLPROF_AGENT_PY_VERSION
 * (hex, e.g. 0x030f0000) pretends another Py_Version, for tests. */
void wl__py_agent_init(void) WL_AGENT_HIDDEN;

/* In a fork child, before any sample: the reader reads the child now. */
void wl__py_agent_after_fork(void) WL_AGENT_HIDDEN;

/* A new output file: code objects must be described again in it. */
void wl__py_agent_new_file(void) WL_AGENT_HIDDEN;

/* The calling thread's (tid) Python frames into out, innermost first, for
 * a CPU sample or (is_wait) a wait. Async-signal-safe. Returns the count, 0
 * when not running Python. */
int wl__py_agent_capture(int tid, int is_wait, wl_wire_pyframe *out, int max) WL_AGENT_HIDDEN;

/* Before a PYFRAMES record r goes to the file: puts a PYCODE record for
 * every code object it names that the file does not describe yet. Drain
 * lock held (the writer thread or a final flush). final: the flush at
 * exit, after the interpreter may have freed its code objects, so one the
 * file already describes is taken as it was (pyagent.c, "At exit"). */
void wl__py_agent_describe(const wl_wire_rec *r, void (*put)(const void *p, size_t n),
                           int final) WL_AGENT_HIDDEN;

/* Whether any of the n captured frames names a code object the file does
 * not describe yet: then the writer should drain soon, while the object
 * is alive. A hint read without the drain lock (async-signal-safe). */
int wl__py_agent_any_new(const wl_wire_pyframe *f, int n) WL_AGENT_HIDDEN;

#endif
