/*
 * test_classifier.c -- the classifier as a specification.
 *
 * Pure cases: hand-made profiles (built with the small fake_* helpers
 * below, shaped like what the profiler measures for the programs they are
 * named after) go through wl_classify, and the verdict's kind, executor,
 * sizes, predicted speed-ups, reasons and pitfall are checked.
 *
 * Corpus cases: the labelled programs in tests/targets/corpus_*.c, and real
 * programs nobody here wrote (sleep, sha256sum, dd), run under the real
 * `wlprof profile --json`; the saved verdict must match the label, and
 * `wlprof recommend` on the saved report must give the same answer.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ftw.h>

#include "schema_check.h"
#include "fake_profile.h"
#include "testutil.h"
#include "wlprof/classify.h"
#include "wlprof/report.h"

/* ---- hand-made profiles ---------------------------------------------------- */

/* A run of wall seconds split into shares; cpu_par is how many cores the
 * computing keeps busy while it runs (1 for a single thread). */
static void fake_shares(wl_profile *p, double wall, double user, double sys, double wait,
                        double cpu_par, uint64_t ticks)
{
    memset(p, 0, sizeof(*p));
    p->wall_s = wall;
    p->user_s = user * wall * cpu_par;
    p->sys_s = sys * wall * cpu_par;
    p->hz = 100;
    p->ticks = ticks;
    p->sampled_s = ticks ? wall : 0;
    p->running_s = (user + sys) * p->sampled_s;
    p->waiting_s = wait * p->sampled_s;
    p->ticks_running = (uint64_t)llround((user + sys) * (double)ticks);
    p->ticks_waiting = ticks - p->ticks_running;
    if (ticks) {
        p->user_frac = user;
        p->sys_frac = sys;
        p->wait_frac = wait;
    }
    p->cores_busy = (p->user_s + p->sys_s) / wall;
    p->max_threads = 1;
}

/* `sleep 1`: almost all waiting, in clock_nanosleep. */
static void fake_sleep(wl_profile *p)
{
    fake_shares(p, 1.0, 0.002, 0.008, 0.99, 1, 100);
    fake_wait(p, WL_WAIT_SLEEP, "hrtimer_nanosleep", "clock_nanosleep", 0.99);
    fake_thread(p, 1000, "sleep", 0.002);
}

/* ---- kinds and executors ---------------------------------------------------- */

START_TEST(test_classifier_sleep_is_io_bound_on_a_thread_pool)
{
    wl_profile p;
    wl_verdict v;
    wl_classify_opts o = fake_opts_cores(2);
    fake_sleep(&p);
    ck_assert_int_eq(wl_classify(&p, &o, &v), 0);
    ck_assert_int_eq(v.kind, WL_KIND_IO_BOUND);
    ck_assert_int_eq(v.executor, WL_EXEC_THREAD_POOL);
    ck_assert_uint_ge(v.ncalls, 1);
    ck_assert_str_eq(v.calls[0].syscall, "clock_nanosleep");
    ck_assert_int_eq(v.calls[0].kind, WL_WAIT_SLEEP);
    /* The reasons name the dominant wait and the measured share. */
    ck_assert(reasons_have(&v, "dominant wait: sleep"));
    ck_assert(reasons_have(&v, "99.0%"));
    /* A sleep has a readiness-based form: say it could go on a loop too. */
    ck_assert(reasons_have(&v, "non-blocking"));
    ck_assert(v.confidence > 0.8);
    ck_assert(!v.pitfall.detected);
    wl_verdict_free(&v);
    wl_profile_free(&p);
}
END_TEST

START_TEST(test_classifier_epoll_waits_choose_a_coroutine_loop)
{
    wl_profile p;
    wl_verdict v;
    wl_classify_opts o = fake_opts_cores(2);
    o.concurrency = 100;
    fake_shares(&p, 1.2, 0.03, 0.02, 0.95, 1, 120);
    fake_wait(&p, WL_WAIT_POLL, "do_epoll_wait", "epoll_wait", 1.05);
    fake_wait(&p, WL_WAIT_NETWORK, "sk_wait_data", "recvfrom", 0.09);
    ck_assert_int_eq(wl_classify(&p, &o, &v), 0);
    ck_assert_int_eq(v.kind, WL_KIND_IO_BOUND);
    ck_assert_int_eq(v.executor, WL_EXEC_COROUTINE);
    ck_assert_int_eq(v.suggested_workers, 100);
    ck_assert(v.multiplexed > 0.9);
    ck_assert_uint_eq(v.ncalls, 0);
    ck_assert(reasons_have(&v, "multiplexes"));
    wl_verdict_free(&v);
    wl_profile_free(&p);
}
END_TEST

START_TEST(test_classifier_fsync_waits_stay_on_threads)
{
    wl_profile p;
    wl_verdict v;
    wl_classify_opts o = fake_opts_cores(2);
    fake_shares(&p, 2.0, 0.02, 0.10, 0.88, 1, 200);
    fake_wait(&p, WL_WAIT_DISK, "jbd2_log_wait_commit", "fdatasync", 1.0);
    fake_wait(&p, WL_WAIT_DISK, "folio_wait_bit", "fdatasync", 0.6);
    fake_wait(&p, WL_WAIT_DISK, "io_schedule", "write", 0.16);
    ck_assert_int_eq(wl_classify(&p, &o, &v), 0);
    ck_assert_int_eq(v.kind, WL_KIND_IO_BOUND);
    ck_assert_int_eq(v.executor, WL_EXEC_THREAD_POOL);
    /* One call, wherever in the kernel it slept: the two fdatasync merge. */
    ck_assert_uint_eq(v.ncalls, 2);
    ck_assert_str_eq(v.calls[0].syscall, "fdatasync");
    ck_assert_str_eq(v.calls[0].wchan, "jbd2_log_wait_commit");
    ck_assert(fabs(v.calls[0].seconds - 1.6) < 1e-9);
    ck_assert_str_eq(v.calls[1].syscall, "write");
    ck_assert(reasons_have(&v, "no readiness-based form"));
    ck_assert(!reasons_have(&v, "non-blocking"));
    wl_verdict_free(&v);
    wl_profile_free(&p);
}
END_TEST

START_TEST(test_classifier_single_thread_cpu_goes_to_a_process_pool_per_core)
{
    wl_profile p;
    wl_verdict v;
    wl_classify_opts o = fake_opts_cores(4);
    fake_shares(&p, 1.0, 0.97, 0.02, 0.01, 1, 100);
    fake_thread(&p, 1000, "primes", 0.99);
    ck_assert_int_eq(wl_classify(&p, &o, &v), 0);
    ck_assert_int_eq(v.kind, WL_KIND_CPU_BOUND);
    ck_assert_int_eq(v.executor, WL_EXEC_PROCESS_POOL);
    ck_assert_int_eq(v.suggested_workers, 4);
    ck_assert_uint_eq(v.ncompute_side, 1);
    ck_assert(strstr(v.compute_side[0], "primes") != NULL);
    /* Four cores, 5 % serial: Amdahl caps four processes at 1/(0.05+0.95/4). */
    double pp = v.predicted[WL_EXEC_PROCESS_POOL].speedup;
    ck_assert(pp > 3.3 && pp < 3.5);
    /* One loop thread cannot compute faster than one core. */
    ck_assert(v.predicted[WL_EXEC_COROUTINE].speedup < 1.05);
    ck_assert(reasons_have(&v, "threads equally"));
    ck_assert(!reasons_have(&v, "already runs in parallel"));
    wl_verdict_free(&v);
    wl_profile_free(&p);
}
END_TEST

/* Kernel CPU without waiting is computing: nothing to overlap on a loop
 * (e.g. dd from /dev/zero to /dev/null, or a run whose ticks landed in
 * the kernel). */
START_TEST(test_classifier_system_cpu_without_waiting_is_computing)
{
    wl_profile p;
    wl_verdict v;
    wl_classify_opts o = fake_opts_cores(2);
    fake_shares(&p, 1.0, 0.41, 0.57, 0.02, 1, 100);
    fake_thread(&p, 1000, "dd", 0.98);
    ck_assert_int_eq(wl_classify(&p, &o, &v), 0);
    ck_assert(v.sys_is_computing);
    ck_assert_int_eq(v.kind, WL_KIND_CPU_BOUND);
    ck_assert_int_eq(v.executor, WL_EXEC_PROCESS_POOL);
    ck_assert(fabs(v.cpu_score - 0.98) < 1e-9);
    ck_assert(reasons_have(&v, "system CPU is computing too"));
    wl_verdict_free(&v);
    /* With real waiting beside it, system CPU sides with the waiting. */
    wl_profile_free(&p);
    fake_shares(&p, 1.0, 0.02, 0.50, 0.48, 1, 100);
    fake_wait(&p, WL_WAIT_DISK, "jbd2_log_wait_commit", "fdatasync", 0.48);
    ck_assert_int_eq(wl_classify(&p, &o, &v), 0);
    ck_assert(!v.sys_is_computing);
    ck_assert_int_eq(v.kind, WL_KIND_IO_BOUND);
    ck_assert(fabs(v.io_score - 0.98) < 1e-9);
    wl_verdict_free(&v);
    wl_profile_free(&p);
}
END_TEST

START_TEST(test_classifier_says_when_already_using_several_cores)
{
    wl_profile p;
    wl_verdict v;
    wl_classify_opts o = fake_opts_cores(2);
    fake_shares(&p, 1.0, 0.96, 0.02, 0.02, 1.95, 100);
    fake_thread(&p, 1001, "hasher", 0.97);
    fake_thread(&p, 1002, "hasher", 0.94);
    fake_wait(&p, WL_WAIT_LOCK, "futex_wait_queue", "futex", 0.02);
    ck_assert_int_eq(wl_classify(&p, &o, &v), 0);
    ck_assert_int_eq(v.kind, WL_KIND_CPU_BOUND);
    ck_assert_int_eq(v.executor, WL_EXEC_PROCESS_POOL);
    ck_assert(reasons_have(&v, "already runs in parallel"));
    /* Two busy cores already: two processes add next to nothing, and one
     * coroutine loop would halve the speed. */
    ck_assert(v.predicted[WL_EXEC_PROCESS_POOL].speedup < 1.1);
    ck_assert(v.predicted[WL_EXEC_COROUTINE].speedup < 0.6);
    ck_assert_uint_eq(v.ncompute_side, 2);
    wl_verdict_free(&v);
    wl_profile_free(&p);
}
END_TEST

START_TEST(test_classifier_download_then_compute_is_split)
{
    wl_profile p;
    wl_verdict v;
    wl_classify_opts o = fake_opts_cores(2);
    fake_shares(&p, 1.6, 0.48, 0.02, 0.50, 1, 160);
    fake_wait(&p, WL_WAIT_NETWORK, "sk_wait_data", "recvfrom", 0.8);
    fake_thread(&p, 1000, "download", 0.8);
    ck_assert_int_eq(wl_classify(&p, &o, &v), 0);
    ck_assert_int_eq(v.kind, WL_KIND_MIXED);
    ck_assert_int_eq(v.executor, WL_EXEC_SPLIT);
    ck_assert_int_eq(v.wait_side, WL_EXEC_THREAD_POOL);
    ck_assert_int_eq(v.suggested_workers, 2);
    ck_assert_uint_ge(v.ncalls, 1);
    ck_assert_str_eq(v.calls[0].syscall, "recvfrom");
    ck_assert_uint_eq(v.ncompute_side, 1);
    ck_assert(reasons_have(&v, "split: the waiting side on a thread pool"));
    /* Overlapping both sides beats overlapping either one alone. */
    double split = v.predicted[WL_EXEC_SPLIT].speedup;
    ck_assert(split > v.predicted[WL_EXEC_PROCESS_POOL].speedup);
    ck_assert(split > v.predicted[WL_EXEC_COROUTINE].speedup);
    wl_verdict_free(&v);
    wl_profile_free(&p);
}
END_TEST

/* Idle pool threads parked on a futex stand behind the real wait: they
 * must not be listed as calls to move, nor dilute the multiplexed share. */
START_TEST(test_classifier_ignores_coordination_waits_beside_io)
{
    wl_profile p;
    wl_verdict v;
    wl_classify_opts o = fake_opts_cores(2);
    fake_shares(&p, 1.0, 0.05, 0.05, 0.90, 1, 100);
    fake_wait(&p, WL_WAIT_LOCK, "futex_wait_queue", "futex", 0.5);
    fake_wait(&p, WL_WAIT_POLL, "do_epoll_wait", "epoll_wait", 0.4);
    ck_assert_int_eq(wl_classify(&p, &o, &v), 0);
    ck_assert_int_eq(v.executor, WL_EXEC_COROUTINE);
    ck_assert(v.multiplexed > 0.99);
    wl_verdict_free(&v);
    wl_profile_free(&p);
}
END_TEST

START_TEST(test_classifier_lock_only_waits_are_named)
{
    wl_profile p;
    wl_verdict v;
    wl_classify_opts o = fake_opts_cores(2);
    fake_shares(&p, 1.0, 0.05, 0.05, 0.90, 1, 100);
    fake_wait(&p, WL_WAIT_LOCK, "futex_wait_queue", "futex", 0.9);
    ck_assert_int_eq(wl_classify(&p, &o, &v), 0);
    ck_assert_int_eq(v.executor, WL_EXEC_THREAD_POOL);
    ck_assert_uint_eq(v.ncalls, 1);
    ck_assert_str_eq(v.calls[0].syscall, "futex");
    ck_assert(reasons_have(&v, "locks or children"));
    wl_verdict_free(&v);
    wl_profile_free(&p);
}
END_TEST

/* ---- thresholds and options -------------------------------------------------- */

START_TEST(test_classifier_thresholds_are_overridable)
{
    wl_profile p;
    wl_verdict v;
    wl_classify_opts o = fake_opts_cores(2);
    fake_shares(&p, 1.0, 0.40, 0.0, 0.60, 1, 100);
    fake_wait(&p, WL_WAIT_SLEEP, "hrtimer_nanosleep", "clock_nanosleep", 0.6);
    ck_assert_int_eq(wl_classify(&p, &o, &v), 0);
    ck_assert_int_eq(v.kind, WL_KIND_MIXED);
    ck_assert(v.used.io_threshold > 0.6);
    wl_verdict_free(&v);

    o.io_threshold = 0.55;
    ck_assert_int_eq(wl_classify(&p, &o, &v), 0);
    ck_assert_int_eq(v.kind, WL_KIND_IO_BOUND);
    ck_assert(fabs(v.used.io_threshold - 0.55) < 1e-12);
    ck_assert(reasons_have(&v, ">= io threshold 55%"));
    wl_verdict_free(&v);

    o.io_threshold = 0;
    o.cpu_threshold = 0.4;
    ck_assert_int_eq(wl_classify(&p, &o, &v), 0);
    ck_assert_int_eq(v.kind, WL_KIND_CPU_BOUND);
    wl_verdict_free(&v);
    wl_profile_free(&p);
}
END_TEST

START_TEST(test_classifier_rejects_bad_options_and_empty_profiles)
{
    wl_profile p;
    wl_verdict v;
    wl_classify_opts o = fake_opts_cores(2);
    fake_sleep(&p);
    o.io_threshold = 1.5;
    ck_assert_int_eq(wl_classify(&p, &o, &v), -EINVAL);
    o = fake_opts_cores(-1);
    ck_assert_int_eq(wl_classify(&p, &o, &v), -EINVAL);
    o = fake_opts_cores(2);
    o.serial_fraction = 1;
    ck_assert_int_eq(wl_classify(&p, &o, &v), -EINVAL);
    wl_verdict_free(&v); /* left empty on error: still safe */
    wl_profile_free(&p);

    memset(&p, 0, sizeof(p));
    ck_assert_int_eq(wl_classify(&p, NULL, &v), -ENODATA);
    ck_assert_uint_eq(v.nreasons, 0);
}
END_TEST

/* A run too short for one tick is judged on its exact totals. */
START_TEST(test_classifier_without_samples_uses_exact_totals)
{
    wl_profile p;
    wl_verdict v;
    wl_classify_opts o = fake_opts_cores(2);
    fake_shares(&p, 0.004, 0.95, 0.05, 0.0, 1, 0);
    ck_assert_int_eq(wl_classify(&p, &o, &v), 0);
    ck_assert(!v.from_samples);
    ck_assert_int_eq(v.kind, WL_KIND_CPU_BOUND);
    ck_assert(v.confidence <= 0.5);
    ck_assert(reasons_have(&v, "exact totals"));
    ck_assert(reasons_have(&v, "confidence reduced"));
    wl_verdict_free(&v);
    wl_profile_free(&p);
}
END_TEST

START_TEST(test_classifier_confidence_grows_with_margin_and_samples)
{
    wl_profile p;
    wl_verdict near;
    wl_verdict far;
    wl_verdict few;
    wl_classify_opts o = fake_opts_cores(2);
    fake_shares(&p, 1.0, 0.30, 0.0, 0.70, 1, 100);
    fake_wait(&p, WL_WAIT_SLEEP, "hrtimer_nanosleep", "clock_nanosleep", 0.7);
    ck_assert_int_eq(wl_classify(&p, &o, &near), 0);
    wl_profile_free(&p);
    fake_sleep(&p);
    ck_assert_int_eq(wl_classify(&p, &o, &far), 0);
    p.ticks = 5;
    ck_assert_int_eq(wl_classify(&p, &o, &few), 0);
    ck_assert_int_eq(near.kind, WL_KIND_IO_BOUND);
    ck_assert(far.confidence > near.confidence);
    ck_assert(few.confidence < far.confidence);
    ck_assert(near.confidence >= 0.5 && far.confidence <= 1.0);
    wl_verdict_free(&near);
    wl_verdict_free(&far);
    wl_verdict_free(&few);
    wl_profile_free(&p);
}
END_TEST

/* ---- predictions ----------------------------------------------------------- */

START_TEST(test_classifier_predictions_follow_the_model)
{
    wl_profile p;
    wl_verdict v;
    wl_classify_opts o = fake_opts_cores(2);
    o.concurrency = 10;
    o.max_threads = 8;
    o.serial_fraction = 0.1;
    fake_sleep(&p);
    ck_assert_int_eq(wl_classify(&p, &o, &v), 0);
    /* Pure waiting: coroutine keeps 10 in flight, threads are capped at 8;
     * Amdahl: 1 / (0.1 + 0.9 / n) approximately. */
    ck_assert_int_eq(v.predicted[WL_EXEC_COROUTINE].workers, 10);
    ck_assert_int_eq(v.predicted[WL_EXEC_THREAD_POOL].workers, 8);
    ck_assert_int_eq(v.suggested_workers, 8);
    ck_assert(fabs(v.predicted[WL_EXEC_COROUTINE].speedup - 1 / (0.1 + 0.09)) < 0.05);
    ck_assert(fabs(v.predicted[WL_EXEC_THREAD_POOL].speedup - 1 / (0.1 + 0.9 / 8)) < 0.05);
    ck_assert(fabs(v.predicted[WL_EXEC_PROCESS_POOL].speedup - 1 / (0.1 + 0.45)) < 0.05);
    ck_assert(reasons_have(&v, "this program (one run): coroutine"));
    ck_assert(reasons_have(&v, "a batch of N such jobs"));
    /* Nothing bounds this fake's critical path: one run and a batch agree. */
    for (int e = 0; e < WL_EXEC_COUNT; e++)
        ck_assert(fabs(v.predicted[e].speedup - v.batch[e].speedup) < 1e-9);
    wl_verdict_free(&v);
    wl_profile_free(&p);
}
END_TEST

/* Thread pool sizing: cores * (1 + wait/compute). */
START_TEST(test_classifier_thread_pool_size_follows_wait_to_compute_ratio)
{
    wl_profile p;
    wl_verdict v;
    wl_classify_opts o = fake_opts_cores(2);
    fake_shares(&p, 1.0, 0.25, 0.0, 0.75, 1, 100);
    fake_wait(&p, WL_WAIT_NETWORK, "sk_wait_data", "recvfrom", 0.75);
    ck_assert_int_eq(wl_classify(&p, &o, &v), 0);
    ck_assert_int_eq(v.executor, WL_EXEC_THREAD_POOL);
    ck_assert_int_eq(v.suggested_workers, 8); /* 2 * (1 + 0.75/0.25) */
    wl_verdict_free(&v);
    wl_profile_free(&p);
}
END_TEST

/* ---- pitfall ------------------------------------------------------------------ */

static void fake_loop_program(wl_profile *p, double block_s, double burst_s, double poll_s)
{
    fake_shares(p, 1.5, 0.30, 0.01, 0.69, 1, 150);
    fake_wait(p, WL_WAIT_SLEEP, "hrtimer_nanosleep", "clock_nanosleep", 0.6);
    fake_wait(p, WL_WAIT_POLL, "do_epoll_wait", "epoll_wait", 0.4);
    wl_thread_stat *t = fake_thread(p, 4242, "loop", 0.45);
    fake_thread_wait(t, WL_WAIT_SLEEP, "clock_nanosleep", 0.6);
    fake_thread_wait(t, WL_WAIT_POLL, "epoll_wait", poll_s);
    t->longest_block_s = block_s;
    snprintf(t->longest_block_syscall, sizeof(t->longest_block_syscall), "clock_nanosleep");
    t->longest_burst_s = burst_s;
    /* What the profiler measures for a thread that waited in epoll_wait:
     * its stalls inside the loop (a thread that never did has none). */
    t->loop_first_s = -1;
    if (poll_s > 0.02) {
        snprintf(t->loop_evidence, sizeof(t->loop_evidence), "readiness");
        t->loop_first_s = 0.01;
        t->loop_block_s = block_s;
        snprintf(t->loop_block_syscall, sizeof(t->loop_block_syscall), "clock_nanosleep");
        t->loop_burst_s = burst_s;
    }
}

START_TEST(test_classifier_detects_blocking_call_inside_the_event_loop)
{
    wl_profile p;
    wl_verdict v;
    wl_classify_opts o = fake_opts_cores(2);
    fake_loop_program(&p, 0.2, 0.05, 0.4);
    ck_assert_int_eq(wl_classify(&p, &o, &v), 0);
    ck_assert(v.pitfall.detected);
    ck_assert(v.pitfall.blocks);
    ck_assert(!v.pitfall.bursts);
    ck_assert_int_eq(v.pitfall.tid, 4242);
    ck_assert_str_eq(v.pitfall.block_syscall, "clock_nanosleep");
    ck_assert_uint_eq(v.pitfall.ncalls, 1);
    ck_assert_str_eq(v.pitfall.calls[0].syscall, "clock_nanosleep");
    ck_assert(reasons_have(&v, "blocking call inside the event loop"));
    wl_verdict_free(&v);
    wl_profile_free(&p);
}
END_TEST

START_TEST(test_classifier_detects_cpu_burst_inside_the_event_loop)
{
    wl_profile p;
    wl_verdict v;
    wl_classify_opts o = fake_opts_cores(2);
    fake_loop_program(&p, 0.02, 0.25, 0.4);
    ck_assert_int_eq(wl_classify(&p, &o, &v), 0);
    ck_assert(v.pitfall.detected);
    ck_assert(!v.pitfall.blocks);
    ck_assert(v.pitfall.bursts);
    ck_assert(reasons_have(&v, "CPU burst inside the event loop"));
    wl_verdict_free(&v);
    wl_profile_free(&p);
}
END_TEST

START_TEST(test_classifier_no_pitfall_without_a_loop_or_long_stalls)
{
    wl_profile p;
    wl_verdict v;
    wl_classify_opts o = fake_opts_cores(2);
    /* Long stalls but the thread never polls: not an event loop. */
    fake_loop_program(&p, 0.3, 0.3, 0.01);
    ck_assert_int_eq(wl_classify(&p, &o, &v), 0);
    ck_assert(!v.pitfall.detected);
    wl_verdict_free(&v);
    wl_profile_free(&p);
    /* An event loop whose stalls stay short. */
    fake_loop_program(&p, 0.05, 0.05, 0.4);
    ck_assert_int_eq(wl_classify(&p, &o, &v), 0);
    ck_assert(!v.pitfall.detected);
    wl_verdict_free(&v);
    /* ... unless the user lowers the bar. */
    o.pitfall_block_s = 0.04;
    ck_assert_int_eq(wl_classify(&p, &o, &v), 0);
    ck_assert(v.pitfall.detected);
    wl_verdict_free(&v);
    wl_profile_free(&p);
}
END_TEST

/* ---- output ---------------------------------------------------------------------- */

START_TEST(test_classifier_json_has_classification_and_recommendation)
{
    wl_profile p;
    wl_verdict v;
    wl_classify_opts o = fake_opts_cores(2);
    fake_loop_program(&p, 0.2, 0.05, 0.4);
    ck_assert_int_eq(wl_classify(&p, &o, &v), 0);
    json_t *report = json_object();
    ck_assert_int_eq(wl_verdict_to_report(&v, report), 0);

    json_t *c = json_object_get(report, "classification");
    json_t *r = json_object_get(report, "recommendation");
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(json_string_value(json_object_get(c, "kind")), wl_kind_name(v.kind));
    ck_assert_uint_eq(json_array_size(json_object_get(c, "reasons")), v.nreasons);
    ck_assert(json_is_true(json_object_get(json_object_get(c, "pitfall"), "detected")));
    ck_assert_int_eq(wl_executor_parse(json_string_value(json_object_get(r, "executor"))),
                     (int)v.executor);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "workers")), v.suggested_workers);
    json_t *pred = json_object_get(r, "predicted");
    ck_assert_uint_eq(json_object_size(pred), WL_EXEC_COUNT);
    for (int e = 0; e < WL_EXEC_COUNT; e++) {
        json_t *one = json_object_get(pred, wl_executor_name((wl_executor)e));
        ck_assert_ptr_nonnull(one);
        ck_assert(fabs(json_real_value(json_object_get(one, "speedup")) -
                       v.predicted[e].speedup) < 1e-9);
    }
    json_decref(report);
    wl_verdict_free(&v);
    wl_profile_free(&p);
}
END_TEST

START_TEST(test_classifier_prints_reasons_and_recommendation)
{
    wl_profile p;
    wl_verdict v;
    wl_classify_opts o = fake_opts_cores(2);
    char *buf = NULL;
    size_t len = 0;
    fake_sleep(&p);
    ck_assert_int_eq(wl_classify(&p, &o, &v), 0);
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    wl_verdict_print(f, &v);
    fclose(f);
    ck_assert(strstr(buf, "classification: I/O-bound") != NULL);
    ck_assert(strstr(buf, "recommendation: thread_pool") != NULL);
    ck_assert(strstr(buf, "  - dominant wait: sleep") != NULL);
    free(buf);
    wl_verdict_free(&v);
    wl_profile_free(&p);
}
END_TEST

/* A stack the agent recorded: frames root first, the call when off-CPU. */
static json_t *fake_stack(const char *leaf, const char *call, double wait_s)
{
    return json_pack("{s:[{s:s, s:s}, {s:s, s:s}], s:o, s:f}", "frames", "func", "main",
                     "module", "prog", "func", leaf, "module", "prog", "call",
                     call ? json_string(call) : json_null(), "wait_s", wait_s);
}

static json_t *fake_function(const char *name, double self_cpu)
{
    return json_pack("{s:s, s:s, s:{s:f, s:f, s:f}}", "name", name, "module", "prog", "self",
                     "user_s", self_cpu, "sys_s", 0.0, "wait_s", 0.0);
}

START_TEST(test_classifier_names_functions_per_side_from_stack_sections)
{
    wl_profile p;
    wl_verdict v;
    wl_classify_opts o = fake_opts_cores(2);
    fake_shares(&p, 1.6, 0.48, 0.02, 0.50, 1, 160);
    fake_wait(&p, WL_WAIT_NETWORK, "sk_wait_data", "recvfrom", 0.8);
    ck_assert_int_eq(wl_classify(&p, &o, &v), 0);
    ck_assert_int_eq(v.executor, WL_EXEC_SPLIT);

    json_t *report = json_object();
    json_object_set_new(report, "functions",
                        json_pack("[o, o, o]", fake_function("hash_block", 0.70),
                                  fake_function("main", 0.0), fake_function("memcpy", 0.01)));
    json_object_set_new(report, "stacks",
                        json_pack("{s:[o, o, o]}", "top", fake_stack("read_reply", "recv", 0.6),
                                  fake_stack("server_loop", "epoll_wait", 0.8),
                                  fake_stack("hash_block", NULL, 0.0)));
    size_t before = v.nreasons;
    ck_assert_int_eq(wl_verdict_add_functions(&v, report), 0);
    /* Computing: by self CPU; memcpy is under 5 % of it. */
    ck_assert_uint_eq(v.ncompute_functions, 1);
    ck_assert_str_eq(v.compute_functions[0].name, "hash_block");
    /* Waiting: the function that made the blocking call; the idle loop in
     * epoll is not work to move. */
    ck_assert_uint_eq(v.nwait_functions, 1);
    ck_assert_str_eq(v.wait_functions[0].name, "read_reply");
    ck_assert_str_eq(v.wait_functions[0].call, "recv");
    ck_assert_uint_eq(v.nreasons, before + 2);
    ck_assert(reasons_have(&v, "to the process pool: hash_block (0.70 s CPU)"));
    ck_assert(reasons_have(&v, "to the thread pool: read_reply (recv, 0.60 s)"));

    json_t *rec = wl_verdict_recommendation_json(&v);
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(json_object_get(rec, "functions"),
                                                        "compute"),
                                        0),
                         "name")),
                     "hash_block");
    json_decref(rec);

    /* A report without stack sections changes nothing. */
    wl_verdict_free(&v);
    ck_assert_int_eq(wl_classify(&p, &o, &v), 0);
    before = v.nreasons;
    json_t *bare = json_object();
    ck_assert_int_eq(wl_verdict_add_functions(&v, bare), 0);
    ck_assert_uint_eq(v.nreasons, before);
    ck_assert_uint_eq(v.ncompute_functions + v.nwait_functions, 0);
    json_decref(bare);
    json_decref(report);
    wl_verdict_free(&v);
    wl_profile_free(&p);
}
END_TEST

START_TEST(test_classifier_names_round_trip)
{
    for (int k = 0; k < WL_KIND_COUNT; k++)
        ck_assert_int_eq(wl_kind_parse(wl_kind_name((wl_kind)k)), k);
    for (int e = 0; e < WL_EXEC_COUNT; e++)
        ck_assert_int_eq(wl_executor_parse(wl_executor_name((wl_executor)e)), e);
    ck_assert_int_eq(wl_executor_parse("fibers"), -1);
    ck_assert_str_eq(wl_executor_name(WL_EXEC_COUNT), "unknown");
}
END_TEST

/* ---- recorded reports (tests/classifier/data) ------------------------------------ */

/* Reads line n (0-based, comments and blanks skipped) of data/labels.txt.
 * Returns 0, or -1 past the end. */
static int read_label(int n, char *file, char *kind, char *executor, int *pitfall)
{
    char path[4096];
    char line[512];
    snprintf(path, sizeof(path), "%s/tests/classifier/data/labels.txt", tu_env("WL_SOURCE_DIR"));
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    int i = 0;
    int rc = -1;
    while (fgets(line, sizeof(line), f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (i++ < n)
            continue;
        ck_assert_int_eq(sscanf(line, "%255s %31s %31s %d", file, kind, executor, pitfall), 4);
        rc = 0;
        break;
    }
    fclose(f);
    return rc;
}

enum { NLABELS = 10 };

/* A saved report re-classified from its own data reaches its label, and
 * the very verdict recorded in it at profile time. */
START_TEST(test_classifier_recorded_report_reclassifies_as_labelled)
{
    char file[256];
    char kind[32];
    char executor[32];
    int pitfall;
    char path[4400];
    char err[256];
    json_t *root;
    wl_profile p;
    wl_verdict v;

    ck_assert_int_eq(read_label(_i, file, kind, executor, &pitfall), 0);
    snprintf(path, sizeof(path), "%s/tests/classifier/data/%s", tu_env("WL_SOURCE_DIR"), file);
    ck_assert_msg(wl_report_load(path, &root, err, sizeof(err)) == 0, "%s", err);
    ck_assert_msg(wl_report_from_json(root, &p, err, sizeof(err)) == 0, "%s: %s", file, err);
    /* The recorded machine's cores, so sizes do not depend on this one. */
    wl_classify_opts o = fake_opts_cores((int)tu_num(root, "recommendation.model.cores"));
    ck_assert_int_eq(wl_classify(&p, &o, &v), 0);

    ck_assert_msg(strcmp(wl_kind_name(v.kind), kind) == 0 &&
                      strcmp(wl_executor_name(v.executor), executor) == 0,
                  "%s: expected %s/%s, got %s/%s", file, kind, executor, wl_kind_name(v.kind),
                  wl_executor_name(v.executor));
    ck_assert_int_eq(v.pitfall.detected, pitfall);
    ck_assert_str_eq(tu_str(root, "classification.kind"), kind);
    ck_assert_str_eq(tu_str(root, "recommendation.executor"), executor);
    ck_assert_int_eq(v.suggested_workers, (int)tu_num(root, "recommendation.workers"));
    ck_assert(fabs(v.confidence - tu_num(root, "classification.confidence")) < 1e-6);
    /* Recorded with the stack agent: the same functions on each side, and
     * the same predictions once the stacks refine the model. */
    ck_assert_int_eq(wl_verdict_add_functions(&v, root), 0);
    ck_assert(fabs(v.predicted[v.executor].speedup - tu_num(root, "recommendation.speedup")) <
              1e-4);
    json_t *rec = wl_verdict_recommendation_json(&v);
    const json_t *want = json_object_get(json_object_get(root, "recommendation"), "functions");
    const json_t *got = json_object_get(rec, "functions");
    ck_assert_msg(!want == !got, "%s: functions named in one verdict only", file);
    for (int side = 0; want && side < 2; side++) {
        const char *key = side ? "wait" : "compute";
        const json_t *w = json_object_get(want, key);
        const json_t *g = json_object_get(got, key);
        ck_assert_uint_eq(json_array_size(w), json_array_size(g));
        for (size_t i = 0; i < json_array_size(w); i++) {
            const json_t *wi = json_array_get(w, i);
            const json_t *gi = json_array_get(g, i);
            ck_assert_str_eq(tu_str(wi, "name"), tu_str(gi, "name"));
            ck_assert(fabs(tu_num(wi, "seconds") - tu_num(gi, "seconds")) < 1e-4);
        }
    }
    json_decref(rec);
    wl_verdict_free(&v);
    wl_profile_free(&p);
    json_decref(root);
}
END_TEST

START_TEST(test_classifier_labels_file_lists_every_recording)
{
    char file[256];
    char kind[32];
    char executor[32];
    int pitfall;
    ck_assert_int_eq(read_label(NLABELS - 1, file, kind, executor, &pitfall), 0);
    ck_assert_int_eq(read_label(NLABELS, file, kind, executor, &pitfall), -1);
}
END_TEST

/* ---- corpus: real programs under wlprof profile ------------------------------ */

/* One labelled program. arg "@DIR" is replaced by the test's temp dir. */
typedef struct corpus_case {
    const char *program; /* tests/targets/NAME under the build dir, or a PATH command */
    const char *args[4];
    const char *kind;
    const char *executor;
    const char *dominant; /* "dominant wait: KIND" expected in the reasons, or NULL */
    int pitfall;
    const char *compute_fn; /* expected first computing-side function, or NULL */
    const char *wait_fn;    /* expected first waiting-side function, or NULL */
} corpus_case;

static const corpus_case corpus[] = {
    {"corpus_sleep_loop", {NULL}, "io_bound", "thread_pool", "sleep", 0, NULL, NULL},
    {"corpus_blocking_client", {NULL}, "io_bound", "thread_pool", "network", 0, NULL,
     "corpus_read_all"},
    {"corpus_epoll_client", {NULL}, "io_bound", "coroutine", "poll", 0, NULL, NULL},
    {"corpus_fsync_writer", {"@DIR"}, "io_bound", "thread_pool", "disk", 0, NULL, NULL},
    {"corpus_primes", {NULL}, "cpu_bound", "process_pool", NULL, 0, "is_prime", NULL},
    {"corpus_mt_hasher", {NULL}, "cpu_bound", "process_pool", NULL, 0, NULL, NULL},
    {"corpus_download_process", {NULL}, "mixed", "split", "network", 0, "corpus_hash",
     "corpus_read_all"},
    {"corpus_blocking_in_loop", {NULL}, "mixed", "split", "sleep", 1, "corpus_hash", "main"},
};
enum { NCORPUS = sizeof(corpus) / sizeof(corpus[0]) };

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    return remove(path);
}

/* Removes a test's temporary directory and everything in it. */
static void remove_tmpdir(const char *dir)
{
    nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static const json_t *jget(const json_t *root, const char *dotted)
{
    const json_t *v = tu_get(root, dotted);
    ck_assert_msg(v != NULL, "report has nothing at %s", dotted);
    return v;
}

static int json_reasons_have(const json_t *report, const char *needle)
{
    const json_t *reasons = jget(report, "classification.reasons");
    for (size_t i = 0; i < json_array_size(reasons); i++)
        if (strstr(json_string_value(json_array_get(reasons, i)), needle))
            return 1;
    return 0;
}

/* The report satisfies docs/report-schema.json, classification and
 * recommendation included. */
static void check_schema(const json_t *report)
{
    char schema_path[4096];
    char err[512] = "";
    snprintf(schema_path, sizeof(schema_path), "%s/docs/report-schema.json",
             tu_env("WL_SOURCE_DIR"));
    json_t *schema = tu_load_json(schema_path);
    ck_assert_msg(schema_check(schema, report, "report", err, sizeof(err)) == 0, "%s", err);
    json_decref(schema);
}

/* Profiles argv into DIR/report.json, checks the label, then re-classifies
 * the saved report with `wlprof recommend` and checks it agrees. */
/* With the stack agent's sections in the report, the recommendation names
 * the expected function first on a side (side "compute" or "wait"). */
static void check_function(const json_t *r, const char *side, const char *expected)
{
    if (!expected)
        return;
#ifdef WL_HAVE_STACKS
    /* built with the stack agent: a report without its sections is a failure */
    ck_assert_msg(json_object_get(r, "functions") != NULL,
                  "the report has no \"functions\" though wlprof samples stacks");
#else
    return; /* built without stack sampling: nothing to name functions from */
#endif
    const json_t *list = json_object_get(jget(r, "recommendation.functions"), side);
    const char *got = json_string_value(json_object_get(json_array_get(list, 0), "name"));
    ck_assert_msg(got && strcmp(got, expected) == 0, "%s side: expected %s first, got %s", side,
                  expected, got ? got : "nothing");
}

static void check_labelled(char *const target[], const char *dir, const char *kind,
                           const char *executor, const char *dominant, int pitfall,
                           const char *compute_fn, const char *wait_fn)
{
    char report[4200];
    char again[4200];
    char *argv[16];
    snprintf(report, sizeof(report), "%s/report.json", dir);
    snprintf(again, sizeof(again), "%s/again.json", dir);
    tu_profile_argv(argv, 16, report, NULL, (const char *const *)target);
    ck_assert_int_eq(tu_run_to(argv, NULL, NULL, 120), 0);

    json_t *r = tu_load_json(report);
    check_schema(r);
    const char *got_kind = tu_str(r, "classification.kind");
    const char *got_exec = tu_str(r, "recommendation.executor");
    ck_assert_msg(strcmp(got_kind, kind) == 0 && strcmp(got_exec, executor) == 0,
                  "%s: expected %s/%s, got %s/%s (user %.2f sys %.2f waiting %.2f)", target[0],
                  kind, executor, got_kind, got_exec, tu_num(r, "classification.shares.user"),
                  tu_num(r, "classification.shares.system"),
                  tu_num(r, "classification.shares.waiting"));
    ck_assert_int_eq(json_is_true(jget(r, "classification.pitfall.detected")), pitfall);
    if (dominant) {
        char needle[64];
        snprintf(needle, sizeof(needle), "dominant wait: %s", dominant);
        ck_assert_msg(json_reasons_have(r, needle), "%s: no reason says '%s'", target[0],
                      needle);
    }
    /* The reasons carry the measured fractions. */
    ck_assert(json_reasons_have(r, "s wall: waiting off-CPU"));
    check_function(r, "compute", compute_fn);
    check_function(r, "wait", wait_fn);

    char *rec[] = {(char *)tu_env("WLPROF"), "recommend", "-q", "-o", again, report, NULL};
    ck_assert_int_eq(tu_run_to(rec, NULL, NULL, 60), 0);
    json_t *r2 = tu_load_json(again);
    check_schema(r2);
    ck_assert_str_eq(tu_str(r2, "classification.kind"), got_kind);
    ck_assert_str_eq(tu_str(r2, "recommendation.executor"), got_exec);
    ck_assert_int_eq((int)tu_num(r2, "recommendation.workers"),
                     (int)tu_num(r, "recommendation.workers"));
    ck_assert_int_eq(json_is_true(jget(r2, "classification.pitfall.detected")), pitfall);
    ck_assert(fabs(tu_num(r2, "recommendation.speedup") - tu_num(r, "recommendation.speedup")) <
              1e-3);
    json_decref(r2);
    json_decref(r);
}

START_TEST(test_classifier_corpus_program_is_classified_as_labelled)
{
    const corpus_case *c = &corpus[_i];
    const char *dir = tu_tmpdir();
    char *target[6];
    int n = 0;
    char prog[256];
    snprintf(prog, sizeof(prog), "tests/targets/%s", c->program);
    target[n++] = (char *)tu_path(prog);
    for (int i = 0; i < 4 && c->args[i]; i++)
        target[n++] = strcmp(c->args[i], "@DIR") == 0 ? (char *)dir : (char *)c->args[i];
    target[n] = NULL;
    check_labelled(target, dir, c->kind, c->executor, c->dominant, c->pitfall, c->compute_fn,
                   c->wait_fn);
    remove_tmpdir(dir);
}
END_TEST

START_TEST(test_classifier_real_sleep_is_waiting)
{
    const char *dir = tu_tmpdir();
    char *target[] = {"sleep", "1", NULL};
    check_labelled(target, dir, "io_bound", "thread_pool", "sleep", 0, NULL, NULL);
    remove_tmpdir(dir);
}
END_TEST

START_TEST(test_classifier_real_sha256sum_is_computing)
{
    const char *dir = tu_tmpdir();
    char path[4200];
    snprintf(path, sizeof(path), "%s/big.bin", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    /* 200 MB of varied bytes (a cheap generator: the hashing must not get
     * an easy input, and writing must not take long). */
    static uint64_t block[1 << 16];
    uint64_t x = 88172645463325252ULL;
    for (int round = 0; round < 381; round++) {
        for (size_t i = 0; i < sizeof(block) / sizeof(block[0]); i++)
            block[i] = tu_xorshift64(&x);
        ck_assert_uint_eq(fwrite(block, sizeof(block), 1, f), 1);
    }
    ck_assert_int_eq(fclose(f), 0);
    char *target[] = {"sha256sum", path, NULL};
    check_labelled(target, dir, "cpu_bound", "process_pool", NULL, 0, NULL, NULL);
    remove_tmpdir(dir);
}
END_TEST

START_TEST(test_classifier_real_dd_with_sync_waits_on_disk)
{
    const char *dir = tu_tmpdir();
    char of[4200];
    snprintf(of, sizeof(of), "of=%s/dd.out", dir);
    char *target[] = {"dd", "if=/dev/zero", of, "bs=4k", "count=3000", "oflag=sync", NULL};
    check_labelled(target, dir, "io_bound", "thread_pool", "disk", 0, NULL, NULL);
    remove_tmpdir(dir);
}
END_TEST

/* ---- wlprof recommend: bad input ------------------------------------------------ */

/* Runs `wlprof recommend ARGS...`; returns the status, *err the stderr. */
static int recommend(const char *dir, char **err, const char *a1, const char *a2,
                     const char *a3)
{
    char errpath[4200];
    snprintf(errpath, sizeof(errpath), "%s/stderr.txt", dir);
    char *argv[] = {(char *)tu_env("WLPROF"), "recommend", (char *)a1, (char *)a2, (char *)a3,
                    NULL};
    int st = tu_run_to(argv, NULL, errpath, 30);
    *err = tu_slurp(errpath);
    return st;
}

static int one_line(const char *s)
{
    const char *nl = strchr(s, '\n');
    return nl && nl[1] == '\0';
}

START_TEST(test_classifier_recommend_rejects_bad_reports_in_one_line)
{
    const char *dir = tu_tmpdir();
    char path[4200];
    char *err;

    snprintf(path, sizeof(path), "%s/missing.json", dir);
    ck_assert_int_eq(recommend(dir, &err, path, NULL, NULL), 1);
    ck_assert_msg(one_line(err) && strstr(err, "missing.json"), "stderr: %s", err);

    snprintf(path, sizeof(path), "%s/broken.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"schema\": \"wlprof.report/1\", ", f);
    fclose(f);
    ck_assert_int_eq(recommend(dir, &err, path, NULL, NULL), 1);
    ck_assert_msg(one_line(err) && strstr(err, "broken.json"), "stderr: %s", err);

    snprintf(path, sizeof(path), "%s/future.json", dir);
    f = fopen(path, "w");
    fputs("{\"schema\": \"wlprof.report/99\"}\n", f);
    fclose(f);
    ck_assert_int_eq(recommend(dir, &err, path, NULL, NULL), 1);
    ck_assert_msg(one_line(err) && strstr(err, "wlprof.report/99"), "stderr: %s", err);

    snprintf(path, sizeof(path), "%s/other.json", dir);
    f = fopen(path, "w");
    fputs("[1, 2, 3]\n", f);
    fclose(f);
    ck_assert_int_eq(recommend(dir, &err, path, NULL, NULL), 1);
    ck_assert_msg(one_line(err), "stderr: %s", err);

    ck_assert_int_eq(recommend(dir, &err, NULL, NULL, NULL), 2);
    ck_assert_msg(one_line(err) && strstr(err, "no report"), "stderr: %s", err);
    ck_assert_int_eq(recommend(dir, &err, "--io-threshold", "1.5", path), 2);
    ck_assert_msg(one_line(err) && strstr(err, "--io-threshold"), "stderr: %s", err);
    ck_assert_int_eq(recommend(dir, &err, "--cpu-threshold", "abc", path), 2);
    ck_assert_msg(one_line(err) && strstr(err, "--cpu-threshold"), "stderr: %s", err);
    remove_tmpdir(dir);
}
END_TEST

/* Thresholds given to recommend change the verdict of a saved report. */
START_TEST(test_classifier_recommend_applies_thresholds)
{
    const char *dir = tu_tmpdir();
    char report[4200];
    char again[4200];
    snprintf(report, sizeof(report), "%s/report.json", dir);
    snprintf(again, sizeof(again), "%s/again.json", dir);
    char *prof[] = {(char *)tu_env("WLPROF"), "profile", "-q", "-o", report, "--",
                    (char *)tu_path("tests/targets/corpus_download_process"), NULL};
    ck_assert_int_eq(tu_run_to(prof, NULL, NULL, 120), 0);
    json_t *r = tu_load_json(report);
    ck_assert_str_eq(tu_str(r, "classification.kind"), "mixed");
    double io = tu_num(r, "classification.io_score");
    json_decref(r);

    /* A bar just under the measured waiting share makes it I/O-bound. */
    char thr[32];
    snprintf(thr, sizeof(thr), "%.3f", io - 0.05 > 0.01 ? io - 0.05 : 0.01);
    char *rec[] = {(char *)tu_env("WLPROF"), "recommend", "-q", "--io-threshold", thr,
                   "-o",  again, report, NULL};
    ck_assert_int_eq(tu_run_to(rec, NULL, NULL, 30), 0);
    json_t *r2 = tu_load_json(again);
    ck_assert_str_eq(tu_str(r2, "classification.kind"), "io_bound");
    ck_assert(fabs(tu_num(r2, "classification.thresholds.io_threshold") - atof(thr)) < 1e-6);
    json_decref(r2);
    remove_tmpdir(dir);
}
END_TEST

static Suite *classifier_suite(void)
{
    Suite *s = suite_create("classifier");
    TCase *pure = tcase_create("pure");
    tcase_add_test(pure, test_classifier_sleep_is_io_bound_on_a_thread_pool);
    tcase_add_test(pure, test_classifier_epoll_waits_choose_a_coroutine_loop);
    tcase_add_test(pure, test_classifier_fsync_waits_stay_on_threads);
    tcase_add_test(pure, test_classifier_single_thread_cpu_goes_to_a_process_pool_per_core);
    tcase_add_test(pure, test_classifier_system_cpu_without_waiting_is_computing);
    tcase_add_test(pure, test_classifier_says_when_already_using_several_cores);
    tcase_add_test(pure, test_classifier_download_then_compute_is_split);
    tcase_add_test(pure, test_classifier_ignores_coordination_waits_beside_io);
    tcase_add_test(pure, test_classifier_lock_only_waits_are_named);
    tcase_add_test(pure, test_classifier_thresholds_are_overridable);
    tcase_add_test(pure, test_classifier_rejects_bad_options_and_empty_profiles);
    tcase_add_test(pure, test_classifier_without_samples_uses_exact_totals);
    tcase_add_test(pure, test_classifier_confidence_grows_with_margin_and_samples);
    tcase_add_test(pure, test_classifier_predictions_follow_the_model);
    tcase_add_test(pure, test_classifier_thread_pool_size_follows_wait_to_compute_ratio);
    tcase_add_test(pure, test_classifier_detects_blocking_call_inside_the_event_loop);
    tcase_add_test(pure, test_classifier_detects_cpu_burst_inside_the_event_loop);
    tcase_add_test(pure, test_classifier_no_pitfall_without_a_loop_or_long_stalls);
    tcase_add_test(pure, test_classifier_json_has_classification_and_recommendation);
    tcase_add_test(pure, test_classifier_prints_reasons_and_recommendation);
    tcase_add_test(pure, test_classifier_names_functions_per_side_from_stack_sections);
    tcase_add_test(pure, test_classifier_names_round_trip);
    suite_add_tcase(s, pure);

    TCase *recorded = tcase_create("recorded");
    tcase_add_loop_test(recorded, test_classifier_recorded_report_reclassifies_as_labelled, 0,
                        NLABELS);
    tcase_add_test(recorded, test_classifier_labels_file_lists_every_recording);
    suite_add_tcase(s, recorded);

    TCase *real = tcase_create("corpus");
    tcase_set_timeout(real, 300);
    tcase_add_loop_test(real, test_classifier_corpus_program_is_classified_as_labelled, 0,
                        NCORPUS);
    tcase_add_test(real, test_classifier_real_sleep_is_waiting);
    tcase_add_test(real, test_classifier_real_sha256sum_is_computing);
    tcase_add_test(real, test_classifier_real_dd_with_sync_waits_on_disk);
    tcase_add_test(real, test_classifier_recommend_rejects_bad_reports_in_one_line);
    tcase_add_test(real, test_classifier_recommend_applies_thresholds);
    suite_add_tcase(s, real);
    return s;
}

int main(void)
{
    tu_private_tmpdir();
    return tu_run_suite(classifier_suite());
}
