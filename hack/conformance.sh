#!/usr/bin/env bash
# hack/conformance.sh: run buildah's own bats suite against a freshly built hod and write
# docs/conformance.md (per-file pass counts against buildah 1.28.2's baseline on this kind of
# machine, the failing tests grouped by cause, and the command that produced it).
#
#   BUILDAH_SRC=/path/to/buildah.git hack/conformance.sh [FILE...]     (FILE: from, bud, …)
#
# A measurement run by hand, not part of CI: the suite is never committed and CI has no copy.
# Needs ../shared/conformance (run.sh and baselines/) and a containers/buildah snapshot in
# BUILDAH_SRC (see ../shared/conformance/README.md; BUILDAH_SRC_REV defaults to the baseline's
# commit 5b1b18eebdc2). Env: JOBS (default 2), OUT (results dir), HOD (binary; default: a
# release build made here), CONFORMANCE_DIR (the harness; default ../shared/conformance), DOC (default docs/conformance.md; "-" = print only).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
conf=${CONFORMANCE_DIR:-$repo/../shared/conformance}
# In a linked git worktree, ../shared is next to the main checkout, not next to the worktree.
if [[ ! -d $conf ]]; then
    common=$(git rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)
    [[ -n $common ]] && conf=$(dirname "$(dirname "$common")")/shared/conformance
fi
baseline=$conf/baselines/buildah-1.28.2.txt
[[ -x $conf/run.sh ]] || { echo "conformance: $conf/run.sh not found" >&2; exit 2; }
[[ -n ${BUILDAH_SRC:-} ]] || { echo "conformance: set BUILDAH_SRC to a containers/buildah snapshot (see $conf/README.md)" >&2; exit 2; }
# The harness's prerequisites (its README), installed when missing (Debian, as root).
declare -A need=([parallel]=parallel [bats]=bats [skopeo]=skopeo [jq]=jq [curl]=curl [python3]=python3
    [runc]=runc [docker-registry]=docker-registry [buildah]=buildah [debootstrap]=debootstrap
    [openssl]=openssl [git]=git [podman]=podman [getfattr]=attr [uuidgen]=uuid-runtime)
missing=()
for c in "${!need[@]}"; do command -v "$c" >/dev/null 2>&1 || missing+=("${need[$c]}"); done
[[ -x /bin/busybox ]] || missing+=(busybox-static)
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "conformance: installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
export BUILDAH_SRC_REV=${BUILDAH_SRC_REV:-5b1b18eebdc2}
if [[ -z ${HOD:-} ]]; then
    cargo build --release --bins >&2
    HOD=$repo/target/release/hod
fi
out=${OUT:-$(mktemp -d /var/tmp/hod-conformance.XXXXXX)}
# hod takes its name from argv[0]: the suite runs it as `buildah`, as a drop-in install would
# (`ln -s hod /usr/local/bin/buildah`), so usage lines and messages say `buildah`. run.sh
# resolves symlinks (readlink -f), so the name is a hard link (a copy across filesystems).
hod_bin=$(readlink -f "$(command -v "$HOD")")
mkdir -p "$out/bin"
ln -f "$hod_bin" "$out/bin/buildah" 2>/dev/null || cp -f "$hod_bin" "$out/bin/buildah"
files=("$@")
cmd=("$conf/run.sh" -j "${JOBS:-2}" --exit-zero --out "$out" --only "$baseline" "$out/bin/buildah" "${files[@]}")
echo "conformance: ${cmd[*]} (buildah: $hod_bin)" >&2
"${cmd[@]}" >&2
rm -f "$out/bin/buildah"
doc=${DOC:-docs/conformance.md}
python3 - "$out/results.tsv" "$baseline" "hack/conformance.sh ${files[*]}" "$(git rev-parse --short HEAD)" "$conf/lib/classify.py" "$out" <<'PY' > "${doc/#-//dev/stdout}"
import collections, subprocess, sys
results, baseline, command, rev, classify, out = sys.argv[1:7]
base = collections.defaultdict(set)
for line in open(baseline):
    line = line.rstrip("\n")
    if line and not line.startswith("#") and "\t" in line:
        f, t = line.split("\t", 1)
        base[f.removesuffix(".bats")].add(t)
got = {}
for line in open(results):
    parts = line.rstrip("\n").split("\t")
    if len(parts) >= 3 and parts[0] != "file":
        got[(parts[0].removesuffix(".bats"), parts[1])] = (parts[2], parts[4] if len(parts) > 4 else "")
files = sorted({f for f, _ in got})
print("# Conformance: buildah's own bats suite against hod\n")
print(f"Measured at commit `{rev}` with `{command}` (BUILDAH_SRC at buildah `5b1b18eebdc2`; "
      "baseline: the tests buildah 1.28.2 passes on this kind of machine, "
      "`../shared/conformance/baselines/buildah-1.28.2.txt`).\n")
print("| file | baseline | passed | % |\n|---|---:|---:|---:|")
tp = tb = 0
failing = []
for f in files:
    b = base.get(f, set())
    p = sum(1 for t in b if got.get((f, t), ("missing",))[0] == "pass")
    tp += p; tb += len(b)
    pct = f"{100*p/len(b):.0f}" if b else "-"
    print(f"| {f} | {len(b)} | {p} | {pct} |")
    failing += [(f, t, got.get((f, t), ("missing", ""))[1]) for t in sorted(b) if got.get((f, t), ("missing",))[0] != "pass"]
if tb:
    print(f"| **total** | **{tb}** | **{tp}** | **{100*tp/tb:.0f}** |")
try:
    cls = subprocess.run([sys.executable, classify, out], capture_output=True, text=True, timeout=300).stdout
except Exception as e:  # the classification is a convenience; the table above is the measurement
    cls = f"(classify.py failed: {e})"
print("\n## Baseline tests still failing\n")
for f, t, d in failing:
    d = (d or "").replace("|", "/")[:160]
    print(f"- {f}: {t}" + (f" — {d}" if d else ""))
print("\n## Causes (../shared/conformance/lib/classify.py)\n\n```\n" + cls.strip()[:20000] + "\n```")
PY
echo "conformance: results in $out; wrote $doc" >&2
