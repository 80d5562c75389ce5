#!/usr/bin/env bats

load helpers

@test "info" {
  run_hod info
  run jq -e '.host and .store' <<<"$output"
  assert "$status" -eq 0 "info prints JSON with host and store"
  run_hod info --format '{{.store.GraphDriverName}}'
  expect_output "$STORAGE_DRIVER"
  run_hod info --format '{{.store.GraphRoot}}'
  expect_output "$TEST_SCRATCH_DIR/root"
  run_hod info --format '{{.store.RunRoot}}'
  expect_output "$TEST_SCRATCH_DIR/runroot"
}

@test "logging levels" {
  run_hod 125 --log-level=telepathic info
  expect_output --substring "telepathic"
  for level in debug info warn error; do
    run_hod --log-level=$level info
  done
}
