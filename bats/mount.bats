#!/usr/bin/env bats
# hod mount: one, several, listing, errors (umount: umount.bats).

load helpers

@test "mount one container" {
  _prefetch busybox
  run_hod from --quiet busybox
  cid=$output
  run_hod mount $cid
  mnt=$output
  assert "$mnt" =~ "^$TEST_SCRATCH_DIR/root/"
  test -x $mnt/bin/busybox
  touch $mnt/written-through-mount
  run_hod umount $cid
  full=$(hod containers -q --notruncate)
  expect_output "$full"
  run_hod mount $cid
  test -e $output/written-through-mount
}

@test "mount bad container" {
  run_hod 125 mount badcontainer
  expect_output --substring "badcontainer"
}

@test "mount multi images" {
  _prefetch busybox
  run_hod from --quiet busybox
  c1=$output
  run_hod from --quiet busybox
  c2=$output
  run_hod mount $c1 $c2
  expect_line_count 2
  assert "${lines[0]}" =~ "^$c1 $TEST_SCRATCH_DIR/"
  assert "${lines[1]}" =~ "^$c2 $TEST_SCRATCH_DIR/"
}

@test "mount multi images one bad" {
  _prefetch busybox
  run_hod from --quiet busybox
  c1=$output
  run_hod 125 mount $c1 badcontainer
  expect_output --substring "badcontainer"
}

@test "list currently mounted containers" {
  _prefetch busybox
  run_hod from --quiet busybox
  c1=$output
  run_hod from --quiet busybox
  c2=$output
  run_hod mount $c1
  run_hod mount
  expect_line_count 1
  assert "$output" =~ "^$c1 $TEST_SCRATCH_DIR/"
}
