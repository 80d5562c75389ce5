#!/usr/bin/env bats
# hod manifest: multi-arch lists in local storage (as buildah/podman keep them),
# from --platform of a list, and manifest push to local transports, checked with
# jq, skopeo, oci-image-tool and podman.

load helpers

# Two single-platform images from the busybox fixture: localhost/bb-amd64 and
# localhost/bb-arm64 (config architecture changed, arm64 with variant v8).
function two_arch_images() {
  _prefetch busybox
  local c
  run_hod from --quiet busybox
  c=$output
  run_hod config --arch arm64 --variant v8 $c
  run_hod commit -q --rm $c localhost/bb-arm64
  run_hod from --quiet busybox
  c=$output
  run_hod config --arch amd64 $c
  run_hod commit -q --rm $c localhost/bb-amd64
}

# list_with_both LIST: a list holding both images; sets AMD64_DIGEST, ARM64_DIGEST.
function list_with_both() {
  two_arch_images
  run_hod manifest create $1
  LIST_ID=$output
  run_hod manifest add $1 localhost/bb-amd64
  expect_output --substring "$LIST_ID: sha256:"
  AMD64_DIGEST=${output##* }
  run_hod manifest add $1 localhost/bb-arm64
  ARM64_DIGEST=${output##* }
}

@test "manifest create, add, inspect, exists" {
  list_with_both mylist
  run_hod manifest inspect mylist
  inspect=$output
  run jq -r '.schemaVersion' <<<"$inspect"
  expect_output 2
  run jq -r '.manifests | length' <<<"$inspect"
  expect_output 2
  run jq -r '.manifests[] | "\(.platform.os)/\(.platform.architecture)/\(.platform.variant // "")"' <<<"$inspect"
  expect_output "linux/amd64/
linux/arm64/v8"
  run jq -r '.manifests[1].digest' <<<"$inspect"
  expect_output "$ARM64_DIGEST"
  run jq -r '.manifests[0].mediaType' <<<"$inspect"
  expect_output "application/vnd.oci.image.manifest.v1+json"
  # the size is that of the image's manifest
  run_hod inspect --type image --format '{{.Manifest}}' localhost/bb-arm64
  want=$(printf '%s' "$output" | wc -c)
  run jq -r '.manifests[1].size' <<<"$inspect"
  expect_output "$want"

  run_hod manifest exists mylist
  run_hod 125 manifest exists localhost/bb-arm64
  expect_output --substring "image is not a manifest list"
  run_hod 1 manifest exists nosuchlist
  # the list is an image named like one
  run_hod images --format '{{.Name}}:{{.Tag}}'
  expect_output --substring "localhost/mylist:latest"
}

@test "manifest create with images, --amend, and a name in use" {
  two_arch_images
  run_hod manifest create mylist localhost/bb-amd64 localhost/bb-arm64
  id=$output
  run_hod manifest inspect mylist
  run jq -r '.manifests | length' <<<"$output"
  expect_output 2
  run_hod 125 manifest create mylist
  expect_output --substring "creating image to hold manifest list"
  expect_output --substring "already in use"
  run_hod manifest create --amend mylist
  expect_output "$id"
}

@test "manifest add --all of a layout's index adds every instance" {
  list_with_both mylist
  run_hod manifest push --all mylist oci:$TEST_SCRATCH_DIR/layout:both
  run_hod manifest create other
  run_hod manifest add --all other oci:$TEST_SCRATCH_DIR/layout:both
  run_hod manifest inspect other
  run jq -r '[.manifests[].platform.architecture] | join(",")' <<<"$output"
  expect_output "amd64,arm64"
  # without --all only this host's instance
  run_hod manifest create third
  run_hod manifest add third oci:$TEST_SCRATCH_DIR/layout:both
  # the digest printed is the instance added, which annotate then finds
  sha=$(awk '{print $2}' <<<"$output")
  run_hod manifest inspect third
  inspected=$output
  run jq -r '[.manifests[].platform.architecture] | join(",")' <<<"$inspected"
  expect_output "amd64"
  run jq -r '.manifests[0].digest' <<<"$inspected"
  expect_output "$sha"
  run_hod manifest annotate --annotation hello=world third "$sha"
  run_hod manifest inspect third
  run jq -r '.manifests[0].annotations.hello' <<<"$output"
  expect_output "world"
}

@test "manifest add and annotate override platform fields and annotations" {
  list_with_both mylist
  run_hod manifest annotate --annotation a=b --annotation c=d --os-version 10.1 \
      --os-features f1,f2 --arch arm --variant v7 mylist $ARM64_DIGEST
  expect_output "$LIST_ID: $ARM64_DIGEST"
  run_hod manifest inspect mylist
  inspect=$output
  run jq -c '.manifests[1].platform' <<<"$inspect"
  expect_output '{"architecture":"arm","os":"linux","os.version":"10.1","os.features":["f1","f2"],"variant":"v7"}'
  run jq -c '.manifests[1].annotations' <<<"$inspect"
  expect_output '{"a":"b","c":"d"}'
  # a later --annotation replaces the entry's annotations
  run_hod manifest annotate --annotation e=f mylist $ARM64_DIGEST
  run_hod manifest inspect mylist
  run jq -c '.manifests[1].annotations' <<<"$output"
  expect_output '{"e":"f"}'
  # add with overrides
  run_hod manifest create second
  run_hod manifest add --arch ppc64le --os linux --annotation x=y second localhost/bb-amd64
  run_hod manifest inspect second
  run jq -c '.manifests[0] | [.platform.architecture, .annotations.x]' <<<"$output"
  expect_output '["ppc64le","y"]'
}

@test "manifest remove and rm" {
  list_with_both mylist
  run_hod manifest remove mylist $ARM64_DIGEST
  expect_output "$LIST_ID: $ARM64_DIGEST"
  run_hod manifest inspect mylist
  run jq -r '[.manifests[].digest] | join(",")' <<<"$output"
  expect_output "$AMD64_DIGEST"
  run_hod 125 manifest remove mylist $ARM64_DIGEST
  expect_output --substring "no instance matching digest"

  # a list with two names: rm of one name only untags it
  run_hod tag mylist mylist2
  run_hod manifest rm mylist2
  expect_output "untagged: localhost/mylist2:latest"
  run_hod manifest exists mylist
  run_hod manifest rm mylist
  expect_output "untagged: localhost/mylist:latest
$LIST_ID"
  run_hod 1 manifest exists mylist
  # the images stay
  run_hod images --format '{{.Name}}'
  expect_output --substring "localhost/bb-arm64"
  run_hod 125 manifest rm mylist
  run_hod 125 manifest rm localhost/bb-arm64
  expect_output --substring "image is not a manifest list"
}

@test "from --platform of a list takes that platform's image" {
  list_with_both mylist
  run_hod from --quiet --platform linux/arm64 mylist
  c=$output
  run_hod inspect --format '{{.OCIv1.Architecture}}/{{.OCIv1.Variant}}' $c
  expect_output "arm64/v8"
  run_hod inspect --format '{{.FromImageDigest}}' $c
  expect_output "$ARM64_DIGEST"
  run_hod from --quiet --platform linux/amd64 mylist
  run_hod inspect --format '{{.OCIv1.Architecture}}' $output
  expect_output "amd64"
  run_hod 125 from --quiet --platform linux/s390x --pull=never mylist
}

@test "manifest push --all to oci: writes the images and the index" {
  list_with_both mylist
  layout=$TEST_SCRATCH_DIR/layout
  run_hod manifest push --all --digestfile $TEST_SCRATCH_DIR/digest mylist oci:$layout:multi
  expect_output --substring "Copying 2 of 2 images in list"
  expect_output --substring "Writing manifest list to image destination"
  run jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "multi") | "\(.mediaType) \(.digest)"' $layout/index.json
  expect_output "application/vnd.oci.image.index.v1+json $(cat $TEST_SCRATCH_DIR/digest)"
  d=$(cat $TEST_SCRATCH_DIR/digest)
  blob=$layout/blobs/sha256/${d#sha256:}
  run sha256sum $blob
  expect_output --substring "${d#sha256:}"
  run jq -r '[.manifests[] | "\(.platform.architecture)\(.platform.variant // "")"] | join(",")' $blob
  expect_output "amd64,arm64v8"
  # every instance's manifest, config and layers are in the layout
  for m in $(jq -r '.manifests[].digest' $blob); do
    f=$layout/blobs/sha256/${m#sha256:}
    assert "$(sha256sum <$f | cut -d' ' -f1)" = "${m#sha256:}" "instance manifest $m"
    for b in $(jq -r '.config.digest, .layers[].digest' $f); do
      [[ -f $layout/blobs/sha256/${b#sha256:} ]] || die "missing blob $b of $m"
    done
  done
  # skopeo picks the arm64 image out of the index; the result validates
  run skopeo copy --override-arch arm64 oci:$layout:multi oci:$TEST_SCRATCH_DIR/arm:x
  assert "$status" -eq 0 "skopeo copy --override-arch arm64"
  run skopeo inspect --config oci:$TEST_SCRATCH_DIR/arm:x
  run jq -r '.architecture' <<<"$output"
  expect_output "arm64"
  if command -v oci-image-tool >/dev/null; then
    run oci-image-tool validate --type image --ref name=x $TEST_SCRATCH_DIR/arm
    echo "$output"
    assert "$status" -eq 0 "oci-image-tool validate"
  fi
}

@test "manifest push without --all writes only the list; --format v2s2; --rm" {
  list_with_both mylist
  layout=$TEST_SCRATCH_DIR/layout
  run_hod manifest push --quiet mylist oci:$layout:only
  expect_output ""
  run ls $layout/blobs/sha256
  expect_line_count 1
  run_hod manifest push --all --format v2s2 --rm mylist dir:$TEST_SCRATCH_DIR/dir
  run jq -r '.mediaType' $TEST_SCRATCH_DIR/dir/manifest.json
  expect_output "application/vnd.docker.distribution.manifest.list.v2+json"
  run jq -r '[.manifests[].mediaType] | unique | join(",")' $TEST_SCRATCH_DIR/dir/manifest.json
  expect_output "application/vnd.docker.distribution.manifest.v2+json"
  run_hod 1 manifest exists mylist
}

@test "push of a list's name pushes this host's image" {
  list_with_both mylist
  run_hod push mylist oci:$TEST_SCRATCH_DIR/layout:one
  run jq -r '.manifests[0].mediaType' $TEST_SCRATCH_DIR/layout/index.json
  expect_output "application/vnd.oci.image.manifest.v1+json"
  run skopeo inspect --config oci:$TEST_SCRATCH_DIR/layout:one
  run jq -r '.architecture' <<<"$output"
  expect_output "amd64"
}

@test "podman reads hod's lists and hod reads podman's" {
  skip_if_no_podman
  list_with_both mylist
  run_podman manifest inspect localhost/mylist:latest
  run jq -r '[.manifests[].digest] | join(",")' <<<"$output"
  expect_output "$AMD64_DIGEST,$ARM64_DIGEST"
  run_podman manifest create localhost/plist:latest
  run_podman manifest add localhost/plist:latest containers-storage:localhost/bb-arm64
  run_hod manifest inspect plist
  run jq -r '.manifests[0].platform.architecture' <<<"$output"
  expect_output "arm64"
  run_hod manifest exists plist
}

@test "hod reads and changes lists buildah made, and buildah reads hod's" {
  require_tool /usr/bin/buildah
  two_arch_images
  # shellcheck disable=SC2086
  /usr/bin/buildah $ROOTDIR_OPTS manifest create localhost/blist:latest
  run_hod manifest inspect blist
  run jq -r '.manifests | length' <<<"$output"
  expect_output 0
  run_hod manifest add blist localhost/bb-arm64
  # shellcheck disable=SC2086
  run /usr/bin/buildah $ROOTDIR_OPTS manifest inspect localhost/blist:latest
  assert "$status" -eq 0 "buildah manifest inspect"
  run jq -r '.manifests[0].platform | "\(.architecture)/\(.variant)"' <<<"$output"
  expect_output "arm64/v8"
  run_hod manifest create hlist localhost/bb-amd64
  # shellcheck disable=SC2086
  run /usr/bin/buildah $ROOTDIR_OPTS manifest inspect localhost/hlist:latest
  run jq -r '.manifests[0].platform.architecture' <<<"$output"
  expect_output "amd64"
  # shellcheck disable=SC2086
  run /usr/bin/buildah $ROOTDIR_OPTS manifest push --all localhost/hlist:latest dir:$TEST_SCRATCH_DIR/bdir
  assert "$status" -eq 0 "buildah manifest push --all of hod's list"
  run jq -r '.manifests | length' $TEST_SCRATCH_DIR/bdir/manifest.json
  expect_output 1
}

function teardown() {
  if [[ -n ${REGISTRY_PID:-} ]]; then
    kill $REGISTRY_PID 2>/dev/null || true
    wait $REGISTRY_PID 2>/dev/null || true
  fi
  teardown_tests
}

@test "manifest push --all to a registry; skopeo reads the list and picks arm64; add and from of docker://" {
  start_registry
  list_with_both mylist
  run_hod manifest push --all --tls-verify=false --digestfile $TEST_SCRATCH_DIR/digest mylist docker://$REGISTRY/multi:1
  run skopeo inspect --tls-verify=false --raw docker://$REGISTRY/multi:1
  assert "$status" -eq 0 "skopeo inspect --raw"
  raw=$output
  run jq -r '.mediaType' <<<"$raw"
  expect_output "application/vnd.oci.image.index.v1+json"
  run jq -r '[.manifests[] | "\(.platform.architecture)\(.platform.variant // "")"] | join(",")' <<<"$raw"
  expect_output "amd64,arm64v8"
  assert "sha256:$(printf '%s' "$raw" | sha256sum | cut -d' ' -f1)" = "$(cat $TEST_SCRATCH_DIR/digest)" "--digestfile is the pushed list's digest"
  run skopeo copy --src-tls-verify=false --override-arch arm64 docker://$REGISTRY/multi:1 oci:$TEST_SCRATCH_DIR/arm:x
  assert "$status" -eq 0 "skopeo copy --override-arch arm64"
  run skopeo inspect --config oci:$TEST_SCRATCH_DIR/arm:x
  run jq -r '.architecture' <<<"$output"
  expect_output "arm64"
  if command -v oci-image-tool >/dev/null; then
    run oci-image-tool validate --type image --ref name=x $TEST_SCRATCH_DIR/arm
    echo "$output"
    assert "$status" -eq 0 "oci-image-tool validate"
  fi
  # --format v2s2: a Docker list of Docker manifests
  run_hod manifest push --all --format v2s2 --tls-verify=false mylist docker://$REGISTRY/multi:v2s2
  run skopeo inspect --tls-verify=false --raw docker://$REGISTRY/multi:v2s2
  run jq -r '.mediaType, ([.manifests[].mediaType] | unique | join(","))' <<<"$output"
  expect_output "application/vnd.docker.distribution.manifest.list.v2+json
application/vnd.docker.distribution.manifest.v2+json"
  # a registry list: inspect, add --all, and from --platform of it
  run_hod manifest inspect $REGISTRY/multi:1
  run jq -r '.manifests | length' <<<"$output"
  expect_output 2
  run_hod manifest create fromreg
  run_hod manifest add --all --tls-verify=false fromreg docker://$REGISTRY/multi:1
  run_hod manifest inspect fromreg
  run jq -r '[.manifests[].platform.architecture] | join(",")' <<<"$output"
  expect_output "amd64,arm64"
  # pull --arch of each platform: an image of another platform is pulled, not reused
  run_hod pull -q --tls-verify=false --arch=amd64 $REGISTRY/multi:1
  amd=$output
  run_hod pull -q --tls-verify=false --arch=arm64 $REGISTRY/multi:1
  arm=$output
  assert "$arm" != "$amd" "pull --arch=arm64 after --arch=amd64 gets another image"
  run_hod inspect --type image --format '{{.OCIv1.Architecture}}' $arm
  expect_output "arm64"
  run_hod from --quiet --tls-verify=false --platform linux/arm64 docker://$REGISTRY/multi:1
  run_hod inspect --format '{{.OCIv1.Architecture}}' $output
  expect_output "arm64"
}

@test "manifest push and add check a given --authfile" {
  list_with_both mylist
  run_hod 125 manifest push --authfile $TEST_SCRATCH_DIR/nonexistent mylist dir:$TEST_SCRATCH_DIR/d
  expect_output --substring "checking authfile: stat $TEST_SCRATCH_DIR/nonexistent: no such file or directory"
  [[ ! -e $TEST_SCRATCH_DIR/d/manifest.json ]] || die "pushed despite the missing authfile"
  run_hod 125 manifest add --authfile $TEST_SCRATCH_DIR/nonexistent mylist localhost/bb-arm64
  expect_output --substring "checking authfile"
}
