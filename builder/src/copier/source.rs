//! Finding sources: paths and globs resolved under a source root (the host `/`, a context
//! directory, or another container's rootfs), with symlinks followed inside that root only.
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use super::pattern::{has_wildcards, Pattern};
use super::CopyError;
use crate::error::{Error, IoResultExt, Result};
use crate::rootfs::components;

/// Symlinks followed while resolving one source.
const MAX_LINKS: usize = 40;

/// Where sources are looked up.
#[derive(Debug, Clone)]
pub struct SourceRoot {
    /// The root directory (the host's `/`, a context directory, or a mounted rootfs).
    pub dir: PathBuf,
    /// Relative sources are relative to this directory (below `dir`).
    pub cwd: PathBuf,
    /// Refuse (rather than clamp at the root) anything that leaves `dir` through `..` or a
    /// link: true for a context directory.
    pub refuse_escapes: bool,
    /// Also match excludes against paths relative to each copied directory (host sources
    /// without a context directory, where root-relative patterns would start at `/`).
    pub excludes_in_tree: bool,
}

impl SourceRoot {
    /// Sources on the host: relative ones from `cwd`, nothing refused.
    pub fn host(cwd: &Path) -> SourceRoot {
        SourceRoot {
            dir: PathBuf::from("/"),
            cwd: cwd.to_path_buf(),
            refuse_escapes: false,
            excludes_in_tree: true,
        }
    }

    /// Sources confined to a context directory (absolute sources name paths in it).
    pub fn context(dir: &Path) -> SourceRoot {
        SourceRoot {
            dir: dir.to_path_buf(),
            cwd: dir.to_path_buf(),
            refuse_escapes: true,
            excludes_in_tree: false,
        }
    }

    /// Sources in a rootfs (`--from`): absolute and relative both start at its root, and
    /// links resolve as they would inside it.
    pub fn rootfs(dir: &Path) -> SourceRoot {
        SourceRoot {
            dir: dir.to_path_buf(),
            cwd: dir.to_path_buf(),
            refuse_escapes: false,
            excludes_in_tree: false,
        }
    }

    fn escapes(&self, shown: &str) -> Error {
        CopyError::Escapes {
            path: shown.to_string(),
            context: self.dir.display().to_string(),
        }
        .into()
    }

    /// The host path of a root-relative path.
    pub fn host_path(&self, rel: &Path) -> PathBuf {
        if rel.as_os_str().is_empty() {
            self.dir.clone()
        } else {
            self.dir.join(rel)
        }
    }

    /// `p` below the root's host path (as given, or canonical), if it is there.
    fn strip_root<'p>(&self, p: &'p Path) -> Option<&'p Path> {
        if self.dir == Path::new("/") {
            return None;
        }
        if let Ok(r) = p.strip_prefix(&self.dir) {
            return Some(r);
        }
        let canon = std::fs::canonicalize(&self.dir).ok()?;
        p.strip_prefix(canon).ok()
    }

    /// The root-relative components of a source as the user typed it.
    pub(crate) fn source_components(&self, src: &str) -> Result<Vec<OsString>> {
        let p = Path::new(src);
        let full = if p.is_absolute() {
            // A host path inside the root names that place; any other absolute path is
            // taken as rooted at the root (as a chrooted lookup would).
            match self.strip_root(p) {
                Some(r) => r.to_path_buf(),
                None => p.to_path_buf(),
            }
        } else {
            let cwd_rel = self.cwd.strip_prefix(&self.dir).unwrap_or(Path::new(""));
            cwd_rel.join(p)
        };
        let comps = components(&full);
        if self.refuse_escapes {
            let mut depth = 0i64;
            for c in &comps {
                depth += if c == ".." { -1 } else { 1 };
                if depth < 0 {
                    return Err(self.escapes(src));
                }
            }
        }
        Ok(comps)
    }

    /// Resolve root-relative components to a canonical root-relative path, following links
    /// inside the root (the last one only with `follow_last`).
    pub(crate) fn resolve(
        &self,
        comps: &[OsString],
        follow_last: bool,
        shown: &str,
    ) -> Result<PathBuf> {
        let mut queue: std::collections::VecDeque<OsString> = comps.iter().cloned().collect();
        let mut cur: Vec<OsString> = Vec::new();
        let mut links = 0;
        while let Some(name) = queue.pop_front() {
            if name == ".." {
                if cur.pop().is_none() && self.refuse_escapes {
                    return Err(self.escapes(shown));
                }
                continue;
            }
            let last = queue.is_empty();
            let mut here: PathBuf = cur.iter().collect();
            here.push(&name);
            let host = self.host_path(&here);
            let md = std::fs::symlink_metadata(&host).at("checking source", &host)?;
            if md.file_type().is_symlink() && (!last || follow_last) {
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP))
                        .at("checking source", &host);
                }
                let target = std::fs::read_link(&host).at("reading link", &host)?;
                let tcomps = if target.is_absolute() {
                    cur.clear();
                    match self.strip_root(&target) {
                        Some(r) => components(r),
                        None if self.refuse_escapes => return Err(self.escapes(shown)),
                        None => components(&target),
                    }
                } else {
                    components(&target)
                };
                for c in tcomps.into_iter().rev() {
                    queue.push_front(c);
                }
                continue;
            }
            if !last && !md.is_dir() {
                return Err(io::Error::from_raw_os_error(libc::ENOTDIR))
                    .at("checking source", &host);
            }
            cur.push(name);
        }
        Ok(cur.iter().collect())
    }

    /// Expand a source (a path or a glob) to its matches, sorted, each as (the
    /// root-relative path it was found at, that path with links resolved).
    pub(crate) fn expand(&self, src: &str, follow_top: bool) -> Result<Vec<(PathBuf, PathBuf)>> {
        let comps = self.source_components(src)?;
        let mut out = Vec::new();
        self.expand_from(
            src,
            &comps,
            0,
            PathBuf::new(),
            PathBuf::new(),
            follow_top,
            &mut out,
        )?;
        out.sort();
        out.dedup();
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn expand_from(
        &self,
        src: &str,
        comps: &[OsString],
        i: usize,
        logical: PathBuf,
        resolved: PathBuf,
        follow_top: bool,
        out: &mut Vec<(PathBuf, PathBuf)>,
    ) -> Result<()> {
        if i == comps.len() {
            out.push((logical, resolved));
            return Ok(());
        }
        let c = comps[i].to_string_lossy().into_owned();
        let last = i + 1 == comps.len();
        let step = |name: &OsString| -> Result<PathBuf> {
            let mut rc = components(&resolved);
            rc.push(name.clone());
            self.resolve(&rc, !last || follow_top, src)
        };
        if c == ".." || !has_wildcards(&c) {
            let lit = OsString::from(unescape(&c));
            let r = step(&lit)?;
            let l = if c == ".." {
                logical.parent().map(Path::to_path_buf).unwrap_or_default()
            } else {
                logical.join(&lit)
            };
            return self.expand_from(src, comps, i + 1, l, r, follow_top, out);
        }
        if c == "**" {
            // zero or more directories (links not followed)
            return self.expand_double(src, comps, i, logical, resolved, follow_top, out);
        }
        let pat = Pattern::new(&c).map_err(|e| Error::invalid(format!("{src}: {e}")))?;
        for (name, _) in list(&self.host_path(&resolved))? {
            if pat.matches(&name.to_string_lossy()) {
                let r = match step(&name) {
                    Ok(r) => r,
                    // a dangling link or a non-directory where more components follow
                    Err(Error::Io { .. }) if !last => continue,
                    Err(e) => return Err(e),
                };
                let r =
                    self.expand_from(src, comps, i + 1, logical.join(&name), r, follow_top, out);
                no_match_is_fine(r)?;
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn expand_double(
        &self,
        src: &str,
        comps: &[OsString],
        i: usize,
        logical: PathBuf,
        resolved: PathBuf,
        follow_top: bool,
        out: &mut Vec<(PathBuf, PathBuf)>,
    ) -> Result<()> {
        let r = self.expand_from(
            src,
            comps,
            i + 1,
            logical.clone(),
            resolved.clone(),
            follow_top,
            out,
        );
        no_match_is_fine(r)?;
        for (name, is_dir) in list(&self.host_path(&resolved))? {
            if is_dir {
                self.expand_double(
                    src,
                    comps,
                    i,
                    logical.join(&name),
                    resolved.join(&name),
                    follow_top,
                    out,
                )?;
            }
        }
        Ok(())
    }
}

/// Below a wildcard, a later component that does not exist is just no match.
fn no_match_is_fine(r: Result<()>) -> Result<()> {
    match r {
        Err(Error::Io { source, .. })
            if source.kind() == io::ErrorKind::NotFound
                || source.raw_os_error() == Some(libc::ENOTDIR) =>
        {
            Ok(())
        }
        r => r,
    }
}

/// Entries of a directory, sorted, with whether each is a real directory (not a link).
fn list(dir: &Path) -> Result<Vec<(OsString, bool)>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e)
            if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) =>
        {
            return Ok(Vec::new())
        }
        Err(e) => return Err(e).at("reading directory", dir),
    };
    let mut v = Vec::new();
    for e in rd {
        let e = e.at("reading directory", dir)?;
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        v.push((e.file_name(), is_dir));
    }
    v.sort();
    Ok(v)
}

/// Drop glob escapes from a literal component.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut esc = false;
    for c in s.chars() {
        if c == '\\' && !esc {
            esc = true;
            continue;
        }
        esc = false;
        out.push(c);
    }
    out
}
