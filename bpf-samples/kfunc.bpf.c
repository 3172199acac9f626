// SPDX-License-Identifier: GPL-2.0
/*
 * kfunc.bpf.c - kernel function calls and kernel symbol externs (SEC(".ksyms")).
 *
 * Covers:
 *  - kfunc calls resolved by libbpf against vmlinux BTF (BPF_PSEUDO_KFUNC_CALL):
 *    bpf_task_acquire/bpf_task_release, bpf_rcu_read_lock/bpf_rcu_read_unlock,
 *    bpf_cpumask_create/bpf_cpumask_set_cpu/bpf_cpumask_release;
 *  - a weak kfunc that does not exist (guarded with bpf_ksym_exists, so the
 *    call is dead code the verifier removes);
 *  - a weak typed ksym variable that does not exist (libbpf turns its
 *    ld_imm64 into a plain 0, so it loads everywhere).
 * Typed/untyped ksym variables that DO exist are in ksyms.bpf.c (they need
 * CONFIG_KALLSYMS_ALL, which the test kernel lacks).
 * Programs: `tp_btf/sched_switch` and `tp_btf/sched_wakeup`
 * (BPF_PROG_TYPE_TRACING, where these kfuncs are allowed). Kfuncs need a
 * GPL-compatible license.
 */
#include "common.h"

extern struct task_struct *bpf_task_acquire(struct task_struct *p) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;
extern void bpf_rcu_read_lock(void) __ksym;
extern void bpf_rcu_read_unlock(void) __ksym;
extern struct bpf_cpumask *bpf_cpumask_create(void) __ksym;
extern void bpf_cpumask_set_cpu(__u32 cpu, struct bpf_cpumask *cpumask) __ksym;
extern void bpf_cpumask_release(struct bpf_cpumask *cpumask) __ksym;
extern void bpfcap_no_such_kfunc(void) __ksym __weak;

extern const int bpfcap_no_such_var __ksym __weak;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} kfunc_stats SEC(".maps");

static __always_inline void bump(__u32 idx, __u64 by)
{
	__u64 *v = bpf_map_lookup_elem(&kfunc_stats, &idx);

	if (v)
		*v += by;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(kfunc_task_ref, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	struct task_struct *acquired;

	acquired = bpf_task_acquire(next);
	if (acquired) {
		bump(0, acquired->pid);
		bpf_task_release(acquired);
	}

	bpf_rcu_read_lock();
	bump(1, next->real_parent->tgid);
	bpf_rcu_read_unlock();

	if (bpf_ksym_exists(bpfcap_no_such_kfunc))
		bpfcap_no_such_kfunc();
	if (&bpfcap_no_such_var)
		bump(3, 1);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(kfunc_cpumask, struct task_struct *p)
{
	struct bpf_cpumask *mask = bpf_cpumask_create();

	if (!mask)
		return 0;
	bpf_cpumask_set_cpu(0, mask);
	bpf_cpumask_release(mask);
	bump(2, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
