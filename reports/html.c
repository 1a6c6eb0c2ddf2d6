/*
 * html.c -- the report as one self-contained HTML page: the report JSON
 * embedded as data, and the page's CSS and JS (reports/html/page.css,
 * page.js, embedded at build time by html/embed.cmake) drawing the
 * headline, timeline, flame graph and tables from it in the browser.
 *
 *   <!doctype html> ... <style>page.css</style>
 *   <script type="application/json" id="wlprof-data">REPORT</script>
 *   <script>page.js</script>
 *
 * No network: nothing is loaded from anywhere, so the file opens from disk
 * and can be mailed. Every '<' inside the JSON is written as \u003c, so no
 * string in the report (a command line, a function name) can close the
 * script element. The page's copy of the report leaves out the stack list
 * duplicated in "top" when the complete one ("all") is there; a 10 s,
 * 100 Hz, 20-thread profile stays well under 2 MB (tests/html).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wlprof/report.h"

extern const char wl__page_css[];
extern const size_t wl__page_css_len;
extern const char wl__page_js[];
extern const size_t wl__page_js_len;

/* Writes s with HTML's five special characters escaped. */
static void put_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* The page's copy of root: a shallow copy of the top level and of
 * "stacks", without what the page does not use. New reference or NULL. */
static json_t *page_data(const json_t *root)
{
    json_t *copy = json_copy((json_t *)root);
    if (!copy)
        return NULL;
    json_t *stacks = json_object_get(copy, "stacks");
    if (json_is_object(stacks)) {
        json_t *sc = json_copy(stacks);
        if (!sc) {
            json_decref(copy);
            return NULL;
        }
        if (json_object_get(sc, "all"))
            json_object_del(sc, "top");
        json_object_set_new(copy, "stacks", sc);
    }
    return copy;
}

/* The title: "wlprof: ARGV..." (first words only). */
static void put_title(FILE *f, const json_t *root)
{
    const json_t *argv = json_object_get(json_object_get(root, "target"), "argv");
    fputs("wlprof:", f);
    for (size_t i = 0; i < json_array_size(argv) && i < 6; i++) {
        const char *a = json_string_value(json_array_get(argv, i));
        fputc(' ', f);
        put_escaped(f, a ? a : "");
    }
}

int wl_report_write_html(FILE *f, const json_t *root)
{
    json_t *data = page_data(root);
    if (!data)
        return -ENOMEM;
    char *text = json_dumps(data, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(data);
    if (!text)
        return -ENOMEM;
    fputs("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
          "<meta name=\"generator\" content=\"wlprof " WL_VERSION "\">\n<title>",
          f);
    put_title(f, root);
    fputs("</title>\n<style>\n", f);
    fwrite(wl__page_css, 1, wl__page_css_len, f);
    fputs("</style>\n</head>\n<body data-status=\"loading\">\n"
          "<noscript>This report draws itself with JavaScript; the data is in the "
          "wlprof-data element of this file.</noscript>\n"
          "<div id=\"app\"></div>\n<script type=\"application/json\" id=\"wlprof-data\">",
          f);
    for (const char *p = text; *p; p++) {
        if (*p == '<')
            fputs("\\u003c", f);
        else
            fputc(*p, f);
    }
    free(text);
    fputs("</script>\n<script>\n", f);
    fwrite(wl__page_js, 1, wl__page_js_len, f);
    fputs("</script>\n</body>\n</html>\n", f);
    if (ferror(f) || fflush(f) != 0)
        return -EIO;
    return 0;
}

int wl_atomic_commit_html(wl_atomic_file *af, const json_t *root, char *err, size_t errlen)
{
    int rc = wl_report_write_html(af->f, root);
    if (rc < 0) {
        snprintf(err, errlen, "cannot write %s: %s", af->path, strerror(-rc));
        wl_atomic_abort(af);
        return rc;
    }
    return wl_atomic_commit(af, err, errlen);
}
