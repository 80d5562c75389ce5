#!/usr/bin/env bats
# hod from: scratch, local images by name/ID/short ID/digest, --name,
# --cidfile, --pull=never|missing, local transports.

load helpers

@test "from scratch" {
  run_hod from scratch
  expect_output "working-container"
  run_hod from scratch
  expect_output "working-container-1"
  run_hod containers --format '{{.ContainerName}}'
  expect_line_count 2
}

@test "from-tagged-image" {
  _prefetch busybox
  run_hod from --quiet busybox
  expect_output "busybox-working-container"
  cid=$output
  run_hod commit -q $cid busybox:tagged
  run_hod rm $cid
  run_hod from --quiet busybox:tagged
  expect_output "busybox-working-container"
  run_hod images --format '{{.Tag}}'
  expect_output --substring "tagged"
}

@test "from name test" {
  _prefetch busybox
  run_hod from --quiet --name=mycontainer busybox
  expect_output "mycontainer"
  run_hod inspect --format '{{.Container}}' mycontainer
  expect_output "mycontainer"
  # a second container with the same name is refused
  run_hod 125 from --quiet --name=mycontainer busybox
  expect_output --substring "mycontainer"
  expect_output --substring "in use"
}

@test "from cidfile test" {
  _prefetch busybox
  run_hod from --cidfile $TEST_SCRATCH_DIR/output.cid --pull=false busybox
  cid=$(< $TEST_SCRATCH_DIR/output.cid)
  assert "$cid" =~ '^[0-9a-f]{64}$' "cidfile holds a full container ID"
  run_hod containers -q --notruncate
  expect_output "$cid"
}

@test "from pull never" {
  run_hod 125 from --pull=never busybox
  expect_output --substring "busybox: image not known"
  _prefetch busybox
  run_hod from --pull=never busybox
  expect_output "busybox-working-container"
  run_hod from --pull=missing busybox
  expect_output "busybox-working-container-1"
}

@test "from-image-by-id" {
  _prefetch busybox
  run_hod from --quiet busybox
  run_hod commit -q --iidfile $TEST_SCRATCH_DIR/iid $output
  iid=$(< $TEST_SCRATCH_DIR/iid)
  iid=${iid#sha256:}
  run_hod from --quiet $iid
  expect_output "${iid:0:12}-working-container"
  run_hod from --quiet ${iid:0:12}
  expect_output "${iid:0:12}-working-container-1"
  run_hod inspect --format '{{.FromImageID}}' $output
  expect_output "$iid"
}

@test "from-with-digest" {
  _prefetch busybox
  run_hod inspect --type image --format '{{.FromImageDigest}}' busybox
  digest=$output
  assert "$digest" =~ '^sha256:[0-9a-f]{64}$'
  run_hod from --quiet busybox@$digest
  expect_output "busybox-working-container"
  run_hod inspect --format '{{.FromImageDigest}}' $output
  expect_output "$digest"
}

@test "from the following transports: docker-archive, oci-archive, oci, and dir" {
  _prefetch busybox
  run_hod push busybox docker-archive:$TEST_SCRATCH_DIR/docker-bb.tar:busybox:latest
  run_hod push busybox oci-archive:$TEST_SCRATCH_DIR/oci-bb.tar:busybox
  run_hod push busybox oci:$TEST_SCRATCH_DIR/oci-bb:busybox
  run_hod push busybox dir:$TEST_SCRATCH_DIR/bb-dir
  run_hod rmi busybox

  run_hod from --quiet docker-archive:$TEST_SCRATCH_DIR/docker-bb.tar
  expect_output "busybox-working-container"
  run_hod rm $output
  run_hod rmi -a -f

  run_hod from --quiet oci-archive:$TEST_SCRATCH_DIR/oci-bb.tar
  assert "$output" =~ '-working-container$'
  run_hod rm $output
  run_hod rmi -a -f

  run_hod from --quiet oci:$TEST_SCRATCH_DIR/oci-bb:busybox
  assert "$output" =~ '-working-container$'
  run_hod rm $output
  run_hod rmi -a -f

  run_hod from --quiet dir:$TEST_SCRATCH_DIR/bb-dir
  assert "$output" =~ '-working-container$'
}

@test "from an image seeded by skopeo is usable" {
  layout=$(_fixture_layout busybox)
  skopeo copy --quiet oci:$layout:latest "containers-storage:${STORE_SPEC}localhost/seeded:1"
  run_hod images --format '{{.Name}}:{{.Tag}}'
  expect_output "localhost/seeded:1"
  run_hod from --quiet seeded:1
  cid=$output
  run_hod mount $cid
  mnt=$output
  test -x $mnt/bin/busybox
  run_hod umount $cid
}

@test "from with unknown image" {
  run_hod 125 from --pull=never nosuchimage:foo
  expect_line_count 1
  assert "$output" =~ "^Error: "
  expect_output --substring "nosuchimage"
}

@test "from --quiet: should not emit progress messages" {
  _prefetch busybox
  run_hod from --quiet busybox
  expect_line_count 1
  expect_output "busybox-working-container"
}

@test "from --add-host and --dns* reach run's /etc/hosts and /etc/resolv.conf" {
  _prefetch busybox
  run_hod from --quiet --add-host myhost:10.0.0.1 --add-host six:2001:db8::2 \
      --dns 1.1.1.1 --dns-search example.com --dns-option ndots:2 busybox
  cid=$output
  run_hod run $cid cat /etc/hosts
  assert "${lines[0]}" == $'10.0.0.1\tmyhost' "first --add-host entry leads /etc/hosts"
  assert "${lines[1]}" == $'2001:db8::2\tsix' "second --add-host entry"
  run_hod run $cid cat /etc/resolv.conf
  expect_output $'search example.com\nnameserver 1.1.1.1\noptions ndots:2'
  # A run's own settings do not drop the container's.
  run_hod run --network host $cid cat /etc/resolv.conf
  expect_output $'search example.com\nnameserver 1.1.1.1\noptions ndots:2'
  run_hod rm $cid

  # --dns=none: the image's resolv.conf is left alone.
  run_hod from --quiet --dns none busybox
  cid=$output
  run_hod run $cid sh -c 'test -s /etc/resolv.conf && echo generated || echo none'
  expect_output "none"
}

@test "from --isolation and bad run defaults" {
  _prefetch busybox
  run_hod from --quiet --isolation chroot busybox
  run_hod inspect --format '{{.Isolation}}' $output
  expect_output "chroot"
  run_hod 125 from --quiet --security-opt bogus=1 busybox
  expect_output --substring "invalid --security-opt"
  run_hod 125 from --quiet --add-host nocolon busybox
  run_hod 125 from --quiet --isolation vm busybox
  expect_output --substring "unrecognized isolation type"
}

@test "from runs the base image's ONBUILD triggers and clears them" {
  _prefetch busybox
  run_hod from --quiet busybox
  cid=$output
  run_hod config --onbuild "RUN touch /onbuilt" --onbuild "ENV A=1" $cid
  run_hod commit --quiet --format docker $cid onbuild-base
  run_hod from onbuild-base
  expect_output --substring "STEP 1: RUN touch /onbuilt"
  expect_output --substring "STEP 2: ENV A=1"
  cid2=${lines[-1]}
  run_hod run $cid2 ls /onbuilt
  expect_output "/onbuilt"
  run_hod inspect --format '{{.Docker.Config.OnBuild}}' $cid2
  expect_output "[]"
  run_hod inspect --format '{{.OCIv1.Config.Env}}' $cid2
  expect_output --substring "A=1"

  # A failing trigger fails the from with the RUN's status; hod removes the half-made
  # container (a documented difference: buildah leaves it behind).
  run_hod config --onbuild "RUN false" $cid
  run_hod commit --quiet --format docker $cid onbuild-bad
  run_hod 1 from --quiet onbuild-bad
  run_hod containers --quiet
  if [[ -n $HOD_IS_BUILDAH ]]; then expect_line_count 3; else expect_line_count 2; fi
}

# A two-platform OCI layout made from the busybox fixture: index.json names ("multi") an
# image index listing the fixture's linux/amd64 manifest and a linux/arm64/v8 copy whose
# config says arm64 (same layers). Prints the arm64 config's digest.
function _two_platform_layout() {
  local dir=$1 src m1 cfg1 cfg2 c2 m2 idx sha
  src=$(_fixture_layout busybox)
  cp -r "$src" "$dir"
  sha() { sha256sum "$1" | cut -d' ' -f1; }
  m1=$(jq -r '.manifests[0].digest' "$dir/index.json")
  cfg1=$(jq -r '.config.digest' "$dir/blobs/sha256/${m1#sha256:}")
  jq -c '.architecture = "arm64" | .variant = "v8"' "$dir/blobs/sha256/${cfg1#sha256:}" > "$dir/cfg2"
  c2=$(sha "$dir/cfg2"); mv "$dir/cfg2" "$dir/blobs/sha256/$c2"
  jq -c --arg d "sha256:$c2" --argjson s "$(stat -c %s "$dir/blobs/sha256/$c2")" \
    '.config.digest = $d | .config.size = $s' "$dir/blobs/sha256/${m1#sha256:}" > "$dir/m2"
  m2=$(sha "$dir/m2"); mv "$dir/m2" "$dir/blobs/sha256/$m2"
  jq -c --arg m2 "sha256:$m2" --argjson s2 "$(stat -c %s "$dir/blobs/sha256/$m2")" '
    {schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
     manifests: [(.manifests[0] | del(.annotations) | .platform = {os: "linux", architecture: "amd64"}),
                 {mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $m2, size: $s2,
                  platform: {os: "linux", architecture: "arm64", variant: "v8"}}]}' \
    "$dir/index.json" > "$dir/idx"
  idx=$(sha "$dir/idx"); mv "$dir/idx" "$dir/blobs/sha256/$idx"
  jq -c --arg d "sha256:$idx" --argjson s "$(stat -c %s "$dir/blobs/sha256/$idx")" \
    '.manifests = [{mediaType: "application/vnd.oci.image.index.v1+json", digest: $d, size: $s,
                    annotations: {"org.opencontainers.image.ref.name": "multi"}}]' \
    "$dir/index.json" > "$dir/index.new"
  mv "$dir/index.new" "$dir/index.json"
  echo "$c2"
}

@test "from --platform picks the instance of a multi-arch OCI index" {
  layout=$TEST_SCRATCH_DIR/multi
  arm_config=$(_two_platform_layout $layout)

  run_hod from --quiet --platform linux/arm64 oci:$layout:multi
  cid=$output
  run_hod inspect --format '{{.OCIv1.Architecture}} {{.OCIv1.Variant}}' $cid
  expect_output "arm64 v8"
  run_hod images --no-trunc --format '{{.ID}}'
  expect_output --substring "$arm_config"
  run_hod rm $cid
  run_hod rmi -a -f

  # the same with --arch/--variant, and aarch64 normalised to arm64
  run_hod from --quiet --arch aarch64 oci:$layout:multi
  run_hod inspect --format '{{.OCIv1.Architecture}}' $output
  expect_output "arm64"
  run_hod rm -a
  run_hod rmi -a -f

  # pull takes the platform too, and names the image after the ref
  run_hod pull --quiet --platform linux/arm64/v8 oci:$layout:multi
  expect_output "$arm_config"
  run_hod rmi -a -f

  # no platform: the host's instance (the fixture's amd64 on amd64 hosts)
  if [[ $(uname -m) == x86_64 ]]; then
    run_hod from --quiet oci:$layout:multi
    run_hod inspect --format '{{.OCIv1.Architecture}}' $output
    expect_output "amd64"
    run_hod rm -a
  fi

  # nothing for the platform: containers/image's error
  run_hod 125 from --quiet --platform linux/s390x oci:$layout:multi
  expect_output --substring 'no image found in image index for architecture s390x, variant "", OS linux'
  if [[ -z $HOD_IS_BUILDAH ]]; then
    expect_output --substring "linux/amd64, linux/arm64/v8"
  fi
}

@test "from --platform may not be combined with --arch, --os or --variant" {
  run_hod 125 from --platform linux/arm64 --arch amd64 scratch
  expect_output --substring "invalid --platform may not be used with --os, --arch, or --variant"
}

@test "from --creds without a password and no terminal is refused" {
  run_hod 125 from --creds someone scratch </dev/null
  [[ -n $HOD_IS_BUILDAH ]] || expect_output --substring "stdin is not a terminal"
  assert "$output" !~ "someone:"
}

@test "from --group-add, --pid and --security-opt reach later runs" {
  # buildah 1.28's from has no --group-add (its bud has); the rest is checked on hod only
  # because it reads the run's own /proc.
  [[ -z $HOD_IS_BUILDAH ]] || skip "buildah from has no --group-add"
  _prefetch busybox
  run_hod from --quiet --group-add wheel --group-add 4242 --pid host \
      --security-opt no-new-privileges --memory 64m busybox
  cid=$output
  run_hod run $cid id -G
  expect_output "0 10 4242"
  run_hod run $cid sh -c 'grep NoNewPrivs /proc/self/status'
  expect_output --substring "1"
  # --pid host: hod's own processes are visible.
  run_hod run $cid sh -c "test -d /proc/$$ && echo host-pid"
  expect_output "host-pid"
  # A run's own setting goes on top of the container's.
  run_hod run --pid private $cid sh -c "test -d /proc/$$ && echo host-pid || echo private"
  expect_output "private"
  run_hod 125 run --security-opt bogus=1 $cid true
  expect_output --substring "invalid --security-opt"
}

@test "from --suffix names the container <image>-<suffix>" {
  _prefetch busybox
  run_hod from --quiet --suffix 4242 busybox
  expect_output "busybox-4242"
  run_hod from --quiet --suffix sfx scratch
  expect_output "sfx"
}

@test "a docker-archive pushed without a name records the image's, and from gets it back" {
  _prefetch busybox
  run_hod push busybox docker-archive:$TEST_SCRATCH_DIR/d.tar
  run tar -xOf $TEST_SCRATCH_DIR/d.tar manifest.json
  assert "$output" =~ '"RepoTags":\["docker.io/library/busybox:latest"\]'
  run_hod rmi busybox
  run_hod from --quiet docker-archive:$TEST_SCRATCH_DIR/d.tar
  expect_output "busybox-working-container"
  # an oci-archive has no such name
  run_hod push busybox oci-archive:$TEST_SCRATCH_DIR/o.tar
  run_hod rm -a
  run_hod rmi -a
  run_hod from --quiet oci-archive:$TEST_SCRATCH_DIR/o.tar
  expect_output "oci-archive-working-container"
}

@test "from --cgroup-parent: later runs are in a cgroup under it, with both runtimes; the run's own cgroup goes" {
  skip_if_rootless "cgroups are made as root"
  _prefetch busybox
  parent=hodtest-$(random_string 6 | tr A-Z a-z)
  run_hod from --quiet --cgroupns=host --cgroup-parent $parent busybox
  cid=$output
  run_hod --cgroup-manager cgroupfs run $cid sh -c 'cat /proc/$$/cgroup'
  assert "$output" =~ "/$parent/hod-" "the run's cgroup is under the parent"
  leaf=$(grep -o "/$parent/hod-[^/]*" <<<"$output" | head -1)
  run find /sys/fs/cgroup -path "*$leaf" -maxdepth 4
  expect_output "" "the run's own cgroup is removed afterwards"
  if command -v runc >/dev/null; then
    run_hod run --runtime runc $cid sh -c 'cat /proc/$$/cgroup'
    assert "$output" =~ "/$parent/" "runc gets the spec's cgroupsPath"
  fi
  run_hod from --quiet busybox
  run_hod run $output sh -c 'cat /proc/$$/cgroup'
  assert "$output" !~ "$parent" "without --cgroup-parent"
  find /sys/fs/cgroup -depth -type d -name "$parent" -exec rmdir {} + 2>/dev/null || true
}
