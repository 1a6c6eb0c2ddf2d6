/*
 * stacks_internal.h -- shared inside wl_stacks (agent/), not installed.
 */
#ifndef WL_AGENT_STACKS_INTERNAL_H
#define WL_AGENT_STACKS_INTERNAL_H

#include <jansson.h>
#include "wlprof/stacks.h"

/* Groups o->frames into functions (o->funcs: self/total times, hottest
 * line, most total time first) and sets each stack's folded sample count
 * from o->hz. o->funcs must be empty. Returns 0 or -ENOMEM. */
int wl__stacks_build_functions(wl_stacks *o);

/* qsort order of wl_stack_event: by thread, then time. */
int wl__stacks_cmp_event(const void *a, const void *b);

/* The kind of wait a blocking call stands for, as the folded leaf
 * "[wait:KIND]" names it: sleep, network, disk, lock, poll, child, or io
 * for read/write-like calls whose file the agent does not know. */
const char *wl__call_wait_kind(const char *call);

/* Adds the complete stack table and the time-ordered events to a report's
 * "stacks" object: "frames", "all", "events", "t0_mono_s". Returns 0 or
 * -ENOMEM. (stacks_export.c) */
int wl__stacks_add_tables(void *stacks_json, const wl_stacks *s);

#endif
