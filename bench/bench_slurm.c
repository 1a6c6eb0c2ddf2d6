/*
 * bench_slurm.c -- the Slurm executor's cost per job against the local
 * process pool, both through `wlprof run` on the same task library and
 * inputs in the same run:
 *
 *   1,000 no-op tasks    (sample_sleep {"ms":0}), 6 jobs in flight
 *   100 x 10 ms tasks    (sample_sleep {"ms":10}), 6 jobs in flight
 *
 * over three local nodes (scripts/slurm-local: slurmd n1-n3 on 127.0.0.1)
 * against `--executor process --workers 6` on this machine. Per-job cost
 * is (T(N jobs) - T(1 job)) / (N - 1): the fixed start (salloc, srun, the
 * workers connecting; forking the pool) is measured apart, as "start".
 * Needs root to start the cluster; prints a note and no row otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

extern char **environ;

#define REPEATS 3

static char wlprof[PATH_MAX + 32];
static char samples[PATH_MAX + 32];
static char script[PATH_MAX + 128];
static char dir[] = "/tmp/wlprof-bench-slurm-XXXXXX";

static int run_argv(char *const argv[])
{
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int ws = 0;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return -1;
    }
    posix_spawn_file_actions_destroy(&fa);
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

static void write_inputs(const char *path, int n, int ms)
{
    FILE *f = fopen(path, "w");
    for (int i = 0; i < n; i++)
        fprintf(f, "{\"ms\": %d}\n", ms);
    fclose(f);
}

/* Median wall seconds of `wlprof run` over inputs with the executor. */
static double time_run(const char *executor, const char *inputs)
{
    double t[REPEATS];
    for (int r = 0; r < REPEATS; r++) {
        char *slurm[] = {wlprof, "run", "-q", "--executor", "slurm", "--nodes", "3", "--bind",
                         "127.0.0.1", "--workers", "6", "--pilot", "0", "--lib", samples,
                         "--task", "sample_sleep", "--inputs", (char *)inputs, NULL};
        char *local[] = {wlprof, "run", "-q", "--executor", "process", "--workers", "6", "--pilot",
                         "0", "--lib", samples, "--task", "sample_sleep", "--inputs",
                         (char *)inputs, NULL};
        double t0 = bench_now();
        int rc = run_argv(strcmp(executor, "slurm") == 0 ? slurm : local);
        t[r] = bench_now() - t0;
        if (rc != 0) {
            fprintf(stderr, "bench_slurm: wlprof run --executor %s failed (%d)\n", executor, rc);
            return -1;
        }
    }
    return bench_median(t, REPEATS);
}

/* The source tree, from the build's CMakeCache.txt (for scripts/slurm-local). */
static int find_paths(void)
{
    char self[PATH_MAX];
    char cache[PATH_MAX + 32];
    char line[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    FILE *f;

    if (n <= 0)
        return -1;
    self[n] = '\0';
    *strrchr(self, '/') = '\0'; /* build/bench */
    *strrchr(self, '/') = '\0'; /* build */
    snprintf(wlprof, sizeof(wlprof), "%s/wlprof", self);
    snprintf(samples, sizeof(samples), "%s/libwlprof-samples.so", self);
    snprintf(cache, sizeof(cache), "%s/CMakeCache.txt", self);
    f = fopen(cache, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "wlprof_SOURCE_DIR:STATIC=", 25) == 0) {
            line[strcspn(line, "\n")] = '\0';
            snprintf(script, sizeof(script), "%s/scripts/slurm-local", line + 25);
        }
    }
    fclose(f);
    return script[0] && access(wlprof, X_OK) == 0 && access(samples, R_OK) == 0 ? 0 : -1;
}

int main(void)
{
    char one[64], noop[64], ten[64];

    if (geteuid() != 0 || find_paths() < 0) {
        fprintf(stderr, "bench_slurm: needs root and a built wlprof: skipped\n");
        return 0;
    }
    char *start[] = {script, "start", NULL};
    if (run_argv(start) != 0) {
        fprintf(stderr, "bench_slurm: scripts/slurm-local start failed: skipped\n");
        return 0;
    }
    setenv("SLURM_CONF", "/tmp/wlprof-slurm/slurm.conf", 1);
    unsetenv("SLURM_JOB_ID");
    if (!mkdtemp(dir))
        return 1;
    snprintf(one, sizeof(one), "%s/one.jsonl", dir);
    snprintf(noop, sizeof(noop), "%s/noop.jsonl", dir);
    snprintf(ten, sizeof(ten), "%s/ten.jsonl", dir);
    write_inputs(one, 1, 0);
    write_inputs(noop, 1000, 0);
    write_inputs(ten, 100, 10);

    double s1 = time_run("slurm", one), l1 = time_run("process", one);
    double sn = time_run("slurm", noop), ln = time_run("process", noop);
    double st = time_run("slurm", ten), lt = time_run("process", ten);
    if (s1 < 0 || l1 < 0 || sn < 0 || ln < 0 || st < 0 || lt < 0)
        return 1;
    double s_job = (sn - s1) / 999 * 1e6, l_job = (ln - l1) / 999 * 1e6;
    bench_row("slurm: start (salloc + srun + 3 nodes connect), 1 job", s1, l1, "s",
              "local pool start", l1 / s1, -1, "< 5 s", s1 < 5);
    bench_row("slurm: per-job cost, 1000 no-op tasks, 3 nodes", s_job, l_job, "us",
              "local process pool", l_job / s_job, -1, "< 1000 us", s_job < 1000);
    bench_row("slurm: 100 x 10 ms tasks, 6 in flight (ideal 0.17 s + start)", st - s1, lt - l1, "s",
              "local process pool", (lt - l1) / (st - s1), -1, "<= 2x local", st - s1 <= 2 * (lt - l1));
    char cleanup[PATH_MAX + 16];
    snprintf(cleanup, sizeof(cleanup), "rm -rf %s", dir);
    if (system(cleanup) != 0)
        return 1;
    return 0;
}
