//! Resolve a path inside a root directory, the way the kernel would if that directory were
//! `/`: every component is opened with `O_NOFOLLOW` relative to the previous one, symlinks are
//! read and re-walked from the root (absolute) or the current directory (relative), and `..`
//! never climbs above the root (it is handled lexically on the stack of opened directories,
//! never by opening `..`, so a concurrent rename cannot move us out). No `openat2` needed.
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{self as rfs, FileType, Mode, OFlags};

/// What to create when the path (or some of its parents) does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// Nothing: a missing component is `ENOENT`.
    No,
    /// Missing components, the last one included, become directories (mode 0755).
    Dir,
    /// Missing parents become directories, the last component an empty file (mode 0755, the
    /// mode runc gives the mount-point files it creates, so layers match buildah's).
    File,
}

/// How many symlinks a resolution may traverse (Linux's MAXSYMLINKS).
const MAX_LINKS: usize = 40;

/// Open `path` (absolute or relative: both are taken relative to `root`) inside `root` and
/// return an `O_PATH` descriptor to it. With `follow_last == false` a symlink as the last
/// component is returned as the link itself (check with [`is_symlink`]).
pub fn resolve_in_root(
    root: &impl AsFd,
    path: &Path,
    create: Create,
    follow_last: bool,
) -> io::Result<OwnedFd> {
    let root_dup = rfs::openat(
        root,
        ".",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    // Stack of opened directories; the bottom is the root.
    let mut stack: Vec<OwnedFd> = vec![root_dup];
    // Components still to walk, in reverse order (pop from the end).
    let mut todo: Vec<Vec<u8>> = components_rev(path.as_os_str().as_bytes());
    let mut links = 0usize;
    if todo.is_empty() {
        return dup_path(stack.last().unwrap());
    }
    while let Some(comp) = todo.pop() {
        let last = todo.is_empty();
        if comp == b".." {
            if stack.len() > 1 {
                stack.pop();
            }
            if last {
                return dup_path(stack.last().unwrap());
            }
            continue;
        }
        let cur = stack.last().unwrap();
        let name = OsStr::from_bytes(&comp);
        let fd = match rfs::openat(
            cur,
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) if create != Create::No => {
                if last && create == Create::File {
                    let f = rfs::openat(
                        cur,
                        name,
                        OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::WRONLY
                            | OFlags::NOFOLLOW
                            | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o755),
                    );
                    match f {
                        Ok(_) | Err(rustix::io::Errno::EXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                } else {
                    match rfs::mkdirat(cur, name, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                rfs::openat(
                    cur,
                    name,
                    OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?
            }
            Err(e) => return Err(e.into()),
        };
        let st = rfs::fstat(&fd)?;
        let ft = FileType::from_raw_mode(st.st_mode);
        if ft == FileType::Symlink && (!last || follow_last) {
            links += 1;
            if links > MAX_LINKS {
                return Err(io::Error::from_raw_os_error(libc::ELOOP));
            }
            let target = rfs::readlinkat(&fd, "", Vec::new())?;
            let target = target.as_bytes();
            if target.first() == Some(&b'/') {
                stack.truncate(1);
            }
            todo.extend(components_rev(target));
            if todo.is_empty() {
                return dup_path(stack.last().unwrap());
            }
            continue;
        }
        if last {
            return Ok(fd);
        }
        if ft != FileType::Directory {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        stack.push(fd);
    }
    dup_path(stack.last().unwrap())
}

fn dup_path(fd: &OwnedFd) -> io::Result<OwnedFd> {
    Ok(rfs::openat(
        fd,
        ".",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// The components of a path, reversed, without empty and `.` components.
fn components_rev(path: &[u8]) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = path
        .split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(|c| c.to_vec())
        .collect();
    v.reverse();
    v
}

/// True when the `O_PATH` descriptor refers to a symlink.
pub fn is_symlink(fd: &impl AsFd) -> io::Result<bool> {
    Ok(FileType::from_raw_mode(rfs::fstat(fd)?.st_mode) == FileType::Symlink)
}

/// True when the descriptor refers to a directory.
pub fn is_dir(fd: &impl AsFd) -> io::Result<bool> {
    Ok(FileType::from_raw_mode(rfs::fstat(fd)?.st_mode) == FileType::Directory)
}

/// `/proc/self/fd/N` for a descriptor: how a mount or a reopen names an fd.
pub fn fd_path(fd: &impl AsFd) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()))
}

/// Read a regular file inside `root` (symlinks resolved inside it), at most `limit` bytes.
/// A path that is missing gives `Ok(None)`; one that is not a regular file (FIFO, device,
/// directory) gives an error instead of blocking or reading forever.
pub fn read_in_root(root: &impl AsFd, path: &Path, limit: u64) -> io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let fd = match resolve_in_root(root, path, Create::No, true) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let st = rfs::fstat(&fd)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let f = std::fs::File::from(rfs::openat(
        rfs::CWD,
        fd_path(&fd),
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    )?);
    let mut out = Vec::new();
    f.take(limit).read_to_end(&mut out)?;
    Ok(Some(out))
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
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn rel(root: &Path, fd: &OwnedFd) -> PathBuf {
        let p = std::fs::read_link(fd_path(fd)).unwrap();
        p.strip_prefix(root.canonicalize().unwrap())
            .map(|p| PathBuf::from("/").join(p))
            .unwrap_or(p)
    }

    #[test]
    fn symlinks_stay_inside() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("a/b")).unwrap();
        symlink("/", r.join("a/up")).unwrap();
        symlink("../../../../..", r.join("a/dots")).unwrap();
        symlink("/a/b", r.join("abs")).unwrap();
        symlink("loop2", r.join("loop1")).unwrap();
        symlink("loop1", r.join("loop2")).unwrap();
        let root = std::fs::File::open(r).unwrap();
        let cases: &[(&str, &str)] = &[
            ("/a/b", "/a/b"),
            ("a/up/a/b", "/a/b"),
            ("/a/dots/a", "/a"),
            ("/../../a/b/..", "/a"),
            ("/abs", "/a/b"),
            ("/", "/"),
        ];
        for (input, want) in cases {
            let fd = resolve_in_root(&root, Path::new(input), Create::No, true).unwrap();
            assert_eq!(rel(r, &fd), PathBuf::from(want), "{input}");
        }
        let e = resolve_in_root(&root, Path::new("/loop1"), Create::No, true).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
        let fd = resolve_in_root(&root, Path::new("/abs"), Create::No, false).unwrap();
        assert!(is_symlink(&fd).unwrap());
    }

    #[test]
    fn create_through_escaping_link_stays_inside() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let r = t.path();
        symlink(outside.path(), r.join("esc")).unwrap();
        let root = std::fs::File::open(r).unwrap();
        let fd = resolve_in_root(&root, Path::new("/esc/new/dir"), Create::Dir, true).unwrap();
        assert!(is_dir(&fd).unwrap());
        // The link's absolute target was re-rooted: the directory exists under the root.
        let inside = r
            .join(outside.path().strip_prefix("/").unwrap())
            .join("new/dir");
        assert!(inside.is_dir(), "{}", inside.display());
        assert!(!outside.path().join("new").exists());
        let fd = resolve_in_root(&root, Path::new("/f/file"), Create::File, true).unwrap();
        assert!(!is_dir(&fd).unwrap());
        assert!(r.join("f/file").is_file());
    }

    #[test]
    fn read_limits_and_rejects_fifos() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::write(r.join("big"), vec![b'x'; 100]).unwrap();
        nix::unistd::mkfifo(
            &r.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        let root = std::fs::File::open(r).unwrap();
        assert_eq!(
            read_in_root(&root, Path::new("/big"), 10)
                .unwrap()
                .unwrap()
                .len(),
            10
        );
        assert!(read_in_root(&root, Path::new("/missing"), 10)
            .unwrap()
            .is_none());
        assert!(read_in_root(&root, Path::new("/fifo"), 10).is_err());
    }

    #[test]
    fn clean_paths() {
        for (i, o) in [("a/b", "/a/b"), ("/../x/./y/..", "/x"), ("", "/")] {
            assert_eq!(clean_container_path(i), PathBuf::from(o));
        }
    }
}
