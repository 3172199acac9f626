/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * Shared declarations for the bpfcap BPF samples.
 *
 * The samples are built against libbpf's own headers (vendored by the
 * libbpf-sys crate) and libbpf's copy of the UAPI <linux/bpf.h>, without a
 * generated vmlinux.h. The few kernel types the programs touch are declared
 * here by hand, minimally, with preserve_access_index so that every field
 * access becomes a CO-RE relocation that libbpf resolves against the running
 * kernel's BTF (field order and offsets below therefore do not matter).
 */
#ifndef BPFCAP_SAMPLES_COMMON_H
#define BPFCAP_SAMPLES_COMMON_H

#include <stdbool.h>
#include <linux/types.h>
#include <linux/bpf.h>
#include <asm/ptrace.h> /* user-space struct pt_regs (rdi, rsi, ...) for bpf_tracing.h */

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#ifndef __noinline
#define __noinline __attribute__((noinline))
#endif

#define PA __attribute__((preserve_access_index))

/* Packet / protocol constants (from <linux/if_ether.h>, <linux/in.h>, ...). */
#define ETH_P_IP 0x0800
#define ETH_HLEN 14
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define NF_DROP 0
#define NF_ACCEPT 1
#define AF_INET 2

/* ------------------------------------------------------------------ kernel types */

struct task_struct {
	int pid;
	int tgid;
	char comm[16];
	struct task_struct *real_parent;
} PA;

struct sock_common {
	unsigned short skc_family;
	__u16 skc_num;
} PA;

struct sock {
	struct sock_common __sk_common;
	__u32 sk_priority;
	__u32 sk_mark;
} PA;

struct tcp_sock {
	__u32 snd_cwnd;
	__u32 snd_ssthresh;
	__u32 prior_cwnd;
	__u32 max_packets_out;
} PA;

struct sk_buff {
	unsigned int len;
	__u32 mark;
	__u16 protocol;
} PA;

struct file {
	unsigned int f_flags;
} PA;

struct linux_binprm {
	int argc;
	int envc;
} PA;

struct seq_file {
	char *buf;
} PA;

struct bpf_iter_meta {
	struct seq_file *seq;
	__u64 session_id;
	__u64 seq_num;
} PA;

struct bpf_iter__task {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
} PA;

struct bpf_map {
	__u32 id;
	char name[16];
	__u32 max_entries;
} PA;

struct bpf_iter__bpf_map {
	struct bpf_iter_meta *meta;
	struct bpf_map *map;
} PA;

struct nf_hook_state {
	__u8 hook;
	__u8 pf;
} PA;

struct bpf_nf_ctx {
	const struct nf_hook_state *state;
	struct sk_buff *skb;
} PA;

struct bpf_cpumask {
	int usage_dummy;
} PA;

struct cpumask {
	unsigned long bits[1];
} PA;

struct ack_sample {
	__u32 pkts_acked;
} PA;

struct rate_sample {
	__u32 acked_sacked;
} PA;

/* tcp_congestion_ops: libbpf matches struct_ops members by name against the
 * kernel type, so only the members we set need to be declared. */
struct tcp_congestion_ops {
	__u32 (*ssthresh)(struct sock *sk);
	void (*cong_avoid)(struct sock *sk, __u32 ack, __u32 acked);
	void (*set_state)(struct sock *sk, __u8 new_state);
	void (*cwnd_event)(struct sock *sk, int ev);
	void (*in_ack_event)(struct sock *sk, __u32 flags);
	void (*pkts_acked)(struct sock *sk, const struct ack_sample *sample);
	__u32 (*min_tso_segs)(struct sock *sk);
	void (*cong_control)(struct sock *sk, __u32 ack, int flag, const struct rate_sample *rs);
	__u32 (*undo_cwnd)(struct sock *sk);
	__u32 (*sndbuf_expand)(struct sock *sk);
	void (*init)(struct sock *sk);
	void (*release)(struct sock *sk);
	char name[16];
	__u32 flags;
};

static __always_inline struct tcp_sock *tcp_sk(const struct sock *sk)
{
	return (struct tcp_sock *)sk;
}

#endif /* BPFCAP_SAMPLES_COMMON_H */
