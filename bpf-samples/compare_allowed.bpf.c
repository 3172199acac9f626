// SPDX-License-Identifier: GPL-2.0
/*
 * compare_allowed.bpf.c - pointers compared in the ways the verifier allows without
 * CAP_PERFMON (socket filters, one XDP program).
 *
 * The counterpart of pointer_compare.bpf.c: none of these is the gate pointer_compared
 * (rules/kernel/verifier.toml), and the object's answer holds no CAP_PERFMON (tests/token.rs
 * loads it through a token with its answer and shows every item required):
 *  - `null_way`: a map lookup's result compared with a number on the way its NULL check
 *    leaves for NULL, where the verifier has made it the number 0 (mark_ptr_or_null_regs);
 *  - `null_way_copy`: a copy of a lookup's result, made before its NULL check, compared
 *    with a number on the way the check leaves for NULL: the verifier makes every register
 *    that holds the same result the number 0 (mark_ptr_or_null_regs, by the result's id);
 *    bpfcap refines only the register tested and counts the copy, which may be NULL, for
 *    the allowed side;
 *  - `global_not_null`: a global variable's address (a map value's, never NULL) against 0 for
 *    inequality, a jump the verifier decides itself (is_branch_taken, reg_not_null);
 *  - `packet_reloaded`: the packet's start kept on the stack across a map lookup that is given
 *    a stack pointer below it, reloaded, and ordered against the packet's end in 64 bits
 *    (try_match_pkt_pointers): bpfcap does not know what the reloaded register holds, and
 *    such a register counts for the allowed side.
 * Written in assembly: what a compiler makes of C differs from version to version.
 */
#include "common.h"

struct {
	/* a hash map: its lookup may return NULL on every kernel (recent verifiers know an
	 * array's lookup with a constant key in bounds is never NULL: Linux 6.18 does) */
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} slots SEC(".maps");

SEC("socket")
__attribute__((naked)) int null_way(void)
{
	asm volatile("r1 = 0\n"
		     "*(u32 *)(r10 - 4) = r1\n"
		     "r2 = r10\n"
		     "r2 += -4\n"
		     "r1 = %[slots] ll\n"
		     "call %[lookup]\n"
		     "r6 = 3\n"
		     "if r0 == 0 goto 1f\n"
		     "r0 = 0\n"
		     "exit\n"
		     "1:\n"
		     "if r0 > r6 goto 2f\n"
		     "2:\n"
		     "r0 = 0\n"
		     "exit\n"
		     :
		     : [slots] "i"(&slots), [lookup] "i"(BPF_FUNC_map_lookup_elem));
}

SEC("socket")
__attribute__((naked)) int null_way_copy(void)
{
	asm volatile("r1 = 0\n"
		     "*(u32 *)(r10 - 4) = r1\n"
		     "r2 = r10\n"
		     "r2 += -4\n"
		     "r1 = %[slots] ll\n"
		     "call %[lookup]\n"
		     "r7 = r0\n"
		     "r6 = 3\n"
		     "if r0 != 0 goto 1f\n"
		     "if r7 > r6 goto 1f\n"
		     "1:\n"
		     "r0 = 0\n"
		     "exit\n"
		     :
		     : [slots] "i"(&slots), [lookup] "i"(BPF_FUNC_map_lookup_elem));
}

/* global data: the loader fills in its address, a pointer into the .bss map's value */
__u64 seen;

SEC("socket")
__attribute__((naked)) int global_not_null(void)
{
	asm volatile("r1 = %[seen] ll\n"
		     "r0 = 0\n"
		     "if r1 != 0 goto 1f\n"
		     "r0 = 1\n"
		     "1:\n"
		     "exit\n"
		     :
		     : [seen] "i"(&seen));
}

SEC("xdp")
__attribute__((naked)) int packet_reloaded(void)
{
	/* struct xdp_md: data at 0, data_end at 4 */
	asm volatile("r6 = r1\n"
		     "r2 = *(u32 *)(r6 + 0)\n"
		     "*(u64 *)(r10 - 8) = r2\n"
		     "r1 = 0\n"
		     "*(u32 *)(r10 - 16) = r1\n"
		     "r2 = r10\n"
		     "r2 += -16\n"
		     "r1 = %[slots] ll\n"
		     "call %[lookup]\n"
		     "r7 = *(u32 *)(r6 + 4)\n"
		     "r4 = *(u64 *)(r10 - 8)\n"
		     "r4 += 14\n"
		     "r0 = 2\n"
		     "if r4 > r7 goto 1f\n"
		     "r0 = 2\n"
		     "1:\n"
		     "exit\n"
		     :
		     : [slots] "i"(&slots), [lookup] "i"(BPF_FUNC_map_lookup_elem));
}

char LICENSE[] SEC("license") = "GPL";
