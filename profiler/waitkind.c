/*
 * waitkind.c -- wait reason grouping: syscall table and classification rules.
 *
 * The syscall table is built from the libc's SYS_* constants, so the same
 * source names syscalls correctly on x86-64 and aarch64 (which lacks some
 * legacy calls such as poll and select: the #ifdefs drop those).
 */
#include "waitkind.h"

#include <string.h>
#include <sys/syscall.h>

typedef struct syscall_entry {
    long nr;
    const char *name;
    wl_wait_kind kind; /* WL_WAIT_OTHER: decided by fd target / wchan */
    int uses_fd;
} syscall_entry;

#define SC(name, kind, fd) {SYS_##name, #name, kind, fd}
/* A poll-like call: named here, its kind decided by wl_is_readiness_call (the
 * model's one list, shared with the classifier). */
#define POLL_LIKE(name) SC(name, WL_WAIT_OTHER, 0)

static const syscall_entry syscalls[] = {
    SC(read, WL_WAIT_OTHER, 1),
    SC(write, WL_WAIT_OTHER, 1),
    SC(readv, WL_WAIT_OTHER, 1),
    SC(writev, WL_WAIT_OTHER, 1),
    SC(pread64, WL_WAIT_DISK, 1),
    SC(pwrite64, WL_WAIT_DISK, 1),
    SC(preadv, WL_WAIT_DISK, 1),
    SC(pwritev, WL_WAIT_DISK, 1),
    SC(splice, WL_WAIT_OTHER, 1),
    SC(sendfile, WL_WAIT_OTHER, 1),
    SC(nanosleep, WL_WAIT_SLEEP, 0),
    SC(clock_nanosleep, WL_WAIT_SLEEP, 0),
    SC(fsync, WL_WAIT_DISK, 0),
    SC(fdatasync, WL_WAIT_DISK, 0),
    SC(sync, WL_WAIT_DISK, 0),
    SC(syncfs, WL_WAIT_DISK, 0),
    SC(sync_file_range, WL_WAIT_DISK, 0),
    SC(msync, WL_WAIT_DISK, 0),
    SC(openat, WL_WAIT_DISK, 0),
    SC(fallocate, WL_WAIT_DISK, 0),
    POLL_LIKE(epoll_pwait),
    POLL_LIKE(ppoll),
    POLL_LIKE(pselect6),
    POLL_LIKE(io_getevents),
#ifdef SYS_epoll_wait
    POLL_LIKE(epoll_wait),
#endif
#ifdef SYS_epoll_pwait2
    POLL_LIKE(epoll_pwait2),
#endif
#ifdef SYS_poll
    POLL_LIKE(poll),
#endif
#ifdef SYS_select
    POLL_LIKE(select),
#endif
#ifdef SYS_pause
    SC(pause, WL_WAIT_OTHER, 0),
#endif
#ifdef SYS_io_uring_enter
    POLL_LIKE(io_uring_enter),
#endif
    SC(futex, WL_WAIT_LOCK, 0),
#ifdef SYS_futex_waitv
    SC(futex_waitv, WL_WAIT_LOCK, 0),
#endif
    SC(flock, WL_WAIT_LOCK, 0),
    SC(fcntl, WL_WAIT_LOCK, 0),
    SC(wait4, WL_WAIT_CHILD, 0),
    SC(waitid, WL_WAIT_CHILD, 0),
    SC(accept, WL_WAIT_NETWORK, 0),
    SC(accept4, WL_WAIT_NETWORK, 0),
    SC(connect, WL_WAIT_NETWORK, 0),
    SC(recvfrom, WL_WAIT_NETWORK, 0),
    SC(recvmsg, WL_WAIT_NETWORK, 0),
    SC(recvmmsg, WL_WAIT_NETWORK, 0),
    SC(sendto, WL_WAIT_NETWORK, 0),
    SC(sendmsg, WL_WAIT_NETWORK, 0),
    SC(sendmmsg, WL_WAIT_NETWORK, 0),
    SC(rt_sigtimedwait, WL_WAIT_OTHER, 0),
    SC(rt_sigsuspend, WL_WAIT_OTHER, 0),
    SC(msgrcv, WL_WAIT_OTHER, 0),
    SC(semtimedop, WL_WAIT_LOCK, 0),
    SC(ioctl, WL_WAIT_OTHER, 1),
    SC(close, WL_WAIT_OTHER, 0),
    SC(exit_group, WL_WAIT_OTHER, 0),
    SC(mmap, WL_WAIT_OTHER, 0),
    SC(munmap, WL_WAIT_OTHER, 0),
    SC(execve, WL_WAIT_OTHER, 0),
    SC(clone, WL_WAIT_OTHER, 0),
#ifdef SYS_clone3
    SC(clone3, WL_WAIT_OTHER, 0),
#endif
    SC(getrandom, WL_WAIT_OTHER, 0),
};

static const syscall_entry *find_syscall(long nr)
{
    for (size_t i = 0; i < sizeof(syscalls) / sizeof(syscalls[0]); i++)
        if (syscalls[i].nr == nr)
            return &syscalls[i];
    return NULL;
}

const char *wl__waitkind_syscall_name(long nr)
{
    const syscall_entry *e = find_syscall(nr);
    return e ? e->name : wl_syscall_name(nr);
}

int wl__waitkind_syscall_uses_fd(long nr)
{
    const syscall_entry *e = find_syscall(nr);
    return e ? e->uses_fd : 0;
}

static const syscall_entry *find_syscall_by_name(const char *name)
{
    for (size_t i = 0; i < sizeof(syscalls) / sizeof(syscalls[0]); i++)
        if (strcmp(syscalls[i].name, name) == 0)
            return &syscalls[i];
    return NULL;
}

static int has(const char *s, const char *needle)
{
    return s && strstr(s, needle) != NULL;
}

static wl_wait_kind classify_fd_target(const char *t)
{
    if (!t || !*t)
        return WL_WAIT_KIND_COUNT;
    if (strncmp(t, "socket:", 7) == 0)
        return WL_WAIT_NETWORK;
    if (strncmp(t, "pipe:", 5) == 0)
        return WL_WAIT_PIPE;
    if (strncmp(t, "/dev/pts/", 9) == 0 || strncmp(t, "/dev/tty", 8) == 0 ||
        strcmp(t, "/dev/console") == 0)
        return WL_WAIT_TERMINAL;
    if (has(t, "eventfd") || has(t, "timerfd") || has(t, "signalfd"))
        return WL_WAIT_POLL;
    if (t[0] == '/' && strncmp(t, "/dev/", 5) != 0)
        return WL_WAIT_DISK;
    if (t[0] == '/') /* a FIFO or device node */
        return has(t, "fifo") ? WL_WAIT_PIPE : WL_WAIT_OTHER;
    return WL_WAIT_KIND_COUNT;
}

static wl_wait_kind classify_wchan(const char *w)
{
    if (!w || !*w)
        return WL_WAIT_KIND_COUNT;
    if (has(w, "nanosleep") || has(w, "hrtimer") || has(w, "schedule_timeout"))
        return WL_WAIT_SLEEP;
    if (has(w, "pipe") || has(w, "fifo"))
        return WL_WAIT_PIPE;
    if (has(w, "sk_wait") || has(w, "inet_") || has(w, "tcp_") || has(w, "unix_") ||
        has(w, "sock") || has(w, "udp_"))
        return WL_WAIT_NETWORK;
    if (has(w, "epoll") || has(w, "poll") || has(w, "select"))
        return WL_WAIT_POLL;
    if (has(w, "futex"))
        return WL_WAIT_LOCK;
    if (has(w, "do_wait") || has(w, "kernel_wait"))
        return WL_WAIT_CHILD;
    if (has(w, "tty"))
        return WL_WAIT_TERMINAL;
    if (has(w, "io_schedule") || has(w, "folio") || has(w, "page") || has(w, "jbd2") ||
        has(w, "blk") || has(w, "ext4") || has(w, "xfs") || has(w, "btrfs") ||
        has(w, "bit_wait") || has(w, "nfs") || has(w, "writeback") || has(w, "sync"))
        return WL_WAIT_DISK;
    return WL_WAIT_KIND_COUNT;
}

wl_wait_kind wl__waitkind_classify(char state, const char *wchan, const char *syscall,
                               const char *fd_target)
{
    if (wl_is_readiness_call(syscall))
        return WL_WAIT_POLL;
    const syscall_entry *e = (syscall && *syscall) ? find_syscall_by_name(syscall) : NULL;
    if (e && e->kind != WL_WAIT_OTHER && e->kind != WL_WAIT_DISK)
        return e->kind;
    if (e && e->uses_fd) {
        wl_wait_kind k = classify_fd_target(fd_target);
        if (k != WL_WAIT_KIND_COUNT)
            return k;
    }
    wl_wait_kind k = classify_wchan(wchan);
    if (k != WL_WAIT_KIND_COUNT)
        return k;
    if (e && e->kind == WL_WAIT_DISK)
        return WL_WAIT_DISK;
    if (state == 'D')
        return WL_WAIT_DISK;
    return WL_WAIT_OTHER;
}

/* ---- public wrappers (wlprof/profile.h) ---------------------------------- */

