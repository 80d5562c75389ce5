//! `chroot` isolation where nothing can be mounted ([`ChrootSetup::Bare`]: a pod without
//! CAP_SYS_ADMIN and without user namespaces): the files a run would get through bind mounts
//! are written into the rootfs for the run and the rootfs is put back as it was afterwards,
//! so the committed layer is the same as with mounts.
//!
//! ```text
//! Staged::put(rootfs, etc) ─ /etc/hosts, /etc/resolv.conf, /etc/hostname, /run/.containerenv:
//!                            old content kept, the run's written in
//!                          ─ /dev/{null,zero,full,random,urandom,tty}: made with mknod where
//!                            missing (CAP_MKNOD; skipped without it)
//! run ─ drop(Staged): old contents written back, the nodes made removed
//! ```
//!
//! [`ChrootSetup::Bare`]: crate::environment::ChrootSetup::Bare
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::{EtcFiles, RunError};
use crate::rootfs::{resolve_in_root, Create};

/// The rootfs changes of one bare run; dropping it undoes them.
#[derive(Debug)]
pub struct Staged {
    root: File,
    /// (path in the rootfs, the file as resolved before the run, its content then): the
    /// content goes back through the descriptor, so a RUN that replaced the path (with a
    /// link to another file, say) does not redirect it.
    files: Vec<(PathBuf, OwnedFd, Vec<u8>)>,
    /// Device nodes made in /dev.
    nodes: Vec<&'static str>,
}

const NODES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

impl Staged {
    /// Write the run's files into `rootfs` and make the basic device nodes.
    pub fn put(rootfs: &Path, etc: &EtcFiles) -> Result<Staged, RunError> {
        let io = |op: &str, p: &Path, e: std::io::Error| RunError::Io {
            op: op.into(),
            path: p.to_path_buf(),
            source: e,
        };
        let root = File::open(rootfs).map_err(|e| io("opening", rootfs, e))?;
        let mut staged = Staged {
            root,
            files: Vec::new(),
            nodes: Vec::new(),
        };
        for (dest, src) in [
            ("/etc/hosts", &etc.hosts),
            ("/etc/resolv.conf", &etc.resolv_conf),
            ("/etc/hostname", &etc.hostname),
            ("/run/.containerenv", &etc.containerenv),
        ] {
            let Some(src) = src else { continue };
            let dest = Path::new(dest);
            let data = std::fs::read(src).map_err(|e| io("reading", src, e))?;
            // The placeholder exists (prepare made it); an image's symlink is followed inside
            // the rootfs, as the bind mount would be.
            let fd = resolve_in_root(&staged.root, dest, Create::File, true)
                .map_err(|e| io("resolving", dest, e))?;
            let old = read_fd(&fd).map_err(|e| io("reading", dest, e))?;
            write_fd(&fd, &data).map_err(|e| io("writing", dest, e))?;
            staged.files.push((dest.to_path_buf(), fd, old));
        }
        let dev = resolve_in_root(&staged.root, Path::new("/dev"), Create::Dir, true)
            .map_err(|e| io("creating", Path::new("/dev"), e))?;
        let dev = reopen_dir(&dev).map_err(|e| io("opening", Path::new("/dev"), e))?;
        for (name, major, minor) in NODES {
            if rustix::fs::statat(&dev, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).is_ok() {
                continue;
            }
            match rustix::fs::mknodat(
                &dev,
                name,
                rustix::fs::FileType::CharacterDevice,
                rustix::fs::Mode::from_raw_mode(0o666),
                rustix::fs::makedev(major as u32, minor as u32),
            ) {
                Ok(()) => {
                    // mknod honours the umask; the nodes are for everyone.
                    let _ = rustix::fs::chmodat(
                        &dev,
                        name,
                        rustix::fs::Mode::from_raw_mode(0o666),
                        rustix::fs::AtFlags::empty(),
                    );
                    staged.nodes.push(name);
                }
                Err(e) => tracing::debug!("bare chroot: making /dev/{name}: {e}"),
            }
        }
        Ok(staged)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        for (dest, fd, old) in self.files.drain(..) {
            if let Err(e) = write_fd(&fd, &old) {
                tracing::warn!("putting back {} after the run: {e}", dest.display());
            }
        }
        if self.nodes.is_empty() {
            return;
        }
        let Ok(dev) = resolve_in_root(&self.root, Path::new("/dev"), Create::No, false)
            .and_then(|d| reopen_dir(&d))
        else {
            return;
        };
        for name in self.nodes.drain(..) {
            // Only if it is still the node we made.
            let ours = rustix::fs::statat(&dev, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|st| {
                    rustix::fs::FileType::from_raw_mode(st.st_mode)
                        == rustix::fs::FileType::CharacterDevice
                });
            if ours {
                if let Err(e) = rustix::fs::unlinkat(&dev, name, rustix::fs::AtFlags::empty()) {
                    tracing::warn!("removing /dev/{name} after the run: {e}");
                }
            }
        }
    }
}

fn reopen_dir(fd: &impl AsFd) -> std::io::Result<std::os::fd::OwnedFd> {
    Ok(rustix::fs::openat(
        fd,
        ".",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?)
}

/// Open the resolved (O_PATH) file for reading or writing through /proc/self/fd.
fn reopen(fd: &impl AsFd, write: bool) -> std::io::Result<File> {
    let path = crate::rootfs::fd_path(fd);
    std::fs::OpenOptions::new()
        .read(!write)
        .write(write)
        .truncate(write)
        .open(path)
}

fn read_fd(fd: &impl AsFd) -> std::io::Result<Vec<u8>> {
    let mut f = reopen(fd, false)?;
    let mut v = Vec::new();
    std::io::Read::read_to_end(&mut f, &mut v)?;
    Ok(v)
}

fn write_fd(fd: &impl AsFd, data: &[u8]) -> std::io::Result<()> {
    reopen(fd, true)?.write_all(data)
}
