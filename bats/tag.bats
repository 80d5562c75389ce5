#!/usr/bin/env bats

load helpers

@test "tag by name" {
  _prefetch busybox
  run_hod tag busybox busybox1
  run_hod images --format '{{.Name}}'
  expect_output --substring "localhost/busybox1"
  run_hod from --quiet busybox1
  expect_output "busybox1-working-container"
  run_hod 125 tag nosuchimage foo
  expect_output --substring "nosuchimage"
}

@test "tag by id" {
  _prefetch busybox
  iid=$(hod images -q)
  run_hod tag $iid byid:v1 byid:v2
  run_hod images --format '{{.Name}}:{{.Tag}}'
  expect_output --substring "localhost/byid:v1"
  expect_output --substring "localhost/byid:v2"
}
