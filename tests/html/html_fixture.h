/*
 * html_fixture.h -- what the html suites share: profiling the alternating
 * target (50 ms computing in compute_phase, 50 ms asleep in sleep_phase),
 * running shell commands, reading files, and the synthetic 10 s, 100 Hz,
 * 20-thread profile behind the size bound.
 */
#ifndef WL_TESTS_HTML_FIXTURE_H
#define WL_TESTS_HTML_FIXTURE_H

#include <check.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "testutil.h"
#include "wlprof/classify.h"
#include "wlprof/profile.h"
#include "wlprof/report.h"
#include "wlprof/stacks.h"

/* Runs a shell command line; returns its exit status (128+signal). */
static inline int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int sh(const char *fmt, ...)
{
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int st = system(cmd);
    ck_assert_int_ne(st, -1);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The whole file, NUL-terminated (caller frees); *len its size. */
static inline char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

/* Profiles the alternating target for `iters` rounds sleeping `sleep_ms`,
 * with whatever outputs `extra` asks for (shell words), the JSON report
 * into json. */
static inline void profile_alternate(const char *json, int iters, int sleep_ms, const char *extra)
{
    /* A private TMPDIR for the agent's directory: other wlprof runs on this
     * machine may clean up /tmp/wlprof-stacks-* they think stale. */
    char tmp[4096]; /* the report's own directory (tu_tmpdir's buffer is the caller's) */
    snprintf(tmp, sizeof(tmp), "%s", json);
    char *slash = strrchr(tmp, '/');
    if (slash)
        *slash = '\0';
    int rc = sh("TMPDIR='%s' ASAN_OPTIONS=verify_asan_link_order=0 '%s' profile -q --hz 100 -o '%s' %s -- '%s' %d %d",
                tmp, tu_env("WLPROF"), json, extra ? extra : "", tu_path("tests/targets/html_alternate"), iters,
                sleep_ms);
    ck_assert_int_eq(rc, 0);
}

/* A fresh tu_tmpdir() with the alternating target profiled into its
 * r.json (profile_alternate: iters rounds, sleep_ms asleep) and, when opt
 * is given ("--html", "--speedscope"), that output into the directory's
 * file name. Returns the report's path; tu_file() names the others. */
static inline const char *alternate_in_fresh_dir(int iters, int sleep_ms, const char *opt,
                                                 const char *name)
{
    char extra[1300];
    tu_tmpdir();
    const char *json = tu_file("r.json");
    if (opt)
        snprintf(extra, sizeof(extra), "%s '%s'", opt, tu_file(name));
    profile_alternate(json, iters, sleep_ms, opt ? extra : NULL);
    return json;
}

/* Writes root's HTML page to path and drops root. */
static inline void write_page(const char *path, json_t *root)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(wl_report_write_html(f, root), 0);
    fclose(f);
    json_decref(root);
}

/* Computing (user, system, run queue) vs waiting in sleep: the number of
 * changes between the two along a sequence of state names. */
static inline int alternations(const char *const *names, size_t n)
{
    int last = -1, changes = 0;
    for (size_t i = 0; i < n; i++) {
        int c = strcmp(names[i], "user") == 0 || strcmp(names[i], "system") == 0 ||
                strcmp(names[i], "runqueue") == 0;
        int w = strcmp(names[i], "sleep") == 0;
        if (!c && !w)
            continue;
        int now = c ? 0 : 1;
        if (last >= 0 && now != last)
            changes++;
        last = now;
    }
    return changes;
}

/* ---- the synthetic worst case: 10 s at 100 Hz, 20 threads ---- */

#define SYN_TICKS 1000
#define SYN_THREADS 20
#define SYN_FRAMES 400
#define SYN_STACKS 1000
#define SYN_DEPTH 24

int wl__stacks_build_functions(wl_stacks *o); /* agent/stacks_internal.h */

/* A report as wlprof profile would write it for 20 threads that change
 * state every tick for 10 s (the timeline's worst case), with 1000 distinct
 * 24-deep stacks and a CPU sample per thread per tick. New reference. */
static inline json_t *synthetic_report(void)
{
    wl_profile p;
    memset(&p, 0, sizeof(p));
    p.argc = 2;
    p.argv = calloc(3, sizeof(char *));
    p.argv[0] = strdup("/usr/bin/synthetic");
    p.argv[1] = strdup("--threads=20");
    p.wall_s = 10.0;
    p.user_s = 9.0;
    p.sys_s = 1.0;
    p.hz = 100;
    p.ticks = SYN_TICKS;
    p.ticks_running = 600;
    p.ticks_waiting = 400;
    p.running_s = 6.0;
    p.waiting_s = 4.0;
    p.sampled_s = 10.0;
    p.max_threads = SYN_THREADS;
    p.thread_samples = SYN_TICKS * SYN_THREADS;
    p.wait_kind_s[WL_WAIT_SLEEP] = 2.0;
    p.wait_kind_s[WL_WAIT_NETWORK] = 2.0;
    p.nprocs = 1;
    p.procs = calloc(1, sizeof(*p.procs));
    p.procs[0].pid = 1000;
    snprintf(p.procs[0].comm, sizeof(p.procs[0].comm), "synthetic");
    p.procs[0].cmdline = strdup("/usr/bin/synthetic --threads=20");
    p.nthreads = SYN_THREADS;
    p.threads = calloc(SYN_THREADS, sizeof(*p.threads));
    wl_timeline *tl = &p.timeline;
    tl->nticks = SYN_TICKS;
    tl->tick_s = calloc(SYN_TICKS, sizeof(double));
    for (int i = 0; i < SYN_TICKS; i++)
        tl->tick_s[i] = (i + 1) * 0.01 + (i % 7) * 0.0001;
    tl->ndetails = 40;
    tl->details = calloc(40, sizeof(*tl->details));
    for (int i = 0; i < 40; i++) {
        snprintf(tl->details[i].syscall, sizeof(tl->details[i].syscall), "syscall_%d", i);
        snprintf(tl->details[i].wchan, sizeof(tl->details[i].wchan), "wait_channel_number_%d", i);
    }
    tl->nthreads = SYN_THREADS;
    tl->threads = calloc(SYN_THREADS, sizeof(*tl->threads));
    for (int t = 0; t < SYN_THREADS; t++) {
        wl_thread_stat *ts = &p.threads[t];
        ts->pid = 1000;
        ts->tid = 1000 + t;
        snprintf(ts->comm, sizeof(ts->comm), "worker-%d", t);
        ts->user_s = 0.4;
        ts->running_s = 0.5;
        ts->waiting_s = 0.5;
        wl_thread_timeline *th = &tl->threads[t];
        th->pid = 1000;
        th->tid = 1000 + t;
        th->nruns = SYN_TICKS;
        th->runs = calloc(SYN_TICKS, sizeof(*th->runs));
        for (int i = 0; i < SYN_TICKS; i++) {
            unsigned st = (unsigned)(i + t) % WL_TL_STATE_COUNT;
            th->runs[i] = (wl_timeline_run){.ticks = 1, .state = (uint16_t)st,
                                            .detail = st >= WL_TL_WAIT ? (i * 7 + t) % 40 : -1};
        }
        th->end_tick = SYN_TICKS;
    }
    wl_profile_derive(&p);
    json_t *root = wl_report_to_json(&p);
    ck_assert_ptr_nonnull(root);
    wl_verdict v;
    if (wl_classify(&p, NULL, &v) == 0) {
        wl_verdict_to_report(&v, root);
        wl_verdict_free(&v);
    }

    wl_stacks s;
    memset(&s, 0, sizeof(s));
    s.hz = 100;
    s.nframes = SYN_FRAMES;
    s.frames = calloc(SYN_FRAMES, sizeof(*s.frames));
    for (int i = 0; i < SYN_FRAMES; i++) {
        char buf[128];
        snprintf(buf, sizeof(buf), "synthetic_namespace::function_number_%d", i);
        s.frames[i].func = strdup(buf);
        s.frames[i].module = strdup("libsynthetic.so.1");
        snprintf(buf, sizeof(buf), "/home/user/src/synthetic/module_%d.cc", i / 10);
        s.frames[i].file = strdup(buf);
        s.frames[i].line = 100 + i;
    }
    s.nstacks = SYN_STACKS;
    s.stacks = calloc(SYN_STACKS, sizeof(*s.stacks));
    unsigned seed = 1;
    for (int i = 0; i < SYN_STACKS; i++) {
        wl_stack *st = &s.stacks[i];
        st->pid = 1000;
        st->tid = 1000 + i % SYN_THREADS;
        st->nframes = SYN_DEPTH;
        st->frames = calloc(SYN_DEPTH, sizeof(uint32_t));
        for (int k = 0; k < SYN_DEPTH; k++) {
            seed = seed * 1103515245u + 12345u;
            st->frames[k] = k >= SYN_DEPTH - 4 ? (uint32_t)(SYN_DEPTH - 1 - k) : (seed >> 8) % SYN_FRAMES;
        }
        st->cpu_samples = SYN_TICKS * SYN_THREADS / SYN_STACKS;
        st->user_s = 0.2;
        st->sys_s = 0.02;
    }
    s.nthreads = SYN_THREADS;
    s.threads = calloc(SYN_THREADS, sizeof(*s.threads));
    for (int t = 0; t < SYN_THREADS; t++) {
        s.threads[t].pid = 1000;
        s.threads[t].tid = 1000 + t;
        snprintf(s.threads[t].comm, sizeof(s.threads[t].comm), "worker-%d", t);
        snprintf(s.threads[t].process, sizeof(s.threads[t].process), "synthetic");
    }
    s.nevents = SYN_TICKS * SYN_THREADS;
    s.events = calloc(s.nevents, sizeof(*s.events));
    for (size_t e = 0; e < s.nevents; e++) {
        uint32_t t = (uint32_t)(e / SYN_TICKS), i = (uint32_t)(e % SYN_TICKS);
        s.events[e] = (wl_stack_event){.t_s = i * 0.01, .dur_s = 0.01, .stack = (i * SYN_THREADS + t) % SYN_STACKS,
                                       .thread = t};
    }
    ck_assert_int_eq(wl__stacks_build_functions(&s), 0);
    json_t *sections = wl_stacks_to_json(&s, 200, 200);
    ck_assert_ptr_nonnull(sections);
    json_object_update(root, sections);
    json_decref(sections);
    wl_stacks_free(&s);
    wl_profile_free(&p);
    return root;
}

#endif
