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
#include "cli-rstacks.h"
#include "wlprof/attach.h"
#include "wlprof/classify.h"
#include "wlprof/profile.h"
#include "wlprof/report.h"

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

/* The processes of --pid, parsed and checked (each must exist and be
 * ours to read) into pids. Returns their count, or minus the exit code
 * after one line. */
static int check_pids(const char *arg, int *pids)
{
    char err[512], why[512];
    int npids = parse_pids(arg, pids, err, sizeof(err));
    if (npids < 0) {
        wl__cli_error("profile", "%s", err);
        return -WL_EXIT_USAGE;
    }
    for (int i = 0; i < npids; i++) {
        if (wl_attach_check_pid(&pids[i], why, sizeof(why)) < 0) {
            wl__cli_error("profile", "%s", why);
            return -WL_EXIT_FAILURE;
        }
        if (why[0])
            fprintf(stderr, "wlprof: %s\n", why);
    }
    return npids;
}

/* Arms the stacks reader for the attach unless --no-stacks; says in one
 * line why there are none when they were wanted. */
static void arm_stacks(const struct profile_pid_args *a, const int *pids, int npids,
                       wl_attach_opts *ao, cli_rstacks *r)
{
    char notice[512];
    int rc = wl__cli_rstacks_begin(r, pids, npids, a->no_stacks, ao->hz > 0 ? ao->hz : 100.0, ao,
                               notice, sizeof(notice));
    if (rc == -ENOTSUP && !a->no_stacks)
        fprintf(stderr, "wlprof: this wlprof was built without libunwind-ptrace: no stacks "
                        "when attaching, /proc sampling only\n");
    else if (notice[0])
        fprintf(stderr, "wlprof: %s\n", notice);
}

/* Attaches, samples until --duration, Ctrl-C/SIGTERM/SIGHUP (stop_signal
 * says which) or the processes' exit, and fills *prof. Returns 0, or < 0
 * with err saying why. */
static int attach_and_wait(const struct profile_pid_args *a, const int *pids, int npids,
                           const wl_attach_opts *ao, wl_profile *prof, char *err, size_t errlen)
{
    struct sigaction sa, old[3];
    const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop; /* no SA_RESTART: the wait between ticks ends */
    sigemptyset(&sa.sa_mask);
    stop_signal = 0;
    for (int i = 0; i < 3; i++)
        sigaction(sigs[i], &sa, &old[i]);

    wl_attach *sess;
    int rc = wl_attach_begin(&sess, pids, (size_t)npids, ao, err, errlen);
    if (rc == 0) {
        if (!a->quiet && a->duration > 0)
            fprintf(stderr, "wlprof: attached to pid %d%s for %g s (Ctrl-C stops)\n", pids[0],
                    npids > 1 ? " and others" : "", a->duration);
        else if (!a->quiet)
            fprintf(stderr, "wlprof: attached to pid %d%s; Ctrl-C stops\n", pids[0],
                    npids > 1 ? " and others" : "");
        wl_attach_run(sess, a->duration > 0 ? a->duration : -1, &stop_signal, -1);
        rc = wl_attach_end(sess, prof);
        if (rc < 0)
            snprintf(err, errlen, "out of memory");
    }
    for (int i = 0; i < 3; i++)
        sigaction(sigs[i], &old[i], NULL);
    return rc;
}

/* The summary, the stacks and what reading them cost, the verdict: on
 * stderr. */
static void print_summary(const wl_profile *prof, const cli_rstacks *r, const wl_verdict *v)
{
    wl_report_print_text(stderr, prof, wl__cli_use_color(stderr));
    wl__cli_rstacks_print(r, stderr);
    if (v) {
        fputc('\n', stderr);
        wl_verdict_print(stderr, v);
    }
}

int cmd_profile_pid(const struct profile_pid_args *a)
{
    int pids[MAX_PIDS];
    char err[512];
    struct profile_outputs o;
    cli_rstacks r;
    wl_profile prof = {0};
    int npids = check_pids(a->pids, pids);
    if (npids < 0)
        return -npids;
    if (wl__cli_profile_check(&a->out) < 0)
        return WL_EXIT_USAGE;
    int rc = wl__cli_profile_open(&o, &a->out);
    if (rc != 0)
        return rc;

    wl_attach_opts ao = {.hz = a->opts.hz, .seed = a->opts.seed, .children = a->children != 0};
    arm_stacks(a, pids, npids, &ao, &r);
    rc = attach_and_wait(a, pids, npids, &ao, &prof, err, sizeof(err));
    json_t *stack_sections = wl__cli_rstacks_finish(&r, rc == 0, &prof);
    int status = WL_EXIT_OK;
    if (rc == 0)
        status = wl__cli_rstacks_save(&r, &o.folded, &o.speedscope,
                                  prof.argv && prof.argv[0] ? prof.argv[0] : "pid");
    if (rc < 0) {
        wl__cli_error("profile", "%s", err);
        status = WL_EXIT_FAILURE;
        goto out;
    }

    wl_verdict verdict;
    int classified = wl_classify(&prof, NULL, &verdict) == 0;
    if (classified && stack_sections)
        wl_verdict_add_functions(&verdict, stack_sections);
    if (!a->quiet)
        print_summary(&prof, &r, classified ? &verdict : NULL);
    if (wl__cli_profile_write(&o, &a->out, &prof, stack_sections, classified ? &verdict : NULL) != 0)
        status = WL_EXIT_FAILURE;
    wl_verdict_free(&verdict);
    if (status == WL_EXIT_OK && (stop_signal == SIGTERM || stop_signal == SIGHUP))
        status = 128 + stop_signal;
out:
    wl__cli_profile_abort(&o);
    json_decref(stack_sections);
    wl_profile_free(&prof);
    wl__cli_rstacks_free(&r);
    return status;
}
