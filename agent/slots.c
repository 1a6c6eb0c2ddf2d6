/*
 * slots.c -- one slot per live thread of the target (state, ring, CPU-clock
 * timer) and the registration of threads into them. Rings themselves are
 * inline in agent_core.h (the handler and the interposers append).
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "agent_core.h"

struct wl_slot wl__slots[WL_MAX_SLOTS];
atomic_flag wl__drain_lock = ATOMIC_FLAG_INIT;

struct wl_slot *wl__slot_claim(int tid)
{
    for (int i = 0; i < WL_MAX_SLOTS; i++) {
        struct wl_slot *s = &wl__slots[i];
        int expect = SLOT_FREE;
        if (!atomic_compare_exchange_strong(&s->state, &expect, SLOT_CLAIMED))
            continue;
        if (!s->ring) {
            void *m = mmap(NULL, WL_RING_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (m == MAP_FAILED) {
                atomic_store(&s->state, SLOT_FREE);
                return NULL;
            }
            s->ring = m;
        }
        unsigned hwm = atomic_load(&wl__agent.slots_hwm);
        while (hwm < (unsigned)i + 1 && !atomic_compare_exchange_weak(&wl__agent.slots_hwm, &hwm, (unsigned)i + 1))
            ;
        s->tid = tid;
        atomic_store(&s->head, 0);
        atomic_store(&s->tail, 0);
        atomic_store(&s->dropped, 0);
        s->dropped_sent = 0;
        s->busy = 0;
        s->last_cpu_ns = s->last_user_ns = s->last_sys_ns = 0;
        s->rng = (uint32_t)tid * 2654435761u ^ (uint32_t)mono_ns();
        s->name[0] = '\0';
        s->name_sent[0] = '\0';
        s->tid_sent = 0;
        return s;
    }
    return NULL;
}

void wl__read_task_name(int tid, char name[16])
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d/comm", tid);
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char buf[32];
    ssize_t n = syscall(SYS_read, fd, buf, sizeof(buf) - 1);
    syscall(SYS_close, fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = '\0';
    buf[15] = '\0';
    memcpy(name, buf, 16);
}

/* Registers the calling thread and arms its timer. */
struct wl_slot *wl__register_self(void)
{
    int tid = sys_gettid();
    struct wl_slot *s = wl__slot_claim(tid);
    if (!s)
        return NULL;
    prctl(PR_GET_NAME, s->name);
    s->name[15] = '\0';
    wl__t.slot = s;
    wl__t.gen = atomic_load(&wl__g.gen);
    atomic_fetch_add(&wl__agent.live_threads, 1);
    struct rusage ru; /* wait_blocked()'s first baseline */
    if (getrusage(RUSAGE_THREAD, &ru) == 0) {
        wl__t.nvcsw = ru.ru_nvcsw;
        wl__t.nvcsw_ok = 1;
    }
    atomic_store(&s->state, SLOT_LIVE);
    if (wl__timer_setup(s, tid, 1) != 0) {
        /* still usable for waits */
    }
    return s;
}

/* The slot of the calling thread for this generation, or NULL, when the
 * cached one is stale. From the handler too: a thread registered by another
 * (in-process start) is found by tid once and cached. Preserves errno. */
struct wl_slot *wl__current_slot_slow(void)
{
    unsigned gen = atomic_load_explicit(&wl__g.gen, memory_order_acquire);
    if (wl__t.gen == gen)
        return wl__t.slot;
    int saved = errno;
    int tid = sys_gettid();
    errno = saved;
    int used = wl__slots_used();
    for (int i = 0; i < used; i++) {
        struct wl_slot *s = &wl__slots[i];
        if (atomic_load(&s->state) == SLOT_LIVE && s->tid == tid) {
            wl__t.slot = s;
            wl__t.gen = gen;
            return s;
        }
    }
    wl__t.slot = NULL;
    wl__t.gen = gen;
    return NULL;
}
