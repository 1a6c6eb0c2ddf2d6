/*
 * waitkind.h -- turning a blocked thread's raw state into a wait reason.
 */
#ifndef WL_PROFILER_WAITKIND_H
#define WL_PROFILER_WAITKIND_H

#include "wlprof/profile_model.h"

/* Name of syscall nr on this architecture ("read"), or NULL if unknown. */
const char *wl__waitkind_syscall_name(long nr);

/* Whether syscall nr's first argument is a file descriptor whose target
 * decides the reason (read on a pipe vs a socket vs a file). */
int wl__waitkind_syscall_uses_fd(long nr);

/* Groups a blocked thread's state into a wl_wait_kind. Any argument may be
 * empty/NULL: state is the /proc stat state letter, wchan the kernel wait
 * channel, syscall the syscall name, fd_target what its fd argument points
 * at (readlink of /proc/PID/fd/N). The syscall decides first, the fd
 * target refines read/write-like calls, the wait channel is the fallback. */
wl_wait_kind wl__waitkind_classify(char state, const char *wchan, const char *syscall,
                               const char *fd_target);

#endif
