/*
 * test_profiler.c -- `wlprof profile` against real programs whose
 * behaviour is known: where their time goes, their exit status, and what
 * happens on bad input. Each case runs the real binary and reads its JSON.
 */
#include "testutil.h"

#include <dirent.h>
#include <math.h>
#include <sys/stat.h>

#include "schema_check.h"
#include "wlprof/profile.h"
#include "wlprof/report.h"

static char report_path[4096];

/* Runs `wlprof profile -q -o REPORT [OPTION] -- ARGS...` and returns its
 * exit status; the report is at report_path. option may be NULL. */
static int profile_run(int in_fd, double timeout, const char *option, const char *const *args)
{
    const char *dir = tu_tmpdir();
    snprintf(report_path, sizeof(report_path), "%s/report.json", dir);
    char *argv[64];
    return tu_wait(tu_spawn(tu_profile_argv(argv, 64, report_path, option, args), in_fd), timeout);
}

#define PROFILE(...) profile_run(-1, 60, NULL, (const char *const[]){__VA_ARGS__, NULL})
/* The same with the stack agent on (the default) for _i == 0, off for 1. */
#define PROFILE_BOTH(...) \
    profile_run(-1, 60, _i ? "--no-stacks" : NULL, (const char *const[]){__VA_ARGS__, NULL})

static const char *top_wait_kind(const json_t *r)
{
    const json_t *reasons = json_object_get(json_object_get(r, "waits"), "reasons");
    ck_assert_msg(json_array_size(reasons) > 0, "no wait reasons in the report");
    return json_string_value(json_object_get(json_array_get(reasons, 0), "kind"));
}

START_TEST(test_profile_sleep_is_waiting_on_sleep)
{
    ck_assert_int_eq(PROFILE("sleep", "1"), 0);
    json_t *r = tu_load_json(report_path);
    ck_assert_str_eq(tu_str(r, "schema"), WL_REPORT_SCHEMA);
    ck_assert_double_ge(tu_num(r, "split.waiting"), 0.90);
    ck_assert_str_eq(top_wait_kind(r), "sleep");
    ck_assert_double_ge(tu_num(r, "time.wall_s"), 0.95);
    ck_assert_double_le(tu_num(r, "time.wall_s"), 1.5);
    /* absolute seconds, not just shares */
    ck_assert_double_ge(tu_num(r, "waits.by_kind.sleep.seconds"), 0.90);
    /* about 100 intervals at 100 Hz; a starved profiler skips some and
     * counts them in missed_ticks */
    ck_assert_double_ge(tu_num(r, "sampling.ticks") + tu_num(r, "profiler.missed_ticks"), 50);
    json_decref(r);
}
END_TEST

START_TEST(test_profile_busy_loop_is_user_cpu)
{
    ck_assert_int_eq(PROFILE(tu_path("tests/targets/prof_busy"), "1"), 0);
    json_t *r = tu_load_json(report_path);
    /* (the user/system division is the kernel's tick-based estimate) */
    ck_assert_double_ge(tu_num(r, "split.user"), 0.85);
    ck_assert_double_ge(tu_num(r, "split.user") + tu_num(r, "split.system"), 0.95);
    ck_assert_double_le(tu_num(r, "split.waiting"), 0.05);
    ck_assert_double_ge(tu_num(r, "time.user_s"), 0.5);
    json_decref(r);
}
END_TEST

/* Four busy threads beside eight idle pool threads parked on a condvar:
 * the idle ones must not make it look like waiting. */
START_TEST(test_profile_threads_with_idle_pool_stay_cpu_bound)
{
    ck_assert_int_eq(PROFILE(tu_path("tests/targets/prof_busy"), "1", "4", "8"), 0);
    json_t *r = tu_load_json(report_path);
    /* The point: idle threads do not turn computing into waiting. (The
     * user/system division is the kernel's tick-based estimate, which
     * shifts toward system on an oversubscribed machine.) */
    ck_assert_double_le(tu_num(r, "split.waiting"), 0.05);
    ck_assert_double_ge(tu_num(r, "split.user"), 0.85);
    ck_assert_double_ge(tu_num(r, "time.user_s"), 3.5);
    ck_assert_double_ge(tu_num(r, "sampling.max_threads"), 12);
    ck_assert_double_ge(tu_num(r, "sampling.max_running_threads"), 4);
    ck_assert_int_ge(json_array_size(json_object_get(r, "threads")), 12);
    json_decref(r);
}
END_TEST

START_TEST(test_profile_slow_pipe_reader_waits_on_pipe)
{
    int fds[2];
    ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
    const char *dir = tu_tmpdir();
    snprintf(report_path, sizeof(report_path), "%s/report.json", dir);
    char *argv[] = {(char *)tu_env("WLPROF"), "profile", "-q", "-o", report_path, "--",
                    (char *)tu_path("tests/targets/prof_reader"), NULL};
    pid_t pid = tu_spawn(argv, fds[0]);
    close(fds[0]);
    for (int i = 0; i < 10; i++) {
        usleep(100000);
        ck_assert_int_eq(write(fds[1], "x", 1), 1);
    }
    close(fds[1]);
    ck_assert_int_eq(tu_wait(pid, 30), 0);
    json_t *r = tu_load_json(report_path);
    ck_assert_double_ge(tu_num(r, "split.waiting"), 0.90);
    ck_assert_str_eq(top_wait_kind(r), "pipe");
    ck_assert_double_ge(tu_num(r, "waits.by_kind.pipe.seconds"), 0.85);
    json_decref(r);
}
END_TEST

START_TEST(test_profile_fsync_writer_waits_on_disk)
{
    const char *dir = tu_tmpdir();
    ck_assert_int_eq(PROFILE(tu_path("tests/targets/prof_fsync"), dir, "1"), 0);
    json_t *r = tu_load_json(report_path);
    ck_assert_str_eq(top_wait_kind(r), "disk");
    /* the target ran until it had been blocked in fsync for 1 s by its own
     * schedstat, so half of that is a floor any load leaves standing */
    ck_assert_double_ge(tu_num(r, "time.waiting_s"), 0.5);
    ck_assert_double_ge(tu_num(r, "waits.by_kind.disk.seconds"),
                        0.8 * tu_num(r, "time.waiting_s"));
    json_decref(r);
}
END_TEST

/* Programs that end in unusual ways, with the stack agent on (the
 * default) and off: main leaving through pthread_exit while a worker
 * computes; a thread exec'ing over the process; SIGTERM taken through a
 * signalfd. Each must end as it would alone and be accounted right. */
START_TEST(test_profile_leader_pthread_exit)
{
    ck_assert_int_eq(PROFILE_BOTH(tu_path("tests/targets/prof_leader_exits"), "0.5"), 0);
    json_t *r = tu_load_json(report_path);
    /* it ends (the hang this guards against is forever), with its CPU */
    ck_assert_double_lt(tu_num(r, "time.wall_s"), 60);
    ck_assert_double_ge(tu_num(r, "time.running_s"), 0.3);
    ck_assert_double_ge(tu_num(r, "split.user"), 0.8);
    json_decref(r);
}
END_TEST

START_TEST(test_profile_thread_exec_is_not_counted_as_computing)
{
    ck_assert_int_eq(PROFILE(tu_path("tests/targets/prof_thread_exec")), 0);
    json_t *r = tu_load_json(report_path);
    ck_assert_double_ge(tu_num(r, "split.waiting"), 0.6);
    ck_assert_double_le(tu_num(r, "time.running_s"), 0.6);
    json_decref(r);
}
END_TEST

START_TEST(test_profile_signalfd_target_gets_its_signal)
{
    ck_assert_int_eq(PROFILE_BOTH(tu_path("tests/targets/prof_signalfd")), 0);
}
END_TEST

/* Ground truth: targets that compute and sleep in known proportions
 * measure their own waiting share; wlprof must agree within 5 points. */
START_TEST(test_profile_split_matches_ground_truth)
{
    static const char *const mixes[][2] = {{"30", "70"}, {"70", "30"}};
    const char *mix_cpu = mixes[_i][0], *mix_nap = mixes[_i][1];
    const char *dir = tu_tmpdir();
    char truth_path[4096], cmd[20000];
    snprintf(report_path, sizeof(report_path), "%s/report.json", dir);
    snprintf(truth_path, sizeof(truth_path), "%s/truth", dir);
    snprintf(cmd, sizeof(cmd), "%s profile -q -o %s -- %s %s %s 1.5 > %s", tu_env("WLPROF"),
             report_path, tu_path("tests/targets/prof_split"), mix_cpu, mix_nap, truth_path);
    char *argv[] = {"sh", "-c", cmd, NULL};
    ck_assert_int_eq(tu_run(argv, 30), 0);
    FILE *f = fopen(truth_path, "r");
    ck_assert_ptr_nonnull(f);
    double truth;
    ck_assert_int_eq(fscanf(f, "waiting=%lf", &truth), 1);
    fclose(f);
    json_t *r = tu_load_json(report_path);
    double measured = tu_num(r, "split.waiting");
    /* Within 5 points; 8 when the profiler itself was starved (more than a
     * quarter of its ticks late, which the report says), as on a machine
     * loaded far beyond its cores. */
    double late = tu_num(r, "profiler.late_ticks") / fmax(1, tu_num(r, "sampling.ticks"));
    double tolerance = late > 0.25 ? 0.08 : 0.05;
    ck_assert_msg(fabs(measured - truth) <= tolerance,
                  "measured waiting %.3f, truth %.3f (%.0f %% of ticks late)", measured, truth,
                  100 * late);
    ck_assert_str_eq(top_wait_kind(r), "sleep");
    json_decref(r);
}
END_TEST

/* A shell that forks two CPU-bound children: both are in the totals. */
START_TEST(test_profile_shell_children_are_accounted)
{
    char script[8192];
    const char *busy = tu_path("tests/targets/prof_busy");
    snprintf(script, sizeof(script), "%s 0.5 & %s 0.5 & wait", busy, busy);
    ck_assert_int_eq(PROFILE("sh", "-c", script), 0);
    json_t *r = tu_load_json(report_path);
    ck_assert_double_ge(tu_num(r, "time.user_s"), 0.8);
    ck_assert_double_ge(tu_num(r, "split.user"), 0.85);
    ck_assert_int_ge(json_array_size(json_object_get(r, "processes")), 3);
    json_decref(r);
}
END_TEST

/* Hundreds of unrelated processes on the machine (more than one /proc scan
 * used to look at) do not hide the target's children. */
START_TEST(test_profile_finds_children_among_many_processes)
{
    enum { NOISE = 400 };
    pid_t noise[NOISE];
    for (int i = 0; i < NOISE; i++) {
        noise[i] = fork();
        ck_assert_int_ge(noise[i], 0);
        if (noise[i] == 0) {
            pause();
            _exit(0);
        }
    }
    char script[8192];
    snprintf(script, sizeof(script), "%s 0.3; %s 0.3", tu_path("tests/targets/prof_busy"),
             tu_path("tests/targets/prof_busy"));
    int rc = PROFILE("sh", "-c", script);
    for (int i = 0; i < NOISE; i++)
        kill(noise[i], SIGKILL);
    for (int i = 0; i < NOISE; i++)
        waitpid(noise[i], NULL, 0);
    ck_assert_int_eq(rc, 0);
    json_t *r = tu_load_json(report_path);
    ck_assert_int_ge(json_array_size(json_object_get(r, "processes")), 3);
    /* both busy children were found and counted, each with its 0.3 s of
     * CPU (CPU time: exact whatever the machine's load; the split of a run
     * whose profiler was starved by the 400 processes is not the point) */
    const json_t *procs = json_object_get(r, "processes");
    int found = 0;
    for (size_t i = 0; i < json_array_size(procs); i++) {
        const json_t *p = json_array_get(procs, i);
        if (strcmp(json_string_value(json_object_get(p, "comm")), "prof_busy") == 0) {
            ck_assert_double_ge(json_number_value(json_object_get(p, "user_s")) +
                                    json_number_value(json_object_get(p, "sys_s")),
                                0.25);
            found++;
        }
    }
    ck_assert_int_eq(found, 2);
    ck_assert_double_ge(tu_num(r, "time.user_s"), 0.5);
    json_decref(r);
}
END_TEST

START_TEST(test_profile_gzip_pipeline_children_are_accounted)
{
    ck_assert_int_eq(PROFILE("sh", "-c", "yes | head -c 100M | gzip -1 > /dev/null"), 0);
    json_t *r = tu_load_json(report_path);
    ck_assert_int_ge(json_array_size(json_object_get(r, "processes")), 4);
    /* gzip alone needs well over 0.1 s of CPU for 100 MB */
    ck_assert_double_ge(tu_num(r, "time.user_s") + tu_num(r, "time.sys_s"), 0.2);
    /* Mostly computing; the stages also wait on each other through the
     * pipes, more so when the CPUs are oversubscribed. */
    ck_assert_double_ge(tu_num(r, "split.user") + tu_num(r, "split.system"), 0.6);
    json_decref(r);
}
END_TEST

START_TEST(test_profile_exits_with_target_status)
{
    ck_assert_int_eq(PROFILE("sh", "-c", "exit 3"), 3);
    json_t *r = tu_load_json(report_path);
    ck_assert_int_eq((int)tu_num(r, "target.exit_code"), 3);
    json_decref(r);
}
END_TEST

START_TEST(test_profile_crashing_target_reports_signal)
{
    ck_assert_int_eq(PROFILE(tu_path("tests/targets/prof_crash"), "0.2"), 128 + SIGSEGV);
    json_t *r = tu_load_json(report_path);
    ck_assert_str_eq(tu_str(r, "target.signal"), "SIGSEGV");
    ck_assert_int_eq((int)tu_num(r, "target.exit_status"), 128 + SIGSEGV);
    /* its 0.2 s of CPU time before the crash are counted, as computing */
    ck_assert_double_ge(tu_num(r, "time.user_s") + tu_num(r, "time.sys_s"), 0.18);
    ck_assert_double_ge(tu_num(r, "split.user") + tu_num(r, "split.system"), 0.8);
    json_decref(r);
}
END_TEST

START_TEST(test_profile_killed_target_reports_sigkill)
{
    ck_assert_int_eq(PROFILE("sh", "-c", "kill -KILL $$"), 128 + SIGKILL);
    json_t *r = tu_load_json(report_path);
    ck_assert_str_eq(tu_str(r, "target.signal"), "SIGKILL");
    json_decref(r);
}
END_TEST

/* SIGTERM sent to wlprof reaches the target, and the report is written. */
START_TEST(test_profile_forwards_sigterm_and_still_reports)
{
    const char *dir = tu_tmpdir();
    snprintf(report_path, sizeof(report_path), "%s/report.json", dir);
    char *argv[] = {(char *)tu_env("WLPROF"), "profile", "-q", "-o", report_path, "--",
                    "sleep", "30", NULL};
    pid_t pid = tu_spawn(argv, -1);
    usleep(300000);
    double t0 = tu_now();
    ck_assert_int_eq(kill(pid, SIGTERM), 0);
    ck_assert_int_eq(tu_wait(pid, 10), 128 + SIGTERM);
    ck_assert_double_le(tu_now() - t0, 2.0);
    json_t *r = tu_load_json(report_path);
    ck_assert_str_eq(tu_str(r, "target.signal"), "SIGTERM");
    ck_assert_double_lt(tu_num(r, "time.wall_s"), 5.0);
    json_decref(r);
}
END_TEST

/* The same sleep at 100 and 1000 Hz: absolute seconds agree, counts scale. */
START_TEST(test_profile_seconds_do_not_move_with_rate)
{
    const char *dir = tu_tmpdir();
    char a[4096], b[4096];
    snprintf(a, sizeof(a), "%s/a.json", dir);
    snprintf(b, sizeof(b), "%s/b.json", dir);
    char *argv_a[] = {(char *)tu_env("WLPROF"), "profile", "-q", "--hz", "100", "-o", a, "--",
                      "sleep", "0.5", NULL};
    char *argv_b[] = {(char *)tu_env("WLPROF"), "profile", "-q", "--hz", "1000", "-o", b, "--",
                      "sleep", "0.5", NULL};
    ck_assert_int_eq(tu_run(argv_a, 30), 0);
    ck_assert_int_eq(tu_run(argv_b, 30), 0);
    json_t *ra = tu_load_json(a), *rb = tu_load_json(b);
    double wa = tu_num(ra, "time.waiting_s"), wb = tu_num(rb, "time.waiting_s");
    ck_assert_double_ge(wa, 0.45);
    ck_assert_double_le(fabs(wa - wb), 0.05 * wa);
    /* ten times the rate covers ten times the intervals; a starved
     * profiler skips some, and says so in missed_ticks */
    ck_assert_double_ge(tu_num(rb, "sampling.ticks") + tu_num(rb, "profiler.missed_ticks"),
                        4 * tu_num(ra, "sampling.ticks"));
    json_decref(ra);
    json_decref(rb);
}
END_TEST

static int run_quiet(const char *const *args)
{
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)tu_env("WLPROF");
    for (int i = 0; args[i] && n < 31; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    return tu_run(argv, 30);
}
#define WLPROF_RUN(...) run_quiet((const char *const[]){__VA_ARGS__, NULL})

START_TEST(test_profile_bad_input_exit_codes)
{
    ck_assert_int_eq(WLPROF_RUN("profile"), 2);
    ck_assert_int_eq(WLPROF_RUN("profile", "--"), 2);
    ck_assert_int_eq(WLPROF_RUN("profile", "--bogus", "--", "true"), 2);
    ck_assert_int_eq(WLPROF_RUN("profile", "--", "wlprof-no-such-command"), 127);
    ck_assert_int_eq(WLPROF_RUN("profile", "--", "/etc/hostname"), 126);
    ck_assert_int_eq(WLPROF_RUN("profile", "--", "/"), 126);
    ck_assert_int_eq(WLPROF_RUN("profile", "--hz", "0", "--", "true"), 2);
    ck_assert_int_eq(WLPROF_RUN("profile", "--hz", "-5", "--", "true"), 2);
    ck_assert_int_eq(WLPROF_RUN("profile", "--hz", "1e9", "--", "true"), 2);
    ck_assert_int_eq(WLPROF_RUN("profile", "--hz", "abc", "--", "true"), 2);
    ck_assert_int_eq(WLPROF_RUN("nosuchsubcommand"), 2);
    ck_assert_int_eq(run_quiet((const char *const[]){NULL}), 2);
    ck_assert_int_eq(WLPROF_RUN("--help"), 0);
    ck_assert_int_eq(WLPROF_RUN("--version"), 0);
    ck_assert_int_eq(WLPROF_RUN("profile", "--help"), 0);
}
END_TEST

/* With /proc hidden (an empty file system mounted over it in a private
 * mount namespace), the target still runs, exact totals are still
 * reported, and the report says /proc could not be read. Needs root (CI
 * runs as root); elsewhere, and in sanitizer builds, it is skipped. */
START_TEST(test_profile_unreadable_proc_still_reports_totals)
{
#ifdef WL_SANITIZE
    tu_skip("the sanitizer runtime in wlprof itself needs /proc to start");
#endif
    if (geteuid() != 0)
        tu_skip("needs root to mount over /proc in a private mount namespace");
    if (access("/usr/bin/unshare", X_OK) != 0)
        tu_skip("needs /usr/bin/unshare (util-linux)");
    const char *dir = tu_tmpdir();
    char cmd[8192];
    snprintf(report_path, sizeof(report_path), "%s/report.json", dir);
    snprintf(cmd, sizeof(cmd),
             "mount -t tmpfs none /proc && exec %s profile -q --no-stacks -o %s -- sleep 0.3",
             tu_env("WLPROF"), report_path);
    char *argv[] = {"unshare", "-m", "sh", "-c", cmd, NULL};
    ck_assert_int_eq(tu_run(argv, 30), 0);
    json_t *r = tu_load_json(report_path);
    ck_assert_double_ge(tu_num(r, "time.wall_s"), 0.29);
    ck_assert_double_ge(tu_num(r, "profiler.proc_read_errors"), 1);
    ck_assert_double_eq(tu_num(r, "sampling.thread_samples"), 0);
    json_decref(r);
}
END_TEST

/* Bad options are named as typed, and say what is wrong with them. */
START_TEST(test_profile_bad_option_messages)
{
    static const char *const cases[][2] = {
        {"profile --json", "option '--json' needs a value"},
        {"profile -o", "option '-o' needs a value"},
        {"profile --bogus=1 -- true", "option '--bogus' is unknown"},
        {"profile -qz -- true", "option '-z' is unknown"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char cmd[4096], line[512] = "";
        snprintf(cmd, sizeof(cmd), "%s %s 2>&1", tu_env("WLPROF"), cases[i][0]);
        FILE *p = popen(cmd, "r");
        ck_assert_ptr_nonnull(p);
        ck_assert_ptr_nonnull(fgets(line, sizeof(line), p));
        ck_assert_int_eq(WEXITSTATUS(pclose(p)), 2);
        ck_assert_msg(strstr(line, cases[i][1]) != NULL, "'%s' said: %s", cases[i][0], line);
    }
}
END_TEST

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

/* An unwritable report path fails before the target runs. */
START_TEST(test_profile_unwritable_json_fails_before_running)
{
    const char *dir = tu_tmpdir();
    char marker[4096], bad[4096];
    snprintf(marker, sizeof(marker), "%s/ran", dir);
    snprintf(bad, sizeof(bad), "%s/no/such/dir/r.json", dir);
    ck_assert_int_eq(WLPROF_RUN("profile", "-q", "-o", bad, "--", "touch", marker), 1);
    ck_assert_int_ne(access(marker, F_OK), 0);
    ck_assert_int_eq(WLPROF_RUN("profile", "-q", "--folded", bad, "--", "touch", marker), 1);
    ck_assert_int_ne(access(marker, F_OK), 0);
    ck_assert_int_eq(WLPROF_RUN("profile", "-q", "--speedscope", bad, "--", "touch", marker), 1);
    ck_assert_int_ne(access(marker, F_OK), 0);
}
END_TEST

/* Reports appear whole: no temporary files are left beside them, also
 * when the target crashes. */
START_TEST(test_profile_report_written_atomically)
{
    ck_assert_int_eq(PROFILE(tu_path("tests/targets/prof_crash"), "0.05"), 128 + SIGSEGV);
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", report_path);
    *strrchr(dir, '/') = '\0';
    ck_assert_int_eq(count_entries(dir), 1);
    json_t *r = tu_load_json(report_path);
    json_decref(r);
}
END_TEST

/* The library: a report survives JSON and back unchanged, and no child
 * is left behind (orphans included) once wl_profile_command returns. */
START_TEST(test_report_json_round_trip_and_no_leftover_children)
{
    char *argv[] = {"sh", "-c", "sleep 0.1 & sleep 0.2; wait", NULL};
    wl_profile p;
    wl_profile_opts o = {.hz = 200};
    ck_assert_int_eq(wl_profile_command(argv, &o, &p), 0);
    ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
    ck_assert_int_eq(errno, ECHILD);
    ck_assert_int_ge((int)p.nprocs, 3);

    json_t *a = wl_report_to_json(&p);
    ck_assert_ptr_nonnull(a);
    wl_profile q;
    char err[256];
    ck_assert_msg(wl_report_from_json(a, &q, err, sizeof(err)) == 0, "%s", err);
    json_t *b = wl_report_to_json(&q);
    ck_assert_msg(json_equal(a, b), "report changed through JSON");
    json_decref(a);
    json_decref(b);
    wl_profile_free(&p);
    wl_profile_free(&q);
}
END_TEST

/* Two runs in one process: the second reports its own peak memory, not
 * the first one's (RUSAGE_CHILDREN keeps the largest child ever reaped). */
START_TEST(test_profile_maxrss_is_this_runs)
{
    char *big[] = {(char *)tu_path("tests/targets/prof_alloc"), "120", NULL};
    char *small[] = {"true", NULL};
    wl_profile p;
    ck_assert_int_eq(wl_profile_command(big, NULL, &p), 0);
    long first = p.maxrss_kb;
    wl_profile_free(&p);
    ck_assert_int_eq(wl_profile_command(small, NULL, &p), 0);
    long second = p.maxrss_kb;
    wl_profile_free(&p);
    ck_assert_int_ge(first, 120 * 1024);
    ck_assert_int_lt(second, 50000);   /* `true` is a few MiB */
    ck_assert_int_gt(second, 0);
}
END_TEST

/* An embedding program that ignores SIGCHLD still gets the exit status. */
START_TEST(test_profile_with_sigchld_ignored)
{
    signal(SIGCHLD, SIG_IGN);
    char *argv[] = {"sh", "-c", "sleep 0.1; exit 3", NULL};
    wl_profile p;
    ck_assert_int_eq(wl_profile_command(argv, NULL, &p), 0);
    ck_assert_int_eq(p.exit_code, 3);
    ck_assert_double_ge(p.wall_s, 0.1);
    wl_profile_free(&p);
    struct sigaction now;
    sigaction(SIGCHLD, NULL, &now);
    ck_assert_ptr_eq(now.sa_handler, SIG_IGN); /* given back as it was */
}
END_TEST

START_TEST(test_report_load_errors)
{
    const char *dir = tu_tmpdir();
    char path[4096], err[512];
    json_t *root;
    snprintf(path, sizeof(path), "%s/missing.json", dir);
    ck_assert_int_eq(wl_report_load(path, &root, err, sizeof(err)), -ENOENT);
    ck_assert_ptr_nonnull(strstr(err, "missing.json"));

    snprintf(path, sizeof(path), "%s/bad.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"schema\": ", f);
    fclose(f);
    ck_assert_int_eq(wl_report_load(path, &root, err, sizeof(err)), -EINVAL);

    f = fopen(path, "w");
    fputs("{\"schema\": \"wlprof.report/99\"}", f);
    fclose(f);
    ck_assert_int_eq(wl_report_load(path, &root, err, sizeof(err)), -EPROTO);

    f = fopen(path, "w");
    fputs("[1, 2]", f);
    fclose(f);
    ck_assert_int_eq(wl_report_load(path, &root, err, sizeof(err)), -EINVAL);
}
END_TEST

/* A real report of a multi-process, multi-reason run satisfies the
 * documented schema (docs/report-schema.json), and a broken one does not. */
START_TEST(test_report_validates_against_documented_schema)
{
    char script[8192];
    snprintf(script, sizeof(script), "%s 0.3 2 & sleep 0.3; wait",
             tu_path("tests/targets/prof_busy"));
    ck_assert_int_eq(PROFILE("sh", "-c", script), 0);
    char schema_path[4096], err[512] = "";
    snprintf(schema_path, sizeof(schema_path), "%s/docs/report-schema.json",
             tu_env("WL_SOURCE_DIR"));
    json_t *schema = tu_load_json(schema_path);
    json_t *r = tu_load_json(report_path);
    ck_assert_msg(schema_check(schema, r, "report", err, sizeof(err)) == 0, "%s", err);
    json_object_del(json_object_get(r, "time"), "wall_s");
    ck_assert_int_eq(schema_check(schema, r, "report", err, sizeof(err)), 1);
    ck_assert_ptr_nonnull(strstr(err, "wall_s"));
    json_decref(r);
    json_decref(schema);
}
END_TEST

START_TEST(test_wait_kind_names_round_trip)
{
    for (int k = 0; k < WL_WAIT_KIND_COUNT; k++)
        ck_assert_int_eq(wl_wait_kind_parse(wl_wait_kind_name((wl_wait_kind)k)), k);
    ck_assert_int_eq(wl_wait_kind_parse("nonsense"), -1);
}
END_TEST

static Suite *profiler_suite(void)
{
    Suite *s = suite_create("profiler");
    TCase *acc = tcase_create("accounting");
    tcase_set_timeout(acc, 120);
    tcase_add_test(acc, test_profile_sleep_is_waiting_on_sleep);
    tcase_add_test(acc, test_profile_busy_loop_is_user_cpu);
    tcase_add_test(acc, test_profile_threads_with_idle_pool_stay_cpu_bound);
    tcase_add_test(acc, test_profile_slow_pipe_reader_waits_on_pipe);
    tcase_add_test(acc, test_profile_fsync_writer_waits_on_disk);
    tcase_add_loop_test(acc, test_profile_split_matches_ground_truth, 0, 2);
    tcase_add_test(acc, test_profile_shell_children_are_accounted);
    tcase_add_test(acc, test_profile_gzip_pipeline_children_are_accounted);
    tcase_add_test(acc, test_profile_finds_children_among_many_processes);
    tcase_add_test(acc, test_profile_seconds_do_not_move_with_rate);
    suite_add_tcase(s, acc);

    TCase *exits = tcase_create("exit");
    tcase_set_timeout(exits, 60);
    tcase_add_test(exits, test_profile_exits_with_target_status);
    tcase_add_test(exits, test_profile_crashing_target_reports_signal);
    tcase_add_test(exits, test_profile_killed_target_reports_sigkill);
    tcase_add_test(exits, test_profile_forwards_sigterm_and_still_reports);
    tcase_add_test(exits, test_profile_bad_input_exit_codes);
    tcase_add_test(exits, test_profile_bad_option_messages);
    tcase_add_test(exits, test_profile_unwritable_json_fails_before_running);
    tcase_add_test(exits, test_profile_report_written_atomically);
    tcase_add_loop_test(exits, test_profile_leader_pthread_exit, 0, 2);
    tcase_add_test(exits, test_profile_thread_exec_is_not_counted_as_computing);
    tcase_add_loop_test(exits, test_profile_signalfd_target_gets_its_signal, 0, 2);
    suite_add_tcase(s, exits);

    /* may be skipped (root only): its own ctest entry, profiler_needs_root */
    TCase *root = tcase_create("needs_root");
    tcase_set_tags(root, "needs_root");
    tcase_set_timeout(root, 60);
    tcase_add_test(root, test_profile_unreadable_proc_still_reports_totals);
    suite_add_tcase(s, root);

    TCase *lib = tcase_create("library");
    tcase_add_test(lib, test_report_json_round_trip_and_no_leftover_children);
    tcase_add_test(lib, test_report_load_errors);
    tcase_add_test(lib, test_profile_maxrss_is_this_runs);
    tcase_add_test(lib, test_profile_with_sigchld_ignored);
    tcase_add_test(lib, test_wait_kind_names_round_trip);
    tcase_add_test(lib, test_report_validates_against_documented_schema);
    suite_add_tcase(s, lib);
    return s;
}

int main(void)
{
    return tu_run_suite(profiler_suite());
}
