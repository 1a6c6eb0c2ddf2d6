/*
 * test_scheduler.c -- the coroutine loop as a specification: every test
 * runs real tasks on a real libuv loop with real timers, files and sockets
 * (a TCP echo server on 127.0.0.1 started by the test itself).
 *
 * Timing assertions are behavioural with generous margins (the machine is
 * shared): "concurrent finishes well under sequential", never exact figures.
 */
#include "testutil.h"
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <fenv.h>
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

/* A task's sleep and when it ran. */
typedef struct span {
    int ms;
    double start, end;
} span;

static int fetch_data(void *arg, void **result)
{
    span *sp = arg;
    sp->start = now_ms();
    int rc = wl_sleep((uint64_t)sp->ms);
    sp->end = now_ms();
    *result = (void *)(intptr_t)sp->ms;
    return rc;
}

typedef struct seq_result {
    double seq_ms;       /* two direct calls */
    span conc[2], rev[2]; /* spawned, awaited in order / in reverse */
} seq_result;

static int overlap(const span *a, const span *b)
{
    return a->start < b->end && b->start < a->end;
}

static int main_seq_vs_concurrent(void *arg, void **result)
{
    seq_result *out = arg;
    void *r1;
    void *r2;
    span s1 = {.ms = 100}, s2 = {.ms = 200};
    /* direct calls: sequential */
    double t0 = now_ms();
    fetch_data(&s1, &r1);
    fetch_data(&s2, &r2);
    out->seq_ms = now_ms() - t0;
    /* spawned: concurrent */
    wl_task *a;
    wl_task *b;
    out->conc[0].ms = out->rev[0].ms = 100;
    out->conc[1].ms = out->rev[1].ms = 200;
    wl_spawn(&a, NULL, "a", fetch_data, &out->conc[0]);
    wl_spawn(&b, NULL, "b", fetch_data, &out->conc[1]);
    ck_assert_int_eq(wl_await(a, &r1), 0);
    ck_assert_int_eq(wl_await(b, &r2), 0);
    ck_assert_int_eq((int)(intptr_t)r1, 100);
    ck_assert_int_eq((int)(intptr_t)r2, 200);
    /* awaiting the longer one first changes nothing */
    wl_spawn(&a, NULL, "a", fetch_data, &out->rev[0]);
    wl_spawn(&b, NULL, "b", fetch_data, &out->rev[1]);
    ck_assert_int_eq(wl_await(b, NULL), 0);
    ck_assert(wl_task_done(a));
    ck_assert_int_eq(wl_await(a, NULL), 0);
    return 0;
}

/* Concurrency shown by events, not by how long the machine took: the
 * spawned sleeps were in progress at the same time; each lasted its time. */
static void check_seq_vs_concurrent(const seq_result *r, const char *what)
{
    ck_assert_msg(r->seq_ms >= 299, "%s: sequential %.1f ms", what, r->seq_ms);
    const span *pairs[2] = {r->conc, r->rev};
    for (int k = 0; k < 2; k++) {
        ck_assert_msg(overlap(&pairs[k][0], &pairs[k][1]), "%s: the spawned sleeps did not overlap",
                      what);
        for (int i = 0; i < 2; i++)
            ck_assert_msg(pairs[k][i].end - pairs[k][i].start >= pairs[k][i].ms - 1,
                          "%s: a %d ms sleep lasted %.1f ms", what, pairs[k][i].ms,
                          pairs[k][i].end - pairs[k][i].start);
    }
}

START_TEST(test_sleep_sequential_vs_spawned)
{
    seq_result r = {0};
    ck_assert_int_eq(run_main(main_seq_vs_concurrent, &r, NULL), 0);
    check_seq_vs_concurrent(&r, "own stacks");
}
END_TEST

START_TEST(test_sleep_sequential_vs_spawned_shared_stack)
{
    seq_result r = {0};
    wl_loop_options o = {.shared_stack = 1};
    ck_assert_int_eq(run_main(main_seq_vs_concurrent, &r, &o), 0);
    check_seq_vs_concurrent(&r, "shared stack");
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
    ck_assert_int_eq(op->w.status_, WL_ECANCELED); /* what the hook's wake said */
    ck_assert(now_ms() - t0 < 2500);              /* cut short: not its 5 s */
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
    ck_assert_msg(el >= 49 && el < 2500, "timeout took %.1f ms", el); /* not the 5 s wake */
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

static int uncancellable_victim(void *arg, void **result)
{
    wake_op *op = arg;
    int rc = wl_waiter_wait(&op->w);
    ck_assert_int_eq(op->woken, 1); /* never returns before the wake */
    return rc;
}

/* Events, not timers: the victim waits on a waiter without a cancel hook;
 * after the cancel it stays blocked however often the loop turns, until
 * main wakes it. */
static int main_waiter_uncancellable(void *arg, void **result)
{
    wake_op *op = calloc(1, sizeof(*op));
    wl_waiter_init(&op->w); /* no hook: the wait cannot be cut short */
    op->w.data = op;
    wl_task *t;
    wl_spawn(&t, NULL, "victim", uncancellable_victim, op);
    ck_assert_int_eq(wl_yield(), 0); /* the victim runs and waits */
    ck_assert_int_eq(wl_task_cancel(t), 0);
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(wl_yield(), 0);
    ck_assert(!wl_task_done(t)); /* still waiting for the real wake */
    op->woken = 1;
    wl_waiter_wake(&op->w, 0);
    ck_assert_int_eq(wl_await(t, NULL), WL_ECANCELED);
    ck_assert_int_eq(op->w.status_, 0); /* whose status is kept */
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
    ck_assert_ptr_eq(wl_loop_uv(wl_task_loop()), loop->uv_);
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


/* ---- cancellation ---- */

static int sleeper(void *arg, void **result)
{
    int *state = arg;
    if (state)
        *state = 1; /* started */
    int rc = wl_sleep(5000);
    if (state)
        *state = 2; /* unwound */
    /* cancellation is sticky: later awaits fail at once too */
    if (rc == WL_ECANCELED)
        ck_assert_int_eq(wl_sleep(5000), WL_ECANCELED);
    return rc;
}

static int main_cancel(void *arg, void **result)
{
    int st = 0;
    wl_task *t;
    double t0 = now_ms();
    wl_spawn(&t, NULL, "sleeper", sleeper, &st);
    wl_sleep(20);
    ck_assert_int_eq(st, 1);
    wl_task_cancel(t);
    ck_assert_int_eq(wl_await(t, NULL), WL_ECANCELED);
    ck_assert_int_eq(st, 2);
    ck_assert(now_ms() - t0 < 2500); /* cut short: not its 5 s */

    /* cancelled before it started: never runs */
    st = 0;
    wl_spawn(&t, NULL, "never", sleeper, &st);
    wl_task_cancel(t);
    ck_assert_int_eq(wl_await(t, NULL), WL_ECANCELED);
    ck_assert_int_eq(st, 0);

    /* cancelling a finished task is a no-op */
    wl_spawn(&t, NULL, "quick", set_flag, &st);
    wl_yield();
    ck_assert(wl_task_done(t));
    ck_assert_int_eq(wl_task_cancel(t), 0);
    ck_assert_int_eq(wl_await(t, NULL), 7);
    return 0;
}

START_TEST(test_cancel_interrupts_await_and_is_noop_when_done)
{
    ck_assert_int_eq(run_main(main_cancel, NULL, NULL), 0);
}
END_TEST

static int main_await_timeout(void *arg, void **result)
{
    int st = 0;
    wl_task *t;
    wl_timeout to;
    wl_spawn(&t, NULL, "slow", sleeper, &st);
    double t0 = now_ms();
    wl_timeout_enter(&to, 50);
    /* an await that times out cancels the awaited task (like wait_for) */
    ck_assert_int_eq(wl_await(t, NULL), WL_ETIMEDOUT);
    ck_assert_int_eq(wl_timeout_exit(&to), WL_ETIMEDOUT);
    ck_assert_int_eq(st, 2);
    double el = now_ms() - t0;
    ck_assert_msg(el >= 49 && el < 2500, "%.1f ms", el); /* not the sleeper's 5 s */
    /* nested scopes: the inner, shorter one fires; the outer does not */
    wl_timeout outer;
    wl_timeout inner;
    wl_timeout_enter(&outer, 2000);
    wl_timeout_enter(&inner, 30);
    ck_assert_int_eq(wl_sleep(1000), WL_ETIMEDOUT);
    ck_assert_int_eq(wl_timeout_exit(&inner), WL_ETIMEDOUT);
    ck_assert_int_eq(wl_sleep(10), 0);
    ck_assert_int_eq(wl_timeout_exit(&outer), 0);
    return 0;
}

START_TEST(test_timeout_on_await_cancels_awaited_task)
{
    ck_assert_int_eq(run_main(main_await_timeout, NULL, NULL), 0);
}
END_TEST

/* ---- timers measure from now ---- */

static void busy_wall_ms(double ms)
{
    double end = now_ms() + ms;
    while (now_ms() < end)
        ;
}

static int burner(void *arg, void **result)
{
    (void)arg;
    (void)result;
    busy_wall_ms(50); /* holds the loop: the wall clock moves, libuv's cached time not */
    return 0;
}

static int sleeper_after_burn(void *arg, void **result)
{
    (void)result;
    double t0 = now_ms();
    int rc = wl_sleep(100);
    *(double *)arg = now_ms() - t0;
    return rc;
}

/* Wakes the loop every few ms (so libuv refreshes its time often and any
 * timer armed from a stale time fires early) until *stop. */
static int ticker(void *arg, void **result)
{
    (void)result;
    while (!*(volatile int *)arg)
        wl_sleep(3);
    return 0;
}

static int main_sleep_after_burst(void *arg, void **result)
{
    double *el = arg;
    int stop = 0;
    wl_task *tick;
    ck_assert_int_eq(wl_spawn(&tick, NULL, "ticker", ticker, &stop), 0);
    /* in this task, in the turn that started it */
    ck_assert_int_eq(wl_yield(), 0);
    busy_wall_ms(50);
    double t0 = now_ms();
    ck_assert_int_eq(wl_sleep(100), 0);
    el[0] = now_ms() - t0;
    /* in another task that runs after one that computed in the same turn */
    wl_task *a, *b;
    ck_assert_int_eq(wl_spawn(&a, NULL, "burner", burner, NULL), 0);
    ck_assert_int_eq(wl_spawn(&b, NULL, "sleeper", sleeper_after_burn, &el[1]), 0);
    ck_assert_int_eq(wl_await(a, NULL), 0);
    ck_assert_int_eq(wl_await(b, NULL), 0);
    /* a timeout scope entered after a burst lasts its whole time too */
    busy_wall_ms(50);
    wl_timeout to;
    t0 = now_ms();
    ck_assert_int_eq(wl_timeout_enter(&to, 100), 0);
    ck_assert_int_eq(wl_sleep(1000), WL_ETIMEDOUT);
    ck_assert_int_eq(wl_timeout_exit(&to), WL_ETIMEDOUT);
    el[2] = now_ms() - t0;
    stop = 1;
    ck_assert_int_eq(wl_await(tick, NULL), 0);
    return 0;
}

START_TEST(test_sleep_after_compute_burst_lasts_its_whole_time)
{
    double el[3] = {0, 0, 0};
    ck_assert_int_eq(run_main(main_sleep_after_burst, el, NULL), 0);
    ck_assert_msg(el[0] >= 100, "wl_sleep(100) after a 50 ms burst lasted %.1f ms", el[0]);
    ck_assert_msg(el[1] >= 100, "wl_sleep(100) after another task's burst lasted %.1f ms",
                  el[1]);
    ck_assert_msg(el[2] >= 100, "a 100 ms timeout after a burst fired after %.1f ms", el[2]);
}
END_TEST

/* ---- gather and groups ---- */

typedef struct job {
    int ms;
    int fail; /* status to return after sleeping */
    int cancelled;
    int finished;
} job;

static int job_fn(void *arg, void **result)
{
    job *j = arg;
    int rc = wl_sleep((uint64_t)j->ms);
    if (rc == WL_ECANCELED) {
        j->cancelled = 1;
        return rc;
    }
    j->finished = 1;
    *result = j;
    return j->fail;
}

static int main_gather(void *arg, void **result)
{
    job jobs[3] = {{.ms = 50}, {.ms = 20, .fail = UV_EIO}, {.ms = 100}};
    wl_task *t[3];
    for (int i = 0; i < 3; i++)
        wl_spawn(&t[i], NULL, "job", job_fn, &jobs[i]);
    int st[3];
    void *res[3];
    double t0 = now_ms();
    ck_assert_int_eq(wl_gather(t, 3, st, res), 1); /* one failure */
    double el = now_ms() - t0;
    /* gather waits for the slowest (100 ms, armed after t0); the upper
     * bound only catches a hang (valgrind on a loaded machine is slow) */
    ck_assert_msg(el >= 100 && el < 10000, "%.1f ms", el);
    ck_assert_int_eq(st[0], 0);
    ck_assert_int_eq(st[1], UV_EIO);
    ck_assert_int_eq(st[2], 0);
    ck_assert_ptr_eq(res[0], &jobs[0]);
    ck_assert_ptr_eq(res[2], &jobs[2]);
    for (int i = 0; i < 3; i++) /* collect-all: nobody was cancelled */
        ck_assert(jobs[i].finished && !jobs[i].cancelled);
    return 0;
}

START_TEST(test_gather_collects_every_result_and_error)
{
    ck_assert_int_eq(run_main(main_gather, NULL, NULL), 0);
}
END_TEST

static int main_group(void *arg, void **result)
{
    job jobs[3] = {{.ms = 1000}, {.ms = 20, .fail = UV_EIO}, {.ms = 1500}};
    wl_group g;
    wl_group_init(&g, NULL);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(wl_group_spawn(&g, NULL, "member", job_fn, &jobs[i]), 0);
    double t0 = now_ms();
    ck_assert_int_eq(wl_group_wait(&g), UV_EIO);
    double el = now_ms() - t0;
    /* fail-fast: the siblings' sleeps were cut (cancelled, below), not
     * waited out; the upper bound only catches a hang */
    ck_assert_msg(el >= 19 && el < 10000, "%.1f ms", el);
    ck_assert(jobs[0].cancelled && jobs[2].cancelled);   /* siblings unwound */
    ck_assert(jobs[1].finished);

    /* all succeed: 0 */
    job ok[2] = {{.ms = 10}, {.ms = 20}};
    wl_group_init(&g, NULL);
    for (int i = 0; i < 2; i++)
        wl_group_spawn(&g, NULL, "ok", job_fn, &ok[i]);
    ck_assert_int_eq(wl_group_wait(&g), 0);
    ck_assert(ok[0].finished && ok[1].finished);
    return 0;
}

START_TEST(test_group_fails_fast_and_cancels_siblings)
{
    ck_assert_int_eq(run_main(main_group, NULL, NULL), 0);
}
END_TEST

static int group_owner(void *arg, void **result)
{
    job *jobs = arg;
    wl_group g;
    wl_group_init(&g, NULL);
    for (int i = 0; i < 2; i++)
        wl_group_spawn(&g, NULL, "member", job_fn, &jobs[i]);
    return wl_group_wait(&g);
}

static int main_group_cancel(void *arg, void **result)
{
    job jobs[2] = {{.ms = 3000}, {.ms = 3000}};
    wl_task *t;
    wl_spawn(&t, NULL, "owner", group_owner, jobs);
    wl_sleep(20);
    wl_task_cancel(t);
    ck_assert_int_eq(wl_await(t, NULL), WL_ECANCELED);
    ck_assert(jobs[0].cancelled && jobs[1].cancelled);
    return 0;
}

START_TEST(test_cancelling_group_owner_cancels_members)
{
    ck_assert_int_eq(run_main(main_group_cancel, NULL, NULL), 0);
}
END_TEST

/* ---- semaphores ---- */

typedef struct sem_ctx {
    wl_sem sem;
    int inside;
    int max_inside;
} sem_ctx;

static int sem_worker(void *arg, void **result)
{
    sem_ctx *c = arg;
    int rc = wl_sem_acquire(&c->sem);
    if (rc)
        return rc;
    c->inside++;
    if (c->inside > c->max_inside)
        c->max_inside = c->inside;
    wl_sleep(30);
    c->inside--;
    wl_sem_release(&c->sem);
    return 0;
}

static int main_sem(void *arg, void **result)
{
    sem_ctx *c = arg;
    wl_sem_init(&c->sem, 4);
    wl_task *t[10];
    double t0 = now_ms();
    for (int i = 0; i < 10; i++)
        wl_spawn(&t[i], NULL, "download", sem_worker, c);
    int st[10];
    ck_assert_int_eq(wl_gather(t, 10, st, NULL), 0);
    double el = now_ms() - t0;
    ck_assert_int_eq(c->max_inside, 4); /* at most 4 at once, and 4 did overlap */
    ck_assert_msg(el >= 89 && el < 10000, "%.1f ms", el); /* at least 3 waves of 30 ms */

    /* a waiting acquire can time out and then holds nothing */
    wl_sem_init(&c->sem, 0);
    wl_timeout to;
    wl_timeout_enter(&to, 20);
    ck_assert_int_eq(wl_sem_acquire(&c->sem), WL_ETIMEDOUT);
    wl_timeout_exit(&to);
    wl_sem_release(&c->sem);
    ck_assert_int_eq(wl_sem_acquire(&c->sem), 0);
    return 0;
}

START_TEST(test_semaphore_limits_concurrency)
{
    sem_ctx *c = calloc(1, sizeof(*c));
    ck_assert_int_eq(run_main(main_sem, c, NULL), 0);
    free(c);
}
END_TEST

START_TEST(test_semaphore_on_shared_stack_heap_object)
{
    sem_ctx *c = calloc(1, sizeof(*c));
    wl_loop_options o = {.shared_stack = 1};
    ck_assert_int_eq(run_main(main_sem, c, &o), 0);
    free(c);
}
END_TEST

/* ---- watchdog ---- */

typedef struct slow_ctx {
    char name[32];
    double secs;
    int calls;
    int blocker_calls;
} slow_ctx;

static void on_slow(wl_loop *loop, const char *name, double secs, void *data)
{
    slow_ctx *c = data;
    c->calls++;
    /* On a loaded machine any task may be stalled past the threshold by
     * preemption; what matters is that the one blocking the loop is named. */
    if (strcmp(name, "blocker") == 0) {
        snprintf(c->name, sizeof(c->name), "%s", name);
        c->secs = secs;
        c->blocker_calls++;
    }
}

static int blocker(void *arg, void **result)
{
    usleep(120 * 1000); /* the pitfall: blocking the loop thread */
    return 0;
}

static int polite(void *arg, void **result)
{
    return wl_sleep(120);
}

static int main_watchdog(void *arg, void **result)
{
    wl_task *a;
    wl_task *b;
    wl_spawn(&a, NULL, "polite", polite, NULL);
    wl_spawn(&b, NULL, "blocker", blocker, NULL);
    wl_await(a, NULL);
    wl_await(b, NULL);
    return 0;
}

START_TEST(test_watchdog_names_task_that_blocks_the_loop)
{
    slow_ctx c = {0};
    wl_loop_options o = {.watchdog_ms = 50, .on_slow = on_slow, .on_slow_data = &c};
    ck_assert_int_eq(run_main(main_watchdog, NULL, &o), 0);
    ck_assert_int_eq(c.blocker_calls, 1); /* once per stall */
    ck_assert_int_ge(c.calls, 1);
    ck_assert_str_eq(c.name, "blocker");
    ck_assert(c.secs >= 0.1);
}
END_TEST

/* ---- deadlock, several loops ---- */

static wl_waiter stuck_waiter;

static int waits_forever(void *arg, void **result)
{
    wl_waiter_init(&stuck_waiter);
    return wl_waiter_wait(&stuck_waiter); /* nothing is going to wake it */
}

START_TEST(test_run_reports_deadlock)
{
    wl_loop loop;
    ck_assert_int_eq(wl_loop_init(&loop, NULL, NULL), 0);
    ck_assert_int_eq(wl_run(&loop, "stuck", waits_forever, NULL, NULL), -EDEADLK);
    ck_assert_str_eq(wl_strerror(-EDEADLK),
                     "deadlock: the task waits for something that can no longer happen");
    ck_assert_int_eq(wl_loop_close(&loop), UV_EBUSY); /* the task is still there */
    wl_waiter_wake(&stuck_waiter, 5);                 /* unblock it from outside */
    ck_assert_int_eq(wl_loop_run(&loop), 0);
    ck_assert_int_eq(wl_loop_close(&loop), 0);
}
END_TEST

static void *thread_loop(void *arg)
{
    run_main(main_seq_vs_concurrent, arg, NULL);
    return NULL;
}

START_TEST(test_two_loops_on_two_threads)
{
    pthread_t th[2];
    seq_result r[2];
    memset(r, 0, sizeof(r));
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, thread_loop, &r[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++)
        check_seq_vs_concurrent(&r[i], i ? "loop 1" : "loop 0");
    /* and the two loops ran at the same time */
    ck_assert(overlap(&r[0].conc[1], &r[1].conc[1]) || overlap(&r[0].rev[1], &r[1].rev[1]));
}
END_TEST

static int inner_main(void *arg, void **result)
{
    wl_sleep(20);
    *result = arg;
    return 3;
}

static int outer_main(void *arg, void **result)
{
    wl_loop inner;
    void *res = NULL;
    wl_loop *outer = wl_task_loop();
    ck_assert_int_eq(wl_loop_init(&inner, NULL, NULL), 0);
    ck_assert_int_eq(wl_run(outer, "again", inner_main, NULL, NULL), UV_EINVAL);
    ck_assert_int_eq(wl_run(&inner, "inner", inner_main, arg, &res), 3);
    ck_assert_ptr_eq(res, arg);
    ck_assert_ptr_eq(wl_task_loop(), outer); /* back in the outer task */
    ck_assert_int_eq(wl_loop_close(&inner), 0);
    return wl_sleep(5);
}

START_TEST(test_nested_loop_in_a_task)
{
    int x;
    ck_assert_int_eq(run_main(outer_main, &x, NULL), 0);
}
END_TEST

/* ---- stacks ---- */

static int recurse(int depth)
{
    volatile char pad[512];
    pad[0] = (char)depth;
    if (depth == 0)
        return pad[0];
    return recurse(depth - 1) + pad[0];
}

static int overflow_task(void *arg, void **result)
{
    return recurse(1 << 20);
}

START_TEST(test_stack_overflow_hits_guard_and_names_task)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        wl_loop loop;
        wl_loop_options o = {.stack_size = 32 * 1024};
        wl_loop_init(&loop, NULL, &o);
        wl_run(&loop, "deep-recursion", overflow_task, NULL, NULL);
        _exit(0);
    }
    close(fds[1]);
    char buf[4096] = {0};
    size_t got = 0;
    ssize_t n;
    while (got < sizeof(buf) - 1 && (n = read(fds[0], buf + got, sizeof(buf) - 1 - got)) > 0)
        got += (size_t)n;
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV, "status %#x", status);
    ck_assert_msg(strstr(buf, "stack overflow in task 'deep-recursion'"), "stderr: %s", buf);
}
END_TEST

typedef struct deep_ctx {
    int id;
    int ok;
} deep_ctx;

static int stack_keeper(void *arg, void **result)
{
    deep_ctx *c = arg;
    char local[3000]; /* bytes that must survive copy-out / copy-in */
    memset(local, c->id & 0xff, sizeof(local));
    for (int i = 0; i < 5; i++) {
        wl_sleep((uint64_t)(c->id % 7));
        wl_yield();
    }
    c->ok = 1;
    for (size_t i = 0; i < sizeof(local); i++)
        if (local[i] != (char)(c->id & 0xff))
            c->ok = 0;
    return 0;
}

static int main_many_keepers(void *arg, void **result)
{
    enum { N = 200 };
    deep_ctx *c = calloc(N, sizeof(*c));
    wl_task **t = calloc(N, sizeof(*t));
    int *st = calloc(N, sizeof(*st));
    for (int i = 0; i < N; i++) {
        c[i].id = i;
        wl_spawn(&t[i], NULL, "keeper", stack_keeper, &c[i]);
    }
    ck_assert_int_eq(wl_gather(t, N, st, NULL), 0);
    for (int i = 0; i < N; i++)
        ck_assert_msg(c[i].ok, "task %d lost its stack bytes", i);
    /* a buffer on the shared stack is refused, not corrupted */
    char onstack[16];
    ck_assert_int_eq(wl_fs_read(0, onstack, sizeof(onstack), 0), UV_EINVAL);
    wl_waiter w;
    wl_waiter_init(&w);
    ck_assert_int_eq(wl_waiter_wait(&w), UV_EINVAL);
    free(c);
    free(t);
    free(st);
    return 0;
}

START_TEST(test_shared_stack_keeps_each_tasks_bytes)
{
    wl_loop_options o = {.shared_stack = 1};
    ck_assert_int_eq(run_main(main_many_keepers, NULL, &o), 0);
}
END_TEST

/* ---- FP control state is per task ---- */

/* The rounding mode a task sets survives its switches and does not leak
 * into the scheduler or other tasks (MXCSR and the x87 control word are
 * callee-saved in the ABI; the switch restores them only when they differ,
 * so both "same" and "different" paths run here). */
typedef struct {
    int mode;
    double third; /* 1/3 as SSE division rounds it under mode */
} fp_case;

static double fp_third(void)
{
    volatile double one = 1.0;
    volatile double three = 3.0;
    return one / three;
}

/* False under an emulator that ignores MXCSR rounding (valgrind): then
 * SSE results cannot show which mode a task ran with. */
static int sse_rounding_honoured(void)
{
    int mode = fegetround();
    fesetround(FE_UPWARD);
    double up = fp_third();
    fesetround(FE_DOWNWARD);
    double down = fp_third();
    fesetround(mode);
    return up != down;
}

static int fp_rounder(void *arg, void **result)
{
    fp_case *c = arg;
    *result = NULL;
    ck_assert_int_eq(fesetround(c->mode), 0);
    c->third = fp_third();
    for (int i = 0; i < 50; i++) {
        /* a sleep now and then hands control back to libuv, where the
         * prepare callback checks the scheduler context's own mode */
        ck_assert_int_eq(i % 10 == 0 ? wl_sleep(1) : wl_yield(), 0);
        ck_assert_int_eq(fegetround(), c->mode); /* x87 control word */
        ck_assert(fp_third() == c->third);       /* MXCSR rounding control */
    }
    return 0;
}

static int fp_sched_bad;
static int fp_sched_checks;

static void fp_check_sched_context(uv_prepare_t *h)
{
    (void)h;
    fp_sched_checks++;
    if (fegetround() != FE_TONEAREST)
        fp_sched_bad++;
}

static void fp_prepare_closed(uv_handle_t *h)
{
    (void)h;
}

static int main_fp_modes(void *arg, void **result)
{
    uv_prepare_t *prep = calloc(1, sizeof(*prep));
    uv_prepare_init(wl_loop_uv(wl_task_loop()), prep);
    uv_prepare_start(prep, fp_check_sched_context);
    fp_sched_bad = 0;
    fp_sched_checks = 0;
    /* on the heap: in copy-stack mode the main task's stack is not
     * addressable while the others run */
    fp_case *cases = calloc(4, sizeof(*cases));
    cases[0].mode = FE_UPWARD;
    cases[1].mode = FE_DOWNWARD;
    cases[2].mode = FE_TONEAREST;
    cases[3].mode = FE_TOWARDZERO;
    wl_task **t = calloc(4, sizeof(*t));
    double third = fp_third();
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(wl_spawn(&t[i], NULL, "fp", fp_rounder, &cases[i]), 0);
    for (int i = 0; i < 60; i++) {
        ck_assert_int_eq(wl_yield(), 0);
        ck_assert_int_eq(fegetround(), FE_TONEAREST);
        ck_assert(fp_third() == third);
    }
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(wl_await(t[i], NULL), 0);
    if (sse_rounding_honoured())
        ck_assert(cases[0].third > cases[1].third); /* the modes really differed */
    ck_assert_int_ge(fp_sched_checks, 5);
    ck_assert_int_eq(fp_sched_bad, 0);
    uv_close((uv_handle_t *)prep, fp_prepare_closed);
    ck_assert_int_eq(wl_sleep(1), 0); /* let the close complete */
    free(prep);
    free(t);
    free(cases);
    return 0;
}

START_TEST(test_fp_rounding_mode_is_per_task)
{
    ck_assert_int_eq(run_main(main_fp_modes, NULL, NULL), 0);
    ck_assert_int_eq(fegetround(), FE_TONEAREST);
    wl_loop_options o = {.shared_stack = 1};
    ck_assert_int_eq(run_main(main_fp_modes, NULL, &o), 0);
    ck_assert_int_eq(fegetround(), FE_TONEAREST);
}
END_TEST

/* ---- files ---- */

static int main_fs(void *arg, void **result)
{
    char path[] = "/tmp/wl_sched_fs_XXXXXX";
    int tmp = mkstemp(path);
    ck_assert_int_ge(tmp, 0);
    close(tmp);
    char *data = malloc(65536);
    char *back = malloc(65536);
    for (int i = 0; i < 65536; i++)
        data[i] = (char)(i * 7);
    int fd = wl_fs_open(path, O_WRONLY | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(wl_fs_write(fd, data, 65536, 0), 65536);
    ck_assert_int_eq(wl_fs_fsync(fd), 0);
    ck_assert_int_eq(wl_fs_close(fd), 0);
    fd = wl_fs_open(path, O_RDONLY, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(wl_fs_read(fd, back, 65536, 0), 65536);
    ck_assert_int_eq(memcmp(data, back, 65536), 0);
    ck_assert_int_eq(wl_fs_read(fd, back, 100, 65536), 0); /* EOF */
    ck_assert_int_eq(wl_fs_close(fd), 0);
    ck_assert_int_eq(wl_fs_open("/nonexistent/dir/x", O_RDONLY, 0), UV_ENOENT);
    unlink(path);
    free(data);
    free(back);
    return 0;
}

START_TEST(test_fs_write_read_roundtrip)
{
    ck_assert_int_eq(run_main(main_fs, NULL, NULL), 0);
}
END_TEST

/* ---- TCP: an echo server task and clients, all on 127.0.0.1 ---- */

typedef struct echo_ctx {
    wl_listener *l;
    int port;
    int served;
} echo_ctx;

static int echo_conn(void *arg, void **result)
{
    uv_tcp_t *c = arg;
    char *buf = malloc(4096);
    ssize_t n;
    int rc = 0;
    while ((n = wl_read((uv_stream_t *)c, buf, 4096)) > 0) {
        rc = wl_write((uv_stream_t *)c, buf, (size_t)n);
        if (rc)
            break;
    }
    wl_close((uv_handle_t *)c);
    free(c);
    free(buf);
    return n < 0 ? (int)n : rc;
}

static int echo_server(void *arg, void **result)
{
    echo_ctx *e = arg;
    for (;;) {
        uv_tcp_t *c = malloc(sizeof(*c));
        int rc = wl_accept(e->l, c);
        if (rc) {
            free(c);
            return rc;
        }
        e->served++;
        wl_spawn(NULL, NULL, "echo-conn", echo_conn, c);
    }
}

static int echo_client(void *arg, void **result)
{
    echo_ctx *e = arg;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", e->port, &addr);
    uv_tcp_t *c = malloc(sizeof(*c));
    int rc = wl_tcp_connect(c, (struct sockaddr *)&addr);
    if (rc) {
        free(c);
        return rc;
    }
    char *msg = malloc(100000);
    char *back = malloc(100000);
    for (int i = 0; i < 100000; i++)
        msg[i] = (char)(i % 251);
    rc = wl_write((uv_stream_t *)c, msg, 100000);
    size_t got = 0;
    while (rc == 0 && got < 100000) {
        ssize_t n = wl_read((uv_stream_t *)c, back + got, 100000 - got);
        if (n <= 0)
            rc = n < 0 ? (int)n : UV_EOF;
        else
            got += (size_t)n;
    }
    if (rc == 0 && memcmp(msg, back, 100000) != 0)
        rc = UV_EPROTO;
    wl_close((uv_handle_t *)c);
    free(c);
    free(msg);
    free(back);
    return rc;
}

static int main_tcp(void *arg, void **result)
{
    wl_listener *l = malloc(sizeof(*l));
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    ck_assert_int_eq(wl_listen(l, (struct sockaddr *)&addr, 64), 0);
    echo_ctx e = {.l = l, .port = wl_listener_port(l)};
    ck_assert_int_gt(e.port, 0);
    wl_task *srv;
    wl_spawn(&srv, NULL, "echo-server", echo_server, &e);
    wl_task *cl[8];
    for (int i = 0; i < 8; i++)
        wl_spawn(&cl[i], NULL, "client", echo_client, &e);
    int st[8];
    ck_assert_int_eq(wl_gather(cl, 8, st, NULL), 0);
    ck_assert_int_eq(e.served, 8);
    /* a connection refused comes back as an error value */
    wl_listener_close(l);
    uv_tcp_t *c = malloc(sizeof(*c));
    ck_assert_int_eq(wl_await(srv, NULL), UV_ECANCELED); /* its accept was aborted */
    uv_ip4_addr("127.0.0.1", e.port, &addr);
    ck_assert_int_eq(wl_tcp_connect(c, (struct sockaddr *)&addr), UV_ECONNREFUSED);
    free(c);
    free(l);
    return 0;
}

START_TEST(test_tcp_echo_server_and_clients)
{
    ck_assert_int_eq(run_main(main_tcp, NULL, NULL), 0);
}
END_TEST

static int main_gai(void *arg, void **result)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    ck_assert_int_eq(wl_getaddrinfo("localhost", "80", &hints, &res), 0);
    ck_assert_ptr_nonnull(res);
    ck_assert_int_eq(res->ai_family, AF_INET);
    ck_assert_int_eq(ntohs(((struct sockaddr_in *)res->ai_addr)->sin_port), 80);
    uv_freeaddrinfo(res);
    hints.ai_flags = AI_NUMERICHOST;
    ck_assert_int_lt(wl_getaddrinfo("not an address", NULL, &hints, &res), 0);
    return 0;
}

START_TEST(test_getaddrinfo_resolves_localhost)
{
    ck_assert_int_eq(run_main(main_gai, NULL, NULL), 0);
}
END_TEST

/* ---- samples: they print their timings, which must match the brief ---- */

/* Runs build/samples/NAME --scale 0.2 and checks every "...: A s (expected
 * B s)" line it prints; returns how many it checked. */
static int check_sample(const char *name)
{
    const char *dir = getenv("WL_BUILD_DIR");
    if (!dir)
        return -1;
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s/samples/%s --scale 0.2 2>/dev/null", dir, name);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char line[512];
    int checked = 0;
    while (fgets(line, sizeof(line), p)) {
        const char *at = strstr(line, ": ");
        double got;
        double want;
        while (at && sscanf(at, ": %lf s (expected %lf s)", &got, &want) != 2)
            at = strstr(at + 1, ": ");
        if (!at)
            continue;
        /* Never faster than the brief's sleeps allow (the shape: what runs
         * concurrently finishes in the longest sleep, not the sum); the
         * upper bound only catches gross slowness, leaving room for what a
         * loaded machine's wake-up delays add (seen: +0.22 s on 0.60 s at a
         * load of 35). */
        ck_assert_msg(got >= want * 0.97 && got <= want * 1.5 + 0.25, "%s: %s", name, line);
        checked++;
    }
    ck_assert_int_eq(pclose(p), 0);
    return checked;
}

START_TEST(test_samples_match_the_brief_timings)
{
    if (!getenv("WL_BUILD_DIR"))
        tu_skip("run outside ctest: no built samples to run");
    ck_assert_int_eq(check_sample("seq_vs_concurrent"), 4);
    ck_assert_int_eq(check_sample("await_order"), 1);
    ck_assert_int_eq(check_sample("blocking_pitfall"), 2);
    ck_assert_int_eq(check_sample("gather_vs_group"), 2);
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

    tc = tcase_create("semantics");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_cancel_interrupts_await_and_is_noop_when_done);
    tcase_add_test(tc, test_timeout_on_await_cancels_awaited_task);
    tcase_add_test(tc, test_sleep_after_compute_burst_lasts_its_whole_time);
    tcase_add_test(tc, test_gather_collects_every_result_and_error);
    tcase_add_test(tc, test_group_fails_fast_and_cancels_siblings);
    tcase_add_test(tc, test_cancelling_group_owner_cancels_members);
    tcase_add_test(tc, test_semaphore_limits_concurrency);
    tcase_add_test(tc, test_semaphore_on_shared_stack_heap_object);
    tcase_add_test(tc, test_watchdog_names_task_that_blocks_the_loop);
    tcase_add_test(tc, test_run_reports_deadlock);
    tcase_add_test(tc, test_two_loops_on_two_threads);
    tcase_add_test(tc, test_nested_loop_in_a_task);
    suite_add_tcase(s, tc);

    tc = tcase_create("stacks");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_stack_overflow_hits_guard_and_names_task);
    tcase_add_test(tc, test_shared_stack_keeps_each_tasks_bytes);
    tcase_add_test(tc, test_fp_rounding_mode_is_per_task);
    suite_add_tcase(s, tc);

    tc = tcase_create("io");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_fs_write_read_roundtrip);
    tcase_add_test(tc, test_tcp_echo_server_and_clients);
    tcase_add_test(tc, test_getaddrinfo_resolves_localhost);
    suite_add_tcase(s, tc);

    tc = tcase_create("samples");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_samples_match_the_brief_timings);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(scheduler_suite());
}
