/*
 * stacks_out.c -- a wl_stacks as a text table, the folded-stack parser,
 * the atomic save helpers and the report's JSON sections ("functions",
 * "stacks"). Display only: no reading, no symbolising. The folded and
 * speedscope writers and the complete stack table are in stacks_export.c.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wlprof/outputs.h"
#include "wlprof/stacks.h"
#include "stacks_internal.h"

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
        json_object_set_new(json_array_get(threads, json_array_size(threads) - 1), "process",
                            json_string(t->process));
    }
    json_t *stacks = json_pack("{s:f, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:i, s:I, s:I, s:o, s:o}", "hz", s->hz,
                               "samples", (json_int_t)s->samples, "cpu_samples", (json_int_t)s->cpu_samples,
                               "waits", (json_int_t)s->waits, "dropped", (json_int_t)s->dropped, "user_s",
                               s->user_s, "sys_s", s->sys_s, "wait_s", s->wait_s, "processes", (int)s->processes,
                               "unique_stacks", (json_int_t)s->nstacks, "bad_records",
                               (json_int_t)s->bad_records, "threads", threads, "top", top);
    if (!stacks || wl__stacks_add_tables(stacks, s) < 0) {
        json_decref(stacks);
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
