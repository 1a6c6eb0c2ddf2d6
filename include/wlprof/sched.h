/*
 * wlprof/sched.h -- a coroutine loop on libuv: straight-line C that waits,
 * while thousands of tasks run concurrently on one thread.
 *
 * A wl_loop wraps one uv_loop_t. A task is a C function running on its own
 * stack (a stackful coroutine); when it awaits (sleep, file or socket I/O,
 * another task, a semaphore) it suspends and the loop runs other tasks and
 * libuv callbacks until the awaited thing completes. The semantics mirror
 * Python's asyncio:
 *
 *   asyncio                         here
 *   asyncio.run(main())             wl_run(loop, "main", main_fn, arg, &result)
 *   asyncio.create_task(coro)       wl_spawn(&task, loop, "name", fn, arg)   (scheduled, not run)
 *   await task                      wl_await(task, &result)  -> the task's status
 *   await coro  (direct call)       just call the C function from a task
 *   asyncio.sleep(s) / sleep(0)     wl_sleep(ms) / wl_yield()
 *   gather(..., return_exceptions)  wl_gather(tasks, n, statuses, results)
 *   TaskGroup                       wl_group_init / wl_group_spawn / wl_group_wait
 *   task.cancel()                   wl_task_cancel(task)
 *   asyncio.timeout(s)              wl_timeout_enter / wl_timeout_exit around any awaits
 *   Semaphore                       wl_sem_init / wl_sem_acquire / wl_sem_release
 *   debug slow-callback warning     wl_loop_options.watchdog_ms
 *
 * Errors are values: 0 or a negative errno code, the same codes libuv uses
 * (UV_E*); wl_strerror() names them. Two codes carry scheduler meaning:
 *   WL_ECANCELED  the waiting task was cancelled (wl_task_cancel), or the
 *                 task it awaited was cancelled and reported it;
 *   WL_ETIMEDOUT  an enclosing wl_timeout scope expired during the await.
 *
 * Cancellation is sticky (level-triggered): once a task is cancelled, its
 * current await and every later interruptible await return WL_ECANCELED at
 * once, so the task unwinds; closing handles (wl_close) is never interrupted.
 * An expired timeout scope behaves the same way until wl_timeout_exit.
 *
 * Threading: a wl_loop and its tasks belong to the one thread that runs it.
 * Several loops may live in one process, one per thread or nested (a task of
 * one loop may wl_run another). The only hidden state is a thread-local
 * "current task" and a process-wide SIGSEGV handler that names a task whose
 * stack overflowed into its guard page (opt out with no_overflow_handler).
 *
 * Stacks: by default each task has a dedicated mmap'ed stack with a guard
 * page below it, taken from a per-loop pool. With shared_stack set, all tasks
 * run on one shared stack and a suspended task keeps only the bytes it used
 * (copied out on switch; about 1 KB for a task parked in wl_sleep). In that
 * mode a suspended task's stack memory is NOT at its address: never let
 * libuv or another task hold a pointer into a task's stack across an await
 * (buffers, requests, waiters must be heap or static memory). The built-in
 * awaits that keep no stack pointers are wl_sleep, wl_yield, wl_await,
 * wl_gather, wl_group_*, wl_sem_*; the I/O awaits return UV_EINVAL when
 * given a buffer on the shared stack.
 */
#ifndef WLPROF_SCHED_H
#define WLPROF_SCHED_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "wlprof/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WL_ECANCELED UV_ECANCELED
#define WL_ETIMEDOUT UV_ETIMEDOUT

typedef struct wl_loop wl_loop;
/* A running coroutine (asyncio's Task); opaque, owned by the loop. Not
 * wlprof/run.h's wl_task_def, which defines a task of a batch. */
typedef struct wl_task wl_task;
typedef struct wl_waiter wl_waiter;

/* A task body. Returns its status (0 or a negative error code) and may set
 * *result (initially NULL) to a value handed to whoever awaits the task. */
typedef int (*wl_task_fn)(void *arg, void **result);

/* Called by the watchdog when one resumption of a task kept the loop thread
 * busy for longer than watchdog_ms (a blocking call, a spin). */
typedef void (*wl_slow_fn)(wl_loop *loop, const char *task_name, double seconds, void *data);

typedef struct wl_loop_options {
    size_t stack_size;        /* usable bytes per stack; 0 = 256 KiB (min 16 KiB) */
    unsigned stack_pool_max;  /* stacks kept for reuse; 0 = 64 */
    int shared_stack;         /* 1 = copy-stack mode (see top of file) */
    uint64_t watchdog_ms;     /* warn when a task blocks the loop longer; 0 = off */
    wl_slow_fn on_slow;       /* NULL = print a warning to stderr */
    void *on_slow_data;       /* passed to on_slow */
    int no_overflow_handler;  /* 1 = do not install the SIGSEGV guard-page reporter */
} wl_loop_options;

/* Caller-allocated; every field but data is private (the libuv loop is
 * wl_loop_uv's). */
struct wl_loop {
    void *data; /* for the user */
    /* private: see scheduler/loop.c */
    uv_loop_t *uv_;    /* the libuv loop everything runs on */
    uv_loop_t own_uv_; /* used when wl_loop_init was given no loop */
    int owns_uv_;
    wl_loop_options opts_;
    uv_idle_t idle_;   /* active while tasks are ready: poll does not block */
    int idle_active_;  /* mirror of uv_is_active(&idle_), read on every wake */
    uv_check_t check_; /* drains tasks readied by I/O callbacks */
    wl_qnode ready_;   /* tasks to resume, FIFO */
    wl_qnode tasks_;   /* every live (unfinished) task */
    size_t ntasks_;    /* live tasks */
    size_t nrecords_;  /* task records not yet freed */
    void *sched_sp_;   /* saved stack pointer of the scheduler context */
    void *stack_pool_; /* free dedicated stacks */
    unsigned stack_pool_len_;
    void *shared_;  /* the shared stack (copy-stack mode) */
    wl_task *main_; /* task run by wl_run */
    int stopping_;
    const void *sched_stack_lo_; /* scheduler stack bounds, for ASan fiber switches */
    size_t sched_stack_size_;
    void *sched_fake_;
};

/* Generic suspension primitive: the base of every await, here and in other
 * modules (pools). Caller-allocated; with dedicated stacks it usually lives
 * on the waiting task's stack, with shared_stack it must not (heap/static). */
struct wl_waiter {
    /* public */
    void (*cancel)(wl_waiter *w); /* called if the wait is interrupted; may be NULL */
    void *data;                   /* for the user (e.g. the operation state) */
    /* private */
    wl_task *task_;
    int status_;
    int reason_; /* 0, WL_ECANCELED or WL_ETIMEDOUT once interrupted */
    int state_;
    int nointr_;
};

/* ---- loops ------------------------------------------------------------- */

/* Initialises loop over uv (or over a loop of its own when uv is NULL) with
 * opts (NULL = defaults; copied). Returns 0 or a negative error. The caller
 * owns *loop and must call wl_loop_close() once every task has finished. */
WL_API int wl_loop_init(wl_loop *loop, uv_loop_t *uv, const wl_loop_options *opts);

/* Releases pooled stacks and the loop's handles (and its own uv loop).
 * Returns UV_EBUSY while tasks are unfinished; then nothing is released. */
WL_API int wl_loop_close(wl_loop *loop);

/* The libuv loop behind a wl_loop (borrowed). */
WL_API uv_loop_t *wl_loop_uv(wl_loop *loop);

/* Run until complete: spawns fn as task `name`, runs the loop until it
 * finishes, then cancels every task still unfinished and runs the loop until
 * they have unwound (like asyncio.run). Returns the task's status and stores
 * its result in *result (when result is non-NULL); -EDEADLK when the loop ran
 * out of work while the task still waited on something that cannot happen;
 * UV_EINVAL when called from a task of the same loop. */
WL_API int wl_run(wl_loop *loop, const char *name, wl_task_fn fn, void *arg, void **result);

/* Runs the loop until no task or libuv handle is left active. */
WL_API int wl_loop_run(wl_loop *loop);

/* ---- tasks ------------------------------------------------------------- */

/* Schedules fn(arg) as a new task named `name` (copied, up to 31 bytes; NULL
 * = "task") on loop (NULL = the current task's loop). The task does not run
 * before the caller next awaits or returns to the loop. On success *out (if
 * out is non-NULL) receives a handle the caller must consume with exactly one
 * of wl_await, wl_gather or wl_task_detach; with out == NULL the task is
 * detached. Returns 0, UV_ENOMEM, or UV_EINVAL (no loop). */
WL_API int wl_spawn(wl_task **out, wl_loop *loop, const char *name, wl_task_fn fn, void *arg);

/* Waits until task t finishes and consumes the handle (t is invalid after).
 * Returns t's status and stores its result in *result (NULL when the status is negative). If
 * the caller is cancelled or times out while waiting, t is cancelled too,
 * the call waits for it to unwind and returns WL_ECANCELED / WL_ETIMEDOUT.
 * UV_EINVAL: not in a task, or t is the caller; UV_EBUSY: t already awaited. */
WL_API int wl_await(wl_task *t, void **result);

/* Awaits every task (collect-all, like gather(return_exceptions=True)):
 * statuses[i] (and results[i] when results is non-NULL) receive task i's
 * status and result. Consumes every handle. Returns the number of tasks
 * whose status was non-zero, or WL_ECANCELED / WL_ETIMEDOUT when the caller
 * was interrupted (the unfinished tasks are then cancelled and awaited, and
 * their entries say so). */
WL_API int wl_gather(wl_task *const *tasks, size_t n, int *statuses, void **results);

/* Requests cancellation of t: its pending await (or its next one) returns
 * WL_ECANCELED, as do all later interruptible awaits; a task that has not
 * started yet never runs and finishes with WL_ECANCELED. No-op on a finished
 * task. Returns 0. */
WL_API int wl_task_cancel(wl_task *t);

/* t will never be awaited: its record is freed when it finishes. */
WL_API void wl_task_detach(wl_task *t);

/* The running task and its loop; NULL outside any task. */
WL_API wl_task *wl_task_current(void);
WL_API wl_loop *wl_task_loop(void);
WL_API const char *wl_task_name(const wl_task *t);
/* Non-zero once t has finished (its status is then final). */
WL_API int wl_task_done(const wl_task *t);
/* Non-zero when the current task has been cancelled. */
WL_API int wl_task_cancelled(void);

/* Lets every other ready task run once, then resumes. Returns 0, or
 * WL_ECANCELED / WL_ETIMEDOUT when the caller was interrupted. */
WL_API int wl_yield(void);

/* Suspends the current task for ms milliseconds (on the loop's timer).
 * Returns 0, WL_ECANCELED, WL_ETIMEDOUT, or UV_EINVAL outside a task. */
WL_API int wl_sleep(uint64_t ms);

/* ---- the generic waiter ------------------------------------------------ */

/* Prepares w for one wait: clears the private fields, cancel and data. */
WL_API void wl_waiter_init(wl_waiter *w);

/* Suspends the current task until wl_waiter_wake(w, status) has been called
 * and returns that status. The caller starts its operation first (so it may
 * already have woken w: then no suspension happens). If the task is
 * cancelled or a timeout scope expires during the wait (or already had
 * before it), w->cancel(w) is called once, when non-NULL; it must make the
 * operation call wl_waiter_wake(w, ...) soon. Either way the wait returns
 * only after the wake, so operation state on the task stack stays valid, and
 * then returns WL_ECANCELED / WL_ETIMEDOUT instead of the wake status (an
 * operation that completed anyway: its status is in w->status). Returns
 * UV_EINVAL outside a task, or when w lies on the shared stack. */
WL_API int wl_waiter_wait(wl_waiter *w);

/* Completes the wait on w with status. Call on the loop thread (a libuv
 * callback or a task), once per wait. It never switches stacks: the waiting
 * task is queued and resumes later in the same loop iteration, before libuv
 * next blocks for I/O. Waking before the wait has started is allowed. */
WL_API void wl_waiter_wake(wl_waiter *w, int status);

/* ---- timeouts ---------------------------------------------------------- */

typedef struct wl_timeout {
    /* private */
    struct wl_timeout *outer_;
    uint64_t deadline_; /* uv_now() milliseconds */
    int expired_;
} wl_timeout;

/* Opens a timeout scope of ms milliseconds for the current task (nestable):
 * any await inside that is still waiting when it expires returns
 * WL_ETIMEDOUT, and so does every later interruptible await until
 * wl_timeout_exit. Returns 0, UV_EINVAL outside a task, UV_ENOMEM. */
WL_API int wl_timeout_enter(wl_timeout *t, uint64_t ms);

/* Closes the innermost scope t. Returns WL_ETIMEDOUT if it expired, else 0. */
WL_API int wl_timeout_exit(wl_timeout *t);

/* ---- task groups (fail-fast, like asyncio.TaskGroup) -------------------- */

typedef struct wl_group {
    /* private */
    wl_loop *loop_;
    wl_qnode members_;
    size_t live_;
    int first_error_;
    int failed_;
    wl_waiter *waiter_;
} wl_group;

WL_API void wl_group_init(wl_group *g, wl_loop *loop /* NULL = current */);

/* Spawns a member task. *out (optional) stays valid until wl_group_wait
 * returns and must not be awaited or detached. Returns 0 or UV_ENOMEM. */
WL_API int wl_group_spawn(wl_group *g, wl_task **out, const char *name, wl_task_fn fn, void *arg);

/* Waits until every member has finished. The first member to fail (status
 * neither 0 nor WL_ECANCELED) cancels all the others; the call still waits
 * for them to unwind and returns that first error; 0 if none failed. If the
 * caller is cancelled or times out, every member is cancelled and awaited and
 * WL_ECANCELED / WL_ETIMEDOUT is returned. Frees the members. */
WL_API int wl_group_wait(wl_group *g);

/* ---- semaphores -------------------------------------------------------- */

typedef struct wl_sem {
    /* private */
    long count_;
    wl_qnode waiters_; /* FIFO of waiting tasks */
} wl_sem;

WL_API void wl_sem_init(wl_sem *s, long count);
/* Takes one unit, waiting (FIFO) while none is free. Returns 0 or
 * WL_ECANCELED / WL_ETIMEDOUT (then no unit was taken). */
WL_API int wl_sem_acquire(wl_sem *s);
/* Returns one unit, handing it to the longest waiter if any. */
WL_API void wl_sem_release(wl_sem *s);

/* ---- awaitable I/O (each must be called from a task) -------------------- */

/* Files, over uv_fs_*: return what the syscall returns (fd, byte count, 0)
 * or a negative error. offset < 0 means the current file position. */
WL_API int wl_fs_open(const char *path, int flags, int mode);
WL_API ssize_t wl_fs_read(int fd, void *buf, size_t len, int64_t offset);
WL_API ssize_t wl_fs_write(int fd, const void *buf, size_t len, int64_t offset);
WL_API int wl_fs_fsync(int fd);
WL_API int wl_fs_close(int fd);

/* Name resolution (uv_getaddrinfo). On success *res must be released with
 * uv_freeaddrinfo(). */
WL_API int wl_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                          struct addrinfo **res);

/* TCP. wl_tcp_connect initialises *tcp on the current loop and connects it;
 * on failure *tcp is already closed. */
WL_API int wl_tcp_connect(uv_tcp_t *tcp, const struct sockaddr *addr);
/* Reads what is available, up to len bytes, waiting for at least one.
 * Returns the byte count, 0 at end of stream, or a negative error. Uses
 * stream->data during the call. */
WL_API ssize_t wl_read(uv_stream_t *stream, void *buf, size_t len);
/* Writes all len bytes. Returns 0 or a negative error. */
WL_API int wl_write(uv_stream_t *stream, const void *buf, size_t len);
/* Closes any handle and waits for its close callback (never interrupted). */
WL_API void wl_close(uv_handle_t *handle);

/* A listening TCP socket whose connections are taken with wl_accept. */
typedef struct wl_listener {
    uv_tcp_t tcp;
    /* private */
    int pending_;
    int error_;
    wl_waiter *waiter_;
} wl_listener;

/* Initialises, binds and listens on the current loop. Returns 0 or an error
 * (then the listener is already closed). */
WL_API int wl_listen(wl_listener *l, const struct sockaddr *addr, int backlog);
/* The bound port (host order), or a negative error. */
WL_API int wl_listener_port(wl_listener *l);
/* Waits for a connection and accepts it into *client (initialised here).
 * Returns 0 or an error (then *client is not initialised). */
WL_API int wl_accept(wl_listener *l, uv_tcp_t *client);
/* Closes the listener; a task waiting in wl_accept gets UV_ECANCELED. */
WL_API void wl_listener_close(wl_listener *l);

/* Message for any code returned here (libuv's for UV_E* codes). */
WL_API const char *wl_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif
