// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
// Minimal kprobe program. Loading it needs progs=kprobe and CAP_PERFMON.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("kprobe/do_nanosleep")
int on_nanosleep(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
