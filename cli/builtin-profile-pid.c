/*
 * builtin-profile-pid.c -- `wlprof profile --pid PID[,PID...]`: attach to
 * running processes (wlprof/attach.h), with native stacks read from
 * outside (wlprof/rstacks.h), until --duration, Ctrl-C or their exit.
 *
 * The same summary, verdict and outputs as `wlprof profile CMD`, plus one
 * line on what reading the stacks cost the target (threads stopped one at
 * a time, the pause each time). The targets are never signalled: Ctrl-C
 * here ends the profile (exit 0), SIGTERM and SIGHUP too (exit 128+N),
 * the report is written either way.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "wlprof/attach.h"
#include "wlprof/classify.h"
#include "wlprof/profile.h"
#include "wlprof/report.h"
#ifdef WL_HAVE_RSTACKS
#include "wlprof/rstacks.h"
#endif

#define MAX_PIDS 64

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
    stop_signal = sig;
}

/* Parses "12,34" into pids. Returns the count, or -1 (err filled). */
static int parse_pids(const char *s, int *pids, char *err, size_t errlen)
{
    int n = 0;
    const char *p = s;
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v <= 0 || v > 0x7fffffff || (*end && *end != ',')) {
            snprintf(err, errlen, "--pid takes process ids separated by commas, not '%s'", s);
            return -1;
        }
        if (n == MAX_PIDS) {
            snprintf(err, errlen, "--pid takes at most %d processes", MAX_PIDS);
            return -1;
        }
        pids[n++] = (int)v;
        if (!*end)
            return n;
        p = end + 1;
    }
}

#ifdef WL_HAVE_RSTACKS
/* Writes one stacks output into its open temporary and commits it. */
static int write_stacks_file(wl_atomic_file *af, const wl_stacks *st, const char *name,
                             bool speedscope)
{
    char err[512];
    if (!af->f)
        return 0;
    int rc = speedscope ? wl_stacks_write_speedscope(st, af->f, name)
                        : wl_stacks_write_folded(st, af->f);
    if (rc < 0) {
        cli_error("profile", "cannot write %s: %s", af->path, strerror(-rc));
        wl_atomic_abort(af);
        return WL_EXIT_FAILURE;
    }
    if (wl_atomic_commit(af, err, sizeof(err)) < 0) {
        cli_error("profile", "%s", err);
        return WL_EXIT_FAILURE;
    }
    return 0;
}
#endif

int cmd_profile_pid(const struct profile_pid_args *a)
{
    int pids[MAX_PIDS];
    char err[512], why[512];
    int npids = parse_pids(a->pids, pids, err, sizeof(err));
    if (npids < 0) {
        cli_error("profile", "%s", err);
        return WL_EXIT_USAGE;
    }
    for (int i = 0; i < npids; i++) {
        if (wl_attach_check_pid(&pids[i], why, sizeof(why)) < 0) {
            cli_error("profile", "%s", why);
            return WL_EXIT_FAILURE;
        }
        if (why[0])
            fprintf(stderr, "wlprof: %s\n", why);
    }

    wl_atomic_file out = {0}, folded_out = {0}, speedscope_out = {0}, html_out = {0};
    if ((a->json && wl_atomic_open(&out, a->json, err, sizeof(err)) < 0) ||
        (a->html && wl_atomic_open(&html_out, a->html, err, sizeof(err)) < 0) ||
        (a->folded && wl_atomic_open(&folded_out, a->folded, err, sizeof(err)) < 0) ||
        (a->speedscope && wl_atomic_open(&speedscope_out, a->speedscope, err, sizeof(err)) < 0)) {
        cli_error("profile", "%s", err);
        wl_atomic_abort(&out);
        wl_atomic_abort(&html_out);
        wl_atomic_abort(&folded_out);
        return WL_EXIT_FAILURE;
    }

    wl_attach_opts ao = {.hz = a->opts.hz, .seed = a->opts.seed, .children = a->children != 0};
#ifdef WL_HAVE_RSTACKS
    wl_rstacks *rs = NULL;
    if (!a->no_stacks) {
        char notice[512] = "";
        int ok = 1;
        for (int i = 0; i < npids && ok; i++)
            ok = wl_rstacks_probe(pids[i], notice, sizeof(notice)) == 0;
        if (ok)
            wl_rstacks_new(&rs, ao.hz > 0 ? ao.hz : 100.0, notice, sizeof(notice));
        if (notice[0])
            fprintf(stderr, "wlprof: %s\n", notice);
        if (rs)
            wl_rstacks_hook(rs, &ao);
    }
#else
    if (!a->no_stacks)
        fprintf(stderr, "wlprof: this wlprof was built without libunwind-ptrace: no stacks "
                        "when attaching, /proc sampling only\n");
#endif

    struct sigaction sa, old[3];
    const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop; /* no SA_RESTART: the wait between ticks ends */
    sigemptyset(&sa.sa_mask);
    stop_signal = 0;
    for (int i = 0; i < 3; i++)
        sigaction(sigs[i], &sa, &old[i]);

    wl_attach *sess;
    int rc = wl_attach_begin(&sess, pids, (size_t)npids, &ao, err, sizeof(err));
    wl_profile prof;
    memset(&prof, 0, sizeof(prof));
    if (rc == 0) {
        if (!a->quiet) {
            if (a->duration > 0)
                fprintf(stderr, "wlprof: attached to pid %d%s for %g s (Ctrl-C stops)\n", pids[0],
                        npids > 1 ? " and others" : "", a->duration);
            else
                fprintf(stderr, "wlprof: attached to pid %d%s; Ctrl-C stops\n", pids[0],
                        npids > 1 ? " and others" : "");
        }
        wl_attach_run(sess, a->duration > 0 ? a->duration : -1, &stop_signal, -1);
        rc = wl_attach_end(sess, &prof);
        if (rc < 0)
            snprintf(err, sizeof(err), "out of memory");
    }
    for (int i = 0; i < 3; i++)
        sigaction(sigs[i], &old[i], NULL);

    json_t *stack_sections = NULL;
    int status = WL_EXIT_OK;
#ifdef WL_HAVE_RSTACKS
    wl_stacks stacks;
    memset(&stacks, 0, sizeof(stacks));
    wl_rstacks_stats rst;
    memset(&rst, 0, sizeof(rst));
    if (rs) {
        wl_rstacks_get_stats(rs, &rst);
        if (rst.refused && wl_rstacks_notice(rs)[0])
            fprintf(stderr, "wlprof: %s\n", wl_rstacks_notice(rs));
        int src = rc == 0 ? wl_rstacks_finish(rs, &stacks) : -ECANCELED;
        wl_rstacks_free(rs);
        if (rc == 0 && src < 0)
            cli_error("profile", "cannot read the stacks: %s", strerror(-src));
        if (src == 0 && !rst.refused)
            stack_sections = wl_stacks_to_json(&stacks, 200, 200);
        prof.stack_pauses = rst.stops;
        prof.pause_total_s = rst.pause_total_s;
        prof.pause_max_s = rst.pause_max_s;
    }
    const char *name = prof.argv && prof.argv[0] ? prof.argv[0] : "pid";
    if (rc == 0) {
        status |= write_stacks_file(&folded_out, &stacks, name, false);
        status |= write_stacks_file(&speedscope_out, &stacks, name, true);
    }
#endif
    wl_atomic_abort(&folded_out);
    wl_atomic_abort(&speedscope_out);
    if (rc < 0) {
        cli_error("profile", "%s", err);
        wl_atomic_abort(&out);
        json_decref(stack_sections);
#ifdef WL_HAVE_RSTACKS
        wl_stacks_free(&stacks);
#endif
        return WL_EXIT_FAILURE;
    }

    wl_verdict verdict;
    int classified = wl_classify(&prof, NULL, &verdict) == 0;
    if (classified && stack_sections)
        wl_verdict_add_functions(&verdict, stack_sections);
    if (!a->quiet) {
        wl_report_print_text(stderr, &prof, cli_use_color(stderr));
#ifdef WL_HAVE_RSTACKS
        if (stack_sections)
            wl_stacks_print_table(&stacks, stderr, 10);
        if (rst.stops > 0)
            fprintf(stderr,
                    "  stacks   %llu stops of one thread at a time: pause %.1f us mean, %.1f us "
                    "max; %llu blocked stacks read without a stop\n",
                    (unsigned long long)rst.stops, 1e6 * rst.pause_total_s / (double)rst.stops,
                    1e6 * rst.pause_max_s, (unsigned long long)rst.blocked_reads);
#endif
        if (classified) {
            fputc('\n', stderr);
            wl_verdict_print(stderr, &verdict);
        }
    }
    if (a->json || a->html) {
        json_t *root = wl_report_to_json(&prof);
        if (root && stack_sections)
            json_object_update(root, stack_sections);
        if (root && classified && wl_verdict_to_report(&verdict, root) < 0) {
            json_decref(root);
            root = NULL;
        }
        if (root && a->html && wl_atomic_commit_html(&html_out, root, err, sizeof(err)) < 0) {
            cli_error("profile", "%s", err);
            status = WL_EXIT_FAILURE;
        }
        if (!root) {
            cli_error("profile", "cannot write %s: out of memory", a->json ? a->json : a->html);
            wl_atomic_abort(&out);
            wl_atomic_abort(&html_out);
            status = WL_EXIT_FAILURE;
        } else if (a->json && wl_atomic_commit_json(&out, root, err, sizeof(err)) < 0) {
            cli_error("profile", "%s", err);
            status = WL_EXIT_FAILURE;
        }
        json_decref(root);
    }
    json_decref(stack_sections);
    wl_verdict_free(&verdict);
    wl_profile_free(&prof);
#ifdef WL_HAVE_RSTACKS
    wl_stacks_free(&stacks);
#endif
    if (status == WL_EXIT_OK && (stop_signal == SIGTERM || stop_signal == SIGHUP))
        status = 128 + stop_signal;
    return status;
}
