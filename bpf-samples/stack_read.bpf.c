// SPDX-License-Identifier: GPL-2.0
/*
 * stack_read.bpf.c - stack bytes read before anything wrote them (socket filters).
 *
 * Covers the verifier's gate on an uninitialised stack read (rules/kernel/verifier.toml: the
 * gate uninitialized_stack_read), which a token passes only with CAP_PERFMON
 * (allow_uninit_stack, kernel/bpf/verifier.c check_stack_range_initialized,
 * check_stack_read_fixed_off: 'invalid read from stack ...' without it):
 *  - `key_padding`: a map key of 16 bytes whose 4 bytes of padding were never set, given to
 *    bpf_map_lookup_elem (it reads the map's key size: ARG_PTR_TO_MAP_KEY), as a C struct
 *    { __u64 a; __u32 pad; __u32 b; } filled field by field leaves it. (Padding at the end of
 *    an 8-byte slot whose start a register or number was stored to passes: the verifier takes
 *    such a store for a spill and lets a helper read the whole slot.)
 *  - `output_partly_written`: 16 bytes given to bpf_ringbuf_output, 8 of them written;
 *  - `load_unwritten`: a load from a stack slot nothing stored to.
 * And one the verifier allows without CAP_PERFMON:
 *  - `key_written`: the same key with every byte written (tests/token.rs shows its own answer
 *    holds no CAP_PERFMON and loads through a token).
 * Written in assembly: what a compiler makes of C differs from version to version.
 * Each gated program needs CAP_PERFMON on its own (tests/token.rs loads them one at a time).
 */
#include "common.h"

struct key {
	__u64 a;
	__u32 pad; /* never set */
	__u32 b;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, struct key);
	__type(value, __u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

SEC("socket")
__attribute__((naked)) int key_padding(void)
{
	asm volatile("r1 = 1\n"
		     "*(u64 *)(r10 - 16) = r1\n"
		     "*(u32 *)(r10 - 4) = r1\n"
		     "r2 = r10\n"
		     "r2 += -16\n"
		     "r1 = %[counts] ll\n"
		     "call %[lookup]\n"
		     "r0 = 0\n"
		     "exit\n"
		     :
		     : [counts] "i"(&counts), [lookup] "i"(BPF_FUNC_map_lookup_elem));
}

SEC("socket")
__attribute__((naked)) int key_written(void)
{
	asm volatile("r1 = 1\n"
		     "*(u64 *)(r10 - 16) = r1\n"
		     "*(u32 *)(r10 - 8) = r1\n"
		     "*(u32 *)(r10 - 4) = r1\n"
		     "r2 = r10\n"
		     "r2 += -16\n"
		     "r1 = %[counts] ll\n"
		     "call %[lookup]\n"
		     "r0 = 0\n"
		     "exit\n"
		     :
		     : [counts] "i"(&counts), [lookup] "i"(BPF_FUNC_map_lookup_elem));
}

SEC("socket")
__attribute__((naked)) int output_partly_written(void)
{
	asm volatile("r1 = 7\n"
		     "*(u64 *)(r10 - 16) = r1\n"
		     "r2 = r10\n"
		     "r2 += -16\n"
		     "r1 = %[events] ll\n"
		     "r3 = 16\n"
		     "r4 = 0\n"
		     "call %[output]\n"
		     "r0 = 0\n"
		     "exit\n"
		     :
		     : [events] "i"(&events), [output] "i"(BPF_FUNC_ringbuf_output));
}

SEC("socket")
__attribute__((naked)) int load_unwritten(void)
{
	asm volatile("r0 = *(u64 *)(r10 - 8)\n"
		     "r0 = 0\n"
		     "exit\n");
}

char LICENSE[] SEC("license") = "GPL";
