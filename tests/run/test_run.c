/*
 * test_run.c -- specification of `wlprof run` and `wlprof samples`
 * (runner/, include/wlprof/run.h), end to end through the built binary:
 * the executor auto picks for the three kinds of task, the concurrency
 * picked for command lists, separate job output, the download sample's
 * semaphore (counted by the server), failures and bad input, and the run
 * report's keys. Task libraries are build/libwlprof-samples.so; network
 * tasks talk to an image server this test starts on 127.0.0.1.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "wlprof/httpd.h"
#include "wlprof/profile.h"

static long cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1;
}

/* Runs argv with stdout and stderr into files in dir; returns the status. */
static int run_to(char *const argv[], const char *out, const char *err, double timeout)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int null = open("/dev/null", O_RDONLY);
        dup2(null, 0);
        dup2(o, 1);
        dup2(e, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    return tu_wait(pid, timeout);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

typedef struct fixture {
    char dir[4096];
    char out[4200], err[4200], json[4200], in[4200];
} fixture;

static void fx_init(fixture *fx)
{
    snprintf(fx->dir, sizeof(fx->dir), "%s", tu_tmpdir());
    snprintf(fx->out, sizeof(fx->out), "%s/out", fx->dir);
    snprintf(fx->err, sizeof(fx->err), "%s/err", fx->dir);
    snprintf(fx->json, sizeof(fx->json), "%s/run.json", fx->dir);
    snprintf(fx->in, sizeof(fx->in), "%s/in.jsonl", fx->dir);
}

static const char *lib(void)
{
    return tu_path("libwlprof-samples.so");
}

/* wlprof run --lib libwlprof-samples.so --task TASK --inputs fx->in --json ... */
static json_t *run_task(fixture *fx, const char *task, const char *extra, int want_status)
{
    char *argv[16] = {(char *)tu_env("WLPROF"), "run", "--lib", (char *)lib(), "--task",
                      (char *)task, "--inputs", fx->in, "--json", fx->json, "--quiet"};
    int argc = 11;
    if (extra)
        argv[argc++] = (char *)extra;
    argv[argc] = NULL;
    int st = run_to(argv, fx->out, fx->err, 120);
    ck_assert_msg(st == want_status, "exit %d (want %d); stderr: %s", st, want_status,
                  slurp(fx->err));
    return tu_load_json(fx->json);
}

static void lines_of(const char *path, const char *fmt, long a, int n)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < n; i++) {
        fprintf(f, fmt, a, (long)i + 1);
        fputc('\n', f);
    }
    fclose(f);
}

/* ---- auto picks for tasks --------------------------------------------------- */

START_TEST(test_run_auto_sleep_task_uses_coroutine_loop)
{
    fixture fx;
    fx_init(&fx);
    lines_of(fx.in, "{\"ms\": %ld, \"i\": %ld}", 100, 24);
    json_t *r = run_task(&fx, "sample_sleep", NULL, 0);
    ck_assert_str_eq(tu_str(r, "executor.name"), "coroutine");
    ck_assert_str_eq(tu_str(r, "executor.chosen_by"), "auto");
    ck_assert_str_eq(tu_str(r, "pilot.classification.kind"), "io_bound");
    ck_assert_int_eq((int)tu_num(r, "totals.ok"), 24);
    ck_assert_int_eq((int)tu_num(r, "pilot.jobs"), 3);
    /* 21 jobs of 100 ms at once: far faster than one after another. */
    ck_assert_msg(tu_num(r, "speedup.speedup") > 4, "speed-up %.2f", tu_num(r, "speedup.speedup"));
    ck_assert_int_gt((int)tu_num(r, "executor.max_in_flight"), 10);
    json_decref(r);
}
END_TEST

/* Runs a download-like task against a fresh image server; the server's
 * own counts are checked, then the report is returned. */
static json_t *run_download_task(fixture *fx, const char *task)
{
    wl_httpd *s;
    wl_httpd_opts o = {.delay_ms = 150, .image_bytes = 32 * 1024};
    fx_init(fx);
    ck_assert_int_eq(wl_httpd_start(&s, &o), 0);
    lines_of(fx->in, "{\"port\": %ld, \"id\": %ld}", wl_httpd_port(s), 16);
    json_t *r = run_task(fx, task, NULL, 0);
    ck_assert_int_eq((int)tu_num(r, "totals.ok"), 16);
    ck_assert_uint_eq(wl_httpd_requests(s), 16);
    ck_assert_int_gt(wl_httpd_max_in_flight(s), 4); /* the jobs overlapped */
    wl_httpd_stop(s);
    return r;
}

START_TEST(test_run_auto_blocking_read_task_uses_thread_pool)
{
    fixture fx;
    json_t *r = run_download_task(&fx, "sample_blocking_read");
    ck_assert_str_eq(tu_str(r, "executor.name"), "thread_pool");
    ck_assert_str_eq(tu_str(r, "pilot.classification.kind"), "io_bound");
    ck_assert(json_is_false(json_object_get(json_object_get(r, "executor"), "task_has_async")));
    ck_assert_msg(tu_num(r, "speedup.speedup") > 3, "speed-up %.2f", tu_num(r, "speedup.speedup"));
    json_decref(r);
}
END_TEST

START_TEST(test_run_auto_download_task_with_async_form_uses_coroutine_loop)
{
    fixture fx;
    json_t *r = run_download_task(&fx, "sample_download");
    ck_assert_str_eq(tu_str(r, "executor.name"), "coroutine");
    ck_assert(json_is_true(json_object_get(json_object_get(r, "executor"), "task_has_async")));
    json_decref(r);
}
END_TEST

START_TEST(test_run_auto_primes_task_uses_process_pool_one_per_core)
{
    fixture fx;
    fx_init(&fx);
    lines_of(fx.in, "{\"n\": %ld, \"i\": %ld}", 400000, 6);
    json_t *r = run_task(&fx, "sample_primes", NULL, 0);
    ck_assert_str_eq(tu_str(r, "executor.name"), "process_pool");
    ck_assert_str_eq(tu_str(r, "pilot.classification.kind"), "cpu_bound");
    long want = cores() < 3 ? cores() : 3; /* bounded by the 3 jobs left */
    ck_assert_int_eq((int)tu_num(r, "executor.workers"), (int)want);
    ck_assert_int_eq((int)tu_num(r, "totals.ok"), 6);
    json_decref(r);
}
END_TEST

/* ---- commands -------------------------------------------------------------- */

START_TEST(test_run_commands_40_sleeps_run_many_at_once)
{
    fixture fx;
    fx_init(&fx);
    lines_of(fx.in, "sleep 0.%ld # %ld", 5, 40);
    char *argv[] = {(char *)tu_env("WLPROF"), "run", "--commands", fx.in, "--json", fx.json,
                    NULL};
    double t0 = tu_now();
    int st = run_to(argv, fx.out, fx.err, 60);
    double wall = tu_now() - t0;
    ck_assert_msg(st == 0, "exit %d: %s", st, slurp(fx.err));
    /* one at a time would take 20 s; how close to 0.5 s a loaded machine
     * gets is not the point (workers and speed-up below are) */
    ck_assert_msg(wall < 10.0, "40 x sleep 0.5 took %.2f s", wall);
    json_t *r = tu_load_json(fx.json);
    ck_assert_int_ge((int)tu_num(r, "executor.workers"), 20);
    ck_assert_int_eq((int)tu_num(r, "totals.ok"), 40);
    ck_assert_msg(tu_num(r, "speedup.speedup") > 8, "speed-up %.2f", tu_num(r, "speedup.speedup"));
    json_decref(r);
}
END_TEST

START_TEST(test_run_commands_sha256sum_runs_at_about_one_per_core)
{
    fixture fx;
    char path[4300];
    char list[8192] = "";
    static char block[1 << 20];
    fx_init(&fx);
    for (size_t i = 0; i < sizeof(block); i++)
        block[i] = (char)(i * 7 + i / 1000);
    for (int f = 0; f < 4; f++) {
        snprintf(path, sizeof(path), "%s/big%d", fx.dir, f);
        FILE *fp = fopen(path, "w");
        ck_assert_ptr_nonnull(fp);
        for (int k = 0; k < 48; k++) {
            block[0] = (char)(f + k);
            fwrite(block, 1, sizeof(block), fp);
        }
        fclose(fp);
        size_t len = strlen(list);
        snprintf(list + len, sizeof(list) - len, "sha256sum %s\n", path);
    }
    tu_write_file(fx.in, list);
    char *argv[] = {(char *)tu_env("WLPROF"), "run", "--commands", fx.in, "--json", fx.json,
                    NULL};
    int st = run_to(argv, fx.out, fx.err, 120);
    ck_assert_msg(st == 0, "exit %d: %s", st, slurp(fx.err));
    json_t *r = tu_load_json(fx.json);
    ck_assert_str_eq(tu_str(r, "pilot.classification.kind"), "cpu_bound");
    ck_assert_int_eq((int)tu_num(r, "executor.workers"), (int)(cores() < 3 ? cores() : 3));
    json_decref(r);
    /* Every file's digest, each on its own prefixed line. */
    const char *out = slurp(fx.out);
    for (int f = 0; f < 4; f++) {
        char want[64];
        snprintf(want, sizeof(want), "[%d] ", f + 1);
        ck_assert_msg(strstr(out, want), "no output for job %d: %s", f + 1, out);
    }
}
END_TEST

START_TEST(test_run_commands_output_is_prefixed_and_never_interleaved)
{
    fixture fx;
    fx_init(&fx);
    /* Each job writes 300 lines in small pieces (one printf per field). */
    FILE *f = fopen(fx.in, "w");
    for (int j = 1; j <= 6; j++)
        fprintf(f,
                "i=0; while [ $i -lt 300 ]; do printf 'job%d'; printf -- '-line'; echo $i; "
                "i=$((i+1)); done\n",
                j);
    fclose(f);
    char *argv[] = {(char *)tu_env("WLPROF"), "run", "--commands", fx.in, "--workers", "6",
                    "--quiet", NULL};
    ck_assert_int_eq(run_to(argv, fx.out, fx.err, 60), 0);
    FILE *o = fopen(fx.out, "r");
    char line[256];
    int count = 0;
    while (fgets(line, sizeof(line), o)) {
        int n = 0;
        int job = 0;
        int k = 0;
        ck_assert_msg(sscanf(line, "[%d] job%d-line%d\n", &n, &job, &k) == 3 && n == job,
                      "mixed or unprefixed line: %s", line);
        count++;
    }
    fclose(o);
    ck_assert_int_eq(count, 6 * 300);
}
END_TEST

START_TEST(test_run_commands_output_dir_keeps_per_job_files)
{
    fixture fx;
    char outdir[4300];
    char path[4400];
    fx_init(&fx);
    snprintf(outdir, sizeof(outdir), "%s/jobs", fx.dir);
    tu_write_file(fx.in, "echo one\necho two >&2\n");
    char *argv[] = {(char *)tu_env("WLPROF"), "run", "--commands", fx.in, "--output-dir",
                    outdir, "--quiet", NULL};
    ck_assert_int_eq(run_to(argv, fx.out, fx.err, 30), 0);
    snprintf(path, sizeof(path), "%s/1.out", outdir);
    ck_assert_str_eq(slurp(path), "one\n");
    snprintf(path, sizeof(path), "%s/2.err", outdir);
    ck_assert_str_eq(slurp(path), "two\n");
    ck_assert_str_eq(slurp(fx.out), "");
}
END_TEST

START_TEST(test_run_missing_command_fails_127_others_go_on)
{
    fixture fx;
    fx_init(&fx);
    tu_write_file(fx.in, "true\nno-such-command-wlprof-xyz\necho fine\ntrue\n");
    char *argv[] = {(char *)tu_env("WLPROF"), "run", "--commands", fx.in, "--json", fx.json,
                    NULL};
    ck_assert_int_eq(run_to(argv, fx.out, fx.err, 30), 1);
    json_t *r = tu_load_json(fx.json);
    ck_assert_int_eq((int)tu_num(r, "totals.ok"), 3);
    ck_assert_int_eq((int)tu_num(r, "totals.failed"), 1);
    json_t *job = json_array_get(json_object_get(r, "jobs"), 1);
    ck_assert_int_eq((int)json_integer_value(json_object_get(job, "exit_status")), 127);
    ck_assert_str_eq(json_string_value(json_object_get(job, "status")), "failed");
    json_decref(r);
    ck_assert(strstr(slurp(fx.err), "line 2: exit status 127"));
    ck_assert(strstr(slurp(fx.out), "[3] fine"));
}
END_TEST

START_TEST(test_run_fail_fast_cancels_the_rest)
{
    fixture fx;
    fx_init(&fx);
    tu_write_file(fx.in, "sleep 0.2; exit 3\nsleep 20\nsleep 20\nsleep 20\nsleep 20\n");
    char *argv[] = {(char *)tu_env("WLPROF"), "run", "--commands", fx.in, "--workers", "2",
                    "--fail-fast", "--json", fx.json, "--quiet", NULL};
    double t0 = tu_now();
    ck_assert_int_eq(run_to(argv, fx.out, fx.err, 30), 1);
    ck_assert_msg(tu_now() - t0 < 10, "fail-fast did not stop the sleeps");
    json_t *r = tu_load_json(fx.json);
    ck_assert_int_eq((int)tu_num(r, "totals.failed"), 1);
    ck_assert_int_eq((int)tu_num(r, "totals.cancelled"), 1);
    ck_assert_int_eq((int)tu_num(r, "totals.not_run"), 3);
    json_decref(r);
}
END_TEST

/* ---- the download sample ------------------------------------------------- */

static int sample_in_flight(const char *version, fixture *fx)
{
    char *argv[] = {(char *)tu_path("samples/download_images"), "--only", (char *)version,
                    "--images", "12", "--delay", "100", NULL};
    ck_assert_int_eq(run_to(argv, fx->out, fx->err, 60), 0);
    const char *out = slurp(fx->out);
    double wall;
    int inflight;
    char name[32];
    for (const char *p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (sscanf(p, "%31s %lf s %d", name, &wall, &inflight) == 3 && strcmp(name, version) == 0)
            return inflight;
    ck_abort_msg("no row for %s in: %s", version, out);
    return -1;
}

START_TEST(test_download_sample_limited_never_exceeds_4_in_flight)
{
    fixture fx;
    fx_init(&fx);
    int limited = sample_in_flight("limited", &fx);
    ck_assert_msg(limited >= 2 && limited <= 4, "limited version had %d in flight", limited);
    /* The count is real: without the semaphore all 12 overlap. */
    int unlimited = sample_in_flight("streaming", &fx);
    ck_assert_msg(unlimited > 4, "streaming version had only %d in flight", unlimited);
}
END_TEST

/* ---- samples ---------------------------------------------------------------- */

START_TEST(test_samples_lists_and_runs_builtin_samples)
{
    fixture fx;
    fx_init(&fx);
    char *list[] = {(char *)tu_env("WLPROF"), "samples", NULL};
    ck_assert_int_eq(run_to(list, fx.out, fx.err, 10), 0);
    const char *out = slurp(fx.out);
    ck_assert(strstr(out, "sleep") && strstr(out, "download") && strstr(out, "blocking_read") &&
              strstr(out, "primes"));
    char *argv[] = {(char *)tu_env("WLPROF"), "run", "--sample", "download", "--jobs", "8",
                    "--json", fx.json, "--quiet", NULL};
    ck_assert_int_eq(run_to(argv, fx.out, fx.err, 60), 0);
    json_t *r = tu_load_json(fx.json);
    ck_assert_str_eq(tu_str(r, "executor.name"), "coroutine");
    ck_assert_int_eq((int)tu_num(r, "totals.ok"), 8);
    json_decref(r);
}
END_TEST

/* ---- bad input ---------------------------------------------------------- */

static void expect_error(char *const argv[], int want, const char *needle)
{
    fixture fx;
    fx_init(&fx);
    int st = run_to(argv, fx.out, fx.err, 30);
    const char *err = slurp(fx.err);
    ck_assert_msg(st == want, "exit %d (want %d): %s", st, want, err);
    ck_assert_msg(strstr(err, needle), "stderr lacks '%s': %s", needle, err);
    ck_assert_msg(strchr(err, '\n') == err + strlen(err) - 1, "not one line: %s", err);
}

START_TEST(test_run_bad_input_is_one_clear_line)
{
    fixture fx;
    fx_init(&fx);
    char *w = (char *)tu_env("WLPROF");
    lines_of(fx.in, "{\"ms\": %ld, \"i\": %ld}", 1, 3);

    char *nolib[] = {w, "run", "--lib", "/nonexistent/libx.so", "--task", "t", "--inputs", fx.in,
                     NULL};
    expect_error(nolib, 1, "cannot load /nonexistent/libx.so");
    char *nosym[] = {w, "run", "--lib", (char *)lib(), "--task", "no_such_task", "--inputs",
                     fx.in, NULL};
    expect_error(nosym, 1, "has no task 'no_such_task'");
    char *noin[] = {w, "run", "--lib", (char *)lib(), "--task", "sample_sleep", "--inputs",
                    "/nonexistent/in.jsonl", NULL};
    expect_error(noin, 1, "cannot read /nonexistent/in.jsonl");
    char *zero[] = {w, "run", "--sample", "sleep", "--workers", "0", NULL};
    expect_error(zero, 2, "--workers must be a whole number of at least 1, not '0'");
    char *neg[] = {w, "run", "--sample", "sleep", "--workers", "-3", NULL};
    expect_error(neg, 2, "--workers");
    char *nosample[] = {w, "run", "--sample", "nope", NULL};
    expect_error(nosample, 2, "no sample named 'nope'");
    char *nomode[] = {w, "run", "--workers", "2", NULL};
    expect_error(nomode, 2, "give exactly one of");
    char *asyncless[] = {w, "run", "--lib", (char *)lib(), "--task", "sample_primes",
                         "--inputs", fx.in, "--executor", "coroutine", NULL};
    expect_error(asyncless, 1, "has no async form");

    char empty[4300];
    snprintf(empty, sizeof(empty), "%s/empty.jsonl", fx.dir);
    tu_write_file(empty, "\n\n");
    char *emptyv[] = {w, "run", "--lib", (char *)lib(), "--task", "sample_sleep", "--inputs",
                      empty, NULL};
    expect_error(emptyv, 1, "no inputs");
    char *emptyc[] = {w, "run", "--commands", empty, NULL};
    expect_error(emptyc, 1, "no commands");
}
END_TEST

START_TEST(test_run_malformed_jsonl_line_stops_or_is_skipped)
{
    fixture fx;
    fx_init(&fx);
    tu_write_file(fx.in, "{\"ms\": 1}\n{\"ms\": 2}\n{\"ms\": oops\n{\"ms\": 3}\n");
    char *w = (char *)tu_env("WLPROF");
    char *stop[] = {w, "run", "--lib", (char *)lib(), "--task", "sample_sleep", "--inputs",
                    fx.in, NULL};
    char where[4400];
    snprintf(where, sizeof(where), "%s:3: malformed JSON", fx.in);
    expect_error(stop, 1, where);

    json_t *r = run_task(&fx, "sample_sleep", "--skip-bad", 0);
    ck_assert_int_eq((int)tu_num(r, "totals.jobs"), 3);
    json_t *last = json_array_get(json_object_get(r, "jobs"), 2);
    ck_assert_int_eq((int)json_integer_value(json_object_get(last, "line")), 4);
    json_decref(r);
}
END_TEST

START_TEST(test_run_failing_task_jobs_are_listed_and_exit_nonzero)
{
    fixture fx;
    fx_init(&fx);
    /* A string is valid JSON but not what sample_sleep takes. */
    tu_write_file(fx.in, "{\"ms\": 10}\n\"not an object\"\n{\"ms\": 10}\n{\"ms\": 10}\n");
    json_t *r = run_task(&fx, "sample_sleep", "--pilot=1", 1);
    ck_assert_int_eq((int)tu_num(r, "totals.failed"), 1);
    ck_assert_int_eq((int)tu_num(r, "totals.ok"), 3);
    json_t *bad = json_array_get(json_object_get(r, "jobs"), 1);
    ck_assert_str_eq(json_string_value(json_object_get(bad, "status")), "failed");
    ck_assert(strstr(json_string_value(json_object_get(bad, "error")), "input must be an object"));
    json_decref(r);
}
END_TEST

/* ---- report ---------------------------------------------------------------- */

START_TEST(test_run_report_has_documented_keys)
{
    fixture fx;
    fx_init(&fx);
    lines_of(fx.in, "{\"ms\": %ld, \"i\": %ld}", 20, 6);
    json_t *r = run_task(&fx, "sample_sleep", NULL, 0);
    ck_assert_str_eq(tu_str(r, "schema"), "wlprof.run/2");
    ck_assert_str_eq(tu_str(r, "mode"), "tasks");
    ck_assert_str_eq(tu_str(r, "pilot.profile.schema"), WL_REPORT_SCHEMA);
    tu_str(r, "pilot.classification.kind");
    tu_str(r, "pilot.recommendation.executor");
    tu_num(r, "pilot.wall_s");
    tu_num(r, "pilot.rate_per_s");
    tu_str(r, "executor.reason");
    tu_num(r, "executor.workers");
    tu_num(r, "totals.wall_s");
    tu_num(r, "totals.main_wall_s");
    tu_num(r, "speedup.sequential_estimate_s");
    tu_num(r, "speedup.actual_s");
    json_t *jobs = json_object_get(r, "jobs");
    ck_assert_int_eq((int)json_array_size(jobs), 6);
    for (size_t i = 0; i < 6; i++) {
        json_t *j = json_array_get(jobs, i);
        ck_assert(json_is_number(json_object_get(j, "wall_s")));
        ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "ok");
        ck_assert_str_eq(json_string_value(json_object_get(j, "phase")), i < 3 ? "pilot" : "main");
        ck_assert_int_eq((int)json_integer_value(json_object_get(j, "line")), (int)i + 1);
        ck_assert(json_object_get(j, "wall_s") && json_real_value(json_object_get(j, "wall_s")) >= 0.015);
    }
    json_decref(r);
}
END_TEST

static Suite *run_suite(void)
{
    Suite *s = suite_create("run");
    TCase *a = tcase_create("auto");
    tcase_set_timeout(a, 180);
    tcase_add_test(a, test_run_auto_sleep_task_uses_coroutine_loop);
    tcase_add_test(a, test_run_auto_blocking_read_task_uses_thread_pool);
    tcase_add_test(a, test_run_auto_download_task_with_async_form_uses_coroutine_loop);
    tcase_add_test(a, test_run_auto_primes_task_uses_process_pool_one_per_core);
    tcase_add_test(a, test_samples_lists_and_runs_builtin_samples);
    suite_add_tcase(s, a);
    TCase *c = tcase_create("commands");
    tcase_set_timeout(c, 180);
    tcase_add_test(c, test_run_commands_40_sleeps_run_many_at_once);
    tcase_add_test(c, test_run_commands_sha256sum_runs_at_about_one_per_core);
    tcase_add_test(c, test_run_commands_output_is_prefixed_and_never_interleaved);
    tcase_add_test(c, test_run_commands_output_dir_keeps_per_job_files);
    tcase_add_test(c, test_run_missing_command_fails_127_others_go_on);
    tcase_add_test(c, test_run_fail_fast_cancels_the_rest);
    suite_add_tcase(s, c);
    TCase *d = tcase_create("download_sample");
    tcase_set_timeout(d, 120);
    tcase_add_test(d, test_download_sample_limited_never_exceeds_4_in_flight);
    suite_add_tcase(s, d);
    TCase *e = tcase_create("errors_and_report");
    tcase_set_timeout(e, 120);
    tcase_add_test(e, test_run_bad_input_is_one_clear_line);
    tcase_add_test(e, test_run_malformed_jsonl_line_stops_or_is_skipped);
    tcase_add_test(e, test_run_failing_task_jobs_are_listed_and_exit_nonzero);
    tcase_add_test(e, test_run_report_has_documented_keys);
    suite_add_tcase(s, e);
    return s;
}

int main(void)
{
    return tu_run_suite(run_suite());
}
