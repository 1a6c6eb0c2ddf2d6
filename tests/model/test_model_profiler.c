/*
 * test_model_profiler.c -- the profiler groups a thread blocked in any
 * poll-like call (the model's wl_is_readiness_call) as WL_WAIT_POLL, whatever
 * else its state says; other calls keep their own kinds.
 */
#include "testutil.h"
#include <check.h>

#include "waitkind.h"
#include "wlprof/profile.h"

START_TEST(test_poll_like_syscalls_are_poll_waits)
{
    static const char *const poll[] = {"epoll_wait", "epoll_pwait", "ppoll", "pselect6",
                                       "io_getevents", "io_uring_enter"};
    for (size_t i = 0; i < sizeof(poll) / sizeof(poll[0]); i++)
        ck_assert_msg(wl__waitkind_classify('S', "do_sys_poll", poll[i], NULL) == WL_WAIT_POLL, "%s",
                      poll[i]);
    /* a wait channel that says otherwise does not win over the call */
    ck_assert_int_eq(wl__waitkind_classify('S', "pipe_read", "epoll_wait", NULL), WL_WAIT_POLL);
    ck_assert_int_eq(wl__waitkind_classify('S', "", "nanosleep", NULL), WL_WAIT_SLEEP);
    ck_assert_int_eq(wl__waitkind_classify('S', "", "recvfrom", NULL), WL_WAIT_NETWORK);
    ck_assert_int_eq(wl__waitkind_classify('S', "", "futex", NULL), WL_WAIT_LOCK);
    ck_assert_int_eq(wl__waitkind_classify('S', "", "read", "pipe:[123]"), WL_WAIT_PIPE);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("model_profiler");
    TCase *t = tcase_create("waitkind");
    tcase_add_test(t, test_poll_like_syscalls_are_poll_waits);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run_suite(suite());
}
