/*
 * test_run_control.c -- `wlprof run` keeps control of its jobs: faulty
 * task pilot jobs fail alone, signals reach every job and the report is
 * still written, nothing outlives a SIGKILLed wlprof, --timeout /
 * --retries / --halt bound the jobs, the GNU parallel conventions
 * ({} and {#}, :::, ::::, --joblog, --keep-order, grouped output,
 * --line-buffer, --dry-run, --resume, -j) hold, and NUL bytes in inputs
 * are errors naming FILE:LINE.
 *
 * Synchronisation is on events: a test waits until the jobs it will signal
 * exist in /proc (their command lines carry a marker unique to the test)
 * or until a file a job creates appears; deadlines only bound failures.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

typedef struct fixture {
    char dir[1024];
    char out[1100], err[1100], json[1100], in[1100], log[1100];
    char marker[64]; /* unique in this test's job command lines */
} fixture;

static void fx_init(fixture *fx)
{
    snprintf(fx->dir, sizeof(fx->dir), "%s", tu_tmpdir());
    snprintf(fx->out, sizeof(fx->out), "%s/out", fx->dir);
    snprintf(fx->err, sizeof(fx->err), "%s/err", fx->dir);
    snprintf(fx->json, sizeof(fx->json), "%s/run.json", fx->dir);
    snprintf(fx->in, sizeof(fx->in), "%s/in.txt", fx->dir);
    snprintf(fx->log, sizeof(fx->log), "%s/joblog", fx->dir);
    /* sleep takes fractional seconds: 40.<pid><n> is unique and still ~40 s;
     * fixed widths, so no test's marker is a substring of another's */
    static int n;
    snprintf(fx->marker, sizeof(fx->marker), "40.%07d%02d", (int)getpid(), n++ % 100);
}

static const char *faulty_lib(void)
{
    return tu_path("tests/libwl-faulty-tasks.so");
}

static char *slurp(const char *path)
{
    static char buf[1 << 20];
    FILE *f = fopen(path, "r");
    if (!f) {
        buf[0] = '\0';
        return buf;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fwrite(text, 1, len, f);
    fclose(f);
}

static void write_text(const char *path, const char *text)
{
    write_file(path, text, strlen(text));
}

/* Starts argv (NULL-terminated) in a process group of its own, stdout and
 * stderr into fx's files, stdin /dev/null. */
static pid_t start(fixture *fx, char *const argv[])
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        setpgid(0, 0);
        int o = open(fx->out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(fx->err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int null = open("/dev/null", O_RDONLY);
        dup2(null, 0);
        dup2(o, 1);
        dup2(e, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    setpgid(pid, pid);
    return pid;
}

static int run(fixture *fx, char *const argv[], double timeout)
{
    return tu_wait(start(fx, argv), timeout);
}

/* argv from a NULL-terminated list after WLPROF run. */
#define WL(...) ((char *[]){(char *)tu_env("WLPROF"), "run", __VA_ARGS__, NULL})

/* /proc/NAME/stat into buf; the part after the command's ')' or NULL. */
static const char *proc_stat(const char *name, char *buf, size_t len)
{
    char path[300];
    snprintf(path, sizeof(path), "/proc/%s/stat", name);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t k = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[k] = '\0';
    char *rp = strrchr(buf, ')');
    return rp && rp[1] == ' ' ? rp + 2 : NULL;
}

/* Processes whose command line contains marker (not counting zombies). */
static int count_marked(const char *marker)
{
    DIR *d = opendir("/proc");
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[300], buf[4096];
        const char *st = proc_stat(e->d_name, buf, sizeof(buf));
        if (!st || st[0] == 'Z')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t k = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        for (size_t i = 0; i < k; i++)
            if (buf[i] == '\0')
                buf[i] = ' ';
        buf[k] = '\0';
        if (strstr(buf, marker) && !strstr(buf, "wlprof"))
            n++;
    }
    closedir(d);
    return n;
}

/* Waits until at least want processes carry marker. */
static void await_marked(const char *marker, int want, double timeout)
{
    double end = tu_now() + timeout;
    while (count_marked(marker) < want) {
        ck_assert_msg(tu_now() < end, "only %d of %d '%s' processes started",
                      count_marked(marker), want, marker);
        usleep(10000);
    }
}

static json_t *job(json_t *r, size_t i)
{
    return json_array_get(json_object_get(r, "jobs"), i);
}

static const char *job_str(json_t *r, size_t i, const char *key)
{
    const char *s = json_string_value(json_object_get(job(r, i), key));
    ck_assert_msg(s, "job %zu has no string %s", i, key);
    return s;
}

/* ---- 1. faulty task pilot jobs ------------------------------------------------ */

START_TEST(test_run_faulty_pilot_jobs_fail_alone_and_the_run_goes_on)
{
    fixture fx;
    fx_init(&fx);
    write_text(fx.in, "{\"op\": \"segv\"}\n{\"op\": \"exit\"}\n"
                      "{\"op\": \"ok\", \"ms\": 5}\n{\"op\": \"ok\", \"ms\": 5}\n"
                      "{\"op\": \"ok\", \"ms\": 5}\n{\"op\": \"ok\", \"ms\": 5}\n"
                      "{\"op\": \"ok\", \"ms\": 5}\n{\"op\": \"ok\", \"ms\": 5}\n");
    for (int e = 0; e < 2; e++) {
        /* auto (a sacrificial worker) and --executor process with a pilot */
        int st = e == 0 ? run(&fx, WL("--lib", (char *)faulty_lib(), "--task", "faulty",
                                      "--inputs", fx.in, "--json", fx.json, "-q"), 60)
                        : run(&fx, WL("--lib", (char *)faulty_lib(), "--task", "faulty",
                                      "--inputs", fx.in, "--json", fx.json, "-q",
                                      "--executor", "process", "--pilot", "3"), 60);
        ck_assert_msg(st == 1, "exit %d; stderr: %s", st, slurp(fx.err));
        json_t *r = tu_load_json(fx.json);
        ck_assert_int_eq((int)tu_num(r, "totals.ok"), 6);
        ck_assert_int_eq((int)tu_num(r, "totals.failed"), 2);
        ck_assert_str_eq(job_str(r, 0, "phase"), "pilot");
        ck_assert_str_eq(job_str(r, 0, "status"), "failed");
        ck_assert_msg(strstr(job_str(r, 0, "error"), "worker"), "%s", job_str(r, 0, "error"));
        ck_assert_str_eq(job_str(r, 1, "status"), "failed");
        ck_assert_msg(strstr(job_str(r, 1, "error"), "exit status 3"), "%s",
                      job_str(r, 1, "error"));
        ck_assert_int_eq((int)tu_num(r, "pilot.jobs"), 3);
        json_decref(r);
    }
}
END_TEST

START_TEST(test_run_async_only_task_pilots_on_a_loop_in_its_worker)
{
    fixture fx;
    fx_init(&fx);
    write_text(fx.in, "{\"op\": \"segv\"}\n{\"ms\": 50}\n{\"ms\": 50}\n{\"ms\": 50}\n"
                      "{\"ms\": 50}\n{\"ms\": 50}\n");
    int st = run(&fx, WL("--lib", (char *)faulty_lib(), "--task", "napper", "--inputs", fx.in,
                         "--json", fx.json, "-q"),
                 60);
    ck_assert_msg(st == 1, "exit %d; stderr: %s", st, slurp(fx.err));
    json_t *r = tu_load_json(fx.json);
    ck_assert_str_eq(job_str(r, 0, "status"), "failed");
    ck_assert_int_eq((int)tu_num(r, "totals.ok"), 5);
    ck_assert_str_eq(tu_str(r, "executor.name"), "coroutine");
    json_decref(r);
}
END_TEST

START_TEST(test_run_hung_task_job_with_timeout_fails_in_under_5_s)
{
    fixture fx;
    fx_init(&fx);
    write_text(fx.in, "{\"op\": \"hang\"}\n{\"op\": \"ok\", \"ms\": 1}\n{\"op\": \"ok\", \"ms\": 1}\n"
                      "{\"op\": \"ok\", \"ms\": 1}\n");
    const char *how[][4] = {{"--pilot", "3", NULL, NULL},            /* hang in the pilot */
                            {"--executor", "process", "-j", "2"}};   /* in the pool */
    for (int k = 0; k < 2; k++) {
        double t0 = tu_now();
        int st = run(&fx, WL("--lib", (char *)faulty_lib(), "--task", "faulty", "--inputs", fx.in,
                             "--json", fx.json, "-q", "--timeout", "1", "--grace", "1",
                             (char *)how[k][0], (char *)how[k][1], (char *)how[k][2],
                             (char *)how[k][3]),
                     60);
        double took = tu_now() - t0;
        ck_assert_msg(st == 1, "exit %d; stderr: %s", st, slurp(fx.err));
        ck_assert_msg(took < 5, "took %.2f s", took);
        json_t *r = tu_load_json(fx.json);
        ck_assert_str_eq(job_str(r, 0, "status"), "timed_out");
        ck_assert_int_eq((int)tu_num(r, "totals.timed_out"), 1);
        ck_assert_int_eq((int)tu_num(r, "totals.ok"), 3);
        json_decref(r);
    }
    /* a coroutine job: its awaits are interrupted by a timeout scope */
    write_text(fx.in, "{\"ms\": 40000}\n{\"ms\": 10}\n{\"ms\": 10}\n");
    double t0 = tu_now();
    int st = run(&fx, WL("--lib", (char *)faulty_lib(), "--task", "napper", "--inputs", fx.in,
                         "--json", fx.json, "-q", "--timeout", "1", "--executor", "coroutine"),
                 60);
    ck_assert_msg(st == 1, "exit %d; stderr: %s", st, slurp(fx.err));
    ck_assert_msg(tu_now() - t0 < 5, "took %.2f s", tu_now() - t0);
    json_t *r = tu_load_json(fx.json);
    ck_assert_str_eq(job_str(r, 0, "status"), "timed_out");
    ck_assert_int_eq((int)tu_num(r, "totals.ok"), 2);
    json_decref(r);
}
END_TEST

/* ---- 2. signals ---------------------------------------------------------------- */

/* Four `sleep 40` commands; sig arrives once all four run. pilot: whether
 * the first runs as the pilot (then only it is running). */
static void signal_four_sleeps(int sig, int pilot, int as_terminal)
{
    fixture fx;
    fx_init(&fx);
    char text[512];
    snprintf(text, sizeof(text), "sleep %s\nsleep %s\nsleep %s\nsleep %s\n", fx.marker,
             fx.marker, fx.marker, fx.marker);
    write_text(fx.in, text);
    pid_t pid = pilot ? start(&fx, WL("--commands", fx.in, "--json", fx.json, "-q"))
                      : start(&fx, WL("--commands", fx.in, "--json", fx.json, "-q", "--workers", "4"));
    await_marked(fx.marker, pilot ? 1 : 4, 30);
    double t0 = tu_now();
    /* A terminal's Ctrl-C goes to the foreground process group: wlprof's. */
    if (as_terminal)
        kill(-pid, sig);
    else
        kill(pid, sig);
    int st = tu_wait(pid, 30);
    double took = tu_now() - t0;
    ck_assert_msg(st == 128 + sig, "exit %d; stderr: %s", st, slurp(fx.err));
    ck_assert_msg(took < 3.0 + 2, "took %.2f s (grace 3 s)", took);
    ck_assert_int_eq(count_marked(fx.marker), 0);
    json_t *r = tu_load_json(fx.json);
    ck_assert_int_eq((int)tu_num(r, "totals.ok"), 0);
    ck_assert_int_eq((int)tu_num(r, "totals.cancelled"), pilot ? 1 : 4);
    ck_assert_int_eq((int)tu_num(r, "totals.not_run"), pilot ? 3 : 0);
    ck_assert_int_eq((int)tu_num(r, "stopped.signal"), sig);
    json_decref(r);
}

START_TEST(test_run_sigint_stops_four_sleeps_and_writes_the_report)
{
    signal_four_sleeps(SIGINT, 0, 0);
}
END_TEST

START_TEST(test_run_sigterm_and_sighup_stop_the_jobs)
{
    signal_four_sleeps(SIGTERM, 0, 0);
    signal_four_sleeps(SIGHUP, 0, 0);
}
END_TEST

START_TEST(test_run_terminal_ctrl_c_reaches_jobs_in_their_own_groups)
{
    signal_four_sleeps(SIGINT, 0, 1);
}
END_TEST

START_TEST(test_run_sigint_during_the_command_pilot_stops_the_run)
{
    signal_four_sleeps(SIGINT, 1, 0);
}
END_TEST

START_TEST(test_run_signal_escalates_to_sigkill_after_the_grace_period)
{
    fixture fx;
    fx_init(&fx);
    char text[512];
    /* sh and sleep both ignore SIGTERM */
    snprintf(text, sizeof(text), "trap '' TERM; sleep %s\ntrap '' TERM; sleep %s\n", fx.marker,
             fx.marker);
    write_text(fx.in, text);
    pid_t pid = start(&fx, WL("--commands", fx.in, "--json", fx.json, "-q", "--workers", "2",
                              "--grace", "1"));
    await_marked(fx.marker, 2, 30);
    kill(pid, SIGTERM);
    int st = tu_wait(pid, 30);
    ck_assert_int_eq(st, 128 + SIGTERM);
    ck_assert_int_eq(count_marked(fx.marker), 0);
    json_t *r = tu_load_json(fx.json);
    ck_assert_int_eq((int)tu_num(r, "totals.cancelled"), 2);
    json_decref(r);
}
END_TEST

START_TEST(test_run_signal_reaches_task_workers)
{
    fixture fx;
    fx_init(&fx);
    write_text(fx.in, "{\"op\": \"ok\", \"ms\": 40000}\n{\"op\": \"ok\", \"ms\": 40000}\n"
                      "{\"op\": \"ok\", \"ms\": 40000}\n");
    for (int k = 0; k < 2; k++) {
        /* the process pool, then the pilot's worker */
        pid_t pid = k == 0 ? start(&fx, WL("--lib", (char *)faulty_lib(), "--task", "faulty",
                                           "--inputs", fx.in, "--json", fx.json, "-q",
                                           "--executor", "process", "--workers", "3"))
                           : start(&fx, WL("--lib", (char *)faulty_lib(), "--task", "faulty",
                                           "--inputs", fx.in, "--json", fx.json, "-q"));
        /* the jobs have started once wlprof's worker processes exist (this
         * kernel has no /proc/PID/task/TID/children: scan parent ids) */
        double end = tu_now() + 30;
        for (;;) {
            DIR *d = opendir("/proc");
            struct dirent *e;
            int kids = 0;
            while ((e = readdir(d))) {
                char buf[512];
                const char *st = proc_stat(e->d_name, buf, sizeof(buf));
                int ppid = 0;
                char state;
                if (st && sscanf(st, "%c %d", &state, &ppid) == 2 && ppid == pid)
                    kids++;
            }
            closedir(d);
            if (kids >= (k == 0 ? 3 : 1)) /* the pool's workers, or the pilot's worker */
                break;
            ck_assert_msg(tu_now() < end, "workers never started");
            usleep(10000);
        }
        usleep(100000); /* let the job reach its sleep; the outcome is the same either way */
        double t0 = tu_now();
        kill(pid, SIGINT);
        int st = tu_wait(pid, 30);
        ck_assert_msg(st == 128 + SIGINT, "exit %d; stderr: %s", st, slurp(fx.err));
        ck_assert_msg(tu_now() - t0 < 5, "took %.2f s", tu_now() - t0);
        json_t *r = tu_load_json(fx.json);
        ck_assert_int_eq((int)tu_num(r, "totals.ok"), 0);
        ck_assert_int_ge((int)tu_num(r, "totals.cancelled"), 1);
        ck_assert_int_eq((int)tu_num(r, "totals.cancelled") + (int)tu_num(r, "totals.not_run"),
                         3);
        json_decref(r);
    }
}
END_TEST

START_TEST(test_run_sigkilled_wlprof_leaves_no_job_behind)
{
    fixture fx;
    fx_init(&fx);
    char text[512];
    /* a job with a background grandchild, and a plain one */
    snprintf(text, sizeof(text), "sleep %s & sleep %s; wait\nsleep %s\n", fx.marker, fx.marker,
             fx.marker);
    write_text(fx.in, text);
    pid_t pid = start(&fx, WL("--commands", fx.in, "-q", "--workers", "2"));
    await_marked(fx.marker, 3, 30);
    kill(pid, SIGKILL);
    tu_wait(pid, 10);
    double end = tu_now() + 5;
    while (count_marked(fx.marker) > 0 && tu_now() < end)
        usleep(10000);
    ck_assert_int_eq(count_marked(fx.marker), 0);
}
END_TEST

/* ---- 3. bounds ------------------------------------------------------------------- */

START_TEST(test_run_command_timeout_is_timed_out_and_killed_after_grace)
{
    fixture fx;
    fx_init(&fx);
    char text[512];
    snprintf(text, sizeof(text), "sleep %s\ntrap '' TERM; sleep %s\ntrue\n", fx.marker,
             fx.marker);
    write_text(fx.in, text);
    double t0 = tu_now();
    int st = run(&fx, WL("--commands", fx.in, "--json", fx.json, "-q", "--workers", "3", "--timeout",
                         "2", "--grace", "1", "--joblog", fx.log),
                 60);
    ck_assert_msg(st == 1, "exit %d: %s", st, slurp(fx.err));
    ck_assert_msg(tu_now() - t0 < 10, "took %.2f s", tu_now() - t0);
    ck_assert_int_eq(count_marked(fx.marker), 0);
    json_t *r = tu_load_json(fx.json);
    ck_assert_str_eq(job_str(r, 0, "status"), "timed_out");
    ck_assert_str_eq(job_str(r, 1, "status"), "timed_out");
    ck_assert_str_eq(job_str(r, 2, "status"), "ok");
    ck_assert_int_eq((int)tu_num(r, "totals.timed_out"), 2);
    json_decref(r);
    /* the joblog says which signal ended them: TERM, then KILL */
    const char *log = slurp(fx.log);
    ck_assert_msg(strstr(log, "\t0\t15\tsleep "), "%s", log);
    ck_assert_msg(strstr(log, "\t0\t9\ttrap "), "%s", log);

    /* the command pilot (a profiler process) is bounded the same way */
    snprintf(text, sizeof(text), "sleep %s\ntrue\ntrue\n", fx.marker);
    write_text(fx.in, text);
    t0 = tu_now();
    st = run(&fx, WL("--commands", fx.in, "--json", fx.json, "-q", "--timeout", "2", "--grace",
                     "1"),
             60);
    ck_assert_msg(st == 1, "exit %d: %s", st, slurp(fx.err));
    ck_assert_msg(tu_now() - t0 < 10, "took %.2f s", tu_now() - t0);
    ck_assert_int_eq(count_marked(fx.marker), 0);
    r = tu_load_json(fx.json);
    ck_assert_str_eq(job_str(r, 0, "phase"), "pilot");
    ck_assert_str_eq(job_str(r, 0, "status"), "timed_out");
    ck_assert_int_eq((int)tu_num(r, "totals.ok"), 2);
    json_decref(r);
}
END_TEST

START_TEST(test_run_retries_record_every_attempt)
{
    fixture fx;
    fx_init(&fx);
    char text[8192];
    /* job 1 succeeds on its second attempt, job 2 never */
    snprintf(text, sizeof(text),
             "n=$(cat %s/count 2>/dev/null || echo 0); n=$((n+1)); echo $n > %s/count; "
             "[ $n -ge 2 ]\nexit 4\n",
             fx.dir, fx.dir);
    write_text(fx.in, text);
    int st = run(&fx, WL("--commands", fx.in, "--json", fx.json, "-q", "--workers", "1", "--retries",
                         "2"),
                 60);
    ck_assert_int_eq(st, 1);
    json_t *r = tu_load_json(fx.json);
    ck_assert_str_eq(job_str(r, 0, "status"), "ok");
    ck_assert_int_eq((int)json_array_size(json_object_get(job(r, 0), "attempts")), 2);
    json_t *a0 = json_array_get(json_object_get(job(r, 0), "attempts"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(a0, "status")), "failed");
    ck_assert_str_eq(job_str(r, 1, "status"), "failed");
    ck_assert_int_eq((int)json_array_size(json_object_get(job(r, 1), "attempts")), 3);
    json_decref(r);

    /* tasks too: a job that always fails runs 1 + 2 times */
    write_text(fx.in, "{\"op\": \"fail\"}\n{\"op\": \"ok\"}\n");
    st = run(&fx, WL("--lib", (char *)faulty_lib(), "--task", "faulty", "--inputs", fx.in,
                     "--json", fx.json, "-q", "--retries", "2", "--executor", "process"),
             60);
    ck_assert_int_eq(st, 1);
    r = tu_load_json(fx.json);
    ck_assert_int_eq((int)json_array_size(json_object_get(job(r, 0), "attempts")), 3);
    ck_assert_int_eq((int)json_array_size(json_object_get(job(r, 1), "attempts")), 1);
    json_decref(r);
}
END_TEST

START_TEST(test_run_halt_soon_and_now)
{
    fixture fx;
    fx_init(&fx);
    char text[8192];
    char flag[1200];
    snprintf(flag, sizeof(flag), "%s/started", fx.dir);
    /* job 1 fails once job 2 is running; job 2 runs on; 3 and 4 wait */
    snprintf(text, sizeof(text),
             "while [ ! -e %s ]; do sleep 0.01; done; exit 1\n"
             "touch %s; trap '' TERM; sleep 1\ntrue\ntrue\n",
             flag, flag);
    write_text(fx.in, text);
    int st = run(&fx, WL("--commands", fx.in, "--json", fx.json, "-q", "--workers", "2", "--halt",
                         "soon,fail=1"),
                 60);
    ck_assert_int_eq(st, 1);
    json_t *r = tu_load_json(fx.json);
    ck_assert_str_eq(job_str(r, 0, "status"), "failed");
    ck_assert_str_eq(job_str(r, 1, "status"), "ok"); /* soon: the running one finishes */
    ck_assert_int_eq((int)tu_num(r, "totals.not_run"), 2);
    ck_assert(json_is_true(tu_get(r, "stopped.halted")));
    json_decref(r);

    /* now: the running one is stopped; it traps TERM, so KILL after the
     * grace, and it is cancelled, not ok */
    unlink(flag);
    snprintf(text, sizeof(text),
             "while [ ! -e %s ]; do sleep 0.01; done; exit 1\n"
             "touch %s; trap '' TERM; sleep %s; true\ntrue\ntrue\n",
             flag, flag, fx.marker);
    write_text(fx.in, text);
    double t0 = tu_now();
    st = run(&fx, WL("--commands", fx.in, "--json", fx.json, "-q", "--workers", "2", "--halt",
                     "now,fail=1", "--grace", "1"),
             60);
    ck_assert_int_eq(st, 1);
    ck_assert_msg(tu_now() - t0 < 10, "took %.2f s", tu_now() - t0);
    r = tu_load_json(fx.json);
    ck_assert_str_eq(job_str(r, 1, "status"), "cancelled");
    ck_assert_int_eq((int)tu_num(r, "totals.not_run"), 2);
    json_decref(r);
    ck_assert_int_eq(count_marked(fx.marker), 0);

    /* --fail-fast is --halt now,fail=1; both at once is a usage error */
    st = run(&fx, WL("--commands", fx.in, "--fail-fast", "--halt", "soon,fail=1"), 30);
    ck_assert_int_eq(st, 2);
    st = run(&fx, WL("--commands", fx.in, "--halt", "later"), 30);
    ck_assert_int_eq(st, 2);
    ck_assert(strstr(slurp(fx.err), "--halt must be"));
}
END_TEST

/* ---- 4. GNU parallel parity ------------------------------------------------------ */

START_TEST(test_run_template_substitution_and_dry_run)
{
    fixture fx;
    fx_init(&fx);
    int st = run(&fx, WL("--dry-run", "echo", "{#}:{}", ":::", "a", "b c", "it's", "$HOME"), 30);
    ck_assert_int_eq(st, 0);
    ck_assert_str_eq(slurp(fx.out),
                     "echo 1:a\necho 2:'b c'\necho 3:'it'\\''s'\necho 4:'$HOME'\n");
    /* no {}: appended; from a file with :::: and -a */
    write_text(fx.in, "x\ny z\n");
    st = run(&fx, WL("--dry-run", "printf", "%s\\n", "::::", fx.in), 30);
    ck_assert_int_eq(st, 0);
    ck_assert_str_eq(slurp(fx.out), "printf %s\\n x\nprintf %s\\n 'y z'\n");
    /* and run for real: the arguments arrive as one word each */
    st = run(&fx, WL("-q", "-k", "--no-prefix", "-a", fx.in, "printf", "'[%s]\\n'"), 30);
    ck_assert_int_eq(st, 0);
    ck_assert_str_eq(slurp(fx.out), "[x]\n[y z]\n");
    /* --dry-run runs nothing */
    char made[1200];
    snprintf(made, sizeof(made), "%s/made", fx.dir);
    st = run(&fx, WL("--dry-run", "touch", ":::", made), 30);
    ck_assert_int_eq(st, 0);
    ck_assert_int_ne(access(made, F_OK), 0);
    /* ::: without arguments, two sources, a COMMAND beside another mode */
    ck_assert_int_eq(run(&fx, WL("echo", ":::"), 30), 2);
    ck_assert_int_eq(run(&fx, WL("--commands", fx.in, "echo"), 30), 2);
    ck_assert(strstr(slurp(fx.err), "unexpected argument 'echo'"));
    ck_assert_int_eq(run(&fx, WL("-a", fx.in, "echo", ":::", "x"), 30), 2);
}
END_TEST

START_TEST(test_run_joblog_has_parallels_columns)
{
    fixture fx;
    fx_init(&fx);
    int st = run(&fx, WL("-q", "-j", "2", "--joblog", fx.log, "sh -c 'exit {}'", ":::", "0", "3"),
                 30);
    ck_assert_int_eq(st, 1);
    const char *log = slurp(fx.log);
    static const char header[] =
        "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n";
    ck_assert_msg(strncmp(log, header, sizeof(header) - 1) == 0, "%s", log);
    int seen = 0;
    for (const char *p = strchr(log, '\n') + 1; *p; p = strchr(p, '\n') + 1) {
        unsigned seq;
        double t, rt;
        int send, recv, ev, sig;
        char cmd[64];
        ck_assert_int_eq(sscanf(p, "%u\t:\t%lf\t%lf\t%d\t%d\t%d\t%d\t%63[^\n]", &seq, &t, &rt,
                                &send, &recv, &ev, &sig, cmd),
                         8);
        ck_assert(t > 1.6e9 && rt >= 0);
        ck_assert_int_eq(ev, seq == 1 ? 0 : 3);
        ck_assert_int_eq(sig, 0);
        ck_assert_str_eq(cmd, seq == 1 ? "sh -c 'exit 0'" : "sh -c 'exit 3'");
        seen |= 1 << seq;
    }
    ck_assert_int_eq(seen, 6);
}
END_TEST

START_TEST(test_run_resume_skips_jobs_in_the_joblog)
{
    fixture fx;
    fx_init(&fx);
    write_text(fx.log, "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n"
                       "1\t:\t1700000000.000\t0.010\t0\t0\t0\t0\ttouch x\n"
                       "3\t:\t1700000000.000\t0.010\t0\t0\t0\t0\ttouch x\n");
    char d[1100];
    snprintf(d, sizeof(d), "%s", fx.dir);
    int st = run(&fx, WL("-q", "--joblog", fx.log, "--resume", "--json", fx.json, "touch",
                         "{}", ":::", "a", "b", "c"),
                 30);
    ck_assert_int_eq(st, 0);
    json_t *r = tu_load_json(fx.json);
    ck_assert_int_eq((int)tu_num(r, "totals.skipped"), 2);
    ck_assert_int_eq((int)tu_num(r, "totals.ok"), 1);
    ck_assert_str_eq(job_str(r, 0, "status"), "skipped");
    ck_assert_str_eq(job_str(r, 1, "status"), "ok");
    json_decref(r);
    /* appended, one header */
    const char *log = slurp(fx.log);
    ck_assert_ptr_null(strstr(log + 1, "Seq\t"));
    ck_assert_ptr_nonnull(strstr(log, "\n2\t:\t"));
    /* --resume without --joblog */
    ck_assert_int_eq(run(&fx, WL("--resume", "true", ":::", "a"), 30), 2);
}
END_TEST

/* Job 1 prints a1, job 2 prints b1 once job 1 printed, then job 1 prints a2:
 * interleaved in time. seen: each waits until wlprof wrote the other's line
 * (--line-buffer), else for a file the other job touches. */
static void interleaving_jobs(fixture *fx, int seen)
{
    char text[8192];
    if (seen)
        snprintf(text, sizeof(text),
                 "echo a1; while ! grep -q b1 %s; do sleep 0.01; done; echo a2\n"
                 "while ! grep -q a1 %s; do sleep 0.01; done; echo b1\n",
                 fx->out, fx->out);
    else
        snprintf(text, sizeof(text),
                 "echo a1; touch %s/g; while [ ! -e %s/f ]; do sleep 0.01; done; echo a2\n"
                 "while [ ! -e %s/g ]; do sleep 0.01; done; echo b1; touch %s/f\n",
                 fx->dir, fx->dir, fx->dir, fx->dir);
    write_text(fx->in, text);
    char p[1200];
    snprintf(p, sizeof(p), "%s/f", fx->dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/g", fx->dir);
    unlink(p);
}

START_TEST(test_run_output_is_grouped_by_default_line_buffer_interleaves)
{
    fixture fx;
    fx_init(&fx);
    interleaving_jobs(&fx, 0);
    ck_assert_int_eq(run(&fx, WL("--commands", fx.in, "-q", "-j", "2"), 30), 0);
    /* each job's lines together, whichever ended first */
    const char *out = slurp(fx.out);
    ck_assert_msg(strcmp(out, "[2] b1\n[1] a1\n[1] a2\n") == 0 ||
                      strcmp(out, "[1] a1\n[1] a2\n[2] b1\n") == 0,
                  "%s", out);
    interleaving_jobs(&fx, 0);
    ck_assert_int_eq(run(&fx, WL("--commands", fx.in, "-q", "-j", "2", "--keep-order",
                                 "--no-prefix"),
                         30),
                     0);
    ck_assert_str_eq(slurp(fx.out), "a1\na2\nb1\n");
    interleaving_jobs(&fx, 1);
    ck_assert_int_eq(run(&fx, WL("--commands", fx.in, "-q", "-j", "2", "--line-buffer"), 30), 0);
    ck_assert_str_eq(slurp(fx.out), "[1] a1\n[2] b1\n[1] a2\n");
}
END_TEST

/* Runs argv to completion; returns its peak RSS in KiB (wait4). */
static long run_rss(fixture *fx, char *const argv[])
{
    pid_t pid = start(fx, argv);
    int st;
    struct rusage ru;
    ck_assert_int_eq(wait4(pid, &st, 0, &ru), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "wlprof failed: %s", slurp(fx->err));
    return ru.ru_maxrss;
}

START_TEST(test_run_grouped_output_of_a_chatty_job_is_whole_and_not_in_memory)
{
    fixture fx;
    fx_init(&fx);
    long small = run_rss(&fx, WL("-q", "-j", "2", "seq", ":::", "10", "10"));
    /* two jobs of ~19 MB each, at once */
    long big = run_rss(&fx, WL("-q", "-j", "2", "seq", ":::", "2500000", "2500000"));
    ck_assert_msg(big - small < 16 * 1024, "peak RSS grew by %ld KiB for 38 MB of output",
                  big - small);
    /* whole: each job's lines in one block, none lost */
    FILE *f = fopen(fx.out, "r");
    ck_assert_ptr_nonnull(f);
    char line[64];
    long count[3] = {0}, expect[3] = {0, 1, 1};
    int last = 0, switches = 0;
    while (fgets(line, sizeof(line), f)) {
        int job;
        long v;
        ck_assert_int_eq(sscanf(line, "[%d] %ld", &job, &v), 2);
        ck_assert(job == 1 || job == 2);
        ck_assert_int_eq(v, expect[job]++);
        count[job]++;
        if (job != last)
            switches++;
        last = job;
    }
    fclose(f);
    ck_assert_int_eq(count[1], 2500000);
    ck_assert_int_eq(count[2], 2500000);
    ck_assert_int_eq(switches, 2);
}
END_TEST

START_TEST(test_run_keep_order_follows_the_input)
{
    fixture fx;
    fx_init(&fx);
    /* later jobs finish first */
    int st = run(&fx, WL("-q", "-k", "-j", "4", "sleep 0.{}; echo {}", ":::", "4", "3", "2", "1"),
                 30);
    ck_assert_int_eq(st, 0);
    ck_assert_str_eq(slurp(fx.out), "[1] 4\n[2] 3\n[3] 2\n[4] 1\n");
}
END_TEST

/* ---- 5. inputs -------------------------------------------------------------------- */

START_TEST(test_run_nul_byte_in_inputs_is_an_error_naming_file_and_line)
{
    fixture fx;
    fx_init(&fx);
    char want[1200];
    snprintf(want, sizeof(want), "%s:2: a NUL byte", fx.in);
#define WRITE_BYTES(path, lit) write_file(path, lit, sizeof(lit) - 1)
    WRITE_BYTES(fx.in, "true\necho a\0b\ntrue\n");
    ck_assert_int_eq(run(&fx, WL("--commands", fx.in), 30), 1);
    ck_assert_msg(strstr(slurp(fx.err), want), "%s", slurp(fx.err));
    WRITE_BYTES(fx.in, "{\"ms\": 1}\n{\"ms\": \0 2}\n");
    ck_assert_int_eq(run(&fx, WL("--lib", (char *)faulty_lib(), "--task", "faulty", "--inputs",
                                 fx.in),
                         30),
                     1);
    ck_assert_msg(strstr(slurp(fx.err), want), "%s", slurp(fx.err));
    WRITE_BYTES(fx.in, "a\nb\0c\n");
    ck_assert_int_eq(run(&fx, WL("echo", "::::", fx.in), 30), 1);
    ck_assert_msg(strstr(slurp(fx.err), want), "%s", slurp(fx.err));
}
END_TEST

/* ---- pilot cost ------------------------------------------------------------------ */

START_TEST(test_run_pilot_costs_about_one_job_on_an_io_bound_batch)
{
    fixture fx;
    fx_init(&fx);
    FILE *f = fopen(fx.in, "w");
    for (int i = 0; i < 24; i++)
        fputs("sleep 0.5\n", f);
    fclose(f);
    int st = run(&fx, WL("--commands", fx.in, "--json", fx.json, "-q"), 60);
    ck_assert_int_eq(st, 0);
    json_t *r = tu_load_json(fx.json);
    /* pilot one job (0.5 s), the other 23 at once (0.5 s): about 1 s here
     * on a quiet machine, against 12 s one after another; the bound leaves
     * room for a loaded one, and still fails a pilot that ran them in turn
     * or a main phase that did not run them all at once */
    double wall = tu_num(r, "totals.wall_s");
    ck_assert_msg(wall < 4.0, "24 x sleep 0.5 took %.2f s", wall);
    ck_assert_int_eq((int)tu_num(r, "pilot.jobs"), 1);
    ck_assert_int_ge((int)tu_num(r, "executor.max_in_flight"), 23);
    json_decref(r);
}
END_TEST

static double num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    ck_assert_msg(json_is_number(v), "no number %s", key);
    return json_number_value(v);
}

/* The first pilot job ends before the second starts; the second and third
 * overlap. Structural: no wall-clock bound. */
static void check_pilot_overlap(json_t *r, int npilot)
{
    ck_assert_int_eq((int)tu_num(r, "pilot.jobs"), npilot);
    json_t *j0 = job(r, 0), *j1 = job(r, 1), *j2 = job(r, 2);
    ck_assert_str_eq(job_str(r, 2, "phase"), "pilot");
    ck_assert_msg(num(j1, "start_s") >= num(j0, "start_s") + num(j0, "wall_s") - 1e-6,
                  "the second pilot job started before the first ended");
    ck_assert_msg(num(j2, "start_s") < num(j1, "start_s") + num(j1, "wall_s") &&
                      num(j1, "start_s") < num(j2, "start_s") + num(j2, "wall_s"),
                  "the second and third pilot jobs did not run at once");
    /* the pace is per job: job-seconds, not the overlapped wall */
    ck_assert(tu_num(r, "pilot.job_s") > tu_num(r, "pilot.wall_s") - num(j0, "wall_s"));
}

START_TEST(test_run_pilot_runs_the_first_alone_then_the_rest_at_once)
{
    fixture fx;
    fx_init(&fx);
    write_text(fx.in, "sleep 0.3\nsleep 0.3\nsleep 0.3\nsleep 0.3\n");
    int st = run(&fx, WL("--commands", fx.in, "--json", fx.json, "-q", "--pilot", "3"), 60);
    ck_assert_msg(st == 0, "exit %d: %s", st, slurp(fx.err));
    json_t *r = tu_load_json(fx.json);
    check_pilot_overlap(r, 3);
    json_decref(r);

    write_text(fx.in, "{\"op\": \"ok\", \"ms\": 300}\n{\"op\": \"ok\", \"ms\": 300}\n"
                      "{\"op\": \"ok\", \"ms\": 300}\n{\"op\": \"ok\", \"ms\": 300}\n");
    st = run(&fx, WL("--lib", (char *)faulty_lib(), "--task", "faulty", "--inputs", fx.in,
                     "--json", fx.json, "-q"),
             60);
    ck_assert_msg(st == 0, "exit %d: %s", st, slurp(fx.err));
    r = tu_load_json(fx.json);
    check_pilot_overlap(r, 3);
    ck_assert_str_eq(tu_str(r, "pilot.classification.kind"), "io_bound");
    json_decref(r);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("run_control");
    TCase *t = tcase_create("faults");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, test_run_faulty_pilot_jobs_fail_alone_and_the_run_goes_on);
    tcase_add_test(t, test_run_hung_task_job_with_timeout_fails_in_under_5_s);
    tcase_add_test(t, test_run_async_only_task_pilots_on_a_loop_in_its_worker);
    suite_add_tcase(s, t);
    t = tcase_create("signals");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, test_run_sigint_stops_four_sleeps_and_writes_the_report);
    tcase_add_test(t, test_run_sigterm_and_sighup_stop_the_jobs);
    tcase_add_test(t, test_run_terminal_ctrl_c_reaches_jobs_in_their_own_groups);
    tcase_add_test(t, test_run_sigint_during_the_command_pilot_stops_the_run);
    tcase_add_test(t, test_run_signal_escalates_to_sigkill_after_the_grace_period);
    tcase_add_test(t, test_run_signal_reaches_task_workers);
    tcase_add_test(t, test_run_sigkilled_wlprof_leaves_no_job_behind);
    suite_add_tcase(s, t);
    t = tcase_create("bounds");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, test_run_command_timeout_is_timed_out_and_killed_after_grace);
    tcase_add_test(t, test_run_retries_record_every_attempt);
    tcase_add_test(t, test_run_halt_soon_and_now);
    suite_add_tcase(s, t);
    t = tcase_create("parallel");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, test_run_template_substitution_and_dry_run);
    tcase_add_test(t, test_run_joblog_has_parallels_columns);
    tcase_add_test(t, test_run_resume_skips_jobs_in_the_joblog);
    tcase_add_test(t, test_run_output_is_grouped_by_default_line_buffer_interleaves);
    tcase_add_test(t, test_run_keep_order_follows_the_input);
    tcase_add_test(t, test_run_grouped_output_of_a_chatty_job_is_whole_and_not_in_memory);
    tcase_add_test(t, test_run_nul_byte_in_inputs_is_an_error_naming_file_and_line);
    tcase_add_test(t, test_run_pilot_costs_about_one_job_on_an_io_bound_batch);
    tcase_add_test(t, test_run_pilot_runs_the_first_alone_then_the_rest_at_once);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run_suite(suite());
}
