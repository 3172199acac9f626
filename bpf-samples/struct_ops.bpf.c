// SPDX-License-Identifier: GPL-2.0
/*
 * struct_ops.bpf.c - BPF_PROG_TYPE_STRUCT_OPS programs and BPF_MAP_TYPE_STRUCT_OPS maps.
 *
 * Covers:
 *  - a minimal TCP congestion control (struct tcp_congestion_ops) declared in
 *    the `.struct_ops` section: a struct_ops map registered by a plain
 *    BPF_MAP_UPDATE_ELEM (legacy, no link);
 *  - a second one in `.struct_ops.link`: map created with BPF_F_LINK and
 *    registered through BPF_LINK_CREATE (bpf_map__attach_struct_ops);
 *  - `struct_ops/<name>` programs (their attach_btf_id is the kernel's
 *    tcp_congestion_ops and the expected_attach_type is the member index,
 *    both filled in by libbpf from the map that references them);
 *  - a kfunc that only struct_ops programs may call (tcp_reno_cong_avoid,
 *    from the bpf_tcp_ca kfunc set).
 * Only load is tested (maps created with their BTF value type, programs
 * verified); registering a congestion control is not needed.
 */
#include "common.h"

extern void tcp_reno_cong_avoid(struct sock *sk, __u32 ack, __u32 acked) __ksym;

SEC("struct_ops/bpfcap_ssthresh")
__u32 BPF_PROG(bpfcap_ssthresh, struct sock *sk)
{
	__u32 cwnd = tcp_sk(sk)->snd_cwnd;

	return cwnd > 4 ? cwnd >> 1 : 2;
}

SEC("struct_ops/bpfcap_cong_avoid")
void BPF_PROG(bpfcap_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	tcp_reno_cong_avoid(sk, ack, acked);
}

SEC("struct_ops/bpfcap_undo_cwnd")
__u32 BPF_PROG(bpfcap_undo_cwnd, struct sock *sk)
{
	struct tcp_sock *tp = tcp_sk(sk);

	return tp->snd_cwnd > tp->prior_cwnd ? tp->snd_cwnd : tp->prior_cwnd;
}

SEC("struct_ops/bpfcap_link_ssthresh")
__u32 BPF_PROG(bpfcap_link_ssthresh, struct sock *sk)
{
	return 10;
}

SEC("struct_ops/bpfcap_link_cong_avoid")
void BPF_PROG(bpfcap_link_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	struct tcp_sock *tp = tcp_sk(sk);

	if (tp->snd_cwnd < 100)
		tp->snd_cwnd = tp->snd_cwnd + 1;
}

SEC("struct_ops/bpfcap_link_undo_cwnd")
__u32 BPF_PROG(bpfcap_link_undo_cwnd, struct sock *sk)
{
	return tcp_sk(sk)->snd_cwnd;
}

SEC(".struct_ops")
struct tcp_congestion_ops bpfcap_cc = {
	.ssthresh = (void *)bpfcap_ssthresh,
	.cong_avoid = (void *)bpfcap_cong_avoid,
	.undo_cwnd = (void *)bpfcap_undo_cwnd,
	.name = "bpfcap_cc",
};

SEC(".struct_ops.link")
struct tcp_congestion_ops bpfcap_cc_link = {
	.ssthresh = (void *)bpfcap_link_ssthresh,
	.cong_avoid = (void *)bpfcap_link_cong_avoid,
	.undo_cwnd = (void *)bpfcap_link_undo_cwnd,
	.name = "bpfcap_cc_link",
};

char LICENSE[] SEC("license") = "GPL";
