#!/usr/bin/env bats
# hod umount: one, several, --all, errors.

load helpers

@test "umount one image" {
  _prefetch busybox
  run_hod from --quiet busybox
  cid=$output
  run_hod mount $cid
  run_hod umount $cid
  run_hod mount
  expect_output ""
}

@test "umount bad image" {
  run_hod 125 umount badcontainer
  expect_output --substring "badcontainer"
}

@test "umount --all" {
  _prefetch busybox
  run_hod from --quiet busybox
  c1=$output
  run_hod from --quiet busybox
  c2=$output
  run_hod mount $c1 $c2
  run_hod umount --all
  run_hod mount
  expect_output ""
}
