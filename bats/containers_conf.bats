#!/usr/bin/env bats
# containers.conf ([containers] keys) is read as containers/common reads it and recorded by
# from/bud for later runs; flags given to from win (buildah's containers_conf.bats, issue 17).

load helpers

function setup_conf() {
  skip_if_rootless "run as root"
  _prefetch busybox
  conf=$TEST_SCRATCH_DIR/containers.conf
  cat > $conf <<EOF
[containers]
default_ulimits = ["nofile=500:500"]
shm_size = "200k"
default_capabilities = ["CHOWN", "NET_RAW", "SETUID", "SETGID"]
pidns = "host"
EOF
}

@test "containers.conf: ulimits, shm_size, capabilities and namespaces of later runs" {
  setup_conf
  CONTAINERS_CONF=$conf run_hod from --quiet busybox
  cid=$output
  # recorded at from time: the run itself reads another (no) file
  CONTAINERS_CONF=/dev/null run_hod run $cid sh -c 'ulimit -n; df /dev/shm | awk "/shm/{print \$4}"'
  expect_output $'500\n200'
  run_hod run $cid sh -c 'grep CapEff /proc/self/status | cut -f2'
  # CHOWN(0) SETGID(6) SETUID(7) NET_RAW(13)
  expect_output "00000000000020c1"
  run_hod run $cid readlink /proc/self/ns/pid
  expect_output "$(readlink /proc/self/ns/pid)"

  # flags given to from win over the file
  CONTAINERS_CONF=$conf run_hod from --quiet --ulimit nofile=300:400 --pid private --cap-add SYS_ADMIN busybox
  cid=$output
  run_hod run $cid sh -c 'ulimit -n; grep CapEff /proc/self/status | cut -f2'
  expect_output $'300\n00000000002020c1'
  run_hod run $cid readlink /proc/self/ns/pid
  assert "$output" != "$(readlink /proc/self/ns/pid)"

  # bud's stages get it too
  printf 'FROM busybox\nRUN echo nofile=$(ulimit -n)\n' > $TEST_SCRATCH_DIR/Containerfile
  CONTAINERS_CONF=$conf run_hod bud -f $TEST_SCRATCH_DIR/Containerfile $TEST_SCRATCH_DIR
  expect_output --substring "nofile=500"
}

@test "containers.conf: default_ulimits also apply at run time, under the container's" {
  setup_conf
  CONTAINERS_CONF=/dev/null run_hod from --quiet busybox
  cid=$output
  CONTAINERS_CONF=$conf run_hod run $cid sh -c 'ulimit -n'
  expect_output "500"
  CONTAINERS_CONF=/dev/null run_hod from --quiet --ulimit nofile=300:400 busybox
  CONTAINERS_CONF=$conf run_hod run $output sh -c 'ulimit -n'
  expect_output "300"
}

@test "containers.conf: devices" {
  setup_conf
  rm -f $TEST_SCRATCH_DIR/dev-foo
  mknod $TEST_SCRATCH_DIR/dev-foo c 1 3
  printf '[containers]\ndevices = ["%s:/dev/foo1:rmw"]\n' $TEST_SCRATCH_DIR/dev-foo > $conf
  run_hod from --quiet busybox
  run_hod 1 run $output ls /dev/foo1
  CONTAINERS_CONF=$conf run_hod from --quiet busybox
  run_hod run $output sh -c 'ls /dev/foo1 && echo x > /dev/foo1'
}

@test "containers.conf: CONTAINERS_CONF naming a missing or bad file is an error" {
  skip_if_rootless
  CONTAINERS_CONF=$TEST_SCRATCH_DIR/nonexistent run_hod 125 from scratch
  expect_output --substring "containers.conf"
  printf '[containers]\npidns = "sideways"\n' > $TEST_SCRATCH_DIR/bad.conf
  CONTAINERS_CONF=$TEST_SCRATCH_DIR/bad.conf run_hod 125 from scratch
  expect_output --substring "sideways"
}
