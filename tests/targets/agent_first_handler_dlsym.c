/* agent_first_handler_dlsym: the process's first SIGPROF comes while
 * another thread holds the dynamic loader's lock and waits for this one.
 *
 * A thread dlopens tests/targets/libagent_hold_loader.so (argv[1]), whose
 * constructor -- run by dlopen with the loader's lock held -- waits for
 * the main thread to finish computing. The main thread computes past three
 * times the agent's longest sampling interval (from WLPROF_AGENT_HZ; run
 * at 20 Hz, so no sample comes before), so its first SIGPROF comes then.
 * The handler unwinds; libunwind's locks go through the agent's
 * sigprocmask and pthread_mutex_lock. Were their next definitions looked
 * up only now, with dlsym, the handler would wait for the loader's lock
 * while its holder waits for the handler's thread. The constructor gives
 * up after 20 s and says so.
 *
 * Exit 0: through; 4: the constructor timed out (the main thread was
 * stuck); 3: the library could not be loaded. */
#include <dlfcn.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "agent_hold_loader.h"

__attribute__((visibility("default"))) struct wl_test_hold wl_test_hold;

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *loader(void *lib)
{
    return dlopen(lib, RTLD_NOW) ? NULL : (void *)1;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    const char *hz_s = getenv("WLPROF_AGENT_HZ");
    double hz = hz_s ? atof(hz_s) : 100.0;
    double burn_s = 3 * 1.5 / (hz > 0 ? hz : 100.0);
    pthread_t t;
    if (pthread_create(&t, NULL, loader, argv[1]) != 0)
        return 3;
    /* Until the constructor holds the lock: no CPU, no call the agent wraps. */
    while (!atomic_load(&wl_test_hold.entered) && !atomic_load(&wl_test_hold.failed))
        syscall(SYS_futex, &wl_test_hold.entered, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    double end = thread_cpu_s() + burn_s;
    while (thread_cpu_s() < end) {
    }
    atomic_store(&wl_test_hold.done, 1);
    syscall(SYS_futex, &wl_test_hold.done, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    void *failed = NULL;
    pthread_join(t, &failed);
    if (failed)
        return 3;
    return atomic_load(&wl_test_hold.timed_out) ? 4 : 0;
}
