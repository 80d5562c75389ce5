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
use std::io::Read;
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

    /// Why `self` (the wanted key) is not `other` (a cached one), in words.
    pub fn explain(&self, other: &CacheEntry) -> Vec<String> {
        let mut out = Vec::new();
        if self.parent != other.parent {
            out.push(format!(
                "the parent image differs ({} vs {})",
                self.parent, other.parent
            ));
        }
        if self.steps != other.steps {
            let a: Vec<&String> = self
                .steps
                .iter()
                .filter(|s| !other.steps.contains(s))
                .collect();
            for s in a {
                out.push(format!("the instruction {s:?} is new"));
            }
            if out.is_empty() {
                out.push("the instructions differ".into());
            }
        }
        for (k, v) in &self.args {
            match other.args.get(k) {
                Some(o) if o == v => {}
                Some(o) => out.push(format!("build arg {k} changed ({o:?} → {v:?})")),
                None => out.push(format!("build arg {k} is new ({v:?})")),
            }
        }
        for k in other.args.keys().filter(|k| !self.args.contains_key(*k)) {
            out.push(format!("build arg {k} is no longer used"));
        }
        for (p, d) in &self.sources {
            match other.sources.get(p) {
                Some(o) if o == d => {}
                Some(_) => out.push(format!("source {p} changed")),
                None => out.push(format!("source {p} is new")),
            }
        }
        for p in other
            .sources
            .keys()
            .filter(|p| !self.sources.contains_key(*p))
        {
            out.push(format!("source {p} is gone"));
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

/// Content digests of the files under `context/source` (names, modes, link targets, data),
/// one per file, keyed by their context-relative path. A source with glob characters
/// digests the whole context.
pub fn source_digests(context: &Path, source: &str) -> Result<BTreeMap<String, String>> {
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
    for entry in walkdir::WalkDir::new(&start).sort_by_file_name() {
        let entry = entry.map_err(|e| {
            crate::error::BuildError::invalid(format!("walking {}: {e}", start.display()))
        })?;
        let p = entry.path();
        // A source named directly is followed, as COPY follows it.
        let md = if entry.depth() == 0 {
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
        let mut h = Sha256::new();
        use std::os::unix::fs::MetadataExt;
        h.update(format!("{:o}\0", md.mode()));
        if md.file_type().is_symlink() {
            let t = std::fs::read_link(p).map_err(io_at("reading", p))?;
            h.update(t.to_string_lossy().as_bytes());
        } else if md.is_file() {
            let mut f = std::fs::File::open(p).map_err(io_at("reading", p))?;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = f.read(&mut buf).map_err(io_at("reading", p))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
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
        assert_eq!(b.explain(&a), ["source a changed"]);
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
        let one = source_digests(d.path(), "dir").unwrap();
        assert!(one.contains_key("dir/f"));
        std::fs::write(d.path().join("dir/f"), "two").unwrap();
        let two = source_digests(d.path(), "dir").unwrap();
        assert_ne!(one["dir/f"], two["dir/f"]);
        assert_eq!(one["dir"], two["dir"]);
        assert!(source_digests(d.path(), "../x").unwrap().is_empty());
        // A symlink named as a source is followed (COPY copies its target's content).
        std::os::unix::fs::symlink("dir/f", d.path().join("link")).unwrap();
        let l1 = source_digests(d.path(), "link").unwrap();
        std::fs::write(d.path().join("dir/f"), "three").unwrap();
        let l2 = source_digests(d.path(), "link").unwrap();
        assert_ne!(l1["link"], l2["link"]);
    }
}
