//! Issue 16 item 3: the seccomp filter a RUN gets, side by side with buildah 1.28.2 and runc.
//!
//! `seccomp_probe.c` (built here with `gcc -static`) makes 79 calls once each (64 syscalls
//! through x86_64's ABI, some through x32's and i386's `int 0x80` too), each in a child of its
//! own, with harmless or invalid arguments, and prints `NAME RESULT` (`OK`, the errno's name,
//! or `SIG<n>`). It runs in a busybox container under hod's embedded runtime and
//! under buildah with runc, each from its own store, for the default profile, `--cap-add
//! CAP_SYS_ADMIN`, chroot isolation, a profile file (containers/common's current one, the copy
//! hod builds in), the same with EPERM as the default errno (runc's ENOSYS stub),
//! `seccomp=unconfined`, a profile of its own (with and without CAP_SYS_ADMIN),
//! hod with `--runtime runc`, and a `bud` RUN step. Every
//! answer must be the same; [`EXCEPTIONS`] would name a deliberate difference (there is none).
//!
//! `default_profile_runs_debian_package_tools` checks that the default profile lets a Debian
//! RUN do what `apt-get install`, `dpkg -i`, `useradd`, `runuser` and a `gcc`/`make` build do.

use crate::common::{self, Run, TestContext};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Deliberate differences from buildah: (case, syscall, why). None: hod aims for identity.
const EXCEPTIONS: &[(&str, &str, &str)] = &[];

/// Compiles `src` with `gcc -static` into `dir/name`.
fn build_static(dir: &Path, name: &str, src: &str) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    fs::write(&c, src).unwrap();
    let out = dir.join(name);
    let mut cmd = Command::new("gcc");
    cmd.args(["-static", "-O1", "-Wall", "-o"])
        .arg(&out)
        .arg(&c);
    common::run_cmd(cmd).success();
    out
}

/// `NAME RESULT` lines of the probe's output (other lines, e.g. bud's STEP lines, ignored).
fn parse(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| {
            let (name, res) = l.trim().rsplit_once(' ')?;
            let ok = res == "OK"
                || res.starts_with("SIG")
                || (res.starts_with('E') && res.chars().all(|c| c.is_ascii_alphanumeric()));
            (ok && !name.contains(' ')).then(|| (name.to_string(), res.to_string()))
        })
        .collect()
}

/// One binary's store, seeded with busybox as `localhost/bb:latest`.
struct Side {
    ctx: TestContext,
    probe: PathBuf,
}

impl Side {
    fn new(bin: PathBuf, probe: &Path) -> Side {
        let ctx = TestContext::with_bin("vfs", bin);
        let layout = common::busybox_layout();
        let r = ctx.hod(["pull", "-q", &format!("oci:{}:latest", layout.display())]);
        let r = r.success();
        ctx.ok([
            "tag",
            r.out().lines().last().unwrap(),
            "localhost/bb:latest",
        ]);
        Side {
            ctx,
            probe: probe.to_path_buf(),
        }
    }

    fn name(&self) -> String {
        self.ctx
            .bin
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    /// A busybox container made with `from FROM_ARGS`, the probe copied in.
    fn container(&self, from_args: &[&str]) -> String {
        let mut a = vec!["from", "--pull=never"];
        a.extend(from_args);
        a.push("localhost/bb:latest");
        let ctr = self.ctx.ok(&a);
        let ctr = ctr.lines().last().unwrap().to_string();
        self.ctx
            .ok(["copy", &ctr, &self.probe.display().to_string(), "/probe"]);
        ctr
    }

    fn run(&self, ctr: &str, run_args: &[&str]) -> Vec<(String, String)> {
        let mut a = vec!["run"];
        a.extend(run_args);
        a.extend([ctr, "--", "/probe"]);
        let r = self.ctx.hod(&a);
        common::assert_no_panic(&r);
        let r = r.success();
        parse(&r.stdout)
    }

    /// The probe as a `RUN` step of `bud`.
    fn bud(&self) -> Vec<(String, String)> {
        let dir = self.ctx.path("bud-context");
        fs::create_dir_all(&dir).unwrap();
        fs::copy(&self.probe, dir.join("probe")).unwrap();
        fs::write(
            dir.join("Containerfile"),
            "FROM localhost/bb:latest\nCOPY probe /probe\nRUN /probe\n",
        )
        .unwrap();
        let r: Run = self.ctx.hod([
            "bud",
            "--pull=never",
            "--layers=false",
            "-t",
            "localhost/probed",
            &dir.display().to_string(),
        ]);
        common::assert_no_panic(&r);
        let r = r.success();
        parse(&r.stdout)
    }
}

/// Asserts `hod` and `buildah` answered alike, apart from [`EXCEPTIONS`].
fn same(case: &str, hod: &[(String, String)], buildah: &[(String, String)]) {
    assert!(
        hod.len() >= 40,
        "{case}: only {} answers from hod: {hod:?}",
        hod.len()
    );
    let names = |v: &[(String, String)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(hod),
        names(buildah),
        "{case}: not the same syscalls probed"
    );
    let mut table = String::new();
    let mut diffs = Vec::new();
    for ((n, h), (_, b)) in hod.iter().zip(buildah) {
        let excepted = EXCEPTIONS.iter().any(|(c, s, _)| *c == case && s == n);
        let mark = if h == b {
            ""
        } else if excepted {
            "  (named exception)"
        } else {
            diffs.push(n.clone());
            "  <<< differs"
        };
        table.push_str(&format!("{n:<34} {h:<12} {b:<12}{mark}\n"));
    }
    eprintln!("== {case}: syscall / hod / buildah+runc\n{table}");
    assert!(
        diffs.is_empty(),
        "{case}: hod and buildah differ on {diffs:?}\n{table}"
    );
}

fn answer<'a>(v: &'a [(String, String)], name: &str) -> &'a str {
    v.iter()
        .find(|(n, _)| n == name)
        .map(|(_, r)| r.as_str())
        .unwrap_or_else(|| panic!("{name} not probed"))
}

#[test]
fn seccomp_probe_matches_buildah_and_runc() {
    let test = "seccomp_probe_matches_buildah_and_runc";
    if !common::require(test, &["gcc", "buildah", "runc"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let probe = build_static(tmp.path(), "probe", include_str!("seccomp_probe.c"));
    let hod = Side::new(common::hod_bin(), &probe);
    let buildah = Side::new(PathBuf::from("buildah"), &probe);
    assert_eq!(buildah.name(), "buildah");
    let profile = common::repo_dir().join("builder/src/run/seccomp.json");
    let profile_opt = format!("seccomp={}", profile.display());
    // A profile of our own in the same format: errno names and numbers, caps and arch
    // conditions, an argument condition, a kill.
    let custom = tmp.path().join("custom.json");
    fs::write(&custom, CUSTOM_PROFILE).unwrap();
    let custom_opt = format!("seccomp={}", custom.display());
    // containers/common's profile with EPERM as the default errno: runc answers ENOSYS above
    // the highest syscall the profile names (its patchbpf stub), and so must hod.
    let mut eperm: serde_json::Value =
        serde_json::from_slice(&fs::read(&profile).unwrap()).unwrap();
    let obj = eperm.as_object_mut().unwrap();
    obj.remove("defaultErrnoRet");
    obj.remove("defaultErrno");
    let eperm_path = tmp.path().join("eperm.json");
    fs::write(&eperm_path, serde_json::to_vec(&eperm).unwrap()).unwrap();
    let eperm_opt = format!("seccomp={}", eperm_path.display());

    // (case, `from` args, `run` args for both, extra `run` args for hod only)
    type Case<'a> = (&'a str, &'a [&'a str], &'a [&'a str], &'a [&'a str]);
    let cases: &[Case] = &[
        ("default", &[], &[], &[]),
        (
            "cap-add CAP_SYS_ADMIN",
            &[],
            &["--cap-add", "CAP_SYS_ADMIN"],
            &[],
        ),
        ("isolation chroot", &[], &["--isolation", "chroot"], &[]),
        ("hod --runtime runc", &[], &[], &["--runtime", "runc"]),
        ("profile file", &["--security-opt", &profile_opt], &[], &[]),
        (
            "unconfined",
            &["--security-opt", "seccomp=unconfined"],
            &[],
            &[],
        ),
        ("custom profile", &["--security-opt", &custom_opt], &[], &[]),
        (
            "custom profile, CAP_SYS_ADMIN",
            &["--security-opt", &custom_opt],
            &["--cap-add", "CAP_SYS_ADMIN"],
            &[],
        ),
        ("EPERM default", &["--security-opt", &eperm_opt], &[], &[]),
    ];
    let mut results = Vec::new();
    for (case, from, run, hod_only) in cases {
        let hc = hod.container(from);
        let bc = buildah.container(from);
        let hod_args: Vec<&str> = run.iter().chain(hod_only.iter()).copied().collect();
        let h = hod.run(&hc, &hod_args);
        let b = buildah.run(&bc, run);
        same(case, &h, &b);
        results.push((*case, h));
    }
    same("bud RUN step", &hod.bud(), &buildah.bud());

    // The answers show a filter at work (both could agree on having none).
    let default = &results[0].1;
    for (name, want) in [
        ("add_key", "ENOSYS"),
        ("request_key", "ENOSYS"),
        ("io_uring_setup", "ENOSYS"),
        ("personality(ADDR_NO_RANDOMIZE)", "ENOSYS"),
        ("kexec_load", "EPERM"),
        ("bpf", "EPERM"),
        ("socket(AF_NETLINK,NETLINK_AUDIT)", "EINVAL"),
        ("getpid", "OK"),
        ("personality(0xffffffff)", "OK"),
        ("keyctl", "EOPNOTSUPP"),
        ("syscall(1000)", "ENOSYS"),
        ("i386:getpid", "OK"),
        ("i386:add_key", "ENOSYS"),
        ("i386:kexec_load", "EPERM"),
        ("i386:personality(0x0040000)", "ENOSYS"),
    ] {
        assert_eq!(answer(default, name), want, "default profile: {name}");
    }
    // CAP_SYS_ADMIN opens bpf (the kernel then rejects the bad command) but not kexec.
    let admin = &results[1].1;
    assert_eq!(answer(admin, "bpf"), "EINVAL");
    assert_eq!(answer(admin, "kexec_load"), "EPERM");
    assert_eq!(answer(admin, "sethostname"), "EINVAL");
    // Unconfined: add_key reaches the kernel.
    let unconfined = &results[5].1;
    assert_ne!(answer(unconfined, "add_key"), "ENOSYS");
    assert_ne!(
        answer(unconfined, "socket(AF_NETLINK,NETLINK_AUDIT)"),
        "EINVAL"
    );
    // The custom profile's rules, as written.
    let custom = &results[6].1;
    assert_eq!(answer(custom, "keyctl"), "EACCES");
    assert_ne!(
        answer(custom, "add_key"),
        "EIO",
        "includes.caps without the capability"
    );
    assert_ne!(
        answer(custom, "request_key"),
        "ENXIO",
        "excludes.arches on amd64"
    );
    assert_eq!(answer(custom, "personality(PER_LINUX32)"), "E2BIG");
    assert_eq!(answer(custom, "personality(0xffffffff)"), "OK");
    assert_eq!(answer(custom, "mbind"), "SIG31");
    assert_eq!(
        answer(custom, "_sysctl"),
        "EROFS",
        "the default errno by name"
    );
    assert_eq!(
        answer(&results[7].1, "add_key"),
        "EIO",
        "includes.caps with it"
    );
    let eperm = &results[8].1;
    assert_eq!(answer(eperm, "add_key"), "EPERM");
    assert_eq!(
        answer(eperm, "syscall(1000)"),
        "ENOSYS",
        "runc's ENOSYS stub"
    );
    assert_eq!(
        answer(eperm, "i386:syscall(1000)"),
        "ENOSYS",
        "runc's ENOSYS stub"
    );
}

const CUSTOM_PROFILE: &str = r#"{
    "defaultAction": "SCMP_ACT_ALLOW",
    "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
    "syscalls": [
        {"names": ["keyctl"], "action": "SCMP_ACT_ERRNO", "errno": "EACCES"},
        {"names": ["add_key"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5, "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["request_key"], "action": "SCMP_ACT_ERRNO", "errnoRet": 6, "excludes": {"arches": ["amd64", "arm64"]}},
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 7,
         "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
        {"name": "mbind", "action": "SCMP_ACT_KILL_PROCESS", "args": null},
        {"names": ["_sysctl"], "action": "SCMP_ACT_ERRNO", "errno": "EROFS", "comment": "by name"}
    ]
}"#;

const HELLO_C: &str = "#include <stdio.h>\nint main(void) { puts(\"built and ran\"); return 0; }\n";

fn deb(dir: &Path, name: &str, postinst: Option<&str>) -> PathBuf {
    let root = dir.join(name);
    fs::create_dir_all(root.join("DEBIAN")).unwrap();
    fs::create_dir_all(root.join(format!("usr/share/{name}"))).unwrap();
    fs::write(
        root.join("DEBIAN/control"),
        format!("Package: {name}\nVersion: 1.0\nArchitecture: all\nMaintainer: hod <hod@localhost>\nDescription: seccomp test package\n"),
    )
    .unwrap();
    if let Some(script) = postinst {
        use std::os::unix::fs::PermissionsExt;
        let p = root.join("DEBIAN/postinst");
        fs::write(&p, script).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::write(root.join(format!("usr/share/{name}/installed")), "yes\n").unwrap();
    let out = dir.join(format!("{name}.deb"));
    let mut c = Command::new("dpkg-deb");
    c.args(["--root-owner-group", "-b"]).arg(&root).arg(&out);
    common::run_cmd(c).success();
    out
}

#[test]
fn default_profile_runs_debian_package_tools() {
    let test = "default_profile_runs_debian_package_tools";
    if !common::require(test, &["gcc", "make", "dpkg-deb"]) {
        return;
    }
    let Some(layout) = common::debian_layout() else {
        return;
    };
    let ctx = TestContext::new("vfs");
    let tmp = tempfile::tempdir().unwrap();
    let apt_deb = deb(
        tmp.path(),
        "hod-seccomp-apt",
        Some("#!/bin/sh\nset -e\nuseradd --system --no-create-home hodsvc\n"),
    );
    let dpkg_deb = deb(tmp.path(), "hod-seccomp-dpkg", None);
    fs::write(tmp.path().join("hello.c"), HELLO_C).unwrap();
    fs::write(
        tmp.path().join("Makefile"),
        "hello: hello.o\n\tgcc -o $@ $^\nhello.o: hello.c\n\tgcc -O2 -c -o $@ $<\n",
    )
    .unwrap();
    let ctr = ctx.ok(["from", &format!("oci:{}:latest", layout.display())]);
    let ctr = ctr.lines().last().unwrap().to_string();
    for f in [&apt_deb, &dpkg_deb] {
        ctx.ok(["copy", &ctr, &f.display().to_string(), "/tmp/"]);
    }
    ctx.ok([
        "copy",
        &ctr,
        &tmp.path().join("hello.c").display().to_string(),
        "/src/",
    ]);
    ctx.ok([
        "copy",
        &ctr,
        &tmp.path().join("Makefile").display().to_string(),
        "/src/",
    ]);

    // apt-get (with its _apt sandbox), dpkg, maintainer scripts, useradd, runuser.
    let r = ctx.hod([
        "run",
        "--network",
        "none",
        &ctr,
        "--",
        "sh",
        "-c",
        "set -e; grep '^Seccomp:' /proc/self/status
         apt-get install -y /tmp/hod-seccomp-apt.deb
         dpkg -i /tmp/hod-seccomp-dpkg.deb
         cat /usr/share/hod-seccomp-apt/installed /usr/share/hod-seccomp-dpkg/installed
         id hodsvc
         useradd -m -s /bin/sh tester
         runuser -u tester -- sh -c 'id; echo x > $HOME/f && cat $HOME/f'
         dpkg -r hod-seccomp-dpkg",
    ]);
    common::assert_no_panic(&r);
    let out = r.success().stdout;
    assert!(out.contains("Seccomp:\t2"), "the filter is on: {out}");
    assert!(out.contains("Setting up hod-seccomp-apt (1.0)"), "{out}");
    assert!(out.contains("Setting up hod-seccomp-dpkg (1.0)"), "{out}");
    assert!(
        out.contains("uid=999(hodsvc)") || out.contains("(hodsvc)"),
        "{out}"
    );
    assert!(out.contains("uid=1000(tester) gid=1000(tester)"), "{out}");
    assert!(out.contains("Removing hod-seccomp-dpkg (1.0)"), "{out}");

    // A gcc build with make -j (the host's toolchain, same Debian release, mounted as /usr).
    let r = ctx.hod([
        "run",
        "--network",
        "none",
        "-v",
        "/usr:/usr:ro",
        &ctr,
        "--",
        "sh",
        "-c",
        "set -e; grep '^Seccomp:' /proc/self/status; cd /src; make -j2; ./hello",
    ]);
    common::assert_no_panic(&r);
    let out = r.success().stdout;
    assert!(out.contains("Seccomp:\t2"), "the filter is on: {out}");
    assert!(out.contains("built and ran"), "{out}");
}
