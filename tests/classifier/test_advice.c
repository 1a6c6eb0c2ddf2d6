/*
 * test_advice.c -- advice a user can trust: the event-loop pitfall found
 * where it is and only there, predictions bounded by the program's own
 * structure, the GIL as CPU demand, idle helper threads left out.
 *
 * Pure cases: hand-made profiles and report sections through wl_classify.
 * Labelled corpus: C targets (tests/targets/advice_*.c), standard tools
 * (gzip, node) and Python scripts (tests/targets/py/, run with
 * /usr/bin/python3) under the real `wlprof profile --json`, then again
 * through `wlprof recommend` on the saved report. The pitfall-free cases
 * also run while two busy loops compete for the CPUs.
 *
 * Without /usr/bin/python3 the Python cases are left out and the suite
 * exits 77 (skipped) once the rest passed. Checks on Python function names
 * apply only when the report has Python frames (a frame whose file is a
 * .py); the classification itself is always checked.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fake_profile.h"
#include "testutil.h"
#include "wlprof/classify.h"
#include "wlprof/report.h"

#define PYTHON "/usr/bin/python3"

/* ---- hand-made profiles ---------------------------------------------------- */

static void fake_run(wl_profile *p, double wall, double cpu, double wait_s)
{
    memset(p, 0, sizeof(*p));
    p->wall_s = wall;
    p->user_s = cpu;
    p->hz = 100;
    p->ticks = (uint64_t)(wall * 100);
    p->sampled_s = wall;
    double run = fmin(1.0, cpu / wall);
    p->running_s = run * wall;
    p->waiting_s = wait_s;
    p->user_frac = run;
    p->wait_frac = 1 - run;
    p->cores_busy = cpu / wall;
    p->max_threads = 1;
}

/* fake_run with the whole wait in one call sc (of kind), counted for the
 * program and for its one thread (tid 1000, computing cpu). Returns the
 * thread. */
static wl_thread_stat *fake_run_one_wait(wl_profile *p, double wall, double cpu, wl_wait_kind kind,
                                         const char *sc, double wait_s)
{
    fake_run(p, wall, cpu, wait_s);
    fake_wait(p, kind, "", sc, wait_s);
    wl_thread_stat *t = fake_thread(p, 1000, NULL, cpu);
    fake_thread_wait(t, kind, sc, wait_s);
    return t;
}

/* wl_classify on 2 cores, every other option the default; must succeed.
 * The caller frees *v. */
static void classify_2_cores(wl_profile *p, wl_verdict *v)
{
    wl_classify_opts o = fake_opts_cores(2);
    ck_assert_int_eq(wl_classify(p, &o, v), 0);
}

/* The recommended executor has the best prediction for this program, or a
 * reason says why not. */
static void check_best_or_said(const wl_verdict *v)
{
    double best = 0;
    for (int e = 0; e < WL_EXEC_COUNT; e++)
        best = fmax(best, v->predicted[e].speedup);
    ck_assert_msg(v->predicted[v->executor].speedup * 1.05 >= best ||
                      reasons_have(v, "for this program alone"),
                  "%s predicts %.2fx, the best is %.2fx, and no reason says why",
                  wl_executor_name(v->executor), v->predicted[v->executor].speedup, best);
}

static void check_all_at_most(const wl_verdict *v, double bound)
{
    for (int e = 0; e < WL_EXEC_COUNT; e++)
        ck_assert_msg(v->predicted[e].speedup <= bound, "%s predicts %.2fx > %.2fx",
                      wl_executor_name((wl_executor)e), v->predicted[e].speedup, bound);
}

/* Copies src into dst[size], cut to fit (tu_slurp's buffer is reused by
 * the next call). */
static void copy_text(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

START_TEST(test_advice_two_sequential_sleeps_predict_at_most_their_longest)
{
    wl_profile p;
    wl_verdict v;
    wl_thread_stat *t = fake_run_one_wait(&p, 1.5, 0.002, WL_WAIT_SLEEP, "clock_nanosleep", 1.49);
    t->longest_wait_s = 1.0;
    snprintf(t->longest_wait_syscall, sizeof(t->longest_wait_syscall), "clock_nanosleep");
    classify_2_cores(&p, &v);
    check_all_at_most(&v, 1.5);
    /* ... while a batch of such jobs overlaps them freely. */
    ck_assert(v.batch[WL_EXEC_THREAD_POOL].speedup > 5);
    ck_assert(reasons_have(&v, "this program (one run)"));
    ck_assert(reasons_have(&v, "a batch of N such jobs"));
    ck_assert(reasons_have(&v, "longest single wait 1.00 s"));
    ck_assert(fabs(v.model.critical_path_s - (1.0 + 0.05 * 1.5)) < 0.01);
    check_best_or_said(&v);
    wl_verdict_free(&v);
    wl_profile_free(&p);
}
END_TEST

START_TEST(test_advice_single_stream_compute_gains_nothing_from_threads)
{
    /* gzip of one file: one thread computing 2 s without a wait. */
    wl_profile p;
    wl_verdict v;
    fake_run(&p, 2.0, 1.98, 0.0);
    wl_thread_stat *t = fake_thread(&p, 1000, NULL, 1.98);
    t->longest_cpu_run_s = 1.97;
    classify_2_cores(&p, &v);
    ck_assert_int_eq(v.executor, WL_EXEC_PROCESS_POOL);
    ck_assert(v.predicted[WL_EXEC_THREAD_POOL].speedup <= 1.3);
    check_all_at_most(&v, 1.05);
    /* A batch of files is what a process pool speeds up. */
    ck_assert(v.batch[WL_EXEC_PROCESS_POOL].speedup > 1.7);
    check_best_or_said(&v);
    wl_verdict_free(&v);
    wl_profile_free(&p);
}
END_TEST

START_TEST(test_advice_one_cpu_run_and_one_wait_predict_at_most_two)
{
    wl_profile p;
    wl_verdict v;
    wl_thread_stat *t = fake_run_one_wait(&p, 2.0, 1.0, WL_WAIT_SLEEP, "nanosleep", 1.0);
    t->longest_cpu_run_s = 1.0;
    t->longest_wait_s = 1.0;
    classify_2_cores(&p, &v);
    check_all_at_most(&v, 2.0);
    check_best_or_said(&v);
    wl_verdict_free(&v);
    wl_profile_free(&p);
}
END_TEST

/* Four CPython threads taking turns on the GIL. */
static void fake_gil_threads(wl_profile *p, bool gil_kind)
{
    fake_run(p, 2.0, 2.0, 0.02);
    fake_process(p, "python3");
    p->max_threads = 5;
    for (int i = 0; i < 4; i++) {
        wl_thread_stat *t = fake_thread(p, 1001 + i, NULL, 0.5);
        fake_thread_wait(t, gil_kind ? WL_WAIT_GIL : WL_WAIT_LOCK, "futex", 1.1);
        fake_thread_wait(t, WL_WAIT_OTHER, "", 0.4);
        t->longest_cpu_run_s = 0.005;
    }
}

START_TEST(test_advice_gil_threads_go_to_processes)
{
    wl_profile p;
    wl_verdict v;
    fake_gil_threads(&p, true);
    classify_2_cores(&p, &v);
    ck_assert_int_eq(v.kind, WL_KIND_CPU_BOUND);
    ck_assert_int_eq(v.executor, WL_EXEC_PROCESS_POOL);
    ck_assert_int_eq(v.gil_threads, 4);
    ck_assert(fabs(v.gil_wait_share - 1.1 / 1.5) < 0.01);
    ck_assert(reasons_have(&v, "4 threads, 1.00 cores busy, 73% of their wait is the GIL"));
    ck_assert(!reasons_have(&v, "C code without shared state"));
    ck_assert(v.predicted[WL_EXEC_THREAD_POOL].speedup <= 1.3);
    ck_assert(v.batch[WL_EXEC_THREAD_POOL].speedup <= 1.3);
    ck_assert(v.predicted[WL_EXEC_PROCESS_POOL].speedup > 1.5);
    check_best_or_said(&v);
    wl_verdict_free(&v);
    wl_profile_free(&p);
    /* Without the GIL kind (futex waits), a CPython target's threads still
     * never compute in parallel. */
    fake_gil_threads(&p, false);
    classify_2_cores(&p, &v);
    ck_assert(v.model.cpython);
    ck_assert(!reasons_have(&v, "C code without shared state"));
    ck_assert(v.predicted[WL_EXEC_THREAD_POOL].speedup <= 1.3);
    wl_verdict_free(&v);
    wl_profile_free(&p);
}
END_TEST

START_TEST(test_advice_gil_waiting_is_cpu_demand_not_waiting)
{
    /* Ticks where nothing ran but GIL waiters: demand, moved to computing. */
    wl_profile p;
    wl_verdict v;
    fake_run(&p, 2.0, 1.5, 0.5);
    fake_process(&p, "python3");
    fake_wait(&p, WL_WAIT_GIL, "", "futex", 0.5);
    classify_2_cores(&p, &v);
    ck_assert(v.wait_share < 0.01);
    ck_assert(v.user_share > 0.99);
    ck_assert_int_eq(v.kind, WL_KIND_CPU_BOUND);
    ck_assert_uint_eq(v.ncalls, 0);
    wl_verdict_free(&v);
    wl_profile_free(&p);
}
END_TEST

START_TEST(test_advice_pitfall_only_on_a_loop_thread_after_it_waited)
{
    wl_profile p;
    wl_verdict v;
    fake_run(&p, 1.5, 0.4, 1.0);
    fake_wait(&p, WL_WAIT_SLEEP, "", "clock_nanosleep", 0.6);
    fake_wait(&p, WL_WAIT_POLL, "", "epoll_wait", 0.4);
    /* A worker thread that sleeps long but never waited in a readiness call,
     * and a loop thread whose long stretches were all before its first
     * epoll_wait (start-up: the profiler reports none inside the loop). */
    wl_thread_stat *w = fake_thread(&p, 1001, NULL, 0.1);
    fake_thread_wait(w, WL_WAIT_SLEEP, "clock_nanosleep", 0.6);
    w->longest_block_s = 0.6;
    w->longest_burst_s = 0.3;
    wl_thread_stat *l = fake_thread(&p, 1000, NULL, 0.3);
    fake_thread_wait(l, WL_WAIT_POLL, "epoll_wait", 0.4);
    snprintf(l->loop_evidence, sizeof(l->loop_evidence), "readiness");
    l->loop_first_s = 0.3;
    l->longest_burst_s = 0.3; /* state-R ticks of start-up: never used */
    l->longest_cpu_run_s = 0.3;
    classify_2_cores(&p, &v);
    ck_assert(!v.pitfall.detected);
    wl_verdict_free(&v);
    /* The same loop thread blocking 0.2 s inside the loop: found, on it. */
    l->loop_block_s = 0.2;
    snprintf(l->loop_block_syscall, sizeof(l->loop_block_syscall), "clock_nanosleep");
    classify_2_cores(&p, &v);
    ck_assert(v.pitfall.detected);
    ck_assert_int_eq(v.pitfall.tid, 1000);
    ck_assert_str_eq(v.pitfall.call, "clock_nanosleep");
    ck_assert_str_eq(v.pitfall.evidence, "readiness");
    wl_verdict_free(&v);
    wl_profile_free(&p);
}
END_TEST

/* Stack sections as the agent writes them (frames root first). */
static json_t *fake_stacks(const char *json_text)
{
    json_error_t e;
    json_t *r = json_loads(json_text, 0, &e);
    ck_assert_msg(r != NULL, "%s", e.text);
    return r;
}

START_TEST(test_advice_pitfall_names_the_python_function_and_call)
{
    wl_profile p;
    wl_verdict v;
    wl_thread_stat *l = fake_run_one_wait(&p, 1.3, 0.05, WL_WAIT_SLEEP, "clock_nanosleep", 1.2);
    fake_process(&p, "python3");
    snprintf(l->loop_evidence, sizeof(l->loop_evidence), "epoll_fd");
    l->loop_first_s = 0.05;
    l->loop_block_s = 1.2;
    snprintf(l->loop_block_syscall, sizeof(l->loop_block_syscall), "clock_nanosleep");
    classify_2_cores(&p, &v);
    ck_assert(v.pitfall.detected);
    json_t *r = fake_stacks(
        "{\"functions\": [], \"stacks\": {\"top\": ["
        "{\"pid\": 1000, \"tid\": 1000, \"call\": \"clock_nanosleep\", \"waits\": 2,"
        " \"wait_s\": 1.2, \"user_s\": 0, \"sys_s\": 0, \"frames\": ["
        "  {\"func\": \"_start\", \"module\": \"python3.11\", \"file\": null, \"line\": 0},"
        "  {\"func\": \"main\", \"module\": \"ex5.py\", \"file\": \"ex5.py\", \"line\": 20},"
        "  {\"func\": \"fetch_data\", \"module\": \"ex5.py\", \"file\": \"ex5.py\", \"line\": 7},"
        "  {\"func\": \"_PyEval_EvalFrameDefault\", \"module\": \"python3.11\", \"file\": null,"
        "   \"line\": 0},"
        "  {\"func\": \"python3.11+0x5d64b3\", \"module\": \"python3.11\", \"file\": null,"
        "   \"line\": 0}]}]}}");
    ck_assert_int_eq(wl_verdict_add_functions(&v, r), 0);
    ck_assert_str_eq(v.pitfall.function, "fetch_data");
    ck_assert_str_eq(v.pitfall.call, "time.sleep");
    ck_assert_int_eq(v.pitfall.line, 7);
    ck_assert(reasons_have(&v, "fetch_data (ex5.py:7) calls time.sleep"));
    /* The stacks say one call site made both calls: independent, 0.6 s each. */
    ck_assert(fabs(v.model.longest_wait_s - 0.6) < 1e-9);
    ck_assert(v.model.from_stacks);
    ck_assert(strstr(v.model.independent, "one call site repeated"));
    json_t *c = wl_verdict_classification_json(&v);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(c, "pitfall"), "function")),
                     "fetch_data");
    json_decref(c);
    json_decref(r);
    wl_verdict_free(&v);
    wl_profile_free(&p);
}
END_TEST

START_TEST(test_advice_idle_pool_threads_are_not_advice)
{
    /* node -e 'setTimeout(()=>{},1000)': the loop in epoll, four libuv
     * workers parked in uv_cond_wait. */
    wl_profile p;
    wl_verdict v;
    wl_thread_stat *l = fake_run_one_wait(&p, 1.08, 0.07, WL_WAIT_POLL, "epoll_pwait", 1.0);
    fake_process(&p, "node");
    l->longest_wait_s = 1.0;
    snprintf(l->longest_wait_syscall, sizeof(l->longest_wait_syscall), "epoll_pwait");
    for (int i = 0; i < 4; i++) {
        wl_thread_stat *t = fake_thread(&p, 1001 + i, NULL, 0.0);
        fake_thread_wait(t, WL_WAIT_LOCK, "futex", 1.05);
        t->longest_block_s = 1.05;
    }
    classify_2_cores(&p, &v);
    ck_assert_int_eq(v.idle_threads, 4);
    ck_assert_uint_eq(v.ncalls, 0);
    json_t *r = fake_stacks(
        "{\"functions\": [], \"stacks\": {\"top\": ["
        "{\"pid\": 1000, \"tid\": 1001, \"call\": \"pthread_cond_wait\", \"waits\": 4,"
        " \"wait_s\": 4.08, \"frames\": ["
        "  {\"func\": \"start_thread\", \"module\": \"libc.so.6\", \"file\": null, \"line\": 0},"
        "  {\"func\": \"worker\", \"module\": \"node\", \"file\": null, \"line\": 0},"
        "  {\"func\": \"uv_cond_wait\", \"module\": \"node\", \"file\": null, \"line\": 0}]},"
        "{\"pid\": 1000, \"tid\": 1000, \"call\": \"epoll_wait\", \"waits\": 1,"
        " \"wait_s\": 1.0, \"frames\": ["
        "  {\"func\": \"uv_run\", \"module\": \"node\", \"file\": null, \"line\": 0},"
        "  {\"func\": \"uv__io_poll\", \"module\": \"node\", \"file\": null, \"line\": 0}]}]}}");
    ck_assert_int_eq(wl_verdict_add_functions(&v, r), 0);
    ck_assert_uint_eq(v.nwait_functions, 0);
    ck_assert(!reasons_have(&v, "uv_cond_wait"));
    /* One timer of 1 s: nothing to gain for this program. */
    check_all_at_most(&v, 1.1);
    json_decref(r);
    wl_verdict_free(&v);
    wl_profile_free(&p);
}
END_TEST

START_TEST(test_advice_runtime_frames_and_readiness_calls)
{
    ck_assert(wl_is_runtime_frame("_start", "node"));
    ck_assert(wl_is_runtime_frame("__libc_start_main", "libc.so.6"));
    ck_assert(wl_is_runtime_frame("start_thread", "libc.so.6"));
    ck_assert(wl_is_runtime_frame("__clone3", "libc.so.6"));
    ck_assert(wl_is_runtime_frame("_PyEval_EvalFrameDefault", "python3.11"));
    ck_assert(wl_is_runtime_frame("python3.11+0x5fe545", "python3.11"));
    ck_assert(!wl_is_runtime_frame("is_prime", "corpus_primes"));
    ck_assert(!wl_is_runtime_frame("main", "corpus_primes"));
    ck_assert(!wl_is_runtime_frame("fetch_data", "ex5.py"));
    ck_assert(wl_is_readiness_call("epoll_wait"));
    ck_assert(wl_is_readiness_call("pselect6"));
    ck_assert(wl_is_readiness_call("io_uring_enter"));
    ck_assert(!wl_is_readiness_call("read"));
    ck_assert(!wl_is_readiness_call("clock_nanosleep"));
    ck_assert_str_eq(wl_wait_kind_name(WL_WAIT_GIL), "gil");
    ck_assert_int_eq(wl_wait_kind_parse("gil"), WL_WAIT_GIL);
    ck_assert_int_eq(WL_WAIT_GIL, WL_WAIT_LOCK + 1);
#if defined(__x86_64__)
    ck_assert_str_eq(wl_syscall_name(87), "unlink");
    ck_assert_str_eq(wl_syscall_name(230), "clock_nanosleep");
    ck_assert_str_eq(wl_syscall_name(435), "clone3");
#elif defined(__aarch64__)
    ck_assert_str_eq(wl_syscall_name(115), "clock_nanosleep");
#endif
    ck_assert_ptr_null(wl_syscall_name(-1));
    ck_assert_ptr_null(wl_syscall_name(100000));
}
END_TEST

/* ---- the labelled corpus, end to end ----------------------------------------- */

/* Two processes spinning on the CPUs, as on a loaded machine. */
typedef struct load {
    pid_t pids[2];
} load;

static void load_start(load *l)
{
    for (int i = 0; i < 2; i++) {
        l->pids[i] = fork();
        ck_assert_int_ge(l->pids[i], 0);
        if (l->pids[i] == 0) {
            volatile unsigned long x = 0;
            for (;;)
                x++;
        }
    }
}

static void load_stop(load *l)
{
    for (int i = 0; i < 2; i++) {
        kill(l->pids[i], SIGKILL);
        waitpid(l->pids[i], NULL, 0);
    }
}

/* Profiles argv (with one profile option, or NULL) into DIR/NAME.json and
 * re-classifies it with `wlprof recommend`; both must agree. Returns the
 * profile's report. */
static json_t *profile_with_and_recommend(char *const target[], const char *dir, const char *name,
                                          const char *option)
{
    char report[4200], again[4200];
    char *argv[24];
    snprintf(report, sizeof(report), "%s/%s.json", dir, name);
    snprintf(again, sizeof(again), "%s/%s.again.json", dir, name);
    tu_profile_argv(argv, 24, report, option, (const char *const *)target);
    ck_assert_int_eq(tu_run(argv, 180), 0);
    json_t *r = tu_load_json(report);
    char *rec[] = {(char *)tu_env("WLPROF"), "recommend", "-q", "-o", again, report, NULL};
    ck_assert_int_eq(tu_run(rec, 60), 0);
    json_t *r2 = tu_load_json(again);
    ck_assert_str_eq(tu_str(r2, "classification.kind"), tu_str(r, "classification.kind"));
    ck_assert_str_eq(tu_str(r2, "recommendation.executor"), tu_str(r, "recommendation.executor"));
    ck_assert_int_eq(json_is_true(tu_get(r2, "classification.pitfall.detected")),
                     json_is_true(tu_get(r, "classification.pitfall.detected")));
    ck_assert(fabs(tu_num(r2, "recommendation.speedup") - tu_num(r, "recommendation.speedup")) <
              1e-3);
    json_decref(r2);
    return r;
}

static json_t *profile_and_recommend(char *const target[], const char *dir, const char *name)
{
    return profile_with_and_recommend(target, dir, name, NULL);
}

static bool pitfall_of(const json_t *r)
{
    return json_is_true(tu_get(r, "classification.pitfall.detected"));
}

/* Every executor's prediction for this program in the report. */
static void check_report_all_at_most(const json_t *r, double bound)
{
    static const char *const execs[] = {"coroutine", "thread_pool", "process_pool", "split"};
    for (int e = 0; e < 4; e++) {
        char key[96];
        snprintf(key, sizeof(key), "recommendation.predicted.%s.speedup", execs[e]);
        ck_assert_msg(tu_num(r, key) <= bound, "%s: %.2fx > %.2fx", execs[e], tu_num(r, key),
                      bound);
    }
}

static bool has_python_frames(const json_t *r)
{
    const json_t *top = json_object_get(json_object_get(r, "stacks"), "top");
    size_t i, k;
    const json_t *s, *fr;
    json_array_foreach(top, i, s) {
        json_array_foreach(json_object_get(s, "frames"), k, fr) {
            const char *file = json_string_value(json_object_get(fr, "file"));
            size_t n = file ? strlen(file) : 0;
            if (n > 3 && strcmp(file + n - 3, ".py") == 0)
                return true;
        }
    }
    return false;
}

static bool reasons_json_have(const json_t *r, const char *needle)
{
    const json_t *reasons = tu_get(r, "classification.reasons");
    for (size_t i = 0; i < json_array_size(reasons); i++)
        if (strstr(json_string_value(json_array_get(reasons, i)), needle))
            return true;
    return false;
}

static const char *script(const char *name)
{
    static char buf[4][4200];
    static int next;
    char *b = buf[next++ % 4];
    snprintf(b, 4200, "%s/tests/targets/py/%s", tu_env("WL_SOURCE_DIR"), name);
    return b;
}

/* Two sleeps one after the other (the C and the Python program): waiting,
 * no executor predicted above 2x for one run, no pitfall. */
static void check_two_sleeps(char *const target[], const char *name)
{
    json_t *r = profile_and_recommend(target, tu_tmpdir(), name);
    ck_assert_str_eq(tu_str(r, "classification.kind"), "io_bound");
    check_report_all_at_most(r, 2.0);
    ck_assert(!pitfall_of(r));
    json_decref(r);
}

START_TEST(test_advice_c_two_sleeps)
{
    char *target[] = {(char *)tu_path("tests/targets/advice_two_sleeps"), NULL};
    check_two_sleeps(target, "two_sleeps");
}
END_TEST

START_TEST(test_advice_c_cpu_then_wait)
{
    const char *dir = tu_tmpdir();
    char *target[] = {(char *)tu_path("tests/targets/advice_cpu_then_wait"), NULL};
    json_t *r = profile_and_recommend(target, dir, "cpu_then_wait");
    check_report_all_at_most(r, 2.0);
    ck_assert(tu_num(r, "recommendation.model.longest_cpu_s") > 0.8);
    json_decref(r);
}
END_TEST

START_TEST(test_advice_gzip_single_stream)
{
    const char *dir = tu_tmpdir();
    const char *input = tu_file("input.bin");
    FILE *f = fopen(input, "w");
    ck_assert_ptr_nonnull(f);
    /* Compressible but not trivial: a few seconds of deflate at -9. */
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 24 * 1024 * 1024; i++)
        fputc("abcdefgh"[tu_xorshift64(&x) % 8] + (i % 61 == 0), f);
    fclose(f);
    char *target[] = {"gzip", "-9", "-c", (char *)input, NULL};
    json_t *r = profile_and_recommend(target, dir, "gzip");
    ck_assert_str_eq(tu_str(r, "classification.kind"), "cpu_bound");
    ck_assert_msg(tu_num(r, "recommendation.predicted.thread_pool.speedup") <= 1.3,
                  "thread pool predicted %.2fx",
                  tu_num(r, "recommendation.predicted.thread_pool.speedup"));
    json_decref(r);
}
END_TEST

START_TEST(test_advice_node_idle_workers_are_not_advice)
{
    if (access("/usr/bin/node", X_OK) != 0)
        return; /* listed as a skip in the suite summary (see main) */
    const char *dir = tu_tmpdir();
    char *target[] = {"/usr/bin/node", "-e", "setTimeout(()=>{},1000)", NULL};
    json_t *r = profile_and_recommend(target, dir, "node");
    ck_assert(!pitfall_of(r));
    ck_assert(!reasons_json_have(r, "uv_cond_wait"));
    const json_t *calls = tu_get(r, "recommendation.calls_to_move");
    for (size_t i = 0; i < json_array_size(calls); i++)
        ck_assert_str_ne(tu_str(json_array_get(calls, i), "kind"), "lock");
    ck_assert(tu_num(r, "classification.idle_threads") >= 1);
    check_report_all_at_most(r, 1.5);
    json_decref(r);
}
END_TEST

/* The node case made certain: an idle loop that starts four parked
 * workers, sampled at 10 Hz so the workers are first seen blocked for a
 * whole tick (>= 50 ms, as a starved sampler sees them on a loaded
 * machine) right after a tick that saw only the loop thread. No thread is
 * a loop that never waited, and there is no pitfall. */
START_TEST(test_advice_loop_starting_its_pool_is_not_a_silent_loop)
{
    const char *dir = tu_tmpdir();
    char *target[] = {(char *)tu_path("tests/targets/advice_loop_starts_pool"), "0.5", "4", "1",
                      NULL};
    json_t *r = profile_with_and_recommend(target, dir, "loop_starts_pool", "-F10");
    const json_t *threads = json_object_get(r, "threads");
    ck_assert_int_ge(json_array_size(threads), 5);
    for (size_t i = 0; i < json_array_size(threads); i++) {
        const json_t *t = json_array_get(threads, i);
        const char *ev = json_string_value(json_object_get(t, "loop_evidence"));
        ck_assert_msg(!ev || strcmp(ev, "epoll_fd") != 0,
                      "thread %lld taken for a loop that never waited (blocked %.2f s in %s)",
                      (long long)json_integer_value(json_object_get(t, "tid")),
                      json_number_value(json_object_get(t, "loop_block_s")),
                      json_string_value(json_object_get(t, "loop_block_syscall")));
    }
    ck_assert(!pitfall_of(r));
    json_decref(r);
}
END_TEST

/* Python: the tutorial's examples. */
START_TEST(test_advice_python_example5_is_the_pitfall)
{
    const char *dir = tu_tmpdir();
    char *target[] = {PYTHON, (char *)script("ex5_blocking_sleep.py"), NULL};
    load l;
    if (_i == 1)
        load_start(&l); /* also while two busy loops compete for the CPUs */
    json_t *r = profile_and_recommend(target, dir, "ex5");
    if (_i == 1)
        load_stop(&l);
    ck_assert_msg(pitfall_of(r), "Example 5 (time.sleep in create_task'd coroutines) not flagged");
    ck_assert(json_is_true(tu_get(r, "classification.pitfall.blocks")));
    ck_assert(tu_num(r, "classification.pitfall.longest_block_s") >= 0.3);
    if (has_python_frames(r)) {
        ck_assert_str_eq(tu_str(r, "classification.pitfall.function"), "fetch_data");
        ck_assert_str_eq(tu_str(r, "classification.pitfall.call"), "time.sleep");
    }
    json_decref(r);
}
END_TEST

static void check_python_not_flagged(const char *file, const char *name, const char *arg,
                                     bool loaded)
{
    const char *dir = tu_tmpdir();
    char *target[] = {PYTHON, (char *)script(file), (char *)arg, NULL};
    load l;
    if (loaded)
        load_start(&l);
    json_t *r = profile_and_recommend(target, dir, name);
    if (loaded)
        load_stop(&l);
    ck_assert_msg(!pitfall_of(r), "%s%s flagged as the pitfall: %s", file,
                  loaded ? " (loaded)" : "",
                  json_string_value(json_array_get(tu_get(r, "classification.reasons"),
                                                   json_array_size(tu_get(
                                                       r, "classification.reasons")) - 1)));
    ck_assert_str_eq(tu_str(r, "classification.kind"), "io_bound");
    json_decref(r);
}

START_TEST(test_advice_python_examples_2_and_3_are_not_flagged)
{
    bool loaded = _i == 1;
    check_python_not_flagged("ex2_await_at_once.py", "ex2", NULL, loaded);
    check_python_not_flagged("ex3_create_task.py", "ex3", NULL, loaded);
}
END_TEST

/* The local server, in its own process outside the profiled tree. */
typedef struct server {
    pid_t pid;
    int in_fd; /* its stdin: closing it stops it */
    char port[16];
} server;

static void server_start(server *s)
{
    int in[2], out[2];
    ck_assert_int_eq(pipe(in), 0);
    ck_assert_int_eq(pipe(out), 0);
    s->pid = fork();
    ck_assert_int_ge(s->pid, 0);
    if (s->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        execl(PYTHON, PYTHON, script("slow_http_server.py"), "0.2", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    s->in_fd = in[1];
    size_t len = 0;
    while (len + 1 < sizeof(s->port) && !memchr(s->port, '\n', len)) {
        ssize_t n = read(out[0], s->port + len, sizeof(s->port) - 1 - len);
        ck_assert_int_gt(n, 0);
        len += (size_t)n;
        s->port[len] = '\0';
    }
    close(out[0]);
    s->port[strcspn(s->port, "\n")] = '\0';
}

static void server_stop(server *s)
{
    close(s->in_fd);
    ck_assert_int_eq(tu_wait(s->pid, 30), 0);
}

START_TEST(test_advice_python_open_connection_downloader_is_not_flagged)
{
    bool loaded = _i == 1;
    server s;
    server_start(&s);
    check_python_not_flagged("open_connection_client.py", "downloader", s.port, loaded);
    server_stop(&s);
}
END_TEST

START_TEST(test_advice_python_two_sleeps)
{
    char *target[] = {PYTHON, (char *)script("two_sleeps.py"), NULL};
    check_two_sleeps(target, "py_two_sleeps");
}
END_TEST

START_TEST(test_advice_python_gil_threads)
{
    const char *dir = tu_tmpdir();
    char *target[] = {PYTHON, (char *)script("gil_threads.py"), NULL};
    json_t *r = profile_and_recommend(target, dir, "gil");
    /* The computing goes to processes, whatever the futex waits look like
     * to a profiler that cannot tell the GIL apart ... */
    const char *exec = tu_str(r, "recommendation.executor");
    ck_assert_msg(strcmp(exec, "process_pool") == 0 || strcmp(exec, "split") == 0,
                  "GIL-bound threads sent to %s", exec);
    ck_assert(json_is_true(tu_get(r, "classification.cpython")));
    ck_assert(!reasons_json_have(r, "C code without shared state"));
    ck_assert_msg(tu_num(r, "recommendation.predicted.thread_pool.speedup") <= 1.3 &&
                      tu_num(r, "recommendation.batch.thread_pool.speedup") <= 1.3,
                  "thread pool predicted %.2fx / %.2fx",
                  tu_num(r, "recommendation.predicted.thread_pool.speedup"),
                  tu_num(r, "recommendation.batch.thread_pool.speedup"));
    /* Once the profiler tells GIL waits apart, they are CPU demand. */
    /* ... and once it does, they are CPU demand: processes, not waiting. */
    if (tu_num(r, "classification.gil.threads") > 0) {
        ck_assert_str_eq(exec, "process_pool");
        ck_assert(tu_num(r, "classification.gil.wait_share") >= 0.5);
        /* What is left is "other" waiting: interpreter start, thread start
         * and join hand-offs, which grow with the machine's load (0.6 %
         * quiet, 5.5-5.8 % seen twice beside the other suites, more under
         * ASan), so 10 % in every build. */
        const double most_waiting = 0.10;
        ck_assert_msg(tu_num(r, "classification.shares.waiting") <= most_waiting,
                      "waiting %.3f of GIL-bound threads",
                      tu_num(r, "classification.shares.waiting"));
    }
    json_decref(r);
}
END_TEST

START_TEST(test_advice_text_output_fits_and_leads_with_the_verdict)
{
    tu_tmpdir();
    const char *out = tu_file("out"), *err = tu_file("err"), *report = tu_file("r.json");
    char *argv[] = {(char *)tu_env("WLPROF"), "profile", "-o", (char *)report, "--",
                    (char *)tu_path("tests/targets/advice_output"), NULL};
    ck_assert_int_eq(tu_run_to(argv, out, err, 120), 0);
    char *text = tu_slurp(err);
    /* Every line fits 80 columns (not a terminal: no wider width). */
    for (char *line = text; *line;) {
        size_t n = strcspn(line, "\n");
        ck_assert_msg(n <= 80, "line of %zu columns: %.*s", n, (int)n, line);
        line += n + (line[n] == '\n');
    }
    /* The recommendation before the measurements behind it. */
    char *rec = strstr(text, "  recommendation:");
    char *waits = strstr(text, "  waiting on");
    ck_assert_ptr_nonnull(rec);
    ck_assert_ptr_nonnull(waits);
    ck_assert(rec < waits);
    /* The syscall by name from the full table, never syscall_N. */
    ck_assert_ptr_null(strstr(text, "syscall_"));
    ck_assert_ptr_nonnull(strstr(text, "mq_timedreceive"));
    json_t *r = tu_load_json(report);
    ck_assert_str_eq(tu_str(json_array_get(tu_get(r, "waits.reasons"), 0), "syscall"),
                     "mq_timedreceive");
    /* With the stack agent: the C++ name demangled, first in the table by
     * self time, runtime frames not listed. */
    bool stacks = json_array_size(json_object_get(r, "functions")) > 0;
    if (stacks) {
        char *table = strstr(text, "  functions by self time");
        ck_assert_ptr_nonnull(table);
        char *hot = strstr(table, "wlprof_test::hot_loop(int)");
        ck_assert_msg(hot != NULL, "demangled name missing:\n%s", table);
        char *first_row = strchr(strchr(table, '\n') + 1, '\n') + 1;
        ck_assert(hot < strchr(first_row, '\n'));
        char *end = strstr(table, "runtime frames such as"); /* the rows end there */
        ck_assert_ptr_nonnull(end);
        for (const char *rt = table; (rt = strstr(rt, " _start")) && rt < end; rt++)
            ck_abort_msg("_start listed in the functions table");
    }
    json_decref(r);

    /* --sort total is the inclusive order; anything else is a usage error. */
    char *total[] = {(char *)tu_env("WLPROF"), "profile", "--sort", "total", "--",
                     (char *)tu_path("tests/targets/advice_output"), NULL};
    ck_assert_int_eq(tu_run_to(total, out, err, 120), 0);
    if (stacks)
        ck_assert_ptr_nonnull(strstr(tu_slurp(err), "  functions by total time"));
    char *bad[] = {(char *)tu_env("WLPROF"), "profile", "--sort", "size", "--", "true", NULL};
    ck_assert_int_eq(tu_run_to(bad, out, err, 120), 2);
    ck_assert_ptr_nonnull(strstr(tu_slurp(err), "--sort"));

    /* `wlprof help profile` is `wlprof profile --help`. */
    char *help1[] = {(char *)tu_env("WLPROF"), "help", "profile", NULL};
    char *help2[] = {(char *)tu_env("WLPROF"), "profile", "--help", NULL};
    ck_assert_int_eq(tu_run_to(help1, out, err, 120), 0);
    static char first[65536];
    copy_text(first, sizeof(first), tu_slurp(out));
    ck_assert_ptr_nonnull(strstr(first, "usage: wlprof profile"));
    ck_assert_int_eq(tu_run_to(help2, out, err, 120), 0);
    ck_assert_str_eq(first, tu_slurp(out));
}
END_TEST

/* `wlprof run` prints the batch prediction next to what it achieved. */
START_TEST(test_advice_run_reports_prediction_beside_achieved)
{
    tu_tmpdir();
    const char *out = tu_file("out"), *err = tu_file("err");
    char *argv[] = {(char *)tu_env("WLPROF"), "run", "--sample", "sleep", "--jobs", "10", NULL};
    ck_assert_int_eq(tu_run_to(argv, out, err, 120), 0);
    char text[65536 * 2];
    copy_text(text, sizeof(text), tu_slurp(out));
    size_t n = strlen(text);
    copy_text(text + n, sizeof(text) - n, tu_slurp(err));
    const char *line = strstr(text, "  predicted ");
    ck_assert_msg(line != NULL, "no prediction in:\n%s", text);
    double predicted = 0, achieved = 0;
    char exec[32];
    ck_assert_int_eq(sscanf(line, "  predicted %lfx for a batch on a %31s (achieved %lfx)",
                            &predicted, exec, &achieved),
                     3);
    ck_assert(predicted > 1 && achieved > 0);
}
END_TEST

/* The README's first command: the advice is about the client alone, the
 * sample's HTTP server running in a process of its own that the profiler
 * leaves out. */
START_TEST(test_advice_download_sample_profiles_the_client_alone)
{
    const char *dir = tu_tmpdir();
    /* A long server delay: the client's processing is CPU time, which
     * ASan and a loaded machine stretch several times; waits of 800 ms an
     * image keep the program waiting-bound whatever the build, and the
     * point here is whose waits they are. */
    char *target[] = {(char *)tu_path("samples/download_images"), "--only", "sequential",
                      "--images", "4", "--delay", "800", NULL};
    json_t *r = profile_and_recommend(target, dir, "download");
    ck_assert_str_eq(tu_str(r, "classification.kind"), "io_bound");
    ck_assert_str_eq(tu_str(r, "recommendation.executor"), "thread_pool");
    /* The client's thread first; none of the server's (a fork that is yet
     * to exec the server may show for a tick, with nothing in it). */
    const json_t *threads = tu_get(r, "threads");
    ck_assert_str_eq(tu_str(json_array_get(threads, 0), "comm"), "download_images");
    for (size_t i = 0; i < json_array_size(threads); i++) {
        const json_t *t = json_array_get(threads, i);
        ck_assert_str_ne(tu_str(t, "comm"), "wlprof-httpd");
        const json_t *waits = json_object_get(t, "waits");
        for (size_t k = 0; k < json_array_size(waits); k++)
            ck_assert_str_ne(tu_str(json_array_get(waits, k), "syscall"), "accept4");
    }
    const json_t *calls = tu_get(r, "recommendation.calls_to_move");
    ck_assert_uint_ge(json_array_size(calls), 1);
    for (size_t i = 0; i < json_array_size(calls); i++) {
        const char *sc = tu_str(json_array_get(calls, i), "syscall");
        ck_assert_msg(strcmp(sc, "accept4") != 0 && strcmp(sc, "accept") != 0,
                      "the server's %s is advice", sc);
    }
    const json_t *wait_fns = tu_get(r, "recommendation.functions.wait");
    for (size_t i = 0; i < json_array_size(wait_fns); i++) {
        const char *fn = tu_str(json_array_get(wait_fns, i), "name");
        ck_assert_msg(strstr(fn, "acceptor") == NULL && strcmp(fn, "serve") != 0,
                      "the server's %s is advice", fn);
    }
    json_decref(r);
}
END_TEST

static bool have_python(void)
{
    return access(PYTHON, X_OK) == 0;
}

int main(void)
{
    tu_private_tmpdir();
    Suite *s = suite_create("advice");
    TCase *pure = tcase_create("pure");
    tcase_add_test(pure, test_advice_two_sequential_sleeps_predict_at_most_their_longest);
    tcase_add_test(pure, test_advice_single_stream_compute_gains_nothing_from_threads);
    tcase_add_test(pure, test_advice_one_cpu_run_and_one_wait_predict_at_most_two);
    tcase_add_test(pure, test_advice_gil_threads_go_to_processes);
    tcase_add_test(pure, test_advice_gil_waiting_is_cpu_demand_not_waiting);
    tcase_add_test(pure, test_advice_pitfall_only_on_a_loop_thread_after_it_waited);
    tcase_add_test(pure, test_advice_pitfall_names_the_python_function_and_call);
    tcase_add_test(pure, test_advice_idle_pool_threads_are_not_advice);
    tcase_add_test(pure, test_advice_runtime_frames_and_readiness_calls);
    suite_add_tcase(s, pure);

    TCase *corpus = tcase_create("corpus");
    tcase_set_timeout(corpus, 600);
    tcase_add_test(corpus, test_advice_text_output_fits_and_leads_with_the_verdict);
    tcase_add_test(corpus, test_advice_c_two_sleeps);
    tcase_add_test(corpus, test_advice_run_reports_prediction_beside_achieved);
    tcase_add_test(corpus, test_advice_download_sample_profiles_the_client_alone);
    tcase_add_test(corpus, test_advice_c_cpu_then_wait);
    tcase_add_test(corpus, test_advice_gzip_single_stream);
    tcase_add_test(corpus, test_advice_node_idle_workers_are_not_advice);
    tcase_add_test(corpus, test_advice_loop_starting_its_pool_is_not_a_silent_loop);
    suite_add_tcase(s, corpus);

    bool python = have_python();
    if (python) {
        TCase *py = tcase_create("python");
        tcase_set_timeout(py, 600);
        tcase_add_loop_test(py, test_advice_python_example5_is_the_pitfall, 0, 2);
        tcase_add_loop_test(py, test_advice_python_examples_2_and_3_are_not_flagged, 0, 2);
        tcase_add_loop_test(py, test_advice_python_open_connection_downloader_is_not_flagged, 0,
                            2);
        tcase_add_test(py, test_advice_python_two_sleeps);
        tcase_add_test(py, test_advice_python_gil_threads);
        suite_add_tcase(s, py);
    }
    int rc = tu_run_suite(s);
    if (rc == 0 && (!python || access("/usr/bin/node", X_OK) != 0)) {
        fprintf(stderr, "advice: %s missing: its cases skipped\n",
                !python ? PYTHON : "/usr/bin/node");
        return 77;
    }
    return rc;
}
