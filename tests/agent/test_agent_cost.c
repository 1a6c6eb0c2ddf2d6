/*
 * test_agent_cost.c -- the stack agent's cheap paths keep its answers
 * right (agent/agent.c "wait_blocked", "The writer's own file-descriptor
 * table"; agent/interpose.c fast I/O path):
 *  - a quick call that is preempted (not blocked) records no waiting, even
 *    on a machine where the target shares its CPU with a spinner;
 *  - a blocking read on a pipe and a blocking sleep are still timed
 *    exactly (the program measures them itself);
 *  - two call sites of read() taking turns (interpose.c's one countdown
 *    word per function changes hands) keep that exactness;
 *  - a read that the agent issued as a direct system call while the target
 *    was single-threaded is glibc's cancellable read again once the target
 *    starts a thread (the countdown word says which, FAST_VIA_REAL);
 *  - the writer thread keeps no copy of the target's descriptors: a
 *    closed stdout pipe reads EOF at once;
 *  - a process whose last thread leaves through pthread_exit still ends
 *    with exit(0) and flushes stdio.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "wlprof/stacks.h"

static void agent_env(const char *dir, const char *hz)
{
    setenv("LD_PRELOAD", tu_path("libwlprof-agent.so"), 1);
    setenv("WLPROF_AGENT_DIR", dir, 1);
    setenv("WLPROF_AGENT_HZ", hz, 1);
    setenv("ASAN_OPTIONS", "verify_asan_link_order=0", 1);
}

static void agent_env_clear(void)
{
    unsetenv("LD_PRELOAD");
    unsetenv("WLPROF_AGENT_DIR");
    unsetenv("WLPROF_AGENT_HZ");
}

static double func_wait(const wl_stacks *s, const char *name)
{
    for (size_t i = 0; i < s->nfuncs; i++)
        if (strcmp(s->funcs[i].name, name) == 0)
            return s->funcs[i].total_wait_s;
    return 0;
}

START_TEST(test_preempted_quick_calls_are_not_waits)
{
    const char *dir = tu_tmpdir();
    char *argv[] = {(char *)tu_path("tests/targets/agent_preempted"), "0.6", NULL};
    agent_env(dir, "100");
    int rc = tu_run(argv, 120);
    agent_env_clear();
    ck_assert_int_eq(rc, 0); /* 77: no CPU affinity */
    wl_stacks st;
    ck_assert_int_eq(wl_stacks_read(dir, &st), 0);
    ck_assert_int_eq(wl_stacks_remove_dir(dir), 0);
    ck_assert_uint_gt(st.cpu_samples, 10);
    /* ~0.6 s of CPU took ~1.2 s of wall beside the spinner: hundreds of
     * preemptions, none of them a wait. */
    double w = func_wait(&st, "agent_preempted_reads");
    ck_assert_msg(w < 0.02, "preempted reads recorded %.4f s of waiting", w);
    wl_stacks_free(&st);
}
END_TEST

/* Runs target (its one argument: a file where it writes "blocked S", the
 * seconds it measured around its own blocking reads) under the agent at
 * 100 Hz, reads the agent's stacks into *st (caller frees) and returns
 * what the program measured, asserted above floor. */
static double run_measured(const char *target, const char *outname, double floor, wl_stacks *st)
{
    char dir[1024], out[1100];
    snprintf(dir, sizeof(dir), "%s", tu_tmpdir()); /* tu_tmpdir reuses its buffer */
    snprintf(out, sizeof(out), "%s/%s", tu_tmpdir(), outname);
    char *argv[] = {(char *)tu_path(target), out, NULL};
    agent_env(dir, "100");
    int rc = tu_run(argv, 120);
    agent_env_clear();
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(wl_stacks_read(dir, st), 0);
    ck_assert_int_eq(wl_stacks_remove_dir(dir), 0);
    double measured = 0;
    FILE *f = fopen(out, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "blocked %lf", &measured), 1);
    fclose(f);
    unlink(out);
    ck_assert_msg(measured > floor, "program measured %.3f s", measured);
    return measured;
}

/* Blocking reads on a pipe: a child writes one byte every 10 ms; each
 * read blocks ~10 ms. The agent's total for the reading function matches
 * what the program measured around its reads (agent_waitexact covers
 * usleep and poll the same way). */
START_TEST(test_blocking_pipe_read_still_exact)
{
    wl_stacks st;
    double measured = run_measured("tests/targets/agent_piperead", "piperead.txt", 0.2, &st);
    double got = func_wait(&st, "agent_pipe_reads");
    ck_assert_msg(got > 0.9 * measured && got < 1.1 * measured, "pipe reads: agent %.4f s, program %.4f s",
                  got, measured);
    wl_stacks_free(&st);
}
END_TEST

/* Two read() sites taking turns: 500 quick /dev/zero reads, then one pipe
 * read that blocks ~2 ms until a child (told to go just before) writes.
 * The pipe site blocked, so every one of its reads must be timed although
 * the quick site took the function's countdown word in between: the
 * agent's total matches the program's own, the quick site waits nothing. */
START_TEST(test_sites_taking_turns_stay_exact)
{
    wl_stacks st;
    double measured = run_measured("tests/targets/agent_twosites", "twosites.txt", 0.1, &st);
    double got = func_wait(&st, "agent_turn_pipe_reads");
    ck_assert_msg(got > 0.9 * measured && got < 1.1 * measured, "pipe site: agent %.4f s, program %.4f s",
                  got, measured);
    double quick = func_wait(&st, "agent_quick_zero_reads");
    ck_assert_msg(quick < 0.02, "quick site recorded %.4f s of waiting", quick);
    wl_stacks_free(&st);
}
END_TEST

/* The main thread reads /dev/zero 3000 times through one site (direct
 * system calls: single-threaded), starts a thread, then reads a silent
 * pipe through the same site; the thread cancels it. Only glibc's read is
 * a cancellation point, so the cancel ends that read iff the agent's word
 * for the site followed pthread_create. */
START_TEST(test_read_is_cancellable_after_pthread_create)
{
    char dir[1024], out[1100];
    snprintf(dir, sizeof(dir), "%s", tu_tmpdir());
    snprintf(out, sizeof(out), "%s/cancel.txt", tu_tmpdir());
    char *argv[] = {(char *)tu_path("tests/targets/agent_cancel_read"), out, NULL};
    agent_env(dir, "100");
    int rc = tu_run(argv, 120);
    agent_env_clear();
    wl_stacks_remove_dir(dir);
    char buf[32] = "";
    FILE *f = fopen(out, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), f));
    fclose(f);
    unlink(out);
    ck_assert_str_eq(buf, "cancelled\n");
    ck_assert_int_eq(rc, 0);
}
END_TEST

START_TEST(test_closed_stdout_reads_eof_at_once)
{
    const char *dir = tu_tmpdir();
    int in[2], outp[2];
    ck_assert_int_eq(pipe(in), 0);
    ck_assert_int_eq(pipe(outp), 0);
    agent_env(dir, "100");
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(outp[1], 1);
        close(in[0]);
        close(in[1]);
        close(outp[0]);
        close(outp[1]);
        execl(tu_path("tests/targets/agent_close_stdout"), "agent_close_stdout", (char *)NULL);
        _exit(127);
    }
    agent_env_clear();
    close(in[0]);
    close(outp[1]);
    /* "x", then EOF while the target still waits on its stdin. */
    char buf[8];
    size_t got = 0;
    int eof = 0;
    double end = tu_now() + 20;
    while (!eof && tu_now() < end) {
        struct pollfd p = {.fd = outp[0], .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t n = read(outp[0], buf + got, sizeof(buf) - got);
        if (n == 0)
            eof = 1;
        else if (n > 0)
            got += (size_t)n;
    }
    int st;
    pid_t alive = waitpid(pid, &st, WNOHANG);
    close(in[1]); /* lets it finish */
    ck_assert_msg(eof, "no EOF on the target's closed stdout");
    ck_assert_int_eq(alive, 0); /* EOF came from close(1), not from the exit */
    ck_assert_int_eq(tu_wait(pid, 60), 0);
    ck_assert_uint_eq(got, 1);
    close(outp[0]);
    wl_stacks_remove_dir(dir);
}
END_TEST

START_TEST(test_last_thread_pthread_exit_flushes_stdio)
{
    char dir[1024], out[1100];
    snprintf(dir, sizeof(dir), "%s", tu_tmpdir());
    snprintf(out, sizeof(out), "%s/flush.txt", tu_tmpdir());
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    agent_env(dir, "100");
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fd, 1);
        close(fd);
        execl(tu_path("tests/targets/agent_leader_flush"), "agent_leader_flush", (char *)NULL);
        _exit(127);
    }
    agent_env_clear();
    close(fd);
    ck_assert_int_eq(tu_wait(pid, 60), 0);
    char buf[64] = "";
    FILE *f = fopen(out, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    unlink(out);
    ck_assert_str_eq(buf, "flushed at exit\n");
    wl_stacks_remove_dir(dir);
}
END_TEST

static Suite *agent_cost_suite(void)
{
    Suite *s = suite_create("agent_cost");
    TCase *tc = tcase_create("agent_cost");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_preempted_quick_calls_are_not_waits);
    tcase_add_test(tc, test_blocking_pipe_read_still_exact);
    tcase_add_test(tc, test_sites_taking_turns_stay_exact);
    tcase_add_test(tc, test_read_is_cancellable_after_pthread_create);
    tcase_add_test(tc, test_closed_stdout_reads_eof_at_once);
    tcase_add_test(tc, test_last_thread_pthread_exit_flushes_stdio);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(agent_cost_suite());
}
