//! A layer's change set as a tar stream.
//!
//! Headers are written the way Go's `archive/tar` writes what containers/storage's
//! `pkg/archive` hands it: USTAR when every field fits (long names split into the prefix),
//! otherwise a PAX `x` header with sorted records (`path`, `linkpath`, `uid`, `gid`, `size`,
//! `mtime`, `SCHILY.xattr.*`) before a USTAR-magic header; mtimes truncated to seconds;
//! uname/gname left empty.
// `stat` field types differ between architectures; the casts are there for them.
#![allow(clippy::unnecessary_cast)]
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::apply::{OPAQUE_XATTR, USER_OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX};
use super::tarsplit::go_clean;
use crate::error::{Error, IoResultExt, Result};
use crate::rootfs::{self, Root};

/// Where the changes come from.
#[derive(Debug, Clone, Copy)]
pub enum ChangeSource<'a> {
    /// An overlay upper directory: everything in it is a change; 0/0 char devices are
    /// whiteouts, `trusted.overlay.opaque=y` directories are opaque.
    OverlayUpper(&'a Path),
    /// A full tree compared with its parent's full tree (vfs); `None` = everything is new.
    Compare {
        /// The layer's tree.
        layer: &'a Path,
        /// The parent's tree.
        parent: Option<&'a Path>,
    },
}

/// Options for [`write_changes`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DiffOptions {
    /// Set every entry's mtime to this Unix time (`--timestamp`; buildah's `layerModTime`).
    pub timestamp: Option<i64>,
    /// Then clamp every mtime to at most this Unix time (`--source-date-epoch` with
    /// `--rewrite-timestamp`; buildah's `layerLatestModTime`).
    pub latest_mtime: Option<i64>,
    /// Write owners mapped back from host IDs to container IDs through these maps (the
    /// layer of a container with ID maps, [`crate::idmap`]).
    pub id_maps: Option<crate::idmap::IdMappings>,
}

// ---------------------------------------------------------------------------------------
// Go-compatible tar header writer.

/// One tar header as Go's `tar.Header` would carry it.
#[derive(Debug, Clone, Default)]
pub struct TarHeader {
    /// Entry name (directories end in `/`).
    pub name: Vec<u8>,
    /// Link target (symlinks, hard links).
    pub link: Vec<u8>,
    /// Type flag byte (`b'0'`, `b'5'`, …).
    pub typeflag: u8,
    /// Permission, setuid/setgid/sticky and (as containers/storage writes them) file type bits.
    pub mode: u32,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
    /// Content size.
    pub size: u64,
    /// Modification time in seconds; `None` = Go's zero time (written as 0, never rewritten).
    pub mtime: Option<i64>,
    /// Device numbers.
    pub devmajor: u64,
    /// Device numbers.
    pub devminor: u64,
    /// Extended attributes (`SCHILY.xattr.<key>`), any order.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

fn fits_octal(n: usize, x: i64) -> bool {
    x >= 0 && (n >= 22 || x < 1i64 << ((n - 1) * 3))
}

fn put_str(b: &mut [u8], s: &[u8]) {
    let n = s.len().min(b.len());
    b[..n].copy_from_slice(&s[..n]);
}

fn put_octal(b: &mut [u8], x: i64) {
    let x = if fits_octal(b.len(), x) { x } else { 0 };
    let s = format!("{:0w$o}", x, w = b.len() - 1);
    put_str(b, s.as_bytes());
}

fn to_ascii(s: &[u8]) -> Vec<u8> {
    s.iter().copied().filter(|b| *b < 0x80).collect()
}

fn split_ustar(name: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut len = name.len();
    if len <= 100 || !name.is_ascii() {
        return None;
    } else if len > 156 {
        len = 156;
    } else if name[len - 1] == b'/' {
        len -= 1;
    }
    let i = name[..len].iter().rposition(|b| *b == b'/')?;
    let nlen = name.len() - i - 1;
    if i == 0 || nlen > 100 || nlen == 0 || i > 155 {
        return None;
    }
    Some((&name[..i], &name[i + 1..]))
}

fn pax_record(k: &[u8], v: &[u8]) -> Vec<u8> {
    let mut size = k.len() + v.len() + 3;
    size += size.to_string().len();
    let mut rec = format!("{size} ").into_bytes();
    rec.extend_from_slice(k);
    rec.push(b'=');
    rec.extend_from_slice(v);
    rec.push(b'\n');
    if rec.len() != size {
        let size = rec.len();
        rec = format!("{size} ").into_bytes();
        rec.extend_from_slice(k);
        rec.push(b'=');
        rec.extend_from_slice(v);
        rec.push(b'\n');
    }
    rec
}

fn finish_block(blk: &mut [u8; 512], ustar_magic: bool) {
    if ustar_magic {
        blk[257..263].copy_from_slice(b"ustar\0");
        blk[263..265].copy_from_slice(b"00");
    }
    blk[148..156].copy_from_slice(b"        ");
    let sum: u32 = blk.iter().map(|b| u32::from(*b)).sum();
    put_octal(&mut blk[148..155], i64::from(sum));
    blk[154] = 0;
    blk[155] = b' ';
}

fn pad(out: &mut dyn Write, size: u64) -> io::Result<()> {
    let rem = (size % 512) as usize;
    if rem != 0 {
        out.write_all(&[0u8; 512][..512 - rem])?;
    }
    Ok(())
}

/// Write one header (with a PAX extended header first when needed), as Go would.
pub fn write_header(out: &mut dyn Write, h: &TarHeader) -> io::Result<()> {
    let mut pax: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut ustar = true;
    if !h.name.is_ascii() || h.name.len() > 100 {
        if split_ustar(&h.name).is_none() {
            ustar = false;
        }
        pax.insert(b"path".to_vec(), h.name.clone());
    }
    if !h.link.is_ascii() || h.link.len() > 100 {
        ustar = false;
        pax.insert(b"linkpath".to_vec(), h.link.clone());
    }
    for (key, v, n) in [
        (&b"uid"[..], h.uid, 8),
        (b"gid", h.gid, 8),
        (b"size", h.size, 12),
    ] {
        if !fits_octal(n, v as i64) || v > i64::MAX as u64 {
            ustar = false;
            pax.insert(key.to_vec(), v.to_string().into_bytes());
        }
    }
    let mtime = h.mtime.unwrap_or(0);
    if !fits_octal(12, mtime) {
        ustar = false;
        pax.insert(b"mtime".to_vec(), mtime.to_string().into_bytes());
    }
    if !fits_octal(8, h.devmajor as i64) || !fits_octal(8, h.devminor as i64) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "device number too large for a tar header",
        ));
    }
    if !h.xattrs.is_empty() {
        ustar = false;
        for (k, v) in &h.xattrs {
            let mut key = b"SCHILY.xattr.".to_vec();
            key.extend_from_slice(k);
            pax.insert(key, v.clone());
        }
    }
    let mut blk = [0u8; 512];
    let (name, prefix): (Vec<u8>, &[u8]) = if ustar {
        match split_ustar(&h.name) {
            Some((p, n)) => (n.to_vec(), p),
            None => (h.name.clone(), b""),
        }
    } else {
        // PAX extended header first.
        let mut data = Vec::new();
        for (k, v) in &pax {
            data.extend(pax_record(k, v));
        }
        let (dir, file) = match h.name.iter().rposition(|b| *b == b'/') {
            Some(i) => (&h.name[..=i], &h.name[i + 1..]),
            None => (&b""[..], &h.name[..]),
        };
        let mut joined = dir.to_vec();
        joined.extend_from_slice(b"/PaxHeaders.0/");
        joined.extend_from_slice(file);
        let mut xname = to_ascii(&go_clean(&joined));
        if xname.starts_with(b"/") && !dir.starts_with(b"/") {
            xname.remove(0);
        }
        xname.truncate(100);
        while xname.last() == Some(&b'/') {
            xname.pop();
        }
        let mut x = [0u8; 512];
        put_str(&mut x[0..100], &xname);
        put_octal(&mut x[100..108], 0);
        put_octal(&mut x[108..116], 0);
        put_octal(&mut x[116..124], 0);
        put_octal(&mut x[124..136], data.len() as i64);
        put_octal(&mut x[136..148], 0);
        x[156] = b'x';
        finish_block(&mut x, true);
        out.write_all(&x)?;
        out.write_all(&data)?;
        pad(out, data.len() as u64)?;
        let mut n = to_ascii(&h.name);
        n.truncate(100);
        (n, b"")
    };
    let link = if ustar {
        h.link.clone()
    } else {
        to_ascii(&h.link)
    };
    put_str(&mut blk[0..100], &name);
    put_octal(&mut blk[100..108], i64::from(h.mode));
    put_octal(&mut blk[108..116], h.uid as i64);
    put_octal(&mut blk[116..124], h.gid as i64);
    put_octal(&mut blk[124..136], h.size as i64);
    put_octal(&mut blk[136..148], mtime);
    blk[156] = h.typeflag;
    put_str(&mut blk[157..257], &link);
    put_octal(&mut blk[329..337], h.devmajor as i64);
    put_octal(&mut blk[337..345], h.devminor as i64);
    put_str(&mut blk[345..500], prefix);
    finish_block(&mut blk, true);
    out.write_all(&blk)
}

// ---------------------------------------------------------------------------------------
// Trees.

#[derive(Debug)]
struct Node {
    st: rfs::Stat,
    target: Option<Vec<u8>>,
    /// xattrs exported in the tar (security.capability, security.ima, user.* but not user.overlay.*).
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// xattrs compared between trees (security.capability and user.*).
    cmp_xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    opaque: bool,
    children: Option<Vec<Vec<u8>>>,
}

impl Node {
    fn ftype(&self) -> FileType {
        FileType::from_raw_mode(self.st.st_mode)
    }
    fn is_dir(&self) -> bool {
        self.ftype() == FileType::Directory
    }
}

#[derive(Default)]
struct Tree {
    nodes: HashMap<Vec<u8>, Node>,
    /// Paths in walk order: depth first, each directory's entries sorted by name (Go's
    /// `filepath.WalkDir`, which `TarWithOptions` uses for overlay upper dirs).
    order: Vec<Vec<u8>>,
}

impl std::ops::Index<&Vec<u8>> for Tree {
    type Output = Node;
    fn index(&self, p: &Vec<u8>) -> &Node {
        &self.nodes[p]
    }
}

impl Tree {
    fn get(&self, p: &[u8]) -> Option<&Node> {
        self.nodes.get(p)
    }
}

fn join(rel: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = rel.to_vec();
    if !p.is_empty() {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

fn read_xattrs(path: &[u8]) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    let size = match rfs::llistxattr_query(path) {
        Ok(n) => n,
        Err(Errno::NOTSUP) => return Ok(out),
        Err(e) => return Err(e.into()),
    };
    if size == 0 {
        return Ok(out);
    }
    let mut list = vec![0u8; size];
    let n = rfs::llistxattr(path, &mut list[..])?;
    list.truncate(n);
    for key in list.split(|b| *b == 0).filter(|k| !k.is_empty()) {
        let vsize = match rfs::lgetxattr_query(path, key) {
            Ok(n) => n,
            Err(Errno::NODATA) => continue,
            Err(e) => return Err(e.into()),
        };
        let mut v = vec![0u8; vsize];
        let n = if vsize > 0 {
            rfs::lgetxattr(path, key, &mut v[..])?
        } else {
            0
        };
        v.truncate(n);
        out.push((key.to_vec(), v));
    }
    out.sort();
    Ok(out)
}

fn walk(
    root: &Root,
    dir: BorrowedFd<'_>,
    rel: &[u8],
    tree: &mut Tree,
    overlay: bool,
) -> Result<Vec<Vec<u8>>> {
    let names = rootfs::list_dir(dir).at("reading directory", root.display(rel))?;
    let dproc = rootfs::fd_path(&dir);
    for name in &names {
        let p = join(rel, name);
        let shown = root.display(&p);
        let st = rfs::statat(dir, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(io::Error::from)
            .at("checking", &shown)?;
        let ft = FileType::from_raw_mode(st.st_mode);
        let target = if ft == FileType::Symlink {
            Some(
                rfs::readlinkat(dir, name.as_slice(), Vec::new())
                    .map_err(io::Error::from)
                    .at("reading link", &shown)?
                    .into_bytes(),
            )
        } else {
            None
        };
        let mut xpath = dproc.clone().into_os_string().into_vec();
        xpath.push(b'/');
        xpath.extend_from_slice(name);
        let all = read_xattrs(&xpath).at("reading extended attributes of", &shown)?;
        let opaque = overlay
            && ft == FileType::Directory
            && all.iter().any(|(k, v)| {
                (k == OPAQUE_XATTR.as_bytes() || k == USER_OPAQUE_XATTR.as_bytes()) && v == b"y"
            });
        let xattrs = all
            .iter()
            .filter(|(k, _)| {
                k == b"security.capability"
                    || k == b"security.ima"
                    || (k.starts_with(b"user.") && !k.starts_with(b"user.overlay."))
            })
            .cloned()
            .collect();
        let cmp_xattrs = all
            .iter()
            .filter(|(k, _)| k == b"security.capability" || k.starts_with(b"user."))
            .cloned()
            .collect();
        tree.order.push(p.clone());
        let children = if ft == FileType::Directory {
            let sub: OwnedFd = rfs::openat(
                dir,
                name.as_slice(),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(io::Error::from)
            .at("opening", &shown)?;
            Some(walk(root, sub.as_fd(), &p, tree, overlay)?)
        } else {
            None
        };
        tree.nodes.insert(
            p,
            Node {
                st,
                target,
                xattrs,
                cmp_xattrs,
                opaque,
                children,
            },
        );
    }
    Ok(names)
}

fn load(path: &Path, overlay: bool) -> Result<(Root, Tree, Vec<Vec<u8>>)> {
    let root = Root::open(path).at("opening", path)?;
    let mut tree = Tree::default();
    let top = walk(&root, root.fd(), b"", &mut tree, overlay)?;
    Ok((root, tree, top))
}

// ---------------------------------------------------------------------------------------
// Compare (vfs).

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Change {
    Write(Vec<u8>),
    Delete(Vec<u8>),
}

impl Change {
    fn path(&self) -> &[u8] {
        match self {
            Change::Write(p) | Change::Delete(p) => p,
        }
    }
}

fn same_time(a: (i64, i64), b: (i64, i64)) -> bool {
    a.0 == b.0 && (a.1 == b.1 || a.1 == 0 || b.1 == 0)
}

fn different(old: &Node, new: &Node) -> bool {
    let (o, n) = (&old.st, &new.st);
    o.st_mode != n.st_mode
        || o.st_uid != n.st_uid
        || o.st_gid != n.st_gid
        || o.st_rdev != n.st_rdev
        || !same_time(
            (o.st_mtime as i64, o.st_mtime_nsec as i64),
            (n.st_mtime as i64, n.st_mtime_nsec as i64),
        )
        || (!old.is_dir() && o.st_size != n.st_size)
        || old.target != new.target
        || old.cmp_xattrs != new.cmp_xattrs
}

#[allow(clippy::too_many_arguments)]
fn add_changes(
    rel: &[u8],
    new_children: &[Vec<u8>],
    new_is_dir: bool,
    already: bool,
    old_children: Option<&[Vec<u8>]>,
    new_tree: &Tree,
    old_tree: &Tree,
    old_prefix_ok: bool,
    changes: &mut Vec<Change>,
) {
    let size_at_entry = changes.len();
    let mut olds: BTreeMap<&[u8], ()> = BTreeMap::new();
    if new_is_dir && old_prefix_ok {
        for c in old_children.unwrap_or(&[]) {
            olds.insert(c, ());
        }
    }
    for name in new_children {
        let p = join(rel, name);
        let nn = &new_tree[&p];
        let on = if olds.remove(name.as_slice()).is_some() {
            old_tree.get(&p)
        } else {
            None
        };
        let child_already = match on {
            None => {
                changes.push(Change::Write(p.clone()));
                true
            }
            Some(o) if different(o, nn) => {
                changes.push(Change::Write(p.clone()));
                true
            }
            Some(_) => false,
        };
        let oc = on.and_then(|o| o.children.as_deref());
        add_changes(
            &p,
            nn.children.as_deref().unwrap_or(&[]),
            nn.is_dir(),
            child_already,
            oc,
            new_tree,
            old_tree,
            on.is_some(),
            changes,
        );
    }
    for (name, ()) in olds {
        changes.push(Change::Delete(join(rel, name)));
    }
    if changes.len() > size_at_entry && new_is_dir && !already && !rel.is_empty() {
        changes.insert(size_at_entry, Change::Write(rel.to_vec()));
    }
}

// ---------------------------------------------------------------------------------------
// Export.

struct Exporter<'o> {
    out: &'o mut dyn Write,
    opts: &'o DiffOptions,
    seen: HashMap<(u64, u64), Vec<u8>>,
    buf: Vec<u8>,
    /// Entries of the tree left out of the tar (sockets).
    skipped: usize,
}

fn werr(e: io::Error) -> Error {
    Error::Io {
        op: "writing".into(),
        path: "layer tar stream".into(),
        source: e,
    }
}

impl Exporter<'_> {
    fn time(&self, t: Option<i64>) -> Option<i64> {
        let mut t = t?;
        if let Some(ts) = self.opts.timestamp {
            t = ts;
        }
        if let Some(l) = self.opts.latest_mtime {
            t = t.min(l);
        }
        Some(t)
    }

    fn header(&mut self, h: &TarHeader) -> Result<()> {
        let mut h = h.clone();
        h.mtime = self.time(h.mtime);
        if let Some(m) = &self.opts.id_maps {
            let (u, g) = m.to_container(h.uid as u32, h.gid as u32);
            (h.uid, h.gid) = (u64::from(u), u64::from(g));
        }
        write_header(self.out, &h).map_err(werr)
    }

    fn whiteout(&mut self, rel: &[u8], mtime: i64, uid: u64, gid: u64) -> Result<()> {
        let (dir, base) = match rel.iter().rposition(|b| *b == b'/') {
            Some(i) => (&rel[..=i], &rel[i + 1..]),
            None => (&b""[..], rel),
        };
        let mut name = dir.to_vec();
        name.extend_from_slice(WHITEOUT_PREFIX);
        name.extend_from_slice(base);
        self.header(&TarHeader {
            name,
            typeflag: b'0',
            uid,
            gid,
            mtime: Some(mtime),
            ..Default::default()
        })
    }

    fn entry(&mut self, root: &Root, rel: &[u8], n: &Node, overlay: bool) -> Result<()> {
        let st = &n.st;
        let ft = n.ftype();
        if overlay && ft == FileType::CharacterDevice && st.st_rdev == 0 {
            return self.whiteout(
                rel,
                st.st_mtime as i64,
                u64::from(st.st_uid),
                u64::from(st.st_gid),
            );
        }
        let mut h = TarHeader {
            name: rel.to_vec(),
            // containers/storage keeps the file type bits (S_IFREG, S_IFDIR, …) in the mode.
            mode: st.st_mode & (0o7777 | libc::S_IFMT),
            uid: u64::from(st.st_uid),
            gid: u64::from(st.st_gid),
            mtime: Some(st.st_mtime as i64),
            xattrs: n.xattrs.clone(),
            ..Default::default()
        };
        match ft {
            FileType::Directory => {
                h.typeflag = b'5';
                h.name.push(b'/');
            }
            FileType::RegularFile => {
                h.typeflag = b'0';
                h.size = st.st_size as u64;
            }
            FileType::Symlink => {
                h.typeflag = b'2';
                h.link = n.target.clone().unwrap_or_default();
            }
            FileType::CharacterDevice | FileType::BlockDevice => {
                h.typeflag = if ft == FileType::CharacterDevice {
                    b'3'
                } else {
                    b'4'
                };
                h.devmajor = u64::from(rfs::major(st.st_rdev));
                h.devminor = u64::from(rfs::minor(st.st_rdev));
            }
            FileType::Fifo => h.typeflag = b'6',
            _ => {
                tracing::debug!("skipping socket {}", String::from_utf8_lossy(rel));
                self.skipped += 1;
                return Ok(());
            }
        }
        if ft != FileType::Directory && st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.seen.get(&key) {
                h.typeflag = b'1';
                h.link = first.clone();
                h.size = 0;
            } else {
                self.seen.insert(key, rel.to_vec());
            }
        }
        self.header(&h)?;
        if n.opaque {
            let mut name = h.name.clone();
            name.extend_from_slice(WHITEOUT_OPAQUE);
            let marker = TarHeader {
                name,
                typeflag: b'0',
                mode: h.mode & 0o777,
                uid: h.uid,
                gid: h.gid,
                mtime: None,
                ..Default::default()
            };
            self.header(&marker)?;
        }
        if h.typeflag == b'0' && h.size > 0 {
            let shown = root.display(rel);
            let mut f = std::fs::File::from(
                root.open_at(rel, OFlags::RDONLY | OFlags::NOFOLLOW, Mode::empty())
                    .at("opening", &shown)?,
            );
            if self.buf.is_empty() {
                self.buf = vec![0u8; 128 * 1024];
            }
            let mut left = h.size;
            while left > 0 {
                let want = left.min(self.buf.len() as u64) as usize;
                let k = f.read(&mut self.buf[..want]).at("reading", &shown)?;
                if k == 0 {
                    return Err(Error::invalid(format!(
                        "{} changed size while being archived",
                        shown.display()
                    )));
                }
                self.out.write_all(&self.buf[..k]).map_err(werr)?;
                left -= k as u64;
            }
            pad(self.out, h.size).map_err(werr)?;
        }
        Ok(())
    }
}

/// Write the change set as an uncompressed tar to `out`: sorted by path, hard links within
/// the layer as link entries, xattrs as PAX `SCHILY.xattr.*`, devices, `.wh.` whiteouts.
pub fn write_changes(src: ChangeSource<'_>, opts: &DiffOptions, out: &mut dyn Write) -> Result<()> {
    write_changes_counted(src, opts, out).map(drop)
}

/// [`write_changes`], returning how many entries of the tree the tar leaves out (sockets,
/// which a layer cannot carry): with none, the tree is exactly what the tar describes.
pub fn write_changes_counted(
    src: ChangeSource<'_>,
    opts: &DiffOptions,
    out: &mut dyn Write,
) -> Result<usize> {
    let mut ex = Exporter {
        out,
        opts,
        seen: HashMap::new(),
        buf: Vec::new(),
        skipped: 0,
    };
    match src {
        // No parent: containers/storage's naive diff tars the whole tree (`archive.Tar`,
        // walk order); with a parent it exports sorted changes (`ExportChanges`).
        ChangeSource::Compare {
            layer,
            parent: None,
        } => {
            let (root, tree, _) = load(layer, false)?;
            for p in &tree.order {
                ex.entry(&root, p, &tree[p], false)?;
            }
        }
        ChangeSource::OverlayUpper(upper) => {
            let (root, tree, _) = load(upper, true)?;
            for p in &tree.order {
                ex.entry(&root, p, &tree[p], true)?;
            }
        }
        ChangeSource::Compare {
            layer,
            parent: Some(parent),
        } => {
            let (root, new_tree, new_top) = load(layer, false)?;
            let (_, old_tree, old_top) = load(parent, false)?;
            let mut changes = Vec::new();
            add_changes(
                b"",
                &new_top,
                true,
                false,
                Some(&old_top),
                &new_tree,
                &old_tree,
                true,
                &mut changes,
            );
            changes.sort_by(|a, b| a.path().cmp(b.path()));
            for c in changes {
                match c {
                    Change::Write(p) => ex.entry(&root, &p, &new_tree[&p], false)?,
                    Change::Delete(p) => {
                        // Deterministic: the time of the directory the entry vanished from.
                        let dir = match p.iter().rposition(|b| *b == b'/') {
                            Some(i) => p[..i].to_vec(),
                            None => Vec::new(),
                        };
                        let t = match new_tree.get(&dir) {
                            Some(n) => n.st.st_mtime as i64,
                            None => rfs::fstat(root.fd())
                                .map(|s| s.st_mtime as i64)
                                .unwrap_or(0),
                        };
                        ex.whiteout(&p, t, 0, 0)?;
                    }
                }
            }
        }
    }
    ex.out.write_all(&[0u8; 1024]).map_err(werr)?;
    ex.out.flush().map_err(werr)?;
    Ok(ex.skipped)
}
