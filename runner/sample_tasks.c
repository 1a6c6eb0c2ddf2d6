/*
 * sample_tasks.c -- the built-in sample tasks, written against the task
 * library ABI of wlprof/run.h exactly as a user's library would be.
 *
 * This one file is compiled twice: into wl_runner (the `wlprof run
 * --sample NAME` table, symbols hidden) and into libwlprof-samples.so
 * (WL_SAMPLES_SHARED: symbols exported, so `wlprof run --lib
 * build/libwlprof-samples.so --task sample_sleep` loads them like any
 * user library; the async forms then resolve wl_* against wlprof).
 *
 *   task                  forms            input                       kind
 *   sample_sleep          blocking, async  {"ms": 200}                 waiting (timer)
 *   sample_download       blocking, async  {"port": P, "id": N, ...}   waiting (network)
 *   sample_blocking_read  blocking         {"port": P, "id": N, ...}   waiting (network)
 *   sample_primes         blocking         {"n": 2000000}              CPU
 *
 * download / blocking_read GET /img/N from the local image server
 * (wlprof/httpd.h) and check every byte; optional "delay_ms" and "size"
 * override the server's defaults for that request.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "wlprof/httpd.h"
#include "wlprof/run.h"
#include "wlprof/sched.h"
#include "internal.h"

#ifdef WL_SAMPLES_SHARED
#define SAMPLE_API __attribute__((visibility("default")))
#else
#define SAMPLE_API
#endif

/* Task functions are found by name, so they carry no prototype elsewhere. */
SAMPLE_API int sample_sleep(const wl_bytes *in, wl_bytes *out);
SAMPLE_API int sample_sleep_async(const wl_bytes *in, wl_bytes *out);
SAMPLE_API int sample_download(const wl_bytes *in, wl_bytes *out);
SAMPLE_API int sample_download_async(const wl_bytes *in, wl_bytes *out);
SAMPLE_API int sample_blocking_read(const wl_bytes *in, wl_bytes *out);
SAMPLE_API int sample_primes(const wl_bytes *in, wl_bytes *out);

static int fail(wl_bytes *out, int rc, const char *msg)
{
    out->len = 0;
    wl_bytes_append(out, msg, strlen(msg));
    return rc;
}

static int put_json(wl_bytes *out, json_t *obj)
{
    char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!s)
        return -ENOMEM;
    int rc = wl_bytes_append(out, s, strlen(s));
    free(s);
    return rc;
}

/* Integer field of the input object; def when absent. -1 on bad input. */
static int parse_input(const wl_bytes *in, json_t **root)
{
    json_error_t e;
    *root = json_loadb((const char *)in->data, in->len, JSON_DECODE_ANY, &e);
    return *root && json_is_object(*root) ? 0 : -EINVAL;
}

static long field(const json_t *root, const char *key, long def)
{
    const json_t *v = json_object_get(root, key);
    return json_is_integer(v) ? (long)json_integer_value(v) : def;
}

/* ---- sleep ---------------------------------------------------------------- */

static int sleep_ms_of(const wl_bytes *in, long *ms)
{
    json_t *root;
    if (parse_input(in, &root) < 0) {
        json_decref(root);
        return -EINVAL;
    }
    *ms = field(root, "ms", 100);
    json_decref(root);
    return *ms < 0 ? -EINVAL : 0;
}

static int sleep_result(wl_bytes *out, long ms)
{
    json_t *o = json_object();
    json_object_set_new(o, "slept_ms", json_integer(ms));
    return put_json(out, o);
}

int sample_sleep(const wl_bytes *in, wl_bytes *out)
{
    long ms;
    if (sleep_ms_of(in, &ms) < 0)
        return fail(out, -EINVAL, "input must be an object like {\"ms\": 200}");
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    return sleep_result(out, ms);
}

int sample_sleep_async(const wl_bytes *in, wl_bytes *out)
{
    long ms;
    if (sleep_ms_of(in, &ms) < 0)
        return fail(out, -EINVAL, "input must be an object like {\"ms\": 200}");
    int rc = wl_sleep((uint64_t)ms);
    if (rc < 0)
        return rc;
    return sleep_result(out, ms);
}

/* ---- download -------------------------------------------------------------- */

/* One GET: request text, the image number and what to check. */
typedef struct get_req {
    struct sockaddr_in addr;
    long id;
    char text[160];
    int textlen;
} get_req;

static int get_parse(const wl_bytes *in, get_req *g)
{
    json_t *root;
    if (parse_input(in, &root) < 0) {
        json_decref(root);
        return -EINVAL;
    }
    long port = field(root, "port", -1);
    g->id = field(root, "id", 0);
    long delay = field(root, "delay_ms", -1);
    long size = field(root, "size", -1);
    json_decref(root);
    if (port <= 0 || port > 65535 || g->id < 0)
        return -EINVAL;
    memset(&g->addr, 0, sizeof(g->addr));
    g->addr.sin_family = AF_INET;
    g->addr.sin_port = htons((uint16_t)port);
    g->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char query[64] = "";
    if (delay >= 0 && size >= 0)
        snprintf(query, sizeof(query), "?delay=%ld&size=%ld", delay, size);
    else if (delay >= 0)
        snprintf(query, sizeof(query), "?delay=%ld", delay);
    else if (size >= 0)
        snprintf(query, sizeof(query), "?size=%ld", size);
    g->textlen = snprintf(g->text, sizeof(g->text), "GET /img/%ld%s HTTP/1.0\r\n\r\n", g->id,
                          query);
    return 0;
}

/* Parses the response as it streams in: headers, then body bytes checked
 * against the server's pattern. */
typedef struct get_state {
    char head[1024];
    size_t headlen;
    int in_body;
    long content_length;
    size_t body;
    int bad_byte;
    unsigned long checksum;
} get_state;

static void get_feed(get_state *st, long id, const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (!st->in_body && i < n) {
        if (st->headlen + 1 < sizeof(st->head))
            st->head[st->headlen++] = (char)p[i];
        st->head[st->headlen] = '\0';
        i++;
        char *end = strstr(st->head, "\r\n\r\n");
        if (end) {
            st->in_body = 1;
            char *cl = strstr(st->head, "Content-Length:");
            st->content_length = cl ? strtol(cl + 15, NULL, 10) : -1;
            if (strncmp(st->head, "HTTP/1.0 200", 12) != 0)
                st->content_length = -2;
        }
    }
    for (; i < n; i++, st->body++) {
        if (p[i] != wl_httpd_image_byte(id, st->body))
            st->bad_byte = 1;
        st->checksum = st->checksum * 31 + p[i];
    }
}

static int get_result(const get_state *st, const get_req *g, wl_bytes *out)
{
    if (!st->in_body || st->content_length == -2)
        return fail(out, -EPROTO, "server did not answer 200 OK");
    if (st->content_length >= 0 && (size_t)st->content_length != st->body)
        return fail(out, -EPROTO, "short body");
    if (st->bad_byte)
        return fail(out, -EPROTO, "corrupt body");
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(g->id));
    json_object_set_new(o, "bytes", json_integer((json_int_t)st->body));
    json_object_set_new(o, "checksum", json_integer((json_int_t)(st->checksum & 0x7fffffff)));
    return put_json(out, o);
}

static const char bad_get[] = "input must be an object like {\"port\": 8080, \"id\": 1}";

int sample_blocking_read(const wl_bytes *in, wl_bytes *out)
{
    get_req g;
    get_state st = {0};
    uint8_t buf[16384];
    int rc = 0;

    if (get_parse(in, &g) < 0)
        return fail(out, -EINVAL, bad_get);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&g.addr, sizeof(g.addr)) < 0 ||
        send(fd, g.text, (size_t)g.textlen, MSG_NOSIGNAL) != g.textlen) {
        rc = -errno;
        goto close_fd;
    }
    for (;;) {
        ssize_t k = recv(fd, buf, sizeof(buf), 0); /* blocks this thread */
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            rc = -errno;
            goto close_fd;
        }
        if (k == 0)
            break;
        get_feed(&st, g.id, buf, (size_t)k);
    }
    rc = get_result(&st, &g, out);
close_fd:
    close(fd);
    return rc;
}

int sample_download(const wl_bytes *in, wl_bytes *out)
{
    return sample_blocking_read(in, out);
}

int sample_download_async(const wl_bytes *in, wl_bytes *out)
{
    get_req *g = malloc(sizeof(*g));
    get_state *st = calloc(1, sizeof(*st));
    uv_tcp_t *tcp = malloc(sizeof(*tcp));
    uint8_t *buf = malloc(16384);
    int rc = -ENOMEM;

    if (!g || !st || !tcp || !buf)
        goto free_all;
    if (get_parse(in, g) < 0) {
        rc = fail(out, -EINVAL, bad_get);
        goto free_all;
    }
    rc = wl_tcp_connect(tcp, (const struct sockaddr *)&g->addr);
    if (rc < 0)
        goto free_all;
    rc = wl_write((uv_stream_t *)tcp, g->text, (size_t)g->textlen);
    while (rc == 0) {
        ssize_t k = wl_read((uv_stream_t *)tcp, buf, 16384);
        if (k < 0 && k != UV_EOF)
            rc = (int)k;
        if (k <= 0)
            break;
        get_feed(st, g->id, buf, (size_t)k);
    }
    wl_close((uv_handle_t *)tcp);
    if (rc == 0)
        rc = get_result(st, g, out);
free_all:
    free(buf);
    free(tcp);
    free(st);
    free(g);
    return rc;
}

/* ---- primes ---------------------------------------------------------------- */

int sample_primes(const wl_bytes *in, wl_bytes *out)
{
    json_t *root;
    if (parse_input(in, &root) < 0) {
        json_decref(root);
        return fail(out, -EINVAL, "input must be an object like {\"n\": 2000000}");
    }
    long n = field(root, "n", 1000000);
    json_decref(root);
    long count = 0;
    for (long i = 2; i < n; i++) {
        int prime = 1;
        for (long d = 2; d * d <= i; d++) {
            if (i % d == 0) {
                prime = 0;
                break;
            }
        }
        count += prime;
    }
    json_t *o = json_object();
    json_object_set_new(o, "n", json_integer(n));
    json_object_set_new(o, "primes", json_integer(count));
    return put_json(out, o);
}

/* ---- the table (built-in only) ------------------------------------------- */

#ifndef WL_SAMPLES_SHARED
const wl_task_def wl__run_sample_sleep = {"sample_sleep", sample_sleep, sample_sleep_async};
const wl_task_def wl__run_sample_download = {"sample_download", sample_download,
                                          sample_download_async};
const wl_task_def wl__run_sample_blocking_read = {"sample_blocking_read", sample_blocking_read,
                                               NULL};
const wl_task_def wl__run_sample_primes = {"sample_primes", sample_primes, NULL};
#endif
