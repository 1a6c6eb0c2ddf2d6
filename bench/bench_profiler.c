/*
 * bench_profiler.c -- what `wlprof profile` costs its target, and how
 * accurate its split is, measured against baselines in the same run.
 *
 *  - overhead: wall time of a CPU-bound target (1 s of CPU) and of a
 *    syscall-heavy one (dd with 64-byte blocks), bare vs under wlprof at
 *    100 and 1000 Hz -- /proc sampling only (--no-stacks) and with the
 *    stack agent preloaded (the default) -- and vs `perf stat` /
 *    `perf record -F 1000 -g` where perf works. Runs alternate
 *    bare/profiled so drift hits both; medians.
 *  - fixed costs: a 0.2 s Python script (Debian's interpreter, and python3
 *    on PATH when that is another one) and 100 short processes (a shell
 *    loop of /bin/true), whole command minus bare.
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
    int report;       /* a wlprof run: read the target's own wall from its report */
} variant;

static char report_tmp[PATH_MAX];

static double report_wall(void)
{
    json_t *root = json_load_file(report_tmp, 0, NULL);
    double wall = root ? json_number_value(json_object_get(json_object_get(root, "time"),
                                                           "wall_s"))
                       : -1;
    json_decref(root);
    unlink(report_tmp);
    return wall > 0 ? wall : -1;
}

/* Measures the target bare and under each variant, alternating so drift
 * hits all alike, and prints one row per variant. For wlprof the row is the
 * target's own wall time (from the report: spawn to exit), which is what
 * the sampling costs the target; a second row gives the whole command,
 * which adds the profiler's start and its work after the target exited
 * (reading and symbolising stacks). perf rows can only be whole commands. */
static void overhead_rows(const char *label, char *const target[], variant *vs, int nv,
                          int repeats)
{
    double bare[32] = {0}, runs[8][32] = {{0}}, whole[8][32] = {{0}};
    for (int r = 0; r < repeats; r++) {
        /* bare first in even rounds, last in odd ones: the ratios are
         * paired per round (bench_paired_ratio), and a drift within a
         * round then does not always favour the same side */
        if (r % 2 == 0)
            bare[r] = run_wall(target, NULL);
        for (int k = 0; k < nv; k++) {
            int v = r % 2 == 0 ? k : nv - 1 - k;
            char *argv[40];
            int n = 0;
            for (int i = 0; vs[v].prefix[i]; i++)
                argv[n++] = vs[v].prefix[i];
            if (vs[v].report) {
                argv[n++] = "-o";
                argv[n++] = report_tmp;
            }
            argv[n++] = "--";
            for (int i = 0; target[i]; i++)
                argv[n++] = target[i];
            argv[n] = NULL;
            whole[v][r] = run_wall(argv, NULL);
            runs[v][r] = vs[v].report && whole[v][r] > 0 ? report_wall() : whole[v][r];
        }
        if (r % 2 == 1)
            bare[r] = run_wall(target, NULL);
    }
    bench_stat b = bench_stats(bare, repeats);
    for (int v = 0; v < nv; v++) {
        bench_stat m = bench_stats(runs[v], repeats);
        int failed = 0;
        for (int r = 0; r < repeats; r++)
            failed |= runs[v][r] < 0;
        if (failed || b.median < 0) {
            printf("%s / %s: a run failed\n", label, vs[v].name);
            continue;
        }
        bench_stat ratio = bench_paired_ratio(runs[v], bare, repeats);
        double overhead = 100.0 * (1.0 / ratio.median - 1.0);
        char name[160], target_desc[64];
        int is_ours = vs[v].report;
        /* Issue 17's targets: 1 % at 100 Hz and 5 % at 1000 Hz on the CPU-bound
         * target; on the syscall-heavy one 3 % for the agent at 100 Hz and
         * for /proc sampling at 1000 Hz. */
        int hz1000 = strstr(vs[v].name, "1000") != NULL, stacks = strstr(vs[v].name, "stacks") != NULL;
        double limit = hz1000 ? 5.0 : 1.0;
        if (strstr(label, "dd") && (stacks != hz1000))
            limit = 3.0;
        snprintf(name, sizeof(name), "%s: %s%s (%+.2f%%)", label, vs[v].name,
                 is_ours ? ", target wall" : ", whole cmd", overhead);
        snprintf(target_desc, sizeof(target_desc), is_ours ? "<= %.0f%% overhead" : "(reference)",
                 limit);
        bench_row_paired(name, m, b, "s wall", "bare target", ratio, target_desc,
                         !is_ours || overhead <= limit);
        if (is_ours) {
            bench_stat w = bench_stats(whole[v], repeats);
            bench_stat wratio = bench_paired_ratio(whole[v], bare, repeats);
            double wo = 100.0 * (1.0 / wratio.median - 1.0);
            double wlimit = strstr(label, "cpu") && strstr(vs[v].name, "stacks 100 ") ? 3.0 : -1;
            snprintf(name, sizeof(name), "%s: %s, whole cmd (%+.2f%%)", label, vs[v].name, wo);
            if (wlimit > 0)
                bench_row_paired(name, w, b, "s wall", "bare target", wratio, "<= 3% whole cmd",
                                 wo <= wlimit);
            else
                bench_row_paired(name, w, b, "s wall", "bare target", wratio, "(reference)", 1);
        }
    }
}

/* The fixed cost of the whole command on a short Python script: its wall
 * under `wlprof profile` (stacks on, 100 Hz) minus the bare script's, in
 * milliseconds, run by interp; the target is <= 30 ms (reference: a row
 * that only shows, e.g. a pyenv shim, a bash script that runs ~30
 * processes before the interpreter). */
static void python_fixed_row(const char *wlprof, const char *interp, const char *label, int reference,
                             int repeats)
{
    char script[PATH_MAX];
    snprintf(script, sizeof(script), "%s/bench/short.py", build_dir);
    FILE *f = fopen(script, "w");
    if (!f)
        return;
    fputs("import time\nt = time.process_time()\nx = 0\n"
          "while time.process_time() - t < 0.2:\n    x += 1\n",
          f);
    fclose(f);
    char *bare_argv[] = {(char *)interp, script, NULL};
    char *prof_argv[] = {(char *)wlprof, "profile", "-q", "-o", report_tmp, "--", (char *)interp, script, NULL};
    double bare[32] = {0}, prof[32] = {0}, extra[32] = {0};
    int ok = 1;
    for (int r = 0; r < repeats && ok; r++) {
        bare[r] = run_wall(bare_argv, NULL);
        prof[r] = run_wall(prof_argv, NULL);
        unlink(report_tmp);
        ok = bare[r] > 0 && prof[r] > 0;
        extra[r] = (prof[r] - bare[r]) * 1e3;
    }
    unlink(script);
    char name[200];
    snprintf(name, sizeof(name), "python 0.2 s CPU script, %s: whole cmd minus bare (stacks, 100 Hz)", label);
    if (!ok) {
        printf("%s: %s not runnable, row skipped\n", name, interp);
        return;
    }
    bench_stat e = bench_stats(extra, repeats), b = bench_stats(bare, repeats);
    b.median *= 1e3;
    bench_row2(name, e, b, "ms", "bare script (ms)", e.median > 0 ? 30.0 / e.median : 99,
               reference ? "(reference)" : "<= 30 ms fixed", reference || e.median <= 30);
}

/* python3 as execvp would find it on PATH, resolved (realpath), or "". */
static void python_on_path(char *out, size_t len)
{
    out[0] = '\0';
    const char *path = getenv("PATH");
    for (const char *p = path; p && *p;) {
        const char *end = strchr(p, ':');
        size_t dl = end ? (size_t)(end - p) : strlen(p);
        char cand[PATH_MAX];
        snprintf(cand, sizeof(cand), "%.*s/python3", (int)dl, dl ? p : ".");
        char real[PATH_MAX];
        if (access(cand, X_OK) == 0 && realpath(cand, real)) {
            snprintf(out, len, "%s", real);
            return;
        }
        p = end ? end + 1 : p + dl;
    }
}

/* Many short-lived processes: a shell loop running /bin/true 100 times,
 * whole command under `wlprof profile` minus the bare loop, per process, in
 * milliseconds: what the agent costs each process it is loaded into (the
 * loader, its start, its exit) and what each costs wlprof afterwards. The
 * target is <= 0.3 ms with stacks on; the /proc-only row is the reference
 * for what is not the agent's. */
#define SHORT_PROCS 100
static void short_process_rows(const char *wlprof, int repeats)
{
    char loop[128];
    snprintf(loop, sizeof(loop), "for i in $(seq %d); do /bin/true; done", SHORT_PROCS);
    char *bare_argv[] = {"sh", "-c", loop, NULL};
    char *stk_argv[] = {(char *)wlprof, "profile", "-q", "--hz", "100", "-o", report_tmp, "--", "sh", "-c", loop, NULL};
    char *proc_argv[] = {(char *)wlprof, "profile", "-q", "--no-stacks", "--hz", "100", "-o", report_tmp, "--",
                         "sh", "-c", loop, NULL};
    double bare[32] = {0}, stk[32] = {0}, proc[32] = {0};
    int ok = 1;
    for (int r = 0; r < repeats && ok; r++) {
        bare[r] = run_wall(bare_argv, NULL);
        double s = run_wall(stk_argv, NULL);
        unlink(report_tmp);
        double p = run_wall(proc_argv, NULL);
        unlink(report_tmp);
        ok = bare[r] > 0 && s > 0 && p > 0;
        stk[r] = (s - bare[r]) * 1e3 / SHORT_PROCS;
        proc[r] = (p - bare[r]) * 1e3 / SHORT_PROCS;
    }
    if (!ok) {
        printf("short processes: a run failed, rows skipped\n");
        return;
    }
    bench_stat b = bench_stats(bare, repeats), s = bench_stats(stk, repeats), p = bench_stats(proc, repeats);
    b.median *= 1e3;
    bench_row2("100 short processes (sh loop of /bin/true), stacks 100 Hz: whole cmd minus bare, per process",
               s, b, "ms", "bare loop (ms)", s.median > 0 ? 0.3 / s.median : 99, "<= 0.3 ms/process",
               s.median <= 0.3);
    bench_row2("100 short processes (sh loop of /bin/true), /proc only: whole cmd minus bare, per process",
               p, b, "ms", "bare loop (ms)", p.median > 0 ? 0.3 / p.median : 99, "(reference)", 1);
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
    snprintf(name, sizeof(name), "split accuracy %d/%d cpu/wait (%.2f pp off)", cpu_ms,
             sleep_ms, err_pp);
    bench_row(name, 100 * measured, 100 * truth, "% wait", "target's own measure",
              truth > 0 ? measured / truth : 0, -1, "<= 3 pp error", err_pp <= 3.0);
    unlink(report);
    unlink(truth_path);
}

int main(int argc, char **argv)
{
    int repeats = argc > 1 ? atoi(argv[1]) : BENCH_REPS;
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

    snprintf(report_tmp, sizeof(report_tmp), "%s/bench/overhead-report.json", build_dir);
    variant vs[6] = {
        {"/proc only 100 Hz", {wlprof, "profile", "-q", "--no-stacks", "--hz", "100", NULL}, 1},
        {"/proc only 1000 Hz", {wlprof, "profile", "-q", "--no-stacks", "--hz", "1000", NULL}, 1},
        {"+stacks 100 Hz", {wlprof, "profile", "-q", "--hz", "100", NULL}, 1},
        {"+stacks 1000 Hz", {wlprof, "profile", "-q", "--hz", "1000", NULL}, 1},
        {"perf stat", {"perf", "stat", "-o", "/dev/null", NULL}, 0},
        {"perf record -F 1000 -g", {"perf", "record", "-q", "-F", "1000", "-g", "-o", "/dev/null", NULL}, 0},
    };
    int nv = have_perf() ? 6 : 4;
    if (nv == 2)
        printf("(perf not usable here: perf rows skipped)\n");

    char *cpu_target[] = {busy, "1", NULL};
    overhead_rows("cpu 1 s", cpu_target, vs, nv, repeats);
    char *sys_target[] = {"dd", "if=/dev/zero", "of=/dev/null", "bs=64", "count=5000000", NULL};
    /* dd varies 20-30 % run to run on this VM, and one pair's ratio by as
     * much: more pairs (10 left the median of the ratios moving by 5
     * points between two runs of the same code) */
    overhead_rows("syscalls dd", sys_target, vs, nv, repeats * 3 > 32 ? 32 : repeats * 3);

    /* The interpreter the product targets is Debian's; python3 on PATH may
     * be another (a pyenv shim: a bash script running ~30 processes). */
    const char *debian_py = "/usr/bin/python3";
    if (access(debian_py, X_OK) == 0)
        python_fixed_row(wlprof, debian_py, debian_py, 0, repeats);
    else
        printf("python 0.2 s CPU script: %s not installed, row skipped\n", debian_py);
    char on_path[PATH_MAX], debian_real[PATH_MAX];
    python_on_path(on_path, sizeof(on_path));
    if (!realpath(debian_py, debian_real))
        debian_real[0] = '\0';
    if (on_path[0] && strcmp(on_path, debian_real) != 0) {
        char label[PATH_MAX + 32];
        snprintf(label, sizeof(label), "python3 on PATH (%s)", on_path);
        python_fixed_row(wlprof, "python3", label, 1, repeats);
    }
    short_process_rows(wlprof, repeats);
    accuracy_row(30, 70, wlprof, split);
    accuracy_row(50, 50, wlprof, split);
    accuracy_row(80, 20, wlprof, split);
    return 0;
}
