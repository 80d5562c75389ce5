#!/usr/bin/env bats
# Namespace settings of from/run/bud: private, host, and an existing namespace given as a
# path (/proc/PID/ns/TYPE or ns:PATH), joined (buildah's namespaces.bats, issue 17).

load helpers

function setup_ns() {
  skip_if_rootless "joining namespaces as root"
  require_tool unshare
  _prefetch busybox
  # A process with its own IPC, UTS and network namespaces, to join.
  unshare --ipc --uts --net sleep 300 &
  nspid=$!
  sleep 0.3
}

function teardown() {
  [[ -n ${nspid:-} ]] && kill "$nspid" 2>/dev/null
  teardown_tests
}

@test "run joins a namespace given as a path, with both runtimes" {
  setup_ns
  run_hod from --quiet busybox
  cid=$output
  for t in ipc uts net; do
    want=$(readlink /proc/$nspid/ns/$t)
    assert "$want" != "$(readlink /proc/self/ns/$t)" "test namespace differs from the host's"
    run_hod run --$t=/proc/$nspid/ns/$t $cid readlink /proc/self/ns/$t
    expect_output "$want" "run --$t=PATH"
    run_hod run --$t=ns:/proc/$nspid/ns/$t $cid readlink /proc/self/ns/$t
    expect_output "$want" "run --$t=ns:PATH"
    if command -v runc >/dev/null; then
      run_hod run --runtime runc --$t=/proc/$nspid/ns/$t $cid readlink /proc/self/ns/$t
      expect_output "$want" "run --runtime runc --$t=PATH"
    fi
    run_hod run --$t=private $cid readlink /proc/self/ns/$t
    assert "$output" != "$want" "run --$t=private"
    assert "$output" != "$(readlink /proc/self/ns/$t)" "run --$t=private"
  done
}

@test "from and bud keep a namespace path for later runs" {
  setup_ns
  want=$(readlink /proc/$nspid/ns/ipc)
  run_hod from --quiet --ipc=/proc/$nspid/ns/ipc busybox
  cid=$output
  run_hod run $cid readlink /proc/self/ns/ipc
  expect_output "$want"
  # the host's own user namespace, as a path: no new user namespace
  run_hod from --quiet --userns=/proc/self/ns/user busybox
  ucid=$output
  run_hod run $ucid readlink /proc/self/ns/user
  expect_output "$(readlink /proc/self/ns/user)"
  if command -v runc >/dev/null; then
    # runc wants ID maps for a user namespace entry: hod's own needs none at all
    run_hod run --runtime runc $ucid readlink /proc/self/ns/user
    expect_output "$(readlink /proc/self/ns/user)"
  fi
  printf 'FROM busybox\nRUN echo ns=$(readlink /proc/self/ns/ipc)\n' > $TEST_SCRATCH_DIR/Containerfile
  run_hod bud --ipc=/proc/$nspid/ns/ipc -f $TEST_SCRATCH_DIR/Containerfile $TEST_SCRATCH_DIR
  expect_output --substring "ns=$want"
}

@test "a namespace mode that is neither a mode nor a path is refused" {
  skip_if_rootless
  run_hod 125 from --ipc=bogus scratch
  expect_output --substring "bogus"
}
