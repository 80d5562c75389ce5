#!/usr/bin/env bats
# hod config: every flag, JSON and shell forms, '-' to unset.

load helpers

function inspect_config() {
  run_hod inspect --type container --format "$1" $cid
}

@test "config entrypoint using single element in JSON array (exec form)" {
  _prefetch busybox
  run_hod from --quiet busybox
  cid=$output
  run_hod config --entrypoint '[ "/ENTRYPOINT" ]' $cid
  run_hod commit -q $cid entry-img
  run_hod inspect --type image --format '{{.OCIv1.Config.Entrypoint}}' entry-img
  expect_output "[/ENTRYPOINT]"
}

@test "config entrypoint using multiple elements in JSON array (exec form)" {
  _prefetch busybox
  run_hod from --quiet busybox
  cid=$output
  run_hod config --entrypoint '[ "/ENTRYPOINT", "ELEMENT2" ]' $cid
  inspect_config '{{.OCIv1.Config.Entrypoint}}'
  expect_output "[/ENTRYPOINT ELEMENT2]"
}

@test "config entrypoint using string (shell form)" {
  _prefetch busybox
  run_hod from --quiet busybox
  cid=$output
  run_hod config --entrypoint /ENTRYPOINT $cid
  inspect_config '{{.OCIv1.Config.Entrypoint}}'
  expect_output "[/bin/sh -c /ENTRYPOINT]"
}

@test "config cmd without entrypoint" {
  _prefetch busybox
  run_hod from --quiet busybox
  cid=$output
  run_hod config --cmd COMMAND-OR-ARGS $cid
  inspect_config '{{.OCIv1.Config.Cmd}} {{.OCIv1.Config.Entrypoint}}'
  expect_output "[COMMAND-OR-ARGS] []"
  run_hod config --cmd '["/bin/echo", "x"]' $cid
  inspect_config '{{.OCIv1.Config.Cmd}}'
  expect_output "[/bin/echo x]"
}

@test "config set empty entrypoint doesn't wipe cmd" {
  _prefetch busybox
  run_hod from --quiet busybox
  cid=$output
  run_hod config --cmd "command" $cid
  run_hod config --entrypoint "" $cid
  inspect_config '{{.OCIv1.Config.Cmd}}'
  expect_output "[command]"
}

@test "config" {
  _prefetch busybox
  run_hod from --quiet busybox
  cid=$output
  run_hod config \
    --author TESTAUTHOR \
    --created-by COINCIDENCE \
    --arch amd64 \
    --os linux \
    --user likes:things \
    --port 12345/tcp \
    --env VARIABLE=VALUE1,VALUE2 \
    --env foo=bar \
    --label LABEL=VALUE \
    --label test=ok \
    --annotation ANNOTATION=VALUE1,VALUE2 \
    --workingdir /tmp \
    --volume /VOLUME \
    --stop-signal SIGTERM \
    --shell "/bin/bash -c" \
    --comment "a comment" \
    --history-comment PROBABLY-EMPTY \
    --domainname mydomain.local \
    --hostname cleverhostname \
    $cid
  run_hod commit -q --format docker $cid config-img

  run_hod inspect --type image --format '{{.OCIv1.Author}}' config-img
  expect_output "TESTAUTHOR"
  run_hod inspect --type image --format '{{.OCIv1.Config.User}}' config-img
  expect_output "likes:things"
  run_hod inspect --type image --format '{{.OCIv1.Config.ExposedPorts}}' config-img
  expect_output "map[12345/tcp:{}]"
  run_hod inspect --type image --format '{{.OCIv1.Config.Env}}' config-img
  expect_output --substring "VARIABLE=VALUE1,VALUE2"
  expect_output --substring "foo=bar"
  run_hod inspect --type image --format '{{.OCIv1.Config.Labels.LABEL}} {{.OCIv1.Config.Labels.test}}' config-img
  expect_output "VALUE ok"
  run_hod inspect --type image --format '{{.OCIv1.Config.WorkingDir}}' config-img
  expect_output "/tmp"
  run_hod inspect --type image --format '{{.OCIv1.Config.Volumes}}' config-img
  expect_output "map[/VOLUME:{}]"
  run_hod inspect --type image --format '{{.OCIv1.Config.StopSignal}}' config-img
  expect_output "SIGTERM"
  run_hod inspect --type image --format '{{.Docker.Config.Shell}}' config-img
  expect_output "[/bin/bash -c]"
  run_hod inspect --type image --format '{{.Docker.Config.Domainname}} {{.Docker.Config.Hostname}}' config-img
  expect_output "mydomain.local cleverhostname"
  run_hod inspect --type image --format '{{.Docker.Comment}}' config-img
  expect_output "a comment"
  run_hod inspect --type image --format '{{(index .OCIv1.History 1).CreatedBy}}' config-img
  expect_output "COINCIDENCE"
  # annotations are an OCI-only field: look at the working container
  run_hod inspect --type container --format '{{.ImageAnnotations.ANNOTATION}}' $cid
  expect_output "VALUE1,VALUE2"
}

@test "config --unsetlabel" {
  # buildah 1.28.2 has no --unsetlabel (added in 1.29); buildah's current man page has it.
  [[ -z $HOD_IS_BUILDAH ]] || skip "buildah 1.28.2 lacks --unsetlabel"
  _prefetch busybox
  run_hod from --quiet busybox
  cid=$output
  run_hod config --label k1=v1 --label k2=v2 $cid
  run_hod config --unsetlabel k1 $cid
  inspect_config '{{.OCIv1.Config.Labels}}'
  expect_output --substring "k2:v2"
  assert "$output" !~ "k1"
}

@test "remove configs using '-' syntax" {
  _prefetch busybox
  run_hod from --quiet busybox
  cid=$output
  run_hod config --label k1=v1 --label k2=v2 --env E1=a --env E2=b --port 80/tcp --port 443/tcp --volume /v1 $cid
  run_hod config --label k1- --env E1- --port 80/tcp- --volume /v1- $cid
  inspect_config '{{.OCIv1.Config.Labels}}'
  expect_output "map[k2:v2]"
  inspect_config '{{.OCIv1.Config.Env}}'
  assert "$output" !~ "E1=" 
  expect_output --substring "E2=b"
  inspect_config '{{.OCIv1.Config.ExposedPorts}}'
  expect_output "map[443/tcp:{}]"
  inspect_config '{{.OCIv1.Config.Volumes}}'
  expect_output "map[]"
  # a lone '-' removes them all
  run_hod config --label - --env - $cid
  inspect_config '{{len .OCIv1.Config.Labels}} {{len .OCIv1.Config.Env}}'
  expect_output "0 0"
}

@test "config env using --env expansion" {
  _prefetch busybox
  run_hod from --quiet busybox
  cid=$output
  run_hod config --env 'foo=bar' --env 'foo1=bar1' $cid
  run_hod config --env 'combined=$foo/${foo1}' $cid
  inspect_config '{{.OCIv1.Config.Env}}'
  expect_output --substring "combined=bar/bar1"
}

@test "config env using local environment" {
  _prefetch busybox
  run_hod from --quiet busybox
  cid=$output
  export HOD_TEST_LOCAL_VAR=from-host
  run_hod config --env HOD_TEST_LOCAL_VAR $cid
  inspect_config '{{.OCIv1.Config.Env}}'
  expect_output --substring "HOD_TEST_LOCAL_VAR=from-host"
}

@test "user" {
  _prefetch busybox
  run_hod from --quiet busybox
  cid=$output
  run_hod config --user 1000:1000 $cid
  inspect_config '{{.OCIv1.Config.User}}'
  expect_output "1000:1000"
}

@test "config of an unknown container" {
  run_hod 125 config --label a=b nosuchcontainer
  expect_line_count 1
  expect_output --substring "nosuchcontainer"
}

@test "config-flags-verification" {
  run_hod 125 config --nosuchflag x
  expect_output --substring "nosuchflag"
}
