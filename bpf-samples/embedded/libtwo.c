// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A shared library that embeds two BPF objects without a skeleton, the way
 * go:embed or Rust's include_bytes! do: raw bytes, no names next to them.
 * build.sh assembles testdata/socket.bpf.o and testdata/xdp.bpf.o in with
 * `.incbin`, at deliberately odd offsets (3 bytes of padding before the first,
 * 5 between them), so a reader must neither assume alignment nor rely on
 * anything but the embedded ELF headers.
 *
 * Built as testdata/embedded/libtwo.so.
 */
#include <stddef.h>

#ifndef SOCKET_OBJ
#error "build with -DSOCKET_OBJ=\"path/to/socket.bpf.o\" -DXDP_OBJ=\"path/to/xdp.bpf.o\""
#endif

__asm__(
	"	.section .rodata.libtwo_objects,\"a\",@progbits\n"
	"	.balign 1\n"
	"libtwo_blob:\n"
	"	.ascii \"two\"\n"
	"libtwo_first:\n"
	"	.incbin \"" SOCKET_OBJ "\"\n"
	"libtwo_first_end:\n"
	"	.byte 0, 0, 0, 0, 0\n"
	"libtwo_second:\n"
	"	.incbin \"" XDP_OBJ "\"\n"
	"libtwo_second_end:\n"
	"	.text\n");

#define HIDDEN __attribute__((visibility("hidden")))
extern const char libtwo_first[] HIDDEN, libtwo_first_end[] HIDDEN;
extern const char libtwo_second[] HIDDEN, libtwo_second_end[] HIDDEN;

/* Returns the index-th embedded object (0 or 1), or NULL. */
const void *libtwo_object(unsigned int index, size_t *size)
{
	switch (index) {
	case 0:
		*size = (size_t)(libtwo_first_end - libtwo_first);
		return libtwo_first;
	case 1:
		*size = (size_t)(libtwo_second_end - libtwo_second);
		return libtwo_second;
	default:
		return NULL;
	}
}
