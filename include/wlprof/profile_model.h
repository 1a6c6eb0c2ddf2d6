/*
 * wlprof/profile_model.h -- the profile model: what a profile holds.
 *
 * A profile says where a program's wall time went: computing (user or
 * system CPU) or waiting off-CPU, and why it waited. It is pure data: the
 * profiler (profiler/) fills it from /proc and wait4, the reports module
 * (reports/) turns it into JSON and text and reads JSON back, and the
 * classifier (classifier/) turns it into a verdict. Nothing here knows about
 * executors.
 *
 * Two views of time, both kept:
 *  - exact totals: wall time, and user/system CPU seconds of the whole
 *    process tree from wait4/getrusage(RUSAGE_CHILDREN);
 *  - sampled timeline: every tick the profiler looks at every thread of
 *    every process. A tick where at least one thread is runnable is
 *    "running" wall time; a tick where none is, is "waiting" wall time and
 *    is attributed to the wait reasons of the blocked threads. Idle pool
 *    threads parked on a futex therefore never turn a CPU-bound program into
 *    a waiting one: while the worker computes, the tick counts as running.
 *
 * Seconds are always absolute (sample counts times the measured interval),
 * never only shares, so the figures do not move with the sampling rate.
 *
 * Ownership: a wl_profile owns every array and string it points to;
 * wl_profile_free() releases them all.
 *
 * This header is the model alone (model/, rank 1: no processes, files or
 * clocks), for the modules that only read or fill a profile (classifier,
 * reports). The profiler that runs and samples programs is
 * wlprof/profiler.h; wlprof/profile.h includes both.
 */
#ifndef WLPROF_PROFILE_MODEL_H
#define WLPROF_PROFILE_MODEL_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <stdbool.h>

#include "wlprof/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The JSON report schema this build writes and reads. */
#define WL_REPORT_SCHEMA "wlprof.report/3"
/* Previous schemas, still read: /2 and /3 only added optional sections
 * and fields (functions and stacks; the timeline, stack events, GIL waits,
 * target.attached, profiler.stack_pauses: see report-schema.md). */
#define WL_REPORT_SCHEMA_V2 "wlprof.report/2"
#define WL_REPORT_SCHEMA_V1 "wlprof.report/1"

/* Why a thread waits, grouped into what a user understands. The raw kernel
 * wait channel and syscall are kept in wl_wait_stat beside the group. */
typedef enum wl_wait_kind {
    WL_WAIT_SLEEP = 0, /* nanosleep, clock_nanosleep, timers */
    WL_WAIT_NETWORK,   /* sockets: recv, accept, connect, send */
    WL_WAIT_DISK,      /* fsync, page-cache misses, block I/O (state D) */
    WL_WAIT_PIPE,      /* pipes and FIFOs */
    WL_WAIT_LOCK,      /* futex: mutexes, condition variables, joins */
    WL_WAIT_GIL,       /* CPython's GIL: CPU demand serialised by the interpreter */
    WL_WAIT_POLL,      /* epoll_wait, poll, select: an event loop idling */
    WL_WAIT_CHILD,     /* wait4/waitid: a parent waiting for a child */
    WL_WAIT_TERMINAL,  /* reading a tty: waiting for a person */
    WL_WAIT_OTHER,     /* anything else */
    WL_WAIT_KIND_COUNT
} wl_wait_kind;

/* One wait reason: a (kind, wchan, syscall) triple and the time behind it. */
typedef struct wl_wait_stat {
    wl_wait_kind kind;
    char wchan[48];   /* kernel wait channel, e.g. "hrtimer_nanosleep"; "" if unknown */
    char syscall[24]; /* blocking syscall, e.g. "clock_nanosleep"; "" if none */
    uint64_t samples; /* ticks attributed to this reason */
    double seconds;   /* wall seconds attributed to this reason */
} wl_wait_stat;

typedef struct wl_thread_stat {
    int pid;                   /* process (thread group) id */
    int tid;                   /* thread id */
    char comm[17];             /* thread name */
    double first_seen_s;       /* seconds since start when first sampled */
    double last_seen_s;        /* seconds since start when last sampled */
    double user_s;             /* user CPU seconds while observed */
    double sys_s;              /* system CPU seconds while observed */
    double cpu_s;              /* on-CPU seconds from schedstat (ns precision) */
    double runq_s;             /* seconds runnable but waiting for a CPU */
    uint64_t samples_running;  /* ticks in state R */
    uint64_t samples_waiting;  /* ticks in S, D, or another off-CPU state */
    double running_s;          /* seconds on a CPU (schedstat, split per tick) */
    double waiting_s;          /* seconds blocked, neither on a CPU nor queued */
    double longest_burst_s;    /* CPU time of its longest stretch of running ticks */
    double longest_block_s;    /* longest stretch blocked in one non-poll wait */
    char longest_block_syscall[24];
    /* Event loop (report /3; 0 / "" in older reports): */
    double loop_first_s;       /* seconds since start when it first waited in a
                                  readiness call (wl_is_readiness_call); -1: never */
    char loop_evidence[16];    /* "readiness": seen waiting in one; "epoll_fd": the
                                  only thread of a process holding an epoll or
                                  io_uring instance; "" when not a loop */
    double loop_block_s;       /* longest non-readiness blocked stretch after
                                  loop_first_s (a blocking call inside the loop) */
    char loop_block_syscall[24];
    double loop_burst_s;       /* most on-CPU seconds (schedstat) between two
                                  returns to the loop, after loop_first_s */
    double longest_cpu_run_s;  /* most on-CPU seconds between two voluntary
                                  waits, anywhere in its life (critical path) */
    double longest_wait_s;     /* longest stretch in one call that is not
                                  coordination (lock, gil, child): readiness
                                  waits included (critical path) */
    char longest_wait_syscall[24];
    wl_wait_stat *waits;       /* this thread's own wait reasons, most first */
    size_t nwaits;
} wl_thread_stat;

typedef struct wl_io_stat {
    uint64_t rchar;       /* bytes passed to read-like calls */
    uint64_t wchar;       /* bytes passed to write-like calls */
    uint64_t syscr;       /* read-like syscalls */
    uint64_t syscw;       /* write-like syscalls */
    uint64_t read_bytes;  /* bytes fetched from storage */
    uint64_t write_bytes; /* bytes sent to storage */
    bool valid;           /* false when /proc/PID/io could not be read */
} wl_io_stat;

typedef struct wl_process_stat {
    int pid;
    int ppid;
    char comm[17];
    char *cmdline;        /* NUL-separated args joined with spaces; may be NULL */
    double start_s;       /* seconds since start when first seen */
    double end_s;         /* seconds since start when last seen or reaped */
    int exit_code;        /* exit status, -1 when not reaped by us or killed */
    int term_signal;      /* killing signal, 0 when none or unknown */
    double user_s;        /* CPU seconds of its threads while observed */
    double sys_s;
    uint32_t threads_seen;
    wl_io_stat io;        /* last /proc/PID/io reading */
} wl_process_stat;

/* The per-thread timeline: what every thread did at every tick, run-length
 * encoded. A state is WL_TL_USER, WL_TL_SYSTEM, WL_TL_RUNQUEUE, or
 * WL_TL_WAIT + a wl_wait_kind. */
enum { WL_TL_USER = 0, WL_TL_SYSTEM = 1, WL_TL_RUNQUEUE = 2, WL_TL_WAIT = 3 };
#define WL_TL_STATE_COUNT (WL_TL_WAIT + WL_WAIT_KIND_COUNT)

typedef struct wl_timeline_run {
    uint32_t ticks;       /* consecutive ticks in this state */
    uint16_t state;       /* WL_TL_* (+ kind for waits) */
    int32_t detail;       /* index into wl_timeline.details, -1 for none */
} wl_timeline_run;

typedef struct wl_timeline_detail {
    char syscall[24];     /* blocking syscall, "" if none */
    char wchan[48];       /* kernel wait channel, "" if unknown */
} wl_timeline_detail;

typedef struct wl_thread_timeline {
    int pid;
    int tid;
    uint64_t first_tick;  /* index of the tick its first run starts at */
    uint64_t end_tick;    /* one past the last tick its runs cover */
    wl_timeline_run *runs;
    size_t nruns, cap_runs;
} wl_thread_timeline;

typedef struct wl_timeline {
    double *tick_s;       /* time of each tick, seconds since start */
    uint64_t nticks;
    size_t cap_ticks;
    bool truncated;       /* stopped recording at WL_TIMELINE_MAX_TICKS */
    wl_timeline_detail *details;
    size_t ndetails, cap_details;
    wl_thread_timeline *threads; /* in order of first appearance */
    size_t nthreads, cap_threads;
} wl_timeline;
#define WL_TIMELINE_MAX_TICKS 2000000u

/* Name of a timeline state: "user", "system", "runqueue", or the wait
 * kind's name. Never NULL. */
WL_API const char *wl_timeline_state_name(unsigned state);

/* Releases what *tl owns and zeroes it. */
WL_API void wl_timeline_free(wl_timeline *tl);

typedef struct wl_profile {
    /* target */
    char **argv;          /* NULL-terminated copy of the command */
    int argc;
    int pid;              /* pid of the direct child */
    int exit_code;        /* exit status, or -1 when killed by a signal */
    int term_signal;      /* signal that killed it, 0 otherwise */
    bool core_dumped;
    int exit_status;      /* shell-style: exit_code, or 128+term_signal */

    /* exact totals over the whole process tree */
    double wall_s;
    double user_s;
    double sys_s;
    long maxrss_kb;       /* largest resident set of any process in the tree */
    long minflt, majflt;
    long nvcsw;           /* voluntary context switches: waits */
    long nivcsw;          /* involuntary: preempted while computing */
    long inblock, oublock;
    wl_io_stat io;        /* the direct child's /proc/PID/io at exit
                             (includes descendants it reaped) */

    /* sampling */
    double hz;            /* requested mean rate */
    uint64_t ticks;       /* ticks taken */
    double sampled_s;     /* wall seconds covered by ticks
                             (running_s + runqueue_s + waiting_s) */
    uint64_t ticks_running;  /* ticks with >= 1 thread in state R */
    uint64_t ticks_waiting;  /* ticks with every thread blocked */
    double running_s;     /* wall seconds with >= 1 thread on a CPU */
    double runqueue_s;    /* wall seconds with threads runnable but no CPU free
                             (contention: neither computing nor waiting) */
    double waiting_s;     /* wall seconds with every thread blocked */
    double mean_running_threads; /* average runnable threads in running ticks */
    uint32_t max_running_threads;
    uint32_t max_threads;        /* most threads alive at one tick */
    uint64_t thread_samples;     /* (thread, tick) observations */

    /* derived shares of running_s + waiting_s; user+sys+wait == 1 when that
     * is > 0 (run-queue time is reported apart, in runqueue_s) */
    double user_frac;
    double sys_frac;
    double wait_frac;
    double cores_busy;    /* (user_s + sys_s) / wall_s */

    /* program-level wait reasons (waiting ticks only), most first */
    wl_wait_stat *waits;
    size_t nwaits;
    double wait_kind_s[WL_WAIT_KIND_COUNT];
    uint64_t wait_kind_samples[WL_WAIT_KIND_COUNT];
    /* derived (wl_profile_derive): every thread's blocked seconds by kind,
     * summed over threads -- also the waits that overlapped another
     * thread's running (GIL waits are mostly such) */
    double thread_wait_kind_s[WL_WAIT_KIND_COUNT];

    wl_thread_stat *threads; /* busiest (most CPU) first */
    size_t nthreads;
    wl_process_stat *procs;  /* in order of appearance */
    size_t nprocs;

    /* the profiler's own cost */
    double self_user_s;
    double self_sys_s;
    uint64_t late_ticks;     /* ticks taken more than half an interval late */
    uint64_t missed_ticks;   /* intervals skipped entirely */
    double max_lateness_s;
    uint64_t proc_read_errors; /* /proc files that vanished or could not be read */

    /* wall-clock time the run started, seconds since the epoch */
    double started_at;
    double mono_start_s;  /* CLOCK_MONOTONIC at the start (aligns agent stacks) */
    wl_timeline timeline; /* per-thread states per tick; empty when not recorded */

    /* attaching (`wlprof profile --pid`, wlprof/attach.h); report/3 */
    bool attached;          /* the processes were already running: totals are
                               /proc deltas, exit status unknown (-1) */
    uint64_t stack_pauses;  /* threads stopped one at a time for a stack */
    double pause_total_s;   /* wall seconds those threads stood stopped */
    double pause_max_s;     /* the longest single stop */

    /* SIGINT/SIGTERM/SIGHUP/SIGQUIT the profiler itself received while the
     * target ran (the first one), 0 when none; see wl_profile_command
     * (wlprof/profiler.h). */
    int signal_received;
} wl_profile;

/* Human name of a wait kind: "sleep", "network", "disk", "pipe", "lock",
 * "gil", "poll", "child", "terminal", "other". Never NULL. */
WL_API const char *wl_wait_kind_name(wl_wait_kind kind);

/* Inverse of wl_wait_kind_name. Returns the kind, or -1 when unknown. */
WL_API int wl_wait_kind_parse(const char *name);

/* Whether call (a syscall or libc function name) is a readiness wait an
 * event loop idles in: epoll_wait/epoll_pwait/epoll_pwait2, poll, ppoll,
 * select, pselect6, io_uring_enter and liburing's waits, io_getevents. The
 * one definition the profiler, the classifier and the reports share. */
WL_API bool wl_is_readiness_call(const char *call);

/* Whether a stack frame's function is runtime plumbing rather than the
 * user's code: _start, __libc_start_main, start_thread, clone3, CPython's
 * eval loop and call machinery, unresolved "python3.11+0x..." addresses.
 * module may be NULL. Used to keep such frames out of advice and out of the
 * top of the functions table. */
WL_API bool wl_is_runtime_frame(const char *func, const char *module);

/* Columns for text output on f: 80, or a wider terminal's width (at most
 * 160). */
WL_API int wl_text_width(FILE *f);

/* Prints text word-wrapped to width: the first line after `first`, the
 * others after `rest` (indentation), ending with a newline. A word longer
 * than a line is printed whole. */
WL_API void wl_text_wrap(FILE *f, int width, const char *first, const char *rest,
                         const char *text);

/* Name of system call nr of this machine's architecture (x86-64 or
 * aarch64, from the full kernel table), or NULL when nr is not one. */
WL_API const char *wl_syscall_name(long nr);

/* Recomputes the derived fields (fractions, cores_busy, exit_status) from
 * the primary ones. Used by the profiler and by the report reader. */
WL_API void wl_profile_derive(wl_profile *p);

/* Releases everything *p owns and zeroes it. Safe on a zeroed profile. */
WL_API void wl_profile_free(wl_profile *p);

#ifdef __cplusplus
}
#endif
#endif
