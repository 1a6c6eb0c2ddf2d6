/*
 * test_model.c -- the profile data model (model/, wlprof/profile.h) on its
 * own: derived fields, release, wait-kind names and the poll-like calls.
 * Links wl_model alone: the model needs no profiler.
 */
#include "testutil.h"
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "wlprof/profile.h"

START_TEST(test_derive_splits_computing_and_waiting)
{
    wl_profile p;
    memset(&p, 0, sizeof(p));
    p.wall_s = 4.0;
    p.user_s = 1.5;
    p.sys_s = 0.5;
    p.running_s = 2.0; /* computing */
    p.waiting_s = 6.0; /* waiting (thread-seconds) */
    p.exit_code = 3;
    wl_profile_derive(&p);
    ck_assert_double_eq_tol(p.cores_busy, 0.5, 1e-12);
    ck_assert_double_eq_tol(p.user_frac, 0.25 * 0.75, 1e-12);
    ck_assert_double_eq_tol(p.sys_frac, 0.25 * 0.25, 1e-12);
    ck_assert_double_eq_tol(p.wait_frac, 0.75, 1e-12);
    ck_assert_int_eq(p.exit_status, 3);
    p.term_signal = 9;
    wl_profile_derive(&p);
    ck_assert_int_eq(p.exit_status, 128 + 9);
    memset(&p, 0, sizeof(p));
    wl_profile_derive(&p); /* nothing measured: no division by zero */
    ck_assert_double_eq(p.user_frac + p.sys_frac + p.wait_frac, 0);
}
END_TEST

START_TEST(test_free_releases_and_zeroes)
{
    wl_profile p;
    memset(&p, 0, sizeof(p));
    wl_profile_free(&p); /* safe on a zeroed profile */
    p.argv = calloc(3, sizeof(char *));
    p.argv[0] = strdup("prog");
    p.argv[1] = strdup("arg");
    p.nthreads = 1;
    p.threads = calloc(1, sizeof(*p.threads));
    p.threads[0].waits = calloc(2, sizeof(*p.threads[0].waits));
    p.nprocs = 1;
    p.procs = calloc(1, sizeof(*p.procs));
    p.procs[0].cmdline = strdup("prog arg");
    p.wall_s = 1;
    wl_profile_free(&p); /* ASan / valgrind: nothing leaks */
    ck_assert_ptr_null(p.argv);
    ck_assert_ptr_null(p.threads);
    ck_assert_double_eq(p.wall_s, 0);
}
END_TEST

START_TEST(test_wait_kind_names_round_trip)
{
    for (int k = 0; k < WL_WAIT_KIND_COUNT; k++) {
        const char *name = wl_wait_kind_name((wl_wait_kind)k);
        ck_assert_ptr_nonnull(name);
        ck_assert_int_eq(wl_wait_kind_parse(name), k);
    }
    ck_assert_str_eq(wl_wait_kind_name(WL_WAIT_POLL), "poll");
    ck_assert_str_eq(wl_wait_kind_name((wl_wait_kind)WL_WAIT_KIND_COUNT), "other");
    ck_assert_int_eq(wl_wait_kind_parse("nonsense"), -1);
    ck_assert_int_eq(wl_wait_kind_parse(NULL), -1);
}
END_TEST

/* The one list: what the profiler's syscall table and the classifier's
 * function table each had only half of (io_getevents, io_uring_wait_cqe). */
START_TEST(test_poll_like_calls)
{
    static const char *const poll[] = {"poll", "ppoll", "select", "pselect6", "epoll_wait",
                                       "epoll_pwait", "epoll_pwait2", "io_getevents",
                                       "io_uring_enter", "io_uring_wait_cqe"};
    static const char *const not_poll[] = {"read", "recvfrom", "futex", "nanosleep", "accept",
                                           "wait4", "", "epoll", "poll2"};
    for (size_t i = 0; i < sizeof(poll) / sizeof(poll[0]); i++)
        ck_assert_msg(wl_is_readiness_call(poll[i]), "%s", poll[i]);
    for (size_t i = 0; i < sizeof(not_poll) / sizeof(not_poll[0]); i++)
        ck_assert_msg(!wl_is_readiness_call(not_poll[i]), "%s", not_poll[i]);
    ck_assert(!wl_is_readiness_call(NULL));
}
END_TEST

static Suite *model_suite(void)
{
    Suite *s = suite_create("model");
    TCase *t = tcase_create("model");
    tcase_add_test(t, test_derive_splits_computing_and_waiting);
    tcase_add_test(t, test_free_releases_and_zeroes);
    tcase_add_test(t, test_wait_kind_names_round_trip);
    tcase_add_test(t, test_poll_like_calls);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run_suite(model_suite());
}
