// SPDX-License-Identifier: GPL-2.0
/*
 * iter.bpf.c - BPF iterators (BPF_PROG_TYPE_TRACING + BPF_TRACE_ITER).
 *
 * Covers:
 *  - `iter/task` (target bpf_iter_task in vmlinux BTF) printing with the
 *    iterator-only helper bpf_seq_printf (BPF_SEQ_PRINTF);
 *  - `iter/bpf_map` using bpf_seq_write;
 *  - sleepable `iter.s/task`.
 * Iterators are created with BPF_LINK_CREATE + BPF_ITER_CREATE.
 */
#include "common.h"

SEC("iter/task")
int iter_task(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;

	if (!task)
		return 0;
	BPF_SEQ_PRINTF(seq, "%d %s\n", task->pid, task->comm);
	return 0;
}

SEC("iter/bpf_map")
int iter_bpf_map(struct bpf_iter__bpf_map *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct bpf_map *map = ctx->map;
	__u32 id;

	if (!map)
		return 0;
	id = map->id;
	bpf_seq_write(seq, &id, sizeof(id));
	return 0;
}

SEC("iter.s/task")
int iter_task_sleepable(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;

	if (!task)
		return 0;
	BPF_SEQ_PRINTF(seq, "%d\n", task->tgid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
