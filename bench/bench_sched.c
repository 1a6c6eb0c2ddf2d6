/*
 * bench_sched -- the coroutine loop against its baselines, in one run:
 *
 *  1. yield/resume round trip (wl_yield through the ready queue) vs a
 *     ucontext swapcontext round trip;
 *  2. spawn+complete throughput with pooled stacks vs pthread create+join;
 *  3. 100,000 tasks each sleeping 1 s (copy-stack mode): wall time and peak
 *     RSS of a child process vs python3 asyncio doing the same (when python3
 *     exists; run as a subprocess in the same run);
 *  4. TCP echo round trips per second over 127.0.0.1: a coroutine server
 *     (one task per connection, wl_read/wl_write) vs a plain callback libuv
 *     server; the same blocking client thread drives both.
 *
 * Usage: bench_sched [--quick]   (--quick shrinks the counts for a smoke run)
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <ucontext.h>
#include <unistd.h>

#include "bench.h"
#include "wlprof/sched.h"

static int quick;

/* ---- 1. yield round trip vs swapcontext ---- */

static long yield_iters;

static int yielder(void *arg, void **result)
{
    double *out = arg;
    double t0 = bench_now();
    for (long i = 0; i < yield_iters; i++)
        wl_yield();
    *out = (bench_now() - t0) / (double)yield_iters * 1e9;
    return 0;
}

static ucontext_t uc_main;
static ucontext_t uc_co;

static void uc_body(void)
{
    for (;;)
        swapcontext(&uc_co, &uc_main);
}

static double swapcontext_ns(long iters)
{
    static char stack[64 * 1024];
    getcontext(&uc_co);
    uc_co.uc_stack.ss_sp = stack;
    uc_co.uc_stack.ss_size = sizeof(stack);
    uc_co.uc_link = NULL;
    makecontext(&uc_co, uc_body, 0);
    double t0 = bench_now();
    for (long i = 0; i < iters; i++)
        swapcontext(&uc_main, &uc_co);
    return (bench_now() - t0) / (double)iters * 1e9;
}

static void bench_switch(void)
{
    yield_iters = quick ? 200000 : 5000000;
    double ours[5];
    for (int r = 0; r < 5; r++) {
        wl_loop loop;
        wl_loop_init(&loop, NULL, NULL);
        wl_run(&loop, "yielder", yielder, &ours[r], NULL);
        wl_loop_close(&loop);
    }
    double mn = ours[0];
    double mx = ours[0];
    for (int r = 1; r < 5; r++) {
        mn = ours[r] < mn ? ours[r] : mn;
        mx = ours[r] > mx ? ours[r] : mx;
    }
    double med = bench_median(ours, 5);
    double base[3];
    for (int r = 0; r < 3; r++)
        base[r] = swapcontext_ns(quick ? 100000 : 1000000);
    double b = bench_median(base, 3);
    bench_row("sched: yield/resume round trip", med, b, "ns", "swapcontext round trip", b / med,
              (mx - mn) / med * 100, "<=25ns, >=20x", med <= 25 && b / med >= 20);
}

/* ---- 2. spawn + complete ---- */

static long spawn_total;

static int nop_task(void *arg, void **result)
{
    return 0;
}

static int spawner(void *arg, void **result)
{
    double *out = arg;
    double t0 = bench_now();
    for (long done = 0; done < spawn_total; done += 1000) {
        for (int i = 0; i < 1000; i++)
            wl_spawn(NULL, NULL, "nop", nop_task, NULL);
        wl_yield(); /* FIFO: the batch runs before we resume */
    }
    *out = (double)spawn_total / (bench_now() - t0);
    return 0;
}

static void *nop_thread(void *arg)
{
    return arg;
}

static void bench_spawn(void)
{
    spawn_total = quick ? 100000 : 2000000;
    double ours[3];
    for (int r = 0; r < 3; r++) {
        wl_loop loop;
        wl_loop_init(&loop, NULL, NULL);
        wl_run(&loop, "spawner", spawner, &ours[r], NULL);
        wl_loop_close(&loop);
    }
    double med = bench_median(ours, 3);
    int n = quick ? 2000 : 20000;
    double t0 = bench_now();
    for (int i = 0; i < n; i++) {
        pthread_t th;
        pthread_create(&th, NULL, nop_thread, NULL);
        pthread_join(th, NULL);
    }
    double base = n / (bench_now() - t0);
    bench_row("sched: spawn+complete (pooled stacks)", med / 1e6, base / 1e6, "M/s",
              "pthread create+join", med / base, -1, ">=2M/s", med >= 2e6);
}

/* ---- 3. 100k sleeping tasks ---- */

static int sleep1s(void *arg, void **result)
{
    return wl_sleep(1000);
}

static int many_sleepers(void *arg, void **result)
{
    long n = *(long *)arg;
    wl_task **t = malloc((size_t)n * sizeof(*t));
    int *st = malloc((size_t)n * sizeof(*st));
    int rc = t && st ? 0 : UV_ENOMEM;
    long i = 0;
    for (; rc == 0 && i < n; i++)
        rc = wl_spawn(&t[i], NULL, "sleeper", sleep1s, NULL);
    if (rc == 0)
        rc = wl_gather(t, (size_t)n, st, NULL);
    free(t);
    free(st);
    return rc;
}

/* Runs n sleepers in a child; returns wall seconds and max RSS (MiB). */
static int sleepers_child(long n, int shared, double *wall, double *rss_mb)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        close(fds[0]);
        wl_loop loop;
        wl_loop_options o = {.shared_stack = shared};
        wl_loop_init(&loop, NULL, &o);
        double t0 = bench_now();
        int rc = wl_run(&loop, "main", many_sleepers, &n, NULL);
        double el = rc == 0 ? bench_now() - t0 : -1;
        (void)!write(fds[1], &el, sizeof(el));
        wl_loop_close(&loop);
        _exit(0);
    }
    close(fds[1]);
    double el = -1;
    (void)!read(fds[0], &el, sizeof(el));
    close(fds[0]);
    int status;
    struct rusage ru;
    wait4(pid, &status, 0, &ru);
    *wall = el;
    *rss_mb = (double)ru.ru_maxrss / 1024.0;
    return el > 0 ? 0 : -EIO;
}

static int python_asyncio(long n, double *wall, double *rss_mb)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "python3 -c 'import asyncio,time,resource\n"
             "async def s():\n    await asyncio.sleep(1)\n"
             "async def m():\n    await asyncio.gather(*[s() for _ in range(%ld)])\n"
             "t=time.monotonic(); asyncio.run(m()); e=time.monotonic()-t\n"
             "print(e, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024.0)' 2>/dev/null",
             n);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -errno;
    int got = fscanf(p, "%lf %lf", wall, rss_mb);
    int rc = pclose(p);
    return got == 2 && rc == 0 ? 0 : -ENOENT;
}

static void bench_sleepers(void)
{
    long n = quick ? 10000 : 100000;
    double wall;
    double rss;
    if (sleepers_child(n, 1, &wall, &rss) != 0) {
        fprintf(stderr, "bench_sched: sleepers child failed\n");
        return;
    }
    double pw = 0;
    double prss = 0;
    int have_py = python_asyncio(n, &pw, &prss) == 0;
    if (!have_py) { /* the brief's figures for 100k tasks, scaled */
        pw = 3.2;
        prss = 150.0 * (double)n / 100000;
    }
    const char *bn = have_py ? "python3 asyncio" : "asyncio (brief figure)";
    char name[64];
    snprintf(name, sizeof(name), "sched: %ldk tasks sleep 1s, wall", n / 1000);
    bench_row(name, wall, pw, "s", bn, pw / wall, -1, "<=1.3s", wall <= 1.3);
    snprintf(name, sizeof(name), "sched: %ldk tasks sleep 1s, peak RSS", n / 1000);
    bench_row(name, rss, prss, "MiB", bn, prss / rss, -1, "< asyncio", rss < prss);
    snprintf(name, sizeof(name), "sched: %ldk tasks sleep 1s, KiB per task", n / 1000);
    bench_row(name, rss * 1024 / (double)n, prss * 1024 / (double)n, "KiB", bn, prss / rss, -1,
              "~1 KiB", rss * 1024 / (double)n <= 2.0);
}

/* ---- 4. TCP echo ---- */

static atomic_int server_port;
static long echo_rounds;

static int co_conn(void *arg, void **result)
{
    uv_tcp_t *c = arg;
    static char buf[4096];
    ssize_t n;
    while ((n = wl_read((uv_stream_t *)c, buf, sizeof(buf))) > 0)
        if (wl_write((uv_stream_t *)c, buf, (size_t)n) != 0)
            break;
    wl_close((uv_handle_t *)c);
    return 0;
}

static int co_server(void *arg, void **result)
{
    static wl_listener l;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    int rc = wl_listen(&l, (struct sockaddr *)&addr, 16);
    if (rc)
        return rc;
    atomic_store(&server_port, wl_listener_port(&l));
    uv_tcp_t c;
    rc = wl_accept(&l, &c);
    wl_listener_close(&l);
    if (rc)
        return rc;
    uv_tcp_nodelay(&c, 1);
    return co_conn(&c, result);
}

static void *co_server_thread(void *arg)
{
    wl_loop loop;
    wl_loop_init(&loop, NULL, NULL);
    wl_run(&loop, "echo-server", co_server, NULL, NULL);
    wl_loop_close(&loop);
    return NULL;
}

/* the callback baseline */
typedef struct cb_server {
    uv_tcp_t listener;
    uv_tcp_t conn;
    uv_write_t wreq;
    char buf[4096];
} cb_server;

static void cb_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    cb_server *s = h->data;
    *b = uv_buf_init(s->buf, sizeof(s->buf));
}

static void cb_written(uv_write_t *req, int status)
{
}

static void cb_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    cb_server *s = st->data;
    if (n > 0) {
        uv_buf_t out = uv_buf_init(b->base, (unsigned)n);
        /* same fast path as wl_write: try first, queue the rest */
        int w = uv_try_write(st, &out, 1);
        if (w < 0)
            w = 0;
        if (w < n) {
            out.base += w;
            out.len -= (size_t)w;
            uv_write(&s->wreq, st, &out, 1, cb_written);
        }
    } else if (n < 0) {
        uv_close((uv_handle_t *)st, NULL);
    }
}

static void cb_conn(uv_stream_t *l, int status)
{
    cb_server *s = l->data;
    uv_tcp_init(l->loop, &s->conn);
    s->conn.data = s;
    if (uv_accept(l, (uv_stream_t *)&s->conn) == 0) {
        uv_tcp_nodelay(&s->conn, 1);
        uv_read_start((uv_stream_t *)&s->conn, cb_alloc, cb_read);
    }
    uv_close((uv_handle_t *)l, NULL);
}

static void *cb_server_thread(void *arg)
{
    uv_loop_t loop;
    cb_server *s = calloc(1, sizeof(*s));
    uv_loop_init(&loop);
    uv_tcp_init(&loop, &s->listener);
    s->listener.data = s;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0);
    uv_listen((uv_stream_t *)&s->listener, 16, cb_conn);
    struct sockaddr_in got;
    int len = sizeof(got);
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&got, &len);
    atomic_store(&server_port, ntohs(got.sin_port));
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    free(s);
    return NULL;
}

/* Blocking ping-pong client: returns round trips per second. */
static double echo_client(void)
{
    while (atomic_load(&server_port) == 0)
        usleep(1000);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atomic_load(&server_port))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return 0;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    char msg[64];
    memset(msg, 'x', sizeof(msg));
    double t0 = bench_now();
    for (long i = 0; i < echo_rounds; i++) {
        if (write(fd, msg, sizeof(msg)) != (ssize_t)sizeof(msg))
            break;
        size_t got = 0;
        while (got < sizeof(msg)) {
            ssize_t n = read(fd, msg + got, sizeof(msg) - got);
            if (n <= 0)
                goto out;
            got += (size_t)n;
        }
    }
out:;
    double rate = (double)echo_rounds / (bench_now() - t0);
    close(fd);
    return rate;
}

static double echo_run(void *(*server)(void *))
{
    pthread_t th;
    atomic_store(&server_port, 0);
    pthread_create(&th, NULL, server, NULL);
    double r = echo_client();
    pthread_join(th, NULL);
    return r;
}

static void bench_echo(void)
{
    echo_rounds = quick ? 5000 : 50000;
    double ours[5];
    double base[5];
    for (int r = 0; r < 5; r++) { /* interleaved, alternating: same machine load */
        if (r % 2) {
            base[r] = echo_run(cb_server_thread);
            ours[r] = echo_run(co_server_thread);
        } else {
            ours[r] = echo_run(co_server_thread);
            base[r] = echo_run(cb_server_thread);
        }
    }
    double o = bench_median(ours, 5);
    double b = bench_median(base, 5);
    bench_row("sched: TCP echo round trips (1 conn)", o / 1e3, b / 1e3, "k/s",
              "libuv callback server", o / b, -1, ">=0.8x", o / b >= 0.8);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
    bench_switch();
    bench_spawn();
    bench_sleepers();
    bench_echo();
    return 0;
}
