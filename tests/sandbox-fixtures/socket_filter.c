// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
// Minimal socket filter: drops every packet. Needs a token with
// cmds=prog_load, progs=socket_filter, attachs=cgroup_inet_ingress
// (expected_attach_type 0) and CAP_BPF in the token's user namespace.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("socket")
int drop_all(struct __sk_buff *skb)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
