/*
 * switch_x86_64.S -- the context switch of the coroutine loop (System V x86-64).
 *
 * wl__ctx_switch(void **save_sp, void *load_sp) pushes the callee-saved
 * registers (rbp rbx r12-r15) and the FP control words (MXCSR and the x87
 * control word, which the ABI makes callee-saved) on the current stack,
 * stores the stack pointer in *save_sp, loads load_sp and pops the other
 * context's registers in reverse order. The return address on that stack
 * takes the CPU back into the other context. No signal mask is touched:
 * that is what makes this ~50x cheaper than swapcontext.
 *
 * Frame on a suspended stack, from its saved sp upwards:
 *   [mxcsr:4 | x87cw:4] r15 r14 r13 r12 rbx rbp return-address
 * A new context gets the same frame from wl__ctx_init() (stack.c) with
 * r12 = argument, rbx = entry function and return address = wl__ctx_start.
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
    movq    %rsp, (%rdi)
    movq    %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw   4(%rsp)
    addq    $8, %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    ret
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
