// SPDX-License-Identifier: GPL-2.0
/*
 * usdt.bpf.c - USDT programs (libbpf `usdt` sections, BPF_PROG_TYPE_KPROBE).
 *
 * Covers:
 *  - bare `usdt` (attached by hand with bpf_program__attach_usdt);
 *  - `usdt/<path>:<provider>:<name>` auto-attach form.
 * <bpf/usdt.bpf.h> brings libbpf's own USDT support maps
 * (__bpf_usdt_specs, __bpf_usdt_ip_to_spec_id: an ARRAY and a HASH) and a
 * `.kconfig` extern (LINUX_HAS_BPF_COOKIE), so this object also shows maps and
 * kconfig data that come from a library header rather than from user code.
 */
#include "common.h"
#include <bpf/usdt.bpf.h>

SEC("usdt")
int BPF_USDT(usdt_manual, long arg0)
{
	bpf_printk("usdt arg0 %ld", arg0);
	return 0;
}

SEC("usdt//proc/self/exe:bpfcap:probe")
int BPF_USDT(usdt_auto, long arg0, long arg1)
{
	long cookie = bpf_usdt_cookie(ctx);

	bpf_printk("usdt %ld %ld cookie %ld", arg0, arg1, cookie);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
