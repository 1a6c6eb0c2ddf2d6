/*
 * wlprof/pools.h -- a dedicated thread pool and a crash-safe process pool,
 * both completing on a libuv loop.
 *
 * Thread pool (wl_tpool): for blocking calls (to_thread). Its own threads,
 * not libuv's shared four: long blocking jobs here never starve libuv's file
 * system and DNS work. Bounded queue (submit fails with -EAGAIN when full),
 * threads started lazily and woken one per queued job, results delivered to
 * the loop through one coalesced uv_async_t. A cancelled queued job never
 * runs.
 *
 * Process pool (wl_ppool): for CPU-bound work (run_in_executor). Worker
 * processes are forked once and reused; a job is a function NAME from a
 * process-wide registry plus a byte payload, the result is bytes (a JSON
 * helper wraps both ends with jansson). Frames travel over one socketpair
 * per worker, watched by the loop; each worker holds a small window of jobs
 * sent ahead. A worker that dies fails only the job it was running, with an
 * error naming the signal, and is replaced; the jobs it had not started are
 * re-queued.
 *
 * Model (as libuv): the caller allocates pools and requests and keeps them
 * alive until their callback has run; every function is called from the
 * loop thread only, unless said otherwise; every callback runs on the loop
 * thread. Errors are 0 or a negative errno (UV_E* codes are the same values
 * on Linux). docs/pools.md has the full semantics.
 */
#ifndef WLPROF_POOLS_H
#define WLPROF_POOLS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>
#include <jansson.h>

#include "wlprof/bytes.h"
#include "wlprof/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Thread pool                                                          */
/* ------------------------------------------------------------------ */

typedef struct wl_tpool wl_tpool;
typedef struct wl_tpool_req wl_tpool_req;
typedef struct wl_tpool_thread wl_tpool_thread;

/* Runs on a pool thread; its return value lands in req->result. */
typedef void *(*wl_tpool_fn)(void *arg);
/* Runs on the loop thread. status: 0 (fn ran, req->result is its value)
 * or -ECANCELED (the job was cancelled before it started; fn never ran). */
typedef void (*wl_tpool_done_cb)(wl_tpool_req *req, int status);
typedef void (*wl_tpool_close_cb)(wl_tpool *pool);

typedef enum {
    WL_POOL_CLOSE_WAIT = 0, /* run every queued job, then close */
    WL_POOL_CLOSE_CANCEL,   /* cancel queued jobs; wait for the running ones */
} wl_pool_close_mode;

typedef struct wl_tpool_opts {
    unsigned threads;   /* max threads; 0 = 4 x online CPUs */
    unsigned max_queue; /* max jobs waiting for a thread; 0 = 65536 */
    size_t stack_size;  /* per thread; 0 = the system default */
} wl_tpool_opts;

struct wl_tpool_req {
    void *data;   /* user slot, untouched by the pool */
    void *result; /* fn's return value, valid in done_cb when status == 0 */
    /* private */
    wl_tpool *pool_;
    wl_tpool_fn fn_;
    void *arg_;
    wl_tpool_done_cb done_;
    wl_qnode qnode_; /* in pool_->queue_, ->stagedq_ or ->doneq_ */
    int state_;
    int status_;
};

struct wl_tpool {
    void *data; /* user slot */
    /* private: see pools/threadpool.c */
    uv_loop_t *loop_;
    uv_async_t async_;
    pthread_mutex_t mu_;
    pthread_attr_t attr_;
    wl_tpool_thread *threads_; /* array of max threads */
    wl_tpool_thread *idle_;    /* stack of parked threads */
    unsigned max_threads_;
    unsigned nthreads_; /* started */
    unsigned nexited_;  /* exited after close */
    unsigned max_queue_;
    unsigned queued_;
    unsigned outstanding_; /* submitted, done_cb not yet run */
    wl_qnode queue_;       /* pending FIFO (wl_tpool_req.qnode_) */
    wl_qnode doneq_;       /* finished, waiting for the loop */
    wl_qnode stagedq_;     /* submitted from a done_cb, loop thread only */
    unsigned staged_;      /* jobs in stagedq_ */
    unsigned waking_;          /* threads signalled or started, not yet looking for work */
    unsigned long wakeups_;    /* parked threads signalled, ever */
    int delivering_;           /* on_async is running done_cbs */
    int async_pending_;
    int closing_;
    int stopping_;
    wl_tpool_close_cb close_cb_;
};

/* Initialises *pool on loop. No thread is started until work arrives.
 * opts may be NULL for defaults. Returns 0 or a negative errno; on error
 * nothing needs closing. The pool keeps the loop alive only while jobs
 * are outstanding (or while it closes), like uv_queue_work; it must still
 * be closed with wl_tpool_close before the loop is closed. */
WL_API int wl_tpool_init(uv_loop_t *loop, wl_tpool *pool, const wl_tpool_opts *opts);

/* Queues fn(arg) to run on a pool thread; done is called on the loop when
 * it has run or was cancelled. req is borrowed until done runs (the caller
 * owns its memory; it may free it in done). Returns 0, -EAGAIN when the
 * queue already holds max_queue jobs (backpressure: retry after some
 * done_cb), -ESHUTDOWN after wl_tpool_close, -EINVAL on a NULL argument. */
WL_API int wl_tpool_submit(wl_tpool *pool, wl_tpool_req *req, wl_tpool_fn fn, void *arg,
                           wl_tpool_done_cb done);

/* Cancels a job that has not started: it is taken off the queue, will
 * never run, and its done_cb is called later on the loop with -ECANCELED.
 * Returns 0, or -EBUSY when the job is running or already finished (its
 * done_cb then reports the real result; threads are never interrupted). */
WL_API int wl_tpool_cancel(wl_tpool_req *req);

/* Starts closing: no more submits. WL_POOL_CLOSE_WAIT runs every queued
 * job; WL_POOL_CLOSE_CANCEL cancels the queued ones (-ECANCELED). Every
 * outstanding done_cb runs, the threads are joined, then close_cb (may be
 * NULL) runs; after it the pool memory may be freed. Returns 0, or -EINVAL
 * if already closing. */
WL_API int wl_tpool_close(wl_tpool *pool, wl_pool_close_mode mode, wl_tpool_close_cb close_cb);

/* Threads started so far (for tests and reports). */
WL_API unsigned wl_tpool_threads(const wl_tpool *pool);

/* Parked threads woken so far (for tests and reports): at most one per job,
 * and none for a job a thread already on its way will take. */
WL_API unsigned long wl_tpool_wakeups(const wl_tpool *pool);

/* ------------------------------------------------------------------ */
/* Process pool                                                        */
/* ------------------------------------------------------------------ */

/* A job function, run inside a worker process. in/inlen is the payload
 * (borrowed). Appends the result to *out (empty on entry; the worker frees
 * it). Returns 0, or a negative errno: then *out, if not empty, is an error
 * message for req->error. */
typedef int (*wl_ppool_fn)(const void *in, size_t inlen, wl_bytes *out);
/* JSON flavour: args is borrowed; on success store a new reference in
 * *result (the worker steals it). Same return convention. */
typedef int (*wl_ppool_json_fn)(json_t *args, json_t **result);

/* Registers fn under name (<= 63 bytes) in the process-wide registry.
 * Workers see what was registered before they were forked: register
 * everything before wl_ppool_init. Returns 0, -EEXIST, -ENAMETOOLONG,
 * -ENOSPC (64 entries), -EINVAL. Not thread-safe. */
WL_API int wl_ppool_register(const char *name, wl_ppool_fn fn);
WL_API int wl_ppool_register_json(const char *name, wl_ppool_json_fn fn);

typedef struct wl_ppool wl_ppool;
typedef struct wl_ppool_req wl_ppool_req;
typedef struct wl_pworker wl_pworker;

/* Runs on the loop. status 0: req->result holds the result bytes.
 * Otherwise a negative errno and req->error says why:
 *  -ECHILD     the worker died while running the job ("worker 1234 killed
 *              by SIGSEGV", "... exited with status 3"); req->term_signal
 *  -ETIMEDOUT  the job exceeded its timeout; the worker was killed
 *  -ECANCELED  cancelled (queued: never ran; running: worker killed)
 *  -ENOENT     no function of that name in the worker's registry
 *  -EMSGSIZE   payload or result larger than 1 GiB
 *  other       the job function's own negative return value
 * Either way, release req->result with wl_ppool_req_cleanup. */
typedef void (*wl_ppool_done_cb)(wl_ppool_req *req, int status);
typedef void (*wl_ppool_close_cb)(wl_ppool *pool);

typedef struct wl_ppool_opts {
    unsigned workers;             /* 0 = online CPUs */
    unsigned max_jobs_per_worker; /* recycle a worker after N jobs; 0 = never */
    unsigned job_timeout_ms;      /* default per-job timeout; 0 = none */
} wl_ppool_opts;

struct wl_ppool_req {
    void *data;       /* user slot */
    int status;       /* as passed to done_cb */
    wl_bytes result;  /* result bytes (owned by req, see cleanup) */
    pid_t worker_pid; /* worker that ran the job, 0 if none */
    char node[64];    /* remote pools: node of that worker, else "" */
    int term_signal;  /* signal that killed that worker, else 0 */
    char error[128];  /* message when status != 0 */
    /* private */
    wl_ppool *pool_;
    wl_qnode qnode_; /* in pool_->queue_ or pool_->deferredq_ */
    wl_ppool_done_cb done_;
    wl_pworker *worker_;
    uint8_t *frame_; /* header + name + payload, owned */
    size_t frame_len_;
    unsigned timeout_ms_;
    unsigned slot_; /* window slot in worker_ while sent */
    int state_;
};

struct wl_ppool {
    void *data; /* user slot */
    /* private: see pools/procpool.c */
    uv_loop_t *loop_;
    uv_signal_t sigchld_;
    uv_async_t deferred_; /* runs callbacks of cancelled queued jobs */
    uv_timer_t kill_timer_;
    uv_idle_t spin_;        /* keeps the loop polling briefly after a send */
    uint64_t spin_until_;   /* uv_hrtime() when spin_ stops */
    wl_qnode workers_;    /* every worker not yet reaped, newest first */
    unsigned target_;     /* wanted serving workers */
    unsigned serving_;    /* workers that take jobs (not retiring/killed) */
    unsigned max_jobs_;
    unsigned timeout_ms_;
    wl_qnode queue_;      /* queued jobs, FIFO */
    wl_qnode deferredq_;  /* cancelled, callback pending */
    unsigned busy_;        /* workers with jobs in flight */
    int in_reply_;         /* inside reply callbacks: batch the sends */
    unsigned outstanding_; /* submitted, done_cb not yet run */
    unsigned whandles_;    /* open worker handles */
    int spawn_error_;
    int closing_;
    int handles_; /* open handles, for close */
    unsigned long respawns_;
    wl_ppool_close_cb close_cb_;
    /* remote pools only (wl_ppool_init_remote) */
    int remote_;
    int listen_fd_;
    int port_;
    uv_poll_t listen_;
    uv_timer_t heartbeat_;
    char *token_;
    unsigned heartbeat_timeout_ms_;
    void (*remote_cb_)(wl_ppool *pool, const char *node, int pid, int joined);
};

/* Forks the workers (opts NULL = defaults) and starts watching them on
 * loop. Returns 0 or a negative errno (nothing to close then). Workers die
 * with the thread that called this (PR_SET_PDEATHSIG) and on pipe EOF. */
WL_API int wl_ppool_init(uv_loop_t *loop, wl_ppool *pool, const wl_ppool_opts *opts);

/* Queues job name(in) and calls done on the loop when it ends. The payload
 * and name are copied; req is borrowed until done. timeout_ms: 0 = the
 * pool default. Returns 0, -ESHUTDOWN after close, -EMSGSIZE, -ENOMEM,
 * -ENAMETOOLONG, -EINVAL. */
WL_API int wl_ppool_submit(wl_ppool *pool, wl_ppool_req *req, const char *name, const void *in,
                           size_t inlen, unsigned timeout_ms, wl_ppool_done_cb done);
/* Same with args serialised as compact JSON (args borrowed). */
WL_API int wl_ppool_submit_json(wl_ppool *pool, wl_ppool_req *req, const char *name, json_t *args,
                                unsigned timeout_ms, wl_ppool_done_cb done);
/* Parses req->result as JSON: a new reference, or NULL if not JSON. */
WL_API json_t *wl_ppool_req_json(const wl_ppool_req *req);
/* Frees req->result. Call once done_cb has run. */
WL_API void wl_ppool_req_cleanup(wl_ppool_req *req);

/* Cancels a job. Not started (queued, or sent ahead to a worker): it never
 * runs. Running: its worker is killed and replaced. done_cb then runs
 * (later, on the loop) with -ECANCELED.
 * Returns 0, or -EBUSY if the job has already finished. */
WL_API int wl_ppool_cancel(wl_ppool_req *req);

/* Closes the pool. WL_POOL_CLOSE_WAIT: queued and running jobs complete.
 * WL_POOL_CLOSE_CANCEL: queued jobs cancelled, running ones killed (both
 * -ECANCELED). Then the workers get EOF and exit (SIGKILL after 2 s), are
 * reaped, and close_cb (may be NULL) runs. Returns 0 or -EINVAL. */
WL_API int wl_ppool_close(wl_ppool *pool, wl_pool_close_mode mode, wl_ppool_close_cb close_cb);

/* Fills pids with up to max worker pids (serving or not yet reaped);
 * returns how many there are. */
WL_API int wl_ppool_worker_pids(const wl_ppool *pool, pid_t *pids, int max);
/* Workers forked to replace dead, timed-out or recycled ones. */
WL_API unsigned long wl_ppool_respawns(const wl_ppool *pool);

/* ------------------------------------------------------------------ */
/* Process pool over TCP: workers on other machines                     */
/* ------------------------------------------------------------------ */

/* A remote pool forks nothing: it listens on TCP and serves the workers
 * that connect and present its token (wl_ppool_worker_run, e.g. started on
 * every node of a Slurm allocation by srun). Jobs, replies, timeouts,
 * cancellation and close are those of a local pool, with three
 * differences: a worker holds one job at a time (no shared memory to take
 * back an unstarted job, so none is sent ahead); a worker is lost when its
 * connection closes or it sends no heartbeat for heartbeat_timeout_ms, and
 * then only the job it was running fails (-ECHILD, "worker on NODE lost:
 * ..."); and a lost worker is not replaced by the pool (its node's own
 * wl_ppool_worker_run may reconnect a new one). Jobs submitted while no
 * worker is connected wait in the queue. */
typedef struct wl_ppool_remote_opts {
    const char *host;              /* address to listen on; NULL = every address */
    int port;                      /* 0 = any free port (wl_ppool_remote_port) */
    const char *token;             /* secret a worker must present, 16-255 bytes */
    unsigned heartbeat_timeout_ms; /* silent this long = lost; 0 = 5000 */
    /* Called on the loop when a worker joins (1) or is lost/leaves (0);
     * may be NULL. node and pid are the worker's own words. */
    void (*worker_cb)(wl_ppool *pool, const char *node, int pid, int joined);
} wl_ppool_remote_opts;

/* Starts listening (opts: job timeout; workers and recycling are ignored).
 * Returns 0 or a negative errno (-EINVAL: bad token; bind errors). */
WL_API int wl_ppool_init_remote(uv_loop_t *loop, wl_ppool *pool, const wl_ppool_opts *opts,
                                const wl_ppool_remote_opts *ropts);
/* The TCP port the pool listens on. */
WL_API int wl_ppool_remote_port(const wl_ppool *pool);
/* Workers taking jobs now (local or remote). */
WL_API unsigned wl_ppool_serving(const wl_ppool *pool);

/* The worker side: connects to a remote pool and serves its jobs with the
 * functions registered in this process (wl_ppool_register) until the pool
 * closes. slots connections are served at once, each by a forked process;
 * one that dies (a job crashed it) is replaced by a new connection, so a
 * crash costs one job, not the node's share of the batch. Each serving
 * process sends a heartbeat every second and, when the pool goes away
 * mid-job, kills the job's process group (wl_ppool_worker_track_pgid) and
 * exits. */
typedef struct wl_ppool_worker_opts {
    const char *host;            /* the pool's address */
    int port;
    const char *token;           /* its secret */
    const char *node;            /* this node's name, for the pool's reports */
    unsigned slots;              /* connections served at once; 0 = 1 */
    unsigned connect_timeout_ms; /* keep trying this long; 0 = 10000 */
} wl_ppool_worker_opts;

/* Returns 0 when the pool closed every connection normally, or a negative
 * errno (err says why: cannot connect, token refused). Call from a
 * single-threaded process. */
WL_API int wl_ppool_worker_run(const wl_ppool_worker_opts *o, char *err, size_t errlen);
/* A job function that starts a process group (a shell command) names it
 * here while it runs (0 when done), so it is killed if the pool vanishes. */
WL_API void wl_ppool_worker_track_pgid(pid_t pgid);

/* ------------------------------------------------------------------ */
/* Coroutine awaits (wlprof/sched.h tasks; pools/await.c)              */
/* ------------------------------------------------------------------ */

/* asyncio.to_thread: runs fn(arg) on pool and suspends the calling task
 * until it returns; the loop serves other tasks meanwhile. Call from a
 * task of the loop the pool was created on. Returns 0, -EAGAIN (queue
 * full), -ESHUTDOWN, -EINVAL (not in a task, other loop), -ENOMEM, or the
 * interruption: WL_ECANCELED / WL_ETIMEDOUT. Interrupted while queued, fn
 * never runs and the call returns at once; interrupted while running, the
 * call waits for fn to return (threads are not interruptible). *result
 * (may be NULL) receives fn's value whenever fn ran, even on interruption,
 * so the caller can release it; otherwise NULL. */
WL_API int wl_to_thread(wl_tpool *pool, wl_tpool_fn fn, void *arg, void **result);

/* run_in_executor on a process pool: runs job `name` on in/inlen (copied)
 * and suspends the task until it ends. On 0, *out (may be NULL) receives
 * the result bytes, owned by the caller (wl_bytes_free). On failure the
 * status is as for wl_ppool_done_cb (-ECHILD, -ETIMEDOUT, ...) and err
 * (may be NULL) receives the message, e.g. "worker 1234 killed by
 * SIGSEGV". Interruption (WL_ECANCELED / WL_ETIMEDOUT) cancels the job: a
 * queued one never runs, a running one's worker is killed and replaced;
 * the call returns within a loop turn. timeout_ms: 0 = pool default. */
WL_API int wl_run_in_process(wl_ppool *pool, const char *name, const void *in, size_t inlen,
                             unsigned timeout_ms, wl_bytes *out, char *err, size_t errlen);

/* Same with JSON: args borrowed; on 0, *result is a new reference. A
 * result that is not JSON gives -EPROTO. */
WL_API int wl_run_in_process_json(wl_ppool *pool, const char *name, json_t *args,
                                  unsigned timeout_ms, json_t **result, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
