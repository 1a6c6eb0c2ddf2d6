/*
 * functions.c -- naming the functions on each side of a verdict.
 *
 * The classifier decides from the profile; the stack agent (wl_stacks)
 * adds, in the report, which functions computed and which made the
 * blocking calls. This file reads those report sections -- JSON, the
 * documented schema, so the classifier needs no stack library and works
 * the same on a saved report -- and turns them into "send these functions
 * to the process pool, run these on the thread pool".
 *
 *   computing side: functions[] by self user+sys seconds (the leaf frame is
 *                   where the CPU went);
 *   waiting side:   stacks.top[] off-CPU stacks (call != null) summed per
 *                   (leaf function, call), poll-like calls left out: an
 *                   event loop idling in epoll is not work to move.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_FUNCS = 3 };
/* A function below this share of its side's total is not named. */
static const double FUNC_MIN_SHARE = 0.05;

static double num(const json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* Adds seconds to the entry for (name, call), creating it. */
static int accumulate(wl_func_ref **arr, size_t *n, const char *name, const char *module,
                      const char *call, double seconds)
{
    for (size_t i = 0; i < *n; i++) {
        wl_func_ref *f = &(*arr)[i];
        if (strcmp(f->name, name) == 0 && strcmp(f->call, call) == 0) {
            f->seconds += seconds;
            return 0;
        }
    }
    wl_func_ref *grown = realloc(*arr, (*n + 1) * sizeof(**arr));
    if (!grown)
        return -ENOMEM;
    *arr = grown;
    wl_func_ref *f = &grown[(*n)++];
    memset(f, 0, sizeof(*f));
    snprintf(f->name, sizeof(f->name), "%s", name);
    snprintf(f->module, sizeof(f->module), "%s", module);
    snprintf(f->call, sizeof(f->call), "%s", call);
    f->seconds = seconds;
    return 0;
}

static int cmp_seconds(const void *a, const void *b)
{
    const wl_func_ref *x = a;
    const wl_func_ref *y = b;
    return (x->seconds < y->seconds) - (x->seconds > y->seconds);
}

/* Sorts most first and keeps at most MAX_FUNCS, each at least
 * FUNC_MIN_SHARE of total (the side's whole time, left-out calls included). */
static void keep_top(wl_func_ref *arr, size_t *n, double total)
{
    if (*n > 1)
        qsort(arr, *n, sizeof(*arr), cmp_seconds);
    size_t keep = 0;
    while (keep < *n && keep < MAX_FUNCS && total > 0 &&
           arr[keep].seconds >= FUNC_MIN_SHARE * total)
        keep++;
    *n = keep;
}

static int collect_compute(const json_t *functions, wl_verdict *v)
{
    size_t i;
    const json_t *f;
    double total = 0;
    json_array_foreach(functions, i, f) {
        const json_t *self = json_object_get(f, "self");
        double cpu = num(self, "user_s") + num(self, "sys_s");
        if (cpu <= 0)
            continue;
        total += cpu;
        int rc = accumulate(&v->compute_functions, &v->ncompute_functions, str(f, "name"),
                            str(f, "module"), "", cpu);
        if (rc < 0)
            return rc;
    }
    keep_top(v->compute_functions, &v->ncompute_functions, total);
    return 0;
}

static int collect_wait(const json_t *top, wl_verdict *v)
{
    size_t i;
    const json_t *s;
    double total = 0;
    json_array_foreach(top, i, s) {
        const char *call = json_string_value(json_object_get(s, "call"));
        const json_t *frames = json_object_get(s, "frames");
        size_t nframes = json_array_size(frames);
        if (!call || nframes == 0 || num(s, "wait_s") <= 0)
            continue;
        total += num(s, "wait_s");
        if (wl_is_readiness_call(call))
            continue;
        const json_t *leaf = json_array_get(frames, nframes - 1); /* root first */
        int rc = accumulate(&v->wait_functions, &v->nwait_functions, str(leaf, "func"),
                            str(leaf, "module"), call, num(s, "wait_s"));
        if (rc < 0)
            return rc;
    }
    keep_top(v->wait_functions, &v->nwait_functions, total);
    return 0;
}

/* "corpus_hash (0.79 s CPU), ..." or "corpus_read_all (recv, 0.80 s), ..." */
static void format_funcs(const wl_func_ref *f, size_t n, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used + 1 < len; i++) {
        int k = f[i].call[0] ? snprintf(buf + used, len - used, "%s%s (%s, %.2f s)",
                                        i ? ", " : "", f[i].name, f[i].call, f[i].seconds)
                             : snprintf(buf + used, len - used, "%s%s (%.2f s CPU)",
                                        i ? ", " : "", f[i].name, f[i].seconds);
        if (k < 0)
            break;
        used += (size_t)k;
    }
}

int wl_verdict_add_functions(wl_verdict *v, const json_t *report)
{
    const json_t *functions = json_object_get(report, "functions");
    const json_t *top = json_object_get(json_object_get(report, "stacks"), "top");
    int rc;
    if (!json_is_array(functions) && !json_is_array(top))
        return 0;
    rc = collect_compute(functions, v);
    if (rc == 0)
        rc = collect_wait(top, v);
    if (rc < 0)
        return rc;

    char list[512];
    bool wants_compute = v->executor == WL_EXEC_PROCESS_POOL || v->executor == WL_EXEC_SPLIT;
    wl_executor wait_exec = v->executor == WL_EXEC_SPLIT ? v->wait_side : v->executor;
    if (wants_compute && v->ncompute_functions > 0) {
        format_funcs(v->compute_functions, v->ncompute_functions, list, sizeof(list));
        rc = cls__strv_addf(&v->reasons, &v->nreasons, "to the process pool: %s", list);
        if (rc < 0)
            return rc;
    }
    if (v->nwait_functions > 0 && v->kind != WL_KIND_CPU_BOUND) {
        format_funcs(v->wait_functions, v->nwait_functions, list, sizeof(list));
        rc = cls__strv_addf(&v->reasons, &v->nreasons, "%s: %s",
                            wait_exec == WL_EXEC_COROUTINE
                                ? "blocking calls to make non-blocking on the loop"
                                : "to the thread pool",
                            list);
    }
    return rc;
}
