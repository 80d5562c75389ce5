//! containers/storage-compatible lock files.
//!
//! A lock file is locked as a whole with an fcntl record lock. We use open-file-description
//! locks (`F_OFD_SETLKW`): they conflict with the classic POSIX locks (`F_SETLKW`) that
//! containers/storage takes, and, unlike those, also exclude other threads of this process
//! (each acquisition opens the file anew), and closing some other descriptor of the same file
//! does not drop them.
//!
//! The first 64 bytes of a lock file hold the "last write" token of containers/storage's
//! `pkg/lockfile`: every writer records a fresh token (little-endian nanoseconds, counter,
//! pid, random padding) before it rewrites the protected JSON, so that long-running readers
//! (podman's API service) notice the change and reload.
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg};

use crate::error::{IoResultExt, Result};

/// Size of the last-write token (`lastWriterIDSize`).
pub const LAST_WRITE_SIZE: usize = 64;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Shared (read) or exclusive (write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// `F_RDLCK`.
    Shared,
    /// `F_WRLCK`.
    Exclusive,
}

/// A held lock; released when dropped (the descriptor is closed).
#[derive(Debug)]
pub struct LockGuard {
    file: File,
    path: PathBuf,
    kind: LockKind,
}

/// Open (creating with mode 0644, as containers/storage does) and lock `path`, waiting.
pub fn lock(path: &Path, kind: LockKind) -> Result<LockGuard> {
    lock_file(open_lock_file(path)?, path, kind)
}

/// Lock `file` (open for reading and writing, at `path`), waiting: e.g. a lock file just
/// created with `create_new`.
pub fn lock_file(file: File, path: &Path, kind: LockKind) -> Result<LockGuard> {
    set_lock(&file, path, kind, true)?;
    Ok(LockGuard {
        file,
        path: path.to_path_buf(),
        kind,
    })
}

/// Lock the existing file `path` exclusively without waiting: `None` when another holder
/// has a lock on it.
pub fn try_lock_exclusive(path: &Path) -> Result<Option<LockGuard>> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .at("opening lock file", path)?;
    let kind = LockKind::Exclusive;
    Ok(set_lock(&file, path, kind, false)?.then(|| LockGuard {
        file,
        path: path.to_path_buf(),
        kind,
    }))
}

/// Take an OFD lock on the whole of `file`; without `wait`, `false` when another holder has
/// a conflicting one.
fn set_lock(file: &File, path: &Path, kind: LockKind, wait: bool) -> Result<bool> {
    let l_type = match kind {
        LockKind::Shared => libc::F_RDLCK,
        LockKind::Exclusive => libc::F_WRLCK,
    };
    let fl = libc::flock {
        l_type: l_type as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    loop {
        let arg = if wait {
            FcntlArg::F_OFD_SETLKW(&fl)
        } else {
            FcntlArg::F_OFD_SETLK(&fl)
        };
        match fcntl(file.as_raw_fd(), arg) {
            Ok(_) => return Ok(true),
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN | Errno::EACCES) if !wait => return Ok(false),
            Err(e) => return Err(std::io::Error::from(e)).at("locking", path),
        }
    }
}

/// Create the lock file if it does not exist (mode 0644), without locking it.
pub fn ensure_lock_file(path: &Path) -> Result<()> {
    open_lock_file(path).map(|_| ())
}

fn open_lock_file(path: &Path) -> Result<File> {
    let open = || {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
    };
    match open() {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                crate::store::paths::mkdir_all(dir, 0o700)?;
            }
            open().at("opening lock file", path)
        }
        Err(e) => Err(e).at("opening lock file", path),
    }
}

/// A fresh last-write token: LE u64 Unix nanoseconds, LE u64 per-process counter,
/// LE u32 pid, 44 random bytes.
pub fn new_last_write() -> [u8; LAST_WRITE_SIZE] {
    use rand::RngCore;
    let mut b = [0u8; LAST_WRITE_SIZE];
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    b[0..8].copy_from_slice(&nanos.to_le_bytes());
    let c = COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
    b[8..16].copy_from_slice(&c.to_le_bytes());
    b[16..20].copy_from_slice(&std::process::id().to_le_bytes());
    rand::thread_rng().fill_bytes(&mut b[20..]);
    b
}

impl LockGuard {
    /// Whether the lock file is still at its path: `false` once someone deleted (or
    /// replaced) it, for a lock taken on a file others may delete after locking it.
    pub fn is_at_path(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::symlink_metadata(&self.path), self.file.metadata()) {
            (Ok(p), Ok(f)) => p.dev() == f.dev() && p.ino() == f.ino(),
            _ => false,
        }
    }
    /// Whether this is an exclusive lock.
    pub fn kind(&self) -> LockKind {
        self.kind
    }
    /// Record that the holder is about to modify the protected data (c/storage
    /// `RecordWrite`): write a fresh token at offset 0. Requires the exclusive lock.
    pub fn record_write(&self) -> Result<()> {
        debug_assert_eq!(self.kind, LockKind::Exclusive);
        let token = new_last_write();
        self.file
            .write_all_at(&token, 0)
            .at("recording write in", &self.path)
    }
    /// The current last-write token (may be shorter than 64 bytes, or empty, for a new file).
    pub fn last_write(&self) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; LAST_WRITE_SIZE];
        let mut n = 0;
        while n < LAST_WRITE_SIZE {
            let r = self
                .file
                .read_at(&mut buf[n..], n as u64)
                .at("reading", &self.path)?;
            if r == 0 {
                break;
            }
            n += r;
        }
        buf.truncate(n);
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_layout() {
        let a = new_last_write();
        let b = new_last_write();
        assert_ne!(a, b);
        assert_eq!(
            u32::from_le_bytes(a[16..20].try_into().unwrap()),
            std::process::id()
        );
        let ca = u64::from_le_bytes(a[8..16].try_into().unwrap());
        let cb = u64::from_le_bytes(b[8..16].try_into().unwrap());
        assert!(cb > ca);
    }

    #[test]
    fn record_write_changes_token_and_shared_locks_coexist() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/x.lock");
        {
            let g = lock(&p, LockKind::Exclusive).unwrap();
            assert!(g.last_write().unwrap().is_empty());
            g.record_write().unwrap();
            let t1 = g.last_write().unwrap();
            assert_eq!(t1.len(), LAST_WRITE_SIZE);
            g.record_write().unwrap();
            assert_ne!(t1, g.last_write().unwrap());
        }
        let mode = std::fs::metadata(&p).unwrap().permissions();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.mode() & 0o777 & !0o022, 0o644 & !0o022);
        let a = lock(&p, LockKind::Shared).unwrap();
        let b = lock(&p, LockKind::Shared).unwrap();
        drop((a, b));
    }

    #[test]
    fn exclusive_excludes_other_threads() {
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.lock");
        let g = lock(&p, LockKind::Exclusive).unwrap();
        let got = Arc::new(AtomicBool::new(false));
        let (p2, got2) = (p.clone(), got.clone());
        let t = std::thread::spawn(move || {
            let _g = lock(&p2, LockKind::Shared).unwrap();
            got2.store(true, Ordering::SeqCst);
        });
        // The other thread cannot get the lock while we hold it: a non-blocking attempt
        // from here (another open file description) must fail too.
        let f = open_lock_file(&p).unwrap();
        let fl = libc::flock {
            l_type: libc::F_RDLCK as libc::c_short,
            l_whence: libc::SEEK_SET as libc::c_short,
            l_start: 0,
            l_len: 0,
            l_pid: 0,
        };
        assert!(fcntl(f.as_raw_fd(), FcntlArg::F_OFD_SETLK(&fl)).is_err());
        assert!(!got.load(Ordering::SeqCst));
        drop(g);
        t.join().unwrap();
        assert!(got.load(Ordering::SeqCst));
    }
}
