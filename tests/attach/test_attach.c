/*
 * test_attach.c -- `wlprof profile --pid`: attaching to running programs,
 * the stacks read from outside, and every kind of bad pid.
 *
 * Targets are started here, told apart by events (a "ready" line, a pipe
 * closed), never by sleeps; CPU shares are taken over the time the target
 * could run (wall minus its run-queue wait), so a loaded machine does not
 * move them.
 */
#include <dirent.h>
#include <poll.h>
#include <pty.h>
#include <stdbool.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "testutil.h"
#include "wlprof/attach.h"

#define CRUNCH "tests/targets/attach_crunch"

typedef struct target {
    pid_t pid;
    int in;   /* write end of its stdin: closing it ends the target */
} target;

/* Starts attach_crunch with a pipe on stdin and up to three arguments (a
 * NULL ends them), and waits for its "ready" line. */
static target start_crunch_args(const char *a1, const char *a2, const char *a3)
{
    int in[2], out[2];
    ck_assert_int_eq(pipe(in), 0);
    ck_assert_int_eq(pipe(out), 0);
    target t = {0};
    t.pid = fork();
    ck_assert_int_ge(t.pid, 0);
    if (t.pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        const char *path = tu_path(CRUNCH);
        execl(path, path, a1, a2, a3, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    char buf[16] = "";
    ck_assert_int_gt(read(out[0], buf, sizeof(buf) - 1), 0);
    ck_assert_msg(strncmp(buf, "ready", 5) == 0, "target said '%s'", buf);
    close(out[0]);
    t.in = in[1];
    return t;
}

static target start_crunch(const char *cycles)
{
    return start_crunch_args(cycles, NULL, NULL);
}

/* Ends the target (EOF on stdin) and returns its exit status. */
static int finish_crunch(target *t)
{
    close(t->in);
    return tu_wait(t->pid, 60);
}

/* Runs wlprof with argv (NULL-terminated, after "wlprof"), stderr into
 * errpath; returns its exit status. */
static int run_wlprof(const char *const *args, const char *errpath)
{
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)tu_env("WLPROF");
    for (; args[n - 1] && n < 31; n++)
        argv[n] = (char *)args[n - 1];
    argv[n] = NULL;
    return tu_run_to(argv, NULL, errpath, 120);
}

/* A field of /proc/PID/status ("State", "TracerPid"), as text. */
static const char *proc_status(pid_t pid, const char *key)
{
    static char line[256];
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    const char *found = "";
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, key, strlen(key)) == 0 && line[strlen(key)] == ':') {
            found = line + strlen(key) + 1;
            while (*found == ' ' || *found == '\t')
                found++;
            break;
        }
    fclose(f);
    return found;
}

/* One attach run's files in a fresh directory -- the report r.json and
 * wlprof's stderr err -- and the pid as --pid takes it. */
typedef struct attach_run {
    const char *report, *errp;
    char pid[16];
} attach_run;

static attach_run attach_files(pid_t pid)
{
    attach_run a;
    tu_tmpdir();
    a.report = tu_file("r.json");
    a.errp = tu_file("err");
    snprintf(a.pid, sizeof(a.pid), "%d", (int)pid);
    return a;
}

/* Runs wlprof with args (which write a->report), asserts it exited 0
 * (its stderr in the message) and returns the report (caller decrefs). */
static json_t *attach_report(const char *const *args, const attach_run *a)
{
    int rc = run_wlprof(args, a->errp);
    ck_assert_msg(rc == 0, "wlprof exited %d: %s", rc, tu_slurp(a->errp));
    return tu_load_json(a->report);
}

static double func_cpu(const json_t *report, const char *name, const char *which)
{
    const json_t *funcs = json_object_get(report, "functions");
    size_t i;
    const json_t *f;
    json_array_foreach(funcs, i, f)
    {
        if (strcmp(json_string_value(json_object_get(f, "name")), name) == 0) {
            const json_t *part = json_object_get(f, which);
            return json_number_value(json_object_get(part, "user_s")) +
                   json_number_value(json_object_get(part, "sys_s"));
        }
    }
    return 0;
}

/* The "done when": 2 s attached to a program that computes 50 ms
 * in crunch_loop and sleeps 50 ms, which then finishes normally. */
START_TEST(test_attach_two_seconds_to_crunch_loop)
{
    target t = start_crunch(NULL);
    attach_run a = attach_files(t.pid);
    const char *folded = tu_file("f.txt");
    const char *args[] = {"profile", "--pid", a.pid, "--duration", "2", "-o", a.report,
                          "--folded", folded, NULL};
    json_t *r = attach_report(args, &a);

    /* detached and running: not stopped, not traced */
    ck_assert_int_eq(kill(t.pid, 0), 0);
    ck_assert_msg(strncmp(proc_status(t.pid, "TracerPid"), "0", 1) == 0, "still traced");
    ck_assert_msg(strchr("RS", proc_status(t.pid, "State")[0]) != NULL, "state %s",
                  proc_status(t.pid, "State"));

    ck_assert_str_eq(tu_str(r, "schema"), "wlprof.report/3");
    ck_assert(json_is_true(tu_get(r, "target.attached")));
    double wall = tu_num(r, "time.wall_s");
    ck_assert_msg(wall >= 1.95 && wall < 3.5, "wall %.3f s", wall);
    /* Half of the time it is not kept from running computes, half sleeps.
     * cores busy (CPU / wall) is ~0.5 when the machine has a CPU for it;
     * on a loaded one the run queue takes a share, and the sampler's
     * split gets coarser (schedstat reports a run-queue stretch only when
     * it ends), so the check is on CPU against CPU + sleep, wider. */
    double cpu = tu_num(r, "time.user_s") + tu_num(r, "time.sys_s");
    double sleep = tu_num(r, "waits.by_kind.sleep.seconds");
    double runq = tu_num(r, "time.runqueue_s");
    double busy = cpu / (cpu + sleep);
    if (runq < 0.1 * wall)
        ck_assert_msg(tu_num(r, "time.cores_busy") > 0.4 && tu_num(r, "time.cores_busy") < 0.6,
                      "cores busy %.3f", tu_num(r, "time.cores_busy"));
    ck_assert_msg(busy > (runq < 0.25 * wall ? 0.38 : 0.2) && busy < 0.62,
                  "computing %.3f of computing + sleeping (cpu %.3f s, sleep %.3f s, wall %.3f s, "
                  "run queue %.3f s)", busy, cpu, sleep, wall, runq);
    /* stacks: crunch_loop holds the CPU (cpu_now and the vdso inside it) */
    ck_assert_msg(tu_get(r, "stacks") != NULL, "no stacks; wlprof said: %s", tu_slurp(a.errp));
    double in_crunch = func_cpu(r, "crunch_loop", "total");
    double stacks_cpu = tu_num(r, "stacks.user_s") + tu_num(r, "stacks.sys_s");
    ck_assert_msg(stacks_cpu > 0.5 * cpu, "stacks hold %.3f of %.3f s CPU", stacks_cpu, cpu);
    ck_assert_msg(in_crunch > 0.8 * stacks_cpu, "crunch_loop %.3f of %.3f s", in_crunch,
                  stacks_cpu);
    ck_assert_msg(tu_num(r, "profiler.stack_pauses") > 0, "no stop counted");
    ck_assert_msg(tu_num(r, "profiler.pause_max_s") < 0.5, "a pause of %.3f s",
                  tu_num(r, "profiler.pause_max_s"));
    ck_assert_msg(strstr(tu_slurp(folded), "crunch_loop") != NULL, "folded has no crunch_loop");
    ck_assert_msg(strstr(tu_slurp(a.errp), "(attached to pid"), "summary: %s", tu_slurp(a.errp));
    json_decref(r);
    /* exit 0 means none of its sleeps saw EINTR */
    ck_assert_int_eq(finish_crunch(&t), 0);
}
END_TEST

/* Short bursts between 1 ms sleeps: a thread seen runnable is mostly on
 * its way out of the sleep (woken, maybe queued); a stop that lands there
 * is not a CPU sample, so the CPU goes to crunch_loop, not to the sleep. */
START_TEST(test_attach_cpu_is_not_blamed_on_the_sleep)
{
    target t = start_crunch_args("-1", "0.3", "1");
    attach_run a = attach_files(t.pid);
    const char *args[] = {"profile", "-q", "--pid", a.pid, "-d", "2", "-o", a.report, NULL};
    json_t *r = attach_report(args, &a);
    double stacks_cpu = tu_num(r, "stacks.user_s") + tu_num(r, "stacks.sys_s");
    double in_sleep = func_cpu(r, "clock_nanosleep", "self") + func_cpu(r, "__nanosleep", "self");
    double in_crunch = func_cpu(r, "crunch_loop", "total");
    ck_assert_msg(stacks_cpu > 0, "no CPU samples");
    ck_assert_msg(in_sleep < 0.25 * stacks_cpu, "%.3f of %.3f s CPU in the sleep", in_sleep,
                  stacks_cpu);
    ck_assert_msg(in_crunch > 0.5 * stacks_cpu, "%.3f of %.3f s CPU in crunch_loop", in_crunch,
                  stacks_cpu);
    json_decref(r);
    ck_assert_int_eq(finish_crunch(&t), 0);
}
END_TEST

/* Without stacks, and the process exits while we watch: the profile ends
 * with it, well before --duration. */
START_TEST(test_attach_ends_when_target_exits)
{
    target t = start_crunch("4"); /* about 0.4 s */
    attach_run a = attach_files(t.pid);
    /* The test is its parent and reaps it only after wlprof is done: the
     * exit is seen as the zombie it is. */
    const char *args[] = {"profile", "-q", "--pid", a.pid, "-d", "60", "--no-stacks",
                          "-o", a.report, NULL};
    double t0 = tu_now();
    json_t *r = attach_report(args, &a);
    ck_assert_msg(tu_now() - t0 < 50, "wlprof waited for --duration");
    ck_assert_msg(tu_num(r, "time.wall_s") < 50, "wall %.1f", tu_num(r, "time.wall_s"));
    ck_assert_int_eq(json_array_size(tu_get(r, "processes")), 1);
    ck_assert_ptr_null(tu_get(r, "functions"));
    json_decref(r);
    ck_assert_int_eq(finish_crunch(&t), 0);
}
END_TEST

/* Ctrl-C ends the profile normally and the report is written; the target
 * is untouched. SIGTERM too, with 128+15. */
static void stop_with(int sig, int want)
{
    target t = start_crunch(NULL);
    attach_run a = attach_files(t.pid);
    int err[2];
    ck_assert_int_eq(pipe(err), 0);
    pid_t w = fork();
    if (w == 0) {
        dup2(err[1], 2);
        close(err[0]);
        int null = open("/dev/null", O_RDWR);
        dup2(null, 1);
        execl(tu_env("WLPROF"), "wlprof", "profile", "--pid", a.pid, "-o", a.report, (char *)NULL);
        _exit(127);
    }
    close(err[1]);
    char buf[512];
    ssize_t n = read(err[0], buf, sizeof(buf) - 1); /* "wlprof: attached to ..." */
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    ck_assert_msg(strstr(buf, "attached") != NULL, "wlprof said: %s", buf);
    kill(w, sig);
    ck_assert_int_eq(tu_wait(w, 60), want);
    close(err[0]);
    json_t *r = tu_load_json(a.report);
    ck_assert(json_is_true(tu_get(r, "target.attached")));
    json_decref(r);
    ck_assert_int_eq(kill(t.pid, 0), 0);
    ck_assert_int_eq(finish_crunch(&t), 0);
}

START_TEST(test_attach_sigint_ends_profile_with_status_0)
{
    stop_with(SIGINT, 0);
}
END_TEST

START_TEST(test_attach_sigterm_ends_profile_with_status_143)
{
    stop_with(SIGTERM, 128 + SIGTERM);
}
END_TEST

/* Starts `sh -c script` with $0 the crunch target, stdin /dev/null (a
 * crunch with a cycle count runs them whatever its stdin) and stdout a
 * pipe, and waits for the first thing it writes. *out: the pipe's read end
 * (the caller closes it). */
static pid_t start_shell(const char *script, int *out)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t sh = fork();
    ck_assert_int_ge(sh, 0);
    if (sh == 0) {
        int null = open("/dev/null", O_RDONLY);
        dup2(null, 0);
        dup2(p[1], 1);
        close(p[0]);
        execl("/bin/sh", "sh", "-c", script, tu_path(CRUNCH), (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char buf[16];
    ck_assert_int_gt(read(p[0], buf, sizeof(buf)), 0);
    *out = p[0];
    return sh;
}

/* --children finds the computing child of a shell; without it the shell
 * alone is profiled (and it computes nothing). */
START_TEST(test_attach_children_follows_descendants)
{
    int out;
    pid_t sh = start_shell("\"$0\" 25 & wait", &out); /* the child is running */
    attach_run a = attach_files(sh);
    for (int with = 0; with < 2; with++) {
        const char *args[] = {"profile", "-q", "--no-stacks", "--pid", a.pid, "-d", "0.8",
                              "-o", a.report, with ? "--children" : NULL, NULL};
        json_t *r = attach_report(args, &a);
        double cpu = tu_num(r, "time.user_s") + tu_num(r, "time.sys_s");
        size_t nprocs = json_array_size(tu_get(r, "processes"));
        if (with) {
            /* the child computes half the time it can run */
            double can_run = tu_num(r, "time.wall_s") - tu_num(r, "time.runqueue_s");
            ck_assert_int_eq(nprocs, 2);
            ck_assert_msg(cpu > 0.25 * can_run, "with --children: %.3f s CPU of %.3f s", cpu,
                          can_run);
        } else {
            ck_assert_int_eq(nprocs, 1);
            ck_assert_msg(cpu < 0.05, "the shell alone: %.3f s CPU", cpu);
        }
        json_decref(r);
    }
    ck_assert_int_eq(tu_wait(sh, 60), 0);
    close(out);
}
END_TEST

/* Children that come and go, with stacks: a thread exiting under a stop
 * is not mistaken for a refusal, every process gets its stacks. */
START_TEST(test_attach_children_that_come_and_go_keep_their_stacks)
{
    int out;
    pid_t sh =
        start_shell("echo go; for i in 1 2 3 4 5 6 7 8 9 10; do \"$0\" 2 >/dev/null; done", &out);
    attach_run a = attach_files(sh);
    const char *args[] = {"profile", "-q", "--children", "--pid", a.pid, "-o", a.report, NULL};
    json_t *r = attach_report(args, &a);
    const char *msg = tu_slurp(a.errp);
    ck_assert_msg(strstr(msg, "cannot trace") == NULL, "%s", msg);
    size_t nprocs = json_array_size(tu_get(r, "processes"));
    ck_assert_msg(nprocs >= 5, "%zu processes", nprocs);
    ck_assert_msg(func_cpu(r, "crunch_loop", "total") > 0, "no crunch_loop in the stacks");
    json_decref(r);
    ck_assert_int_eq(tu_wait(sh, 60), 0);
    close(out);
}
END_TEST

/* ---- bad pids: one line, exit status 1 (2 for a malformed list) ---- */

static void expect_refusal(const char *pid, int want, const char *needle)
{
    tu_tmpdir();
    const char *errp = tu_file("err");
    const char *args[] = {"profile", "--pid", pid, "-d", "0.2", NULL};
    int rc = run_wlprof(args, errp);
    const char *msg = tu_slurp(errp);
    ck_assert_msg(rc == want, "pid %s: exit %d, want %d (%s)", pid, rc, want, msg);
    ck_assert_msg(tu_count_lines(msg) == 1, "pid %s: not one line: %s", pid, msg);
    ck_assert_msg(strstr(msg, needle) != NULL, "pid %s: '%s' lacks '%s'", pid, msg, needle);
}

START_TEST(test_attach_pid_that_does_not_exist)
{
    pid_t p = fork();
    if (p == 0)
        _exit(0);
    waitpid(p, NULL, 0); /* reaped: the pid is free */
    char buf[16];
    snprintf(buf, sizeof(buf), "%d", (int)p);
    expect_refusal(buf, 1, "no process");
}
END_TEST

/* A process that is gone by the time the session starts (it passed the
 * check, then exited): one line, -ESRCH. */
START_TEST(test_attach_begin_on_a_process_that_exited)
{
    pid_t p = fork();
    if (p == 0)
        _exit(0);
    waitpid(p, NULL, 0);
    wl_attach *a = NULL;
    char err[256];
    int pid = p;
    ck_assert_int_eq(wl_attach_begin(&a, &pid, 1, NULL, err, sizeof(err)), -ESRCH);
    ck_assert_ptr_null(a);
    ck_assert_msg(strstr(err, "exited before wlprof could attach") && !strchr(err, '\n'), "%s",
                  err);
}
END_TEST

/* Snapshots of a live session grow and do not consume it. */
START_TEST(test_attach_snapshots_are_cumulative)
{
    target t = start_crunch(NULL);
    wl_attach *a;
    char err[256];
    int pid = t.pid;
    wl_attach_opts o = {.hz = 200};
    ck_assert_int_eq(wl_attach_begin(&a, &pid, 1, &o, err, sizeof(err)), 0);
    wl_profile s1, s2, fin;
    ck_assert_int_eq(wl_attach_run(a, 0.3, NULL, -1), WL_ATTACH_DEADLINE);
    ck_assert_int_eq(wl_attach_snapshot(a, &s1), 0);
    ck_assert_int_eq(wl_attach_run(a, 0.6, NULL, -1), WL_ATTACH_DEADLINE);
    ck_assert_int_eq(wl_attach_snapshot(a, &s2), 0);
    ck_assert_msg(s2.ticks > s1.ticks && s2.sampled_s > s1.sampled_s, "%llu then %llu ticks",
                  (unsigned long long)s1.ticks, (unsigned long long)s2.ticks);
    ck_assert_int_eq(wl_attach_end(a, &fin), 0);
    ck_assert(fin.attached);
    ck_assert_uint_ge(fin.ticks, s2.ticks);
    ck_assert_int_eq(fin.nthreads, 1);
    wl_profile_free(&s1);
    wl_profile_free(&s2);
    wl_profile_free(&fin);
    ck_assert_int_eq(finish_crunch(&t), 0);
}
END_TEST

START_TEST(test_attach_pid_1_is_refused)
{
    expect_refusal("1", 1, "init");
}
END_TEST

START_TEST(test_attach_malformed_pid_list)
{
    expect_refusal("12,abc", 2, "--pid");
    expect_refusal("0", 2, "--pid");
}
END_TEST

START_TEST(test_attach_own_pid_is_refused)
{
    /* sh execs wlprof, so $$ is wlprof's own pid */
    tu_tmpdir();
    char cmd[4400];
    const char *errp = tu_file("err");
    snprintf(cmd, sizeof(cmd), "exec '%s' profile --pid $$ 2>'%s'", tu_env("WLPROF"), errp);
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    ck_assert_int_eq(tu_run(argv, 60), 1);
    const char *msg = tu_slurp(errp);
    ck_assert_msg(strstr(msg, "wlprof itself") && tu_count_lines(msg) == 1, "%s", msg);
}
END_TEST

START_TEST(test_attach_zombie_is_refused)
{
    pid_t z = fork();
    if (z == 0)
        _exit(0);
    siginfo_t si;
    waitid(P_PID, (id_t)z, &si, WEXITED | WNOWAIT); /* exited, not reaped */
    char buf[16];
    snprintf(buf, sizeof(buf), "%d", (int)z);
    expect_refusal(buf, 1, "zombie");
    waitpid(z, NULL, 0);
}
END_TEST

START_TEST(test_attach_kernel_thread_is_refused)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/2/stat");
    FILE *f = fopen(path, "r");
    if (!f || !fgets(line, sizeof(line), f) || !strstr(line, "(kthreadd)")) {
        if (f)
            fclose(f);
        /* a pid namespace without kernel threads (a container) */
        fprintf(stderr, "test_attach_kernel_thread_is_refused: no kthreadd here, not run\n");
        return;
    }
    fclose(f);
    expect_refusal("2", 1, "kernel thread");
}
END_TEST

START_TEST(test_attach_thread_id_profiles_its_process)
{
    int in[2], out[2];
    ck_assert_int_eq(pipe(in), 0);
    ck_assert_int_eq(pipe(out), 0);
    pid_t p = fork();
    if (p == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        const char *path = tu_path("tests/targets/attach_threads");
        execl(path, path, "3", "1000", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    char buf[64];
    ck_assert_int_gt(read(out[0], buf, sizeof(buf)), 0); /* threads exist */
    char task[64];
    snprintf(task, sizeof(task), "/proc/%d/task", (int)p);
    DIR *d = opendir(task);
    ck_assert_ptr_nonnull(d);
    int tid = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (atoi(de->d_name) > 0 && atoi(de->d_name) != p)
            tid = atoi(de->d_name);
    closedir(d);
    ck_assert_int_gt(tid, 0);
    attach_run a = attach_files(tid);
    const char *args[] = {"profile", "-q", "--pid", a.pid, "-d", "0.3", "-o", a.report, NULL};
    json_t *r = attach_report(args, &a);
    const char *msg = tu_slurp(a.errp);
    ck_assert_msg(strstr(msg, "is a thread of process") && tu_count_lines(msg) == 1, "%s", msg);
    ck_assert_int_eq((int)tu_num(r, "target.pid"), (int)p);
    ck_assert_int_eq((int)tu_num(r, "sampling.max_threads"), 4);
    json_decref(r);
    ck_assert_int_eq(write(in[1], "go\n", 3), 3);
    ck_assert_int_eq(tu_wait(p, 60), 0);
    close(in[1]);
    close(out[0]);
}
END_TEST

/* Another user's process, without privileges: a clear notice and the
 * /proc profile that is possible, no stacks. */
START_TEST(test_attach_other_users_process_without_privileges)
{
    if (geteuid() != 0) {
        fprintf(stderr, "test_attach_other_users_process: needs root to become another user\n");
        return;
    }
    target t = start_crunch(NULL);
    char errp[] = "/tmp/wlprof-test-attach-err-XXXXXX";
    int fd = mkstemp(errp);
    ck_assert_int_ge(fd, 0);
    fchmod(fd, 0666);
    close(fd);
    char buf[16];
    snprintf(buf, sizeof(buf), "%d", (int)t.pid);
    pid_t w = fork();
    if (w == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(99);
        int e = open(errp, O_WRONLY | O_TRUNC);
        int null = open("/dev/null", O_RDWR);
        dup2(e, 2);
        dup2(null, 1);
        execl(tu_env("WLPROF"), "wlprof", "profile", "-q", "--pid", buf, "-d", "0.3", (char *)NULL);
        _exit(127);
    }
    int rc = tu_wait(w, 60);
    const char *msg = tu_slurp(errp);
    unlink(errp);
    if (rc == 127) { /* nobody cannot reach the build tree */
        fprintf(stderr, "test_attach_other_users_process: wlprof not executable as nobody\n");
        finish_crunch(&t);
        return;
    }
    ck_assert_msg(rc == 0, "exit %d: %s", rc, msg);
    ck_assert_msg(strstr(msg, "belongs to uid 0"), "no notice: %s", msg);
    ck_assert_msg(strstr(msg, "cannot trace"), "no stacks notice: %s", msg);
    ck_assert_int_eq(finish_crunch(&t), 0);
}
END_TEST

/* A debugger already attached: stacks are impossible, said in one line,
 * the /proc profile goes on. */
START_TEST(test_attach_traced_target_falls_back_to_proc)
{
    target t = start_crunch(NULL);
    ck_assert_int_eq(ptrace(PTRACE_SEIZE, t.pid, NULL, NULL), 0);
    attach_run a = attach_files(t.pid);
    const char *args[] = {"profile", "-q", "--pid", a.pid, "-d", "0.5", "-o", a.report, NULL};
    json_t *r = attach_report(args, &a);
    const char *msg = tu_slurp(a.errp);
    ck_assert_msg(strstr(msg, "already traced") && tu_count_lines(msg) == 1, "%s", msg);
    ck_assert_ptr_null(tu_get(r, "functions"));
    ck_assert_msg(tu_num(r, "time.user_s") > 0, "no CPU seen");
    json_decref(r);
    /* our seize never stopped it; let go (a seized tracee needs no stop) */
    ptrace(PTRACE_INTERRUPT, t.pid, NULL, NULL);
    int st;
    waitpid(t.pid, &st, __WALL);
    ptrace(PTRACE_DETACH, t.pid, NULL, NULL);
    ck_assert_int_eq(finish_crunch(&t), 0);
}
END_TEST


/* ---- wlprof top ---- */

/* Longest line of text (escape sequences and carriage returns skipped). */
static int widest_line(const char *s)
{
    int w = 0, best = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '\033') { /* CSI ... final byte */
            p++;
            if (*p == '[') {
                while (p[1] && !(p[1] >= '@' && p[1] <= '~'))
                    p++;
                p++;
                if (*p == 'H' || *p == 'J')
                    w = 0; /* the cursor went home: a new frame */
            }
            continue;
        }
        if (*p == '\n' || *p == '\r') {
            w = 0;
            continue;
        }
        if (++w > best)
            best = w;
    }
    return best;
}

static int count_of(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* Without a terminal: one plain snapshot per interval, 80 columns. */
START_TEST(test_top_without_tty_prints_snapshots)
{
    tu_tmpdir();
    char cmd[4400];
    const char *outp = tu_file("out");
    snprintf(cmd, sizeof(cmd), "'%s' top -d 0.5 -n 3 -- '%s' 1000 </dev/null >'%s' 2>&1",
             tu_env("WLPROF"), tu_path(CRUNCH), outp);
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    ck_assert_int_eq(tu_run(argv, 120), 0);
    const char *out = tu_slurp(outp);
    ck_assert_msg(count_of(out, "wlprof top - pid") == 3, "%s", out);
    ck_assert_msg(strstr(out, "crunch_loop") && strstr(out, " sleep "), "%s", out);
    ck_assert_msg(widest_line(out) <= 80, "a line of %d columns", widest_line(out));
}
END_TEST

/* On a terminal of 80x24 (a pty): the alternate screen, functions and
 * waits, keys, and the terminal put back as it was. */
START_TEST(test_top_on_a_terminal_80x24)
{
    struct winsize ws = {.ws_row = 24, .ws_col = 80};
    int master;
    pid_t pid = forkpty(&master, NULL, NULL, &ws);
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        execl(tu_env("WLPROF"), "wlprof", "top", "-d", "0.5", "--", tu_path(CRUNCH), "100000",
              (char *)NULL);
        _exit(127);
    }
    static char out[1 << 20];
    size_t len = 0;
    bool asked = false;
    double end = tu_now() + 60;
    for (;;) {
        struct pollfd p = {.fd = master, .events = POLLIN};
        if (poll(&p, 1, 200) > 0) {
            ssize_t n = read(master, out + len, sizeof(out) - 1 - len);
            if (n <= 0)
                break; /* EIO once top exited */
            len += (size_t)n;
            out[len] = '\0';
        }
        if (!asked && strstr(out, "crunch_loop") && strstr(out, " sleep ")) {
            ck_assert_int_eq(write(master, "s", 1), 1);
            ck_assert_int_eq(write(master, "q", 1), 1);
            asked = true;
        }
        ck_assert_msg(tu_now() < end, "no functions and waits on screen: %s", out);
    }
    int status = tu_wait(pid, 30);
    ck_assert_msg(asked, "top ended before showing functions: %s", out);
    ck_assert_int_eq(status, 0);
    ck_assert_msg(strstr(out, "\033[?1049h") && strstr(out, "\033[?1049l"),
                  "no alternate screen");
    ck_assert_msg(strstr(out, "by waiting"), "s did not change the sort");
    ck_assert_msg(widest_line(out) <= 80, "a line of %d columns", widest_line(out));
    close(master);
}
END_TEST

/* The terminal modes top changes (echo, canonical input) are back after
 * it exits: checked on the pty from its slave side by a shell. */
START_TEST(test_top_restores_the_terminal)
{
    struct winsize ws = {.ws_row = 24, .ws_col = 80};
    int master;
    char cmd[4400];
    snprintf(cmd, sizeof(cmd),
             "stty -g > /dev/null; a=$(stty -g); '%s' top -d 0.3 -n 2 -- '%s' 100000 >/dev/null;"
             " b=$(stty -g); [ \"$a\" = \"$b\" ] && echo SAME || echo DIFFERENT",
             tu_env("WLPROF"), tu_path(CRUNCH));
    pid_t pid = forkpty(&master, NULL, NULL, &ws);
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    static char out[1 << 16];
    size_t len = 0;
    ssize_t n;
    while ((n = read(master, out + len, sizeof(out) - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    ck_assert_int_eq(tu_wait(pid, 60), 0);
    ck_assert_msg(strstr(out, "SAME") != NULL, "terminal not restored: %s", out);
    close(master);
}
END_TEST

/* A command that ends by itself gives top its exit status. */
START_TEST(test_top_exits_with_the_commands_status)
{
    char cmd[4400];
    snprintf(cmd, sizeof(cmd), "'%s' top -d 0.2 -- /bin/sh -c '\"$0\" 5; exit 7' '%s' "
             "</dev/null >/dev/null 2>&1", tu_env("WLPROF"), tu_path(CRUNCH));
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    ck_assert_int_eq(tu_run(argv, 120), 7);
}
END_TEST

START_TEST(test_top_bad_input)
{
    tu_tmpdir();
    const char *errp = tu_file("err");
    const char *a1[] = {"top", "--pid", "1", NULL};
    ck_assert_int_eq(run_wlprof(a1, errp), 1);
    ck_assert_msg(tu_count_lines(tu_slurp(errp)) == 1, "%s", tu_slurp(errp));
    const char *a2[] = {"top", NULL};
    ck_assert_int_eq(run_wlprof(a2, errp), 2);
    const char *a3[] = {"top", "-d", "0", "--", "true", NULL};
    ck_assert_int_eq(run_wlprof(a3, errp), 2);
    const char *a4[] = {"top", "--", "/nonexistent/prog", NULL};
    ck_assert_int_eq(run_wlprof(a4, errp), 127);
    ck_assert_msg(tu_count_lines(tu_slurp(errp)) == 1, "%s", tu_slurp(errp));
}
END_TEST

static Suite *attach_suite(void)
{
    Suite *s = suite_create("attach");
    TCase *tc = tcase_create("attach");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_attach_two_seconds_to_crunch_loop);
    tcase_add_test(tc, test_attach_ends_when_target_exits);
    tcase_add_test(tc, test_attach_cpu_is_not_blamed_on_the_sleep);
    tcase_add_test(tc, test_attach_sigint_ends_profile_with_status_0);
    tcase_add_test(tc, test_attach_sigterm_ends_profile_with_status_143);
    tcase_add_test(tc, test_attach_children_follows_descendants);
    tcase_add_test(tc, test_attach_children_that_come_and_go_keep_their_stacks);
    tcase_add_test(tc, test_attach_pid_that_does_not_exist);
    tcase_add_test(tc, test_attach_pid_1_is_refused);
    tcase_add_test(tc, test_attach_begin_on_a_process_that_exited);
    tcase_add_test(tc, test_attach_snapshots_are_cumulative);
    tcase_add_test(tc, test_attach_malformed_pid_list);
    tcase_add_test(tc, test_attach_own_pid_is_refused);
    tcase_add_test(tc, test_attach_zombie_is_refused);
    tcase_add_test(tc, test_attach_kernel_thread_is_refused);
    tcase_add_test(tc, test_attach_thread_id_profiles_its_process);
    tcase_add_test(tc, test_attach_other_users_process_without_privileges);
    tcase_add_test(tc, test_attach_traced_target_falls_back_to_proc);
    tcase_add_test(tc, test_top_without_tty_prints_snapshots);
    tcase_add_test(tc, test_top_on_a_terminal_80x24);
    tcase_add_test(tc, test_top_restores_the_terminal);
    tcase_add_test(tc, test_top_exits_with_the_commands_status);
    tcase_add_test(tc, test_top_bad_input);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(attach_suite());
}
