// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Stand-ins for the five libbpf skeleton entry points app.c calls, so that the
 * test executable links without libbpf and stays small. Opening always fails
 * with EOPNOTSUPP; destroying frees what the skeleton code allocated.
 */
#include <errno.h>
#include <stdlib.h>

#include <bpf/libbpf.h>

int bpf_object__open_skeleton(struct bpf_object_skeleton *s, const struct bpf_object_open_opts *opts)
{
	(void)s;
	(void)opts;
	return -EOPNOTSUPP;
}

int bpf_object__load_skeleton(struct bpf_object_skeleton *s)
{
	(void)s;
	return -EOPNOTSUPP;
}

int bpf_object__attach_skeleton(struct bpf_object_skeleton *s)
{
	(void)s;
	return -EOPNOTSUPP;
}

void bpf_object__detach_skeleton(struct bpf_object_skeleton *s)
{
	(void)s;
}

void bpf_object__destroy_skeleton(struct bpf_object_skeleton *s)
{
	if (!s)
		return;
	free(s->maps);
	free(s->progs);
	free(s);
}
