#!/usr/bin/env bats

load helpers

@test "version" {
  run_hod version
  assert "${lines[0]}" =~ '^Version: +[0-9]+\.[0-9]+'
  expect_output --substring "Go Version:"
  expect_output --substring "OS/Arch:"
}

@test "version --json" {
  run_hod version --json
  run jq -e '.version' <<<"$output"
  assert "$status" -eq 0 "version --json has .version"
}

@test "--version" {
  run_hod --version
  assert "$output" =~ ' version [0-9]+\.[0-9]+'
}

@test "an unknown subcommand is cobra's 'unknown command'" {
  # named after the program as invoked: "hod", or "buildah" for a drop-in symlink
  run_hod 125 NoSuchCommand
  expect_output "Error: unknown command \"NoSuchCommand\" for \"$(basename "$HOD")\""
}

@test "--log-level debug writes logrus's text lines; info and above keep quiet" {
  run_hod --log-level=debug images -q
  assert "$output" =~ 'time="[0-9T:-]+Z" level=debug msg="\[graphdriver\] trying provided driver' "a logrus debug line"
  run_hod --log-level=info images -q
  expect_output ""
  run_hod 125 --log-level=invalid images -q
  expect_output --substring "unable to parse log level"
}
