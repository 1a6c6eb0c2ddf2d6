/*
 * loop.c -- the coroutine loop: tasks, the ready queue, stack switching and
 * the generic waiter every await is built on.
 *
 * Control flow. The thread that calls uv_run() is the "scheduler context".
 * Tasks run on their own stacks. A task gives control back only by
 * suspending (wl__suspend: switch to loop->sched_sp_), and the scheduler
 * gives it to a task only in drain(), called from two libuv handles:
 *
 *   uv_run iteration:  timers -> idle: drain() -> poll for I/O -> check: drain()
 *
 * The idle handle is active only while the ready queue is non-empty, which
 * also makes libuv poll without blocking; the check handle (unreferenced,
 * so it never keeps the loop alive) drains tasks readied by I/O callbacks in
 * the same iteration. So wl_waiter_wake() never switches stacks itself: it
 * queues the task, which resumes before libuv next blocks.
 *
 * One drain resumes at most DRAIN_BUDGET tasks before returning to libuv, so
 * tasks that keep yielding cannot starve I/O, while a yield still costs only
 * two stack switches and a queue push, not a trip through epoll.
 *
 * Task lifecycle: NEW (spawned; no stack yet) -> READY <-> RUNNING <->
 * WAITING -> DONE. The stack is taken at the first resume (so a task
 * cancelled before it starts never gets one) and released by the scheduler
 * after the task's last switch. The record lives on until its handle is
 * consumed (wl_await, wl_gather, a group, or detach) and its handles closed.
 *
 * Threading: everything runs on the loop's thread. wl__current (thread-
 * local) is the running task; resume() saves and restores it, so a task may
 * run a nested loop (wl_run on another wl_loop).
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef WL_SANITIZE
#include <sanitizer/common_interface_defs.h>
#define ASAN_START(fake, lo, size) __sanitizer_start_switch_fiber((fake), (lo), (size))
#define ASAN_FINISH(fake, lo, size) __sanitizer_finish_switch_fiber((fake), (lo), (size))
#else
#define ASAN_START(fake, lo, size) ((void)(fake), (void)(lo), (void)(size))
#define ASAN_FINISH(fake, lo, size) ((void)(fake), (void)(lo), (void)(size))
#endif

enum { DRAIN_BUDGET = 1024 };

__thread wl_task *wl__current;

/* ---- switching ---- */

static const wl__stack *task_stack(const wl_task *t)
{
    return t->stack ? t->stack : t->loop->shared_;
}

/* Task side: give control back to the scheduler; returns when resumed. */
void wl__suspend(wl_task *t)
{
    wl_loop *loop = t->loop;
    ASAN_START(&t->asan_fake, loop->sched_stack_lo_, loop->sched_stack_size_);
    wl__ctx_switch(&t->sp, loop->sched_sp_);
    ASAN_FINISH(t->asan_fake, &loop->sched_stack_lo_, &loop->sched_stack_size_);
}

static void task_entry(void *arg)
{
    wl_task *t = arg;
    wl_loop *loop = t->loop;
    ASAN_FINISH(NULL, &loop->sched_stack_lo_, &loop->sched_stack_size_);
    t->status = t->fn(t->arg, &t->result);
    t->state = WL__T_DONE;
    ASAN_START(NULL, loop->sched_stack_lo_, loop->sched_stack_size_);
    wl__ctx_switch(&t->sp, loop->sched_sp_);
    abort(); /* a finished context is never resumed */
}

static void task_finish(wl_task *t);

/* Prepares t's stack at its first resume. Returns 0 or an error, in which
 * case t is finished with that status without running. */
static int task_start(wl_loop *loop, wl_task *t)
{
    char *hi;
    if (loop->opts_.shared_stack) {
        int rc = wl__shared_stack_enter(loop, t);
        if (rc)
            return rc;
        hi = ((wl__stack *)loop->shared_)->hi;
    } else {
        int rc = wl__stack_get(loop, &t->stack);
        if (rc)
            return rc;
        hi = t->stack->hi;
    }
    t->sp = wl__ctx_init(hi, task_entry, t);
    return 0;
}

static void report_slow(wl_loop *loop, wl_task *t, double secs)
{
    if (loop->opts_.on_slow) {
        loop->opts_.on_slow(loop, t->name, secs, loop->opts_.on_slow_data);
        return;
    }
    fprintf(stderr,
            "wl_scheduler: task '%s' blocked the event loop for %.3f s (watchdog threshold "
            "%.3f s): it called something blocking instead of awaiting\n",
            t->name, secs, (double)loop->opts_.watchdog_ms / 1e3);
}

/* Scheduler side: run t until it suspends or finishes. */
static void resume(wl_loop *loop, wl_task *t)
{
    if (__builtin_expect(t->state == WL__T_NEW, 0)) {
        int rc = (t->flags & WL__F_CANCELLED) ? WL_ECANCELED : task_start(loop, t);
        if (rc) {
            t->status = rc;
            t->state = WL__T_DONE;
            task_finish(t);
            return;
        }
    } else if (__builtin_expect(loop->opts_.shared_stack != 0, 0)) {
        if (wl__shared_stack_enter(loop, t) != 0) {
            /* cannot save the current owner: retry on a later iteration */
            wl__make_ready(t);
            return;
        }
    }
    wl_task *prev = wl__current;
    uint64_t t0 = __builtin_expect(loop->opts_.watchdog_ms != 0, 0) ? uv_hrtime() : 0;
    wl__current = t;
    t->state = WL__T_RUNNING;
    const wl__stack *s = task_stack(t);
    ASAN_START(&loop->sched_fake_, s->lo, (size_t)(s->hi - s->lo));
    wl__ctx_resume(&loop->sched_sp_, t->sp);
    ASAN_FINISH(loop->sched_fake_, NULL, NULL);
    wl__current = prev;
    if (__builtin_expect(loop->opts_.watchdog_ms != 0, 0)) {
        double secs = (double)(uv_hrtime() - t0) / 1e9;
        if (secs * 1e3 > (double)loop->opts_.watchdog_ms)
            report_slow(loop, t, secs);
    }
    if (__builtin_expect(t->state == WL__T_DONE, 0))
        task_finish(t);
}

static void drain(wl_loop *loop)
{
    for (int n = 0; n < DRAIN_BUDGET && !wl__q_empty(&loop->ready_); n++) {
        wl_task *t = wl__q_data(loop->ready_.next, wl_task, node);
        wl__q_remove(&t->node);
        resume(loop, t);
    }
    if (wl__q_empty(&loop->ready_) && loop->idle_active_) {
        uv_idle_stop(&loop->idle_);
        loop->idle_active_ = 0;
    }
}

static void on_idle(uv_idle_t *h)
{
    drain(h->data);
}

static void on_check(uv_check_t *h)
{
    drain(h->data);
}

void wl__make_ready(wl_task *t)
{
    wl_loop *loop = t->loop;
    t->state = WL__T_READY;
    wl__q_push(&loop->ready_, &t->node);
    if (__builtin_expect(!loop->idle_active_, 0)) {
        uv_idle_start(&loop->idle_, on_idle);
        loop->idle_active_ = 1;
    }
}

/* ---- task records ---- */

static void on_record_handle_closed(uv_handle_t *h)
{
    wl_task *t = h->data;
    t->pending_closes--;
    wl__task_release(t);
}

void wl__task_release(wl_task *t)
{
    if (t->state != WL__T_DONE || t->pending_closes > 0)
        return;
    if (!(t->flags & (WL__F_DETACHED | WL__F_REAPED)))
        return;
    t->loop->nrecords_--;
    free(t->save);
    free(t);
}

/* Scheduler side, after t's last switch: give back its stack, close its
 * handles, tell whoever waits for it. */
static void task_finish(wl_task *t)
{
    wl_loop *loop = t->loop;
    if (t->stack) {
        wl__stack_put(loop, t->stack);
        t->stack = NULL;
    }
    if (loop->shared_ && ((wl__stack *)loop->shared_)->owner == t)
        ((wl__stack *)loop->shared_)->owner = NULL;
    free(t->save);
    t->save = NULL;
    t->save_len = t->save_cap = 0;
    wl__q_remove(&t->all);
    loop->ntasks_--;
    if (t->sleep_timer_init) {
        t->pending_closes++;
        uv_close((uv_handle_t *)&t->sleep_timer, on_record_handle_closed);
    }
    wl__timeouts_close(t);
    if (t == loop->main_ || (loop->stopping_ && loop->ntasks_ == 0))
        uv_stop(loop->uv_);
    wl__task_finished_hooks(t);
    wl__task_release(t);
}

/* ---- loops ---- */

int wl_loop_init(wl_loop *loop, uv_loop_t *uv, const wl_loop_options *opts)
{
    int rc;
    memset(loop, 0, sizeof(*loop));
    if (opts)
        loop->opts_ = *opts;
    if (!loop->opts_.stack_size)
        loop->opts_.stack_size = 256 * 1024;
    if (loop->opts_.stack_size < 16 * 1024)
        loop->opts_.stack_size = 16 * 1024;
    if (!loop->opts_.stack_pool_max)
        loop->opts_.stack_pool_max = 64;
    wl__q_init(&loop->ready_);
    wl__q_init(&loop->tasks_);
    if (uv) {
        loop->uv_ = uv;
    } else {
        rc = uv_loop_init(&loop->own_uv_);
        if (rc)
            return rc;
        loop->uv_ = &loop->own_uv_;
        loop->owns_uv_ = 1;
    }
    if (!loop->opts_.no_overflow_handler) {
        rc = wl__overflow_handler_install();
        if (rc)
            goto fail_uv;
    }
    if (loop->opts_.shared_stack) {
        rc = wl__shared_stack_create(loop);
        if (rc)
            goto fail_uv;
    }
    uv_idle_init(loop->uv_, &loop->idle_);
    loop->idle_.data = loop;
    uv_check_init(loop->uv_, &loop->check_);
    loop->check_.data = loop;
    uv_check_start(&loop->check_, on_check);
    uv_unref((uv_handle_t *)&loop->check_);
    return 0;

fail_uv:
    if (loop->owns_uv_)
        uv_loop_close(&loop->own_uv_);
    return rc;
}

static void on_loop_handle_closed(uv_handle_t *h)
{
    (void)h;
}

int wl_loop_close(wl_loop *loop)
{
    if (loop->ntasks_ > 0)
        return UV_EBUSY;
    /* finished tasks nobody consumed: their handles are owned by nobody */
    uv_close((uv_handle_t *)&loop->idle_, on_loop_handle_closed);
    uv_close((uv_handle_t *)&loop->check_, on_loop_handle_closed);
    uv_run(loop->uv_, UV_RUN_NOWAIT);
    wl__stack_pool_drain(loop);
    if (loop->shared_) {
        wl__stack_unmap(loop->shared_);
        loop->shared_ = NULL;
    }
    if (loop->owns_uv_) {
        int rc = uv_loop_close(&loop->own_uv_);
        if (rc)
            return rc;
    }
    return 0;
}

uv_loop_t *wl_loop_uv(wl_loop *loop)
{
    return loop->uv_;
}

/* Runs the uv loop until done() holds or nothing can happen any more.
 * Returns 0, or -EDEADLK when it stopped for the latter reason. */
static int run_until(wl_loop *loop, int (*done)(wl_loop *))
{
    while (!done(loop)) {
        int alive = uv_run(loop->uv_, UV_RUN_DEFAULT);
        if (done(loop))
            break;
        if (!alive && wl__q_empty(&loop->ready_))
            return -EDEADLK;
    }
    return 0;
}

static int main_done(wl_loop *loop)
{
    return loop->main_ == NULL || loop->main_->state == WL__T_DONE;
}

static int all_done(wl_loop *loop)
{
    return loop->ntasks_ == 0;
}

static void cancel_all(wl_loop *loop)
{
    for (wl_qnode *n = loop->tasks_.next; n != &loop->tasks_;) {
        wl_task *t = wl__q_data(n, wl_task, all);
        n = n->next; /* cancelling never frees a record synchronously */
        wl_task_cancel(t);
    }
}

int wl_run(wl_loop *loop, const char *name, wl_task_fn fn, void *arg, void **result)
{
    wl_task *t;
    if (result)
        *result = NULL;
    if (loop->main_ || (wl__current && wl__current->loop == loop))
        return UV_EINVAL;
    int rc = wl_spawn(&t, loop, name ? name : "main", fn, arg);
    if (rc)
        return rc;
    t->flags |= WL__F_AWAITED;
    loop->main_ = t;
    int stuck = run_until(loop, main_done);
    if (stuck) {
        /* the main task waits for something that cannot happen: cancel
         * everything so the waits with a cancel hook unwind */
        cancel_all(loop);
        run_until(loop, main_done);
    }
    loop->stopping_ = 1;
    cancel_all(loop);
    run_until(loop, all_done);
    loop->stopping_ = 0;
    loop->main_ = NULL;
    rc = stuck ? stuck : t->status;
    if (t->state == WL__T_DONE) {
        if (result && !stuck)
            *result = t->result;
        t->flags |= WL__F_REAPED;
        wl__task_release(t);
    } else {
        t->flags |= WL__F_DETACHED;
    }
    return rc;
}

int wl_loop_run(wl_loop *loop)
{
    loop->stopping_ = 1;
    int rc = run_until(loop, all_done);
    loop->stopping_ = 0;
    return rc;
}

/* ---- tasks ---- */

int wl_spawn(wl_task **out, wl_loop *loop, const char *name, wl_task_fn fn, void *arg)
{
    if (out)
        *out = NULL;
    if (!loop && wl__current)
        loop = wl__current->loop;
    if (!loop || !fn)
        return UV_EINVAL;
    wl_task *t = calloc(1, sizeof(*t));
    if (!t)
        return UV_ENOMEM;
    t->loop = loop;
    t->fn = fn;
    t->arg = arg;
    snprintf(t->name, sizeof(t->name), "%s", name ? name : "task");
    wl__q_init(&t->gnode);
    wl__q_push(&loop->tasks_, &t->all);
    loop->ntasks_++;
    loop->nrecords_++;
    if (out)
        *out = t;
    else
        t->flags |= WL__F_DETACHED;
    wl__make_ready(t);
    t->state = WL__T_NEW;
    return 0;
}

void wl_task_detach(wl_task *t)
{
    t->flags |= WL__F_DETACHED;
    wl__task_release(t);
}

wl_task *wl_task_current(void)
{
    return wl__current;
}

wl_loop *wl_task_loop(void)
{
    return wl__current ? wl__current->loop : NULL;
}

const char *wl_task_name(const wl_task *t)
{
    return t->name;
}

int wl_task_done(const wl_task *t)
{
    return t->state == WL__T_DONE;
}

int wl_task_cancelled(void)
{
    return wl__current && (wl__current->flags & WL__F_CANCELLED);
}

int wl__pending_interrupt(const wl_task *t)
{
    if (t->flags & WL__F_CANCELLED)
        return WL_ECANCELED;
    if (t->tmo_fired)
        return WL_ETIMEDOUT;
    return 0;
}

int wl_task_cancel(wl_task *t)
{
    if (t->state == WL__T_DONE)
        return 0;
    t->flags |= WL__F_CANCELLED;
    if (t->waiting)
        wl__interrupt(t->waiting, WL_ECANCELED);
    return 0;
}

int wl_yield(void)
{
    wl_task *t = wl__current;
    if (!t)
        return UV_EINVAL;
    wl__make_ready(t);
    wl__suspend(t);
    return wl__pending_interrupt(t);
}

/* ---- the generic waiter ---- */

void wl_waiter_init(wl_waiter *w)
{
    memset(w, 0, sizeof(*w));
}

void wl__interrupt(wl_waiter *w, int reason)
{
    if (w->nointr_ || w->state_ != WL__W_WAITING || w->reason_)
        return;
    w->reason_ = reason;
    if (w->cancel)
        w->cancel(w);
}

int wl_waiter_wait(wl_waiter *w)
{
    wl_task *t = wl__current;
    if (!t)
        return UV_EINVAL;
    if (wl__on_shared_stack(t->loop, w, sizeof(*w)))
        return UV_EINVAL;
    if (w->state_ != WL__W_WOKEN) {
        w->task_ = t;
        w->state_ = WL__W_WAITING;
        t->waiting = w;
        int why = wl__pending_interrupt(t);
        if (why)
            wl__interrupt(w, why);
        while (w->state_ == WL__W_WAITING) {
            t->state = WL__T_WAITING;
            wl__suspend(t);
        }
        t->waiting = NULL;
    }
    return w->reason_ ? w->reason_ : w->status_;
}

void wl_waiter_wake(wl_waiter *w, int status)
{
    if (w->state_ == WL__W_WOKEN)
        return; /* a second wake for one wait is ignored */
    int was_waiting = w->state_ == WL__W_WAITING;
    w->status_ = status;
    w->state_ = WL__W_WOKEN;
    if (was_waiting && w->task_->state == WL__T_WAITING)
        wl__make_ready(w->task_);
}

const char *wl_strerror(int err)
{
    if (err == -EDEADLK)
        return "deadlock: the task waits for something that can no longer happen";
    if (err == WL_ECANCELED)
        return "task cancelled";
    if (err == WL_ETIMEDOUT)
        return "timed out";
    return uv_strerror(err);
}
