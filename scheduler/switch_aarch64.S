/*
 * switch_aarch64.S -- the context switch of the coroutine loop (AAPCS64).
 *
 * wl__ctx_switch(void **save_sp, void *load_sp) stores the callee-saved
 * registers x19-x28, the frame pointer x29, the link register x30 and the
 * low halves d8-d15 of v8-v15 in a 160-byte frame on the current stack,
 * saves sp in *save_sp, switches to load_sp and reloads the other frame;
 * `ret` then jumps to the other context's x30. FPCR is not saved: AAPCS64
 * treats its rounding/exception fields as thread state that a callee must
 * leave as it found it, so every context sees the same value.
 *
 * Frame (offsets from the saved sp):
 *   0 x19  8 x20  16 x21 24 x22 32 x23 40 x24 48 x25 56 x26 64 x27 72 x28
 *   80 x29 88 x30 96..152 d8-d15
 * A new context gets this frame from wl__ctx_init() (stack.c) with
 * x19 = argument, x20 = entry function, x30 = wl__ctx_start.
 */
    .text
    .globl  wl__ctx_switch
    .hidden wl__ctx_switch
    .type   wl__ctx_switch, %function
    .p2align 4
wl__ctx_switch:
    .cfi_startproc
    sub     sp, sp, #160
    stp     x19, x20, [sp, #0]
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]
    stp     d8, d9, [sp, #96]
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
    mov     x2, sp
    str     x2, [x0]
    mov     sp, x1
    ldp     x19, x20, [sp, #0]
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    ldp     d8, d9, [sp, #96]
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
    add     sp, sp, #160
    ret
    .cfi_endproc
    .size   wl__ctx_switch, .-wl__ctx_switch

    .globl  wl__ctx_start
    .hidden wl__ctx_start
    .type   wl__ctx_start, %function
    .p2align 4
wl__ctx_start:
    .cfi_startproc
    .cfi_undefined x30
    mov     x0, x19
    blr     x20
    brk     #0
    .cfi_endproc
    .size   wl__ctx_start, .-wl__ctx_start

    .section .note.GNU-stack, "", %progbits
