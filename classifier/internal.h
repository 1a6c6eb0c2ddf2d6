/*
 * internal.h -- shared between the classifier's files (not installed).
 */
#ifndef WL_CLASSIFIER_INTERNAL_H
#define WL_CLASSIFIER_INTERNAL_H

#include "wlprof/classify.h"

/* Appends a printf-formatted string to a growing array of owned strings.
 * Returns 0 or -ENOMEM (the array is unchanged then). */
int wl__cls_strv_addf(char ***v, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Frees every string and the array, and zeroes *v and *n. */
void wl__cls_strv_free(char ***v, size_t *n);

/* Fills v->predicted[] (this program) and v->batch[] (a batch of such
 * jobs) for every executor from the model, the effective options (cores,
 * concurrency, thread cap, serial fraction) and the sizes already chosen,
 * and v->model.critical_path_s. See predict.c for the model. */
void wl__cls_predict(const wl_model *m, const wl_classify_opts *o, wl_verdict *v);

/* Thread pool size for this mix of waiting and computing (see predict.c). */
int wl__cls_thread_pool_size(const wl_model *m, const wl_classify_opts *o);

/* The reasons that state the predictions ("this program: ...", "a batch of
 * N such jobs: ...", and why the recommendation is not the best one when it
 * is not). Replaces earlier ones, so wl_verdict_add_functions can refine
 * the model with the stacks and say it again. Returns 0 or -ENOMEM. */
int wl__cls_prediction_reasons(wl_verdict *v);

/* Whether a stack's blocking call is coordination between threads or
 * processes (condition waits, locks, joins, waiting for a child): it stands
 * behind someone else's work and is nothing to move. */
bool wl__cls_is_coordination_call(const char *call);

#endif
