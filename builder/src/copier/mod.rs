//! Rootfs-confined file operations: every path inside a rootfs is resolved inside it.
//!
//! [`put`] is COPY/ADD over plain directories (so it is testable without a store): sources
//! are found under a [`SourceRoot`] (the host, a context directory that must not be left,
//! or another rootfs), and written below a destination resolved inside the target root
//! ([`crate::rootfs::Root`]) through descriptors only ([`sink::Sink`]).
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, IoResultExt, Result};
use crate::rootfs;

pub mod archive;
pub mod chmod;
pub mod ignore;
pub mod passwd;
pub mod pattern;
pub mod sink;
pub mod source;
pub mod url;

pub use chmod::Chmod;
pub use source::SourceRoot;

/// Copy errors.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A source path leaves its context directory.
    #[error("{path}: path escapes the context directory {context}")]
    Escapes {
        /// The offending path.
        path: String,
        /// The context directory.
        context: String,
    },
}

/// How [`put`] copies.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PutOptions {
    /// Owner of everything copied; `None` keeps the sources' owners (`--from` without `--chown`).
    pub owner: Option<(u32, u32)>,
    /// Owner of directories created implicitly (the destination and missing parents).
    pub dir_owner: (u32, u32),
    /// `--chmod`: the mode of every copied file and directory (octal), or a change to each
    /// one's own mode (symbolic).
    pub chmod: Option<Chmod>,
    /// ADD: extract local archives.
    pub extract_archives: bool,
    /// Exclude patterns, relative to the source root.
    pub excludes: Vec<String>,
    /// The ignore file the excludes came from (for messages).
    pub ignore_file: Option<PathBuf>,
    /// Follow a symlink named directly as a source (inside the source root only).
    pub follow_links: bool,
    /// Accept glob patterns in sources.
    pub allow_wildcard: bool,
    /// A glob that matches nothing is not an error.
    pub allow_empty_wildcard: bool,
    /// Force this mtime (Unix seconds) on everything copied.
    pub timestamp: Option<i64>,
    /// The container's working directory (relative destinations start there).
    pub workdir: String,
    /// `sha256:<hex>` the URL sources must match.
    pub checksum: Option<String>,
    /// `--parents`: keep each source's path (below the root, or below a `/./` pivot in it).
    pub parents: bool,
    /// Retries for URL fetches.
    pub retries: u32,
    /// Delay between them.
    pub retry_delay: Duration,
    /// The destination container's ID maps: `owner`, `dir_owner` and the sources' owners
    /// are container IDs, stored shifted ([`crate::idmap`]).
    pub id_maps: Option<crate::idmap::IdMappings>,
    /// The source root's ID maps (`--from` a container with maps): its owners are host
    /// IDs, read back as container IDs.
    pub source_id_maps: Option<crate::idmap::IdMappings>,
    /// Clear the setuid and setgid bits of the sources' modes (not of a `chmod`).
    pub strip_setid: bool,
}

impl Default for PutOptions {
    fn default() -> Self {
        PutOptions {
            owner: Some((0, 0)),
            dir_owner: (0, 0),
            chmod: None,
            extract_archives: false,
            excludes: Vec::new(),
            ignore_file: None,
            follow_links: true,
            allow_wildcard: true,
            allow_empty_wildcard: false,
            timestamp: None,
            workdir: String::new(),
            checksum: None,
            parents: false,
            retries: 3,
            retry_delay: Duration::from_secs(2),
            id_maps: None,
            source_id_maps: None,
            strip_setid: false,
        }
    }
}

/// What [`put`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutSummary {
    /// `file` or `dir` (the kind of the last local source), empty for URLs.
    pub content_type: String,
    /// Hex digest of the copied content (names, types and data); `None` when nothing was copied.
    pub digest: Option<String>,
    /// Items written.
    pub items: usize,
}

/// A parsed `--chmod` (octal or symbolic).
pub fn parse_chmod(s: &str) -> Result<Chmod> {
    Chmod::parse(s)
}

struct Item {
    /// Root-relative path it was found at (for its name and for excludes).
    logical: PathBuf,
    /// The same with links resolved (what is read).
    resolved: PathBuf,
    md: std::fs::Metadata,
}

fn slash(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn clean_dest(dest: &str) -> String {
    ignore::clean(dest)
}

/// Copy `sources` into the rootfs at `root`, to `dest` (absolute, or relative to
/// `opts.workdir`), with buildah's COPY/ADD destination rules: a destination ending in `/`,
/// an existing directory, several sources, a directory source or (ADD) an archive mean
/// "into this directory"; otherwise a single file is written under the destination's name.
pub fn put(
    root: &Path,
    src: &SourceRoot,
    sources: &[String],
    dest: &str,
    opts: &PutOptions,
) -> Result<PutSummary> {
    let matcher = ignore::Matcher::new(&opts.excludes)?;
    let mut urls = Vec::new();
    let mut locals: Vec<(PathBuf, Vec<Item>)> = Vec::new();
    let ctx_shown = src.dir.display().to_string();
    for s in sources {
        if s.is_empty() {
            return Err(Error::invalid("empty source location"));
        }
        if url::is_url(s) {
            urls.push(s.clone());
            continue;
        }
        if s.starts_with("git@") || s.starts_with("git://") {
            return Err(Error::invalid(format!(
                "{s}: git sources are not supported"
            )));
        }
        if opts.checksum.is_some() {
            return Err(Error::invalid(
                "checksum flag is not supported for local sources",
            ));
        }
        let wild = pattern::has_wildcards(s);
        if wild && !opts.allow_wildcard {
            return Err(Error::invalid(format!("checking on sources under {ctx_shown:?}: copier: stat: {s:?}: wildcards are not allowed")));
        }
        let found = match src.expand(s, opts.follow_links) {
            Ok(f) => f,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::invalid(format!("checking on sources under {ctx_shown:?}: copier: stat: {s:?}: no such file or directory")));
            }
            Err(e) => return Err(e),
        };
        if found.is_empty() {
            if wild && opts.allow_empty_wildcard {
                continue;
            }
            return Err(Error::invalid(format!("checking on sources under {ctx_shown:?}: copier: stat: globs [{s}] matched nothing")));
        }
        let total = found.len();
        let mut items = Vec::new();
        for (logical, resolved) in found {
            let host = src.host_path(&resolved);
            let md = std::fs::symlink_metadata(&host).at("checking source", &host)?;
            let rel = slash(&logical);
            if !logical.as_os_str().is_empty()
                && matcher.excluded(&rel)
                && !(md.is_dir() && matcher.has_exceptions() && matcher.may_include_under(&rel))
            {
                continue;
            }
            items.push(Item {
                logical,
                resolved,
                md,
            });
        }
        if items.is_empty() {
            let using = opts
                .ignore_file
                .as_ref()
                .map(|f| format!(" using {}", f.display()))
                .unwrap_or_default();
            return Err(Error::invalid(format!("no items matching glob {s:?} copied ({total} filtered out{using}): no such file or directory")));
        }
        let pivot = match s.find("/./") {
            Some(i) if opts.parents => {
                let before = if i == 0 { "/" } else { &s[..i] };
                src.source_components(before)?.iter().collect()
            }
            _ => PathBuf::new(),
        };
        locals.push((pivot, items));
    }
    if locals.is_empty() && urls.is_empty() {
        if opts.allow_empty_wildcard {
            return Ok(PutSummary::default());
        }
        return Err(Error::invalid(format!(
            "no sources {sources:?} found: no such file or directory"
        )));
    }

    // Where it goes.
    let target = rootfs::Root::open(root).at("opening root directory", root)?;
    let mut must_be_dir =
        dest.ends_with('/') || dest.ends_with("/.") || dest.is_empty() || sources.len() > 1;
    let workdir = clean_dest(&format!("/{}", opts.workdir));
    let mut dest_abs = if dest.starts_with('/') {
        clean_dest(dest)
    } else {
        clean_dest(&format!("{workdir}/{dest}"))
    };
    if dest_abs.is_empty() {
        dest_abs = "/".into();
    }
    must_be_dir |= dest_abs == workdir;
    let mut can_be_file = false;
    if opts.parents {
        must_be_dir = true;
    }
    if sources.len() == 1 {
        if urls.len() == 1 {
            can_be_file = true;
        } else if let Some((_, items)) = locals.first() {
            if items.len() > 1 {
                must_be_dir = true;
            } else {
                let it = &items[0];
                let host = src.host_path(&it.resolved);
                if it.md.is_dir()
                    || (opts.extract_archives && it.md.is_file() && archive::is_archive(&host))
                {
                    must_be_dir = true;
                }
                if it.md.is_file() || it.md.file_type().is_symlink() {
                    can_be_file = true;
                }
            }
        }
    }
    let dest_path = PathBuf::from(&dest_abs);
    let existing = target
        .lookup(&dest_path, true)
        .at("checking on destination", target.display_path(&dest_path))?;
    let existing_kind = match &existing {
        Some(fd) => Some(rustix::fs::FileType::from_raw_mode(
            rustix::fs::fstat(fd)
                .map_err(std::io::Error::from)
                .at("checking on destination", target.display_path(&dest_path))?
                .st_mode,
        )),
        None => None,
    };
    let mut rename: Option<String> = None;
    let mut extract_dir = dest_path.clone();
    match existing_kind {
        Some(rustix::fs::FileType::Directory) => {}
        Some(_) => {
            if must_be_dir {
                return Err(Error::invalid(format!(
                    "destination {dest_abs} already exists but is not a directory"
                )));
            }
            rename = dest_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned());
            extract_dir = dest_path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("/"));
        }
        None if !must_be_dir && can_be_file => {
            rename = dest_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned());
            extract_dir = dest_path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("/"));
        }
        None => {}
    }
    drop(existing);

    // Fetch (and verify) every URL before anything is written.
    let mut fetched = Vec::new();
    for u in &urls {
        if rename.is_none() {
            url::file_name(u)?;
        }
        fetched.push((
            u.clone(),
            url::fetch(u, opts.checksum.as_deref(), opts.retries, opts.retry_delay)?,
        ));
    }

    let dir_owner = match &opts.id_maps {
        Some(m) => m.to_host(opts.dir_owner.0, opts.dir_owner.1),
        None => opts.dir_owner,
    };
    let new_dir = rootfs::NewDir {
        mode: 0o755,
        owner: Some(dir_owner),
    };
    let mut sink = sink::Sink::new(&target, &extract_dir, new_dir)?;
    sink.set_id_maps(opts.id_maps.clone());
    let mut content_type = String::new();
    let mut hardlinks: std::collections::HashMap<(u64, u64), PathBuf> =
        std::collections::HashMap::new();

    for (u, mut f) in fetched {
        let name = match &rename {
            Some(n) => n.clone(),
            None => url::file_name(&u)?,
        };
        let (uid, gid) = opts.owner.unwrap_or((0, 0));
        let mtime = opts.timestamp.or(f.last_modified).unwrap_or(0);
        let meta = sink::Meta {
            mode: opts.chmod.as_ref().map_or(0o600, |c| c.apply(0o600, false)),
            uid,
            gid,
            mtime: (mtime, 0),
            xattrs: Vec::new(),
        };
        sink.file(Path::new(&name), &meta, &mut f.file)?;
    }

    let mut parents_made = std::collections::HashSet::new();
    for (pivot, items) in &locals {
        for it in items {
            let host = src.host_path(&it.resolved);
            let mut prefix = PathBuf::new();
            if opts.parents {
                let rel = it
                    .logical
                    .strip_prefix(pivot)
                    .unwrap_or(&it.logical)
                    .to_path_buf();
                // The leading directories, with their own metadata, once each.
                let mut acc = PathBuf::new();
                for c in rel.parent().map(rootfs::components).unwrap_or_default() {
                    acc.push(c);
                    if parents_made.insert(acc.clone()) {
                        let dir_host = src.host_path(&pivot.join(&acc));
                        let md = std::fs::metadata(&dir_host).at("checking", &dir_host)?;
                        sink.dir(&acc, &meta_of(&dir_host, &md, opts, false))?;
                    }
                }
                prefix = rel;
            }
            if it.md.is_dir() {
                content_type = "dir".into();
                if !prefix.as_os_str().is_empty() && parents_made.insert(prefix.clone()) {
                    sink.dir(&prefix, &meta_of(&host, &it.md, opts, false))?;
                }
                copy_tree(
                    src.excludes_in_tree,
                    &it.resolved,
                    &host,
                    &prefix,
                    &mut sink,
                    &matcher,
                    opts,
                    &mut hardlinks,
                )?;
                continue;
            }
            content_type = "file".into();
            let name: PathBuf = match &rename {
                _ if opts.parents => prefix.clone(),
                Some(n) => n.into(),
                None => it
                    .logical
                    .file_name()
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from(".")),
            };
            if opts.extract_archives && it.md.is_file() && archive::is_archive(&host) {
                // The archive's entries keep their own owners and modes: buildah's copier
                // streams them through untouched, so `ADD --chown/--chmod` of a local
                // archive changes nothing (and two such builds share a cache entry).
                let rw = archive::Rewrite {
                    owner: None,
                    chmod: None,
                    timestamp: opts.timestamp,
                };
                archive::extract(archive::open(&host)?, &mut sink, rw, &host)?;
                continue;
            }
            copy_one(&host, &it.md, &name, &mut sink, opts, &mut hardlinks)?;
        }
    }
    let items = sink.items();
    let digest = sink.finish()?;
    Ok(PutSummary {
        content_type,
        digest: Some(digest),
        items,
    })
}

fn meta_of(host: &Path, md: &std::fs::Metadata, opts: &PutOptions, is_link: bool) -> sink::Meta {
    let (uid, gid) = opts.owner.unwrap_or_else(|| match &opts.source_id_maps {
        Some(m) => m.to_container(md.uid(), md.gid()),
        None => (md.uid(), md.gid()),
    });
    let mut own = md.mode() & 0o7777;
    if opts.strip_setid && opts.chmod.is_none() {
        own &= !(0o4000 | 0o2000);
    }
    let mode = match &opts.chmod {
        Some(c) if !is_link => c.apply(own, md.is_dir()),
        _ => own,
    };
    let mtime = match opts.timestamp {
        Some(t) => (t, 0),
        None => (md.mtime(), md.mtime_nsec() as u32),
    };
    let mut xattrs = Vec::new();
    if let Ok(names) = xattr::list(host) {
        for n in names {
            if n == "security.selinux" {
                continue;
            }
            if let Ok(Some(v)) = xattr::get(host, &n) {
                xattrs.push((n, v));
            }
        }
    }
    sink::Meta {
        mode,
        uid,
        gid,
        mtime,
        xattrs,
    }
}

/// Copy one non-directory item (already resolved) to `name` below the sink.
fn copy_one(
    host: &Path,
    md: &std::fs::Metadata,
    name: &Path,
    sink: &mut sink::Sink<'_>,
    opts: &PutOptions,
    hardlinks: &mut std::collections::HashMap<(u64, u64), PathBuf>,
) -> Result<()> {
    let ft = md.file_type();
    if ft.is_symlink() {
        let target = std::fs::read_link(host).at("reading link", host)?;
        return sink.symlink(name, &target, &meta_of(host, md, opts, true));
    }
    if ft.is_socket() {
        tracing::debug!("skipping socket {}", host.display());
        return Ok(());
    }
    if ft.is_file() {
        if md.nlink() > 1 {
            let key = (md.dev(), md.ino());
            if let Some(first) = hardlinks.get(&key) {
                return sink.hardlink(name, &first.clone());
            }
            hardlinks.insert(key, name.to_path_buf());
        }
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(host)
            .at("opening", host)?;
        let now = f.metadata().at("checking", host)?;
        if now.ino() != md.ino() || now.dev() != md.dev() || !now.is_file() {
            return Err(Error::invalid(format!(
                "{}: file changed while copying",
                host.display()
            )));
        }
        return sink.file(name, &meta_of(host, md, opts, false), &mut f);
    }
    let kind = if ft.is_fifo() {
        rustix::fs::FileType::Fifo
    } else if ft.is_char_device() {
        rustix::fs::FileType::CharacterDevice
    } else if ft.is_block_device() {
        rustix::fs::FileType::BlockDevice
    } else {
        return Ok(());
    };
    match sink.special(name, kind, md.rdev(), &meta_of(host, md, opts, false)) {
        // Device nodes cannot be made without privilege; buildah skips them there too.
        Err(e) if kind != rustix::fs::FileType::Fifo && !rustix::process::geteuid().is_root() => {
            tracing::debug!("skipping device node {}: {e}", host.display());
            Ok(())
        }
        r => r,
    }
}

/// Copy the contents of the directory `host` (root-relative `resolved`) to `prefix` below
/// the sink.
#[allow(clippy::too_many_arguments)]
fn copy_tree(
    tree_relative: bool,
    resolved: &Path,
    host: &Path,
    prefix: &Path,
    sink: &mut sink::Sink<'_>,
    matcher: &ignore::Matcher,
    opts: &PutOptions,
    hardlinks: &mut std::collections::HashMap<(u64, u64), PathBuf>,
) -> Result<()> {
    let mut it = walkdir::WalkDir::new(host)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter();
    while let Some(e) = it.next() {
        let e = match e {
            Ok(e) => e,
            Err(err) => {
                let p = err
                    .path()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| host.to_path_buf());
                let ioe = err
                    .into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("walk error"));
                if ioe.kind() == std::io::ErrorKind::NotFound {
                    tracing::debug!("file disappeared while reading: {}", p.display());
                    continue;
                }
                return Err(ioe).at("reading", &p);
            }
        };
        let sub = e
            .path()
            .strip_prefix(host)
            .unwrap_or(e.path())
            .to_path_buf();
        let rel = slash(&resolved.join(&sub));
        let md = match e.path().symlink_metadata() {
            Ok(m) => m,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err).at("checking", e.path()),
        };
        let sub_rel = slash(&sub);
        let in_tree = tree_relative && matcher.excluded(&sub_rel);
        if !matcher.is_empty() && (matcher.excluded(&rel) || in_tree) {
            let keep_looking = matcher.has_exceptions()
                && (matcher.may_include_under(&rel)
                    || (tree_relative && matcher.may_include_under(&sub_rel)));
            if md.is_dir() && !keep_looking {
                it.skip_current_dir();
            }
            continue;
        }
        let out = prefix.join(&sub);
        if md.is_dir() {
            sink.dir(&out, &meta_of(e.path(), &md, opts, false))?;
        } else {
            copy_one(e.path(), &md, &out, sink, opts, hardlinks)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
