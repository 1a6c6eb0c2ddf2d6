/*
 * stacks_out.c -- a wl_stacks as a text table, folded stacks, speedscope
 * JSON and the report's JSON sections. Display only: no reading, no
 * symbolising.
 *
 * Folded lines are built root first ("main;work;compute 42"), equal lines of
 * different threads are merged (sorted, then summed), so the sum of counts
 * is exactly wl_stacks.samples. Frame names have ';' replaced (it is the
 * separator) and newlines dropped.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wlprof/report.h"
#include "wlprof/stacks.h"

static double pct(double x, double total)
{
    return total > 0 ? 100.0 * x / total : 0.0;
}

void wl_stacks_print_table(const wl_stacks *s, FILE *f, size_t limit)
{
    double all = s->user_s + s->sys_s + s->wait_s;
    /* A section of the same report as wl_report_print_text's: heading
     * indented two, lowercase, ending in ':'; its lines indented four. */
    fprintf(f,
            "  functions (%llu CPU samples, %llu waits; %.3f s user, %.3f s system, %.3f s "
            "waiting):\n",
            (unsigned long long)s->cpu_samples, (unsigned long long)s->waits, s->user_s, s->sys_s,
            s->wait_s);
    if (s->dropped)
        fprintf(f, "    (%llu samples dropped: agent buffers full)\n",
                (unsigned long long)s->dropped);
    if (s->nfuncs == 0) {
        fprintf(f, "    no stacks recorded\n");
        return;
    }
    fprintf(f, "    %-30s %21s  %21s  %s\n", "", "self %", "total %", "");
    fprintf(f, "    %-30s %6s %6s %7s  %6s %6s %7s  %s\n", "function", "user", "sys", "wait", "user",
            "sys", "wait", "where");
    size_t n = limit && limit < s->nfuncs ? limit : s->nfuncs;
    for (size_t i = 0; i < n; i++) {
        const wl_func_stat *fs = &s->funcs[i];
        char where[512];
        if (fs->file)
            snprintf(where, sizeof(where), "%s:%d", fs->file, fs->line);
        else
            snprintf(where, sizeof(where), "%s", fs->module);
        fprintf(f, "    %-30.30s %6.1f %6.1f %7.1f  %6.1f %6.1f %7.1f  %s\n", fs->name,
                pct(fs->self_user_s, all), pct(fs->self_sys_s, all), pct(fs->self_wait_s, all),
                pct(fs->total_user_s, all), pct(fs->total_sys_s, all), pct(fs->total_wait_s, all),
                where);
    }
}

/* ---- folded ---- */

static void put_name(char *dst, size_t cap, size_t *len, const char *name)
{
    for (const char *p = name; *p && *len + 1 < cap; p++) {
        char c = *p;
        if (c == ';')
            c = ':';
        if (c == '\n' || c == '\r')
            continue;
        dst[(*len)++] = c;
    }
    dst[*len] = '\0';
}

/* A frame's name in folded output: a Python frame with its file and line,
 * py-spy style ("process_image (blur.py:12)"). */
static void put_frame(char *dst, size_t cap, size_t *len, const wl_frame *f)
{
    put_name(dst, cap, len, f->func);
    if (f->python) {
        char buf[300];
        snprintf(buf, sizeof(buf), " (%.256s:%d)", f->module, f->line);
        put_name(dst, cap, len, buf);
    }
}

/* The folded form of stack st (root first), malloc'ed. */
static char *folded_line(const wl_stacks *s, const wl_stack *st)
{
    size_t cap = 64;
    for (uint32_t k = 0; k < st->nframes; k++)
        cap += strlen(s->frames[st->frames[k]].func) + 1 + (s->frames[st->frames[k]].python ? 300 : 0);
    if (st->call)
        cap += strlen(st->call) + 3;
    char *line = malloc(cap);
    if (!line)
        return NULL;
    size_t len = 0;
    line[0] = '\0';
    for (uint32_t k = st->nframes; k-- > 0;) {
        put_frame(line, cap, &len, &s->frames[st->frames[k]]);
        if ((k > 0 || st->call) && len + 1 < cap) {
            line[len++] = ';';
            line[len] = '\0';
        }
    }
    if (st->call) {
        char buf[64];
        snprintf(buf, sizeof(buf), "[%s]", st->call);
        put_name(line, cap, &len, buf);
    }
    if (len == 0)
        put_name(line, cap, &len, "[unknown]");
    return line;
}

struct fold {
    char *line;
    uint64_t count;
};

static int cmp_fold(const void *a, const void *b)
{
    return strcmp(((const struct fold *)a)->line, ((const struct fold *)b)->line);
}

int wl_stacks_write_folded(const wl_stacks *s, FILE *f)
{
    struct fold *v = calloc(s->nstacks + 1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    size_t n = 0;
    int err = 0;
    for (size_t i = 0; i < s->nstacks; i++) {
        if (!s->stacks[i].samples)
            continue;
        v[n].line = folded_line(s, &s->stacks[i]);
        if (!v[n].line) {
            err = -ENOMEM;
            goto out;
        }
        v[n++].count = s->stacks[i].samples;
    }
    qsort(v, n, sizeof(*v), cmp_fold);
    for (size_t i = 0; i < n;) {
        uint64_t c = v[i].count;
        size_t j = i + 1;
        while (j < n && strcmp(v[j].line, v[i].line) == 0)
            c += v[j++].count;
        if (fprintf(f, "%s %llu\n", v[i].line, (unsigned long long)c) < 0) {
            err = -EIO;
            goto out;
        }
        i = j;
    }
    if (fflush(f) != 0)
        err = -errno;
out:
    for (size_t i = 0; i < n; i++)
        free(v[i].line);
    free(v);
    return err;
}

int wl_folded_parse(FILE *f, uint64_t *total, size_t *lines)
{
    *total = 0;
    *lines = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int err = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        char *sp = strrchr(line, ' ');
        char *end = NULL;
        if (!sp || sp == line) {
            err = -EINVAL;
            break;
        }
        unsigned long long c = strtoull(sp + 1, &end, 10);
        if (!end || *end || end == sp + 1) {
            err = -EINVAL;
            break;
        }
        *total += c;
        (*lines)++;
    }
    free(line);
    return err;
}

/* ---- speedscope ---- */

/* speedscope frames: one per function, then one per distinct blocking call. */
static json_t *speedscope_doc(const wl_stacks *s, const char *name)
{
    json_t *frames = json_array();
    json_t *profiles = json_array();
    json_t *doc = json_object();
    const char **calls = calloc(s->nstacks + 1, sizeof(*calls));
    size_t ncalls = 0;
    if (!frames || !profiles || !doc || !calls)
        goto fail;
    for (size_t i = 0; i < s->nfuncs; i++) {
        json_t *fr = json_pack("{s:s}", "name", s->funcs[i].name);
        if (!fr)
            goto fail;
        if (s->funcs[i].file) {
            json_object_set_new(fr, "file", json_string(s->funcs[i].file));
            json_object_set_new(fr, "line", json_integer(s->funcs[i].line));
        } else {
            json_object_set_new(fr, "file", json_string(s->funcs[i].module));
        }
        json_array_append_new(frames, fr);
    }
    for (size_t i = 0; i < s->nstacks; i++) {
        const char *c = s->stacks[i].call;
        if (!c)
            continue;
        size_t k = 0;
        while (k < ncalls && strcmp(calls[k], c) != 0)
            k++;
        if (k == ncalls) {
            calls[ncalls++] = c;
            char buf[64];
            snprintf(buf, sizeof(buf), "[%s]", c);
            json_array_append_new(frames, json_pack("{s:s}", "name", buf));
        }
    }
    for (size_t t = 0; t < s->nthreads; t++) {
        const wl_stack_thread *th = &s->threads[t];
        json_t *samples = json_array();
        json_t *weights = json_array();
        double total = 0;
        for (size_t i = 0; i < s->nstacks; i++) {
            const wl_stack *st = &s->stacks[i];
            if (st->pid != th->pid || st->tid != th->tid)
                continue;
            double w = st->user_s + st->sys_s + st->wait_s;
            if (w <= 0)
                continue;
            json_t *stack = json_array();
            for (uint32_t k = st->nframes; k-- > 0;)
                json_array_append_new(stack, json_integer(s->frames[st->frames[k]].func_id));
            if (st->call) {
                size_t c = 0;
                while (c < ncalls && strcmp(calls[c], st->call) != 0)
                    c++;
                json_array_append_new(stack, json_integer((json_int_t)(s->nfuncs + c)));
            }
            json_array_append_new(samples, stack);
            json_array_append_new(weights, json_real(w));
            total += w;
        }
        char pname[96];
        snprintf(pname, sizeof(pname), "%s %d/%d", th->comm[0] ? th->comm : "thread", th->pid, th->tid);
        json_array_append_new(profiles, json_pack("{s:s, s:s, s:s, s:f, s:f, s:o, s:o}", "type", "sampled",
                                                  "name", pname, "unit", "seconds", "startValue", 0.0,
                                                  "endValue", total, "samples", samples, "weights", weights));
    }
    free(calls);
    json_object_set_new(doc, "$schema", json_string("https://www.speedscope.app/file-format-schema.json"));
    json_object_set_new(doc, "shared", json_pack("{s:o}", "frames", frames));
    json_object_set_new(doc, "profiles", profiles);
    json_object_set_new(doc, "name", json_string(name ? name : "wlprof"));
    json_object_set_new(doc, "exporter", json_string("wlprof " WL_VERSION));
    json_object_set_new(doc, "activeProfileIndex", json_integer(0));
    return doc;
fail:
    free(calls);
    json_decref(frames);
    json_decref(profiles);
    json_decref(doc);
    return NULL;
}

int wl_stacks_write_speedscope(const wl_stacks *s, FILE *f, const char *name)
{
    json_t *doc = speedscope_doc(s, name);
    if (!doc)
        return -ENOMEM;
    int r = json_dumpf(doc, f, JSON_COMPACT) == 0 ? 0 : -EIO;
    json_decref(doc);
    if (r == 0 && fflush(f) != 0)
        r = -errno;
    return r;
}

/* Writes with fn into path atomically (see wl_atomic_open). */
static int save_atomic(const char *path, int (*fn)(const wl_stacks *, FILE *, const char *),
                       const wl_stacks *s, const char *name)
{
    char err[512];
    wl_atomic_file af;
    int rc = wl_atomic_open(&af, path, err, sizeof(err));
    if (rc < 0)
        return rc;
    rc = fn(s, af.f, name);
    if (rc < 0) {
        wl_atomic_abort(&af);
        return rc;
    }
    return wl_atomic_commit(&af, err, sizeof(err));
}

static int folded_fn(const wl_stacks *s, FILE *f, const char *name)
{
    (void)name;
    return wl_stacks_write_folded(s, f);
}

int wl_stacks_save_folded(const wl_stacks *s, const char *path)
{
    return save_atomic(path, folded_fn, s, NULL);
}

int wl_stacks_save_speedscope(const wl_stacks *s, const char *path, const char *name)
{
    return save_atomic(path, wl_stacks_write_speedscope, s, name);
}

/* ---- report sections ---- */

static json_t *split(double user, double sys, double wait, uint64_t samples, double all)
{
    return json_pack("{s:f, s:f, s:f, s:I, s:f, s:f, s:f}", "user_s", user, "sys_s", sys, "wait_s", wait,
                     "samples", (json_int_t)samples, "user_pct", pct(user, all), "sys_pct", pct(sys, all),
                     "wait_pct", pct(wait, all));
}

void *wl_stacks_to_json(const wl_stacks *s, size_t max_funcs, size_t max_stacks)
{
    double all = s->user_s + s->sys_s + s->wait_s;
    json_t *funcs = json_array();
    json_t *top = json_array();
    json_t *threads = json_array();
    if (!funcs || !top || !threads)
        goto fail;
    size_t nf = max_funcs && max_funcs < s->nfuncs ? max_funcs : s->nfuncs;
    for (size_t i = 0; i < nf; i++) {
        const wl_func_stat *fs = &s->funcs[i];
        json_t *o = json_pack("{s:s, s:s, s:o, s:o}", "name", fs->name, "module", fs->module, "self",
                              split(fs->self_user_s, fs->self_sys_s, fs->self_wait_s, fs->self_samples, all),
                              "total",
                              split(fs->total_user_s, fs->total_sys_s, fs->total_wait_s, fs->total_samples, all));
        if (!o)
            goto fail;
        json_object_set_new(o, "file", fs->file ? json_string(fs->file) : json_null());
        json_object_set_new(o, "line", json_integer(fs->line));
        json_array_append_new(funcs, o);
    }
    size_t ns = max_stacks && max_stacks < s->nstacks ? max_stacks : s->nstacks;
    for (size_t i = 0; i < ns; i++) {
        const wl_stack *st = &s->stacks[i];
        json_t *fr = json_array();
        for (uint32_t k = st->nframes; k-- > 0;) {
            const wl_frame *f = &s->frames[st->frames[k]];
            json_t *o = json_pack("{s:s, s:s}", "func", f->func, "module", f->module);
            json_object_set_new(o, "file", f->file ? json_string(f->file) : json_null());
            json_object_set_new(o, "line", json_integer(f->line));
            json_array_append_new(fr, o);
        }
        json_t *o = json_pack("{s:i, s:i, s:o, s:I, s:I, s:f, s:f, s:I, s:f}", "pid", st->pid, "tid", st->tid,
                              "frames", fr, "samples", (json_int_t)st->samples, "cpu_samples",
                              (json_int_t)st->cpu_samples, "user_s", st->user_s, "sys_s", st->sys_s, "waits",
                              (json_int_t)st->waits, "wait_s", st->wait_s);
        if (!o)
            goto fail;
        json_object_set_new(o, "call", st->call ? json_string(st->call) : json_null());
        json_array_append_new(top, o);
    }
    for (size_t i = 0; i < s->nthreads; i++) {
        const wl_stack_thread *t = &s->threads[i];
        json_array_append_new(threads,
                              json_pack("{s:i, s:i, s:s, s:I, s:f, s:f, s:I, s:f, s:I}", "pid", t->pid, "tid",
                                        t->tid, "comm", t->comm, "cpu_samples", (json_int_t)t->cpu_samples,
                                        "user_s", t->user_s, "sys_s", t->sys_s, "waits", (json_int_t)t->waits,
                                        "wait_s", t->wait_s, "dropped", (json_int_t)t->dropped));
    }
    json_t *stacks = json_pack("{s:f, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:i, s:I, s:I, s:o, s:o}", "hz", s->hz,
                               "samples", (json_int_t)s->samples, "cpu_samples", (json_int_t)s->cpu_samples,
                               "waits", (json_int_t)s->waits, "dropped", (json_int_t)s->dropped, "user_s",
                               s->user_s, "sys_s", s->sys_s, "wait_s", s->wait_s, "processes", (int)s->processes,
                               "unique_stacks", (json_int_t)s->nstacks, "bad_records",
                               (json_int_t)s->bad_records, "threads", threads, "top", top);
    if (!stacks) {
        json_decref(funcs);
        return NULL;
    }
    json_object_set_new(stacks, "gil_s", json_real(s->gil_s));
    return json_pack("{s:o, s:o}", "functions", funcs, "stacks", stacks);
fail:
    json_decref(funcs);
    json_decref(top);
    json_decref(threads);
    return NULL;
}
