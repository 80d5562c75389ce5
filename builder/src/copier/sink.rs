//! Writing items under a destination directory inside a rootfs, through descriptors only.
//!
//! The destination directory is resolved (and created) inside the root once; every item
//! below it is created relative to its parent's descriptor under a temporary name and
//! renamed into place, so a planted link at the final name is replaced, never written
//! through, and metadata is set through the new item's own descriptor.
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
use sha2::{Digest as _, Sha256};

use crate::error::{IoResultExt, Result};
use crate::rootfs::{chown_fd, components, NewDir, Root};

/// Metadata for a new item.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    /// Permission bits (`0o7777` range).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time (seconds, nanoseconds).
    pub mtime: (i64, u32),
    /// Extended attributes.
    pub xattrs: Vec<(OsString, Vec<u8>)>,
}

/// Writes items below one destination directory.
#[derive(Debug)]
pub struct Sink<'r> {
    root: &'r Root,
    base: PathBuf,
    base_fd: OwnedFd,
    new_dir: NewDir,
    dir_times: Vec<(PathBuf, (i64, u32))>,
    cache: Option<(PathBuf, Rc<OwnedFd>)>,
    is_root: bool,
    hasher: Sha256,
    items: usize,
    /// The copy buffer, allocated once for all files.
    buf: Vec<u8>,
    /// Owners are container IDs stored shifted through these maps ([`crate::idmap`]).
    id_maps: Option<crate::idmap::IdMappings>,
}

fn ts(t: (i64, u32)) -> Timestamps {
    let t = Timespec {
        tv_sec: t.0,
        tv_nsec: t.1 as _,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

fn tmp_name() -> String {
    format!(
        ".hod-tmp-{}",
        crate::fsutil::random_id().get(..16).unwrap_or("0")
    )
}

fn errno(e: &io::Error) -> Option<i32> {
    e.raw_os_error()
}

impl<'r> Sink<'r> {
    /// Resolve (creating it with `new_dir` if needed) the directory `dest` inside `root`.
    pub fn new(root: &'r Root, dest: &Path, new_dir: NewDir) -> Result<Sink<'r>> {
        let base_fd = root
            .mkdir_all(dest, new_dir)
            .at("creating directory", root.display_path(dest))?;
        Ok(Sink {
            root,
            base: dest.to_path_buf(),
            base_fd,
            new_dir,
            dir_times: Vec::new(),
            cache: None,
            // Owners must be set: as root, unless only one ID is mapped here.
            is_root: rustix::process::geteuid().is_root()
                && crate::environment::Environment::get().keeps_owners(),
            hasher: Sha256::new(),
            items: 0,
            buf: Vec::new(),
            id_maps: None,
        })
    }

    /// Store every owner given in a [`Meta`] shifted through `maps` (a container with ID
    /// maps); the new-directory owner given to [`Sink::new`] is taken as it is.
    pub fn set_id_maps(&mut self, maps: Option<crate::idmap::IdMappings>) {
        self.id_maps = maps.filter(|m| !m.is_empty());
    }

    /// The host IDs of a [`Meta`]'s owner.
    fn host_ids(&self, meta: &Meta) -> (u32, u32) {
        match &self.id_maps {
            Some(m) => m.to_host(meta.uid, meta.gid),
            None => (meta.uid, meta.gid),
        }
    }

    /// How many items were written.
    pub fn items(&self) -> usize {
        self.items
    }

    /// The hex digest of everything written so far (names, types and contents).
    pub fn digest_hex(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }

    fn shown(&self, rel: &Path) -> PathBuf {
        self.root.display_path(&self.base.join(rel))
    }

    fn note(&mut self, kind: &str, rel: &Path) {
        self.items += 1;
        self.hasher.update(kind.as_bytes());
        self.hasher.update(b" ");
        self.hasher.update(rel.as_os_str().as_encoded_bytes());
        self.hasher.update(b"\0");
    }

    /// The descriptor of the directory `rel` below the base, creating missing ones.
    fn dir_fd(&mut self, rel: &Path) -> io::Result<Rc<OwnedFd>> {
        if let Some((p, fd)) = &self.cache {
            if p == rel {
                return Ok(fd.clone());
            }
        }
        let mut cur = self.base_fd.try_clone()?;
        let mut sofar = PathBuf::new();
        for name in components(rel) {
            sofar.push(&name);
            let next = match rustix::fs::openat(
                &cur,
                &*name,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                Err(e) if e == rustix::io::Errno::NOENT => {
                    match rustix::fs::mkdirat(&cur, &*name, Mode::from_raw_mode(0o700)) {
                        Ok(()) => {
                            let d = rustix::fs::openat(
                                &cur,
                                &*name,
                                OFlags::RDONLY
                                    | OFlags::DIRECTORY
                                    | OFlags::NOFOLLOW
                                    | OFlags::CLOEXEC,
                                Mode::empty(),
                            )?;
                            self.own(&d, self.new_dir.owner)?;
                            rustix::fs::fchmod(&d, Mode::from_raw_mode(self.new_dir.mode))?;
                        }
                        Err(e) if e == rustix::io::Errno::EXIST => {}
                        Err(e) => return Err(e.into()),
                    }
                    rustix::fs::openat(
                        &cur,
                        &*name,
                        OFlags::PATH | OFlags::NOFOLLOW | OFlags::DIRECTORY | OFlags::CLOEXEC,
                        Mode::empty(),
                    )?
                }
                Err(e) if e == rustix::io::Errno::NOTDIR || e == rustix::io::Errno::LOOP => {
                    // An existing link (or a non-directory) where an implied parent goes:
                    // resolve it inside the root, as a chrooted `mkdir -p` would.
                    self.root.mkdir_all(&self.base.join(&sofar), self.new_dir)?
                }
                Err(e) => return Err(e.into()),
            };
            cur = next;
        }
        let cur = Rc::new(cur);
        self.cache = Some((rel.to_path_buf(), cur.clone()));
        Ok(cur)
    }

    fn split(rel: &Path) -> io::Result<(PathBuf, OsString)> {
        let mut comps = components(rel);
        if comps.iter().any(|c| c == "..") {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "path contains \"..\"",
            ));
        }
        let name = comps
            .pop()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty name"))?;
        Ok((comps.iter().collect(), name))
    }

    fn own(&self, fd: &OwnedFd, owner: Option<(u32, u32)>) -> io::Result<()> {
        let Some((u, g)) = owner else { return Ok(()) };
        self.chown_result(chown_fd(fd, u, g), u, g)
    }

    fn chown_result(&self, r: io::Result<()>, u: u32, g: u32) -> io::Result<()> {
        match r {
            // EINVAL: the ID is not mapped in this user namespace.
            Err(e) if !self.is_root && matches!(errno(&e), Some(libc::EPERM | libc::EINVAL)) => {
                tracing::debug!("not changing owner to {u}:{g}: {e}");
                Ok(())
            }
            r => r,
        }
    }

    fn set_meta(&self, f: &std::fs::File, meta: &Meta) -> io::Result<()> {
        let fd: BorrowedFd<'_> = f.as_fd();
        let (uid, gid) = self.host_ids(meta);
        let r = rustix::fs::fchown(
            fd,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        );
        self.chown_result(r.map_err(io::Error::from), uid, gid)?;
        // chmod after chown: chown clears set-id bits.
        rustix::fs::fchmod(f, Mode::from_raw_mode(meta.mode & 0o7777))?;
        for (k, v) in &meta.xattrs {
            if let Err(e) = xattr::FileExt::set_xattr(f, k, v) {
                tracing::debug!("not setting xattr {k:?}: {e}");
            }
        }
        Ok(())
    }

    /// Move `tmp` to `name` in `dir`, replacing a non-directory or an empty directory.
    fn place(dir: &OwnedFd, tmp: &str, name: &OsString) -> io::Result<()> {
        match rustix::fs::renameat(dir, tmp, dir, &**name) {
            Ok(()) => Ok(()),
            Err(e)
                if e == rustix::io::Errno::ISDIR
                    || e == rustix::io::Errno::NOTEMPTY
                    || e == rustix::io::Errno::EXIST =>
            {
                let r = rustix::fs::unlinkat(dir, &**name, AtFlags::REMOVEDIR)
                    .and_then(|_| rustix::fs::renameat(dir, tmp, dir, &**name));
                if r.is_err() {
                    let _ = rustix::fs::unlinkat(dir, tmp, AtFlags::empty());
                }
                Ok(r?)
            }
            Err(e) => {
                let _ = rustix::fs::unlinkat(dir, tmp, AtFlags::empty());
                Err(e.into())
            }
        }
    }

    /// A directory at `rel` (an existing directory is kept and its metadata updated; an
    /// existing non-directory is replaced). Its times are set by [`Sink::finish`].
    pub fn dir(&mut self, rel: &Path, meta: &Meta) -> Result<()> {
        let shown = self.shown(rel);
        let r: io::Result<()> = (|| {
            let (parent, name) = Self::split(rel)?;
            let pfd = self.dir_fd(&parent)?;
            match rustix::fs::mkdirat(&pfd, &*name, Mode::from_raw_mode(0o700)) {
                Ok(()) => {}
                Err(e) if e == rustix::io::Errno::EXIST => {
                    let st = rustix::fs::statat(&pfd, &*name, AtFlags::SYMLINK_NOFOLLOW)?;
                    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                        rustix::fs::unlinkat(&pfd, &*name, AtFlags::empty())?;
                        rustix::fs::mkdirat(&pfd, &*name, Mode::from_raw_mode(0o700))?;
                    }
                }
                Err(e) => return Err(e.into()),
            }
            let d = rustix::fs::openat(
                &pfd,
                &*name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            self.set_meta(&std::fs::File::from(d), meta)?;
            Ok(())
        })();
        r.at("creating directory", &shown)?;
        self.dir_times.push((rel.to_path_buf(), meta.mtime));
        self.note("dir", rel);
        Ok(())
    }

    /// A regular file at `rel` with the contents of `data`.
    pub fn file(&mut self, rel: &Path, meta: &Meta, data: &mut dyn Read) -> Result<()> {
        let shown = self.shown(rel);
        self.note("file", rel);
        let mut hasher = std::mem::take(&mut self.hasher);
        let mut buf = std::mem::take(&mut self.buf);
        if buf.is_empty() {
            buf = vec![0u8; 128 * 1024];
        }
        let r: io::Result<()> = (|| {
            let (parent, name) = Self::split(rel)?;
            let pfd = self.dir_fd(&parent)?;
            let tmp = tmp_name();
            let fd = rustix::fs::openat(
                &pfd,
                tmp.as_str(),
                OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )?;
            let mut f = std::fs::File::from(fd);
            let res = (|| {
                loop {
                    let n = match data.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    };
                    hasher.update(&buf[..n]);
                    f.write_all(&buf[..n])?;
                }
                self.set_meta(&f, meta)?;
                rustix::fs::futimens(&f, &ts(meta.mtime))?;
                Ok(())
            })();
            if let Err(e) = res {
                let _ = rustix::fs::unlinkat(&pfd, tmp.as_str(), AtFlags::empty());
                return Err(e);
            }
            drop(f);
            Self::place(&pfd, &tmp, &name)
        })();
        self.hasher = hasher;
        self.buf = buf;
        r.at("writing", &shown)
    }

    /// A symbolic link at `rel` pointing to `target` (kept as it is).
    pub fn symlink(&mut self, rel: &Path, target: &Path, meta: &Meta) -> Result<()> {
        let shown = self.shown(rel);
        let r: io::Result<()> = (|| {
            let (parent, name) = Self::split(rel)?;
            let pfd = self.dir_fd(&parent)?;
            let tmp = tmp_name();
            rustix::fs::symlinkat(target, &pfd, tmp.as_str())?;
            let res = (|| -> io::Result<()> {
                if let Err(e) = rustix::fs::chownat(
                    &pfd,
                    tmp.as_str(),
                    Some(rustix::fs::Uid::from_raw(self.host_ids(meta).0)),
                    Some(rustix::fs::Gid::from_raw(self.host_ids(meta).1)),
                    AtFlags::SYMLINK_NOFOLLOW,
                ) {
                    if self.is_root {
                        return Err(e.into());
                    }
                }
                rustix::fs::utimensat(
                    &pfd,
                    tmp.as_str(),
                    &ts(meta.mtime),
                    AtFlags::SYMLINK_NOFOLLOW,
                )?;
                Ok(())
            })();
            if let Err(e) = res {
                let _ = rustix::fs::unlinkat(&pfd, tmp.as_str(), AtFlags::empty());
                return Err(e);
            }
            Self::place(&pfd, &tmp, &name)
        })();
        r.at("creating symbolic link", &shown)?;
        self.hasher.update(target.as_os_str().as_encoded_bytes());
        self.note("symlink", rel);
        Ok(())
    }

    /// A hard link at `rel` to the item already written at `target` (both below the base).
    pub fn hardlink(&mut self, rel: &Path, target: &Path) -> Result<()> {
        let shown = self.shown(rel);
        let r: io::Result<()> = (|| {
            let (tparent, tname) = Self::split(target)?;
            let tfd = self.dir_fd(&tparent)?;
            let (parent, name) = Self::split(rel)?;
            let pfd = self.dir_fd(&parent)?;
            let tmp = tmp_name();
            rustix::fs::linkat(&tfd, &*tname, &pfd, tmp.as_str(), AtFlags::empty())?;
            Self::place(&pfd, &tmp, &name)
        })();
        r.at("creating hard link", &shown)?;
        self.hasher.update(target.as_os_str().as_encoded_bytes());
        self.note("link", rel);
        Ok(())
    }

    /// A FIFO or device node at `rel`.
    pub fn special(&mut self, rel: &Path, kind: FileType, rdev: u64, meta: &Meta) -> Result<()> {
        let shown = self.shown(rel);
        let r: io::Result<()> = (|| {
            let (parent, name) = Self::split(rel)?;
            let pfd = self.dir_fd(&parent)?;
            let tmp = tmp_name();
            rustix::fs::mknodat(
                &pfd,
                tmp.as_str(),
                kind,
                Mode::from_raw_mode(meta.mode & 0o777),
                rdev,
            )?;
            let res = (|| -> io::Result<()> {
                let (u, g) = self.host_ids(meta);
                let uid = Some(rustix::fs::Uid::from_raw(u));
                let gid = Some(rustix::fs::Gid::from_raw(g));
                match rustix::fs::chownat(&pfd, tmp.as_str(), uid, gid, AtFlags::SYMLINK_NOFOLLOW) {
                    Err(e)
                        if (e == rustix::io::Errno::PERM || e == rustix::io::Errno::INVAL)
                            && !self.is_root => {}
                    r => r?,
                }
                rustix::fs::chmodat(
                    &pfd,
                    tmp.as_str(),
                    Mode::from_raw_mode(meta.mode & 0o7777),
                    AtFlags::empty(),
                )?;
                rustix::fs::utimensat(
                    &pfd,
                    tmp.as_str(),
                    &ts(meta.mtime),
                    AtFlags::SYMLINK_NOFOLLOW,
                )?;
                Ok(())
            })();
            if let Err(e) = res {
                let _ = rustix::fs::unlinkat(&pfd, tmp.as_str(), AtFlags::empty());
                return Err(e);
            }
            Self::place(&pfd, &tmp, &name)
        })();
        r.at("creating device node", &shown)?;
        self.note("special", rel);
        Ok(())
    }

    /// Set the directories' times, deepest first (writing into them changed them).
    pub fn finish(mut self) -> Result<String> {
        self.cache = None;
        let times = std::mem::take(&mut self.dir_times);
        for (rel, t) in times.iter().rev() {
            let shown = self.shown(rel);
            let r: io::Result<()> = (|| {
                let (parent, name) = Self::split(rel)?;
                let pfd = self.dir_fd(&parent)?;
                rustix::fs::utimensat(&pfd, &*name, &ts(*t), AtFlags::SYMLINK_NOFOLLOW)?;
                Ok(())
            })();
            r.at("setting times of", &shown)?;
        }
        Ok(self.digest_hex())
    }
}
