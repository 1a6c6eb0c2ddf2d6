/*
 * sampler.h -- follows a process tree through /proc and accumulates ticks
 * into a wl_profile (internal to the profiler).
 *
 * Life cycle: wl__sampler_init(root pid) -> wl__sampler_tick() every interval ->
 * wl__sampler_process_exited() as processes are reaped -> wl__sampler_finish()
 * moves everything into the wl_profile -> wl__sampler_free().
 */
#ifndef WL_PROFILER_SAMPLER_H
#define WL_PROFILER_SAMPLER_H

#include <stdint.h>
#include <sys/resource.h>
#include "intmap.h"
#include "pygil.h"
#include "wlprof/attach.h"
#include "procfs.h"
#include "wlprof/profiler.h"

typedef struct thread_track thread_track;
typedef struct proc_track proc_track;

typedef struct sampler {
    int root_pid;
    int self_pid;
    double t0;                /* CLOCK_MONOTONIC seconds at start */
    long clk_tck;
    uint64_t boot_ticks_at_t0; /* unused when 0 */

    proc_track *procs;        /* every process ever tracked */
    size_t nprocs, cap_procs;
    thread_track *threads;    /* every thread ever tracked */
    size_t nthreads, cap_threads;
    intmap pid_index;         /* live pid -> index in procs */
    intmap tid_index;         /* live tid -> index in threads */
    intmap foreign;           /* pids seen and known not to be ours */

    uint64_t tick;            /* tick counter */
    uint64_t ticks_running;
    uint64_t ticks_waiting;
    double running_s;         /* wall seconds some thread was on a CPU */
    double runq_s;            /* ... none on a CPU but some runnable */
    double waiting_s;         /* ... all blocked */
    double running_threads_sum; /* sum over running ticks of runnable threads */
    uint32_t max_running;
    uint32_t max_threads;
    uint64_t thread_samples;
    uint64_t read_errors;

    wl_timeline timeline;     /* per-thread states, slot i = threads[i] */
    wl_wait_stat *waits;      /* program-level reasons */
    size_t nwaits, cap_waits;
    void *scratch;            /* per-tick list of blocked threads, reused */
    size_t cap_scratch;
    void *candidates;         /* per-tick list of pids not yet classified */
    size_t cap_candidates;
    pygil_cache pygil;        /* which futex words are CPython GILs */

    /* attaching (profiler/attach.c); all zero when running a command */
    int no_discovery;         /* follow only the roots, not their descendants */
    wl_thread_tick_fn thread_hook; /* called for every thread observed in a tick */
    void *hook_ctx;
    int fd_budget;            /* /proc files the sampler may still keep open */
    int discovery;            /* 0 unknown, 1 children files, -1 full /proc scans */
    int *work;                /* per-tick discovery worklist, reused */
    size_t cap_work;
    void *self_task_dir;      /* DIR of /proc/SELF/task, kept open */
    procfs_file self_children; /* our main thread's children file */
} sampler;

int wl__sampler_init(sampler *s, int root_pid, double t0);
/* Observes every thread of the tree once; dt is the wall time this tick
 * stands for, now the tick's time (seconds since t0). */
void wl__sampler_tick(sampler *s, double now, double dt);
/* Records a reaped process's exit; ru is its rusage from wait4 (may be NULL). */
void wl__sampler_process_exited(sampler *s, int pid, int status, const struct rusage *ru,
                            double now);
/* Reads the final /proc/PID/io of a zombie before it is reaped. */
void wl__sampler_process_final_io(sampler *s, int pid);
/* Sends sig to every live process of the tree (finding new ones first),
 * except skip_pid, members of process group skip_pgrp (when > 0) and those
 * it already sent sig; a pid reused by an unrelated process is never signalled. Returns how many
 * processes of the tree are alive (zombies excluded), skipped ones
 * included. */
int wl__sampler_signal_tree(sampler *s, int sig, int skip_pid, int skip_pgrp, double now);
/* Moves the accumulated data into p (arrays are handed over). */
int wl__sampler_finish(sampler *s, wl_profile *p);
void wl__sampler_free(sampler *s);

/* Attaching: adds another root process (0, or -errno when it cannot be
 * read); wl__sampler_prime() takes every tracked thread's counters as they are
 * now as the zero of the profile (call it once, before the first tick);
 * wl__sampler_snapshot() fills p as wl__sampler_finish would, without consuming
 * the sampler (for a live view). */
int wl__sampler_add_root(sampler *s, int pid);
int wl__sampler_prime(sampler *s, double now);
int wl__sampler_snapshot(const sampler *s, wl_profile *p);
/* Processes tracked and not seen exiting. */
size_t wl__sampler_nlive(const sampler *s);

#endif
