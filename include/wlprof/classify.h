/*
 * wlprof/classify.h -- from a profile to a verdict and an executor.
 *
 * The classifier is pure: it reads a wl_profile (filled by the profiler or
 * read back from a JSON report) and decides
 *
 *   - the kind of workload: I/O-bound (waiting on the system dominates),
 *     CPU-bound (user CPU dominates) or mixed;
 *   - the executor that would speed it up: a coroutine loop, a thread pool,
 *     a process pool, or a split (waiting side on the loop/threads,
 *     computing side on processes);
 *   - why, as sentences carrying the numbers used;
 *   - a predicted speed-up for every executor at its suggested size, so the
 *     recommendation is a figure a user can check;
 *   - the classic pitfall: an event-loop thread that also blocks or computes
 *     for long stretches ("blocking call inside the event loop").
 *
 * Every threshold lives in one table of defaults (classifier/classify.c,
 * documented in docs/classifier.md); wl_classify_opts overrides any of them.
 *
 * Ownership: a wl_verdict owns its reasons, calls and side lists;
 * wl_verdict_free() releases them.
 */
#ifndef WLPROF_CLASSIFY_H
#define WLPROF_CLASSIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <jansson.h>

#include "wlprof/common.h"
#include "wlprof/profile_model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum wl_kind {
    WL_KIND_IO_BOUND = 0, /* waiting (off-CPU) plus system CPU dominate */
    WL_KIND_CPU_BOUND,    /* user CPU dominates */
    WL_KIND_MIXED,        /* neither side dominates */
    WL_KIND_COUNT
} wl_kind;

typedef enum wl_executor {
    WL_EXEC_COROUTINE = 0, /* one event loop, many tasks in flight */
    WL_EXEC_THREAD_POOL,   /* blocking calls moved onto threads */
    WL_EXEC_PROCESS_POOL,  /* computing spread over processes, one per core */
    WL_EXEC_SPLIT,         /* waiting side on loop/threads, computing on processes */
    WL_EXEC_COUNT
} wl_executor;

/* Tunables. Zero-initialise and set what you need: every field left at 0
 * takes its documented default (wl_classify_defaults()). */
typedef struct wl_classify_opts {
    double io_threshold;    /* waiting+system share of wall at/above which: I/O-bound */
    double cpu_threshold;   /* user share of wall at/above which: CPU-bound */
    double min_wait_share;  /* waiting share below which system CPU counts as computing */
    double multiplex_share; /* share of I/O waits in epoll/poll/select/io_uring at/above
                               which the program already multiplexes -> coroutine */
    double loop_poll_s;     /* seconds in poll-like waits that make a thread an event loop */
    double pitfall_block_s; /* a loop thread blocked this long at a stretch: pitfall */
    double pitfall_burst_s; /* a loop thread computing this long at a stretch: pitfall */
    double parallel_cores;  /* cores_busy at/above which the program already runs in parallel */
    double serial_fraction; /* share of the run no executor parallelises (Amdahl) */
    int cores;              /* cores for process pools; 0 = this machine's online cores */
    int concurrency;        /* tasks in flight on a coroutine loop */
    int max_threads;        /* upper bound on a suggested thread pool */
    int min_ticks;          /* samples needed for full confidence */
} wl_classify_opts;

/* One blocking call (or wait reason) the recommendation moves. */
typedef struct wl_call {
    wl_wait_kind kind;
    char syscall[24]; /* "" when unknown */
    char wchan[48];   /* "" when unknown */
    double seconds;   /* waiting wall seconds attributed to it */
    double share;     /* of all waiting wall seconds */
} wl_call;

/* Predicted effect of one executor at its suggested size. */
typedef struct wl_prediction {
    int workers;    /* tasks in flight (coroutine), threads or processes */
    double speedup; /* wall time now / predicted wall time; < 1 means slower */
} wl_prediction;

/* What the speed-up model saw (classifier/predict.c, docs/classifier.md). */
typedef struct wl_model {
    double wall_s;          /* measured wall time */
    double wait_s;          /* wall seconds nothing ran (GIL waits left out) */
    double cpu_s;           /* CPU core-seconds, user + system */
    double longest_wait_s;  /* the longest single blocking call: no executor
                               overlaps it with itself */
    char longest_wait_call[24];
    double longest_cpu_s;   /* the longest on-CPU run of one thread between two
                               waits: no executor splits it */
    bool cpython;           /* a CPython target: its threads compute one at a time */
    bool from_stacks;       /* longest_wait_s from the stack agent's calls (one
                               call each) rather than the sampler's stretches */
    char independent[320];  /* which calls it treated as independent, and why */
    double critical_path_s; /* the best this program can do (any executor) */
} wl_model;

/* A function named by the stack agent's attribution, for one side. */
typedef struct wl_func_ref {
    char name[96];   /* symbol, or module+0xOFF */
    char module[64]; /* executable or library basename */
    char call[24];   /* waiting side: the blocking libc call it made; else "" */
    double seconds;  /* its self CPU seconds (computing) or wait seconds */
} wl_func_ref;

/* "Blocking call inside the event loop": the worst offending loop thread.
 * A loop thread is one that waited in a readiness call (wl_is_readiness_call)
 * or, alone in its process, held an epoll/io_uring instance while it
 * blocked; stalls before it first waited in one (start-up) do not count. */
typedef struct wl_pitfall {
    bool detected;
    int pid;
    int tid;
    char comm[17];
    char evidence[16];       /* "readiness" or "epoll_fd" (wl_thread_stat) */
    char function[96];       /* the function making the call / computing, when
                                the report has stacks ("" otherwise) */
    char file[128];          /* its file, "" when unknown */
    int line;
    char call[32];           /* the call as the user wrote it ("time.sleep"
                                for a Python frame, else the libc call) */
    double poll_s;           /* its seconds idling in poll-like waits */
    double longest_block_s;  /* its longest blocked stretch outside poll */
    char block_syscall[24];  /* the call of that stretch */
    double longest_burst_s;  /* its longest computing stretch */
    bool blocks;             /* longest_block_s crossed the threshold */
    bool bursts;             /* longest_burst_s crossed the threshold */
    wl_call *calls;          /* its non-poll waits, most first (owned) */
    size_t ncalls;
} wl_pitfall;

typedef struct wl_verdict {
    wl_kind kind;
    wl_executor executor;
    double confidence;       /* 0..1 */
    int suggested_workers;   /* size of the recommended executor; for a split,
                                the process count (computing side) */
    wl_executor wait_side;   /* split only: COROUTINE or THREAD_POOL for the waits */
    int wait_side_workers;   /* split only: its size */
    bool loop_can_wait;      /* the waits could sit on a coroutine loop: the
                                program already multiplexes, or every blocking
                                call to move has a readiness-based form
                                (sockets, pipes, terminals, timers) -- so a job
                                with an async form runs on the loop even when
                                the executor is a thread pool (wlprof run) */

    /* the measured shares the decision used (of wall time) */
    double user_share;
    double sys_share;
    double wait_share;
    double io_score;         /* wait_share + sys_share (sys_share only when
                                sys_is_computing is false) */
    double cpu_score;        /* user_share (+ sys_share when sys_is_computing) */
    bool sys_is_computing;   /* wait_share < min_wait_share: nothing waits */
    double multiplexed;      /* share of I/O waits spent in poll-like calls */
    double cores_busy;
    int cores;               /* the core count used */
    bool from_samples;       /* false: shares from exact totals (no ticks) */
    wl_classify_opts used;   /* the effective thresholds */

    wl_prediction predicted[WL_EXEC_COUNT]; /* this program, one run, bounded
                                               by its critical path */
    wl_prediction batch[WL_EXEC_COUNT];     /* a batch of many such jobs run side
                                               by side (what `wlprof run` does) */
    wl_model model;
    int idle_threads;        /* helper threads that only ever waited in pool-worker
                                or coordination waits: left out of the advice */
    int gil_threads;         /* threads seen waiting for CPython's GIL */
    double gil_wait_share;   /* of those threads' non-running time, the GIL's */

    wl_call *calls;          /* blocking calls to move (thread pool / split /
                                pitfall), most first (owned) */
    size_t ncalls;
    char **compute_side;     /* what belongs on processes: the busiest threads
                                (functions: compute_functions) (owned) */
    size_t ncompute_side;
    wl_func_ref *compute_functions; /* hottest functions by self CPU, when the
                                report has stack attribution (owned) */
    size_t ncompute_functions;
    wl_func_ref *wait_functions;    /* functions making the blocking (non-poll)
                                       calls, most wait first (owned) */
    size_t nwait_functions;
    char **reasons;          /* sentences with the numbers used (owned) */
    size_t nreasons;
    wl_pitfall pitfall;
} wl_verdict;

/* The default tunables, with every field set. */
WL_API wl_classify_opts wl_classify_defaults(void);

/* "io_bound", "cpu_bound", "mixed". Never NULL. */
WL_API const char *wl_kind_name(wl_kind kind);
/* "coroutine", "thread_pool", "process_pool", "split". Never NULL. */
WL_API const char *wl_executor_name(wl_executor e);
/* Inverses: the enum value, or -1 when unknown. */
WL_API int wl_kind_parse(const char *name);
WL_API int wl_executor_parse(const char *name);

/* Classifies p. opts may be NULL (all defaults). Fills *out (caller
 * allocates; the verdict owns its arrays afterwards: wl_verdict_free).
 * Returns 0, -EINVAL for out-of-range options (thresholds outside (0,1],
 * negative sizes), -ENODATA when p covers no time at all, -ENOMEM. On error
 * *out is left empty (safe to free). */
WL_API int wl_classify(const wl_profile *p, const wl_classify_opts *opts, wl_verdict *out);

/* Names the functions on each side from a report's stack sections, when it
 * has them: "functions" (self CPU per function) and "stacks.top" (the
 * heaviest stacks, with the blocking call of each off-CPU one), written by
 * the stack agent (docs/report-schema.md). Fills v->compute_functions and
 * v->wait_functions and adds a reason saying which go where. report is
 * borrowed; without those sections nothing changes. Returns 0 or -ENOMEM. */
WL_API int wl_verdict_add_functions(wl_verdict *v, const json_t *report);

/* Releases everything *v owns and zeroes it. Safe on a zeroed verdict. */
WL_API void wl_verdict_free(wl_verdict *v);

/* The report's "classification" object (kind, shares, confidence, reasons,
 * pitfall, thresholds). New reference, NULL on allocation failure. */
WL_API json_t *wl_verdict_classification_json(const wl_verdict *v);

/* The report's "recommendation" object (executor, workers, predicted
 * speed-ups, calls to move, sides). New reference, NULL on failure. */
WL_API json_t *wl_verdict_recommendation_json(const wl_verdict *v);

/* Adds "classification" and "recommendation" to report (an object).
 * Returns 0 or -ENOMEM. The report keeps its own references. */
WL_API int wl_verdict_to_report(const wl_verdict *v, json_t *report);

/* Prints the verdict as readable terminal text (a few lines). */
WL_API void wl_verdict_print(FILE *f, const wl_verdict *v);

#ifdef __cplusplus
}
#endif
#endif
