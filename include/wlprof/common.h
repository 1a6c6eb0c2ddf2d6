/*
 * wlprof/common.h -- what every public wlprof header shares.
 *
 * The libraries are built with hidden visibility; WL_API marks the
 * functions that form the public API. Included by every header in
 * include/wlprof/, never needed directly by callers.
 *
 * The #ifndef guard keeps it compatible with headers that still carry their
 * own identical fallback definition.
 */
#ifndef WLPROF_COMMON_H
#define WLPROF_COMMON_H

#ifndef WL_API
#define WL_API __attribute__((visibility("default")))
#endif

#endif
