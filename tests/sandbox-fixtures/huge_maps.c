// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
// A 6 KiB object declaring two 2 GiB array maps: `verify` must refuse to load it within its
// memory budget, and say why (tests/token.rs).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct page {
	char bytes[4096];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 524288);
	__type(key, __u32);
	__type(value, struct page);
} first SEC(".maps"), second SEC(".maps");

SEC("socket")
int touch(struct __sk_buff *skb)
{
	__u32 key = 0;
	struct page *a = bpf_map_lookup_elem(&first, &key);
	struct page *b = bpf_map_lookup_elem(&second, &key);

	if (a && b)
		a->bytes[0] = b->bytes[0];
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
