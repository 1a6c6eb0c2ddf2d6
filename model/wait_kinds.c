/*
 * wait_kinds.c -- wait kinds by name (wlprof/profile.h), and which calls are
 * poll-like: a thread blocked in one waits for any of many events (an
 * event loop idling), which is neither I/O to overlap nor work to move.
 * The profiler groups such calls as WL_WAIT_POLL and the classifier leaves
 * them out of its function tables, from this one list.
 */
#include "wlprof/profile_model.h"

#include <string.h>

static const char *const kind_names[WL_WAIT_KIND_COUNT] = {
    [WL_WAIT_SLEEP] = "sleep", [WL_WAIT_NETWORK] = "network", [WL_WAIT_DISK] = "disk",
    [WL_WAIT_PIPE] = "pipe",   [WL_WAIT_LOCK] = "lock",       [WL_WAIT_GIL] = "gil",
    [WL_WAIT_POLL] = "poll",
    [WL_WAIT_CHILD] = "child", [WL_WAIT_TERMINAL] = "terminal", [WL_WAIT_OTHER] = "other",
};

const char *wl_wait_kind_name(wl_wait_kind kind)
{
    if ((unsigned)kind >= WL_WAIT_KIND_COUNT)
        return "other";
    return kind_names[kind];
}

int wl_wait_kind_parse(const char *name)
{
    for (int k = 0; k < WL_WAIT_KIND_COUNT; k++)
        if (name && strcmp(kind_names[k], name) == 0)
            return k;
    return -1;
}

/* Readiness waits by name: the kernel's calls and the libc/liburing
 * wrappers the stack agent names (epoll_wait is a syscall on x86-64 but only
 * a libc function on aarch64) -- the one list the profiler (WL_WAIT_POLL),
 * the classifier (event-loop threads, the pitfall) and the reports share. */
static const char *const readiness_calls[] = {
    "epoll_wait",     "epoll_pwait",        "epoll_pwait2",
    "poll",           "ppoll",              "select",
    "pselect",        "pselect6",           "io_uring_enter",
    "io_uring_wait_cqe", "io_uring_wait_cqes", "io_uring_wait_cqe_timeout",
    "io_uring_submit_and_wait", "io_getevents", "io_pgetevents",
};

bool wl_is_readiness_call(const char *call)
{
    if (!call || !*call)
        return false;
    for (size_t i = 0; i < sizeof(readiness_calls) / sizeof(readiness_calls[0]); i++)
        if (strcmp(call, readiness_calls[i]) == 0)
            return true;
    return false;
}
