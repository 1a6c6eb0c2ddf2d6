/*
 * pyreader.h -- reads CPython's interpreter state (threads, frames, code
 * objects) from a process's memory, given its pid: the agent's own process
 * (in the SIGPROF handler) or another one (`profile --pid`, the /proc
 * sampler's GIL check). Library wl_pyreader; also compiled into the agent.
 *
 * Memory is read with process_vm_readv only: a stale or wild pointer gives
 * EFAULT, never a fault, so the walk is safe from a signal handler while the
 * interpreter runs on. Nothing on the walking path allocates or locks.
 *
 * Supported: CPython 3.11, 3.12, 3.13 (x86-64 and aarch64 LP64 layouts,
 * default GIL builds), detected from the Py_Version the interpreter exports.
 */
#ifndef WL_AGENT_PYREADER_H
#define WL_AGENT_PYREADER_H

#include <stddef.h>
#include <stdint.h>

/* Struct offsets for one CPython minor version (pyreader.c). */
typedef struct wl_py_layout wl_py_layout;

/* One interpreter found in a process. */
typedef struct wl_py_target {
    int pid;
    unsigned version;        /* Py_Version: 0x030b02f0 is 3.11.2 final */
    const wl_py_layout *lay; /* NULL: version not supported */
    uint64_t runtime;        /* address of _PyRuntime */
    uint64_t gil_lo, gil_hi; /* the GIL's state (mutexes, conditions) */
    uint64_t code_type;      /* &PyCode_Type, 0 when not exported */
    char module[256];        /* file that exports _PyRuntime */
} wl_py_target;

/* A raw Python frame as captured: decoded later (wl_py_code, wl_py_line). */
typedef struct wl_py_frame {
    uint64_t code;  /* PyCodeObject address; 0 for a separator */
    int32_t lasti;  /* instruction index (code units) in the code */
    uint32_t flags; /* WL_PY_SEP: one C-level evaluation ends here */
} wl_py_frame;

#define WL_PY_SEP 1u

/* Finds CPython in process pid: the mapped file whose dynamic symbols
 * export _PyRuntime (the executable or libpython), its load address, and
 * Py_Version. version_override (0: none) replaces the version read (tests
 * simulate an unknown Python with it). Returns 0 when found and supported,
 * -ENOENT when pid runs no CPython (or one without the symbols), -ENOTSUP
 * when the version is not supported (t->version says which), or -errno.
 * Reads files and /proc: not for signal handlers. */
int wl_py_probe(int pid, unsigned version_override, wl_py_target *t);

/* Copies n bytes at addr of t->pid into buf. 0 or -errno (-EFAULT). */
int wl_py_read(const wl_py_target *t, uint64_t addr, void *buf, size_t n);

/* Address of the PyThreadState of thread tid (a kernel thread id), also
 * matched by pthread id when pthread_id != 0 (a fork child's thread keeps
 * its pthread id but not yet its new tid in the interpreter). 0 when none. */
uint64_t wl_py_find_thread(const wl_py_target *t, int tid, uint64_t pthread_id);

/* Whether tstate still belongs to thread tid (or pthread_id when != 0). */
int wl_py_thread_is(const wl_py_target *t, uint64_t tstate, int tid, uint64_t pthread_id);

/* Walks the frames of thread state tstate, innermost first, into out (max
 * entries). Each C-level evaluation loop (a _PyEval_EvalFrameDefault on the
 * native stack) ends with a separator entry, so native and Python stacks can
 * be merged. Returns the number of entries (0 when not in Python). */
int wl_py_walk(const wl_py_target *t, uint64_t tstate, wl_py_frame *out, int max);

/* A code object's description. */
typedef struct wl_py_code {
    int valid; /* 0: not a code object (a 3.13 frame may run other things) */
    int firstlineno;
    char qualname[256];
    char filename[1024];
    uint8_t *linetable; /* caller's buffer */
    size_t linetable_len;
} wl_py_code;

/* Reads the code object at addr: names, first line and location table into
 * out (linetable points at the caller's buffer lt of lt_cap bytes; a longer
 * table is cut, its later lines then unknown). 0 or -errno. */
int wl_py_code_read(const wl_py_target *t, uint64_t addr, uint8_t *lt, size_t lt_cap,
                    wl_py_code *out);

/* A few fields that identify the object at addr as the same code object as
 * when it was read (address reuse after a free changes them). */
int wl_py_code_ident(const wl_py_target *t, uint64_t addr, uint64_t ident[4]);

/* The source line of instruction lasti in a code object with this location
 * table (co_linetable, 3.11+ format) and first line. -1 when the
 * instruction has no line; firstlineno when lasti is before the start. */
int wl_py_line(const uint8_t *tab, size_t len, int firstlineno, int lasti);

/* Reads ELF file path's dynamic symbol name: its value (unrelocated). 0 or
 * -ENOENT / -errno. */
int wl_py_elf_dynsym(const char *path, const char *name, uint64_t *value);

#endif
