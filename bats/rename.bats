#!/usr/bin/env bats

load helpers

@test "rename" {
  _prefetch busybox
  run_hod from --quiet busybox
  old=$output
  run_hod rename $old new-name
  run_hod containers --format "{{.ContainerName}}"
  expect_output "new-name"
  run_hod inspect --format '{{.Container}}' new-name
  expect_output "new-name"
  run_hod 125 inspect --type container $old
}

@test "rename same name as current name" {
  _prefetch busybox
  run_hod from --quiet busybox
  run_hod 125 rename $output $output
  expect_output --substring "renaming a container with the same name as its current name"
}

@test "rename same name as other container name" {
  _prefetch busybox
  run_hod from --quiet busybox
  c1=$output
  run_hod from --quiet busybox
  c2=$output
  run_hod 125 rename $c1 $c2
  expect_output --substring " already in use by "
}
