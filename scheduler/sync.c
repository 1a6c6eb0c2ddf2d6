/*
 * sync.c -- awaiting tasks, gather, task groups, semaphores and timeout
 * scopes, all on the generic waiter of loop.c.
 *
 * Every wait here uses the waiting task's own self_wait (inside its heap
 * record), never memory on a task stack that a callback or another task
 * writes, so these awaits also work in copy-stack mode.
 *
 * Await: t->awaiter points at the waiter of whoever awaits t; task_finish
 * (scheduler side) wakes it through wl__task_finished_hooks. Interrupting an
 * await cancels the awaited task (as asyncio does), and the await then waits
 * for that task to unwind, so a consumed handle is always a finished one.
 *
 * Groups: members are linked through gnode; the first member to fail marks
 * the group failed and cancels the others; the last to finish wakes the
 * waiting owner.
 *
 * Timeouts: scopes are a stack of wl_timeout on the task's own stack, read
 * only while the task runs. One heap timer per task is armed for the
 * earliest open deadline; when it fires it records that deadline in
 * tmo_fired (heap) and interrupts the current wait. Interrupts stay pending
 * until the expired scope is closed.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- awaiting tasks ---- */

static void await_cancel(wl_waiter *w)
{
    wl_task_cancel(w->data);
}

/* Waits for t to finish (t is finished on return) and consumes it. Returns
 * the interrupt reason (0 if none); t's status and result go to the outs. */
static int await_task(wl_task *t, int *status, void **result)
{
    wl_task *cur = wl__current;
    int why = 0;
    if (t->state != WL__T_DONE) {
        wl_waiter *w = &cur->self_wait;
        wl_waiter_init(w);
        w->cancel = await_cancel;
        w->data = t;
        t->awaiter = w;
        int rc = wl_waiter_wait(w);
        why = w->reason_;
        (void)rc;
    }
    *status = t->status;
    if (result)
        *result = t->result;
    t->flags |= WL__F_REAPED;
    wl__task_release(t);
    return why;
}

static int await_check(const wl_task *t)
{
    if (!wl__current)
        return UV_EINVAL;
    if (t == wl__current || t->loop != wl__current->loop)
        return UV_EINVAL;
    if (t->flags & (WL__F_AWAITED | WL__F_DETACHED | WL__F_REAPED) || t->group)
        return UV_EBUSY;
    return 0;
}

int wl_await(wl_task *t, void **result)
{
    int status;
    void *res = NULL;
    if (result)
        *result = NULL;
    int rc = await_check(t);
    if (rc)
        return rc;
    t->flags |= WL__F_AWAITED;
    int why = await_task(t, &status, &res);
    if (why)
        return why;
    if (result)
        *result = status >= 0 ? res : NULL;
    return status;
}

int wl_gather(wl_task *const *tasks, size_t n, int *statuses, void **results)
{
    for (size_t i = 0; i < n; i++) {
        int rc = await_check(tasks[i]);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < n; i++)
        tasks[i]->flags |= WL__F_AWAITED;
    int why = 0;
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        /* once interrupted, the interrupt stays pending: each later
         * await_task cancels its task at once and waits for it to unwind */
        int w = await_task(tasks[i], &statuses[i], results ? &results[i] : NULL);
        if (w && !why)
            why = w;
        if (statuses[i] != 0)
            failed++;
    }
    return why ? why : failed;
}

void wl__task_finished_hooks(wl_task *t)
{
    if (t->awaiter) {
        wl_waiter *w = t->awaiter;
        t->awaiter = NULL;
        wl_waiter_wake(w, 0);
    }
    wl_group *g = t->group;
    if (g) {
        g->live_--;
        if (t->status != 0 && t->status != WL_ECANCELED && !g->failed_) {
            g->failed_ = 1;
            g->first_error_ = t->status;
            for (wl_qnode *n = g->members_.next; n != &g->members_; n = n->next)
                wl_task_cancel(wl__q_data(n, wl_task, gnode));
        }
        if (g->live_ == 0 && g->waiter_) {
            wl_waiter *w = g->waiter_;
            g->waiter_ = NULL;
            wl_waiter_wake(w, 0);
        }
    }
}

/* ---- task groups ---- */

void wl_group_init(wl_group *g, wl_loop *loop)
{
    memset(g, 0, sizeof(*g));
    g->loop_ = loop ? loop : wl_task_loop();
    wl__q_init(&g->members_);
}

int wl_group_spawn(wl_group *g, wl_task **out, const char *name, wl_task_fn fn, void *arg)
{
    wl_task *t;
    if (out)
        *out = NULL;
    int rc = wl_spawn(&t, g->loop_, name, fn, arg);
    if (rc)
        return rc;
    t->group = g;
    t->flags |= WL__F_AWAITED;
    wl__q_push(&g->members_, &t->gnode);
    g->live_++;
    if (g->failed_)
        wl_task_cancel(t);
    if (out)
        *out = t;
    return 0;
}

static void group_cancel(wl_waiter *w)
{
    wl_group *g = w->data;
    for (wl_qnode *n = g->members_.next; n != &g->members_; n = n->next)
        wl_task_cancel(wl__q_data(n, wl_task, gnode));
}

int wl_group_wait(wl_group *g)
{
    wl_task *cur = wl__current;
    int why = 0;
    if (!cur || wl__on_shared_stack(cur->loop, g, sizeof(*g)))
        return UV_EINVAL;
    if (g->live_ > 0) {
        wl_waiter *w = &cur->self_wait;
        wl_waiter_init(w);
        w->cancel = group_cancel;
        w->data = g;
        g->waiter_ = w;
        wl_waiter_wait(w);
        why = w->reason_;
    }
    while (!wl__q_empty(&g->members_)) {
        wl_task *t = wl__q_data(g->members_.next, wl_task, gnode);
        wl__q_remove(&t->gnode);
        t->group = NULL;
        t->flags |= WL__F_REAPED;
        wl__task_release(t);
    }
    return why ? why : g->first_error_;
}

/* ---- semaphores ---- */

void wl_sem_init(wl_sem *s, long count)
{
    s->count_ = count;
    wl__q_init(&s->waiters_);
}

static void sem_cancel(wl_waiter *w)
{
    wl__q_remove(&w->task_->node);
    wl_waiter_wake(w, w->reason_);
}

int wl_sem_acquire(wl_sem *s)
{
    wl_task *cur = wl__current;
    if (!cur || wl__on_shared_stack(cur->loop, s, sizeof(*s)))
        return UV_EINVAL;
    int why = wl__pending_interrupt(cur);
    if (why)
        return why;
    if (s->count_ > 0 && wl__q_empty(&s->waiters_)) {
        s->count_--;
        return 0;
    }
    wl_waiter *w = &cur->self_wait;
    wl_waiter_init(w);
    w->cancel = sem_cancel;
    w->data = s;
    w->task_ = cur;
    wl__q_push(&s->waiters_, &cur->node);
    return wl_waiter_wait(w); /* 0: release handed us its unit */
}

void wl_sem_release(wl_sem *s)
{
    if (wl__q_empty(&s->waiters_)) {
        s->count_++;
        return;
    }
    wl_task *t = wl__q_data(s->waiters_.next, wl_task, node);
    wl__q_remove(&t->node);
    wl_waiter_wake(&t->self_wait, 0);
}

/* ---- timeout scopes ---- */

static void on_timeout(uv_timer_t *h)
{
    wl_task *t = h->data;
    if (t->tmo_armed > t->tmo_fired)
        t->tmo_fired = t->tmo_armed;
    t->tmo_armed = 0;
    if (t->waiting)
        wl__interrupt(t->waiting, WL_ETIMEDOUT);
}

/* Arms the task's timer for its earliest open deadline not yet fired. */
static void timeouts_rearm(wl_task *t)
{
    uint64_t next = 0;
    for (wl_timeout *s = t->timeouts; s; s = s->outer_)
        if (s->deadline_ > t->tmo_fired && (next == 0 || s->deadline_ < next))
            next = s->deadline_;
    if (next == t->tmo_armed)
        return;
    t->tmo_armed = next;
    if (!next) {
        uv_timer_stop(t->tmo_timer);
        return;
    }
    uv_update_time(t->loop->uv_); /* deadlines are absolute: from now, not the turn's start */
    uint64_t now = uv_now(t->loop->uv_);
    uv_timer_start(t->tmo_timer, on_timeout, next > now ? next - now : 0, 0);
}

int wl_timeout_enter(wl_timeout *to, uint64_t ms)
{
    wl_task *t = wl__current;
    if (!t)
        return UV_EINVAL;
    if (!t->tmo_timer) {
        t->tmo_timer = malloc(sizeof(*t->tmo_timer));
        if (!t->tmo_timer)
            return UV_ENOMEM;
        uv_timer_init(t->loop->uv_, t->tmo_timer);
        t->tmo_timer->data = t;
    }
    uint64_t delay = wl__timer_delay(t->loop->uv_, ms);
    to->deadline_ = uv_now(t->loop->uv_) + delay;
    if (to->deadline_ == 0)
        to->deadline_ = 1;
    to->expired_ = 0;
    to->outer_ = t->timeouts;
    t->timeouts = to;
    timeouts_rearm(t);
    return 0;
}

int wl_timeout_exit(wl_timeout *to)
{
    wl_task *t = wl__current;
    if (!t || t->timeouts != to)
        return UV_EINVAL;
    to->expired_ = t->tmo_fired && to->deadline_ <= t->tmo_fired;
    t->timeouts = to->outer_;
    /* the interrupt stays pending only while an expired scope is open */
    int still = 0;
    for (wl_timeout *s = t->timeouts; s; s = s->outer_)
        if (t->tmo_fired && s->deadline_ <= t->tmo_fired)
            still = 1;
    if (!still)
        t->tmo_fired = 0;
    timeouts_rearm(t);
    return to->expired_ ? WL_ETIMEDOUT : 0;
}

static void on_tmo_timer_closed(uv_handle_t *h)
{
    wl_task *t = h->data;
    free(h);
    t->pending_closes--;
    wl__task_release(t);
}

void wl__timeouts_close(wl_task *t)
{
    if (!t->tmo_timer)
        return;
    t->pending_closes++;
    uv_close((uv_handle_t *)t->tmo_timer, on_tmo_timer_closed);
    t->tmo_timer = NULL;
}
