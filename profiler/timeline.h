/*
 * timeline.h -- records the per-thread timeline of a profile (internal to
 * the profiler; the data model is wl_timeline in wlprof/profile.h).
 */
#ifndef WL_PROFILER_TIMELINE_H
#define WL_PROFILER_TIMELINE_H

#include <stddef.h>
#include "wlprof/profile_model.h"

/* Starts a tick at time now (seconds since the start). Returns 0, or -1
 * when the timeline is full (WL_TIMELINE_MAX_TICKS) or out of memory: the
 * tick's observations are then not recorded. */
int wl__timeline_tick(wl_timeline *tl, double now);

/* Records what the thread in sampler slot `slot` did in the current tick:
 * state is WL_TL_*; syscall and wchan (may be NULL) say why it waits. */
void wl__timeline_observe(wl_timeline *tl, size_t slot, int pid, int tid, unsigned state,
                      const char *syscall, const char *wchan);

#endif
