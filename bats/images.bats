#!/usr/bin/env bats
# hod images: listing, --quiet, --noheading, --no-trunc, --json, --format,
# --filter, and images that podman/skopeo put in the same root.

load helpers

@test "images" {
  _prefetch busybox
  run_hod images
  expect_line_count 2
  assert "${lines[0]}" =~ "REPOSITORY +TAG +IMAGE ID +CREATED +SIZE"
  assert "${lines[1]}" =~ "docker.io/library/busybox +latest +[0-9a-f]{12} "
}

@test "images quiet test" {
  _prefetch busybox
  run_hod images --quiet
  expect_line_count 1
  assert "$output" =~ '^[0-9a-f]{12}$'
}

@test "images noheading test" {
  _prefetch busybox
  run_hod images --noheading
  expect_line_count 1
  assert "$output" !~ "REPOSITORY"
}

@test "images no-trunc test" {
  _prefetch busybox
  run_hod images -q --no-trunc
  assert "$output" =~ '^sha256:[0-9a-f]{64}$'
}

@test "images json test" {
  _prefetch busybox
  run_hod images --json
  run jq -r '.[0].names[0]' <<<"$output"
  expect_output "docker.io/library/busybox:latest"
  run_hod images --json
  run jq -r '.[0].id' <<<"$output"
  assert "$output" =~ '^[0-9a-f]{12,64}$'
}

@test "images format test" {
  _prefetch busybox
  run_hod images --format '{{.Name}}:{{.Tag}}'
  expect_output "docker.io/library/busybox:latest"
  run_hod images --format '{{.ID}}'
  assert "$output" =~ '^[0-9a-f]{12}$'
}

@test "specify an existing image" {
  _prefetch busybox
  run_hod images --noheading busybox
  expect_line_count 1
}

@test "specify a nonexistent image" {
  run_hod 125 images nosuchimage
  expect_output --substring "nosuchimage"
  expect_line_count 1
}

@test "images filter test" {
  _prefetch busybox
  run_hod from --quiet busybox
  run_hod commit -q --timestamp 0 $output localhost/filtered:1
  run_hod images --noheading --filter reference=filtered
  expect_line_count 1
  expect_output --substring "localhost/filtered"
}

@test "Test dangling images" {
  _prefetch busybox
  run_hod from --quiet busybox
  cid=$output
  run_hod commit -q $cid
  run_hod images --filter dangling=true --format '{{.Name}}'
  expect_output "<none>"
  run_hod images --filter dangling=false --format '{{.Name}}'
  expect_output "docker.io/library/busybox"
}

@test "Test two image names" {
  _prefetch busybox
  run_hod tag busybox localhost/another:two
  run_hod images --noheading
  expect_line_count 2
  run_hod images --json
  run jq -r '.[0].names | length' <<<"$output"
  expect_output "2"
  # one name at most, as buildah
  run_hod 125 images busybox localhost/another:two
  expect_output "Error: 'buildah images' requires at most 1 argument"
}

@test "images committed by hod are listed by podman, images from podman by hod" {
  skip_if_no_podman
  _prefetch busybox
  run_hod from --quiet busybox
  run_hod commit -q $output localhost/by-hod:1
  run_podman images --format '{{.Repository}}:{{.Tag}}'
  expect_output --substring "localhost/by-hod:1"
  run_podman tag localhost/by-hod:1 localhost/by-podman:2
  run_hod images --format '{{.Name}}:{{.Tag}}'
  expect_output --substring "localhost/by-podman:2"
  run_hod from --quiet localhost/by-podman:2
  expect_output "by-podman-working-container"
}

@test "images: dangling (no name, no child) and intermediate (no name, a child) as buildah tells them" {
  _prefetch busybox
  run_hod from --quiet busybox
  c1=$output
  run_hod run $c1 touch /a
  run_hod commit -q $c1
  u1=$output
  run_hod from --quiet $u1
  c2=$output
  run_hod run $c2 touch /b
  run_hod commit -q $c2 child
  run_hod from --quiet busybox
  c3=$output
  run_hod config --label k=v $c3
  run_hod commit -q $c3
  u2=$output

  run_hod images -a --filter dangling=true --format '{{.ID}}' --no-trunc
  expect_output "sha256:$u2"
  run_hod images -a --filter intermediate=true --format '{{.ID}}' --no-trunc
  expect_output "sha256:$u1"
  # Without -a the intermediate image is hidden, the dangling one is not.
  run_hod images -q --no-trunc
  assert "$output" !~ "$u1"
  assert "$output" =~ "$u2"
  run_hod images -a -q --no-trunc
  expect_line_count 4
  run_hod images -a --filter label=k=v -q --no-trunc
  expect_output "sha256:$u2"
  run_hod images -a --filter before=child --format '{{.Name}}' --no-trunc
  expect_line_count 2
  run_hod images -a --filter id=$u1 -q --no-trunc
  expect_output "sha256:$u1"
}
