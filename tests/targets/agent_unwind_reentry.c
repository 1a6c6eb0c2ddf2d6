/* agent_unwind_reentry: the agent's first stack in this process is a
 * wait's, taken in normal context, and the thread's SIGPROF fires while
 * libunwind is still setting itself up inside that unwind.
 *
 * libunwind's first unw_backtrace runs a one-time set-up under
 * pthread_once (its trace cache), which maps memory with no signal
 * blocked (the rest of its set-up blocks them all). This program defines
 * mmap itself (exported: tests/targets/CMakeLists.txt), so libunwind's
 * mmap calls land here; the first one made from libunwind with SIGPROF
 * deliverable after the wait began burns thread CPU time past three times
 * the agent's longest sampling interval (from WLPROF_AGENT_HZ), so the
 * CPU-clock timer is sure to fire inside the set-up. A SIGPROF handler that enters libunwind then
 * waits on the pthread_once its own thread is running: for ever (seen as
 * a hang of `wlprof profile -- python3 two_sleeps.py`).
 *
 * Run it at a low rate (20 Hz): no sample may come before the wait, or the
 * set-up is done already. Exit 0: it got through; 3: no mmap from
 * libunwind came during the wait, so the case could not be staged. */
#include <link.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static uintptr_t unwind_lo, unwind_hi; /* libunwind's mapped range */
static volatile int armed, burned;
static double burn_s;

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

__attribute__((visibility("default"))) void *mmap(void *addr, size_t len, int prot, int flags,
                                                  int fd, off_t off)
{
    uintptr_t from = (uintptr_t)__builtin_return_address(0);
    sigset_t mask;
    if (armed && !burned && from >= unwind_lo && from < unwind_hi &&
        syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &mask, _NSIG / 8) == 0 &&
        !sigismember(&mask, SIGPROF)) {
        burned = 1;
        double end = thread_cpu_s() + burn_s;
        while (thread_cpu_s() < end) {
        }
    }
    return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

static int unwind_range_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    if (!info->dlpi_name || !strstr(info->dlpi_name, "libunwind.so"))
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        if (!unwind_lo || a < unwind_lo)
            unwind_lo = a;
        if (a + ph->p_memsz > unwind_hi)
            unwind_hi = a + ph->p_memsz;
    }
    return 1;
}

int main(void)
{
    const char *hz_s = getenv("WLPROF_AGENT_HZ");
    double hz = hz_s ? atof(hz_s) : 100.0;
    burn_s = 3 * 1.5 / (hz > 0 ? hz : 100.0);
    dl_iterate_phdr(unwind_range_cb, NULL); /* no libunwind: nothing is armed */
    armed = unwind_hi != 0;
    usleep(20000); /* blocks: the agent records it with its stack */
    armed = 0;
    return burned ? 0 : 3;
}
