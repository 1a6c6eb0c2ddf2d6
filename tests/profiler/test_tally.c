/*
 * test_tally.c -- a profile from observations a caller took itself
 * (wlprof/profiler.h: wl_thread_tally, wl_profile_from_tally), the way the
 * task pilot of `wlprof run` measures its worker processes: the ticks get
 * seconds by their share of the measured wall time, running ticks beyond
 * the exact CPU time are run-queue time, like reasons merge and the most
 * waited comes first, runs measured whole (the Slurm pilot's) split by
 * their own totals, and a real sleeping child tallies as a sleep wait the
 * classifier calls I/O-bound.
 */
#include "testutil.h"
#include <check.h>

#include <math.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "wlprof/classify.h"
#include "wlprof/profiler.h"

static void add(wl_thread_tally *t, char state, wl_wait_kind kind, const char *wchan,
                const char *syscall, int times)
{
    wl_thread_now now = {.state = state, .kind = kind};
    snprintf(now.wchan, sizeof(now.wchan), "%s", wchan);
    snprintf(now.syscall, sizeof(now.syscall), "%s", syscall);
    for (int i = 0; i < times; i++)
        ck_assert_int_eq(wl_thread_tally_add(t, &now), 0);
}

START_TEST(test_tally_merges_like_reasons_in_order_of_first_sight)
{
    wl_thread_tally t = {0};
    add(&t, 'S', WL_WAIT_NETWORK, "sk_wait_data", "recvfrom", 1);
    add(&t, 'R', WL_WAIT_OTHER, "", "", 3);
    add(&t, 'S', WL_WAIT_SLEEP, "hrtimer_nanosleep", "clock_nanosleep", 2);
    add(&t, 'S', WL_WAIT_NETWORK, "sk_wait_data", "recvfrom", 1);
    add(&t, 'S', WL_WAIT_NETWORK, "sk_wait_data", "sendto", 1); /* another call: its own */
    ck_assert_uint_eq(t.ticks, 8);
    ck_assert_uint_eq(t.running, 3);
    ck_assert_uint_eq(t.nwaits, 3);
    ck_assert_str_eq(t.waits[0].syscall, "recvfrom");
    ck_assert_uint_eq(t.waits[0].samples, 2);
    ck_assert_str_eq(t.waits[1].syscall, "clock_nanosleep");
    ck_assert_uint_eq(t.waits[1].samples, 2);
    ck_assert_str_eq(t.waits[2].syscall, "sendto");
    wl_thread_tally_free(&t);
    ck_assert_ptr_null(t.waits);
    ck_assert_uint_eq(t.ticks, 0);
}
END_TEST

/* 20 ticks over 2 s: 8 in state R, 10 asleep, 2 reading a socket; the
 * exact CPU is 0.5 s (rusage says 0.3 + 0.1, a coarser clock). */
START_TEST(test_profile_from_tally_gives_ticks_seconds_and_splits_running_ticks)
{
    wl_thread_tally t = {0};
    add(&t, 'R', WL_WAIT_OTHER, "", "", 8);
    add(&t, 'S', WL_WAIT_NETWORK, "sk_wait_data", "recvfrom", 2);
    add(&t, 'S', WL_WAIT_SLEEP, "hrtimer_nanosleep", "clock_nanosleep", 10);
    wl_tally_totals m = {.label = "pilot of task x", .comm = "pilot", .pid = 4242,
                         .interval_s = 0.005, .wall_s = 2.0, .user_s = 0.3, .sys_s = 0.1,
                         .cpu_s = 0.5, .nvcsw = 7, .nivcsw = 3};
    wl_profile p;
    ck_assert_int_eq(wl_profile_from_tally(&t, &m, &p), 0);
    wl_thread_tally_free(&t);

    ck_assert_str_eq(p.argv[0], "pilot of task x");
    ck_assert_ptr_null(p.argv[1]);
    ck_assert_int_eq(p.pid, 4242);
    ck_assert_double_eq_tol(p.hz, 200, 1e-9);
    ck_assert_double_eq_tol(p.wall_s, 2.0, 1e-12);
    /* the split scaled onto the exact on-CPU clock: 0.375 + 0.125 = 0.5 */
    ck_assert_double_eq_tol(p.user_s, 0.375, 1e-12);
    ck_assert_double_eq_tol(p.sys_s, 0.125, 1e-12);
    ck_assert_int_eq(p.nvcsw, 7);
    ck_assert_int_eq(p.nivcsw, 3);
    /* a tick is 0.1 s: R ticks are 0.8 s, of which 0.5 s computed and
     * 0.3 s waited for a CPU; 12 blocked ticks are 1.2 s of waiting */
    ck_assert_uint_eq(p.ticks, 20);
    ck_assert_uint_eq(p.ticks_running, 8);
    ck_assert_uint_eq(p.ticks_waiting, 12);
    ck_assert_double_eq_tol(p.sampled_s, 2.0, 1e-12);
    ck_assert_double_eq_tol(p.running_s, 0.5, 1e-12);
    ck_assert_double_eq_tol(p.runqueue_s, 0.3, 1e-12);
    ck_assert_double_eq_tol(p.waiting_s, 1.2, 1e-12);
    /* most waited first, per-kind sums */
    ck_assert_uint_eq(p.nwaits, 2);
    ck_assert_int_eq(p.waits[0].kind, WL_WAIT_SLEEP);
    ck_assert_double_eq_tol(p.waits[0].seconds, 1.0, 1e-12);
    ck_assert_int_eq(p.waits[1].kind, WL_WAIT_NETWORK);
    ck_assert_double_eq_tol(p.waits[1].seconds, 0.2, 1e-12);
    ck_assert_double_eq_tol(p.wait_kind_s[WL_WAIT_SLEEP], 1.0, 1e-12);
    ck_assert_uint_eq(p.wait_kind_samples[WL_WAIT_NETWORK], 2);
    /* one thread, carrying the same figures and its own copy of the waits */
    ck_assert_uint_eq(p.nthreads, 1);
    ck_assert_int_eq(p.threads[0].tid, 4242);
    ck_assert_str_eq(p.threads[0].comm, "pilot");
    ck_assert_double_eq_tol(p.threads[0].cpu_s, 0.5, 1e-12);
    ck_assert_double_eq_tol(p.threads[0].runq_s, 0.3, 1e-12);
    ck_assert_uint_eq(p.threads[0].nwaits, 2);
    ck_assert_ptr_ne(p.threads[0].waits, p.waits);
    ck_assert_int_eq(p.threads[0].waits[0].kind, WL_WAIT_SLEEP);
    /* derived by the model: shares of running + waiting (1.7 s) */
    ck_assert_double_eq_tol(p.wait_frac, 1.2 / 1.7, 1e-9);
    ck_assert_double_eq_tol(p.cores_busy, 0.25, 1e-9);
    wl_profile_free(&p);
}
END_TEST

/* Waiting ticks never push the sum past the wall time when the CPU figure
 * and the ticks disagree (rusage rounding): the waiting part gives way. */
START_TEST(test_profile_from_tally_never_exceeds_wall_time)
{
    wl_thread_tally t = {0};
    add(&t, 'R', WL_WAIT_OTHER, "", "", 1);
    add(&t, 'S', WL_WAIT_SLEEP, "hrtimer_nanosleep", "nanosleep", 9);
    wl_tally_totals m = {.label = "x", .interval_s = 0.01, .wall_s = 1.0, .user_s = 0.6};
    wl_profile p;
    ck_assert_int_eq(wl_profile_from_tally(&t, &m, &p), 0);
    wl_thread_tally_free(&t);
    ck_assert_double_eq_tol(p.running_s, 0.6, 1e-12);
    ck_assert_double_eq_tol(p.runqueue_s, 0, 1e-12);
    ck_assert_double_eq_tol(p.waiting_s, 0.4, 1e-12);
    ck_assert_str_eq(p.threads[0].comm, "");
    wl_profile_free(&p);
}
END_TEST

/* Exact runs and no ticks, as the Slurm pilot's workers measure a job:
 * the totals split the wall time themselves (computing, the measured run
 * queue, waiting the rest) and each run stands for one tick. */
START_TEST(test_profile_from_tally_exact_runs_split_by_the_totals)
{
    wl_thread_tally t = {0};
    wl_tally_totals m = {.label = "pilot of task x", .comm = "pilot", .wall_s = 2.0,
                         .user_s = 0.3, .sys_s = 0.1, .exact_runs = 2, .runq_s = 0.5};
    wl_profile p;
    ck_assert_int_eq(wl_profile_from_tally(&t, &m, &p), 0);
    ck_assert_uint_eq(p.ticks, 2);
    ck_assert_uint_eq(p.ticks_running + p.ticks_waiting, 0); /* no state was seen */
    ck_assert_double_eq_tol(p.hz, 0, 1e-12);
    ck_assert_double_eq_tol(p.sampled_s, 2.0, 1e-12);
    ck_assert_double_eq_tol(p.running_s, 0.4, 1e-12);
    ck_assert_double_eq_tol(p.runqueue_s, 0.5, 1e-12);
    ck_assert_double_eq_tol(p.waiting_s, 1.1, 1e-12);
    ck_assert_uint_eq(p.nwaits, 0);
    /* the one thread carries them, like the task pilot's */
    ck_assert_uint_eq(p.nthreads, 1);
    ck_assert_str_eq(p.threads[0].comm, "pilot");
    ck_assert_double_eq_tol(p.threads[0].user_s, 0.3, 1e-12);
    ck_assert_double_eq_tol(p.threads[0].runq_s, 0.5, 1e-12);
    ck_assert_double_eq_tol(p.threads[0].waiting_s, 1.1, 1e-12);
    ck_assert_double_eq_tol(p.wait_frac, 1.1 / 1.5, 1e-9);
    wl_profile_free(&p);

    /* a run queue longer than the time left gives way: nothing waited */
    m.runq_s = 5.0;
    ck_assert_int_eq(wl_profile_from_tally(&t, &m, &p), 0);
    ck_assert_double_eq_tol(p.runqueue_s, 1.6, 1e-12);
    ck_assert_double_eq_tol(p.waiting_s, 0, 1e-12);
    wl_profile_free(&p);
}
END_TEST

/* On a busy node a computing job spends much of its wall time queued for
 * a CPU. Measured whole, the run queue stays apart and the classifier says
 * CPU-bound; without exact_runs the same totals carry no split (no ticks)
 * and the queued time reads as waiting. */
START_TEST(test_profile_from_tally_exact_runs_keep_a_busy_node_computing)
{
    wl_thread_tally t = {0};
    wl_tally_totals m = {.label = "pilot", .wall_s = 1.0, .user_s = 0.5, .exact_runs = 1,
                         .runq_s = 0.45};
    wl_profile p;
    wl_verdict v;
    ck_assert_int_eq(wl_profile_from_tally(&t, &m, &p), 0);
    ck_assert_int_eq(wl_classify(&p, NULL, &v), 0);
    ck_assert_int_eq(v.kind, WL_KIND_CPU_BOUND);
    ck_assert_double_lt(v.wait_share, 0.1);
    wl_verdict_free(&v);
    wl_profile_free(&p);

    m.exact_runs = 0;
    ck_assert_int_eq(wl_profile_from_tally(&t, &m, &p), 0);
    ck_assert_double_eq_tol(p.sampled_s, 0, 1e-12);
    ck_assert_int_eq(wl_classify(&p, NULL, &v), 0);
    ck_assert_int_ne(v.kind, WL_KIND_CPU_BOUND);
    wl_verdict_free(&v);
    wl_profile_free(&p);
}
END_TEST

/* Exact runs with ticks too: the split is the totals', the waits share the
 * waiting time by their ticks. */
START_TEST(test_profile_from_tally_exact_runs_waits_share_the_exact_waiting)
{
    wl_thread_tally t = {0};
    add(&t, 'R', WL_WAIT_OTHER, "", "", 2);
    add(&t, 'S', WL_WAIT_SLEEP, "hrtimer_nanosleep", "clock_nanosleep", 6);
    add(&t, 'S', WL_WAIT_DISK, "jbd2_log_wait_commit", "fsync", 2);
    wl_tally_totals m = {.label = "x", .interval_s = 0.1, .wall_s = 1.0, .user_s = 0.1,
                         .exact_runs = 1, .runq_s = 0.1};
    wl_profile p;
    ck_assert_int_eq(wl_profile_from_tally(&t, &m, &p), 0);
    wl_thread_tally_free(&t);
    ck_assert_uint_eq(p.ticks, 10);
    ck_assert_uint_eq(p.ticks_running, 2);
    ck_assert_uint_eq(p.ticks_waiting, 8);
    ck_assert_double_eq_tol(p.running_s, 0.1, 1e-12);
    ck_assert_double_eq_tol(p.runqueue_s, 0.1, 1e-12);
    ck_assert_double_eq_tol(p.waiting_s, 0.8, 1e-12);
    ck_assert_uint_eq(p.nwaits, 2);
    ck_assert_int_eq(p.waits[0].kind, WL_WAIT_SLEEP);
    ck_assert_double_eq_tol(p.waits[0].seconds, 0.6, 1e-12);
    ck_assert_double_eq_tol(p.wait_kind_s[WL_WAIT_DISK], 0.2, 1e-12);
    ck_assert_double_eq_tol(p.threads[0].waits[1].seconds, 0.2, 1e-12);
    wl_profile_free(&p);
}
END_TEST

/* A real child asleep, watched from outside the way the pilot watches its
 * workers: the tally says sleep, and the classifier calls it I/O-bound. */
START_TEST(test_tally_of_a_sleeping_child_is_io_bound_sleep)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct timespec ts = {30, 0};
        nanosleep(&ts, NULL);
        _exit(0);
    }
    double t0 = tu_now();
    wl_thread_tally t = {0};
    wl_thread_now now;
    /* wait (on its state, not a sleep of ours) until it is in nanosleep */
    for (;;) {
        ck_assert_int_eq(wl_thread_observe(pid, pid, &now), 0);
        if (now.state != 'R' && now.kind == WL_WAIT_SLEEP)
            break;
        ck_assert_msg(tu_now() - t0 < 20, "the child never slept: state %c", now.state);
        sched_yield();
    }
    for (int i = 0; i < 50; i++) {
        ck_assert_int_eq(wl_thread_observe(pid, pid, &now), 0);
        ck_assert_int_eq(wl_thread_tally_add(&t, &now), 0);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    ck_assert_uint_eq(t.ticks, 50);
    ck_assert_uint_eq(t.running, 0);
    ck_assert_uint_ge(t.nwaits, 1);

    wl_tally_totals m = {.label = "sleeper", .pid = pid, .interval_s = 0.005, .wall_s = 0.25};
    wl_profile p;
    ck_assert_int_eq(wl_profile_from_tally(&t, &m, &p), 0);
    wl_thread_tally_free(&t);
    ck_assert_int_eq(p.waits[0].kind, WL_WAIT_SLEEP);
    ck_assert_double_eq_tol(p.waiting_s, 0.25, 1e-12);
    ck_assert_double_eq_tol(p.wait_frac, 1.0, 1e-9);
    wl_verdict v;
    ck_assert_int_eq(wl_classify(&p, NULL, &v), 0);
    ck_assert_int_eq(v.kind, WL_KIND_IO_BOUND);
    wl_verdict_free(&v);
    wl_profile_free(&p);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("tally");
    TCase *t = tcase_create("tally");
    tcase_add_test(t, test_tally_merges_like_reasons_in_order_of_first_sight);
    tcase_add_test(t, test_profile_from_tally_gives_ticks_seconds_and_splits_running_ticks);
    tcase_add_test(t, test_profile_from_tally_never_exceeds_wall_time);
    tcase_add_test(t, test_profile_from_tally_exact_runs_split_by_the_totals);
    tcase_add_test(t, test_profile_from_tally_exact_runs_keep_a_busy_node_computing);
    tcase_add_test(t, test_profile_from_tally_exact_runs_waits_share_the_exact_waiting);
    tcase_add_test(t, test_tally_of_a_sleeping_child_is_io_bound_sleep);
    tcase_set_timeout(t, 60);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run_suite(suite());
}
