/*
 * report_internal.h -- helpers shared inside reports/ (not installed).
 */
#ifndef WL_REPORTS_REPORT_INTERNAL_H
#define WL_REPORTS_REPORT_INTERNAL_H

#include <jansson.h>
#include "wlprof/profile_model.h"

/* The report's "timeline" section for tl (timeline_json.c). Returns a new
 * reference, or NULL when out of memory. */
json_t *wl__timeline_to_json(const wl_timeline *tl);

/* Fills *tl from a "timeline" section (NULL or absent: an empty timeline).
 * *tl is owned by the caller afterwards. Returns 0, or -EINVAL / -ENOMEM
 * with a one-line reason in err (tl then empty). */
int wl__timeline_from_json(const json_t *v, wl_timeline *tl, char *err, size_t errlen);

#endif
