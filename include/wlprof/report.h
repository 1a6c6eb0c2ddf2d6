/*
 * wlprof/report.h -- profile reports: JSON (schema WL_REPORT_SCHEMA of
 * wlprof/profile.h, reading the older ones too; see docs/report-schema.md),
 * terminal text, the HTML page, and writing them into atomic output files
 * (wlprof/outputs.h: included here, where its declarations were before, so
 * callers that wrote files through this header still build; for files
 * alone include wlprof/outputs.h).
 *
 * JSON follows jansson's ownership rules: functions named *_to_json return
 * a new reference the caller must json_decref(); *_from_json borrow their
 * argument.
 */
#ifndef WLPROF_REPORT_H
#define WLPROF_REPORT_H

#include <stdbool.h>
#include <stdio.h>
#include <jansson.h>
#include "wlprof/common.h"
#include "wlprof/outputs.h"
#include "wlprof/profile_model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Builds the report object for p: "schema", "target", "time", "cpu",
 * "waits", "threads", "processes", "rusage", "io", "sampling", "profiler".
 * Returns a new reference, or NULL when out of memory. */
WL_API json_t *wl_report_to_json(const wl_profile *p);

/* Fills *out from a report object (the inverse of wl_report_to_json, for
 * the fields the classifier and text output need). *out is owned by the
 * caller afterwards (wl_profile_free). Returns 0, or -EINVAL with a
 * one-line reason in err -- also for values out of range: negative times,
 * shares outside [0, 1], counts that are fractional, negative or above
 * 2^53. */
WL_API int wl_report_from_json(const json_t *root, wl_profile *out, char *err, size_t errlen);

/* Largest report wl_report_load reads (256 MiB): refused before parsing. */
#define WL_REPORT_MAX_BYTES (256 << 20)

/* Reads and parses a report file and checks its "schema". On success
 * *root_out is a new reference. Returns 0, -ENOENT/-EACCES (cannot read),
 * -EFBIG (over WL_REPORT_MAX_BYTES), -EINVAL (not JSON, or not a wlprof
 * report), -EPROTO (another schema version); err holds a one-line reason
 * naming the file. Values out of range are wl_report_from_json's to refuse. */
WL_API int wl_report_load(const char *path, json_t **root_out, char *err, size_t errlen);

/* Writes root as indented JSON (and a newline) into af's temporary, then
 * commits it. Returns 0 or a negative errno; on failure err says "cannot
 * write PATH: why" and the temporary is removed. Either way af is done with
 * (zeroed). root is borrowed. */
WL_API int wl_atomic_commit_json(wl_atomic_file *af, const json_t *root, char *err,
                                 size_t errlen);

/* Writes root as indented JSON to path atomically: wl_atomic_open then
 * wl_atomic_commit_json. */
WL_API int wl_json_write_atomic(const char *path, const json_t *root, char *err, size_t errlen);

/* Writes root (a whole report, as wl_report_to_json plus the stack and
 * verdict sections) as one self-contained HTML page: headline, timeline,
 * flame graph, tables; no network needed to view it. root is borrowed.
 * Returns 0, -ENOMEM or -EIO. */
WL_API int wl_report_write_html(FILE *f, const json_t *root);

/* wl_report_write_html into af's temporary, then commits it. On failure
 * err says "cannot write PATH: why" and the temporary is removed. Either
 * way af is done with. */
WL_API int wl_atomic_commit_html(wl_atomic_file *af, const json_t *root, char *err, size_t errlen);

/* Prints the human summary: wall, CPU and waiting split with a bar, top
 * wait reasons, busiest threads, processes, the profiler's own cost.
 * color: use ANSI colours. */
WL_API void wl_report_print_text(FILE *f, const wl_profile *p, int color);

/* The two halves of wl_report_print_text, for callers that print the
 * verdict between them (`wlprof profile`): the summary (command, wall and
 * CPU, the split with its bar) and the details (wait reasons, threads,
 * samples, rusage, I/O, the profiler's cost), each line cut to width. */
WL_API void wl_report_print_summary(FILE *f, const wl_profile *p, int color, int width);
WL_API void wl_report_print_details(FILE *f, const wl_profile *p, int color, int width);

#ifdef __cplusplus
}
#endif
#endif
