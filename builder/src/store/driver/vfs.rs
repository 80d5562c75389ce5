//! The vfs driver: every layer a full copy of the tree.
use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use filetime::FileTime;

use super::Driver;
use crate::error::{IoResultExt, Result};
use crate::store::paths::{mkdir_all, remove_all};

pub(super) fn init(d: &Driver) -> Result<()> {
    mkdir_all(&d.home, 0o700)?;
    mkdir_all(&d.home.join("dir"), 0o700)
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
pub fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let mut dirs: Vec<(PathBuf, fs::Metadata)> = Vec::new();
    copy_entry(src, dst, &mut links, &mut dirs)?;
    // Directory modes and times last (children changed their mtimes; 0555 blocks writes).
    for (d, m) in dirs.iter().rev() {
        fs::set_permissions(d, fs::Permissions::from_mode(m.mode() & 0o7777))
            .at("setting mode of", d)?;
        set_times(d, m, false)?;
    }
    Ok(())
}

fn copy_entry(
    src: &Path,
    dst: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
    dirs: &mut Vec<(PathBuf, fs::Metadata)>,
) -> Result<()> {
    let m = fs::symlink_metadata(src).at("inspecting", src)?;
    let ft = m.file_type();
    if ft.is_dir() {
        fs::create_dir(dst).at("creating directory", dst)?;
        fs::set_permissions(dst, fs::Permissions::from_mode(0o700)).at("setting mode of", dst)?;
        std::os::unix::fs::lchown(dst, Some(m.uid()), Some(m.gid()))
            .at("changing owner of", dst)?;
        copy_xattrs(src, dst)?;
        let mut entries: Vec<_> = fs::read_dir(src)
            .at("reading directory", src)?
            .collect::<std::io::Result<_>>()
            .at("reading directory", src)?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            copy_entry(&e.path(), &dst.join(e.file_name()), links, dirs)?;
        }
        dirs.push((dst.to_path_buf(), m));
        return Ok(());
    }
    if m.nlink() > 1 {
        if let Some(first) = links.get(&(m.dev(), m.ino())) {
            return fs::hard_link(first, dst).at("creating hard link", dst);
        }
        links.insert((m.dev(), m.ino()), dst.to_path_buf());
    }
    if ft.is_symlink() {
        let target = fs::read_link(src).at("reading link", src)?;
        std::os::unix::fs::symlink(&target, dst).at("creating symlink", dst)?;
        std::os::unix::fs::lchown(dst, Some(m.uid()), Some(m.gid()))
            .at("changing owner of", dst)?;
        copy_xattrs(src, dst)?;
        return set_times(dst, &m, true);
    }
    if ft.is_file() {
        fs::copy(src, dst).at("copying file to", dst)?;
    } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() || ft.is_socket() {
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
    }
    std::os::unix::fs::lchown(dst, Some(m.uid()), Some(m.gid())).at("changing owner of", dst)?;
    // After chown, which clears setuid/setgid.
    fs::set_permissions(dst, fs::Permissions::from_mode(m.mode() & 0o7777))
        .at("setting mode of", dst)?;
    copy_xattrs(src, dst)?;
    set_times(dst, &m, false)
}

fn copy_xattrs(src: &Path, dst: &Path) -> Result<()> {
    let names = match xattr::list(src) {
        Ok(n) => n,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(()),
        Err(e) => return Err(e).at("listing xattrs of", src),
    };
    for name in names {
        if let Some(v) = xattr::get(src, &name).at("reading xattrs of", src)? {
            match xattr::set(dst, &name, &v) {
                Ok(()) => {}
                // e.g. user.* xattrs on symlinks, or security.selinux without a policy.
                Err(e)
                    if e.raw_os_error() == Some(libc::EPERM)
                        || e.raw_os_error() == Some(libc::ENOTSUP) =>
                {
                    tracing::debug!("not copying xattr {:?} to {}: {e}", name, dst.display());
                }
                Err(e) => return Err(e).at("setting xattrs of", dst),
            }
        }
    }
    Ok(())
}

/// Path-based `utimensat(AT_SYMLINK_NOFOLLOW)` for every kind of entry (filetime's
/// `set_file_times` opens the file, which blocks on a fifo).
fn set_times(p: &Path, m: &fs::Metadata, _symlink: bool) -> Result<()> {
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
}
