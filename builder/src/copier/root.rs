//! A rootfs directory opened as a file descriptor; every path under it is resolved inside it.
//!
//! Lookups use `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` when the kernel has it, and
//! otherwise (and for `mkdir -p`) a per-component `O_PATH | O_NOFOLLOW` walk that follows
//! symlinks itself, restarting absolute targets at the root and clamping `..` at the root,
//! so a planted link (`/test -> /tmp`) resolves to `<root>/tmp`, never to the host's `/tmp`.
use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};

/// Symlinks followed in one lookup before giving up with `ELOOP` (Linux's limit).
const MAX_LINKS: usize = 40;

/// Ownership and mode for directories a lookup creates.
#[derive(Debug, Clone, Copy)]
pub struct NewDir {
    /// Permission bits.
    pub mode: u32,
    /// Owner (`None` leaves the creating process's).
    pub owner: Option<(u32, u32)>,
}

impl Default for NewDir {
    fn default() -> Self {
        NewDir {
            mode: 0o755,
            owner: Some((0, 0)),
        }
    }
}

/// An opened root directory.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

impl Root {
    /// Open `path` (following links in the host path itself: the caller chose it).
    pub fn open(path: &Path) -> io::Result<Root> {
        let fd = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The host path the root was opened from (for messages only).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The root's descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The host path of an in-root path, for messages.
    pub fn display_path(&self, p: &Path) -> PathBuf {
        self.path.join(p.strip_prefix("/").unwrap_or(p))
    }

    /// Open `p` (absolute or relative to the root, both meaning "under the root") as an
    /// `O_PATH` descriptor, following symlinks inside the root (the last one too when
    /// `follow_last`). `Ok(None)` when it does not exist.
    pub fn lookup(&self, p: &Path, follow_last: bool) -> io::Result<Option<OwnedFd>> {
        let rel = strip_root(p);
        if rel.as_os_str().is_empty() {
            return Ok(Some(rustix::fs::openat(
                &self.fd,
                ".",
                OFlags::PATH | OFlags::CLOEXEC,
                Mode::empty(),
            )?));
        }
        let mut flags = OFlags::PATH | OFlags::CLOEXEC;
        if !follow_last {
            flags |= OFlags::NOFOLLOW;
        }
        match rustix::fs::openat2(
            &self.fd,
            &rel,
            flags,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            Ok(fd) => return Ok(Some(fd)),
            Err(e) if e == rustix::io::Errno::NOENT => return Ok(None),
            Err(e)
                if e == rustix::io::Errno::NOSYS
                    || e == rustix::io::Errno::PERM
                    || e == rustix::io::Errno::AGAIN =>
            {
                tracing::debug!("openat2 unavailable ({e}), walking {}", rel.display());
            }
            Err(e) => return Err(e.into()),
        }
        match self.walk(&rel, follow_last, None) {
            Ok(fd) => Ok(Some(fd)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Open the directory `p` under the root, creating missing components (and following
    /// symlinks inside the root). The result is an `O_PATH` directory descriptor usable as
    /// the `dirfd` of `*at` calls.
    pub fn mkdir_all(&self, p: &Path, new: NewDir) -> io::Result<OwnedFd> {
        let rel = strip_root(p);
        let fd = self.walk(&rel, true, Some(new))?;
        let st = rustix::fs::fstat(&fd)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        Ok(fd)
    }

    /// Open the directory `p` under the root without creating anything.
    pub fn open_dir(&self, p: &Path) -> io::Result<OwnedFd> {
        let fd = self
            .lookup(p, true)?
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
        let st = rustix::fs::fstat(&fd)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        Ok(fd)
    }

    /// Read the regular file `p` under the root, at most `cap` bytes (more is an error).
    /// Links resolve inside the root; FIFOs, devices and directories count as absent, and
    /// the open never blocks (`O_NONBLOCK`). `Ok(None)` when there is no such regular file.
    pub fn read_file(&self, p: &Path, cap: u64) -> io::Result<Option<Vec<u8>>> {
        use std::io::Read;
        let Some(pfd) = self.lookup(p, true)? else {
            return Ok(None);
        };
        let st = rustix::fs::fstat(&pfd)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Ok(None);
        }
        // Re-open the very inode we resolved, for reading, through its O_PATH descriptor.
        let fd = reopen(&pfd, OFlags::RDONLY | OFlags::NONBLOCK)?;
        let st2 = rustix::fs::fstat(&fd)?;
        if st2.st_ino != st.st_ino || st2.st_dev != st.st_dev {
            return Err(io::Error::other("file changed while opening"));
        }
        let mut buf = Vec::new();
        std::fs::File::from(fd)
            .take(cap + 1)
            .read_to_end(&mut buf)?;
        if buf.len() as u64 > cap {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("file is larger than {cap} bytes"),
            ));
        }
        Ok(Some(buf))
    }

    /// The per-component walk. Directories are held as `O_PATH` descriptors, so a
    /// component swapped for a link after it was opened cannot redirect later steps.
    fn walk(&self, rel: &Path, follow_last: bool, create: Option<NewDir>) -> io::Result<OwnedFd> {
        let mut queue: VecDeque<OsString> = components(rel).into();
        let mut stack: Vec<OwnedFd> = Vec::new();
        let mut links = 0usize;
        let reopen_root =
            || rustix::fs::openat(&self.fd, ".", OFlags::PATH | OFlags::CLOEXEC, Mode::empty());
        while let Some(name) = queue.pop_front() {
            if name == ".." {
                stack.pop();
                continue;
            }
            let last = queue.is_empty();
            let cur: BorrowedFd<'_> = stack.last().map(|f| f.as_fd()).unwrap_or(self.fd.as_fd());
            let fd = match rustix::fs::openat(
                cur,
                &*name,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                Err(e) if e == rustix::io::Errno::NOENT => {
                    let Some(new) = create else {
                        return Err(e.into());
                    };
                    match rustix::fs::mkdirat(cur, &*name, Mode::from_raw_mode(new.mode)) {
                        Ok(()) => {
                            let dfd = rustix::fs::openat(
                                cur,
                                &*name,
                                OFlags::RDONLY
                                    | OFlags::DIRECTORY
                                    | OFlags::NOFOLLOW
                                    | OFlags::CLOEXEC,
                                Mode::empty(),
                            )?;
                            // mkdir applies the umask; set the intended mode and owner.
                            rustix::fs::fchmod(&dfd, Mode::from_raw_mode(new.mode))?;
                            if let Some((u, g)) = new.owner {
                                match chown_fd(&dfd, u, g) {
                                    // Unprivileged: the new directory stays ours.
                                    Err(e)
                                        if e.raw_os_error() == Some(libc::EPERM)
                                            && !rustix::process::geteuid().is_root() => {}
                                    r => r?,
                                }
                            }
                        }
                        Err(e) if e == rustix::io::Errno::EXIST => {}
                        Err(e) => return Err(e.into()),
                    }
                    queue.push_front(name);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let st = rustix::fs::fstat(&fd)?;
            match FileType::from_raw_mode(st.st_mode) {
                FileType::Symlink if !last || follow_last => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(io::Error::from_raw_os_error(libc::ELOOP));
                    }
                    let target = rustix::fs::readlinkat(&fd, "", Vec::new())?;
                    let target = PathBuf::from(OsStr::from_bytes(target.as_bytes()));
                    if target.is_absolute() {
                        stack.clear();
                    }
                    for c in components(&target).into_iter().rev() {
                        queue.push_front(c);
                    }
                    if queue.is_empty() {
                        // A link to "/" (or to "." at the root).
                        return match stack.pop() {
                            Some(f) => Ok(f),
                            None => Ok(reopen_root()?),
                        };
                    }
                }
                FileType::Directory => {
                    if last {
                        return Ok(fd);
                    }
                    stack.push(fd);
                }
                _ if last => return Ok(fd),
                _ => return Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
            }
        }
        // The path resolved to a directory already on the stack (or the root).
        match stack.pop() {
            Some(f) => Ok(f),
            None => Ok(reopen_root()?),
        }
    }
}

/// The normal components of `p` (root and `.` dropped, `..` kept), as plain names.
pub(crate) fn components(p: &Path) -> Vec<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

fn strip_root(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in components(p) {
        out.push(c);
    }
    out
}

/// Re-open the inode behind an `O_PATH` descriptor with `flags` (through `/proc/self/fd`).
pub(crate) fn reopen(pfd: &OwnedFd, flags: OFlags) -> io::Result<OwnedFd> {
    let p = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(pfd));
    Ok(rustix::fs::open(
        p.as_str(),
        flags | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// `fchown` that also works on `O_PATH` descriptors (through `AT_EMPTY_PATH`).
pub(crate) fn chown_fd(fd: &OwnedFd, uid: u32, gid: u32) -> io::Result<()> {
    rustix::fs::chownat(
        fd,
        "",
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
        AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn host_path(fd: &OwnedFd) -> PathBuf {
        std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(fd)
        ))
        .unwrap()
    }

    #[test]
    fn absolute_and_relative_links_stay_inside() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("tmp")).unwrap();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        symlink("/tmp", root.join("test")).unwrap();
        symlink("../../../../../..", root.join("a/b/up")).unwrap();
        symlink("/", root.join("slash")).unwrap();
        let r = Root::open(&root).unwrap();
        let canon = root.canonicalize().unwrap();
        for (p, want) in [
            ("/test", "tmp"),
            ("test", "tmp"),
            ("/a/b/up", ""),
            ("/a/b/up/tmp", "tmp"),
            ("../../..", ""),
            ("/slash/tmp", "tmp"),
            ("/slash", ""),
        ] {
            let fd = r.lookup(Path::new(p), true).unwrap().unwrap();
            assert_eq!(
                host_path(&fd),
                canon.join(want).components().collect::<PathBuf>(),
                "{p}"
            );
        }
        // the walk (fallback) gives the same answers
        for (p, want) in [("/test", "tmp"), ("/a/b/up/tmp", "tmp"), ("slash", "")] {
            let fd = r.walk(&strip_root(Path::new(p)), true, None).unwrap();
            assert_eq!(
                host_path(&fd),
                canon.join(want).components().collect::<PathBuf>(),
                "{p}"
            );
        }
    }

    #[test]
    fn mkdir_all_through_planted_link_is_contained() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let outside = t.path().join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        symlink(&outside, root.join("evil")).unwrap();
        symlink("../../../..", root.join("dots")).unwrap();
        let r = Root::open(&root).unwrap();
        r.mkdir_all(
            Path::new("/evil/x/y"),
            NewDir {
                mode: 0o755,
                owner: None,
            },
        )
        .unwrap();
        r.mkdir_all(
            Path::new("dots/z"),
            NewDir {
                mode: 0o755,
                owner: None,
            },
        )
        .unwrap();
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            0,
            "nothing created outside"
        );
        // the absolute target was re-rooted: <root>/<outside path>/x/y
        assert!(root
            .join(outside.strip_prefix("/").unwrap())
            .join("x/y")
            .is_dir());
        assert!(root.join("z").is_dir());
    }

    #[test]
    fn link_loops_fail() {
        let t = tempfile::tempdir().unwrap();
        symlink("b", t.path().join("a")).unwrap();
        symlink("a", t.path().join("b")).unwrap();
        let r = Root::open(t.path()).unwrap();
        assert!(r.lookup(Path::new("a/x"), true).is_err());
        assert!(r.walk(Path::new("a/x"), true, None).is_err());
    }
}
