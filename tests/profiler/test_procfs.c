/*
 * test_procfs.c -- the kept-open /proc files the sampler reads every tick
 * (profiler/procfs.c, procfs_file): a second read through the open file
 * sees fresh values, a file of a thread that has exited never yields data
 * again (so a reused tid cannot be read through it), and the descriptor
 * budget is honoured.
 */
#include <check.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "procfs.h"

static sem_t ready, go;
static int worker_tid;

static void *worker(void *arg)
{
    worker_tid = (int)syscall(SYS_gettid);
    sem_post(&ready);
    while (sem_wait(&go) != 0) {
    }
    return arg;
}

static void burn_ms(int ms)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    volatile unsigned long x = 0;
    do {
        for (int i = 0; i < 10000; i++)
            x += (unsigned long)i;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
}

START_TEST(test_kept_open_file_reads_fresh_values)
{
    char path[96];
    snprintf(path, sizeof(path), "/proc/self/task/%d/schedstat", (int)syscall(SYS_gettid));
    procfs_file f = {0};
    int budget = 1;
    proc_schedstat a, b;
    ck_assert_int_eq(wl__procfs_schedstat_cached(&f, path, &a, &budget), 0);
    ck_assert_int_gt(f.fd1, 0);
    ck_assert_int_eq(budget, 0);
    burn_ms(30);
    ck_assert_int_eq(wl__procfs_schedstat_cached(&f, path, &b, &budget), 0);
    ck_assert_uint_gt(b.run_ns, a.run_ns + 10 * 1000 * 1000); /* the same file, read afresh */
    wl__procfs_file_close(&f, &budget);
    ck_assert_int_eq(f.fd1, 0);
    ck_assert_int_eq(budget, 1);
}
END_TEST

START_TEST(test_file_of_an_exited_thread_yields_nothing)
{
    sem_init(&ready, 0, 0);
    sem_init(&go, 0, 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, worker, NULL), 0);
    while (sem_wait(&ready) != 0) {
    }
    char path[96];
    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", worker_tid);
    procfs_file f = {0};
    int budget = 4;
    proc_stat st;
    ck_assert_int_eq(wl__procfs_stat_cached(&f, path, &st, &budget), 0);
    ck_assert_int_eq(st.pid, worker_tid);
    sem_post(&go);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    /* pthread_join returns when the kernel clears the thread's tid, which is
     * before the task is released: wait for that event (its /proc entry
     * goes), not a time. */
    char dir[64];
    snprintf(dir, sizeof(dir), "/proc/self/task/%d", worker_tid);
    for (int i = 0; i < 100000 && access(dir, F_OK) == 0; i++)
        usleep(100);
    ck_assert_int_ne(access(dir, F_OK), 0);
    /* Gone: the open file no longer reads (whoever gets the tid next). */
    ck_assert_int_lt(wl__procfs_stat_cached(&f, path, &st, &budget), 0);
    wl__procfs_file_close(&f, &budget);
    ck_assert_int_eq(budget, 4);
}
END_TEST

START_TEST(test_no_budget_reads_by_path)
{
    char path[96];
    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)syscall(SYS_gettid));
    procfs_file f = {0};
    int budget = 0;
    proc_stat st;
    ck_assert_int_eq(wl__procfs_stat_cached(&f, path, &st, &budget), 0);
    ck_assert_int_eq(st.pid, (int)syscall(SYS_gettid));
    ck_assert_int_eq(f.fd1, 0); /* nothing kept open */
}
END_TEST

static Suite *procfs_suite(void)
{
    Suite *s = suite_create("procfs");
    TCase *tc = tcase_create("procfs");
    tcase_add_test(tc, test_kept_open_file_reads_fresh_values);
    tcase_add_test(tc, test_file_of_an_exited_thread_yields_nothing);
    tcase_add_test(tc, test_no_budget_reads_by_path);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(procfs_suite());
}
