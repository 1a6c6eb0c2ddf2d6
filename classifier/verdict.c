/*
 * verdict.c -- a verdict's names, memory, JSON and terminal text.
 *
 * Display is kept apart from the decision (classify.c): this file only
 * reads a finished wl_verdict. JSON is built with jansson's *_new setters so
 * every intermediate value is owned by its parent the moment it exists; a
 * NULL from a constructor makes the setter fail, which is checked once per
 * object through the `ok` accumulator.
 */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[WL_KIND_COUNT] = {
    [WL_KIND_IO_BOUND] = "io_bound",
    [WL_KIND_CPU_BOUND] = "cpu_bound",
    [WL_KIND_MIXED] = "mixed",
};

static const char *const executor_names[WL_EXEC_COUNT] = {
    [WL_EXEC_COROUTINE] = "coroutine",
    [WL_EXEC_THREAD_POOL] = "thread_pool",
    [WL_EXEC_PROCESS_POOL] = "process_pool",
    [WL_EXEC_SPLIT] = "split",
};

/* Words for people, same order as the enums. */
static const char *const kind_words[WL_KIND_COUNT] = {
    [WL_KIND_IO_BOUND] = "I/O-bound (mostly waiting on the system)",
    [WL_KIND_CPU_BOUND] = "CPU-bound (mostly computing)",
    [WL_KIND_MIXED] = "mixed (waiting and computing)",
};

static const char *const worker_words[WL_EXEC_COUNT] = {
    [WL_EXEC_COROUTINE] = "tasks in flight on one loop",
    [WL_EXEC_THREAD_POOL] = "threads",
    [WL_EXEC_PROCESS_POOL] = "processes",
    [WL_EXEC_SPLIT] = "processes for the computing",
};

const char *wl_kind_name(wl_kind kind)
{
    return (unsigned)kind < WL_KIND_COUNT ? kind_names[kind] : "unknown";
}

const char *wl_executor_name(wl_executor e)
{
    return (unsigned)e < WL_EXEC_COUNT ? executor_names[e] : "unknown";
}

static int parse_name(const char *const *names, int n, const char *name)
{
    for (int i = 0; name && i < n; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

int wl_kind_parse(const char *name)
{
    return parse_name(kind_names, WL_KIND_COUNT, name);
}

int wl_executor_parse(const char *name)
{
    return parse_name(executor_names, WL_EXEC_COUNT, name);
}

int wl__cls_strv_addf(char ***v, size_t *n, const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (len < 0)
        return -ENOMEM;
    char **grown = realloc(*v, (*n + 1) * sizeof(**v));
    if (!grown) {
        free(s);
        return -ENOMEM;
    }
    grown[(*n)++] = s;
    *v = grown;
    return 0;
}

void wl__cls_strv_free(char ***v, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free((*v)[i]);
    free(*v);
    *v = NULL;
    *n = 0;
}

void wl_verdict_free(wl_verdict *v)
{
    if (!v)
        return;
    free(v->calls);
    free(v->pitfall.calls);
    free(v->compute_functions);
    free(v->wait_functions);
    wl__cls_strv_free(&v->compute_side, &v->ncompute_side);
    wl__cls_strv_free(&v->reasons, &v->nreasons);
    memset(v, 0, sizeof(*v));
}

/* ---- JSON ---------------------------------------------------------------- */

/* Accumulates setter failures: 0 while everything succeeded. */
#define SET(obj, key, val) (ok |= json_object_set_new((obj), (key), (val)))

static json_t *strv_json(char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        if (json_array_append_new(a, json_string(v[i])) < 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *calls_json(const wl_call *calls, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        const wl_call *c = &calls[i];
        json_t *o = json_object();
        int ok = 0;
        if (!o)
            goto fail;
        SET(o, "kind", json_string(wl_wait_kind_name(c->kind)));
        SET(o, "syscall", json_string(c->syscall));
        SET(o, "wchan", json_string(c->wchan));
        SET(o, "seconds", json_real(c->seconds));
        SET(o, "share", json_real(c->share));
        if (ok || json_array_append_new(a, o) < 0)
            goto fail;
        continue;
    fail:
        json_decref(o);
        json_decref(a);
        return NULL;
    }
    return a;
}

static json_t *funcs_json(const wl_func_ref *f, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        json_t *o = f[i].call[0] ? json_pack("{s:s, s:s, s:s, s:f}", "name", f[i].name, "module",
                                             f[i].module, "call", f[i].call, "seconds",
                                             f[i].seconds)
                                 : json_pack("{s:s, s:s, s:f}", "name", f[i].name, "module",
                                             f[i].module, "seconds", f[i].seconds);
        if (json_array_append_new(a, o) < 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *pitfall_json(const wl_pitfall *pf)
{
    json_t *o = json_object();
    int ok = 0;
    if (!o)
        return NULL;
    SET(o, "detected", json_boolean(pf->detected));
    if (pf->detected) {
        SET(o, "name", json_string("blocking call inside the event loop"));
        SET(o, "pid", json_integer(pf->pid));
        SET(o, "tid", json_integer(pf->tid));
        SET(o, "comm", json_string(pf->comm));
        SET(o, "poll_s", json_real(pf->poll_s));
        SET(o, "longest_block_s", json_real(pf->longest_block_s));
        SET(o, "block_syscall", json_string(pf->block_syscall));
        SET(o, "longest_burst_s", json_real(pf->longest_burst_s));
        SET(o, "blocks", json_boolean(pf->blocks));
        SET(o, "bursts", json_boolean(pf->bursts));
        SET(o, "evidence", json_string(pf->evidence));
        SET(o, "function", pf->function[0] ? json_string(pf->function) : json_null());
        SET(o, "file", pf->file[0] ? json_string(pf->file) : json_null());
        SET(o, "line", json_integer(pf->line));
        SET(o, "call", pf->call[0] ? json_string(pf->call) : json_null());
        SET(o, "calls_to_move", calls_json(pf->calls, pf->ncalls));
    }
    if (ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *wl_verdict_classification_json(const wl_verdict *v)
{
    json_t *o = json_object();
    json_t *shares = json_object();
    json_t *thr = json_object();
    int ok = 0;
    if (!o || !shares || !thr) {
        json_decref(shares);
        json_decref(thr);
        goto fail;
    }
    SET(o, "kind", json_string(wl_kind_name(v->kind)));
    SET(o, "confidence", json_real(v->confidence));
    SET(shares, "user", json_real(v->user_share));
    SET(shares, "system", json_real(v->sys_share));
    SET(shares, "waiting", json_real(v->wait_share));
    SET(o, "shares", shares);
    SET(o, "source", json_string(v->from_samples ? "samples" : "totals"));
    SET(o, "io_score", json_real(v->io_score));
    SET(o, "cpu_score", json_real(v->cpu_score));
    SET(o, "system_counts_as", json_string(v->sys_is_computing ? "computing" : "waiting"));
    SET(o, "multiplexed", json_real(v->multiplexed));
    SET(o, "cores_busy", json_real(v->cores_busy));
    SET(o, "cpython", json_boolean(v->model.cpython));
    SET(o, "idle_threads", json_integer(v->idle_threads));
    SET(o, "gil", json_pack("{s:i, s:f}", "threads", v->gil_threads, "wait_share",
                            v->gil_wait_share));
    SET(thr, "io_threshold", json_real(v->used.io_threshold));
    SET(thr, "cpu_threshold", json_real(v->used.cpu_threshold));
    SET(thr, "min_wait_share", json_real(v->used.min_wait_share));
    SET(thr, "multiplex_share", json_real(v->used.multiplex_share));
    SET(thr, "loop_poll_s", json_real(v->used.loop_poll_s));
    SET(thr, "pitfall_block_s", json_real(v->used.pitfall_block_s));
    SET(thr, "pitfall_burst_s", json_real(v->used.pitfall_burst_s));
    SET(thr, "parallel_cores", json_real(v->used.parallel_cores));
    SET(o, "thresholds", thr);
    SET(o, "reasons", strv_json(v->reasons, v->nreasons));
    SET(o, "pitfall", pitfall_json(&v->pitfall));
    if (ok)
        goto fail;
    return o;
fail:
    json_decref(o);
    return NULL;
}

json_t *wl_verdict_recommendation_json(const wl_verdict *v)
{
    json_t *o = json_object();
    json_t *pred = json_object();
    json_t *model = json_object();
    int ok = 0;
    if (!o || !pred || !model) {
        json_decref(pred);
        json_decref(model);
        goto fail;
    }
    SET(o, "executor", json_string(wl_executor_name(v->executor)));
    SET(o, "workers", json_integer(v->suggested_workers));
    SET(o, "confidence", json_real(v->confidence));
    SET(o, "speedup", json_real(v->predicted[v->executor].speedup));
    SET(o, "batch_speedup", json_real(v->batch[v->executor].speedup));
    if (v->executor == WL_EXEC_SPLIT) {
        json_t *side = json_object();
        if (!side)
            goto fail_pred;
        SET(side, "executor", json_string(wl_executor_name(v->wait_side)));
        SET(side, "workers", json_integer(v->wait_side_workers));
        SET(o, "wait_side", side);
    }
    json_t *batch = json_object();
    if (!batch)
        goto fail_pred;
    for (int e = 0; e < WL_EXEC_COUNT; e++) {
        json_t *one = json_object();
        json_t *many = json_object();
        if (!one || !many) {
            json_decref(one);
            json_decref(many);
            json_decref(batch);
            goto fail_pred;
        }
        SET(one, "workers", json_integer(v->predicted[e].workers));
        SET(one, "speedup", json_real(v->predicted[e].speedup));
        SET(pred, wl_executor_name((wl_executor)e), one);
        SET(many, "workers", json_integer(v->batch[e].workers));
        SET(many, "speedup", json_real(v->batch[e].speedup));
        SET(batch, wl_executor_name((wl_executor)e), many);
    }
    SET(o, "predicted", pred);
    SET(o, "batch", batch);
    SET(model, "cores", json_integer(v->used.cores));
    SET(model, "concurrency", json_integer(v->used.concurrency));
    SET(model, "max_threads", json_integer(v->used.max_threads));
    SET(model, "serial_fraction", json_real(v->used.serial_fraction));
    SET(model, "wall_s", json_real(v->model.wall_s));
    SET(model, "wait_s", json_real(v->model.wait_s));
    SET(model, "cpu_s", json_real(v->model.cpu_s));
    SET(model, "longest_wait_s", json_real(v->model.longest_wait_s));
    SET(model, "longest_wait_call", json_string(v->model.longest_wait_call));
    SET(model, "longest_cpu_s", json_real(v->model.longest_cpu_s));
    SET(model, "critical_path_s", json_real(v->model.critical_path_s));
    SET(model, "cpython", json_boolean(v->model.cpython));
    SET(model, "from_stacks", json_boolean(v->model.from_stacks));
    SET(model, "independent", json_string(v->model.independent));
    SET(o, "model", model);
    SET(o, "calls_to_move", calls_json(v->calls, v->ncalls));
    SET(o, "compute_side", strv_json(v->compute_side, v->ncompute_side));
    if (v->ncompute_functions || v->nwait_functions) {
        json_t *fn = json_object();
        if (!fn)
            goto fail;
        SET(fn, "compute", funcs_json(v->compute_functions, v->ncompute_functions));
        SET(fn, "wait", funcs_json(v->wait_functions, v->nwait_functions));
        SET(o, "functions", fn);
    }
    if (ok)
        goto fail;
    return o;
fail_pred:
    json_decref(pred);
    json_decref(model);
fail:
    json_decref(o);
    return NULL;
}

#undef SET

int wl_verdict_to_report(const wl_verdict *v, json_t *report)
{
    if (json_object_set_new(report, "classification", wl_verdict_classification_json(v)) < 0)
        return -ENOMEM;
    if (json_object_set_new(report, "recommendation", wl_verdict_recommendation_json(v)) < 0) {
        json_object_del(report, "classification");
        return -ENOMEM;
    }
    return 0;
}

/* ---- terminal text --------------------------------------------------------- */

void wl_verdict_print(FILE *f, const wl_verdict *v)
{
    /* Laid out like wl_report_print_text's sections (headings indented
     * two, their lines four), so `wlprof profile` prints one report. The
     * recommendation and a pitfall come first: they are what to act on. */
    int width = wl_text_width(f);
    char line[1024];
    snprintf(line, sizeof(line), "%s, %d %s", wl_executor_name(v->executor),
             v->suggested_workers, worker_words[v->executor]);
    if (v->executor == WL_EXEC_SPLIT)
        snprintf(line + strlen(line), sizeof(line) - strlen(line), "; waits on a %s of %d",
                 wl_executor_name(v->wait_side), v->wait_side_workers);
    wl_text_wrap(f, width, "  recommendation: ", "    ", line);
    snprintf(line, sizeof(line),
             "predicted: this program %.2fx (critical path %.2f s of %.2f s); a batch of N "
             "such jobs %.2fx",
             v->predicted[v->executor].speedup, v->model.critical_path_s, v->model.wall_s,
             v->batch[v->executor].speedup);
    wl_text_wrap(f, width, "    ", "      ", line);
    if (v->pitfall.detected) {
        const wl_pitfall *pf = &v->pitfall;
        if (pf->function[0])
            snprintf(line, sizeof(line), "%s inside the event loop: %s calls %s (thread %d '%s')",
                     pf->blocks ? "blocking call" : "CPU burst", pf->function,
                     pf->blocks ? (pf->call[0] ? pf->call : "?") : "nothing but computes",
                     pf->tid, pf->comm);
        else
            snprintf(line, sizeof(line), "%s inside the event loop: %s %.2f s (thread %d '%s')",
                     pf->blocks ? "blocking call" : "CPU burst",
                     pf->blocks ? (pf->block_syscall[0] ? pf->block_syscall : "?")
                                : "computing",
                     pf->blocks ? pf->longest_block_s : pf->longest_burst_s, pf->tid, pf->comm);
        wl_text_wrap(f, width, "  warning: ", "    ", line);
    }
    snprintf(line, sizeof(line), "%s, confidence %.2f", kind_words[v->kind], v->confidence);
    wl_text_wrap(f, width, "  classification: ", "    ", line);
    for (size_t i = 0; i < v->nreasons; i++)
        wl_text_wrap(f, width, "    - ", "      ", v->reasons[i]);
}
