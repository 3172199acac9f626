// libbpf-loader: a libbpf program that loads one BPF object through the token libbpf finds
// by itself (LIBBPF_BPF_TOKEN_PATH, else /sys/fs/bpf), the way a service built on libbpf
// loads its objects, and exits 0 when the object loaded. Used by bpfcap's record tests as a
// libbpf 1.7 program (Debian sid's libbpf, linked statically by scripts/build-go-tools).
//
// usage: libbpf-loader OBJECT [PROGRAM...]
//   With PROGRAMs, only those are loaded (autoload is switched off for the others).
//   Maps declared with max_entries 0 are given one entry, as their loaders size them at run
//   time (systemd's objects); not the types whose max_entries must stay 0.
//
// Exit status: 0 loaded, 1 the load failed (libbpf's messages on stderr), 2 bad usage or the
// object cannot be opened.
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>

static int keeps_zero(enum bpf_map_type t)
{
	switch (t) {
	case BPF_MAP_TYPE_PERF_EVENT_ARRAY:
	case BPF_MAP_TYPE_CGROUP_STORAGE:
	case BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE:
	case BPF_MAP_TYPE_SK_STORAGE:
	case BPF_MAP_TYPE_INODE_STORAGE:
	case BPF_MAP_TYPE_TASK_STORAGE:
	case BPF_MAP_TYPE_CGRP_STORAGE:
		return 1;
	default:
		return 0;
	}
}

int main(int argc, char **argv)
{
	struct bpf_object *obj;
	struct bpf_program *prog;
	struct bpf_map *map;
	int err;

	if (argc < 2) {
		fprintf(stderr, "usage: libbpf-loader OBJECT [PROGRAM...]\n");
		return 2;
	}
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) {
		fprintf(stderr, "libbpf-loader: cannot open %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	if (argc > 2) {
		bpf_object__for_each_program(prog, obj) {
			int wanted = 0;
			for (int i = 2; i < argc; i++)
				wanted |= strcmp(bpf_program__name(prog), argv[i]) == 0;
			bpf_program__set_autoload(prog, wanted);
		}
	}
	bpf_object__for_each_map(map, obj) {
		if (bpf_map__max_entries(map) == 0 && !keeps_zero(bpf_map__type(map)))
			bpf_map__set_max_entries(map, 1);
	}
	err = bpf_object__load(obj);
	if (err) {
		fprintf(stderr, "libbpf-loader: loading %s failed: %s\n", argv[1], strerror(-err));
		bpf_object__close(obj);
		return 1;
	}
	printf("loaded %s\n", argv[1]);
	bpf_object__close(obj);
	return 0;
}
