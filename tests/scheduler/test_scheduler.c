/*
 * test_scheduler.c -- the coroutine loop as a specification: every test
 * runs real tasks on a real libuv loop with real timers, files and sockets
 * (a TCP echo server on 127.0.0.1 started by the test itself).
 *
 * Timing assertions are behavioural with generous margins (the machine is
 * shared): "concurrent finishes well under sequential", never exact figures.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "wlprof/sched.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Runs fn as the main task on a fresh loop and returns its status. */
static int run_main(wl_task_fn fn, void *arg, const wl_loop_options *opts)
{
    wl_loop loop;
    ck_assert_int_eq(wl_loop_init(&loop, NULL, opts), 0);
    int rc = wl_run(&loop, "main", fn, arg, NULL);
    ck_assert_int_eq(wl_loop_close(&loop), 0);
    return rc;
}

/* ---- tasks ---- */

static int set_flag(void *arg, void **result)
{
    *(int *)arg = 1;
    *result = arg;
    return 7;
}

static int main_spawn_not_inline(void *arg, void **result)
{
    int flag = 0;
    wl_task *t;
    ck_assert_int_eq(wl_spawn(&t, NULL, "child", set_flag, &flag), 0);
    ck_assert_int_eq(flag, 0); /* scheduled, not run */
    ck_assert_int_eq(wl_yield(), 0);
    ck_assert_int_eq(flag, 1); /* ran while we yielded */
    ck_assert(wl_task_done(t));
    void *res = NULL;
    ck_assert_int_eq(wl_await(t, &res), 7);
    ck_assert_ptr_eq(res, &flag);
    return 0;
}

START_TEST(test_spawn_is_scheduled_not_run_inline)
{
    ck_assert_int_eq(run_main(main_spawn_not_inline, NULL, NULL), 0);
}
END_TEST

static int ret_result(void *arg, void **result)
{
    wl_sleep(10);
    *result = arg;
    return 0;
}

START_TEST(test_run_returns_main_status_and_result)
{
    wl_loop loop;
    int x;
    void *res = NULL;
    ck_assert_int_eq(wl_loop_init(&loop, NULL, NULL), 0);
    ck_assert_int_eq(wl_run(&loop, "m", ret_result, &x, &res), 0);
    ck_assert_ptr_eq(res, &x);
    ck_assert_ptr_eq(wl_task_current(), NULL);
    ck_assert_int_eq(wl_loop_close(&loop), 0);
}
END_TEST

static int fetch_data(void *arg, void **result)
{
    int ms = (int)(intptr_t)arg;
    int rc = wl_sleep((uint64_t)ms);
    *result = arg;
    return rc;
}

static int main_seq_vs_concurrent(void *arg, void **result)
{
    double *out = arg;
    void *r1;
    void *r2;
    /* direct calls: sequential */
    double t0 = now_ms();
    fetch_data((void *)(intptr_t)100, &r1);
    fetch_data((void *)(intptr_t)200, &r2);
    out[0] = now_ms() - t0;
    /* spawned: concurrent */
    wl_task *a;
    wl_task *b;
    t0 = now_ms();
    wl_spawn(&a, NULL, "a", fetch_data, (void *)(intptr_t)100);
    wl_spawn(&b, NULL, "b", fetch_data, (void *)(intptr_t)200);
    ck_assert_int_eq(wl_await(a, &r1), 0);
    ck_assert_int_eq(wl_await(b, &r2), 0);
    out[1] = now_ms() - t0;
    ck_assert_int_eq((int)(intptr_t)r1, 100);
    ck_assert_int_eq((int)(intptr_t)r2, 200);
    /* awaiting the longer one first changes nothing */
    t0 = now_ms();
    wl_spawn(&a, NULL, "a", fetch_data, (void *)(intptr_t)100);
    wl_spawn(&b, NULL, "b", fetch_data, (void *)(intptr_t)200);
    ck_assert_int_eq(wl_await(b, NULL), 0);
    ck_assert(wl_task_done(a));
    ck_assert_int_eq(wl_await(a, NULL), 0);
    out[2] = now_ms() - t0;
    return 0;
}

START_TEST(test_sleep_sequential_vs_spawned)
{
    double t[3];
    ck_assert_int_eq(run_main(main_seq_vs_concurrent, t, NULL), 0);
    ck_assert_msg(t[0] >= 295 && t[0] < 600, "sequential %.1f ms", t[0]);
    ck_assert_msg(t[1] >= 195 && t[1] < 280, "concurrent %.1f ms", t[1]);
    ck_assert_msg(t[2] >= 195 && t[2] < 280, "reversed await %.1f ms", t[2]);
}
END_TEST

START_TEST(test_sleep_sequential_vs_spawned_shared_stack)
{
    double t[3];
    wl_loop_options o = {.shared_stack = 1};
    ck_assert_int_eq(run_main(main_seq_vs_concurrent, t, &o), 0);
    ck_assert_msg(t[1] >= 195 && t[1] < 280, "concurrent %.1f ms", t[1]);
}
END_TEST

/* ---- the generic waiter ---- */

typedef struct wake_op {
    wl_waiter w;
    uv_timer_t timer;
    int status;
    int woken;
    int cancels;
} wake_op;

static void on_wake_timer(uv_timer_t *h)
{
    wake_op *op = h->data;
    op->woken = 1;
    wl_waiter_wake(&op->w, op->status);
}

static void wake_op_cancel(wl_waiter *w)
{
    wake_op *op = w->data;
    op->cancels++;
    /* arrange for the wake "soon": restart the timer at 20 ms */
    op->status = WL_ECANCELED;
    uv_timer_start(&op->timer, on_wake_timer, 20, 0);
}

/* Starts a timer that wakes op->w with status after ms. */
static void wake_op_start(wake_op *op, uint64_t ms, int status, int cancellable)
{
    memset(op, 0, sizeof(*op));
    wl_waiter_init(&op->w);
    op->w.data = op;
    if (cancellable)
        op->w.cancel = wake_op_cancel;
    op->status = status;
    uv_timer_init(wl_loop_uv(wl_task_loop()), &op->timer);
    op->timer.data = op;
    uv_timer_start(&op->timer, on_wake_timer, ms, 0);
}

static int main_waiter_wake(void *arg, void **result)
{
    wake_op op;
    double t0 = now_ms();
    wake_op_start(&op, 50, 42, 1);
    ck_assert_int_eq(wl_waiter_wait(&op.w), 42);
    ck_assert_int_eq(op.woken, 1);
    ck_assert_int_eq(op.cancels, 0);
    ck_assert(now_ms() - t0 >= 45);
    wl_close((uv_handle_t *)&op.timer);
    return 0;
}

START_TEST(test_waiter_wait_returns_wake_status)
{
    ck_assert_int_eq(run_main(main_waiter_wake, NULL, NULL), 0);
}
END_TEST

static int main_waiter_prewoken(void *arg, void **result)
{
    wl_waiter w;
    wl_waiter_init(&w);
    wl_waiter_wake(&w, -5);
    ck_assert_int_eq(wl_waiter_wait(&w), -5);
    return 0;
}

START_TEST(test_waiter_woken_before_wait_returns_at_once)
{
    ck_assert_int_eq(run_main(main_waiter_prewoken, NULL, NULL), 0);
}
END_TEST

/* arg: a wake_op whose `status` field on entry says the wake delay in ms
 * and whose `cancels` field says whether the waiter has a cancel hook. */
static int waiter_victim(void *arg, void **result)
{
    wake_op *op = arg;
    wake_op_start(op, (uint64_t)op->status, 0, op->cancels);
    int rc = wl_waiter_wait(&op->w);
    ck_assert_int_eq(op->woken, 1); /* never returns before the wake */
    wl_close((uv_handle_t *)&op->timer);
    return rc;
}

static int main_waiter_cancel(void *arg, void **result)
{
    wake_op *op = calloc(1, sizeof(*op));
    op->cancels = 1;
    op->status = 5000;
    wl_task *t;
    wl_spawn(&t, NULL, "victim", waiter_victim, op);
    wl_sleep(30);
    double t0 = now_ms();
    ck_assert_int_eq(wl_task_cancel(t), 0);
    ck_assert_int_eq(wl_await(t, NULL), WL_ECANCELED);
    ck_assert_int_eq(op->cancels, 1);           /* hook called once */
    ck_assert_int_eq(op->w.status, WL_ECANCELED); /* what the hook's wake said */
    ck_assert(now_ms() - t0 < 1000);
    free(op);
    return 0;
}

START_TEST(test_waiter_cancel_calls_hook_and_returns_ecanceled)
{
    ck_assert_int_eq(run_main(main_waiter_cancel, NULL, NULL), 0);
}
END_TEST

static int main_waiter_timeout(void *arg, void **result)
{
    wake_op op;
    wl_timeout to;
    double t0 = now_ms();
    ck_assert_int_eq(wl_timeout_enter(&to, 50), 0);
    wake_op_start(&op, 5000, 0, 1);
    ck_assert_int_eq(wl_waiter_wait(&op.w), WL_ETIMEDOUT);
    ck_assert_int_eq(op.cancels, 1);
    /* while the expired scope is open every interruptible await fails */
    ck_assert_int_eq(wl_sleep(1000), WL_ETIMEDOUT);
    ck_assert_int_eq(wl_timeout_exit(&to), WL_ETIMEDOUT);
    double el = now_ms() - t0;
    ck_assert_msg(el >= 45 && el < 1000, "timeout took %.1f ms", el);
    /* after the scope, awaits work again */
    ck_assert_int_eq(wl_sleep(1), 0);
    /* a scope that does not expire */
    ck_assert_int_eq(wl_timeout_enter(&to, 1000), 0);
    ck_assert_int_eq(wl_sleep(10), 0);
    ck_assert_int_eq(wl_timeout_exit(&to), 0);
    wl_close((uv_handle_t *)&op.timer);
    return 0;
}

START_TEST(test_waiter_timeout_calls_hook_and_returns_etimedout)
{
    ck_assert_int_eq(run_main(main_waiter_timeout, NULL, NULL), 0);
}
END_TEST

static int main_waiter_uncancellable(void *arg, void **result)
{
    wake_op *op = calloc(1, sizeof(*op));
    op->cancels = 0; /* no hook: the wait cannot be cut short */
    op->status = 150;
    wl_task *t;
    double t0 = now_ms();
    wl_spawn(&t, NULL, "victim", waiter_victim, op);
    wl_sleep(10);
    wl_task_cancel(t);
    ck_assert_int_eq(wl_await(t, NULL), WL_ECANCELED);
    ck_assert(now_ms() - t0 >= 140);   /* waited for the real wake */
    ck_assert_int_eq(op->w.status, 0); /* whose status is kept */
    free(op);
    return 0;
}

START_TEST(test_waiter_without_hook_waits_for_wake_then_reports_cancel)
{
    ck_assert_int_eq(run_main(main_waiter_uncancellable, NULL, NULL), 0);
}
END_TEST

START_TEST(test_waiter_outside_task_is_einval)
{
    wl_waiter w;
    wl_waiter_init(&w);
    ck_assert_int_eq(wl_waiter_wait(&w), UV_EINVAL);
    ck_assert_int_eq(wl_sleep(1), UV_EINVAL);
    ck_assert_ptr_eq(wl_task_loop(), NULL);
}
END_TEST

static int main_loop_of_task(void *arg, void **result)
{
    wl_loop *loop = arg;
    ck_assert_ptr_eq(wl_task_loop(), loop);
    ck_assert_ptr_eq(wl_loop_uv(wl_task_loop()), loop->uv);
    ck_assert_str_eq(wl_task_name(wl_task_current()), "main");
    return 0;
}

START_TEST(test_task_loop_gives_the_uv_loop)
{
    wl_loop loop;
    uv_loop_t uv;
    ck_assert_int_eq(uv_loop_init(&uv), 0);
    ck_assert_int_eq(wl_loop_init(&loop, &uv, NULL), 0);
    ck_assert_ptr_eq(wl_loop_uv(&loop), &uv);
    ck_assert_int_eq(wl_run(&loop, "main", main_loop_of_task, &loop, NULL), 0);
    ck_assert_int_eq(wl_loop_close(&loop), 0);
    ck_assert_int_eq(uv_loop_close(&uv), 0);
}
END_TEST

Suite *scheduler_suite(void);

Suite *scheduler_suite(void)
{
    Suite *s = suite_create("scheduler");
    TCase *tc = tcase_create("tasks");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_spawn_is_scheduled_not_run_inline);
    tcase_add_test(tc, test_run_returns_main_status_and_result);
    tcase_add_test(tc, test_sleep_sequential_vs_spawned);
    tcase_add_test(tc, test_sleep_sequential_vs_spawned_shared_stack);
    suite_add_tcase(s, tc);

    tc = tcase_create("waiter");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_waiter_wait_returns_wake_status);
    tcase_add_test(tc, test_waiter_woken_before_wait_returns_at_once);
    tcase_add_test(tc, test_waiter_cancel_calls_hook_and_returns_ecanceled);
    tcase_add_test(tc, test_waiter_timeout_calls_hook_and_returns_etimedout);
    tcase_add_test(tc, test_waiter_without_hook_waits_for_wake_then_reports_cancel);
    tcase_add_test(tc, test_waiter_outside_task_is_einval);
    tcase_add_test(tc, test_task_loop_gives_the_uv_loop);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(scheduler_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
