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

/* Repetitions behind every figure: each row is the median of this many
 * runs, with its spread. */
#define BENCH_REPS 5
/* A figure whose spread exceeds this (percent) is flagged "noisy". */
#define BENCH_NOISY_PCT 10.0

/* One figure: median of n runs and the spread (max-min)/median in percent
 * (-1 when not measured, e.g. a single external run). */
typedef struct bench_stat {
    double median;
    double spread_pct;
    int n;
} bench_stat;

/* Median and spread of v[0..n) (v is left untouched). */
static inline bench_stat bench_stats(const double *v, int n)
{
    bench_stat s = {0, -1, n};
    double c[64];
    if (n <= 0 || n > 64)
        return s;
    double lo = v[0], hi = v[0];
    for (int i = 0; i < n; i++) {
        c[i] = v[i];
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
    }
    s.median = bench_median(c, n);
    s.spread_pct = n > 1 && s.median != 0 ? (hi - lo) / (s.median < 0 ? -s.median : s.median) * 100 : -1;
    return s;
}

static inline int bench_noisy(double spread_pct)
{
    return spread_pct > BENCH_NOISY_PCT;
}

static inline void bench_spread_str(char *out, size_t size, double spread_pct)
{
    if (spread_pct < 0)
        snprintf(out, size, "-");
    else
        snprintf(out, size, "%.1f%%", spread_pct);
}

/* One row: ours and the baseline, each a median with its spread; ratio is
 * how many times better ours is (>1 = better), computed by the caller
 * because "better" is lower for times and higher for rates. The status
 * says "ok" or "MISSED", plus "noisy" when either spread exceeds
 * BENCH_NOISY_PCT (the figure is then not to be trusted on its own). */
static inline void bench_row2(const char *name, bench_stat ours, bench_stat base, const char *unit,
                              const char *baseline_name, double ratio, const char *target, int met)
{
    char so[16], sb[16];
    int noisy = bench_noisy(ours.spread_pct) || bench_noisy(base.spread_pct);
    bench_spread_str(so, sizeof(so), ours.spread_pct);
    bench_spread_str(sb, sizeof(sb), base.spread_pct);
    printf("%-56s %10.4g %7s %-8s %10.4g %7s %-24s %7.2fx  %-18s %s%s\n", name, ours.median, so, unit,
           base.median, sb, baseline_name, ratio, target, met ? "ok" : "MISSED",
           noisy ? " noisy" : "");
    fflush(stdout);
    const char *path = getenv("WL_BENCH_JSON");
    if (path && *path) {
        FILE *f = fopen(path, "a");
        if (f) {
            fprintf(f,
                    "{\"name\":\"%s\",\"ours\":%.6g,\"unit\":\"%s\",\"baseline\":%.6g,"
                    "\"baseline_name\":\"%s\",\"ratio\":%.4g,\"spread_pct\":%.3g,"
                    "\"baseline_spread_pct\":%.3g,\"reps\":%d,\"noisy\":%s,"
                    "\"target\":\"%s\",\"met\":%s}\n",
                    name, ours.median, unit, base.median, baseline_name, ratio, ours.spread_pct,
                    base.spread_pct, ours.n, noisy ? "true" : "false", target, met ? "true" : "false");
            fclose(f);
        }
    }
}

/* Paired rounds: round i ran the baseline and ours back to back, so
 * ratio_i = base_i / ours_i cancels what the machine did to both (load,
 * frequency) and the figure is the median of those ratios, with their
 * spread. The medians of ours and the baseline are printed for reference;
 * "noisy" follows the ratios' spread, which is the figure's own. */
static inline bench_stat bench_paired_ratio(const double *ours, const double *base, int n)
{
    double r[64];
    if (n > 64)
        n = 64;
    for (int i = 0; i < n; i++)
        r[i] = ours[i] > 0 ? base[i] / ours[i] : 0;
    return bench_stats(r, n);
}

static inline void bench_row_paired(const char *name, bench_stat ours, bench_stat base, const char *unit,
                                    const char *baseline_name, bench_stat ratio, const char *target, int met)
{
    char so[16], sb[16], sr[16];
    int noisy = bench_noisy(ratio.spread_pct);
    bench_spread_str(so, sizeof(so), ours.spread_pct);
    bench_spread_str(sb, sizeof(sb), base.spread_pct);
    bench_spread_str(sr, sizeof(sr), ratio.spread_pct);
    printf("%-56s %10.4g %7s %-8s %10.4g %7s %-24s %7.3fx  %-18s %s%s (paired, ratio spread %s)\n", name,
           ours.median, so, unit, base.median, sb, baseline_name, ratio.median, target, met ? "ok" : "MISSED",
           noisy ? " noisy" : "", sr);
    fflush(stdout);
    const char *path = getenv("WL_BENCH_JSON");
    if (path && *path) {
        FILE *f = fopen(path, "a");
        if (f) {
            fprintf(f,
                    "{\"name\":\"%s\",\"ours\":%.6g,\"unit\":\"%s\",\"baseline\":%.6g,"
                    "\"baseline_name\":\"%s\",\"ratio\":%.4g,\"ratio_spread_pct\":%.3g,\"paired\":true,"
                    "\"spread_pct\":%.3g,\"baseline_spread_pct\":%.3g,\"reps\":%d,\"noisy\":%s,"
                    "\"target\":\"%s\",\"met\":%s}\n",
                    name, ours.median, unit, base.median, baseline_name, ratio.median, ratio.spread_pct,
                    ours.spread_pct, base.spread_pct, ours.n, noisy ? "true" : "false", target,
                    met ? "true" : "false");
            fclose(f);
        }
    }
}

/* The older row shape: ours' spread only, the baseline's unknown. Not
 * inlined: callers' maybe-uninitialized analysis stays as it was. */
static __attribute__((noinline, unused)) void bench_row(const char *name, double ours, double baseline, const char *unit,
                             const char *baseline_name, double ratio, double spread,
                             const char *target, int met)
{
    bench_stat o = {ours, spread, BENCH_REPS};
    bench_stat b = {baseline, -1, BENCH_REPS};
    bench_row2(name, o, b, unit, baseline_name, ratio, target, met);
}

#endif
