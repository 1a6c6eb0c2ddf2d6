/*
 * test_html_browser.c -- the HTML report as a browser draws it: headless
 * Chromium, offline (no network, a fresh profile directory), renders the
 * page of `wlprof profile --html` on the alternating target, and the DOM it
 * dumps must show: no script error (the page records window.onerror into
 * #errors and body[data-status]), a timeline lane for the target's thread
 * whose drawn rectangles alternate computing and sleeping, flame-graph
 * frames named compute_phase (computing colours) and sleep_phase (waiting
 * colours), and the verdict. The synthetic 10 s, 20-thread page must render
 * too. Exits 77 (skipped) when /usr/bin/chromium is not installed.
 */
#include <sys/stat.h>
#include <unistd.h>

#include "html_fixture.h"

#define CHROMIUM "/usr/bin/chromium"

/* Renders page in headless Chromium and returns the DOM it ended with
 * (caller frees). */
static char *render_url(const char *page, const char *fragment)
{
    const char *dir = tu_tmpdir();
    const char *dom = tu_file("dom.html");
    int rc = sh("timeout 170 " CHROMIUM " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
                "--disable-background-networking --disable-component-update --disable-sync "
                "--disable-dev-shm-usage --user-data-dir='%s/profile' --window-size=1400,2000 "
                "--virtual-time-budget=10000 --dump-dom 'file://%s%s' >'%s' 2>'%s/chromium.log'",
                dir, page, fragment, dom, dir);
    ck_assert_msg(rc == 0, "chromium exited %d (see %s/chromium.log)", rc, dir);
    return slurp(dom, NULL);
}

static char *render(const char *page)
{
    return render_url(page, "");
}

/* The opening tag containing position p (from the '<' before it). */
static char *tag_at(const char *doc, const char *p, char *buf, size_t cap)
{
    const char *a = p;
    while (a > doc && *a != '<')
        a--;
    const char *b = strchr(p, '>');
    size_t n = b ? (size_t)(b - a + 1) : strlen(a);
    if (n >= cap)
        n = cap - 1;
    memcpy(buf, a, n);
    buf[n] = '\0';
    return buf;
}

/* Value of attribute name in tag (static buffer). */
static const char *attr(const char *tag, const char *name)
{
    static char val[65536];
    char key[64];
    snprintf(key, sizeof(key), " %s=\"", name);
    const char *p = strstr(tag, key);
    if (!p)
        return NULL;
    p += strlen(key);
    const char *q = strchr(p, '"');
    size_t n = q ? (size_t)(q - p) : strlen(p);
    if (n >= sizeof(val))
        n = sizeof(val) - 1;
    memcpy(val, p, n);
    val[n] = '\0';
    return val;
}

static void assert_no_errors(const char *dom)
{
    char tag[65536];
    const char *body = strstr(dom, "<body");
    ck_assert_ptr_nonnull(body);
    tag_at(dom, body + 1, tag, sizeof(tag));
    const char *status = attr(tag, "data-status");
    const char *errs = strstr(dom, "<pre id=\"errors\">");
    ck_assert_msg(status && strcmp(status, "ok") == 0, "page status %s; errors: %.500s", status ? status : "(none)",
                  errs ? errs : "(no #errors)");
    ck_assert_ptr_nonnull(strstr(dom, "<pre id=\"errors\"></pre>"));
}

START_TEST(test_chromium_draws_timeline_flame_graph_and_verdict)
{
    const char *json = alternate_in_fresh_dir(10, 50, "--html", "r.html");
    const char *page = tu_file("r.html");
    json_t *r = tu_load_json(json);
    int pid = (int)tu_num(r, "target.pid");
    char *dom = render(page);
    assert_no_errors(dom);
    char tag[65536];

    /* timeline: the target's lane, its rectangles alternating */
    char key[64];
    snprintf(key, sizeof(key), "data-tid=\"%d\"", pid);
    const char *lane = strstr(dom, key);
    ck_assert_msg(lane != NULL, "no timeline lane for thread %d", pid);
    tag_at(dom, lane, tag, sizeof(tag));
    ck_assert_ptr_nonnull(strstr(tag, "class=\"lane\""));
    const char *seq = attr(tag, "data-sequence");
    ck_assert_ptr_nonnull(seq);
    const char *names[4096];
    size_t n = 0;
    char copy[65536];
    snprintf(copy, sizeof(copy), "%s", seq);
    for (char *save, *t = strtok_r(copy, " ", &save); t && n < 4096; t = strtok_r(NULL, " ", &save))
        names[n++] = t;
    ck_assert_msg(alternations(names, n) >= 12, "lane sequence does not alternate: %s", seq);
    /* the sequence is what was drawn: rects of both colours are in the lane */
    const char *lane_end = strstr(lane, "</g>");
    ck_assert_ptr_nonnull(lane_end);
    const char *u = strstr(lane, "class=\"st-user\""), *s = strstr(lane, "class=\"st-sleep\"");
    ck_assert(s && s < lane_end);
    ck_assert(u ? u < lane_end : strstr(lane, "class=\"st-runqueue\"") < lane_end);

    /* flame graph: both functions drawn, in their colour families */
    const char *fc = strstr(dom, "data-name=\"compute_phase\"");
    const char *fs = strstr(dom, "data-name=\"sleep_phase\"");
    ck_assert_msg(fc && fs, "flame graph lacks compute_phase or sleep_phase");
    ck_assert_ptr_nonnull(strstr(tag_at(dom, fc, tag, sizeof(tag)), "class=\"frame cpu"));
    ck_assert_ptr_nonnull(strstr(tag_at(dom, fs, tag, sizeof(tag)), "class=\"frame wait"));
    ck_assert_ptr_nonnull(strstr(dom, ">compute_phase</text>"));
    ck_assert_ptr_nonnull(strstr(dom, ">sleep_phase</text>"));

    /* the verdict, as the report has it */
    const char *rec = strstr(dom, "id=\"recommendation\"");
    ck_assert_ptr_nonnull(rec);
    tag_at(dom, rec, tag, sizeof(tag));
    ck_assert_str_eq(attr(tag, "data-executor"), tu_str(r, "recommendation.executor"));
    ck_assert_ptr_nonnull(strstr(dom, "id=\"verdict\""));
    ck_assert_ptr_nonnull(strstr(dom, "id=\"functions-table\""));
    free(dom);
    json_decref(r);
}
END_TEST

/* The views a user clicks to, set from the address (#mode, #search,
 * #focus, #t0/#t1) so the same code paths run here. */
START_TEST(test_chromium_flame_toggles_search_zoom_and_timeline_zoom)
{
    char tag[65536];
    const char *json = alternate_in_fresh_dir(6, 50, "--html", "r.html");
    const char *page = tu_file("r.html");

    /* computing only: the sleeping function is gone; search marks a match */
    char *dom = render_url(page, "#mode=cpu&search=compute_ph");
    assert_no_errors(dom);
    const char *fc = strstr(dom, "data-name=\"compute_phase\"");
    ck_assert_ptr_nonnull(fc);
    /* A CPU sample whose timer expired on a tick just as the thread went
     * to sleep is charged to sleep_phase (seen once under load): then it is
     * drawn, but only with that sliver of CPU, never with its waiting. */
    const char *fsl = strstr(dom, "data-name=\"sleep_phase\"");
    if (fsl) {
        double cpu_c = atof(attr(tag_at(dom, fc, tag, sizeof(tag)), "data-cpu-s"));
        double cpu_s = atof(attr(tag_at(dom, fsl, tag, sizeof(tag)), "data-cpu-s"));
        ck_assert_msg(cpu_s > 0 && cpu_s < 0.1 * cpu_c, "cpu mode draws sleep_phase with %.3f s CPU (compute %.3f)",
                      cpu_s, cpu_c);
    }
    ck_assert_ptr_nonnull(strstr(tag_at(dom, fc, tag, sizeof(tag)), " match"));
    ck_assert_ptr_nonnull(strstr(dom, ">matched "));
    free(dom);

    /* waiting only: the computing function is gone */
    dom = render_url(page, "#mode=wait");
    assert_no_errors(dom);
    ck_assert_ptr_null(strstr(dom, "data-name=\"compute_phase\""));
    ck_assert_ptr_nonnull(strstr(dom, "data-name=\"sleep_phase\""));
    free(dom);

    /* the timeline's tooltip, mid-way through a computing and a sleeping
     * stretch of the target's thread: state, syscall, wait channel and
     * the function the stack agent saw there */
    json_t *r = tu_load_json(json);
    const json_t *tl = json_object_get(r, "timeline");
    int pid = (int)tu_num(r, "target.pid");
    const json_t *th = NULL;
    for (size_t i = 0; i < json_array_size(json_object_get(tl, "threads")); i++)
        if (json_integer_value(json_object_get(json_array_get(json_object_get(tl, "threads"), i), "tid")) == pid)
            th = json_array_get(json_object_get(tl, "threads"), i);
    ck_assert_ptr_nonnull(th);
    const json_t *runs = json_object_get(th, "runs"), *ticks = json_object_get(tl, "tick_us");
    double t_user = -1, t_sleep = -1;
    json_int_t at = json_integer_value(json_object_get(th, "first_tick"));
    for (size_t i = 0; i + 2 < json_array_size(runs); i += 3) {
        json_int_t st = json_integer_value(json_array_get(runs, i)), n = json_integer_value(json_array_get(runs, i + 1));
        const char *name = json_string_value(json_array_get(json_object_get(tl, "states"), (size_t)st));
        double a = at > 0 ? json_integer_value(json_array_get(ticks, (size_t)at - 1)) * 1e-6 : 0;
        double b = json_integer_value(json_array_get(ticks, (size_t)(at + n - 1))) * 1e-6;
        if (n >= 3 && t_user < 0 && strcmp(name, "user") == 0 && i > 0)
            t_user = (a + b) / 2;
        if (n >= 3 && t_sleep < 0 && strcmp(name, "sleep") == 0)
            t_sleep = (a + b) / 2;
        at += n;
    }
    json_decref(r);
    ck_assert(t_sleep > 0);
    char frag[128];
    snprintf(frag, sizeof(frag), "#probe=%d@%.4f", pid, t_sleep);
    dom = render_url(page, frag);
    assert_no_errors(dom);
    const char *svgp = strstr(dom, "id=\"timeline-svg\"");
    ck_assert_ptr_nonnull(svgp);
    const char *probe = attr(tag_at(dom, svgp, tag, sizeof(tag)), "data-probe");
    ck_assert_msg(probe && strstr(probe, "waiting: sleep") && strstr(probe, "clock_nanosleep") &&
                      strstr(probe, "hrtimer_nanosleep") && strstr(probe, "sleep_phase"),
                  "sleeping tooltip: %s", probe ? probe : "(none)");
    free(dom);
    if (t_user > 0) { /* a loaded machine may show no long on-CPU stretch */
        snprintf(frag, sizeof(frag), "#probe=%d@%.4f", pid, t_user);
        dom = render_url(page, frag);
        svgp = strstr(dom, "id=\"timeline-svg\"");
        probe = attr(tag_at(dom, svgp, tag, sizeof(tag)), "data-probe");
        ck_assert_msg(probe && strstr(probe, "on CPU (user)") && strstr(probe, "compute_phase"), "computing tooltip: %s",
                      probe ? probe : "(none)");
        free(dom);
    }

    /* zoomed on sleep_phase: it spans the graph; compute_phase is not drawn;
     * the timeline shows the window asked for */
    dom = render_url(page, "#focus=sleep_phase&t0=0.1&t1=0.3");
    assert_no_errors(dom);
    ck_assert_ptr_null(strstr(dom, "data-name=\"compute_phase\""));
    const char *fs = strstr(dom, "data-name=\"sleep_phase\"");
    ck_assert_ptr_nonnull(fs);
    ck_assert_ptr_nonnull(strstr(tag_at(dom, fs, tag, sizeof(tag)), "translate(0.00,"));
    const char *tlp = strstr(dom, "id=\"timeline-svg\"");
    ck_assert_ptr_nonnull(tlp);
    ck_assert_str_eq(attr(tag_at(dom, tlp, tag, sizeof(tag)), "data-view"), "0.100000 0.300000");
    free(dom);
}
END_TEST

/* A report/2 from the classifier's corpus (source tree). */
static const char *corpus_report(void)
{
    static char path[4096];
    snprintf(path, sizeof(path), "%s/tests/classifier/data/corpus_download_process.json", tu_env("WL_SOURCE_DIR"));
    return path;
}

/* Reports without a timeline (report/2) or without stacks (--no-stacks)
 * still make a page that draws without errors and says what is missing. */
START_TEST(test_chromium_renders_old_and_stackless_reports)
{
    const char *dir = tu_tmpdir();
    char page[4096];
    snprintf(page, sizeof(page), "%s/old.html", dir);
    ck_assert_int_eq(sh("'%s' report -q --html '%s' '%s'", tu_env("WLPROF"), page,
                        corpus_report()),
                     0);
    char *dom = render(page);
    assert_no_errors(dom);
    ck_assert_ptr_nonnull(strstr(dom, "data-lanes=\"0\""));
    ck_assert_ptr_nonnull(strstr(dom, "has no timeline"));
    ck_assert_ptr_nonnull(strstr(dom, "class=\"frame ")); /* its top stacks */
    free(dom);
    const char *json = tu_file("r.json");
    snprintf(page, sizeof(page), "%s/nostacks.html", dir);
    ck_assert_int_eq(sh("'%s' profile -q --no-stacks -o '%s' --html '%s' -- sleep 0.2", tu_env("WLPROF"), json, page), 0);
    dom = render(page);
    assert_no_errors(dom);
    ck_assert_ptr_nonnull(strstr(dom, "No stacks were recorded"));
    ck_assert_ptr_nonnull(strstr(dom, "class=\"lane\""));
    free(dom);
}
END_TEST

START_TEST(test_chromium_renders_the_10s_20_thread_page)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/big.html", tu_tmpdir());
    write_page(path, synthetic_report());
    char *dom = render(path);
    assert_no_errors(dom);
    ck_assert_ptr_nonnull(strstr(dom, "data-lanes=\"20\""));
    ck_assert_ptr_nonnull(strstr(dom, "data-name=\"synthetic_namespace::function_number_"));
    free(dom);
}
END_TEST

int main(void)
{
    if (access(CHROMIUM, X_OK) != 0) {
        fprintf(stderr, "skipped: %s is not installed (scripts/install-deps installs it)\n", CHROMIUM);
        return 77;
    }
    Suite *s = suite_create("html_browser");
    TCase *tc = tcase_create("chromium");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_chromium_draws_timeline_flame_graph_and_verdict);
    tcase_add_test(tc, test_chromium_flame_toggles_search_zoom_and_timeline_zoom);
    tcase_add_test(tc, test_chromium_renders_old_and_stackless_reports);
    tcase_add_test(tc, test_chromium_renders_the_10s_20_thread_page);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
