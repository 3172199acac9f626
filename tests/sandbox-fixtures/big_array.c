// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
// A socket filter with a 64 MiB array map (16384 entries of 4 KiB): it loads within the
// sandbox's default memory budget and fails under a smaller one (tests/sandbox.rs).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct page {
	char bytes[4096];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct page);
} pages SEC(".maps");

SEC("socket")
int touch(struct __sk_buff *skb)
{
	__u32 key = 0;
	struct page *p = bpf_map_lookup_elem(&pages, &key);

	if (p)
		p->bytes[0] = 1;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
