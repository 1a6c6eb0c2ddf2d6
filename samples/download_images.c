/*
 * download_images -- the brief's closing example: download N images, then
 * process them (CPU), in five versions, against a local image server
 * (wlprof/httpd.h) that answers after a realistic delay and counts how
 * many requests it has in flight.
 *
 *   sequential   blocking GET, write the file, then blur each image, one by one
 *   to_thread    "basic async": the same blocking functions run through
 *                wl_to_thread (asyncio.to_thread) in one task group
 *   streaming    true async I/O: wl_tcp_connect / wl_read chunks written as
 *                they arrive with wl_fs_write (httpx + aiofiles)
 *   limited      streaming, at most 4 downloads at once (wl_sem, like
 *                asyncio.Semaphore(4))
 *   processes    limited downloads, and the blur moved to a process pool
 *                (run_in_executor with a ProcessPoolExecutor)
 *
 * The server runs in its own process, the program wlprof-httpd beside this
 * one (samples/wlprof-httpd.c), started before anything else and without
 * the profiler's stack agent in its environment. The client is the program
 * under study, and `wlprof profile` leaves a process of that name out of
 * the profile, so its advice is about the client alone. The two talk over
 * a pipe pair ("r" resets the counters, "s" asks for them, "q" stops it).
 *
 * Every version prints its wall time and the server's peak in-flight
 * count. Processing is a box blur over the image bytes (a few passes) plus
 * a checksum, written next to the original as processed_N.
 *
 *   usage: download_images [--images N] [--delay MS] [--only VERSION]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wlprof/httpd.h"
#include "wlprof/pools.h"
#include "wlprof/sched.h"
#include "sample.h"

#define IMAGE_BYTES (256 * 1024)
#define BLUR_PASSES 40
#define DOWNLOAD_LIMIT 4

/* The server process and its control pipes. */
static pid_t server_pid = -1;
static int server_port;
static FILE *to_server, *from_server;
static char dir[256];
static int n_images = 12;
static wl_tpool tpool;
static wl_ppool ppool;

static void image_path(char *buf, size_t len, const char *kind, long n)
{
    snprintf(buf, len, "%s/%s_%ld", dir, kind, n);
}

static struct sockaddr_in server_addr(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_port = htons((uint16_t)server_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

/* Skips the response headers in buf[0..n): returns the body offset, or -1
 * when the header end has not arrived yet (headers fit one read here). */
static long body_offset(const char *buf, size_t n)
{
    for (size_t i = 3; i < n; i++)
        if (memcmp(buf + i - 3, "\r\n\r\n", 4) == 0)
            return (long)i + 1;
    return -1;
}

/* ---- blocking functions (sequential, to_thread) -------------------------- */

/* Downloads image n into original_n with blocking calls. Returns 0 or -1. */
static int download_blocking(long n)
{
    char path[512];
    char req[64];
    char *buf = malloc(IMAGE_BYTES + 4096);
    size_t got = 0;
    int rc = -1;
    struct sockaddr_in a = server_addr();
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int len = snprintf(req, sizeof(req), "GET /img/%ld HTTP/1.0\r\n\r\n", n);
    if (fd >= 0 && buf && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        send(fd, req, (size_t)len, MSG_NOSIGNAL) == len) {
        ssize_t k;
        while (got < IMAGE_BYTES + 4096 && (k = recv(fd, buf + got, IMAGE_BYTES + 4096 - got, 0)) > 0)
            got += (size_t)k;
        long off = body_offset(buf, got);
        image_path(path, sizeof(path), "original", n);
        int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (off >= 0 && out >= 0 && write(out, buf + off, got - (size_t)off) == (ssize_t)(got - (size_t)off))
            rc = 0;
        if (out >= 0)
            close(out);
    }
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

/* The CPU part: a few box-blur passes and a checksum; writes processed_n. */
static long process_image(long n)
{
    char path[512];
    uint8_t *a = malloc(IMAGE_BYTES);
    uint8_t *b = malloc(IMAGE_BYTES);
    long sum = -1;
    image_path(path, sizeof(path), "original", n);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t len = fd >= 0 && a ? read(fd, a, IMAGE_BYTES) : -1;
    if (fd >= 0)
        close(fd);
    if (len > 2 && b) {
        for (int pass = 0; pass < BLUR_PASSES; pass++) {
            b[0] = a[0];
            b[len - 1] = a[len - 1];
            for (ssize_t i = 1; i < len - 1; i++)
                b[i] = (uint8_t)((a[i - 1] + 2 * a[i] + a[i + 1]) / 4);
            uint8_t *t = a;
            a = b;
            b = t;
        }
        sum = 0;
        for (ssize_t i = 0; i < len; i++)
            sum = (sum * 31 + a[i]) % 1000000007L;
        image_path(path, sizeof(path), "processed", n);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, a, (size_t)len) != len)
            sum = -1;
        if (fd >= 0)
            close(fd);
    }
    free(a);
    free(b);
    return sum;
}

static void *download_thread(void *arg)
{
    return (void *)(long)download_blocking((long)arg);
}

static void *process_thread(void *arg)
{
    return (void *)process_image((long)arg);
}

/* Process-pool job: payload is the image number as text; result the sum. */
static int process_job(const void *in, size_t inlen, wl_bytes *out)
{
    char num[32] = "";
    memcpy(num, in, inlen < sizeof(num) - 1 ? inlen : sizeof(num) - 1);
    long sum = process_image(strtol(num, NULL, 10));
    if (sum < 0)
        return -EIO;
    int k = snprintf(num, sizeof(num), "%ld", sum);
    return wl_bytes_append(out, num, (size_t)k);
}

/* ---- true async I/O -------------------------------------------------------- */

static wl_sem limit_sem;
static int use_limit;

/* Streams image n to original_n: each chunk is written as it arrives. */
static int download_streaming(long n)
{
    char *req = malloc(64);
    char *buf = malloc(16384);
    uv_tcp_t *tcp = malloc(sizeof(*tcp));
    char path[512];
    int fd = -1;
    int rc = -ENOMEM;
    int in_body = 0;
    int64_t written = 0;
    struct sockaddr_in a = server_addr();

    if (use_limit && (rc = wl_sem_acquire(&limit_sem)) < 0)
        goto free_bufs;
    if (!req || !buf || !tcp)
        goto release;
    image_path(path, sizeof(path), "original", n);
    fd = wl_fs_open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        rc = fd;
        goto release;
    }
    rc = wl_tcp_connect(tcp, (struct sockaddr *)&a);
    if (rc < 0)
        goto close_file;
    int len = snprintf(req, 64, "GET /img/%ld HTTP/1.0\r\n\r\n", n);
    rc = wl_write((uv_stream_t *)tcp, req, (size_t)len);
    while (rc == 0) {
        ssize_t k = wl_read((uv_stream_t *)tcp, buf, 16384);
        if (k <= 0) {
            rc = k == 0 || k == UV_EOF ? 0 : (int)k;
            break;
        }
        long off = 0;
        if (!in_body) {
            off = body_offset(buf, (size_t)k);
            if (off < 0)
                continue;
            in_body = 1;
        }
        ssize_t w = wl_fs_write(fd, buf + off, (size_t)(k - off), written);
        if (w < 0)
            rc = (int)w;
        else
            written += w;
    }
    wl_close((uv_handle_t *)tcp);
close_file:
    wl_fs_close(fd);
release:
    if (use_limit)
        wl_sem_release(&limit_sem);
free_bufs:
    free(tcp);
    free(buf);
    free(req);
    return rc;
}

/* ---- the versions ---------------------------------------------------------- */

typedef struct version {
    const char *name;
    const char *what;
    int (*run)(void);
} version;

static int run_sequential(void)
{
    int failed = 0;
    for (long n = 1; n <= n_images; n++)
        failed += download_blocking(n) != 0;
    for (long n = 1; n <= n_images; n++)
        failed += process_image(n) < 0;
    return failed;
}

static int to_thread_download(void *arg, void **result)
{
    void *r = NULL;
    int rc = wl_to_thread(&tpool, download_thread, arg, &r);
    return rc < 0 ? rc : (int)(long)r;
}

static int to_thread_process(void *arg, void **result)
{
    void *r = NULL;
    int rc = wl_to_thread(&tpool, process_thread, arg, &r);
    return rc < 0 ? rc : (long)r < 0 ? -EIO : 0;
}

static int streaming_task(void *arg, void **result)
{
    return download_streaming((long)arg);
}

static int process_in_pool(void *arg, void **result)
{
    char num[32];
    int k = snprintf(num, sizeof(num), "%ld", (long)arg);
    return wl_run_in_process(&ppool, "process_image", num, (size_t)k, 0, NULL, NULL, 0);
}

/* Runs fn for every image in one task group; returns the group's status. */
static int group_all(wl_task_fn fn)
{
    wl_group g;
    wl_group_init(&g, NULL);
    for (long n = 1; n <= n_images; n++)
        if (wl_group_spawn(&g, NULL, "image", fn, (void *)n) < 0)
            break;
    return wl_group_wait(&g);
}

typedef struct main_args {
    wl_task_fn download;
    wl_task_fn process;
} main_args;

static int main_task(void *arg, void **result)
{
    main_args *m = arg;
    int rc = group_all(m->download);
    if (rc == 0)
        rc = group_all(m->process);
    return rc;
}

static int run_on_loop(wl_task_fn download, wl_task_fn process, int limit, int processes)
{
    uv_loop_t uv;
    wl_loop loop;
    main_args m = {download, process};
    if (sample_uv_open(&uv, &loop) != 0)
        return 1;
    wl_tpool_init(&uv, &tpool, NULL);
    if (processes)
        wl_ppool_init(&uv, &ppool, NULL);
    use_limit = limit;
    wl_sem_init(&limit_sem, DOWNLOAD_LIMIT);
    int rc = wl_run(&loop, "main", main_task, &m, NULL);
    wl_tpool_close(&tpool, WL_POOL_CLOSE_WAIT, NULL);
    if (processes)
        wl_ppool_close(&ppool, WL_POOL_CLOSE_WAIT, NULL);
    sample_uv_close(&uv, &loop);
    use_limit = 0;
    return rc != 0;
}

static int run_to_thread(void)
{
    return run_on_loop(to_thread_download, to_thread_process, 0, 0);
}

static int run_streaming(void)
{
    return run_on_loop(streaming_task, to_thread_process, 0, 0);
}

static int run_limited(void)
{
    return run_on_loop(streaming_task, to_thread_process, 1, 0);
}

static int run_processes(void)
{
    return run_on_loop(streaming_task, process_in_pool, 1, 1);
}

static const version versions[] = {
    {"sequential", "blocking download, then process, one by one", run_sequential},
    {"to_thread", "basic async: blocking functions via wl_to_thread", run_to_thread},
    {"streaming", "true async I/O: TCP reads streamed to files", run_streaming},
    {"limited", "streaming, at most 4 downloads at once (semaphore)", run_limited},
    {"processes", "limited downloads, processing on a process pool", run_processes},
};

/* Starts the server process, the program wlprof-httpd built beside this
 * one (samples/wlprof-httpd.c), before any thread or buffered output
 * exists. Returns 0 or -1. */
static int server_start(unsigned delay)
{
    char self[4096], path[4200];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = '\0';
    snprintf(path, sizeof(path), "%s/wlprof-httpd", self);
    int cmd[2], rsp[2];
    if (pipe2(cmd, O_CLOEXEC) < 0 || pipe2(rsp, O_CLOEXEC) < 0)
        return -1;
    /* posix_spawn (vfork and exec at once: no window where a copy of this
     * client runs), the two pipe ends kept open across the exec (dup2 onto
     * itself clears close-on-exec), and the environment without the
     * profiler's agent: the testbed is not the program under study. */
    char a[16], b[16], d[16];
    snprintf(a, sizeof(a), "%d", cmd[0]);
    snprintf(b, sizeof(b), "%d", rsp[1]);
    snprintf(d, sizeof(d), "%u", delay);
    char *args[] = {"wlprof-httpd", a, b, d, NULL};
    extern char **environ;
    size_t n_env = 0;
    while (environ[n_env])
        n_env++;
    char **env = calloc(n_env + 1, sizeof(*env));
    if (!env)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < n_env; i++)
        if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0 && strncmp(environ[i], "WLPROF_AGENT", 12) != 0)
            env[k++] = environ[i];
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, cmd[0], cmd[0]);
    posix_spawn_file_actions_adddup2(&fa, rsp[1], rsp[1]);
    int rc = posix_spawn(&server_pid, path, &fa, NULL, args, env);
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    if (rc != 0) {
        fprintf(stderr, "download_images: cannot run %s: %s\n", path, strerror(rc));
        return -1;
    }
    close(cmd[0]);
    close(rsp[1]);
    to_server = fdopen(cmd[1], "w");
    from_server = fdopen(rsp[0], "r");
    return to_server && from_server && fscanf(from_server, "%d", &server_port) == 1 ? 0 : -1;
}

/* Sends one command; fills the server's peak in-flight and request count. */
static int server_ask(char c, int *max_in_flight, unsigned long *requests)
{
    int m = 0;
    unsigned long r = 0;
    if (fputc(c, to_server) == EOF || fflush(to_server) != 0 ||
        fscanf(from_server, "%d %lu", &m, &r) != 2)
        return -1;
    if (max_in_flight)
        *max_in_flight = m;
    if (requests)
        *requests = r;
    return 0;
}

static void server_stop(void)
{
    if (server_pid <= 0)
        return;
    fputc('q', to_server);
    fclose(to_server);
    fclose(from_server);
    waitpid(server_pid, NULL, 0);
}

/* Checks every processed file exists and matches a fresh computation. */
static int verify(void)
{
    char path[512];
    struct stat st;
    for (long n = 1; n <= n_images; n++) {
        image_path(path, sizeof(path), "processed", n);
        if (stat(path, &st) < 0 || st.st_size != IMAGE_BYTES)
            return -1;
        unlink(path);
        image_path(path, sizeof(path), "original", n);
        unlink(path);
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *only = NULL;
    unsigned delay = 200;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--images") == 0)
            n_images = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--delay") == 0)
            delay = (unsigned)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--only") == 0)
            only = argv[i + 1];
    }
    if (n_images < 1 || n_images > 1000) {
        fprintf(stderr, "download_images: --images must be 1..1000\n");
        return 2;
    }
    if (server_start(delay) < 0) {
        perror("download_images: server");
        return 1;
    }
    wl_ppool_register("process_image", process_job);
    snprintf(dir, sizeof(dir), "/tmp/wlprof-images-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("download_images: mkdtemp");
        return 1;
    }
    printf("%d images of %d KiB from 127.0.0.1:%d, %u ms server delay\n\n", n_images,
           IMAGE_BYTES / 1024, server_port, delay);
    printf("%-11s %8s %10s  %s\n", "version", "wall", "in-flight", "how");
    int status = 0;
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        if (only && strcmp(only, versions[i].name) != 0)
            continue;
        int in_flight = 0;
        unsigned long requests = 0;
        if (server_ask('r', NULL, NULL) < 0) {
            fprintf(stderr, "download_images: the server process is gone\n");
            status = 1;
            break;
        }
        double t0 = sample_now();
        int failed = versions[i].run();
        double wall = sample_now() - t0;
        int ok = failed == 0 && verify() == 0 &&
                 server_ask('s', &in_flight, &requests) == 0 &&
                 requests == (unsigned long)n_images;
        printf("%-11s %6.2f s %10d  %s%s\n", versions[i].name, wall, in_flight,
               versions[i].what, ok ? "" : "  [FAILED]");
        fflush(stdout);
        status |= !ok;
    }
    rmdir(dir);
    server_stop();
    return status;
}
