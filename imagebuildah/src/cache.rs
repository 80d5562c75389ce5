//! `--layers`: every step that changes the filesystem (RUN, COPY, ADD, WORKDIR) and the
//! last step of a stage end in an intermediate image; a later build reuses it when its key
//! is the same.
//!
//! ```text
//! key = sha256(parent image ID, the steps since the parent as written, the build args
//!              they use (name=value), the content digest of each COPY/ADD source path)
//! stored in the intermediate image's record metadata: {"hodCache": CacheEntry}
//! lookup: the images whose entry has this parent and this key ─ hit: "--> Using cache ID"
//! --explain-cache: on a miss, the closest entry with the same parent, and what differed
//! ```
use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest as _, Sha256};

use crate::error::{io_at, Result};

/// What an intermediate image was made from.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheEntry {
    /// The image the steps ran on (`scratch` for none).
    pub parent: String,
    /// The steps as written, in order.
    pub steps: Vec<String>,
    /// Build args the steps use, `name → value`.
    pub args: BTreeMap<String, String>,
    /// COPY/ADD sources, `path → content digest`.
    pub sources: BTreeMap<String, String>,
}

impl CacheEntry {
    /// The cache key.
    pub fn key(&self) -> String {
        let data = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(&data))
    }

    /// The record-metadata form.
    pub fn to_metadata(&self) -> String {
        serde_json::json!({ "hodCache": self, "hodCacheKey": self.key() }).to_string()
    }

    /// The entry an image record's metadata holds, if any.
    pub fn from_metadata(m: &str) -> Option<CacheEntry> {
        let v: serde_json::Value = serde_json::from_str(m).ok()?;
        serde_json::from_value(v.get("hodCache")?.clone()).ok()
    }

    /// The instruction keyword of the (last) step: `COPY`, `ADD`, `RUN`, …
    pub fn keyword(&self) -> String {
        self.steps
            .last()
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or("")
            .to_ascii_uppercase()
    }

    /// Why `self` (the wanted key) is not `other` (a cached one), in words.
    pub fn explain(&self, other: &CacheEntry) -> Vec<String> {
        let mut out = Vec::new();
        if self.parent != other.parent {
            out.push(format!(
                "parent image changed (cached on {}, now {})",
                crate::build::short(&other.parent),
                crate::build::short(&self.parent)
            ));
        }
        if self.steps != other.steps {
            out.push(format!(
                "instruction changed (cached: {:?})",
                other.steps.join("; ")
            ));
        }
        for (k, v) in &self.args {
            match other.args.get(k) {
                Some(o) if o == v => {}
                Some(o) => out.push(format!("build arg {k} changed ({o:?} → {v:?})")),
                None => out.push(format!("build arg {k} is new ({v:?})")),
            }
        }
        for k in other.args.keys().filter(|k| !self.args.contains_key(*k)) {
            out.push(format!("build arg {k} is no longer set or used"));
        }
        let kw = self.keyword();
        for (p, d) in &self.sources {
            match other.sources.get(p) {
                Some(o) if o == d => {}
                Some(_) => out.push(format!("{kw} source {p} changed")),
                None => out.push(format!("{kw} source {p} is new")),
            }
        }
        for p in other
            .sources
            .keys()
            .filter(|p| !self.sources.contains_key(*p))
        {
            out.push(format!("{kw} source {p} is gone"));
        }
        out
    }
}

/// The cached image for `want`, if the store has one.
pub fn lookup(store: &builder::Store, want: &CacheEntry) -> Result<Option<String>> {
    let key = want.key();
    for img in store.images()? {
        if let Some(e) = CacheEntry::from_metadata(&img.metadata) {
            if e.parent == want.parent && e.key() == key {
                return Ok(Some(img.id));
            }
        }
    }
    Ok(None)
}

/// The cached entries made on `parent` (for `--explain-cache`), newest last.
pub fn candidates(store: &builder::Store, parent: &str) -> Result<Vec<CacheEntry>> {
    Ok(store
        .images()?
        .iter()
        .filter_map(|i| CacheEntry::from_metadata(&i.metadata))
        .filter(|e| e.parent == parent)
        .collect())
}

/// What a COPY/ADD source digest needs besides the context: the ignore patterns in force
/// and the stat-keyed digest cache.
pub struct SourceDigester<'a> {
    /// The context's ignore rules (`.containerignore`, `.dockerignore`, `--ignorefile`).
    pub ignore: builder::copier::ignore::Matcher,
    /// File content digests, reused while a file's stat data is unchanged.
    pub digests: &'a mut crate::digests::DigestCache,
    /// Follow a symlink named as the source (a context: COPY follows it); not in another
    /// stage's rootfs, where an absolute link would resolve on the host.
    pub follow_named: bool,
}

/// Content digests of the files under `context/source` (names, modes, owners, link
/// targets, data), one per file, keyed by their context-relative path; files the ignore
/// rules exclude are left out. A source with glob characters digests the whole context.
pub fn source_digests(
    context: &Path,
    source: &str,
    d: &mut SourceDigester<'_>,
) -> Result<BTreeMap<String, String>> {
    use std::os::unix::fs::MetadataExt;
    let clean = builder::rootfs::clean_container_path(&format!("/{source}"));
    let rel = clean.strip_prefix("/").unwrap_or(&clean).to_path_buf();
    let start = if source.contains(['*', '?', '[']) {
        context.to_path_buf()
    } else {
        context.join(&rel)
    };
    let mut out = BTreeMap::new();
    if std::fs::symlink_metadata(&start).is_err() {
        return Ok(out);
    }
    let mut walk = walkdir::WalkDir::new(&start)
        .sort_by_file_name()
        .into_iter();
    while let Some(entry) = walk.next() {
        let entry = entry.map_err(|e| {
            crate::error::BuildError::invalid(format!("walking {}: {e}", start.display()))
        })?;
        let p = entry.path();
        // A source named directly is followed, as COPY follows it.
        let md = if entry.depth() == 0 && d.follow_named {
            std::fs::metadata(p).map_err(io_at("reading", p))?
        } else {
            entry.metadata().map_err(|e| {
                crate::error::BuildError::invalid(format!("reading {}: {e}", p.display()))
            })?
        };
        let name = p
            .strip_prefix(context)
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned();
        if !name.is_empty() && d.ignore.excluded(&name) {
            if md.is_dir() && !d.ignore.may_include_under(&name) {
                walk.skip_current_dir();
            }
            continue;
        }
        let mut h = Sha256::new();
        h.update(format!("{:o} {}:{}\0", md.mode(), md.uid(), md.gid()));
        if md.file_type().is_symlink() {
            let t = std::fs::read_link(p).map_err(io_at("reading", p))?;
            h.update(t.to_string_lossy().as_bytes());
        } else if md.is_file() {
            h.update(d.digests.file_digest(p, &md)?.as_bytes());
        } else if !md.is_dir() {
            continue;
        }
        out.insert(name, hex::encode(h.finalize()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_explanations() {
        let a = CacheEntry {
            parent: "p".into(),
            steps: vec!["COPY a /a".into()],
            args: [("X".to_string(), "1".to_string())].into(),
            sources: [("a".to_string(), "d1".to_string())].into(),
        };
        let mut b = a.clone();
        assert_eq!(a.key(), b.key());
        b.sources.insert("a".into(), "d2".into());
        assert_ne!(a.key(), b.key());
        assert_eq!(b.explain(&a), ["COPY source a changed"]);
        b.args.insert("X".into(), "2".into());
        assert!(b
            .explain(&a)
            .contains(&"build arg X changed (\"1\" → \"2\")".to_string()));
        assert_eq!(CacheEntry::from_metadata(&a.to_metadata()), Some(a));
    }

    #[test]
    fn source_digests_follow_content() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("dir")).unwrap();
        std::fs::write(d.path().join("dir/f"), "one").unwrap();
        let mut dc = crate::digests::DigestCache::in_memory();
        let mut sd = SourceDigester {
            ignore: builder::copier::ignore::Matcher::new(&["dir/ignored"]).unwrap(),
            digests: &mut dc,
            follow_named: true,
        };
        std::fs::write(d.path().join("dir/ignored"), "x").unwrap();
        let one = source_digests(d.path(), "dir", &mut sd).unwrap();
        assert!(!one.contains_key("dir/ignored"));
        assert!(one.contains_key("dir/f"));
        std::fs::write(d.path().join("dir/f"), "two").unwrap();
        std::fs::write(d.path().join("dir/ignored"), "changed").unwrap();
        let two = source_digests(d.path(), "dir", &mut sd).unwrap();
        assert_ne!(one["dir/f"], two["dir/f"]);
        assert_eq!(one["dir"], two["dir"]);
        assert!(source_digests(d.path(), "../x", &mut sd)
            .unwrap()
            .is_empty());
        // A symlink named as a source is followed (COPY copies its target's content).
        std::os::unix::fs::symlink("dir/f", d.path().join("link")).unwrap();
        let l1 = source_digests(d.path(), "link", &mut sd).unwrap();
        std::fs::write(d.path().join("dir/f"), "three").unwrap();
        let l2 = source_digests(d.path(), "link", &mut sd).unwrap();
        assert_ne!(l1["link"], l2["link"]);
    }
}
