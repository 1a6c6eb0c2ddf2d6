/*
 * atomic.c -- output files that are either complete or absent, and the
 * rules every command's output paths follow.
 *
 * What an output path names decides how it is written:
 *
 *   "-"                          stdout (a dup of fd 1), written directly
 *   /dev/fd/N, /proc/self/fd/N   that open descriptor (dup), written directly
 *   a character or block device  opened and written directly (/dev/null, a tty)
 *   a FIFO                       opened when the output is committed (a reader
 *                                started after wlprof still gets it), written
 *                                directly; the bytes wait in an anonymous file
 *   a symlink                    followed hop by hop (/dev/stdout reaches
 *                                /proc/self/fd/1 and so fd 1); the file it
 *                                ends at is written atomically in its own
 *                                directory, so the link stays a link
 *   a regular file, or nothing   written atomically beside it
 *
 * Atomic writes use an anonymous O_TMPFILE in the destination's directory
 * (same file system, so the final rename(2) is atomic), linked in under a
 * hidden temporary name and renamed over the destination on commit: a
 * SIGKILL at any point before the commit leaves nothing behind, because an
 * O_TMPFILE has no name. Where the file system has no O_TMPFILE (or /proc
 * is not mounted, which linkat needs without CAP_DAC_READ_SEARCH), a named
 * temporary PATH.tmp.XXXXXX plus rename is the fallback.
 *
 * The temporary is made before the profiled command starts: an unwritable
 * path fails fast.
 *
 * JSON and HTML writers into these files are reports/' (json.c, html.c):
 * this file needs nothing but libc.
 *
 * wl_outputs: a command registers every output (and input) path it was
 * given and checks them together, so two outputs on one file, or an output
 * that would overwrite an input, are refused before any work.
 */

#include "wlprof/outputs.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#define WL_SYMLINK_HOPS 40

enum {
    AF_NONE = 0,
    AF_TMPFILE,  /* anonymous O_TMPFILE in dirfd, linked and renamed on commit */
    AF_NAMED,    /* named temporary tmp_path, renamed on commit */
    AF_DIRECT,   /* written straight into fd (stdout, a descriptor, a device) */
    AF_FIFO,     /* buffered in an anonymous file, copied into the FIFO on commit */
};

/* ---- path resolution ---- */

/* The descriptor a path names directly (/dev/fd/N, /proc/self/fd/N,
 * /proc/thread-self/fd/N, /proc/<our pid>/fd/N), or -1. */
static int fd_path_number(const char *p)
{
    static const char *const prefixes[] = {"/dev/fd/", "/proc/self/fd/",
                                           "/proc/thread-self/fd/"};
    const char *rest = NULL;
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]) && !rest; i++)
        if (strncmp(p, prefixes[i], strlen(prefixes[i])) == 0)
            rest = p + strlen(prefixes[i]);
    if (!rest) {
        char own[64];
        int n = snprintf(own, sizeof(own), "/proc/%d/fd/", (int)getpid());
        if (strncmp(p, own, (size_t)n) == 0)
            rest = p + n;
    }
    if (!rest || !isdigit((unsigned char)*rest))
        return -1;
    char *end;
    long v = strtol(rest, &end, 10);
    if (*end || v < 0 || v > INT_MAX)
        return -1;
    return (int)v;
}

/* What a path resolves to. */
typedef struct resolved {
    int kind;              /* AF_DIRECT via fd, AF_FIFO, AF_TMPFILE (atomic), 0 = error */
    int fd;                /* AF_DIRECT through a descriptor: its number, else -1 */
    int exists;            /* the final file exists (st is valid) */
    struct stat st;        /* of the final file, or of fd */
    char final[PATH_MAX];  /* the path the symlinks lead to */
} resolved;

/* Follows symlinks in the last component of path, hop by hop, stopping at
 * a descriptor path. Returns 0 or a negative errno. */
static int resolve_path(const char *path, resolved *r)
{
    memset(r, 0, sizeof(*r));
    r->fd = -1;
    if (strcmp(path, "-") == 0) {
        r->kind = AF_DIRECT;
        r->fd = STDOUT_FILENO;
        if (fstat(r->fd, &r->st) < 0)
            return -errno;
        r->exists = 1;
        snprintf(r->final, sizeof(r->final), "-");
        return 0;
    }
    if (snprintf(r->final, sizeof(r->final), "%s", path) >= (int)sizeof(r->final))
        return -ENAMETOOLONG;
    for (int hop = 0;; hop++) {
        if (hop > WL_SYMLINK_HOPS)
            return -ELOOP;
        int fd = fd_path_number(r->final);
        if (fd >= 0) {
            if (fstat(fd, &r->st) < 0)
                return -errno;
            r->kind = AF_DIRECT;
            r->fd = fd;
            r->exists = 1;
            return 0;
        }
        if (lstat(r->final, &r->st) < 0) {
            if (errno != ENOENT)
                return -errno;
            r->kind = AF_TMPFILE; /* created in its directory */
            return 0;
        }
        if (S_ISLNK(r->st.st_mode)) {
            char link[PATH_MAX];
            ssize_t n = readlink(r->final, link, sizeof(link) - 1);
            if (n < 0)
                return -errno;
            link[n] = '\0';
            char next[PATH_MAX];
            const char *slash = strrchr(r->final, '/');
            int w;
            if (link[0] == '/' || !slash)
                w = snprintf(next, sizeof(next), "%s", link);
            else
                w = snprintf(next, sizeof(next), "%.*s/%s", (int)(slash - r->final), r->final,
                             link);
            if (w < 0 || w >= (int)sizeof(next))
                return -ENAMETOOLONG;
            memcpy(r->final, next, (size_t)w + 1);
            continue;
        }
        r->exists = 1;
        if (S_ISDIR(r->st.st_mode))
            return -EISDIR;
        if (S_ISREG(r->st.st_mode))
            r->kind = AF_TMPFILE;
        else if (S_ISFIFO(r->st.st_mode))
            r->kind = AF_FIFO;
        else if (S_ISSOCK(r->st.st_mode))
            return -ENXIO;
        else
            r->kind = AF_DIRECT; /* a device: opened by path */
        return 0;
    }
}

/* Splits final into its directory (".", "/" or the prefix) and last name. */
static int split_dir(const char *final, char *dir, size_t dlen, const char **base)
{
    const char *slash = strrchr(final, '/');
    if (!slash) {
        snprintf(dir, dlen, ".");
        *base = final;
    } else if (slash == final) {
        snprintf(dir, dlen, "/");
        *base = slash + 1;
    } else {
        if ((size_t)(slash - final) >= dlen)
            return -ENAMETOOLONG;
        snprintf(dir, dlen, "%.*s", (int)(slash - final), final);
        *base = slash + 1;
    }
    if (!**base)
        return -EISDIR; /* "dir/" */
    return 0;
}

/* ---- opening ---- */

static void af_clear(wl_atomic_file *af)
{
    free(af->path);
    free(af->tmp_path);
    free(af->target_);
    if (af->dir_open_)
        close(af->dirfd_);
    memset(af, 0, sizeof(*af));
}

static int open_fail(wl_atomic_file *af, int rc, char *err, size_t errlen)
{
    if (rc == -ENOMEM)
        snprintf(err, errlen, "out of memory");
    else
        snprintf(err, errlen, "cannot write %s: %s", af->path ? af->path : "output",
                 strerror(-rc));
    wl_atomic_abort(af);
    return rc;
}

/* Wraps fd (ours: closed on failure) in af->f, to be written as mode
 * (AF_*) says. Returns 0 or -ENOMEM. */
static int af_adopt(wl_atomic_file *af, int fd, int mode)
{
    af->f = fdopen(fd, "w");
    if (!af->f) {
        close(fd);
        return -ENOMEM;
    }
    af->mode_ = mode;
    return 0;
}

static int open_direct_fd(wl_atomic_file *af, int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    if ((fl & O_ACCMODE) == O_RDONLY)
        return -EBADF; /* open for reading only */
    int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (copy < 0)
        return -errno;
    return af_adopt(af, copy, AF_DIRECT);
}

/* An anonymous file in the destination's directory, when the file system
 * has O_TMPFILE and linkat can name it (/proc/self/fd). -EOPNOTSUPP means
 * "use a named temporary". */
static int open_tmpfile(wl_atomic_file *af, mode_t mode)
{
#ifdef O_TMPFILE
    int fd = openat(af->dirfd_, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, mode);
    if (fd < 0) {
        int e = errno;
        /* no O_TMPFILE here: anything but a plain permission or space problem */
        if (e == EACCES || e == EPERM || e == ENOSPC || e == EDQUOT || e == EROFS ||
            e == ENOENT || e == ENOTDIR)
            return -e;
        return -EOPNOTSUPP;
    }
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    if (access(proc, F_OK) != 0) {
        close(fd);
        return -EOPNOTSUPP;
    }
    return af_adopt(af, fd, AF_TMPFILE);
#else
    (void)af;
    (void)mode;
    return -EOPNOTSUPP;
#endif
}

static int open_named(wl_atomic_file *af, const char *final, mode_t mode)
{
    size_t len = strlen(final) + 16;
    af->tmp_path = malloc(len);
    if (!af->tmp_path)
        return -ENOMEM;
    snprintf(af->tmp_path, len, "%s.tmp.XXXXXX", final);
    int fd = mkostemp(af->tmp_path, O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        free(af->tmp_path);
        af->tmp_path = NULL;
        return -e;
    }
    fchmod(fd, mode); /* mkstemp makes 0600; a report is an ordinary file */
    return af_adopt(af, fd, AF_NAMED);
}

int wl_atomic_open(wl_atomic_file *af, const char *path, char *err, size_t errlen)
{
    memset(af, 0, sizeof(*af));
    if (!path || !*path) {
        snprintf(err, errlen, "empty output path");
        return -EINVAL;
    }
    af->path = strdup(path);
    if (!af->path)
        return open_fail(af, -ENOMEM, err, errlen);

    resolved r;
    int rc = resolve_path(path, &r);
    if (rc < 0)
        return open_fail(af, rc, err, errlen);
    af->target_ = strdup(r.final);
    if (!af->target_)
        return open_fail(af, -ENOMEM, err, errlen);

    if (r.kind == AF_DIRECT && r.fd >= 0) {
        rc = open_direct_fd(af, r.fd);
        return rc < 0 ? open_fail(af, rc, err, errlen) : 0;
    }
    if (r.kind == AF_DIRECT) { /* a device */
        int fd = open(r.final, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
            return open_fail(af, -errno, err, errlen);
        rc = open_direct_fd(af, fd);
        close(fd);
        return rc < 0 ? open_fail(af, rc, err, errlen) : 0;
    }
    if (r.kind == AF_FIFO) {
        if (access(r.final, W_OK) != 0)
            return open_fail(af, -errno, err, errlen);
        af->f = tmpfile();
        if (!af->f)
            return open_fail(af, -errno, err, errlen);
        af->mode_ = AF_FIFO;
        return 0;
    }

    /* Atomic: in the directory the symlinks (if any) lead to. */
    char dir[PATH_MAX];
    const char *base;
    rc = split_dir(r.final, dir, sizeof(dir), &base);
    if (rc < 0)
        return open_fail(af, rc, err, errlen);
    af->dirfd_ = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (af->dirfd_ < 0)
        return open_fail(af, -errno, err, errlen);
    af->dir_open_ = true;
    mode_t mask = umask(0);
    umask(mask);
    mode_t mode = 0666 & ~mask;
    rc = open_tmpfile(af, mode);
    if (rc == -EOPNOTSUPP)
        rc = open_named(af, r.final, mode);
    return rc < 0 ? open_fail(af, rc, err, errlen) : 0;
}

/* ---- committing ---- */

/* Names the anonymous file in dirfd and renames it over base. */
static int link_tmpfile(wl_atomic_file *af)
{
    const char *base = strrchr(af->target_, '/');
    base = base ? base + 1 : af->target_;
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fileno(af->f));
    unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL) ^ (unsigned)(uintptr_t)af;
    for (int attempt = 0; attempt < 100; attempt++) {
        char tmp[NAME_MAX + 1];
        seed = seed * 1103515245u + 12345u;
        if (snprintf(tmp, sizeof(tmp), ".%.200s.%08x.tmp", base, seed) >= (int)sizeof(tmp))
            return -ENAMETOOLONG;
        if (linkat(AT_FDCWD, proc, af->dirfd_, tmp, AT_SYMLINK_FOLLOW) < 0) {
            if (errno == EEXIST)
                continue;
            return -errno;
        }
        if (renameat(af->dirfd_, tmp, af->dirfd_, base) < 0) {
            int e = errno;
            unlinkat(af->dirfd_, tmp, 0);
            return -e;
        }
        return 0;
    }
    return -EEXIST;
}

/* Copies the buffered bytes into the FIFO (opened now: blocks until a
 * reader comes, like a shell's `> fifo`). */
static int copy_to_fifo(wl_atomic_file *af)
{
    int out = open(af->target_, O_WRONLY | O_CLOEXEC);
    if (out < 0)
        return -errno;
    int in = fileno(af->f);
    if (lseek(in, 0, SEEK_SET) < 0) {
        int e = errno;
        close(out);
        return -e;
    }
    char buf[65536];
    int rc = 0;
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : 0;
            break;
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                rc = -errno;
                break;
            }
            off += w;
        }
        if (rc < 0)
            break;
    }
    if (close(out) < 0 && rc == 0)
        rc = -errno;
    return rc;
}

int wl_atomic_commit(wl_atomic_file *af, char *err, size_t errlen)
{
    int rc = 0;
    if (!af->f) {
        snprintf(err, errlen, "cannot write %s: not open", af->path ? af->path : "output");
        af_clear(af);
        return -EBADF;
    }
    if (af->mode_ == AF_DIRECT)
        fflush(stdout); /* what was printed before comes first */
    if (fflush(af->f) != 0)
        rc = -errno;
    if (rc == 0 && (af->mode_ == AF_TMPFILE || af->mode_ == AF_NAMED) &&
        fsync(fileno(af->f)) != 0)
        rc = -errno;
    if (rc == 0 && af->mode_ == AF_TMPFILE)
        rc = link_tmpfile(af);
    if (rc == 0 && af->mode_ == AF_FIFO)
        rc = copy_to_fifo(af);
    if (fclose(af->f) != 0 && rc == 0)
        rc = -errno;
    af->f = NULL;
    if (rc == 0 && af->mode_ == AF_NAMED && rename(af->tmp_path, af->target_) != 0)
        rc = -errno;
    if (rc < 0) {
        snprintf(err, errlen, "cannot write %s: %s", af->path, strerror(-rc));
        if (af->tmp_path)
            unlink(af->tmp_path);
    }
    af_clear(af);
    return rc;
}

void wl_atomic_abort(wl_atomic_file *af)
{
    if (af->f)
        fclose(af->f);
    af->f = NULL;
    if (af->tmp_path)
        unlink(af->tmp_path);
    af_clear(af);
}

/* ---- one command's paths, checked together ---- */

/* Past WL_OUTPUTS_MAX only the count grows: wl_outputs_check refuses. */
static void outputs_push(wl_outputs *o, const char *option, const char *path, bool input)
{
    if (!path)
        return;
    if (o->n < WL_OUTPUTS_MAX)
        o->use[o->n] = (struct wl_output_use){option, path, input};
    o->n++;
}

void wl_outputs_add(wl_outputs *o, const char *option, const char *path)
{
    outputs_push(o, option, path, false);
}

void wl_outputs_add_input(wl_outputs *o, const char *option, const char *path)
{
    outputs_push(o, option, path, true);
}

/* Identity of what a path writes to or reads from: a file's device and
 * inode, or -- for a file not there yet -- its directory's and its name. */
typedef struct path_id {
    int exists;
    int via_fd;       /* "-" or a descriptor path: what the caller's fd holds */
    dev_t dev;
    ino_t ino;
    mode_t mode;
    const char *name; /* last component, when !exists */
    char final[PATH_MAX];
} path_id;

static int identify(const char *path, bool input, path_id *id)
{
    memset(id, 0, sizeof(*id));
    if (input) {
        struct stat st;
        if (strcmp(path, "-") == 0 ? fstat(STDIN_FILENO, &st) < 0 : stat(path, &st) < 0)
            return -1; /* a missing input is its reader's error to report */
        id->exists = 1;
        id->dev = st.st_dev;
        id->ino = st.st_ino;
        id->mode = st.st_mode;
        return 0;
    }
    resolved r;
    if (resolve_path(path, &r) < 0)
        return -1; /* wl_atomic_open reports it */
    memcpy(id->final, r.final, sizeof(id->final));
    id->via_fd = r.fd >= 0;
    if (r.exists) {
        id->exists = 1;
        id->dev = r.st.st_dev;
        id->ino = r.st.st_ino;
        id->mode = r.st.st_mode;
        return 0;
    }
    char dir[PATH_MAX];
    struct stat dst;
    if (split_dir(id->final, dir, sizeof(dir), &id->name) < 0 || stat(dir, &dst) < 0)
        return -1;
    id->dev = dst.st_dev;
    id->ino = dst.st_ino;
    return 0;
}

static bool same_id(const path_id *a, const path_id *b)
{
    if (a->exists != b->exists || a->dev != b->dev || a->ino != b->ino)
        return false;
    if (!a->exists)
        return strcmp(a->name, b->name) == 0;
    /* Any number of outputs may be thrown away -- named /dev/null; two of
     * them on stdout is a mistake wherever stdout goes. */
    if (S_ISCHR(a->mode) && !a->via_fd && !b->via_fd) {
        struct stat null;
        if (stat("/dev/null", &null) == 0 && S_ISCHR(null.st_mode) && a->dev == null.st_dev &&
            a->ino == null.st_ino)
            return false;
    }
    return true;
}

int wl_outputs_check(const wl_outputs *o, char *err, size_t errlen)
{
    if (o->n > WL_OUTPUTS_MAX) {
        snprintf(err, errlen, "too many output paths (at most %d)", WL_OUTPUTS_MAX);
        return -E2BIG;
    }
    path_id *ids = calloc(o->n ? o->n : 1, sizeof(*ids));
    int *ok = calloc(o->n ? o->n : 1, sizeof(*ok));
    if (!ids || !ok) {
        free(ids);
        free(ok);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < o->n; i++)
        ok[i] = identify(o->use[i].path, o->use[i].input, &ids[i]) == 0;
    int rc = 0;
    for (size_t i = 0; i < o->n && rc == 0; i++) {
        if (!ok[i] || o->use[i].input)
            continue;
        for (size_t j = 0; j < o->n && rc == 0; j++) {
            if (j == i || !ok[j] || (j < i && !o->use[j].input) || !same_id(&ids[i], &ids[j]))
                continue;
            const struct wl_output_use *a = &o->use[i], *b = &o->use[j];
            if (b->input)
                snprintf(err, errlen, "%s %s would overwrite the input %s %s", a->option,
                         a->path, b->option, b->path);
            else
                snprintf(err, errlen, "%s %s and %s %s are the same file: give each output "
                                      "its own",
                         a->option, a->path, b->option, b->path);
            rc = -EINVAL;
        }
    }
    free(ids);
    free(ok);
    return rc;
}
