/*
 * wlprof/profiler.h -- the profiler: runs a program (or, with
 * wlprof/attach.h, attaches to one) and samples its whole process tree
 * into a wl_profile (wlprof/profile_model.h).
 *
 * Three ways in, one model out:
 *  - wl_profile_command runs a command and samples it until it exits;
 *  - wl_thread_observe reads one thread's state the profiler's way, for a
 *    caller that samples threads itself, and wl_thread_tally_add /
 *    wl_profile_from_tally turn such observations and the caller's exact
 *    totals into a profile (the task pilot of `wlprof run` measures its
 *    worker processes so; the Slurm pilot, with no ticks, its jobs' exact
 *    figures);
 *  - wlprof/attach.h follows processes that are already running.
 *
 * Ownership: a filled wl_profile owns its arrays (wl_profile_free); a
 * wl_thread_tally owns its wait list (wl_thread_tally_free).
 */
#ifndef WLPROF_PROFILER_H
#define WLPROF_PROFILER_H

#include <stddef.h>
#include <stdint.h>

#include "wlprof/common.h"
#include "wlprof/profile_model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Profiler options; zero-initialise, then set what you need. */
typedef struct wl_profile_opts {
    double hz;          /* mean sampling rate; 0 means 100 */
    unsigned seed;      /* interval jitter seed; 0 means time-based */
    int quiet;          /* reserved for callers; the profiler never prints */
    double grace_s;     /* after a signal, seconds before SIGKILL; 0 means 5, < 0 none */
} wl_profile_opts;

/* What one thread is doing right now, as the profiler sees it. */
typedef struct wl_thread_now {
    char state;          /* /proc stat state letter: R, S, D, ... */
    wl_wait_kind kind;   /* when not R: why it waits */
    char wchan[48];      /* kernel wait channel, "" if unknown */
    char syscall[24];    /* blocking syscall, "" if none */
} wl_thread_now;

/* Reads thread tid of process pid from /proc and, when it is not runnable,
 * groups its wait the profiler's way (for callers that sample a thread
 * themselves: wl_thread_tally below). Returns 0, or a negative errno when
 * the thread is gone or /proc cannot be read. */
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

/* Observations of one thread (or of like threads taken as one: the pilot's
 * worker processes, one job each) that a caller takes itself, with
 * wl_thread_observe at an interval of its own. Zero-initialise; not
 * thread-safe (one sampling thread adds, then the caller reads). */
typedef struct wl_thread_tally {
    uint64_t ticks;      /* observations added */
    uint64_t running;    /* of them in state R: on a CPU or queued for one */
    wl_wait_stat *waits; /* the others by (kind, wchan, syscall), in order of
                            first sight; samples only, seconds 0 (owned) */
    size_t nwaits;
    size_t cap_waits;
} wl_thread_tally;

/* Adds one observation to *t. Returns 0, or -ENOMEM when a new wait reason
 * could not be kept (the tick still counts). */
WL_API int wl_thread_tally_add(wl_thread_tally *t, const wl_thread_now *now);

/* Releases what *t owns and zeroes it. Safe on a zeroed tally. */
WL_API void wl_thread_tally_free(wl_thread_tally *t);

/* What the caller measured exactly over the stretch the tally covers. */
typedef struct wl_tally_totals {
    const char *label;  /* the profile's argv[0] (copied) */
    const char *comm;   /* the name of its one thread (copied); NULL: "" */
    int pid;            /* the profile's pid and that thread's id */
    double interval_s;  /* the sampling interval (the profile's hz is 1 / it) */
    double wall_s;      /* wall seconds the observations stand for */
    double user_s;      /* exact user CPU seconds over that time */
    double sys_s;       /* exact system CPU seconds */
    double cpu_s;       /* exact on-CPU seconds when a finer clock than
                           user + sys knows them (the split is scaled onto it);
                           0: user_s + sys_s */
    long nvcsw;         /* voluntary context switches */
    long nivcsw;        /* involuntary ones */
    /* Whole runs measured from start to end, when the caller has no ticks
     * but exact figures (the pilot of `wlprof run --executor slurm`: its
     * workers measure each job's wall, CPU and run-queue time): */
    uint64_t exact_runs; /* > 0: these totals split the wall time themselves
                            (with runq_s), the ticks only name the waits; a
                            tally without ticks counts each run as one tick
                            (one measurement). 0: the ticks split it */
    double runq_s;       /* with exact_runs: seconds runnable but queued for
                            a CPU (schedstat) */
} wl_tally_totals;

/* Fills *out (zeroed first; owned by the caller, wl_profile_free) with a
 * one-thread profile: the exact totals, and the ticks given seconds by
 * their share of totals->wall_s. Computing is the exact CPU time; running
 * ticks beyond it waited for a CPU (run-queue time), so a loaded machine
 * does not make a waiting program look like a computing one. With
 * totals->exact_runs the split is the totals' own: computing the exact CPU
 * time, the run queue totals->runq_s, waiting the rest of the wall time
 * (the waits share it by their ticks). The tally is borrowed. Returns 0 or
 * -ENOMEM (out left empty). */
WL_API int wl_profile_from_tally(const wl_thread_tally *t, const wl_tally_totals *totals,
                                 wl_profile *out);

#ifdef __cplusplus
}
#endif
#endif
