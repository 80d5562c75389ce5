//! fd-relative filesystem helpers confined to a root directory (openat2 `RESOLVE_IN_ROOT`).
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::error::{IoResultExt, Result};

/// A directory that every path is resolved inside.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

/// The resolve flags used for everything inside a root.
pub const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

impl Root {
    /// Open `path` (which must be a directory) as a root.
    pub fn open(path: &Path) -> Result<Root> {
        let fd = rfs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io::Error::from)
        .at("opening", path)?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The root's fd.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The root's path (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A host path for messages: the root joined with `rel`.
    pub fn display(&self, rel: &[u8]) -> PathBuf {
        use std::os::unix::ffi::OsStrExt;
        self.path.join(std::ffi::OsStr::from_bytes(rel))
    }

    /// `openat2(root, rel, flags, RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS)`; empty `rel` = the root.
    pub fn open_at(&self, rel: &[u8], flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
        let rel: &[u8] = if rel.is_empty() { b"." } else { rel };
        loop {
            match rfs::openat2(&self.fd, rel, flags | OFlags::CLOEXEC, mode, IN_ROOT) {
                Err(Errno::AGAIN) | Err(Errno::INTR) => continue,
                r => return r.map_err(io::Error::from),
            }
        }
    }

    /// Resolve the directory `comps` inside the root (an `O_PATH` fd).
    pub fn dir(&self, comps: &[&[u8]]) -> io::Result<OwnedFd> {
        self.open_at(
            &comps.join(&b'/'),
            OFlags::PATH | OFlags::DIRECTORY,
            Mode::empty(),
        )
    }

    /// Resolve the directory `comps`, creating missing components with `mode` (implied
    /// parents). Each new component is created relative to its resolved parent.
    /// Returns the fd and the paths (relative, joined by `/`) that were created.
    pub fn ensure_dir(&self, comps: &[&[u8]], mode: u32) -> io::Result<(OwnedFd, Vec<Vec<u8>>)> {
        match self.dir(comps) {
            Ok(fd) => return Ok((fd, Vec::new())),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let mut created = Vec::new();
        let mut cur = self.dir(&[])?;
        for i in 0..comps.len() {
            match self.dir(&comps[..=i]) {
                Ok(fd) => cur = fd,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    match rfs::mkdirat(&cur, comps[i], Mode::from_raw_mode(mode)) {
                        Ok(()) => {
                            // Not subject to the umask: `comps[i]` is the directory just made.
                            rfs::chmodat(
                                &cur,
                                comps[i],
                                Mode::from_raw_mode(mode),
                                AtFlags::empty(),
                            )?;
                            created.push(comps[..=i].join(&b'/'));
                        }
                        Err(Errno::EXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    // Open what we just made relative to the parent, without following.
                    cur = rfs::openat(
                        &cur,
                        comps[i],
                        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok((cur, created))
    }
}

/// `/proc/self/fd/N` for an fd: operating on this path acts on exactly that inode.
pub fn proc_fd_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// lstat relative to a directory fd; `None` if absent.
pub fn lstat_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Option<rfs::Stat>> {
    match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Whether a stat is a directory.
pub fn is_dir(st: &rfs::Stat) -> bool {
    rfs::FileType::from_raw_mode(st.st_mode) == rfs::FileType::Directory
}

/// Remove `name` in `dir` recursively without following symlinks.
pub fn remove_all_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    match rfs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => return Ok(()),
        Err(Errno::ISDIR) | Err(Errno::PERM) => {}
        Err(e) => return Err(e.into()),
    }
    let sub = match rfs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    clear_dir(sub.as_fd(), &mut |_| false)?;
    match rfs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The names in a directory (opened for reading), without `.` and `..`, sorted.
pub fn list_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<Vec<u8>>> {
    let fd = rfs::openat(
        dir,
        c".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    for ent in rfs::Dir::read_from(&fd)? {
        let ent = ent?;
        let n = ent.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(n.to_vec());
        }
    }
    names.sort();
    Ok(names)
}

/// Remove every entry of `dir` for which `keep` is false.
pub fn clear_dir(dir: BorrowedFd<'_>, keep: &mut dyn FnMut(&[u8]) -> bool) -> io::Result<()> {
    for name in list_dir(dir)? {
        if !keep(&name) {
            remove_all_at(dir, &name)?;
        }
    }
    Ok(())
}

/// Split an entry name into components: `/` and `.` components dropped; `..`, NUL and
/// empty names refused (returns the reason).
pub fn components(name: &[u8]) -> std::result::Result<Vec<&[u8]>, &'static str> {
    if name.is_empty() {
        return Err("empty name");
    }
    if name.contains(&0) {
        return Err("name contains NUL");
    }
    let mut out = Vec::new();
    for c in name.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("name contains a \"..\" component"),
            c => out.push(c),
        }
    }
    Ok(out)
}
