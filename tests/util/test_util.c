/*
 * test_util.c -- util/util.h: the helpers every module shares, and the one
 * whole-number convention of the CLI's options built on wl__parse_count.
 */
#include "testutil.h"
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <time.h>

#include "util/util.h"

START_TEST(test_parse_count_takes_whole_numbers_in_range)
{
    long v = -1;
    ck_assert_int_eq(wl__parse_count("4", 1, 10, &v), 0);
    ck_assert_int_eq(v, 4);
    ck_assert_int_eq(wl__parse_count("1", 1, 10, &v), 0); /* bounds inclusive */
    ck_assert_int_eq(v, 1);
    ck_assert_int_eq(wl__parse_count("10", 1, 10, &v), 0);
    ck_assert_int_eq(v, 10);
    ck_assert_int_eq(wl__parse_count("-2", -5, 0, &v), 0);
    ck_assert_int_eq(v, -2);
    ck_assert_int_eq(wl__parse_count("007", 0, 10, &v), 0); /* decimal, not octal */
    ck_assert_int_eq(v, 7);
}
END_TEST

START_TEST(test_parse_count_rejects_what_is_not_a_whole_number)
{
    static const char *const bad[] = {"", "abc", "4.0", "4x", " 4", "4 ", "+4", "0x10", "-", "1e3"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        long v = 99;
        ck_assert_msg(wl__parse_count(bad[i], 0, 1000, &v) == -EINVAL, "'%s' accepted", bad[i]);
        ck_assert_int_eq(v, 99); /* untouched */
    }
    long v = 99;
    ck_assert_int_eq(wl__parse_count(NULL, 0, 10, &v), -EINVAL);
}
END_TEST

START_TEST(test_parse_count_range_errors_are_erange)
{
    long v = 99;
    ck_assert_int_eq(wl__parse_count("0", 1, 10, &v), -ERANGE);
    ck_assert_int_eq(wl__parse_count("11", 1, 10, &v), -ERANGE);
    ck_assert_int_eq(wl__parse_count("-3", 1, 10, &v), -ERANGE);
    ck_assert_int_eq(wl__parse_count("99999999999999999999999", 0, LONG_MAX, &v), -ERANGE);
    ck_assert_int_eq(v, 99);
}
END_TEST

/* Every subcommand's count options follow the one convention: "4.0" and
 * " 4" are usage errors in run and in recommend alike (recommend took 4.0). */
START_TEST(test_cli_count_options_share_the_convention)
{
    const char *w = tu_env("WLPROF");
    char *run_frac[] = {(char *)w, "run", "--sample", "sleep", "--workers", "4.0", NULL};
    char *run_space[] = {(char *)w, "run", "--sample", "sleep", "--workers", " 4", NULL};
    char *rec_frac[] = {(char *)w, "recommend", "--cores", "4.0", "/nonexistent.json", NULL};
    char *rec_conc[] = {(char *)w, "recommend", "--concurrency", "+4", "/nonexistent.json", NULL};
    ck_assert_int_eq(tu_run(run_frac, 60), 2);
    ck_assert_int_eq(tu_run(run_space, 60), 2);
    ck_assert_int_eq(tu_run(rec_frac, 60), 2);
    ck_assert_int_eq(tu_run(rec_conc, 60), 2);
}
END_TEST

typedef struct item {
    int v;
    wl_qnode node;
} item;

static int order(wl_qnode *q, int *out, int max)
{
    int n = 0;
    for (wl_qnode *p = q->next; p != q && n < max; p = p->next)
        out[n++] = wl__q_data(p, item, node)->v;
    return n;
}

START_TEST(test_queue_push_front_remove_keep_order)
{
    wl_qnode q;
    item it[4] = {{1, {0}}, {2, {0}}, {3, {0}}, {4, {0}}};
    int got[8];
    wl__q_init(&q);
    ck_assert(wl__q_empty(&q));
    ck_assert_ptr_null(wl__q_first(&q));
    wl__q_push(&q, &it[1].node);       /* 2 */
    wl__q_push(&q, &it[2].node);       /* 2 3 */
    wl__q_push_front(&q, &it[0].node); /* 1 2 3 */
    wl__q_push(&q, &it[3].node);       /* 1 2 3 4 */
    ck_assert_int_eq(order(&q, got, 8), 4);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(got[i], i + 1);
    ck_assert_ptr_eq(wl__q_first(&q), &it[0].node);
    wl__q_remove(&it[1].node);         /* 1 3 4 */
    wl__q_remove(&it[1].node);         /* unlinked: no-op */
    ck_assert_int_eq(order(&q, got, 8), 3);
    ck_assert_int_eq(got[0], 1);
    ck_assert_int_eq(got[1], 3);
    ck_assert_int_eq(got[2], 4);
    wl__q_remove(&it[0].node);
    wl__q_remove(&it[2].node);
    wl__q_remove(&it[3].node);
    ck_assert(wl__q_empty(&q));
}
END_TEST

/* Walks q backwards too: splice and move must leave both directions
 * consistent. */
static int order_back(wl_qnode *q, int *out, int max)
{
    int n = 0;
    for (wl_qnode *p = q->prev; p != q && n < max; p = p->prev)
        out[n++] = wl__q_data(p, item, node)->v;
    return n;
}

START_TEST(test_queue_splice_and_move_keep_order_and_empty_the_source)
{
    wl_qnode a, b, c;
    item it[5] = {{1, {0}}, {2, {0}}, {3, {0}}, {4, {0}}, {5, {0}}};
    int got[8];
    wl__q_init(&a);
    wl__q_init(&b);
    wl__q_splice(&a, &b); /* both empty: nothing happens */
    ck_assert(wl__q_empty(&a) && wl__q_empty(&b));
    wl__q_push(&a, &it[0].node);
    wl__q_push(&a, &it[1].node); /* a: 1 2 */
    wl__q_splice(&a, &b);        /* an empty source leaves a as it was */
    ck_assert_int_eq(order(&a, got, 8), 2);
    wl__q_push(&b, &it[2].node);
    wl__q_push(&b, &it[3].node);
    wl__q_push(&b, &it[4].node); /* b: 3 4 5 */
    wl__q_splice(&a, &b);        /* a: 1 2 3 4 5, b empty */
    ck_assert(wl__q_empty(&b));
    ck_assert_int_eq(order(&a, got, 8), 5);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(got[i], i + 1);
    ck_assert_int_eq(order_back(&a, got, 8), 5);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(got[i], 5 - i);
    wl__q_move(&a, &c); /* c takes all, a empty */
    ck_assert(wl__q_empty(&a));
    ck_assert_int_eq(order(&c, got, 8), 5);
    ck_assert_int_eq(order_back(&c, got, 8), 5);
    ck_assert_int_eq(got[0], 5);
    wl__q_remove(&it[4].node); /* the tail of a moved queue unlinks cleanly */
    ck_assert_ptr_eq(c.prev, &it[3].node);
    ck_assert_ptr_eq(it[3].node.next, &c);
    wl__q_move(&a, &b); /* moving an empty queue gives an empty queue */
    ck_assert(wl__q_empty(&b));
}
END_TEST

START_TEST(test_bytes_grow_and_free)
{
    wl_bytes b = {0};
    char chunk[100];
    for (int i = 0; i < 100; i++)
        chunk[i] = (char)i;
    for (int i = 0; i < 50; i++)
        ck_assert_int_eq(wl_bytes_append(&b, chunk, sizeof(chunk)), 0);
    ck_assert_uint_eq(b.len, 5000);
    ck_assert_uint_ge(b.cap, 5000);
    for (size_t i = 0; i < b.len; i++)
        ck_assert_int_eq(b.data[i], (uint8_t)(i % 100));
    ck_assert_int_eq(wl_bytes_append(&b, NULL, 0), 0);
    ck_assert_uint_eq(b.len, 5000);
    wl_bytes_free(&b);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(b.cap, 0);
    /* a request that cannot be met fails without touching the buffer */
    wl_bytes huge = {NULL, 0, SIZE_MAX / 2 + 2};
    ck_assert_int_eq(wl__bytes_reserve(&huge, SIZE_MAX), -ENOMEM);
    ck_assert_ptr_null(huge.data);
}
END_TEST

START_TEST(test_time_helpers_agree)
{
    struct timeval tv = {.tv_sec = 3, .tv_usec = 250000};
    ck_assert_double_eq_tol(wl__tv_s(tv), 3.25, 1e-12);
    double s0 = wl__mono_s();
    uint64_t ns = wl__mono_ns();
    double s1 = wl__mono_s();
    ck_assert(s1 >= s0);
    ck_assert(ns * 1e-9 >= s0 - 1e-6 && ns * 1e-9 <= s1 + 1e-6);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ck_assert(ts.tv_sec + ts.tv_nsec * 1e-9 >= s1);
}
END_TEST

static Suite *util_suite(void)
{
    Suite *s = suite_create("util");
    TCase *t = tcase_create("util");
    tcase_add_test(t, test_parse_count_takes_whole_numbers_in_range);
    tcase_add_test(t, test_parse_count_rejects_what_is_not_a_whole_number);
    tcase_add_test(t, test_parse_count_range_errors_are_erange);
    tcase_add_test(t, test_cli_count_options_share_the_convention);
    tcase_add_test(t, test_queue_push_front_remove_keep_order);
    tcase_add_test(t, test_queue_splice_and_move_keep_order_and_empty_the_source);
    tcase_add_test(t, test_bytes_grow_and_free);
    tcase_add_test(t, test_time_helpers_agree);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run_suite(util_suite());
}
