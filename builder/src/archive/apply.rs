//! Apply a layer tar to a directory, confined to it.
//!
//! Every entry is created relative to a parent directory fd that was resolved inside the
//! target with `openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS)`; the final component is
//! created with `*at` calls that never follow it. Names with `..` components, NUL bytes or
//! empty names are refused, as are non-directories replacing the root. The bytes read are
//! digested and, when asked, recorded as tar-split metadata.
use std::cell::RefCell;
use std::collections::{BTreeSet, HashSet};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::rc::Rc;

use rustix::fs::{
    self as rfs, AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid, XattrFlags,
};
use rustix::io::Errno;
use sha2::{Digest as _, Sha256};

use super::tarsplit::{Crc64, Packer};
use super::ArchiveError;
use crate::error::{Error, IoResultExt, Result};
use crate::image::Digest;
use crate::rootfs::{self, Root};

/// How whiteouts in the tar are materialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhiteoutFormat {
    /// Overlay: `.wh.x` becomes a 0/0 character device `x`; `.wh..wh..opq` sets
    /// `trusted.overlay.opaque=y` on its directory. The target is an empty `diff/` dir.
    Overlay,
    /// Full tree (vfs, or a rootfs): `.wh.x` deletes `x`; an opaque marker deletes what the
    /// directory held before this layer. The target already holds the parent's tree.
    Delete,
}

/// Options for [`apply_layer`].
#[non_exhaustive]
pub struct ApplyOptions<'a> {
    /// Whiteout handling.
    pub whiteouts: WhiteoutFormat,
    /// Where to write the gzip-compressed tar-split metadata of the stream, if anywhere.
    pub tar_split: Option<&'a mut dyn Write>,
    /// Leave ownership as the current user instead of the tar's (rootless without maps).
    pub ignore_chown_errors: bool,
    /// The xattr that marks an opaque directory in [`WhiteoutFormat::Overlay`]
    /// (`trusted.overlay.opaque`; `user.overlay.opaque` for rootless overlay).
    pub opaque_xattr: &'static str,
    /// Store the tar's owners shifted through these maps (a mapped container's layer,
    /// [`crate::idmap`]); `None` = as they are.
    pub id_maps: Option<crate::idmap::IdMappings>,
    /// Only read the stream (digest, tar-split, owners): write nothing under the directory
    /// (a layer whose files are already in place, [`crate::store::Store::put_layer_adopting`]).
    pub record_only: bool,
}

impl std::fmt::Debug for ApplyOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplyOptions")
            .field("whiteouts", &self.whiteouts)
            .field("tar_split", &self.tar_split.is_some())
            .field("ignore_chown_errors", &self.ignore_chown_errors)
            .field("opaque_xattr", &self.opaque_xattr)
            .field("id_maps", &self.id_maps)
            .field("record_only", &self.record_only)
            .finish()
    }
}

impl<'a> ApplyOptions<'a> {
    /// Options with the given whiteout format, no tar-split, chown on.
    pub fn new(whiteouts: WhiteoutFormat) -> Self {
        ApplyOptions {
            whiteouts,
            tar_split: None,
            ignore_chown_errors: false,
            opaque_xattr: OPAQUE_XATTR,
            id_maps: None,
            record_only: false,
        }
    }
}

/// The overlay opaque-directory xattr.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// The rootless overlay (`userxattr`) opaque-directory xattr.
pub const USER_OPAQUE_XATTR: &str = "user.overlay.opaque";
/// Whiteout file prefix.
pub const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// AUFS metadata prefix.
pub const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
/// Opaque directory marker.
pub const WHITEOUT_OPAQUE: &[u8] = b".wh..wh..opq";

/// What applying a layer produced.
#[derive(Debug, Clone)]
pub struct ApplySummary {
    /// sha256 of the whole uncompressed stream as read (to EOF).
    pub diff_digest: Digest,
    /// Its length.
    pub diff_size: u64,
    /// Sorted distinct owner UIDs of the non-whiteout entries (the layer record's `uidset`).
    pub uids: Vec<u32>,
    /// Sorted distinct owner GIDs of the non-whiteout entries.
    pub gids: Vec<u32>,
}

// ---------------------------------------------------------------------------------------
// The recording reader: digests everything, and splits the stream into raw segments and
// file payloads (CRC-64) for tar-split.

#[derive(Default)]
struct RecState {
    pos: u64,
    hasher: Sha256,
    in_file: bool,
    record: bool,
    seg: Vec<u8>,
    crc: Crc64,
    /// Header bytes (incl. PAX and GNU long-name data) read since the last entry.
    header_bytes: u64,
    /// Whether `header_bytes` is bounded (off while draining the trailer).
    limit_headers: bool,
}

/// Go's `archive/tar` refuses PAX and GNU long-name data over 1 MiB; allow for all of them
/// plus their header blocks before refusing, so memory stays bounded.
const MAX_HEADER_BYTES: u64 = 4 << 20;

/// What may follow the end-of-archive blocks: tar writers pad to their record size
/// (10 KiB for GNU tar, up to 1 MiB with the largest blocking factors); the rest is kept
/// verbatim in the tar-split, up to this.
const MAX_TRAILING_BYTES: u64 = 4 << 20;

struct Recorder<'r> {
    inner: &'r mut dyn Read,
    st: Rc<RefCell<RecState>>,
}

impl Read for Recorder<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut st = self.st.borrow_mut();
        let buf = if !st.in_file && st.limit_headers {
            if st.header_bytes >= MAX_HEADER_BYTES {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "tar header data too large",
                ));
            }
            let room = (MAX_HEADER_BYTES - st.header_bytes) as usize;
            let n = buf.len().min(room);
            &mut buf[..n]
        } else {
            buf
        };
        let n = self.inner.read(buf)?;
        if !st.in_file {
            st.header_bytes += n as u64;
        }
        let data = &buf[..n];
        st.hasher.update(data);
        st.pos += n as u64;
        if st.in_file {
            st.crc.update(data);
        } else if st.record {
            st.seg.extend_from_slice(data);
        }
        Ok(n)
    }
}

fn bad(name: &[u8], reason: impl Into<String>) -> Error {
    ArchiveError::BadEntry {
        name: String::from_utf8_lossy(name).into_owned(),
        reason: reason.into(),
    }
    .into()
}

fn tar_err(e: io::Error) -> Error {
    // The tar reader quotes header bytes in its messages: a hostile header must not put
    // newlines or terminal escapes into the one error line.
    let msg = e.to_string();
    let e = if msg.chars().any(char::is_control) {
        let clean: String = msg
            .chars()
            .flat_map(|c| {
                let esc: Vec<char> = if c.is_control() {
                    c.escape_default().collect()
                } else {
                    vec![c]
                };
                esc
            })
            .collect();
        io::Error::new(e.kind(), clean)
    } else {
        e
    };
    Error::Io {
        op: "reading".into(),
        path: "layer tar stream".into(),
        source: e,
    }
}

// ---------------------------------------------------------------------------------------
// Parsed headers.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Reg,
    Link,
    Symlink,
    Char,
    Block,
    Dir,
    Fifo,
    Global,
}

#[derive(Debug)]
struct Hdr {
    name: Vec<u8>,
    link: Vec<u8>,
    kind: Kind,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: Timespec,
    atime: Option<Timespec>,
    dev: (u32, u32),
    size: u64,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

fn parse_pax_time(v: &[u8]) -> Option<Timespec> {
    let s = std::str::from_utf8(v).ok()?;
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
    if sec.is_empty()
        || !sec.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let sec: i64 = sec.parse().ok()?;
    let mut nsec: i64 = 0;
    for (i, b) in frac.bytes().take(9).enumerate() {
        nsec += i64::from(b - b'0') * 10i64.pow(8 - i as u32);
    }
    if neg {
        if nsec > 0 {
            Some(Timespec {
                tv_sec: -sec - 1,
                tv_nsec: 1_000_000_000 - nsec,
            })
        } else {
            Some(Timespec {
                tv_sec: -sec,
                tv_nsec: 0,
            })
        }
    } else {
        Some(Timespec {
            tv_sec: sec,
            tv_nsec: nsec,
        })
    }
}

fn parse_header<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Hdr> {
    let name = entry.path_bytes().into_owned();
    let link = entry
        .link_name_bytes()
        .map(|c| c.into_owned())
        .unwrap_or_default();
    let header = entry.header().clone();
    let raw_type = header.as_bytes()[156];
    let kind = match raw_type {
        b'0' | b'7' => Kind::Reg,
        0 if name.ends_with(b"/") => Kind::Dir,
        0 => Kind::Reg,
        b'1' => Kind::Link,
        b'2' => Kind::Symlink,
        b'3' => Kind::Char,
        b'4' => Kind::Block,
        b'5' => Kind::Dir,
        b'6' => Kind::Fifo,
        b'g' => Kind::Global,
        b'S' => return Err(bad(&name, "sparse files are not supported")),
        t => {
            return Err(bad(
                &name,
                format!("unsupported tar entry type {:?}", t as char),
            ))
        }
    };
    let size = entry.size();
    let header_only = matches!(
        kind,
        Kind::Link | Kind::Symlink | Kind::Char | Kind::Block | Kind::Dir | Kind::Fifo
    );
    if header_only && size != 0 {
        return Err(bad(&name, "non-zero size for an entry type without data"));
    }
    let num = |r: io::Result<u64>, what: &str| -> Result<u64> {
        r.map_err(|e| bad(&name, format!("invalid {what} field: {e}")))
    };
    let mode = num(header.mode().map(u64::from), "mode")? as u32 & 0o7777;
    let uid = num(header.uid(), "uid")?;
    let gid = num(header.gid(), "gid")?;
    let mut mtime = Timespec {
        tv_sec: num(header.mtime(), "mtime")? as i64,
        tv_nsec: 0,
    };
    let mut atime = None;
    if let Some(gnu) = header.as_gnu() {
        if gnu.atime[0] != 0 {
            if let Ok(a) = gnu.atime() {
                atime = Some(Timespec {
                    tv_sec: a as i64,
                    tv_nsec: 0,
                });
            }
        }
    }
    let dev = match kind {
        Kind::Char | Kind::Block => (
            num(
                header.device_major().map(|o| u64::from(o.unwrap_or(0))),
                "devmajor",
            )? as u32,
            num(
                header.device_minor().map(|o| u64::from(o.unwrap_or(0))),
                "devminor",
            )? as u32,
        ),
        _ => (0, 0),
    };
    let mut xattrs = Vec::new();
    if let Some(pax) = entry.pax_extensions().map_err(tar_err)? {
        for ext in pax {
            let ext = ext.map_err(|e| bad(&name, format!("malformed PAX record: {e}")))?;
            let (k, v) = (ext.key_bytes(), ext.value_bytes());
            match k {
                b"mtime" => {
                    mtime = parse_pax_time(v).ok_or_else(|| bad(&name, "malformed PAX mtime"))?
                }
                b"atime" => {
                    atime =
                        Some(parse_pax_time(v).ok_or_else(|| bad(&name, "malformed PAX atime"))?)
                }
                b"uid" | b"gid" | b"size" => {
                    if std::str::from_utf8(v)
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok())
                        .is_none()
                    {
                        return Err(bad(
                            &name,
                            format!("malformed PAX {}", String::from_utf8_lossy(k)),
                        ));
                    }
                }
                _ if k.starts_with(b"GNU.sparse.") => {
                    return Err(bad(&name, "sparse files are not supported"))
                }
                _ => {
                    if let Some(x) = k.strip_prefix(b"SCHILY.xattr.") {
                        xattrs.push((x.to_vec(), v.to_vec()));
                    }
                }
            }
        }
    }
    let uid = u32::try_from(uid).map_err(|_| bad(&name, "uid out of range"))?;
    let gid = u32::try_from(gid).map_err(|_| bad(&name, "gid out of range"))?;
    Ok(Hdr {
        name,
        link,
        kind,
        mode,
        uid,
        gid,
        mtime,
        atime,
        dev,
        size,
        xattrs,
    })
}

enum CopyErr {
    Read(io::Error),
    Write(io::Error),
}

/// Copy with a large buffer (the default 8 KiB makes big layers slow).
fn copy_content(
    r: &mut dyn Read,
    w: &mut dyn Write,
    buf: &mut Vec<u8>,
) -> std::result::Result<u64, CopyErr> {
    if buf.is_empty() {
        // Once per layer, not per file: zeroing 256 KiB for every small file shows up.
        *buf = vec![0u8; 256 * 1024];
    }
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf[..]) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyErr::Read(e)),
        };
        w.write_all(&buf[..n]).map_err(CopyErr::Write)?;
        total += n as u64;
    }
}

// ---------------------------------------------------------------------------------------
// The extractor.

struct Extractor<'o> {
    root: Root,
    whiteouts: WhiteoutFormat,
    ignore_chown: bool,
    opaque_xattr: &'o str,
    /// Paths (components joined by `/`) this layer created (for opaque markers in Delete mode).
    unpacked: HashSet<Vec<u8>>,
    /// Directories whose times are set at the end.
    dirs: Vec<(Vec<u8>, Timestamps)>,
    /// The content copy buffer.
    buf: Vec<u8>,
}

fn errno_io(e: Errno) -> io::Error {
    e.into()
}

impl Extractor<'_> {
    fn shown(&self, rel: &[u8]) -> std::path::PathBuf {
        self.root.display(rel)
    }

    fn times(h: &Hdr) -> Timestamps {
        let mut a = h.atime.unwrap_or(h.mtime);
        if (a.tv_sec, a.tv_nsec) < (h.mtime.tv_sec, h.mtime.tv_nsec) {
            a = h.mtime;
        }
        Timestamps {
            last_access: a,
            last_modification: h.mtime,
        }
    }

    fn chown_result(&self, r: std::result::Result<(), Errno>, rel: &[u8]) -> Result<()> {
        match r {
            Ok(()) => Ok(()),
            Err(Errno::PERM) | Err(Errno::INVAL) if self.ignore_chown => {
                tracing::debug!("ignoring chown error on {}", String::from_utf8_lossy(rel));
                Ok(())
            }
            Err(e) => Err(errno_io(e)).at("changing ownership of", self.shown(rel)),
        }
    }

    fn xattr_result(
        &self,
        r: std::result::Result<(), Errno>,
        rel: &[u8],
        key: &[u8],
    ) -> Result<()> {
        match r {
            Ok(()) => Ok(()),
            Err(Errno::NOTSUP) => {
                tracing::debug!(
                    "xattr {} not supported on {}",
                    String::from_utf8_lossy(key),
                    String::from_utf8_lossy(rel)
                );
                Ok(())
            }
            Err(Errno::PERM) if self.ignore_chown => Ok(()),
            Err(e) => Err(errno_io(e)).at("setting extended attributes on", self.shown(rel)),
        }
    }

    /// The tar's xattrs minus `security.selinux` (as containers/storage) and overlay's own
    /// `trusted.overlay.*`/`user.overlay.*` (a layer must not forge opaque/redirect markers).
    fn wanted_xattrs(h: &Hdr) -> impl Iterator<Item = &(Vec<u8>, Vec<u8>)> {
        h.xattrs.iter().filter(|(k, _)| {
            k != b"security.selinux"
                && !k.starts_with(b"trusted.overlay.")
                && !k.starts_with(b"user.overlay.")
        })
    }

    /// Ownership, mode, xattrs and times through a real (non-O_PATH) fd of a file or dir.
    fn meta_fd(&self, fd: BorrowedFd<'_>, h: &Hdr, rel: &[u8], set_times: bool) -> Result<()> {
        self.chown_result(
            rfs::fchown(fd, Some(Uid::from_raw(h.uid)), Some(Gid::from_raw(h.gid))),
            rel,
        )?;
        rfs::fchmod(fd, Mode::from_raw_mode(h.mode))
            .map_err(errno_io)
            .at("changing mode of", self.shown(rel))?;
        for (k, v) in Self::wanted_xattrs(h) {
            self.xattr_result(
                rfs::fsetxattr(fd, k.as_slice(), v, XattrFlags::empty()),
                rel,
                k,
            )?;
        }
        if set_times {
            rfs::futimens(fd, &Self::times(h))
                .map_err(errno_io)
                .at("setting times of", self.shown(rel))?;
        }
        Ok(())
    }

    /// The same for an entry named `base` in `dir` that must not be opened (symlinks,
    /// devices, fifos, hard links): every call is `*at` with `AT_SYMLINK_NOFOLLOW`.
    fn meta_at(
        &self,
        dir: BorrowedFd<'_>,
        base: &[u8],
        h: &Hdr,
        rel: &[u8],
        chmod: bool,
    ) -> Result<()> {
        self.chown_result(
            rfs::chownat(
                dir,
                base,
                Some(Uid::from_raw(h.uid)),
                Some(Gid::from_raw(h.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            ),
            rel,
        )?;
        if chmod {
            // `base` was just created by us as a non-symlink in a directory we hold.
            rfs::chmodat(dir, base, Mode::from_raw_mode(h.mode), AtFlags::empty())
                .map_err(errno_io)
                .at("changing mode of", self.shown(rel))?;
        }
        let mut via = rootfs::fd_path(&dir).into_os_string().into_vec();
        via.push(b'/');
        via.extend_from_slice(base);
        for (k, v) in Self::wanted_xattrs(h) {
            self.xattr_result(
                rfs::lsetxattr(via.as_slice(), k.as_slice(), v, XattrFlags::empty()),
                rel,
                k,
            )?;
        }
        rfs::utimensat(dir, base, &Self::times(h), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(errno_io)
            .at("setting times of", self.shown(rel))?;
        Ok(())
    }

    fn apply(&mut self, h: &Hdr, data: &mut dyn Read) -> Result<()> {
        let comps = rootfs::entry_components(&h.name).map_err(|r| bad(&h.name, r))?;
        if comps.is_empty() {
            if h.kind != Kind::Dir {
                return Err(bad(&h.name, "the root can only be a directory"));
            }
            let fd = self
                .root
                .open_at(b"", OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
                .at("opening", self.root.path())?;
            self.meta_fd(fd.as_fd(), h, b"", false)?;
            self.dirs.push((Vec::new(), Self::times(h)));
            return Ok(());
        }
        let rel = comps.join(&b'/');
        let (parents, base) = comps.split_at(comps.len() - 1);
        let base = base[0];

        // AUFS metadata at the top level is skipped (except the opaque marker).
        if comps[0].starts_with(WHITEOUT_META_PREFIX)
            && !(comps.len() == 1 && base == WHITEOUT_OPAQUE)
        {
            return Ok(());
        }
        let is_whiteout = base.starts_with(WHITEOUT_PREFIX);
        let pdir = match self.root.ensure_dir(parents, 0o755) {
            Ok((fd, created)) => {
                self.unpacked.extend(created);
                fd
            }
            Err(e) if is_whiteout && e.raw_os_error() == Some(libc::ENOTDIR) => return Ok(()),
            Err(e) => return Err(e).at("creating parent directories of", self.shown(&rel)),
        };
        let pdir = pdir.as_fd();

        if is_whiteout {
            return self.whiteout(pdir, parents, base, h);
        }

        let existing = rootfs::lstat_at(pdir, base).at("checking", self.shown(&rel))?;
        if let Some(st) = &existing {
            if !(rootfs::stat_is_dir(st) && h.kind == Kind::Dir) {
                rootfs::remove_all_at(pdir, base).at("removing", self.shown(&rel))?;
            }
        }
        match h.kind {
            Kind::Global => unreachable!("global headers are not applied"),
            Kind::Dir => {
                if !existing.as_ref().is_some_and(rootfs::stat_is_dir) {
                    rfs::mkdirat(pdir, base, Mode::from_raw_mode(0o700))
                        .map_err(errno_io)
                        .at("creating directory", self.shown(&rel))?;
                }
                let fd = rfs::openat(
                    pdir,
                    base,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(errno_io)
                .at("opening", self.shown(&rel))?;
                self.meta_fd(fd.as_fd(), h, &rel, false)?;
                self.dirs.push((rel.clone(), Self::times(h)));
            }
            Kind::Reg => {
                let fd: OwnedFd = rfs::openat(
                    pdir,
                    base,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(errno_io)
                .at("creating", self.shown(&rel))?;
                let mut f = std::fs::File::from(fd);
                let n = copy_content(data, &mut f, &mut self.buf).map_err(|e| match e {
                    CopyErr::Read(e) => tar_err(e),
                    CopyErr::Write(e) => Error::Io {
                        op: "writing".into(),
                        path: self.shown(&rel),
                        source: e,
                    },
                })?;
                if n != h.size {
                    return Err(bad(&h.name, "truncated file content"));
                }
                self.meta_fd(f.as_fd(), h, &rel, true)?;
            }
            Kind::Symlink => {
                rfs::symlinkat(h.link.as_slice(), pdir, base)
                    .map_err(errno_io)
                    .at("creating symbolic link", self.shown(&rel))?;
                self.meta_at(pdir, base, h, &rel, false)?;
            }
            Kind::Link => {
                let tcomps = rootfs::entry_components(&h.link)
                    .map_err(|r| bad(&h.name, format!("hard link target: {r}")))?;
                if tcomps.is_empty() {
                    return Err(bad(&h.name, "hard link to the root"));
                }
                let (tparents, tbase) = tcomps.split_at(tcomps.len() - 1);
                let trel = tcomps.join(&b'/');
                let tdir = self
                    .root
                    .dir(tparents)
                    .at("resolving hard link target", self.shown(&trel))?;
                let tst = rootfs::lstat_at(tdir.as_fd(), tbase[0])
                    .at("checking hard link target", self.shown(&trel))?
                    .ok_or_else(|| bad(&h.name, "hard link target does not exist"))?;
                match FileType::from_raw_mode(tst.st_mode) {
                    FileType::Directory => return Err(bad(&h.name, "hard link to a directory")),
                    FileType::Symlink => return Err(bad(&h.name, "hard link to a symbolic link")),
                    _ => {}
                }
                rfs::linkat(tdir.as_fd(), tbase[0], pdir, base, AtFlags::empty())
                    .map_err(errno_io)
                    .at("creating hard link", self.shown(&rel))?;
                self.meta_at(pdir, base, h, &rel, true)?;
            }
            Kind::Char | Kind::Block | Kind::Fifo => {
                let (ft, dev) = match h.kind {
                    Kind::Char => (FileType::CharacterDevice, rfs::makedev(h.dev.0, h.dev.1)),
                    Kind::Block => (FileType::BlockDevice, rfs::makedev(h.dev.0, h.dev.1)),
                    _ => (FileType::Fifo, 0),
                };
                match rfs::mknodat(pdir, base, ft, Mode::from_raw_mode(0o600), dev) {
                    Ok(()) => {}
                    Err(Errno::PERM) if h.kind != Kind::Fifo => {
                        tracing::warn!(
                            "skipping device node {} (not permitted)",
                            String::from_utf8_lossy(&rel)
                        );
                        return Ok(());
                    }
                    Err(e) => return Err(errno_io(e)).at("creating device node", self.shown(&rel)),
                }
                self.meta_at(pdir, base, h, &rel, true)?;
            }
        }
        self.unpacked.insert(rel);
        Ok(())
    }

    fn whiteout(
        &mut self,
        pdir: BorrowedFd<'_>,
        parents: &[&[u8]],
        base: &[u8],
        h: &Hdr,
    ) -> Result<()> {
        let prel = parents.join(&b'/');
        if base == WHITEOUT_OPAQUE {
            match self.whiteouts {
                WhiteoutFormat::Overlay => {
                    let fd = rfs::openat(
                        pdir,
                        c".",
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(errno_io)
                    .at("opening", self.shown(&prel))?;
                    rfs::fsetxattr(&fd, self.opaque_xattr, b"y", XattrFlags::empty())
                        .map_err(errno_io)
                        .at("marking directory opaque", self.shown(&prel))?;
                }
                WhiteoutFormat::Delete => {
                    let fd = rfs::openat(
                        pdir,
                        c".",
                        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(errno_io)
                    .at("opening", self.shown(&prel))?;
                    self.clear_opaque(fd.as_fd(), &prel)?;
                }
            }
            return Ok(());
        }
        let target = &base[WHITEOUT_PREFIX.len()..];
        if target.is_empty() || target == b"." || target == b".." {
            return Err(bad(&h.name, "invalid whiteout name"));
        }
        let mut trel = prel.clone();
        if !trel.is_empty() {
            trel.push(b'/');
        }
        trel.extend_from_slice(target);
        rootfs::remove_all_at(pdir, target).at("removing", self.shown(&trel))?;
        if self.whiteouts == WhiteoutFormat::Overlay {
            rfs::mknodat(pdir, target, FileType::CharacterDevice, Mode::empty(), 0)
                .map_err(errno_io)
                .at("creating whiteout", self.shown(&trel))?;
            self.chown_result(
                rfs::chownat(
                    pdir,
                    target,
                    Some(Uid::from_raw(h.uid)),
                    Some(Gid::from_raw(h.gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                ),
                &trel,
            )?;
        }
        Ok(())
    }

    /// Delete-mode opaque marker: remove what `dir` held before this layer, keeping what
    /// this layer put there.
    fn clear_opaque(&self, dir: BorrowedFd<'_>, rel: &[u8]) -> Result<()> {
        let names = rootfs::list_dir(dir).at("reading directory", self.shown(rel))?;
        for name in names {
            let mut p = rel.to_vec();
            if !p.is_empty() {
                p.push(b'/');
            }
            p.extend_from_slice(&name);
            if !self.unpacked.contains(&p) {
                rootfs::remove_all_at(dir, &name).at("removing", self.shown(&p))?;
            } else if let Ok(sub) = rfs::openat(
                dir,
                name.as_slice(),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                self.clear_opaque(sub.as_fd(), &p)?;
            }
        }
        Ok(())
    }

    fn finish_dirs(&mut self) -> Result<()> {
        for (rel, ts) in self.dirs.iter().rev() {
            match self.root.open_at(
                rel,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW,
                Mode::empty(),
            ) {
                Ok(fd) => rfs::futimens(&fd, ts)
                    .map_err(errno_io)
                    .at("setting times of", self.shown(rel))?,
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ELOOP)
                    ) => {}
                Err(e) => return Err(e).at("opening", self.shown(rel)),
            }
        }
        Ok(())
    }
}

/// Apply an uncompressed tar stream (read to EOF) to `dir`. Entries that would leave `dir`
/// lexically are refused; links met inside are resolved inside `dir`.
pub fn apply_layer(dir: &Path, tar: &mut dyn Read, opts: ApplyOptions<'_>) -> Result<ApplySummary> {
    let root = Root::open(dir).at("opening", dir)?;
    let mut ex = Extractor {
        root,
        whiteouts: opts.whiteouts,
        ignore_chown: opts.ignore_chown_errors,
        opaque_xattr: opts.opaque_xattr,
        unpacked: HashSet::new(),
        dirs: Vec::new(),
        buf: Vec::new(),
    };
    let want_split = opts.tar_split.is_some();
    let id_maps = opts.id_maps.clone();
    let record_only = opts.record_only;
    let mut packer = opts.tar_split.map(|w| {
        Packer::new(flate2::write::GzEncoder::new(
            w,
            flate2::Compression::fast(),
        ))
    });
    let st = Rc::new(RefCell::new(RecState {
        record: want_split,
        limit_headers: true,
        ..Default::default()
    }));
    let mut uids = BTreeSet::new();
    let mut gids = BTreeSet::new();
    let ts_err = |e: io::Error| Error::Io {
        op: "writing".into(),
        path: "tar-split metadata".into(),
        source: e,
    };
    let flush = |packer: &mut Option<Packer<_>>, st: &Rc<RefCell<RecState>>| -> Result<()> {
        let seg = {
            let mut s = st.borrow_mut();
            s.header_bytes = 0;
            std::mem::take(&mut s.seg)
        };
        if let Some(p) = packer.as_mut() {
            p.add_segment(&seg).map_err(ts_err)?;
        }
        Ok(())
    };
    {
        let rec = Recorder {
            inner: tar,
            st: st.clone(),
        };
        let mut ar = tar::Archive::new(rec);
        let entries = ar.entries().map_err(tar_err)?;
        for entry in entries {
            let mut entry = entry.map_err(tar_err)?;
            if entry.raw_file_position() != st.borrow().pos {
                return Err(tar_err(io::Error::other("tar reader position out of step")));
            }
            let mut h = parse_header(&mut entry)?;
            if let Some(m) = &id_maps {
                (h.uid, h.gid) = m.to_host(h.uid, h.gid);
            }
            if h.kind == Kind::Global {
                // Go returns the global header itself as a zero-size entry: its data is raw.
                io::copy(&mut entry, &mut io::sink()).map_err(tar_err)?;
                flush(&mut packer, &st)?;
                if let Some(p) = packer.as_mut() {
                    p.add_file(&h.name, 0, None).map_err(ts_err)?;
                }
                continue;
            }
            flush(&mut packer, &st)?;
            {
                let mut s = st.borrow_mut();
                s.in_file = true;
                s.crc = Crc64::new();
            }
            let base_is_whiteout = h
                .name
                .rsplit(|b| *b == b'/')
                .find(|c| !c.is_empty())
                .is_some_and(|b| b.starts_with(WHITEOUT_PREFIX));
            if !base_is_whiteout {
                uids.insert(h.uid);
                gids.insert(h.gid);
            }
            let res = if record_only {
                Ok(())
            } else {
                ex.apply(&h, &mut entry)
            };
            let drained = io::copy(&mut entry, &mut io::sink()).map_err(tar_err);
            res?;
            drained?;
            let crc = {
                let mut s = st.borrow_mut();
                s.in_file = false;
                s.crc.bytes()
            };
            if let Some(p) = packer.as_mut() {
                p.add_file(&h.name, h.size, (h.size > 0).then_some(crc))
                    .map_err(ts_err)?;
            }
        }
        let mut rec = ar.into_inner();
        // Go's reader: one zero block must be followed by another zero block or EOF.
        let mut blk = [0u8; 512];
        let mut n = 0;
        while n < blk.len() {
            match rec.read(&mut blk[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(tar_err(e)),
            }
        }
        if n != 0 && (n != 512 || blk.iter().any(|b| *b != 0)) {
            return Err(tar_err(io::Error::new(
                io::ErrorKind::InvalidData,
                "invalid tar header after end-of-archive block",
            )));
        }
        flush(&mut packer, &st)?;
        st.borrow_mut().limit_headers = false;
        // Anything after the end blocks is kept verbatim, in bounded chunks, up to
        // MAX_TRAILING_BYTES: more is a decompression bomb (gigabytes of zeros after an
        // empty archive), refused before it costs minutes of CPU.
        let mut chunk = vec![0u8; 64 << 10];
        let mut trailing = 0u64;
        loop {
            let k = match rec.read(&mut chunk) {
                Ok(0) => break,
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(tar_err(e)),
            };
            trailing += k as u64;
            if trailing > MAX_TRAILING_BYTES {
                return Err(tar_err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("more than {MAX_TRAILING_BYTES} bytes after the end of the archive"),
                )));
            }
            flush(&mut packer, &st)?;
        }
    }
    ex.finish_dirs()?;
    if let Some(p) = packer {
        p.into_inner()
            .finish()
            .map_err(ts_err)?
            .flush()
            .map_err(ts_err)?;
    }
    let st = Rc::try_unwrap(st)
        .map_err(|_| tar_err(io::Error::other("recorder still shared")))?
        .into_inner();
    let hex = hex::encode(st.hasher.finalize());
    Ok(ApplySummary {
        diff_digest: Digest::from_sha256_hex(&hex)?,
        diff_size: st.pos,
        uids: uids.into_iter().collect(),
        gids: gids.into_iter().collect(),
    })
}
