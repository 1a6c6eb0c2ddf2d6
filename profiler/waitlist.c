/*
 * waitlist.c -- lists of wait reasons (see waitlist.h). Lists stay short
 * (a few dozen distinct reasons), so a linear search beats a hash here.
 */
#include "waitlist.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int wl__waits_add(wl_wait_stat **arr, size_t *n, size_t *cap, wl_wait_kind kind,
                  const char *wchan, const char *syscall, double seconds)
{
    if (!wchan)
        wchan = "";
    if (!syscall)
        syscall = "";
    for (size_t i = 0; i < *n; i++) {
        wl_wait_stat *w = &(*arr)[i];
        if (w->kind == kind && strcmp(w->wchan, wchan) == 0 && strcmp(w->syscall, syscall) == 0) {
            w->samples++;
            w->seconds += seconds;
            return 0;
        }
    }
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        wl_wait_stat *p = realloc(*arr, ncap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        *arr = p;
        *cap = ncap;
    }
    wl_wait_stat *w = &(*arr)[(*n)++];
    memset(w, 0, sizeof(*w));
    w->kind = kind;
    snprintf(w->wchan, sizeof(w->wchan), "%s", wchan);
    snprintf(w->syscall, sizeof(w->syscall), "%s", syscall);
    w->samples = 1;
    w->seconds = seconds;
    return 0;
}

static int cmp_wait_seconds(const void *a, const void *b)
{
    const wl_wait_stat *x = a;
    const wl_wait_stat *y = b;
    return (x->seconds < y->seconds) - (x->seconds > y->seconds);
}

void wl__waits_sort(wl_wait_stat *arr, size_t n)
{
    if (n > 1)
        qsort(arr, n, sizeof(*arr), cmp_wait_seconds);
}

void wl__waits_sum_kinds(const wl_wait_stat *arr, size_t n, double kind_s[WL_WAIT_KIND_COUNT],
                         uint64_t kind_samples[WL_WAIT_KIND_COUNT])
{
    for (size_t i = 0; i < n; i++) {
        kind_s[arr[i].kind] += arr[i].seconds;
        kind_samples[arr[i].kind] += arr[i].samples;
    }
}
