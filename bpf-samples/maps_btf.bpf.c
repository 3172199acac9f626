// SPDX-License-Identifier: GPL-2.0
/*
 * maps_btf.bpf.c - one BTF-defined map (SEC(".maps")) of (almost) every kind.
 *
 * Covers map types: HASH, ARRAY, PERCPU_HASH, PERCPU_ARRAY, LRU_HASH,
 * LRU_PERCPU_HASH, LPM_TRIE (BPF_F_NO_PREALLOC), RINGBUF, USER_RINGBUF,
 * PERF_EVENT_ARRAY (max_entries left 0: libbpf sizes it to the CPU count),
 * PROG_ARRAY, STACK_TRACE, SOCKMAP, SOCKHASH, DEVMAP, DEVMAP_HASH, CPUMAP,
 * XSKMAP, SK_STORAGE, TASK_STORAGE, INODE_STORAGE, CGRP_STORAGE,
 * BLOOM_FILTER (map_extra = number of hash functions), QUEUE, STACK,
 * ARRAY_OF_MAPS (inner map given by a named struct via __array(values, ...))
 * and HASH_OF_MAPS (inner map defined inline), plus ARENA.
 * ARENA: clang 14 cannot express __arena (address_space(1)) pointers
 * (needs clang 18+), but the map definition itself is plain BTF:
 * type BPF_MAP_TYPE_ARENA, map_flags BPF_F_MMAPABLE, max_entries = pages.
 * Pinned maps are in maps_pinned.bpf.c, struct_ops maps in struct_ops.bpf.c,
 * CGROUP_STORAGE in cgroup_skb.bpf.c, REUSEPORT_SOCKARRAY in netmisc.bpf.c.
 * One program touches a few of them so they are also relocated into code.
 */
#include "common.h"

struct lpm_key {
	__u32 prefixlen;
	__u32 addr;
};

struct local_val {
	__u64 a;
	__u64 b;
};

#define SIMPLE_MAP(_name, _type, _k, _v, _n)	\
	struct {				\
		__uint(type, _type);		\
		__uint(max_entries, _n);	\
		__type(key, _k);		\
		__type(value, _v);		\
	} _name SEC(".maps")

SIMPLE_MAP(m_hash, BPF_MAP_TYPE_HASH, __u32, __u64, 64);
SIMPLE_MAP(m_array, BPF_MAP_TYPE_ARRAY, __u32, __u64, 64);
SIMPLE_MAP(m_percpu_hash, BPF_MAP_TYPE_PERCPU_HASH, __u32, __u64, 64);
SIMPLE_MAP(m_percpu_array, BPF_MAP_TYPE_PERCPU_ARRAY, __u32, __u64, 64);
SIMPLE_MAP(m_lru_hash, BPF_MAP_TYPE_LRU_HASH, __u32, __u64, 64);
SIMPLE_MAP(m_lru_percpu_hash, BPF_MAP_TYPE_LRU_PERCPU_HASH, __u32, __u64, 64);
SIMPLE_MAP(m_prog_array, BPF_MAP_TYPE_PROG_ARRAY, __u32, __u32, 8);
SIMPLE_MAP(m_sockmap, BPF_MAP_TYPE_SOCKMAP, __u32, __u64, 8);
SIMPLE_MAP(m_sockhash, BPF_MAP_TYPE_SOCKHASH, __u32, __u64, 8);
SIMPLE_MAP(m_devmap, BPF_MAP_TYPE_DEVMAP, __u32, __u32, 8);
SIMPLE_MAP(m_devmap_hash, BPF_MAP_TYPE_DEVMAP_HASH, __u32, __u32, 8);
SIMPLE_MAP(m_cpumap, BPF_MAP_TYPE_CPUMAP, __u32, __u32, 2);
SIMPLE_MAP(m_xskmap, BPF_MAP_TYPE_XSKMAP, __u32, __u32, 8);

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 128);
	__type(key, struct lpm_key);
	__type(value, __u32);
} m_lpm_trie SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} m_ringbuf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_USER_RINGBUF);
	__uint(max_entries, 4096);
} m_user_ringbuf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} m_perf_event_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 32);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 64 * sizeof(__u64));
} m_stack_trace SEC(".maps");

#define LOCAL_STORAGE(_name, _type)			\
	struct {					\
		__uint(type, _type);			\
		__uint(map_flags, BPF_F_NO_PREALLOC);	\
		__type(key, int);			\
		__type(value, struct local_val);	\
	} _name SEC(".maps")

LOCAL_STORAGE(m_sk_storage, BPF_MAP_TYPE_SK_STORAGE);
LOCAL_STORAGE(m_task_storage, BPF_MAP_TYPE_TASK_STORAGE);
LOCAL_STORAGE(m_inode_storage, BPF_MAP_TYPE_INODE_STORAGE);
LOCAL_STORAGE(m_cgrp_storage, BPF_MAP_TYPE_CGRP_STORAGE);

struct {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__uint(max_entries, 256);
	__uint(map_extra, 3);
	__type(value, __u32);
} m_bloom_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 32);
	__type(value, __u64);
} m_queue SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK);
	__uint(max_entries, 32);
	__type(value, __u64);
} m_stack SEC(".maps");

struct inner_array {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} m_inner0 SEC(".maps"), m_inner1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner_array);
} m_array_of_maps SEC(".maps") = {
	.values = { &m_inner0, &m_inner1 },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 8);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_HASH);
		__uint(max_entries, 16);
		__type(key, __u32);
		__type(value, __u64);
	});
} m_hash_of_maps SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 4); /* pages */
} m_arena SEC(".maps");

SEC("tc")
int maps_touch(struct __sk_buff *skb)
{
	__u32 key = skb->ifindex & 3, *inner_val;
	__u64 len = skb->len, *v;
	void *inner;

	v = bpf_map_lookup_elem(&m_hash, &key);
	if (v)
		*v += len;
	bpf_map_push_elem(&m_queue, &len, 0);
	bpf_map_push_elem(&m_bloom_filter, &key, 0);
	bpf_ringbuf_output(&m_ringbuf, &len, sizeof(len), 0);

	inner = bpf_map_lookup_elem(&m_array_of_maps, &key);
	if (inner) {
		inner_val = bpf_map_lookup_elem(inner, &key);
		if (inner_val)
			*inner_val += 1;
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
