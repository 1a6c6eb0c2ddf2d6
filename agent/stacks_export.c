/*
 * stacks_export.c -- stacks for other tools, and back from a report:
 * folded stacks (flamegraph.pl), speedscope JSON, the report's complete
 * stack table with time-ordered events, and wl_stacks_from_json.
 *
 * Folded lines are built root first. With roots (the default) each line
 * starts with its process and thread -- "python3 812;MainThread 812;..." --
 * so different programs never merge under one "_start"; a waiting stack
 * ends with "[call];[wait:KIND]" so flamegraph.pl users can colour waits
 * apart. Equal lines are merged (sorted, then summed), so the counts sum
 * to wl_stacks.samples. ';' in names becomes ':' and newlines are dropped.
 *
 * speedscope: one "evented" profile per thread, in true time order. Each
 * event (an on-CPU sample covering the CPU time since the previous one, or
 * a blocking call from entry to return) opens its stack's frames at its
 * start and closes them at its end; frames shared with the next event stay
 * open when the next one starts within two sampling intervals, so a loop
 * reads as one block, not a comb. Starts are clamped to the previous end
 * (a CPU sample after a sleep covers CPU time from before it). Threads
 * without events get no profile. Stacks read back from a report that has
 * no events (an older one) fall back to one "sampled" profile per thread.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stacks_internal.h"

const char *wl__call_wait_kind(const char *call)
{
    static const struct {
        const char *prefix;
        const char *kind;
    } map[] = {
        {"nanosleep", "sleep"}, {"clock_nanosleep", "sleep"}, {"usleep", "sleep"}, {"sleep", "sleep"},
        {"recv", "network"},    {"send", "network"},          {"accept", "network"}, {"connect", "network"},
        {"poll", "poll"},       {"ppoll", "poll"},            {"select", "poll"},   {"pselect", "poll"},
        {"epoll", "poll"},      {"fsync", "disk"},            {"fdatasync", "disk"}, {"pthread_", "lock"},
        {"sem_wait", "lock"},   {"flock", "lock"},            {"wait", "child"},    {"system", "child"},
    };
    if (!call)
        return "other";
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strncmp(call, map[i].prefix, strlen(map[i].prefix)) == 0)
            return map[i].kind;
    return "io";
}

/* "name 123": a thread's process, by the program it exec'd. */
static void process_label(const wl_stack_thread *t, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s %d", t->process[0] ? t->process : t->comm[0] ? t->comm : "process", t->pid);
}

static void thread_label(const wl_stack_thread *t, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s %d", t->comm[0] ? t->comm : "thread", t->tid);
}

static const wl_stack_thread *thread_of(const wl_stacks *s, int pid, int tid)
{
    for (size_t i = 0; i < s->nthreads; i++)
        if (s->threads[i].pid == pid && s->threads[i].tid == tid)
            return &s->threads[i];
    return NULL;
}

/* ---- folded ---- */

struct line_buf {
    char *p;
    size_t len, cap;
};

static int lb_put(struct line_buf *b, const char *name, int sep)
{
    size_t n = strlen(name) + 2;
    if (b->len + n + 1 > b->cap) {
        size_t c = (b->cap + n) * 2 + 64;
        char *p = realloc(b->p, c);
        if (!p)
            return -ENOMEM;
        b->p = p;
        b->cap = c;
    }
    if (sep && b->len)
        b->p[b->len++] = ';';
    for (const char *q = name; *q; q++) {
        if (*q == '\n' || *q == '\r')
            continue;
        b->p[b->len++] = *q == ';' ? ':' : *q;
    }
    b->p[b->len] = '\0';
    return 0;
}

/* The folded form of stack st (root first), malloc'ed. */
static char *folded_line(const wl_stacks *s, const wl_stack *st, wl_folded_roots roots)
{
    struct line_buf b = {0};
    char buf[128];
    int rc = 0;
    if (roots == WL_FOLDED_ROOTS_THREAD) {
        const wl_stack_thread *t = thread_of(s, st->pid, st->tid);
        wl_stack_thread anon = {.pid = st->pid, .tid = st->tid};
        if (!t)
            t = &anon;
        process_label(t, buf, sizeof(buf));
        rc |= lb_put(&b, buf, 1);
        thread_label(t, buf, sizeof(buf));
        rc |= lb_put(&b, buf, 1);
    }
    for (uint32_t k = st->nframes; k-- > 0;) {
        const wl_frame *fr = &s->frames[st->frames[k]];
        if (fr->python) { /* py-spy style: "process_image (blur.py:12)" */
            char py[512];
            snprintf(py, sizeof(py), "%.200s (%.256s:%d)", fr->func, fr->module, fr->line);
            rc |= lb_put(&b, py, 1);
        } else {
            rc |= lb_put(&b, fr->func, 1);
        }
    }
    if (st->call) {
        snprintf(buf, sizeof(buf), "[%s]", st->call);
        rc |= lb_put(&b, buf, 1);
        if (roots == WL_FOLDED_ROOTS_THREAD) {
            snprintf(buf, sizeof(buf), "[wait:%s]", wl__call_wait_kind(st->call));
            rc |= lb_put(&b, buf, 1);
        }
    }
    if (st->nframes == 0 && !st->call)
        rc |= lb_put(&b, "[unknown]", 1);
    if (rc) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

struct fold {
    char *line;
    uint64_t count;
};

static int cmp_fold(const void *a, const void *b)
{
    return strcmp(((const struct fold *)a)->line, ((const struct fold *)b)->line);
}

int wl_stacks_write_folded_roots(const wl_stacks *s, FILE *f, wl_folded_roots roots)
{
    struct fold *v = calloc(s->nstacks + 1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    size_t n = 0;
    int err = 0;
    for (size_t i = 0; i < s->nstacks; i++) {
        if (!s->stacks[i].samples)
            continue;
        v[n].line = folded_line(s, &s->stacks[i], roots);
        if (!v[n].line) {
            err = -ENOMEM;
            goto out;
        }
        v[n++].count = s->stacks[i].samples;
    }
    if (n)
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

int wl_stacks_write_folded(const wl_stacks *s, FILE *f)
{
    return wl_stacks_write_folded_roots(s, f, WL_FOLDED_ROOTS_THREAD);
}

/* ---- speedscope ---- */

/* speedscope frame index of stack st's k-th frame from the root (k ==
 * nframes: its blocking call). */
static json_int_t frame_index(const wl_stacks *s, const wl_stack *st, uint32_t k, const char **calls,
                              size_t ncalls)
{
    if (k < st->nframes)
        return s->frames[st->frames[st->nframes - 1 - k]].func_id;
    size_t c = 0;
    while (c < ncalls && strcmp(calls[c], st->call) != 0)
        c++;
    return (json_int_t)(s->nfuncs + c);
}

static uint32_t depth_of(const wl_stack *st)
{
    return st->nframes + (st->call ? 1 : 0);
}

static int add_ev(json_t *events, const char *type, json_int_t frame, double at)
{
    return json_array_append_new(events, json_pack("{s:s, s:I, s:f}", "type", type, "frame", frame, "at", at));
}

/* One evented profile for thread ti from its events [lo, hi). */
static json_t *evented_profile(const wl_stacks *s, size_t ti, size_t lo, size_t hi, const char **calls,
                               size_t ncalls)
{
    const wl_stack_thread *th = &s->threads[ti];
    json_t *events = json_array();
    if (!events)
        return NULL;
    double gap = s->hz > 0 ? 2.0 / s->hz : 0.02;
    const wl_stack *open = NULL; /* stack whose frames are open */
    double end = -INFINITY, first = 0;
    int rc = 0;
    for (size_t i = lo; i < hi; i++) {
        const wl_stack_event *e = &s->events[i];
        const wl_stack *st = &s->stacks[e->stack];
        double start = e->t_s > end ? e->t_s : end;
        double stop = e->t_s + e->dur_s > start ? e->t_s + e->dur_s : start;
        uint32_t keep = 0;
        if (open && start - end <= gap) {
            start = end; /* continuous: shared frames stay open */
            uint32_t da = depth_of(open), db = depth_of(st);
            while (keep < da && keep < db &&
                   frame_index(s, open, keep, calls, ncalls) == frame_index(s, st, keep, calls, ncalls))
                keep++;
        }
        if (open)
            for (uint32_t k = depth_of(open); k-- > keep;)
                rc |= add_ev(events, "C", frame_index(s, open, k, calls, ncalls), end);
        if (i == lo)
            first = start;
        for (uint32_t k = keep; k < depth_of(st); k++)
            rc |= add_ev(events, "O", frame_index(s, st, k, calls, ncalls), start);
        open = depth_of(st) ? st : NULL;
        end = stop;
    }
    if (open)
        for (uint32_t k = depth_of(open); k-- > 0;)
            rc |= add_ev(events, "C", frame_index(s, open, k, calls, ncalls), end);
    char proc[96], thr[64], name[192];
    process_label(th, proc, sizeof(proc));
    thread_label(th, thr, sizeof(thr));
    snprintf(name, sizeof(name), "%s / %s", proc, thr);
    if (rc) {
        json_decref(events);
        return NULL;
    }
    return json_pack("{s:s, s:s, s:s, s:f, s:f, s:o}", "type", "evented", "name", name, "unit", "seconds",
                     "startValue", first, "endValue", end > first ? end : first, "events", events);
}

/* One sampled profile for thread ti (no events: an older report). */
static json_t *sampled_profile(const wl_stacks *s, size_t ti, const char **calls, size_t ncalls)
{
    const wl_stack_thread *th = &s->threads[ti];
    json_t *samples = json_array();
    json_t *weights = json_array();
    double total = 0;
    for (size_t i = 0; i < s->nstacks; i++) {
        const wl_stack *st = &s->stacks[i];
        double w = st->user_s + st->sys_s + st->wait_s;
        if (st->pid != th->pid || st->tid != th->tid || w <= 0)
            continue;
        json_t *stack = json_array();
        for (uint32_t k = 0; k < depth_of(st); k++)
            json_array_append_new(stack, json_integer(frame_index(s, st, k, calls, ncalls)));
        json_array_append_new(samples, stack);
        json_array_append_new(weights, json_real(w));
        total += w;
    }
    if (total <= 0) {
        json_decref(samples);
        json_decref(weights);
        return NULL;
    }
    char proc[96], thr[64], name[192];
    process_label(th, proc, sizeof(proc));
    thread_label(th, thr, sizeof(thr));
    snprintf(name, sizeof(name), "%s / %s", proc, thr);
    return json_pack("{s:s, s:s, s:s, s:f, s:f, s:o, s:o}", "type", "sampled", "name", name, "unit", "seconds",
                     "startValue", 0.0, "endValue", total, "samples", samples, "weights", weights);
}

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
            char buf[96];
            snprintf(buf, sizeof(buf), "[%s] (wait:%s)", c, wl__call_wait_kind(c));
            json_array_append_new(frames, json_pack("{s:s}", "name", buf));
        }
    }
    size_t e = 0;
    for (size_t t = 0; t < s->nthreads; t++) {
        size_t lo = e;
        while (e < s->nevents && s->events[e].thread == t)
            e++;
        json_t *p = s->nevents ? (e > lo ? evented_profile(s, t, lo, e, calls, ncalls) : NULL)
                               : sampled_profile(s, t, calls, ncalls);
        if (p)
            json_array_append_new(profiles, p);
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

/* ---- the report's complete stack table ---- */

int wl__stacks_add_tables(void *stacks_json, const wl_stacks *s)
{
    json_t *o = stacks_json;
    json_t *frames = json_array();
    json_t *all = json_array();
    json_t *events = json_array();
    if (!frames || !all || !events)
        goto fail;
    for (size_t i = 0; i < s->nframes; i++) {
        const wl_frame *f = &s->frames[i];
        json_t *fr = json_pack("{s:s, s:s, s:i}", "func", f->func, "module", f->module, "line", f->line);
        if (fr && f->python)
            json_object_set_new(fr, "python", json_true());
        if (!fr || json_object_set_new(fr, "file", f->file ? json_string(f->file) : json_null()) < 0 ||
            json_array_append_new(frames, fr) < 0)
            goto fail;
    }
    for (size_t i = 0; i < s->nstacks; i++) {
        const wl_stack *st = &s->stacks[i];
        json_t *ids = json_array();
        for (uint32_t k = st->nframes; ids && k-- > 0;)
            json_array_append_new(ids, json_integer(st->frames[k]));
        json_t *one = json_pack("{s:i, s:i, s:o, s:I, s:f, s:f, s:I, s:f}", "pid", st->pid, "tid", st->tid,
                                "frames", ids, "cpu_samples", (json_int_t)st->cpu_samples, "user_s", st->user_s,
                                "sys_s", st->sys_s, "waits", (json_int_t)st->waits, "wait_s", st->wait_s);
        if (!one || json_object_set_new(one, "call", st->call ? json_string(st->call) : json_null()) < 0 ||
            json_array_append_new(all, one) < 0)
            goto fail;
    }
    size_t e = 0;
    for (size_t t = 0; t < s->nthreads; t++) {
        size_t lo = e;
        while (e < s->nevents && s->events[e].thread == t)
            e++;
        if (e == lo)
            continue;
        json_t *ts = json_array(), *dur = json_array(), *stk = json_array();
        for (size_t i = lo; ts && dur && stk && i < e; i++) {
            json_array_append_new(ts, json_integer((json_int_t)llround(s->events[i].t_s * 1e6)));
            json_array_append_new(dur, json_integer((json_int_t)llround(s->events[i].dur_s * 1e6)));
            json_array_append_new(stk, json_integer(s->events[i].stack));
        }
        json_t *one = json_pack("{s:i, s:i, s:o, s:o, s:o}", "pid", s->threads[t].pid, "tid", s->threads[t].tid,
                                "t_us", ts, "dur_us", dur, "stack", stk);
        if (!one || json_array_append_new(events, one) < 0)
            goto fail;
    }
    if (json_object_set_new(o, "t0_mono_s", json_real(s->t0_mono_s)) < 0 ||
        json_object_set_new(o, "frames", frames) < 0 || json_object_set_new(o, "all", all) < 0 ||
        json_object_set_new(o, "events", events) < 0)
        return -ENOMEM;
    return 0;
fail:
    json_decref(frames);
    json_decref(all);
    json_decref(events);
    return -ENOMEM;
}

/* ---- back from a report ---- */


static char *dup_str(const json_t *v)
{
    const char *s = json_string_value(v);
    return s ? strdup(s) : NULL;
}

int wl_stacks_from_json(const void *report, wl_stacks *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    const json_t *st = json_object_get(report, "stacks");
    const json_t *frames = json_object_get(st, "frames");
    const json_t *all = json_object_get(st, "all");
    if (!json_is_object(st)) {
        snprintf(err, errlen, "the report has no stacks (profiled with --no-stacks, or the target "
                              "could not take the agent)");
        return -ENOENT;
    }
    if (!json_is_array(frames) || !json_is_array(all)) {
        snprintf(err, errlen, "the report has only the top stacks (written by a wlprof before "
                              "report/3): stacks cannot be re-exported from it");
        return -ENOENT;
    }
    out->hz = json_number_value(json_object_get(st, "hz"));
    out->t0_mono_s = json_number_value(json_object_get(st, "t0_mono_s"));
    out->dropped = (uint64_t)json_integer_value(json_object_get(st, "dropped"));
    out->processes = (uint32_t)json_integer_value(json_object_get(st, "processes"));
    out->nframes = json_array_size(frames);
    out->frames = calloc(out->nframes + 1, sizeof(*out->frames));
    out->nstacks = json_array_size(all);
    out->stacks = calloc(out->nstacks + 1, sizeof(*out->stacks));
    const json_t *threads = json_object_get(st, "threads");
    out->nthreads = json_array_size(threads);
    out->threads = calloc(out->nthreads + 1, sizeof(*out->threads));
    if (!out->frames || !out->stacks || !out->threads)
        goto nomem;
    for (size_t i = 0; i < out->nframes; i++) {
        const json_t *f = json_array_get(frames, i);
        wl_frame *fr = &out->frames[i];
        fr->func = dup_str(json_object_get(f, "func"));
        fr->module = dup_str(json_object_get(f, "module"));
        fr->file = dup_str(json_object_get(f, "file"));
        fr->line = (int)json_integer_value(json_object_get(f, "line"));
        fr->python = json_is_true(json_object_get(f, "python"));
        if (!fr->func || !fr->module) {
            snprintf(err, errlen, "report.stacks.frames[%zu] is malformed", i);
            goto bad;
        }
    }
    for (size_t i = 0; i < out->nstacks; i++) {
        const json_t *o = json_array_get(all, i);
        const json_t *ids = json_object_get(o, "frames");
        wl_stack *s = &out->stacks[i];
        s->pid = (int)json_integer_value(json_object_get(o, "pid"));
        s->tid = (int)json_integer_value(json_object_get(o, "tid"));
        s->cpu_samples = (uint64_t)json_integer_value(json_object_get(o, "cpu_samples"));
        s->user_s = json_number_value(json_object_get(o, "user_s"));
        s->sys_s = json_number_value(json_object_get(o, "sys_s"));
        s->waits = (uint64_t)json_integer_value(json_object_get(o, "waits"));
        s->wait_s = json_number_value(json_object_get(o, "wait_s"));
        s->nframes = (uint32_t)json_array_size(ids);
        s->frames = calloc(s->nframes + 1, sizeof(*s->frames));
        if (!s->frames)
            goto nomem;
        for (uint32_t k = 0; k < s->nframes; k++) { /* root first in JSON, leaf first here */
            json_int_t id = json_integer_value(json_array_get(ids, s->nframes - 1 - k));
            if (id < 0 || (size_t)id >= out->nframes) {
                snprintf(err, errlen, "report.stacks.all[%zu] names a frame that does not exist", i);
                goto bad;
            }
            s->frames[k] = (uint32_t)id;
        }
        const char *call = json_string_value(json_object_get(o, "call"));
        /* Calls are static strings in a wl_stacks read from the agent; here
         * they point into the frame table's strings, interned below. */
        if (call) {
            char buf[64];
            snprintf(buf, sizeof(buf), "%s", call);
            for (size_t j = 0; j < i && !s->call; j++)
                if (out->stacks[j].call && strcmp(out->stacks[j].call, buf) == 0)
                    s->call = out->stacks[j].call;
            if (!s->call) {
                s->call = strdup(buf);
                if (!s->call)
                    goto nomem;
            }
        }
        out->cpu_samples += s->cpu_samples;
        out->waits += s->waits;
        out->user_s += s->user_s;
        out->sys_s += s->sys_s;
        out->wait_s += s->wait_s;
    }
    for (size_t i = 0; i < out->nthreads; i++) {
        const json_t *o = json_array_get(threads, i);
        wl_stack_thread *t = &out->threads[i];
        t->pid = (int)json_integer_value(json_object_get(o, "pid"));
        t->tid = (int)json_integer_value(json_object_get(o, "tid"));
        snprintf(t->comm, sizeof(t->comm), "%s", json_string_value(json_object_get(o, "comm")) ?: "");
        snprintf(t->process, sizeof(t->process), "%s", json_string_value(json_object_get(o, "process")) ?: "");
        t->cpu_samples = (uint64_t)json_integer_value(json_object_get(o, "cpu_samples"));
        t->user_s = json_number_value(json_object_get(o, "user_s"));
        t->sys_s = json_number_value(json_object_get(o, "sys_s"));
        t->wait_s = json_number_value(json_object_get(o, "wait_s"));
        t->waits = (uint64_t)json_integer_value(json_object_get(o, "waits"));
        t->dropped = (uint64_t)json_integer_value(json_object_get(o, "dropped"));
    }
    const json_t *evs = json_object_get(st, "events");
    size_t cap = 0;
    for (size_t i = 0; i < json_array_size(evs); i++) {
        const json_t *o = json_array_get(evs, i);
        const wl_stack_thread *t = thread_of(out, (int)json_integer_value(json_object_get(o, "pid")),
                                             (int)json_integer_value(json_object_get(o, "tid")));
        const json_t *ts = json_object_get(o, "t_us"), *dur = json_object_get(o, "dur_us"),
                     *stk = json_object_get(o, "stack");
        size_t n = json_array_size(ts);
        if (!t || json_array_size(dur) != n || json_array_size(stk) != n) {
            snprintf(err, errlen, "report.stacks.events[%zu] is malformed", i);
            goto bad;
        }
        cap += n;
        wl_stack_event *p = realloc(out->events, (cap + 1) * sizeof(*p));
        if (!p)
            goto nomem;
        out->events = p;
        for (size_t k = 0; k < n; k++) {
            json_int_t sid = json_integer_value(json_array_get(stk, k));
            if (sid < 0 || (size_t)sid >= out->nstacks) {
                snprintf(err, errlen, "report.stacks.events[%zu] names a stack that does not exist", i);
                goto bad;
            }
            out->events[out->nevents++] = (wl_stack_event){
                .t_s = (double)json_integer_value(json_array_get(ts, k)) * 1e-6,
                .dur_s = (double)json_integer_value(json_array_get(dur, k)) * 1e-6,
                .stack = (uint32_t)sid,
                .thread = (uint32_t)(t - out->threads),
            };
        }
    }
    out->owns_calls = true;
    if (out->nevents)
        qsort(out->events, out->nevents, sizeof(*out->events), wl__stacks_cmp_event);
    if (wl__stacks_build_functions(out) < 0)
        goto nomem;
    return 0;
nomem:
    snprintf(err, errlen, "out of memory");
    out->owns_calls = true;
    wl_stacks_free(out);
    return -ENOMEM;
bad:
    out->owns_calls = true;
    wl_stacks_free(out);
    return -EINVAL;
}
