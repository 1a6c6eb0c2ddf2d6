/*
 * timeline_json.c -- the report's "timeline" section (schema wlprof.report/3,
 * docs/report-schema.md): the per-thread timeline as compact arrays.
 *
 *   "timeline": {
 *     "tick_us":  [0, 10212, ...],              time of each tick, microseconds
 *     "states":   ["user", "system", "runqueue", "sleep", ...],  legend
 *     "details":  [{"syscall": "nanosleep", "wchan": "hrtimer_nanosleep"}, ...],
 *     "threads":  [{"pid", "tid", "first_tick",
 *                   "runs": [state, ticks, detail, state, ticks, detail, ...]}],
 *     "truncated": false
 *   }
 *
 * Flat triples rather than objects keep a 10 s, 100 Hz, 20-thread profile
 * in tens of kilobytes; "detail" is an index into "details" or -1.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report_internal.h"

json_t *wl__timeline_to_json(const wl_timeline *tl)
{
    json_t *o = json_object();
    json_t *ticks = json_array();
    json_t *states = json_array();
    json_t *details = json_array();
    json_t *threads = json_array();
    if (!o || !ticks || !states || !details || !threads)
        goto fail;
    for (uint64_t i = 0; i < tl->nticks; i++)
        json_array_append_new(ticks, json_integer((json_int_t)llround(tl->tick_s[i] * 1e6)));
    for (unsigned s = 0; s < WL_TL_STATE_COUNT; s++)
        json_array_append_new(states, json_string(wl_timeline_state_name(s)));
    for (size_t i = 0; i < tl->ndetails; i++)
        json_array_append_new(details, json_pack("{s:s, s:s}", "syscall", tl->details[i].syscall,
                                                 "wchan", tl->details[i].wchan));
    for (size_t i = 0; i < tl->nthreads; i++) {
        const wl_thread_timeline *th = &tl->threads[i];
        if (th->nruns == 0)
            continue;
        json_t *runs = json_array();
        if (!runs)
            goto fail;
        for (size_t r = 0; r < th->nruns; r++) {
            json_array_append_new(runs, json_integer(th->runs[r].state));
            json_array_append_new(runs, json_integer(th->runs[r].ticks));
            json_array_append_new(runs, json_integer(th->runs[r].detail));
        }
        json_array_append_new(threads, json_pack("{s:i, s:i, s:I, s:o}", "pid", th->pid, "tid", th->tid,
                                                 "first_tick", (json_int_t)th->first_tick, "runs", runs));
    }
    json_object_set_new(o, "tick_us", ticks);
    json_object_set_new(o, "states", states);
    json_object_set_new(o, "details", details);
    json_object_set_new(o, "threads", threads);
    json_object_set_new(o, "truncated", json_boolean(tl->truncated));
    return o;
fail:
    json_decref(o);
    json_decref(ticks);
    json_decref(states);
    json_decref(details);
    json_decref(threads);
    return NULL;
}

int wl__timeline_from_json(const json_t *v, wl_timeline *tl, char *err, size_t errlen)
{
    memset(tl, 0, sizeof(*tl));
    if (!v || json_is_null(v))
        return 0; /* older reports have none */
    const json_t *ticks = json_object_get(v, "tick_us");
    const json_t *states = json_object_get(v, "states");
    const json_t *details = json_object_get(v, "details");
    const json_t *threads = json_object_get(v, "threads");
    if (!json_is_array(ticks) || !json_is_array(states) || !json_is_array(details) ||
        !json_is_array(threads)) {
        snprintf(err, errlen, "report.timeline is malformed");
        return -EINVAL;
    }
    /* Map the writer's state legend onto ours: a kind this build does not
     * know becomes "other". */
    size_t nstates = json_array_size(states);
    uint16_t *map = calloc(nstates + 1, sizeof(*map));
    int rc = -ENOMEM;
    if (!map)
        goto fail;
    for (size_t s = 0; s < nstates; s++) {
        const char *name = json_string_value(json_array_get(states, s));
        map[s] = WL_TL_WAIT + WL_WAIT_OTHER;
        for (unsigned k = 0; name && k < WL_TL_STATE_COUNT; k++)
            if (strcmp(name, wl_timeline_state_name(k)) == 0)
                map[s] = (uint16_t)k;
    }
    tl->nticks = json_array_size(ticks);
    tl->tick_s = calloc(tl->nticks + 1, sizeof(double));
    tl->ndetails = json_array_size(details);
    tl->details = calloc(tl->ndetails + 1, sizeof(*tl->details));
    tl->nthreads = json_array_size(threads);
    tl->threads = calloc(tl->nthreads + 1, sizeof(*tl->threads));
    if (!tl->tick_s || !tl->details || !tl->threads)
        goto fail;
    tl->cap_ticks = tl->nticks;
    tl->cap_details = tl->ndetails;
    tl->cap_threads = tl->nthreads;
    tl->truncated = json_is_true(json_object_get(v, "truncated"));
    for (uint64_t i = 0; i < tl->nticks; i++)
        tl->tick_s[i] = (double)json_integer_value(json_array_get(ticks, i)) * 1e-6;
    for (size_t i = 0; i < tl->ndetails; i++) {
        const json_t *d = json_array_get(details, i);
        snprintf(tl->details[i].syscall, sizeof(tl->details[i].syscall), "%s",
                 json_string_value(json_object_get(d, "syscall")) ? json_string_value(json_object_get(d, "syscall")) : "");
        snprintf(tl->details[i].wchan, sizeof(tl->details[i].wchan), "%s",
                 json_string_value(json_object_get(d, "wchan")) ? json_string_value(json_object_get(d, "wchan")) : "");
    }
    rc = -EINVAL;
    for (size_t i = 0; i < tl->nthreads; i++) {
        const json_t *o = json_array_get(threads, i);
        const json_t *runs = json_object_get(o, "runs");
        wl_thread_timeline *th = &tl->threads[i];
        json_int_t first;
        if (json_unpack((json_t *)o, "{s:i, s:i, s:I}", "pid", &th->pid, "tid", &th->tid, "first_tick", &first) < 0 ||
            !json_is_array(runs) || json_array_size(runs) % 3 || first < 0) {
            snprintf(err, errlen, "report.timeline.threads[%zu] is malformed", i);
            goto fail;
        }
        th->first_tick = (uint64_t)first;
        th->end_tick = th->first_tick;
        th->nruns = th->cap_runs = json_array_size(runs) / 3;
        th->runs = calloc(th->nruns + 1, sizeof(*th->runs));
        if (!th->runs) {
            rc = -ENOMEM;
            goto fail;
        }
        for (size_t r = 0; r < th->nruns; r++) {
            json_int_t st = json_integer_value(json_array_get(runs, 3 * r));
            json_int_t n = json_integer_value(json_array_get(runs, 3 * r + 1));
            json_int_t d = json_integer_value(json_array_get(runs, 3 * r + 2));
            if (st < 0 || (size_t)st >= nstates || n <= 0 || n > UINT32_MAX || d < -1 ||
                d >= (json_int_t)tl->ndetails) {
                snprintf(err, errlen, "report.timeline.threads[%zu].runs[%zu] is malformed", i, r);
                goto fail;
            }
            th->runs[r] = (wl_timeline_run){.ticks = (uint32_t)n, .state = map[st], .detail = (int32_t)d};
            th->end_tick += (uint64_t)n;
        }
    }
    free(map);
    return 0;
fail:
    free(map);
    wl_timeline_free(tl);
    if (rc == -ENOMEM)
        snprintf(err, errlen, "out of memory");
    return rc;
}
