#!/usr/bin/env bats
# hod bud --layers: every step an intermediate image, a rebuild all cache hits with the
# same image, a changed source missing from its COPY on; hod's --explain-cache.

load helpers

function _context() {
  mkdir -p ctx
  printf 'FROM busybox\nENV E=1\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\nCMD ["sh"]\n' > ctx/Containerfile
  echo one > ctx/a.txt
}

@test "bud --layers: rebuild is all cache hits, same image" {
  _prefetch busybox
  _context
  run_hod bud --layers -q -t lay ctx
  first=${lines[-1]}
  run_hod images -a -q
  expect_line_count 5
  run_hod bud --layers -t lay ctx
  expect_output --substring "STEP 5/5: CMD"
  assert "$(grep -c -- '--> Using cache' <<<"$output")" = 4 "one hit per step"
  expect_output --substring -- "--> Using cache $first"
  assert "${lines[-1]}" = "$first" "same image ID"
  run_hod images -a -q
  expect_line_count 5
}

@test "bud --layers: a changed source misses from its COPY on" {
  _prefetch busybox
  _context
  run_hod bud --layers -q -t lay ctx
  echo two > ctx/a.txt
  run_hod bud --layers -t lay ctx
  assert "$(grep -c -- '--> Using cache' <<<"$output")" = 1 "only ENV hits"
  run_hod bud --layers --no-cache -t lay ctx
  assert "$(grep -c -- '--> Using cache' <<<"$output")" = 0 "--no-cache"
}

@test "bud --explain-cache names the changed file" {
  [[ -n $HOD_IS_BUILDAH ]] && skip "hod's own option"
  _prefetch busybox
  _context
  run_hod bud --layers -q -t lay ctx
  echo two > ctx/a.txt
  run_hod bud --layers --explain-cache -t lay ctx
  expect_output --substring -- "--> Cache miss: COPY source a.txt changed"
  expect_output --substring -- "--> Cache miss: parent image changed (an earlier step was rebuilt)"
}
