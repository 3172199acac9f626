#!/usr/bin/env bash
# Build the BPF sample objects in bpf-samples/*.bpf.c into testdata/<name>.bpf.o, and
# bpfcap's own BPF programs, bpf/*.bpf.c, into bpf/<name>.bpf.o beside their sources (bpfcap
# compiles them in: `record`'s observer).
#
# Usage:
#   bpf-samples/build.sh              build into testdata/
#   bpf-samples/build.sh --out DIR    build into DIR instead
#   bpf-samples/build.sh --check      build into a temp dir and compare byte-for-byte
#                                     with testdata/ and bpf/; exit 1 listing differing objects
#
# Headers come from the libbpf sources vendored in the cargo registry by the
# libbpf-sys crate (found through `cargo metadata`), never from the system's
# (older) libbpf-dev or linux-libc-dev bpf.h. No vmlinux.h, no bpftool: kernel
# types the samples need are declared in bpf-samples/include/common.h.
#
# The output is deterministic: file names are relative to the repository root
# and the (temporary, machine-specific) include directories are remapped with
# -ffile-prefix-map, so two builds in different directories give identical bytes.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

# shellcheck source=../scripts/sample-build.sh
source "$REPO_ROOT/scripts/sample-build.sh"
build_args "$REPO_ROOT/testdata" 18 "$@"

if [ "$CHECK" = 0 ]; then
    mkdir -p "$OUT_DIR"
    OUT_DIR=$(cd "$OUT_DIR" && pwd)
fi

# ---------------------------------------------------------------- toolchain
need_tools() {
    command -v "${CLANG:-clang}" >/dev/null 2>&1 &&
        command -v "${LLVM_STRIP:-llvm-strip}" >/dev/null 2>&1 &&
        command -v "${LLVM_OBJCOPY:-llvm-objcopy}" >/dev/null 2>&1
}
if ! need_tools; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "build.sh: installing clang and llvm" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y clang llvm >&2 || {
            apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y clang llvm >&2; }
    fi
    if ! need_tools; then
        echo "build.sh: clang, llvm-strip and llvm-objcopy are required (Debian: apt-get install -y clang llvm)" >&2
        exit 1
    fi
fi
CLANG=${CLANG:-clang}
LLVM_STRIP=${LLVM_STRIP:-llvm-strip}
LLVM_OBJCOPY=${LLVM_OBJCOPY:-llvm-objcopy}

# ---------------------------------------------------------------- libbpf headers
libbpf_workdir

# Multiarch dir for <asm/types.h>, pulled in by <linux/types.h>.
MULTIARCH=${MULTIARCH:-$(gcc -print-multiarch 2>/dev/null || true)}
[ -n "$MULTIARCH" ] || MULTIARCH="$(uname -m)-linux-gnu"
SYS_ASM_DIR="/usr/include/$MULTIARCH"

# ---------------------------------------------------------------- build
build_into() {
    local out=$1 srcdir=${2:-bpf-samples}
    mkdir -p "$out"
    local src name obj n=0
    cd "$REPO_ROOT"
    for src in "$srcdir"/*.bpf.c; do
        name=$(basename "$src" .c)
        obj="$out/$name.o"
        "$CLANG" -O2 -g -target bpf -D__TARGET_ARCH_x86 \
            -Wall -Wno-unused-function \
            -I bpf-samples/include \
            -I "$INC" \
            -I "$LIBBPF_DIR/include/uapi" \
            -idirafter "$SYS_ASM_DIR" \
            -ffile-prefix-map="$INC"=/libbpf-include \
            -ffile-prefix-map="$LIBBPF_DIR"=/libbpf \
            -ffile-prefix-map="$REPO_ROOT"/= \
            -ffile-prefix-map="$REPO_ROOT"=. \
            -fno-ident \
            -c "$src" -o "$obj.tmp"
        strip_debug "$obj.tmp"
        mv "$obj.tmp" "$obj"
        n=$((n + 1))
    done
    echo "build.sh: built $n objects into $out" >&2
}

# Drop DWARF (.debug_*) but keep .BTF/.BTF.ext, which loaders need. Only keep the
# stripped object if both BTF sections survived byte-for-byte.
strip_debug() {
    local obj=$1
    "$LLVM_STRIP" -g "$obj" -o "$obj.stripped"
    local sec
    for sec in .BTF .BTF.ext; do
        section_bytes "$obj" "$sec" "$obj.sec.a"
        section_bytes "$obj.stripped" "$sec" "$obj.sec.b"
        if ! cmp -s "$obj.sec.a" "$obj.sec.b"; then
            rm -f "$obj.sec.a" "$obj.sec.b"
            echo "build.sh: llvm-strip -g changed $sec in $obj; keeping the unstripped object" >&2
            rm -f "$obj.stripped"
            return 0
        fi
        rm -f "$obj.sec.a" "$obj.sec.b"
    done
    mv "$obj.stripped" "$obj"
}

# section_bytes OBJ SECTION FILE: write SECTION's bytes to FILE ("<none>" if absent).
section_bytes() {
    if ! "$LLVM_OBJCOPY" --dump-section "$2=$3" "$1" "$3.junk" 2>/dev/null; then
        echo "<none>" > "$3"
    fi
    rm -f "$3.junk"
}

# compare_dir BUILT_DIR REPO_DIR: every object built is in REPO_DIR byte for byte, and REPO_DIR
# holds no object without a source.
compare_dir() {
    local built=$1 dir=$2 obj name
    for obj in "$built"/*.bpf.o; do
        name=$(basename "$obj")
        if [ ! -f "$REPO_ROOT/$dir/$name" ]; then
            echo "missing: $dir/$name"; status=1
        elif ! cmp -s "$obj" "$REPO_ROOT/$dir/$name"; then
            echo "differs: $dir/$name"; status=1
        fi
    done
    for obj in "$REPO_ROOT/$dir"/*.bpf.o; do
        [ -e "$obj" ] || continue
        name=$(basename "$obj")
        [ -f "$built/$name" ] || { echo "stale (no source): $dir/$name"; status=1; }
    done
}

if [ "$CHECK" = 1 ]; then
    build_into "$TMP/out"
    build_into "$TMP/bpf" bpf
    status=0
    compare_dir "$TMP/out" testdata
    compare_dir "$TMP/bpf" bpf
    if [ "$status" = 0 ]; then
        echo "build.sh: testdata/ and bpf/ are up to date" >&2
    fi
    exit $status
fi

build_into "$OUT_DIR"
build_into "$REPO_ROOT/bpf" bpf
