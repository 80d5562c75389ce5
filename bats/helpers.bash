#!/usr/bin/env bash
# bats helpers in buildah's vocabulary (tests/helpers.bash upstream), so that
# cases from buildah's suite move here with few changes:
#
#   run_hod [RC] ARGS...     run $HOD with the test's --root/--runroot/--storage-driver;
#                            RC (default 0) is the expected exit status, '?' ignores it.
#                            Sets $output, $lines, $status.  run_buildah is the same.
#   hod ARGS...              $HOD with the test's store options, for $(...) capture.
#   expect_output [--substring] [--from=STRING] EXPECTED
#   expect_line_count N
#   assert [ACTUAL OP] EXPECTED [DESCRIPTION]
#   _prefetch IMAGE...       put busybox / debian into the test's store offline
#                            (built by hack/make-*-oci.sh, copied with skopeo).
#   skip_if_rootless, skip_if_no_podman, skip_if_no_runtime, skip_if_no_debian
#   skip_missing WHY         skip for a missing tool or capability: in CI ($CI set)
#                            the test FAILS instead (skips by design use plain `skip`)
#   require_tool TOOL...     skip_missing unless every TOOL is installed
#
# Environment:
#   HOD              binary under test (default: target/debug/hod of this repo);
#                    HOD=buildah validates the tests against buildah itself.
#   STORAGE_DRIVER   vfs (default) or overlay
#   HOD_TIMEOUT      seconds per command (default 300)
#   HOD_TEST_CACHE   where fixture images are cached (default /var/tmp/hod-test-cache)

BATS_DIR=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
REPO_DIR=$(dirname "$BATS_DIR")
HOD=${HOD:-$REPO_DIR/target/debug/hod}
# Resolve a bare name (HOD=buildah) once, so error messages show the path.
if [[ $HOD != */* ]]; then HOD=$(command -v "$HOD" || echo "$HOD"); fi
BUILDAH_BINARY=$HOD
STORAGE_DRIVER=${STORAGE_DRIVER:-vfs}
HOD_TIMEOUT=${HOD_TIMEOUT:-300}
HOD_TEST_CACHE=${HOD_TEST_CACHE:-/var/tmp/hod-test-cache}
# True when the binary under test is buildah (for the few documented differences).
HOD_IS_BUILDAH=
[[ $(basename "$HOD") == buildah* ]] && HOD_IS_BUILDAH=1

# podman as root needs these here (root lacks CAP_SYS_RESOURCE on these machines).
PODMAN_RUN_OPTS="--ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --net none"

_LOG_PROMPT='$'
[[ $(id -u) -eq 0 ]] && _LOG_PROMPT='#'

function setup() {
    setup_tests
}

function setup_tests() {
    # Short and lower-case: podman refuses runroots over 50 characters, and
    # image names derived from the path must be lower-case.
    local suffix
    while :; do
        suffix=$(head -c 64 /dev/urandom | tr -dc a-z0-9 | head -c 8)
        TEST_SCRATCH_DIR=/var/tmp/hodbats.$suffix
        mkdir -m 0711 "$TEST_SCRATCH_DIR" 2>/dev/null && break
    done
    mkdir -p "$TEST_SCRATCH_DIR"/{root,runroot}
    cat > "$TEST_SCRATCH_DIR/registries.conf" <<REG
unqualified-search-registries = ["docker.io"]
short-name-mode = "permissive"
REG
    ROOTDIR_OPTS="--root $TEST_SCRATCH_DIR/root --runroot $TEST_SCRATCH_DIR/runroot --storage-driver $STORAGE_DRIVER"
    HOD_REGISTRY_OPTS="--registries-conf $TEST_SCRATCH_DIR/registries.conf"
    STORE_SPEC="[$STORAGE_DRIVER@$TEST_SCRATCH_DIR/root+$TEST_SCRATCH_DIR/runroot]"
    cd "$TEST_SCRATCH_DIR" || die "cannot cd to $TEST_SCRATCH_DIR"
}

function teardown() {
    teardown_tests
}

# start_registry: a plain-HTTP docker-registry on a free 127.0.0.1 port
# (REGISTRY=127.0.0.1:PORT); stopped by teardown_tests.
function start_registry() {
  require_tool docker-registry
  local port d=$TEST_SCRATCH_DIR/registry
  mkdir -p $d/data
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  cat >$d/config.yml <<CFG
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $d/data
http:
  addr: 127.0.0.1:$port
  secret: hod-test-secret
CFG
  # insecure in registries.conf too: buildah 1.28's manifest inspect has no --tls-verify
  cat >>$TEST_SCRATCH_DIR/registries.conf <<REG

[[registry]]
location = "127.0.0.1:$port"
insecure = true
REG
  docker-registry serve $d/config.yml >$d/log 2>&1 &
  REGISTRY_PID=$!
  REGISTRY=127.0.0.1:$port
  local i
  for i in $(seq 1 100); do
    curl -fs http://$REGISTRY/v2/ >/dev/null && return 0
    sleep 0.1
  done
  die "docker-registry did not start: $(cat $d/log)"
}


function teardown_tests() {
    if [[ -n ${REGISTRY_PID:-} ]]; then
        kill "$REGISTRY_PID" 2>/dev/null || true
        wait "$REGISTRY_PID" 2>/dev/null || true
    fi
    cd / || true
    [[ -n ${TEST_SCRATCH_DIR:-} && -d $TEST_SCRATCH_DIR ]] || return 0
    # Unmount whatever the test left mounted below the scratch dir (overlay
    # working containers, podman's mounts), deepest first.
    local m
    for m in $(awk -v d="$TEST_SCRATCH_DIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
        umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$TEST_SCRATCH_DIR"
}

#################
#  die, assert  #
#################
function die() {
    echo "#/vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv" >&2
    echo "#| FAIL: $*" >&2
    echo "#\\^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^" >&2
    false
}

# assert EXPECTED [DESC]            $output == EXPECTED
# assert ACTUAL OP EXPECTED [DESC]  OP is ==, !=, =~, !~, or a test(1) operator (-eq, ...)
function assert() {
    local actual=$output op='==' expect desc
    case $# in
        1 | 2) expect=$1 desc=${2:-} ;;
        3 | 4) actual=$1 op=$2 expect=$3 desc=${4:-} ;;
        *) die "assert: wrong number of arguments"; return ;;
    esac
    local ok=
    case $op in
        '==' | '=') [[ "$actual" == "$expect" ]] && ok=1 ;;
        '!=') [[ "$actual" != "$expect" ]] && ok=1 ;;
        '=~') [[ "$actual" =~ $expect ]] && ok=1 ;;
        '!~') [[ "$actual" =~ $expect ]] || ok=1 ;;
        -*) [ "$actual" "$op" "$expect" ] && ok=1 ;;
        *) die "assert: unknown operator '$op'"; return ;;
    esac
    [[ -n $ok ]] && return 0
    local shown=$op
    [[ $op == '==' ]] && shown=''
    {
        echo "#/vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
        echo "#|     FAIL: ${desc:-${MOST_RECENT_HOD_COMMAND:-[no test name given]}}"
        echo "#| expected: ${shown:+$shown }'$expect'"
        local first=1 line
        while IFS= read -r line; do
            if [[ -n $first ]]; then echo "#|   actual: '$line'"; first=; else echo "#|         > '$line'"; fi
        done <<<"$actual"
        echo "#\\^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"
    } >&2
    false
}

# expect_output [--substring] [--from=STRING] EXPECTED [DESC]
function expect_output() {
    local actual=$output op='=='
    while [[ $# -gt 0 ]]; do
        case $1 in
            --from=*) actual=${1#--from=}; shift ;;
            --substring) op='=~'; shift ;;
            --) shift; break ;;
            -*) die "expect_output: invalid option '$1'"; return ;;
            *) break ;;
        esac
    done
    if [[ $op == '=~' ]]; then
        # --substring is a literal substring match, not a regex
        if [[ "$actual" == *"$1"* ]]; then return 0; fi
        assert "$actual" '=~' "$(printf '%q' "$1")" "${2:-}"
        return
    fi
    assert "$actual" "$op" "$@"
}

function expect_line_count() {
    local expect=$1 actual=${#lines[@]}
    [[ $actual -eq $expect ]] && return 0
    {
        echo "#| FAIL: ${2:-${MOST_RECENT_HOD_COMMAND:-}}"
        echo "#| expected $expect lines of output, got $actual:"
        printf '#| >%s\n' "${lines[@]}"
    } >&2
    false
}

###############
#  run_hod    #
###############
function hod() {
    # shellcheck disable=SC2086
    "$HOD" $HOD_REGISTRY_OPTS $ROOTDIR_OPTS "$@"
}
function buildah() { hod "$@"; }

function run_hod() {
    local expected_rc=0
    case ${1:-} in
        [0-9] | [1-9][0-9] | [12][0-9][0-9]) expected_rc=$1; shift ;;
        '?') expected_rc=; shift ;;
    esac
    MOST_RECENT_HOD_COMMAND="hod $*"
    echo "$_LOG_PROMPT $HOD $*"
    # shellcheck disable=SC2086
    run timeout --foreground --kill-after=10 "$HOD_TIMEOUT" "$HOD" $HOD_REGISTRY_OPTS $ROOTDIR_OPTS "$@"
    [[ -n $output ]] && echo "$output"
    if [[ $status -ne 0 ]]; then
        echo "[ rc=$status${expected_rc:+ (expected $expected_rc)} ]"
    fi
    if [[ $status -eq 124 || $status -eq 137 ]]; then
        echo "*** TIMED OUT ***"
        false
        return
    fi
    if [[ -n $expected_rc && $status -ne $expected_rc ]]; then
        die "exit code is $status; expected $expected_rc"
    fi
}
function run_buildah() { run_hod "$@"; }

# run_podman [RC] ARGS...: podman on the same store.
function run_podman() {
    local expected_rc=0
    case ${1:-} in
        [0-9] | [1-9][0-9] | [12][0-9][0-9]) expected_rc=$1; shift ;;
        '?') expected_rc=; shift ;;
    esac
    echo "$_LOG_PROMPT podman $*"
    # shellcheck disable=SC2086
    run timeout --foreground --kill-after=10 "$HOD_TIMEOUT" podman $ROOTDIR_OPTS "$@"
    [[ -n $output ]] && echo "$output"
    if [[ -n $expected_rc && $status -ne $expected_rc ]]; then
        die "podman exit code is $status; expected $expected_rc"
    fi
}

##################
#  fixtures      #
##################
# _fixture_layout NAME -> prints the path of a cached OCI layout of NAME
function _fixture_layout() {
    local name=$1 dir
    mkdir -p "$HOD_TEST_CACHE"
    case $name in
        busybox)
            dir=$HOD_TEST_CACHE/busybox-oci
            (
                flock -w 300 9 || exit 1
                [[ -s $dir/index.json ]] || "$REPO_DIR/hack/make-busybox-oci.sh" "$dir" latest >/dev/null
            ) 9>"$HOD_TEST_CACHE/busybox.lock" || return 1
            ;;
        debian)
            dir=$HOD_TEST_CACHE/debian-bookworm-oci
            (
                flock -w 600 9 || exit 1
                [[ -s $dir/index.json ]] || "$REPO_DIR/hack/make-debian-oci.sh" "$HOD_TEST_CACHE/debian-copy" latest >/dev/null
                rm -rf "$HOD_TEST_CACHE/debian-copy"
            ) 9>"$HOD_TEST_CACHE/debian.lock" || return 1
            ;;
        *) echo "no offline fixture for image '$name' (busybox, debian)" >&2; return 1 ;;
    esac
    echo "$dir"
}

# _prefetch IMAGE...: copy offline fixtures into the test's store, named as a
# pull would name them (docker.io/library/NAME:latest).
function _prefetch() {
    local img name layout
    for img in "$@"; do
        name=${img##*/}; name=${name%%:*}
        layout=$(_fixture_layout "$name") || die "cannot build fixture $name"
        echo "# [seeding $name from $layout]" >&2
        skopeo copy --quiet "oci:$layout:latest" \
            "containers-storage:${STORE_SPEC}docker.io/library/$name:latest" >&2 ||
            die "skopeo copy of $name failed"
    done
}

# A test that cannot run here for a missing tool or capability: skipped, except in CI
# (CI set, as .ci/run sets it), where a check that should run must never pass by skipping.
function skip_missing() {
    if [[ -n ${CI:-} ]]; then
        echo "########## CI: would skip: $* ##########" >&2
        return 1
    fi
    echo "########## SKIPPED: $* ##########" >&2
    skip "$*"
}

function require_tool() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null || { skip_missing "$t is not installed"; return 1; }
    done
}

function skip_if_no_debian() {
    [[ $(id -u) -eq 0 ]] || { skip_missing "debian fixture needs root (debootstrap)"; return 1; }
    if [[ ! -s $HOD_TEST_CACHE/debian-bookworm-oci/index.json && -n ${HOD_TEST_OFFLINE:-} ]]; then
        skip_missing "HOD_TEST_OFFLINE set and no cached debian fixture"; return 1
    fi
}

function is_rootless() { [[ $(id -u) -ne 0 ]]; }

function skip_if_rootless() {
    if is_rootless; then
        skip_missing "${1:-test needs root}"; return 1
    fi
}
function skip_if_rootless_environment() { skip_if_rootless "$@"; }

function skip_if_no_podman() {
    require_tool podman
}

function skip_if_no_runtime() {
    command -v runc >/dev/null || command -v crun >/dev/null ||
        { skip_missing "no OCI runtime (runc/crun) installed"; return 1; }
}

function random_string() {
    local length=${1:-10}
    head /dev/urandom | tr -dc a-z0-9 | head -c "$length"
}

function createrandom() {
    dd if=/dev/urandom bs=1 count="${2:-256}" of="${1:-$TEST_SCRATCH_DIR/randomfile}" status=none
}

# oci_layout_manifest DIR [TAG]: the manifest JSON of TAG (or the only entry)
function oci_layout_manifest() {
    local dir=$1 tag=${2:-} digest
    if [[ -n $tag ]]; then
        digest=$(jq -r --arg t "$tag" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$dir/index.json")
    else
        digest=$(jq -r '.manifests[0].digest' "$dir/index.json")
    fi
    cat "$dir/blobs/sha256/${digest#sha256:}"
}
function oci_layout_config() {
    local digest
    digest=$(oci_layout_manifest "$@" | jq -r .config.digest)
    cat "$1/blobs/sha256/${digest#sha256:}"
}
