/*
 * bench.h -- one row format for every benchmark: ours vs a baseline measured
 * in the same run, with the ratio and the target it should meet.
 *
 * Rows print as an aligned table on stdout and, when WL_BENCH_JSON names a
 * file, append one JSON object per line to it (bench/run gathers them into
 * bench/results.json). Header-only so each bench is one file.
 */
#ifndef WL_BENCH_H
#define WL_BENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Median of n doubles (sorts in place). */
static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static inline double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ratio: how many times better ours is (>1 = better), computed by the
 * caller because "better" is lower for times and higher for rates.
 * spread: (max-min)/median of ours in percent, or -1 when not measured. */
static inline void bench_row(const char *name, double ours, double baseline, const char *unit,
                             const char *baseline_name, double ratio, double spread,
                             const char *target, int met)
{
    printf("%-60s %10.4g %-8s %10.4g %-22s %7.2fx  %-18s %s\n", name, ours, unit, baseline,
           baseline_name, ratio, target, met ? "ok" : "MISSED");
    fflush(stdout);
    const char *path = getenv("WL_BENCH_JSON");
    if (path && *path) {
        FILE *f = fopen(path, "a");
        if (f) {
            fprintf(f,
                    "{\"name\":\"%s\",\"ours\":%.6g,\"unit\":\"%s\",\"baseline\":%.6g,"
                    "\"baseline_name\":\"%s\",\"ratio\":%.4g,\"spread_pct\":%.3g,"
                    "\"target\":\"%s\",\"met\":%s}\n",
                    name, ours, unit, baseline, baseline_name, ratio, spread, target,
                    met ? "true" : "false");
            fclose(f);
        }
    }
}

#endif
