/*
 * report.c -- the run report (schema wlprof.run/2, docs/run-schema.md) and
 * the terminal summary. Built with jansson's *_set_new so nothing leaks;
 * the pilot's profile reuses wl_report_to_json and the verdict its own
 * classification/recommendation objects, so a run report embeds exactly
 * what `wlprof profile --json` and `wlprof recommend` would say.
 */
#include "internal.h"

#include <math.h>
#include <string.h>

#include "wlprof/report.h"

static const char *state_name(wl_job_state s)
{
    switch (s) {
    case WL_JOB_OK:
        return "ok";
    case WL_JOB_FAILED:
        return "failed";
    case WL_JOB_CANCELLED:
        return "cancelled";
    case WL_JOB_TIMED_OUT:
        return "timed_out";
    case WL_JOB_SKIPPED:
        return "skipped";
    default:
        return "not_run";
    }
}

/* Command jobs are always processes, however many run at once. */
static const char *executor_label(const wl_run_result *r)
{
    if (r->mode == WL_RUN_COMMANDS)
        return "processes";
    return r->executor >= 0 ? wl_executor_name((wl_executor)r->executor) : "none";
}

/* The pilot's sequential pace: its jobs' seconds, even when they overlapped. */
static double pilot_job_s(const wl_run_result *r)
{
    return r->pilot_job_s > 0 ? r->pilot_job_s : r->pilot_wall_s;
}

double wl_run_speedup(const wl_run_result *r)
{
    size_t main_jobs = 0;
    for (size_t i = 0; i < r->njobs; i++)
        if (!r->jobs[i].pilot && r->jobs[i].state != WL_JOB_NOT_RUN &&
            r->jobs[i].state != WL_JOB_SKIPPED)
            main_jobs++;
    if (r->pilot_jobs == 0 || pilot_job_s(r) <= 0 || main_jobs == 0 || r->main_wall_s <= 0)
        return 0;
    double per_job = pilot_job_s(r) / (double)r->pilot_jobs;
    return per_job * (double)main_jobs / r->main_wall_s;
}

static json_t *executor_json(const wl_run_result *r)
{
    json_t *e = json_object();
    json_object_set_new(e, "name", json_string(executor_label(r)));
    json_object_set_new(e, "workers", json_integer(r->workers));
    json_object_set_new(e, "chosen_by", json_string(r->auto_chosen ? "auto" : "user"));
    json_object_set_new(e, "reason", json_string(r->reason));
    json_object_set_new(e, "max_in_flight", json_integer((json_int_t)r->max_in_flight));
    if (r->mode == WL_RUN_TASKS) {
        json_object_set_new(e, "task_has_async", json_boolean(r->has_async));
        json_object_set_new(e, "task_has_blocking", json_boolean(r->has_blocking));
    }
    return e;
}

static json_t *pilot_json(const wl_run_result *r)
{
    json_t *p = json_object();
    json_object_set_new(p, "jobs", json_integer((json_int_t)r->pilot_jobs));
    json_object_set_new(p, "wall_s", json_real(r->pilot_wall_s));
    json_object_set_new(p, "job_s", json_real(pilot_job_s(r)));
    json_object_set_new(p, "rate_per_s", json_real(r->pilot_wall_s > 0
                                                       ? (double)r->pilot_jobs / r->pilot_wall_s
                                                       : 0));
    json_object_set_new(p, "profile",
                        r->have_profile ? wl_report_to_json(&r->profile) : json_null());
    if (r->have_verdict) {
        wl_verdict_to_report(&r->verdict, p);
    } else {
        json_object_set_new(p, "classification", json_null());
        json_object_set_new(p, "recommendation", json_null());
    }
    return p;
}

static json_t *jobs_json(const wl_run_result *r)
{
    json_t *a = json_array();
    for (size_t i = 0; i < r->njobs; i++) {
        const wl_job_result *j = &r->jobs[i];
        json_t *o = json_object();
        json_object_set_new(o, "index", json_integer((json_int_t)i));
        json_object_set_new(o, "line", json_integer(j->line));
        json_object_set_new(o, "phase", json_string(j->pilot ? "pilot" : "main"));
        json_object_set_new(o, "status", json_string(state_name(j->state)));
        json_object_set_new(o, r->mode == WL_RUN_COMMANDS ? "exit_status" : "code",
                            j->state == WL_JOB_NOT_RUN || j->state == WL_JOB_SKIPPED
                                ? json_null()
                                : json_integer(j->status));
        json_object_set_new(o, "start_s", json_real(j->start_s));
        json_object_set_new(o, "wall_s", json_real(j->wall_s));
        json_object_set_new(o, "error", j->error ? json_string(j->error) : json_null());
        if (r->mode == WL_RUN_TASKS)
            json_object_set_new(o, "result_bytes", json_integer((json_int_t)j->out_bytes));
        if (j->command)
            json_object_set_new(o, "command", json_string(j->command));
        json_t *at = json_array();
        for (size_t k = 0; k < j->nattempts; k++) {
            const wl_job_attempt *x = &j->attempts[k];
            json_t *ao = json_object();
            json_object_set_new(ao, "status", json_string(state_name(x->state)));
            json_object_set_new(ao, r->mode == WL_RUN_COMMANDS ? "exit_status" : "code",
                                json_integer(x->status));
            json_object_set_new(ao, "start_s", json_real(x->start_s));
            json_object_set_new(ao, "wall_s", json_real(x->wall_s));
            json_object_set_new(ao, "error", x->error ? json_string(x->error) : json_null());
            json_array_append_new(at, ao);
        }
        json_object_set_new(o, "attempts", at);
        if (r->cluster)
            json_object_set_new(o, "node", j->node ? json_string(j->node) : json_null());
        json_array_append_new(a, o);
    }
    return a;
}

/* Per node: jobs that ended there and their seconds (slurm runs). */
typedef struct node_sum {
    const char *node;
    size_t jobs, ok, failed;
    double seconds;
} node_sum;

static size_t node_sums(const wl_run_result *r, node_sum *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < r->njobs; i++) {
        const wl_job_result *j = &r->jobs[i];
        size_t k;
        if (!j->node)
            continue;
        for (k = 0; k < n && strcmp(out[k].node, j->node) != 0; k++)
            ;
        if (k == n) {
            if (n == max)
                continue;
            memset(&out[n], 0, sizeof(out[n]));
            out[n++].node = j->node;
        }
        out[k].jobs++;
        out[k].ok += j->state == WL_JOB_OK;
        out[k].failed += j->state == WL_JOB_FAILED;
        out[k].seconds += j->wall_s;
    }
    return n;
}

static json_t *cluster_json(const wl_run_result *r)
{
    node_sum sums[256];
    size_t n = node_sums(r, sums, 256);
    json_t *c = json_object();
    json_t *a = json_array();
    json_object_set_new(c, "allocation", json_string(r->cluster));
    for (size_t k = 0; k < n; k++) {
        json_t *o = json_object();
        json_object_set_new(o, "node", json_string(sums[k].node));
        json_object_set_new(o, "jobs", json_integer((json_int_t)sums[k].jobs));
        json_object_set_new(o, "ok", json_integer((json_int_t)sums[k].ok));
        json_object_set_new(o, "failed", json_integer((json_int_t)sums[k].failed));
        json_object_set_new(o, "job_seconds", json_real(sums[k].seconds));
        json_array_append_new(a, o);
    }
    json_object_set_new(c, "nodes", a);
    json_object_set_new(c, "signal", r->signal ? json_integer(r->signal) : json_null());
    return c;
}

json_t *wl_run_report_json(const wl_run_result *r)
{
    json_t *root = json_object();
    if (!root)
        return NULL;
    json_object_set_new(root, "schema", json_string(WL_RUN_SCHEMA));
    json_object_set_new(root, "mode",
                        json_string(r->mode == WL_RUN_TASKS ? "tasks" : "commands"));
    json_object_set_new(root, "what", json_string(r->what ? r->what : ""));
    json_object_set_new(root, "pilot", pilot_json(r));
    json_object_set_new(root, "executor", executor_json(r));

    json_t *t = json_object();
    json_object_set_new(t, "jobs", json_integer((json_int_t)r->njobs));
    json_object_set_new(t, "ok", json_integer((json_int_t)r->ok));
    json_object_set_new(t, "failed", json_integer((json_int_t)r->failed));
    json_object_set_new(t, "cancelled", json_integer((json_int_t)r->cancelled));
    json_object_set_new(t, "not_run", json_integer((json_int_t)r->not_run));
    json_object_set_new(t, "timed_out", json_integer((json_int_t)r->timed_out));
    json_object_set_new(t, "skipped", json_integer((json_int_t)r->skipped));
    json_object_set_new(t, "wall_s", json_real(r->total_wall_s));
    json_object_set_new(t, "pilot_wall_s", json_real(r->pilot_wall_s));
    json_object_set_new(t, "main_wall_s", json_real(r->main_wall_s));
    json_object_set_new(root, "totals", t);

    json_t *stop = json_object();
    const char *sname = r->signal ? wl__run_signal_name(r->signal) : NULL;
    json_object_set_new(stop, "signal", r->signal ? json_integer(r->signal) : json_null());
    json_object_set_new(stop, "signal_name", sname ? json_string(sname) : json_null());
    json_object_set_new(stop, "halted", json_boolean(r->halted));
    json_object_set_new(root, "stopped", stop);

    json_t *s = json_object();
    double sp = wl_run_speedup(r);
    size_t main_jobs = r->njobs - r->pilot_jobs - r->not_run - r->skipped;
    json_object_set_new(s, "main_jobs", json_integer((json_int_t)main_jobs));
    json_object_set_new(s, "sequential_estimate_s",
                        json_real(r->pilot_jobs ? pilot_job_s(r) / (double)r->pilot_jobs *
                                                      (double)main_jobs
                                                : 0));
    json_object_set_new(s, "actual_s", json_real(r->main_wall_s));
    json_object_set_new(s, "speedup", sp > 0 ? json_real(sp) : json_null());
    json_object_set_new(root, "speedup", s);

    json_object_set_new(root, "jobs", jobs_json(r));
    if (r->cluster)
        json_object_set_new(root, "cluster", cluster_json(r));
    return root;
}

void wl_run_print_summary(FILE *f, const wl_run_result *r)
{
    fprintf(f, "wlprof run: %s, %zu jobs\n", r->what ? r->what : "", r->njobs);
    if (r->pilot_jobs)
        fprintf(f, "  pilot     %zu job%s in %.2f s (%.3f s each)%s%s\n", r->pilot_jobs,
                r->pilot_jobs == 1 ? "" : "s", r->pilot_wall_s,
                pilot_job_s(r) / (double)r->pilot_jobs,
                r->have_verdict ? ": " : "",
                r->have_verdict ? wl_kind_name(r->verdict.kind) : "");
    if (r->have_verdict)
        fprintf(f, "            user %.0f%%, system %.0f%%, waiting %.0f%% of wall\n",
                100 * r->verdict.user_share, 100 * r->verdict.sys_share,
                100 * r->verdict.wait_share);
    if (r->executor >= 0)
        fprintf(f, "  executor  %s, %d at once (%s)\n", executor_label(r), r->workers,
                r->auto_chosen ? "auto" : "chosen");
    if (r->reason[0])
        fprintf(f, "  why       %s\n", r->reason);
    fprintf(f, "  jobs      %zu ok, %zu failed", r->ok, r->failed);
    if (r->cancelled)
        fprintf(f, ", %zu cancelled", r->cancelled);
    if (r->timed_out)
        fprintf(f, ", %zu timed out", r->timed_out);
    if (r->not_run)
        fprintf(f, ", %zu not run", r->not_run);
    if (r->skipped)
        fprintf(f, ", %zu skipped (--resume)", r->skipped);
    fprintf(f, "; most in flight %zu\n", r->max_in_flight);
    fprintf(f, "  time      %.2f s total (pilot %.2f s, rest %.2f s)\n", r->total_wall_s,
            r->pilot_wall_s, r->main_wall_s);
    if (r->signal)
        fprintf(f, "  stopped   by %s: running jobs were sent it, then SIGKILL after the grace "
                   "period\n",
                wl__run_signal_name(r->signal) ? wl__run_signal_name(r->signal) : "a signal");
    else if (r->halted)
        fprintf(f, "  stopped   by --halt\n");
    double sp = wl_run_speedup(r);
    if (sp > 0)
        fprintf(f, "  speed-up  %.1fx over the pilot's sequential pace\n", sp);
    /* What the pilot's verdict predicted for a batch under this executor,
     * next to what it achieved. */
    if (r->have_verdict && r->executor >= 0 && r->executor < WL_EXEC_COUNT)
        fprintf(f, "  predicted %.1fx for a batch on a %s (achieved %.1fx)\n",
                r->verdict.batch[r->executor].speedup,
                wl_executor_name((wl_executor)r->executor), sp);
    if (r->cluster) {
        node_sum sums[256];
        size_t n = node_sums(r, sums, 256);
        fprintf(f, "  cluster   %s\n", r->cluster);
        for (size_t k = 0; k < n; k++)
            fprintf(f, "            %-12s %4zu jobs (%zu failed), %8.2f job-seconds\n",
                    sums[k].node, sums[k].jobs, sums[k].failed, sums[k].seconds);
    }
    size_t shown = 0;
    for (size_t i = 0; i < r->njobs; i++) {
        const wl_job_result *j = &r->jobs[i];
        if (j->state != WL_JOB_FAILED && j->state != WL_JOB_TIMED_OUT)
            continue;
        if (shown++ == 0)
            fprintf(f, "  failures:\n");
        if (shown > 20) {
            fprintf(f, "    ... and %zu more (see --json)\n", r->failed + r->timed_out - 20);
            break;
        }
        fprintf(f, "    line %d: %s\n", j->line, j->error ? j->error : "failed");
    }
}
