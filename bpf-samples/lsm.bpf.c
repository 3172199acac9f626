// SPDX-License-Identifier: GPL-2.0
/*
 * lsm.bpf.c - BPF LSM programs (BPF_PROG_TYPE_LSM, BPF_LSM_MAC).
 *
 * Covers:
 *  - `lsm/<hook>` on file_open (non-sleepable hook), using a
 *    BPF_MAP_TYPE_TASK_STORAGE map (bpf_task_storage_get);
 *  - sleepable `lsm.s/<hook>` on bprm_committed_creds (in the kernel's
 *    sleepable LSM hook set), calling the sleepable-only helper
 *    bpf_copy_from_user;
 *  - `lsm_cgroup/<hook>` (BPF_LSM_CGROUP) on socket_bind.
 * Needs CONFIG_BPF_LSM (attach additionally needs "bpf" in the active LSM
 * list; it is active on the test kernel). GPL is mandatory for LSM programs.
 * On the development VM these fail with EPERM before verification: its
 * sandbox kernel refuses every BPF trampoline (see bpf-samples/README.md).
 */
#include "common.h"

struct task_info {
	__u64 opens;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_info);
} lsm_task_info SEC(".maps");

SEC("lsm/file_open")
int BPF_PROG(lsm_file_open, struct file *file)
{
	struct task_info *info;

	info = bpf_task_storage_get(&lsm_task_info, bpf_get_current_task_btf(), 0,
				    BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (info)
		info->opens++;
	return 0;
}

SEC("lsm.s/bprm_committed_creds")
int BPF_PROG(lsm_sleepable_bprm, struct linux_binprm *bprm)
{
	char buf[8];

	bpf_copy_from_user(buf, sizeof(buf), (void *)0);
	return 0;
}

SEC("lsm_cgroup/socket_bind")
int BPF_PROG(lsm_cgroup_socket_bind, void *sock, void *address, int addrlen)
{
	return 1; /* allow */
}

char LICENSE[] SEC("license") = "GPL";
