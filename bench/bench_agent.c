/*
 * bench_agent.c -- cost of the stack agent on a CPU-bound target.
 *
 * The target is this program re-executed with "--spin N": a fixed amount of
 * arithmetic (not a fixed time), so any cost the agent adds shows up as
 * extra CPU. Each round runs the bare target, then the target with
 * libwlprof-agent.so preloaded at 100 Hz and at 1000 Hz, interleaved so
 * machine load hits all three alike; the figure is the median over rounds
 * of the child's CPU time (user + system from wait4), agent vs bare.
 *
 * Syscall-heavy target: `dd if=/dev/zero of=/dev/null bs=64 count=2000000`
 * (4 M read/write calls of ~0.1 us, every one through the agent's
 * interposers), bare vs agent at 100 Hz, interleaved; the figure is the
 * median wall time. This is the per-call cost of the wait timing.
 *
 * CPU-bound Python target: Debian's /usr/bin/python3 counting primes by
 * trial division (a fixed count, PY_PRIMES_LIMIT), bare vs the agent at
 * 100 Hz with Python frames (and without, WLPROF_AGENT_PYTHON=0, to show
 * what the frame reader itself costs), interleaved; median child CPU time.
 * Skipped when /usr/bin/python3 is absent.
 *
 * Note: POSIX CPU-clock timers expire on the scheduler tick, so the
 * effective rate is capped at the kernel's CONFIG_HZ (250 on Debian).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define ROUNDS 7
#define SPIN_ITERS 150000000L
#define PYTHON "/usr/bin/python3"
#define PY_PRIMES_LIMIT "500000"
static const char py_primes[] =
    "import sys\n"
    "def count_primes(limit):\n"
    "    count = 0\n"
    "    for n in range(2, limit):\n"
    "        d = 2\n"
    "        while d * d <= n:\n"
    "            if n % d == 0:\n"
    "                break\n"
    "            d += 1\n"
    "        else:\n"
    "            count += 1\n"
    "    return count\n"
    "count_primes(int(sys.argv[1]))\n";

static volatile double sink;

static int spin(long iters)
{
    double x = 1.0;
    for (long i = 0; i < iters; i++)
        x = x * 1.0000001 + 0.5 / (x + 1.0);
    sink = x;
    return 0;
}

/* Runs the spinner with the agent at hz (0: bare); returns child CPU s. */
static double run(const char *self, const char *agent, double hz, const char *dir)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (hz > 0) {
            char hzs[32];
            snprintf(hzs, sizeof(hzs), "%g", hz);
            setenv("LD_PRELOAD", agent, 1);
            setenv("WLPROF_AGENT_DIR", dir, 1);
            setenv("WLPROF_AGENT_HZ", hzs, 1);
            setenv("ASAN_OPTIONS", "verify_asan_link_order=0", 1);
        }
        char iters[32];
        snprintf(iters, sizeof(iters), "%ld", SPIN_ITERS);
        execl(self, self, "--spin", iters, (char *)NULL);
        _exit(127);
    }
    int st;
    struct rusage ru;
    if (wait4(pid, &st, 0, &ru) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return -1;
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

/* Runs the Python primes with the agent at 100 Hz (with_agent 0: bare; 2:
 * without Python frames); returns the child's CPU s. */
static double run_python(const char *agent, const char *dir, int with_agent)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (with_agent) {
            setenv("LD_PRELOAD", agent, 1);
            setenv("WLPROF_AGENT_DIR", dir, 1);
            setenv("WLPROF_AGENT_HZ", "100", 1);
            if (with_agent == 2)
                setenv("WLPROF_AGENT_PYTHON", "0", 1);
        }
        execl(PYTHON, PYTHON, "-c", py_primes, PY_PRIMES_LIMIT, (char *)NULL);
        _exit(127);
    }
    int st;
    struct rusage ru;
    if (wait4(pid, &st, 0, &ru) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return -1;
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

/* Runs dd with the agent at 100 Hz (agent: 0 = bare); returns wall s. */
static double run_dd(const char *agent, const char *dir, int with_agent)
{
    double t0 = bench_now();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (with_agent) {
            setenv("LD_PRELOAD", agent, 1);
            setenv("WLPROF_AGENT_DIR", dir, 1);
            setenv("WLPROF_AGENT_HZ", "100", 1);
        }
        execlp("dd", "dd", "if=/dev/zero", "of=/dev/null", "bs=64", "count=2000000", "status=none",
               (char *)NULL);
        _exit(127);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return -1;
    return bench_now() - t0;
}

/* (max - min) / median in percent, before bench_median sorts v. */
static double spread(const double *v)
{
    double lo = v[0], hi = v[0], c[ROUNDS];
    for (int i = 0; i < ROUNDS; i++) {
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
        c[i] = v[i];
    }
    return (hi - lo) / bench_median(c, ROUNDS) * 100;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--spin") == 0)
        return spin(atol(argv[2]));
    char self[4096], agent[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return 1;
    self[n] = '\0';
    snprintf(agent, sizeof(agent), "%s", self);
    char *slash = strrchr(agent, '/');
    *slash = '\0';
    slash = strrchr(agent, '/'); /* build/bench -> build */
    *slash = '\0';
    strcat(agent, "/libwlprof-agent.so");
    if (access(agent, R_OK) != 0) {
        fprintf(stderr, "bench_agent: %s not found\n", agent);
        return 1;
    }
    char dir[] = "/tmp/wlprof-bench-agent-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    double bare[ROUNDS], a100[ROUNDS], a1000[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        bare[r] = run(self, agent, 0, dir);
        a100[r] = run(self, agent, 100, dir);
        a1000[r] = run(self, agent, 1000, dir);
        if (bare[r] < 0 || a100[r] < 0 || a1000[r] < 0)
            return 1;
    }
    double dd_bare[ROUNDS], dd_agent[ROUNDS];
    int have_dd = 1;
    for (int r = 0; r < ROUNDS && have_dd; r++) {
        dd_bare[r] = run_dd(agent, dir, 0);
        dd_agent[r] = run_dd(agent, dir, 1);
        have_dd = dd_bare[r] > 0 && dd_agent[r] > 0;
    }
    double py_bare[ROUNDS], py_agent[ROUNDS], py_native[ROUNDS];
    int have_py = access(PYTHON, X_OK) == 0;
    for (int r = 0; r < ROUNDS && have_py; r++) {
        py_bare[r] = run_python(agent, dir, 0);
        py_agent[r] = run_python(agent, dir, 1);
        py_native[r] = run_python(agent, dir, 2);
        have_py = py_bare[r] > 0 && py_agent[r] > 0 && py_native[r] > 0;
    }
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        return 1;
    double s100 = spread(a100), s1000 = spread(a1000);
    double mb = bench_median(bare, ROUNDS), m100 = bench_median(a100, ROUNDS),
           m1000 = bench_median(a1000, ROUNDS);
    double o100 = (m100 / mb - 1) * 100, o1000 = (m1000 / mb - 1) * 100;
    bench_row("agent overhead 100 Hz (CPU s, CPU-bound)", m100, mb, "s", "bare target", mb / m100, s100,
              "<= 1% extra CPU", o100 <= 1.0);
    bench_row("agent overhead 1000 Hz (CPU s, CPU-bound)", m1000, mb, "s", "bare target", mb / m1000, s1000,
              "<= 5% extra CPU", o1000 <= 5.0);
    if (have_dd) {
        double sdd = spread(dd_agent);
        double mbd = bench_median(dd_bare, ROUNDS), mad = bench_median(dd_agent, ROUNDS);
        double odd = (mad / mbd - 1) * 100;
        bench_row("agent overhead 100 Hz (wall s, dd 4M syscalls)", mad, mbd, "s", "bare dd", mbd / mad, sdd,
                  "<= 10% extra wall", odd <= 10.0);
    } else {
        fprintf(stderr, "bench_agent: dd not runnable, syscall-heavy row skipped\n");
    }
    if (have_py) {
        double spy = spread(py_agent), snat = spread(py_native);
        double mpb = bench_median(py_bare, ROUNDS), mpa = bench_median(py_agent, ROUNDS),
               mpn = bench_median(py_native, ROUNDS);
        bench_row("agent overhead 100 Hz (CPU s, Python primes)", mpa, mpb, "s", "bare python3", mpb / mpa, spy,
                  "<= 3% extra CPU", (mpa / mpb - 1) * 100 <= 3.0);
        bench_row("agent overhead 100 Hz, no Python frames (CPU s)", mpn, mpb, "s", "bare python3", mpb / mpn,
                  snat, "<= 3% extra CPU", (mpn / mpb - 1) * 100 <= 3.0);
    } else {
        fprintf(stderr, "bench_agent: %s not runnable, Python rows skipped\n", PYTHON);
    }
    return 0;
}
