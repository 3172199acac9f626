// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A host program that embeds two BPF objects the way libbpf skeleton users do:
 * build.sh generates socket.skel.h and xdp.skel.h with `bpftool gen skeleton`
 * from testdata/socket.bpf.o and testdata/xdp.bpf.o, and each header keeps the
 * object's ELF bytes as a string literal (in the executable's .rodata) next to
 * the skeleton's name ("socket_bpf", "xdp_bpf") and its map and program names.
 *
 * Built as testdata/embedded/app. It links against libbpf_stubs.c rather than
 * libbpf, so it runs anywhere and loads nothing: it only reports what it embeds.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "socket.skel.h"
#include "xdp.skel.h"

int main(void)
{
	size_t sock_sz = 0, xdp_sz = 0;
	struct socket_bpf *sock;
	struct xdp_bpf *xdp;

	socket_bpf__elf_bytes(&sock_sz);
	xdp_bpf__elf_bytes(&xdp_sz);
	printf("socket_bpf: %zu bytes, xdp_bpf: %zu bytes\n", sock_sz, xdp_sz);

	sock = socket_bpf__open();
	if (!sock)
		printf("socket_bpf__open: %s\n", strerror(errno));
	xdp = xdp_bpf__open();
	if (!xdp)
		printf("xdp_bpf__open: %s\n", strerror(errno));
	socket_bpf__destroy(sock);
	xdp_bpf__destroy(xdp);
	return 0;
}
