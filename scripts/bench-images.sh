#!/usr/bin/env bash
# How fast bpfcap reads a root filesystem and an image, as ratios to the floor measured in the
# same run (timings on shared machines are noisy: only the ratios mean something):
#   - `bpfcap analyze ROOT` against `cat` of every regular file of ROOT;
#   - `bpfcap analyze IMAGE` (ROOT as a gzip root filesystem tarball, made once, not timed)
#     against `zcat` of it: decompressing its one layer.
# Each pair runs RUNS times (default 3), alternating, on a warm page cache; the median of each
# is reported. The goals (issue "Container images"): walk ≤ 1.0 × cat, image ≤ 1.5 × zcat.
#
# usage: scripts/bench-images.sh [ROOT]   (ROOT: default /usr)
#   BPFCAP: the binary (default target/release/bpfcap, built if missing); RUNS: repetitions.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

root=${1:-/usr}
runs=${RUNS:-3}
bpfcap=${BPFCAP:-target/release/bpfcap}
[ -x "$bpfcap" ] || cargo build --release --locked -q
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
image=$work/rootfs.tar.gz
tar czf "$image" -C "$root" . 2>/dev/null || true

# seconds a command takes (its output discarded; bpfcap's exit 2 for "no objects" is fine)
seconds() {
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || true
    end=$(date +%s.%N)
    awk -v a="$start" -v b="$end" 'BEGIN { print b - a }'
}
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
cat_tree() { find "$root" -type f -print0 | xargs -0 cat >/dev/null 2>&1; }

# warm the cache
cat_tree
zcat "$image" >/dev/null
: >"$work/cat"; : >"$work/walk"; : >"$work/zcat"; : >"$work/image"
for _ in $(seq "$runs"); do
    seconds cat_tree >>"$work/cat"
    seconds "$bpfcap" analyze --format json "$root" >>"$work/walk"
    seconds zcat "$image" >>"$work/zcat"
    seconds "$bpfcap" analyze --format json "$image" >>"$work/image"
done
c=$(median <"$work/cat"); w=$(median <"$work/walk"); z=$(median <"$work/zcat"); i=$(median <"$work/image")
printf 'root filesystem %s: bpfcap %.2f s, cat %.2f s: %.2f x cat (goal <= 1.0)\n' "$root" "$w" "$c" "$(awk -v a="$w" -v b="$c" 'BEGIN { print a / b }')"
printf 'image (%s MB gzip): bpfcap %.2f s, zcat %.2f s: %.2f x zcat (goal <= 1.5)\n' \
    "$(( $(stat -c %s "$image") / 1000000 ))" "$i" "$z" "$(awk -v a="$i" -v b="$z" 'BEGIN { print a / b }')"
