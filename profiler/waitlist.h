/*
 * waitlist.h -- a list of wait reasons, (kind, wchan, syscall) -> samples
 * and seconds: the sampler's program-level and per-thread lists and the
 * caller-sampled tally's (internal to the profiler).
 */
#ifndef WL_PROFILER_WAITLIST_H
#define WL_PROFILER_WAITLIST_H

#include <stddef.h>
#include <stdint.h>

#include "wlprof/profile_model.h"

/* Adds one sample and `seconds` to the (kind, wchan, syscall) entry of
 * *arr (n entries, room for cap), appending a new entry when there is none
 * (wchan and syscall may be NULL: ""). Returns 0, or -ENOMEM when a new
 * entry could not be made (the list is unchanged then). */
int wl__waits_add(wl_wait_stat **arr, size_t *n, size_t *cap, wl_wait_kind kind,
                  const char *wchan, const char *syscall, double seconds);

/* Sorts the list by seconds, most first. */
void wl__waits_sort(wl_wait_stat *arr, size_t n);

/* Adds every entry's seconds and samples to its kind's totals. */
void wl__waits_sum_kinds(const wl_wait_stat *arr, size_t n, double kind_s[WL_WAIT_KIND_COUNT],
                         uint64_t kind_samples[WL_WAIT_KIND_COUNT]);

#endif
