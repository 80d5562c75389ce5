//! Issue 3: deterministic commits and commits killed half-way.

use crate::both_drivers;
use crate::common::{self, TestContext};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

both_drivers!(
    timestamp_zero_gives_same_image_id,
    killed_commit_leaves_no_visible_image
);

/// Two commits of the same content with `--timestamp 0` give the same image
/// ID, also from two different working containers.
fn timestamp_zero_gives_same_image_id(driver: &str) {
    if !common::require("timestamp_zero", &[]) {
        return;
    }
    let ctx = TestContext::new(driver);
    let tree = ctx.path("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("sub/a"), "a\n").unwrap();
    std::fs::write(tree.join("b"), "b\n").unwrap();
    let mut ids = Vec::new();
    for n in 0..2 {
        let ctr = ctx.ok(["from", "scratch"]);
        ctx.ok(["copy", &ctr, tree.to_str().unwrap(), "/data"]);
        ctx.ok(["config", "--label", "k=v", "--env", "A=1", &ctr]);
        for m in 0..2 {
            let name = format!("localhost/ts:{n}-{m}");
            let id = ctx.ok(["commit", "-q", "--timestamp", "0", &ctr, &name]);
            ids.push(id);
        }
    }
    assert!(ids[0].len() >= 12, "{ids:?}");
    assert!(
        ids.iter().all(|i| i == &ids[0]),
        "image IDs differ: {ids:?}"
    );
    // and something else gives another ID (the test can fail)
    let ctr = ctx.ok(["from", "scratch"]);
    ctx.ok(["copy", &ctr, tree.join("b").to_str().unwrap(), "/b"]);
    let other = ctx.ok([
        "commit",
        "-q",
        "--timestamp",
        "0",
        &ctr,
        "localhost/ts:other",
    ]);
    assert_ne!(other, ids[0]);
}

/// Size of every regular file below `dir`, not looking into overlay `merged`
/// mount points (the container's own files are included; they do not change
/// during a commit).
fn file_sizes(dir: &Path) -> HashMap<PathBuf, u64> {
    let mut out = HashMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                // an overlay mount's merged view shows the container's own files
                if e.file_name() != "merged" {
                    stack.push(e.path());
                }
            } else if ft.is_file() {
                if let Ok(m) = e.metadata() {
                    out.insert(e.path(), m.len());
                }
            }
        }
    }
    out
}

/// A `commit` killed with SIGKILL leaves no visible image, and the next
/// command cleans up (no incomplete layer, every layer dir has a record).
fn killed_commit_leaves_no_visible_image(driver: &str) {
    if !common::require("killed_commit", &["skopeo"]) {
        return;
    }
    let ctx = TestContext::new(driver);
    ctx.seed_busybox("busybox");
    let ctr = ctx.ok(["from", "busybox"]);
    let mnt = PathBuf::from(ctx.ok(["mount", &ctr]));
    // Enough data that the commit is still writing when we kill it: 24 files
    // of 8 MiB of random data.
    std::fs::create_dir_all(mnt.join("big")).unwrap();
    for i in 0..24 {
        let r = common::run_cmd({
            let mut c = std::process::Command::new("head");
            c.args(["-c", "8388608", "/dev/urandom"])
                .stdout(std::fs::File::create(mnt.join(format!("big/f{i}"))).unwrap());
            c
        });
        assert_eq!(r.code, Some(0));
    }
    ctx.ok(["umount", &ctr]);

    // Big temporary files (the layer tar) go to this TMPDIR, watched as well.
    let scratch = tempfile::tempdir().unwrap();
    let tmpdir = scratch.path().display().to_string();
    let before = file_sizes(&ctx.root);
    let mut child = ctx
        .cmd(["commit", "-q", &ctr, "localhost/killed:1"])
        .env("TMPDIR", &tmpdir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning commit");
    // Kill it while it is writing layer data: once 1 MiB of new file data
    // exists anywhere under the root (a staging file, the new layer, ...).
    // No timing: we wait for the store to change.
    let mut killed_midway = false;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        let now = file_sizes(&ctx.root);
        let new_bytes: u64 = now
            .iter()
            .map(|(p, sz)| sz.saturating_sub(*before.get(p).unwrap_or(&0)))
            .sum::<u64>()
            + file_sizes(scratch.path()).values().sum::<u64>();
        if new_bytes > 1 << 20 {
            child.kill().expect("SIGKILL");
            let st = child.wait().unwrap();
            use std::os::unix::process::ExitStatusExt;
            killed_midway = st.signal() == Some(9);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert!(
        killed_midway,
        "commit finished before it had written 1 MiB under the root; cannot test the kill"
    );

    // Nothing half-done is visible.
    let r = ctx.hod(["images", "--format", "{{.Name}}:{{.Tag}}"]);
    common::assert_no_panic(&r);
    let listed = r.success().stdout;
    if listed.contains("localhost/killed:1") {
        // Killed after the image record was written: then it must be whole.
        let c2 = ctx.ok(["from", "localhost/killed:1"]);
        let m2 = ctx.ok(["mount", &c2]);
        assert!(
            Path::new(&m2).join("big/f23").is_file(),
            "a visible image is incomplete"
        );
        ctx.ok(["umount", &c2]);
    }
    // The next command (above) cleaned up: store consistent, podman agrees.
    common::assert_store_consistent(&ctx);
    if common::have("podman") {
        ctx.podman(["images"]).success();
    }
    // The killed commit's scratch directory (its layer tar) is swept by the next hod that
    // makes one, once it is a minute old (younger ones may belong to a process that has
    // not locked them yet); the working container still commits fine.
    let leftovers = |p: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(p)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("hod-"))
            .collect()
    };
    let left = leftovers(scratch.path());
    assert!(
        !left.is_empty(),
        "the kill left no scratch directory to sweep"
    );
    for d in &left {
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
        std::fs::File::open(d).unwrap().set_modified(old).unwrap();
    }
    let r = common::run_cmd({
        let mut c = ctx.cmd(["commit", "-q", &ctr, "localhost/after-kill:1"]);
        c.env("TMPDIR", &tmpdir);
        c
    });
    assert_eq!(r.code, Some(0), "{}", r.dump());
    assert_eq!(leftovers(scratch.path()), Vec::<PathBuf>::new());
    common::assert_store_consistent(&ctx);
}
