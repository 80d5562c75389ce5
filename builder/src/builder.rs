//! The working container: its persisted state (`buildah.json`-style, but tagged
//! [`BUILDER_TYPE`]) in the container's `userdata` directory, saved atomically.
use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoResultExt, Result};
use crate::fsutil::atomic_write;
use crate::image::ImageConfig;
use crate::store::{ContainerRecord, Store};

/// The type tag of hod's state file; containers with other tags are not ours.
pub const BUILDER_TYPE: &str = "hod 0.0.1";
/// The state file's name inside the container's userdata directory.
pub const STATE_FILE: &str = "hod.json";

/// Image format to write at commit time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    /// OCI image manifest and config.
    #[default]
    Oci,
    /// Docker v2 schema 2.
    Docker,
}

/// Everything hod remembers about a working container.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BuilderState {
    /// Always [`BUILDER_TYPE`].
    #[serde(rename = "Type")]
    pub kind: String,
    /// The image name the container was made from (empty for scratch).
    pub from_image: String,
    /// The image's ID.
    #[serde(rename = "FromImageID")]
    pub from_image_id: String,
    /// The image's manifest digest.
    pub from_image_digest: String,
    /// The container's name.
    pub container: String,
    /// The container's ID.
    #[serde(rename = "ContainerID")]
    pub container_id: String,
    /// Where the rootfs is mounted, when it is.
    pub mount_point: String,
    /// The image config being built (starts as the base image's).
    pub config: ImageConfig,
    /// Manifest annotations for the committed image.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// `--created-by` for the next history entry.
    #[serde(default)]
    pub created_by: String,
    /// History comment for the next commit (`config --history-comment`).
    #[serde(default)]
    pub history_comment: String,
    /// History entries of steps that added no layer of their own, written before the
    /// commit's own entry (buildah's `AppendedEmptyLayers`: a Containerfile stage records
    /// one entry per instruction, but only the last carries the stage's layer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub appended_history: Vec<crate::image::History>,
    /// Default format at commit (`--format`, `BUILDAH_FORMAT`).
    #[serde(default)]
    pub format: ImageFormat,
    /// Whether the base image had a manifest of Docker type.
    #[serde(default)]
    pub from_docker: bool,
    /// Isolation chosen at `from` time (`oci`, `chroot`, `rootless`).
    #[serde(default)]
    pub isolation: String,
    /// Settings `from` accepted for later `run`s (capabilities, devices, ulimits, …),
    /// as the run module defines them.
    #[serde(default)]
    pub run_defaults: serde_json::Value,
    /// Unknown fields, kept.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// A working container bound to its store record.
#[derive(Debug, Clone)]
pub struct Builder {
    /// The persisted state.
    pub state: BuilderState,
    /// The store's record of the container.
    pub record: ContainerRecord,
    /// `<root>/<driver>-containers/<id>/userdata`.
    pub dir: PathBuf,
}

impl Builder {
    /// Open a working container by name, ID or unique ID prefix.
    pub fn open(store: &Store, name_or_id: &str) -> Result<Builder> {
        let record = store.container(name_or_id)?;
        Builder::from_record(store, record)?.ok_or_else(|| Error::NotFound {
            kind: "container",
            name: name_or_id.to_string(),
        })
    }

    /// Every working container of ours in the store (others' containers are skipped).
    pub fn open_all(store: &Store) -> Result<Vec<Builder>> {
        let mut out = Vec::new();
        for record in store.containers()? {
            if let Some(b) = Builder::from_record(store, record)? {
                out.push(b);
            }
        }
        Ok(out)
    }

    /// `None` when the container is not a hod working container.
    fn from_record(store: &Store, record: ContainerRecord) -> Result<Option<Builder>> {
        let dir = store.container_dir(&record.id)?;
        let path = dir.join(STATE_FILE);
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).at("reading", &path),
        };
        let state: BuilderState = serde_json::from_slice(&data).map_err(|source| Error::Json {
            op: "parsing".into(),
            path: path.clone(),
            source,
        })?;
        if state.kind != BUILDER_TYPE {
            return Ok(None);
        }
        Ok(Some(Builder { state, record, dir }))
    }

    /// Persist the state atomically.
    pub fn save(&self) -> Result<()> {
        let path = self.dir.join(STATE_FILE);
        let data = serde_json::to_vec_pretty(&self.state).map_err(|source| Error::Json {
            op: "encoding builder state for".into(),
            path: path.clone(),
            source,
        })?;
        atomic_write(&path, &data, 0o600)
            .map_err(|e| e.context(format!("saving builder state to {}", path.display())))
    }

    /// The container's name.
    pub fn name(&self) -> &str {
        &self.state.container
    }

    /// The container's ID.
    pub fn id(&self) -> &str {
        &self.record.id
    }
}
