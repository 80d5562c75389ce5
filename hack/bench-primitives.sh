#!/usr/bin/env bash
# Time hod against buildah on the primitives of issues 3 and 5, in one run, on fresh stores:
#   copy  : `copy CTR <w3 context: 20,000 files, ~100 MB> /data` into a scratch container
#   commit: `commit CTR img` of that container
#   run   : 50 x `run CTR /bin/busybox true` in a busybox container (--network none)
# for each driver. Prints the median per builder and the ratio hod/buildah.
#
# usage: hack/bench-primitives.sh [HOD_BIN] [BUILDAH_BIN]
#   RUNS=3 DRIVERS="overlay vfs" RUN_ITERS=50 W3_CTX=/var/tmp/hod-bench/w3-files
#   STORE_BASE=/var/tmp (where the fresh stores go)
# The stores are removed at the end, not between runs: on an ext4 without a journal, every
# file created soon after a big `rm -rf` pays for the kernel's scan of the recently freed
# inodes (ext4's find_inode_bit/recently_deleted), so deleting one builder's store right
# before the other's timed step charged the deletion to whoever ran next (the w3 container
# is likewise left in place until then).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
HOD_BIN=${1:-$here/target/release/hod}
BUILDAH_BIN=${2:-buildah}
RUNS=${RUNS:-3}
DRIVERS=${DRIVERS:-overlay vfs}
RUN_ITERS=${RUN_ITERS:-50}
W3_CTX=${W3_CTX:-/var/tmp/hod-bench/w3-files}
OUT=${BENCH_OUT:-/tmp/hod-bench-primitives}
STORE_BASE=${STORE_BASE:-/var/tmp}
mkdir -p "$OUT"
if [ ! -d "$W3_CTX" ]; then
  mkdir -p "$(dirname "$W3_CTX")"
  python3 /work/shared/bench/lib/gen-files.py "$W3_CTX" >/dev/null 2>&1 ||
    python3 "$here/../shared/bench/lib/gen-files.py" "$W3_CTX" >/dev/null
fi
busybox=$(command -v busybox)

now() { date +%s.%N; }
tsv=$OUT/results.tsv
: >"$tsv"
stores=()
cleanup() {
  local s bin driver
  for e in "${stores[@]}"; do
    IFS='|' read -r bin driver s <<<"$e"
    "$bin" --root "$s/root" --runroot "$s/run" --storage-driver "$driver" rm -a >/dev/null 2>&1 || true
    mountpoint -q "$s/root/overlay" 2>/dev/null && umount "$s/root/overlay" || true
    rm -rf "$s"
  done
}
trap cleanup EXIT

one_run() { # builder-name bin driver
  local name=$1 bin=$2 driver=$3 store t0 t1 t2 ctr
  store=$(mktemp -d "$STORE_BASE/hod-bench-store.XXXXXX")
  stores+=("$bin|$driver|$store")
  local B=("$bin" --root "$store/root" --runroot "$store/run" --storage-driver "$driver")
  ctr=$("${B[@]}" from scratch)
  t0=$(now); "${B[@]}" copy "$ctr" "$W3_CTX" /data >/dev/null
  t1=$(now); "${B[@]}" commit -q "$ctr" localhost/bench/w3-prim >/dev/null
  t2=$(now)
  printf '%s\t%s\tcopy\t%s\n' "$name" "$driver" "$(echo "$t1 - $t0" | bc)" >>"$tsv"
  printf '%s\t%s\tcommit\t%s\n' "$name" "$driver" "$(echo "$t2 - $t1" | bc)" >>"$tsv"
  ctr=$("${B[@]}" from scratch)
  "${B[@]}" copy "$ctr" "$busybox" /bin/busybox >/dev/null
  t0=$(now)
  for _ in $(seq 1 "$RUN_ITERS"); do "${B[@]}" run --network none "$ctr" /bin/busybox true; done
  t1=$(now)
  "${B[@]}" rm "$ctr" >/dev/null
  printf '%s\t%s\trun\t%s\n' "$name" "$driver" "$(echo "($t1 - $t0) / $RUN_ITERS" | bc -l)" >>"$tsv"
}

for driver in $DRIVERS; do
  for r in $(seq 1 "$RUNS"); do
    # interleave the builders so drift hits both alike
    one_run hod "$HOD_BIN" "$driver"
    one_run buildah "$BUILDAH_BIN" "$driver"
  done
done

python3 - "$tsv" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    b, d, step, t = line.split("\t")
    rows[(d, step, b)].append(float(t))
print("| driver | step | hod (s, median) | buildah (s, median) | hod/buildah |")
print("|---|---|---|---|---|")
for d in sorted({k[0] for k in rows}):
    for step in ("copy", "commit", "run"):
        h, b = rows.get((d, step, "hod")), rows.get((d, step, "buildah"))
        if not h or not b:
            continue
        mh, mb = statistics.median(h), statistics.median(b)
        print(f"| {d} | {step} | {mh:.3f} | {mb:.3f} | {mh/mb:.2f} |")
PY
