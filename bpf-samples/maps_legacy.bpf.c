// SPDX-License-Identifier: GPL-2.0
/*
 * maps_legacy.bpf.c - legacy map definitions: `struct bpf_map_def` in SEC("maps").
 *
 * This is the pre-BTF layout that libbpf < 1.0 (and many old samples,
 * bcc-less loaders and Go/Rust loaders) parsed: an array of fixed-size
 * structs in an ELF section named "maps", one symbol per map. libbpf 1.x
 * headers dropped `struct bpf_map_def`, so it is declared here. Maps: a
 * HASH (BPF_F_NO_PREALLOC), an ARRAY, a PERCPU_ARRAY and a PROG_ARRAY used
 * by bpf_tail_call; programs: a socket filter and a kprobe.
 *
 * NOT LOADABLE with libbpf >= 1.0 by design: bpf_object__open() fails with
 * "legacy map definitions in 'maps' section are not supported by libbpf
 * v1.0+" (-ENOTSUP). bpfcap must still parse it (map types from the
 * struct, programs from the sections).
 */
#include "common.h"

struct bpf_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
};

struct bpf_map_def SEC("maps") legacy_hash = {
	.type = BPF_MAP_TYPE_HASH,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 256,
	.map_flags = BPF_F_NO_PREALLOC,
};

struct bpf_map_def SEC("maps") legacy_array = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 4,
};

struct bpf_map_def SEC("maps") legacy_percpu = {
	.type = BPF_MAP_TYPE_PERCPU_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 1,
};

struct bpf_map_def SEC("maps") legacy_jmp_table = {
	.type = BPF_MAP_TYPE_PROG_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u32),
	.max_entries = 4,
};

SEC("socket")
int legacy_socket(struct __sk_buff *skb)
{
	__u32 key = 0;
	__u64 *v;

	v = bpf_map_lookup_elem(&legacy_array, &key);
	if (v)
		*v += 1;
	v = bpf_map_lookup_elem(&legacy_percpu, &key);
	if (v)
		*v += skb->len;
	key = skb->protocol;
	v = bpf_map_lookup_elem(&legacy_hash, &key);
	if (!v) {
		__u64 one = 1;

		bpf_map_update_elem(&legacy_hash, &key, &one, BPF_ANY);
	}
	bpf_tail_call(skb, &legacy_jmp_table, 0);
	return skb->len;
}

SEC("kprobe/do_nanosleep")
int legacy_kprobe(struct pt_regs *ctx)
{
	__u32 key = 1;
	__u64 *v = bpf_map_lookup_elem(&legacy_array, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
