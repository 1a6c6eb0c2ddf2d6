/*
 * parallel.c -- the command-line conventions of GNU parallel: argument
 * files, {} / {#} templates, and the joblog read back by --resume.
 *
 * Quoting follows parallel: an argument is inserted as one shell word, in
 * single quotes when it holds anything but [A-Za-z0-9_./:=@%+,-], each
 * embedded ' written as '\''. So `echo {} ::: 'a b' '$HOME'` runs
 * echo 'a b' and echo '$HOME'.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *shown(const char *path)
{
    return strcmp(path, "-") == 0 ? "<stdin>" : path;
}

int wl_args_load(const char *path, char ***args, int **lines, size_t *n, char *err,
                 size_t errlen)
{
    int rc = 0;
    char *line = NULL;
    size_t linecap = 0;
    size_t cap = 0;
    int lineno = 0;
    ssize_t len;

    *args = NULL;
    *lines = NULL;
    *n = 0;
    FILE *f = wl__run_open_input(path, err, errlen, &rc);
    if (!f)
        return rc;
    while ((len = getline(&line, &linecap, f)) >= 0) {
        lineno++;
        if (memchr(line, '\0', (size_t)len)) {
            rc = wl__run_nul_error(path, lineno, err, errlen);
            goto fail;
        }
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **a = realloc(*args, ncap * sizeof(*a));
            int *l = a ? realloc(*lines, ncap * sizeof(*l)) : NULL;
            if (a)
                *args = a;
            if (l)
                *lines = l;
            if (!a || !l)
                goto nomem;
            cap = ncap;
        }
        (*args)[*n] = strdup(line);
        if (!(*args)[*n])
            goto nomem;
        (*lines)[(*n)++] = lineno;
    }
    if (ferror(f)) {
        rc = -EIO;
        snprintf(err, errlen, "cannot read %s: %s", shown(path), strerror(errno));
        goto fail;
    }
    if (*n == 0) {
        rc = -ENODATA;
        snprintf(err, errlen, "%s: no arguments (the file is empty)", shown(path));
        goto fail;
    }
    free(line);
    wl__run_close_input(f);
    return 0;

nomem:
    rc = -ENOMEM;
    snprintf(err, errlen, "%s: out of memory", shown(path));
fail:
    free(line);
    wl__run_close_input(f);
    for (size_t i = 0; i < *n; i++)
        free((*args)[i]);
    free(*args);
    free(*lines);
    *args = NULL;
    *lines = NULL;
    *n = 0;
    return rc;
}

static int plain_word(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./:=@%+,-",
                    *s))
            return 0;
    return 1;
}

static int append(char **buf, size_t *len, size_t *cap, const char *p, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 64;
        while (c < *len + n + 1)
            c *= 2;
        char *b = realloc(*buf, c);
        if (!b)
            return -ENOMEM;
        *buf = b;
        *cap = c;
    }
    memcpy(*buf + *len, p, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

static int append_quoted(char **buf, size_t *len, size_t *cap, const char *arg)
{
    if (plain_word(arg))
        return append(buf, len, cap, arg, strlen(arg));
    int rc = append(buf, len, cap, "'", 1);
    for (const char *p = arg; rc == 0 && *p; p++)
        rc = *p == '\'' ? append(buf, len, cap, "'\\''", 4) : append(buf, len, cap, p, 1);
    return rc ? rc : append(buf, len, cap, "'", 1);
}

static char *expand_one(const char *tmpl, const char *arg, size_t seq)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = append(&buf, &len, &cap, "", 0);
    int has_repl = strstr(tmpl, "{}") || strstr(tmpl, "{#}");
    for (const char *p = tmpl; rc == 0 && *p;) {
        if (strncmp(p, "{}", 2) == 0) {
            rc = append_quoted(&buf, &len, &cap, arg);
            p += 2;
        } else if (strncmp(p, "{#}", 3) == 0) {
            char num[32];
            int k = snprintf(num, sizeof(num), "%zu", seq);
            rc = append(&buf, &len, &cap, num, (size_t)k);
            p += 3;
        } else {
            rc = append(&buf, &len, &cap, p, 1);
            p++;
        }
    }
    if (rc == 0 && !has_repl) {
        if (*tmpl) {
            rc = append(&buf, &len, &cap, " ", 1);
            if (rc == 0)
                rc = append_quoted(&buf, &len, &cap, arg);
        } else {
            rc = append(&buf, &len, &cap, arg, strlen(arg)); /* the argument is the command */
        }
    }
    if (rc) {
        free(buf);
        return NULL;
    }
    return buf;
}

int wl_commands_expand(const char *tmpl, char *const *args, size_t n, char ***cmds, char *err,
                       size_t errlen)
{
    *cmds = calloc(n ? n : 1, sizeof(**cmds));
    if (!*cmds)
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        (*cmds)[i] = expand_one(tmpl ? tmpl : "", args[i], i + 1);
        if (!(*cmds)[i]) {
            for (size_t k = 0; k < i; k++)
                free((*cmds)[k]);
            free(*cmds);
            goto nomem;
        }
    }
    return 0;
nomem:
    *cmds = NULL;
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
}

void wl_joblog_header(FILE *f)
{
    fputs("Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n", f);
    fflush(f);
}

int wl_joblog_read(const char *path, size_t n, bool *skip, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -errno;
    }
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0;
    int marked = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (lineno == 1 && strncmp(line, "Seq\t", 4) == 0)
            continue;
        if (memchr(line, '\0', (size_t)len)) {
            free(line);
            fclose(f);
            return wl__run_nul_error(path, lineno, err, errlen);
        }
        char *end;
        errno = 0;
        unsigned long long seq = strtoull(line, &end, 10);
        if (end == line || *end != '\t' || errno) {
            snprintf(err, errlen, "%s:%d: not a joblog line (Seq, a tab, ...)", path, lineno);
            free(line);
            fclose(f);
            return -EINVAL;
        }
        if (seq >= 1 && seq <= n && !skip[seq - 1]) {
            skip[seq - 1] = true;
            marked++;
        }
    }
    free(line);
    fclose(f);
    return marked;
}
