// SPDX-License-Identifier: GPL-2.0
/*
 * socket.bpf.c - socket filter programs (SEC("socket"), BPF_PROG_TYPE_SOCKET_FILTER).
 *
 * Covers:
 *  - the `socket` section (no expected attach type; attached with SO_ATTACH_BPF);
 *  - helpers of the base tier that any capability level may call
 *    (bpf_map_lookup_elem, bpf_map_update_elem, bpf_ktime_get_ns,
 *    bpf_get_prandom_u32) in `sock_plain`;
 *  - CAP_PERFMON-gated base helpers called from a NON-tracing program
 *    (bpf_get_current_task, bpf_probe_read_kernel via BPF_CORE_READ,
 *    bpf_trace_printk via bpf_printk, bpf_snprintf_btf) in `sock_perfmon`.
 *    In kernel/bpf/helpers.c:bpf_base_func_proto() these are returned only if
 *    bpf_token_capable(token, CAP_PERFMON), so a token for this object must
 *    carry CAP_PERFMON (in its user namespace) on top of CAP_BPF.
 * License: GPL (bpf_probe_read_kernel and bpf_trace_printk are GPL-only).
 */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} sock_stats SEC(".maps");

SEC("socket")
int sock_plain(struct __sk_buff *skb)
{
	__u32 key = bpf_get_prandom_u32() & 3;
	__u64 now = bpf_ktime_get_ns();
	__u64 *val;

	val = bpf_map_lookup_elem(&sock_stats, &key);
	if (val)
		__sync_fetch_and_add(val, skb->len);
	else
		bpf_map_update_elem(&sock_stats, &key, &now, BPF_ANY);
	return skb->len;
}

SEC("socket")
int sock_perfmon(struct __sk_buff *skb)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct btf_ptr ptr = {};
	char buf[64];
	int pid;

	pid = BPF_CORE_READ(task, pid);
	bpf_printk("socket filter on pid %d, len %u", pid, skb->len);

	ptr.ptr = task;
	ptr.type_id = bpf_core_type_id_kernel(struct task_struct);
	bpf_snprintf_btf(buf, sizeof(buf), &ptr, sizeof(ptr), BTF_F_COMPACT);

	return skb->len;
}

char LICENSE[] SEC("license") = "GPL";
