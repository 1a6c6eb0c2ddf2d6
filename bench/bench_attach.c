/*
 * bench_attach.c -- what `wlprof profile --pid` with stacks costs a
 * program that is already running, against the same program unobserved
 * in the same run.
 *
 * The target (tests/targets/attach_threads) starts its threads, says
 * "ready" and waits for a line on stdin; it then runs a fixed amount of
 * arithmetic (fixed work, so every pause it suffers lengthens the run) and
 * prints how long that took by its own clock. Attached runs start wlprof
 * on the waiting target, wait for its "attached" line, then let the work
 * begin; bare runs just let it begin. Runs alternate bare/attached so
 * drift hits both; medians. The work is sized from a calibration run to
 * about 1 s of wall per run, for 1 thread and for 100 threads (all
 * runnable at once, sharing the cores).
 *
 * A second row per target gives the seconds its threads stood stopped
 * (from the report) against the bare run: the cost that is the sampler's
 * for sure, whatever else runs on the machine.
 *
 * Usage: bench_attach [REPEATS [SECONDS]]   (run from bench/run; finds the
 * build tree from its own path).
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

static char wlprof[PATH_MAX], target[PATH_MAX], report[PATH_MAX];
static double last_pause_s; /* stopped seconds of the last attached run */

struct proc {
    pid_t pid;
    int in, out; /* its stdin (ours to write) and stdout (ours to read) */
};

static int start(char *const argv[], struct proc *p, int err_to_pipe)
{
    int in[2], out[2];
    if (pipe(in) || pipe(out))
        return -1;
    p->pid = fork();
    if (p->pid < 0)
        return -1;
    if (p->pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(in[0], 0);
        dup2(err_to_pipe ? null : out[1], 1);
        dup2(err_to_pipe ? out[1] : null, 2);
        close(in[1]);
        close(out[0]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    p->in = in[1];
    p->out = out[0];
    return 0;
}

/* Reads until needle shows up (1) or EOF (0). */
static int read_until(int fd, const char *needle, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    while (len + 1 < size) {
        ssize_t n = read(fd, buf + len, size - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        len += (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, needle))
            return 1;
    }
    return 0;
}

static int finish(struct proc *p)
{
    int status;
    close(p->in);
    close(p->out);
    while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* One run of the target; with_hz > 0: attached at that rate. Returns the
 * target's own seconds for the work, or -1. */
static double run_once(const char *threads, const char *iters, const char *hz)
{
    char *targv[] = {target, (char *)threads, (char *)iters, NULL};
    struct proc t, w = {0};
    char buf[4096];
    if (start(targv, &t, 0) < 0 || !read_until(t.out, "ready", buf, sizeof(buf)))
        return -1;
    if (hz) {
        char pid[16];
        snprintf(pid, sizeof(pid), "%d", (int)t.pid);
        char *wargv[] = {wlprof, "profile", "--pid", pid, "--hz", (char *)hz, "-o", report, NULL};
        if (start(wargv, &w, 1) < 0 || !read_until(w.out, "attached", buf, sizeof(buf))) {
            kill(t.pid, SIGKILL);
            finish(&t);
            return -1;
        }
    }
    double secs = -1;
    if (write(t.in, "go\n", 3) == 3 && read_until(t.out, "\n", buf, sizeof(buf)))
        secs = atof(buf);
    if (finish(&t) != 0)
        secs = -1;
    if (hz) {
        while (read(w.out, buf, sizeof(buf)) > 0) /* its summary */
            ;
        if (finish(&w) != 0)
            secs = -1;
        json_t *r = json_load_file(report, 0, NULL);
        last_pause_s = json_number_value(
            json_object_get(json_object_get(r, "profiler"), "pause_total_s"));
        json_decref(r);
        unlink(report);
    }
    return secs;
}

static void slowdown_row(const char *name, const char *threads, long iters, int repeats)
{
    char it[32];
    snprintf(it, sizeof(it), "%ld", iters);
    double bare[32], att[32], paused[32];
    for (int r = 0; r < repeats; r++) {
        bare[r] = run_once(threads, it, NULL);
        att[r] = run_once(threads, it, "100");
        paused[r] = last_pause_s;
        if (bare[r] < 0 || att[r] < 0) {
            fprintf(stderr, "bench_attach: %s: a run failed\n", name);
            return;
        }
    }
    double lo = att[0], hi = att[0];
    for (int r = 1; r < repeats; r++) {
        lo = att[r] < lo ? att[r] : lo;
        hi = att[r] > hi ? att[r] : hi;
    }
    double b = bench_median(bare, repeats), a = bench_median(att, repeats);
    bench_row(name, a, b, "s", "same program, bare", b / a, 100 * (hi - lo) / a, "<= 3% slower",
              a <= 1.03 * b);
    /* The part of it that is ours for sure: the time its threads stood
     * stopped (the rest is the machine shared with the sampler). */
    char name2[128];
    snprintf(name2, sizeof(name2), "%s: stopped", name);
    double p = bench_median(paused, repeats);
    bench_row(name2, p, b, "s", "bare run's wall", b / (p > 1e-6 ? p : 1e-6), -1, "<= 1% of it",
              p <= 0.01 * b);
}

int main(int argc, char **argv)
{
    int repeats = argc > 1 ? atoi(argv[1]) : 5;
    double seconds = argc > 2 ? atof(argv[2]) : 1.0;
    if (repeats < 1 || repeats > 32 || !(seconds > 0)) {
        fprintf(stderr, "usage: bench_attach [REPEATS (1..32) [SECONDS per run]]\n");
        return 2;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n < 0)
        return 1;
    self[n] = '\0';
    char *build = dirname(dirname(self));
    snprintf(wlprof, sizeof(wlprof), "%s/wlprof", build);
    snprintf(target, sizeof(target), "%s/tests/targets/attach_threads", build);
    snprintf(report, sizeof(report), "%s/bench/attach-report.json", build);
    if (access(wlprof, X_OK) || access(target, X_OK)) {
        fprintf(stderr, "bench_attach: build wlprof and tests/targets first (%s)\n", build);
        return 1;
    }
    /* calibration: iterations per second of one thread */
    const long probe = 20000000;
    char it[32];
    snprintf(it, sizeof(it), "%ld", probe);
    double t = run_once("1", it, NULL);
    if (t <= 0) {
        fprintf(stderr, "bench_attach: calibration run failed\n");
        return 1;
    }
    long per_s = (long)((double)probe / t);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1)
        ncpu = 1;
    slowdown_row("attach: 1-thread CPU-bound target, stacks 100 Hz", "1",
                 (long)(seconds * (double)per_s), repeats);
    slowdown_row("attach: 100-thread CPU-bound target, stacks 100 Hz", "100",
                 (long)(seconds * (double)per_s * (double)ncpu / 100.0), repeats);
    return 0;
}
