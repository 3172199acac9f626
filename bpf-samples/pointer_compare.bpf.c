// SPDX-License-Identifier: GPL-2.0
/*
 * pointer_compare.bpf.c - pointers compared (socket filters, one XDP program).
 *
 * Covers the verifier's gate on a pointer compared (rules/kernel/verifier.toml: the gate
 * pointer_compared), which a token passes only with CAP_PERFMON (allow_ptr_leaks,
 * kernel/bpf/verifier.c check_cond_jmp_op: 'R%d pointer comparison prohibited' without it):
 *  - `stack_compared`: two stack pointers ordered (`if r1 > r2`), as a loop over a stack
 *    buffer that a compiler turned into a pointer walk does;
 *  - `stack_against_number`: a stack pointer against a number (`if r1 > 0x5`);
 *  - `stack_against_zero`: a stack pointer against 0 for equality (`if r1 == 0x0`): the
 *    verifier decides such a jump itself only for pointers it knows are never NULL (a map
 *    value's: is_branch_taken, reg_not_null), and a stack pointer is not one of them;
 *  - `global_compared`: a global variable's address (a pointer into the .bss map's value)
 *    against an address past it;
 *  - `packet_compared_in_32bit`: the packet's start against its end in a 32-bit comparison
 *    (`if w2 > w3`): the verifier learns a packet range only from a 64-bit one;
 *  - `lookup_compared`: a map lookup's result past its NULL check (a map value, never NULL:
 *    mark_ptr_or_null_regs) against an address past it, as a pointer walk over the value
 *    does.
 * What the verifier allows without CAP_PERFMON is in compare_allowed.bpf.c.
 * Written in assembly: what a compiler makes of C differs from version to version.
 * Each program needs CAP_PERFMON on its own (tests/token.rs loads them one at a time).
 */
#include "common.h"

SEC("socket")
__attribute__((naked)) int stack_compared(void)
{
	asm volatile("r1 = r10\n"
		     "r1 += -8\n"
		     "r2 = r10\n"
		     "r0 = 0\n"
		     "if r1 > r2 goto 1f\n"
		     "r0 = 1\n"
		     "1:\n"
		     "exit\n");
}

SEC("socket")
__attribute__((naked)) int stack_against_number(void)
{
	asm volatile("r1 = r10\n"
		     "r0 = 0\n"
		     "if r1 > 5 goto 1f\n"
		     "r0 = 1\n"
		     "1:\n"
		     "exit\n");
}

SEC("socket")
__attribute__((naked)) int stack_against_zero(void)
{
	asm volatile("r1 = r10\n"
		     "r0 = 0\n"
		     "if r1 == 0 goto 1f\n"
		     "r0 = 1\n"
		     "1:\n"
		     "exit\n");
}

/* global data: the loader fills in its address, a pointer into the .bss map's value */
__u64 slots[2];

SEC("socket")
__attribute__((naked)) int global_compared(void)
{
	asm volatile("r1 = %[slots] ll\n"
		     "r2 = r1\n"
		     "r2 += 8\n"
		     "r0 = 0\n"
		     "if r1 < r2 goto 1f\n"
		     "r0 = 1\n"
		     "1:\n"
		     "exit\n"
		     :
		     : [slots] "i"(slots));
}

SEC("xdp")
__attribute__((naked)) int packet_compared_in_32bit(void)
{
	/* r2 = ctx->data, r3 = ctx->data_end (struct xdp_md) */
	asm volatile("r2 = *(u32 *)(r1 + 0)\n"
		     "r3 = *(u32 *)(r1 + 4)\n"
		     "r0 = 2\n"
		     "if w2 > w3 goto 1f\n"
		     "r0 = 2\n"
		     "1:\n"
		     "exit\n");
}

struct {
	/* a hash map: its lookup may return NULL on every kernel (recent verifiers know an
	 * array's lookup with a constant key in bounds is never NULL: Linux 6.18 does) */
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64[4]);
} values SEC(".maps");

SEC("socket")
__attribute__((naked)) int lookup_compared(void)
{
	asm volatile("r1 = 0\n"
		     "*(u32 *)(r10 - 4) = r1\n"
		     "r2 = r10\n"
		     "r2 += -4\n"
		     "r1 = %[values] ll\n"
		     "call %[lookup]\n"
		     "if r0 == 0 goto 1f\n"
		     "r1 = r0\n"
		     "r1 += 16\n"
		     "if r0 < r1 goto 1f\n"
		     "1:\n"
		     "r0 = 0\n"
		     "exit\n"
		     :
		     : [values] "i"(&values), [lookup] "i"(BPF_FUNC_map_lookup_elem));
}

char LICENSE[] SEC("license") = "GPL";
