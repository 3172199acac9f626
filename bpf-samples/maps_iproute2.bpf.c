// SPDX-License-Identifier: GPL-2.0
/*
 * maps_iproute2.bpf.c - iproute2 (tc/ip) legacy map layout: `struct bpf_elf_map` in SEC("maps").
 *
 * iproute2's own ELF loader (lib/bpf_legacy.c) reads 36-byte map structs:
 * type, size_key, size_value, max_elem, flags, then id, pinning, inner_id,
 * inner_idx. `pinning` is PIN_NONE(0)/PIN_OBJECT_NS(1)/PIN_GLOBAL_NS(2)
 * (pinned under /sys/fs/bpf/tc/globals/<name>); `id`/`inner_id`/`inner_idx`
 * tie an ARRAY_OF_MAPS to its inner map template. Programs use tc-style
 * section names: `classifier` (known to libbpf as SCHED_CLS) and
 * `ingress` (iproute2 takes any section name given with `sec`, libbpf does
 * not know it).
 *
 * NOT LOADABLE with libbpf >= 1.0 (legacy SEC("maps") is rejected at open);
 * it is the input of `tc filter add ... bpf obj maps_iproute2.bpf.o sec
 * classifier`. bpfcap must still parse it.
 */
#include "common.h"

struct bpf_elf_map {
	__u32 type;
	__u32 size_key;
	__u32 size_value;
	__u32 max_elem;
	__u32 flags;
	__u32 id;
	__u32 pinning;
	__u32 inner_id;
	__u32 inner_idx;
};

#define PIN_NONE 0
#define PIN_OBJECT_NS 1
#define PIN_GLOBAL_NS 2

struct bpf_elf_map SEC("maps") tc_counts = {
	.type = BPF_MAP_TYPE_HASH,
	.size_key = sizeof(__u32),
	.size_value = sizeof(__u64),
	.max_elem = 128,
	.pinning = PIN_GLOBAL_NS,
};

struct bpf_elf_map SEC("maps") tc_inner = {
	.type = BPF_MAP_TYPE_ARRAY,
	.size_key = sizeof(__u32),
	.size_value = sizeof(__u32),
	.max_elem = 1,
	.id = 42,
	.inner_idx = 0,
};

struct bpf_elf_map SEC("maps") tc_outer = {
	.type = BPF_MAP_TYPE_ARRAY_OF_MAPS,
	.size_key = sizeof(__u32),
	.size_value = sizeof(__u32),
	.max_elem = 1,
	.inner_id = 42,
	.pinning = PIN_OBJECT_NS,
};

SEC("classifier")
int tc_count(struct __sk_buff *skb)
{
	__u32 key = skb->protocol;
	__u64 one = 1, *v;
	__u32 *inner_val;
	void *inner;

	v = bpf_map_lookup_elem(&tc_counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&tc_counts, &key, &one, BPF_ANY);

	key = 0;
	inner = bpf_map_lookup_elem(&tc_outer, &key);
	if (inner) {
		inner_val = bpf_map_lookup_elem(inner, &key);
		if (inner_val)
			skb->mark = *inner_val;
	}
	return TC_ACT_OK;
}

SEC("ingress")
int tc_ingress_custom(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
