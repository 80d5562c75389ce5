//! A small persistent blob-info cache (containers/image's `BlobInfoCache`): which
//! compressed blob holds which uncompressed layer (diff_id) with which compression, and in
//! which registry repositories a blob was seen. It lets a push skip a layer the registry
//! already has under its compressed digest (the local store knows only the diff_id), and
//! mount a blob from another repository of the same registry instead of uploading it.
//!
//! ```text
//!  copy_image ──record_compressed(blob, diff_id, c)──▶ ┐
//!  registry source/dest ──record_location(blob, host, repo)──▶ memory ──flush()──▶ JSON file
//!  registry dest ◀──compressed_for(diff_id, c), locations(blob)── ┘   (merged, temp + rename)
//! ```
//! A cache only: a lost or unreadable file costs a re-upload, never correctness (every
//! candidate is checked against the registry, and blobs are verified by digest).
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::archive::Compression;
use crate::image::Digest;

/// Entries kept per map; the oldest half is dropped past it.
const MAX_ENTRIES: usize = 20_000;

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Data {
    /// compressed digest → (uncompressed digest, compression name).
    #[serde(default)]
    compressed: BTreeMap<String, (String, String)>,
    /// blob digest → ["host/repository", …].
    #[serde(default)]
    locations: BTreeMap<String, Vec<String>>,
}

struct Cache {
    data: Data,
    dirty: bool,
    loaded: bool,
}

static CACHE: Mutex<Cache> = Mutex::new(Cache {
    data: Data {
        compressed: BTreeMap::new(),
        locations: BTreeMap::new(),
    },
    dirty: false,
    loaded: false,
});

/// The cache file: `/var/lib/containers/cache/hod-blob-info-cache.json` for root (next to
/// containers/image's own), else `$XDG_CACHE_HOME/hod/blob-info-cache.json` (`~/.cache/…`).
fn path() -> Option<PathBuf> {
    if rustix::process::geteuid().is_root() {
        return Some(PathBuf::from(
            "/var/lib/containers/cache/hod-blob-info-cache.json",
        ));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("hod/blob-info-cache.json"))
}

fn read_file() -> Data {
    path()
        .and_then(|p| crate::transport::read_bounded(&p, 64 << 20).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn with<T>(f: impl FnOnce(&mut Cache) -> T) -> T {
    let mut g = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if !g.loaded {
        g.data = read_file();
        g.loaded = true;
    }
    f(&mut g)
}

fn compression_name(c: Compression) -> &'static str {
    match c {
        Compression::Gzip => "gzip",
        Compression::Zstd => "zstd",
        _ => "other",
    }
}

/// Record that `blob` is `diff_id` compressed with `c`.
pub fn record_compressed(blob: &Digest, diff_id: &Digest, c: Compression) {
    if blob == diff_id || !matches!(c, Compression::Gzip | Compression::Zstd) {
        return;
    }
    with(|cache| {
        let v = (diff_id.to_string(), compression_name(c).to_string());
        if cache.data.compressed.get(&blob.to_string()) != Some(&v) {
            cache.data.compressed.insert(blob.to_string(), v);
            cache.dirty = true;
        }
    });
}

/// Record that `blob` is in `host`/`repository`.
pub fn record_location(blob: &Digest, host: &str, repository: &str) {
    let loc = format!("{host}/{repository}");
    with(|cache| {
        let v = cache.data.locations.entry(blob.to_string()).or_default();
        if !v.contains(&loc) {
            v.push(loc);
            cache.dirty = true;
        }
    });
}

/// Known blobs holding `diff_id` compressed with `c`.
pub fn compressed_for(diff_id: &Digest, c: Compression) -> Vec<Digest> {
    let want = (diff_id.to_string(), compression_name(c).to_string());
    with(|cache| {
        cache
            .data
            .compressed
            .iter()
            .filter(|(_, v)| **v == want)
            .filter_map(|(k, _)| Digest::parse(k).ok())
            .collect()
    })
}

/// Repositories of `host` other than `except` known to hold `blob`.
pub fn repositories_with(blob: &Digest, host: &str, except: &str) -> Vec<String> {
    let prefix = format!("{host}/");
    with(|cache| {
        cache
            .data
            .locations
            .get(&blob.to_string())
            .map(|v| {
                v.iter()
                    .filter_map(|l| l.strip_prefix(&prefix))
                    .filter(|r| *r != except)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    })
}

fn trim<V>(m: &mut BTreeMap<String, V>) {
    if m.len() > MAX_ENTRIES {
        let drop: Vec<String> = m.keys().take(m.len() - MAX_ENTRIES / 2).cloned().collect();
        for k in drop {
            m.remove(&k);
        }
    }
}

/// Write what this process learnt, merged with what others wrote meanwhile (temp + rename).
/// Failures are logged and ignored: it is a cache.
pub fn flush() {
    let Some(p) = path() else { return };
    with(|cache| {
        if !cache.dirty {
            return;
        }
        let mut on_disk = read_file();
        for (k, v) in &cache.data.compressed {
            on_disk.compressed.insert(k.clone(), v.clone());
        }
        for (k, v) in &cache.data.locations {
            let e = on_disk.locations.entry(k.clone()).or_default();
            for l in v {
                if !e.contains(l) {
                    e.push(l.clone());
                }
            }
        }
        trim(&mut on_disk.compressed);
        trim(&mut on_disk.locations);
        let write = || -> std::io::Result<()> {
            let dir = crate::transport::parent_dir(&p);
            std::fs::create_dir_all(&dir)?;
            let mut t = tempfile::Builder::new()
                .prefix(".tmp-blob-cache-")
                .tempfile_in(&dir)?;
            std::io::Write::write_all(t.as_file_mut(), &serde_json::to_vec(&on_disk)?)?;
            t.persist(&p).map_err(|e| e.error)?;
            Ok(())
        };
        match write() {
            Ok(()) => {
                cache.data = on_disk;
                cache.dirty = false;
            }
            Err(e) => tracing::debug!("writing blob info cache {}: {e}", p.display()),
        }
    });
}
