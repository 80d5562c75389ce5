//! A rootfs (or any directory) opened as a descriptor, with every path under it resolved
//! inside it: the one confined resolver behind archive/ (layer apply, tar-split assembly,
//! diffs), copier/ (COPY/ADD, ignore files), run/ (working directory, placeholders) and the
//! runtime's mount setup in sys/container.rs. [`passwd`] reads the rootfs's own users.
//!
//! Lookups use `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` when the kernel has it, and
//! otherwise (and whenever something is created) a per-component `O_PATH | O_NOFOLLOW` walk
//! that follows symlinks itself, restarting absolute targets at the root and clamping `..`
//! at the root (on the stack of opened directories, never by opening `..`, so a concurrent
//! rename cannot move the walk out), so a planted link (`/test -> /tmp`) resolves to
//! `<root>/tmp`, never to the host's `/tmp`.
//!
//! Only safe `rustix` calls and no threads: the runtime uses this in its re-exec'd child
//! after `unshare`.
use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

pub mod passwd;

/// Symlinks followed in one lookup before giving up with `ELOOP` (Linux's MAXSYMLINKS).
const MAX_LINKS: usize = 40;

/// The resolve flags used for everything inside a root.
const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// Ownership and mode for directories a lookup creates ([`Create::DirWith`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewDir {
    /// Permission bits (set exactly, not subject to the umask).
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

/// What to create when the path (or some of its parents) does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// Nothing: a missing component is `ENOENT`.
    No,
    /// Missing components, the last one included, become directories (mode 0755 less the
    /// umask, owner unchanged).
    Dir,
    /// Missing parents become directories, the last component an empty file (mode 0755, the
    /// mode runc gives the mount-point files it creates, so layers match buildah's).
    File,
    /// Missing components, the last one included, become directories with exactly this
    /// mode and owner (a failed chown is ignored when unprivileged).
    DirWith(NewDir),
}

/// An opened root directory.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

impl Root {
    /// Open `path` (which must be a directory) as a root, following links in the host path
    /// itself: the caller chose it.
    pub fn open(path: &Path) -> io::Result<Root> {
        let fd = rfs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The root's descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The host path the root was opened from (for messages only).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The host path of an in-root path, for messages.
    pub fn display_path(&self, p: &Path) -> PathBuf {
        self.path.join(p.strip_prefix("/").unwrap_or(p))
    }

    /// [`Root::display_path`] for a name as bytes.
    pub fn display(&self, rel: &[u8]) -> PathBuf {
        self.display_path(Path::new(OsStr::from_bytes(rel)))
    }

    /// [`resolve_in_root`] under this root.
    pub fn resolve(&self, p: &Path, create: Create, follow_last: bool) -> io::Result<OwnedFd> {
        resolve_in_root(&self.fd, p, create, follow_last)
    }

    /// Open `p` (absolute or relative to the root, both meaning "under the root") as an
    /// `O_PATH` descriptor, following symlinks inside the root (the last one too when
    /// `follow_last`). `Ok(None)` when it does not exist.
    pub fn lookup(&self, p: &Path, follow_last: bool) -> io::Result<Option<OwnedFd>> {
        match resolve_in_root(&self.fd, p, Create::No, follow_last) {
            Ok(fd) => Ok(Some(fd)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// [`open_in_root`] for a name as bytes; empty `rel` = the root.
    pub fn open_at(&self, rel: &[u8], flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
        open_in_root(&self.fd, Path::new(OsStr::from_bytes(rel)), flags, mode)
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

    /// Open the directory `p` under the root, creating missing components with `new` (and
    /// following symlinks inside the root). The result is an `O_PATH` directory descriptor
    /// usable as the `dirfd` of `*at` calls.
    pub fn mkdir_all(&self, p: &Path, new: NewDir) -> io::Result<OwnedFd> {
        let fd = self.resolve(p, Create::DirWith(new), true)?;
        if !is_dir(&fd)? {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        Ok(fd)
    }

    /// Open the directory `p` under the root without creating anything.
    pub fn open_dir(&self, p: &Path) -> io::Result<OwnedFd> {
        let fd = self
            .lookup(p, true)?
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
        if !is_dir(&fd)? {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        Ok(fd)
    }

    /// The host path of what `p` resolves to under the root (links followed inside it):
    /// a path with no symbolic links in it, below [`Root::path`], for handing to code that
    /// only takes paths (a mount source, a file to read). `Ok(None)` when it does not exist.
    /// The path is only as stable as the tree: callers use it for trees nothing else is
    /// changing at the time (a build context, a stage that is not running).
    pub fn real_path(&self, p: &Path) -> io::Result<Option<PathBuf>> {
        let Some(fd) = self.lookup(p, true)? else {
            return Ok(None);
        };
        let real = std::fs::read_link(fd_path(&fd))?;
        let base = std::fs::read_link(fd_path(&self.fd))?;
        if !real.starts_with(&base) {
            // Moved out from under the root between the lookup and now.
            return Err(io::Error::from_raw_os_error(libc::EXDEV));
        }
        Ok(Some(real))
    }

    /// Read the regular file `p` under the root, at most `cap` bytes (more is an error).
    /// Links resolve inside the root; FIFOs, devices and directories count as absent, and
    /// the open never blocks (`O_NONBLOCK`). `Ok(None)` when there is no such regular file.
    pub fn read_file(&self, p: &Path, cap: u64) -> io::Result<Option<Vec<u8>>> {
        use std::io::Read;
        let Some(pfd) = self.lookup(p, true)? else {
            return Ok(None);
        };
        let st = rfs::fstat(&pfd)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Ok(None);
        }
        // Re-open the very inode we resolved, for reading, through its O_PATH descriptor.
        let fd = reopen(&pfd, OFlags::RDONLY | OFlags::NONBLOCK)?;
        let st2 = rfs::fstat(&fd)?;
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
}

/// Open `path` (absolute or relative: both are taken relative to `root`) inside `root` and
/// return an `O_PATH` descriptor to it, creating what `create` says. With
/// `follow_last == false` a symlink as the last component is returned as the link itself
/// (check with [`is_symlink`]). A missing component is an `ENOENT` error.
pub fn resolve_in_root(
    root: &impl AsFd,
    path: &Path,
    create: Create,
    follow_last: bool,
) -> io::Result<OwnedFd> {
    let root = root.as_fd();
    let rel = strip_root(path);
    if create == Create::No {
        let mut flags = OFlags::PATH;
        if !follow_last {
            flags |= OFlags::NOFOLLOW;
        }
        if let Some(r) = openat2_in_root(root, &rel, flags, Mode::empty()) {
            return r;
        }
    }
    walk(root, &rel, follow_last, create)
}

/// `openat(root, path, flags, mode)` with `path` resolved inside `root` (absolute or
/// relative, both under the root; empty = the root): `openat2(RESOLVE_IN_ROOT |
/// RESOLVE_NO_MAGICLINKS)`, or, where the kernel lacks it, the walk and a re-open of the
/// inode found. `O_NOFOLLOW` applies to the last component; `flags` must not create.
pub fn open_in_root(
    root: &impl AsFd,
    path: &Path,
    flags: OFlags,
    mode: Mode,
) -> io::Result<OwnedFd> {
    let root = root.as_fd();
    let rel = strip_root(path);
    if let Some(r) = openat2_in_root(root, &rel, flags, mode) {
        return r;
    }
    open_by_walk(root, &rel, flags)
}

/// [`open_in_root`] without openat2: the walk, then a re-open of the inode it found.
fn open_by_walk(root: BorrowedFd<'_>, rel: &Path, flags: OFlags) -> io::Result<OwnedFd> {
    // (O_TMPFILE includes O_DIRECTORY: test for all of its bits.)
    if flags.contains(OFlags::CREATE) || flags.contains(OFlags::TMPFILE) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let pfd = walk(root, rel, !flags.contains(OFlags::NOFOLLOW), Create::No)?;
    let ft = FileType::from_raw_mode(rfs::fstat(&pfd)?.st_mode);
    // What the kernel answers for O_DIRECTORY (first), and for a final symlink under
    // O_NOFOLLOW.
    if flags.contains(OFlags::DIRECTORY) && ft != FileType::Directory {
        return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
    }
    if ft == FileType::Symlink && !flags.contains(OFlags::PATH) {
        return Err(io::Error::from_raw_os_error(libc::ELOOP));
    }
    if flags.contains(OFlags::PATH) {
        return Ok(pfd);
    }
    reopen(&pfd, flags - OFlags::NOFOLLOW)
}

/// `openat2` inside `root`; `None` when the kernel (or a seccomp filter) does not offer it,
/// or a concurrent rename made it give up: the caller walks instead.
fn openat2_in_root(
    root: BorrowedFd<'_>,
    rel: &Path,
    flags: OFlags,
    mode: Mode,
) -> Option<io::Result<OwnedFd>> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    loop {
        match rfs::openat2(root, rel, flags | OFlags::CLOEXEC, mode, IN_ROOT) {
            Err(Errno::INTR) => continue,
            Err(e @ (Errno::NOSYS | Errno::PERM | Errno::AGAIN)) => {
                tracing::debug!("openat2 unavailable ({e}), walking {}", rel.display());
                return None;
            }
            r => return Some(r.map_err(io::Error::from)),
        }
    }
}

/// The per-component walk. Directories are held as `O_PATH` descriptors, so a component
/// swapped for a link after it was opened cannot redirect later steps.
fn walk(
    root: BorrowedFd<'_>,
    rel: &Path,
    follow_last: bool,
    create: Create,
) -> io::Result<OwnedFd> {
    let mut queue: VecDeque<OsString> = components(rel).into();
    // Opened directories below the root (the root itself is not on it).
    let mut stack: Vec<OwnedFd> = Vec::new();
    let mut links = 0usize;
    let top = |stack: &mut Vec<OwnedFd>| -> io::Result<OwnedFd> {
        match stack.pop() {
            Some(f) => Ok(f),
            None => Ok(rfs::openat(
                root,
                ".",
                OFlags::PATH | OFlags::CLOEXEC,
                Mode::empty(),
            )?),
        }
    };
    while let Some(name) = queue.pop_front() {
        if name == ".." {
            stack.pop();
            continue;
        }
        let last = queue.is_empty();
        let cur: BorrowedFd<'_> = stack.last().map(|f| f.as_fd()).unwrap_or(root);
        let fd = match rfs::openat(
            cur,
            &*name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) if create != Create::No => {
                create_missing(cur, &name, last, create)?;
                // Open what is there now, as any other component (a link is followed).
                queue.push_front(name);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let st = rfs::fstat(&fd)?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Symlink if !last || follow_last => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = rfs::readlinkat(&fd, "", Vec::new())?;
                let target = PathBuf::from(OsStr::from_bytes(target.as_bytes()));
                if target.is_absolute() {
                    stack.clear();
                }
                for c in components(&target).into_iter().rev() {
                    queue.push_front(c);
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
    top(&mut stack)
}

/// Create the missing `name` in `dir` as `create` says (an existing one is left alone).
fn create_missing(dir: BorrowedFd<'_>, name: &OsStr, last: bool, create: Create) -> io::Result<()> {
    let r = match create {
        Create::No => Err(Errno::NOENT),
        Create::File if last => rfs::openat(
            dir,
            name,
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o755),
        )
        .map(drop),
        Create::Dir | Create::File => rfs::mkdirat(dir, name, Mode::from_raw_mode(0o755)),
        Create::DirWith(new) => match rfs::mkdirat(dir, name, Mode::from_raw_mode(new.mode)) {
            Ok(()) => {
                let dfd = rfs::openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                // mkdir applies the umask; set the intended mode and owner.
                rfs::fchmod(&dfd, Mode::from_raw_mode(new.mode))?;
                if let Some((u, g)) = new.owner {
                    match chown_fd(&dfd, u, g) {
                        // Unprivileged: the new directory stays ours.
                        Err(e)
                            if e.raw_os_error() == Some(libc::EPERM)
                                && !rustix::process::geteuid().is_root() => {}
                        // Only one ID is mapped here: the same.
                        Err(e)
                            if e.raw_os_error() == Some(libc::EINVAL)
                                && !crate::environment::Environment::get().keeps_owners() => {}
                        r => r?,
                    }
                }
                Ok(())
            }
            Err(e) => Err(e),
        },
    };
    match r {
        Ok(()) | Err(Errno::EXIST) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The normal components of `p` (root and `.` dropped, `..` kept), as plain names.
pub fn components(p: &Path) -> Vec<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

/// Whether resolving `path` inside `root` would climb above the root through a symbolic
/// link (a link whose target has more `..` than it has parents, e.g.
/// `escape -> /../../../host-dir`). Resolution inside the root clamps such climbs, so they
/// never reach the host; callers that must refuse the attempt outright (run's mount
/// destinations) ask here first. Returns the offending link's path in the container.
/// Components that do not exist end the check (what is created later is created inside).
pub fn symlink_escape(root: &impl AsFd, path: &Path) -> io::Result<Option<PathBuf>> {
    let root = root.as_fd();
    // (component, came from a link's target)
    let mut pending: VecDeque<(OsString, bool)> =
        components(path).into_iter().map(|c| (c, false)).collect();
    let mut resolved: Vec<OsString> = Vec::new();
    let mut hops = 0;
    let mut last_link = PathBuf::from("/");
    while let Some((c, from_link)) = pending.pop_front() {
        if c == ".." {
            if resolved.pop().is_none() && from_link {
                return Ok(Some(last_link));
            }
            continue;
        }
        let mut rel = PathBuf::new();
        for r in &resolved {
            rel.push(r);
        }
        rel.push(&c);
        let st = match rfs::statat(root, &rel, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) | Err(Errno::NOTDIR) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if FileType::from_raw_mode(st.st_mode) != FileType::Symlink {
            resolved.push(c);
            continue;
        }
        hops += 1;
        if hops > 40 {
            return Err(io::Error::from_raw_os_error(libc::ELOOP));
        }
        let target = rfs::readlinkat(root, &rel, Vec::new())?;
        let target = Path::new(OsStr::from_bytes(target.as_bytes()));
        last_link = Path::new("/").join(&rel);
        if target.is_absolute() {
            resolved.clear();
        }
        for t in components(target).into_iter().rev() {
            pending.push_front((t, true));
        }
    }
    Ok(None)
}

fn strip_root(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in components(p) {
        out.push(c);
    }
    out
}

/// Split an entry name (a tar member's) into components: `/` and `.` components dropped;
/// `..`, NUL and empty names refused (returns the reason).
pub fn entry_components(name: &[u8]) -> std::result::Result<Vec<&[u8]>, &'static str> {
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

/// `/proc/self/fd/N` for a descriptor: operating on this path (a mount, a re-open, an
/// `*xattr` call) acts on exactly that inode.
pub fn fd_path(fd: &impl AsFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()))
}

/// Re-open the inode behind an `O_PATH` descriptor with `flags` (through `/proc/self/fd`).
pub fn reopen(pfd: &impl AsFd, flags: OFlags) -> io::Result<OwnedFd> {
    Ok(rfs::open(
        fd_path(pfd).as_path(),
        flags | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// `fchown` that also works on `O_PATH` descriptors (through `AT_EMPTY_PATH`).
pub fn chown_fd(fd: &impl AsFd, uid: u32, gid: u32) -> io::Result<()> {
    rfs::chownat(
        fd,
        "",
        Some(rfs::Uid::from_raw(uid)),
        Some(rfs::Gid::from_raw(gid)),
        AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

/// True when the (`O_PATH`) descriptor refers to a symlink.
pub fn is_symlink(fd: &impl AsFd) -> io::Result<bool> {
    Ok(FileType::from_raw_mode(rfs::fstat(fd)?.st_mode) == FileType::Symlink)
}

/// True when the descriptor refers to a directory.
pub fn is_dir(fd: &impl AsFd) -> io::Result<bool> {
    Ok(FileType::from_raw_mode(rfs::fstat(fd)?.st_mode) == FileType::Directory)
}

/// Whether a stat is a directory.
pub fn stat_is_dir(st: &rfs::Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::Directory
}

/// lstat relative to a directory fd; `None` if absent.
pub fn lstat_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Option<rfs::Stat>> {
    match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
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

/// Normalise a container path lexically (for display and comparisons): absolute, no `.`/`..`.
pub fn clean_container_path(p: &str) -> PathBuf {
    let mut out: Vec<&OsStr> = Vec::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    let mut pb = PathBuf::from("/");
    for c in out {
        pb.push(c);
    }
    pb
}

#[cfg(test)]
mod tests;
