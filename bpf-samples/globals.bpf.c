// SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0)
/*
 * globals.bpf.c - global data sections, Kconfig externs and a dual license.
 *
 * Covers every kind of libbpf internal map (each becomes a 1-entry ARRAY map
 * created with BPF_MAP_CREATE, then filled and, for read-only ones, frozen
 * with BPF_MAP_FREEZE; mmapable ones get BPF_F_MMAPABLE):
 *  - `.data`   (initialised globals),
 *  - `.bss`    (zero-initialised globals),
 *  - `.rodata` (const volatile globals: BPF_F_RDONLY_PROG + frozen),
 *  - custom `.data.custom` and `.rodata.custom` sections (one extra internal
 *    map each, via __attribute__((section(...))),
 *  - `.rodata.str1.1`, the mergeable string-literal section clang emits for a
 *    literal passed by pointer (libbpf turns it into a rodata map too),
 *  - `.kconfig`: LINUX_KERNEL_VERSION (filled by libbpf from uname) and
 *    CONFIG_* values read from /proc/config.gz, one of them __weak.
 * License "Dual BSD/GPL" (GPL-compatible for the kernel).
 */
#include "common.h"

int data_counter = 1;			/* .data */
__u64 bss_total;			/* .bss */
const volatile __u32 ro_threshold = 100;	/* .rodata */

int custom_data SEC(".data.custom") = 5;
const volatile int custom_ro SEC(".rodata.custom") = 7;

extern unsigned int LINUX_KERNEL_VERSION __kconfig;
extern bool CONFIG_BPF_JIT __kconfig;
extern int CONFIG_HZ __kconfig __weak;
extern bool CONFIG_BPFCAP_DOES_NOT_EXIST __kconfig __weak;

static __noinline int name_is_lo(const char *name)
{
	return bpf_strncmp(name, 3, "lo") == 0;
}

SEC("socket")
int globals_socket(struct __sk_buff *skb)
{
	char ifname[3] = { 'l', 'o', 0 };

	data_counter++;
	bss_total += skb->len;
	custom_data += custom_ro;
	if (skb->len > ro_threshold && LINUX_KERNEL_VERSION >= ((5 << 16) | (10 << 8)))
		return 0;
	if (CONFIG_BPF_JIT && CONFIG_HZ > 0 && !CONFIG_BPFCAP_DOES_NOT_EXIST)
		return name_is_lo(ifname) ? skb->len : 0;
	return skb->len;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
