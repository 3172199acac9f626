// SPDX-License-Identifier: GPL-2.0
/*
 * unknown.bpf.c - a program in a section libbpf does not know.
 *
 * SEC("mystery/thing") matches no libbpf section definition, so libbpf opens
 * the object but leaves the program type unset (BPF_PROG_TYPE_UNSPEC) and
 * load fails with "missing BPF prog type, check ELF section name" unless the
 * loader calls bpf_program__set_type() first. bpfcap must report it as
 * unknown rather than guess. A known `socket` program sits next to it so the
 * object is not empty of recognised programs.
 *
 * NOT LOADABLE as is (mystery_thing); known_socket loads on its own.
 */
#include "common.h"

SEC("mystery/thing")
int mystery_thing(void *ctx)
{
	return 0;
}

SEC("socket")
int known_socket(struct __sk_buff *skb)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
