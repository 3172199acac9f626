// SPDX-License-Identifier: GPL-2.0
/*
 * uprobe.bpf.c - user-space probe programs (BPF_PROG_TYPE_KPROBE on uprobes).
 *
 * Covers:
 *  - `uprobe//proc/self/exe:<func>` and `uretprobe//proc/self/exe:<func>`
 *    (auto-attach form with a binary path and a symbol);
 *  - bare `uprobe` (no target: the loader attaches it by hand);
 *  - `uprobe.multi//proc/self/exe:<glob>` (expected_attach_type
 *    BPF_TRACE_UPROBE_MULTI);
 *  - sleepable `uprobe.s//proc/self/exe:<func>` (BPF_F_SLEEPABLE), which
 *    calls the sleepable-only helper bpf_copy_from_user.
 * Loading needs no target binary; attaching needs /proc/self/exe to export the
 * symbol bpfcap_uprobe_target (it does not exist: attach is not tested).
 */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 128);
	__type(key, __u32);
	__type(value, __u64);
} uprobe_calls SEC(".maps");

static __always_inline void count(__u32 key)
{
	__u64 one = 1, *val;

	val = bpf_map_lookup_elem(&uprobe_calls, &key);
	if (val)
		__sync_fetch_and_add(val, 1);
	else
		bpf_map_update_elem(&uprobe_calls, &key, &one, BPF_NOEXIST);
}

SEC("uprobe//proc/self/exe:bpfcap_uprobe_target")
int BPF_UPROBE(uprobe_target, int arg)
{
	count(arg);
	return 0;
}

SEC("uretprobe//proc/self/exe:bpfcap_uprobe_target")
int BPF_URETPROBE(uretprobe_target, int ret)
{
	count(1000 + ret);
	return 0;
}

SEC("uprobe")
int uprobe_manual(struct pt_regs *ctx)
{
	count(bpf_get_current_pid_tgid() >> 32);
	return 0;
}

SEC("uprobe.multi//proc/self/exe:bpfcap_uprobe_*")
int uprobe_multi_targets(struct pt_regs *ctx)
{
	count(2000);
	return 0;
}

SEC("uprobe.s//proc/self/exe:bpfcap_uprobe_target")
int BPF_UPROBE(uprobe_sleepable, const char *user_str)
{
	char buf[16] = {};

	bpf_copy_from_user(buf, sizeof(buf), user_str);
	count(buf[0]);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
