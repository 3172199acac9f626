// SPDX-License-Identifier: GPL-2.0
/*
 * ksyms.bpf.c - kernel variable externs (SEC(".ksyms") variables, not functions).
 *
 * Covers:
 *  - a typed ksym, `extern const int bpf_prog_active __ksym;`: libbpf finds
 *    the VAR in vmlinux BTF and emits a BPF_PSEUDO_BTF_ID ld_imm64; it is a
 *    per-CPU variable, so it is read through bpf_this_cpu_ptr and
 *    bpf_per_cpu_ptr (CAP_BPF-gated base helpers);
 *  - an untyped ksym, `extern const void init_task __ksym;`: only its
 *    address, which libbpf itself looks up in /proc/kallsyms.
 * Program: `tp_btf/sched_process_fork`.
 *
 * NOT LOADABLE on the test kernel: the kernel resolves a ksym variable's
 * address with kallsyms_lookup_name(), and data symbols are only in kallsyms
 * with CONFIG_KALLSYMS_ALL=y, which the test kernel does not set. The verifier
 * answers "ldimm64 failed to find the address for kernel symbol
 * 'bpf_prog_active'" (and libbpf cannot resolve init_task). Loads on
 * kernels built with CONFIG_KALLSYMS_ALL (most distribution kernels).
 */
#include "common.h"

extern const int bpf_prog_active __ksym;
extern const void init_task __ksym;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} ksym_seen SEC(".maps");

SEC("tp_btf/sched_process_fork")
int BPF_PROG(ksym_vars, struct task_struct *parent, struct task_struct *child)
{
	const int *here = bpf_this_cpu_ptr(&bpf_prog_active);
	const int *cpu0 = bpf_per_cpu_ptr(&bpf_prog_active, 0);
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&ksym_seen, &key);

	if (!v)
		return 0;
	*v = *here + (cpu0 ? *cpu0 : 0);
	key = 1;
	v = bpf_map_lookup_elem(&ksym_seen, &key);
	if (v)
		*v = (__u64)(unsigned long)&init_task;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
