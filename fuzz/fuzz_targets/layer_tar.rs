//! Fuzz target: the layer tar reader (`builder::archive::apply::apply_layer`), fed arbitrary
//! bytes as an uncompressed layer into a fresh directory, in both whiteout formats, with
//! tar-split recording on.
//!
//! Invariants: no panic; nothing is written outside the target directory: its parent holds
//! only the target and a canary whose bytes, mode and link count stay the same.
#![no_main]

use builder::archive::apply::{apply_layer, ApplyOptions, WhiteoutFormat};
use libfuzzer_sys::fuzz_target;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const CANARY: &[u8] = b"canary: a fuzzed layer must never reach me\n";

/// One parent directory per fuzzing process; each input gets a fresh `root` below it.
fn parent() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::Builder::new()
            .prefix("hod-fuzz-tar.")
            .tempdir()
            .expect("creating the fuzz directory");
        std::fs::write(d.path().join("canary"), CANARY).unwrap();
        std::fs::set_permissions(
            d.path().join("canary"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        d
    })
    .path()
}

fn check_parent(parent: &Path) {
    let mut names: Vec<_> = std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["canary", "root"],
        "something was written beside the root"
    );
    let canary = parent.join("canary");
    let md = std::fs::symlink_metadata(&canary).unwrap();
    assert!(md.file_type().is_file(), "the canary was replaced");
    assert_eq!(md.mode() & 0o7777, 0o644, "the canary's mode changed");
    assert_eq!(md.nlink(), 1, "the canary was hard-linked");
    assert_eq!(
        std::fs::read(&canary).unwrap(),
        CANARY,
        "the canary was written"
    );
}

fn fresh_root(parent: &Path) -> PathBuf {
    let root = parent.join("root");
    if root.symlink_metadata().is_ok() {
        make_removable(&root);
        std::fs::remove_dir_all(&root).unwrap();
    }
    std::fs::create_dir(&root).unwrap();
    root
}

/// Directories extracted with mode 000 or without `w` cannot be emptied by a non-root
/// fuzzer: give every directory u+rwx first (symlinks are not followed).
fn make_removable(root: &Path) {
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let _ = std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700));
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    stack.push(e.path());
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, tar)) = data.split_first() else {
        return;
    };
    let parent = parent();
    let root = fresh_root(parent);
    // vfs style: whiteouts delete; seed something for them to delete.
    let whiteouts = if sel & 1 == 0 {
        std::fs::create_dir_all(root.join("etc/sub")).unwrap();
        std::fs::write(root.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        WhiteoutFormat::Delete
    } else {
        WhiteoutFormat::Overlay
    };
    let mut split = Vec::new();
    let mut opts = ApplyOptions::new(whiteouts);
    opts.ignore_chown_errors = sel & 2 != 0;
    if sel & 4 == 0 {
        opts.tar_split = Some(&mut split);
    }
    let mut input: &[u8] = tar;
    let _ = apply_layer(&root, &mut input, opts);
    check_parent(parent);
});
