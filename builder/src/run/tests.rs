//! Integration-style tests of the embedded runtime over a busybox rootfs in a temp dir (no
//! store needed). They need root and Debian's busybox-static; without either they are
//! skipped with a message (never silently passed: each asserts when it runs).
use std::path::{Path, PathBuf};

use super::*;
use crate::image::ContainerConfig;

const BUSYBOX: &str = "/bin/busybox";

fn can_run() -> bool {
    let ok = nix::unistd::geteuid().is_root() && Path::new(BUSYBOX).exists();
    if !ok {
        return crate::test_skip::skipped(
            "embedded runtime test",
            &format!("needs root and {BUSYBOX}"),
        );
    }
    ok
}

/// `which(name)`, or a skip (a failure in CI) naming `test`.
fn need(test: &str, name: &str) -> Option<PathBuf> {
    let p = which(name);
    if p.is_none() {
        crate::test_skip::skipped(test, &format!("{name} is not installed"));
    }
    p
}

struct Fixture {
    _dir: tempfile::TempDir,
    rootfs: PathBuf,
    bundle: PathBuf,
    cache: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    let bin = rootfs.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
    let list = std::process::Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", bin.join(applet));
        }
    }
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nu1:x:1000:1000::/home/u1:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        rootfs.join("etc/group"),
        "root:x:0:\ng1:x:1000:u1\ng2:x:2000:u1\n",
    )
    .unwrap();
    let bundle = dir.path().join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    let cache = dir.path().join("cache");
    Fixture {
        _dir: dir,
        rootfs,
        bundle,
        cache,
    }
}

struct Out {
    status: Result<i32>,
    stdout: String,
    stderr: String,
}

fn run_in(f: &Fixture, cmd: &[&str], opts: &RunOptions, config: &ContainerConfig) -> Out {
    let command: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
    let out_path = f.bundle.join("stdout");
    let err_path = f.bundle.join("stderr");
    // As Builder::run_mounted does: the /run/.containerenv mount point a run makes goes.
    let had_containerenv = containerenv_present(&f.rootfs);
    let status = (|| {
        let (spec, terminal) = prepare(
            &f.rootfs,
            config,
            &command,
            opts,
            "0123456789abcdef",
            "ctr",
            &f.bundle,
            &f.cache,
        )?;
        let eo = ExecOptions {
            isolation: opts.isolation.unwrap_or_default(),
            no_pivot: opts.no_pivot,
            terminal,
            bundle_dir: f.bundle.clone(),
            runtime: opts.runtime.clone(),
            runtime_flags: opts.runtime_flags.clone(),
            container_id: "0123456789abcdef".into(),
            stdout: Some(out_path.clone()),
            stderr: Some(err_path.clone()),
            null_stdin: opts.null_stdin,
        };
        execute(&spec, &f.rootfs, &eo)
    })();
    if !had_containerenv {
        remove_containerenv_placeholder(&f.rootfs);
    }
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let o = Out {
        status,
        stdout: read(&out_path),
        stderr: read(&err_path),
    };
    let _ = std::fs::remove_file(&out_path);
    let _ = std::fs::remove_file(&err_path);
    o
}

fn run(f: &Fixture, cmd: &[&str], opts: &RunOptions) -> Out {
    run_in(f, cmd, opts, &ContainerConfig::default())
}

fn ok(o: &Out) -> &str {
    match &o.status {
        Ok(0) => &o.stdout,
        other => panic!(
            "status {other:?}; stdout {:?}; stderr {:?}",
            o.stdout, o.stderr
        ),
    }
}

#[test]
fn id_caps_and_status() {
    if !can_run() {
        return;
    }
    let f = fixture();
    let o = run(&f, &["sh", "-c", "id; grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status"], &RunOptions::default());
    let out = ok(&o);
    assert!(out.contains("uid=0(root) gid=0(root)"), "{out}");
    assert!(out.contains("CapEff:\t00000000800405fb"), "{out}");
    assert!(out.contains("CapBnd:\t00000000800405fb"), "{out}");
    assert!(out.contains("CapInh:\t0000000000000000"), "{out}");
    assert!(out.contains("CapAmb:\t0000000000000000"), "{out}");
    assert!(out.contains("NoNewPrivs:\t0"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    let o = run(&f, &["sh", "-c", "exit 7"], &RunOptions::default());
    assert_eq!(o.status.unwrap(), 7);
}

#[test]
fn user_env_workdir_hostname() {
    if !can_run() {
        return;
    }
    let f = fixture();
    let opts = RunOptions {
        user: Some("u1".into()),
        workdir: Some("/work/dir".into()),
        env: vec!["FOO=bar".into()],
        hostname: Some("myhost".into()),
        ..Default::default()
    };
    let o = run(&f, &["sh", "-c", "id; pwd; echo FOO=$FOO HOME=$HOME; hostname; cat /etc/hostname; grep CapEff /proc/self/status"], &opts);
    let out = ok(&o);
    assert!(
        out.contains("uid=1000(u1) gid=1000(g1) groups=1000(g1),2000(g2)"),
        "{out}"
    );
    assert!(out.contains("/work/dir\n"), "{out}");
    assert!(out.contains("FOO=bar HOME=/home/u1"), "{out}");
    assert!(out.contains("myhost\nmyhost\n"), "{out}");
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
    assert!(f.rootfs.join("work/dir").is_dir());
    // The generated files are mounted, the rootfs keeps empty placeholders.
    assert_eq!(
        std::fs::read(f.rootfs.join("etc/hostname")).unwrap().len(),
        0
    );
    assert_eq!(std::fs::read(f.rootfs.join("etc/hosts")).unwrap().len(), 0);
    // Same placeholder modes as buildah + runc leave in the layer.
    use std::os::unix::fs::PermissionsExt;
    for p in ["etc/hosts", "etc/hostname", "etc/resolv.conf"] {
        assert_eq!(
            std::fs::metadata(f.rootfs.join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o755,
            "{p}"
        );
    }
    assert!(f.rootfs.join("run").is_dir());
    // Default hostname is the container ID's first 12 characters.
    let o = run(&f, &["hostname"], &RunOptions::default());
    assert_eq!(ok(&o).trim(), "0123456789ab");
}

#[test]
fn mounts_and_masks() {
    if !can_run() {
        return;
    }
    let f = fixture();
    let o = run(&f, &["cat", "/proc/self/mountinfo"], &RunOptions::default());
    let out = ok(&o).to_string();
    let line = |dest: &str| {
        out.lines()
            .find(|l| l.split_whitespace().nth(4) == Some(dest))
            .map(str::to_string)
    };
    assert!(line("/proc").unwrap().contains(" - proc "), "{out}");
    assert!(line("/dev").unwrap().contains(" - tmpfs "), "{out}");
    assert!(line("/dev/pts").unwrap().contains(" - devpts "), "{out}");
    assert!(line("/dev/shm").is_some(), "{out}");
    assert!(line("/sys").unwrap().contains(" ro,"), "{out}");
    assert!(line("/proc/sys").unwrap().contains(" ro,"), "{out}");
    assert!(line("/etc/hosts").is_some(), "{out}");
    // The RUN's own cgroups, read-only, one per hierarchy hod is in (v1), or the one (v2).
    let cg = line("/sys/fs/cgroup").expect("a /sys/fs/cgroup mount");
    assert!(cg.contains(" ro,"), "{out}");
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    for l in own.lines().filter(|l| !l.contains("::")) {
        let ctrls = l.split(':').nth(1).unwrap();
        let dir = format!("/sys/fs/cgroup/{}", ctrls.trim_start_matches("name="));
        let sub = line(&dir).unwrap_or_else(|| panic!("{dir} missing:\n{out}"));
        assert!(sub.contains(" ro,") && sub.contains(" - cgroup "), "{out}");
        let cur = l.splitn(3, ':').nth(2).unwrap();
        // The mount's root is hod's own cgroup.
        assert_eq!(sub.split_whitespace().nth(3), Some(cur), "{out}");
    }
    let o = run(
        &f,
        &["sh", "-c", "mkdir /sys/fs/cgroup/x || echo cgroup-ro"],
        &RunOptions::default(),
    );
    assert!(ok(&o).contains("cgroup-ro"));
    let o = run(
        &f,
        &["sh", "-c", "ls /dev; echo x > /dev/null && echo null-ok; echo 1 > /proc/sysrq-trigger || echo sysrq-denied; echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null || echo procsys-denied"],
        &RunOptions::default(),
    );
    let out = ok(&o);
    for d in ["null", "zero", "urandom", "tty", "pts", "shm", "ptmx", "fd"] {
        assert!(out.lines().any(|l| l == d), "{d} missing in {out}");
    }
    assert!(
        out.contains("null-ok") && out.contains("sysrq-denied") && out.contains("procsys-denied"),
        "{out}"
    );
}

#[test]
fn volumes_tmpfs_cache() {
    if !can_run() {
        return;
    }
    let f = fixture();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("in"), "hello").unwrap();
    let opts = RunOptions {
        volumes: vec![
            format!("{}:/v:ro", host.path().display()),
            format!("{}:/o:O", host.path().display()),
        ],
        mounts: vec![
            "type=tmpfs,dst=/t".into(),
            "type=cache,target=/c,id=k".into(),
        ],
        ..Default::default()
    };
    let o = run(
        &f,
        &["sh", "-c", "cat /v/in; touch /v/x 2>/dev/null || echo ro-ok; echo w > /o/new && cat /o/new; echo t > /t/f && echo tmpfs-ok; echo c > /c/f"],
        &opts,
    );
    let out = ok(&o);
    assert!(
        out.contains("hello")
            && out.contains("ro-ok")
            && out.contains("w\n")
            && out.contains("tmpfs-ok"),
        "{out}"
    );
    assert!(
        !host.path().join("new").exists(),
        "overlay writes must be discarded"
    );
    assert_eq!(std::fs::read_to_string(f.cache.join("k/f")).unwrap(), "c\n");
}

#[test]
fn bad_input_is_one_clear_error() {
    if !can_run() {
        return;
    }
    let f = fixture();
    let o = run(
        &f,
        &["id"],
        &RunOptions {
            user: Some("noexist".into()),
            ..Default::default()
        },
    );
    assert!(o
        .status
        .as_ref()
        .unwrap_err()
        .to_string()
        .contains("unknown user"));
    let o = run(
        &f,
        &["id"],
        &RunOptions {
            user: Some("4294967296".into()),
            ..Default::default()
        },
    );
    assert!(o.status.is_err());
    let o = run(
        &f,
        &["id"],
        &RunOptions {
            volumes: vec!["/nonexistent-hod:/x".into()],
            ..Default::default()
        },
    );
    assert!(format!("{:#}", o.status.as_ref().unwrap_err()).contains("/nonexistent-hod"));
    // A mount destination that is a symlink pointing out of the rootfs.
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), f.rootfs.join("escape")).unwrap();
    let host = tempfile::tempdir().unwrap();
    let o = run(
        &f,
        &["true"],
        &RunOptions {
            mounts: vec![format!(
                "type=bind,src={},dst=/escape",
                host.path().display()
            )],
            ..Default::default()
        },
    );
    assert!(
        o.status
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("symbolic link"),
        "{:?}",
        o.status
    );
    // The container is still usable.
    let o = run(&f, &["true"], &RunOptions::default());
    assert_eq!(o.status.unwrap(), 0);
    // A missing executable: status 1 and a message naming it.
    let o = run(&f, &["nonexist"], &RunOptions::default());
    let e = o.status.unwrap_err();
    assert_eq!(e.exit_status(), Some(1));
    assert!(e.to_string().contains("nonexist"), "{e}");
    let o = run(&f, &["/etc"], &RunOptions::default());
    assert_eq!(o.status.unwrap_err().exit_status(), Some(1));
}

#[test]
fn background_processes_are_killed() {
    if !can_run() {
        return;
    }
    let f = fixture();
    let marker = "hod-bg-test-7d1c";
    let o = run(
        &f,
        &["sh", "-c", &format!("sleep 1000 {marker} & echo started")],
        &RunOptions::default(),
    );
    assert_eq!(ok(&o).trim(), "started");
    // `sleep` got `marker` as an extra operand, so it is findable in /proc by its cmdline.
    let alive = std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains(marker))
            .unwrap_or(false)
    });
    assert!(!alive, "the background sleep survived");
}

#[test]
fn network_modes() {
    if !can_run() {
        return;
    }
    let f = fixture();
    let o = run(
        &f,
        &[
            "sh",
            "-c",
            "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '",
        ],
        &RunOptions::default(),
    );
    assert_eq!(ok(&o).trim(), "lo");
    let o = run(
        &f,
        &["sh", "-c", "ip link show lo | grep -c UP"],
        &RunOptions::default(),
    );
    assert_eq!(ok(&o).trim(), "1");
    let o = run(
        &f,
        &["sh", "-c", "cat /proc/net/dev | wc -l"],
        &RunOptions {
            namespaces: Namespaces {
                network: Some(NetworkMode::Host),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    let host_lines = std::fs::read_to_string("/proc/net/dev")
        .unwrap()
        .lines()
        .count();
    assert_eq!(ok(&o).trim(), host_lines.to_string());
}

#[test]
fn ulimits_and_no_pivot() {
    if !can_run() {
        return;
    }
    let f = fixture();
    let o = run(
        &f,
        &["sh", "-c", "ulimit -n; ulimit -Hn"],
        &RunOptions {
            resources: Resources::parse(None, None, &["nofile=100:200".into()]).unwrap(),
            no_pivot: true,
            ..Default::default()
        },
    );
    assert_eq!(ok(&o), "100\n200\n");
}

#[test]
fn chroot_isolation() {
    if !can_run() {
        return;
    }
    let f = fixture();
    let opts = RunOptions {
        isolation: Some(Isolation::Chroot),
        ..Default::default()
    };
    let o = run(&f, &["sh", "-c", "id -u; ls /proc/self/status >/dev/null && echo proc-ok; echo x > /dev/null && echo dev-ok"], &opts);
    let out = ok(&o);
    assert!(
        out.contains("0\n") && out.contains("proc-ok") && out.contains("dev-ok"),
        "{out}"
    );
    let o = run(
        &f,
        &["true"],
        &RunOptions {
            isolation: Some(Isolation::Chroot),
            namespaces: Namespaces {
                network: Some(NetworkMode::None),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    assert!(o
        .status
        .unwrap_err()
        .to_string()
        .contains("cannot set --network other than host with --isolation chroot"));
}

#[test]
fn external_runc() {
    if !can_run() || need("external_runc", "runc").is_none() {
        return;
    }
    let f = fixture();
    let opts = RunOptions {
        runtime: which("runc"),
        ..Default::default()
    };
    let o = run(
        &f,
        &[
            "sh",
            "-c",
            "id; grep -E '^CapEff:' /proc/self/status; hostname",
        ],
        &opts,
    );
    let out = ok(&o);
    assert!(
        out.contains("uid=0(root)")
            && out.contains("00000000800405fb")
            && out.contains("0123456789ab"),
        "{out}"
    );
    let o = run(&f, &["sh", "-c", "exit 7"], &opts);
    assert_eq!(o.status.unwrap(), 7);
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// Not a test: `HOD_PROBE=/path/probe.sh cargo test -p builder probe_report -- --ignored`
/// runs the probe script under the embedded runtime and runc and writes the outputs to
/// /tmp/hod-probe-{embedded,runc}.txt, for docs/design/runtime.md.
#[test]
#[ignore]
fn probe_report() {
    let Some(script) = std::env::var_os("HOD_PROBE") else {
        return;
    };
    let f = fixture();
    std::fs::copy(&script, f.rootfs.join("probe.sh")).unwrap();
    for (name, rt) in [("embedded", None), ("runc", which("runc"))] {
        let o = run(
            &f,
            &["sh", "/probe.sh"],
            &RunOptions {
                runtime: rt,
                ..Default::default()
            },
        );
        std::fs::write(
            format!("/tmp/hod-probe-{name}.txt"),
            format!(
                "{}{}status {:?}\n",
                o.stdout,
                o.stderr,
                o.status.map_err(|e| format!("{e:#}"))
            ),
        )
        .unwrap();
        // SIGTERM to hod while the command runs (forwarded by hod's handler).
        let me = nix::unistd::getpid();
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(2));
            let _ = nix::sys::signal::kill(me, nix::sys::signal::Signal::SIGTERM);
        });
        let rt = if name == "runc" { which("runc") } else { None };
        let o = run(
            &f,
            &[
                "sh",
                "-c",
                "trap 'echo got-term; exit 3' TERM; sleep 30 & wait",
            ],
            &RunOptions {
                runtime: rt,
                ..Default::default()
            },
        );
        t.join().unwrap();
        std::fs::write(
            format!("/tmp/hod-term-{name}.txt"),
            format!(
                "{}{}status {:?}\n",
                o.stdout,
                o.stderr,
                o.status.map_err(|e| format!("{e:#}"))
            ),
        )
        .unwrap();
    }
}

/// A Kubernetes pod's default capability set (no CAP_SYS_ADMIN).
const POD_CAPS: &str = "-all,+chown,+dac_override,+fsetid,+fowner,+mknod,+net_raw,+setgid,+setuid,+setfcap,+setpcap,+net_bind_service,+sys_chroot,+kill,+audit_write";

#[test]
fn chroot_isolation_without_sys_admin() {
    if !can_run() || need("setpriv test", "setpriv").is_none() {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("setpriv")
        .args(["--bounding-set", POD_CAPS, "--inh-caps=-all", "--"])
        .arg(&exe)
        .args([
            "--exact",
            "run::tests::chroot_in_pod",
            "--ignored",
            "--nocapture",
        ])
        .env("HOD_IN_POD", "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
}

/// Runs inside `setpriv` (see above).
#[test]
#[ignore]
fn chroot_in_pod() {
    assert_eq!(std::env::var("HOD_IN_POD").as_deref(), Ok("1"));
    assert!(
        !crate::sys::caps::have_effective("CAP_SYS_ADMIN"),
        "setpriv did not drop CAP_SYS_ADMIN"
    );
    let f = fixture();
    let opts = RunOptions {
        isolation: Some(Isolation::Chroot),
        ..Default::default()
    };
    // A RUN step: write into the rootfs, use /dev/null, read /proc.
    let o = run(&f, &["sh", "-c", "mkdir -p /usr/share/x && echo built > /usr/share/x/f && cat /proc/self/status | grep -c CapEff > /dev/null && id -u"], &opts);
    assert_eq!(ok(&o).trim(), "0");
    assert_eq!(
        std::fs::read_to_string(f.rootfs.join("usr/share/x/f")).unwrap(),
        "built\n"
    );
    let o = run(&f, &["sh", "-c", "exit 7"], &opts);
    assert_eq!(o.status.unwrap(), 7);
}

#[test]
fn runtime_hardening() {
    if !can_run() {
        return;
    }
    let f = fixture();
    // R24: the init (hod's binary) is out of reach; R25: only fds 0-2 (+ ls's own) exist.
    let o = run(
        &f,
        &["sh", "-c", "cat /proc/1/exe > /dev/null 2>&1 && echo exe-readable; readlink /proc/1/fd/0 > /dev/null 2>&1 && echo fd-readable; ls /proc/self/fd | tr '\\n' ' '"],
        &RunOptions::default(),
    );
    assert_eq!(ok(&o).trim(), "0 1 2 3");
    // P29: inheritable and ambient stay empty even with every capability.
    let o = run(
        &f,
        &["sh", "-c", "grep -E '^Cap(Inh|Amb|Eff):' /proc/self/status"],
        &RunOptions {
            security: Security {
                cap_add: vec!["ALL".into()],
                ..Default::default()
            },
            ..Default::default()
        },
    );
    let out = ok(&o);
    assert!(
        out.contains("CapInh:\t0000000000000000") && out.contains("CapAmb:\t0000000000000000"),
        "{out}"
    );
    assert!(!out.contains("CapEff:\t0000000000000000"), "{out}");
    // R25: a working directory through /proc/self/fd is refused.
    let o = run(
        &f,
        &["true"],
        &RunOptions {
            workdir: Some("/proc/self/fd/3".into()),
            ..Default::default()
        },
    );
    assert!(o.status.is_err());
    // /proc/sys is read-only.
    let o = run(
        &f,
        &[
            "sh",
            "-c",
            "echo 1 > /proc/sys/kernel/sysrq 2>/dev/null || echo sysctl-ro",
        ],
        &RunOptions::default(),
    );
    assert_eq!(ok(&o).trim(), "sysctl-ro");
}

#[test]
fn planted_dev_and_proc_are_rejected() {
    if !can_run() {
        return;
    }
    // R26: /dev as a link out of the rootfs, /proc as a file.
    let f = fixture();
    let victim = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(victim.path(), f.rootfs.join("dev")).unwrap();
    let o = run(&f, &["true"], &RunOptions::default());
    let e = format!("{:#}", o.status.unwrap_err());
    assert!(e.contains("/dev") && e.contains("symbolic link"), "{e}");
    assert_eq!(
        std::fs::read_dir(victim.path()).unwrap().count(),
        0,
        "nothing created in the victim"
    );
    std::fs::remove_file(f.rootfs.join("dev")).unwrap();
    let _ = std::fs::remove_dir(f.rootfs.join("proc"));
    std::fs::write(f.rootfs.join("proc"), "").unwrap();
    let o = run(&f, &["true"], &RunOptions::default());
    let e = format!("{:#}", o.status.unwrap_err());
    assert!(e.contains("/proc") && e.contains("not a directory"), "{e}");
}

#[test]
fn terminal() {
    if !can_run() {
        return;
    }
    let f = fixture();
    let o = run(
        &f,
        &["sh", "-c", "[ -t 0 ] && [ -t 1 ] && tty && echo TERM=$TERM"],
        &RunOptions {
            terminal: Some(true),
            ..Default::default()
        },
    );
    let out = ok(&o);
    assert!(
        out.contains("/dev/console") && out.contains("TERM=xterm"),
        "{out}"
    );
}

#[test]
fn device_and_userns() {
    if !can_run() {
        return;
    }
    let f = fixture();
    let o = run(
        &f,
        &[
            "sh",
            "-c",
            "ls -l /dev/hodnull | cut -c1; echo x > /dev/hodnull && echo dev-ok",
        ],
        &RunOptions {
            devices: vec!["/dev/null:/dev/hodnull".into()],
            ..Default::default()
        },
    );
    assert_eq!(ok(&o), "c\ndev-ok\n");
    // A user namespace mapping container root to host 100000.
    let map = vec![IdMap {
        container_id: 0,
        host_id: 100000,
        size: 65536,
    }];
    let o = run(
        &f,
        &["sh", "-c", "cat /proc/self/uid_map; id -u"],
        &RunOptions {
            uid_map: map.clone(),
            gid_map: map,
            ..Default::default()
        },
    );
    let out = ok(&o);
    assert!(out.contains("100000") && out.ends_with("0\n"), "{out}");
}

#[test]
fn unshare_gives_a_private_mount_namespace() {
    if !can_run() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let t2 = tempfile::tempdir().unwrap();
    let out = t2.path().join("out");
    let script = format!(
        "mount -t tmpfs tmpfs {dir} && touch {dir}/inside && readlink /proc/self/ns/mnt > {out} && echo $_CONTAINERS_USERNS_CONFIGURED >> {out}",
        dir = t.path().display(),
        out = out.display()
    );
    // The mount is made in the helper's namespace: on the host the directory stays as it was.
    let code = super::unshare::unshare(&["sh".into(), "-c".into(), script], &[]).unwrap();
    assert_eq!(code, 0);
    assert!(
        !t.path().join("inside").exists(),
        "the tmpfs leaked to the host"
    );
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let host_ns = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    assert!(
        !text.is_empty() && !text.contains(host_ns.to_str().unwrap()),
        "{text}"
    );
    assert!(text.contains("done"), "{text}");
    let e = super::unshare::unshare(&["/nonexistent-cmd".into()], &[]).unwrap_err();
    assert!(e.to_string().contains("/nonexistent-cmd"), "{e}");
}

/// The debootstrap'd Debian minbase layout that `hack/make-debian-oci.sh` caches.
fn debian_layer() -> Option<PathBuf> {
    let cache =
        std::env::var("HOD_TEST_CACHE").unwrap_or_else(|_| "/var/tmp/hod-test-cache".into());
    let layout = Path::new(&cache).join("debian-bookworm-oci");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).ok()?).ok()?;
    let blob = |d: &str| {
        layout
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(blob(index["manifests"][0]["digest"].as_str()?)).ok()?,
    )
    .ok()?;
    Some(blob(manifest["layers"][0]["digest"].as_str()?))
}

#[test]
fn debian_minbase_dpkg() {
    if !can_run() {
        return;
    }
    let (Some(layer), Some(_)) = (debian_layer(), which("dpkg-deb")) else {
        crate::test_skip::skipped(
            "debian_minbase_dpkg",
            "no cached Debian layout (hack/make-debian-oci.sh) or no dpkg-deb",
        );
        return;
    };
    let f = fixture();
    let rootfs = f.rootfs.parent().unwrap().join("debian");
    std::fs::create_dir_all(&rootfs).unwrap();
    let st = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(&layer)
        .arg("-C")
        .arg(&rootfs)
        .status()
        .unwrap();
    assert!(st.success());
    // A local package.
    let pkg = f.rootfs.parent().unwrap().join("pkg");
    std::fs::create_dir_all(pkg.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(pkg.join("usr/share/hod-test")).unwrap();
    std::fs::write(pkg.join("DEBIAN/control"), "Package: hod-test\nVersion: 1.0\nArchitecture: all\nMaintainer: hod <hod@example.invalid>\nDescription: hod test package\n").unwrap();
    std::fs::write(pkg.join("usr/share/hod-test/hello"), "hello from a deb\n").unwrap();
    let st = std::process::Command::new("dpkg-deb")
        .args(["--build", "--root-owner-group"])
        .arg(&pkg)
        .arg(rootfs.join("tmp/hod-test.deb"))
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let deb = Fixture {
        _dir: tempfile::tempdir().unwrap(),
        rootfs: rootfs.clone(),
        bundle: f.bundle.clone(),
        cache: f.cache.clone(),
    };
    let o = run(
        &deb,
        &[
            "sh",
            "-c",
            "dpkg -i /tmp/hod-test.deb >/dev/null && cat /usr/share/hod-test/hello && id nobody",
        ],
        &RunOptions::default(),
    );
    let out = ok(&o);
    assert!(
        out.contains("hello from a deb") && out.contains("uid=65534(nobody)"),
        "{out}"
    );
    let o = run(
        &deb,
        &["sh", "-c", "id -un; touch /tmp/x 2>&1 || true"],
        &RunOptions {
            user: Some("nobody".into()),
            ..Default::default()
        },
    );
    assert!(ok(&o).starts_with("nobody\n"));
    let o = run(
        &deb,
        &["dpkg", "-r", "hod-test"],
        &RunOptions {
            isolation: Some(Isolation::Chroot),
            ..Default::default()
        },
    );
    ok(&o);
    assert!(!rootfs.join("usr/share/hod-test/hello").exists());
}

/// Not a test: `cargo test -p builder bench_run_true -- --ignored` writes the wall time of
/// 50 × `run true` (embedded and runc) to /tmp/hod-bench-run.txt.
#[test]
#[ignore]
fn bench_run_true() {
    let f = fixture();
    let mut report = String::new();
    for (name, rt) in [("embedded", None), ("runc", which("runc"))] {
        let start = std::time::Instant::now();
        for _ in 0..50 {
            let o = run(
                &f,
                &["true"],
                &RunOptions {
                    runtime: rt.clone(),
                    ..Default::default()
                },
            );
            assert_eq!(o.status.unwrap(), 0);
        }
        report.push_str(&format!(
            "{name}: {:.1} ms per run\n",
            start.elapsed().as_secs_f64() * 1000.0 / 50.0
        ));
    }
    std::fs::write("/tmp/hod-bench-run.txt", report).unwrap();
}

#[test]
fn rootless_isolation_and_runc_host_network() {
    if !can_run() {
        return;
    }
    let f = fixture();
    let host_uts = nix::unistd::gethostname().unwrap().into_string().unwrap();
    let o = run(
        &f,
        &[
            "sh",
            "-c",
            "cat /proc/self/uid_map | wc -l; hostname; readlink /proc/self/ns/user",
        ],
        &RunOptions {
            isolation: Some(Isolation::Rootless),
            ..Default::default()
        },
    );
    let out = ok(&o);
    let my_userns = std::fs::read_link("/proc/self/ns/user").unwrap();
    assert!(
        out.contains(&host_uts),
        "rootless shares the host's UTS namespace: {out}"
    );
    assert!(
        !out.contains(my_userns.to_str().unwrap()),
        "rootless gets a user namespace: {out}"
    );
    if let Some(runc) = need("rootless vs runc", "runc") {
        let o = run(
            &f,
            &[
                "sh",
                "-c",
                "grep -q ' /sys ' /proc/self/mountinfo && echo sys-ok",
            ],
            &RunOptions {
                runtime: Some(runc),
                namespaces: Namespaces {
                    network: Some(NetworkMode::Host),
                    ..Default::default()
                },
                ..Default::default()
            },
        );
        assert_eq!(ok(&o).trim(), "sys-ok");
    }
}

const PROBE: &str = r#"echo "== id"; id
echo "== status"; grep -E "^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp|Seccomp_filters):" /proc/self/status
echo "== uid_map"; cat /proc/self/uid_map
echo "== mounts"; awk '{print $5, $(NF-2), $6}' /proc/self/mountinfo | grep -E "^/(proc|dev|sys)" | grep -v -E "^/sys/fs/cgroup|^/sys/class/thermal" | sort
echo "== env"; env | grep -v -E "^(HOSTNAME|SHLVL|PWD)=" | sort
echo "== pwd"; pwd
echo "== dev"; ls /dev | tr '\n' ' '; echo
echo "== exit"; (exit 7); echo $?
"#;

fn sections(out: &str) -> std::collections::BTreeMap<String, String> {
    let mut m = std::collections::BTreeMap::new();
    let mut cur = String::new();
    for l in out.lines() {
        if let Some(name) = l.strip_prefix("== ") {
            cur = name.to_string();
            m.insert(cur.clone(), String::new());
        } else if let Some(v) = m.get_mut(&cur) {
            v.push_str(l);
            v.push('\n');
        }
    }
    m
}

/// The same probes under the embedded runtime, runc, and (when installed) buildah with runc
/// give the same answers, except for the differences docs/design/runtime.md lists (which the
/// probe filters out: cgroup mounts, the thermal mask, the hostname).
#[test]
fn same_answers_as_runc_and_buildah() {
    if !can_run() {
        return;
    }
    let f = fixture();
    std::fs::write(f.rootfs.join("probe.sh"), PROBE).unwrap();
    let embedded = run(&f, &["sh", "/probe.sh"], &RunOptions::default());
    let embedded = sections(ok(&embedded));
    assert_eq!(embedded.len(), 8, "{embedded:?}");
    assert_eq!(embedded["exit"], "7\n");
    if let Some(runc) = need("embedded vs runc", "runc") {
        let o = run(
            &f,
            &["sh", "/probe.sh"],
            &RunOptions {
                runtime: Some(runc),
                ..Default::default()
            },
        );
        assert_eq!(sections(ok(&o)), embedded, "embedded vs runc");
    }
    let Some(buildah) = need("embedded vs buildah", "buildah") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let b = |args: &[&str]| -> String {
        let out = std::process::Command::new(&buildah)
            .arg("--root")
            .arg(t.path().join("root"))
            .arg("--runroot")
            .arg(t.path().join("run"))
            .args(["--storage-driver", "vfs"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "buildah {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let ctr = b(&["from", "--quiet", "scratch"]).trim().to_string();
    let mnt = PathBuf::from(b(&["mount", &ctr]).trim());
    // A fresh copy for buildah, so that both start from the same tree.
    let pristine = fixture();
    std::fs::write(pristine.rootfs.join("probe.sh"), PROBE).unwrap();
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", pristine.rootfs.display()))
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(st.success());
    let theirs = sections(&b(&["run", &ctr, "sh", "/probe.sh"]));
    assert_eq!(theirs, embedded, "buildah vs hod");
    // What a run leaves in the rootfs (the future layer): same paths, types and modes.
    let tree = |root: &Path| -> Vec<String> {
        use std::os::unix::fs::MetadataExt;
        let mut v: Vec<String> = walkdir::WalkDir::new(root)
            .min_depth(1)
            .into_iter()
            .flatten()
            .filter(|e| !e.path().starts_with(root.join("bin")))
            .map(|e| {
                let m = e.path().symlink_metadata().unwrap();
                format!(
                    "{} {:o} {}",
                    e.path().strip_prefix(root).unwrap().display(),
                    m.mode(),
                    m.len()
                )
            })
            .collect();
        v.sort();
        v
    };
    let theirs_tree = tree(&mnt);
    let _ = b(&["rm", &ctr]);
    assert_eq!(
        tree(&f.rootfs),
        theirs_tree,
        "rootfs after a run: hod vs buildah"
    );
}

#[test]
fn etc_links_resolve_inside_the_rootfs() {
    if !can_run() {
        return;
    }
    // M23: /etc/hosts and /etc/resolv.conf planted as links climbing out of the rootfs.
    let f = fixture();
    let victim = tempfile::tempdir().unwrap();
    let vfile = victim.path().join("victim");
    std::fs::write(&vfile, "original").unwrap();
    let rel = format!("../../../../../../../..{}", vfile.display());
    std::os::unix::fs::symlink(&rel, f.rootfs.join("etc/hosts")).unwrap();
    std::os::unix::fs::symlink(&vfile, f.rootfs.join("etc/resolv.conf")).unwrap();
    let o = run(
        &f,
        &[
            "sh",
            "-c",
            "grep -c localhost /etc/hosts; echo changed > /etc/hosts",
        ],
        &RunOptions::default(),
    );
    ok(&o);
    assert_eq!(std::fs::read_to_string(&vfile).unwrap(), "original");
    // The links were followed inside the rootfs, where the placeholder now is.
    assert!(f.rootfs.join(vfile.strip_prefix("/").unwrap()).is_file());
}

#[test]
fn mount_target_swaps_stay_inside() {
    if !can_run() {
        return;
    }
    // R28: a racer swaps a directory and a link to the outside while runs set up mounts.
    let f = fixture();
    let outside = tempfile::tempdir().unwrap();
    let host = tempfile::tempdir().unwrap();
    std::fs::create_dir(f.rootfs.join("a")).unwrap();
    std::os::unix::fs::symlink(outside.path(), f.rootfs.join("b")).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let racer = {
        let stop = stop.clone();
        let root = f.rootfs.clone();
        std::thread::spawn(move || {
            let dir = std::fs::File::open(&root).unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = rustix::fs::renameat_with(
                    &dir,
                    "a",
                    &dir,
                    "b",
                    rustix::fs::RenameFlags::EXCHANGE,
                );
            }
        })
    };
    let opts = RunOptions {
        volumes: vec![format!("{}:/a/x", host.path().display())],
        ..Default::default()
    };
    for _ in 0..100 {
        let _ = run(
            &f,
            &["sh", "-c", "touch /a/x/from-container 2>/dev/null; true"],
            &opts,
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    racer.join().unwrap();
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        0,
        "something was created outside the rootfs"
    );
}

#[test]
fn image_volume_mountpoints_are_created() {
    // buildah's run.bats "run-builtin-volume-omitted": an image that declares a volume
    // but lacks its directory gets the mountpoint created by `run`.
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("var")).unwrap();
    let bundle = dir.path().join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    let mut config = ContainerConfig::default();
    let mut vols = crate::image::config::EmptyObject::new();
    vols.insert("/var/lib/registry".into(), serde_json::json!({}));
    vols.insert("relative/ignored".into(), serde_json::json!({}));
    config.volumes = Some(vols);
    prepare(
        &rootfs,
        &config,
        &["true".to_string()],
        &RunOptions::default(),
        "0123456789abcdef",
        "ctr",
        &bundle,
        &dir.path().join("cache"),
    )
    .unwrap();
    assert!(rootfs.join("var/lib/registry").is_dir());
    assert!(!rootfs.join("relative").exists());
}

#[test]
fn containerenv_is_provided_and_its_placeholder_removed() {
    // run.bats "Verify /run/.containerenv exist": buildah binds a sourceable file there.
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    let bundle = dir.path().join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    let opts = RunOptions {
        image_name: "docker.io/library/alpine:latest".into(),
        image_id: "abc123".into(),
        ..Default::default()
    };
    let (spec, _) = prepare(
        &rootfs,
        &ContainerConfig::default(),
        &["true".to_string()],
        &opts,
        "0123456789abcdef",
        "alpine-working-container",
        &bundle,
        &dir.path().join("cache"),
    )
    .unwrap();
    let shm = |spec: &oci_spec::runtime::Spec| {
        spec.mounts()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .find(|m| m.destination() == Path::new("/dev/shm"))
            .and_then(|m| m.options().clone())
            .unwrap_or_default()
    };
    assert!(shm(&spec).contains(&"size=65536k".to_string()));
    let sized = RunOptions {
        resources: Resources::parse(None, Some("80m"), &[]).unwrap(),
        ..opts.clone()
    };
    let (spec80, _) = prepare(
        &rootfs,
        &ContainerConfig::default(),
        &["true".to_string()],
        &sized,
        "0123456789abcdef",
        "alpine-working-container",
        &bundle,
        &dir.path().join("cache"),
    )
    .unwrap();
    assert!(shm(&spec80).contains(&"size=83886080".to_string()));
    let env = std::fs::read_to_string(bundle.join("containerenv")).unwrap();
    assert!(env.contains("engine=\"buildah-"), "{env}");
    assert!(env.contains("name=\"alpine-working-container\"\n"), "{env}");
    assert!(
        env.contains("image=\"docker.io/library/alpine:latest\"\n"),
        "{env}"
    );
    assert!(env.contains("imageid=\"abc123\"\n"), "{env}");
    let mounts = spec.mounts().clone().unwrap_or_default();
    assert!(mounts
        .iter()
        .any(|m| m.destination() == Path::new("/run/.containerenv")));
    // The empty mount point made for it goes away after the run; a real file stays.
    assert!(rootfs.join("run/.containerenv").is_file());
    remove_containerenv_placeholder(&rootfs);
    assert!(!rootfs.join("run/.containerenv").exists());
    assert!(rootfs.join("run").is_dir());
    std::fs::write(rootfs.join("run/.containerenv"), "x=1\n").unwrap();
    remove_containerenv_placeholder(&rootfs);
    assert!(rootfs.join("run/.containerenv").exists());
    assert!(containerenv_present(&rootfs));
}

#[test]
fn volume_u_flag_gives_the_source_to_the_run_user() {
    // run.bats "run --volume with U flag": --user 888:888 -v SRC:/mnt:z,U, then the user
    // can create files there and they are owned 888:888.
    if !can_run() {
        return;
    }
    let f = fixture();
    let host = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        host.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let opts = RunOptions {
        user: Some("888:888".into()),
        volumes: vec![format!("{}:/mnt:z,U", host.path().display())],
        ..Default::default()
    };
    let o = run(
        &f,
        &["sh", "-c", "touch /mnt/f && stat -c %u:%g /mnt/f"],
        &opts,
    );
    assert_eq!(ok(&o).trim(), "888:888");
    let md = std::fs::metadata(host.path()).unwrap();
    assert_eq!(
        (
            std::os::unix::fs::MetadataExt::uid(&md),
            std::os::unix::fs::MetadataExt::gid(&md)
        ),
        (888, 888)
    );
}
