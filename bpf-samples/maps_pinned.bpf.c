// SPDX-License-Identifier: GPL-2.0
/*
 * maps_pinned.bpf.c - a BTF-defined map pinned by name.
 *
 * Covers `__uint(pinning, LIBBPF_PIN_BY_NAME)`: libbpf looks for
 * <pin_root_path>/<map name> (default /sys/fs/bpf/bpfcap_pinned_counts),
 * reuses it if present and compatible (BPF_OBJ_GET), else creates the map
 * and pins it (BPF_OBJ_PIN). A loader therefore needs a mounted bpffs and the
 * BPF_OBJ_PIN/BPF_OBJ_GET commands. Kept in its own object so the other
 * samples load without a bpffs.
 */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpfcap_pinned_counts SEC(".maps");

SEC("socket")
int pinned_count(struct __sk_buff *skb)
{
	__u32 key = skb->protocol;
	__u64 one = 1, *v;

	v = bpf_map_lookup_elem(&bpfcap_pinned_counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&bpfcap_pinned_counts, &key, &one, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
