/*
 * atomic.c -- output files that are either complete or absent.
 *
 * The temporary lives beside the destination (same directory, hence same
 * file system, so rename(2) is atomic) and is created before the profiled
 * command starts: an unwritable --json path fails fast, and a crash or a
 * kill at any point leaves either the old file or the new one, never half.
 */
#include "wlprof/report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int wl_atomic_open(wl_atomic_file *af, const char *path, char *err, size_t errlen)
{
    memset(af, 0, sizeof(*af));
    size_t len = strlen(path);
    if (len == 0) {
        snprintf(err, errlen, "empty output path");
        return -EINVAL;
    }
    af->path = strdup(path);
    af->tmp_path = malloc(len + 16);
    if (!af->path || !af->tmp_path)
        goto fail_nomem;
    snprintf(af->tmp_path, len + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(af->tmp_path);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(e));
        free(af->path);
        free(af->tmp_path);
        memset(af, 0, sizeof(*af));
        return -e;
    }
    /* mkstemp makes 0600; a report is an ordinary file. */
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask);
    af->f = fdopen(fd, "w");
    if (!af->f) {
        close(fd);
        unlink(af->tmp_path);
        goto fail_nomem;
    }
    return 0;

fail_nomem:
    free(af->path);
    free(af->tmp_path);
    memset(af, 0, sizeof(*af));
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
}

int wl_atomic_commit(wl_atomic_file *af, char *err, size_t errlen)
{
    int rc = 0;
    if (fflush(af->f) != 0 || fsync(fileno(af->f)) != 0)
        rc = -errno;
    if (fclose(af->f) != 0 && rc == 0)
        rc = -errno;
    af->f = NULL;
    if (rc == 0 && rename(af->tmp_path, af->path) != 0)
        rc = -errno;
    if (rc < 0) {
        snprintf(err, errlen, "cannot write %s: %s", af->path, strerror(-rc));
        unlink(af->tmp_path);
    }
    free(af->path);
    free(af->tmp_path);
    memset(af, 0, sizeof(*af));
    return rc;
}

void wl_atomic_abort(wl_atomic_file *af)
{
    if (af->f)
        fclose(af->f);
    if (af->tmp_path)
        unlink(af->tmp_path);
    free(af->path);
    free(af->tmp_path);
    memset(af, 0, sizeof(*af));
}

int wl_atomic_commit_json(wl_atomic_file *af, const json_t *root, char *err, size_t errlen)
{
    if (json_dumpf(root, af->f, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) != 0 ||
        fputc('\n', af->f) == EOF) {
        snprintf(err, errlen, "cannot write %s: %s", af->path, strerror(errno));
        wl_atomic_abort(af);
        return -EIO;
    }
    return wl_atomic_commit(af, err, errlen);
}

int wl_json_write_atomic(const char *path, const json_t *root, char *err, size_t errlen)
{
    wl_atomic_file af;
    int rc = wl_atomic_open(&af, path, err, errlen);
    if (rc < 0)
        return rc;
    return wl_atomic_commit_json(&af, root, err, errlen);
}
