/*
 * test_html.c -- the report people look at, and the files for other tools:
 *  - the JSON report's per-thread timeline alternates computing and
 *    sleeping for a program that does, and survives a round trip;
 *  - `wlprof report` prints the whole summary and re-exports HTML, folded
 *    (process;thread roots, [wait:KIND] leaves, --folded-roots=none) and
 *    speedscope; refuses to overwrite its input; says what an old report
 *    cannot give;
 *  - speedscope: one evented profile per thread, in time order, properly
 *    nested, named by process and thread, none empty;
 *  - `wlprof diff` shows the change in waiting, in 80 columns and as JSON;
 *  - a 10 s, 100 Hz, 20-thread profile makes a page under 2 MB with no
 *    reference to anything outside the file.
 * Rendering in a browser is test_html_browser.c; speedscope's published
 * schema is checked by speedscope_schema.sh.
 */
#include <sys/stat.h>
#include <unistd.h>

#include "html_fixture.h"

/* ---- timeline ---- */

/* The state names of one timeline thread's runs, in order. */
static size_t run_names(const json_t *tl, const json_t *th, const char **out, size_t cap)
{
    const json_t *runs = json_object_get(th, "runs");
    const json_t *states = json_object_get(tl, "states");
    size_t n = 0;
    for (size_t i = 0; i + 2 < json_array_size(runs) + 0 && n < cap; i += 3)
        out[n++] = json_string_value(json_array_get(states, (size_t)json_integer_value(json_array_get(runs, i))));
    return n;
}

START_TEST(test_timeline_alternates_computing_and_sleeping)
{
    json_t *r = tu_load_json(alternate_in_fresh_dir(10, 50, NULL, NULL));
    const json_t *tl = json_object_get(r, "timeline");
    ck_assert_ptr_nonnull(tl);
    ck_assert_str_eq(tu_str(r, "schema"), WL_REPORT_SCHEMA);
    const json_t *ticks = json_object_get(tl, "tick_us");
    ck_assert_uint_eq(json_array_size(ticks), (size_t)tu_num(r, "sampling.ticks"));
    for (size_t i = 1; i < json_array_size(ticks); i++)
        ck_assert_int_gt(json_integer_value(json_array_get(ticks, i)), json_integer_value(json_array_get(ticks, i - 1)));
    int pid = (int)tu_num(r, "target.pid");
    const json_t *main_th = NULL;
    for (size_t i = 0; i < json_array_size(json_object_get(tl, "threads")); i++) {
        const json_t *th = json_array_get(json_object_get(tl, "threads"), i);
        if (json_integer_value(json_object_get(th, "tid")) == pid)
            main_th = th;
    }
    ck_assert_ptr_nonnull(main_th);
    const char *names[4096];
    size_t n = run_names(tl, main_th, names, 4096);
    /* 10 rounds of 50 ms + 50 ms at 100 Hz: ~19 changes; a loaded machine
     * may blur a few, never most. */
    ck_assert_int_ge(alternations(names, n), 12);
    /* sleeping runs say why: clock_nanosleep */
    const json_t *runs = json_object_get(main_th, "runs");
    int with_syscall = 0;
    for (size_t i = 0; i + 2 < json_array_size(runs); i += 3) {
        json_int_t d = json_integer_value(json_array_get(runs, i + 2));
        if (d >= 0 && strstr(tu_str(json_array_get(json_object_get(tl, "details"), (size_t)d), "syscall"), "nanosleep"))
            with_syscall++;
    }
    ck_assert_int_ge(with_syscall, 5);
    json_decref(r);
}
END_TEST

START_TEST(test_timeline_survives_a_round_trip)
{
    json_t *r = tu_load_json(alternate_in_fresh_dir(4, 30, NULL, NULL));
    wl_profile p;
    char err[256];
    ck_assert_int_eq(wl_report_from_json(r, &p, err, sizeof(err)), 0);
    ck_assert_uint_gt(p.timeline.nticks, 0);
    json_t *again = wl_report_to_json(&p);
    ck_assert(json_equal(json_object_get(r, "timeline"), json_object_get(again, "timeline")));
    json_decref(again);
    wl_profile_free(&p);
    /* a malformed timeline is a one-line error, not a crash */
    json_array_set_new(json_object_get(json_array_get(json_object_get(json_object_get(r, "timeline"), "threads"), 0), "runs"), 0,
                       json_integer(999));
    ck_assert_int_eq(wl_report_from_json(r, &p, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "timeline"));
    json_decref(r);
}
END_TEST

/* ---- wlprof report ---- */

START_TEST(test_report_prints_summary_functions_and_recommendation)
{
    const char *json = alternate_in_fresh_dir(6, 50, NULL, NULL);
    const char *out = tu_file("out.txt");
    ck_assert_int_eq(sh("'%s' report '%s' >'%s' 2>&1", tu_env("WLPROF"), json, out), 0);
    char *text = slurp(out, NULL);
    ck_assert_msg(strstr(text, "split") && strstr(text, "waiting on"), "%s", text);
    ck_assert_msg(strstr(text, "functions (") && strstr(text, "compute_phase") && strstr(text, "sleep_phase"), "%s", text);
    ck_assert_msg(strstr(text, "classification:") && strstr(text, "recommendation:"), "%s", text);
    free(text);
    /* recommend stays the verdict alone */
    ck_assert_int_eq(sh("'%s' recommend '%s' >'%s' 2>&1", tu_env("WLPROF"), json, out), 0);
    text = slurp(out, NULL);
    ck_assert_ptr_null(strstr(text, "functions ("));
    ck_assert_ptr_nonnull(strstr(text, "recommendation:"));
    free(text);
}
END_TEST

START_TEST(test_report_reexports_folded_with_roots_and_wait_leaves)
{
    const char *json = alternate_in_fresh_dir(5, 40, NULL, NULL);
    const char *folded = tu_file("f.txt");
    const char *plain = tu_file("plain.txt");
    const char *html = tu_file("r.html");
    ck_assert_int_eq(sh("'%s' report -q --folded '%s' --html '%s' '%s'", tu_env("WLPROF"), folded, html, json), 0);
    ck_assert_int_eq(sh("'%s' report -q --folded '%s' --folded-roots=none '%s'", tu_env("WLPROF"), plain, json), 0);
    json_t *r = tu_load_json(json);
    int pid = (int)tu_num(r, "target.pid");
    char root[128];
    snprintf(root, sizeof(root), "html_alternate %d;html_alternate %d;", pid, pid);
    FILE *f = fopen(folded, "r");
    ck_assert_ptr_nonnull(f);
    char line[8192];
    int waits = 0, lines = 0;
    while (fgets(line, sizeof(line), f)) {
        lines++;
        ck_assert_msg(strncmp(line, root, strlen(root)) == 0, "line without its process/thread root: %s", line);
        if (strstr(line, "sleep_phase;[nanosleep];[wait:sleep] "))
            waits++;
    }
    fclose(f);
    ck_assert_int_gt(lines, 0);
    ck_assert_int_ge(waits, 1);
    uint64_t total, total_plain;
    size_t n;
    f = fopen(folded, "r");
    ck_assert_int_eq(wl_folded_parse(f, &total, &n), 0);
    fclose(f);
    f = fopen(plain, "r");
    ck_assert_int_eq(wl_folded_parse(f, &total_plain, &n), 0);
    rewind(f);
    while (fgets(line, sizeof(line), f)) {
        ck_assert_msg(strncmp(line, "_start;", 7) == 0, "old form starts at the outermost frame: %s", line);
        ck_assert_ptr_null(strstr(line, "[wait:"));
    }
    fclose(f);
    ck_assert_uint_eq(total, (uint64_t)tu_num(r, "stacks.samples"));
    ck_assert_uint_eq(total_plain, total);
    char *page = slurp(html, NULL);
    ck_assert_ptr_nonnull(strstr(page, "id=\"wlprof-data\""));
    ck_assert_ptr_nonnull(strstr(page, "compute_phase"));
    free(page);
    json_decref(r);
}
END_TEST

START_TEST(test_report_refuses_bad_outputs_and_says_what_an_old_report_lacks)
{
    const char *json = alternate_in_fresh_dir(2, 20, NULL, NULL);
    const char *old = tu_file("old.json");
    const char *out = tu_file("out.folded");
    const char *err = tu_file("err.txt");
    /* an output on the input's path, or two on one path: usage errors */
    ck_assert_int_eq(sh("'%s' report -q --html '%s' '%s' 2>/dev/null", tu_env("WLPROF"), json, json), 2);
    ck_assert_int_eq(sh("'%s' report -q --folded '%s' --speedscope '%s' '%s' 2>/dev/null", tu_env("WLPROF"), out, out,
                        json), 2);
    ck_assert_int_eq(sh("'%s' report -q --folded-roots=maybe '%s' 2>/dev/null", tu_env("WLPROF"), json), 2);
    ck_assert_int_eq(sh("'%s' report '%s' 2>/dev/null", tu_env("WLPROF"), tu_file("missing.json")),
                     1);
    json_decref(tu_load_json(json)); /* still intact */
    /* a report without the complete stack table (as /2 wrote them) */
    json_t *r = tu_load_json(json);
    json_object_del(json_object_get(r, "stacks"), "all");
    json_object_set_new(r, "schema", json_string("wlprof.report/2"));
    json_dump_file(r, old, 0);
    json_decref(r);
    ck_assert_int_eq(sh("'%s' report -q --folded '%s' '%s' 2>'%s'", tu_env("WLPROF"), out, old, err), 1);
    char *msg = slurp(err, NULL);
    ck_assert_msg(strstr(msg, "cannot be re-exported"), "%s", msg);
    ck_assert_msg(strchr(msg, '\n') == msg + strlen(msg) - 1, "one line: %s", msg);
    free(msg);
    ck_assert_int_ne(access(out, F_OK), 0); /* nothing half-written */
    ck_assert_int_eq(sh("'%s' report '%s' >/dev/null 2>&1", tu_env("WLPROF"), old), 0);
}
END_TEST

/* ---- speedscope ---- */

/* Checks one evented profile: times never go back, every C closes the
 * innermost open frame, nothing stays open. Returns the number of events. */
static size_t check_evented(const json_t *p, size_t nframes)
{
    ck_assert_str_eq(json_string_value(json_object_get(p, "type")), "evented");
    const json_t *ev = json_object_get(p, "events");
    json_int_t stack[512];
    size_t depth = 0;
    double last = json_number_value(json_object_get(p, "startValue"));
    for (size_t i = 0; i < json_array_size(ev); i++) {
        const json_t *e = json_array_get(ev, i);
        double at = json_number_value(json_object_get(e, "at"));
        json_int_t fr = json_integer_value(json_object_get(e, "frame"));
        ck_assert_msg(at >= last - 1e-9, "event %zu goes back in time (%f < %f)", i, at, last);
        ck_assert(fr >= 0 && (size_t)fr < nframes);
        last = at;
        if (strcmp(json_string_value(json_object_get(e, "type")), "O") == 0) {
            ck_assert_uint_lt(depth, 512);
            stack[depth++] = fr;
        } else {
            ck_assert_msg(depth > 0 && stack[depth - 1] == fr, "event %zu closes a frame that is not innermost", i);
            depth--;
        }
    }
    ck_assert_uint_eq(depth, 0);
    ck_assert(json_number_value(json_object_get(p, "endValue")) >= last - 1e-9);
    return json_array_size(ev);
}

static void check_speedscope(const char *path, int pid)
{
    json_t *doc = tu_load_json(path);
    const json_t *frames = json_object_get(json_object_get(doc, "shared"), "frames");
    const json_t *profiles = json_object_get(doc, "profiles");
    ck_assert_uint_ge(json_array_size(profiles), 1);
    char want[128];
    snprintf(want, sizeof(want), "html_alternate %d / html_alternate %d", pid, pid);
    int found = 0;
    for (size_t i = 0; i < json_array_size(profiles); i++) {
        const json_t *p = json_array_get(profiles, i);
        ck_assert_uint_gt(check_evented(p, json_array_size(frames)), 0); /* no empty profiles */
        const char *name = json_string_value(json_object_get(p, "name"));
        ck_assert_ptr_nonnull(strstr(name, " / "));
        if (strcmp(name, want) != 0)
            continue;
        found = 1;
        /* true time order: the compute and sleep phases alternate */
        const json_t *ev = json_object_get(p, "events");
        const char *seq[4096];
        size_t n = 0;
        for (size_t k = 0; k < json_array_size(ev) && n < 4096; k++) {
            const json_t *e = json_array_get(ev, k);
            if (strcmp(json_string_value(json_object_get(e, "type")), "O") != 0)
                continue;
            const char *fn = json_string_value(json_object_get(
                json_array_get(frames, (size_t)json_integer_value(json_object_get(e, "frame"))), "name"));
            if (strcmp(fn, "compute_phase") == 0)
                seq[n++] = "user";
            else if (strcmp(fn, "sleep_phase") == 0)
                seq[n++] = "sleep";
        }
        ck_assert_int_ge(alternations(seq, n), 8);
    }
    ck_assert_msg(found, "no profile named '%s'", want);
    json_decref(doc);
}

START_TEST(test_speedscope_is_evented_per_thread_in_time_order)
{
    const char *json = alternate_in_fresh_dir(6, 50, "--speedscope", "s.json");
    const char *speed = tu_file("s.json");
    const char *again = tu_file("s2.json");
    json_t *r = tu_load_json(json);
    int pid = (int)tu_num(r, "target.pid");
    json_decref(r);
    check_speedscope(speed, pid);
    /* re-exported from the saved report: the same */
    ck_assert_int_eq(sh("'%s' report -q --speedscope '%s' '%s'", tu_env("WLPROF"), again, json), 0);
    check_speedscope(again, pid);
}
END_TEST

START_TEST(test_speedscope_names_processes_by_what_they_exec)
{
    /* sh forks and execs the target: the process carries the target's
     * name, not the shell's */
    const char *dir = tu_tmpdir();
    const char *json = tu_file("r.json");
    const char *speed = tu_file("s.json");
    const char *out = tu_file("f.txt");
    ck_assert_int_eq(sh("TMPDIR='%s' ASAN_OPTIONS=verify_asan_link_order=0 '%s' profile -q -o '%s' --speedscope '%s' "
                        "--folded '%s' -- /bin/sh -c '%s 3 30; true'",
                        dir, tu_env("WLPROF"), json, speed, out, tu_path("tests/targets/html_alternate")),
                     0);
    json_t *doc = tu_load_json(speed);
    const json_t *profiles = json_object_get(doc, "profiles");
    int named = 0;
    for (size_t i = 0; i < json_array_size(profiles); i++) {
        const char *name = json_string_value(json_object_get(json_array_get(profiles, i), "name"));
        if (strncmp(name, "html_alternate ", 15) == 0)
            named++;
    }
    ck_assert_int_ge(named, 1);
    json_decref(doc);
    char *folded = slurp(out, NULL);
    ck_assert_msg(strstr(folded, "html_alternate ") && strstr(folded, "compute_phase"), "%s", folded);
    free(folded);
}
END_TEST

/* ---- wlprof diff ---- */

START_TEST(test_diff_shows_the_change_in_waiting)
{
    const char *dir = tu_tmpdir();
    const char *a = tu_file("a.json");
    const char *b = tu_file("b.json");
    const char *out = tu_file("diff.txt");
    const char *dj = tu_file("diff.json");
    profile_alternate(a, 6, 80, NULL);
    profile_alternate(b, 6, 5, NULL);
    ck_assert_int_eq(sh("'%s' diff -o '%s' '%s' '%s' >'%s'", tu_env("WLPROF"), dj, a, b, out), 0);
    char *text = slurp(out, NULL);
    /* 80 columns */
    for (char *line = text, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        ck_assert_ptr_nonnull(nl);
        if (strncmp(line, "  before: ", 10) == 0 || strncmp(line, "  after:  ", 10) == 0)
            continue; /* the paths, as given */
        ck_assert_msg(nl - line <= 80, "line longer than 80 columns: %.*s", (int)(nl - line), line);
    }
    char *w = strstr(text, "\n  waiting ");
    ck_assert_msg(w != NULL, "%s", text);
    double before, after, change;
    ck_assert_int_eq(sscanf(w, "\n  waiting %lf s %lf s %lf s", &before, &after, &change), 3);
    /* 6 x 80 ms asleep before, 6 x 5 ms after */
    ck_assert_msg(before > 0.25 && after < before && change < -0.2, "waiting %.3f -> %.3f (%+.3f) in: %s", before, after,
                  change, text);
    ck_assert_ptr_nonnull(strstr(text, "sleep_phase"));
    ck_assert_ptr_nonnull(strstr(text, "verdict:"));
    free(text);
    json_t *d = tu_load_json(dj);
    ck_assert_str_eq(tu_str(d, "schema"), "wlprof.diff/1");
    ck_assert(tu_num(d, "change.split.waiting.seconds") < -0.2);
    ck_assert(tu_num(d, "change.split.waiting.points") < 0); /* shares move with the machine's load */
    ck_assert(tu_num(d, "change.wait_kind_s.sleep") < -0.2);
    ck_assert_str_eq(tu_str(json_array_get(json_object_get(d, "functions"), 0), "name"), "sleep_phase");
    json_decref(d);
    /* bad usage */
    ck_assert_int_eq(sh("'%s' diff '%s' 2>/dev/null", tu_env("WLPROF"), a), 2);
    ck_assert_int_eq(sh("'%s' diff -o '%s' '%s' '%s' 2>/dev/null", tu_env("WLPROF"), a, a, b), 2);
    ck_assert_int_eq(sh("cd '%s' && '%s' diff -o ./b.json a.json '%s' 2>/dev/null", dir, tu_env("WLPROF"), b), 2);
    ck_assert_int_eq(sh("'%s' diff '%s' '%s/none.json' 2>/dev/null", tu_env("WLPROF"), a, dir), 1);
}
END_TEST

/* ---- the page ---- */

START_TEST(test_page_of_a_10s_20_thread_profile_is_under_2mb_and_self_contained)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/big.html", tu_tmpdir());
    json_t *root = synthetic_report();
    char err[512];
    wl_atomic_file af;
    ck_assert_int_eq(wl_atomic_open(&af, path, err, sizeof(err)), 0);
    ck_assert_int_eq(wl_atomic_commit_html(&af, root, err, sizeof(err)), 0);
    json_decref(root);
    size_t len;
    char *page = slurp(path, &len);
    fprintf(stderr, "html: 10 s, 100 Hz, 20 threads changing state every tick: %zu bytes\n", len);
    ck_assert_uint_lt(len, 2u * 1024 * 1024);
    ck_assert_uint_gt(len, 100 * 1024); /* the data really is in it */
    /* nothing loaded from anywhere: no src=, href=, @import or url( */
    ck_assert_ptr_null(strstr(page, " src="));
    ck_assert_ptr_null(strstr(page, " href="));
    ck_assert_ptr_null(strstr(page, "@import"));
    ck_assert_ptr_null(strstr(page, "url("));
    /* the data cannot close its own script element */
    char *data = strstr(page, "id=\"wlprof-data\">");
    ck_assert_ptr_nonnull(data);
    char *end = strstr(data, "</script>");
    ck_assert_ptr_nonnull(end);
    ck_assert_ptr_null(memchr(data + 17, '<', (size_t)(end - data - 17)));
    free(page);
}
END_TEST

START_TEST(test_page_escapes_hostile_names)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/x.html", tu_tmpdir());
    json_t *root = synthetic_report();
    json_array_set_new(json_object_get(json_object_get(root, "target"), "argv"), 0,
                       json_string("</script><script>alert(1)</script>"));
    write_page(path, root);
    char *page = slurp(path, NULL);
    ck_assert_ptr_null(strstr(page, "<script>alert(1)"));
    ck_assert_ptr_nonnull(strstr(page, "&lt;/script&gt;")); /* the title */
    free(page);
}
END_TEST

START_TEST(test_profile_html_bad_path_fails_before_running)
{
    const char *dir = tu_tmpdir();
    const char *marker = tu_file("ran");
    ck_assert_int_eq(sh("'%s' profile -q --html '%s/no/such/dir/r.html' -- touch '%s' 2>/dev/null", tu_env("WLPROF"), dir,
                        marker),
                     1);
    ck_assert_int_ne(access(marker, F_OK), 0);
}
END_TEST

static Suite *html_suite(void)
{
    Suite *s = suite_create("html");
    TCase *tc = tcase_create("html");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, test_timeline_alternates_computing_and_sleeping);
    tcase_add_test(tc, test_timeline_survives_a_round_trip);
    tcase_add_test(tc, test_report_prints_summary_functions_and_recommendation);
    tcase_add_test(tc, test_report_reexports_folded_with_roots_and_wait_leaves);
    tcase_add_test(tc, test_report_refuses_bad_outputs_and_says_what_an_old_report_lacks);
    tcase_add_test(tc, test_speedscope_is_evented_per_thread_in_time_order);
    tcase_add_test(tc, test_speedscope_names_processes_by_what_they_exec);
    tcase_add_test(tc, test_diff_shows_the_change_in_waiting);
    tcase_add_test(tc, test_page_of_a_10s_20_thread_profile_is_under_2mb_and_self_contained);
    tcase_add_test(tc, test_page_escapes_hostile_names);
    tcase_add_test(tc, test_profile_html_bad_path_fails_before_running);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(html_suite());
}
