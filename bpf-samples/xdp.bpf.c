// SPDX-License-Identifier: GPL-2.0
/*
 * xdp.bpf.c - XDP programs (BPF_PROG_TYPE_XDP).
 *
 * Covers:
 *  - two global functions in the same `xdp` section (two programs whose
 *    section name is identical: loaders must key programs by name, not by
 *    section);
 *  - `xdp.frags` (BPF_F_XDP_HAS_FRAGS) calling bpf_xdp_get_buff_len;
 *  - `xdp/devmap` and `xdp/cpumap` (expected_attach_type BPF_XDP_DEVMAP /
 *    BPF_XDP_CPUMAP: programs run from a devmap/cpumap entry);
 *  - a `?xdp` program: the leading '?' turns libbpf autoload off, so a
 *    default load skips it; it redirects through DEVMAP, CPUMAP and XSKMAP
 *    maps with bpf_redirect_map (net helper).
 */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u32);
} xdp_tx_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CPUMAP);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct bpf_cpumap_val);
} xdp_cpus SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} xdp_sockets SEC(".maps");

SEC("xdp")
int xdp_pass_first(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (data + ETH_HLEN > data_end)
		return XDP_DROP;
	return XDP_PASS;
}

SEC("xdp")
int xdp_pass_second(struct xdp_md *ctx)
{
	return ctx->ingress_ifindex ? XDP_PASS : XDP_ABORTED;
}

SEC("xdp.frags")
int xdp_frags_len(struct xdp_md *ctx)
{
	return bpf_xdp_get_buff_len(ctx) > 9000 ? XDP_DROP : XDP_PASS;
}

SEC("xdp/devmap")
int xdp_devmap_prog(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp/cpumap")
int xdp_cpumap_prog(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("?xdp")
int xdp_redirect_optional(struct xdp_md *ctx)
{
	__u32 q = ctx->rx_queue_index;

	if (bpf_map_lookup_elem(&xdp_sockets, &q))
		return bpf_redirect_map(&xdp_sockets, q, XDP_PASS);
	if (q & 1)
		return bpf_redirect_map(&xdp_cpus, 0, XDP_PASS);
	return bpf_redirect_map(&xdp_tx_ports, q & 7, XDP_PASS);
}

char LICENSE[] SEC("license") = "GPL";
