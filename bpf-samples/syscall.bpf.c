// SPDX-License-Identifier: GPL-2.0
/*
 * syscall.bpf.c - `syscall` programs (BPF_PROG_TYPE_SYSCALL, always sleepable).
 *
 * Covers the `syscall` section: programs run only through BPF_PROG_TEST_RUN
 * and may themselves issue bpf() commands with bpf_sys_bpf (here
 * BPF_MAP_CREATE) and close fds with bpf_sys_close, which is what light
 * skeletons' loader programs do.
 */
#include "common.h"

struct syscall_args {
	int map_fd;
	__u32 max_entries;
};

SEC("syscall")
int syscall_create_map(struct syscall_args *args)
{
	union bpf_attr attr = {};
	int fd;

	attr.map_type = BPF_MAP_TYPE_ARRAY;
	attr.key_size = 4;
	attr.value_size = 8;
	attr.max_entries = args->max_entries;
	fd = bpf_sys_bpf(BPF_MAP_CREATE, &attr, sizeof(attr));
	args->map_fd = fd;
	if (fd >= 0)
		bpf_sys_close(fd);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
