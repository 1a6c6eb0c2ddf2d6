/*
 * pylayout.h -- the struct offsets the Python frame reader uses, per CPython
 * minor version (values and why they are hard-coded: pyreader.c). Private
 * to wl_pyreader and its offset test (tests/agent/pyoffsets_check.c).
 */
#ifndef WL_AGENT_PYLAYOUT_H
#define WL_AGENT_PYLAYOUT_H

#include <stdint.h>

#include "pyreader.h"

struct wl_py_layout {
    unsigned minor;            /* 3.minor */
    uint32_t rt_interp_head;   /* _PyRuntime.interpreters.head */
    uint32_t rt_gil, gil_size; /* the main interpreter's GIL state */
    uint32_t interp_next, interp_threads_head;
    uint32_t ts_next, ts_thread_id, ts_native_thread_id;
    int32_t ts_cframe;  /* -1: current_frame is in the thread state */
    uint32_t cur_frame; /* in the cframe, or in the thread state */
    uint32_t fr_code, fr_previous, fr_instr, fr_owner;
    int32_t fr_is_entry;  /* -1: entries are C-stack-owned frames */
    int32_t owner_cstack; /* FRAME_OWNED_BY_CSTACK, -1 none */
    uint32_t fr_size;     /* bytes of a frame up to localsplus */
    uint32_t co_filename, co_qualname, co_firstlineno, co_linetable, co_code;
    uint32_t uni_length, uni_state, uni_ascii_data, uni_compact_data;
    uint32_t bytes_size, bytes_sval;
};

/* The layout of Py_Version version (major.minor decide), or NULL. */
const wl_py_layout *wl_py_layout_for(unsigned version);

#endif
