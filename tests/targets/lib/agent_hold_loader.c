/* libagent_hold_loader.so: a constructor that holds the dynamic loader's
 * lock (dlopen runs it with the lock held) until the main thread of
 * agent_first_handler_dlsym says it is done, 20 s at most. Waits with raw
 * futex calls: no CPU, nothing the agent wraps. */
#include <dlfcn.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../agent_hold_loader.h"

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

__attribute__((constructor)) static void hold_loader(void)
{
    struct wl_test_hold *h = dlsym(RTLD_DEFAULT, "wl_test_hold");
    if (!h)
        return;
    atomic_store(&h->entered, 1);
    syscall(SYS_futex, &h->entered, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    double end = mono_s() + 20;
    while (!atomic_load(&h->done)) {
        if (mono_s() > end) {
            atomic_store(&h->timed_out, 1);
            return;
        }
        struct timespec ts = {0, 100 * 1000 * 1000};
        syscall(SYS_futex, &h->done, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
    }
}
