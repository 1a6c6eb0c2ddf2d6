/*
 * inputs.c -- what a run is given: JSONL job inputs, a command list, a task
 * library. Every error names the file (and line) in one sentence.
 *
 * Files are read line by line with getline, so an input of any size works
 * and line numbers are exact. A job keeps its line number for the report.
 */
#include "internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

FILE *wl__run_open_input(const char *path, char *err, size_t errlen, int *rc)
{
    if (strcmp(path, "-") == 0)
        return stdin;
    FILE *f = fopen(path, "re");
    if (!f) {
        *rc = -errno;
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
    }
    return f;
}

void wl__run_close_input(FILE *f)
{
    if (f && f != stdin)
        fclose(f);
}

static const char *display_name(const char *path)
{
    return strcmp(path, "-") == 0 ? "<stdin>" : path;
}

static int blank(const char *s)
{
    return s[strspn(s, " \t\r\n")] == '\0';
}

static int grow(void **arr, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 64;
    void *p = realloc(*arr, ncap * size);
    if (!p)
        return -ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

/* Makes room for entry n of a loader's two parallel arrays: the values
 * (val_size bytes each) and their line numbers. 0 or -ENOMEM. */
static int grow_entry(void **vals, size_t *cap_vals, size_t val_size, int **lines,
                      size_t *cap_lines, size_t n)
{
    if (grow(vals, cap_vals, n + 1, val_size) ||
        grow((void **)lines, cap_lines, n + 1, sizeof(**lines)))
        return -ENOMEM;
    return 0;
}

/* The loaders' one out-of-memory sentence. Returns -ENOMEM. */
static int out_of_memory(const char *path, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s: out of memory", display_name(path));
    return -ENOMEM;
}

int wl__run_nul_error(const char *path, int lineno, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s:%d: a NUL byte in the line (not a text file?)",
             display_name(path), lineno);
    return -EINVAL;
}

/* The loaders' one read-error sentence, after getline stopped on an error.
 * Returns -EIO. */
static int read_error(const char *path, char *err, size_t errlen)
{
    snprintf(err, errlen, "cannot read %s: %s", display_name(path), strerror(errno));
    return -EIO;
}

int wl_inputs_load(const char *path, bool skip_bad, wl_inputs *out, char *err, size_t errlen)
{
    int rc = 0;
    char *line = NULL;
    size_t linecap = 0;
    size_t cap_items = 0;
    size_t cap_lines = 0;
    int lineno = 0;

    memset(out, 0, sizeof(*out));
    FILE *f = wl__run_open_input(path, err, errlen, &rc);
    if (!f)
        return rc;
    ssize_t len;
    while ((len = getline(&line, &linecap, f)) >= 0) {
        lineno++;
        if (memchr(line, '\0', (size_t)len)) {
            rc = wl__run_nul_error(path, lineno, err, errlen);
            goto fail;
        }
        if (blank(line))
            continue;
        json_error_t je;
        json_t *v = json_loads(line, JSON_DECODE_ANY, &je);
        if (!v) {
            if (skip_bad) {
                out->skipped++;
                continue;
            }
            snprintf(err, errlen, "%s:%d: malformed JSON: %s (use --skip-bad to skip such lines)",
                     display_name(path), lineno, je.text);
            rc = -EINVAL;
            goto fail;
        }
        char *compact = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(v);
        if (!compact || grow_entry((void **)&out->items, &cap_items, sizeof(*out->items),
                                   &out->lines, &cap_lines, out->n)) {
            free(compact);
            rc = out_of_memory(path, err, errlen);
            goto fail;
        }
        wl_bytes *b = &out->items[out->n];
        memset(b, 0, sizeof(*b));
        rc = wl_bytes_append(b, compact, strlen(compact));
        free(compact);
        if (rc < 0) {
            rc = out_of_memory(path, err, errlen);
            goto fail;
        }
        out->lines[out->n++] = lineno;
    }
    if (ferror(f)) {
        rc = read_error(path, err, errlen);
        goto fail;
    }
    if (out->n == 0) {
        rc = -ENODATA;
        if (out->skipped)
            snprintf(err, errlen, "%s: no valid input line (%zu malformed skipped)",
                     display_name(path), out->skipped);
        else
            snprintf(err, errlen, "%s: no inputs (the file is empty)", display_name(path));
        goto fail;
    }
    free(line);
    wl__run_close_input(f);
    return 0;

fail:
    free(line);
    wl__run_close_input(f);
    wl_inputs_free(out);
    return rc;
}

void wl_inputs_free(wl_inputs *in)
{
    for (size_t i = 0; i < in->n; i++)
        wl_bytes_free(&in->items[i]);
    free(in->items);
    free(in->lines);
    memset(in, 0, sizeof(*in));
}

int wl_commands_load(const char *path, char ***cmds, int **lines, size_t *n, char *err,
                     size_t errlen)
{
    int rc = 0;
    char *line = NULL;
    size_t linecap = 0;
    size_t cap_c = 0;
    size_t cap_l = 0;
    int lineno = 0;

    *cmds = NULL;
    *lines = NULL;
    *n = 0;
    FILE *f = wl__run_open_input(path, err, errlen, &rc);
    if (!f)
        return rc;
    ssize_t len;
    while ((len = getline(&line, &linecap, f)) >= 0) {
        lineno++;
        if (memchr(line, '\0', (size_t)len)) {
            rc = wl__run_nul_error(path, lineno, err, errlen);
            goto fail;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        const char *s = line + strspn(line, " \t");
        if (*s == '\0' || *s == '#')
            continue;
        char *copy = strdup(s);
        if (!copy || grow_entry((void **)cmds, &cap_c, sizeof(**cmds), lines, &cap_l, *n)) {
            free(copy);
            rc = out_of_memory(path, err, errlen);
            goto fail;
        }
        (*cmds)[*n] = copy;
        (*lines)[(*n)++] = lineno;
    }
    if (ferror(f)) {
        rc = read_error(path, err, errlen);
        goto fail;
    }
    if (*n == 0) {
        rc = -ENODATA;
        snprintf(err, errlen, "%s: no commands (the list is empty)", display_name(path));
        goto fail;
    }
    free(line);
    wl__run_close_input(f);
    return 0;

fail:
    free(line);
    wl__run_close_input(f);
    for (size_t i = 0; i < *n; i++)
        free((*cmds)[i]);
    free(*cmds);
    free(*lines);
    *cmds = NULL;
    *lines = NULL;
    *n = 0;
    return rc;
}

int wl_task_lib_open(const char *path, const char *name, wl_task_def *out, void **handle,
                     char *err, size_t errlen)
{
    char sym[256];
    memset(out, 0, sizeof(*out));
    *handle = NULL;
    if (access(path, F_OK) < 0) {
        snprintf(err, errlen, "cannot load %s: %s", path, strerror(errno));
        return -ENOENT;
    }
    /* A bare file name would make dlopen search the library path. */
    char resolved[4096];
    if (!strchr(path, '/'))
        snprintf(resolved, sizeof(resolved), "./%s", path);
    else
        snprintf(resolved, sizeof(resolved), "%s", path);
    void *h = dlopen(resolved, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        snprintf(err, errlen, "cannot load %s: %s", path, why ? why : "not a shared library");
        return -ENOEXEC;
    }
    snprintf(sym, sizeof(sym), "%s_async", name);
    *(void **)&out->blocking = dlsym(h, name);
    *(void **)&out->async = dlsym(h, sym);
    if (!out->blocking && !out->async) {
        snprintf(err, errlen, "%s has no task '%s' (neither symbol %s nor %s is exported)", path,
                 name, name, sym);
        dlclose(h);
        memset(out, 0, sizeof(*out));
        return -ENOENT;
    }
    out->name = name;
    *handle = h;
    return 0;
}
