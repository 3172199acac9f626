#!/usr/bin/env bash
# Build the host binaries that embed BPF objects, for bpfcap's embedded-object tests:
#   testdata/embedded/app        executable, two libbpf skeletons (bpftool gen skeleton)
#                                of testdata/socket.bpf.o and testdata/xdp.bpf.o
#   testdata/embedded/libtwo.so  shared library, the same two objects as raw bytes
#                                (.incbin), at odd offsets, no names
#
# Usage:
#   bpf-samples/embedded/build.sh              build into testdata/embedded/
#   bpf-samples/embedded/build.sh --out DIR    build into DIR instead
#   bpf-samples/embedded/build.sh --check      build into a temp dir and compare byte-for-byte
#                                              with testdata/embedded/; exit 1 listing differences
#
# Needs gcc, binutils (strip) and bpftool; as root on Debian it installs what is missing.
# The libbpf headers the skeletons include come from the libbpf sources vendored by the
# libbpf-sys crate (like bpf-samples/build.sh); nothing links against libbpf: app.c uses
# the stand-ins in libbpf_stubs.c. The output is deterministic (no build id, file names
# relative to the repository root, stripped); the same gcc and bpftool versions give the
# same bytes (Debian 12: gcc 12.2, bpftool 7.1).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)

# shellcheck source=../../scripts/sample-build.sh
source "$REPO_ROOT/scripts/sample-build.sh"
build_args "$REPO_ROOT/testdata/embedded" 18 "$@"

# ---------------------------------------------------------------- toolchain
CC=${CC:-gcc}
STRIP=${STRIP:-strip}
BPFTOOL=${BPFTOOL:-bpftool}
have() { command -v "$1" >/dev/null 2>&1 || [ -x "$1" ]; }
need_tools() { have "$CC" && have "$STRIP" && { have "$BPFTOOL" || have /usr/sbin/bpftool; }; }
if ! need_tools; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "build.sh: installing gcc, binutils and bpftool" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y gcc binutils bpftool >&2 || {
            apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y gcc binutils bpftool >&2; }
    fi
    if ! need_tools; then
        echo "build.sh: gcc, strip and bpftool are required (Debian: apt-get install -y gcc binutils bpftool)" >&2
        exit 1
    fi
fi
# Debian installs bpftool in /usr/sbin, which is not on every user's PATH.
have "$BPFTOOL" || BPFTOOL=/usr/sbin/bpftool

# ---------------------------------------------------------------- libbpf headers
libbpf_workdir

# Common flags: no build id, no .comment from the compiler, file names relative to the
# repository root, so that the bytes depend on the sources and the toolchain only.
CFLAGS=(-O2 -Wall -Wextra -fno-ident
    -ffile-prefix-map="$INC"=/libbpf-include
    -ffile-prefix-map="$LIBBPF_DIR"=/libbpf
    -ffile-prefix-map="$TMP"=/tmp
    -ffile-prefix-map="$REPO_ROOT"/=
    -ffile-prefix-map="$REPO_ROOT"=.)
LDFLAGS=(-Wl,--build-id=none -Wl,--hash-style=gnu)

# ---------------------------------------------------------------- build
build_into() {
    local out=$1
    mkdir -p "$out"
    cd "$REPO_ROOT"
    # Skeletons: the ELF bytes of each object as a string literal, plus its names.
    "$BPFTOOL" gen skeleton testdata/socket.bpf.o name socket_bpf > "$TMP/socket.skel.h"
    "$BPFTOOL" gen skeleton testdata/xdp.bpf.o name xdp_bpf > "$TMP/xdp.skel.h"
    "$CC" "${CFLAGS[@]}" -I "$TMP" -I "$INC" -I "$LIBBPF_DIR/include/uapi" \
        bpf-samples/embedded/app.c bpf-samples/embedded/libbpf_stubs.c \
        "${LDFLAGS[@]}" -o "$out/app.tmp"
    "$STRIP" --strip-all "$out/app.tmp"
    mv "$out/app.tmp" "$out/app"

    "$CC" "${CFLAGS[@]}" -fPIC -shared \
        -DSOCKET_OBJ='"testdata/socket.bpf.o"' -DXDP_OBJ='"testdata/xdp.bpf.o"' \
        bpf-samples/embedded/libtwo.c \
        "${LDFLAGS[@]}" -Wl,-soname,libtwo.so -o "$out/libtwo.so.tmp"
    "$STRIP" --strip-all "$out/libtwo.so.tmp"
    mv "$out/libtwo.so.tmp" "$out/libtwo.so"
    echo "build.sh: built app and libtwo.so into $out" >&2
}

if [ "$CHECK" = 1 ]; then
    build_into "$TMP/out"
    status=0
    for name in app libtwo.so; do
        if [ ! -f "$REPO_ROOT/testdata/embedded/$name" ]; then
            echo "missing: testdata/embedded/$name"; status=1
        elif ! cmp -s "$TMP/out/$name" "$REPO_ROOT/testdata/embedded/$name"; then
            echo "differs: testdata/embedded/$name"; status=1
        fi
    done
    if [ "$status" = 0 ]; then
        echo "build.sh: testdata/embedded/ is up to date" >&2
    fi
    exit $status
fi

mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
build_into "$OUT_DIR"
