// SPDX-License-Identifier: GPL-2.0
/*
 * cgroup_skb.bpf.c - cgroup-attached programs that are not socket-address hooks.
 *
 * Covers:
 *  - `cgroup_skb/ingress` and `cgroup_skb/egress` (BPF_PROG_TYPE_CGROUP_SKB
 *    with BPF_CGROUP_INET_INGRESS / BPF_CGROUP_INET_EGRESS);
 *  - legacy `cgroup/skb` (CGROUP_SKB without expected attach type);
 *  - `cgroup/dev` (BPF_PROG_TYPE_CGROUP_DEVICE);
 *  - `cgroup/sysctl` (BPF_PROG_TYPE_CGROUP_SYSCTL) with bpf_sysctl_get_name.
 * The egress program uses cgroup-local storage (BPF_MAP_TYPE_CGROUP_STORAGE
 * through bpf_get_local_storage).
 */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_STORAGE);
	__type(key, struct bpf_cgroup_storage_key);
	__type(value, __u64);
} egress_bytes SEC(".maps");

SEC("cgroup_skb/ingress")
int cgroup_skb_ingress(struct __sk_buff *skb)
{
	return skb->len < 65536 ? 1 : 0;
}

SEC("cgroup_skb/egress")
int cgroup_skb_egress(struct __sk_buff *skb)
{
	__u64 *bytes = bpf_get_local_storage(&egress_bytes, 0);

	__sync_fetch_and_add(bytes, skb->len);
	return 1;
}

SEC("cgroup/skb")
int cgroup_skb_legacy(struct __sk_buff *skb)
{
	return 1;
}

SEC("cgroup/dev")
int cgroup_dev(struct bpf_cgroup_dev_ctx *ctx)
{
	/* deny mknod of block device 7:* (loop), allow everything else */
	if ((ctx->access_type & 0xffff) == BPF_DEVCG_DEV_BLOCK && ctx->major == 7)
		return 0;
	return 1;
}

SEC("cgroup/sysctl")
int cgroup_sysctl(struct bpf_sysctl *ctx)
{
	/* Zero-initialised: without CAP_PERFMON the verifier refuses to pass uninitialised
	 * stack to a helper ("invalid read from stack"), a verifier-level privilege that only
	 * `bpfcap verify` can see. */
	char name[32] = {};

	if (bpf_sysctl_get_name(ctx, name, sizeof(name), 0) < 0)
		return 1;
	/* refuse writes to kernel.* */
	if (ctx->write && name[0] == 'k')
		return 0;
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
