// SPDX-License-Identifier: GPL-2.0
/*
 * sockmap.bpf.c - sockmap/sockhash redirection and sock_ops.
 *
 * Covers:
 *  - BPF_MAP_TYPE_SOCKMAP and BPF_MAP_TYPE_SOCKHASH;
 *  - `sk_skb/stream_parser` and `sk_skb/stream_verdict` (BPF_PROG_TYPE_SK_SKB
 *    with BPF_SK_SKB_STREAM_PARSER / _VERDICT, attached to a sockmap with
 *    BPF_PROG_ATTACH), the verdict using bpf_sk_redirect_map;
 *  - `sk_msg` (BPF_PROG_TYPE_SK_MSG, BPF_SK_MSG_VERDICT) using
 *    bpf_msg_redirect_hash;
 *  - `sockops` (BPF_PROG_TYPE_SOCK_OPS) that inserts established sockets
 *    with bpf_sock_hash_update, keeps per-socket state in a
 *    BPF_MAP_TYPE_SK_STORAGE map, and calls bpf_probe_read_kernel on
 *    ctx->sk: a CAP_PERFMON-gated base helper from a non-tracing program
 *    (sock_ops falls back to bpf_base_func_proto).
 */
#include "common.h"

struct sock_key {
	__u32 sip;
	__u32 dip;
	__u32 sport;
	__u32 dport;
};

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} sock_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 64);
	__type(key, struct sock_key);
	__type(value, __u64);
} sock_hash SEC(".maps");

struct sk_state {
	__u32 ops_seen;
	__u32 rtt;
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sk_state);
} sk_state SEC(".maps");

SEC("sk_skb/stream_parser")
int sk_skb_parser(struct __sk_buff *skb)
{
	return skb->len;
}

SEC("sk_skb/stream_verdict")
int sk_skb_verdict(struct __sk_buff *skb)
{
	return bpf_sk_redirect_map(skb, &sock_map, skb->local_port & 15, 0);
}

SEC("sk_msg")
int sk_msg_redirect(struct sk_msg_md *msg)
{
	struct sock_key key = {
		.sip = msg->remote_ip4,
		.dip = msg->local_ip4,
		.sport = msg->remote_port,
		.dport = bpf_htonl(msg->local_port),
	};

	return bpf_msg_redirect_hash(msg, &sock_hash, &key, BPF_F_INGRESS);
}

SEC("sockops")
int sockops_track(struct bpf_sock_ops *ops)
{
	struct sock_key key = {};
	struct bpf_sock *sk = ops->sk;
	struct sk_state *st;
	__u64 addrpair = 0;

	if (!sk)
		return 1;
	st = bpf_sk_storage_get(&sk_state, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (st) {
		st->ops_seen++;
		st->rtt = ops->srtt_us;
	}
	/* CAP_PERFMON tier: read the first 8 bytes of the kernel's struct sock
	 * (sock_common.skc_addrpair); passing the socket pointer as an untyped
	 * address is itself allowed only with pointer leaks allowed (perfmon). */
	bpf_probe_read_kernel(&addrpair, sizeof(addrpair), sk);
	if (st && !addrpair)
		st->rtt = 0;

	switch (ops->op) {
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		key.sip = ops->local_ip4;
		key.dip = ops->remote_ip4;
		key.sport = bpf_htonl(ops->local_port);
		key.dport = ops->remote_port;
		bpf_sock_hash_update(ops, &sock_hash, &key, BPF_NOEXIST);
		break;
	}
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
