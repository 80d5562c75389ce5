//! Shared harness of the integration tests: a [`TestContext`] owns a fresh
//! store (`--root`, `--runroot`, `--storage-driver`) in a short temporary
//! directory and runs the binary under test against it.
//!
//! The binary is `$HOD_BIN` when set (e.g. `HOD_BIN=/usr/bin/buildah cargo
//! test --test it` validates the tests against buildah), else the `hod` that
//! cargo built for this test run.
//!
//! Tests that need root, podman, skopeo or another tool call one of the
//! `require_*` functions first: they return `false` and print a loud
//! `SKIPPED` line when the tool (or root) is missing, so the test returns
//! early. CI runs as root with every tool installed, so they all run there;
//! when `CI` is set (`.ci/run` sets it), [`skipped`] panics instead: a check
//! CI should run never passes by skipping.
#![allow(dead_code)]

pub mod registry;

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The two storage drivers every store-level item is tested with.
pub const DRIVERS: &[&str] = &["vfs", "overlay"];

/// podman as root needs these on these machines (root lacks CAP_SYS_RESOURCE).
pub const PODMAN_RUN_OPTS: &[&str] = &[
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
    "--net",
    "none",
];

/// Path of the binary under test.
pub fn hod_bin() -> PathBuf {
    match std::env::var_os("HOD_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_hod")),
    }
}

/// True when the binary under test is buildah (HOD_BIN=…/buildah): used only
/// to skip the checks of behaviour that buildah 1.28.2 lacks but the issues ask for.
pub fn is_buildah() -> bool {
    hod_bin()
        .file_name()
        .and_then(OsStr::to_str)
        .is_some_and(|n| n.starts_with("buildah"))
}

/// The repository root (for hack/ scripts).
pub fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn cache_dir() -> PathBuf {
    std::env::var_os("HOD_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/hod-test-cache"))
}

/// True when running in CI (`CI` set and not empty): skips are failures there.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// Reports that `test` cannot run (a missing tool or capability): a loud
/// `SKIPPED` line, or, in CI ([`in_ci`]), a test failure.
pub fn skipped(test: &str, why: &str) {
    if in_ci() {
        panic!("{test} would be SKIPPED ({why}), and CI is set: skips fail in CI");
    }
    eprintln!("########## SKIPPED {test}: {why} ##########");
    registry::log_skip(test, why);
}

pub fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool} >/dev/null")])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Root and every tool in `tools`; otherwise prints a loud SKIPPED line.
pub fn require(test: &str, tools: &[&str]) -> bool {
    if !is_root() {
        skipped(test, "needs root (CI runs as root)");
        return false;
    }
    for t in tools {
        if !have(t) {
            skipped(
                test,
                &format!("{t} is not installed (hack/test.sh installs it)"),
            );
            return false;
        }
    }
    true
}

/// Output of a finished command, with stdout/stderr as strings.
#[derive(Debug)]
pub struct Run {
    pub cmdline: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from_output(cmdline: String, o: Output) -> Run {
        Run {
            cmdline,
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// stdout without the trailing newline.
    pub fn out(&self) -> &str {
        self.stdout.trim_end_matches('\n')
    }

    pub fn dump(&self) -> String {
        format!(
            "$ {}\nexit: {:?}\n--- stdout\n{}--- stderr\n{}",
            self.cmdline, self.code, self.stdout, self.stderr
        )
    }

    pub fn success(self) -> Run {
        assert_eq!(self.code, Some(0), "command failed:\n{}", self.dump());
        self
    }

    pub fn code_is(self, code: i32) -> Run {
        assert_eq!(
            self.code,
            Some(code),
            "unexpected exit status:\n{}",
            self.dump()
        );
        self
    }

    /// The buildah error contract: exit 125 and exactly one `Error: …` line on
    /// stderr that names `what`; never a panic.
    pub fn one_error_naming(self, what: &str) -> Run {
        if let Err(e) = self.check_one_error_naming(what) {
            panic!("{e}");
        }
        self
    }

    /// [`Run::one_error_naming`] as a check: `Err(explanation)` on failure.
    pub fn check_one_error_naming(&self, what: &str) -> Result<(), String> {
        if self.code != Some(125) {
            return Err(format!("expected exit 125:\n{}", self.dump()));
        }
        if self.stderr.contains("panicked at") {
            return Err(format!("panic:\n{}", self.dump()));
        }
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            // buildah prints logrus warnings and libimage's `Trying to pull NAME...` before
            // the error; not errors
            .filter(|l| {
                let trying = l.starts_with("Trying to pull ") && l.ends_with("...");
                !(l.starts_with("time=") || l.starts_with("WARN") || trying)
            })
            .collect();
        if lines.len() != 1 {
            return Err(format!("expected one error line:\n{}", self.dump()));
        }
        if !lines[0].starts_with("Error: ") {
            return Err(format!("expected `Error: …`:\n{}", self.dump()));
        }
        if !lines[0].contains(what) {
            return Err(format!("error does not name {what:?}:\n{}", self.dump()));
        }
        Ok(())
    }
}

pub fn assert_no_panic(r: &Run) {
    assert!(
        !r.stderr.contains("panicked at") && !r.stderr.contains("RUST_BACKTRACE"),
        "the binary panicked:\n{}",
        r.dump()
    );
    assert_ne!(r.code, Some(101), "exit 101 is a Rust panic:\n{}", r.dump());
}

pub fn run_cmd(mut cmd: Command) -> Run {
    let cmdline = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("spawning {cmdline}: {e}"));
    Run::from_output(cmdline, out)
}

/// A fresh store in a short directory below /var/tmp (podman refuses
/// runroots longer than 50 characters; overlay needs a real filesystem).
pub struct TestContext {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub runroot: PathBuf,
    pub driver: String,
    pub bin: PathBuf,
}

impl TestContext {
    pub fn new(driver: &str) -> TestContext {
        Self::with_bin(driver, hod_bin())
    }

    /// A store used by another binary (e.g. the reference buildah).
    pub fn with_bin(driver: &str, bin: PathBuf) -> TestContext {
        let dir = tempfile::Builder::new()
            .prefix("hodit.")
            .tempdir_in("/var/tmp")
            .expect("creating a temporary directory in /var/tmp");
        let root = dir.path().join("root");
        let runroot = dir.path().join("run");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&runroot).unwrap();
        fs::write(
            dir.path().join("registries.conf"),
            "unqualified-search-registries = [\"docker.io\"]\nshort-name-mode = \"permissive\"\n",
        )
        .unwrap();
        TestContext {
            dir,
            root,
            runroot,
            driver: driver.to_string(),
            bin,
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The global options every command gets.
    pub fn global_args(&self) -> Vec<String> {
        vec![
            "--root".into(),
            self.root.display().to_string(),
            "--runroot".into(),
            self.runroot.display().to_string(),
            "--storage-driver".into(),
            self.driver.clone(),
            "--registries-conf".into(),
            self.path("registries.conf").display().to_string(),
        ]
    }

    /// `containers-storage:` store specification for skopeo.
    pub fn store_spec(&self) -> String {
        format!(
            "[{}@{}+{}]",
            self.driver,
            self.root.display(),
            self.runroot.display()
        )
    }

    pub fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Command::new(&self.bin);
        c.args(self.global_args()).args(args);
        c
    }

    pub fn hod<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_cmd(self.cmd(args))
    }

    /// Runs and asserts success; returns trimmed stdout.
    pub fn ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let r = self.hod(args).success();
        assert_no_panic(&r);
        r.out().to_string()
    }

    pub fn podman<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Command::new("podman");
        c.args([
            "--root",
            &self.root.display().to_string(),
            "--runroot",
            &self.runroot.display().to_string(),
            "--storage-driver",
            &self.driver,
        ])
        .args(args);
        run_cmd(c)
    }

    /// Copies the busybox fixture into this store as `name`.
    pub fn seed_busybox(&self, name: &str) {
        self.seed(&busybox_layout(), name)
    }

    pub fn seed(&self, layout: &Path, name: &str) {
        let mut c = Command::new("skopeo");
        c.args([
            "copy",
            "--quiet",
            &format!("oci:{}:latest", layout.display()),
            &format!("containers-storage:{}{name}", self.store_spec()),
        ]);
        run_cmd(c).success();
    }

    /// A working container from scratch holding busybox and its applet links,
    /// configured like the scratch example. Returns the container name.
    pub fn scratch_busybox_container(&self) -> String {
        let ctr = self.ok(["from", "scratch"]);
        let mnt = PathBuf::from(self.ok(["mount", &ctr]));
        fs::create_dir_all(mnt.join("bin")).unwrap();
        fs::copy("/bin/busybox", mnt.join("bin/busybox")).unwrap();
        for applet in ["sh", "echo", "ls", "cat", "id"] {
            std::os::unix::fs::symlink("busybox", mnt.join("bin").join(applet)).unwrap();
        }
        self.ok(["umount", &ctr]);
        self.ok([
            "config",
            "--entrypoint",
            r#"["/bin/busybox"]"#,
            "--env",
            "foo=bar",
            "--label",
            "k=v",
            &ctr,
        ]);
        ctr
    }

    pub fn image_id(&self, image: &str) -> String {
        let id = self.ok(["images", "-q", "--no-trunc", image]);
        id.trim_start_matches("sha256:").to_string()
    }
}

impl Drop for TestContext {
    fn drop(&mut self) {
        unmount_below(self.dir.path());
    }
}

/// Lazily unmounts everything mounted below `dir`, deepest first.
pub fn unmount_below(dir: &Path) {
    let prefix = format!("{}/", dir.display());
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_unstable_by(|a, b| b.cmp(a));
    for p in points {
        let _ = Command::new("umount").args(["-l", p]).status();
    }
}

/// The cached busybox OCI layout built by hack/make-busybox-oci.sh.
pub fn busybox_layout() -> PathBuf {
    static LAYOUT: OnceLock<PathBuf> = OnceLock::new();
    LAYOUT
        .get_or_init(|| build_fixture("busybox-oci", "hack/make-busybox-oci.sh"))
        .clone()
}

/// The cached Debian minbase layout (hack/make-debian-oci.sh; debootstrap on
/// first use). `None` (with a SKIPPED line) if it cannot be built.
pub fn debian_layout() -> Option<PathBuf> {
    static LAYOUT: OnceLock<Option<PathBuf>> = OnceLock::new();
    LAYOUT
        .get_or_init(|| {
            let cached = cache_dir().join("debian-bookworm-oci");
            if cached.join("index.json").exists() {
                return Some(cached);
            }
            if !is_root() || !have("debootstrap") {
                skipped("debian fixture", "needs root and debootstrap");
                return None;
            }
            let tmp = cache_dir().join(format!("debian-it.{}", std::process::id()));
            let r = run_cmd({
                let mut c = Command::new("flock");
                c.arg(cache_dir().join("debian.lock"))
                    .arg(repo_dir().join("hack/make-debian-oci.sh"))
                    .arg(&tmp);
                c
            });
            let _ = fs::remove_dir_all(&tmp);
            if r.code != Some(0) {
                skipped(
                    "debian fixture",
                    &format!("make-debian-oci.sh failed:\n{}", r.dump()),
                );
                return None;
            }
            Some(cached)
        })
        .clone()
}

fn build_fixture(name: &str, script: &str) -> PathBuf {
    let cache = cache_dir();
    fs::create_dir_all(&cache).unwrap();
    let dest = cache.join(name);
    if dest.join("index.json").exists() {
        return dest;
    }
    let tmp = cache.join(format!(".{name}.{}", std::process::id()));
    let mut c = Command::new(repo_dir().join(script));
    c.arg(&tmp);
    run_cmd(c).success();
    // Atomic publish; another process may have won the race, which is fine.
    if fs::rename(&tmp, &dest).is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    dest
}

/// Reads an OCI layout's manifest for `tag` and the config it points to.
pub fn oci_manifest_and_config(layout: &Path, tag: &str) -> (serde_json::Value, serde_json::Value) {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).expect("index.json")).unwrap();
    let entry = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no {tag} in {}", layout.display()))
        .clone();
    let blob = |d: &serde_json::Value| {
        let d = d.as_str().unwrap().trim_start_matches("sha256:");
        serde_json::from_slice::<serde_json::Value>(
            &fs::read(layout.join("blobs/sha256").join(d)).unwrap(),
        )
        .unwrap()
    };
    let manifest = blob(&entry["digest"]);
    let config = blob(&manifest["config"]["digest"]);
    (manifest, config)
}

/// Checks the store's metadata is self-consistent the way containers/storage
/// needs it: every JSON file parses, no layer is marked incomplete, every
/// image's layers exist, every container's layer and image exist, and every
/// layer directory of the driver has a record.
pub fn assert_store_consistent(ctx: &TestContext) {
    let d = &ctx.driver;
    let read = |rel: String| -> serde_json::Value {
        let p = ctx.root.join(&rel);
        match fs::read(&p) {
            Ok(b) if !b.is_empty() => serde_json::from_slice(&b)
                .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", p.display())),
            _ => serde_json::json!([]),
        }
    };
    let layers = read(format!("{d}-layers/layers.json"));
    let images = read(format!("{d}-images/images.json"));
    let containers = read(format!("{d}-containers/containers.json"));
    let layer_ids: std::collections::HashSet<String> = layers
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_string())
        .collect();
    for l in layers.as_array().unwrap() {
        assert!(
            l["flags"]["incomplete"].as_bool() != Some(true),
            "incomplete layer left in layers.json: {l}"
        );
        if let Some(parent) = l["parent"].as_str() {
            assert!(
                layer_ids.contains(parent),
                "layer {} has a missing parent",
                l["id"]
            );
        }
    }
    for i in images.as_array().unwrap() {
        if let Some(top) = i["layer"].as_str() {
            assert!(
                layer_ids.contains(top),
                "image {} has a missing top layer",
                i["id"]
            );
        }
    }
    let image_ids: std::collections::HashSet<&str> = images
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    for c in containers.as_array().unwrap() {
        let layer = c["layer"].as_str().unwrap_or_default();
        assert!(
            layer_ids.contains(layer),
            "container {} has a missing layer",
            c["id"]
        );
        if let Some(img) = c["image"].as_str().filter(|s| !s.is_empty()) {
            assert!(
                image_ids.contains(img),
                "container {} has a missing image",
                c["id"]
            );
        }
    }
    // Layer directories moved aside for deletion (containers/storage's `tempdirs`): none
    // may be left once the operation that moved them is over, or the next open recovered.
    let tempdirs = ctx.root.join(d).join("tempdirs");
    if let Ok(entries) = fs::read_dir(&tempdirs) {
        let left: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
        assert!(left.is_empty(), "left in {}: {left:?}", tempdirs.display());
    }
    let layer_dir = match d.as_str() {
        "vfs" => ctx.root.join("vfs/dir"),
        other => ctx.root.join(other),
    };
    if let Ok(entries) = fs::read_dir(&layer_dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == "l" || name.starts_with('.') || !e.path().is_dir() {
                continue;
            }
            if name == "tempdirs" {
                continue;
            }
            assert!(
                layer_ids.contains(&name),
                "layer directory {} has no record in layers.json",
                e.path().display()
            );
        }
    }
}

/// `both_drivers!(name)` makes `name_vfs` and `name_overlay` tests that call `name(driver)`.
#[macro_export]
macro_rules! both_drivers {
    ($($f:ident),* $(,)?) => {
        $(
            mod $f {
                #[test]
                fn vfs() {
                    super::$f("vfs")
                }
                #[test]
                fn overlay() {
                    super::$f("overlay")
                }
            }
        )*
    };
}
