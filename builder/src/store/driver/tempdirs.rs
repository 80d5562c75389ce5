//! Deferred removal of layer directories, in containers/storage's `internal/tempdir` layout.
//!
//! Deleting a layer renames its directory, while the store's locks are held, into
//! `<driver home>/tempdirs/temp-dir-<n>/`, with `<driver home>/tempdirs/lock-<n>` locked by
//! this process; the tree itself is deleted once the locks are released. A big deletion (a
//! vfs container holding a copy of a toolchain image: thousands of files) then no longer
//! holds up the other writers of the store, and `bud` removes a finished stage's container
//! while the next stage commits.
//!
//! A process killed in between leaves the pair behind, out of every layer's path. The next
//! store open removes each pair whose lock nobody holds, as containers/storage's
//! `RecoverStaleDirs` does (a lock file without its directory, or a directory without its
//! lock file, is stale too).
use std::fs;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{IoResultExt, Result};
use crate::store::lock::{self, LockGuard, LockKind};
use crate::store::paths::{mkdir_all, remove_all};

const ROOT: &str = "tempdirs";
const LOCK_PREFIX: &str = "lock-";
const DIR_PREFIX: &str = "temp-dir-";

/// A directory moved out of the way and not deleted yet. Deleted by [`Staged::finish`], or
/// (errors ignored) when dropped.
#[derive(Debug)]
pub struct Staged {
    dir: PathBuf,
    lock_path: PathBuf,
    guard: Option<LockGuard>,
}

/// Move `what` (a layer's directory) into a fresh temp dir under `<home>/tempdirs`.
/// `None` when `what` does not exist.
pub fn stage(home: &Path, what: &Path) -> Result<Option<Staged>> {
    match fs::symlink_metadata(what) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).at("inspecting", what),
        Ok(_) => {}
    }
    let root = home.join(ROOT);
    mkdir_all(&root, 0o700)?;
    // Lock file first, locked, and still in place once locked: a recovery in another
    // process may take the lock of a file just created and delete it (see [`recover`]).
    let (n, lock_path, guard) = loop {
        let n = format!("{:016x}", rand::random::<u64>());
        let p = root.join(format!("{LOCK_PREFIX}{n}"));
        let file = match fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC)
            .open(&p)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).at("creating", &p),
        };
        let guard = lock::lock_file(file, &p, LockKind::Exclusive)?;
        if guard.is_at_path() {
            break (n, p, guard);
        }
    };
    let staged = Staged {
        dir: root.join(format!("{DIR_PREFIX}{n}")),
        guard: Some(guard),
        lock_path,
    };
    fs::create_dir(&staged.dir).at("creating directory", &staged.dir)?;
    let name = what.file_name().unwrap_or(std::ffi::OsStr::new("layer"));
    if let Err(e) = fs::rename(what, staged.dir.join(name)) {
        staged.finish()?;
        return Err(e).at("moving aside for removal", what);
    }
    Ok(Some(staged))
}

impl Staged {
    /// Delete the moved directory, then the lock file, then let the lock go.
    pub fn finish(mut self) -> Result<()> {
        self.remove()
    }

    fn remove(&mut self) -> Result<()> {
        let Some(guard) = self.guard.take() else {
            return Ok(());
        };
        remove_all(&self.dir)?;
        let r = fs::remove_file(&self.lock_path);
        drop(guard);
        match r {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).at("removing", &self.lock_path)
            }
            _ => Ok(()),
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            tracing::debug!("deleting {}: {e}", self.dir.display());
        }
    }
}

/// Delete what killed processes left under `<home>/tempdirs`: every pair whose lock can be
/// taken without waiting.
pub fn recover(home: &Path) -> Result<()> {
    let root = home.join(ROOT);
    let rd = match fs::read_dir(&root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        r => r.at("reading directory", &root)?,
    };
    let mut ids = std::collections::BTreeSet::new();
    for e in rd {
        let e = e.at("reading directory", &root)?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if let Some(n) = name
            .strip_prefix(LOCK_PREFIX)
            .or_else(|| name.strip_prefix(DIR_PREFIX))
        {
            ids.insert(n.to_string());
        }
    }
    for n in ids {
        let lock_path = root.join(format!("{LOCK_PREFIX}{n}"));
        // A live owner's pair always has its lock file, locked, from before its directory
        // is made until after it is deleted: a directory alone is stale.
        let guard = match lock::try_lock_exclusive(&lock_path) {
            Ok(Some(g)) if g.is_at_path() => Some(g),
            // Its owner is still deleting it, or has just finished.
            Ok(_) => continue,
            Err(_) if !lock_path.exists() => None,
            Err(e) => return Err(e),
        };
        let dir = root.join(format!("{DIR_PREFIX}{n}"));
        tracing::debug!("removing {} left by an interrupted removal", dir.display());
        remove_all(&dir)?;
        remove_all(&lock_path)?;
        drop(guard);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_trees_leave_their_path_at_once_and_are_deleted_later() {
        let d = tempfile::tempdir().unwrap();
        let home = d.path();
        let layer = home.join("dir/abc");
        fs::create_dir_all(layer.join("sub")).unwrap();
        fs::write(layer.join("sub/f"), b"x").unwrap();
        assert!(stage(home, &home.join("dir/missing")).unwrap().is_none());

        let s = stage(home, &layer).unwrap().unwrap();
        assert!(!layer.exists());
        let root = home.join(ROOT);
        assert_eq!(fs::read_dir(&root).unwrap().count(), 2);
        // The owner holds the lock: recovery leaves the pair alone.
        recover(home).unwrap();
        assert_eq!(fs::read_dir(&root).unwrap().count(), 2);
        s.finish().unwrap();
        assert_eq!(fs::read_dir(&root).unwrap().count(), 0);

        // Dropped unfinished: deleted all the same.
        fs::create_dir_all(layer.join("sub")).unwrap();
        drop(stage(home, &layer).unwrap());
        assert_eq!(fs::read_dir(&root).unwrap().count(), 0);
    }

    #[test]
    fn recovery_deletes_what_a_killed_process_left() {
        let d = tempfile::tempdir().unwrap();
        let home = d.path();
        let root = home.join(ROOT);
        // A pair whose owner died (its lock is free), a directory without its lock file,
        // and a lock file without its directory.
        for n in ["1", "2"] {
            fs::create_dir_all(root.join(format!("temp-dir-{n}/layer/sub"))).unwrap();
            fs::write(root.join(format!("temp-dir-{n}/layer/sub/f")), b"x").unwrap();
        }
        fs::set_permissions(
            root.join("temp-dir-1/layer"),
            std::os::unix::fs::PermissionsExt::from_mode(0o555),
        )
        .unwrap();
        fs::write(root.join("lock-1"), b"").unwrap();
        fs::write(root.join("lock-3"), b"").unwrap();
        fs::write(root.join("unrelated"), b"").unwrap();
        recover(home).unwrap();
        let left: Vec<String> = fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, vec!["unrelated".to_string()]);
    }

    /// Owners staging and deleting while others recover, as eight hod processes do on one
    /// store: no owner's removal fails and nothing is left behind.
    #[test]
    fn recovery_never_takes_a_live_owners_pair() {
        let d = tempfile::tempdir().unwrap();
        let home = d.path().to_path_buf();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let recoverers: Vec<_> = (0..3)
            .map(|_| {
                let home = home.clone();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        let _ = recover(&home);
                    }
                })
            })
            .collect();
        let owners: Vec<_> = (0..3)
            .map(|t| {
                let home = home.clone();
                std::thread::spawn(move || {
                    for i in 0..300 {
                        let layer = home.join(format!("dir/{t}-{i}"));
                        for s in 0..5 {
                            fs::create_dir_all(layer.join(format!("s{s}"))).unwrap();
                            for f in 0..5 {
                                fs::write(layer.join(format!("s{s}/f{f}")), b"x").unwrap();
                            }
                        }
                        let st = stage(&home, &layer).unwrap().unwrap();
                        st.finish().unwrap();
                    }
                })
            })
            .collect();
        let failed = owners.into_iter().filter_map(|o| o.join().err()).count();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for r in recoverers {
            r.join().unwrap();
        }
        assert_eq!(failed, 0);
        recover(&home).unwrap();
        assert_eq!(fs::read_dir(home.join(ROOT)).unwrap().count(), 0);
    }
}
