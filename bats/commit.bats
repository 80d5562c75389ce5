#!/usr/bin/env bats
# hod commit: names, --format, --rm, -q, --iidfile, --timestamp,
# --omit-history, --identity-label, --squash, compression.

load helpers

@test "commit" {
  _prefetch busybox
  run_hod from --quiet busybox
  cid=$output
  run_hod commit $cid commit-test-image
  run_hod images --format '{{.Name}}'
  expect_output --substring "commit-test-image"
}

@test "commit-no-name" {
  _prefetch busybox
  run_hod from --quiet busybox
  run_hod commit -q $output
  assert "$output" =~ '^[0-9a-f]{64}$'
  iid=$output
  run_hod images -q --no-trunc
  expect_output --substring "$iid"
}

@test "commit format test" {
  _prefetch busybox
  run_hod from --quiet busybox
  cid=$output
  run_hod commit --format docker $cid docker-img
  run_hod inspect --type image --format '{{.Manifest}}' docker-img
  expect_output --substring "application/vnd.docker.distribution.manifest.v2+json"
  run_hod commit --format oci $cid oci-img
  run_hod inspect --type image --format '{{.Manifest}}' oci-img
  expect_output --substring "application/vnd.oci.image.manifest.v1+json"
  run_hod 125 commit --format nosuchformat $cid bad-img
}

@test "commit quiet test" {
  _prefetch busybox
  run_hod from --quiet busybox
  run_hod commit --quiet $output quiet-img
  expect_line_count 1
  assert "$output" =~ '^[0-9a-f]{64}$'
}

@test "commit iidfile" {
  _prefetch busybox
  run_hod from --quiet busybox
  run_hod commit --iidfile $TEST_SCRATCH_DIR/iid $output iid-img
  iid=$(< $TEST_SCRATCH_DIR/iid)
  assert "$iid" =~ '^sha256:[0-9a-f]{64}$'
  run_hod images -q --no-trunc iid-img
  expect_output "$iid"
}

@test "commit -q --iidfile prints nothing on stdout" {
  _prefetch busybox
  run_hod from --quiet busybox
  run_hod commit -q --iidfile $TEST_SCRATCH_DIR/iid $output iid-quiet-img
  expect_output ""
  iid=$(< $TEST_SCRATCH_DIR/iid)
  assert "$iid" =~ '^sha256:[0-9a-f]{64}$'
}

@test "commit rm test" {
  _prefetch busybox
  run_hod from --quiet --name rm-me busybox
  run_hod commit --rm rm-me rm-img
  run_hod 125 rm rm-me
  expect_output --substring "rm-me"
  run_hod containers -q
  expect_output ""
}

@test "commit-rejected-name" {
  _prefetch busybox
  run_hod from --quiet busybox
  run_hod 125 commit $output "not-A-valid-Name"
  expect_output --substring "must be lowercase"
}

@test "commit with --timestamp 0 twice gives the same image ID" {
  run_hod from --quiet scratch
  cid=$output
  echo hello > $TEST_SCRATCH_DIR/hello
  run_hod copy $cid $TEST_SCRATCH_DIR/hello /hello
  run_hod config --label k=v $cid
  run_hod commit -q --timestamp 0 $cid ts-1
  id1=$output
  run_hod commit -q --timestamp 0 $cid ts-2
  id2=$output
  assert "$id1" == "$id2" "same content + --timestamp 0 => same image ID"
  run_hod inspect --type image --format '{{.OCIv1.Created}}' ts-1
  expect_output --substring "1970-01-01"
}

@test "commit timestamp" {
  _prefetch busybox
  run_hod from --quiet busybox
  run_hod commit -q --timestamp 1700000000 $output ts-img
  run_hod inspect --type image --format '{{.OCIv1.Created}}' ts-img
  expect_output --substring "2023-11-14"
}

@test "commit-with-identity-label" {
  _prefetch busybox
  run_hod from --quiet busybox
  run_hod commit -q $output with-label
  run_hod inspect --type image --format '{{index .ImageAnnotations "io.buildah.version"}} {{index .OCIv1.Config.Labels "io.buildah.version"}}' with-label
  assert "$output" != " " "io.buildah.version label is set by default"
}

@test "commit-without-identity-label" {
  _prefetch busybox
  run_hod from --quiet busybox
  run_hod commit -q --identity-label=false $output no-label
  run_hod inspect --type image --format '{{index .OCIv1.Config.Labels "io.buildah.version"}}' no-label
  expect_output ""
}

@test "commit omit-history" {
  _prefetch busybox
  run_hod from --quiet busybox
  run_hod commit -q --omit-history $output no-history
  run_hod inspect --type image --format '{{len .OCIv1.History}}' no-history
  expect_output "0"
}

@test "commit squash" {
  _prefetch busybox
  run_hod from --quiet busybox
  cid=$output
  echo x > $TEST_SCRATCH_DIR/x
  run_hod copy $cid $TEST_SCRATCH_DIR/x /x
  run_hod commit -q $cid layered
  run_hod inspect --type image --format '{{len .OCIv1.RootFS.DiffIDs}}' layered
  expect_output "2"
  run_hod commit -q --squash $cid squashed
  run_hod inspect --type image --format '{{len .OCIv1.RootFS.DiffIDs}}' squashed
  expect_output "1"
}

@test "commit records deletions as whiteouts" {
  _prefetch busybox
  run_hod from --quiet busybox
  cid=$output
  run_hod mount $cid
  mnt=$output
  rm $mnt/bin/vi
  mkdir -p $mnt/newdir && echo data > $mnt/newdir/file
  run_hod umount $cid
  run_hod commit -q $cid deleted
  run_hod push deleted oci:$TEST_SCRATCH_DIR/layout:deleted
  layer=$(oci_layout_manifest $TEST_SCRATCH_DIR/layout deleted | jq -r '.layers[-1].digest')
  run tar -tzf $TEST_SCRATCH_DIR/layout/blobs/sha256/${layer#sha256:}
  expect_output --substring "bin/.wh.vi"
  expect_output --substring "newdir/file"
  # the new layer holds only the change set
  assert "$output" !~ "bin/busybox"
}

@test "commit --disable-compression and zstd" {
  run_hod from --quiet scratch
  cid=$output
  createrandom $TEST_SCRATCH_DIR/random 4096
  run_hod copy $cid $TEST_SCRATCH_DIR/random /random
  # commit straight to a layout: uncompressed by default (-D defaults to true)
  run_hod commit -q $cid oci:$TEST_SCRATCH_DIR/plain:plain
  run jq -r '.layers[-1].mediaType' <<<"$(oci_layout_manifest $TEST_SCRATCH_DIR/plain plain)"
  expect_output "application/vnd.oci.image.layer.v1.tar"
  run_hod commit -q $cid c-img
  run_hod push --compression-format zstd c-img oci:$TEST_SCRATCH_DIR/zst:zst
  run jq -r '.layers[-1].mediaType' <<<"$(oci_layout_manifest $TEST_SCRATCH_DIR/zst zst)"
  expect_output "application/vnd.oci.image.layer.v1.tar+zstd"
  layer=$(oci_layout_manifest $TEST_SCRATCH_DIR/zst zst | jq -r '.layers[-1].digest')
  run sh -c "zstd -dc $TEST_SCRATCH_DIR/zst/blobs/sha256/${layer#sha256:} | tar -t"
  expect_output --substring "random"
  run_hod push --compression-format gzip c-img oci:$TEST_SCRATCH_DIR/gz:gz
  run jq -r '.layers[-1].mediaType' <<<"$(oci_layout_manifest $TEST_SCRATCH_DIR/gz gz)"
  expect_output "application/vnd.oci.image.layer.v1.tar+gzip"
}

@test "commit of an unknown container" {
  run_hod 125 commit nosuchcontainer img
  expect_line_count 1
  expect_output --substring "nosuchcontainer"
}

@test "commit --reference-time takes the created time from a file, and refuses --timestamp with it" {
  touch -d "2001-02-03 04:05:06 UTC" $TEST_SCRATCH_DIR/ref
  run_hod from --quiet scratch
  cid=$output
  run_hod commit -q --reference-time $TEST_SCRATCH_DIR/ref $cid img1
  run_hod inspect -t image --format '{{.OCIv1.Created}}' img1
  # (hod prints the time as RFC 3339, buildah as Go's time.Time; both name the same instant)
  expect_output --substring "2001-02-03"
  expect_output --substring "04:05:06"
  run_hod 125 commit -q --reference-time $TEST_SCRATCH_DIR/ref --timestamp 5 $cid img2
}

@test "commit --unsetenv and --omit-timestamp" {
  _prefetch busybox
  run_hod from --quiet busybox
  cid=$output
  run_hod config --env FOO=1 --env BAR=2 $cid
  run_hod commit -q --unsetenv PATH --unsetenv FOO --omit-timestamp $cid img1
  run_hod inspect -t image --format '{{.OCIv1.Config.Env}}' img1
  expect_output "[BAR=2]"
  run_hod inspect -t image --format '{{.OCIv1.Created}}' img1
  expect_output --substring "1970-01-01"
  # the container keeps its environment
  run_hod run $cid sh -c 'echo $FOO'
  expect_output "1"
  run_hod 125 commit -q --omit-timestamp --timestamp 5 $cid img2
}

@test "commit with a --authfile that does not exist fails" {
  run_hod from --quiet scratch
  run_hod 125 commit --authfile $TEST_SCRATCH_DIR/nonexistent $output img
  expect_output --substring "checking authfile"
  run_hod 125 images img
}
