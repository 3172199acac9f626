// SPDX-License-Identifier: GPL-2.0
/*
 * tracepoint.bpf.c - static tracepoints and perf events.
 *
 * Covers:
 *  - `tracepoint/<cat>/<name>` and the `tp/` alias (BPF_PROG_TYPE_TRACEPOINT;
 *    syscalls/sys_enter_nanosleep and sched/sched_switch exist under
 *    /sys/kernel/tracing/events on the test kernel);
 *  - `raw_tracepoint/<name>` and the `raw_tp/` alias
 *    (BPF_PROG_TYPE_RAW_TRACEPOINT, attached with BPF_RAW_TRACEPOINT_OPEN);
 *  - `tp_btf/<name>` (BPF_PROG_TYPE_TRACING + BPF_TRACE_RAW_TP, needs the
 *    btf_trace_sched_switch type in vmlinux BTF);
 *  - `perf_event` (BPF_PROG_TYPE_PERF_EVENT) calling bpf_get_stackid with a
 *    BPF_MAP_TYPE_STACK_TRACE map.
 */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} tp_hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 128);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 127 * sizeof(__u64));
} stacks SEC(".maps");

static __always_inline void hit(__u32 idx)
{
	__u64 *val = bpf_map_lookup_elem(&tp_hits, &idx);

	if (val)
		*val += 1;
}

SEC("tracepoint/syscalls/sys_enter_nanosleep")
int tracepoint_nanosleep(void *ctx)
{
	hit(0);
	return 0;
}

SEC("tp/sched/sched_switch")
int tp_sched_switch(void *ctx)
{
	hit(1);
	return 0;
}

SEC("raw_tracepoint/sys_enter")
int raw_tracepoint_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	hit(ctx->args[1] == 35 ? 2 : 3);
	return 0;
}

SEC("raw_tp/sched_switch")
int raw_tp_sched_switch(struct bpf_raw_tracepoint_args *ctx)
{
	hit(4);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(tp_btf_sched_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	hit(next->pid == 0 ? 5 : 6);
	return 0;
}

SEC("perf_event")
int perf_event_sample(struct bpf_perf_event_data *ctx)
{
	long id = bpf_get_stackid(ctx, &stacks, 0);

	if (id >= 0)
		hit(7);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
