/*
 * switch_x86_64.S -- the task side of the context switch (System V x86-64).
 *
 * wl__ctx_switch(void **save_sp, void *load_sp) pushes the callee-saved
 * registers (rbp rbx r12-r15) and the FP control words (MXCSR and the x87
 * control word, which the ABI makes callee-saved) on the current stack,
 * stores the stack pointer in *save_sp, loads load_sp and pops the other
 * context's registers in reverse order, then jumps to the return address
 * found on that stack. No signal mask is touched: that is what makes this
 * ~50x cheaper than swapcontext.
 *
 * Frame on a suspended stack, from its saved sp upwards:
 *   [mxcsr:4 | x87cw:2 | pad:2] r15 r14 r13 r12 rbx rbp return-address
 * A new context gets the same frame from wl__ctx_init() (stack.c) with
 * r12 = argument, rbx = entry function and return address = wl__ctx_start.
 * The scheduler side builds the same frame with an inline-asm switch
 * (wl__ctx_resume in internal.h) whose return address is a label in the
 * scheduler's own code.
 *
 * Why the last instruction is `jmp *%rcx`, not `ret`: the CPU predicts a
 * `ret` from its return stack buffer (RSB), i.e. "back to whoever called
 * this function". After a switch that prediction is always wrong, and the
 * mispredicted returns (two per yield round trip, ~20 cycles each) were
 * most of the cost of a yield. So the two directions are made asymmetric:
 *   task -> scheduler: this function. The task's `call` pushes its return
 *     address on the RSB and nothing pops it; we leave through an indirect
 *     jmp, which the branch target buffer predicts (the scheduler resumes at
 *     one label).
 *   scheduler -> task: wl__ctx_resume, inline in the scheduler loop, makes
 *     no `call` and leaves with `ret`, which pops exactly the entry the task
 *     pushed above: predicted correctly, and the RSB stays balanced for the
 *     task's own returns (wl_yield back to its caller).
 * Both directions read and write the same frame, so either can resume a
 * context saved by the other; only branch prediction differs.
 *
 * FP control words are restored only when they differ from the current
 * ones (ldmxcsr/fldcw are slow, partly serialising; they almost never
 * differ). Only MXCSR's control bits (6-15: DAZ, masks, rounding, FZ) are
 * compared: its exception flags (0-5) are sticky status that the ABI does
 * not preserve across calls, and they differ all the time. The current values are read back with loads no wider than the
 * stores that wrote them, so store-to-load forwarding applies.
 */
    .text
    .globl  wl__ctx_switch
    .hidden wl__ctx_switch
    .type   wl__ctx_switch, @function
    .p2align 4
wl__ctx_switch:
    .cfi_startproc
    pushq   %rbp
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    subq    $8, %rsp
    stmxcsr (%rsp)
    fnstcw  4(%rsp)
    movl    (%rsp), %eax
    movzwl  4(%rsp), %edx
    movq    %rsp, (%rdi)
    movq    %rsi, %rsp
    xorl    (%rsp), %eax
    testl   $0xffc0, %eax       /* control bits only: flags are not preserved */
    jne     .Lload_mxcsr
    cmpw    4(%rsp), %dx
    jne     .Lload_x87cw
.Lrestored:
    addq    $8, %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    popq    %rcx
    jmpq    *%rcx
.Lload_mxcsr:
    ldmxcsr (%rsp)
    cmpw    4(%rsp), %dx
    je      .Lrestored
.Lload_x87cw:
    fldcw   4(%rsp)
    jmp     .Lrestored
    .cfi_endproc
    .size   wl__ctx_switch, .-wl__ctx_switch

/* First code a new context runs: entry(arg); entry never returns. The CFI
 * marks the outermost frame so unwinders (gdb, libunwind) stop here. */
    .globl  wl__ctx_start
    .hidden wl__ctx_start
    .type   wl__ctx_start, @function
    .p2align 4
wl__ctx_start:
    .cfi_startproc
    .cfi_undefined rip
    movq    %r12, %rdi
    callq   *%rbx
    ud2
    .cfi_endproc
    .size   wl__ctx_start, .-wl__ctx_start

    .section .note.GNU-stack, "", @progbits
