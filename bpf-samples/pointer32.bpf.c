// SPDX-License-Identifier: GPL-2.0
/*
 * pointer32.bpf.c - 32-bit operations on pointers (socket filters).
 *
 * Covers the verifier's gates on a pointer in 32-bit arithmetic (rules/kernel/verifier.toml),
 * which a token passes only with CAP_PERFMON (allow_ptr_leaks, kernel/bpf/verifier.c):
 *  - `stack_low_half`: `w0 = w10`, a 32-bit copy of the frame pointer ('R10 partial copy of
 *    pointer' without it, check_alu_op): the gate pointer_truncated;
 *  - `stack_minus_number`: `w2 -= w3` with r2 a stack pointer and r3 a number ('R2 32-bit
 *    pointer arithmetic prohibited' without it, adjust_ptr_min_max_vals): the gate
 *    pointer_in_32bit_subtraction;
 *  - `global_low_half`: `w0 = w1` with r1 the address of a global variable, which the loader
 *    fills in (a pointer into the .bss map's value): pointer_truncated again;
 *  - `calls_low_half`: the copy of the frame pointer in a subprogram it calls.
 * Written in assembly: what a compiler makes of C differs from version to version.
 * Each program needs CAP_PERFMON on its own (tests/token.rs loads them one at a time).
 */
#include "common.h"

SEC("socket")
__attribute__((naked)) int stack_low_half(void)
{
	asm volatile("w0 = w10\n"
		     "r0 = 0\n"
		     "exit\n");
}

SEC("socket")
__attribute__((naked)) int stack_minus_number(void)
{
	asm volatile("r2 = r10\n"
		     "r2 += -8\n"
		     "w3 = 8\n"
		     "w2 -= w3\n"
		     "r0 = 0\n"
		     "exit\n");
}

/* global data: the loader fills in its address, a pointer into the .bss map's value */
__u64 counter;

SEC("socket")
__attribute__((naked)) int global_low_half(void)
{
	asm volatile("r1 = %[counter] ll\n"
		     "w0 = w1\n"
		     "r0 = 0\n"
		     "exit\n"
		     :
		     : [counter] "i"(&counter));
}

/* a subprogram: the verifier checks its instructions as it checks the caller's */
static __attribute__((noinline)) int sub_low_half(int x)
{
	asm volatile("w1 = w10" ::: "r1");
	return x;
}

SEC("socket")
int calls_low_half(struct __sk_buff *skb)
{
	return sub_low_half(skb->len) & 1;
}

char LICENSE[] SEC("license") = "GPL";
