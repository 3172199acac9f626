// SPDX-License-Identifier: GPL-2.0
/*
 * tailcall.bpf.c - tail calls and BPF-to-BPF calls.
 *
 * Covers:
 *  - a BPF_MAP_TYPE_PROG_ARRAY whose slots are filled declaratively
 *    (`__array(values, int (void *))` + `.values = { [i] = &prog }`), so
 *    libbpf writes the target program fds into the map after loading;
 *  - bpf_tail_call from the entry program `tail_entry` to the targets
 *    `tail_target_v4` and `tail_target_other`, which sit in the same `tc`
 *    section (three programs in one section);
 *  - BPF-to-BPF calls: a static __noinline subprogram (`parse_proto`, in
 *    .text, verified as part of each caller) and a global function
 *    (`global_account`, in .text with global linkage, verified once on its
 *    own against its BTF prototype);
 *  - mixing subprogram calls with tail calls (allowed by the x86-64 JIT).
 */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} tail_stats SEC(".maps");

int tail_target_v4(struct __sk_buff *skb);
int tail_target_other(struct __sk_buff *skb);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__uint(key_size, sizeof(__u32));
	__array(values, int (void *));
} jmp_table SEC(".maps") = {
	.values = {
		[0] = (void *)&tail_target_v4,
		[1] = (void *)&tail_target_other,
	},
};

static __noinline __u32 parse_proto(struct __sk_buff *skb)
{
	return skb->protocol == bpf_htons(ETH_P_IP) ? 0 : 1;
}

__noinline int global_account(__u32 slot, __u32 len)
{
	__u64 *v = bpf_map_lookup_elem(&tail_stats, &slot);

	if (!v)
		return 0;
	__sync_fetch_and_add(v, len);
	return 1;
}

SEC("tc")
int tail_entry(struct __sk_buff *skb)
{
	__u32 slot = parse_proto(skb);

	global_account(slot, skb->len);
	bpf_tail_call(skb, &jmp_table, slot);
	/* only reached if the slot is empty */
	return TC_ACT_OK;
}

SEC("tc")
int tail_target_v4(struct __sk_buff *skb)
{
	global_account(0, 1);
	return TC_ACT_OK;
}

SEC("tc")
int tail_target_other(struct __sk_buff *skb)
{
	return parse_proto(skb) ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
