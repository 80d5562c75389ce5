//! A store in containers/storage's on-disk format, shared with podman, skopeo and CRI-O.
//!
//! ```text
//! <root>/storage.lock
//! <root>/<driver>-layers/layers.json, layers.lock, <id>.tar-split.gz
//! <root>/<driver>-images/images.json, images.lock, <id>/<big-data files>
//! <root>/<driver>-containers/containers.json, containers.lock, <id>/userdata/
//! <root>/overlay/<id>/{diff,work,merged,link,lower}, <root>/overlay/l/<short> -> ../<id>/diff
//! <root>/vfs/dir/<id>/
//! <root>/<driver>/tempdirs/temp-dir-<n>/, lock-<n>   (layer directories being deleted)
//! <runroot>/<driver>-layers/mountpoints.json, <runroot>/<driver>-containers/<id>/userdata/
//! ```
//!
//! Locks are fcntl record locks on the whole lock file, taken as open-file-description locks
//! (`F_OFD_SETLKW`), which conflict with the classic POSIX locks containers/storage takes, so
//! hod and podman exclude each other (and so do threads of one hod). Lock order is
//! containers/storage's: `storage.lock` → `layers.lock` (→ `mountpoints.lock`) → `images.lock`
//! → `containers.lock`; `userns.lock` is created but not used. Every read-modify-write re-reads
//! the JSON under the exclusive lock, records a fresh last-write token in the lock file
//! (`pkg/lockfile`), then writes temp file + fsync + rename (0600). A layer being written (or
//! deleted) is flagged `incomplete` in layers.json first; `Store::open` deletes incomplete
//! layers left by a killed process, and finishes removing the containers whose layer that was
//! or whose layer is gone (a container's layer goes before its record, so a killed `rm` leaves
//! such a record). A deleted layer's directory is moved into `tempdirs` under the locks and
//! deleted after they are released (containers/storage's `internal/tempdir` layout, see
//! [`driver::tempdirs`]); `Store::open` deletes what a killed deletion left there.
//!
//! JSON is written as Go's `encoding/json` writes c/storage's structs (field order, omitted
//! empty fields, `\u003c`-style escapes, RFC 3339 times without trailing zeros), so the files
//! match what podman 4.3 / buildah 1.28 write. `volatile-layers.json` and
//! `volatile-containers.json` (newer containers/storage) are read and kept if present.
//!
//! The facade is deliberately small: records, lookups, layer put/diff/mount, images,
//! containers. Everything else (commit, push, pull) is built on it.
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::image::Digest;

mod containers;
pub mod driver;
mod images;
pub(crate) use images::lookup_index as lookup_image_index;
pub mod json;
mod layers;
pub mod lock;
pub mod paths;

/// Store-level errors (the object is always named).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A metadata file is corrupt.
    #[error("parsing {}: {message}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Ambiguous short ID.
    #[error("{0}: ambiguous ID prefix")]
    Ambiguous(String),
    /// A layer is still used.
    #[error("layer {layer} is in use by {by}")]
    LayerInUse {
        /// The layer ID.
        layer: String,
        /// What uses it.
        by: String,
    },
    /// Unsupported driver or option.
    #[error("{0}")]
    Unsupported(String),
    /// An object with this ID already exists.
    #[error("{kind} {id} already exists")]
    Duplicate {
        /// "layer", "image" or "container".
        kind: &'static str,
        /// The ID.
        id: String,
    },
    /// The layer's uncompressed content is not what the caller expected.
    #[error("layer content digest {actual} does not match the expected {expected}")]
    DigestMismatch {
        /// The digest the caller expected.
        expected: Digest,
        /// What the stream hashed to.
        actual: Digest,
    },
    /// A rootless user's store directory belongs to someone else.
    #[error("opening store {}: it is owned by another user (a rootless hod needs a store of its own: use --root, or the default ~/.local/share/containers/storage)", path.display())]
    NotOwned {
        /// The directory.
        path: PathBuf,
    },
}

/// Which graph driver lays out layer contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DriverKind {
    /// Overlayfs: each layer a `diff/` dir, containers mounted as overlay.
    #[default]
    Overlay,
    /// Full copies: each layer a complete tree.
    Vfs,
}

impl DriverKind {
    /// `overlay` or `vfs`.
    pub fn name(self) -> &'static str {
        match self {
            DriverKind::Overlay => "overlay",
            DriverKind::Vfs => "vfs",
        }
    }
    /// Parse a driver name (`overlay`, `overlay2`, `vfs`).
    pub fn parse(s: &str) -> Result<DriverKind> {
        match s {
            "overlay" | "overlay2" => Ok(DriverKind::Overlay),
            "vfs" => Ok(DriverKind::Vfs),
            other => Err(StoreError::Unsupported(format!(
                "storage driver {other:?} is not supported (use overlay or vfs)"
            ))
            .into()),
        }
    }
}

/// A rootless user's store directories must be theirs (root inside hod's user namespace, or
/// the user's own UID outside it); one that does not exist yet is created as theirs.
fn check_owned(dir: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(dir) {
        Ok(m) if m.uid() != nix::unistd::geteuid().as_raw() => Err(StoreError::NotOwned {
            path: dir.to_path_buf(),
        }
        .into()),
        _ => Ok(()),
    }
}

/// Where the store lives and how it is laid out.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct StoreOptions {
    /// Persistent root (`/var/lib/containers/storage`).
    pub root: PathBuf,
    /// Run root for volatile state (`/run/containers/storage`).
    pub run_root: PathBuf,
    /// The graph driver.
    pub driver: DriverKind,
    /// `driver.option=value` pairs (`overlay.mount_program=…`, `overlay.mountopt=…`).
    pub driver_options: Vec<String>,
}

/// One entry of `layers.json` (field names and order as containers/storage writes them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    /// 64-hex ID.
    pub id: String,
    /// Names (rarely used for layers).
    #[serde(
        default,
        deserialize_with = "json::nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub names: Vec<String>,
    /// Parent layer ID.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub parent: String,
    /// Free-form metadata.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub metadata: String,
    /// SELinux mount label.
    #[serde(
        default,
        rename = "mountlabel",
        skip_serializing_if = "String::is_empty"
    )]
    pub mount_label: String,
    /// Creation time, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Digest of the blob the layer came from (possibly compressed).
    #[serde(
        default,
        rename = "compressed-diff-digest",
        deserialize_with = "nullable_digest",
        skip_serializing_if = "Option::is_none"
    )]
    pub compressed_diff_digest: Option<Digest>,
    /// Size of that blob.
    #[serde(
        default,
        rename = "compressed-size",
        skip_serializing_if = "none_or_zero"
    )]
    pub compressed_size: Option<i64>,
    /// Digest of the uncompressed tar (the image's diff_id).
    #[serde(
        default,
        rename = "diff-digest",
        deserialize_with = "nullable_digest",
        skip_serializing_if = "Option::is_none"
    )]
    pub diff_digest: Option<Digest>,
    /// Digest of the table of contents (partial pulls; newer containers/storage).
    #[serde(
        default,
        rename = "toc-digest",
        deserialize_with = "nullable_digest",
        skip_serializing_if = "Option::is_none"
    )]
    pub toc_digest: Option<Digest>,
    /// Size of the uncompressed tar.
    #[serde(default, rename = "diff-size", skip_serializing_if = "none_or_zero")]
    pub diff_size: Option<i64>,
    /// Compression of the original blob (containers/storage `archive.Compression`: 0 none,
    /// 1 bzip2, 2 gzip, 3 xz, 4 zstd).
    #[serde(default, skip_serializing_if = "none_or_zero_i32")]
    pub compression: Option<i32>,
    /// UIDs used by the layer's files.
    #[serde(
        default,
        rename = "uidset",
        deserialize_with = "json::nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub uid_set: Vec<u32>,
    /// GIDs used by the layer's files.
    #[serde(
        default,
        rename = "gidset",
        deserialize_with = "json::nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub gid_set: Vec<u32>,
    /// Flags, e.g. `incomplete`.
    #[serde(
        default,
        deserialize_with = "json::nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub flags: BTreeMap<String, serde_json::Value>,
    /// UID map the layer's contents were shifted with (kept as written).
    #[serde(
        default,
        rename = "uidmap",
        deserialize_with = "json::nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub uid_map: Vec<serde_json::Value>,
    /// GID map.
    #[serde(
        default,
        rename = "gidmap",
        deserialize_with = "json::nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub gid_map: Vec<serde_json::Value>,
    /// Layer big-data keys.
    #[serde(
        default,
        rename = "big-data-names",
        deserialize_with = "json::nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub big_data_names: Vec<String>,
    /// Every other field containers/storage may write, kept.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl Layer {
    /// Whether the layer carries containers/storage's `incomplete` flag.
    pub fn is_incomplete(&self) -> bool {
        self.flags
            .get(layers::INCOMPLETE_FLAG)
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    }
}

/// One entry of `images.json` (field order as containers/storage writes them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// 64-hex ID (the config digest's hex).
    pub id: String,
    /// Digest of the main manifest.
    #[serde(
        default,
        deserialize_with = "nullable_digest",
        skip_serializing_if = "Option::is_none"
    )]
    pub digest: Option<Digest>,
    /// Digests of every stored manifest (`digest` first). Not stored: containers/storage
    /// computes it from `digest` and the `manifest*` big-data digests on load, and so do we.
    #[serde(skip)]
    pub digests: Vec<Digest>,
    /// Names (`docker.io/library/busybox:latest`, `localhost/app:1`).
    #[serde(
        default,
        deserialize_with = "json::nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub names: Vec<String>,
    /// Names the image had, newest first.
    #[serde(
        default,
        rename = "names-history",
        deserialize_with = "json::nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub names_history: Vec<String>,
    /// The top layer's ID (empty for an image with no layers).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub layer: String,
    /// Alternate top layers with other ID mappings.
    #[serde(
        default,
        rename = "mapped-layers",
        deserialize_with = "json::nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mapped_layers: Vec<String>,
    /// Free-form metadata.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub metadata: String,
    /// Keys of the big-data items (`manifest`, `manifest-sha256:…`, `sha256:<config>`).
    #[serde(
        default,
        rename = "big-data-names",
        deserialize_with = "json::nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub big_data_names: Vec<String>,
    /// Sizes of the big-data items.
    #[serde(
        default,
        rename = "big-data-sizes",
        deserialize_with = "json::nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub big_data_sizes: BTreeMap<String, i64>,
    /// Digests of the big-data items.
    #[serde(
        default,
        rename = "big-data-digests",
        deserialize_with = "json::nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub big_data_digests: BTreeMap<String, Digest>,
    /// Creation time, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Flags.
    #[serde(
        default,
        deserialize_with = "json::nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub flags: BTreeMap<String, serde_json::Value>,
    /// Every other field, kept.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// One entry of `containers.json` (field order as containers/storage writes them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// 64-hex ID.
    pub id: String,
    /// Names.
    #[serde(
        default,
        deserialize_with = "json::nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub names: Vec<String>,
    /// The image ID (empty for `scratch`; always written, as containers/storage does).
    #[serde(default)]
    pub image: String,
    /// The container's read-write layer.
    #[serde(default)]
    pub layer: String,
    /// Free-form metadata (buildah and podman store JSON here).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub metadata: String,
    /// Keys of the container's big-data items.
    #[serde(
        default,
        rename = "big-data-names",
        deserialize_with = "json::nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub big_data_names: Vec<String>,
    /// Their sizes.
    #[serde(
        default,
        rename = "big-data-sizes",
        deserialize_with = "json::nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub big_data_sizes: BTreeMap<String, i64>,
    /// Their digests.
    #[serde(
        default,
        rename = "big-data-digests",
        deserialize_with = "json::nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub big_data_digests: BTreeMap<String, Digest>,
    /// Creation time, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// UID map (kept as written).
    #[serde(
        default,
        rename = "uidmap",
        deserialize_with = "json::nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub uid_map: Vec<serde_json::Value>,
    /// GID map.
    #[serde(
        default,
        rename = "gidmap",
        deserialize_with = "json::nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub gid_map: Vec<serde_json::Value>,
    /// Flags.
    #[serde(
        default,
        deserialize_with = "json::nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub flags: BTreeMap<String, serde_json::Value>,
    /// Every other field, kept.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

fn none_or_zero(v: &Option<i64>) -> bool {
    matches!(v, None | Some(0))
}

fn none_or_zero_i32(v: &Option<i32>) -> bool {
    matches!(v, None | Some(0))
}

/// Go writes an unset digest as nothing (omitempty), but accept `""` and `null` too.
fn nullable_digest<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Digest>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => Digest::parse(&s)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

/// How a layer's tar stream is put into the store.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PutLayerOptions {
    /// Use this ID instead of a random one.
    pub id: Option<String>,
    /// The digest and size of the blob as it was received (compressed), for layers.json.
    pub compressed: Option<(Digest, i64, i32)>,
    /// The uncompressed digest the caller expects; a mismatch deletes the layer and errors.
    pub expected_diff_digest: Option<Digest>,
}

/// The function of [`Store::update_image_big_data`]: the record and the current items
/// (`None` = missing) in, the items to write out.
pub type BigDataUpdate<'a> =
    dyn FnMut(&ImageRecord, Vec<Option<Vec<u8>>>) -> Result<Vec<BigData>> + 'a;

/// One big-data item given to [`Store::create_image`].
#[derive(Debug, Clone)]
pub struct BigData {
    /// Key (`manifest`, `manifest-sha256:…`, `sha256:<config hex>`).
    pub key: String,
    /// Content.
    pub data: Vec<u8>,
}

/// An opened store. Each method takes the locks it needs and re-reads the metadata it
/// depends on, so several hod and podman processes can share one root.
///
/// Lock order (as containers/storage's): `storage.lock` → `layers.lock` (→ `mountpoints.lock`)
/// → `images.lock` → `containers.lock`.
#[derive(Debug)]
pub struct Store {
    opts: StoreOptions,
    paths: paths::Paths,
    driver: driver::Driver,
    /// Layer directories moved aside under the locks, to delete once they are released
    /// (by the thread that moved them: see [`Store::finish_removals`]).
    staged: std::sync::Mutex<Vec<(std::thread::ThreadId, driver::tempdirs::Staged)>>,
}

impl Store {
    /// Open (creating if needed) the store and clean up incomplete layers.
    pub fn open(opts: &StoreOptions) -> Result<Store> {
        tracing::debug!(
            "[graphdriver] trying provided driver {:?} (root {}, run root {})",
            opts.driver.name(),
            opts.root.display(),
            opts.run_root.display()
        );
        let dopts = driver::DriverOptions::parse(opts.driver, &opts.driver_options)?;
        let paths = paths::Paths {
            root: opts.root.clone(),
            run_root: opts.run_root.clone(),
            driver: opts.driver,
        };
        let driver = driver::Driver::new(&paths, dopts);
        if crate::sys::userns::identity().is_rootless() {
            check_owned(&paths.root)?;
            check_owned(&paths.run_root)?;
        }
        let store = Store {
            opts: opts.clone(),
            paths,
            driver,
            staged: Default::default(),
        };
        store.init_dirs()?;
        store.cleanup_incomplete()?;
        store.finish_removals()?;
        Ok(store)
    }

    /// Delete the layer directories this thread moved aside while it held the store's
    /// locks (`driver::tempdirs`); called by each deleting operation once its locks are
    /// released. Other threads' are theirs to delete: a `bud` stage's container being
    /// deleted in the background is not waited for by the next commit.
    fn finish_removals(&self) -> Result<()> {
        let me = std::thread::current().id();
        let mine: Vec<driver::tempdirs::Staged> = {
            let mut all = self.staged.lock().unwrap_or_else(|e| e.into_inner());
            let (mine, others) = std::mem::take(&mut *all)
                .into_iter()
                .partition(|(t, _)| *t == me);
            *all = others;
            mine.into_iter().map(|(_, s)| s).collect()
        };
        let mut first = None;
        for s in mine {
            if let Err(e) = s.finish() {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
    /// The options the store was opened with.
    pub fn options(&self) -> &StoreOptions {
        &self.opts
    }
    /// The graph driver.
    pub fn driver(&self) -> DriverKind {
        self.opts.driver
    }
    /// The persistent root.
    pub fn root(&self) -> &Path {
        &self.opts.root
    }
    /// The run root.
    pub fn run_root(&self) -> &Path {
        &self.opts.run_root
    }
    /// Where a layer's own files are: overlay `<root>/overlay/<id>/diff`, vfs
    /// `<root>/vfs/dir/<id>`.
    pub fn layer_diff_dir(&self, id: &str) -> Result<PathBuf> {
        let l = self.layer(id)?;
        Ok(self.driver.diff_dir(&l.id))
    }

    // ---- layers ----
    /// All layers (incomplete ones are hidden).
    pub fn layers(&self) -> Result<Vec<Layer>> {
        self.layers_impl()
    }
    /// One layer by ID, name or unique ID prefix.
    pub fn layer(&self, id: &str) -> Result<Layer> {
        self.layer_impl(id)
    }
    /// Layers whose uncompressed digest (diff_id) is `d`.
    pub fn layers_by_diff_digest(&self, d: &Digest) -> Result<Vec<Layer>> {
        Ok(self
            .layers()?
            .into_iter()
            .filter(|l| l.diff_digest.as_ref() == Some(d))
            .collect())
    }
    /// Layers whose compressed (as received) digest is `d`.
    pub fn layers_by_compressed_digest(&self, d: &Digest) -> Result<Vec<Layer>> {
        Ok(self
            .layers()?
            .into_iter()
            .filter(|l| l.compressed_diff_digest.as_ref() == Some(d))
            .collect())
    }
    /// Apply an uncompressed layer tar on top of `parent` as a new read-only layer, recording
    /// its tar-split, diff digest and size in one streaming pass.
    pub fn put_layer(
        &self,
        parent: Option<&str>,
        tar: &mut dyn Read,
        opts: &PutLayerOptions,
    ) -> Result<Layer> {
        self.put_layer_mapped(parent, tar, opts, None)
    }
    /// [`Store::put_layer`], storing the tar's owners shifted through `id_maps` (the
    /// mapped top layer of an ID-mapped container, [`crate::idmap`]).
    pub(crate) fn put_layer_mapped(
        &self,
        parent: Option<&str>,
        tar: &mut dyn Read,
        opts: &PutLayerOptions,
        id_maps: Option<&crate::idmap::IdMappings>,
    ) -> Result<Layer> {
        let ignore_chown = self.driver.opts.ignore_chown_errors
            || !crate::environment::Environment::get().keeps_owners();
        let opaque_xattr = self.driver.opaque_xattr();
        let mut apply =
            |dir: &Path, whiteouts: crate::archive::apply::WhiteoutFormat, ts: &mut dyn Write| {
                let mut o = crate::archive::apply::ApplyOptions::new(whiteouts);
                o.tar_split = Some(ts);
                o.ignore_chown_errors = ignore_chown;
                o.opaque_xattr = opaque_xattr;
                o.id_maps = id_maps.cloned();
                crate::archive::apply::apply_layer(dir, tar, o)
            };
        self.put_layer_with(parent, opts, &mut apply)
    }
    /// A new read-only layer on `parent` whose files are moved from the container layer
    /// `from` rather than written from `tar`, which must be the layer tar just made from
    /// those very files (commit's new layer of a container removed right after): the tar
    /// is only read, for the layer's digest, size, owners and tar-split, and the files move
    /// once its digest is the expected one. `Ok(None)`, with `tar` untouched, when `from`
    /// cannot be taken (not a container's unshifted layer on `parent`, or mounted): the
    /// caller then applies the tar with [`Store::put_layer`]. The container is left with
    /// an empty tree.
    pub fn put_layer_adopting(
        &self,
        parent: Option<&str>,
        tar: &mut dyn Read,
        opts: &PutLayerOptions,
        from: &str,
    ) -> Result<Option<Layer>> {
        self.put_layer_adopting_impl(parent, tar, opts, from)
    }
    /// Create an empty read-write layer on top of `parent` (a container's layer).
    pub fn create_rw_layer(&self, parent: Option<&str>) -> Result<Layer> {
        self.create_rw_layer_impl(parent)
    }
    /// Delete a layer no image, container or other layer uses.
    pub fn delete_layer(&self, id: &str) -> Result<()> {
        let r = self.delete_layer_impl(id);
        let f = self.finish_removals();
        r.and(f)
    }
    /// Write the layer's uncompressed tar (from tar-split when the layer has one, else by
    /// computing its change set against the parent) to `w`.
    pub fn layer_diff(&self, id: &str, w: &mut dyn Write) -> Result<()> {
        self.layer_diff_impl(id, w)
    }
    /// Whether [`Store::layer_diff`] of the layer is rebuilt from its tar-split, so that it
    /// fails unless every file matches the size and CRC-64 recorded when the layer (and its
    /// diff digest) was made.
    pub fn layer_diff_is_checked(&self, id: &str) -> bool {
        self.paths.tar_split(id).is_file()
    }
    /// Mount a layer (with its parents) and return the mount point; counted in
    /// `mountpoints.json`.
    pub fn mount_layer(&self, id: &str) -> Result<PathBuf> {
        self.mount_layer_impl(id)
    }
    /// Drop one mount reference (all with `force`); unmount at zero. Returns whether it is
    /// still mounted.
    pub fn unmount_layer(&self, id: &str, force: bool) -> Result<bool> {
        self.unmount_layer_impl(id, force)
    }
    /// Where a layer is mounted, if it is.
    pub fn layer_mount_point(&self, id: &str) -> Result<Option<PathBuf>> {
        self.layer_mount_point_impl(id)
    }
    /// How many times a layer is mounted (per `mountpoints.json`).
    pub fn layer_mount_count(&self, id: &str) -> Result<u32> {
        self.layer_mount_count_impl(id)
    }

    // ---- images ----
    /// All images.
    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        self.images_impl()
    }
    /// Find an image by full ID, unique ID prefix, name (normalised: `busybox` matches
    /// `docker.io/library/busybox:latest` and `localhost/busybox:latest`), or `@digest`.
    pub fn image(&self, name_or_id: &str) -> Result<ImageRecord> {
        self.image_impl(name_or_id)
    }
    /// Images having `d` as the digest of one of their manifests.
    pub fn images_by_digest(&self, d: &Digest) -> Result<Vec<ImageRecord>> {
        Ok(self
            .images()?
            .into_iter()
            .filter(|i| i.digests.contains(d))
            .collect())
    }
    /// Record an image with its big data. Names already held by other images move to it.
    /// If an image with this ID exists, the names are added to it and the big data replaced.
    pub fn create_image(
        &self,
        id: &str,
        names: &[String],
        top_layer: Option<&str>,
        big_data: &[BigData],
        created: Option<String>,
    ) -> Result<ImageRecord> {
        self.create_image_impl(id, names, top_layer, big_data, created)
    }
    /// Record a new image without layers whose `names` must all be free (else
    /// [`Error::NameInUse`](crate::error::Error::NameInUse)); check and write under one lock.
    pub fn create_image_with_free_names(
        &self,
        id: &str,
        names: &[String],
        big_data: &[BigData],
    ) -> Result<ImageRecord> {
        self.create_image_with_free_names_impl(id, names, big_data)
    }
    /// Read-modify-write of an image's big data under one exclusive lock: `f` gets the
    /// record and the current `keys` items (`None` = missing) and returns the items to write.
    pub fn update_image_big_data(
        &self,
        id: &str,
        keys: &[&str],
        f: &mut BigDataUpdate<'_>,
    ) -> Result<ImageRecord> {
        self.update_image_big_data_impl(id, keys, f)
    }
    /// Read one big-data item of an image.
    pub fn image_big_data(&self, id: &str, key: &str) -> Result<Vec<u8>> {
        self.image_big_data_impl(id, key)
    }
    /// Store (or replace) one big-data item of an image.
    pub fn set_image_big_data(&self, id: &str, key: &str, data: &[u8]) -> Result<()> {
        self.set_image_big_data_impl(id, key, data)
    }
    /// Replace an image's free-form metadata string.
    pub fn set_image_metadata(&self, id: &str, metadata: &str) -> Result<()> {
        self.set_image_metadata_impl(id, metadata)
    }
    /// Replace an image's names (names other images hold are taken from them).
    pub fn set_image_names(&self, id: &str, names: &[String]) -> Result<()> {
        self.update_image_names(id, names, images::NameOp::Set)
    }
    /// Add names to an image (taken from other images that hold them).
    pub fn add_image_names(&self, id: &str, names: &[String]) -> Result<()> {
        self.update_image_names(id, names, images::NameOp::Add)
    }
    /// Remove names from an image.
    pub fn remove_image_names(&self, id: &str, names: &[String]) -> Result<()> {
        self.update_image_names(id, names, images::NameOp::Remove)
    }
    /// Delete an image and those of its layers no other image or container uses (returned).
    /// Refuses (naming them) when containers use it.
    pub fn delete_image(&self, id: &str) -> Result<Vec<String>> {
        let r = self.delete_image_impl(id);
        let f = self.finish_removals();
        r.and_then(|v| f.map(|()| v))
    }

    // ---- containers ----
    /// All containers.
    pub fn containers(&self) -> Result<Vec<ContainerRecord>> {
        self.containers_impl()
    }
    /// A container by ID, name, layer ID or unique ID prefix.
    pub fn container(&self, name_or_id: &str) -> Result<ContainerRecord> {
        self.container_impl(name_or_id)
    }
    /// Create a container (with a new read-write layer over the image's top layer).
    pub fn create_container(
        &self,
        names: &[String],
        image_id: Option<&str>,
        metadata: &str,
    ) -> Result<ContainerRecord> {
        self.create_container_impl(names, image_id, metadata, None, &Default::default())
    }
    /// Create a container named by the first of `base`, `base-1`, `base-2`, … that no
    /// container holds, chosen under the exclusive lock so that concurrent creators (hod or
    /// podman) never pick the same name (buildah's `<image>-working-container` naming).
    pub fn create_container_auto_name(
        &self,
        base: &str,
        image_id: Option<&str>,
        metadata: &str,
    ) -> Result<ContainerRecord> {
        self.create_container_impl(&[], image_id, metadata, Some(base), &Default::default())
    }
    /// Create a container whose files are stored shifted through `maps` (empty: as
    /// [`Store::create_container`]): its layer sits on the image's mapped top layer
    /// (made, or reused from the image record's `mapped-top-layers`), and the layer and
    /// container records carry the maps, as containers/storage records them. `auto_name`
    /// as in [`Store::create_container_auto_name`].
    pub fn create_container_mapped(
        &self,
        names: &[String],
        image_id: Option<&str>,
        auto_name: Option<&str>,
        maps: &crate::idmap::IdMappings,
    ) -> Result<ContainerRecord> {
        self.create_container_impl(names, image_id, "", auto_name, maps)
    }

    /// `<root>/<driver>-containers/<id>/userdata`, created.
    pub fn container_dir(&self, id: &str) -> Result<PathBuf> {
        let c = self.container(id)?;
        let d = self.paths.containers_dir().join(&c.id).join("userdata");
        paths::mkdir_all(&d, 0o700)?;
        Ok(d)
    }
    /// `<runroot>/<driver>-containers/<id>/userdata`, created.
    pub fn container_run_dir(&self, id: &str) -> Result<PathBuf> {
        let c = self.container(id)?;
        let d = self.paths.run_containers_dir().join(&c.id).join("userdata");
        paths::mkdir_all(&d, 0o700)?;
        Ok(d)
    }
    /// Replace a container's names (refused if another container holds one).
    pub fn set_container_names(&self, id: &str, names: &[String]) -> Result<()> {
        self.set_container_names_impl(id, names)
    }
    /// Replace a container's metadata string.
    pub fn set_container_metadata(&self, id: &str, metadata: &str) -> Result<()> {
        self.set_container_metadata_impl(id, metadata)
    }
    /// Unmount and delete a container, its layer and its directories.
    pub fn delete_container(&self, id: &str) -> Result<()> {
        let r = self.delete_container_impl(id);
        let f = self.finish_removals();
        r.and(f)
    }
}

impl Drop for Store {
    /// Whatever a failed operation moved aside and did not delete yet.
    fn drop(&mut self) {
        let all = std::mem::take(self.staged.get_mut().unwrap_or_else(|e| e.into_inner()));
        drop(all);
    }
}

#[cfg(test)]
mod tests;
