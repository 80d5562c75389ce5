#!/usr/bin/env bats
# hod push to the local transports: oci:, oci-archive:, docker-archive:,
# dir:, containers-storage:; the results are checked with independent tools
# (oci-image-tool, umoci, skopeo, podman).

load helpers

function scratch_image() {
  run_hod from --quiet scratch
  local c=$output
  run_hod mount $c
  local m=$output
  mkdir -p $m/bin $m/etc
  cp /bin/busybox $m/bin/busybox
  ln -s busybox $m/bin/sh
  echo 'root:x:0:0:root:/root:/bin/sh' > $m/etc/passwd
  run_hod umount $c
  run_hod config --entrypoint '["/bin/busybox"]' --env foo=bar --label k=v $c
  run_hod commit -q --rm $c "$1"
}

@test "push" {
  _prefetch busybox
  run_hod push busybox oci:$TEST_SCRATCH_DIR/layout:bb
  run jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"]' $TEST_SCRATCH_DIR/layout/index.json
  expect_output "bb"
}

@test "push oci: passes oci-image-tool validate and umoci unpack" {
  require_tool oci-image-tool
  require_tool umoci
  scratch_image localhost/pushed:1
  run_hod push localhost/pushed:1 oci:$TEST_SCRATCH_DIR/layout:tag
  # Debian's oci-image-tool has no imageLayout check: --type image it is.
  run oci-image-tool validate --type image --ref name=tag $TEST_SCRATCH_DIR/layout
  echo "$output"
  assert "$status" -eq 0 "oci-image-tool validate"
  expect_output --substring "Validation succeeded"
  run umoci unpack --image $TEST_SCRATCH_DIR/layout:tag $TEST_SCRATCH_DIR/bundle
  echo "$output"
  assert "$status" -eq 0 "umoci unpack"
  cmp /bin/busybox $TEST_SCRATCH_DIR/bundle/rootfs/bin/busybox
  run jq -r '.process.env[]' $TEST_SCRATCH_DIR/bundle/config.json
  expect_output --substring "foo=bar"
}

@test "oci: -> hod -> docker-archive: -> podman load round-trips" {
  skip_if_no_podman
  layout=$(_fixture_layout busybox)
  run_hod pull oci:$layout:latest
  iid=$(hod images -q --no-trunc | head -1)
  run_hod push $iid docker-archive:$TEST_SCRATCH_DIR/archive.tar:localhost/roundtrip:1
  mkdir -p $TEST_SCRATCH_DIR/p/root $TEST_SCRATCH_DIR/p/run
  run podman --root $TEST_SCRATCH_DIR/p/root --runroot $TEST_SCRATCH_DIR/p/run --storage-driver vfs load -i $TEST_SCRATCH_DIR/archive.tar
  echo "$output"
  assert "$status" -eq 0 "podman load"
  run podman --root $TEST_SCRATCH_DIR/p/root --runroot $TEST_SCRATCH_DIR/p/run --storage-driver vfs \
      run --rm $PODMAN_RUN_OPTS localhost/roundtrip:1 /bin/busybox echo round-trip-ok
  echo "$output"
  expect_output --substring "round-trip-ok"
  # the image ID (config digest) survived the trip
  run podman --root $TEST_SCRATCH_DIR/p/root --runroot $TEST_SCRATCH_DIR/p/run --storage-driver vfs images -q --no-trunc localhost/roundtrip:1
  expect_output "$iid"
  podman --root $TEST_SCRATCH_DIR/p/root --runroot $TEST_SCRATCH_DIR/p/run --storage-driver vfs rmi -a -f >/dev/null 2>&1 || true
}

@test "diff_ids of hod push equal those of skopeo copy from the same store" {
  _prefetch busybox
  run_hod from --quiet busybox
  cid=$output
  run_hod mount $cid
  mnt=$output
  mkdir -p $mnt/data/sub
  createrandom $mnt/data/sub/random 10000
  ln $mnt/data/sub/random $mnt/data/hardlink
  ln -s sub/random $mnt/data/symlink
  rm $mnt/bin/vi
  setfattr -n user.hod -v test $mnt/data/sub/random 2>/dev/null || true
  run_hod umount $cid
  run_hod commit -q $cid localhost/diffids:1
  run_hod push localhost/diffids:1 oci:$TEST_SCRATCH_DIR/by-hod:1
  run skopeo copy --quiet "containers-storage:${STORE_SPEC}localhost/diffids:1" oci:$TEST_SCRATCH_DIR/by-skopeo:1
  assert "$status" -eq 0 "skopeo copy: $output"
  hod_ids=$(oci_layout_config $TEST_SCRATCH_DIR/by-hod 1 | jq -c .rootfs.diff_ids)
  skopeo_ids=$(oci_layout_config $TEST_SCRATCH_DIR/by-skopeo 1 | jq -c .rootfs.diff_ids)
  assert "$hod_ids" =~ '^\["sha256:[0-9a-f]{64}","sha256:[0-9a-f]{64}"\]$' "two layers in the pushed config"
  assert "$hod_ids" == "$skopeo_ids" "diff_ids: hod push vs skopeo copy"
  # and each diff_id is the sha256 of the uncompressed layer hod wrote
  for layer in $(oci_layout_manifest $TEST_SCRATCH_DIR/by-hod 1 | jq -r '.layers[].digest'); do
    f=$TEST_SCRATCH_DIR/by-hod/blobs/sha256/${layer#sha256:}
    sum=$( (zstd -dcq $f 2>/dev/null || gzip -dc $f 2>/dev/null || cat $f) | sha256sum | cut -d' ' -f1)
    assert "$hod_ids" =~ "$sum" "uncompressed digest of $layer is a diff_id"
  done
}

@test "buildah push image to containers-storage" {
  _prefetch busybox
  run_hod push busybox containers-storage:localhost/copied:1
  run_hod images --format '{{.Name}}:{{.Tag}}'
  expect_output --substring "localhost/copied:1"
}

@test "buildah push image to docker-archive and oci-archive" {
  _prefetch busybox
  for dest in docker-archive oci-archive; do
    run_hod push busybox $dest:$TEST_SCRATCH_DIR/$dest.tar:latest
    run skopeo inspect $dest:$TEST_SCRATCH_DIR/$dest.tar
    assert "$status" -eq 0 "skopeo inspect $dest: $output"
    run jq -r '.Layers | length' <<<"$output"
    expect_output "1"
  done
}

@test "push dir:" {
  _prefetch busybox
  run_hod push busybox dir:$TEST_SCRATCH_DIR/dir
  test -s $TEST_SCRATCH_DIR/dir/manifest.json
  test -s $TEST_SCRATCH_DIR/dir/version
  run skopeo inspect dir:$TEST_SCRATCH_DIR/dir
  assert "$status" -eq 0 "skopeo inspect dir: $output"
}

@test "push with imageid" {
  _prefetch busybox
  iid=$(hod images -q)
  run_hod push $iid oci:$TEST_SCRATCH_DIR/byid:latest
  test -s $TEST_SCRATCH_DIR/byid/index.json
}

@test "push with --quiet" {
  _prefetch busybox
  run_hod push --quiet busybox oci:$TEST_SCRATCH_DIR/quiet:latest
  expect_output ""
}

@test "push of an unknown image" {
  run_hod 125 push nosuchimage oci:$TEST_SCRATCH_DIR/x:latest
  expect_output --substring "nosuchimage"
}

@test "pull from the local transports" {
  layout=$(_fixture_layout busybox)
  run_hod pull oci:$layout:latest
  run_hod images --noheading
  expect_line_count 1
  skopeo copy --quiet oci:$layout:latest docker-archive:$TEST_SCRATCH_DIR/da.tar:localhost/from-archive:1
  run_hod pull docker-archive:$TEST_SCRATCH_DIR/da.tar
  run_hod images --format '{{.Name}}:{{.Tag}}'
  expect_output --substring "localhost/from-archive:1"
}

@test "an option after the image name is the error, even with a surplus argument (buildah checks the order first)" {
  run_hod 125 push img1 dest1 arg3 --creds user1:pass1
  expect_output --substring "no options (--creds) can be specified after"
  run_hod 125 pull image1 -q --cred bla:bla --authfile=/tmp/somefile
  expect_output --substring "no options (-q) can be specified after"
}
