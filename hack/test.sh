#!/usr/bin/env bash
# hack/test.sh: every test of hod, as CI runs it (.ci/run calls this).
#
#   hack/test.sh [TIER...]      TIER: deps build cargo bats examples fuzz (default: all, in order)
#
# 1. deps      apt-get install whatever of the test tools (and libseccomp-dev, to build) is
#              missing (Debian/Ubuntu, as root)
# 2. build     cargo build of hod (dev profile, dependencies optimised: one build
#              serves both the cargo tests and the CLI tiers)
# 3. cargo     cargo test --workspace: unit tests and tests/it (integration)
# 4. bats      bats/*.bats with TAP output, for the vfs and the overlay driver
# 5. examples  shell-examples/*.sh on fresh stores, both drivers, checked with podman/skopeo
# 6. fuzz      cargo fuzz (nightly, libFuzzer) on fuzz/: the Containerfile parser, the layer
#              tar reader and the manifest parser, HOD_FUZZ_SECONDS each (default 30); installs
#              the nightly toolchain and cargo-fuzz if missing, and fails if it cannot
#
# Prints cargo's "test result:" lines, bats' TAP, and last "N passed, N failed"
# for the bats + examples tiers. Exits non-zero if anything failed.
#
# env: HOD            binary for the bats/examples tiers (default: the one built here);
#                     HOD=buildah runs those tiers against buildah (validation)
#      HOD_BIN        binary for tests/it (default: the cargo-built hod)
#      BATS_DRIVERS   drivers for the bats tier (default "vfs overlay")
#      BATS_FILTER    bats --filter regex;  BATS_FILES  files to run (default all)
#      EXAMPLES       shell examples to run (default all, e.g. "s2i")
#      HOD_TEST_CACHE fixture cache (default /var/tmp/hod-test-cache)
#      CARGO_TEST_ARGS extra args for cargo test (e.g. "-- --test-threads=1")
#      HOD_FUZZ_SECONDS seconds of fuzzing per target in the fuzz tier (default 30)
#      CI             set (as .ci/run sets it): a test that would skip for a missing tool or
#                     capability fails instead
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
tiers=("$@")
[[ ${#tiers[@]} -gt 0 ]] || tiers=(deps build cargo bats examples fuzz)
want() { local t; for t in "${tiers[@]}"; do [[ $t == "$1" ]] && return 0; done; return 1; }

export HOD_TEST_CACHE=${HOD_TEST_CACHE:-/var/tmp/hod-test-cache}
# Optimise dependencies (sha2, flate2, zstd, ...) in the dev profile: a debug
# hod then hashes and compresses at near-release speed, and there is one build.
CARGO_CFG=(--config 'profile.dev.package."*".opt-level=2' --config 'profile.dev.debug="line-tables-only"')
started=$(date +%s)
failed_tiers=()
log() { printf '\n=== %s (%ss)\n' "$*" "$(( $(date +%s) - started ))"; }

# ---------------------------------------------------------------- deps
if want deps; then
    log "deps"
    # command -> Debian package
    declare -A pkgs=(
        [podman]=podman [skopeo]=skopeo [buildah]=buildah [runc]=runc [umoci]=umoci
        [oci-image-tool]=oci-image-tool [docker-registry]=docker-registry [bats]=bats
        [debootstrap]=debootstrap [jq]=jq [newuidmap]=uidmap [setfattr]=attr [zstd]=zstd
        [xz]=xz-utils [bzip2]=bzip2 [curl]=curl [gcc]=gcc [make]=make [file]=file
        [setpriv]=util-linux [script]=bsdutils [python3]=python3 [dpkg-deb]=dpkg
        [flock]=util-linux [timeout]=coreutils [perl]=perl-base [unshare]=util-linux
        [useradd]=passwd [usermod]=passwd
        [htpasswd]=apache2-utils [openssl]=openssl [cpp]=cpp [git]=git
    )
    missing=()
    for cmd in "${!pkgs[@]}"; do
        command -v "$cmd" >/dev/null 2>&1 || missing+=("${pkgs[$cmd]}")
    done
    [[ -x /bin/busybox ]] && file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' || missing+=(busybox-static)
    [[ -e /usr/lib/x86_64-linux-gnu/libc.a || -e /usr/lib/aarch64-linux-gnu/libc.a || -e /usr/lib/libc.a ]] || missing+=(libc6-dev)
    # Building hod: the seccomp filter links libseccomp (as runc does).
    [[ -e /usr/include/seccomp.h ]] || missing+=(libseccomp-dev)
    command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
    if [[ ${#missing[@]} -gt 0 ]]; then
        mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
        echo "installing: ${missing[*]}"
        if [[ $(id -u) -ne 0 ]]; then
            echo "not root: cannot apt-get install ${missing[*]}; the tests that need them will skip" >&2
        else
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
                { echo "apt-get install failed" >&2; exit 2; }
        fi
    else
        echo "all test tools present"
    fi
    if [[ $(id -u) -eq 0 && ! -e /etc/containers/policy.json ]]; then
        mkdir -p /etc/containers
        echo '{"default":[{"type":"insecureAcceptAnything"}]}' > /etc/containers/policy.json
    fi
    command -v cargo >/dev/null || { echo "cargo not found: install Rust (https://rustup.rs)" >&2; exit 2; }
    # Fixture images (built offline from busybox-static; Debian via debootstrap, cached).
    # Built aside and swapped in, so a test reading the cached layout never sees it half made.
    if [[ ! -s $HOD_TEST_CACHE/busybox-oci/index.json ]]; then
        mkdir -p "$HOD_TEST_CACHE"
        hack/make-busybox-oci.sh "$HOD_TEST_CACHE/.busybox-oci.$$" >/dev/null || exit 2
        mv -T "$HOD_TEST_CACHE/.busybox-oci.$$" "$HOD_TEST_CACHE/busybox-oci" 2>/dev/null ||
            rm -rf "$HOD_TEST_CACHE/.busybox-oci.$$"
    fi
    if [[ $(id -u) -eq 0 && ! -s $HOD_TEST_CACHE/debian-bookworm-oci/index.json ]]; then
        hack/make-debian-oci.sh "$HOD_TEST_CACHE/debian-tmp" >/dev/null &&
            rm -rf "$HOD_TEST_CACHE/debian-tmp" ||
            echo "WARNING: Debian fixture not built; the Debian tests will skip" >&2
    fi
fi

# ---------------------------------------------------------------- build
if want build; then
    log "build: cargo build (dev profile, optimised dependencies)"
    cargo "${CARGO_CFG[@]}" build --workspace --bins || { echo "cargo build failed" >&2; exit 1; }
fi
export HOD=${HOD:-$repo/target/debug/hod}

# ---------------------------------------------------------------- cargo
cargo_skipped=0 cargo_ignored=0
if want cargo; then
    log "cargo test --workspace"
    # Count the skips: tests lacking a tool or capability append a line to $HOD_SKIP_LOG
    # (failures instead when CI is set; libtest hides a passing test's SKIPPED line), and
    # cargo's "N ignored" (the #[ignore]d tools run by hand).
    cargo_log=$(mktemp)
    HOD_SKIP_LOG=$(mktemp)
    export HOD_SKIP_LOG
    # shellcheck disable=SC2086
    if ! cargo "${CARGO_CFG[@]}" test --workspace ${CARGO_TEST_ARGS:-} 2>&1 | tee "$cargo_log"; then
        failed_tiers+=(cargo)
    fi
    cargo_skipped=$(wc -l < "$HOD_SKIP_LOG")
    if [[ $cargo_skipped -gt 0 ]]; then
        echo "skipped cargo tests:"
        sed 's/^/  /' "$HOD_SKIP_LOG"
    fi
    cargo_ignored=$(sed -n 's/^test result: .* \([0-9][0-9]*\) ignored;.*/\1/p' "$cargo_log" |
        awk '{ n += $1 } END { print n + 0 }')
    rm -f "$cargo_log" "$HOD_SKIP_LOG"
    unset HOD_SKIP_LOG
    # In CI a SKIPPED line is a failure even if some test printed one without panicking.
    if [[ -n ${CI:-} && $cargo_skipped -gt 0 ]]; then
        echo "CI: $cargo_skipped cargo test(s) printed SKIPPED" >&2
        failed_tiers+=(cargo-skips)
    fi
fi

cli_pass=0 cli_fail=0 cli_skip=0

# ---------------------------------------------------------------- bats
if want bats; then
    for driver in ${BATS_DRIVERS:-vfs overlay}; do
        log "bats ($driver) with HOD=$HOD"
        files=()
        if [[ -n ${BATS_FILES:-} ]]; then
            for f in $BATS_FILES; do files+=("bats/${f%.bats}.bats"); done
        else
            files=(bats/*.bats)
        fi
        tap=$(mktemp)
        STORAGE_DRIVER=$driver BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-600} \
            bats --tap ${BATS_FILTER:+--filter "$BATS_FILTER"} "${files[@]}" | tee "$tap"
        p=$(grep -c '^ok ' "$tap"); f=$(grep -c '^not ok ' "$tap"); s=$(grep -c '^ok .* # skip' "$tap")
        echo "bats ($driver): $p passed ($s of them skipped), $f failed"
        cli_pass=$((cli_pass + p)) cli_fail=$((cli_fail + f)) cli_skip=$((cli_skip + s))
        rm -f "$tap"
    done
fi

# ---------------------------------------------------------------- examples
example() { # name driver: runs shell-examples/NAME.sh on a fresh store and checks its image
    local name=$1 driver=$2 s rc=0
    s=$(mktemp -d /var/tmp/hodex.XXXXXX)
    local env=(HOD="$HOD" HOD_ROOT="$s/root" HOD_RUNROOT="$s/run" HOD_STORAGE_DRIVER="$driver")
    local P=(podman --root "$s/root" --runroot "$s/run" --storage-driver "$driver")
    local RUN=(run --rm --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --net none)
    case $name in
        scratch-busybox)
            env "${env[@]}" OCI_DIR="$s/oci" shell-examples/scratch-busybox.sh >"$s/log" 2>&1 || rc=1
            if [[ $rc = 0 ]]; then
                out=$("${P[@]}" "${RUN[@]}" localhost/busybox-scratch:latest /bin/busybox echo ok 2>>"$s/log") || rc=1
                [[ ${out:-} == ok ]] || { echo "podman run printed '${out:-}'" >>"$s/log"; rc=1; }
                inspect=$(skopeo inspect "containers-storage:[$driver@$s/root+$s/run]localhost/busybox-scratch:latest" 2>>"$s/log") || rc=1
                jq -e '.Labels.k == "v" and (.Env | index("foo=bar"))' <<<"${inspect:-{\}}" >/dev/null ||
                    { echo "skopeo inspect lacks the config: ${inspect:-}" >>"$s/log"; rc=1; }
                oci-image-tool validate --type image --ref name=latest "$s/oci" >>"$s/log" 2>&1 || rc=1
            fi
            ;;
        make-install-destdir)
            env "${env[@]}" shell-examples/make-install-destdir.sh >"$s/log" 2>&1 || rc=1
            if [[ $rc = 0 ]]; then
                out=$("${P[@]}" "${RUN[@]}" -e GREETING=podman localhost/hello-destdir:latest 2>>"$s/log") || rc=1
                [[ ${out:-} == "hello, podman" ]] || { echo "podman run printed '${out:-}'" >>"$s/log"; rc=1; }
            fi
            ;;
        containerfile-include)
            # once with cpp, once with the built-in preprocessor: the same image
            env "${env[@]}" shell-examples/containerfile-include.sh >"$s/log" 2>&1 || rc=1
            id1=$("$HOD" --root "$s/root" --runroot "$s/run" --storage-driver "$driver" inspect -f '{{.FromImageID}}' -t image localhost/hello-include:latest 2>>"$s/log") || rc=1
            if [[ $rc = 0 ]]; then
                out=$("${P[@]}" "${RUN[@]}" -e GREETING=podman localhost/hello-include:latest 2>>"$s/log") || rc=1
                [[ ${out:-} == "hello, podman (installed by RUN)" ]] || { echo "podman run printed '${out:-}'" >>"$s/log"; rc=1; }
                env "${env[@]}" NO_CPP=1 shell-examples/containerfile-include.sh >>"$s/log" 2>&1 || rc=1
                hist=$("$HOD" --root "$s/root" --runroot "$s/run" --storage-driver "$driver" inspect -f '{{len .OCIv1.History}}' -t image localhost/hello-include:latest 2>>"$s/log") || rc=1
                [[ ${hist:-} == 5 ]] || { echo "history has '${hist:-}' entries, want 5 (base + 4 steps)" >>"$s/log"; rc=1; }
                [[ -n ${id1:-} ]] || rc=1
            fi
            ;;
        s2i)
            # The application image runs as 1001 under podman, its layers keep the in-image
            # owners (root's scripts, 1001's application), and it was pushed to OCI_DIR.
            env "${env[@]}" OCI_DIR="$s/oci" shell-examples/s2i.sh >"$s/log" 2>&1 || rc=1
            if [[ $rc = 0 ]]; then
                out=$("${P[@]}" "${RUN[@]}" localhost/s2i-app:latest 2>>"$s/log") || rc=1
                [[ ${out:-} == "hello from s2i, uid=1001"$'\n'"built by uid 1001" ]] ||
                    { echo "podman run printed '${out:-}'" >>"$s/log"; rc=1; }
                user=$(skopeo inspect --config "oci:$s/oci:latest" 2>>"$s/log" | jq -r .config.User) || rc=1
                [[ ${user:-} == 1001 ]] || { echo "config User is '${user:-}'" >>"$s/log"; rc=1; }
                owners=$(for l in $(skopeo inspect --raw "oci:$s/oci:latest" | jq -r '.layers[].digest' | cut -d: -f2); do
                    tar --numeric-owner -tvzf "$s/oci/blobs/sha256/$l"; done 2>>"$s/log" | awk '{print $2, $6}')
                for want in "0/0 usr/libexec/s2i/assemble" "1001/0 opt/app-root/src/build-info" "1001/0 opt/app-root/src/app.sh"; do
                    grep -qxF "$want" <<<"$owners" || { echo "no '$want' in the layers: $owners" >>"$s/log"; rc=1; }
                done
            fi
            ;;
    esac
    if [[ $rc = 0 ]]; then
        echo "ok - example $name ($driver)"
        cli_pass=$((cli_pass + 1))
    else
        echo "not ok - example $name ($driver)"
        sed 's/^/#   /' "$s/log"
        cli_fail=$((cli_fail + 1))
    fi
    "${P[@]}" rm -a -f >/dev/null 2>&1
    "$HOD" --root "$s/root" --runroot "$s/run" --storage-driver "$driver" rm -a >/dev/null 2>&1
    awk -v d="$s/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$s"
}
if want examples; then
    log "shell examples with HOD=$HOD"
    for driver in vfs overlay; do
        for ex in ${EXAMPLES:-scratch-busybox make-install-destdir containerfile-include s2i}; do
            example "$ex" "$driver"
        done
    done
fi

# ---------------------------------------------------------------- fuzz
# Bounded libFuzzer runs of fuzz/fuzz_targets/* (docs/security.md, "Fuzzing"). Inputs that
# grow coverage go to fuzz/corpus/TARGET (not committed); fuzz/seeds/TARGET are the seeds.
# A crash, panic, timeout or out-of-memory fails the tier; the input is in fuzz/artifacts/.
fuzz_targets=(containerfile layer_tar manifest)
if want fuzz; then
    log "fuzz: ${HOD_FUZZ_SECONDS:-30}s per target"
    fuzz_ok=1
    if ! rustup run nightly rustc --version >/dev/null 2>&1; then
        rustup toolchain install nightly --profile minimal || fuzz_ok=0
    fi
    if [[ $fuzz_ok = 1 ]] && ! cargo +nightly fuzz --version >/dev/null 2>&1; then
        cargo install cargo-fuzz --locked || fuzz_ok=0
    fi
    if [[ $fuzz_ok = 0 ]]; then
        echo "fuzz: cannot install the nightly toolchain or cargo-fuzz" >&2
        failed_tiers+=(fuzz)
    elif ! (cd fuzz && cargo +nightly fuzz build -s none); then
        echo "fuzz: building the targets failed" >&2
        failed_tiers+=(fuzz)
    else
        for t in "${fuzz_targets[@]}"; do
            mkdir -p "fuzz/corpus/$t"
            fuzz_log=$(mktemp)
            if (cd fuzz && cargo +nightly fuzz run -s none "$t" "corpus/$t" "seeds/$t" -- \
                    -max_total_time="${HOD_FUZZ_SECONDS:-30}" -timeout=10 -rss_limit_mb=2048 \
                    -print_final_stats=1) >"$fuzz_log" 2>&1; then
                echo "fuzz $t: $(grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb):' "$fuzz_log" |
                    sed 's/^stat:://' | tr -s ' \n' ' ')"
                grep -aE '^#[0-9]+[[:space:]]+DONE' "$fuzz_log" | tail -1
            else
                echo "fuzz $t: FAILED"
                tail -60 "$fuzz_log"
                failed_tiers+=("fuzz-$t")
            fi
            rm -f "$fuzz_log"
        done
    fi
fi

log "done"
[[ ${#failed_tiers[@]} -eq 0 ]] || echo "failed: ${failed_tiers[*]}"
if want bats || want examples; then
    echo "bats + examples: $cli_skip of the passed tests were skipped"
fi
echo "$cli_pass passed, $cli_fail failed (bats + examples); skipped: $cli_skip bats, $cargo_skipped cargo, $cargo_ignored cargo ignored${CI:+ (CI set: skips for a missing tool fail)}"
[[ ${#failed_tiers[@]} -eq 0 && $cli_fail -eq 0 ]]
