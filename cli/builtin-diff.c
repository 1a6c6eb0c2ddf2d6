/*
 * builtin-diff.c -- `wlprof diff [-o OUT.json] BEFORE.json AFTER.json`.
 *
 * What changed between two saved profiles, e.g. before and after a fix:
 * wall time; each part of the split (user CPU, system CPU, run queue,
 * waiting) in seconds and in points of share; waiting by kind; the
 * functions whose self time grew or shrank the most; and the verdict of
 * each. Printed in 80 columns; with -o also as JSON ("wlprof.diff/1",
 * documented in docs/report-schema.md).
 *
 * The split's seconds are the sampled ones (running + waiting, shared out
 * by the split), the same figures `profile` and `report` print; the
 * verdicts are computed afresh with the default thresholds so both sides
 * are judged alike.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "wlprof/classify.h"
#include "wlprof/profile.h"
#include "wlprof/report.h"

#define DIFF_SCHEMA "wlprof.diff/1"
#define TOP_FUNCS 8

struct side {
    const char *path;
    json_t *root;
    wl_profile p;
    wl_verdict v;
    int classified;
    double part_s[4];    /* user, system, run queue, waiting: seconds */
    double part_share[4];
};

static const char *const part_names[4] = {"user CPU", "system CPU", "run queue", "waiting"};
static const char *const part_keys[4] = {"user", "system", "runqueue", "waiting"};

static int load_side(struct side *s, const char *path)
{
    s->path = path;
    if (wl__cli_load_report("diff", path, &s->root, &s->p) < 0)
        return -1;
    s->classified = wl_classify(&s->p, NULL, &s->v) == 0;
    double covered = s->p.running_s + s->p.waiting_s;
    s->part_s[0] = s->p.user_frac * covered;
    s->part_s[1] = s->p.sys_frac * covered;
    s->part_s[2] = s->p.runqueue_s;
    s->part_s[3] = s->p.wait_frac * covered;
    double total = covered + s->p.runqueue_s;
    for (int i = 0; i < 4; i++)
        s->part_share[i] = total > 0 ? s->part_s[i] / total : 0;
    return 0;
}

static void free_side(struct side *s)
{
    wl_verdict_free(&s->v);
    wl_profile_free(&s->p);
    json_decref(s->root);
}

/* One function's self time in a report. */
struct fn_delta {
    const char *name;
    const char *module;
    double cpu[2], wait[2]; /* before, after */
};

static double self_of(const json_t *fn, const char *key)
{
    return json_number_value(json_object_get(json_object_get(fn, "self"), key));
}

static struct fn_delta *find_fn(struct fn_delta *v, size_t n, const char *name, const char *module)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].name, name) == 0 && strcmp(v[i].module, module) == 0)
            return &v[i];
    return NULL;
}

static double change_of(const struct fn_delta *f)
{
    return (f->cpu[1] + f->wait[1]) - (f->cpu[0] + f->wait[0]);
}

static int cmp_change(const void *a, const void *b)
{
    double x = fabs(change_of(a)), y = fabs(change_of(b));
    return (x < y) - (x > y);
}

/* Functions of both reports with their self times; sorted by the size of
 * the change. *n gets the count. NULL when out of memory. */
static struct fn_delta *function_deltas(const struct side *s, size_t *n)
{
    const json_t *fa = json_object_get(s[0].root, "functions"), *fb = json_object_get(s[1].root, "functions");
    size_t cap = json_array_size(fa) + json_array_size(fb) + 1;
    struct fn_delta *v = calloc(cap, sizeof(*v));
    *n = 0;
    if (!v)
        return NULL;
    for (int side = 0; side < 2; side++) {
        const json_t *arr = side ? fb : fa;
        for (size_t i = 0; i < json_array_size(arr); i++) {
            const json_t *fn = json_array_get(arr, i);
            const char *name = json_string_value(json_object_get(fn, "name"));
            const char *module = json_string_value(json_object_get(fn, "module"));
            if (!name || !module)
                continue;
            struct fn_delta *d = find_fn(v, *n, name, module);
            if (!d) {
                d = &v[(*n)++];
                d->name = name;
                d->module = module;
            }
            d->cpu[side] += self_of(fn, "user_s") + self_of(fn, "sys_s");
            d->wait[side] += self_of(fn, "wait_s");
        }
    }
    if (*n)
        qsort(v, *n, sizeof(*v), cmp_change);
    return v;
}

static double pct_change(double a, double b)
{
    return a > 0 ? 100.0 * (b - a) / a : 0.0;
}

static void verdict_line(FILE *f, const char *label, const struct side *s)
{
    if (!s->classified) {
        fprintf(f, "    %-7s no verdict (the report covers no time)\n", label);
        return;
    }
    fprintf(f, "    %-7s %s, %s of %d, predicted %.2fx\n", label, wl_kind_name(s->v.kind),
            wl_executor_name(s->v.executor), s->v.suggested_workers, s->v.predicted[s->v.executor].speedup);
}

static void print_diff(FILE *f, const struct side *s, const struct fn_delta *fns, size_t nfns)
{
    fprintf(f, "wlprof diff\n  before: %s\n  after:  %s\n", s[0].path, s[1].path);
    fprintf(f, "  %-14s %11s %11s %11s %13s\n", "", "before", "after", "change", "% or points");
    double wa = s[0].p.wall_s, wb = s[1].p.wall_s;
    fprintf(f, "  %-14s %9.3f s %9.3f s %+9.3f s %+12.1f%%\n", "wall", wa, wb, wb - wa, pct_change(wa, wb));
    for (int i = 0; i < 4; i++)
        fprintf(f, "  %-14s %9.3f s %9.3f s %+9.3f s %+10.1f pt\n", part_names[i], s[0].part_s[i], s[1].part_s[i],
                s[1].part_s[i] - s[0].part_s[i], 100.0 * (s[1].part_share[i] - s[0].part_share[i]));
    fprintf(f, "  %-14s %11.2f %11.2f %+11.2f\n", "cores busy", s[0].p.cores_busy, s[1].p.cores_busy,
            s[1].p.cores_busy - s[0].p.cores_busy);
    int any = 0;
    for (int k = 0; k < WL_WAIT_KIND_COUNT; k++) {
        double a = s[0].p.wait_kind_s[k], b = s[1].p.wait_kind_s[k];
        if (a < 0.0005 && b < 0.0005)
            continue;
        if (!any++)
            fprintf(f, "  waiting by kind:\n");
        fprintf(f, "    %-12s %9.3f s %9.3f s %+9.3f s\n", wl_wait_kind_name((wl_wait_kind)k), a, b, b - a);
    }
    if (nfns) {
        fprintf(f, "  functions whose self time changed most (CPU + waiting, seconds):\n");
        for (size_t i = 0; i < nfns && i < TOP_FUNCS; i++) {
            const struct fn_delta *d = &fns[i];
            if (fabs(change_of(d)) < 0.0005)
                break;
            fprintf(f, "    %-22.22s %+8.3f s  cpu %.3f -> %.3f  wait %.3f -> %.3f\n", d->name,
                    change_of(d), d->cpu[0], d->cpu[1], d->wait[0], d->wait[1]);
        }
    }
    fprintf(f, "  verdict:\n");
    verdict_line(f, "before", &s[0]);
    verdict_line(f, "after", &s[1]);
}

static json_t *side_json(const struct side *s)
{
    json_t *o = json_pack("{s:s, s:f, s:f}", "report", s->path, "wall_s", s->p.wall_s, "cores_busy", s->p.cores_busy);
    json_t *parts = json_object(), *kinds = json_object();
    for (int i = 0; i < 4; i++)
        json_object_set_new(parts, part_keys[i], json_pack("{s:f, s:f}", "seconds", s->part_s[i], "share", s->part_share[i]));
    for (int k = 0; k < WL_WAIT_KIND_COUNT; k++)
        json_object_set_new(kinds, wl_wait_kind_name((wl_wait_kind)k), json_real(s->p.wait_kind_s[k]));
    json_object_set_new(o, "split", parts);
    json_object_set_new(o, "wait_kind_s", kinds);
    json_object_set_new(o, "verdict", s->classified ? json_pack("{s:s, s:s, s:i, s:f}", "kind", wl_kind_name(s->v.kind),
                                                                "executor", wl_executor_name(s->v.executor), "workers",
                                                                s->v.suggested_workers, "speedup",
                                                                s->v.predicted[s->v.executor].speedup)
                                                    : json_null());
    return o;
}

static json_t *diff_json(const struct side *s, const struct fn_delta *fns, size_t nfns)
{
    json_t *change = json_object(), *parts = json_object(), *kinds = json_object(), *funcs = json_array();
    json_object_set_new(change, "wall_s", json_real(s[1].p.wall_s - s[0].p.wall_s));
    for (int i = 0; i < 4; i++)
        json_object_set_new(parts, part_keys[i],
                            json_pack("{s:f, s:f}", "seconds", s[1].part_s[i] - s[0].part_s[i], "points",
                                      100.0 * (s[1].part_share[i] - s[0].part_share[i])));
    for (int k = 0; k < WL_WAIT_KIND_COUNT; k++)
        json_object_set_new(kinds, wl_wait_kind_name((wl_wait_kind)k),
                            json_real(s[1].p.wait_kind_s[k] - s[0].p.wait_kind_s[k]));
    for (size_t i = 0; i < nfns && i < 50; i++)
        json_array_append_new(funcs, json_pack("{s:s, s:s, s:f, s:f, s:f, s:f, s:f}", "name", fns[i].name, "module",
                                               fns[i].module, "change_s", change_of(&fns[i]), "cpu_before_s",
                                               fns[i].cpu[0], "cpu_after_s", fns[i].cpu[1], "wait_before_s",
                                               fns[i].wait[0], "wait_after_s", fns[i].wait[1]));
    json_object_set_new(change, "split", parts);
    json_object_set_new(change, "wait_kind_s", kinds);
    json_object_set_new(change, "cores_busy", json_real(s[1].p.cores_busy - s[0].p.cores_busy));
    return json_pack("{s:s, s:o, s:o, s:o, s:o}", "schema", DIFF_SCHEMA, "before", side_json(&s[0]), "after",
                     side_json(&s[1]), "change", change, "functions", funcs);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: wlprof diff [OPTIONS] BEFORE.json AFTER.json\n"
               "\n"
               "Compares two saved profiles: wall time, the split in seconds and points of\n"
               "share, waiting by kind, the functions whose self time changed most, and the\n"
               "verdict of each.\n"
               "\n"
               "Options:\n"
               "  -o, --json FILE   also write the comparison as JSON (schema " DIFF_SCHEMA ")\n"
               "  -q, --quiet       print nothing (with --json)\n"
               "  -h, --help        show this help\n"
               "\n"
               "Exit status: 0, 1 when a report cannot be read or the output written, 2 on bad usage.\n");
}

/* The command line, parsed. */
struct diff_args {
    const char *json; /* -o FILE, or NULL */
    int quiet;        /* -q */
};

/* One option c with value v into *ctx (a struct diff_args). Returns a
 * CLI_PARSE_* code. */
static int parse_option(char **argv, int c, const char *v, void *ctx)
{
    struct diff_args *a = ctx;
    if (c == 'o')
        a->json = v;
    else if (c == 'q')
        a->quiet = 1;
    else
        return wl__cli_option_rest("diff", argv, c, usage);
    return CLI_PARSE_OK;
}

/* The options and the two reports (argv[optind], argv[optind + 1]); the
 * output may be neither report. Returns a CLI_PARSE_* code. */
static int parse_args(int argc, char **argv, struct diff_args *a)
{
    static const struct option longopts[] = {
        {"json", required_argument, NULL, 'o'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int rc = wl__cli_parse_options(argc, argv, ":o:qh", longopts, parse_option, a);
    if (rc != CLI_PARSE_OK)
        return rc;
    if (argc - optind != 2) {
        wl__cli_error("diff", "two reports needed (usage: wlprof diff [OPTIONS] BEFORE.json AFTER.json)");
        return CLI_PARSE_ERROR;
    }
    wl_outputs paths = {0};
    wl_outputs_add_input(&paths, "BEFORE", argv[optind]);
    wl_outputs_add_input(&paths, "AFTER", argv[optind + 1]);
    wl_outputs_add(&paths, "--json", a->json);
    return wl__cli_check_outputs("diff", &paths) < 0 ? CLI_PARSE_ERROR : CLI_PARSE_OK;
}

/* Writes the comparison as JSON into af (opened before). 0 or -1. */
static int write_diff(wl_atomic_file *af, const char *json_path, const struct side *s,
                      const struct fn_delta *fns, size_t nfns)
{
    char err[512];
    int rc = 0;
    json_t *doc = diff_json(s, fns, nfns);
    if (!doc) {
        wl__cli_error("diff", "cannot write %s: out of memory", json_path);
        rc = -1;
    } else if (wl_atomic_commit_json(af, doc, err, sizeof(err)) < 0) {
        wl__cli_error("diff", "%s", err);
        rc = -1;
    }
    json_decref(doc);
    return rc;
}

int cmd_diff(int argc, char **argv)
{
    struct diff_args a = {0};
    char err[512];
    int rc = parse_args(argc, argv, &a);
    if (rc != CLI_PARSE_OK)
        return cli_parse_exit(rc);
    const char *json_path = a.json;

    struct side s[2];
    memset(s, 0, sizeof(s));
    wl_atomic_file af = {0};
    struct fn_delta *fns = NULL;
    size_t nfns = 0;
    int status = WL_EXIT_FAILURE;
    if (json_path && wl_atomic_open(&af, json_path, err, sizeof(err)) < 0) {
        wl__cli_error("diff", "%s", err);
        return WL_EXIT_FAILURE;
    }
    if (load_side(&s[0], argv[optind]) < 0 || load_side(&s[1], argv[optind + 1]) < 0)
        goto out;
    fns = function_deltas(s, &nfns);
    if (!fns) {
        wl__cli_error("diff", "out of memory");
        goto out;
    }
    if (!a.quiet)
        print_diff(stdout, s, fns, nfns);
    status = WL_EXIT_OK;
    if (json_path && write_diff(&af, json_path, s, fns, nfns) < 0)
        status = WL_EXIT_FAILURE;
out:
    wl_atomic_abort(&af);
    free(fns);
    free_side(&s[0]);
    free_side(&s[1]);
    return status;
}
