/*
 * internal.h -- shared between the classifier's files (not installed).
 */
#ifndef WL_CLASSIFIER_INTERNAL_H
#define WL_CLASSIFIER_INTERNAL_H

#include "wlprof/classify.h"

/* Appends a printf-formatted string to a growing array of owned strings.
 * Returns 0 or -ENOMEM (the array is unchanged then). */
int cls__strv_addf(char ***v, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Frees every string and the array, and zeroes *v and *n. */
void cls__strv_free(char ***v, size_t *n);

/* The work the speed-up model sees, in seconds of the measured run. */
typedef struct cls_work {
    double wall_s; /* measured wall time */
    double wait_s; /* wall seconds with no thread running */
    double cpu_s;  /* CPU core-seconds (user + system) */
} cls_work;

/* Fills v->predicted[] for every executor from the measured work, the
 * effective options (cores, concurrency, thread cap, serial fraction) and
 * the sizes already chosen. See predict.c for the model. */
void cls__predict(const cls_work *w, const wl_classify_opts *o, wl_verdict *v);

/* Thread pool size for this mix of waiting and computing (see predict.c). */
int cls__thread_pool_size(const cls_work *w, const wl_classify_opts *o);

#endif
