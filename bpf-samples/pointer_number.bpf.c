// SPDX-License-Identifier: GPL-2.0
/*
 * pointer_number.bpf.c - a pointer made a number by a negation, a byte swap or a
 * sign-extending copy (socket filters).
 *
 * Covers the verifier's gates that turn a pointer into a number (rules/kernel/verifier.toml),
 * which a token passes only with CAP_PERFMON (allow_ptr_leaks, kernel/bpf/verifier.c
 * check_alu_op):
 *  - `stack_negated`: `r1 = -r1` with r1 a stack pointer ('R1 pointer arithmetic prohibited'
 *    without it): the gate pointer_negated_or_swapped;
 *  - `stack_swapped`: `r1 = be64 r1`, the byte swap of the 32-bit instruction class: the same
 *    gate;
 *  - `stack_bswapped`: `r1 = bswap64 r1`, the byte swap of the 64-bit class (BPF ISA v4):
 *    the same gate;
 *  - `stack_sign_extended`: `r1 = (s32)r2` with r2 a stack pointer ('R2 sign-extension part
 *    of pointer' without it): the gate pointer_sign_extended.
 * Written in assembly: what a compiler makes of C differs from version to version. Debian 12's
 * clang 14 does not know the ISA v4 instructions, so those two are written as their eight
 * bytes (code, registers, offset, immediate; little-endian).
 * Each program needs CAP_PERFMON on its own (tests/token.rs loads them one at a time).
 */
#include "common.h"

SEC("socket")
__attribute__((naked)) int stack_negated(void)
{
	asm volatile("r1 = r10\n"
		     "r1 = -r1\n"
		     "r0 = 0\n"
		     "exit\n");
}

SEC("socket")
__attribute__((naked)) int stack_swapped(void)
{
	asm volatile("r1 = r10\n"
		     "r1 = be64 r1\n"
		     "r0 = 0\n"
		     "exit\n");
}

SEC("socket")
__attribute__((naked)) int stack_bswapped(void)
{
	asm volatile("r1 = r10\n"
		     /* r1 = bswap64 r1: code 0xd7 (ALU64 | END), dst r1, imm 64 */
		     ".quad 0x00000040000001d7\n"
		     "r0 = 0\n"
		     "exit\n");
}

SEC("socket")
__attribute__((naked)) int stack_sign_extended(void)
{
	asm volatile("r2 = r10\n"
		     /* r1 = (s32)r2: code 0xbf (ALU64 | MOV | X), dst r1, src r2, offset 32 */
		     ".quad 0x00000000002021bf\n"
		     "r0 = 0\n"
		     "exit\n");
}

char LICENSE[] SEC("license") = "GPL";
