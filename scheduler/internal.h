/*
 * scheduler/internal.h -- private structures of the coroutine loop, shared
 * by loop.c (tasks, switching, waiters), stack.c (stacks, guard pages,
 * copy-stack), sync.c (await, gather, groups, semaphores, timeouts) and
 * io.c (sleep, files, TCP, name resolution).
 */
#ifndef WL_SCHED_INTERNAL_H
#define WL_SCHED_INTERNAL_H

#include "wlprof/sched.h"

#include <stdbool.h>

#include "util/util.h" /* wl__q_*: the intrusive queues */

/* ---- stacks (stack.c) ---- */
typedef struct wl__stack {
    struct wl__stack *next; /* pool link */
    char *map;              /* mmap base; the guard page is [map, map + page) */
    size_t map_len;
    char *lo;               /* lowest usable byte (just above the guard) */
    char *hi;               /* top of the stack (16-byte aligned; descriptor above) */
    wl_task *owner;         /* shared stack: task whose bytes are on it now */
    unsigned vg_id;         /* valgrind stack id */
} wl__stack;

int wl__stack_get(wl_loop *loop, wl__stack **out);
void wl__stack_put(wl_loop *loop, wl__stack *s);
void wl__stack_unmap(wl__stack *s);
void wl__stack_pool_drain(wl_loop *loop);
int wl__shared_stack_create(wl_loop *loop);
/* Copy-stack mode: put t's bytes on the shared stack (saving the owner's). */
int wl__shared_stack_enter(wl_loop *loop, wl_task *t);
/* True when [p, p+len) overlaps the loop's shared stack. */
bool wl__on_shared_stack(const wl_loop *loop, const void *p, size_t len);

/* The delay to arm a libuv timer with so that it fires no earlier than ms
 * from now. libuv measures timers from the loop's cached time, taken
 * before this turn's callbacks and tasks ran (50 ms of computing in the
 * same turn would make a 100 ms timer fire after 50), truncated to whole
 * milliseconds: refresh it, and add what the truncation and any lag took
 * off. Every scheduler timer is armed through this. */
static inline uint64_t wl__timer_delay(uv_loop_t *uv, uint64_t ms)
{
    uv_update_time(uv);
    uint64_t now_ns = uv_hrtime();
    uint64_t loop_ns = uv_now(uv) * 1000000u;
    uint64_t lag = now_ns > loop_ns ? (now_ns - loop_ns + 999999u) / 1000000u : 0;
    return ms > UINT64_MAX - lag ? UINT64_MAX : ms + lag;
}
void *wl__ctx_init(char *hi, void (*entry)(void *), void *arg);
int wl__overflow_handler_install(void);

/* assembly (switch_*.S): the task side of a switch -- save the running
 * context's frame in *save_sp and continue the one saved at load_sp. */
void wl__ctx_switch(void **save_sp, void *load_sp);

/* The scheduler side of a switch: same contract and frame as
 * wl__ctx_switch. On x86-64 it is inline asm so that no `call` is made and
 * the final `ret` pops the return-stack-buffer entry the task pushed when it
 * suspended (see switch_x86_64.S for why that matters). The asm saves and
 * restores every callee-saved register itself through the frame; the other
 * context may clobber every caller-saved one. It first steps over the red
 * zone so no live data of the enclosing function sits below rsp. */
#if defined(__x86_64__)
static inline __attribute__((always_inline)) void wl__ctx_resume(void **save_sp, void *load_sp)
{
    __asm__ volatile("subq    $128, %%rsp\n\t"
                     "leaq    1f(%%rip), %%rax\n\t"
                     "pushq   %%rax\n\t"
                     "pushq   %%rbp\n\t"
                     "pushq   %%rbx\n\t"
                     "pushq   %%r12\n\t"
                     "pushq   %%r13\n\t"
                     "pushq   %%r14\n\t"
                     "pushq   %%r15\n\t"
                     "subq    $8, %%rsp\n\t"
                     "stmxcsr (%%rsp)\n\t"
                     "fnstcw  4(%%rsp)\n\t"
                     "movl    (%%rsp), %%eax\n\t"
                     "movzwl  4(%%rsp), %%edx\n\t"
                     "movq    %%rsp, (%%rdi)\n\t"
                     "movq    %%rsi, %%rsp\n\t"
                     "xorl    (%%rsp), %%eax\n\t"
                     "testl   $0xffc0, %%eax\n\t"
                     "je      2f\n\t"
                     "ldmxcsr (%%rsp)\n"
                     "2:\n\t"
                     "cmpw    4(%%rsp), %%dx\n\t"
                     "je      3f\n\t"
                     "fldcw   4(%%rsp)\n"
                     "3:\n\t"
                     "addq    $8, %%rsp\n\t"
                     "popq    %%r15\n\t"
                     "popq    %%r14\n\t"
                     "popq    %%r13\n\t"
                     "popq    %%r12\n\t"
                     "popq    %%rbx\n\t"
                     "popq    %%rbp\n\t"
                     "ret\n"
                     "1:\n\t"
                     "addq    $128, %%rsp"
                     : "+D"(save_sp), "+S"(load_sp)
                     :
                     : "rax", "rcx", "rdx", "r8", "r9", "r10", "r11", "memory", "cc", "xmm0",
                       "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
                       "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "st", "st(1)",
                       "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)");
}
#else
static inline void wl__ctx_resume(void **save_sp, void *load_sp)
{
    wl__ctx_switch(save_sp, load_sp);
}
#endif

/* ---- tasks ---- */
enum {
    WL__T_NEW = 0, /* spawned, never resumed */
    WL__T_READY,   /* in loop->ready_ */
    WL__T_RUNNING,
    WL__T_WAITING, /* suspended in wl_waiter_wait or a yield */
    WL__T_DONE,
};
enum {
    WL__F_CANCELLED = 1u << 0, /* wl_task_cancel was called: interrupts are sticky */
    WL__F_DETACHED = 1u << 1,  /* free the record when done */
    WL__F_AWAITED = 1u << 2,   /* a wl_await/gather/group owns the handle */
    WL__F_REAPED = 1u << 3,    /* the owner has consumed the handle */
};
enum { WL__W_IDLE = 0, WL__W_WAITING, WL__W_WOKEN };

struct wl_task {
    wl_qnode node;  /* loop->ready_, or a semaphore's waiter queue */
    wl_qnode all;   /* loop->tasks_ while unfinished */
    wl_qnode gnode; /* group->members_ */
    wl_loop *loop;
    void *sp;              /* saved stack pointer while not running */
    wl__stack *stack;      /* dedicated stack, NULL in copy-stack mode / before start */
    char *save;            /* copy-stack mode: saved bytes [sp, shared->hi) */
    size_t save_len;
    size_t save_cap;
    wl_task_fn fn;
    void *arg;
    void *result;
    int status;
    unsigned state;
    unsigned flags;
    int pending_closes;    /* handles of this record still closing */
    wl_waiter *waiting;    /* the waiter this task is suspended on */
    wl_waiter *awaiter;    /* who waits for this task to finish */
    wl_waiter self_wait;   /* for the built-in awaits (lives in the heap record) */
    wl_group *group;
    wl_timeout *timeouts;  /* innermost open scope (on the task's own stack) */
    uint64_t tmo_armed;    /* deadline the timeout timer is set for, 0 = none */
    uint64_t tmo_fired;    /* largest deadline that has fired, 0 = none */
    uv_timer_t *tmo_timer; /* lazily allocated */
    uv_timer_t sleep_timer;
    int sleep_timer_init;
    void *asan_fake;
    char name[32];
};

extern __thread wl_task *wl__current;

void wl__make_ready(wl_task *t);
void wl__suspend(wl_task *t);
/* 0, WL_ECANCELED or WL_ETIMEDOUT: what an interruptible wait would see now. */
int wl__pending_interrupt(const wl_task *t);
void wl__interrupt(wl_waiter *w, int reason);
/* Frees t's record when it is finished, consumed and has no handle closing. */
void wl__task_release(wl_task *t);
void wl__task_finished_hooks(wl_task *t); /* sync.c: awaiter, group */
void wl__timeouts_close(wl_task *t);      /* sync.c */

#endif
