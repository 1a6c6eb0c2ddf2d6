/*
 * wire.h -- the file format between the agent (in the target) and the
 * reader (in the profiler). Private to agent/; both sides are built from the
 * same tree and run on the same machine, so records are native-endian structs.
 *
 * One file per process image: DIR/agent-PID-SEQ.wls, SEQ distinguishing the
 * images of one pid (fork child, then exec). Layout:
 *
 *   wl_wire_header                      once, at offset 0
 *   record, record, ...                 each starts with wl_wire_rec, 8-aligned
 *
 *   wl_wire_rec { type, nframes, size } size = whole record in bytes
 *     WL_REC_MODULES  u32 count, then count x { u64 bias, lo, hi; u16 len; path }
 *                     (each module entry padded to 8 bytes). Replaces the
 *                     module list for the records that follow.
 *     WL_REC_THREAD   wl_wire_thread: a thread's name (sent again on change)
 *     WL_REC_CPU      wl_wire_cpu + nframes x u64 pc, leaf first
 *     WL_REC_WAIT     wl_wire_wait + nframes x u64 pc, leaf = caller of the call
 *     WL_REC_DROPPED  wl_wire_dropped: samples lost to a full ring
 *     WL_REC_PAD      ring filler, never written to files
 *     WL_REC_PYFRAMES wl_wire_pyframes + nframes x wl_wire_pyframe: the
 *                     Python frames of the CPU or WAIT record just before
 *                     it (same ring reservation, so always adjacent),
 *                     innermost first, a separator after each C-level
 *                     evaluation loop's frames (pyreader.h)
 *     WL_REC_PYCODE   wl_wire_pycode: what a code object address named,
 *                     written before the first PYFRAMES that uses it (and
 *                     again if the address is reused by another object)
 *
 * The same record layout is used inside the per-thread rings, so draining a
 * ring is a copy.
 *
 * An image started by the preloaded agent makes its file only when it
 * first has records to put there: most short processes (a shell's
 * /bin/true) never take a sample, and creating, reading and removing a
 * file cost more than the process. So that every image is still counted,
 * with its start time, each appends one wl_wire_empty to
 * DIR/WL_WIRE_TALLY_FILE when it starts (O_APPEND, one write: it counts
 * even when killed). The reader counts the images of the tally and of the
 * files, each (pid, start_mono_ns) once.
 */
#ifndef WL_AGENT_WIRE_H
#define WL_AGENT_WIRE_H

#include <stdint.h>

#define WL_WIRE_MAGIC "WLPSTK01"
#define WL_WIRE_VERSION 2u /* 2: CPU and WAIT records carry CLOCK_MONOTONIC times */
#define WL_WIRE_MAX_FRAMES 128
#define WL_WIRE_FILE_PREFIX "agent-"
#define WL_WIRE_FILE_SUFFIX ".wls"

enum wl_rec_type {
    WL_REC_PAD = 0,
    WL_REC_MODULES = 1,
    WL_REC_THREAD = 2,
    WL_REC_CPU = 3,
    WL_REC_WAIT = 4,
    WL_REC_DROPPED = 5,
    WL_REC_PYFRAMES = 6,
    WL_REC_PYCODE = 7,
};

/* Blocking calls the agent times; the order is part of the format. */
#define WL_WIRE_CALLS(X)                                                                     \
    X(read) X(write) X(readv) X(writev) X(pread) X(pwrite) X(recv) X(recvfrom) X(recvmsg)     \
    X(send) X(sendto) X(sendmsg) X(accept) X(accept4) X(connect) X(poll) X(ppoll) X(select)   \
    X(pselect) X(epoll_wait) X(epoll_pwait) X(nanosleep) X(clock_nanosleep) X(usleep)        \
    X(sleep) X(fsync) X(fdatasync) X(pthread_cond_wait) X(pthread_cond_timedwait)            \
    X(pthread_mutex_lock) X(pthread_join) X(waitpid) X(wait) X(wait4) X(waitid) X(system)    \
    X(flock) X(sem_wait) X(fread) X(fgets) X(getline) X(getdelim) X(fwrite) X(fflush)        \
    X(gil)

/* WL_CALL_gil: a pthread_cond_*wait or pthread_mutex_lock on the CPython
 * GIL's own condition or mutex (pyagent.c): waiting for the interpreter
 * lock, not for I/O or the program's locks. */

enum wl_wire_call {
#define WL_WIRE_CALL_ENUM(name) WL_CALL_##name,
    WL_WIRE_CALLS(WL_WIRE_CALL_ENUM)
#undef WL_WIRE_CALL_ENUM
    WL_CALL_COUNT
};

#define WL_WIRE_TALLY_FILE "empty-images.wlt"

typedef struct wl_wire_empty {
    int32_t pid;
    uint32_t pad;
    uint64_t start_mono_ns; /* as wl_wire_header's */
} wl_wire_empty;

typedef struct wl_wire_header {
    char magic[8];        /* WL_WIRE_MAGIC, not NUL-terminated */
    uint32_t version;     /* WL_WIRE_VERSION */
    int32_t pid;
    int32_t ppid;
    uint32_t flags;       /* reserved, 0 */
    double hz;            /* mean on-CPU sampling rate per thread */
    double wait_threshold_s; /* shortest wait recorded */
    uint64_t start_mono_ns;  /* CLOCK_MONOTONIC when the image started */
    char exe[256];        /* /proc/self/exe at start, NUL-terminated */
} wl_wire_header;

typedef struct wl_wire_rec {
    uint16_t type;        /* enum wl_rec_type */
    uint16_t nframes;     /* frames following the fixed part (CPU, WAIT) */
    uint32_t size;        /* whole record, multiple of 8 */
} wl_wire_rec;

typedef struct wl_wire_thread {
    wl_wire_rec h;
    int32_t tid;
    uint32_t pad;
    char name[16];
} wl_wire_thread;

typedef struct wl_wire_cpu {
    wl_wire_rec h;
    int32_t tid;
    uint32_t pad;
    uint64_t cpu_ns;      /* thread CPU time since its previous sample */
    uint64_t user_ns;     /* of which user (from RUSAGE_THREAD deltas) */
    uint64_t sys_ns;      /* of which system */
    uint64_t mono_ns;     /* CLOCK_MONOTONIC when the sample was taken */
    /* uint64_t pc[nframes] */
} wl_wire_cpu;

typedef struct wl_wire_wait {
    wl_wire_rec h;
    int32_t tid;
    uint16_t call;        /* enum wl_wire_call */
    uint16_t pad;
    uint64_t wait_ns;     /* wall time blocked, minus CPU sampled inside the call */
    uint64_t mono_ns;     /* CLOCK_MONOTONIC when the call returned */
    /* uint64_t pc[nframes] */
} wl_wire_wait;

typedef struct wl_wire_dropped {
    wl_wire_rec h;
    int32_t tid;
    uint32_t pad;
    uint64_t count;       /* samples lost since the previous such record */
} wl_wire_dropped;

typedef struct wl_wire_pyframes {
    wl_wire_rec h;        /* nframes: entries following */
    int32_t tid;
    uint32_t pad;
    /* wl_wire_pyframe frame[nframes] */
} wl_wire_pyframes;

typedef struct wl_wire_pyframe {
    uint64_t code;        /* PyCodeObject address, 0 for a separator */
    int32_t lasti;        /* instruction index in code units */
    uint32_t flags;       /* WL_PY_SEP (pyreader.h) */
} wl_wire_pyframe;

typedef struct wl_wire_pycode {
    wl_wire_rec h;
    uint64_t code;        /* address the PYFRAMES records use */
    int32_t firstlineno;
    uint32_t valid;       /* 0: not a code object; frames using it are dropped */
    uint16_t qualname_len;
    uint16_t filename_len;
    uint32_t linetable_len;
    /* char qualname[qualname_len], filename[filename_len],
     * uint8_t linetable[linetable_len], zero padding to 8 */
} wl_wire_pycode;

#define WL_WIRE_MAX_PYFRAMES 128

#endif
