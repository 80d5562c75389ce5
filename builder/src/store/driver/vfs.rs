//! The vfs driver: every layer a full copy of the tree.
use std::collections::{HashMap, VecDeque};
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};

use filetime::FileTime;

use super::Driver;
use crate::error::{IoResultExt, Result};
use crate::store::paths::{mkdir_all, remove_all};

pub(super) fn init(d: &Driver) -> Result<()> {
    mkdir_all(&d.home, 0o700)?;
    let dirs = d.home.join("dir");
    mkdir_all(&dirs, 0o700)?;
    super::mark_top_dir(&dirs);
    Ok(())
}

pub(super) fn create(d: &Driver, id: &str, parent: Option<&str>) -> Result<()> {
    let dirs = d.home.join("dir");
    mkdir_all(&dirs, 0o700)?;
    let dir = dirs.join(id);
    match parent {
        None => {
            fs::create_dir(&dir).at("creating directory", &dir)?;
            let r = fs::set_permissions(&dir, fs::Permissions::from_mode(0o555))
                .at("setting mode of", &dir);
            if r.is_err() {
                let _ = remove_all(&dir);
            }
            r
        }
        Some(p) => {
            let r = copy_tree(&dirs.join(p), &dir);
            if r.is_err() {
                let _ = remove_all(&dir);
            }
            r
        }
    }
}

pub(super) fn remove(d: &Driver, id: &str) -> Result<()> {
    remove_all(&d.home.join("dir").join(id))
}

pub(super) fn get(d: &Driver, id: &str) -> Result<PathBuf> {
    let dir = d.home.join("dir").join(id);
    let m = fs::metadata(&dir).at("inspecting layer", &dir)?;
    if !m.is_dir() {
        return Err(std::io::Error::from(std::io::ErrorKind::NotADirectory))
            .at("inspecting layer", &dir);
    }
    Ok(dir)
}

/// Copy `src` to the new path `dst`, preserving owners, modes (incl. setuid), times (with
/// nanoseconds), xattrs, hard links (within the tree), devices, fifos, sockets and symlinks.
/// Nothing is followed: each entry is read with `lstat` and recreated.
///
/// A vfs container starts as a copy of its image's whole tree (a few hundred MB for a
/// toolchain image), so this is most of a vfs `from`. One thread walks the tree and creates
/// the directories; the entries of each directory go, a batch at a time, to workers (one per
/// CPU, at most 4) that copy the data in the kernel (`copy_file_range`) and set owners, modes,
/// xattrs and times through the open descriptor; when they fall behind, the walker copies a
/// batch itself. Hard links are made once every file is in place, directory modes and times
/// last.
pub fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4));
    copy_tree_with(src, dst, workers, MAX_QUEUED)
}

fn copy_tree_with(src: &Path, dst: &Path, workers: usize, max_queued: usize) -> Result<()> {
    let shared = Shared {
        max_queued,
        batches: Mutex::new(Batches {
            queue: VecDeque::new(),
            walking: true,
        }),
        ready: Condvar::new(),
        failed: AtomicBool::new(false),
        error: Mutex::new(None),
        links: Mutex::new(Links::default()),
    };
    let mut dirs: Vec<(PathBuf, fs::Metadata)> = Vec::new();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| shared.work());
        }
        if let Err(e) = walk(src, dst, &shared, &mut dirs) {
            shared.fail(e);
        }
        let mut b = shared.batches.lock().unwrap_or_else(|e| e.into_inner());
        b.walking = false;
        drop(b);
        shared.ready.notify_all();
    });
    if let Some(e) = shared.error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    // Names whose inode another worker copied first: the data is complete now.
    let links = shared.links.into_inner().unwrap_or_else(|e| e.into_inner());
    for (first, name) in &links.pending {
        fs::hard_link(first, name).at("creating hard link", name)?;
    }
    // Directory modes and times last (children changed their mtimes; 0555 blocks writes).
    for (d, m) in dirs.iter().rev() {
        fs::set_permissions(d, fs::Permissions::from_mode(m.mode() & 0o7777))
            .at("setting mode of", d)?;
        set_times(d, m)?;
    }
    Ok(())
}

/// The non-directory entries of one directory: (source, destination) pairs.
type Batch = Vec<(PathBuf, PathBuf)>;

/// Batches the walker queues before it copies one itself.
const MAX_QUEUED: usize = 64;

struct Batches {
    queue: VecDeque<Batch>,
    /// The walker may still add batches.
    walking: bool,
}

#[derive(Default)]
struct Links {
    /// (dev, ino) of a multiply-linked source → the destination name copied first.
    first: HashMap<(u64, u64), PathBuf>,
    /// (first destination name, another name) to link once the copying is done.
    pending: Vec<(PathBuf, PathBuf)>,
}

struct Shared {
    batches: Mutex<Batches>,
    ready: Condvar,
    failed: AtomicBool,
    error: Mutex<Option<crate::Error>>,
    links: Mutex<Links>,
    /// Batches the walker queues before it copies one itself.
    max_queued: usize,
}

impl Shared {
    fn fail(&self, e: crate::Error) {
        self.failed.store(true, Ordering::Relaxed);
        let mut slot = self.error.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert(e);
        drop(slot);
        self.ready.notify_all();
    }

    /// Queue a batch, or, when the workers are that far behind, copy it here (which also
    /// bounds the memory a huge tree's walk takes).
    fn push(&self, batch: Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut b = self.batches.lock().unwrap_or_else(|e| e.into_inner());
        if b.queue.len() < self.max_queued {
            b.queue.push_back(batch);
            drop(b);
            self.ready.notify_one();
            return Ok(());
        }
        drop(b);
        self.copy_batch(batch)
    }

    /// Copy a batch's entries, stopping early once any thread failed.
    fn copy_batch(&self, batch: Batch) -> Result<()> {
        for (src, dst) in batch {
            if self.failed.load(Ordering::Relaxed) {
                break;
            }
            copy_leaf(&src, &dst, self)?;
        }
        Ok(())
    }

    fn next(&self) -> Option<Batch> {
        let mut b = self.batches.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if self.failed.load(Ordering::Relaxed) {
                return None;
            }
            if let Some(batch) = b.queue.pop_front() {
                return Some(batch);
            }
            if !b.walking {
                return None;
            }
            b = self.ready.wait(b).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn work(&self) {
        while let Some(batch) = self.next() {
            if let Err(e) = self.copy_batch(batch) {
                self.fail(e);
                return;
            }
        }
    }
}

/// Create the directory `dst` like `src` (writable by us until the end) and queue its
/// entries; recurse into subdirectories.
fn walk(
    src: &Path,
    dst: &Path,
    shared: &Shared,
    dirs: &mut Vec<(PathBuf, fs::Metadata)>,
) -> Result<()> {
    if shared.failed.load(Ordering::Relaxed) {
        return Ok(());
    }
    let m = fs::symlink_metadata(src).at("inspecting", src)?;
    if !m.is_dir() {
        return copy_leaf(src, dst, shared);
    }
    fs::create_dir(dst).at("creating directory", dst)?;
    fs::set_permissions(dst, fs::Permissions::from_mode(0o700)).at("setting mode of", dst)?;
    std::os::unix::fs::lchown(dst, Some(m.uid()), Some(m.gid())).at("changing owner of", dst)?;
    copy_xattrs(src, dst)?;
    let mut subdirs = Vec::new();
    let mut batch = Batch::new();
    for e in fs::read_dir(src).at("reading directory", src)? {
        let e = e.at("reading directory", src)?;
        let is_dir = e.file_type().at("inspecting", e.path())?.is_dir();
        let pair = (e.path(), dst.join(e.file_name()));
        if is_dir {
            subdirs.push(pair);
        } else {
            batch.push(pair);
        }
    }
    dirs.push((dst.to_path_buf(), m));
    shared.push(batch)?;
    for (s, d) in subdirs {
        walk(&s, &d, shared, dirs)?;
    }
    Ok(())
}

/// Copy one entry that is not a directory.
fn copy_leaf(src: &Path, dst: &Path, shared: &Shared) -> Result<()> {
    let m = fs::symlink_metadata(src).at("inspecting", src)?;
    let ft = m.file_type();
    if m.nlink() > 1 {
        let mut links = shared.links.lock().unwrap_or_else(|e| e.into_inner());
        match links.first.get(&(m.dev(), m.ino())) {
            Some(first) => {
                let first = first.clone();
                links.pending.push((first, dst.to_path_buf()));
                return Ok(());
            }
            None => {
                links.first.insert((m.dev(), m.ino()), dst.to_path_buf());
            }
        }
    }
    if ft.is_file() {
        return copy_file(src, dst, &m);
    }
    if ft.is_symlink() {
        let target = fs::read_link(src).at("reading link", src)?;
        std::os::unix::fs::symlink(&target, dst).at("creating symlink", dst)?;
        std::os::unix::fs::lchown(dst, Some(m.uid()), Some(m.gid()))
            .at("changing owner of", dst)?;
        copy_xattrs(src, dst)?;
        return set_times(dst, &m);
    }
    use nix::sys::stat::{mknod, Mode, SFlag};
    let kind = if ft.is_char_device() {
        SFlag::S_IFCHR
    } else if ft.is_block_device() {
        SFlag::S_IFBLK
    } else if ft.is_fifo() {
        SFlag::S_IFIFO
    } else {
        SFlag::S_IFSOCK
    };
    mknod(dst, kind, Mode::from_bits_truncate(0o600), m.rdev())
        .map_err(std::io::Error::from)
        .at("creating device", dst)?;
    std::os::unix::fs::lchown(dst, Some(m.uid()), Some(m.gid())).at("changing owner of", dst)?;
    // After chown, which clears setuid/setgid.
    fs::set_permissions(dst, fs::Permissions::from_mode(m.mode() & 0o7777))
        .at("setting mode of", dst)?;
    copy_xattrs(src, dst)?;
    set_times(dst, &m)
}

/// A regular file: the data copied in the kernel, the rest set through the descriptor.
fn copy_file(src: &Path, dst: &Path, m: &fs::Metadata) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt as _};
    let mut from = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(src)
        .at("opening", src)?;
    let mut to = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dst)
        .at("creating", dst)?;
    copy_data(&mut from, &mut to, m.len()).at("copying file to", dst)?;
    rustix::fs::fchown(
        &to,
        Some(rustix::fs::Uid::from_raw(m.uid())),
        Some(rustix::fs::Gid::from_raw(m.gid())),
    )
    .map_err(std::io::Error::from)
    .at("changing owner of", dst)?;
    // After chown, which clears setuid/setgid.
    to.set_permissions(fs::Permissions::from_mode(m.mode() & 0o7777))
        .at("setting mode of", dst)?;
    let names = match xattr::FileExt::list_xattr(&from) {
        Ok(n) => n.collect::<Vec<_>>(),
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => Vec::new(),
        Err(e) => return Err(e).at("listing xattrs of", src),
    };
    for name in names {
        if let Some(v) = xattr::FileExt::get_xattr(&from, &name).at("reading xattrs of", src)? {
            set_xattr(xattr::FileExt::set_xattr(&to, &name, &v), &name, dst)?;
        }
    }
    let ts = |secs: i64, nsecs: i64| rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: nsecs as _,
    };
    rustix::fs::futimens(
        &to,
        &rustix::fs::Timestamps {
            last_access: ts(m.atime(), m.atime_nsec()),
            last_modification: ts(m.mtime(), m.mtime_nsec()),
        },
    )
    .map_err(std::io::Error::from)
    .at("setting times of", dst)
}

/// `len` bytes (or up to EOF) with `copy_file_range`, falling back to read/write where the
/// kernel or the file systems refuse it.
fn copy_data(from: &mut fs::File, to: &mut fs::File, len: u64) -> std::io::Result<()> {
    let mut done = 0u64;
    loop {
        let want = (len.saturating_sub(done)).clamp(1 << 16, 1 << 30) as usize;
        match rustix::fs::copy_file_range(&*from, None, &*to, None, want) {
            Ok(0) => return Ok(()),
            Ok(n) => done += n as u64,
            Err(e)
                if done == 0
                    && matches!(
                        e,
                        rustix::io::Errno::XDEV
                            | rustix::io::Errno::NOSYS
                            | rustix::io::Errno::OPNOTSUPP
                            | rustix::io::Errno::INVAL
                            | rustix::io::Errno::PERM
                    ) =>
            {
                std::io::copy(from, to)?;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn copy_xattrs(src: &Path, dst: &Path) -> Result<()> {
    let names = match xattr::list(src) {
        Ok(n) => n,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(()),
        Err(e) => return Err(e).at("listing xattrs of", src),
    };
    for name in names {
        if let Some(v) = xattr::get(src, &name).at("reading xattrs of", src)? {
            set_xattr(xattr::set(dst, &name, &v), &name, dst)?;
        }
    }
    Ok(())
}

fn set_xattr(r: std::io::Result<()>, name: &std::ffi::OsStr, dst: &Path) -> Result<()> {
    match r {
        Ok(()) => Ok(()),
        // e.g. user.* xattrs on symlinks, or security.selinux without a policy.
        Err(e)
            if e.raw_os_error() == Some(libc::EPERM) || e.raw_os_error() == Some(libc::ENOTSUP) =>
        {
            tracing::debug!("not copying xattr {:?} to {}: {e}", name, dst.display());
            Ok(())
        }
        Err(e) => Err(e).at("setting xattrs of", dst),
    }
}

/// Path-based `utimensat(AT_SYMLINK_NOFOLLOW)` for every kind of entry (filetime's
/// `set_file_times` opens the file, which blocks on a fifo).
fn set_times(p: &Path, m: &fs::Metadata) -> Result<()> {
    let at = FileTime::from_last_access_time(m);
    let mt = FileTime::from_last_modification_time(m);
    filetime::set_symlink_file_times(p, at, mt).at("setting times of", p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_preserves_everything() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        fs::create_dir(&src).unwrap();
        fs::create_dir(src.join("sub")).unwrap();
        fs::write(src.join("sub/f"), b"hello").unwrap();
        fs::set_permissions(src.join("sub/f"), fs::Permissions::from_mode(0o4755)).unwrap();
        fs::hard_link(src.join("sub/f"), src.join("hl")).unwrap();
        std::os::unix::fs::symlink("sub/f", src.join("ln")).unwrap();
        nix::unistd::mkfifo(
            &src.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o640),
        )
        .unwrap();
        let root = nix::unistd::geteuid().is_root();
        if root {
            std::os::unix::fs::lchown(src.join("sub/f"), Some(12), Some(34)).unwrap();
            fs::set_permissions(src.join("sub/f"), fs::Permissions::from_mode(0o4755)).unwrap();
            nix::sys::stat::mknod(
                &src.join("null"),
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::from_bits_truncate(0o666),
                nix::sys::stat::makedev(1, 3),
            )
            .unwrap();
        }
        let _ = xattr::set(src.join("sub/f"), "user.k", b"v");
        filetime::set_file_times(
            src.join("sub/f"),
            FileTime::from_unix_time(1_000_000, 123),
            FileTime::from_unix_time(2_000_000, 456),
        )
        .unwrap();
        filetime::set_file_times(
            src.join("sub"),
            FileTime::from_unix_time(3_000_000, 0),
            FileTime::from_unix_time(4_000_000, 789),
        )
        .unwrap();
        fs::set_permissions(&src, fs::Permissions::from_mode(0o555)).unwrap();

        let dst = d.path().join("dst");
        copy_tree(&src, &dst).unwrap();

        let m = fs::metadata(dst.join("sub/f")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o4755);
        assert_eq!(fs::read(dst.join("sub/f")).unwrap(), b"hello");
        assert_eq!(
            FileTime::from_last_modification_time(&m),
            FileTime::from_unix_time(2_000_000, 456)
        );
        let ms = fs::metadata(dst.join("sub")).unwrap();
        assert_eq!(
            FileTime::from_last_modification_time(&ms),
            FileTime::from_unix_time(4_000_000, 789)
        );
        assert_eq!(fs::metadata(&dst).unwrap().mode() & 0o7777, 0o555);
        assert_eq!(m.ino(), fs::metadata(dst.join("hl")).unwrap().ino());
        assert_eq!(
            fs::read_link(dst.join("ln")).unwrap(),
            PathBuf::from("sub/f")
        );
        assert!(fs::symlink_metadata(dst.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo());
        assert_eq!(
            fs::symlink_metadata(dst.join("fifo")).unwrap().mode() & 0o777,
            0o640
        );
        if xattr::get(src.join("sub/f"), "user.k")
            .ok()
            .flatten()
            .is_some()
        {
            assert_eq!(
                xattr::get(dst.join("sub/f"), "user.k").unwrap().unwrap(),
                b"v"
            );
        }
        if root {
            assert_eq!((m.uid(), m.gid()), (12, 34));
            let n = fs::symlink_metadata(dst.join("null")).unwrap();
            assert!(n.file_type().is_char_device());
            assert_eq!(n.rdev(), nix::sys::stat::makedev(1, 3));
        }
        remove_all(&d.path().join("src")).unwrap();
        remove_all(&dst).unwrap();
    }

    /// Many directories and files, hard links across directories (copied by different
    /// workers), and a failure half-way that is reported, not lost.
    #[test]
    fn copy_of_a_wide_tree_keeps_links_and_reports_errors() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        for i in 0..60 {
            let dir = src.join(format!("d{i}/sub"));
            fs::create_dir_all(&dir).unwrap();
            for j in 0..15 {
                fs::write(
                    dir.join(format!("f{j}")),
                    format!("{i}/{j}").repeat(j * 100),
                )
                .unwrap();
            }
            if i > 0 {
                fs::hard_link(src.join("d0/sub/f3"), dir.join("link")).unwrap();
            }
        }
        // One worker that may fall behind a walker allowed one queued batch: the walker
        // copies batches too. Then the defaults.
        for (name, workers, queued) in [("dst1", 1, 1), ("dst", 4, MAX_QUEUED)] {
            let dst = d.path().join(name);
            copy_tree_with(&src, &dst, workers, queued).unwrap();
            let ino = fs::metadata(dst.join("d0/sub/f3")).unwrap().ino();
            for i in 0..60 {
                for j in 0..15 {
                    let f = dst.join(format!("d{i}/sub/f{j}"));
                    let want = format!("{i}/{j}").repeat(j * 100);
                    assert_eq!(fs::read_to_string(&f).unwrap(), want);
                }
                if i > 0 {
                    let link = dst.join(format!("d{i}/sub/link"));
                    assert_eq!(fs::metadata(link).unwrap().ino(), ino);
                }
            }
            assert_eq!(fs::metadata(dst.join("d0/sub/f3")).unwrap().nlink(), 60);
        }

        // A destination entry that already exists makes one worker fail: the error names it.
        let dst2 = d.path().join("dst2");
        fs::create_dir(&dst2).unwrap();
        let e = copy_tree(&src, &dst2).unwrap_err().to_string();
        assert!(
            e.contains("creating directory") && e.contains("dst2"),
            "{e}"
        );
        // A file whose copy's path is too long fails in a worker: that error is the result.
        let mut deep = src.join("d9");
        for _ in 0..18 {
            deep = deep.join("n".repeat(200));
        }
        fs::create_dir_all(&deep).unwrap();
        fs::write(deep.join("f".repeat(250)), b"x").unwrap();
        let far = d.path().join("l".repeat(250));
        fs::create_dir(&far).unwrap();
        let e = copy_tree(&src, &far.join("dst")).unwrap_err().to_string();
        assert!(
            e.starts_with("creating ") && e.contains(&"f".repeat(250)),
            "{e}"
        );
        remove_all(&src.join("d9")).unwrap();
        fs::remove_file(src.join("d7/sub/f4")).unwrap();
        std::os::unix::net::UnixListener::bind(src.join("d7/sub/f4")).unwrap();
        let dst3 = d.path().join("dst3");
        copy_tree(&src, &dst3).unwrap();
        assert!(fs::symlink_metadata(dst3.join("d7/sub/f4"))
            .unwrap()
            .file_type()
            .is_socket());
    }
}
