/*
 * json.c -- the profile <-> JSON report mapping (schema WL_REPORT_SCHEMA,
 * wlprof/profile.h), and JSON into atomic output files.
 *
 * Numeric fields are described once, in tables of (object, key, offset,
 * type), and both directions walk the same tables: a field added to a table
 * is written and read back, and the two can never disagree. Strings and
 * arrays are handled by hand below the tables.
 *
 * The schema is documented in docs/report-schema.md; change both together.
 */
#include "wlprof/report.h"
#include "report_internal.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* F_SINCE: seconds since the start, or -1 for "never" (loop_first_s). */
typedef enum field_type { F_DOUBLE, F_SINCE, F_U64, F_LONG, F_INT, F_U32, F_BOOL } field_type;

typedef struct field {
    const char *object; /* sub-object of the parent ("" = the parent itself) */
    const char *key;
    size_t offset;
    field_type type;
    int optional;       /* readers accept reports without it (added later) */
} field;

#define P(obj, key, member, type) {obj, key, offsetof(wl_profile, member), type, 0}
static const field profile_fields[] = {
    P("target", "pid", pid, F_INT),
    P("target", "exit_code", exit_code, F_INT),
    P("target", "signal_number", term_signal, F_INT),
    P("target", "core_dumped", core_dumped, F_BOOL),
    P("target", "exit_status", exit_status, F_INT),
    P("time", "wall_s", wall_s, F_DOUBLE),
    P("time", "user_s", user_s, F_DOUBLE),
    P("time", "sys_s", sys_s, F_DOUBLE),
    P("time", "running_s", running_s, F_DOUBLE),
    P("time", "waiting_s", waiting_s, F_DOUBLE),
    {"time", "runqueue_s", offsetof(wl_profile, runqueue_s), F_DOUBLE, 1}, /* since 0.1.1 */
    {"time", "mono_start_s", offsetof(wl_profile, mono_start_s), F_DOUBLE, 1}, /* since /3 */
    P("time", "cores_busy", cores_busy, F_DOUBLE),
    P("split", "user", user_frac, F_DOUBLE),
    P("split", "system", sys_frac, F_DOUBLE),
    P("split", "waiting", wait_frac, F_DOUBLE),
    P("sampling", "hz", hz, F_DOUBLE),
    P("sampling", "ticks", ticks, F_U64),
    P("sampling", "ticks_running", ticks_running, F_U64),
    P("sampling", "ticks_waiting", ticks_waiting, F_U64),
    P("sampling", "sampled_s", sampled_s, F_DOUBLE),
    P("sampling", "thread_samples", thread_samples, F_U64),
    P("sampling", "mean_running_threads", mean_running_threads, F_DOUBLE),
    P("sampling", "max_running_threads", max_running_threads, F_U32),
    P("sampling", "max_threads", max_threads, F_U32),
    P("rusage", "maxrss_kb", maxrss_kb, F_LONG),
    P("rusage", "minflt", minflt, F_LONG),
    P("rusage", "majflt", majflt, F_LONG),
    P("rusage", "nvcsw", nvcsw, F_LONG),
    P("rusage", "nivcsw", nivcsw, F_LONG),
    P("rusage", "inblock", inblock, F_LONG),
    P("rusage", "oublock", oublock, F_LONG),
    P("profiler", "user_s", self_user_s, F_DOUBLE),
    P("profiler", "sys_s", self_sys_s, F_DOUBLE),
    P("profiler", "late_ticks", late_ticks, F_U64),
    P("profiler", "missed_ticks", missed_ticks, F_U64),
    P("profiler", "max_lateness_s", max_lateness_s, F_DOUBLE),
    P("profiler", "proc_read_errors", proc_read_errors, F_U64),
    /* since report/3: attaching to running processes */
    {"target", "attached", offsetof(wl_profile, attached), F_BOOL, 1},
    {"profiler", "stack_pauses", offsetof(wl_profile, stack_pauses), F_U64, 1},
    {"profiler", "pause_total_s", offsetof(wl_profile, pause_total_s), F_DOUBLE, 1},
    {"profiler", "pause_max_s", offsetof(wl_profile, pause_max_s), F_DOUBLE, 1},
};
#undef P

#define T(key, member, type) {"", key, offsetof(wl_thread_stat, member), type, 0}
static const field thread_fields[] = {
    T("pid", pid, F_INT),
    T("tid", tid, F_INT),
    T("first_seen_s", first_seen_s, F_DOUBLE),
    T("last_seen_s", last_seen_s, F_DOUBLE),
    T("user_s", user_s, F_DOUBLE),
    T("sys_s", sys_s, F_DOUBLE),
    T("cpu_s", cpu_s, F_DOUBLE),
    T("runq_s", runq_s, F_DOUBLE),
    T("samples_running", samples_running, F_U64),
    T("samples_waiting", samples_waiting, F_U64),
    T("running_s", running_s, F_DOUBLE),
    T("waiting_s", waiting_s, F_DOUBLE),
    T("longest_burst_s", longest_burst_s, F_DOUBLE),
    T("longest_block_s", longest_block_s, F_DOUBLE),
    /* since wlprof.report/3 */
    {"", "longest_cpu_run_s", offsetof(wl_thread_stat, longest_cpu_run_s), F_DOUBLE, 1},
    {"", "loop_first_s", offsetof(wl_thread_stat, loop_first_s), F_SINCE, 1},
    {"", "loop_block_s", offsetof(wl_thread_stat, loop_block_s), F_DOUBLE, 1},
    {"", "loop_burst_s", offsetof(wl_thread_stat, loop_burst_s), F_DOUBLE, 1},
    {"", "longest_wait_s", offsetof(wl_thread_stat, longest_wait_s), F_DOUBLE, 1},
};
#undef T

#define PR(key, member, type) {"", key, offsetof(wl_process_stat, member), type, 0}
static const field process_fields[] = {
    PR("pid", pid, F_INT),
    PR("ppid", ppid, F_INT),
    PR("start_s", start_s, F_DOUBLE),
    PR("end_s", end_s, F_DOUBLE),
    PR("exit_code", exit_code, F_INT),
    PR("signal_number", term_signal, F_INT),
    PR("user_s", user_s, F_DOUBLE),
    PR("sys_s", sys_s, F_DOUBLE),
    PR("threads", threads_seen, F_U32),
};
#undef PR

#define IO(key, member) {"", key, offsetof(wl_io_stat, member), F_U64, 0}
static const field io_fields[] = {
    IO("rchar", rchar),         IO("wchar", wchar),           IO("syscr", syscr),
    IO("syscw", syscw),         IO("read_bytes", read_bytes), IO("write_bytes", write_bytes),
};
#undef IO

#define NFIELDS(t) (sizeof(t) / sizeof((t)[0]))

static json_t *field_to_json(const void *base, const field *f)
{
    const char *p = (const char *)base + f->offset;
    switch (f->type) {
    case F_DOUBLE:
    case F_SINCE: {
        double v = *(const double *)p;
        return json_real(isfinite(v) ? v : 0.0);
    }
    case F_U64: return json_integer((json_int_t) * (const uint64_t *)p);
    case F_LONG: return json_integer((json_int_t) * (const long *)p);
    case F_INT: return json_integer(*(const int *)p);
    case F_U32: return json_integer(*(const uint32_t *)p);
    case F_BOOL: return json_boolean(*(const bool *)p);
    }
    return json_null();
}

/* Largest count a report may hold: exact in a double (JSON readers in
 * other languages agree on it) and far from overflowing when summed. */
#define WL_COUNT_MAX 9007199254740992.0 /* 2^53 */

/* Why a field's value was refused (for the one-line error). */
static const char *range_rule(const field *f)
{
    if (f->type == F_DOUBLE)
        return strcmp(f->object, "split") == 0 ? "a share from 0 to 1" : "a finite number >= 0";
    if (f->type == F_SINCE)
        return "-1 (never) or a finite number >= 0";
    if (f->type == F_INT)
        return "a whole number from -1 to 2147483647";
    if (f->type == F_U32)
        return "a whole number from 0 to 4294967295";
    return "a whole number from 0 to 2^53";
}

/* Reads one field. -EINVAL: missing or of the wrong JSON type; -ERANGE:
 * outside what the field can mean (negative or non-finite times, shares
 * outside [0, 1], counts that are fractional, negative or overflow). */
static int field_from_json(void *base, const field *f, const json_t *v)
{
    char *p = (char *)base + f->offset;
    if (f->type == F_BOOL) {
        if (!json_is_boolean(v))
            return -EINVAL;
        *(bool *)p = json_is_true(v);
        return 0;
    }
    if (!json_is_number(v))
        return -EINVAL;
    double d = json_number_value(v);
    if (!isfinite(d))
        return -ERANGE;
    if (f->type == F_SINCE) {
        if (!(d >= 0 || d == -1))
            return -ERANGE;
        *(double *)p = d;
        return 0;
    }
    if (f->type == F_DOUBLE) {
        double hi = strcmp(f->object, "split") == 0 ? 1.0 + 1e-9 : HUGE_VAL;
        if (!(d >= 0 && d <= hi))
            return -ERANGE;
        *(double *)p = d;
        return 0;
    }
    /* whole numbers: integral, in range, then converted (never UB) */
    if (json_is_real(v) && floor(d) != d)
        return -ERANGE;
    json_int_t i = json_is_integer(v) ? json_integer_value(v) : 0;
    switch (f->type) {
    case F_U64:
    case F_LONG:
        if (json_is_integer(v) ? (i < 0 || (double)i > WL_COUNT_MAX) : (d < 0 || d > WL_COUNT_MAX))
            return -ERANGE;
        if (!json_is_integer(v))
            i = (json_int_t)d;
        if (f->type == F_U64)
            *(uint64_t *)p = (uint64_t)i;
        else
            *(long *)p = (long)i;
        return 0;
    case F_INT:
        if (d < -1 || d > 2147483647.0)
            return -ERANGE;
        *(int *)p = (int)d;
        return 0;
    case F_U32:
        if (d < 0 || d > 4294967295.0)
            return -ERANGE;
        *(uint32_t *)p = (uint32_t)d;
        return 0;
    default:
        return -EINVAL;
    }
}

/* Writes the table's fields of base into obj (creating sub-objects). */
static void fields_to_json(json_t *obj, const void *base, const field *fields, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_t *dst = obj;
        if (fields[i].object[0]) {
            dst = json_object_get(obj, fields[i].object);
            if (!dst) {
                dst = json_object();
                json_object_set_new(obj, fields[i].object, dst);
            }
        }
        json_object_set_new(dst, fields[i].key, field_to_json(base, &fields[i]));
    }
}

/* Reads the table's fields; every one is required. */
static int fields_from_json(const json_t *obj, void *base, const field *fields, size_t n,
                            const char *where, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const json_t *src = obj;
        if (fields[i].object[0])
            src = json_object_get(obj, fields[i].object);
        const json_t *v = src ? json_object_get(src, fields[i].key) : NULL;
        if (!v && fields[i].optional)
            continue;
        int rc = v ? field_from_json(base, &fields[i], v) : -EINVAL;
        if (rc == -ERANGE) {
            snprintf(err, errlen, "%s%s%s.%s is %.17g: it must be %s", where,
                     fields[i].object[0] ? "." : "", fields[i].object, fields[i].key,
                     json_number_value(v), range_rule(&fields[i]));
            return -EINVAL;
        }
        if (rc < 0) {
            snprintf(err, errlen, "%s%s%s.%s is missing or not a %s", where,
                     fields[i].object[0] ? "." : "", fields[i].object, fields[i].key,
                     fields[i].type == F_BOOL ? "boolean" : "number");
            return -EINVAL;
        }
    }
    return 0;
}

static json_t *signal_name_json(int sig)
{
    if (sig <= 0)
        return json_null();
    const char *abbrev = sigabbrev_np(sig);
    if (!abbrev)
        return json_sprintf("SIG%d", sig);
    return json_sprintf("SIG%s", abbrev);
}

static json_t *waits_to_json(const wl_wait_stat *w, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:I, s:f}", "kind",
                                             wl_wait_kind_name(w[i].kind), "wchan", w[i].wchan,
                                             "syscall", w[i].syscall, "samples",
                                             (json_int_t)w[i].samples, "seconds", w[i].seconds));
    }
    return arr;
}

static json_t *io_to_json(const wl_io_stat *io)
{
    if (!io->valid)
        return json_null();
    json_t *o = json_object();
    fields_to_json(o, io, io_fields, NFIELDS(io_fields));
    return o;
}

json_t *wl_report_to_json(const wl_profile *p)
{
    json_t *root = json_object();
    if (!root)
        return NULL;
    json_object_set_new(root, "schema", json_string(WL_REPORT_SCHEMA));
    json_object_set_new(root, "tool", json_pack("{s:s, s:s}", "name", "wlprof", "version",
                                                WL_VERSION));
    char when[64] = "";
    time_t secs = (time_t)p->started_at;
    struct tm tm;
    if (gmtime_r(&secs, &tm))
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_object_set_new(root, "started_at", json_string(when));

    fields_to_json(root, p, profile_fields, NFIELDS(profile_fields));

    json_t *target = json_object_get(root, "target");
    json_t *argv = json_array();
    for (int i = 0; i < p->argc && p->argv; i++)
        json_array_append_new(argv, json_string(p->argv[i]));
    json_object_set_new(target, "argv", argv);
    json_object_set_new(target, "signal", signal_name_json(p->term_signal));
    json_object_set_new(json_object_get(root, "time"), "cpu_s",
                        json_real(p->user_s + p->sys_s));
    json_object_set_new(json_object_get(root, "profiler"), "cpu_share_of_wall",
                        json_real(p->wall_s > 0 ? (p->self_user_s + p->self_sys_s) / p->wall_s
                                                : 0.0));

    json_t *by_kind = json_object();
    for (int k = 0; k < WL_WAIT_KIND_COUNT; k++)
        json_object_set_new(by_kind, wl_wait_kind_name((wl_wait_kind)k),
                            json_pack("{s:f, s:I}", "seconds", p->wait_kind_s[k], "samples",
                                      (json_int_t)p->wait_kind_samples[k]));
    json_t *threads_by_kind = json_object();
    for (int k = 0; k < WL_WAIT_KIND_COUNT; k++)
        json_object_set_new(threads_by_kind, wl_wait_kind_name((wl_wait_kind)k),
                            json_real(p->thread_wait_kind_s[k]));
    json_object_set_new(root, "waits", json_pack("{s:o, s:o, s:o}", "by_kind", by_kind, "reasons",
                                                  waits_to_json(p->waits, p->nwaits),
                                                  "threads_by_kind", threads_by_kind));

    json_t *threads = json_array();
    for (size_t i = 0; i < p->nthreads; i++) {
        const wl_thread_stat *t = &p->threads[i];
        json_t *o = json_object();
        fields_to_json(o, t, thread_fields, NFIELDS(thread_fields));
        json_object_set_new(o, "comm", json_string(t->comm));
        json_object_set_new(o, "longest_block_syscall", json_string(t->longest_block_syscall));
        json_object_set_new(o, "loop_evidence",
                            t->loop_evidence[0] ? json_string(t->loop_evidence) : json_null());
        json_object_set_new(o, "loop_block_syscall", json_string(t->loop_block_syscall));
        json_object_set_new(o, "longest_wait_syscall", json_string(t->longest_wait_syscall));
        json_object_set_new(o, "waits", waits_to_json(t->waits, t->nwaits));
        json_array_append_new(threads, o);
    }
    json_object_set_new(root, "threads", threads);

    json_t *procs = json_array();
    for (size_t i = 0; i < p->nprocs; i++) {
        const wl_process_stat *pr = &p->procs[i];
        json_t *o = json_object();
        fields_to_json(o, pr, process_fields, NFIELDS(process_fields));
        json_object_set_new(o, "comm", json_string(pr->comm));
        json_object_set_new(o, "cmdline", pr->cmdline ? json_string(pr->cmdline) : json_null());
        json_object_set_new(o, "signal", signal_name_json(pr->term_signal));
        json_object_set_new(o, "io", io_to_json(&pr->io));
        json_array_append_new(procs, o);
    }
    json_object_set_new(root, "processes", procs);
    json_object_set_new(root, "io", io_to_json(&p->io));
    if (p->timeline.nticks && json_object_set_new(root, "timeline", wl__timeline_to_json(&p->timeline)) < 0) {
        json_decref(root);
        return NULL;
    }
    return root;
}

/* A report older than /3 has no event-loop fields: a thread with poll-like
 * waits counts as a loop from the start, and its longest non-poll block as
 * a block inside it (what the classifier did before /3). Its bursts were
 * ticks in state R, which a busy machine lengthens: not taken. */
static void legacy_loop_fields(wl_thread_stat *t)
{
    double poll_s = 0;
    for (size_t i = 0; i < t->nwaits; i++)
        if (t->waits[i].kind == WL_WAIT_POLL)
            poll_s += t->waits[i].seconds;
    t->loop_first_s = -1;
    t->longest_wait_s = t->longest_block_s;
    memcpy(t->longest_wait_syscall, t->longest_block_syscall, sizeof(t->longest_wait_syscall));
    if (poll_s < 0.05)
        return;
    snprintf(t->loop_evidence, sizeof(t->loop_evidence), "readiness");
    t->loop_first_s = 0;
    t->loop_block_s = t->longest_block_s;
    memcpy(t->loop_block_syscall, t->longest_block_syscall, sizeof(t->loop_block_syscall));
}

static int waits_from_json(const json_t *arr, wl_wait_stat **out, size_t *n, char *err,
                           size_t errlen)
{
    *out = NULL;
    *n = 0;
    if (!json_is_array(arr)) {
        snprintf(err, errlen, "wait reasons are not an array");
        return -EINVAL;
    }
    size_t len = json_array_size(arr);
    if (len == 0)
        return 0;
    *out = calloc(len, sizeof(**out));
    if (!*out)
        return -ENOMEM;
    for (size_t i = 0; i < len; i++) {
        const char *kind, *wchan, *syscall;
        json_int_t samples;
        double seconds;
        if (json_unpack(json_array_get(arr, i), "{s:s, s:s, s:s, s:I, s:F}", "kind", &kind,
                        "wchan", &wchan, "syscall", &syscall, "samples", &samples, "seconds",
                        &seconds) < 0) {
            snprintf(err, errlen, "wait reason %zu is malformed", i);
            return -EINVAL;
        }
        if (samples < 0 || (double)samples > WL_COUNT_MAX || !isfinite(seconds) ||
            seconds < 0) {
            snprintf(err, errlen, "wait reason %zu has %s %.17g: it must be %s", i,
                     samples < 0 || (double)samples > WL_COUNT_MAX ? "samples" : "seconds",
                     samples < 0 || (double)samples > WL_COUNT_MAX ? (double)samples : seconds,
                     samples < 0 || (double)samples > WL_COUNT_MAX
                         ? "a whole number from 0 to 2^53"
                         : "a finite number >= 0");
            return -EINVAL;
        }
        wl_wait_stat *w = &(*out)[(*n)++];
        int k = wl_wait_kind_parse(kind);
        w->kind = k < 0 ? WL_WAIT_OTHER : (wl_wait_kind)k;
        snprintf(w->wchan, sizeof(w->wchan), "%s", wchan);
        snprintf(w->syscall, sizeof(w->syscall), "%s", syscall);
        w->samples = samples < 0 ? 0 : (uint64_t)samples;
        w->seconds = seconds;
    }
    return 0;
}

static void copy_str(char *dst, size_t size, const json_t *v)
{
    snprintf(dst, size, "%s", json_is_string(v) ? json_string_value(v) : "");
}

static int io_from_json(const json_t *v, wl_io_stat *io, char *err, size_t errlen)
{
    memset(io, 0, sizeof(*io));
    if (!v || json_is_null(v))
        return 0;
    int rc = fields_from_json(v, io, io_fields, NFIELDS(io_fields), "io", err, errlen);
    io->valid = rc == 0;
    return rc;
}

int wl_report_from_json(const json_t *root, wl_profile *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    int rc = fields_from_json(root, out, profile_fields, NFIELDS(profile_fields), "report", err,
                              errlen);
    if (rc < 0)
        goto fail;

    const json_t *argv = json_object_get(json_object_get(root, "target"), "argv");
    if (!json_is_array(argv)) {
        snprintf(err, errlen, "report.target.argv is missing");
        rc = -EINVAL;
        goto fail;
    }
    out->argc = (int)json_array_size(argv);
    out->argv = calloc((size_t)out->argc + 1, sizeof(*out->argv));
    if (!out->argv) {
        rc = -ENOMEM;
        goto fail;
    }
    for (int i = 0; i < out->argc; i++) {
        const char *a = json_string_value(json_array_get(argv, (size_t)i));
        out->argv[i] = strdup(a ? a : "");
    }

    const json_t *waits = json_object_get(root, "waits");
    rc = waits_from_json(json_object_get(waits, "reasons"), &out->waits, &out->nwaits, err,
                         errlen);
    if (rc < 0)
        goto fail;
    const json_t *by_kind = json_object_get(waits, "by_kind");
    for (int k = 0; k < WL_WAIT_KIND_COUNT; k++) {
        const json_t *o = json_object_get(by_kind, wl_wait_kind_name((wl_wait_kind)k));
        double secs = json_number_value(json_object_get(o, "seconds"));
        json_int_t samples = json_integer_value(json_object_get(o, "samples"));
        if (!isfinite(secs) || secs < 0 || samples < 0 || (double)samples > WL_COUNT_MAX) {
            snprintf(err, errlen, "report.waits.by_kind.%s: seconds must be a finite number >= 0 "
                                  "and samples a whole number from 0 to 2^53",
                     wl_wait_kind_name((wl_wait_kind)k));
            rc = -EINVAL;
            goto fail;
        }
        out->wait_kind_s[k] = secs;
        out->wait_kind_samples[k] = (uint64_t)samples;
    }

    const json_t *threads = json_object_get(root, "threads");
    size_t nthreads = json_array_size(threads);
    out->threads = calloc(nthreads ? nthreads : 1, sizeof(*out->threads));
    if (!out->threads) {
        rc = -ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < nthreads; i++) {
        const json_t *o = json_array_get(threads, i);
        wl_thread_stat *t = &out->threads[out->nthreads++];
        rc = fields_from_json(o, t, thread_fields, NFIELDS(thread_fields), "thread", err, errlen);
        if (rc == 0)
            rc = waits_from_json(json_object_get(o, "waits"), &t->waits, &t->nwaits, err,
                                 errlen);
        if (rc < 0)
            goto fail;
        copy_str(t->comm, sizeof(t->comm), json_object_get(o, "comm"));
        copy_str(t->longest_block_syscall, sizeof(t->longest_block_syscall),
                 json_object_get(o, "longest_block_syscall"));
        copy_str(t->longest_wait_syscall, sizeof(t->longest_wait_syscall),
                 json_object_get(o, "longest_wait_syscall"));
        if (json_object_get(o, "loop_evidence")) {
            copy_str(t->loop_evidence, sizeof(t->loop_evidence),
                     json_object_get(o, "loop_evidence"));
            copy_str(t->loop_block_syscall, sizeof(t->loop_block_syscall),
                     json_object_get(o, "loop_block_syscall"));
        } else {
            legacy_loop_fields(t);
        }
    }
    for (size_t i = 0; i < out->nthreads; i++) /* derived: see wl_profile.thread_wait_kind_s */
        for (size_t j = 0; j < out->threads[i].nwaits; j++)
            out->thread_wait_kind_s[out->threads[i].waits[j].kind] += out->threads[i].waits[j].seconds;

    const json_t *procs = json_object_get(root, "processes");
    size_t nprocs = json_array_size(procs);
    out->procs = calloc(nprocs ? nprocs : 1, sizeof(*out->procs));
    if (!out->procs) {
        rc = -ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < nprocs; i++) {
        const json_t *o = json_array_get(procs, i);
        wl_process_stat *pr = &out->procs[out->nprocs++];
        rc = fields_from_json(o, pr, process_fields, NFIELDS(process_fields), "process", err,
                              errlen);
        if (rc == 0)
            rc = io_from_json(json_object_get(o, "io"), &pr->io, err, errlen);
        if (rc < 0)
            goto fail;
        copy_str(pr->comm, sizeof(pr->comm), json_object_get(o, "comm"));
        const char *cmd = json_string_value(json_object_get(o, "cmdline"));
        pr->cmdline = cmd ? strdup(cmd) : NULL;
    }
    rc = io_from_json(json_object_get(root, "io"), &out->io, err, errlen);
    if (rc < 0)
        goto fail;
    rc = wl__timeline_from_json(json_object_get(root, "timeline"), &out->timeline, err, errlen);
    if (rc < 0)
        goto fail;
    const char *when = json_string_value(json_object_get(root, "started_at"));
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (when && strptime(when, "%Y-%m-%dT%H:%M:%SZ", &tm))
        out->started_at = (double)timegm(&tm);
    return 0;

fail:
    wl_profile_free(out);
    return rc;
}

/* Feeds json_load_callback from f, refusing to go past WL_REPORT_MAX_BYTES
 * (a pipe or a growing file has no size to check up front). */
struct capped_reader {
    FILE *f;
    size_t total;
    int over;
};

static size_t capped_read(void *buf, size_t len, void *data)
{
    struct capped_reader *r = data;
    if (r->total >= (size_t)WL_REPORT_MAX_BYTES) {
        char c;
        if (fread(&c, 1, 1, r->f) == 1)
            r->over = 1;
        return r->over ? (size_t)-1 : 0;
    }
    size_t room = (size_t)WL_REPORT_MAX_BYTES - r->total;
    size_t n = fread(buf, 1, len < room ? len : room, r->f);
    r->total += n;
    return n;
}

int wl_report_load(const char *path, json_t **root_out, char *err, size_t errlen)
{
    *root_out = NULL;
    FILE *f = fopen(path, "re");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(e));
        return -e;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > WL_REPORT_MAX_BYTES) {
        snprintf(err, errlen, "%s: %lld bytes is larger than a report may be (%d MiB)", path,
                 (long long)st.st_size, WL_REPORT_MAX_BYTES >> 20);
        fclose(f);
        return -EFBIG;
    }
    struct capped_reader cr = {f, 0, 0};
    json_error_t jerr;
    json_t *root = json_load_callback(capped_read, &cr, 0, &jerr);
    fclose(f);
    if (cr.over) {
        json_decref(root);
        snprintf(err, errlen, "%s: larger than a report may be (%d MiB)", path,
                 WL_REPORT_MAX_BYTES >> 20);
        return -EFBIG;
    }
    if (!root) {
        snprintf(err, errlen, "%s:%d:%d: invalid JSON: %s", path, jerr.line, jerr.column,
                 jerr.text);
        return -EINVAL;
    }
    const char *schema = json_string_value(json_object_get(root, "schema"));
    if (!json_is_object(root) || !schema || strncmp(schema, "wlprof.report/", 14) != 0) {
        snprintf(err, errlen, "%s: not a wlprof report (no \"schema\": \"%s\")", path,
                 WL_REPORT_SCHEMA);
        json_decref(root);
        return -EINVAL;
    }
    if (strcmp(schema, WL_REPORT_SCHEMA) != 0 && strcmp(schema, WL_REPORT_SCHEMA_V2) != 0 &&
        strcmp(schema, WL_REPORT_SCHEMA_V1) != 0) {
        snprintf(err, errlen, "%s: report schema %s is not supported (this wlprof reads %s)",
                 path, schema, WL_REPORT_SCHEMA);
        json_decref(root);
        return -EPROTO;
    }
    *root_out = root;
    return 0;
}

/* ---- JSON into an atomic output file (wlprof/outputs.h) ---- */

int wl_atomic_commit_json(wl_atomic_file *af, const json_t *root, char *err, size_t errlen)
{
    if (json_dumpf(root, af->f, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) != 0 ||
        fputc('\n', af->f) == EOF) {
        snprintf(err, errlen, "cannot write %s: %s", af->path, strerror(errno));
        wl_atomic_abort(af);
        return -EIO;
    }
    return wl_atomic_commit(af, err, errlen);
}

int wl_json_write_atomic(const char *path, const json_t *root, char *err, size_t errlen)
{
    wl_atomic_file af;
    int rc = wl_atomic_open(&af, path, err, errlen);
    if (rc < 0)
        return rc;
    return wl_atomic_commit_json(&af, root, err, errlen);
}
