/*
 * test_choose.c -- the executor of `wlprof run` is the classifier's
 * decision, adapted only to the task's forms (runner/choose.c): pilot
 * profiles made the pilot's way (wl_thread_tally), classified, then
 * chosen for; and every row of the adaptation table.
 */
#include "testutil.h"
#include <check.h>

#include <string.h>

#include "internal.h"
#include "wlprof/classify.h"
#include "wlprof/profiler.h"

/* A pilot profile: 200 ticks over 2 s, `waiting` of them blocked in call
 * (kind), the rest running; exact CPU as the running ticks' time. */
static void pilot_profile(wl_profile *p, wl_wait_kind kind, const char *wchan, const char *call,
                          int waiting)
{
    wl_thread_tally t = {0};
    wl_thread_now run = {.state = 'R'};
    wl_thread_now blocked = {.state = 'S', .kind = kind};
    snprintf(blocked.wchan, sizeof(blocked.wchan), "%s", wchan);
    snprintf(blocked.syscall, sizeof(blocked.syscall), "%s", call);
    for (int i = 0; i < 200; i++)
        ck_assert_int_eq(wl_thread_tally_add(&t, i < waiting ? &blocked : &run), 0);
    double cpu = 2.0 * (200 - waiting) / 200;
    wl_tally_totals m = {.label = "pilot", .pid = 1, .interval_s = 0.005, .wall_s = 2.0,
                         .user_s = cpu};
    ck_assert_int_eq(wl_profile_from_tally(&t, &m, p), 0);
    wl_thread_tally_free(&t);
}

static void choose_for(const wl_profile *p, bool has_async, bool has_blocking,
                       wl_run_result *r)
{
    memset(r, 0, sizeof(*r));
    r->mode = WL_RUN_TASKS;
    r->has_async = has_async;
    r->has_blocking = has_blocking;
    wl_classify_opts co = {.cores = 2};
    ck_assert_int_eq(wl_classify(p, &co, &r->verdict), 0);
    r->have_verdict = true;
    wl_run_opts o = {0};
    o.executor = WL_RUN_AUTO;
    wl__run_choose(r, &o, 100);
}

/* The case choose.c used to decide itself: an I/O-bound task with an async
 * form went to the coroutine loop whatever it waited on. Waiting on disk
 * (fsync), the classifier says thread pool -- no loop waits on a disk --
 * and the runner now follows it. */
START_TEST(test_choose_follows_classifier_thread_pool_for_disk_waits_with_async_form)
{
    wl_profile p;
    pilot_profile(&p, WL_WAIT_DISK, "jbd2_log_wait_commit", "fsync", 190);
    wl_run_result r;
    choose_for(&p, true, true, &r);
    ck_assert_int_eq(r.verdict.kind, WL_KIND_IO_BOUND);
    ck_assert_int_eq(r.verdict.executor, WL_EXEC_THREAD_POOL);
    ck_assert(!r.verdict.loop_can_wait);
    ck_assert_int_eq(r.executor, WL_EXEC_THREAD_POOL);
    ck_assert_msg(strstr(r.reason, "thread pool") && strstr(r.reason, "async form"), "%s",
                  r.reason);
    ck_assert_int_ge(r.workers, 2);
    wl_verdict_free(&r.verdict);
    wl_profile_free(&p);
}
END_TEST

/* Waiting on sockets (or timers) the classifier also says thread pool for
 * the program as written, and that the waits could sit on a loop: a task
 * with an async form runs there, --limit in flight. */
START_TEST(test_choose_puts_readiness_waits_of_an_async_task_on_the_loop)
{
    wl_profile p;
    pilot_profile(&p, WL_WAIT_NETWORK, "sk_wait_data", "recvfrom", 190);
    wl_run_result r;
    choose_for(&p, true, true, &r);
    ck_assert_int_eq(r.verdict.executor, WL_EXEC_THREAD_POOL);
    ck_assert(r.verdict.loop_can_wait);
    ck_assert_int_eq(r.executor, WL_EXEC_COROUTINE);
    ck_assert_int_eq(r.workers, RUN_DEFAULT_LIMIT);
    wl_verdict_free(&r.verdict);
    /* the same pilot, a task with no async form: threads */
    choose_for(&p, false, true, &r);
    ck_assert_int_eq(r.executor, WL_EXEC_THREAD_POOL);
    ck_assert_msg(strstr(r.reason, "no async form"), "%s", r.reason);
    wl_verdict_free(&r.verdict);
    wl_profile_free(&p);
}
END_TEST

START_TEST(test_choose_computing_task_gets_one_process_per_core)
{
    wl_profile p;
    pilot_profile(&p, WL_WAIT_SLEEP, "hrtimer_nanosleep", "nanosleep", 4);
    wl_run_result r;
    choose_for(&p, false, true, &r);
    ck_assert_int_eq(r.verdict.executor, WL_EXEC_PROCESS_POOL);
    ck_assert_int_eq(r.executor, WL_EXEC_PROCESS_POOL);
    ck_assert_int_eq(r.workers, 2);
    wl_verdict_free(&r.verdict);
    wl_profile_free(&p);
}
END_TEST

/* Every row and column of choose.c's table. */
START_TEST(test_adaptation_table)
{
    static const struct {
        wl_executor verdict;
        bool loop_can_wait;
        wl_executor both, async_only, blocking_only;
    } rows[] = {
        {WL_EXEC_COROUTINE, true, WL_EXEC_COROUTINE, WL_EXEC_COROUTINE, WL_EXEC_THREAD_POOL},
        {WL_EXEC_THREAD_POOL, true, WL_EXEC_COROUTINE, WL_EXEC_COROUTINE, WL_EXEC_THREAD_POOL},
        {WL_EXEC_THREAD_POOL, false, WL_EXEC_THREAD_POOL, WL_EXEC_COROUTINE,
         WL_EXEC_THREAD_POOL},
        {WL_EXEC_PROCESS_POOL, false, WL_EXEC_PROCESS_POOL, WL_EXEC_COROUTINE,
         WL_EXEC_PROCESS_POOL},
        {WL_EXEC_SPLIT, false, WL_EXEC_THREAD_POOL, WL_EXEC_COROUTINE, WL_EXEC_THREAD_POOL},
        {WL_EXEC_SPLIT, true, WL_EXEC_THREAD_POOL, WL_EXEC_COROUTINE, WL_EXEC_THREAD_POOL},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        wl_verdict v = {.executor = rows[i].verdict, .loop_can_wait = rows[i].loop_can_wait};
        run_adaptation how;
        ck_assert_msg(wl__run_adapt_executor(&v, true, true, &how) == rows[i].both, "row %zu", i);
        ck_assert_msg(wl__run_adapt_executor(&v, true, false, &how) == rows[i].async_only,
                      "row %zu", i);
        ck_assert_int_eq(how, RUN_ADAPT_ONLY_ASYNC);
        ck_assert_msg(wl__run_adapt_executor(&v, false, true, &how) == rows[i].blocking_only,
                      "row %zu", i);
    }
}
END_TEST

/* Commands run as processes: the verdict's executor is the label, its
 * kind the count (waiting: --limit at once; computing: one per core). */
START_TEST(test_choose_commands_keep_the_verdicts_executor)
{
    wl_profile p;
    pilot_profile(&p, WL_WAIT_DISK, "jbd2_log_wait_commit", "fsync", 190);
    wl_run_result r;
    memset(&r, 0, sizeof(r));
    r.mode = WL_RUN_COMMANDS;
    wl_classify_opts co = {.cores = 2};
    ck_assert_int_eq(wl_classify(&p, &co, &r.verdict), 0);
    r.have_verdict = true;
    wl_run_opts o = {0};
    o.executor = WL_RUN_AUTO;
    o.limit = 8;
    wl__run_choose(&r, &o, 100);
    ck_assert_int_eq(r.executor, r.verdict.executor);
    ck_assert_int_eq(r.workers, 8);
    wl_verdict_free(&r.verdict);
    wl_profile_free(&p);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("run_choose");
    TCase *t = tcase_create("choose");
    tcase_add_test(t, test_choose_follows_classifier_thread_pool_for_disk_waits_with_async_form);
    tcase_add_test(t, test_choose_puts_readiness_waits_of_an_async_task_on_the_loop);
    tcase_add_test(t, test_choose_computing_task_gets_one_process_per_core);
    tcase_add_test(t, test_adaptation_table);
    tcase_add_test(t, test_choose_commands_keep_the_verdicts_executor);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run_suite(suite());
}
