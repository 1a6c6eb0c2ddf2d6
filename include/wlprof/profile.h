/*
 * wlprof/profile.h -- the profile model and the profiler that fills it.
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
 */
#ifndef WLPROF_PROFILE_H
#define WLPROF_PROFILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "wlprof/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The JSON report schema this build writes and reads. */
#define WL_REPORT_SCHEMA "wlprof.report/2"
/* The previous schema, still read: /2 only added optional sections
 * (functions, stacks). */
#define WL_REPORT_SCHEMA_V1 "wlprof.report/1"

/* Why a thread waits, grouped into what a user understands. The raw kernel
 * wait channel and syscall are kept in wl_wait_stat beside the group. */
typedef enum wl_wait_kind {
    WL_WAIT_SLEEP = 0, /* nanosleep, clock_nanosleep, timers */
    WL_WAIT_NETWORK,   /* sockets: recv, accept, connect, send */
    WL_WAIT_DISK,      /* fsync, page-cache misses, block I/O (state D) */
    WL_WAIT_PIPE,      /* pipes and FIFOs */
    WL_WAIT_LOCK,      /* futex: mutexes, condition variables, joins */
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

    /* SIGINT/SIGTERM/SIGHUP/SIGQUIT the profiler itself received while the
     * target ran (the first one), 0 when none; see wl_profile_command. */
    int signal_received;
} wl_profile;

/* Profiler options; zero-initialise, then set what you need. */
typedef struct wl_profile_opts {
    double hz;          /* mean sampling rate; 0 means 100 */
    unsigned seed;      /* interval jitter seed; 0 means time-based */
    int quiet;          /* reserved for callers; the profiler never prints */
    double grace_s;     /* after a signal, seconds before SIGKILL; 0 means 5, < 0 none */
} wl_profile_opts;

/* Human name of a wait kind: "sleep", "network", "disk", "pipe", "lock",
 * "poll", "child", "terminal", "other". Never NULL. */
WL_API const char *wl_wait_kind_name(wl_wait_kind kind);

/* Inverse of wl_wait_kind_name. Returns the kind, or -1 when unknown. */
WL_API int wl_wait_kind_parse(const char *name);

/* What one thread is doing right now, as the profiler sees it. */
typedef struct wl_thread_now {
    char state;          /* /proc stat state letter: R, S, D, ... */
    wl_wait_kind kind;   /* when not R: why it waits */
    char wchan[48];      /* kernel wait channel, "" if unknown */
    char syscall[24];    /* blocking syscall, "" if none */
} wl_thread_now;

/* Reads thread tid of process pid from /proc and, when it is not runnable,
 * groups its wait the profiler's way (for callers that sample a thread
 * themselves, like the in-process pilot of `wlprof run`). Returns 0, or a
 * negative errno when the thread is gone or /proc cannot be read. */
WL_API int wl_thread_observe(int pid, int tid, wl_thread_now *out);

/* Runs argv (PATH lookup, stdio inherited) and samples its process tree
 * until the direct child exits. Fills *out (caller allocates, the profile
 * owns its arrays afterwards; free with wl_profile_free). SIGINT, SIGTERM,
 * SIGHUP and SIGQUIT sent to the caller while the target runs are forwarded
 * to the target, then to every live process of its tree (the caller is
 * their child subreaper; a signal from the terminal goes only to those
 * outside the caller's process group, which the terminal reached itself);
 * whatever is still alive opts->grace_s later is SIGKILLed, and the call
 * returns once the whole tree is gone, with out->signal_received set. A
 * SIGCHLD set to SIG_IGN is taken back to the
 * default for the run (the kernel would otherwise reap the target itself).
 *
 * Returns 0 when the target ran (whatever its own exit status), or a
 * negative errno: -ENOENT / -EACCES when the command could not be started,
 * -EINVAL for bad options. On error *out is left empty (safe to free). */
WL_API int wl_profile_command(char *const argv[], const wl_profile_opts *opts, wl_profile *out);

/* Recomputes the derived fields (fractions, cores_busy, exit_status) from
 * the primary ones. Used by the profiler and by the report reader. */
WL_API void wl_profile_derive(wl_profile *p);

/* Releases everything *p owns and zeroes it. Safe on a zeroed profile. */
WL_API void wl_profile_free(wl_profile *p);

#ifdef __cplusplus
}
#endif
#endif
