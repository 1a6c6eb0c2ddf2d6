/*
 * testutil.h -- helpers shared by the Check suites: locating built
 * programs, running a command with a deadline (its output into files),
 * reading files, temporary directories and reading JSON reports.
 * Header-only so every suite is self-contained. Hand-made profiles for
 * the classifier and report suites are fake_profile.h's.
 */
#ifndef WL_TESTUTIL_H
#define WL_TESTUTIL_H

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static inline const char *tu_env(const char *name)
{
    const char *v = getenv(name);
    ck_assert_msg(v && *v, "environment variable %s is not set (run the suite through ctest)",
                  name);
    return v;
}

/* Path of a built program: tu_path("tests/targets/prof_busy"). Static buffer rotation. */
static inline const char *tu_path(const char *rel)
{
    static char bufs[8][4096];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof(bufs[0]), "%s/%s", tu_env("WL_BUILD_DIR"), rel);
    return b;
}

static inline double tu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Starts argv with stdin from in_fd (-1: /dev/null) and stdout/stderr to
 * /dev/null unless WL_TEST_VERBOSE is set. Returns the pid. */
static inline pid_t tu_spawn(char *const argv[], int in_fd)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(in_fd >= 0 ? in_fd : null, 0);
        if (!getenv("WL_TEST_VERBOSE")) {
            dup2(null, 1);
            dup2(null, 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* Waits for pid up to timeout seconds (then SIGKILLs it and fails).
 * Returns the shell-style exit status (128+signal when killed). */
static inline int tu_wait(pid_t pid, double timeout)
{
    double end = tu_now() + timeout;
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (tu_now() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            ck_abort_msg("pid %d did not finish within %.1f s", (int)pid, timeout);
        }
        usleep(5000);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static inline int tu_run(char *const argv[], double timeout)
{
    return tu_wait(tu_spawn(argv, -1), timeout);
}

/* Runs argv (a path, or a name looked up in PATH) with stdin from
 * /dev/null and stdout/stderr into the files out/err (created or
 * truncated; NULL: /dev/null), waiting up to timeout seconds (tu_wait).
 * COLUMNS is unset in the child, so text output is as wide as for a pipe
 * whatever terminal ctest was started from. */
static inline int tu_run_to(char *const argv[], const char *out, const char *err, double timeout)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        int o = out ? open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644) : null;
        int e = err ? open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644) : null;
        if (null < 0 || o < 0 || e < 0)
            _exit(126);
        dup2(null, 0);
        dup2(o, 1);
        dup2(e, 2);
        unsetenv("COLUMNS");
        execvp(argv[0], argv);
        _exit(127);
    }
    return tu_wait(pid, timeout);
}

/* Fills argv[cap] with `$WLPROF profile -q -o report [option] -- target...`
 * (option may be NULL; target is NULL-terminated, cut to what fits) and
 * ends it with NULL. Returns argv, for tu_run and its kin. */
static inline char **tu_profile_argv(char **argv, int cap, const char *report, const char *option,
                                     const char *const target[])
{
    int n = 0;
    argv[n++] = (char *)tu_env("WLPROF");
    argv[n++] = "profile";
    argv[n++] = "-q";
    argv[n++] = "-o";
    argv[n++] = (char *)report;
    if (option)
        argv[n++] = (char *)option;
    argv[n++] = "--";
    for (int i = 0; target[i] && n < cap - 1; i++)
        argv[n++] = (char *)target[i];
    argv[n] = NULL;
    return argv;
}

/* The next number of Marsaglia's xorshift64 generator (state *x, never
 * 0): test inputs that are varied but the same every run. */
static inline uint64_t tu_xorshift64(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Writes text to path (created or truncated). */
static inline void tu_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "cannot write %s: %s", path, strerror(errno));
    ck_assert_int_ge(fputs(text, f), 0);
    ck_assert_int_eq(fclose(f), 0);
}

/* Lines in the file at path (its newlines); 0 when it does not exist. */
static inline int tu_file_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    int n = 0;
    int c;
    if (!f)
        return 0;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* Lines in s (its newlines). */
static inline int tu_count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* A text file's first MiB, NUL-terminated, in a buffer that the next call
 * (from the same file of tests) reuses. Fails the test when path cannot be
 * opened. */
static inline char *tu_slurp(const char *path)
{
    static char buf[1 << 20];
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s: %s", path, strerror(errno));
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* A fresh temporary directory under the build tree (same file system as
 * the tests' outputs, and a real disk for fsync tests). */
static char tu__dir[1024];
static inline const char *tu_tmpdir(void)
{
    snprintf(tu__dir, sizeof(tu__dir), "%s/tmp-test-XXXXXX", tu_env("WL_BUILD_DIR"));
    ck_assert_ptr_nonnull(mkdtemp(tu__dir));
    return tu__dir;
}

/* The path of name in the latest tu_tmpdir() (which must have been made):
 * tu_file("r.json"). The buffers rotate, 64 of them: a test (a process of
 * its own in Check's fork mode) may hold 64 such paths at once, and a
 * later tu_tmpdir() -- a helper's own directory -- leaves them alone. */
static inline const char *tu_file(const char *name)
{
    static char bufs[64][1200];
    static int next;
    ck_assert_msg(tu__dir[0], "tu_file before tu_tmpdir");
    char *b = bufs[next++ % 64];
    snprintf(b, sizeof(bufs[0]), "%s/%s", tu__dir, name);
    return b;
}

/* Points TMPDIR at a directory of this build for the suite's lifetime:
 * the profiler's agent keeps its files in $TMPDIR, and on a shared machine
 * another job sweeping /tmp must not take them away mid-run. */
static inline void tu_private_tmpdir(void)
{
    static char dir[1024];
    const char *build = getenv("WL_BUILD_DIR"); /* outside a test: no ck_assert */
    snprintf(dir, sizeof(dir), "%s/tmp-suite-XXXXXX", build && *build ? build : ".");
    if (mkdtemp(dir))
        setenv("TMPDIR", dir, 1);
}

static inline json_t *tu_load_json(const char *path)
{
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    ck_assert_msg(root != NULL, "%s: %s (line %d)", path, err.text, err.line);
    return root;
}

/* The value at a dotted path ("split.waiting") in a report, or NULL. */
static inline const json_t *tu_get(const json_t *root, const char *dotted)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", dotted);
    const json_t *v = root;
    for (char *save, *tok = strtok_r(buf, ".", &save); tok; tok = strtok_r(NULL, ".", &save))
        v = json_object_get(v, tok);
    return v;
}

/* Number at a dotted path; fails the test when absent. */
static inline double tu_num(const json_t *root, const char *dotted)
{
    const json_t *v = tu_get(root, dotted);
    ck_assert_msg(json_is_number(v), "report has no number at %s", dotted);
    return json_number_value(v);
}

/* String at a dotted path; fails the test when absent. */
static inline const char *tu_str(const json_t *root, const char *dotted)
{
    const json_t *v = tu_get(root, dotted);
    ck_assert_msg(json_is_string(v), "report has no string at %s", dotted);
    return json_string_value(v);
}

/* Skips: a test that cannot run here says why and returns; the suite then
 * exits 77, which ctest shows as skipped (SKIP_RETURN_CODE), never as a
 * pass. Keep such tests in a ctest entry of their own (a Check tag, see
 * wl_add_check_suite's SEPARATE_TAGS) so a skip hides no other result.
 * Works in fork mode: children note the skip in a file the suite holds. */
#define TU_EXIT_SKIP 77
static int tu__skip_fd = -1;

static inline void tu__note_skip(const char *why)
{
    fprintf(stderr, "SKIP: %s\n", why);
    if (tu__skip_fd >= 0 && write(tu__skip_fd, "s", 1) != 1)
        perror("tu_skip");
}
#define tu_skip(why)                                                                   \
    do {                                                                               \
        tu__note_skip(why);                                                            \
        return;                                                                        \
    } while (0)

/* Runs a suite (Check's fork mode comes from CK_FORK) and gives main()'s
 * exit status: 0 when every test passed, 77 when none failed and some
 * were skipped, 1 otherwise. */
static inline int tu_run_suite(Suite *suite)
{
    FILE *skips = tmpfile();
    tu__skip_fd = skips ? fileno(skips) : -1;
    SRunner *sr = srunner_create(suite);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    int run = srunner_ntests_run(sr);
    srunner_free(sr);
    long skipped = skips ? (long)lseek(tu__skip_fd, 0, SEEK_END) : 0;
    if (skips)
        fclose(skips);
    tu__skip_fd = -1;
    if (failed)
        return EXIT_FAILURE;
    if (run == 0) {
        fprintf(stderr, "no test ran (CK_RUN_CASE / tags select nothing)\n");
        return EXIT_FAILURE;
    }
    if (skipped > 0) {
        fprintf(stderr, "%ld of %d tests skipped\n", skipped, run);
        return TU_EXIT_SKIP;
    }
    return EXIT_SUCCESS;
}

#endif
