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
#include <math.h>
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

/* Coordination between threads or processes, by the agent's call names. */
static const char *const coordination_calls[] = {
    "pthread_cond_wait", "pthread_cond_timedwait", "pthread_mutex_lock", "pthread_join",
    "sem_wait", "waitpid", "wait", "wait4", "waitid", "system", "futex", "gil",
};

bool wl__cls_is_coordination_call(const char *call)
{
    for (size_t i = 0; call && i < sizeof(coordination_calls) / sizeof(coordination_calls[0]);
         i++)
        if (strcmp(call, coordination_calls[i]) == 0)
            return true;
    return false;
}

/* Frames that mark a pool worker or runtime thread parked for work:
 * libuv's thread pool, Node's platform workers, the JVM's parkers, Go's
 * scheduler. A wait under one of them is idle capacity, never advice. */
static const char *const idle_frames[] = {
    "uv_cond_wait", "uv_sem_wait", "uv__worker", "BlockingPop", "WorkerThreadMain",
    "Parker::park", "Unsafe_Park", "JVM_MonitorWait", "runtime.futexsleep",
    "runtime.notesleep", "runtime.stopm", "g_cond_wait", "g_thread_pool_wait_for_new_task",
};

static bool frame_is_idle(const char *func)
{
    for (size_t i = 0; i < sizeof(idle_frames) / sizeof(idle_frames[0]); i++)
        if (strstr(func, idle_frames[i]))
            return true;
    return false;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static bool is_python_frame(const json_t *fr)
{
    return ends_with(str(fr, "file"), ".py") || ends_with(str(fr, "module"), ".py");
}

/* The frame to name for a stack (frames root first): its innermost Python
 * frame when it has one (the user's code, whatever C the interpreter ran
 * under it), else its innermost frame that is not runtime plumbing, else
 * none (NULL): an interpreter's or runtime's frame is never "the function". */
static const json_t *user_frame(const json_t *frames)
{
    size_t n = json_array_size(frames);
    for (size_t i = n; i-- > 0;)
        if (is_python_frame(json_array_get(frames, i)))
            return json_array_get(frames, i);
    for (size_t i = n; i-- > 0;) {
        const json_t *fr = json_array_get(frames, i);
        if (!wl_is_runtime_frame(str(fr, "func"), str(fr, "module")))
            return fr;
    }
    return NULL;
}

static bool stack_is_idle(const json_t *frames)
{
    size_t i;
    const json_t *fr;
    json_array_foreach(frames, i, fr) {
        if (frame_is_idle(str(fr, "func")))
            return true;
    }
    return false;
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
        if (wl_is_runtime_frame(str(f, "name"), str(f, "module")) &&
            !ends_with(str(f, "file"), ".py"))
            continue; /* counted in the total, never named */
        int rc = accumulate(&v->compute_functions, &v->ncompute_functions, str(f, "name"),
                            str(f, "module"), "", cpu);
        if (rc < 0)
            return rc;
    }
    keep_top(v->compute_functions, &v->ncompute_functions, total);
    return 0;
}

/* Whether the verdict names only coordination waits (nothing else waited):
 * then those are the calls, and their functions are named too. */
static bool coordination_only(const wl_verdict *v)
{
    if (v->ncalls == 0)
        return false;
    for (size_t i = 0; i < v->ncalls; i++)
        if (v->calls[i].kind != WL_WAIT_LOCK && v->calls[i].kind != WL_WAIT_CHILD)
            return false;
    return true;
}

static int collect_wait(const json_t *top, wl_verdict *v)
{
    size_t i;
    const json_t *s;
    double total = 0;
    bool coord = coordination_only(v);
    json_array_foreach(top, i, s) {
        const char *call = json_string_value(json_object_get(s, "call"));
        const json_t *frames = json_object_get(s, "frames");
        size_t nframes = json_array_size(frames);
        if (!call || nframes == 0 || num(s, "wait_s") <= 0)
            continue;
        total += num(s, "wait_s");
        /* An event loop idling, a pool worker parked for work, a thread
         * waiting for another: nothing to move. */
        if (wl_is_readiness_call(call) || stack_is_idle(frames) ||
            (wl__cls_is_coordination_call(call) && !coord))
            continue;
        const json_t *leaf = user_frame(frames);
        if (!leaf)
            continue; /* counted in the total, never named */
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

/* The model's longest single wait, from the agent's calls: a stack is one
 * call site, its mean wait one call. Says which calls it took as
 * independent: the same call site repeated is a loop over inputs. */
static int refine_model(const json_t *top, wl_verdict *v)
{
    size_t i;
    const json_t *s;
    double longest = 0, most_calls = 0;
    char longest_call[24] = "", site[96] = "", site_call[24] = "";
    size_t sites = 0;
    json_array_foreach(top, i, s) {
        const char *call = json_string_value(json_object_get(s, "call"));
        const json_t *frames = json_object_get(s, "frames");
        double n = num(s, "waits"), w = num(s, "wait_s");
        if (!call || n <= 0 || w <= 0 || stack_is_idle(frames) ||
            wl__cls_is_coordination_call(call) || wl_is_readiness_call(call))
            continue;
        sites++;
        if (w / n > longest) {
            longest = w / n;
            snprintf(longest_call, sizeof(longest_call), "%s", call);
        }
        if (n > most_calls) {
            const json_t *fr = user_frame(frames);
            most_calls = n;
            snprintf(site, sizeof(site), "%s%s", fr ? "from " : "at one call site",
                     fr ? str(fr, "func") : "");
            snprintf(site_call, sizeof(site_call), "%s", call);
        }
    }
    wl_model *m = &v->model;
    if (sites == 0) {
        snprintf(m->independent, sizeof(m->independent),
                 "no blocking call besides readiness waits (one wait for all a loop has in "
                 "flight) and coordination");
        m->from_stacks = true;
        return wl__cls_prediction_reasons(v);
    }
    /* An event loop's readiness waits wait for whatever comes first of all
     * it has in flight: consecutive ones are one wait, as the sampler saw
     * them (its stretch stays when longer than any one blocking call). */
    if (!(wl_is_readiness_call(m->longest_wait_call) && m->longest_wait_s > longest)) {
        m->longest_wait_s = longest;
        snprintf(m->longest_wait_call, sizeof(m->longest_wait_call), "%s", longest_call);
    }
    m->from_stacks = true;
    if (most_calls >= 2)
        snprintf(m->independent, sizeof(m->independent),
                 "independent: the %.0f %s calls %s (one call site repeated: a loop over "
                 "inputs)%s",
                 most_calls, site_call, site,
                 sites > 1 ? ", and calls at different sites (an upper bound)" : "");
    else
        snprintf(m->independent, sizeof(m->independent),
                 "each blocking call made once: calls at different sites taken as independent "
                 "(an upper bound)");
    wl__cls_predict(m, &v->used, v);
    return wl__cls_prediction_reasons(v);
}

/* Python spelling of a libc call made under a Python frame. */
static const char *python_call(const char *call)
{
    static const char *const map[][2] = {
        {"clock_nanosleep", "time.sleep"}, {"nanosleep", "time.sleep"},
        {"select", "time.sleep"},          {"recv", "socket.recv"},
        {"recvfrom", "socket.recv"},       {"connect", "socket.connect"},
        {"accept", "socket.accept"},       {"accept4", "socket.accept"},
        {"fsync", "os.fsync"},             {"fdatasync", "os.fdatasync"},
        {"read", "read"},                  {"write", "write"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(call, map[i][0]) == 0)
            return map[i][1];
    return call;
}

/* Names the pitfall's function and call from the loop thread's stacks: its
 * longest blocking call, else (a burst) its hottest on-CPU stack. */
static int name_pitfall(const json_t *top, wl_verdict *v)
{
    wl_pitfall *pf = &v->pitfall;
    if (!pf->detected)
        return 0;
    size_t i;
    const json_t *s, *best = NULL;
    double best_s = 0;
    json_array_foreach(top, i, s) {
        if ((int)num(s, "tid") != pf->tid || (int)num(s, "pid") != pf->pid)
            continue;
        const char *call = json_string_value(json_object_get(s, "call"));
        double w;
        if (pf->blocks)
            w = call && !wl_is_readiness_call(call) && !wl__cls_is_coordination_call(call)
                    ? num(s, "wait_s") / fmax(1, num(s, "waits"))
                    : 0;
        else
            w = call ? 0 : num(s, "user_s") + num(s, "sys_s");
        if (w > best_s) {
            best_s = w;
            best = s;
        }
    }
    if (!best)
        return 0;
    const json_t *fr = user_frame(json_object_get(best, "frames"));
    if (!fr)
        return 0;
    snprintf(pf->function, sizeof(pf->function), "%s", str(fr, "func"));
    snprintf(pf->file, sizeof(pf->file), "%s", str(fr, "file"));
    pf->line = (int)num(fr, "line");
    const char *call = json_string_value(json_object_get(best, "call"));
    if (call)
        snprintf(pf->call, sizeof(pf->call), "%s",
                 is_python_frame(fr) ? python_call(call) : call);
    char where[160] = "";
    if (pf->file[0])
        snprintf(where, sizeof(where), " (%s:%d)", pf->file, pf->line);
    if (pf->blocks)
        return wl__cls_strv_addf(&v->reasons, &v->nreasons,
                              "the blocking call in the loop: %s%s calls %s; use the loop's "
                              "non-blocking form (asyncio.sleep, an awaitable read) or move it "
                              "to a thread (asyncio.to_thread)",
                              pf->function, where, pf->call[0] ? pf->call : "?");
    return wl__cls_strv_addf(&v->reasons, &v->nreasons,
                          "the burst in the loop: %s%s computes between two waits; run it in "
                          "a process pool (loop.run_in_executor)",
                          pf->function, where);
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
    if (rc == 0 && json_is_array(top))
        rc = refine_model(top, v);
    if (rc == 0 && json_is_array(top))
        rc = name_pitfall(top, v);
    if (rc < 0)
        return rc;

    char list[512];
    bool wants_compute = v->executor == WL_EXEC_PROCESS_POOL || v->executor == WL_EXEC_SPLIT;
    wl_executor wait_exec = v->executor == WL_EXEC_SPLIT ? v->wait_side : v->executor;
    if (wants_compute && v->ncompute_functions > 0) {
        format_funcs(v->compute_functions, v->ncompute_functions, list, sizeof(list));
        rc = wl__cls_strv_addf(&v->reasons, &v->nreasons, "to the process pool: %s", list);
        if (rc < 0)
            return rc;
    }
    if (v->nwait_functions > 0 && v->kind != WL_KIND_CPU_BOUND) {
        format_funcs(v->wait_functions, v->nwait_functions, list, sizeof(list));
        rc = wl__cls_strv_addf(&v->reasons, &v->nreasons, "%s: %s",
                            wait_exec == WL_EXEC_COROUTINE
                                ? "blocking calls to make non-blocking on the loop"
                                : "to the thread pool",
                            list);
    }
    return rc;
}
