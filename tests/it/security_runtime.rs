//! Issue 16, security battery items R24–S40 (docs/security.md, ../shared/design/security.md):
//! runtime, privilege, host-side processing, copy/export, registry integrity and secrets.
//!
//! One test per item, named by its ID. Each builds its hostile input here (a rootfs planted
//! through `hod mount`, an OCI layout with a crafted config or layer, a RUN script, a
//! Containerfile), runs the real hod binary and checks sentinels outside the root: the host
//! hod binary's bytes, canary files and directories, `/proc/self/status` capability fields,
//! the descriptors a RUN sees, then the exit status and the one `Error:` line.
//!
//! Items covered by existing tests are mapped in docs/security.md, not repeated.

use crate::common::{self, Run, TestContext};
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const BB: &str = "localhost/bb:latest";

/// A store holding busybox as `localhost/bb:latest` (pulled from the fixture's OCI layout).
fn store(test: &str) -> Option<TestContext> {
    if !common::require(test, &[]) {
        return None;
    }
    let ctx = TestContext::new("vfs");
    seed(&ctx);
    Some(ctx)
}

fn seed(ctx: &TestContext) {
    let layout = common::busybox_layout();
    let id = ctx.ok(["pull", "-q", &format!("oci:{}:latest", layout.display())]);
    ctx.ok(["tag", id.lines().last().unwrap(), BB]);
}

trait ContextExt {
    fn ctr(&self) -> String;
    fn sh(&self, args: &[&str], ctr: &str, script: &str) -> Run;
    fn bud(&self, containerfile: &str, args: &[&str]) -> Run;
}

impl ContextExt for TestContext {
    /// A working container of busybox.
    fn ctr(&self) -> String {
        self.ok(["from", "--pull=never", BB])
    }

    /// `hod run ARGS CTR -- sh -c SCRIPT`.
    fn sh(&self, args: &[&str], ctr: &str, script: &str) -> Run {
        let mut a: Vec<&str> = vec!["run"];
        a.extend(args);
        a.extend([ctr, "--", "sh", "-c", script]);
        let r = self.hod(&a);
        common::assert_no_panic(&r);
        r
    }

    /// `hod bud --pull=never ARGS CONTEXT` with `containerfile` in a fresh context directory.
    fn bud(&self, containerfile: &str, args: &[&str]) -> Run {
        let dir = tempfile::Builder::new()
            .prefix("ctx")
            .tempdir_in(self.dir.path())
            .unwrap();
        fs::write(dir.path().join("Containerfile"), containerfile).unwrap();
        let mut a: Vec<String> = vec!["bud".into(), "--pull=never".into()];
        a.extend(args.iter().map(|s| s.to_string()));
        a.push(dir.path().display().to_string());
        let r = self.hod(&a);
        common::assert_no_panic(&r);
        r
    }
}

/// The field `name` (e.g. `CapInh`) of a `/proc/self/status` dump.
fn status_field<'a>(out: &'a str, name: &str) -> Option<&'a str> {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(str::trim)
}

/// A directory outside every root the test uses, for canaries and victims.
fn host_dir(ctx: &TestContext, name: &str) -> PathBuf {
    let d = ctx.path(name);
    fs::create_dir_all(&d).unwrap();
    d
}

fn entries(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(d)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// An error: exit 125, no panic, one `Error:` line naming `what`.
fn rejected(r: Run, what: &str) {
    r.one_error_naming(what);
}

// ---------------------------------------------------------------------------------- R24

/// What a hostile RUN does against CVE-2019-5736: open every `/proc/*/exe` and every
/// descriptor of every visible process that is a regular file for writing, and leave a
/// session leader behind that tries again after the runtime has gone.
const R24_SCRIPT: &str = r#"
for p in /proc/[0-9]* /proc/self /proc/thread-self; do
  (printf pwned >> $p/exe) 2>/dev/null && echo "WRO""TE $p/exe"
  for f in $p/fd/*; do
    if [ -f "$f" ]; then (printf pwned >> "$f") 2>/dev/null && echo "WRO""TE $f => $(readlink "$f")"; fi
  done
done
setsid sh -c 'exec 7</proc/1/exe; sleep 2; printf pwned >> /proc/self/fd/7' >/dev/null 2>&1 &
setsid sh -c 'sleep 2; for p in /proc/[0-9]*; do printf pwned >> $p/exe; done' >/dev/null 2>&1 &
echo R24-DONE
"#;

/// R24: a RUN cannot overwrite the host's hod binary through `/proc/*/exe` or the
/// runtime's descriptors, during the run or after it (CVE-2019-5736).
#[test]
fn r24_proc_self_exe() {
    if !common::require("r24_proc_self_exe", &[]) {
        return;
    }
    // The binary under attack is a private copy, so a failure cannot break other tests.
    let t = tempfile::Builder::new()
        .prefix("hodr24.")
        .tempdir_in("/var/tmp")
        .unwrap();
    let exe = t.path().join("hod");
    fs::copy(common::hod_bin(), &exe).unwrap();
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
    let before = fs::read(&exe).unwrap();
    let ctx = TestContext::with_bin("vfs", exe.clone());
    seed(&ctx);
    let ctr = ctx.ctr();
    let cases: &[(&str, &[&str])] = &[
        ("oci", &["--isolation", "oci"]),
        ("oci+ALL", &["--isolation", "oci", "--cap-add", "ALL"]),
        ("chroot", &["--isolation", "chroot"]),
        ("oci user 1000", &["--isolation", "oci", "--user", "1000"]),
    ];
    // Under chroot isolation the RUN shares the host's PID namespace and /proc (as in
    // buildah), so files other root processes on the host hold open are reachable by
    // design; what must not be is hod's: its binary, its store and its run root.
    let ours = [
        t.path().display().to_string(),
        ctx.root.display().to_string(),
        ctx.runroot.display().to_string(),
    ];
    for (name, args) in cases {
        let r = ctx.sh(args, &ctr, R24_SCRIPT).success();
        assert!(r.stdout.contains("R24-DONE"), "{name}: {}", r.dump());
        let bad = r
            .stdout
            .lines()
            .filter(|l| l.starts_with("WROTE"))
            .any(|l| {
                !name.starts_with("chroot")
                    || l.ends_with("/exe")
                    || ours.iter().any(|o| l.contains(o))
            });
        assert!(!bad, "{name}: {}", r.dump());
    }
    let r = ctx.bud(
        &format!("FROM {BB}\nRUN <<EOF\n{R24_SCRIPT}\nEOF\n"),
        &["--isolation", "chroot"],
    );
    assert!(
        r.code == Some(0) && !r.stdout.contains("WROTE"),
        "{}",
        r.dump()
    );
    // The left-behind processes had their chance.
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        fs::read(&exe).unwrap() == before,
        "the host's hod binary was modified through /proc/*/exe"
    );
}

// ---------------------------------------------------------------------------------- R25

/// R25: a RUN sees descriptors 0–2 only, and a working directory that leaves the root
/// (a `/proc/*/fd/N` or `/proc/*/cwd` path, directly or through a link) is an error
/// (CVE-2024-21626, CVE-2016-9962).
#[test]
fn r25_fd_hygiene_and_cwd() {
    let Some(ctx) = store("r25_fd_hygiene_and_cwd") else {
        return;
    };
    let ctr = ctx.ctr();
    // The shell's own descriptors (a redirection or `$(…)` would add some of its own).
    let fds = "echo FDS-BEGIN; ls /proc/$$/fd; echo FDS-END";
    let listed = |out: &str| -> Vec<String> {
        out.split("FDS-BEGIN\n")
            .nth(1)
            .and_then(|r| r.split("FDS-END").next())
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    for iso in ["oci", "chroot"] {
        let r = ctx.sh(&["--isolation", iso], &ctr, fds).success();
        assert_eq!(listed(&r.stdout), ["0", "1", "2"], "{iso}: {}", r.dump());
        let r = ctx.bud(&format!("FROM {BB}\nRUN {fds}\n"), &["--isolation", iso]);
        assert_eq!(r.code, Some(0), "{}", r.dump());
        assert_eq!(
            listed(&r.stdout),
            ["0", "1", "2"],
            "bud {iso}: {}",
            r.dump()
        );
    }
    let mut workdirs: Vec<String> = (3..=9).map(|n| format!("/proc/self/fd/{n}")).collect();
    workdirs.extend(
        [
            "//proc/self/fd/3",
            "/proc/./self/fd/3",
            "/proc/thread-self/fd/3",
            "/proc/1/fd/3",
            "/proc/1/cwd",
            "/proc/1/root",
        ]
        .map(String::from),
    );
    for w in &workdirs {
        for iso in ["oci", "chroot"] {
            let r = ctx.bud(
                &format!("FROM {BB}\nWORKDIR {w}\nRUN echo RAN\"\"-IN-$(pwd); ls\n"),
                &["--isolation", iso],
            );
            assert!(
                r.code != Some(0) && !r.stdout.contains("RAN-IN"),
                "WORKDIR {w} ({iso}) ran:\n{}",
                r.dump()
            );
        }
    }
    // Through a link planted by an earlier step.
    let r = ctx.bud(
        &format!(
            "FROM {BB}\nRUN ln -s /proc/self/fd/3 /w\nWORKDIR /w\nRUN echo RAN\"\"-IN-$(pwd)\n"
        ),
        &[],
    );
    assert!(
        r.code != Some(0) && !r.stdout.contains("RAN-IN"),
        "{}",
        r.dump()
    );
    let r = ctx.hod(["run", "--workingdir", "/proc/self/fd/3", &ctr, "--", "pwd"]);
    rejected(r, "/proc/self/fd/3");
}

// ---------------------------------------------------------------------------------- R26

/// R26: an image's own `/dev`, `/dev/null`, `/dev/pts`, `/dev/console`, `/dev/shm`,
/// `/dev/mqueue` or `/proc` planted as links to host paths (or `/proc` as a file) are
/// refused or replaced by the runtime's own; the host paths are untouched
/// (CVE-2025-31133, CVE-2025-52565, CVE-2019-19921).
#[test]
fn r26_image_planted_dev_and_proc() {
    let Some(ctx) = store("r26_image_planted_dev_and_proc") else {
        return;
    };
    let victim = host_dir(&ctx, "victim");
    let core = fs::read("/proc/sys/kernel/core_pattern").unwrap();
    let v = victim.display().to_string();
    // (name, what to plant, refused?)
    type Plant = fn(&Path, &str);
    let cases: &[(&str, Plant, bool)] = &[
        (
            "/dev -> victim",
            |m, v| {
                fs::remove_dir_all(m.join("dev")).ok();
                symlink(v, m.join("dev")).unwrap();
            },
            true,
        ),
        (
            "/dev/null -> core_pattern",
            |m, _| {
                fs::create_dir_all(m.join("dev")).unwrap();
                symlink("/proc/sys/kernel/core_pattern", m.join("dev/null")).unwrap();
            },
            false,
        ),
        (
            "/dev/pts -> victim",
            |m, v| {
                fs::create_dir_all(m.join("dev")).unwrap();
                fs::remove_dir_all(m.join("dev/pts")).ok();
                symlink(v, m.join("dev/pts")).unwrap();
            },
            false,
        ),
        (
            "/dev/console -> victim/console",
            |m, v| {
                fs::create_dir_all(m.join("dev")).unwrap();
                symlink(format!("{v}/console"), m.join("dev/console")).unwrap();
            },
            false,
        ),
        (
            "/dev/shm -> victim",
            |m, v| {
                fs::create_dir_all(m.join("dev")).unwrap();
                fs::remove_dir_all(m.join("dev/shm")).ok();
                symlink(v, m.join("dev/shm")).unwrap();
            },
            false,
        ),
        (
            "/dev/mqueue -> victim",
            |m, v| {
                fs::create_dir_all(m.join("dev")).unwrap();
                symlink(v, m.join("dev/mqueue")).unwrap();
            },
            false,
        ),
        (
            "/proc -> victim",
            |m, v| {
                fs::remove_dir_all(m.join("proc")).ok();
                symlink(v, m.join("proc")).unwrap();
            },
            true,
        ),
        (
            "/proc is a file",
            |m, _| {
                fs::remove_dir_all(m.join("proc")).ok();
                fs::write(m.join("proc"), "x").unwrap();
            },
            true,
        ),
    ];
    let script = "echo hi > /dev/null; ls /dev /proc > /dev/null; echo R26-RAN";
    for (name, plant, refused) in cases {
        let ctr = ctx.ctr();
        let mnt = PathBuf::from(ctx.ok(["mount", &ctr]));
        plant(&mnt, &v);
        ctx.ok(["umount", &ctr]);
        for iso in ["oci", "chroot"] {
            let r = ctx.sh(&["--isolation", iso], &ctr, script);
            if *refused {
                let what = if name.starts_with("/dev") {
                    "/dev"
                } else {
                    "/proc"
                };
                assert!(
                    r.check_one_error_naming(what).is_ok(),
                    "{name} ({iso}) was not refused:\n{}",
                    r.dump()
                );
            } else {
                assert!(
                    r.stdout.contains("R26-RAN"),
                    "{name} ({iso}):\n{}",
                    r.dump()
                );
            }
            assert_eq!(
                entries(&victim),
                Vec::<String>::new(),
                "{name} ({iso}) wrote to the host"
            );
            assert_eq!(
                fs::read("/proc/sys/kernel/core_pattern").unwrap(),
                core,
                "{name} ({iso}) changed core_pattern"
            );
        }
    }
}

// ---------------------------------------------------------------------------------- R27

const R27_SCRIPT: &str = r#"
t() { if sh -c "$2" 2>/dev/null; then echo "WRITABLE $1"; else echo "denied $1"; fi; }
t sysrq 'echo h > /proc/sysrq-trigger'
t proc-sys 'cat /proc/sys/kernel/core_pattern > /proc/sys/kernel/core_pattern'
t proc-sys-vm 'cat /proc/sys/vm/overcommit_memory > /proc/sys/vm/overcommit_memory'
t acpi 'touch /proc/acpi/x'
t kcore 'head -c1 /proc/kcore | wc -c | grep -q 1'
t keys 'test -n "$(cat /proc/keys)"'
t firmware 'touch /sys/firmware/x || test -n "$(ls /sys/firmware/acpi 2>/dev/null)"'
t powercap 'test -n "$(ls /sys/devices/virtual/powercap 2>/dev/null)"'
t thermal 'touch /sys/class/thermal/x'
t sysfs 'cat /sys/kernel/mm/ksm/run > /sys/kernel/mm/ksm/run'
t cgroup-mkdir "mkdir /sys/fs/cgroup/$HODX"
t cgroup-sub "for d in /sys/fs/cgroup/*/; do mkdir \$d$HODX && exit 0; done; exit 1"
# chroot isolation binds the host's /dev (oci makes the container its own tmpfs /dev)
if [ "$HODISO" = chroot ]; then
t dev-create "touch /dev/$HODX"
t dev-mqueue "test -d /dev/mqueue && touch /dev/mqueue/$HODX"
fi
echo devnull > /dev/null && echo "dev-null ok"
echo R27-DONE
"#;

/// R27: masked and read-only paths hold under both isolations: sysrq-trigger, /proc/sys,
/// /proc/acpi, kcore, keys, /sys/firmware, powercap, thermal, sysfs, the host's cgroup
/// hierarchies and (chroot isolation binds it) the host's /dev (CVE-2018-10892,
/// CVE-2023-25809).
#[test]
fn r27_masked_and_readonly_paths() {
    let Some(ctx) = store("r27_masked_and_readonly_paths") else {
        return;
    };
    let ctr = ctx.ctr();
    let marker = format!("hodr27-{}", std::process::id());
    for iso in ["oci", "chroot"] {
        let r = ctx
            .sh(
                &[
                    "--isolation",
                    iso,
                    "--env",
                    &format!("HODX={marker}"),
                    "--env",
                    &format!("HODISO={iso}"),
                ],
                &ctr,
                R27_SCRIPT,
            )
            .success();
        assert!(r.stdout.contains("R27-DONE"), "{}", r.dump());
        assert!(r.stdout.contains("dev-null ok"), "{iso}:\n{}", r.dump());
        assert!(!r.stdout.contains("WRITABLE"), "{iso}:\n{}", r.dump());
    }
    // Nothing was created in the host's /dev (chroot isolation binds it) nor its mqueue.
    for host in [format!("/dev/{marker}"), format!("/dev/mqueue/{marker}")] {
        let planted = Path::new(&host).exists();
        let _ = fs::remove_file(&host);
        assert!(!planted, "a RUN created {host} on the host");
    }
    // The host's cgroup tree got nothing.
    let found = Command::new("find")
        .args(["/sys/fs/cgroup", "-maxdepth", "2", "-name", &marker])
        .output()
        .unwrap();
    let found = String::from_utf8_lossy(&found.stdout).into_owned();
    for d in found.lines() {
        let _ = fs::remove_dir(d);
    }
    assert!(found.trim().is_empty(), "a RUN created {found}");
}

// ---------------------------------------------------------------------------------- R28

/// R28: while one RUN keeps swapping a volume's destination parent and /etc/hosts between
/// a directory or file and links to a host victim, runs of the same container set up their
/// mounts: every target stays inside the root (CVE-2021-30465, CVE-2024-45310).
#[test]
fn r28_mount_target_races() {
    let Some(ctx) = store("r28_mount_target_races") else {
        return;
    };
    let ctr = ctx.ctr();
    let victim = host_dir(&ctx, "victim");
    let src = host_dir(&ctx, "volsrc");
    fs::write(src.join("VOLFILE"), "v").unwrap();
    let v = victim.display();
    let swapper = format!(
        "end=$(( $(date +%s) + 12 )); while [ $(date +%s) -lt $end ]; do \
         rm -rf /tmp/t; mkdir -p /tmp/t; rm -rf /tmp/t; ln -s {v} /tmp/t; \
         rm -f /etc/hosts; ln -s {v}/hosts /etc/hosts; rm -f /etc/hosts; echo 127.0.0.1 x > /etc/hosts; \
         done; echo SWAPPED"
    );
    let mut racer = ctx.cmd(["run", &ctr, "--", "sh", "-c", &swapper]);
    let racer = racer
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut runs = 0;
    let vol = format!("{}:/tmp/t/x", src.display());
    while Instant::now() < deadline {
        let r = ctx.sh(
            &["-v", &vol],
            &ctr,
            "cat /tmp/t/x/VOLFILE /etc/hosts >/dev/null",
        );
        assert!(
            r.code == Some(0) || r.code == Some(1) || r.code == Some(125),
            "{}",
            r.dump()
        );
        runs += 1;
        assert_eq!(
            entries(&victim),
            Vec::<String>::new(),
            "run {runs} wrote to the host"
        );
    }
    let out = racer.wait_with_output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("SWAPPED"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(runs >= 5, "only {runs} runs raced");
    assert_eq!(entries(&victim), Vec::<String>::new());
    assert_eq!(entries(&src), vec!["VOLFILE".to_string()]);
}

// ---------------------------------------------------------------------------------- P29

/// P29: a RUN's inheritable and ambient sets are empty with and without `--cap-add ALL`
/// and for a non-root user, whose effective and permitted sets are empty too; the bounding
/// set is the default one (CVE-2022-27651, CVE-2022-29162).
#[test]
fn p29_capabilities() {
    let Some(ctx) = store("p29_capabilities") else {
        return;
    };
    let ctr = ctx.ctr();
    let host = fs::read_to_string("/proc/self/status").unwrap();
    let all_bnd = status_field(&host, "CapBnd").unwrap().to_string();
    let probe = "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb):' /proc/self/status";
    // (args, bounding, effective)
    let cases: Vec<(Vec<&str>, &str, Option<&str>)> = vec![
        (vec![], "00000000800405fb", Some("00000000800405fb")),
        (vec!["--cap-add", "ALL"], &all_bnd, Some(&all_bnd)),
        (
            vec!["--user", "1000"],
            "00000000800405fb",
            Some("0000000000000000"),
        ),
        (vec!["--user", "1000", "--cap-add", "ALL"], &all_bnd, None),
        (
            vec!["--isolation", "chroot"],
            "00000000800405fb",
            Some("00000000800405fb"),
        ),
        (
            vec!["--isolation", "chroot", "--user", "1000"],
            "00000000800405fb",
            Some("0000000000000000"),
        ),
    ];
    for (args, bnd, eff) in &cases {
        let r = ctx.sh(args, &ctr, probe).success();
        let o = r.out();
        assert_eq!(
            status_field(o, "CapInh"),
            Some("0000000000000000"),
            "{args:?}: {o}"
        );
        assert_eq!(
            status_field(o, "CapAmb"),
            Some("0000000000000000"),
            "{args:?}: {o}"
        );
        assert_eq!(status_field(o, "CapBnd"), Some(*bnd), "{args:?}: {o}");
        if let Some(e) = eff {
            assert_eq!(status_field(o, "CapEff"), Some(*e), "{args:?}: {o}");
            assert_eq!(status_field(o, "CapPrm"), Some(*e), "{args:?}: {o}");
        }
    }
    let r = ctx.bud(&format!("FROM {BB}\nUSER 1000\nRUN {probe}\n"), &[]);
    assert_eq!(r.code, Some(0), "{}", r.dump());
    assert!(
        r.stdout.contains("CapInh:\t0000000000000000")
            && r.stdout.contains("CapAmb:\t0000000000000000")
            && r.stdout.contains("CapEff:\t0000000000000000"),
        "{}",
        r.dump()
    );
}

// ---------------------------------------------------------------------------------- P30

/// P30: users and groups as BuildKit's `testUserAdditionalGids` table: a named user gets
/// the groups /etc/group lists it in, numeric IDs are IDs (a user *named* `1000` whose UID
/// is 0 does not make `USER 1000` root), out-of-range IDs are refused
/// (CVE-2022-2990, CVE-2023-25173, CVE-2024-40635, CVE-2016-3697).
#[test]
fn p30_users_and_groups() {
    let Some(ctx) = store("p30_users_and_groups") else {
        return;
    };
    let ctr = ctx.ctr();
    let mnt = PathBuf::from(ctx.ok(["mount", &ctr]));
    let mut passwd = fs::read_to_string(mnt.join("etc/passwd")).unwrap();
    passwd.push_str("alice:x:1001:1001::/:/bin/sh\n1000:x:0:0:numeric name:/:/bin/sh\n");
    fs::write(mnt.join("etc/passwd"), passwd).unwrap();
    let mut group = fs::read_to_string(mnt.join("etc/group")).unwrap();
    group.push_str("alice:x:1001:\ng2:x:5000:alice\ng3:x:5001:bob,alice\n");
    fs::write(mnt.join("etc/group"), group).unwrap();
    ctx.ok(["umount", &ctr]);
    let probe = "echo U=$(id -u) G=$(id -g) S=$(id -G | tr ' ' '\\n' | sort -n | tr '\\n' ,)";
    let cases = [
        ("alice", "U=1001 G=1001 S=1001,5000,5001,"),
        ("1001", "U=1001 G=1001 S=1001,5000,5001,"),
        ("1000", "U=1000 G=0 S=0,"),
        ("alice:g2", "U=1001 G=5000 S=5000,"),
    ];
    for (user, want) in cases {
        let r = ctx.sh(&["--user", user], &ctr, probe).success();
        let got = r.out();
        if user == "alice:g2" {
            // An explicit group is the primary one; root's group never stays.
            assert!(
                got.starts_with("U=1001 G=5000 S=")
                    && !got.contains("S=0,")
                    && !got.contains(",0,"),
                "{user}: {got}"
            );
        } else {
            assert_eq!(got, want, "--user {user}");
        }
    }
    for bad in ["4294967296", "2147483648", "-1", "1000:4294967296"] {
        rejected(
            ctx.hod(["run", &format!("--user={bad}"), &ctr, "--", "id"]),
            bad.split(':').next_back().unwrap(),
        );
        let r = ctx.bud(&format!("FROM {BB}\nUSER {bad}\nRUN id\n"), &[]);
        assert_eq!(r.code, Some(125), "USER {bad}: {}", r.dump());
        assert!(
            r.stderr.contains("out of range"),
            "USER {bad}: {}",
            r.dump()
        );
    }
}

// ---------------------------------------------------------------------------------- P31

/// P31: a Containerfile cannot grant itself privileges: `RUN --network=host` needs
/// `--network host` on the command line, `RUN --security=insecure` needs `--cap-add ALL`,
/// and there is no `RUN --device` (CVE-2024-23653).
#[test]
fn p31_privileged_run_needs_opt_in() {
    let Some(ctx) = store("p31_privileged_run_needs_opt_in") else {
        return;
    };
    let net = format!("FROM {BB}\nRUN --network=host ls /sys/class/net\n");
    let r = ctx.bud(&net, &[]);
    rejected(r, "--network host");
    let r = ctx.bud(&net, &["--network", "host"]);
    assert_eq!(r.code, Some(0), "{}", r.dump());
    let insecure = format!("FROM {BB}\nRUN --security=insecure grep CapEff /proc/self/status\n");
    let r = ctx.bud(&insecure, &[]);
    rejected(r, "--cap-add ALL");
    let r = ctx.bud(&insecure, &["--cap-add", "ALL"]);
    assert_eq!(r.code, Some(0), "{}", r.dump());
    let r = ctx.bud(
        &format!("FROM {BB}\nRUN --device=/dev/kmsg cat /dev/kmsg\n"),
        &[],
    );
    rejected(r, "--device");
}

// ---------------------------------------------------------------------------------- H32

/// H32: hod never runs the image's programs or libraries on the host side: an image whose
/// `xz`, `unxz`, `gzip`, `pigz`, `unpigz`, `zstd`, `tar`, `git`, `getent` and
/// `libnss_*` would touch a host canary goes through ADD of a `.tar.xz`/`.tar.zst`/`.tar.gz`,
/// `COPY --chown`, `copy --chown`, `run --user`, commit and push; the canary never appears
/// (CVE-2014-9357, CVE-2019-14271).
#[test]
fn h32_no_container_code_on_the_host() {
    let Some(ctx) = store("h32_no_container_code_on_the_host") else {
        return;
    };
    let canaries = host_dir(&ctx, "canaries");
    let ctr = ctx.ctr();
    let mnt = PathBuf::from(ctx.ok(["mount", &ctr]));
    for d in [
        "bin",
        "usr/bin",
        "sbin",
        "usr/sbin",
        "lib",
        "lib/x86_64-linux-gnu",
        "lib64",
    ] {
        fs::create_dir_all(mnt.join(d)).unwrap();
    }
    for (i, name) in [
        "xz", "unxz", "gzip", "gunzip", "pigz", "unpigz", "zstd", "unzstd", "tar", "git", "getent",
        "bzip2", "cp", "chown", "id",
    ]
    .iter()
    .enumerate()
    {
        for d in ["bin", "usr/bin", "usr/sbin"] {
            let p = mnt.join(d).join(name);
            let _ = fs::remove_file(&p);
            fs::write(
                &p,
                format!(
                    "#!/bin/sh\necho {name} > {}/ran-{i}-{name}\n",
                    canaries.display()
                ),
            )
            .unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    // An NSS module that would drop a canary when loaded, and the config naming it.
    if common::have("gcc") {
        let c = ctx.path("evil.c");
        fs::write(
            &c,
            format!(
                "#include <fcntl.h>\n__attribute__((constructor)) static void evil(void) {{ creat(\"{}/ran-nss\", 0644); }}\n",
                canaries.display()
            ),
        )
        .unwrap();
        for lib in [
            "lib/x86_64-linux-gnu/libnss_files.so.2",
            "lib/libnss_files.so.2",
            "lib64/libnss_files.so.2",
            "lib/x86_64-linux-gnu/libnss_hodevil.so.2",
        ] {
            let st = Command::new("gcc")
                .args(["-shared", "-fPIC", "-o"])
                .arg(mnt.join(lib))
                .arg(&c)
                .status()
                .unwrap();
            assert!(st.success());
        }
    } else {
        common::skipped("h32 nss module", "gcc is not installed");
    }
    fs::write(
        mnt.join("etc/nsswitch.conf"),
        "passwd: hodevil files\ngroup: hodevil files\n",
    )
    .unwrap();
    let mut passwd = fs::read_to_string(mnt.join("etc/passwd")).unwrap();
    passwd.push_str("alice:x:1001:1001::/:/bin/sh\n");
    fs::write(mnt.join("etc/passwd"), passwd).unwrap();
    let mut group = fs::read_to_string(mnt.join("etc/group")).unwrap();
    group.push_str("alice:x:1001:\n");
    fs::write(mnt.join("etc/group"), group).unwrap();
    // The sentinel works: the planted programs, run on the host, drop their canary.
    let st = Command::new(mnt.join("usr/bin/xz")).status().unwrap();
    assert!(st.success() && !entries(&canaries).is_empty());
    for e in entries(&canaries) {
        fs::remove_file(canaries.join(e)).unwrap();
    }
    ctx.ok(["umount", &ctr]);
    ctx.ok(["commit", "-q", &ctr, "localhost/evil:latest"]);

    // The build context: archives in every compression hod can ADD.
    let cdir = host_dir(&ctx, "h32ctx");
    let payload = host_dir(&ctx, "payload");
    fs::write(payload.join("p.txt"), "payload\n").unwrap();
    for (file, flag) in [("a.tar.xz", "-J"), ("a.tar.gz", "-z"), ("a.tar.bz2", "-j")] {
        let st = Command::new("tar")
            .arg("-C")
            .arg(&payload)
            .arg(flag)
            .arg("-cf")
            .arg(cdir.join(file))
            .arg("p.txt")
            .status()
            .unwrap();
        assert!(st.success());
    }
    if common::have("zstd") {
        let st = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "tar -C {} -cf - p.txt | zstd -q -o {}/a.tar.zst",
                payload.display(),
                cdir.display()
            ))
            .status()
            .unwrap();
        assert!(st.success());
    }
    let adds: String = ["a.tar.xz", "a.tar.gz", "a.tar.bz2", "a.tar.zst"]
        .iter()
        .filter(|f| cdir.join(f).exists())
        .enumerate()
        .map(|(i, f)| format!("ADD {f} /x{i}/\n"))
        .collect();
    fs::write(cdir.join("plain.txt"), "plain\n").unwrap();
    fs::write(
        cdir.join("Containerfile"),
        format!("FROM localhost/evil:latest\n{adds}COPY --chown=alice:alice plain.txt /home/\nUSER alice\n"),
    )
    .unwrap();
    let r = ctx.hod([
        "bud",
        "--pull=never",
        "-q",
        "-t",
        "localhost/evil2",
        cdir.to_str().unwrap(),
    ]);
    assert_eq!(r.code, Some(0), "{}", r.dump());
    let c2 = ctx.ok(["from", "--pull=never", "localhost/evil2"]);
    ctx.ok([
        "copy",
        "--chown",
        "alice:alice",
        &c2,
        cdir.join("a.tar.xz").to_str().unwrap(),
        "/home/",
    ]);
    ctx.ok([
        "copy",
        "--chown",
        "alice",
        &c2,
        cdir.join("plain.txt").to_str().unwrap(),
        "/home/p2",
    ]);
    ctx.ok([
        "add",
        "--chown",
        "alice",
        &c2,
        cdir.join("a.tar.xz").to_str().unwrap(),
        "/home/xz/",
    ]);
    let r = ctx.hod(["run", "--user", "alice", &c2, "--", "/bin/busybox", "true"]);
    assert_eq!(r.code, Some(0), "{}", r.dump());
    ctx.ok(["commit", "-q", &c2, "localhost/evil3"]);
    let out = ctx.path("h32-oci");
    ctx.ok([
        "push",
        "-q",
        "localhost/evil3",
        &format!("oci:{}:x", out.display()),
    ]);
    ctx.ok([
        "push",
        "-q",
        "localhost/evil3",
        &format!("dir:{}", ctx.path("h32-dir").display()),
    ]);
    assert_eq!(
        entries(&canaries),
        Vec::<String>::new(),
        "the image's code ran on the host"
    );
}

// ---------------------------------------------------------------------------------- H33

/// H33: a hostile /etc/passwd or /etc/group (a link to /dev/zero, a FIFO, a link climbing
/// to the host's /etc/shadow, a 2 GiB sparse file) is read inside the root, at most 1 MiB,
/// and never hangs (CVE-2024-9676).
#[test]
fn h33_hostile_passwd_and_group() {
    let Some(ctx) = store("h33_hostile_passwd_and_group") else {
        return;
    };
    let file = ctx.path("h33.txt");
    fs::write(&file, "x\n").unwrap();
    type Plant = fn(&Path, &str);
    let cases: &[(&str, &str, Plant)] = &[
        ("passwd -> /dev/zero", "passwd", |m, f| {
            let _ = fs::remove_file(m.join("etc").join(f));
            symlink("/dev/zero", m.join("etc").join(f)).unwrap();
        }),
        ("group -> /dev/zero", "group", |m, f| {
            let _ = fs::remove_file(m.join("etc").join(f));
            symlink("/dev/zero", m.join("etc").join(f)).unwrap();
        }),
        ("passwd is a FIFO", "passwd", |m, f| {
            let p = m.join("etc").join(f);
            let _ = fs::remove_file(&p);
            let st = Command::new("mkfifo").arg(&p).status().unwrap();
            assert!(st.success());
        }),
        ("group is a FIFO", "group", |m, f| {
            let p = m.join("etc").join(f);
            let _ = fs::remove_file(&p);
            let st = Command::new("mkfifo").arg(&p).status().unwrap();
            assert!(st.success());
        }),
        (
            "passwd -> ../../../../../../etc/shadow",
            "passwd",
            |m, f| {
                // Resolved in the root it names the image's shadow, which says root is 0;
                // on the host it would be the host's shadow, whose third field is a date.
                fs::write(m.join("etc/shadow"), "root:x:0:0::/root:/bin/sh\n").unwrap();
                let _ = fs::remove_file(m.join("etc").join(f));
                symlink("../../../../../../etc/shadow", m.join("etc").join(f)).unwrap();
            },
        ),
        ("passwd is a 2 GiB sparse file", "passwd", |m, f| {
            let p = m.join("etc").join(f);
            let _ = fs::remove_file(&p);
            let fh = fs::File::create(&p).unwrap();
            use std::io::Write;
            (&fh).write_all(b"root:x:0:0::/root:/bin/sh\n").unwrap();
            fh.set_len(2 << 30).unwrap();
        }),
    ];
    for (name, _, plant) in cases {
        let ctr = ctx.ctr();
        let mnt = PathBuf::from(ctx.ok(["mount", &ctr]));
        plant(
            &mnt,
            if name.starts_with("group") {
                "group"
            } else {
                "passwd"
            },
        );
        ctx.ok(["umount", &ctr]);
        for args in [
            vec!["run", "--user", "root:root", &ctr, "--", "id", "-u"],
            vec![
                "copy",
                "--chown",
                "root:root",
                &ctr,
                file.to_str().unwrap(),
                "/h33",
            ],
        ] {
            let start = Instant::now();
            let r = timed(ctx.cmd(&args), Duration::from_secs(20));
            let took = start.elapsed();
            common::assert_no_panic(&r);
            assert!(
                took < Duration::from_secs(10),
                "{name}: {args:?} took {took:?}"
            );
            assert!(
                r.code == Some(0) || r.check_one_error_naming("").is_ok(),
                "{name}: {args:?}\n{}",
                r.dump()
            );
            if r.code == Some(0) && args[0] == "run" {
                assert_eq!(r.out(), "0", "{name}: read outside the root?\n{}", r.dump());
            }
        }
    }
}

/// Runs `c` and kills it after `limit` (a hang is a failure the caller sees as exit None).
fn timed(mut c: Command, limit: Duration) -> Run {
    let cmdline = format!("{c:?}");
    let mut child = c
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    Run {
        cmdline,
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

// ---------------------------------------------------------------------------------- H34

/// H34: `$(…)`, backticks, `;` and newlines in labels, environment, annotations,
/// entrypoint and cmd (from the CLI and from a Containerfile) are stored verbatim and never
/// reach a host shell (CVE-2026-53488).
#[test]
fn h34_no_config_injection() {
    let Some(ctx) = store("h34_no_config_injection") else {
        return;
    };
    let canaries = host_dir(&ctx, "canaries");
    let c = canaries.display();
    let values = [
        format!("$(touch {c}/dollar)"),
        format!("`touch {c}/backtick`"),
        format!("x; touch {c}/semicolon"),
        format!("x\ntouch {c}/newline"),
        format!("x && touch {c}/and | touch {c}/pipe"),
    ];
    let ctr = ctx.ctr();
    for (i, v) in values.iter().enumerate() {
        ctx.ok([
            "config",
            "--label",
            &format!("l{i}={v}"),
            "--env",
            &format!("E{i}={v}"),
            "--annotation",
            &format!("a{i}={v}"),
            "--author",
            v,
            "--created-by",
            v,
            &ctr,
        ]);
        let ep = serde_json::to_string(&vec![v]).unwrap();
        ctx.ok(["config", "--entrypoint", &ep, "--cmd", v, &ctr]);
        ctx.ok(["commit", "-q", &ctr, &format!("localhost/h34:{i}")]);
        let label = ctx.ok([
            "inspect",
            "-t",
            "image",
            "--format",
            &format!("{{{{index .OCIv1.Config.Labels \"l{i}\"}}}}"),
            &format!("localhost/h34:{i}"),
        ]);
        assert_eq!(label, *v, "label {i} stored verbatim");
        ctx.ok([
            "push",
            "-q",
            &format!("localhost/h34:{i}"),
            &format!("oci:{}:{i}", ctx.path("h34-oci").display()),
        ]);
    }
    // The same through a Containerfile (build args expanded into LABEL, ENV, ENTRYPOINT).
    let cf = format!(
        "FROM {BB}\nARG V\nLABEL l=\"$V\"\nENV E=\"$V\"\nENTRYPOINT [\"/bin/echo\", \"$V\"]\nRUN echo \"$V\" > /dev/null\n"
    );
    for v in &values {
        let r = ctx.bud(
            &cf,
            &["--build-arg", &format!("V={}", v.replace('\n', " "))],
        );
        assert_eq!(r.code, Some(0), "{}", r.dump());
    }
    assert_eq!(
        entries(&canaries),
        Vec::<String>::new(),
        "a value reached a shell"
    );
}

// ---------------------------------------------------------------------------------- X35

/// X35: copies and exports through links: `copy` into a container whose destination is a
/// link to a host directory lands inside the root; `--output type=local` into a directory
/// holding pre-planted links replaces them instead of writing through; `dir:` and `oci:`
/// exports of an image holding `x -> victim` write nothing to the victim
/// (CVE-2019-10152, CVE-2018-15664, CVE-2023-0778).
#[test]
fn x35_copy_and_export_through_links() {
    let Some(ctx) = store("x35_copy_and_export_through_links") else {
        return;
    };
    let victim = host_dir(&ctx, "victim");
    let v = victim.display().to_string();
    let file = ctx.path("x35.txt");
    fs::write(&file, "x35\n").unwrap();
    let ctr = ctx.ctr();
    let mnt = PathBuf::from(ctx.ok(["mount", &ctr]));
    symlink(&v, mnt.join("test")).unwrap();
    symlink(format!("../../../../../../../..{v}"), mnt.join("rel")).unwrap();
    symlink(format!("{v}/canary"), mnt.join("x")).unwrap();
    symlink(format!("{v}/canary"), mnt.join("y")).unwrap();
    ctx.ok(["umount", &ctr]);
    for dest in ["/test/", "/test/f", "/rel/", "/rel/f", "/y"] {
        let r = ctx.hod(["copy", &ctr, file.to_str().unwrap(), dest]);
        common::assert_no_panic(&r);
        assert_eq!(
            entries(&victim),
            Vec::<String>::new(),
            "copy to {dest} wrote to the host"
        );
    }
    // A RUN swapping the destination between a directory and a link to the victim while
    // copies go into it.
    let racer_ctr = ctx.ctr();
    let swap = format!(
        "end=$(( $(date +%s) + 8 )); while [ $(date +%s) -lt $end ]; do \
         rm -rf /dst; mkdir /dst; rm -rf /dst; ln -s {v} /dst; done; echo SWAPPED"
    );
    let racer = ctx
        .cmd(["run", &racer_ctr, "--", "sh", "-c", &swap])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(6);
    let mut copies = 0;
    while Instant::now() < deadline {
        let r = ctx.hod(["copy", &racer_ctr, file.to_str().unwrap(), "/dst/"]);
        common::assert_no_panic(&r);
        copies += 1;
    }
    let out = racer.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("SWAPPED"));
    assert!(copies >= 5, "only {copies} copies raced");
    assert_eq!(
        entries(&victim),
        Vec::<String>::new(),
        "a racing copy wrote to the host"
    );
    // The copies landed in the root, where the links point inside it.
    let mnt = PathBuf::from(ctx.ok(["mount", &ctr]));
    let inside = mnt.join(v.trim_start_matches('/'));
    assert!(
        !entries(&inside).is_empty(),
        "the copy through /test is inside the root"
    );
    ctx.ok(["umount", &ctr]);
    ctx.ok(["commit", "-q", &ctr, "localhost/x35"]);

    // --output type=local into a directory with links planted where the image has directories.
    let out = host_dir(&ctx, "out");
    symlink(&v, out.join("bin")).unwrap();
    symlink(&v, out.join("etc")).unwrap();
    let r = ctx.bud(
        "FROM localhost/x35\n",
        &["--output", &format!("type=local,dest={}", out.display())],
    );
    assert_eq!(r.code, Some(0), "{}", r.dump());
    assert_eq!(
        entries(&victim),
        Vec::<String>::new(),
        "--output wrote through a planted link"
    );
    assert!(out.join("bin").is_dir() && !out.join("bin").is_symlink());
    assert_eq!(
        fs::read_link(out.join("x")).unwrap(),
        PathBuf::from(format!("{v}/canary")),
        "the image's link is kept as a link"
    );
    // dir: and oci: exports of it.
    ctx.ok([
        "push",
        "-q",
        "localhost/x35",
        &format!("oci:{}:x", ctx.path("x35-oci").display()),
    ]);
    ctx.ok([
        "push",
        "-q",
        "localhost/x35",
        &format!("dir:{}", ctx.path("x35-dir").display()),
    ]);
    let tar = ctx.path("x35.tar");
    let r = ctx.bud(
        "FROM localhost/x35\n",
        &["--output", &format!("type=tar,dest={}", tar.display())],
    );
    assert_eq!(r.code, Some(0), "{}", r.dump());
    assert_eq!(entries(&victim), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------- D36–D38

/// The busybox fixture copied to `dir` as an OCI layout whose config `edit` changes, plus
/// `extra` uncompressed layers (tar bytes) appended (with their diff IDs unless
/// `diff_ids` is false). Returns the layout's path.
fn hostile_layout(
    dir: &Path,
    edit: impl FnOnce(&mut serde_json::Value),
    extra: &[Vec<u8>],
    diff_ids: bool,
) -> PathBuf {
    let base = common::busybox_layout();
    let st = Command::new("cp")
        .arg("-a")
        .arg(&base)
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success());
    let (mut manifest, mut config) = common::oci_manifest_and_config(dir, "latest");
    edit(&mut config);
    for layer in extra {
        let d = put_blob(dir, layer);
        manifest["layers"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": d,
                "size": layer.len(),
            }));
        if diff_ids {
            config["rootfs"]["diff_ids"]
                .as_array_mut()
                .unwrap()
                .push(d.into());
        }
    }
    let cbytes = serde_json::to_vec(&config).unwrap();
    manifest["config"]["digest"] = put_blob(dir, &cbytes).into();
    manifest["config"]["size"] = cbytes.len().into();
    set_manifest(dir, &serde_json::to_vec(&manifest).unwrap());
    dir.to_path_buf()
}

fn sha256_hex(data: &[u8]) -> String {
    let mut c = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    c.stdin.take().unwrap().write_all(data).unwrap();
    let o = c.wait_with_output().unwrap();
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn put_blob(layout: &Path, data: &[u8]) -> String {
    let hex = sha256_hex(data);
    fs::write(layout.join("blobs/sha256").join(&hex), data).unwrap();
    format!("sha256:{hex}")
}

/// Stores `manifest` and points the layout's `latest` at it.
fn set_manifest(layout: &Path, manifest: &[u8]) -> String {
    let d = put_blob(layout, manifest);
    set_index_entry(layout, &d, manifest.len());
    d
}

fn set_index_entry(layout: &Path, digest: &str, size: usize) {
    let p = layout.join("index.json");
    let mut index: serde_json::Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
    index["manifests"][0]["digest"] = digest.into();
    index["manifests"][0]["size"] = size.into();
    fs::write(&p, serde_json::to_vec(&index).unwrap()).unwrap();
}

/// A one-file uncompressed tar layer.
fn one_file_tar(name: &str, data: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    let mut t = h.to_vec();
    t.extend_from_slice(data);
    t.resize(t.len().div_ceil(512) * 512, 0);
    t.extend_from_slice(&[0u8; 1024]);
    t
}

/// The images of a store, as `images -q --no-trunc` lists them.
fn images(ctx: &TestContext) -> String {
    ctx.ok(["images", "-a", "-q", "--no-trunc"])
}

fn pull_layout(ctx: &TestContext, layout: &Path) -> Run {
    let mut c = ctx.cmd(["pull", "-q", &format!("oci:{}:latest", layout.display())]);
    c.env("RUST_BACKTRACE", "0");
    let r = timed(c, Duration::from_secs(30));
    common::assert_no_panic(&r);
    r
}

/// D36: what a pull reads is verified before anything is stored: bytes that do not match
/// their digest, sizes that do not match the descriptor, malformed digest strings
/// (`sha256:../…`, upper case, unknown algorithms), manifests that are not JSON objects or
/// hold duplicate keys → one error, and the store is unchanged (CVE-2024-3727,
/// CVE-2021-41190, CVE-2014-8179).
#[test]
fn d36_verify_before_storing() {
    // An empty store: a blob the store already holds is (rightly) not read again.
    if !common::require("d36_verify_before_storing", &[]) {
        return;
    }
    let ctx = TestContext::new("vfs");
    let before = images(&ctx);
    let n = std::sync::atomic::AtomicUsize::new(0);
    let fresh = || {
        let d = ctx.path(&format!(
            "d36-{}",
            n.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        hostile_layout(&d, |_| {}, &[], true)
    };
    // Config bytes changed behind their digest.
    let l = fresh();
    let (m, _) = common::oci_manifest_and_config(&l, "latest");
    let cfg = l.join("blobs/sha256").join(
        m["config"]["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:"),
    );
    let mut b = fs::read(&cfg).unwrap();
    b[10] ^= 0x20;
    fs::write(&cfg, b).unwrap();
    assert!(pull_layout(&ctx, &l).check_one_error_naming("").is_ok());
    // A layer whose bytes do not match.
    let l = fresh();
    let (m, _) = common::oci_manifest_and_config(&l, "latest");
    let lay = l.join("blobs/sha256").join(
        m["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:"),
    );
    let mut b = fs::read(&lay).unwrap();
    let k = b.len() / 2;
    b[k] ^= 0xff;
    fs::write(&lay, b).unwrap();
    assert!(pull_layout(&ctx, &l).code != Some(0));
    // Sizes that lie (shorter and longer than the blob).
    for delta in [-1i64, 1] {
        let l = fresh();
        let (mut m, _) = common::oci_manifest_and_config(&l, "latest");
        let s = m["layers"][0]["size"].as_i64().unwrap();
        m["layers"][0]["size"] = (s + delta).into();
        set_manifest(&l, &serde_json::to_vec(&m).unwrap());
        let r = pull_layout(&ctx, &l);
        assert!(r.code != Some(0), "size {delta:+}: {}", r.dump());
    }
    // Malformed digests in the index and in the manifest.
    for bad in [
        "sha256:../../../../etc/passwd",
        "sha256:/etc/passwd",
        "SHA256:0000000000000000000000000000000000000000000000000000000000000000",
        "sha256:ABCDEF0000000000000000000000000000000000000000000000000000000000",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "sha256:",
        "",
    ] {
        let l = fresh();
        set_index_entry(&l, bad, 10);
        let r = pull_layout(&ctx, &l);
        assert!(
            r.code != Some(0) && !r.stderr.contains("root:x:"),
            "index digest {bad:?}: {}",
            r.dump()
        );
        let l = fresh();
        let (mut m, _) = common::oci_manifest_and_config(&l, "latest");
        m["layers"][0]["digest"] = bad.into();
        set_manifest(&l, &serde_json::to_vec(&m).unwrap());
        let r = pull_layout(&ctx, &l);
        assert!(r.code != Some(0), "layer digest {bad:?}: {}", r.dump());
    }
    // Duplicate keys: the second `config` or `layers` would name other content.
    let l = fresh();
    let (m, _) = common::oci_manifest_and_config(&l, "latest");
    let text = serde_json::to_string(&m).unwrap();
    let dup = text.replacen("\"layers\":", "\"layers\":[],\"layers\":", 1);
    assert_ne!(dup, text);
    set_manifest(&l, dup.as_bytes());
    let r = pull_layout(&ctx, &l);
    assert!(r.code != Some(0), "duplicate keys accepted: {}", r.dump());
    // A manifest that says it is an index.
    let l = fresh();
    let (mut m, _) = common::oci_manifest_and_config(&l, "latest");
    m["manifests"] = serde_json::json!([]);
    set_manifest(&l, &serde_json::to_vec(&m).unwrap());
    let r = pull_layout(&ctx, &l);
    assert!(
        r.code != Some(0),
        "ambiguous manifest accepted: {}",
        r.dump()
    );
    assert_eq!(images(&ctx), before, "a rejected pull stored something");
    common::assert_store_consistent(&ctx);
    // Control: the same layout untouched is pulled.
    let r = pull_layout(&ctx, &fresh());
    assert_eq!(r.code, Some(0), "{}", r.dump());
}

/// `hod ARGS` under `/usr/bin/time`: the run and its peak RSS in KiB.
fn with_peak_rss(ctx: &TestContext, args: &[&str]) -> (Run, u64) {
    let f = ctx.path("rss.txt");
    let mut c = Command::new("/usr/bin/time");
    c.arg("-o").arg(&f).args(["-f", "%M"]).arg(&ctx.bin);
    c.args(ctx.global_args()).args(args);
    let r = timed(c, Duration::from_secs(60));
    common::assert_no_panic(&r);
    let kib = fs::read_to_string(&f)
        .unwrap_or_default()
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(u64::MAX);
    (r, kib)
}

const RSS_LIMIT_KIB: u64 = 256 * 1024;

/// D37: an `index.json` of 2 GiB, and a manifest or config over 4 MiB in an OCI layout, a
/// 3 MiB bearer token and a 5 MiB error body from a registry are refused quickly with
/// bounded memory, never read whole (CVE-2020-1702, CVE-2023-25153).
#[test]
fn d37_size_limits() {
    if !common::require("d37_size_limits", &["python3", "/usr/bin/time"]) {
        return;
    }
    let ctx = TestContext::new("vfs");
    seed(&ctx);
    let before = images(&ctx);
    let l = hostile_layout(&ctx.path("d37-index"), |_| {}, &[], true);
    let idx = fs::OpenOptions::new()
        .append(true)
        .open(l.join("index.json"))
        .unwrap();
    idx.set_len(2 << 30).unwrap();
    let start = Instant::now();
    let (r, rss) = with_peak_rss(
        &ctx,
        &["pull", "-q", &format!("oci:{}:latest", l.display())],
    );
    assert!(
        r.code == Some(125) && start.elapsed() < Duration::from_secs(10),
        "{}",
        r.dump()
    );
    assert!(rss < RSS_LIMIT_KIB, "2 GiB index.json: peak RSS {rss} KiB");
    let reg = HostileRegistry::start(ctx.dir.path());
    for (port, repo, what) in [
        (reg.other, "x/img", "larger than 1 MiB"),
        (reg.main, "bigerr/img", "500"),
    ] {
        let start = Instant::now();
        let image = format!("127.0.0.1:{port}/{repo}:latest");
        let (r, rss) = with_peak_rss(
            &ctx,
            &[
                "pull",
                "-q",
                "--tls-verify=false",
                "--retry",
                "0",
                "--creds",
                "u:p",
                &image,
            ],
        );
        let took = start.elapsed();
        assert!(
            r.check_one_error_naming(what).is_ok(),
            "{repo}: {}",
            r.dump()
        );
        assert!(
            r.stderr.len() < 4096,
            "{repo}: the error carries the body: {} bytes",
            r.stderr.len()
        );
        assert!(took < Duration::from_secs(10), "{repo}: took {took:?}");
        assert!(rss < RSS_LIMIT_KIB, "{repo}: peak RSS {rss} KiB");
    }
    let l = hostile_layout(&ctx.path("d37-manifest"), |_| {}, &[], true);
    let (m, _) = common::oci_manifest_and_config(&l, "latest");
    let mut text = serde_json::to_string(&m).unwrap();
    text.pop();
    text.push_str(&format!(",\"padding\":\"{}\"}}", "x".repeat(5 << 20)));
    set_manifest(&l, text.as_bytes());
    let r = pull_layout(&ctx, &l);
    assert!(r.check_one_error_naming("").is_ok(), "{}", r.dump());
    let l = hostile_layout(
        &ctx.path("d37-config"),
        |c| {
            c["padding"] = "y".repeat(5 << 20).into();
        },
        &[],
        true,
    );
    let r = pull_layout(&ctx, &l);
    assert!(r.check_one_error_naming("").is_ok(), "{}", r.dump());
    assert_eq!(images(&ctx), before);
}

/// D38: a layer whose content does not match the config's DiffID is refused, so a crafted
/// image cannot make the store believe it holds other content; a pulled image mimicking a
/// build step is no `--layers` cache hit (CVE-2024-24557, c/storage PR 1627).
#[test]
fn d38_no_layer_reuse_poisoning() {
    let Some(ctx) = store("d38_no_layer_reuse_poisoning") else {
        return;
    };
    let before = images(&ctx);
    let honest = one_file_tar("honest.txt", b"honest\n");
    let evil = one_file_tar("evil.txt", b"evil\n");
    let honest_diff = format!("sha256:{}", sha256_hex(&honest));
    let l = hostile_layout(
        &ctx.path("d38"),
        |c| {
            c["rootfs"]["diff_ids"]
                .as_array_mut()
                .unwrap()
                .push(honest_diff.clone().into());
        },
        &[evil],
        false,
    );
    let r = pull_layout(&ctx, &l);
    assert!(r.check_one_error_naming("").is_ok(), "{}", r.dump());
    assert_eq!(images(&ctx), before);
    common::assert_store_consistent(&ctx);
    // Control: the honest layer with its own DiffID is pulled.
    let l = hostile_layout(&ctx.path("d38-honest"), |_| {}, &[honest], true);
    let r = pull_layout(&ctx, &l);
    assert_eq!(r.code, Some(0), "{}", r.dump());
    // A pulled image made to look like the step `RUN echo built > /f` on busybox (same
    // parent chain, same history line, a cache key in its labels and annotations) is never
    // a `--layers` cache hit: the step runs, and the evil file is not in the result.
    let mimic = hostile_layout(
        &ctx.path("d38-mimic"),
        |c| {
            c["history"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({
                    "created_by": "/bin/sh -c echo built > /f"
                }));
            c["config"]["Labels"] = serde_json::json!({"hodCache": "x", "hodCacheKey": "x"});
        },
        &[one_file_tar("f", b"evil\n")],
        true,
    );
    let r = pull_layout(&ctx, &mimic);
    assert_eq!(r.code, Some(0), "{}", r.dump());
    let r = ctx.bud(
        &format!("FROM {BB}\nRUN echo built > /f\n"),
        &["--layers", "-t", "localhost/d38"],
    );
    assert_eq!(r.code, Some(0), "{}", r.dump());
    assert!(
        !r.stdout.contains("Using cache"),
        "a pulled image was a cache hit:\n{}",
        r.dump()
    );
    let c = ctx.ok(["from", "--pull=never", "localhost/d38"]);
    let r = ctx.sh(&[], &c, "cat /f").success();
    assert_eq!(r.out(), "built");
}

// ---------------------------------------------------------------------------------- S40

/// S40: an image's `Env ["FOO"]` (a name without a value) does not pull hod's own `FOO`
/// into a RUN; a RUN cannot read hod's environment through /proc under either isolation;
/// the `--secret` value is in no layer, history entry or config; container names are never
/// paths (CVE-2026-57231, CVE-2021-3602, CVE-2024-23650).
#[test]
fn s40_env_and_secrets() {
    let Some(ctx) = store("s40_env_and_secrets") else {
        return;
    };
    let secret = format!("hod-s40-secret-{}", std::process::id());
    let l = hostile_layout(
        &ctx.path("s40"),
        |c| {
            c["config"]["Env"] = serde_json::json!(["FOO", "PATH=/bin:/usr/bin"]);
        },
        &[],
        true,
    );
    let id = ctx.ok(["pull", "-q", &format!("oci:{}:latest", l.display())]);
    ctx.ok(["tag", id.lines().last().unwrap(), "localhost/s40env"]);
    let ctr = ctx.ok(["from", "--pull=never", "localhost/s40env"]);
    let mut c = ctx.cmd([
        "run",
        &ctr,
        "--",
        "sh",
        "-c",
        "env; for p in /proc/[0-9]*; do cat $p/environ; done 2>/dev/null",
    ]);
    c.env("FOO", &secret).env("HOD_S40_MARKER", &secret);
    let r = common::run_cmd(c).success();
    assert!(
        !r.stdout.contains(&secret),
        "hod's environment reached the RUN:\n{}",
        r.dump()
    );
    let bctx = host_dir(&ctx, "s40ctx");
    for iso in ["oci", "chroot"] {
        let cf = "FROM localhost/s40env\nRUN env; cat /proc/$PPID/environ /proc/1/environ; for p in /proc/[0-9]*; do cat $p/environ; done 2>/dev/null; true\n";
        let cff = ctx.path("s40.Containerfile");
        fs::write(&cff, cf).unwrap();
        let mut c = ctx.cmd([
            "bud",
            "--pull=never",
            "--isolation",
            iso,
            "-f",
            cff.to_str().unwrap(),
            bctx.to_str().unwrap(),
        ]);
        c.env("FOO", &secret).env("HOD_S40_MARKER", &secret);
        let r = common::run_cmd(c);
        assert_eq!(r.code, Some(0), "{}", r.dump());
        assert!(
            !r.stdout.contains(&secret),
            "{iso}: hod's environment reached the RUN:\n{}",
            r.dump()
        );
    }
    // A secret leaves no trace in the image.
    let sfile = ctx.path("s40.secret");
    fs::write(&sfile, &secret).unwrap();
    let r = ctx.bud(
        &format!(
            "FROM {BB}\nRUN --mount=type=secret,id=s cat /run/secrets/s > /copied; cat /run/secrets/s\n\
             RUN --mount=type=secret,id=s,env=S40 echo \"$S40\" > /fromenv\n\
             RUN --mount=type=secret,id=s,target=/etc/s40 cat /etc/s40 > /dev/null\n"
        ),
        &["--secret", &format!("id=s,src={}", sfile.display()), "-t", "localhost/s40secret", "--layers"],
    );
    assert_eq!(r.code, Some(0), "{}", r.dump());
    let out = ctx.path("s40-oci");
    ctx.ok([
        "push",
        "-q",
        "localhost/s40secret",
        &format!("oci:{}:x", out.display()),
    ]);
    let grep = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cd {}/blobs/sha256 && for b in *; do (gzip -dc $b 2>/dev/null || cat $b) | grep -c {secret} || true; done",
            out.display()
        ))
        .output()
        .unwrap();
    let counts = String::from_utf8_lossy(&grep.stdout);
    // Only the two files the RUNs wrote on purpose carry it (one layer each).
    let hits: usize = counts
        .lines()
        .filter_map(|l| l.trim().parse::<usize>().ok())
        .sum();
    assert!(hits <= 2, "the secret is in {hits} places:\n{counts}");
    let hist = ctx.ok([
        "inspect",
        "-t",
        "image",
        "--format",
        "{{json .OCIv1.History}} {{json .OCIv1.Config}}",
        "localhost/s40secret",
    ]);
    assert!(!hist.contains(&secret), "{hist}");
    let ctr2 = ctx.ok(["from", "--pull=never", "localhost/s40secret"]);
    let r = ctx
        .sh(
            &[],
            &ctr2,
            "test -e /run/secrets/s && echo LEFT-S; test -s /etc/s40 && echo LEFT-E; cat /copied",
        )
        .success();
    assert!(
        !r.stdout.contains("LEFT-") && r.stdout.contains(&secret),
        "{}",
        r.dump()
    );
    // A secret id that climbs (buildah accepts ids with `/`): the mount target is resolved
    // in the root and the host file is named by the step, so nothing reaches the host.
    let victim = host_dir(&ctx, "s40victim");
    let id = format!("../../../../../../../..{}/sid", victim.display());
    let r = ctx.bud(
        &format!("FROM {BB}\nRUN --mount=type=secret,id={id} cat /run/secrets/{id} || true\n"),
        &["--secret", &format!("id={id},src={}", sfile.display())],
    );
    assert_eq!(r.code, Some(0), "{}", r.dump());
    assert_eq!(
        entries(&victim),
        Vec::<String>::new(),
        "a secret id reached the host"
    );
    // Names never become paths.
    let name = "../../../s40-escape";
    let r = ctx.hod(["from", "--pull=never", "--name", name, BB]);
    common::assert_no_panic(&r);
    if r.code == Some(0) {
        ctx.ok(["run", name, "--", "true"]);
        ctx.ok(["commit", "-q", name, "localhost/s40name"]);
        ctx.ok(["rm", name]);
    }
    for base in [
        ctx.root.clone(),
        ctx.runroot.clone(),
        ctx.dir.path().to_path_buf(),
    ] {
        let mut p = base.clone();
        for _ in 0..3 {
            p = p.parent().unwrap_or(Path::new("/")).to_path_buf();
        }
        assert!(
            !p.join("s40-escape").exists(),
            "a name became a path under {}",
            p.display()
        );
    }
}

// ---------------------------------------------------------------------------------- D39

/// `tests/registry/hostile_registry.py` serving the busybox fixture, stopped on drop.
struct HostileRegistry {
    child: std::process::Child,
    portfile: PathBuf,
    /// The Basic-auth registry.
    main: u16,
    /// The redirect target, and a Bearer registry whose token server answers 3 MiB.
    other: u16,
}

impl HostileRegistry {
    fn start(dir: &Path) -> HostileRegistry {
        let portfile = dir.join("hostile.port");
        let mut child = Command::new("python3")
            .arg(common::registry::scripts_dir().join("hostile_registry.py"))
            .arg(&portfile)
            .arg(common::busybox_layout())
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let ports = loop {
            if let Ok(s) = fs::read_to_string(&portfile) {
                break s;
            }
            assert!(
                child.try_wait().unwrap().is_none(),
                "hostile registry exited"
            );
            assert!(Instant::now() < deadline, "hostile registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut p = ports.split_whitespace().map(|p| p.parse().unwrap());
        let (main, other) = (p.next().unwrap(), p.next().unwrap());
        HostileRegistry {
            child,
            portfile,
            main,
            other,
        }
    }

    /// `(port, method, path, authorization)` of every request so far.
    fn requests(&self) -> Vec<(u16, String, String, String)> {
        let mut p = self.portfile.clone().into_os_string();
        p.push(".log");
        fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.splitn(4, ' ').collect();
                (
                    f[0].parse().unwrap(),
                    f[1].to_string(),
                    f[2].to_string(),
                    f.get(3).unwrap_or(&"-").to_string(),
                )
            })
            .collect()
    }
}

impl Drop for HostileRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// D39: credentials stay with the host and namespace they are for: a blob redirect to
/// another host gets no `Authorization`; `auth.json`'s `host/team` is not sent for
/// `host/team-evil`; a `user:token@` URL of ADD is in no history entry, label or config
/// (CVE-2020-15157, CVE-2019-10214, CVE-2023-26054).
#[test]
fn d39_credentials_stay_home() {
    if !common::require("d39_credentials_stay_home", &["python3"]) {
        return;
    }
    let ctx = TestContext::new("vfs");
    seed(&ctx);
    let reg = HostileRegistry::start(ctx.dir.path());
    let host = format!("127.0.0.1:{}", reg.main);
    let auth = ctx.path("auth.json");
    // base64("teamuser:teamtok")
    let token = "dGVhbXVzZXI6dGVhbXRvaw==";
    fs::write(
        &auth,
        format!("{{\"auths\":{{\"{host}/team\":{{\"auth\":\"{token}\"}}}}}}"),
    )
    .unwrap();
    let pull = |repo: &str| {
        ctx.hod([
            "pull",
            "-q",
            "--tls-verify=false",
            "--authfile",
            auth.to_str().unwrap(),
            &format!("{host}/{repo}:latest"),
        ])
    };
    pull("team/img").success();
    let reqs = reg.requests();
    assert!(
        reqs.iter()
            .any(|r| r.0 == reg.main && r.2.contains("/team/img/") && r.3.contains(token)),
        "the credentials were not used where they belong: {reqs:?}"
    );
    let redirected: Vec<_> = reqs.iter().filter(|r| r.0 != reg.main).collect();
    assert!(!redirected.is_empty(), "no blob was redirected: {reqs:?}");
    assert!(
        redirected.iter().all(|r| r.3 == "-"),
        "credentials followed a redirect to another host: {redirected:?}"
    );
    let r = pull("team-evil/img");
    assert!(r.check_one_error_naming("").is_ok(), "{}", r.dump());
    let leaked: Vec<_> = reg
        .requests()
        .into_iter()
        .filter(|r| r.2.contains("team-evil") && r.3 != "-")
        .collect();
    assert!(
        leaked.is_empty(),
        "team's credentials went to team-evil: {leaked:?}"
    );
    // ADD of a URL with credentials in it.
    let r = ctx.bud(
        &format!("FROM {BB}\nADD http://user:s3cr3t-t0k@{host}/file/x /x\nLABEL k=v\n"),
        &["-t", "localhost/d39"],
    );
    assert_eq!(r.code, Some(0), "{}", r.dump());
    let img = ctx.ok(["inspect", "-t", "image", "localhost/d39"]);
    assert!(
        !img.contains("s3cr3t-t0k"),
        "the URL's credentials are in the image:\n{img}"
    );
    let out = ctx.path("d39-oci");
    ctx.ok([
        "push",
        "-q",
        "localhost/d39",
        &format!("oci:{}:x", out.display()),
    ]);
    let grep = Command::new("grep")
        .args(["-r", "-l", "s3cr3t-t0k"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        grep.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&grep.stdout)
    );
}
