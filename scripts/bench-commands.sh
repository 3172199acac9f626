#!/usr/bin/env bash
# Whole-command speed, measured side by side in one run (timings on shared machines are noisy;
# compare the ratios, not the seconds):
#   1. bpfcap analyze over a generated corpus of N objects, on one core and on all cores;
#   2. libbpf's own bpf_object__open of the same objects (examples/libbpf_open.rs);
#   3. the same over the project's own objects;
#   4. with BPFCAP_SYSTEMD_ROOT (the sid chroot of ./dev test): the BPF objects built by others
#      in its packages (libbpf-tools, xdp-tools, systemd), extracted to files so that libbpf
#      opens the same files bpfcap reads, and bpfcap over the original tree too (finding the
#      objects embedded in executables and libraries).
# Usage: scripts/bench-commands.sh [N]   (default 1000)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
N=${1:-1000}
cargo build --release --locked -q --bin bpfcap --example libbpf_open --example extract_objects
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
# The corpus: copies of every sample libbpf can open, in a tree of 10 directories.
mapfile -t samples < <(ls testdata/*.bpf.o | grep -v -e maps_legacy -e maps_iproute2)
for ((i = 0; i < N; i++)); do
    d="$corpus/d$((i % 10))"
    mkdir -p "$d"
    s=${samples[$((i % ${#samples[@]}))]}
    cp "$s" "$d/obj$i.$(basename "$s")"
done
t() { local s e; s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; }
cores=$(nproc)
one=$(t taskset -c 0 target/release/bpfcap analyze --format json "$corpus")
all=$(t target/release/bpfcap analyze --format json "$corpus")
lib=$(t target/release/examples/libbpf_open "$corpus")
own=$(t target/release/bpfcap analyze --format json testdata)
ownlib=$(t target/release/examples/libbpf_open testdata)
printf 'corpus of %d objects:\n' "$N"
printf '  bpfcap analyze, 1 core      %8.3f s\n' "$one"
printf '  bpfcap analyze, %d cores     %8.3f s   (speed-up %.2f)\n' "$cores" "$all" "$(echo "$one / $all" | bc -l)"
printf '  libbpf bpf_object__open     %8.3f s   (bpfcap all cores / libbpf = %.2f)\n' "$lib" "$(echo "$all / $lib" | bc -l)"
printf 'testdata/: bpfcap %.3f s, libbpf open %.3f s (ratio %.2f)\n' "$own" "$ownlib" "$(echo "$own / $ownlib" | bc -l)"
root=${BPFCAP_SYSTEMD_ROOT:-}
if [ -n "$root" ] && [ -d "$root/usr/sbin" ]; then
    tree=("$root/usr/sbin" "$root/usr/lib/x86_64-linux-gnu/bpf" "$root/usr/lib/x86_64-linux-gnu/systemd")
    real="$corpus/real"
    target/release/examples/extract_objects "$real" "${tree[@]}" >/dev/null
    n=$(ls "$real" | wc -l)
    rone=$(t taskset -c 0 target/release/bpfcap analyze --format json "$real")
    rall=$(t target/release/bpfcap analyze --format json "$real")
    rlib=$(t target/release/examples/libbpf_open "$real")
    rtree=$(t target/release/bpfcap analyze --format json "${tree[@]}")
    printf 'objects built by others (%d, from %s):\n' "$n" "$root"
    printf '  bpfcap analyze, 1 core      %8.3f s\n' "$rone"
    printf '  bpfcap analyze, %d cores     %8.3f s\n' "$cores" "$rall"
    printf '  libbpf bpf_object__open     %8.3f s   (bpfcap 1 core / libbpf = %.2f, all cores / libbpf = %.2f)\n' \
        "$rlib" "$(echo "$rone / $rlib" | bc -l)" "$(echo "$rall / $rlib" | bc -l)"
    printf '  bpfcap analyze over the packages themselves (executables, libraries): %.3f s\n' "$rtree"
fi
