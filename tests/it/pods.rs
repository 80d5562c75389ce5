//! Issue 15 item 3: hod as root in a Kubernetes pod, simulated with `hack/pod.sh` (no
//! cluster): a pod with user namespaces (`hostUsers: false`; 65536 IDs, or only one), and a
//! pod without CAP_SYS_ADMIN and without user namespaces (a pod's default capabilities as the
//! bounding set, CLONE_NEWUSER refused by a seccomp filter as RuntimeDefault does).
//!
//! In each, `hod bud` of a Containerfile with RUN, COPY --chown and USER succeeds with the
//! defaults (storage.conf says overlay; neither `--storage-driver` nor `--isolation` is
//! given), hod says in one `WARN` line what it fell back to, and the pushed image's layers
//! hold what the steps made with the owners they gave (1001 for COPY --chown and for the
//! file the USER 1001 RUN wrote), and no device node or /etc file the run got for itself.
//! Without user namespaces the primitives (`from`, `run`, `copy`, `commit`, `push`) work with
//! `BUILDAH_ISOLATION=chroot` and `STORAGE_DRIVER=vfs` too.

use crate::common::{self, Run, TestContext};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const CONTAINERFILE: &str = "FROM localhost/bb
RUN echo app:x:1001:0::/home/app:/bin/sh >> /etc/passwd && mkdir -p /home/app && chown 1001:0 /home/app && cat /proc/self/uid_map 2>/dev/null; echo step-ran
COPY --chown=1001:0 f /app/f
USER 1001
RUN id && cat /app/f && echo written-by-app > /home/app/out && ls -ln /app
";

/// A pod kind of `hack/pod.sh`.
#[derive(Clone, Copy, PartialEq)]
enum Pod {
    /// `hostUsers: false` with the kubelet's 65536 IDs.
    UserNamespace,
    /// `hostUsers: false` where only the pod's root is mapped.
    OneId,
    /// No CAP_SYS_ADMIN, no user namespaces.
    NoUserNamespace,
}

impl Pod {
    fn arg(self) -> &'static str {
        match self {
            Pod::UserNamespace => "userns-range",
            Pod::OneId => "userns",
            Pod::NoUserNamespace => "nouserns",
        }
    }
}

/// Host ID the simulated pod's root maps to in the 65536-ID pod (what `hack/pod.sh` is told).
const ID_BASE: u32 = 300000;

struct PodStore {
    ctx: TestContext,
    pod: Pod,
    conf: PathBuf,
    /// Environment for hack/pod.sh (`POD_RUNTIME`, `POD_CAPS_ADD`).
    pod_env: Vec<(&'static str, &'static str)>,
}

impl PodStore {
    /// A store for `pod`: owned by the pod's root, seeded with busybox as `localhost/bb`
    /// from inside the pod (as a pod pulls its base image).
    fn new(pod: Pod) -> PodStore {
        Self::with_env(pod, Vec::new())
    }

    fn with_env(pod: Pod, pod_env: Vec<(&'static str, &'static str)>) -> PodStore {
        let ctx = TestContext::new("vfs");
        // The pod's root must reach the store, the context and the output (a pod's volume).
        fs::set_permissions(ctx.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let conf = ctx.path("storage.conf");
        fs::write(&conf, "[storage]\ndriver = \"overlay\"\n").unwrap();
        let s = PodStore {
            ctx,
            pod,
            conf,
            pod_env,
        };
        if pod == Pod::UserNamespace {
            for d in [&s.ctx.root, &s.ctx.runroot] {
                chown(d, ID_BASE);
            }
        }
        let layout = common::busybox_layout();
        let r = s.hod(&["pull", "-q", &format!("oci:{}:latest", layout.display())]);
        assert_eq!(r.code, Some(0), "pull in the pod: {}", r.dump());
        let id = r.stdout.lines().last().unwrap().to_string();
        s.ok(&["tag", &id, "localhost/bb"]);
        s
    }

    /// `hack/pod.sh <pod> hod --root … --runroot … ARGS` with storage.conf saying overlay
    /// and nothing else choosing the driver or the isolation.
    fn cmd(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut c = Command::new(common::repo_dir().join("hack/pod.sh"));
        c.arg(self.pod.arg())
            .arg(&self.ctx.bin)
            .args(["--root", &self.ctx.root.display().to_string()])
            .args(["--runroot", &self.ctx.runroot.display().to_string()])
            .args([
                "--registries-conf",
                &self.ctx.path("registries.conf").display().to_string(),
            ])
            .args(args)
            .env("CONTAINERS_STORAGE_CONF", &self.conf)
            .env("POD_ID_BASE", ID_BASE.to_string())
            .env_remove("STORAGE_DRIVER")
            .env_remove("BUILDAH_ISOLATION")
            .env_remove("STORAGE_OPTS");
        for (k, v) in self.pod_env.iter().chain(env) {
            c.env(k, v);
        }
        c
    }

    fn hod(&self, args: &[&str]) -> Run {
        let r = common::run_cmd(self.cmd(args, &[]));
        common::assert_no_panic(&r);
        r
    }

    fn ok(&self, args: &[&str]) -> String {
        let r = self.hod(args);
        assert_eq!(r.code, Some(0), "{args:?}: {}", r.dump());
        r.out().to_string()
    }

    /// A directory the pod's root may write.
    fn pod_dir(&self, name: &str) -> PathBuf {
        let d = self.ctx.path(name);
        fs::create_dir_all(&d).unwrap();
        if self.pod == Pod::UserNamespace {
            chown(&d, ID_BASE);
        }
        d
    }

    /// The bud context.
    fn context(&self) -> PathBuf {
        let d = self.pod_dir("context");
        fs::write(d.join("Containerfile"), CONTAINERFILE).unwrap();
        fs::write(d.join("f"), "copied-file\n").unwrap();
        fs::set_permissions(d.join("f"), fs::Permissions::from_mode(0o644)).unwrap();
        d
    }

    /// Push `image` to an OCI layout and list its layers' entries as
    /// `(path, "uid/gid", type char)`.
    fn pushed_entries(&self, image: &str) -> Vec<(String, String, char)> {
        let out = self.pod_dir("out");
        let dest = format!("oci:{}:img", out.join(image).display());
        self.ok(&["push", "-q", image, &dest]);
        let layout = out.join(image);
        let (manifest, _) = common::oci_manifest_and_config(&layout, "img");
        let mut entries = Vec::new();
        for l in manifest["layers"].as_array().unwrap() {
            let d = l["digest"].as_str().unwrap().trim_start_matches("sha256:");
            let blob = layout.join("blobs/sha256").join(d);
            let o = Command::new("tar")
                .args(["--numeric-owner", "-tvzf"])
                .arg(&blob)
                .output()
                .unwrap();
            assert!(o.status.success(), "tar -tvzf {}", blob.display());
            for line in String::from_utf8_lossy(&o.stdout).lines() {
                let f: Vec<&str> = line.split_whitespace().collect();
                let path = f[5].trim_start_matches("./").to_string();
                entries.push((path, f[1].to_string(), f[0].chars().next().unwrap()));
            }
        }
        entries
    }
}

fn chown(p: &Path, id: u32) {
    std::os::unix::fs::chown(p, Some(id), Some(id)).unwrap();
}

/// The warning lines of a run's stderr, as a terminal shows them (`WARN[0000] msg`); off a
/// terminal hod writes logrus's `time="…" level=warning msg="…"`, as buildah does.
fn warnings(r: &Run) -> Vec<String> {
    r.stderr
        .lines()
        .filter_map(|l| {
            if l.starts_with("WARN[") {
                return Some(l.to_string());
            }
            let (_, rest) = l.split_once(" level=warning msg=")?;
            let msg: String = serde_json::from_str(rest).ok()?;
            Some(format!("WARN[0000] {msg}"))
        })
        .collect()
}

fn owner_of<'a>(entries: &'a [(String, String, char)], path: &str) -> &'a str {
    entries
        .iter()
        .rev()
        .find(|e| e.0 == path)
        .map(|e| e.1.as_str())
        .unwrap_or_else(|| panic!("{path} is not in the layers: {entries:?}"))
}

fn require(test: &str) -> bool {
    common::require(test, &["perl", "setpriv", "unshare", "tar"])
}

/// bud with the defaults in `pod`; returns the run and the pushed image's entries.
fn bud_in(pod: Pod) -> (PodStore, Run, Vec<(String, String, char)>) {
    bud_in_store(PodStore::new(pod))
}

fn bud_in_store(s: PodStore) -> (PodStore, Run, Vec<(String, String, char)>) {
    let ctx_dir = s.context();
    let r = s.hod(&[
        "bud",
        "--pull=never",
        "-t",
        "localhost/podbuild",
        &ctx_dir.display().to_string(),
    ]);
    assert_eq!(r.code, Some(0), "bud in the pod: {}", r.dump());
    assert!(r.stdout.contains("step-ran"), "{}", r.dump());
    assert!(r.stdout.contains("uid=1001(app)"), "{}", r.dump());
    assert!(r.stdout.contains("copied-file"), "{}", r.dump());
    let entries = s.pushed_entries("localhost/podbuild");
    for (path, _, kind) in &entries {
        assert!(
            !(path.starts_with("dev/") && (*kind == 'c' || *kind == 'b')),
            "a device node of the run got into the image: {path}"
        );
    }
    (s, r, entries)
}

#[test]
fn pod_without_user_namespaces() {
    if !require("pod_without_user_namespaces") {
        return;
    }
    // The simulation really refuses what such a pod refuses.
    for (what, args) in [
        ("a user namespace", &["unshare", "--user", "true"][..]),
        ("a mount namespace", &["unshare", "--mount", "true"][..]),
    ] {
        let st = Command::new(common::repo_dir().join("hack/pod.sh"))
            .arg("nouserns")
            .args(args)
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(!st.success(), "the simulated pod allowed {what}");
    }
    let (s, r, entries) = bud_in(Pod::NoUserNamespace);
    let w = warnings(&r);
    assert_eq!(
        w,
        [
            "WARN[0000] no CAP_SYS_ADMIN, no user namespaces: using storage driver vfs instead of \
          overlay, isolation chroot without namespaces (RUN gets no /proc, /sys or mounts) \
          instead of oci"
        ],
        "{}",
        r.dump()
    );
    assert_eq!(owner_of(&entries, "app/f"), "1001/0");
    assert_eq!(owner_of(&entries, "home/app/out"), "1001/0");
    // The files a run gets were put back as they were (empty mount points).
    for f in ["etc/hosts", "etc/resolv.conf", "etc/hostname"] {
        if let Some(e) = entries.iter().rev().find(|e| e.0 == f) {
            assert_eq!(e.2, '-', "{f}");
        }
    }

    // The primitives, with the choices given in the environment as a pod's manifest does.
    let env = [("BUILDAH_ISOLATION", "chroot"), ("STORAGE_DRIVER", "vfs")];
    let step =
        |args: &[&str]| -> String {
            let r = common::run_cmd(s.cmd(args, &env));
            common::assert_no_panic(&r);
            assert_eq!(r.code, Some(0), "{args:?}: {}", r.dump());
            // The driver was chosen: only the isolation's setup is reported.
            assert_eq!(
            warnings(&r),
            ["WARN[0000] no CAP_SYS_ADMIN, no user namespaces: using isolation chroot without \
              namespaces (RUN gets no /proc, /sys or mounts)"],
            "{}",
            r.dump()
        );
            r.out().to_string()
        };
    let ctr = step(&["from", "--pull=never", "localhost/bb"]);
    let out = step(&[
        "run",
        &ctr,
        "--",
        "sh",
        "-c",
        "echo ran > /ran && echo to-null > /dev/null && grep -c localhost /etc/hosts",
    ]);
    assert_ne!(out.trim(), "0", "/etc/hosts in the run: {out}");
    // The files a run got are put back through what they were, not through what the run
    // left at their path: a link to /etc/group does not get /etc/group overwritten.
    let mnt = PathBuf::from(s.ctx.ok(["mount", &ctr]));
    let group = fs::read(mnt.join("etc/group")).unwrap();
    step(&[
        "run",
        &ctr,
        "--",
        "sh",
        "-c",
        "ln -sf /etc/group /etc/hosts",
    ]);
    assert_eq!(fs::read(mnt.join("etc/group")).unwrap(), group);
    s.ctx.ok(["umount", &ctr]);
    let src = s.ctx.path("context/f");
    step(&[
        "copy",
        "--chown",
        "1001:0",
        &ctr,
        &src.display().to_string(),
        "/c",
    ]);
    step(&["commit", "-q", &ctr, "localhost/prim"]);
    let e = s.pushed_entries("localhost/prim");
    assert_eq!(owner_of(&e, "c"), "1001/0");
    owner_of(&e, "ran");
    // Without --isolation chroot, a run asking for OCI says what it needs.
    let r = common::run_cmd(s.cmd(&["run", "--isolation", "oci", &ctr, "true"], &env));
    assert_eq!(r.code, Some(125), "{}", r.dump());
    assert!(r.stderr.contains("needs CAP_SYS_ADMIN"), "{}", r.dump());
}

#[test]
fn pod_with_user_namespaces() {
    if !require("pod_with_user_namespaces") {
        return;
    }
    let (_s, r, entries) = bud_in(Pod::UserNamespace);
    // RUN ran in the pod's namespace (its root is host ID ID_BASE) with OCI isolation.
    assert!(
        r.stdout.contains(&format!("0 {ID_BASE} 65536"))
            || r.stdout
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>()
                    == ["0", &ID_BASE.to_string(), "65536"]),
        "{}",
        r.dump()
    );
    let w = warnings(&r);
    assert!(w.len() <= 1, "{}", r.dump());
    // Only the driver may fall back (overlay as a user namespace's root depends on the
    // kernel and the driver); namespaces can be created, so isolation stays OCI.
    for l in &w {
        assert!(l.contains("in a user namespace"), "{l}");
        assert!(!l.contains("isolation"), "{l}");
    }
    assert_eq!(owner_of(&entries, "app/f"), "1001/0");
    assert_eq!(owner_of(&entries, "home/app/out"), "1001/0");
}

#[test]
fn pod_with_one_id() {
    if !require("pod_with_one_id") {
        return;
    }
    let (_s, r, entries) = bud_in(Pod::OneId);
    assert_eq!(
        warnings(&r),
        [
            "WARN[0000] in a user namespace with one ID: using storage driver vfs instead of \
          overlay, root as the owner of every file (no other ID to give)"
        ],
        "{}",
        r.dump()
    );
    // The one ID is the pod's root: everything is root's in the layers.
    assert_eq!(owner_of(&entries, "app/f"), "0/0");
    assert_eq!(owner_of(&entries, "home/app/out"), "0/0");
}

/// shell-examples/s2i.sh in a pod without user namespaces, configured as the tutorial's
/// manifest does it (`BUILDAH_ISOLATION=chroot`, `STORAGE_DRIVER=vfs`): the application
/// image runs under podman as 1001.
#[test]
fn s2i_in_a_pod_without_user_namespaces() {
    if !common::require(
        "s2i_in_a_pod_without_user_namespaces",
        &["perl", "setpriv", "podman"],
    ) {
        return;
    }
    let ctx = TestContext::new("vfs");
    let mut c = Command::new(common::repo_dir().join("hack/pod.sh"));
    c.args(["nouserns", "env"])
        .arg(format!("HOD={}", ctx.bin.display()))
        .arg(format!("HOD_ROOT={}", ctx.root.display()))
        .arg(format!("HOD_RUNROOT={}", ctx.runroot.display()))
        .arg(format!("OCI_DIR={}", ctx.path("oci").display()))
        .args(["BUILDAH_ISOLATION=chroot", "STORAGE_DRIVER=vfs"])
        .arg(common::repo_dir().join("shell-examples/s2i.sh"));
    let r = common::run_cmd(c);
    common::assert_no_panic(&r);
    assert_eq!(r.code, Some(0), "{}", r.dump());
    assert!(
        r.stderr
            .contains("using isolation chroot without namespaces"),
        "{}",
        r.dump()
    );
    let mut args: Vec<&str> = vec!["run", "--rm"];
    args.extend(common::PODMAN_RUN_OPTS);
    args.push("localhost/s2i-app:latest");
    let p = ctx.podman(&args);
    assert_eq!(p.code, Some(0), "{}", p.dump());
    assert_eq!(p.stdout, "hello from s2i, uid=1001\nbuilt by uid 1001\n");
}

/// The same pod on CRI-O, whose default capabilities lack SYS_CHROOT (and MKNOD): RUN says
/// what to add; with SYS_CHROOT added, bud works (the run's /dev has no nodes then).
#[test]
fn pod_without_user_namespaces_on_crio() {
    if !require("pod_without_user_namespaces_on_crio") {
        return;
    }
    let s = PodStore::with_env(Pod::NoUserNamespace, vec![("POD_RUNTIME", "crio")]);
    let ctx_dir = s.context();
    let r = s.hod(&["bud", "--pull=never", &ctx_dir.display().to_string()]);
    assert_eq!(r.code, Some(125), "{}", r.dump());
    assert!(
        r.stderr
            .contains("add SYS_CHROOT to the pod's capabilities"),
        "{}",
        r.dump()
    );
    let s = PodStore::with_env(
        Pod::NoUserNamespace,
        vec![("POD_RUNTIME", "crio"), ("POD_CAPS_ADD", "sys_chroot")],
    );
    let (_s, _r, entries) = bud_in_store(s);
    assert_eq!(owner_of(&entries, "app/f"), "1001/0");
    assert_eq!(owner_of(&entries, "home/app/out"), "1001/0");
}

/// A pod with user namespaces but only the default capabilities (no `capabilities.add`):
/// no CAP_SYS_ADMIN even in its own namespace, so RUN is chroot in a nested user namespace
/// over the pod's 65536 IDs, and owners are kept.
#[test]
fn pod_with_user_namespaces_and_default_capabilities() {
    if !require("pod_with_user_namespaces_and_default_capabilities") {
        return;
    }
    let s = PodStore::with_env(Pod::UserNamespace, vec![("POD_DEFAULT_CAPS", "1")]);
    let (_s, r, entries) = bud_in_store(s);
    assert_eq!(
        warnings(&r),
        [
            "WARN[0000] no CAP_SYS_ADMIN, in a user namespace: using storage driver vfs instead \
          of overlay, isolation chroot instead of oci"
        ],
        "{}",
        r.dump()
    );
    assert_eq!(owner_of(&entries, "app/f"), "1001/0");
    assert_eq!(owner_of(&entries, "home/app/out"), "1001/0");
}
