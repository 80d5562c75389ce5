//! A store in containers/storage's on-disk format, shared with podman, skopeo and CRI-O.
//!
//! ```text
//! <root>/storage.lock
//! <root>/<driver>-layers/layers.json, layers.lock, <id>.tar-split.gz
//! <root>/<driver>-images/images.json, images.lock, <id>/<big-data files>
//! <root>/<driver>-containers/containers.json, containers.lock, <id>/userdata/
//! <root>/overlay/<id>/{diff,work,merged,link,lower}, <root>/overlay/l/<short> -> ../<id>/diff
//! <root>/vfs/dir/<id>/
//! <runroot>/<driver>-layers/mountpoints.json, <runroot>/<driver>-containers/<id>/userdata/
//! ```
//!
//! Locks are POSIX record locks (fcntl), the kind containers/storage takes, so hod and podman
//! exclude each other. Every JSON write is temp file + fsync + rename. A layer being written is
//! flagged `incomplete` in layers.json first; `Store::open` deletes incomplete layers left by a
//! killed process.
//!
//! The facade is deliberately small: records, lookups, layer put/diff/mount, images,
//! containers. Everything else (commit, push, pull) is built on it.
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::image::Digest;

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
            other => Err(StoreError::Unsupported(format!("storage driver {other:?} is not supported (use overlay or vfs)")).into()),
        }
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

/// One entry of `layers.json` (field names as containers/storage writes them).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Layer {
    /// 64-hex ID.
    pub id: String,
    /// Names (rarely used for layers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Parent layer ID.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub parent: String,
    /// Free-form metadata.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub metadata: String,
    /// Creation time, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Digest of the blob the layer came from (possibly compressed).
    #[serde(default, rename = "compressed-diff-digest", skip_serializing_if = "Option::is_none")]
    pub compressed_diff_digest: Option<Digest>,
    /// Size of that blob.
    #[serde(default, rename = "compressed-size", skip_serializing_if = "Option::is_none")]
    pub compressed_size: Option<i64>,
    /// Digest of the uncompressed tar (the image's diff_id).
    #[serde(default, rename = "diff-digest", skip_serializing_if = "Option::is_none")]
    pub diff_digest: Option<Digest>,
    /// Size of the uncompressed tar.
    #[serde(default, rename = "diff-size", skip_serializing_if = "Option::is_none")]
    pub diff_size: Option<i64>,
    /// Compression of the original blob (containers/storage `archive.Compression`: 0 none,
    /// 1 bzip2, 2 gzip, 3 xz, 4 zstd).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<i32>,
    /// Flags, e.g. `incomplete`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub flags: BTreeMap<String, serde_json::Value>,
    /// Every other field containers/storage writes (uidset, gidset, big-data, …), kept.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// One entry of `images.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImageRecord {
    /// 64-hex ID (the config digest's hex).
    pub id: String,
    /// Digest of the main manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// Digests of every stored manifest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub digests: Vec<Digest>,
    /// Names (`docker.io/library/busybox:latest`, `localhost/app:1`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// `repo@digest` names.
    #[serde(default, rename = "names-history", skip_serializing_if = "Vec::is_empty")]
    pub names_history: Vec<String>,
    /// The top layer's ID (empty for an image with no layers).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub layer: String,
    /// Free-form metadata.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub metadata: String,
    /// Keys of the big-data items (`manifest`, `manifest-sha256:…`, `sha256:<config>`).
    #[serde(default, rename = "big-data-names", skip_serializing_if = "Vec::is_empty")]
    pub big_data_names: Vec<String>,
    /// Sizes of the big-data items.
    #[serde(default, rename = "big-data-sizes", skip_serializing_if = "BTreeMap::is_empty")]
    pub big_data_sizes: BTreeMap<String, i64>,
    /// Digests of the big-data items.
    #[serde(default, rename = "big-data-digests", skip_serializing_if = "BTreeMap::is_empty")]
    pub big_data_digests: BTreeMap<String, Digest>,
    /// Creation time, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Flags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub flags: BTreeMap<String, serde_json::Value>,
    /// Every other field, kept.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// One entry of `containers.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// 64-hex ID.
    pub id: String,
    /// Names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// The image ID (empty for `scratch`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    /// The container's read-write layer.
    pub layer: String,
    /// Free-form metadata (buildah and podman store JSON here).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub metadata: String,
    /// Creation time, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Flags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub flags: BTreeMap<String, serde_json::Value>,
    /// Every other field, kept.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
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
#[derive(Debug)]
pub struct Store {
    opts: StoreOptions,
}

impl Store {
    /// Open (creating if needed) the store and clean up incomplete layers.
    pub fn open(opts: &StoreOptions) -> Result<Store> {
        Ok(Store { opts: opts.clone() })
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

    // ---- layers ----
    /// All layers.
    pub fn layers(&self) -> Result<Vec<Layer>> {
        todo!("store::layers")
    }
    /// One layer by ID.
    pub fn layer(&self, _id: &str) -> Result<Layer> {
        todo!("store::layer")
    }
    /// Apply an uncompressed layer tar on top of `parent` as a new read-only layer, recording
    /// its tar-split, diff digest and size in one streaming pass.
    pub fn put_layer(&self, _parent: Option<&str>, _tar: &mut dyn Read, _opts: &PutLayerOptions) -> Result<Layer> {
        todo!("store::put_layer")
    }
    /// Create an empty read-write layer on top of `parent` (a container's layer).
    pub fn create_rw_layer(&self, _parent: Option<&str>) -> Result<Layer> {
        todo!("store::create_rw_layer")
    }
    /// Write the layer's uncompressed tar (from tar-split when the layer has one, else by
    /// computing its change set against the parent) to `w`.
    pub fn layer_diff(&self, _id: &str, _w: &mut dyn Write) -> Result<()> {
        todo!("store::layer_diff")
    }
    /// Mount a layer (with its parents) and return the mount point; counted in
    /// `mountpoints.json`.
    pub fn mount_layer(&self, _id: &str) -> Result<PathBuf> {
        todo!("store::mount_layer")
    }
    /// Drop one mount reference (all with `force`); unmount at zero. Returns whether it is
    /// still mounted.
    pub fn unmount_layer(&self, _id: &str, _force: bool) -> Result<bool> {
        todo!("store::unmount_layer")
    }
    /// Where a layer is mounted, if it is.
    pub fn layer_mount_point(&self, _id: &str) -> Result<Option<PathBuf>> {
        todo!("store::layer_mount_point")
    }

    // ---- images ----
    /// All images.
    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        todo!("store::images")
    }
    /// Find an image by full ID, unique ID prefix, name (normalised: `busybox` matches
    /// `docker.io/library/busybox:latest` and `localhost/busybox:latest`), or `@digest`.
    pub fn image(&self, _name_or_id: &str) -> Result<ImageRecord> {
        todo!("store::image")
    }
    /// Record an image with its big data. Names already held by other images move to it.
    pub fn create_image(&self, _id: &str, _names: &[String], _top_layer: Option<&str>, _big_data: &[BigData], _created: Option<String>) -> Result<ImageRecord> {
        todo!("store::create_image")
    }
    /// Read one big-data item of an image.
    pub fn image_big_data(&self, _id: &str, _key: &str) -> Result<Vec<u8>> {
        todo!("store::image_big_data")
    }
    /// Replace an image's names (names other images hold are taken from them).
    pub fn set_image_names(&self, _id: &str, _names: &[String]) -> Result<()> {
        todo!("store::set_image_names")
    }
    /// Delete an image and those of its layers no other image or container uses.
    /// Refuses (naming them) when containers use it.
    pub fn delete_image(&self, _id: &str) -> Result<Vec<String>> {
        todo!("store::delete_image")
    }

    // ---- containers ----
    /// All containers.
    pub fn containers(&self) -> Result<Vec<ContainerRecord>> {
        todo!("store::containers")
    }
    /// A container by ID, unique prefix or name.
    pub fn container(&self, _name_or_id: &str) -> Result<ContainerRecord> {
        todo!("store::container")
    }
    /// Create a container (with a new read-write layer over the image's top layer).
    pub fn create_container(&self, _names: &[String], _image_id: Option<&str>, _metadata: &str) -> Result<ContainerRecord> {
        todo!("store::create_container")
    }
    /// `<root>/<driver>-containers/<id>/userdata`, created.
    pub fn container_dir(&self, _id: &str) -> Result<PathBuf> {
        todo!("store::container_dir")
    }
    /// `<runroot>/<driver>-containers/<id>/userdata`, created.
    pub fn container_run_dir(&self, _id: &str) -> Result<PathBuf> {
        todo!("store::container_run_dir")
    }
    /// Replace a container's names.
    pub fn set_container_names(&self, _id: &str, _names: &[String]) -> Result<()> {
        todo!("store::set_container_names")
    }
    /// Unmount and delete a container, its layer and its directories.
    pub fn delete_container(&self, _id: &str) -> Result<()> {
        todo!("store::delete_container")
    }
}
