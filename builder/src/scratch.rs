//! Scratch directories for big temporary files (a commit's layer tar, blobs staged for a
//! push or spooled by a pull, an extracted oci-archive) that a killed hod does not leak.
//!
//! ```text
//!  $TMPDIR or /var/tmp/
//!    hod-scratch-commit-Ab12Cd/  ← ScratchDir: removed when dropped
//!      (the directory itself is flock'ed by its owner for as long as it lives)
//!      layer.tar
//! ```
//!
//! A process killed with SIGKILL runs no destructors, and a commit's layer tar can be
//! gigabytes. So the owner holds an exclusive `flock` on the directory, which the kernel drops
//! when the process dies, and the first scratch directory a process makes sweeps the others:
//! a `hod-scratch-*` directory whose lock can be taken (its owner is gone) and which is more
//! than a minute old (so one just made, not yet locked, is left alone) is removed. Only
//! directories made here carry that prefix: other temporary directories, which nobody
//! locks, are never swept.
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use rustix::fs::{flock, FlockOperation};

use crate::error::{IoResultExt, Result};

/// Name prefix of every scratch directory (and of nothing else).
const PREFIX: &str = "hod-scratch-";
/// Younger directories are never swept (made but perhaps not locked yet).
const GRACE: Duration = Duration::from_secs(60);

/// Where big temporary files go: `$TMPDIR`, else `/var/tmp` (disk-backed, as
/// containers/image's `BigFilesTemporaryDir`), else the system temp dir.
pub fn big_temp_dir() -> PathBuf {
    match std::env::var_os("TMPDIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ if Path::new("/var/tmp").is_dir() => PathBuf::from("/var/tmp"),
        _ => std::env::temp_dir(),
    }
}

/// A temporary directory owned (locked) by this process; removed on drop.
#[derive(Debug)]
pub struct ScratchDir {
    // Field order: the directory is removed before its lock is released.
    dir: tempfile::TempDir,
    _lock: File,
}

impl ScratchDir {
    /// Make `<big temp dir>/hod-scratch-<what>-XXXXXX`, after sweeping leftovers of dead
    /// processes.
    pub fn new(what: &str) -> Result<ScratchDir> {
        Self::new_in(&big_temp_dir(), what)
    }

    /// Make `<parent>/hod-scratch-<what>-XXXXXX`, locked like [`ScratchDir::new`]'s (for
    /// small private files that belong in the system temp dir, such as a build's secrets);
    /// the first one in each parent sweeps that parent.
    pub fn new_in(parent: &Path, what: &str) -> Result<ScratchDir> {
        static SWEPT: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
        {
            let mut swept = SWEPT.lock().unwrap_or_else(|e| e.into_inner());
            if !swept.iter().any(|p| p == parent) {
                swept.push(parent.to_path_buf());
                sweep(parent);
            }
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("{PREFIX}{what}-"))
            .tempdir_in(parent)
            .at("creating temporary directory in", parent)?;
        let lock = File::open(dir.path()).at("opening", dir.path())?;
        flock(&lock, FlockOperation::NonBlockingLockExclusive)
            .map_err(std::io::Error::from)
            .at("locking", dir.path())?;
        Ok(ScratchDir { dir, _lock: lock })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Remove the `hod-scratch-*` directories of `parent` whose owners are gone (best effort: anything
/// that cannot be read, locked or removed is left as it is).
pub fn sweep(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    let now = SystemTime::now();
    for e in entries.flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().starts_with(PREFIX) {
            continue;
        }
        let Ok(meta) = e.metadata() else { continue };
        let old = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age > GRACE);
        if !meta.is_dir() || !old {
            continue;
        }
        let path = e.path();
        let Ok(f) = File::open(&path) else { continue };
        if flock(&f, FlockOperation::NonBlockingLockExclusive).is_ok() {
            tracing::debug!(
                "removing {} (left by a process that is gone)",
                path.display()
            );
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(path: &Path, secs: u64) {
        let t = SystemTime::now() - Duration::from_secs(secs);
        File::open(path).unwrap().set_modified(t).unwrap();
    }

    #[test]
    fn sweeps_only_unowned_old_directories() {
        let parent = tempfile::tempdir().unwrap();
        let mk = |n: &str| {
            let p = parent.path().join(n);
            std::fs::create_dir(&p).unwrap();
            std::fs::write(p.join("layer.tar"), b"x").unwrap();
            p
        };
        let dead = mk("hod-scratch-commit-dead");
        let young = mk("hod-scratch-commit-young");
        let other = mk("hod-context-123");
        // The test suite's fixture cache (it was swept once) and a user's own hod-* names.
        let cache = mk("hod-test-cache");
        let owned = mk("hod-scratch-commit-owned");
        let held = File::open(&owned).unwrap();
        flock(&held, FlockOperation::NonBlockingLockExclusive).unwrap();
        for p in [&dead, &other, &cache, &owned] {
            age(p, 3600);
        }
        sweep(parent.path());
        assert!(!dead.exists(), "a dead owner's directory is removed");
        assert!(young.exists(), "a new directory is left alone");
        assert!(other.exists(), "not ours");
        assert!(cache.exists(), "not a scratch directory");
        assert!(owned.exists(), "a live owner's directory is kept");
        drop(held);
        sweep(parent.path());
        assert!(!owned.exists());
    }

    #[test]
    fn scratch_dir_is_locked_and_removed_on_drop() {
        let s = ScratchDir::new("test").unwrap();
        let p = s.path().to_path_buf();
        let f = File::open(&p).unwrap();
        assert!(flock(&f, FlockOperation::NonBlockingLockExclusive).is_err());
        drop(s);
        assert!(!p.exists());
    }
}
