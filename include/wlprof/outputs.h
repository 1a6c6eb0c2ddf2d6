/*
 * wlprof/outputs.h -- output files that are either complete or absent, and
 * the rules every command's output paths follow (util/atomic.c; library
 * util/, in libwlprof). Writing JSON or HTML into one of these files is
 * wlprof/report.h's (wl_atomic_commit_json, wl_atomic_commit_html).
 */
#ifndef WLPROF_OUTPUTS_H
#define WLPROF_OUTPUTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "wlprof/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An output file, written by the rules in util/atomic.c: "-" is stdout;
 * descriptors (/dev/fd/N, /proc/self/fd/N), devices and FIFOs are written
 * directly; symlinks are followed and the file they lead to -- like any
 * regular file -- is written atomically: an anonymous temporary (O_TMPFILE,
 * or a named one where that is unsupported) beside the destination, made
 * up front (so an unwritable path fails before any work), put in place on
 * commit, gone on abort or when the process is killed. Zero-initialise it
 * (or wl_atomic_open it) before wl_atomic_abort. */
typedef struct wl_atomic_file {
    char *path;     /* destination as given */
    char *tmp_path; /* the named temporary beside it (fallback only), or NULL */
    FILE *f;        /* open for writing */
    /* private */
    char *target_;  /* what the symlinks lead to */
    int mode_;      /* how it is written */
    int dirfd_;     /* the target's directory */
    bool dir_open_; /* dirfd_ is open */
} wl_atomic_file;

/* Creates the temporary. Returns 0 or a negative errno (err says why). */
WL_API int wl_atomic_open(wl_atomic_file *af, const char *path, char *err, size_t errlen);
/* Flushes, fsyncs and renames into place. Returns 0 or a negative errno;
 * on failure the temporary is removed and the destination untouched.
 * Either way af is done with (zeroed). */
WL_API int wl_atomic_commit(wl_atomic_file *af, char *err, size_t errlen);
/* Removes the temporary. Safe after commit and on a zeroed struct. */
WL_API void wl_atomic_abort(wl_atomic_file *af);

/* All output (and input) paths of one command, checked together before
 * any is opened: two outputs on one file (after following symlinks and
 * descriptors: "-" and /dev/stdout are one), or an output that is also an
 * input, is a usage error. Any number of outputs may go to /dev/null.
 * Paths are borrowed; NULL paths are ignored. Zero-initialise it. */
#define WL_OUTPUTS_MAX 16
typedef struct wl_outputs {
    size_t n;
    struct wl_output_use {
        const char *option; /* as typed: "-o", "--folded", "--commands" */
        const char *path;
        bool input;
    } use[WL_OUTPUTS_MAX];
} wl_outputs;

WL_API void wl_outputs_add(wl_outputs *o, const char *option, const char *path);
WL_API void wl_outputs_add_input(wl_outputs *o, const char *option, const char *path);
/* Returns 0, or -EINVAL with a one-line reason naming both options. */
WL_API int wl_outputs_check(const wl_outputs *o, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
