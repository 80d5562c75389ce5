//! ADD's local archives: detect (plain tar, gzip, bzip2, xz, zstd) and extract entry by
//! entry through a [`Sink`] (never `tar::Archive::unpack`), refusing names that leave the
//! destination.
use std::fs::File;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use rustix::fs::FileType;

use super::sink::{Meta, Sink};
use crate::error::{Error, IoResultExt, Result, ResultExt};

/// Whether the file at `path` is a (possibly compressed) tar archive with at least one
/// entry, as buildah decides it for ADD.
pub fn is_archive(path: &Path) -> bool {
    let Ok(f) = File::open(path) else {
        return false;
    };
    let Ok(r) = crate::archive::compress::decompress(Box::new(f)) else {
        return false;
    };
    // Bounded like the extraction: a first header with huge PAX data is an archive (whose
    // extraction is then refused), never read into memory here.
    let st = std::rc::Rc::new(std::cell::Cell::new((false, 0u64)));
    let mut ar = tar::Archive::new(HeaderBound { inner: r, st });
    let Ok(mut entries) = ar.entries() else {
        return false;
    };
    match entries.next() {
        Some(Ok(_)) => true,
        Some(Err(e)) => e.to_string().contains(TOO_LARGE),
        None => false,
    }
}

/// A tar entry name made relative and checked: `None` for the archive's root (`.`, `/`),
/// an error when it leaves the destination (`..`).
pub(crate) fn clean_entry_name(name: &Path) -> std::result::Result<Option<PathBuf>, String> {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                return Err(format!("archive entry {:?} leaves the destination", name))
            }
            Component::Prefix(_) => {
                return Err(format!("archive entry {:?} is not a relative path", name))
            }
        }
    }
    Ok(if out.as_os_str().is_empty() {
        None
    } else {
        Some(out)
    })
}

/// How archive entries' metadata is rewritten.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rewrite {
    /// Owner for every entry (`None` keeps the archive's).
    pub owner: Option<(u32, u32)>,
    /// `--chmod` for every entry but links.
    pub chmod: Option<super::Chmod>,
    /// Timestamp for every entry.
    pub timestamp: Option<i64>,
}

/// What the tar reader may buffer for one entry besides its data (PAX records, GNU long
/// names and links, sparse headers), as for layers: more is refused before it is in memory.
const MAX_HEADER_BYTES: u64 = 4 << 20;
const TOO_LARGE: &str = "tar header data too large";

/// Counts the bytes read outside entry data; errors past [`MAX_HEADER_BYTES`].
struct HeaderBound<R> {
    inner: R,
    /// (reading entry data, header bytes read since the last entry)
    st: std::rc::Rc<std::cell::Cell<(bool, u64)>>,
}

impl<R: Read> Read for HeaderBound<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (in_data, used) = self.st.get();
        if in_data {
            return self.inner.read(buf);
        }
        if used >= MAX_HEADER_BYTES {
            return Err(io::Error::new(io::ErrorKind::InvalidData, TOO_LARGE));
        }
        let room = (MAX_HEADER_BYTES - used).min(buf.len() as u64) as usize;
        let n = self.inner.read(&mut buf[..room])?;
        self.st.set((false, used + n as u64));
        Ok(n)
    }
}

/// Extract the (possibly compressed) archive in `r` into the sink's directory.
pub(crate) fn extract(
    r: Box<dyn Read + Send>,
    sink: &mut Sink<'_>,
    rw: Rewrite,
    shown: &Path,
) -> Result<()> {
    let st = std::rc::Rc::new(std::cell::Cell::new((false, 0u64)));
    let mut ar = tar::Archive::new(HeaderBound {
        inner: r,
        st: st.clone(),
    });
    let bad = |e: io::Error| Error::Io {
        op: "reading archive".into(),
        path: shown.to_path_buf(),
        source: e,
    };
    for entry in ar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        st.set((true, 0));
        extract_entry(&mut entry, sink, &rw, shown)?;
        // What the sink left unread is data too; the next header's budget starts here.
        io::copy(&mut entry, &mut io::sink()).map_err(bad)?;
        st.set((false, 0));
    }
    Ok(())
}

fn extract_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    sink: &mut Sink<'_>,
    rw: &Rewrite,
    shown: &Path,
) -> Result<()> {
    let bad = |e: io::Error| Error::Io {
        op: "reading archive".into(),
        path: shown.to_path_buf(),
        source: e,
    };
    {
        let raw = entry.path().map_err(bad)?.into_owned();
        let Some(rel) = clean_entry_name(&raw)
            .map_err(|m| Error::invalid(format!("extracting {}: {m}", shown.display())))?
        else {
            return Ok(());
        };
        let h = entry.header();
        let kind = h.entry_type();
        let mut xattrs = Vec::new();
        if let Ok(Some(exts)) = entry.pax_extensions() {
            for ext in exts.flatten() {
                if let Ok(k) = ext.key() {
                    if let Some(name) = k.strip_prefix("SCHILY.xattr.") {
                        xattrs.push((name.into(), ext.value_bytes().to_vec()));
                    }
                }
            }
        }
        let h = entry.header();
        let (uid, gid) = match rw.owner {
            Some(o) => o,
            None => (h.uid().unwrap_or(0) as u32, h.gid().unwrap_or(0) as u32),
        };
        let mtime = rw
            .timestamp
            .unwrap_or_else(|| h.mtime().unwrap_or(0) as i64);
        let own = h.mode().unwrap_or(0o644) & 0o7777;
        let mode = match &rw.chmod {
            Some(c) => c.apply(own, kind == tar::EntryType::Directory),
            None => own,
        };
        let meta = Meta {
            mode,
            uid,
            gid,
            mtime: (mtime, 0),
            xattrs,
        };
        match kind {
            tar::EntryType::Directory => sink.dir(&rel, &meta)?,
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                sink.file(&rel, &meta, entry)?
            }
            tar::EntryType::Symlink => {
                let target = entry.link_name().map_err(bad)?.ok_or_else(|| {
                    Error::invalid(format!(
                        "extracting {}: symlink {} has no target",
                        shown.display(),
                        rel.display()
                    ))
                })?;
                sink.symlink(&rel, &target, &meta)?;
            }
            tar::EntryType::Link => {
                let target = entry.link_name().map_err(bad)?.ok_or_else(|| {
                    Error::invalid(format!(
                        "extracting {}: hard link {} has no target",
                        shown.display(),
                        rel.display()
                    ))
                })?;
                let target = clean_entry_name(&target)
                    .map_err(|m| Error::invalid(format!("extracting {}: {m}", shown.display())))?
                    .ok_or_else(|| {
                        Error::invalid(format!(
                            "extracting {}: hard link {} to the root",
                            shown.display(),
                            rel.display()
                        ))
                    })?;
                sink.hardlink(&rel, &target)?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let ft = match kind {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                let dev = rustix::fs::makedev(major, minor);
                if let Err(e) = sink.special(&rel, ft, dev, &meta) {
                    if ft == FileType::Fifo {
                        return Err(e);
                    }
                    tracing::debug!("skipping device node {}: {e}", rel.display());
                }
            }
            other => tracing::debug!("skipping archive entry {} of type {other:?}", rel.display()),
        }
    }
    Ok(())
}

/// Extract the (possibly compressed) archive in `r` into the existing directory `dest`
/// entry by entry, every write resolved inside `dest` (a remote or stdin build context).
/// Names with `..` are refused; links in the archive resolve inside `dest`.
pub fn extract_into(r: Box<dyn Read + Send>, dest: &Path, shown: &Path) -> Result<()> {
    let root = crate::rootfs::Root::open(dest).at("opening", dest)?;
    let mut sink = Sink::new(&root, Path::new("/"), crate::rootfs::NewDir::default())?;
    extract(r, &mut sink, Rewrite::default(), shown)?;
    sink.finish()?;
    Ok(())
}

/// Open `path` for extraction (decompressed).
pub(crate) fn open(path: &Path) -> Result<Box<dyn Read + Send>> {
    let f = File::open(path).at("opening", path)?;
    crate::archive::compress::decompress(Box::new(f))
        .context_with(|| format!("reading {}", path.display()))
}
