// SPDX-License-Identifier: GPL-2.0
/*
 * fentry.bpf.c - BPF trampoline programs (BPF_PROG_TYPE_TRACING).
 *
 * Covers:
 *  - `fentry/<func>` (BPF_TRACE_FENTRY) and `fexit/<func>` (BPF_TRACE_FEXIT)
 *    on do_nanosleep;
 *  - `fmod_ret/<func>` (BPF_MODIFY_RETURN) on bpf_modify_return_test, which
 *    net/bpf/test_run.c registers as a modify-return target;
 *  - sleepable `fentry.s/<func>` (BPF_F_SLEEPABLE) on bpf_fentry_test1, which
 *    test_run.c registers with KF_SLEEPABLE in its fmodret id set (the
 *    only way to make a sleepable fentry load on a kernel without
 *    CONFIG_FUNCTION_ERROR_INJECTION); it calls the sleepable-only helper
 *    bpf_copy_from_user.
 * All targets are in /sys/kernel/btf/vmlinux on the test kernel.
 * On the development VM these fail with EPERM before verification: its
 * sandbox kernel refuses every BPF trampoline (see bpf-samples/README.md).
 */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} sleep_start SEC(".maps");

SEC("fentry/do_nanosleep")
int BPF_PROG(fentry_do_nanosleep, void *sleeper, int mode)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u64 now = bpf_ktime_get_ns();

	bpf_map_update_elem(&sleep_start, &pid, &now, BPF_ANY);
	return 0;
}

SEC("fexit/do_nanosleep")
int BPF_PROG(fexit_do_nanosleep, void *sleeper, int mode, int ret)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;

	bpf_map_delete_elem(&sleep_start, &pid);
	return 0;
}

SEC("fmod_ret/bpf_modify_return_test")
int BPF_PROG(fmod_ret_test, int a, int *b, int ret)
{
	return ret == 0 ? 0 : ret;
}

SEC("fentry.s/bpf_fentry_test1")
int BPF_PROG(fentry_sleepable_test1, int a)
{
	char buf[8];

	bpf_copy_from_user(buf, sizeof(buf), (void *)(long)a);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
