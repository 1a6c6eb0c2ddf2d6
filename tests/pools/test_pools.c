/*
 * test_pools.c -- specification of the thread pool and the process pool
 * (include/wlprof/pools.h): results, errors, backpressure, cancellation,
 * timeouts, crash-and-respawn, shutdown without zombies, and workers that
 * die with their parent. Real threads, real processes, real signals; /proc
 * is read to prove that no worker is left behind.
 */
#include "testutil.h"
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "wlprof/pools.h"
#include "wlprof/sched.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ===================================================================== */
/* Thread pool                                                            */
/* ===================================================================== */

typedef struct tjob {
    wl_tpool_req req;
    long in;
    int ran;    /* set by the job function (on the pool thread) */
    int status; /* set by done_cb */
    int done;
} tjob;

static sem_t started; /* posted by blocking jobs when they begin */
static sem_t release; /* blocking jobs wait on it */
static int done_count;

static void *double_it(void *arg)
{
    tjob *j = arg;
    j->ran = 1;
    return (void *)(j->in * 2);
}

static void *block_until_released(void *arg)
{
    tjob *j = arg;
    j->ran = 1;
    sem_post(&started);
    while (sem_wait(&release) < 0 && errno == EINTR) {
    }
    return NULL;
}

static void *sleep_200ms(void *arg)
{
    tjob *j = arg;
    j->ran = 1;
    usleep(200 * 1000);
    return NULL;
}

static void tjob_done(wl_tpool_req *req, int status)
{
    tjob *j = req->data;
    j->status = status;
    j->done++;
    done_count++;
}

static void tjob_submit(wl_tpool *pool, tjob *j, wl_tpool_fn fn)
{
    j->req.data = j;
    ck_assert_int_eq(wl_tpool_submit(pool, &j->req, fn, j, tjob_done), 0);
}

static void tpool_setup(void)
{
    sem_init(&started, 0, 0);
    sem_init(&release, 0, 0);
    done_count = 0;
}

static int tpool_closed;
static void on_tpool_closed(wl_tpool *pool)
{
    tpool_closed++;
}

/* Waits (blocking, not through the loop) until n blocking jobs started. */
static void wait_started(int n)
{
    for (int i = 0; i < n; i++)
        while (sem_wait(&started) < 0 && errno == EINTR) {
        }
}

START_TEST(test_tpool_delivers_every_result_on_the_loop)
{
    uv_loop_t loop;
    wl_tpool pool;
    wl_tpool_opts opts = {.threads = 3};
    tjob jobs[200];

    uv_loop_init(&loop);
    ck_assert_int_eq(wl_tpool_init(&loop, &pool, &opts), 0);
    memset(jobs, 0, sizeof(jobs));
    for (int i = 0; i < 200; i++) {
        jobs[i].in = i;
        tjob_submit(&pool, &jobs[i], double_it);
    }
    uv_run(&loop, UV_RUN_DEFAULT); /* returns once every job is delivered */
    for (int i = 0; i < 200; i++) {
        ck_assert_int_eq(jobs[i].done, 1);
        ck_assert_int_eq(jobs[i].status, 0);
        ck_assert_int_eq((long)jobs[i].req.result, 2L * i);
    }
    ck_assert_uint_le(wl_tpool_threads(&pool), 3);
    ck_assert_int_eq(wl_tpool_close(&pool, WL_POOL_CLOSE_WAIT, on_tpool_closed), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(tpool_closed, 1);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_tpool_blocking_jobs_overlap)
{
    uv_loop_t loop;
    wl_tpool pool;
    tjob jobs[8];
    double t0;
    double elapsed;

    uv_loop_init(&loop);
    ck_assert_int_eq(wl_tpool_init(&loop, &pool, NULL), 0); /* default 4 x cpus >= 8 */
    memset(jobs, 0, sizeof(jobs));
    t0 = now_ms();
    for (int i = 0; i < 8; i++)
        tjob_submit(&pool, &jobs[i], sleep_200ms);
    uv_run(&loop, UV_RUN_DEFAULT);
    elapsed = now_ms() - t0;
    ck_assert_int_eq(done_count, 8);
    /* Sequentially 1600 ms; overlapped about 200 ms. */
    ck_assert_msg(elapsed < 900, "8 x 200 ms sleeps took %.0f ms", elapsed);
    wl_tpool_close(&pool, WL_POOL_CLOSE_WAIT, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_tpool_starts_one_thread_per_concurrent_job)
{
    uv_loop_t loop;
    wl_tpool pool;
    wl_tpool_opts opts = {.threads = 16};
    tjob jobs[3];
    tjob seq;

    uv_loop_init(&loop);
    wl_tpool_init(&loop, &pool, &opts);
    ck_assert_uint_eq(wl_tpool_threads(&pool), 0);
    /* One job at a time: the same thread serves them all. */
    for (int i = 0; i < 20; i++) {
        memset(&seq, 0, sizeof(seq));
        tjob_submit(&pool, &seq, double_it);
        uv_run(&loop, UV_RUN_DEFAULT);
        ck_assert_int_eq(seq.done, 1);
    }
    ck_assert_uint_eq(wl_tpool_threads(&pool), 1);
    /* Three jobs blocked at once need exactly three threads. */
    memset(jobs, 0, sizeof(jobs));
    for (int i = 0; i < 3; i++)
        tjob_submit(&pool, &jobs[i], block_until_released);
    wait_started(3);
    ck_assert_uint_eq(wl_tpool_threads(&pool), 3);
    for (int i = 0; i < 3; i++)
        sem_post(&release);
    uv_run(&loop, UV_RUN_DEFAULT);
    wl_tpool_close(&pool, WL_POOL_CLOSE_WAIT, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_tpool_cancelled_queued_job_never_runs)
{
    uv_loop_t loop;
    wl_tpool pool;
    wl_tpool_opts opts = {.threads = 1};
    tjob a;
    tjob b;
    tjob c;

    uv_loop_init(&loop);
    wl_tpool_init(&loop, &pool, &opts);
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    memset(&c, 0, sizeof(c));
    tjob_submit(&pool, &a, block_until_released);
    wait_started(1); /* a holds the only thread */
    tjob_submit(&pool, &b, double_it);
    tjob_submit(&pool, &c, double_it);
    ck_assert_int_eq(wl_tpool_cancel(&b.req), 0);
    ck_assert_int_eq(wl_tpool_cancel(&a.req), -EBUSY); /* running: not interruptible */
    sem_post(&release);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(a.status, 0);
    ck_assert_int_eq(b.status, -ECANCELED);
    ck_assert_int_eq(b.done, 1);
    ck_assert_int_eq(b.ran, 0);
    ck_assert_int_eq(c.status, 0);
    ck_assert_int_eq(c.ran, 1);
    ck_assert_int_eq(wl_tpool_cancel(&c.req), -EBUSY); /* finished */
    wl_tpool_close(&pool, WL_POOL_CLOSE_WAIT, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_tpool_full_queue_pushes_back)
{
    uv_loop_t loop;
    wl_tpool pool;
    wl_tpool_opts opts = {.threads = 1, .max_queue = 2};
    tjob jobs[4];

    uv_loop_init(&loop);
    wl_tpool_init(&loop, &pool, &opts);
    memset(jobs, 0, sizeof(jobs));
    tjob_submit(&pool, &jobs[0], block_until_released);
    wait_started(1);
    tjob_submit(&pool, &jobs[1], double_it);
    tjob_submit(&pool, &jobs[2], double_it);
    jobs[3].req.data = &jobs[3];
    ck_assert_int_eq(wl_tpool_submit(&pool, &jobs[3].req, double_it, &jobs[3], tjob_done), -EAGAIN);
    sem_post(&release);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(done_count, 3);
    ck_assert_int_eq(jobs[3].ran, 0);
    /* Room again once the queue drained. */
    tjob_submit(&pool, &jobs[3], double_it);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(jobs[3].done, 1);
    wl_tpool_close(&pool, WL_POOL_CLOSE_WAIT, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_tpool_close_cancel_drops_queue_and_waits_running)
{
    uv_loop_t loop;
    wl_tpool pool;
    wl_tpool_opts opts = {.threads = 1};
    tjob jobs[4];
    tjob late;

    uv_loop_init(&loop);
    wl_tpool_init(&loop, &pool, &opts);
    memset(jobs, 0, sizeof(jobs));
    tjob_submit(&pool, &jobs[0], block_until_released);
    wait_started(1);
    for (int i = 1; i < 4; i++)
        tjob_submit(&pool, &jobs[i], double_it);
    ck_assert_int_eq(wl_tpool_close(&pool, WL_POOL_CLOSE_CANCEL, on_tpool_closed), 0);
    ck_assert_int_eq(wl_tpool_close(&pool, WL_POOL_CLOSE_CANCEL, on_tpool_closed), -EINVAL);
    memset(&late, 0, sizeof(late));
    ck_assert_int_eq(wl_tpool_submit(&pool, &late.req, double_it, &late, tjob_done), -ESHUTDOWN);
    sem_post(&release);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(tpool_closed, 1);
    ck_assert_int_eq(jobs[0].status, 0);
    for (int i = 1; i < 4; i++) {
        ck_assert_int_eq(jobs[i].status, -ECANCELED);
        ck_assert_int_eq(jobs[i].ran, 0);
        ck_assert_int_eq(jobs[i].done, 1);
    }
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_tpool_close_wait_runs_the_queue)
{
    uv_loop_t loop;
    wl_tpool pool;
    wl_tpool_opts opts = {.threads = 2};
    tjob jobs[50];

    uv_loop_init(&loop);
    wl_tpool_init(&loop, &pool, &opts);
    memset(jobs, 0, sizeof(jobs));
    for (int i = 0; i < 50; i++)
        tjob_submit(&pool, &jobs[i], double_it);
    wl_tpool_close(&pool, WL_POOL_CLOSE_WAIT, on_tpool_closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(tpool_closed, 1);
    for (int i = 0; i < 50; i++) {
        ck_assert_int_eq(jobs[i].status, 0);
        ck_assert_int_eq(jobs[i].ran, 1);
    }
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* Wake-up policy (wl_tpool_wakeups counts parked threads signalled): jobs
 * submitted from a done_cb are staged and reach the threads together when
 * the batch of completions has been delivered -- no thread is woken while
 * the done_cb runs, then at most one per job -- and a single job never
 * wakes more than one of many parked threads. */
static wl_tpool *batch_pool;
static tjob batch_jobs[3];
static tjob batch_cancelled;
static unsigned long wakeups_inside_cb;
static unsigned long wakeups_before_cb;
static int cancel_rc;

static void batch_trigger_done(wl_tpool_req *req, int status)
{
    tjob_done(req, status);
    wakeups_before_cb = wl_tpool_wakeups(batch_pool);
    for (int i = 0; i < 3; i++)
        tjob_submit(batch_pool, &batch_jobs[i], double_it);
    tjob_submit(batch_pool, &batch_cancelled, double_it);
    cancel_rc = wl_tpool_cancel(&batch_cancelled.req); /* staged: still cancellable */
    wakeups_inside_cb = wl_tpool_wakeups(batch_pool);
}

START_TEST(test_tpool_wakes_only_as_many_threads_as_jobs)
{
    uv_loop_t loop;
    wl_tpool pool;
    wl_tpool_opts opts = {.threads = 4};
    tjob warm[4];
    tjob one;
    tjob trigger;

    uv_loop_init(&loop);
    wl_tpool_init(&loop, &pool, &opts);
    batch_pool = &pool;
    /* Four threads exist (four jobs blocked at once), then all park. */
    memset(warm, 0, sizeof(warm));
    for (int i = 0; i < 4; i++)
        tjob_submit(&pool, &warm[i], block_until_released);
    wait_started(4);
    ck_assert_uint_eq(wl_tpool_threads(&pool), 4);
    ck_assert_uint_eq(wl_tpool_wakeups(&pool), 0); /* started, not woken */
    for (int i = 0; i < 4; i++)
        sem_post(&release);
    uv_run(&loop, UV_RUN_DEFAULT);

    /* One job, up to four parked threads: one wake-up. */
    unsigned long w0 = wl_tpool_wakeups(&pool);
    memset(&one, 0, sizeof(one));
    tjob_submit(&pool, &one, double_it);
    ck_assert_uint_le(wl_tpool_wakeups(&pool) - w0, 1); /* 0: a thread had not parked yet */
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(one.done, 1);

    /* Three jobs (and one cancelled) from a done_cb: none woken inside it. */
    memset(batch_jobs, 0, sizeof(batch_jobs));
    memset(&batch_cancelled, 0, sizeof(batch_cancelled));
    memset(&trigger, 0, sizeof(trigger));
    trigger.req.data = &trigger;
    ck_assert_int_eq(wl_tpool_submit(&pool, &trigger.req, double_it, &trigger, batch_trigger_done), 0);
    unsigned long w1 = wl_tpool_wakeups(&pool);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_uint_eq(wakeups_inside_cb, wakeups_before_cb);
    ck_assert_int_eq(cancel_rc, 0);
    ck_assert_int_eq(batch_cancelled.status, -ECANCELED);
    ck_assert_int_eq(batch_cancelled.ran, 0);
    ck_assert_int_eq(batch_cancelled.done, 1);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(batch_jobs[i].done, 1);
        ck_assert_int_eq((long)batch_jobs[i].req.result, 0);
        ck_assert_int_eq(batch_jobs[i].ran, 1);
    }
    /* trigger woke at most one, the batch at most three. */
    ck_assert_uint_le(wl_tpool_wakeups(&pool) - w1, 3);
    ck_assert_uint_le(wakeups_before_cb - w0, 2);
    ck_assert_uint_eq(wl_tpool_threads(&pool), 4);
    wl_tpool_close(&pool, WL_POOL_CLOSE_WAIT, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* Closing from a done_cb with jobs staged by the same batch: WAIT runs
 * them, CANCEL cancels them; both deliver every done_cb once. */
static wl_pool_close_mode staged_close_mode;
static tjob staged_jobs[5];

static void close_from_cb_done(wl_tpool_req *req, int status)
{
    tjob_done(req, status);
    for (int i = 0; i < 5; i++)
        tjob_submit(batch_pool, &staged_jobs[i], double_it);
    ck_assert_int_eq(wl_tpool_close(batch_pool, staged_close_mode, on_tpool_closed), 0);
}

START_TEST(test_tpool_close_from_done_cb_handles_staged_jobs)
{
    uv_loop_t loop;
    wl_tpool pool;
    wl_tpool_opts opts = {.threads = 2};
    tjob first;

    staged_close_mode = _i ? WL_POOL_CLOSE_CANCEL : WL_POOL_CLOSE_WAIT;
    tpool_closed = 0;
    uv_loop_init(&loop);
    wl_tpool_init(&loop, &pool, &opts);
    batch_pool = &pool;
    memset(staged_jobs, 0, sizeof(staged_jobs));
    memset(&first, 0, sizeof(first));
    first.req.data = &first;
    ck_assert_int_eq(wl_tpool_submit(&pool, &first.req, double_it, &first, close_from_cb_done), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(tpool_closed, 1);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(staged_jobs[i].done, 1);
        ck_assert_int_eq(staged_jobs[i].status, _i ? -ECANCELED : 0);
        ck_assert_int_eq(staged_jobs[i].ran, _i ? 0 : 1);
    }
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* ===================================================================== */
/* Process pool                                                           */
/* ===================================================================== */

static int fn_echo(const void *in, size_t inlen, wl_bytes *out)
{
    return wl_bytes_append(out, in, inlen);
}

static int fn_getpid(const void *in, size_t inlen, wl_bytes *out)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%d", (int)getpid());
    return wl_bytes_append(out, buf, (size_t)n);
}

static int fn_segv(const void *in, size_t inlen, wl_bytes *out)
{
    raise(SIGSEGV);
    return 0;
}

static int fn_abort(const void *in, size_t inlen, wl_bytes *out)
{
    abort();
}

static int fn_exit3(const void *in, size_t inlen, wl_bytes *out)
{
    _exit(3);
}

static int fn_sleep_ms(const void *in, size_t inlen, wl_bytes *out)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%.*s", (int)inlen, (const char *)in);
    usleep((useconds_t)atoi(buf) * 1000);
    return wl_bytes_append(out, "slept", 5);
}

static int fn_fail_edom(const void *in, size_t inlen, wl_bytes *out)
{
    wl_bytes_append(out, "bad domain", 10);
    return -EDOM;
}

static int fn_touch(const void *in, size_t inlen, wl_bytes *out)
{
    char path[256];
    int fd;
    snprintf(path, sizeof(path), "%.*s", (int)inlen, (const char *)in);
    fd = open(path, O_CREAT | O_WRONLY, 0600);
    if (fd < 0)
        return -errno;
    close(fd);
    return 0;
}

/* Appends one line to the file named by the payload: counts the runs. */
static int fn_append(const void *in, size_t inlen, wl_bytes *out)
{
    char path[256];
    int fd;
    snprintf(path, sizeof(path), "%.*s", (int)inlen, (const char *)in);
    fd = open(path, O_CREAT | O_WRONLY | O_APPEND, 0600);
    if (fd < 0)
        return -errno;
    if (write(fd, "x\n", 2) != 2) {
        close(fd);
        return -EIO;
    }
    close(fd);
    return 0;
}

static int fn_sum(json_t *args, json_t **result)
{
    json_int_t sum = 0;
    size_t i;
    json_t *v;

    if (!json_is_array(args))
        return -EINVAL;
    json_array_foreach(args, i, v) sum += json_integer_value(v);
    *result = json_pack("{sI}", "sum", sum);
    return 0;
}

static void ppool_setup(void)
{
    /* Fork mode gives every test a fresh registry; -EEXIST is fine
     * when the suite runs with CK_FORK=no. */
    wl_ppool_register("echo", fn_echo);
    wl_ppool_register("getpid", fn_getpid);
    wl_ppool_register("segv", fn_segv);
    wl_ppool_register("abort", fn_abort);
    wl_ppool_register("exit3", fn_exit3);
    wl_ppool_register("sleep_ms", fn_sleep_ms);
    wl_ppool_register("fail_edom", fn_fail_edom);
    wl_ppool_register("touch", fn_touch);
    wl_ppool_register("append", fn_append);
    wl_ppool_register_json("sum", fn_sum);
    done_count = 0;
}

typedef struct pjob {
    wl_ppool_req req;
    int status;
    int done;
    int keep; /* keep req.result after the callback */
    char out[64];
} pjob;

static void pjob_done(wl_ppool_req *req, int status)
{
    pjob *j = req->data;
    j->status = status;
    j->done++;
    snprintf(j->out, sizeof(j->out), "%.*s", (int)req->result.len, (const char *)req->result.data);
    if (!j->keep)
        wl_ppool_req_cleanup(req);
    done_count++;
}

static void pjob_submit(wl_ppool *pool, pjob *j, const char *name, const char *arg,
                        unsigned timeout_ms)
{
    memset(j, 0, sizeof(*j));
    j->req.data = j;
    ck_assert_int_eq(
        wl_ppool_submit(pool, &j->req, name, arg, arg ? strlen(arg) : 0, timeout_ms, pjob_done), 0);
    ck_assert_ptr_eq(j->req.data, j);
}

static int ppool_closed;
static void on_ppool_closed(wl_ppool *pool)
{
    ppool_closed++;
}

/* State letter of pid from /proc/PID/stat, or 0 if there is no such pid. */
static char proc_state(pid_t pid, pid_t *ppid)
{
    char path[64];
    char buf[512];
    FILE *f;
    char *p;
    char state = 0;
    int pp = 0;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return 0;
    if (fgets(buf, sizeof(buf), f)) {
        p = strrchr(buf, ')');
        if (p && sscanf(p + 2, "%c %d", &state, &pp) == 2 && ppid)
            *ppid = pp;
    }
    fclose(f);
    return state;
}

/* Children of this process that still exist (any state), from /proc. */
static int count_children(void)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d))) {
        pid_t pid = atoi(e->d_name);
        pid_t ppid = 0;
        if (pid > 0 && proc_state(pid, &ppid) && ppid == getpid())
            n++;
    }
    closedir(d);
    return n;
}

static void ppool_close_and_run(uv_loop_t *loop, wl_ppool *pool, wl_pool_close_mode mode)
{
    ppool_closed = 0;
    ck_assert_int_eq(wl_ppool_close(pool, mode, on_ppool_closed), 0);
    uv_run(loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(ppool_closed, 1);
}

START_TEST(test_ppool_runs_named_functions_in_worker_processes)
{
    uv_loop_t loop;
    wl_ppool pool;
    wl_ppool_opts opts = {.workers = 2};
    pid_t pids[8];
    pjob jobs[40];
    char arg[32];

    uv_loop_init(&loop);
    ck_assert_int_eq(wl_ppool_init(&loop, &pool, &opts), 0);
    ck_assert_int_eq(wl_ppool_worker_pids(&pool, pids, 8), 2);
    for (int i = 0; i < 40; i++) {
        snprintf(arg, sizeof(arg), "job-%d", i);
        pjob_submit(&pool, &jobs[i], i % 2 ? "echo" : "getpid", arg, 0);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 40; i++) {
        ck_assert_int_eq(jobs[i].status, 0);
        ck_assert_int_eq(jobs[i].done, 1);
        ck_assert(jobs[i].req.worker_pid == pids[0] || jobs[i].req.worker_pid == pids[1]);
        if (i % 2) {
            snprintf(arg, sizeof(arg), "job-%d", i);
            ck_assert_str_eq(jobs[i].out, arg);
        } else {
            ck_assert_int_eq(atoi(jobs[i].out), jobs[i].req.worker_pid);
            ck_assert_int_ne(atoi(jobs[i].out), getpid());
        }
        wl_ppool_req_cleanup(&jobs[i].req);
    }
    ppool_close_and_run(&loop, &pool, WL_POOL_CLOSE_WAIT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_ppool_large_payload_round_trips)
{
    uv_loop_t loop;
    wl_ppool pool;
    wl_ppool_opts opts = {.workers = 1};
    size_t len = 8u << 20; /* far above the socket buffer: partial writes */
    uint8_t *buf = malloc(len);
    wl_ppool_req req;
    pjob j;

    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(i * 7 + 3);
    uv_loop_init(&loop);
    ck_assert_int_eq(wl_ppool_init(&loop, &pool, &opts), 0);
    memset(&j, 0, sizeof(j));
    j.keep = 1;
    req.data = &j;
    ck_assert_int_eq(wl_ppool_submit(&pool, &req, "echo", buf, len, 0, pjob_done), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(j.status, 0);
    ck_assert_uint_eq(req.result.len, len);
    ck_assert(memcmp(req.result.data, buf, len) == 0);
    wl_ppool_req_cleanup(&req);
    free(buf);
    ppool_close_and_run(&loop, &pool, WL_POOL_CLOSE_WAIT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_ppool_json_helper_round_trips)
{
    uv_loop_t loop;
    wl_ppool pool;
    wl_ppool_opts opts = {.workers = 1};
    json_t *args = json_pack("[iii]", 40, 2, 100);
    json_t *res;
    pjob j;
    pjob bad;

    uv_loop_init(&loop);
    wl_ppool_init(&loop, &pool, &opts);
    memset(&j, 0, sizeof(j));
    j.keep = 1;
    j.req.data = &j;
    ck_assert_int_eq(wl_ppool_submit_json(&pool, &j.req, "sum", args, 0, pjob_done), 0);
    json_decref(args);
    pjob_submit(&pool, &bad, "sum", "not json", 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(j.status, 0);
    res = wl_ppool_req_json(&j.req);
    ck_assert_ptr_nonnull(res);
    ck_assert_int_eq(json_integer_value(json_object_get(res, "sum")), 142);
    json_decref(res);
    ck_assert_int_eq(bad.status, -EINVAL);
    ck_assert_str_eq(bad.req.error, "payload is not JSON");
    wl_ppool_req_cleanup(&j.req);
    wl_ppool_req_cleanup(&bad.req);
    ppool_close_and_run(&loop, &pool, WL_POOL_CLOSE_WAIT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_ppool_errors_are_values_with_messages)
{
    uv_loop_t loop;
    wl_ppool pool;
    wl_ppool_opts opts = {.workers = 1};
    pjob missing;
    pjob failing;
    wl_ppool_req req;
    char name[80];

    uv_loop_init(&loop);
    wl_ppool_init(&loop, &pool, &opts);
    pjob_submit(&pool, &missing, "no_such_fn", "x", 0);
    pjob_submit(&pool, &failing, "fail_edom", NULL, 0);
    memset(&req, 0, sizeof(req));
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = 0;
    ck_assert_int_eq(wl_ppool_submit(&pool, &req, name, "x", 1, 0, pjob_done), -ENAMETOOLONG);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(missing.status, -ENOENT);
    ck_assert_str_eq(missing.req.error, "no function 'no_such_fn' registered");
    ck_assert_int_eq(failing.status, -EDOM);
    ck_assert_str_eq(failing.req.error, "bad domain");
    ck_assert_int_eq(wl_ppool_register("echo", fn_echo), -EEXIST);
    ck_assert_int_eq(wl_ppool_register(name, fn_echo), -ENAMETOOLONG);
    ppool_close_and_run(&loop, &pool, WL_POOL_CLOSE_WAIT);
    ck_assert_int_eq(wl_ppool_submit(&pool, &req, "echo", "x", 1, 0, pjob_done), -ESHUTDOWN);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_ppool_crash_fails_only_its_job_and_respawns)
{
    uv_loop_t loop;
    wl_ppool pool;
    wl_ppool_opts opts = {.workers = 2};
    pjob jobs[12];
    pid_t pids[4];
    const char *crash[3] = {"segv", "abort", "exit3"};
    const char *expect[3] = {"killed by SIGSEGV", "killed by SIGABRT", "exited with status 3"};
    int sigs[3] = {SIGSEGV, SIGABRT, 0};

    uv_loop_init(&loop);
    wl_ppool_init(&loop, &pool, &opts);
    for (int i = 0; i < 12; i++)
        pjob_submit(&pool, &jobs[i], i % 4 == 1 ? crash[i / 4] : "echo", "ok", 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 12; i++) {
        ck_assert_int_eq(jobs[i].done, 1);
        if (i % 4 == 1) {
            char want[96];
            snprintf(want, sizeof(want), "worker %d %s", (int)jobs[i].req.worker_pid,
                     expect[i / 4]);
            ck_assert_int_eq(jobs[i].status, -ECHILD);
            ck_assert_str_eq(jobs[i].req.error, want);
            ck_assert_int_eq(jobs[i].req.term_signal, sigs[i / 4]);
            /* the dead worker is gone (reaped), not a zombie */
            ck_assert_int_eq(proc_state(jobs[i].req.worker_pid, NULL), 0);
        } else {
            ck_assert_int_eq(jobs[i].status, 0);
            ck_assert_str_eq(jobs[i].out, "ok");
        }
        wl_ppool_req_cleanup(&jobs[i].req);
    }
    ck_assert_uint_eq(wl_ppool_respawns(&pool), 3);
    ck_assert_int_eq(wl_ppool_worker_pids(&pool, pids, 4), 2);
    ppool_close_and_run(&loop, &pool, WL_POOL_CLOSE_WAIT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_ppool_timeout_kills_and_replaces_stuck_worker)
{
    uv_loop_t loop;
    wl_ppool pool;
    wl_ppool_opts opts = {.workers = 1};
    pjob stuck;
    pjob quick;
    pjob after;
    double t0;

    uv_loop_init(&loop);
    wl_ppool_init(&loop, &pool, &opts);
    t0 = now_ms();
    pjob_submit(&pool, &stuck, "sleep_ms", "30000", 200);
    pjob_submit(&pool, &quick, "sleep_ms", "10", 5000); /* queued behind it */
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(stuck.status, -ETIMEDOUT);
    ck_assert_msg(strstr(stuck.req.error, "timed out after 200 ms") != NULL, "%s", stuck.req.error);
    ck_assert_int_eq(quick.status, 0);
    ck_assert_str_eq(quick.out, "slept");
    ck_assert_int_ne(quick.req.worker_pid, stuck.req.worker_pid);
    ck_assert_msg(now_ms() - t0 < 10000, "took %.0f ms", now_ms() - t0);
    ck_assert_uint_eq(wl_ppool_respawns(&pool), 1);
    pjob_submit(&pool, &after, "echo", "alive", 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_str_eq(after.out, "alive");
    ck_assert_int_eq(proc_state(stuck.req.worker_pid, NULL), 0); /* killed and reaped */
    ppool_close_and_run(&loop, &pool, WL_POOL_CLOSE_WAIT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_ppool_cancelled_queued_job_never_runs)
{
    uv_loop_t loop;
    wl_ppool pool;
    wl_ppool_opts opts = {.workers = 1};
    char marker[128];
    pjob first;
    pjob cancelled;
    pjob last;

    snprintf(marker, sizeof(marker), "/tmp/wl_pools_marker_%d", (int)getpid());
    unlink(marker);
    uv_loop_init(&loop);
    wl_ppool_init(&loop, &pool, &opts);
    pjob_submit(&pool, &first, "sleep_ms", "100", 0);
    pjob_submit(&pool, &cancelled, "touch", marker, 0);
    pjob_submit(&pool, &last, "echo", "last", 0);
    ck_assert_int_eq(wl_ppool_cancel(&cancelled.req), 0);
    ck_assert_int_eq(cancelled.done, 0); /* callback comes later, on the loop */
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(cancelled.status, -ECANCELED);
    ck_assert_int_eq(cancelled.done, 1);
    ck_assert_int_eq(first.status, 0);
    ck_assert_str_eq(last.out, "last");
    ck_assert_int_eq(access(marker, F_OK), -1); /* the job never ran */
    ck_assert_int_eq(wl_ppool_cancel(&last.req), -EBUSY);
    ppool_close_and_run(&loop, &pool, WL_POOL_CLOSE_WAIT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

static void cancel_after(uv_timer_t *t)
{
    ck_assert_int_eq(wl_ppool_cancel(t->data), 0);
}

START_TEST(test_ppool_cancel_running_job_kills_worker)
{
    uv_loop_t loop;
    wl_ppool pool;
    wl_ppool_opts opts = {.workers = 1};
    uv_timer_t timer;
    pjob running;
    pjob next;
    double t0;

    uv_loop_init(&loop);
    wl_ppool_init(&loop, &pool, &opts);
    t0 = now_ms();
    pjob_submit(&pool, &running, "sleep_ms", "30000", 0);
    pjob_submit(&pool, &next, "echo", "next", 0);
    uv_timer_init(&loop, &timer);
    timer.data = &running.req;
    uv_timer_start(&timer, cancel_after, 100, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(running.status, -ECANCELED);
    ck_assert_str_eq(next.out, "next");
    ck_assert_int_ne(next.req.worker_pid, running.req.worker_pid);
    ck_assert(now_ms() - t0 < 10000);
    uv_close((uv_handle_t *)&timer, NULL);
    ppool_close_and_run(&loop, &pool, WL_POOL_CLOSE_WAIT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_ppool_recycles_after_max_jobs)
{
    uv_loop_t loop;
    wl_ppool pool;
    wl_ppool_opts opts = {.workers = 1, .max_jobs_per_worker = 3};
    pjob jobs[10];
    int distinct = 0;

    uv_loop_init(&loop);
    wl_ppool_init(&loop, &pool, &opts);
    for (int i = 0; i < 10; i++)
        pjob_submit(&pool, &jobs[i], "getpid", NULL, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(jobs[i].status, 0);
        if (i == 0 || jobs[i].req.worker_pid != jobs[i - 1].req.worker_pid)
            distinct++;
        ck_assert_int_eq(jobs[i].req.worker_pid, jobs[i / 3 * 3].req.worker_pid);
        wl_ppool_req_cleanup(&jobs[i].req);
    }
    ck_assert_int_eq(distinct, 4); /* 3 + 3 + 3 + 1 */
    ppool_close_and_run(&loop, &pool, WL_POOL_CLOSE_WAIT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* A worker holds a window of jobs sent ahead (docs/pools.md). With one
 * worker, every job below is in its window before the first one ends. */

START_TEST(test_ppool_crash_requeues_the_jobs_sent_but_not_started)
{
    uv_loop_t loop;
    wl_ppool pool;
    wl_ppool_opts opts = {.workers = 1};
    char counter[128];
    pjob slow;
    pjob crash;
    pjob after[5];

    snprintf(counter, sizeof(counter), "/tmp/wl_pools_count_%d", (int)getpid());
    unlink(counter);
    uv_loop_init(&loop);
    wl_ppool_init(&loop, &pool, &opts);
    pjob_submit(&pool, &slow, "sleep_ms", "50", 0);
    pjob_submit(&pool, &crash, "segv", NULL, 0);
    for (int i = 0; i < 5; i++)
        pjob_submit(&pool, &after[i], "append", counter, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(slow.status, 0);
    ck_assert_int_eq(crash.status, -ECHILD);
    ck_assert_int_eq(crash.req.term_signal, SIGSEGV);
    ck_assert_int_eq(crash.req.worker_pid, slow.req.worker_pid);
    for (int i = 0; i < 5; i++) {
        /* not failed with the crash: re-queued and run by the replacement */
        ck_assert_int_eq(after[i].status, 0);
        ck_assert_int_eq(after[i].done, 1);
        ck_assert_int_ne(after[i].req.worker_pid, crash.req.worker_pid);
    }
    ck_assert_int_eq(tu_file_lines(counter), 5); /* each ran exactly once */
    ck_assert_uint_eq(wl_ppool_respawns(&pool), 1);
    unlink(counter);
    ppool_close_and_run(&loop, &pool, WL_POOL_CLOSE_WAIT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_ppool_cancelled_job_sent_ahead_never_runs_and_worker_lives)
{
    uv_loop_t loop;
    wl_ppool pool;
    wl_ppool_opts opts = {.workers = 1};
    char counter[128];
    pjob slow;
    pjob jobs[6];
    pjob last;

    snprintf(counter, sizeof(counter), "/tmp/wl_pools_cancel_%d", (int)getpid());
    unlink(counter);
    uv_loop_init(&loop);
    wl_ppool_init(&loop, &pool, &opts);
    pjob_submit(&pool, &slow, "sleep_ms", "200", 0);
    for (int i = 0; i < 6; i++)
        pjob_submit(&pool, &jobs[i], "append", counter, 0);
    pjob_submit(&pool, &last, "echo", "last", 0);
    for (int i = 0; i < 6; i += 2)
        ck_assert_int_eq(wl_ppool_cancel(&jobs[i].req), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(jobs[i].done, 1);
        ck_assert_int_eq(jobs[i].status, i % 2 ? 0 : -ECANCELED);
    }
    ck_assert_str_eq(jobs[0].req.error, "cancelled before it started");
    ck_assert_int_eq(tu_file_lines(counter), 3); /* only the uncancelled ran */
    ck_assert_str_eq(last.out, "last");
    /* taken back without killing the worker that held them */
    ck_assert_int_eq(last.req.worker_pid, slow.req.worker_pid);
    ck_assert_uint_eq(wl_ppool_respawns(&pool), 0);
    unlink(counter);
    ppool_close_and_run(&loop, &pool, WL_POOL_CLOSE_WAIT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

static int steal_order;
static int steal_long_rank;
static int steal_short_rank[6];

static void steal_done(wl_ppool_req *req, int status)
{
    int *rank = req->data;
    *rank = ++steal_order;
    ck_assert_int_eq(status, 0);
}

START_TEST(test_ppool_idle_worker_takes_jobs_waiting_behind_a_long_one)
{
    uv_loop_t loop;
    wl_ppool pool;
    wl_ppool_opts opts = {.workers = 2};
    wl_ppool_req long_req;
    wl_ppool_req short_req[6];

    uv_loop_init(&loop);
    wl_ppool_init(&loop, &pool, &opts);
    steal_order = 0;
    memset(&long_req, 0, sizeof(long_req));
    long_req.data = &steal_long_rank;
    ck_assert_int_eq(wl_ppool_submit(&pool, &long_req, "sleep_ms", "1500", 4, 0, steal_done), 0);
    for (int i = 0; i < 6; i++) {
        memset(&short_req[i], 0, sizeof(short_req[i]));
        short_req[i].data = &steal_short_rank[i];
        ck_assert_int_eq(
            wl_ppool_submit(&pool, &short_req[i], "sleep_ms", "20", 2, 0, steal_done), 0);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    /* some short jobs were spread into the long job's window; the other
     * worker took them back instead of letting them wait 1.5 s */
    ck_assert_int_eq(steal_long_rank, 7);
    for (int i = 0; i < 6; i++) {
        ck_assert_int_ne(short_req[i].worker_pid, long_req.worker_pid);
        wl_ppool_req_cleanup(&short_req[i]);
    }
    wl_ppool_req_cleanup(&long_req);
    ppool_close_and_run(&loop, &pool, WL_POOL_CLOSE_WAIT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_ppool_close_leaves_no_zombies_or_workers)
{
    uv_loop_t loop;
    wl_ppool pool;
    wl_ppool_opts opts = {.workers = 3};
    pid_t pids[3];
    pjob jobs[6];

    ck_assert_int_eq(count_children(), 0);
    uv_loop_init(&loop);
    wl_ppool_init(&loop, &pool, &opts);
    ck_assert_int_eq(wl_ppool_worker_pids(&pool, pids, 3), 3);
    ck_assert_int_eq(count_children(), 3);
    for (int i = 0; i < 6; i++)
        pjob_submit(&pool, &jobs[i], i == 2 ? "segv" : "sleep_ms", "50", 0);
    /* close right away: WAIT still runs the queued jobs */
    ppool_close_and_run(&loop, &pool, WL_POOL_CLOSE_WAIT);
    ck_assert_int_eq(done_count, 6);
    ck_assert_int_eq(jobs[2].status, -ECHILD);
    ck_assert_int_eq(jobs[5].status, 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(proc_state(pids[i], NULL), 0);
    ck_assert_int_eq(count_children(), 0); /* neither zombies nor live workers */
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_ppool_close_cancel_kills_running_and_drops_queue)
{
    uv_loop_t loop;
    wl_ppool pool;
    wl_ppool_opts opts = {.workers = 2};
    pjob jobs[5];
    double t0;

    uv_loop_init(&loop);
    wl_ppool_init(&loop, &pool, &opts);
    for (int i = 0; i < 5; i++)
        pjob_submit(&pool, &jobs[i], "sleep_ms", "30000", 0);
    t0 = now_ms();
    ppool_close_and_run(&loop, &pool, WL_POOL_CLOSE_CANCEL);
    ck_assert_msg(now_ms() - t0 < 10000, "close took %.0f ms", now_ms() - t0);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(jobs[i].status, -ECANCELED);
        ck_assert_int_eq(jobs[i].done, 1);
    }
    ck_assert_int_eq(count_children(), 0);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_ppool_workers_exit_when_parent_is_killed)
{
    int fds[2];
    pid_t parent;
    pid_t pids[4];
    int n;
    double deadline;
    int reaped = 0;

    /* Orphaned workers get re-parented to us, so we can see and reap them. */
    ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    ck_assert_int_eq(pipe(fds), 0);
    parent = fork();
    ck_assert_int_ge(parent, 0);
    if (parent == 0) {
        uv_loop_t loop;
        wl_ppool pool;
        wl_ppool_opts opts = {.workers = 3};
        close(fds[0]);
        uv_loop_init(&loop);
        if (wl_ppool_init(&loop, &pool, &opts) != 0)
            _exit(1);
        n = wl_ppool_worker_pids(&pool, pids, 4);
        if (write(fds[1], pids, sizeof(pids[0]) * (size_t)n) < 0)
            _exit(1);
        close(fds[1]);
        for (;;)
            pause(); /* killed by the test */
    }
    close(fds[1]);
    n = (int)(read(fds[0], pids, sizeof(pids)) / (ssize_t)sizeof(pids[0]));
    close(fds[0]);
    ck_assert_int_eq(n, 3);
    for (int i = 0; i < n; i++)
        ck_assert_int_ne(proc_state(pids[i], NULL), 0);
    kill(parent, SIGKILL);
    ck_assert_int_eq(waitpid(parent, NULL, 0), parent);
    deadline = now_ms() + 10000;
    while (reaped < n && now_ms() < deadline) {
        for (int i = 0; i < n; i++) {
            if (pids[i] && waitpid(pids[i], NULL, WNOHANG) == pids[i]) {
                pids[i] = 0;
                reaped++;
            }
        }
        usleep(10 * 1000);
    }
    ck_assert_int_eq(reaped, n);
    ck_assert_int_eq(count_children(), 0);
}
END_TEST

/* ===================================================================== */
/* Coroutine awaits                                                       */
/* ===================================================================== */

typedef struct await_env {
    wl_tpool tpool;
    wl_ppool ppool;
    int ticks; /* loop ticker: proves the loop kept running */
    int blocked_at_once; /* jobs the ticker saw blocked together */
    double elapsed;
    int status[8];
    void *result[8];
    tjob jobs[8];
} await_env;

static await_env *env;

static void *sleep_200ms_value(void *arg)
{
    tjob *j = arg;
    j->ran = 1;
    usleep(200 * 1000);
    return (void *)(j->in + 1000);
}

/* Blocks its pool thread until the ticker lets it go. */
static void *block_until_released_value(void *arg)
{
    tjob *j = arg;
    block_until_released(j);
    return (void *)(j->in + 1000);
}

/* Counts the loop's ticks taken while all four jobs are blocked on their
 * threads at once (each posted `started`), then releases them: five such
 * ticks prove the loop kept running while threads blocked, and four at
 * once that they overlap. If the loop were blocked by the jobs, no tick
 * would come and the jobs would never be released (the test times out). */
static int ticker_task(void *arg, void **result)
{
    int blocked = 0;
    for (int i = 0; i < 4000 && (blocked < 4 || env->ticks < 5); i++) {
        if (wl_sleep(5) < 0)
            break;
        while (blocked < 4 && sem_trywait(&started) == 0)
            blocked++;
        if (blocked == 4)
            env->ticks++;
    }
    env->blocked_at_once = blocked;
    for (int i = 0; i < 4; i++)
        sem_post(&release);
    return 0;
}

static int to_thread_task(void *arg, void **result)
{
    tjob *j = arg;
    return wl_to_thread(&env->tpool, block_until_released_value, j, result);
}

static int await_main_overlap(void *arg, void **result)
{
    wl_task *tasks[5];
    double t0 = now_ms();

    for (int i = 0; i < 4; i++) {
        env->jobs[i].in = i;
        wl_spawn(&tasks[i], NULL, "to_thread", to_thread_task, &env->jobs[i]);
    }
    wl_spawn(&tasks[4], NULL, "ticker", ticker_task, NULL);
    wl_gather(tasks, 5, env->status, env->result);
    env->elapsed = now_ms() - t0;
    return 0;
}

static void await_setup(void)
{
    tpool_setup();
    ppool_setup();
    env = calloc(1, sizeof(*env));
}

static void await_teardown(void)
{
    free(env);
}

/* Runs main as the root task of a scheduler loop over a fresh uv loop
 * with both pools, then closes everything. */
static void run_with_pools(wl_task_fn main_fn, unsigned threads)
{
    uv_loop_t uv;
    wl_loop loop;
    wl_tpool_opts topts = {.threads = threads};
    wl_ppool_opts popts = {.workers = 2};

    uv_loop_init(&uv);
    ck_assert_int_eq(wl_loop_init(&loop, &uv, NULL), 0);
    ck_assert_int_eq(wl_tpool_init(&uv, &env->tpool, &topts), 0);
    ck_assert_int_eq(wl_ppool_init(&uv, &env->ppool, &popts), 0);
    ck_assert_int_eq(wl_run(&loop, "main", main_fn, NULL, NULL), 0);
    wl_tpool_close(&env->tpool, WL_POOL_CLOSE_CANCEL, NULL);
    wl_ppool_close(&env->ppool, WL_POOL_CLOSE_CANCEL, NULL);
    uv_run(&uv, UV_RUN_DEFAULT);
    ck_assert_int_eq(wl_loop_close(&loop), 0);
    uv_run(&uv, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&uv), 0);
    ck_assert_int_eq(count_children(), 0);
}

START_TEST(test_await_to_thread_overlaps_and_keeps_loop_running)
{
    run_with_pools(await_main_overlap, 8);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(env->status[i], 0);
        ck_assert_int_eq((long)env->result[i], 1000 + i);
    }
    ck_assert_int_eq(env->blocked_at_once, 4); /* the four ran on threads at once */
    ck_assert_int_eq(env->ticks, 5); /* the ticker ran while they blocked */
}
END_TEST

static int blocker_task(void *arg, void **result)
{
    return wl_to_thread(&env->tpool, block_until_released, arg, result);
}

static int await_main_cancel_queued(void *arg, void **result)
{
    wl_task *blocker;
    wl_task *victim;

    wl_spawn(&blocker, NULL, "blocker", blocker_task, &env->jobs[0]);
    wl_spawn(&victim, NULL, "victim", to_thread_task, &env->jobs[1]);
    while (!env->jobs[0].ran) /* wait until the blocker holds the only thread */
        wl_sleep(1);
    wl_yield(); /* the victim submits its job: queued behind the blocker */
    wl_task_cancel(victim);
    env->status[1] = wl_await(victim, &env->result[1]);
    sem_post(&release);
    env->status[0] = wl_await(blocker, &env->result[0]);
    return 0;
}

START_TEST(test_await_cancelled_queued_thread_job_never_runs)
{
    run_with_pools(await_main_cancel_queued, 1);
    ck_assert_int_eq(env->status[1], WL_ECANCELED);
    ck_assert_int_eq(env->jobs[1].ran, 0);
    ck_assert_ptr_null(env->result[1]);
    ck_assert_int_eq(env->status[0], 0);
}
END_TEST

static int await_main_timeout_running_thread(void *arg, void **result)
{
    wl_timeout t;
    double t0 = now_ms();

    wl_timeout_enter(&t, 50);
    env->status[0] = wl_to_thread(&env->tpool, sleep_200ms_value, &env->jobs[0], &env->result[0]);
    wl_timeout_exit(&t);
    env->elapsed = now_ms() - t0;
    return 0;
}

START_TEST(test_await_timeout_waits_for_running_thread_job)
{
    run_with_pools(await_main_timeout_running_thread, 2);
    ck_assert_int_eq(env->status[0], WL_ETIMEDOUT);
    ck_assert_int_eq(env->jobs[0].ran, 1);
    ck_assert_int_eq((long)env->result[0], 1000); /* still handed back */
    ck_assert_msg(env->elapsed >= 190, "returned after %.0f ms", env->elapsed);
}
END_TEST

static char crash_err[128];
static char echo_out[64];

static int await_main_processes(void *arg, void **result)
{
    wl_bytes out = {0};
    json_t *args = json_pack("[iii]", 1, 2, 3);
    json_t *res = NULL;

    env->status[0] = wl_run_in_process(&env->ppool, "echo", "hello", 5, 0, &out, NULL, 0);
    snprintf(echo_out, sizeof(echo_out), "%.*s", (int)out.len, (const char *)out.data);
    wl_bytes_free(&out);
    env->status[1] =
        wl_run_in_process(&env->ppool, "segv", NULL, 0, 0, NULL, crash_err, sizeof(crash_err));
    env->status[2] = wl_run_in_process_json(&env->ppool, "sum", args, 0, &res, NULL, 0);
    env->result[2] = (void *)(long)json_integer_value(json_object_get(res, "sum"));
    json_decref(res);
    json_decref(args);
    return 0;
}

START_TEST(test_await_run_in_process_results_and_crash)
{
    run_with_pools(await_main_processes, 1);
    ck_assert_int_eq(env->status[0], 0);
    ck_assert_str_eq(echo_out, "hello");
    ck_assert_int_eq(env->status[1], -ECHILD);
    ck_assert_msg(strstr(crash_err, "killed by SIGSEGV") != NULL, "%s", crash_err);
    ck_assert_int_eq(env->status[2], 0);
    ck_assert_int_eq((long)env->result[2], 6);
}
END_TEST

static int await_main_process_timeout(void *arg, void **result)
{
    wl_timeout t;
    double t0 = now_ms();

    wl_timeout_enter(&t, 100);
    env->status[0] = wl_run_in_process(&env->ppool, "sleep_ms", "30000", 5, 0, NULL, NULL, 0);
    wl_timeout_exit(&t);
    env->elapsed = now_ms() - t0;
    /* the pool replaced the killed worker */
    env->status[1] = wl_run_in_process(&env->ppool, "echo", "x", 1, 0, NULL, NULL, 0);
    return 0;
}

START_TEST(test_await_timeout_kills_running_process_job)
{
    run_with_pools(await_main_process_timeout, 1);
    ck_assert_int_eq(env->status[0], WL_ETIMEDOUT);
    ck_assert_msg(env->elapsed < 5000, "returned after %.0f ms", env->elapsed);
    ck_assert_int_eq(env->status[1], 0);
}
END_TEST

static int not_a_task_status;
START_TEST(test_await_outside_a_task_is_einval)
{
    uv_loop_t uv;
    wl_tpool pool;
    void *res = (void *)1;

    uv_loop_init(&uv);
    wl_tpool_init(&uv, &pool, NULL);
    not_a_task_status = wl_to_thread(&pool, double_it, NULL, &res);
    ck_assert_int_eq(not_a_task_status, -EINVAL);
    ck_assert_ptr_null(res);
    wl_tpool_close(&pool, WL_POOL_CLOSE_WAIT, NULL);
    uv_run(&uv, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&uv), 0);
}
END_TEST

static Suite *pools_suite(void)
{
    Suite *s = suite_create("pools");
    TCase *t = tcase_create("tpool");
    TCase *p = tcase_create("ppool");

    tcase_add_checked_fixture(t, tpool_setup, NULL);
    tcase_add_test(t, test_tpool_delivers_every_result_on_the_loop);
    tcase_add_test(t, test_tpool_blocking_jobs_overlap);
    tcase_add_test(t, test_tpool_starts_one_thread_per_concurrent_job);
    tcase_add_test(t, test_tpool_cancelled_queued_job_never_runs);
    tcase_add_test(t, test_tpool_full_queue_pushes_back);
    tcase_add_test(t, test_tpool_close_cancel_drops_queue_and_waits_running);
    tcase_add_test(t, test_tpool_close_wait_runs_the_queue);
    tcase_add_test(t, test_tpool_wakes_only_as_many_threads_as_jobs);
    tcase_add_loop_test(t, test_tpool_close_from_done_cb_handles_staged_jobs, 0, 2);
    suite_add_tcase(s, t);

    tcase_add_checked_fixture(p, ppool_setup, NULL);
    tcase_set_timeout(p, 60);
    tcase_add_test(p, test_ppool_runs_named_functions_in_worker_processes);
    tcase_add_test(p, test_ppool_large_payload_round_trips);
    tcase_add_test(p, test_ppool_json_helper_round_trips);
    tcase_add_test(p, test_ppool_errors_are_values_with_messages);
    tcase_add_test(p, test_ppool_crash_fails_only_its_job_and_respawns);
    tcase_add_test(p, test_ppool_timeout_kills_and_replaces_stuck_worker);
    tcase_add_test(p, test_ppool_cancelled_queued_job_never_runs);
    tcase_add_test(p, test_ppool_cancel_running_job_kills_worker);
    tcase_add_test(p, test_ppool_recycles_after_max_jobs);
    tcase_add_test(p, test_ppool_crash_requeues_the_jobs_sent_but_not_started);
    tcase_add_test(p, test_ppool_cancelled_job_sent_ahead_never_runs_and_worker_lives);
    tcase_add_test(p, test_ppool_idle_worker_takes_jobs_waiting_behind_a_long_one);
    tcase_add_test(p, test_ppool_close_leaves_no_zombies_or_workers);
    tcase_add_test(p, test_ppool_close_cancel_kills_running_and_drops_queue);
    tcase_add_test(p, test_ppool_workers_exit_when_parent_is_killed);
    suite_add_tcase(s, p);

    TCase *a = tcase_create("await");
    tcase_add_checked_fixture(a, await_setup, await_teardown);
    tcase_set_timeout(a, 60);
    tcase_add_test(a, test_await_to_thread_overlaps_and_keeps_loop_running);
    tcase_add_test(a, test_await_cancelled_queued_thread_job_never_runs);
    tcase_add_test(a, test_await_timeout_waits_for_running_thread_job);
    tcase_add_test(a, test_await_run_in_process_results_and_crash);
    tcase_add_test(a, test_await_timeout_kills_running_process_job);
    tcase_add_test(a, test_await_outside_a_task_is_einval);
    suite_add_tcase(s, a);
    return s;
}

int main(void)
{
    return tu_run_suite(pools_suite());
}
