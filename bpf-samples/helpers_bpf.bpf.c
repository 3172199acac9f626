// SPDX-License-Identifier: GPL-2.0
/*
 * helpers_bpf.bpf.c - base helpers gated by CAP_BPF.
 *
 * kernel/bpf/helpers.c:bpf_base_func_proto() returns these only when
 * bpf_token_capable(token, CAP_BPF): bpf_spin_lock/bpf_spin_unlock,
 * bpf_timer_init/bpf_timer_set_callback/bpf_timer_start, bpf_jiffies64,
 * bpf_loop, bpf_for_each_map_elem. They are called here from non-tracing
 * programs (SCHED_CLS via `tc`, XDP) whose own func_proto falls back to the
 * base protos, so a loader of this object needs CAP_BPF (and, for the map
 * value's spin lock and timer fields, BTF for the maps).
 * bpf_spin_lock cannot be used from socket filters or tracing programs,
 * hence tc/xdp.
 */
#include "common.h"

struct counter {
	struct bpf_spin_lock lock;
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct counter);
} locked_counters SEC(".maps");

struct timer_elem {
	struct bpf_timer timer;
	__u64 fired;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct timer_elem);
} timers SEC(".maps");

static int timer_cb(void *map, __u32 *key, struct timer_elem *elem)
{
	elem->fired++;
	return 0;
}

SEC("tc")
int tc_spin_lock(struct __sk_buff *skb)
{
	__u32 key = 0;
	struct counter *c = bpf_map_lookup_elem(&locked_counters, &key);

	if (!c)
		return TC_ACT_OK;
	bpf_spin_lock(&c->lock);
	c->packets++;
	c->bytes += skb->len;
	bpf_spin_unlock(&c->lock);
	return TC_ACT_OK;
}

SEC("tc")
int tc_timer(struct __sk_buff *skb)
{
	__u32 key = skb->ifindex & 3;
	struct timer_elem init = {}, *elem;

	bpf_map_update_elem(&timers, &key, &init, BPF_NOEXIST);
	elem = bpf_map_lookup_elem(&timers, &key);
	if (!elem)
		return TC_ACT_OK;
	bpf_timer_init(&elem->timer, &timers, 1 /* CLOCK_MONOTONIC */);
	bpf_timer_set_callback(&elem->timer, timer_cb);
	bpf_timer_start(&elem->timer, 1000000, 0);
	return TC_ACT_OK;
}

static int loop_body(__u32 idx, __u64 *sum)
{
	*sum += idx;
	return 0;
}

static long count_elem(void *map, __u32 *key, struct counter *val, __u64 *sum)
{
	*sum += 1;
	return 0;
}

SEC("xdp")
int xdp_loops(struct xdp_md *ctx)
{
	__u64 sum = bpf_jiffies64();

	bpf_loop(16, loop_body, &sum, 0);
	bpf_for_each_map_elem(&locked_counters, count_elem, &sum, 0);
	return sum ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
