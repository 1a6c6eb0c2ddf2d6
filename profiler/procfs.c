/*
 * procfs.c -- readers for /proc/PID/{stat,schedstat,wchan,syscall,io,...}.
 *
 * The sampler calls these thousands of times per second, so they use a
 * caller buffer and plain system calls: no stdio, no allocation (except
 * wl__procfs_cmdline, read once per process).
 *
 * Files read every tick are kept open (procfs_file) and re-read with
 * pread at offset 0, which a seq_file /proc entry answers afresh. That
 * saves the path walk of open (most of the cost of a small /proc read)
 * and the close; and an open /proc/PID/... file stays bound to its task,
 * so a reused pid can never be read through it (reads fail with ESRCH
 * once the task is gone).
 */
#include "procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

long wl__procfs_read(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t len = 0;
    while (len + 1 < size) {
        ssize_t n = read(fd, buf + len, size - 1 - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int err = -errno;
            close(fd);
            return err;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    return (long)len;
}

long wl__procfs_pread(int fd, char *buf, size_t size)
{
    size_t len = 0;
    while (len + 1 < size) {
        ssize_t n = pread(fd, buf + len, size - 1 - len, (off_t)len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return (long)len;
}

long wl__procfs_file_read(procfs_file *f, const char *path, char *buf, size_t size, int *budget)
{
    if (f->fd1 > 0)
        return wl__procfs_pread(f->fd1 - 1, buf, size);
    if (!budget || *budget <= 0)
        return wl__procfs_read(path, buf, size);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == EMFILE || errno == ENFILE ? wl__procfs_read(path, buf, size) : -errno;
    f->fd1 = fd + 1;
    (*budget)--;
    return wl__procfs_pread(fd, buf, size);
}

void wl__procfs_file_close(procfs_file *f, int *budget)
{
    if (f->fd1 <= 0)
        return;
    close(f->fd1 - 1);
    f->fd1 = 0;
    if (budget)
        (*budget)++;
}

int wl__procfs_stat(const char *path, proc_stat *out)
{
    return wl__procfs_stat_cached(NULL, path, out, NULL);
}

int wl__procfs_stat_cached(procfs_file *f, const char *path, proc_stat *out, int *budget)
{
    char buf[1024];
    procfs_file none = {0};
    long n = wl__procfs_file_read(f ? f : &none, path, buf, sizeof(buf), f ? budget : NULL);
    if (n < 0)
        return (int)n;
    if (n == 0)
        return -ESRCH; /* an open file of a task that is gone */
    /* "pid (comm) state ppid ..."; comm may hold spaces and parentheses,
     * so split at the first '(' and the last ')'. */
    char *open_paren = strchr(buf, '(');
    char *close_paren = strrchr(buf, ')');
    if (!open_paren || !close_paren || close_paren < open_paren)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    out->pid = atoi(buf);
    size_t clen = (size_t)(close_paren - open_paren - 1);
    if (clen > sizeof(out->comm) - 1)
        clen = sizeof(out->comm) - 1;
    memcpy(out->comm, open_paren + 1, clen);
    out->comm[clen] = '\0';

    /* Fields after comm, numbered as in proc(5): 3 state, 4 ppid, 14 utime,
     * 15 stime, 20 num_threads, 22 starttime. */
    char *p = close_paren + 2;
    int field = 3;
    while (*p && field <= 22) {
        char *end;
        if (field == 3) {
            out->state = *p;
            end = p + 1;
        } else {
            unsigned long long v = strtoull(p, &end, 10);
            if (end == p)
                return -EINVAL;
            switch (field) {
            case 4: out->ppid = (int)v; break;
            case 14: out->utime = v; break;
            case 15: out->stime = v; break;
            case 20: out->num_threads = (int64_t)v; break;
            case 22: out->starttime = v; break;
            default: break;
            }
        }
        p = end;
        while (*p == ' ')
            p++;
        field++;
    }
    return field > 22 ? 0 : -EINVAL;
}

int wl__procfs_schedstat(const char *path, proc_schedstat *out)
{
    return wl__procfs_schedstat_cached(NULL, path, out, NULL);
}

int wl__procfs_schedstat_cached(procfs_file *f, const char *path, proc_schedstat *out, int *budget)
{
    char buf[128];
    procfs_file none = {0};
    long n = wl__procfs_file_read(f ? f : &none, path, buf, sizeof(buf), f ? budget : NULL);
    if (n < 0)
        return (int)n;
    unsigned long long run, wait, slices;
    if (sscanf(buf, "%llu %llu %llu", &run, &wait, &slices) != 3)
        return -EINVAL;
    out->run_ns = run;
    out->wait_ns = wait;
    out->slices = slices;
    return 0;
}

int wl__procfs_wchan(const char *path, char *out, size_t size)
{
    long n = wl__procfs_read(path, out, size);
    if (n < 0) {
        out[0] = '\0';
        return (int)n;
    }
    /* "0" means not waiting (or hidden); keep only a real symbol name. */
    if (strcmp(out, "0") == 0)
        out[0] = '\0';
    return 0;
}

int wl__procfs_syscall(const char *path, proc_syscall *out)
{
    char buf[256];
    memset(out, 0, sizeof(*out));
    out->nr = -1;
    long n = wl__procfs_read(path, buf, sizeof(buf));
    if (n < 0)
        return (int)n;
    if (buf[0] < '0' || buf[0] > '9')
        return 0; /* "running" or "-1 ..." (in user space) */
    char *p = buf, *end;
    out->nr = strtol(p, &end, 10);
    p = end;
    for (int i = 0; i < 6; i++) {
        out->args[i] = strtoul(p, &end, 16);
        if (end == p)
            break;
        p = end;
    }
    out->valid = 1;
    return 0;
}

int wl__procfs_io(int pid, wl_io_stat *out)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/io", pid);
    long n = wl__procfs_read(path, buf, sizeof(buf));
    if (n < 0)
        return (int)n;
    static const struct {
        const char *key;
        size_t off;
    } keys[] = {
        {"rchar: ", offsetof(wl_io_stat, rchar)},
        {"wchar: ", offsetof(wl_io_stat, wchar)},
        {"syscr: ", offsetof(wl_io_stat, syscr)},
        {"syscw: ", offsetof(wl_io_stat, syscw)},
        {"read_bytes: ", offsetof(wl_io_stat, read_bytes)},
        {"write_bytes: ", offsetof(wl_io_stat, write_bytes)},
    };
    wl_io_stat io = {0};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char *at = strstr(buf, keys[i].key);
        if (at)
            *(uint64_t *)((char *)&io + keys[i].off) =
                strtoull(at + strlen(keys[i].key), NULL, 10);
    }
    io.valid = true;
    *out = io;
    return 0;
}

char *wl__procfs_cmdline(int pid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
    long n = wl__procfs_read(path, buf, sizeof(buf));
    if (n <= 0)
        return NULL;
    while (n > 0 && buf[n - 1] == '\0')
        n--;
    for (long i = 0; i < n; i++)
        if (buf[i] == '\0')
            buf[i] = ' ';
    buf[n] = '\0';
    return strdup(buf);
}

int wl__procfs_fd_target(int pid, int fd, char *out, size_t size)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
    ssize_t n = readlink(path, out, size - 1);
    if (n < 0) {
        out[0] = '\0';
        return -errno;
    }
    out[n] = '\0';
    return 0;
}

long wl__procfs_clk_tck(void)
{
    static long tck;
    if (!tck) {
        tck = sysconf(_SC_CLK_TCK);
        if (tck <= 0)
            tck = 100;
    }
    return tck;
}
