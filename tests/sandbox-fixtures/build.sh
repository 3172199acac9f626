#!/bin/sh
# Rebuilds the BPF objects used by tests/sandbox.rs.
# Needs clang (>= 14) and libbpf's headers; by default the headers vendored
# by the libbpf-sys crate in ~/.cargo are used (override with LIBBPF_SRC=<dir
# containing bpf_helpers.h>).
set -eu
cd "$(dirname "$0")"
CLANG=${CLANG:-clang}
if [ -z "${LIBBPF_SRC:-}" ]; then
	LIBBPF_SRC=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/libbpf-sys-*/libbpf/src 2>/dev/null | sort | tail -n 1)
fi
[ -f "$LIBBPF_SRC/bpf_helpers.h" ] || { echo "bpf_helpers.h not found (set LIBBPF_SRC)" >&2; exit 1; }
inc=$(mktemp -d)
trap 'rm -rf "$inc"' EXIT
ln -s "$LIBBPF_SRC" "$inc/bpf"
multiarch=$(gcc -print-multiarch 2>/dev/null || echo "$(uname -m)-linux-gnu")
for src in socket_filter kprobe hash_map big_array huge_maps; do
	"$CLANG" -O2 -g -target bpf -I "$inc" -I "/usr/include/$multiarch" \
		-c "$src.c" -o "$src.o"
done
echo "built: socket_filter.o kprobe.o hash_map.o big_array.o huge_maps.o"
