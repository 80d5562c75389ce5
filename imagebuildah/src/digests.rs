//! Content digests of context files, kept in a stat-keyed cache so that a rebuild with
//! nothing changed does not read the context again.
//!
//! ```text
//! file ─ lstat ─> (dev, ino, size, mtime ns, ctime ns, mode) ── same as the entry? ─ yes ─> digest
//!                                                             └─ no ─> read, sha256, new entry
//! <store root>/hod-cache/context-digests.json   {"version":1,"files":{abs path: Entry}}
//!   loaded once per stage, written back (temp + rename) when an entry changed
//! ```
//!
//! ctime is part of the key: it changes on every write and cannot be set by `touch -d`, so a
//! file rewritten with the same size and an old mtime is still read again.
use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::error::{io_at, Result};

/// The cache file, relative to the store's root.
pub const CACHE_FILE: &str = "hod-cache/context-digests.json";

/// Above this many entries, the ones this build did not look at are dropped on save.
const MAX_ENTRIES: usize = 200_000;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Entry {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    mode: u32,
    digest: String,
    #[serde(skip)]
    seen: bool,
}

impl Entry {
    fn stat_matches(&self, md: &std::fs::Metadata) -> bool {
        let (m, c) = times(md);
        self.dev == md.dev()
            && self.ino == md.ino()
            && self.size == md.size()
            && self.mtime_ns == m
            && self.ctime_ns == c
            && self.mode == md.mode()
    }
}

fn times(md: &std::fs::Metadata) -> (i128, i128) {
    (
        i128::from(md.mtime()) * 1_000_000_000 + i128::from(md.mtime_nsec()),
        i128::from(md.ctime()) * 1_000_000_000 + i128::from(md.ctime_nsec()),
    )
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct OnDisk {
    version: u32,
    files: HashMap<String, Entry>,
}

/// The stat-keyed digest cache.
#[derive(Debug, Default)]
pub struct DigestCache {
    path: Option<PathBuf>,
    files: HashMap<String, Entry>,
    dirty: bool,
    reads: u64,
    hits: u64,
}

impl DigestCache {
    /// A cache that lives only in memory.
    pub fn in_memory() -> DigestCache {
        DigestCache::default()
    }

    /// The cache kept under `store_root` (empty when the file is missing or unreadable).
    pub fn load(store_root: &Path) -> DigestCache {
        let path = store_root.join(CACHE_FILE);
        let files = std::fs::read(&path)
            .ok()
            .and_then(|d| serde_json::from_slice::<OnDisk>(&d).ok())
            .filter(|d| d.version == 1)
            .map(|d| d.files)
            .unwrap_or_default();
        DigestCache {
            path: Some(path),
            files,
            ..Default::default()
        }
    }

    /// How many files this cache had to read (their stat data was new).
    pub fn reads(&self) -> u64 {
        self.reads
    }

    /// How many files were answered from their stat data alone.
    pub fn hits(&self) -> u64 {
        self.hits
    }

    /// The sha256 (hex) of the regular file `path`, whose `lstat` is `md`.
    pub fn file_digest(&mut self, path: &Path, md: &std::fs::Metadata) -> Result<String> {
        let key = path.to_string_lossy().into_owned();
        if let Some(e) = self.files.get_mut(&key) {
            if e.stat_matches(md) {
                e.seen = true;
                self.hits += 1;
                return Ok(e.digest.clone());
            }
        }
        let mut f = std::fs::File::open(path).map_err(io_at("reading", path))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = f.read(&mut buf).map_err(io_at("reading", path))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        // The file may have changed while it was read: key the entry by the stat taken
        // after reading, and cache nothing if it moved.
        let after = f.metadata().map_err(io_at("reading", path))?;
        let digest = hex::encode(h.finalize());
        self.reads += 1;
        if times(&after) == times(md) && after.size() == md.size() {
            let (mtime_ns, ctime_ns) = times(md);
            self.files.insert(
                key,
                Entry {
                    dev: md.dev(),
                    ino: md.ino(),
                    size: md.size(),
                    mtime_ns,
                    ctime_ns,
                    mode: md.mode(),
                    digest: digest.clone(),
                    seen: true,
                },
            );
            self.dirty = true;
        }
        Ok(digest)
    }

    /// Write the cache back (atomically) if anything changed.
    pub fn save(&mut self) -> Result<()> {
        tracing::debug!(
            "context digests: {} from the stat cache, {} read",
            self.hits,
            self.reads
        );
        let Some(path) = &self.path else {
            return Ok(());
        };
        if !self.dirty {
            return Ok(());
        }
        if self.files.len() > MAX_ENTRIES {
            self.files.retain(|_, e| e.seen);
        }
        let dir = path.parent().unwrap_or(Path::new("/"));
        std::fs::create_dir_all(dir).map_err(io_at("creating", dir))?;
        let data = serde_json::to_vec(&OnDisk {
            version: 1,
            files: std::mem::take(&mut self.files),
        })
        .map_err(|e| crate::error::BuildError::invalid(format!("encoding digests: {e}")))?;
        let r = builder::fsutil::atomic_write(path, &data, 0o600);
        if let Ok(d) = serde_json::from_slice::<OnDisk>(&data) {
            self.files = d.files;
        }
        r?;
        self.dirty = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_files_are_not_read_again() {
        let store = tempfile::tempdir().unwrap();
        let ctx = tempfile::tempdir().unwrap();
        let f = ctx.path().join("f");
        std::fs::write(&f, "one").unwrap();
        let md = std::fs::symlink_metadata(&f).unwrap();
        let mut c = DigestCache::load(store.path());
        let d1 = c.file_digest(&f, &md).unwrap();
        assert_eq!(d1, hex::encode(Sha256::digest(b"one")));
        assert_eq!((c.reads(), c.hits()), (1, 0));
        c.save().unwrap();
        assert!(store.path().join(CACHE_FILE).is_file());

        // A new process: the saved entry answers without reading.
        let mut c = DigestCache::load(store.path());
        assert_eq!(c.file_digest(&f, &md).unwrap(), d1);
        assert_eq!((c.reads(), c.hits()), (0, 1));

        // Rewritten with the same size and the old mtime: ctime still moves, so it is read.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&f, "two").unwrap();
        let t = filetime_of(&md);
        set_mtime(&f, t);
        let md2 = std::fs::symlink_metadata(&f).unwrap();
        assert_eq!(md2.mtime(), md.mtime());
        let d2 = c.file_digest(&f, &md2).unwrap();
        assert_eq!(d2, hex::encode(Sha256::digest(b"two")));
        assert_eq!(c.reads(), 1);
    }

    fn filetime_of(md: &std::fs::Metadata) -> (i64, i64) {
        (md.mtime(), md.mtime_nsec())
    }

    fn set_mtime(p: &Path, (s, ns): (i64, i64)) {
        let ts = rustix::fs::Timestamps {
            last_access: rustix::fs::Timespec {
                tv_sec: s,
                tv_nsec: ns as _,
            },
            last_modification: rustix::fs::Timespec {
                tv_sec: s,
                tv_nsec: ns as _,
            },
        };
        rustix::fs::utimensat(
            rustix::fs::CWD,
            p,
            &ts,
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .unwrap();
    }

    #[test]
    fn a_corrupt_cache_file_is_ignored() {
        let store = tempfile::tempdir().unwrap();
        let p = store.path().join(CACHE_FILE);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "{not json").unwrap();
        let ctx = tempfile::tempdir().unwrap();
        let f = ctx.path().join("f");
        std::fs::write(&f, "x").unwrap();
        let md = std::fs::symlink_metadata(&f).unwrap();
        let mut c = DigestCache::load(store.path());
        c.file_digest(&f, &md).unwrap();
        c.save().unwrap();
        let mut c = DigestCache::load(store.path());
        c.file_digest(&f, &md).unwrap();
        assert_eq!(c.hits(), 1);
    }
}
