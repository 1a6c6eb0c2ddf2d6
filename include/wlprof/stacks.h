/*
 * wlprof/stacks.h -- stack profiles: which functions compute and which wait.
 *
 * A wl_stacks is what the agent recorded (libwlprof-agent.so, see
 * wlprof/agent.h) once read back and symbolised: unique stacks with their
 * on-CPU samples (split user / system) and off-CPU waiting time, a
 * per-function table (self and total), per-thread totals, and writers for
 * folded stacks (flamegraph.pl, speedscope import), speedscope JSON and a
 * text table.
 *
 * Units. CPU samples carry the thread CPU time since the previous sample, so
 * seconds are exact sums, not counts x interval. A wait is one blocking call
 * with the time it blocked. To put both on one scale (flame graphs, the
 * `samples` totals) a stack's waiting time counts as
 * round(wait_s * hz) samples: the samples a wall-clock sampler at the same
 * rate would have taken there.
 *
 * Ownership: a wl_stacks owns every array and string it points to;
 * wl_stacks_free() releases them all. Library: wl_stacks.
 */
#ifndef WLPROF_STACKS_H
#define WLPROF_STACKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "wlprof/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One symbolised location (unique per module + address). */
typedef struct wl_frame {
    char *func;       /* "compute", or "libfoo.so+0x1a2b" when unknown */
    char *module;     /* basename of the module, "?" when none */
    char *file;       /* source file, NULL without debug info */
    int line;         /* source line, 0 when unknown */
    uint64_t offset;  /* address relative to the module's load bias */
    uint32_t func_id; /* index into wl_stacks.funcs */
    bool python;      /* a Python frame: func is the qualified name, module
                         the source file's base name, line the line running */
} wl_frame;

/* One unique stack of one thread. */
typedef struct wl_stack {
    uint32_t *frames;     /* indices into wl_stacks.frames, leaf first */
    uint32_t nframes;
    int pid;
    int tid;
    const char *call;     /* off-CPU: the blocking call ("read"), else NULL */
    uint64_t cpu_samples; /* on-CPU samples */
    double user_s;        /* CPU seconds behind those samples, user part */
    double sys_s;         /* ... system part */
    uint64_t waits;       /* blocking calls recorded */
    double wait_s;        /* seconds blocked */
    uint64_t samples;     /* cpu_samples + round(wait_s * hz): folded count */
} wl_stack;

/* One function (same name in the same module). */
typedef struct wl_func_stat {
    char *name;
    char *module;
    char *file;           /* file of its hottest line, NULL without debug info */
    int line;             /* its hottest line (most self time), 0 when unknown */
    double self_user_s, self_sys_s, self_wait_s;    /* as the leaf frame */
    double total_user_s, total_sys_s, total_wait_s; /* anywhere on the stack */
    uint64_t self_samples, total_samples;
} wl_func_stat;

typedef struct wl_stack_thread {
    int pid;
    int tid;
    char comm[16];
    char process[64];     /* program its process last exec'd (basename), "" unknown */
    uint64_t cpu_samples;
    double user_s, sys_s, wait_s;
    uint64_t waits;
    uint64_t dropped;     /* samples the agent lost on this thread */
} wl_stack_thread;

/* One moment of one thread: an on-CPU sample (the CPU time it stands for,
 * ending when it was taken) or a blocking call (from entry to return). */
typedef struct wl_stack_event {
    double t_s;           /* start, seconds since wl_stacks.t0_mono_s */
    double dur_s;         /* CPU seconds of the sample, or seconds blocked */
    uint32_t stack;       /* index into wl_stacks.stacks */
    uint32_t thread;      /* index into wl_stacks.threads */
} wl_stack_event;

typedef struct wl_stacks {
    double hz;                 /* sampling rate of the first file read */
    double t0_mono_s;          /* CLOCK_MONOTONIC when the first image started */
    wl_stack_event *events;    /* by thread, then time; empty when read from an
                                  old report */
    size_t nevents;
    wl_frame *frames;
    size_t nframes;
    wl_stack *stacks;          /* most samples first */
    size_t nstacks;
    wl_func_stat *funcs;       /* most total time first */
    size_t nfuncs;
    wl_stack_thread *threads;  /* by pid, then tid */
    size_t nthreads;
    uint64_t cpu_samples;
    uint64_t waits;
    uint64_t samples;          /* sum of wl_stack.samples */
    uint64_t dropped;          /* samples lost to full rings */
    double user_s, sys_s, wait_s;
    double gil_s;              /* of wait_s: waiting for CPython's GIL (call "gil") */
    uint32_t processes;        /* agent files read (process images) */
    uint32_t bad_records;      /* records skipped as malformed */
    bool owns_calls;           /* wl_stack.call strings are allocated (read from JSON) */
} wl_stacks;

/* Reads every agent file in dir (see wlprof/agent.h) and symbolises it into
 * *out (caller allocates; zeroed first). Modules are read from disk now, so
 * call it before the target's binaries change. Returns 0 (also when dir holds
 * no file: an empty profile), -ENOENT when dir is missing, -ENOMEM. Never
 * fails on damaged files: bad records are counted and skipped. */
WL_API int wl_stacks_read(const char *dir, wl_stacks *out);

/* Deletes the agent files in dir and dir itself. Returns 0 or -errno. */
WL_API int wl_stacks_remove_dir(const char *dir);

/* Releases everything *s owns and zeroes it. Safe on a zeroed value. */
WL_API void wl_stacks_free(wl_stacks *s);

/* The function table: top `limit` functions (0: all) by total time, with
 * self and total split into user / system / waiting, as percentages of all
 * recorded time (CPU + waiting) and seconds, plus file:line. */
WL_API void wl_stacks_print_table(const wl_stacks *s, FILE *f, size_t limit);

/* What a folded line starts with. */
typedef enum wl_folded_roots {
    WL_FOLDED_ROOTS_NONE = 0,   /* the outermost frame ("_start"), as before */
    WL_FOLDED_ROOTS_THREAD = 1, /* "process PID;thread TID;" then the frames */
} wl_folded_roots;

/* The function table of `wlprof profile`: top `limit` functions (0: all)
 * by self time (sort_total: by total time), self and total seconds and
 * shares beside each other, runtime frames (wl_is_runtime_frame) left out,
 * lines cut to width columns. */
WL_API void wl_stacks_print_functions(const wl_stacks *s, FILE *f, size_t limit, int sort_total,
                                      int width);

/* Folded stacks, one line per stack: "root;...;leaf COUNT", COUNT = samples.
 * Off-CPU stacks end with a "[call]" frame, and with roots also with a
 * "[wait:KIND]" leaf (sleep, network, disk, lock, poll, child, io).
 * wl_stacks_write_folded is WL_FOLDED_ROOTS_THREAD. Returns 0 or -errno. */
WL_API int wl_stacks_write_folded(const wl_stacks *s, FILE *f);
WL_API int wl_stacks_write_folded_roots(const wl_stacks *s, FILE *f, wl_folded_roots roots);

/* Rebuilds stacks from a report object's "stacks" section (report/3: its
 * "frames", "all" and "events"; report is a json_t *, borrowed). *out is the
 * caller's afterwards (wl_stacks_free). Returns 0; -ENOENT when the report
 * has no complete stack table (no stacks, or an older report: err says
 * which); -EINVAL when it is malformed; -ENOMEM. */
WL_API int wl_stacks_from_json(const void *report, wl_stacks *out, char *err, size_t errlen);

/* speedscope JSON (https://www.speedscope.app/file-format-schema.json): one
 * "evented" profile per thread that has events, in time order (on-CPU
 * samples and blocking calls open and close their frames at their times),
 * named "PROCESS PID / THREAD TID" with the program the process exec'd.
 * Without events (stacks from an older report) one "sampled" profile per
 * thread, weights in seconds. Returns 0 or -errno. */
WL_API int wl_stacks_write_speedscope(const wl_stacks *s, FILE *f, const char *name);

/* Writes to path atomically (temp file + rename) with one of the writers
 * above. Returns 0 or -errno. */
WL_API int wl_stacks_save_folded(const wl_stacks *s, const char *path);
WL_API int wl_stacks_save_speedscope(const wl_stacks *s, const char *path, const char *name);

/* A jansson object {"functions": [...], "stacks": {...}} for the JSON report
 * (documented in docs/report-schema.md). Returns a new reference (void * so
 * this header does not need jansson.h), or NULL on allocation failure. */
WL_API void *wl_stacks_to_json(const wl_stacks *s, size_t max_funcs, size_t max_stacks);

/* What `wlprof profile` can do with a target binary. */
typedef struct wl_agent_target {
    bool dynamic;      /* has an ELF interpreter: LD_PRELOAD works */
    bool setid;        /* setuid/setgid: the loader ignores LD_PRELOAD */
    bool asan;         /* links libasan: the agent must come after it */
    bool script;       /* "#!" script: the interpreter decides */
} wl_agent_target;

/* Inspects the executable at path. Returns 0 or -errno (-ENOEXEC: not ELF
 * and not a script). */
WL_API int wl_agent_inspect_target(const char *path, wl_agent_target *out);

/* A `wlprof profile` run with the agent injected (agent/session.c). */
typedef struct wl_stacks_session {
    bool active;    /* the agent will be preloaded into the command */
    char dir[4096]; /* the session's own directory the agent writes to */
    /* private: see agent/session.c */
    bool env_restored_;
    char *saved_preload_, *saved_dir_, *saved_hz_, *saved_asan_; /* caller's env */
    bool locked_; /* lock_fd_ holds flock(dir): the directory is in use */
    int lock_fd_;
} wl_stacks_session;

/* Prepares to run cmd (argv[0], PATH-searched) with the agent at hz: when
 * the command can take it, makes a private directory ($TMPDIR made
 * absolute, or /tmp: wlprof-stacks-XXXXXX, flock'ed while in use; stale
 * ones a killed wlprof left behind are removed first) and sets LD_PRELOAD,
 * WLPROF_AGENT_DIR and WLPROF_AGENT_HZ in this process's environment (the
 * child inherits them) and s->active is true. When it cannot (statically
 * linked, setuid, agent library missing) s->active is false and notice holds
 * one line saying why. Returns 0, or -errno when the directory cannot be
 * made (notice filled too). */
WL_API int wl_stacks_session_begin(wl_stacks_session *s, const char *cmd, double hz,
                                          char *notice, size_t nlen);

/* Puts the caller's environment back (idempotent; end does it too). */
WL_API void wl_stacks_session_restore_env(wl_stacks_session *s);

/* Restores the environment, reads and symbolises what the agent wrote into
 * *out (caller allocates; free with wl_stacks_free) and removes the files.
 * Returns 0, -ENOENT when the session was not active, or wl_stacks_read's
 * error. */
WL_API int wl_stacks_session_end(wl_stacks_session *s, wl_stacks *out);

/* Parses folded text back: fills *total with the sum of counts and *lines
 * with the number of stack lines. Returns 0 or -EINVAL on a malformed line. */
WL_API int wl_folded_parse(FILE *f, uint64_t *total, size_t *lines);

#ifdef __cplusplus
}
#endif
#endif
