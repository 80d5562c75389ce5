//! Issue 17: `bud` flags and behaviours that buildah's own `bud.bats` checks, each pinned
//! here so CI keeps them (CI has no copy of the buildah suite). Every case runs in a fresh
//! vfs store; none needs the network.
use std::fs;
use std::path::PathBuf;

use crate::common::{self, TestContext};

/// A context directory holding one Containerfile.
fn context(ctx: &TestContext, containerfile: &str) -> PathBuf {
    let dir = ctx.path("ctx");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("Containerfile"), containerfile).unwrap();
    dir
}

/// bud.bats "bud with --cpu-shares flag/short flag (-c), no/invalid/valid argument" and
/// "bud-with-unlimited-memory-swap": the flags exist, a bad or missing value is pflag's
/// usage error (a missing one swallows the next flag, as in Go), a good one builds.
#[test]
fn cpu_shares_and_memory_swap() {
    let ctx = TestContext::new("vfs");
    let dir = context(&ctx, "FROM scratch\nLABEL a=b\n");
    let d = dir.display().to_string();
    for flag in ["--cpu-shares", "-c"] {
        let r = ctx.hod(["bud", flag, "bogus", "-t", "x", &d]).code_is(125);
        assert!(
            r.stderr.contains("invalid argument \"bogus\" for ")
                && r.stderr.contains("invalid syntax"),
            "{}",
            r.dump()
        );
        let r = ctx.hod(["bud", flag, "-t", "x", &d]).code_is(125);
        assert!(
            r.stderr.contains("invalid argument \"-t\"") && r.stderr.contains("invalid syntax"),
            "{}",
            r.dump()
        );
        ctx.ok(["bud", flag, "2", "-t", "shares", &d]);
    }
    ctx.ok(["bud", "--memory-swap", "-1", "-t", "swap", &d]);
    ctx.ok(["from", "--pull=never", "shares"]);
}

/// bud.bats "bud with --dns* flags": with --network=none each --dns* flag is refused by
/// name before its value is looked at (example.com is no address).
#[test]
fn dns_flags_with_network_none() {
    let ctx = TestContext::new("vfs");
    let dir = context(&ctx, "FROM scratch\n");
    let d = dir.display().to_string();
    for flag in ["--dns", "--dns-option", "--dns-search"] {
        let r = ctx
            .hod(["bud", &format!("{flag}=example.com"), "--network=none", &d])
            .code_is(125);
        assert_eq!(
            r.stderr.trim(),
            format!("Error: the {flag} option cannot be used with --network=none"),
            "{}",
            r.dump()
        );
    }
    common::assert_no_panic(&ctx.hod(["bud", "--dns=example.com", &d]));
    // bud.bats "bud with --add-host": --add-host needs the /etc/hosts --no-hosts turns off.
    let r = ctx
        .hod(["bud", "--add-host=h:1.2.3.4", "--no-hosts", &d])
        .code_is(125);
    assert!(
        r.stderr
            .contains("--no-hosts and --add-host conflict, can not be used together"),
        "{}",
        r.dump()
    );
}

/// A line of buildah's `rusage.FormatDiff`: `…(system) …(user) …(elapsed) … input … output`.
fn is_rusage_line(l: &str) -> bool {
    let w: Vec<&str> = l.split(' ').collect();
    w.len() == 7
        && w[0].ends_with("s(system)")
        && w[1].ends_with("s(user)")
        && w[2].ends_with("s(elapsed)")
        && w[3].ends_with('B')
        && w[4] == "input"
        && w[5].ends_with('B')
        && w[6] == "output"
}

/// bud.bats "bud with-rusage" and "bud with-rusage-logfile": --log-rusage prints usage lines
/// between the steps; with --rusage-logfile they go to the file, and only they.
#[test]
fn log_rusage_to_output_or_file() {
    let ctx = TestContext::new("vfs");
    let dir = context(&ctx, "FROM scratch\nLABEL a=b\nLABEL c=d\n");
    let d = dir.display().to_string();
    let r = ctx.hod(["bud", "--log-rusage", "-t", "x", &d]).success();
    let lines: Vec<&str> = r.stdout.lines().collect();
    let n = lines.iter().filter(|l| is_rusage_line(l)).count();
    // Before STEP 2 and STEP 3, and at the end.
    assert_eq!(n, 3, "{}", r.dump());
    let step2 = lines
        .iter()
        .position(|l| l.starts_with("STEP 2/3"))
        .unwrap();
    assert!(is_rusage_line(lines[step2 - 1]), "{}", r.dump());

    let log = ctx.path("rusage.log");
    fs::write(&log, "old content\n").unwrap();
    let l = log.display().to_string();
    let r = ctx
        .hod(["bud", "--log-rusage", "--rusage-logfile", &l, "-t", "x", &d])
        .success();
    assert!(!r.stdout.lines().any(is_rusage_line), "{}", r.dump());
    let text = fs::read_to_string(&log).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.lines().all(is_rusage_line), "{text}");
    // --quiet: nothing.
    let r = ctx
        .hod(["bud", "-q", "--log-rusage", "-t", "x", &d])
        .success();
    assert!(!r.stdout.lines().any(is_rusage_line), "{}", r.dump());
}

/// bud.bats "bud with FROM AS construct" (with and without --layers): a stage built FROM an
/// earlier one keeps its environment, and `{{.Docker.ContainerConfig.Env}}` shows it for an
/// OCI image as buildah's does (container_config is the config).
#[test]
fn from_as_stage_env_in_container_config() {
    let ctx = TestContext::new("vfs");
    let dir = context(
        &ctx,
        "FROM scratch AS base\nENV LOCAL=/1\nLABEL a=b\n\nFROM base\nLABEL c=d\n",
    );
    let d = dir.display().to_string();
    for layers in ["--layers=false", "--layers"] {
        ctx.ok(["bud", layers, "-t", "test1", &d]);
        let env = ctx.ok([
            "inspect",
            "--format",
            "{{.Docker.ContainerConfig.Env}}|{{.Docker.Config.Env}}",
            "--type",
            "image",
            "test1",
        ]);
        let (cc, c) = env.split_once('|').unwrap();
        assert!(cc.contains("LOCAL=/1"), "{env}");
        assert_eq!(cc, c);
    }
}

/// bud.bats "bud with --build-arg": off a terminal the warning for an ARG without a value is
/// logrus's text line, its message quoted (`missing \"foo\" build argument. Try adding`);
/// `--build-arg foo` alone takes hod's environment.
#[test]
fn missing_build_arg_warning_is_logrus_text() {
    let ctx = TestContext::new("vfs");
    let dir = context(&ctx, "FROM scratch\nARG foo\nLABEL x=$foo\n");
    let d = dir.display().to_string();
    let r = ctx
        .hod(["--log-level", "warn", "bud", "-t", "a", &d])
        .success();
    assert!(
        r.stderr.contains(
            r#"level=warning msg="missing \"foo\" build argument. Try adding \"--build-arg foo=<VALUE>\" to the command line""#
        ),
        "{}",
        r.dump()
    );
    let mut cmd = ctx.cmd(["bud", "--build-arg", "foo", "-t", "b", &d]);
    cmd.env("foo", "from-env");
    let r = common::run_cmd(cmd).success();
    assert!(!r.stderr.contains("missing"), "{}", r.dump());
    let label = ctx.ok([
        "inspect",
        "--format",
        "{{index .Docker.Config.Labels \"x\"}}",
        "b",
    ]);
    assert_eq!(label, "from-env");
}

/// bud.bats "build-multiple-parse": a bad second -f file is named as buildah names it,
/// with imagebuilder's wording for a bad escape directive.
#[test]
fn bad_additional_containerfile_is_named() {
    let ctx = TestContext::new("vfs");
    let dir = context(&ctx, "FROM scratch\n");
    let second = ctx.path("Dockerfile2");
    fs::write(&second, "# escape=|\\nFROM alpine\n").unwrap();
    let d = dir.display().to_string();
    let f1 = dir.join("Containerfile").display().to_string();
    let f2 = second.display().to_string();
    let r = ctx.hod(["bud", "-f", &f1, "-f", &f2, &d]).code_is(125);
    assert!(
        r.stderr.contains(&format!(
            "parsing additional Dockerfile {f2}: invalid ESCAPE '|\\nFROM alpine'. Must be ` or \\"
        )),
        "{}",
        r.dump()
    );
}

/// Run `cmd` with `input` on its stdin; also returns what of `input` it left unread.
fn with_stdin(mut cmd: std::process::Command, input: &str) -> (common::Run, String) {
    use std::io::{Read, Seek, Write};
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(input.as_bytes()).unwrap();
    f.rewind().unwrap();
    let mut rest = f.try_clone().unwrap();
    let cmdline = format!("{cmd:?}");
    let out = cmd.stdin(f).output().unwrap();
    let mut left = String::new();
    rest.read_to_string(&mut left).unwrap();
    let r = common::Run {
        cmdline,
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    (r, left)
}

/// bud.bats "bud test no --stdin" and "bud does not gobble stdin": RUN reads /dev/null
/// unless --stdin, and hod leaves its stdin unread for whatever comes after it.
#[test]
fn run_reads_stdin_only_with_the_flag() {
    if !common::is_root() {
        return common::skipped("run_reads_stdin_only_with_the_flag", "needs root");
    }
    let ctx = TestContext::new("vfs");
    ctx.seed_busybox("busybox");
    let dir = context(
        &ctx,
        "FROM busybox\nRUN read -t 1 x && echo test got \\<$x\\>\n",
    );
    let d = dir.display().to_string();
    let (r, left) = with_stdin(ctx.cmd(["bud", "--pull=never", "-t", "a", &d]), "input\n");
    assert_eq!(r.code, Some(1), "{}", r.dump());
    assert_eq!(left, "input\n", "stdin was read: {}", r.dump());
    let (r, _) = with_stdin(
        ctx.cmd(["bud", "--pull=never", "--stdin", "-t", "b", &d]),
        "input\n",
    );
    assert!(r.stdout.contains("test got <input>"), "{}", r.dump());
}

/// bud.bats "build test --retry and --retry-delay" and "build verify cache behaviour with
/// --cache-ttl=0s": buildah's debug lines for those settings.
#[test]
fn retry_and_cache_ttl_debug_lines() {
    let ctx = TestContext::new("vfs");
    let dir = context(&ctx, "FROM scratch\nLABEL a=b\n");
    let d = dir.display().to_string();
    let r = ctx
        .hod([
            "--log-level",
            "debug",
            "bud",
            "--retry",
            "4",
            "--retry-delay",
            "5s",
            "--cache-ttl=0",
            "--layers",
            &d,
        ])
        .success();
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(
        all.contains("Setting MaxPullPushRetries to 4 and PullPushRetryDelay to 5s"),
        "{}",
        r.dump()
    );
    assert!(all.contains("Setting --no-cache=true"), "{}", r.dump());
    assert!(!all.contains("Using cache"), "{}", r.dump());
}

/// bud.bats "bud with --pull-always": --pull-always (and --pull=always) pulls a base the
/// store already has ("Trying to pull …"); the default uses the store's.
#[test]
fn pull_always_pulls_a_base_the_store_has() {
    use crate::common::registry::{Mode, TestRegistry};
    if !common::require("bud --pull-always", &["skopeo", "docker-registry"]) || common::is_buildah()
    {
        return;
    }
    let Some(reg) = TestRegistry::start(Mode::Plain) else {
        return;
    };
    let ctx = TestContext::new("vfs");
    ctx.seed_busybox("busybox");
    let image = format!("{}/hod/base:1", reg.host);
    ctx.ok([
        "push",
        "--tls-verify=false",
        "busybox",
        &format!("docker://{image}"),
    ]);
    ctx.ok(["pull", "--tls-verify=false", &image]);
    let dir = context(&ctx, &format!("FROM {image}\nLABEL a=b\n"));
    let d = dir.display().to_string();
    let trying = format!("Trying to pull {image}...");
    for flag in ["--pull-always", "--pull=always"] {
        let r = ctx
            .hod(["bud", flag, "--tls-verify=false", "-t", "x", &d])
            .success();
        assert!(
            r.stderr.contains(&trying) || r.stdout.contains(&trying),
            "{}",
            r.dump()
        );
    }
    let r = ctx
        .hod(["bud", "--tls-verify=false", "-t", "x", &d])
        .success();
    assert!(
        !r.stderr.contains(&trying) && !r.stdout.contains(&trying),
        "{}",
        r.dump()
    );
}

/// bud.bats "bud-from-scratch-untagged": a container made from an image ID commits an image
/// with the base's digest annotation but no base name.
#[test]
fn base_given_by_id_has_no_base_name() {
    let ctx = TestContext::new("vfs");
    let dir = context(&ctx, "FROM scratch\nLABEL a=b\n");
    let iidfile = ctx.path("iid");
    let d = dir.display().to_string();
    ctx.ok(["bud", "--iidfile", &iidfile.display().to_string(), &d]);
    let iid = fs::read_to_string(&iidfile).unwrap();
    assert!(iid.starts_with("sha256:") && iid.len() == 71, "{iid}");
    let ctr = ctx.ok(["from", &iid]);
    ctx.ok(["commit", &ctr, "new-image"]);
    let from_digest = ctx.ok(["inspect", "--format", "{{.FromImageDigest}}", &iid]);
    let ann = |k: &str| {
        ctx.ok([
            "inspect",
            "--format",
            &format!("{{{{index .ImageAnnotations \"org.opencontainers.image.base.{k}\" }}}}"),
            "new-image",
        ])
    };
    assert_eq!(ann("digest"), from_digest);
    assert_eq!(ann("name"), "");
}

/// bud.bats "bud with --layers and --build-args: override ARG with ENV and image must be
/// cached": a build arg that ENV overrides is no part of the cache key, so another value of
/// it is a hit on every step.
#[test]
fn arg_overridden_by_env_does_not_miss_the_cache() {
    let ctx = TestContext::new("vfs");
    let dir = context(&ctx, "FROM scratch\nARG FOO\nENV FOO=bat\nLABEL x=$FOO\n");
    let d = dir.display().to_string();
    let one = ctx.ok(["bud", "--layers", "--build-arg=FOO=1", "-t", "a", &d]);
    let two = ctx.ok(["bud", "--layers", "--build-arg=FOO=12", "-t", "a", &d]);
    assert_eq!(one.lines().last(), two.lines().last(), "{one}\n---\n{two}");
    // Without the ENV the value is the step's input: a miss.
    let dir2 = ctx.path("ctx2");
    fs::create_dir_all(&dir2).unwrap();
    fs::write(
        dir2.join("Containerfile"),
        "FROM scratch\nARG FOO\nLABEL x=$FOO\n",
    )
    .unwrap();
    let d2 = dir2.display().to_string();
    let one = ctx.ok(["bud", "--layers", "--build-arg=FOO=1", "-t", "b", &d2]);
    let two = ctx.ok(["bud", "--layers", "--build-arg=FOO=12", "-t", "b", &d2]);
    assert_ne!(one.lines().last(), two.lines().last());
}

/// bud.bats "bud with --add-host": a failing step is named with its keyword upper-cased, as
/// imagebuilder's message has it (`run grep …` fails as `STEP "RUN grep …"`).
#[test]
fn failing_step_keyword_is_upper_cased() {
    let ctx = TestContext::new("vfs");
    let dir = context(&ctx, "from scratch\nrun true\n");
    let r = ctx.hod(["bud", &dir.display().to_string()]);
    assert_ne!(r.code, Some(0), "{}", r.dump());
    assert!(
        r.stderr.contains("error building at STEP \"RUN true\""),
        "{}",
        r.dump()
    );
}

/// bud.bats "bud-with-mount-cache-from-like-buildkit" (and its multiple-from and relative
/// source variants), "bud-with-mount-bind-from-with-empty-from-like-buildkit": a cache mount
/// `from=STAGE` shows that stage's tree below `source`; an empty `from=` is buildah's error.
#[test]
fn cache_mount_from_a_stage() {
    if !common::is_root() {
        return common::skipped("cache_mount_from_a_stage", "needs root");
    }
    let ctx = TestContext::new("vfs");
    ctx.seed_busybox("busybox");
    let dir = context(
        &ctx,
        "FROM busybox AS builder\n\
         RUN mkdir -p /subdir/subdir2 && echo hello > /hello && echo hello2 > /subdir/subdir2/hello2\n\
         FROM busybox AS b2\n\
         RUN echo other > /other\n\
         FROM busybox\n\
         RUN --mount=type=cache,from=builder,target=/test --mount=type=cache,from=b2,target=/t3 cat /test/hello /t3/other\n\
         RUN --mount=type=cache,id=2,source=/subdir/subdir2,from=builder,target=/t2 cat /t2/hello2\n",
    );
    let d = dir.display().to_string();
    let r = ctx.hod(["bud", "--pull=never", "-t", "c", &d]).success();
    for want in ["hello\n", "other\n", "hello2\n"] {
        assert!(r.stdout.contains(want), "{want:?}: {}", r.dump());
    }
    let dir2 = ctx.path("ctx2");
    fs::create_dir_all(&dir2).unwrap();
    fs::write(
        dir2.join("Containerfile"),
        "FROM busybox\nRUN --mount=type=bind,source=.,from=,target=/test cat /test/hello\n",
    )
    .unwrap();
    let r = ctx
        .hod(["bud", "--pull=never", &dir2.display().to_string()])
        .code_is(125);
    assert!(
        r.stderr.contains("from points to an empty value"),
        "{}",
        r.dump()
    );
}

/// bud.bats "build-with-inline-platform" (and its two variants): a RUN in an image of another
/// architecture is tried, not refused up front; a binary the kernel cannot run fails with
/// its "exec format error", and hod names the missing emulator.
#[test]
fn foreign_binary_run_names_the_missing_emulator() {
    if !common::is_root() {
        return common::skipped(
            "foreign_binary_run_names_the_missing_emulator",
            "needs root",
        );
    }
    let emulated = fs::read_dir("/proc/sys/fs/binfmt_misc")
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("qemu-"))
        })
        .unwrap_or(false);
    if emulated || std::env::consts::ARCH != "x86_64" {
        return common::skipped(
            "foreign_binary_run_names_the_missing_emulator",
            "an x86_64 host without a qemu binfmt_misc handler",
        );
    }
    let ctx = TestContext::new("vfs");
    let dir = context(
        &ctx,
        "FROM --platform=linux/arm64 scratch\nCOPY sh /bin/sh\nRUN true\n",
    );
    // An ELF header for aarch64 (e_machine 183): the amd64 kernel refuses it with ENOEXEC.
    let mut elf = vec![0u8; 64];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[4] = 2; // 64-bit
    elf[5] = 1; // little endian
    elf[6] = 1; // version
    elf[16] = 2; // ET_EXEC
    elf[18] = 183; // EM_AARCH64
    elf[20] = 1;
    fs::write(dir.join("sh"), &elf).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir.join("sh"), fs::Permissions::from_mode(0o755)).unwrap();
    let r = ctx.hod(["bud", "-t", "foreign", &dir.display().to_string()]);
    assert_ne!(r.code, Some(0), "{}", r.dump());
    assert!(
        r.stderr.to_lowercase().contains("format error") && r.stderr.contains("needs emulation"),
        "{}",
        r.dump()
    );
}

/// bud.bats "bud-multi-stage-nocache-nocommit": a two-stage build whose first stage is only
/// copied from creates one image, which --log-level=debug shows as containers/image does.
#[test]
fn multi_stage_build_creates_one_image() {
    let ctx = TestContext::new("vfs");
    let dir = context(
        &ctx,
        "FROM scratch AS myname\nCOPY Containerfile /\n\nFROM scratch\nCOPY --from=myname /Containerfile /c\n",
    );
    let r = ctx
        .hod(["--log-level=debug", "bud", &dir.display().to_string()])
        .success();
    let all = format!("{}{}", r.stdout, r.stderr);
    assert_eq!(
        all.lines()
            .filter(|l| l.contains("created new image ID"))
            .count(),
        1,
        "{}",
        r.dump()
    );
}

/// bud.bats "build test optimal cache working for COPY/ADD instruction": a rebuild finds the
/// COPY's and ADD's cached images before copying, and --log-level debug says so.
#[test]
fn copy_and_add_hit_the_cache_first() {
    let ctx = TestContext::new("vfs");
    let dir = context(
        &ctx,
        "FROM scratch\nCOPY Containerfile .\nADD Containerfile /b\n",
    );
    let d = dir.display().to_string();
    ctx.ok(["bud", "--layers", "-t", "source", &d]);
    let r = ctx
        .hod([
            "--log-level",
            "debug",
            "bud",
            "--layers",
            "-t",
            "source",
            &d,
        ])
        .success();
    let all = format!("{}{}", r.stdout, r.stderr);
    assert_eq!(
        all.matches("Found a cache hit in the first iteration with id ")
            .count(),
        2,
        "{}",
        r.dump()
    );
}

/// bud.bats "bud timestamp": `{{ .History }}` prints the entries as Go prints buildah's
/// structs, the time as `time.Time.String()`.
#[test]
fn history_template_prints_go_structs() {
    let ctx = TestContext::new("vfs");
    let dir = context(&ctx, "FROM scratch\nCOPY Containerfile /tmpfile\n");
    ctx.ok([
        "bud",
        "--timestamp=40",
        "-t",
        "timestamp",
        &dir.display().to_string(),
    ]);
    let h = ctx.ok(["inspect", "--format", "{{ .History }}", "timestamp"]);
    assert!(h.starts_with("[{1970-01-01 00:00:40 +0000 UTC "), "{h}");
    assert!(h.ends_with(" false}]"), "{h}");
}

/// bud.bats "build-test skipping unwanted stages with FROM and conflict with additional
/// build context": `COPY --from=one` with `--build-context one=DIR` copies from DIR, so the
/// stage named `one` is not needed and not built.
#[test]
fn build_context_named_like_a_stage_skips_the_stage() {
    let ctx = TestContext::new("vfs");
    let dir = context(
        &ctx,
        "FROM scratch AS one\nLABEL unwanted=stage\n\nFROM scratch\nCOPY --from=one somefile /somefile\n",
    );
    let other = ctx.path("other");
    fs::create_dir_all(&other).unwrap();
    fs::write(other.join("somefile"), "something\n").unwrap();
    let r = ctx
        .hod([
            "bud",
            "--build-context",
            &format!("one={}", other.display()),
            "-t",
            "source",
            &dir.display().to_string(),
        ])
        .success();
    assert!(!r.stdout.contains("unwanted"), "{}", r.dump());
    let ctr = ctx.ok(["from", "source"]);
    let mnt = PathBuf::from(ctx.ok(["mount", &ctr]));
    assert_eq!(
        fs::read_to_string(mnt.join("somefile")).unwrap(),
        "something\n"
    );
    ctx.ok(["umount", &ctr]);
}

/// bud.bats "buildah-bud-policy": `-t dir:PATH` (a tag with a transport) writes the image
/// there, as buildah's output does, also when --layers finds every step cached.
#[test]
fn tag_with_a_transport_writes_there() {
    let ctx = TestContext::new("vfs");
    let dir = context(&ctx, "FROM scratch\nCOPY Containerfile /c\n");
    let d = dir.display().to_string();
    for (i, extra) in [
        [].as_slice(),
        ["--layers"].as_slice(),
        ["--layers"].as_slice(),
    ]
    .iter()
    .enumerate()
    {
        let out = ctx.path(&format!("out{i}"));
        let mut a = vec!["bud"];
        a.extend_from_slice(extra);
        let t = format!("dir:{}", out.display());
        a.extend(["-t", &t, &d]);
        ctx.ok(a);
        assert!(out.join("manifest.json").is_file(), "{extra:?}");
    }
}

/// bud.bats "bud with additional directory of devices": `--device DIR:/dev/fuse` adds each
/// device node of DIR below /dev/fuse.
#[test]
fn device_directory_adds_its_nodes() {
    if !common::is_root() {
        return common::skipped("device_directory_adds_its_nodes", "needs root");
    }
    let ctx = TestContext::new("vfs");
    ctx.seed_busybox("busybox");
    let devs = ctx.path("devs");
    fs::create_dir_all(&devs).unwrap();
    let st = std::process::Command::new("mknod")
        .arg(devs.join("null"))
        .args(["c", "1", "3"])
        .status()
        .unwrap();
    assert!(st.success());
    fs::write(devs.join("plain"), "not a device").unwrap();
    let dir = context(
        &ctx,
        "FROM busybox\nRUN ls /dev/fuse && echo x > /dev/fuse/null\n",
    );
    let r = ctx
        .hod([
            "bud",
            "--pull=never",
            "--device",
            &format!("{}:/dev/fuse", devs.display()),
            &dir.display().to_string(),
        ])
        .success();
    assert!(r.stdout.lines().any(|l| l == "null"), "{}", r.dump());
    assert!(!r.stdout.contains("plain"), "{}", r.dump());
}

/// bud.bats "build-with-inline-platform-amd-but-tag-as-arm" and "…-rely-on-defaultbuiltinargs":
/// a base pulled for the host (`FROM --platform=linux/amd64`) built with --platform
/// linux/arm64 gives an arm64 image, as buildah's commits set the build's platform.
#[test]
fn build_platform_names_the_image_platform() {
    if std::env::consts::ARCH != "x86_64" {
        return common::skipped(
            "build_platform_names_the_image_platform",
            "needs an x86_64 host",
        );
    }
    let ctx = TestContext::new("vfs");
    ctx.seed_busybox("busybox");
    let dir = context(&ctx, "FROM --platform=linux/amd64 busybox\nLABEL a=b\n");
    let d = dir.display().to_string();
    ctx.ok([
        "bud",
        "--pull=never",
        "--platform",
        "linux/arm64",
        "-t",
        "arm",
        &d,
    ]);
    let arch = ctx.ok(["inspect", "--format", "{{ .OCIv1.Architecture }}", "arm"]);
    assert_eq!(arch, "arm64");
    // Without --platform the base's platform stays.
    ctx.ok(["bud", "--pull=never", "-t", "host", &d]);
    let arch = ctx.ok(["inspect", "--format", "{{ .OCIv1.Architecture }}", "host"]);
    assert_eq!(arch, "amd64");
}

/// bud.bats "bud-github-context-from-commit": a git context (served by `git daemon` on
/// 127.0.0.1) builds at the commit `#REF` names; at a ref without a Containerfile the error
/// is buildah's DiscoverContainerfile wording.
#[test]
fn git_context_at_a_commit() {
    if !common::have("git") {
        return common::skipped("git_context_at_a_commit", "needs git");
    }
    let ctx = TestContext::new("vfs");
    let base = ctx.path("git");
    let repo = base.join("repo");
    fs::create_dir_all(&repo).unwrap();
    let git = |args: &[&str]| {
        let st = std::process::Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(&repo)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap();
        assert!(st.status.success(), "git {args:?}: {st:?}");
        String::from_utf8_lossy(&st.stdout).trim().to_string()
    };
    git(&["init", "-q"]);
    fs::write(repo.join("Dockerfile"), "FROM scratch\nLABEL from=commit\n").unwrap();
    git(&["add", "Dockerfile"]);
    git(&["commit", "-q", "-m", "one"]);
    let commit = git(&["rev-parse", "HEAD"]);
    git(&["rm", "-q", "Dockerfile"]);
    git(&["commit", "-q", "-m", "two"]);
    fs::write(repo.join(".git/git-daemon-export-ok"), "").unwrap();
    let port = crate::common::registry::free_port();
    use std::os::unix::process::CommandExt;
    // Its own process group: `git daemon` runs git-daemon as a child, stopped with it.
    let mut daemon = std::process::Command::new("git")
        .process_group(0)
        .args([
            "daemon",
            "--listen=127.0.0.1",
            &format!("--port={port}"),
            &format!("--base-path={}", base.display()),
            "--export-all",
            "--reuseaddr",
            &base.display().to_string(),
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait for it to listen.
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let url = format!("git://127.0.0.1:{port}/repo");
    let ok = ctx.hod(["bud", "-t", "giturl", &format!("{url}#{commit}")]);
    let bad = ctx.hod(["bud", "-t", "giturl", &format!("{url}#main")]);
    let _ = std::process::Command::new("kill")
        .args(["--", &format!("-{}", daemon.id())])
        .status();
    let _ = daemon.wait();
    ok.success();
    let bad = bad.code_is(125);
    assert!(
        bad.stderr
            .contains("cannot find Containerfile or Dockerfile in context directory"),
        "{}",
        bad.dump()
    );
}

/// namespaces.bats "idmapping" ("bud strips suid"): COPY and ADD from the build context
/// clear the setuid and setgid bits, as buildah's stage executor does (also when a later
/// stage copies them on); `hod copy` keeps them.
#[test]
fn copy_from_the_context_clears_setid_bits() {
    use std::os::unix::fs::PermissionsExt;
    if !common::is_root() {
        common::skipped(
            "bud_flags::copy_from_the_context_clears_setid_bits",
            "needs root",
        );
        return;
    }
    let ctx = TestContext::new("vfs");
    let dir = context(
        &ctx,
        "FROM scratch AS one\nCOPY suid sgid /\n\
         FROM scratch\nCOPY --from=one / /one/\nCOPY suid /two/\n",
    );
    for (name, mode) in [("suid", 0o4755), ("sgid", 0o2750)] {
        fs::write(dir.join(name), "x").unwrap();
        fs::set_permissions(dir.join(name), fs::Permissions::from_mode(mode)).unwrap();
    }
    ctx.ok(["bud", "-q", "-t", "img", dir.to_str().unwrap()]);
    let c = ctx.ok(["from", "--quiet", "img"]);
    let mnt = PathBuf::from(ctx.ok(["mount", &c]));
    let mode = |p: &str| fs::metadata(mnt.join(p)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode("one/suid"), 0o755);
    assert_eq!(mode("one/sgid"), 0o750);
    assert_eq!(mode("two/suid"), 0o755);
    // The primitive keeps them, as buildah copy does.
    ctx.ok(["copy", &c, dir.join("suid").to_str().unwrap(), "/three"]);
    assert_eq!(mode("three"), 0o4755);
}

/// bud.bats "bud with multiple symlink pointing to itself": a VOLUME path that does not
/// resolve in the rootfs (a symbolic link loop) fails the step, naming the path; a missing
/// one is fine (and made before a RUN).
#[test]
fn a_volume_path_that_loops_fails_the_step() {
    if !common::require("volume_loop", &["skopeo"]) {
        return;
    }
    let ctx = TestContext::new("vfs");
    ctx.seed_busybox("busybox");
    let dir = context(
        &ctx,
        "FROM busybox\nVOLUME /data/sub\nRUN test -d /data/sub\n",
    );
    ctx.ok(["bud", "-t", "vols", dir.to_str().unwrap()]);
    // With --layers: all hits the second time (no container to look in), then a hit on
    // VOLUME and a miss after it.
    for _ in 0..2 {
        ctx.ok(["bud", "--layers", "-t", "vols", dir.to_str().unwrap()]);
    }
    let dir = context(
        &ctx,
        "FROM busybox\nVOLUME /data/sub\nRUN test -d /data/sub && echo again\n",
    );
    ctx.ok(["bud", "--layers", "-t", "vols", dir.to_str().unwrap()]);
    let dir = context(
        &ctx,
        "FROM busybox\nRUN ln -s /test-log /test-log\nVOLUME [ \"/test-log/test\" ]\n",
    );
    let r = ctx.hod(["bud", "-t", "loop", dir.to_str().unwrap()]);
    assert_eq!(r.code, Some(125), "{}", r.dump());
    assert!(
        r.stderr
            .contains("open /test-log/test: too many levels of symbolic links"),
        "{}",
        r.dump()
    );
    assert!(!ctx.ok(["images", "--format", "{{.Name}}"]).contains("loop"));
}

/// bud.bats "bud-logfile-with-split-logfile-by-platform": with --logfile F and --logsplit
/// each platform's output goes to F_<os>_<arch>, its lines prefixed with the platform;
/// --logsplit alone is refused.
#[test]
fn logsplit_writes_a_log_per_platform() {
    let ctx = TestContext::new("vfs");
    let dir = context(&ctx, "FROM scratch\nCOPY Containerfile /c\n");
    let d = dir.display().to_string();
    let log = ctx.path("logfile");
    let l = log.display().to_string();
    ctx.ok([
        "bud",
        "--logfile",
        &l,
        "--logsplit",
        "--platform",
        "linux/arm64,linux/amd64",
        &d,
    ]);
    for (file, p) in [
        ("logfile_linux_arm64", "linux/arm64"),
        ("logfile_linux_amd64", "linux/amd64"),
    ] {
        let f = ctx.path(file);
        let text = fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(
            text.contains(&format!("[{p}] STEP 1/2: FROM scratch")),
            "{text}"
        );
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&fs::metadata(&f).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600);
    }
    let r = ctx.hod(["bud", "--logsplit", &d]).code_is(125);
    assert!(
        r.stderr.contains("cannot use --logsplit without --logfile"),
        "{}",
        r.dump()
    );
}
