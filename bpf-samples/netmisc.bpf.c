/*
 * netmisc.bpf.c - the remaining networking program types, in an object
 * WITHOUT a license section.
 *
 * Covers:
 *  - `sk_lookup` (BPF_PROG_TYPE_SK_LOOKUP, BPF_SK_LOOKUP);
 *  - `sk_reuseport` (BPF_PROG_TYPE_SK_REUSEPORT, BPF_SK_REUSEPORT_SELECT),
 *    selecting from a BPF_MAP_TYPE_REUSEPORT_SOCKARRAY;
 *  - `flow_dissector` (BPF_PROG_TYPE_FLOW_DISSECTOR);
 *  - `lwt_in` and `lwt_xmit` (BPF_PROG_TYPE_LWT_IN / LWT_XMIT);
 *  - `netfilter` (BPF_PROG_TYPE_NETFILTER, BPF_NETFILTER).
 * No license: libbpf then passes an empty license and the kernel treats the
 * programs as non-GPL, which is fine because none of them calls a GPL-only
 * helper or any kfunc. bpfcap must not assume every object has a license.
 */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_REUSEPORT_SOCKARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} reuse_socks SEC(".maps");

SEC("sk_lookup")
int sk_lookup_pass(struct bpf_sk_lookup *ctx)
{
	return ctx->local_port == 1 ? SK_DROP : SK_PASS;
}

SEC("sk_reuseport")
int sk_reuseport_select(struct sk_reuseport_md *ctx)
{
	__u32 idx = ctx->hash & 3;

	if (bpf_sk_select_reuseport(ctx, &reuse_socks, &idx, 0) < 0)
		return SK_PASS;
	return SK_PASS;
}

SEC("flow_dissector")
int flow_dissector_noop(struct __sk_buff *skb)
{
	/* let the kernel's own dissector handle everything */
	return BPF_FLOW_DISSECTOR_CONTINUE;
}

SEC("lwt_in")
int lwt_in_pass(struct __sk_buff *skb)
{
	return skb->len ? BPF_OK : BPF_DROP;
}

SEC("lwt_xmit")
int lwt_xmit_pass(struct __sk_buff *skb)
{
	skb->mark = 1;
	return BPF_OK;
}

SEC("netfilter")
int netfilter_accept(struct bpf_nf_ctx *ctx)
{
	return NF_ACCEPT;
}
