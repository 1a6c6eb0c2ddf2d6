/*
 * wlprof/agent.h -- stack sampling inside a program: the agent's control
 * functions (libwlprof-agent.so) and the in-process profiling API (wl_agent).
 *
 * The agent records on-CPU stacks (per-thread CPU-clock timers) and off-CPU
 * stacks (timed blocking libc calls) into files that wl_stacks_read()
 * (wlprof/stacks.h) turns into a symbolised profile. `wlprof profile`
 * preloads it into targets; a program can also profile a region of itself:
 *
 *     wl_agent_region_start(NULL);            // 100 Hz, waits >= 100 us
 *     run_the_work();
 *     wl_stacks st;
 *     if (wl_agent_region_stop(&st) == 0) {
 *         wl_stacks_print_table(&st, stdout, 20);
 *         wl_stacks_free(&st);
 *     }
 *
 * Link wl_agent (which brings libwlprof-agent.so, the interposers of blocking
 * calls, and wl_stacks). Only one region can be open at a time per process.
 */
#ifndef WLPROF_AGENT_H
#define WLPROF_AGENT_H

#include "wlprof/common.h"
#include "wlprof/stacks.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- libwlprof-agent.so ---- */

/* Starts recording this process into a new file in dir (which must exist):
 * every current thread and every thread created later is sampled at hz per
 * second of its CPU time; blocking calls longer than wait_threshold_s (0:
 * 100 us) are recorded with their stacks. Returns 0, -EINVAL for bad
 * arguments, -EBUSY when already recording, or the errno of creating the
 * file. Called by the constructor when WLPROF_AGENT_DIR is set. */
WL_API int wl_agent_start(const char *dir, double hz, double wait_threshold_s);

/* Stops recording, flushes everything to the file and disarms all timers.
 * Returns 0, or -EINVAL when not recording (or called in a forked child). */
WL_API int wl_agent_stop(void);

/* 1 while recording. */
WL_API int wl_agent_active(void);

/* Path of the file being written (borrowed, valid until stop), or NULL
 * (also while the preloaded agent's process has recorded nothing yet: its
 * file is made when first needed). */
WL_API const char *wl_agent_file(void);

/* The four above under their old names, deprecated in 0.1 and removed in
 * the next release: thin wrappers, same behaviour. */
#if defined(__GNUC__) || defined(__clang__)
#define WL_AGENT_DEPRECATED(new_name) __attribute__((deprecated("use " #new_name)))
#else
#define WL_AGENT_DEPRECATED(new_name)
#endif
WL_API WL_AGENT_DEPRECATED(wl_agent_start) int wlprof_agent_start(const char *dir, double hz,
                                                                  double wait_threshold_s);
WL_API WL_AGENT_DEPRECATED(wl_agent_stop) int wlprof_agent_stop(void);
WL_API WL_AGENT_DEPRECATED(wl_agent_active) int wlprof_agent_active(void);
WL_API WL_AGENT_DEPRECATED(wl_agent_file) const char *wlprof_agent_file(void);

/* ---- in-process API (wl_agent) ---- */

typedef struct wl_agent_region_opts {
    double hz;               /* samples per CPU second per thread; 0 means 100 */
    double wait_threshold_s; /* shortest wait recorded; 0 means 100 us */
} wl_agent_region_opts;

/* Starts profiling the calling process (all threads) into a private
 * temporary directory. opts may be NULL. Returns 0 or a negative errno
 * (-EBUSY when a region or the preloaded agent is already recording). */
WL_API int wl_agent_region_start(const wl_agent_region_opts *opts);

/* Ends the region started by wl_agent_region_start, reads and symbolises what
 * was recorded into *out (caller allocates; free with wl_stacks_free) and
 * removes the temporary files. Returns 0 or a negative errno; on error *out
 * is left empty (safe to free). */
WL_API int wl_agent_region_stop(wl_stacks *out);

/* The region API under its old names, deprecated in 0.1 and removed in the
 * next release. */
typedef wl_agent_region_opts wlprof_profile_opts WL_AGENT_DEPRECATED(wl_agent_region_opts);
WL_API WL_AGENT_DEPRECATED(wl_agent_region_start) int wlprof_profile_start(const wl_agent_region_opts *opts);
WL_API WL_AGENT_DEPRECATED(wl_agent_region_stop) int wlprof_profile_stop(wl_stacks *out);

#ifdef __cplusplus
}
#endif
#endif
