// SPDX-License-Identifier: GPL-2.0
/*
 * tc.bpf.c - traffic-control programs (BPF_PROG_TYPE_SCHED_CLS / SCHED_ACT).
 *
 * Covers:
 *  - classic `tc` and `classifier` (SCHED_CLS, no expected attach type,
 *    attached through netlink cls_bpf);
 *  - `action` (BPF_PROG_TYPE_SCHED_ACT, act_bpf);
 *  - `tcx/ingress` and `tcx/egress` (SCHED_CLS with BPF_TCX_INGRESS /
 *    BPF_TCX_EGRESS, attached with BPF_LINK_CREATE);
 *  - `netkit/primary` (SCHED_CLS with BPF_NETKIT_PRIMARY). It loads on any
 *    kernel that knows the attach type; attaching needs a netkit device
 *    (CONFIG_NETKIT is off on the test kernel).
 * Net helpers: bpf_skb_load_bytes, bpf_skb_store_bytes, bpf_l3_csum_replace,
 * and direct __sk_buff field writes (mark, priority).
 */
#include "common.h"

SEC("tc")
int tc_mark(struct __sk_buff *skb)
{
	skb->mark = 0x42;
	return TC_ACT_OK;
}

SEC("classifier")
int classifier_ttl(struct __sk_buff *skb)
{
	__u8 ttl;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, ETH_HLEN + 8, &ttl, 1) < 0)
		return TC_ACT_OK;
	if (ttl <= 1)
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

SEC("action")
int action_prio(struct __sk_buff *skb)
{
	skb->priority = 7;
	return TC_ACT_OK;
}

SEC("tcx/ingress")
int tcx_ingress(struct __sk_buff *skb)
{
	__u8 tos = 0x10;
	__u16 old, new;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TCX_NEXT;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &old, 2) < 0)
		return TCX_NEXT;
	new = (old & bpf_htons(0xff00)) | bpf_htons(tos);
	bpf_l3_csum_replace(skb, ETH_HLEN + 10, old, new, 2);
	bpf_skb_store_bytes(skb, ETH_HLEN, &new, 2, 0);
	return TCX_NEXT;
}

SEC("tcx/egress")
int tcx_egress(struct __sk_buff *skb)
{
	return skb->len > 1500 ? TCX_DROP : TCX_PASS;
}

SEC("netkit/primary")
int netkit_primary(struct __sk_buff *skb)
{
	return 0; /* NETKIT_PASS from <linux/if_link.h> */
}

char LICENSE[] SEC("license") = "GPL";
