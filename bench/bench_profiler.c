/*
 * bench_profiler.c -- what `wlprof profile` costs its target, and how
 * accurate its split is, measured against baselines in the same run.
 *
 *  - overhead: wall time of a CPU-bound target (1 s of CPU) and of a
 *    syscall-heavy one (dd with 64-byte blocks), bare vs under wlprof at
 *    100 and 1000 Hz, and vs `perf stat` / `perf record -F 1000 -g` where
 *    perf works. Runs alternate bare/profiled so drift hits both; medians.
 *  - accuracy: targets that compute and sleep in known proportions
 *    (30/70, 50/50, 80/20) print the waiting share they measured for
 *    themselves; the row compares wlprof's split.waiting with it.
 *
 * Usage: bench_profiler [REPEATS]   (run from bench/run; finds the build
 * tree from its own path).
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

static char build_dir[PATH_MAX / 2];

/* Runs argv with stdout to out_path (or /dev/null) and stderr to /dev/null;
 * returns wall seconds, or -1 when it failed. */
static double run_wall(char *const argv[], const char *out_path)
{
    double t0 = bench_now();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        int out = out_path ? open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644) : null;
        dup2(null, 0);
        dup2(out, 1);
        dup2(null, 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    double wall = bench_now() - t0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? wall : -1;
}

static int have_perf(void)
{
    char *argv[] = {"perf", "stat", "-e", "task-clock", "--", "true", NULL};
    return run_wall(argv, NULL) >= 0;
}

typedef struct variant {
    const char *name;
    char *prefix[12]; /* command words before the target, NULL-terminated */
} variant;

/* Measures the target bare and under each variant, alternating, and prints
 * one row per variant. */
static void overhead_rows(const char *label, char *const target[], variant *vs, int nv,
                          int repeats)
{
    double bare[32], runs[8][32];
    for (int r = 0; r < repeats; r++) {
        bare[r] = run_wall(target, NULL);
        for (int v = 0; v < nv; v++) {
            char *argv[32];
            int n = 0;
            for (int i = 0; vs[v].prefix[i]; i++)
                argv[n++] = vs[v].prefix[i];
            for (int i = 0; target[i]; i++)
                argv[n++] = target[i];
            argv[n] = NULL;
            runs[v][r] = run_wall(argv, NULL);
        }
    }
    double bare_min = bare[0], bare_max = bare[0];
    for (int r = 0; r < repeats; r++) {
        bare_min = fmin(bare_min, bare[r]);
        bare_max = fmax(bare_max, bare[r]);
    }
    double b = bench_median(bare, repeats);
    for (int v = 0; v < nv; v++) {
        double lo = runs[v][0], hi = runs[v][0];
        for (int r = 0; r < repeats; r++) {
            lo = fmin(lo, runs[v][r]);
            hi = fmax(hi, runs[v][r]);
        }
        double m = bench_median(runs[v], repeats);
        if (m < 0 || b < 0) {
            printf("%s / %s: a run failed\n", label, vs[v].name);
            continue;
        }
        double overhead = 100.0 * (m / b - 1.0);
        char name[128], target_desc[64];
        snprintf(name, sizeof(name), "%s: %s (overhead %+.2f%%)", label, vs[v].name, overhead);
        int is_ours = strncmp(vs[v].name, "wlprof", 6) == 0;
        double limit = strstr(vs[v].name, "1000") ? 5.0 : 1.0;
        snprintf(target_desc, sizeof(target_desc), is_ours ? "<= %.0f%% overhead" : "(reference)",
                 limit);
        bench_row(name, m, b, "s wall", "bare target", b / m, 100.0 * (hi - lo) / m,
                  target_desc, !is_ours || overhead <= limit);
    }
}

static double json_path_num(json_t *root, const char *a, const char *b)
{
    return json_number_value(json_object_get(json_object_get(root, a), b));
}

static void accuracy_row(int cpu_ms, int sleep_ms, const char *wlprof, const char *split)
{
    char report[PATH_MAX], truth_path[PATH_MAX], cpu[16], nap[16];
    snprintf(report, sizeof(report), "%s/bench/split-%d.json", build_dir, cpu_ms);
    snprintf(truth_path, sizeof(truth_path), "%s/bench/split-%d.truth", build_dir, cpu_ms);
    snprintf(cpu, sizeof(cpu), "%d", cpu_ms);
    snprintf(nap, sizeof(nap), "%d", sleep_ms);
    char *argv[] = {(char *)wlprof, "profile", "-q", "-o", report, "--", (char *)split,
                    cpu,           nap,       "3",  NULL};
    if (run_wall(argv, truth_path) < 0) {
        printf("accuracy %d/%d: run failed\n", cpu_ms, sleep_ms);
        return;
    }
    FILE *f = fopen(truth_path, "r");
    double truth = -1;
    if (f) {
        if (fscanf(f, "waiting=%lf", &truth) != 1)
            truth = -1;
        fclose(f);
    }
    json_t *root = json_load_file(report, 0, NULL);
    if (!root || truth < 0) {
        printf("accuracy %d/%d: no report or ground truth\n", cpu_ms, sleep_ms);
        json_decref(root);
        return;
    }
    double measured = json_path_num(root, "split", "waiting");
    json_decref(root);
    double err_pp = 100.0 * fabs(measured - truth);
    char name[128];
    snprintf(name, sizeof(name), "split accuracy %d/%d cpu/wait (error %.2f pp)", cpu_ms,
             sleep_ms, err_pp);
    bench_row(name, 100 * measured, 100 * truth, "% wait", "target's own measure",
              truth > 0 ? measured / truth : 0, -1, "<= 3 pp error", err_pp <= 3.0);
    unlink(report);
    unlink(truth_path);
}

int main(int argc, char **argv)
{
    int repeats = argc > 1 ? atoi(argv[1]) : 5;
    if (repeats < 1 || repeats > 32) {
        fprintf(stderr, "bench_profiler: REPEATS must be 1..32\n");
        return 2;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n < 0)
        return 1;
    self[n] = '\0';
    snprintf(build_dir, sizeof(build_dir), "%s", dirname(dirname(self)));

    char wlprof[PATH_MAX], busy[PATH_MAX], split[PATH_MAX];
    snprintf(wlprof, sizeof(wlprof), "%s/wlprof", build_dir);
    snprintf(busy, sizeof(busy), "%s/tests/targets/prof_busy", build_dir);
    snprintf(split, sizeof(split), "%s/tests/targets/prof_split", build_dir);
    if (access(wlprof, X_OK) || access(busy, X_OK) || access(split, X_OK)) {
        fprintf(stderr, "bench_profiler: build wlprof and tests/targets first (%s)\n",
                build_dir);
        return 1;
    }

    variant vs[4] = {
        {"wlprof 100 Hz", {wlprof, "profile", "-q", "--hz", "100", "--", NULL}},
        {"wlprof 1000 Hz", {wlprof, "profile", "-q", "--hz", "1000", "--", NULL}},
        {"perf stat", {"perf", "stat", "-o", "/dev/null", "--", NULL}},
        {"perf record -F 1000 -g", {"perf", "record", "-q", "-F", "1000", "-g", "-o",
                                    "/dev/null", "--", NULL}},
    };
    int nv = have_perf() ? 4 : 2;
    if (nv == 2)
        printf("(perf not usable here: perf rows skipped)\n");

    char *cpu_target[] = {busy, "1", NULL};
    overhead_rows("cpu-bound 1 s", cpu_target, vs, nv, repeats);
    char *sys_target[] = {"dd", "if=/dev/zero", "of=/dev/null", "bs=64", "count=5000000", NULL};
    overhead_rows("syscall-heavy dd", sys_target, vs, nv, repeats);

    accuracy_row(30, 70, wlprof, split);
    accuracy_row(50, 50, wlprof, split);
    accuracy_row(80, 20, wlprof, split);
    return 0;
}
