/*
 * test_cli.c -- the output rules hold for every subcommand (report, diff,
 * recommend, profile --pid and run's inputs here; profile's own in
 * tests/reliability): two
 * outputs on one path -- stdout ("-", /dev/stdout, /dev/fd/1) included --
 * or an output on an input is a usage error (exit 2, one line, nothing
 * written or run); one output on stdout or a FIFO is written through.
 *
 * Every case runs the real wlprof binary through /bin/sh; the one report
 * they read is made once per case by `wlprof profile` (with stacks when
 * this build has the agent).
 */
#include "testutil.h"

#include <limits.h>
#include <stdarg.h>
#include <sys/stat.h>

#define LINE_MAX_ (8 * PATH_MAX) /* a command line of a few paths */

/* Runs a shell command line; returns its exit status. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[2 * LINE_MAX_];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int st = system(cmd);
    ck_assert_msg(st != -1 && WIFEXITED(st), "cannot run: %s", cmd);
    return WEXITSTATUS(st);
}

/* The whole of a (small) file, NUL-terminated, in a static buffer. */
static const char *slurp(const char *path)
{
    static char buf[1 << 20];
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static off_t file_size(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_size;
}

/* A fresh directory with a report r.json, its path in rep. */
static const char *make_report(char *rep, size_t len)
{
    const char *dir = tu_tmpdir();
    snprintf(rep, len, "%s/r.json", dir);
    ck_assert_int_eq(sh("'%s' profile -q -o '%s' -- '%s' 0.1 >/dev/null 2>&1", tu_env("WLPROF"),
                        rep, tu_path("tests/targets/prof_busy")),
                     0);
    return dir;
}

/* Runs `wlprof ARGS` (a shell fragment) with stdout to out and stderr to
 * err; returns the exit status. */
static int wlprof(const char *dir, const char *args, const char **err_text)
{
    char out[PATH_MAX], err[PATH_MAX];
    snprintf(out, sizeof(out), "%s/stdout.txt", dir);
    snprintf(err, sizeof(err), "%s/stderr.txt", dir);
    int rc = sh("'%s' %s >'%s' 2>'%s'", tu_env("WLPROF"), args, out, err);
    *err_text = slurp(err);
    return rc;
}

/* ---- two outputs on stdout ---- */

/* `wlprof report --folded - --html - R.json` and the like: stdout is one
 * path whatever it is called. Refused before anything is written. */
START_TEST(test_report_refuses_two_outputs_on_stdout)
{
    char rep[PATH_MAX];
    const char *dir = make_report(rep, sizeof(rep));
    const char *pairs[] = {
        "--folded - --html -",
        "--html - --speedscope -",
        "--folded - --speedscope /dev/stdout",
        "--html /dev/fd/1 --folded -",
    };
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        char args[LINE_MAX_];
        const char *err;
        snprintf(args, sizeof(args), "report -q %s '%s'", pairs[i], rep);
        ck_assert_int_eq(wlprof(dir, args, &err), 2);
        ck_assert_msg(strstr(err, "same file") && count_lines(err) == 1, "'%s' said: %s",
                      pairs[i], err);
        char out[PATH_MAX];
        snprintf(out, sizeof(out), "%s/stdout.txt", dir);
        ck_assert_msg(file_size(out) == 0, "'%s' wrote to stdout", pairs[i]);
    }
}
END_TEST

/* ---- an output on an input ---- */

/* stdout appended to the input report: `-` is that file, so writing it
 * would corrupt the report being read. report, diff and recommend refuse
 * it; the report stays as it was. */
START_TEST(test_stdout_on_the_input_report_is_refused)
{
    char rep[PATH_MAX], other[PATH_MAX + 16];
    const char *dir = make_report(rep, sizeof(rep));
    snprintf(other, sizeof(other), "%s/b.json", dir);
    ck_assert_int_eq(sh("cp '%s' '%s'", rep, other), 0);
    off_t before = file_size(rep);
    const char *cmds[] = {"report -q --html -", "recommend -q -o -", "diff -q -o - '%s'"};
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        char args[LINE_MAX_];
        snprintf(args, sizeof(args), cmds[i], other);
        ck_assert_int_eq(sh("'%s' %s '%s' >>'%s' 2>'%s/stderr.txt'", tu_env("WLPROF"), args, rep,
                            rep, dir),
                         2);
        char errp[PATH_MAX];
        snprintf(errp, sizeof(errp), "%s/stderr.txt", dir);
        const char *err = slurp(errp);
        ck_assert_msg(strstr(err, "overwrite the input") && count_lines(err) == 1,
                      "'%s' said: %s", args, err);
        ck_assert_msg(file_size(rep) == before, "'%s' wrote into its input", args);
    }
}
END_TEST

/* An output that is an input under another name (a symlink, ./x): refused
 * by report and diff alike. */
START_TEST(test_output_on_an_input_under_another_name_is_refused)
{
    char rep[PATH_MAX], link[PATH_MAX + 16], args[LINE_MAX_];
    const char *dir = make_report(rep, sizeof(rep));
    snprintf(link, sizeof(link), "%s/link.json", dir);
    ck_assert_int_eq(symlink("r.json", link), 0);
    off_t before = file_size(rep);
    const char *err;
    snprintf(args, sizeof(args), "report -q --html '%s' '%s'", link, rep);
    ck_assert_int_eq(wlprof(dir, args, &err), 2);
    ck_assert_msg(strstr(err, "overwrite the input") && count_lines(err) == 1, "said: %s", err);
    snprintf(args, sizeof(args), "diff -q -o '%s' '%s' '%s'", link, rep, rep);
    ck_assert_int_eq(wlprof(dir, args, &err), 2);
    ck_assert_msg(strstr(err, "overwrite the input") && count_lines(err) == 1, "said: %s", err);
    ck_assert(file_size(rep) == before);
    /* the same report twice as input is fine: nothing is written over it */
    snprintf(args, sizeof(args), "diff -q '%s' '%s'", rep, link);
    ck_assert_int_eq(wlprof(dir, args, &err), 0);
}
END_TEST

/* `wlprof run -a FILE` / `:::: FILE`: FILE is an input; neither the
 * report nor the joblog may be written over it, and nothing runs. */
START_TEST(test_run_output_on_its_arg_file_is_refused)
{
    const char *dir = tu_tmpdir();
    char file[PATH_MAX], marker[PATH_MAX], args[LINE_MAX_];
    snprintf(file, sizeof(file), "%s/args.txt", dir);
    snprintf(marker, sizeof(marker), "%s/ran", dir);
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%s\n", marker);
    fclose(f);
    off_t before = file_size(file);
    const char *forms[] = {"run -q -o '%s' -a '%s' touch", "run -q --joblog '%s' touch :::: '%s'"};
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        const char *err;
        snprintf(args, sizeof(args), forms[i], file, file);
        ck_assert_int_eq(wlprof(dir, args, &err), 2);
        ck_assert_msg(strstr(err, "overwrite the input --arg-file") && count_lines(err) == 1,
                      "'%s' said: %s", args, err);
        ck_assert_msg(access(marker, F_OK) != 0, "'%s' ran the command", args);
        ck_assert_msg(file_size(file) == before, "'%s' wrote over its input", args);
    }
}
END_TEST

/* `wlprof profile --pid`: its outputs follow the same rules as with a
 * command -- refused before attaching, nothing written. */
START_TEST(test_profile_pid_refuses_two_outputs_on_one_file)
{
    const char *dir = tu_tmpdir();
    char out[PATH_MAX], args[LINE_MAX_];
    snprintf(out, sizeof(out), "%s/same.json", dir);
    char *sleeper[] = {"sleep", "60", NULL};
    pid_t pid = tu_spawn(sleeper, -1);
    const char *forms[] = {"profile -q --pid %d --duration 0.2 -o '%s' --folded '%s'",
                           "profile -q --pid %d --duration 0.2 --html - --speedscope '%s%s'"};
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        const char *err;
        if (i == 0)
            snprintf(args, sizeof(args), forms[i], (int)pid, out, out);
        else
            snprintf(args, sizeof(args), forms[i], (int)pid, "/dev/", "stdout");
        ck_assert_int_eq(wlprof(dir, args, &err), 2);
        ck_assert_msg(strstr(err, "same file") && count_lines(err) == 1, "'%s' said: %s", args,
                      err);
        ck_assert_msg(access(out, F_OK) != 0, "'%s' wrote an output", args);
    }
    kill(pid, SIGKILL);
    tu_wait(pid, 10);
}
END_TEST

/* ---- one output on stdout or a FIFO ---- */

START_TEST(test_one_output_on_stdout_is_written)
{
    char rep[PATH_MAX], args[LINE_MAX_], out[PATH_MAX];
    const char *dir = make_report(rep, sizeof(rep));
    snprintf(out, sizeof(out), "%s/stdout.txt", dir);
    const char *err;
    snprintf(args, sizeof(args), "report -q --html - '%s'", rep);
    ck_assert_int_eq(wlprof(dir, args, &err), 0);
    ck_assert_msg(strstr(slurp(out), "<html") != NULL, "no page on stdout");
    snprintf(args, sizeof(args), "diff -q -o - '%s' '%s'", rep, rep);
    ck_assert_int_eq(wlprof(dir, args, &err), 0);
    json_t *d = tu_load_json(out);
    ck_assert_str_eq(tu_str(d, "schema"), "wlprof.diff/1");
    json_decref(d);
    snprintf(args, sizeof(args), "recommend -q -o - '%s'", rep);
    ck_assert_int_eq(wlprof(dir, args, &err), 0);
    d = tu_load_json(out);
    ck_assert_ptr_nonnull(json_object_get(d, "recommendation"));
    json_decref(d);
    /* and any number of outputs may be thrown away */
    snprintf(args, sizeof(args), "report -q --html /dev/null --folded /dev/null '%s'", rep);
    int rc = wlprof(dir, args, &err);
    ck_assert_msg(rc == 0 || (rc == 1 && !strstr(err, "same file")), "said: %s", err);
}
END_TEST

/* A FIFO's reader gets the output; the FIFO stays a FIFO. */
START_TEST(test_one_output_on_a_fifo_is_written)
{
    char rep[PATH_MAX], fifo[PATH_MAX + 16], got[PATH_MAX + 16];
    const char *dir = make_report(rep, sizeof(rep));
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    snprintf(got, sizeof(got), "%s/got", dir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    const char *needle[] = {"<html", "wlprof.diff/1"};
    for (size_t i = 0; i < 2; i++) {
        char args[LINE_MAX_];
        if (i == 0)
            snprintf(args, sizeof(args), "report -q --html '%s' '%s'", fifo, rep);
        else
            snprintf(args, sizeof(args), "diff -q -o '%s' '%s' '%s'", fifo, rep, rep);
        /* cat reads the FIFO; should wlprof fail without opening it, an
         * empty write lets cat end instead of blocking the case. */
        ck_assert_int_eq(sh("cat '%s' >'%s' & '%s' %s 2>/dev/null; rc=$?; "
                            "[ $rc -eq 0 ] || : >'%s'; wait; exit $rc",
                            fifo, got, tu_env("WLPROF"), args, fifo),
                         0);
        ck_assert_msg(strstr(slurp(got), needle[i]) != NULL, "the FIFO got no %s", needle[i]);
        struct stat st;
        ck_assert_int_eq(lstat(fifo, &st), 0);
        ck_assert(S_ISFIFO(st.st_mode));
    }
}
END_TEST

static Suite *cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("outputs");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_report_refuses_two_outputs_on_stdout);
    tcase_add_test(tc, test_stdout_on_the_input_report_is_refused);
    tcase_add_test(tc, test_output_on_an_input_under_another_name_is_refused);
    tcase_add_test(tc, test_run_output_on_its_arg_file_is_refused);
    tcase_add_test(tc, test_profile_pid_refuses_two_outputs_on_one_file);
    tcase_add_test(tc, test_one_output_on_stdout_is_written);
    tcase_add_test(tc, test_one_output_on_a_fifo_is_written);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(cli_suite());
}
