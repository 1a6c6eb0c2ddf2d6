/*
 * stacks_table.c -- the functions table of `wlprof profile`, sized to the
 * terminal and sorted so the important lines come first.
 *
 * By default functions are sorted by self time (CPU + waiting spent in the
 * function itself: where the time went), with the inclusive total beside
 * it; --sort total gives the inclusive order. Runtime frames (_start,
 * __libc_start_main, start_thread, clone3, an interpreter's eval loop: see
 * wl_is_runtime_frame) are left out of the table: every stack passes through
 * them, so by total they would fill its top; their count is printed below.
 * Long names are cut to the width with a '~' so a line never wraps.
 */
#include <stdlib.h>
#include <string.h>

#include "wlprof/profile.h"
#include "wlprof/stacks.h"

static double self_s(const wl_func_stat *f)
{
    return f->self_user_s + f->self_sys_s + f->self_wait_s;
}

static double total_s(const wl_func_stat *f)
{
    return f->total_user_s + f->total_sys_s + f->total_wait_s;
}

static int by_self(const void *a, const void *b)
{
    const wl_func_stat *x = *(const wl_func_stat *const *)a;
    const wl_func_stat *y = *(const wl_func_stat *const *)b;
    double dx = self_s(x), dy = self_s(y);
    if (dx != dy)
        return dx < dy ? 1 : -1;
    dx = total_s(x);
    dy = total_s(y);
    return (dx < dy) - (dx > dy);
}

static int by_total(const void *a, const void *b)
{
    const wl_func_stat *x = *(const wl_func_stat *const *)a;
    const wl_func_stat *y = *(const wl_func_stat *const *)b;
    double dx = total_s(x), dy = total_s(y);
    if (dx != dy)
        return dx < dy ? 1 : -1;
    dx = self_s(x);
    dy = self_s(y);
    return (dx < dy) - (dx > dy);
}

/* Copies s into a field of width w, cutting it with '~' when longer. */
static void fit(char *dst, size_t cap, const char *s, int w)
{
    size_t n = strlen(s);
    if (w < 2)
        w = 2;
    if ((int)n <= w || (size_t)w + 1 > cap) {
        snprintf(dst, cap, "%.*s", (int)(cap - 1), s);
        return;
    }
    snprintf(dst, cap, "%.*s~", w - 1, s);
}

/* "/long/path/to/file.c:42" -> "file.c:42" when the whole does not fit. */
static const char *short_where(const char *where, int w)
{
    if ((int)strlen(where) <= w)
        return where;
    const char *slash = strrchr(where, '/');
    return slash ? slash + 1 : where;
}

static const char *kind_of(const wl_func_stat *f)
{
    double cpu = f->self_user_s + f->self_sys_s;
    if (self_s(f) <= 0)
        return "";
    return f->self_wait_s > cpu ? "wait" : "cpu";
}

void wl_stacks_print_functions(const wl_stacks *s, FILE *f, size_t limit, int sort_total,
                               int width)
{
    double all = s->user_s + s->sys_s + s->wait_s;
    if (width < 60)
        width = 60;
    fprintf(f, "  functions by %s (%.2f s CPU in %llu samples, %.2f s in %llu waits):\n",
            sort_total ? "total time" : "self time", s->user_s + s->sys_s,
            (unsigned long long)s->cpu_samples, s->wait_s, (unsigned long long)s->waits);
    if (s->dropped)
        fprintf(f, "    (%llu samples dropped: agent buffers full)\n",
                (unsigned long long)s->dropped);
    if (s->nfuncs == 0) {
        fprintf(f, "    no stacks recorded\n");
        return;
    }
    const wl_func_stat **v = malloc(s->nfuncs * sizeof(*v));
    if (!v)
        return;
    size_t n = 0, hidden = 0;
    for (size_t i = 0; i < s->nfuncs; i++) {
        const wl_func_stat *fs = &s->funcs[i];
        const char *file = fs->file ? fs->file : "";
        size_t len = strlen(file);
        int python = len > 3 && strcmp(file + len - 3, ".py") == 0;
        if (!python && wl_is_runtime_frame(fs->name, fs->module)) {
            hidden++;
            continue;
        }
        if (!sort_total && self_s(fs) <= 0)
            continue;
        v[n++] = fs;
    }
    qsort(v, n, sizeof(*v), sort_total ? by_total : by_self);
    /* "    99.99 100.0%   99.99  wait " (32 columns: self seconds and share,
     * total seconds), then the name and where it is, so the line ends one
     * short of the width */
    const int fixed = 32;
    int rest = width - fixed - 1;
    int name_w = rest * 3 / 5;
    int where_w = rest - name_w - 1;
    fprintf(f, "    %13s %7s  %-4s %-*s %s\n", "self s     %", "total s", "", name_w, "function",
            "where");
    size_t shown = limit && limit < n ? limit : n;
    for (size_t i = 0; i < shown; i++) {
        const wl_func_stat *fs = v[i];
        char where[512], name[256], place[256];
        if (fs->file)
            snprintf(where, sizeof(where), "%s:%d", fs->file, fs->line);
        else
            snprintf(where, sizeof(where), "%s", fs->module);
        fit(name, sizeof(name), fs->name, name_w);
        fit(place, sizeof(place), short_where(where, where_w), where_w);
        fprintf(f, "    %6.2f %5.1f%%  %6.2f  %-4s %-*s %s\n", self_s(fs),
                all > 0 ? 100 * self_s(fs) / all : 0.0, total_s(fs), kind_of(fs), name_w, name,
                place);
    }
    if (n > shown)
        fprintf(f, "    ... %zu more in the JSON report\n", n - shown);
    if (hidden)
        fprintf(f, "    (%zu runtime frames such as _start and start_thread not listed)\n",
                hidden);
    free(v);
}
