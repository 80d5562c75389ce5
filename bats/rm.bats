#!/usr/bin/env bats
# hod rm: one, several, --all, and the errors.

load helpers

@test "remove one container" {
  _prefetch busybox
  run_hod from --quiet busybox
  cid=$output
  run_hod rm $cid
  run_hod containers --quiet
  expect_output ""
}

@test "remove multiple containers" {
  _prefetch busybox
  run_hod from --quiet busybox
  cid1=$output
  run_hod from --quiet busybox
  cid2=$output
  run_hod rm $cid1 $cid2
  expect_line_count 2
  run_hod containers --quiet
  expect_output ""
}

@test "remove all containers" {
  _prefetch busybox
  run_hod from --quiet busybox
  run_hod from --quiet scratch
  run_hod rm --all
  expect_line_count 2
  run_hod containers --quiet
  expect_output ""
}

@test "remove multiple containers errors" {
  run_hod 125 rm mycontainer1 mycontainer2 mycontainer3
  expect_output --substring "mycontainer"
}

@test "remove an unknown container" {
  run_hod 125 rm nosuchcontainer
  expect_line_count 1
  assert "$output" =~ "^Error: .*nosuchcontainer"
  # buildah's wording: the context names the container once.
  expect_output 'Error: removing container "nosuchcontainer": container not known'
}

@test "use conflicting commands to remove containers" {
  _prefetch busybox
  run_hod from --quiet busybox
  cid=$output
  run_hod 125 rm -a $cid
  expect_output --substring "when using the --all switch, you may not pass any containers names or IDs"
}

@test "rm unmounts and removes the container's layer" {
  _prefetch busybox
  run_hod from --quiet busybox
  cid=$output
  run_hod mount $cid
  mnt=$output
  run_hod rm $cid
  run grep -c " $mnt " /proc/self/mounts
  expect_output "0"
  run_hod containers --quiet
  expect_output ""
}
