/*
 * procfs.h -- small, allocation-free readers for /proc files (internal).
 *
 * Each reader opens, reads and closes one file into a caller buffer and
 * parses it. They return 0, or a negative errno when the file is gone (the
 * thread exited between two ticks: normal, counted, never fatal) or cannot
 * be parsed.
 */
#ifndef WL_PROFILER_PROCFS_H
#define WL_PROFILER_PROCFS_H

#include <stdint.h>
#include <stddef.h>
#include "wlprof/profile_model.h"

typedef struct proc_stat {
    int pid;
    char comm[17];
    char state;          /* R, S, D, Z, T, t, X, I ... */
    int ppid;
    uint64_t utime;      /* clock ticks */
    uint64_t stime;      /* clock ticks */
    uint64_t starttime;  /* clock ticks after boot */
    int64_t num_threads;
} proc_stat;

typedef struct proc_schedstat {
    uint64_t run_ns;     /* time on CPU */
    uint64_t wait_ns;    /* time runnable but waiting on a run queue */
    uint64_t slices;
} proc_schedstat;

typedef struct proc_syscall {
    long nr;             /* syscall number; -1 when running in user space */
    unsigned long args[6];
    int valid;           /* 0 when the line was "running" or unreadable */
} proc_syscall;

/* Reads a whole small file into buf (NUL-terminated). Returns bytes read or
 * a negative errno. */
long wl__procfs_read(const char *path, char *buf, size_t size);
/* The same through an open descriptor, from offset 0 (pread). */
long wl__procfs_pread(int fd, char *buf, size_t size);

/* A /proc file kept open between reads. Zero-initialised means "not open"
 * (fd1 is the descriptor + 1), so it can live in memset-0 arrays. */
typedef struct procfs_file {
    int fd1;
} procfs_file;

/* Reads path through f: opens it on first use while *budget (descriptors
 * the caller may still keep open) is positive, then preads it; otherwise,
 * or when descriptors run out, open/read/close as wl__procfs_read. */
long wl__procfs_file_read(procfs_file *f, const char *path, char *buf, size_t size, int *budget);
/* Closes f if open and gives its descriptor back to *budget. */
void wl__procfs_file_close(procfs_file *f, int *budget);

int wl__procfs_stat(const char *path, proc_stat *out);
int wl__procfs_schedstat(const char *path, proc_schedstat *out);
/* The same through a kept-open file (f NULL: plain read). */
int wl__procfs_stat_cached(procfs_file *f, const char *path, proc_stat *out, int *budget);
int wl__procfs_schedstat_cached(procfs_file *f, const char *path, proc_schedstat *out, int *budget);
int wl__procfs_wchan(const char *path, char *out, size_t size);
int wl__procfs_syscall(const char *path, proc_syscall *out);
int wl__procfs_io(int pid, wl_io_stat *out);
/* Reads /proc/PID/cmdline with arguments joined by spaces; returns a
 * malloc'd string the caller frees, or NULL. */
char *wl__procfs_cmdline(int pid);
/* What an fd points at: "pipe:[..]", "socket:[..]", a path... into out. */
int wl__procfs_fd_target(int pid, int fd, char *out, size_t size);

/* Clock ticks per second (sysconf(_SC_CLK_TCK)), cached. */
long wl__procfs_clk_tck(void);

#endif
