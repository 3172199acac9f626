// SPDX-License-Identifier: GPL-2.0
/*
 * kprobe.bpf.c - kernel probe programs (BPF_PROG_TYPE_KPROBE).
 *
 * Covers the libbpf sections that load as BPF_PROG_TYPE_KPROBE against
 * kernel functions:
 *  - `kprobe/<func>` and `kretprobe/<func>` (expected_attach_type 0, attached
 *    through perf_event_open + PERF_EVENT_IOC_SET_BPF or BPF_LINK_CREATE with
 *    BPF_PERF_EVENT);
 *  - `kprobe.multi/<glob>` and `kretprobe.multi/<glob>` (expected_attach_type
 *    BPF_TRACE_KPROBE_MULTI, attached with BPF_LINK_CREATE);
 *  - `ksyscall/<syscall>` (libbpf-only alias of kprobe on the arch syscall
 *    wrapper).
 * Helpers used are tracing-only ones (bpf_get_current_pid_tgid,
 * bpf_probe_read_kernel, bpf_ringbuf_output, bpf_get_func_ip) plus a ringbuf.
 * Target do_nanosleep exists in this kernel's BTF/kallsyms. Loading does not
 * need CONFIG_KPROBES; attaching does (this test kernel has it off).
 */
#include "common.h"

struct event {
	__u32 pid;
	__u32 kind;
	__u64 ip;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} kprobe_events SEC(".maps");

static __always_inline void emit(__u32 kind, __u64 ip)
{
	struct event e = {
		.pid = bpf_get_current_pid_tgid() >> 32,
		.kind = kind,
		.ip = ip,
	};
	bpf_ringbuf_output(&kprobe_events, &e, sizeof(e), 0);
}

SEC("kprobe/do_nanosleep")
int BPF_KPROBE(kprobe_do_nanosleep, void *sleeper, int mode)
{
	long first = 0;

	bpf_probe_read_kernel(&first, sizeof(first), sleeper);
	emit(1, mode);
	return 0;
}

SEC("kretprobe/do_nanosleep")
int BPF_KRETPROBE(kretprobe_do_nanosleep, long ret)
{
	emit(2, ret);
	return 0;
}

SEC("kprobe.multi/do_nanosleep*")
int kprobe_multi_nanosleep(struct pt_regs *ctx)
{
	emit(3, bpf_get_func_ip(ctx));
	return 0;
}

SEC("kretprobe.multi/do_nanosleep*")
int kretprobe_multi_nanosleep(struct pt_regs *ctx)
{
	emit(4, bpf_get_func_ip(ctx));
	return 0;
}

SEC("ksyscall/nanosleep")
int BPF_KSYSCALL(ksyscall_nanosleep, void *req, void *rem)
{
	emit(5, (__u64)req);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
