/*
 * stack.c -- task stacks: mmap'ed with a guard page, pooled per loop; the
 * shared stack of copy-stack mode; the guard-page overflow reporter; and the
 * initial frame of a new context.
 *
 * Layout of one mapping (addresses grow upwards):
 *
 *   map            map+page                               hi        map+map_len
 *   | guard (none) | usable stack ............ <- grows  | wl__stack |
 *
 * The descriptor sits at the top of its own mapping, so a pooled stack costs
 * no allocation besides the mmap. Pages are touched only when used, so a
 * 256 KiB stack costs RSS only for the depth a task reaches.
 *
 * Copy-stack mode: one shared mapping per loop. The task whose bytes are on
 * it is shared->owner. Before another task runs there, the owner's live
 * bytes [owner->sp, hi) are copied into owner->save (grown as needed), and
 * the incoming task's saved bytes are copied back to the same addresses.
 * Copies happen on the scheduler's stack, never on the shared one. A task
 * that is resumed again while it still owns the stack costs no copy.
 *
 * Overflow: a process-wide SIGSEGV handler (installed once, chained to the
 * previous one) runs on a per-thread alternate signal stack; if the fault
 * address lies in the guard page of the current thread's running task, it
 * prints which task overflowed, restores the default action and returns, so
 * the fault repeats and the process dies with SIGSEGV as it would anyway.
 */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef WL_HAVE_VALGRIND_H
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#endif
#ifdef WL_SANITIZE
#include <sanitizer/asan_interface.h>
#endif

static size_t page_size(void)
{
    static size_t ps;
    if (!ps)
        ps = (size_t)sysconf(_SC_PAGESIZE);
    return ps;
}

static int stack_map(size_t usable, wl__stack **out)
{
    size_t ps = page_size();
    size_t desc = (sizeof(wl__stack) + 15) & ~(size_t)15;
    size_t len = ps + ((usable + desc + ps - 1) & ~(ps - 1));
    char *map = mmap(NULL, len, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (map == MAP_FAILED)
        return -errno;
    if (mprotect(map, ps, PROT_NONE) != 0) {
        int err = -errno;
        munmap(map, len);
        return err;
    }
    wl__stack *s = (wl__stack *)(map + len - desc);
    memset(s, 0, sizeof(*s));
    s->map = map;
    s->map_len = len;
    s->lo = map + ps;
    s->hi = (char *)s;
#ifdef WL_HAVE_VALGRIND_H
    s->vg_id = VALGRIND_STACK_REGISTER(s->lo, s->hi);
#endif
    *out = s;
    return 0;
}

void wl__stack_unmap(wl__stack *s)
{
#ifdef WL_HAVE_VALGRIND_H
    VALGRIND_STACK_DEREGISTER(s->vg_id);
#endif
    munmap(s->map, s->map_len);
}

int wl__stack_get(wl_loop *loop, wl__stack **out)
{
    wl__stack *s = loop->stack_pool_;
    if (s) {
        loop->stack_pool_ = s->next;
        loop->stack_pool_len_--;
        s->next = NULL;
        *out = s;
        return 0;
    }
    return stack_map(loop->opts_.stack_size, out);
}

void wl__stack_put(wl_loop *loop, wl__stack *s)
{
    if (loop->stack_pool_len_ >= loop->opts_.stack_pool_max) {
        wl__stack_unmap(s);
        return;
    }
#ifdef WL_SANITIZE
    /* frames of the finished task may have left redzones behind */
    __asan_unpoison_memory_region(s->lo, (size_t)(s->hi - s->lo));
#endif
    s->next = loop->stack_pool_;
    loop->stack_pool_ = s;
    loop->stack_pool_len_++;
}

void wl__stack_pool_drain(wl_loop *loop)
{
    while (loop->stack_pool_) {
        wl__stack *s = loop->stack_pool_;
        loop->stack_pool_ = s->next;
        wl__stack_unmap(s);
    }
    loop->stack_pool_len_ = 0;
}

int wl__shared_stack_create(wl_loop *loop)
{
    wl__stack *s = NULL;
    int rc = stack_map(loop->opts_.stack_size, &s);
    if (rc == 0)
        loop->shared_ = s;
    return rc;
}

bool wl__on_shared_stack(const wl_loop *loop, const void *p, size_t len)
{
    const wl__stack *s = loop->shared_;
    const char *c = p;
    return s && c < s->hi && c + len > s->lo;
}

/* Copies between a task's save area and the shared stack. Under ASan the
 * region is unpoisoned first: redzones of whichever task used these
 * addresses last would otherwise flag the copy and the resumed task. Under
 * valgrind likewise: memcheck marks the shared stack below the last task's
 * stack pointer inaccessible as that task returned from functions, and the
 * next task's frames live exactly there. */
static void copy_stack_bytes(void *dst, const void *src, size_t n)
{
#ifdef WL_SANITIZE
    __asan_unpoison_memory_region(dst, n);
    __asan_unpoison_memory_region((void *)src, n);
#endif
#ifdef WL_HAVE_VALGRIND_H
    VALGRIND_MAKE_MEM_DEFINED(dst, n);
#endif
    memcpy(dst, src, n);
}

int wl__shared_stack_enter(wl_loop *loop, wl_task *t)
{
    wl__stack *s = loop->shared_;
    if (s->owner == t)
        return 0;
    wl_task *o = s->owner;
    if (o) {
        size_t used = (size_t)(s->hi - (char *)o->sp);
        if (used > o->save_cap) {
            size_t cap = (used + 255) & ~(size_t)255;
            char *p = realloc(o->save, cap);
            if (!p)
                return UV_ENOMEM;
            o->save = p;
            o->save_cap = cap;
        }
        copy_stack_bytes(o->save, o->sp, used);
        o->save_len = used;
    }
    s->owner = t;
#ifdef WL_HAVE_VALGRIND_H
    /* The whole region is the incoming task's to use (see copy_stack_bytes). */
    VALGRIND_MAKE_MEM_UNDEFINED(s->lo, (size_t)(s->hi - s->lo));
#endif
    if (t->save_len) {
        copy_stack_bytes(s->hi - t->save_len, t->save, t->save_len);
        t->save_len = 0;
    }
    return 0;
}

/* The first frame of a context, matching what wl__ctx_switch pops. */
extern void wl__ctx_start(void);

void *wl__ctx_init(char *hi, void (*entry)(void *), void *arg)
{
    uintptr_t top = (uintptr_t)hi & ~(uintptr_t)15;
#if defined(__x86_64__)
    /* after `ret` pops the return address, rsp = top - 16 (16-aligned), so
     * the `call` in wl__ctx_start enters entry with the ABI's alignment */
    uint64_t *f = (uint64_t *)(top - 80);
    f[0] = 0x1F80u | ((uint64_t)0x037Fu << 32); /* default MXCSR, x87 CW */
    f[1] = 0;                                   /* r15 */
    f[2] = 0;                                   /* r14 */
    f[3] = 0;                                   /* r13 */
    f[4] = (uint64_t)(uintptr_t)arg;            /* r12 */
    f[5] = (uint64_t)(uintptr_t)entry;          /* rbx */
    f[6] = 0;                                   /* rbp */
    f[7] = (uint64_t)(uintptr_t)wl__ctx_start;  /* return address */
    f[8] = 0;
    f[9] = 0;
    return f;
#elif defined(__aarch64__)
    uint64_t *f = (uint64_t *)(top - 160);
    memset(f, 0, 160);
    f[0] = (uint64_t)(uintptr_t)arg;           /* x19 */
    f[1] = (uint64_t)(uintptr_t)entry;         /* x20 */
    f[11] = (uint64_t)(uintptr_t)wl__ctx_start; /* x30 */
    return f;
#else
#error "wl_scheduler: no context switch for this architecture"
#endif
}

/* ---- guard-page overflow reporter ---- */

static struct sigaction prev_segv;
static pthread_once_t segv_once = PTHREAD_ONCE_INIT;
static int segv_err;
static __thread void *altstack;

static void segv_handler(int sig, siginfo_t *si, void *uc)
{
    wl_task *t = wl__current;
    const char *addr = si ? si->si_addr : NULL;
    wl__stack *s = NULL;
    if (t)
        s = t->stack ? t->stack : t->loop->shared_;
    if (s && addr >= s->map && addr < s->lo) {
        char msg[256];
        int n = snprintf(msg, sizeof(msg),
                         "wl_scheduler: stack overflow in task '%s': it used all of its "
                         "%zu-byte stack and hit the guard page at %p; raise "
                         "wl_loop_options.stack_size\n",
                         t->name, (size_t)(s->hi - s->lo), (const void *)addr);
        if (n > 0)
            (void)!write(STDERR_FILENO, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg));
        signal(SIGSEGV, SIG_DFL); /* returning re-runs the access: the default action kills */
        return;
    }
    if (prev_segv.sa_flags & SA_SIGINFO) {
        if (prev_segv.sa_sigaction) {
            prev_segv.sa_sigaction(sig, si, uc);
            return;
        }
    } else if (prev_segv.sa_handler != SIG_DFL && prev_segv.sa_handler != SIG_IGN) {
        prev_segv.sa_handler(sig);
        return;
    }
    signal(SIGSEGV, SIG_DFL);
}

static void segv_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = segv_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, &prev_segv) != 0)
        segv_err = -errno;
}

int wl__overflow_handler_install(void)
{
    pthread_once(&segv_once, segv_install);
    if (segv_err)
        return segv_err;
    /* the handler must not run on the overflowed stack: give this thread an
     * alternate signal stack unless it has one (ASan installs its own) */
    stack_t old;
    if (sigaltstack(NULL, &old) != 0)
        return -errno;
    if (!(old.ss_flags & SS_DISABLE) || altstack)
        return 0;
    size_t len = 64 * 1024;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -errno;
    stack_t ss = {.ss_sp = p, .ss_size = len, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) {
        int err = -errno;
        munmap(p, len);
        return err;
    }
    altstack = p; /* kept for the thread's life: the kernel refers to it */
    return 0;
}
