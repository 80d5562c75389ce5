#!/usr/bin/env bats
# hod rmi: one, several, --all, --force, --prune, and images in use.

load helpers

@test "remove one image" {
  _prefetch busybox
  run_hod rmi busybox
  run_hod images -q
  expect_output ""
}

@test "remove multiple images" {
  _prefetch busybox
  run_hod from --quiet busybox
  run_hod commit -q --rm $output img-a
  run_hod tag img-a img-b
  run_hod rmi img-a img-b busybox
  run_hod images -q
  expect_output ""
}

@test "remove an image named with the containers-storage: transport" {
  _prefetch busybox
  run_hod from --quiet busybox
  run_hod commit -q --rm $output cs-img
  run_hod rmi containers-storage:cs-img
  expect_output --substring "untagged: localhost/cs-img:latest"
  run_hod 125 inspect --type image cs-img
}

@test "remove multiple non-existent images errors" {
  run_hod 125 rmi image1 image2 image3
  # buildah's (go-multierror) list, one line per image
  expect_output --from="${lines[0]}" "Error: 3 errors occurred:"
  expect_output --from="${lines[1]}" --substring " image1: image not known"
  expect_output --from="${lines[2]}" --substring " image2: image not known"
  expect_output --from="${lines[3]}" --substring " image3: image not known"
  # one error is one line
  run_hod 125 rmi image1
  expect_output "Error: image1: image not known"
}

@test "remove all images" {
  _prefetch busybox
  run_hod from --quiet busybox
  run_hod commit -q $output img-all
  run_hod rm -a
  run_hod rmi --all
  run_hod images -q
  expect_output ""
}

@test "rmi of an image a container still uses refuses, naming the container" {
  _prefetch busybox
  run_hod from --quiet --name user-ctr busybox
  cid=$(hod containers -q --notruncate)
  run_hod 125 rmi busybox
  # named by ID (buildah) or by name
  [[ $output == *"$cid"* || $output == *user-ctr* ]] || die "rmi does not name the container: $output"
  run_hod images -q
  assert "$output" != "" "image is still there"
  # --force removes the container too
  run_hod rmi --force busybox
  run_hod containers -q
  expect_output ""
}

@test "use prune to remove dangling images" {
  _prefetch busybox
  run_hod from --quiet busybox
  cid=$output
  run_hod commit -q $cid
  dangling=$output
  run_hod rm $cid
  run_hod rmi --prune
  expect_output --substring "$dangling"
  run_hod images -q --no-trunc
  assert "$output" !~ "$dangling"
  run_hod images --noheading
  expect_line_count 1
}

@test "use conflicting commands to remove images" {
  _prefetch busybox
  run_hod 125 rmi -a busybox
  expect_output --substring "when using the --all switch, you may not pass any images names or IDs"
}

@test "remove image that is a parent of another image" {
  _prefetch busybox
  run_hod from --quiet busybox
  cid=$output
  run_hod commit -q $cid child
  run_hod rm $cid
  run_hod rmi busybox
  # the child keeps the shared layer; it still works
  run_hod from --quiet child
  run_hod mount $output
  test -x $output/bin/busybox
}

@test "rmi of an image also removes the unnamed parent it leaves dangling; --prune leaves intermediate images" {
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
  run_hod rm $c1 $c2
  # u1 has a child: not dangling, prune keeps it.
  run_hod rmi --prune
  expect_output ""
  run_hod rmi child
  expect_output --substring "untagged: localhost/child:latest"
  expect_output --substring "$u1"
  run_hod images -a -q
  expect_line_count 1
}
