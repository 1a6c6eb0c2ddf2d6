/*
 * wlprof/profile.h -- the profile model and the profiler that fills it, in
 * one include: wlprof/profile_model.h (what a profile holds, rank 1) and
 * wlprof/profiler.h (running and sampling programs, rank 2).
 *
 * For programs using the library. Inside wlprof, a module below the
 * profiler or beside it (classifier, reports) includes
 * wlprof/profile_model.h alone (scripts/check-layering).
 */
#ifndef WLPROF_PROFILE_H
#define WLPROF_PROFILE_H

#include "wlprof/profile_model.h"
#include "wlprof/profiler.h"

#endif
