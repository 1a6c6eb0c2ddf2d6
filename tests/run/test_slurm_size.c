/*
 * test_slurm_size.c -- how the Slurm executor sizes its batch from the
 * pilot its workers measured (runner/slurm_size.c, internal API), with no
 * cluster: the pilot's exact totals become a profile through the profiler
 * (wl_profile_from_tally), the same one-thread shape as the task pilot's;
 * a waiting pilot fills the cores by its CPU share, a computing one (also
 * on a busy node, its run queue kept apart) gets one job per core, and
 * --workers, --limit and the workers' slots bound it.
 */
#include "testutil.h"
#include <check.h>

#include <string.h>

#include "internal.h"
#include "wlprof/classify.h"
#include "wlprof/profiler.h"

static const run_slurm_shape three_nodes = {.cpus = 3, .nodes = 3, .most = 96};

static size_t size_for(const run_remote_pilot *m, const wl_run_opts *o, const run_slurm_shape *a,
                       wl_run_result *r)
{
    memset(r, 0, sizeof(*r));
    r->mode = WL_RUN_TASKS;
    r->pilot_jobs = m->jobs;
    return wl__run_slurm_size(o, a, m, "pilot of task sample_sleep", r);
}

static void result_clean(wl_run_result *r)
{
    if (r->have_verdict)
        wl_verdict_free(&r->verdict);
    wl_profile_free(&r->profile);
}

/* The shape: argv, one thread named pilot with the pilot's own figures,
 * as the local task pilot's profile has it -- the profile the runner used
 * to fill by hand had no thread and no command. */
START_TEST(test_slurm_pilot_profile_has_the_profilers_one_thread_shape)
{
    run_remote_pilot m = {
        .jobs = 1, .wall_s = 0.31, .user_s = 0.002, .sys_s = 0.001, .runq_s = 0.004};
    wl_run_opts o = {0};
    wl_run_result r;
    size_for(&m, &o, &three_nodes, &r);
    ck_assert(r.have_profile);
    const wl_profile *p = &r.profile;
    ck_assert_int_eq(p->argc, 1);
    ck_assert_str_eq(p->argv[0], "pilot of task sample_sleep");
    ck_assert_uint_eq(p->nthreads, 1);
    ck_assert_str_eq(p->threads[0].comm, "pilot");
    ck_assert_double_eq_tol(p->threads[0].user_s, 0.002, 1e-12);
    ck_assert_double_eq_tol(p->threads[0].sys_s, 0.001, 1e-12);
    ck_assert_double_eq_tol(p->threads[0].cpu_s, 0.003, 1e-12);
    ck_assert_double_eq_tol(p->threads[0].runq_s, 0.004, 1e-12);
    ck_assert_double_eq_tol(p->threads[0].waiting_s, 0.303, 1e-12);
    /* the exact split, each measured job one tick */
    ck_assert_uint_eq(p->ticks, 1);
    ck_assert_double_eq_tol(p->sampled_s, 0.31, 1e-12);
    ck_assert_double_eq_tol(p->running_s, 0.003, 1e-12);
    ck_assert_double_eq_tol(p->runqueue_s, 0.004, 1e-12);
    ck_assert_double_eq_tol(p->waiting_s, 0.303, 1e-12);
    ck_assert_double_eq_tol(p->wait_frac, 0.303 / 0.306, 1e-9);

    /* the same figures through the profiler directly: the same profile */
    wl_profile q;
    ck_assert_int_eq(wl__run_remote_pilot_profile(&m, "pilot of task sample_sleep", &q), 0);
    ck_assert_uint_eq(q.nthreads, p->nthreads);
    ck_assert_double_eq_tol(q.wait_frac, p->wait_frac, 1e-12);
    ck_assert_double_eq_tol(q.runqueue_s, p->runqueue_s, 1e-12);
    wl_profile_free(&q);
    result_clean(&r);
}
END_TEST

/* A job that sleeps 0.3 s (the cluster suite's): I/O-bound, 3 cores /
 * 1 % CPU share is far beyond --limit, which caps it; so do the slots. */
START_TEST(test_slurm_waiting_pilot_fills_the_cores_by_its_cpu_share)
{
    run_remote_pilot m = {.jobs = 1, .wall_s = 0.303, .user_s = 0.002, .sys_s = 0.001};
    wl_run_opts o = {0};
    wl_run_result r;
    ck_assert_uint_eq(size_for(&m, &o, &three_nodes, &r), RUN_DEFAULT_LIMIT);
    ck_assert(r.have_verdict);
    ck_assert_int_eq(r.verdict.kind, WL_KIND_IO_BOUND);
    ck_assert(r.auto_chosen);
    ck_assert_int_eq(r.executor, WL_EXEC_PROCESS_POOL);
    ck_assert_int_eq(r.workers, RUN_DEFAULT_LIMIT);
    ck_assert_msg(strstr(r.reason, "pilot waits 99% of its wall time: 3 cores / 0.01 CPU share"),
                  "%s", r.reason);
    result_clean(&r);

    o.limit = 20;
    ck_assert_uint_eq(size_for(&m, &o, &three_nodes, &r), 20);
    result_clean(&r);
    run_slurm_shape few = {.cpus = 3, .nodes = 3, .most = 9};
    o.limit = 0;
    ck_assert_uint_eq(size_for(&m, &o, &few, &r), 9);
    result_clean(&r);

    /* half computing, half waiting: mixed, 3 / 0.5 = 6 in flight */
    run_remote_pilot half = {.jobs = 1, .wall_s = 1.0, .user_s = 0.5};
    ck_assert_uint_eq(size_for(&half, &o, &three_nodes, &r), 6);
    ck_assert_int_eq(r.verdict.kind, WL_KIND_MIXED);
    result_clean(&r);
}
END_TEST

/* Computing on a node so busy it queued 45 % of the job's wall time for a
 * CPU: the run queue is neither computing nor waiting, so the pilot is
 * CPU-bound and gets one job per allocated core (not 3 / 0.5 = 6). */
START_TEST(test_slurm_computing_pilot_on_a_busy_node_gets_one_job_per_core)
{
    run_remote_pilot m = {.jobs = 1, .wall_s = 1.0, .user_s = 0.49, .sys_s = 0.01, .runq_s = 0.45};
    wl_run_opts o = {0};
    wl_run_result r;
    ck_assert_uint_eq(size_for(&m, &o, &three_nodes, &r), 3);
    ck_assert_int_eq(r.verdict.kind, WL_KIND_CPU_BOUND);
    ck_assert_double_eq_tol(r.profile.runqueue_s, 0.45, 1e-12);
    ck_assert_msg(strstr(r.reason, "pilot computes 91% of its wall time: one job per allocated "
                                   "core (3 cores on 3 nodes)"),
                  "%s", r.reason);
    result_clean(&r);
}
END_TEST

/* --workers is the size (nothing measured, no profile); no pilot: one job
 * per core. Never below one. */
START_TEST(test_slurm_size_without_a_pilot)
{
    run_remote_pilot none = {0};
    wl_run_opts o = {.workers = 6};
    wl_run_result r;
    ck_assert_uint_eq(size_for(&none, &o, &three_nodes, &r), 6);
    ck_assert(!r.auto_chosen);
    ck_assert(!r.have_profile);
    ck_assert_str_eq(r.reason, "--workers 6 over 3 nodes");
    result_clean(&r);

    o.workers = 0;
    ck_assert_uint_eq(size_for(&none, &o, &three_nodes, &r), 3);
    ck_assert(!r.have_profile);
    ck_assert_str_eq(r.reason, "no pilot: one job per allocated core");
    result_clean(&r);

    run_slurm_shape empty = {.cpus = 0, .nodes = 1, .most = 4};
    ck_assert_uint_eq(size_for(&none, &o, &empty, &r), 1);
    result_clean(&r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("slurm_size");
    TCase *t = tcase_create("size");
    tcase_add_test(t, test_slurm_pilot_profile_has_the_profilers_one_thread_shape);
    tcase_add_test(t, test_slurm_waiting_pilot_fills_the_cores_by_its_cpu_share);
    tcase_add_test(t, test_slurm_computing_pilot_on_a_busy_node_gets_one_job_per_core);
    tcase_add_test(t, test_slurm_size_without_a_pilot);
    tcase_set_timeout(t, 60);
    suite_add_tcase(s, t);
    return tu_run_suite(s);
}
