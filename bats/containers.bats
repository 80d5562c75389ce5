#!/usr/bin/env bats
# hod containers: listing, --quiet, --noheading, --notruncate, --json,
# --format, --filter, --all.

load helpers

@test "containers" {
  _prefetch busybox
  run_hod from --quiet busybox
  run_hod from --quiet busybox
  run_hod containers
  expect_line_count 3
  assert "${lines[0]}" =~ "CONTAINER ID +BUILDER +IMAGE ID +IMAGE NAME +CONTAINER NAME"
  assert "${lines[1]}" =~ '^[0-9a-f]{12} +\* +[0-9a-f]{12} +docker.io/library/busybox:latest +busybox-working-container$'
  assert "${lines[2]}" =~ "busybox-working-container-1"
}

@test "containers filter test" {
  _prefetch busybox
  run_hod from --quiet busybox
  cid1=$output
  run_hod from --quiet scratch
  run_hod containers --noheading --filter name=$cid1
  expect_line_count 1
  expect_output --substring "busybox-working-container"
  run_hod containers --noheading --filter ancestor=busybox
  expect_line_count 1
}

@test "containers format test" {
  _prefetch busybox
  run_hod from --quiet busybox
  run_hod from --quiet scratch
  run_hod containers --format "{{.ContainerName}}"
  expect_line_count 2
  expect_output --from="${lines[0]}" "busybox-working-container"
  expect_output --from="${lines[1]}" "working-container"
}

@test "containers json test" {
  _prefetch busybox
  run_hod from --quiet busybox
  run_hod containers --json
  run jq -r '.[0].containername' <<<"$output"
  expect_output "busybox-working-container"
  run_hod containers --json
  run jq -r '.[0].imagename' <<<"$output"
  expect_output "docker.io/library/busybox:latest"
}

@test "containers noheading test" {
  _prefetch busybox
  run_hod from --quiet busybox
  run_hod containers --noheading
  expect_line_count 1
  assert "$output" !~ "CONTAINER ID"
}

@test "containers quiet test" {
  _prefetch busybox
  run_hod from --quiet busybox
  run_hod containers --quiet
  expect_line_count 1
  assert "$output" =~ '^[0-9a-f]{12,64}$'
}

@test "containers notruncate test" {
  _prefetch busybox
  run_hod from --quiet busybox
  run_hod containers --notruncate --noheading
  assert "$output" =~ '^[0-9a-f]{64} '
}

@test "containers all test" {
  skip_if_no_podman
  _prefetch busybox
  run_hod from --quiet busybox
  run_podman create --net none busybox true
  run_hod containers --noheading
  expect_line_count 1
  run_hod containers --all --noheading
  expect_line_count 2
}
