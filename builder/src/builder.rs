//! The working container: its persisted state (`buildah.json`-style, but tagged
//! [`BUILDER_TYPE`]) in the container's `userdata` directory, saved atomically.
use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoResultExt, Result};
use crate::fsutil::atomic_write;
use crate::image::ImageConfig;
use crate::run::{Isolation, RunDefaults};
use crate::store::{ContainerRecord, Store};

/// The type tag of hod's state file; containers with other tags are not ours.
pub const BUILDER_TYPE: &str = "hod 0.0.1";
/// The state file's name inside the container's userdata directory.
pub const STATE_FILE: &str = "hod.json";

/// The builder state layout version this hod writes: 1 = typed run defaults and isolation.
pub const STATE_VERSION: u32 = 1;

fn run_defaults_from_state<'de, D>(d: D) -> std::result::Result<RunDefaults, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let v = serde_json::Value::deserialize(d)?;
    Ok(RunDefaults::from_state_value(&v))
}

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

impl ImageFormat {
    /// Parse `oci` or `docker` (and buildah's other spellings: `ociv1`, `v2s2`, …).
    pub fn parse(s: &str) -> Result<ImageFormat> {
        match s.to_ascii_lowercase().as_str() {
            "oci" | "ociv1" | "oci-v1" => Ok(ImageFormat::Oci),
            "docker" | "dockerv2" | "v2s2" | "docker-v2s2" => Ok(ImageFormat::Docker),
            _ => Err(Error::invalid(format!("unrecognized image type {s:?}"))),
        }
    }

    /// `BUILDAH_FORMAT`, when it is set and not empty.
    pub fn from_env() -> Result<Option<ImageFormat>> {
        match std::env::var("BUILDAH_FORMAT") {
            Ok(v) if !v.is_empty() => ImageFormat::parse(&v).map(Some),
            _ => Ok(None),
        }
    }

    /// The format when none is given: `BUILDAH_FORMAT`, else OCI.
    pub fn default_from_env() -> Result<ImageFormat> {
        Ok(ImageFormat::from_env()?.unwrap_or_default())
    }
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
    /// Isolation chosen at `from` time (`--isolation`, else `BUILDAH_ISOLATION`).
    #[serde(default, deserialize_with = "crate::run::isolation_from_state")]
    pub isolation: Isolation,
    /// Settings `from` accepted for later `run`s (namespaces, security, resources, DNS,
    /// devices, volumes, groups); states written before they were typed still load.
    #[serde(default, deserialize_with = "run_defaults_from_state")]
    pub run_defaults: RunDefaults,
    /// The container's ID maps (`--userns-uid-map` …; buildah's `IDMappingOptions`):
    /// `run` uses a user namespace with them, `copy` maps owners through them.
    #[serde(rename = "IDMappingOptions", default)]
    pub id_mappings: crate::idmap::IdMappings,
    /// The state's layout version ([`STATE_VERSION`]; 0 = before it was versioned).
    #[serde(default)]
    pub version: u32,
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
        // Read in this version's layout: saved in it from now on.
        let mut state = state;
        state.version = STATE_VERSION;
        Ok(Some(Builder { state, record, dir }))
    }

    /// Persist the state atomically (a detached builder, which has no container, keeps
    /// its state in memory only).
    pub fn save(&self) -> Result<()> {
        if self.is_detached() {
            // No container yet: the state is the in-memory one (`detached_from_base`).
            return Ok(());
        }
        let path = self.dir.join(STATE_FILE);
        let data = serde_json::to_vec_pretty(&self.state).map_err(|source| Error::Json {
            op: "encoding builder state for".into(),
            path: path.clone(),
            source,
        })?;
        atomic_write(&path, &data, 0o600)
            .map_err(|e| e.context(format!("saving builder state to {}", path.display())))
    }

    /// Record `created_by` as an empty-layer history entry of the next commit (the list
    /// `bud` fills for its steps too; a commit with `--timestamp` dates them all alike),
    /// and save.
    pub fn add_history(&mut self, created_by: String) -> Result<()> {
        self.state.appended_history.push(crate::image::History {
            created: Some(crate::fsutil::now_rfc3339()),
            created_by: Some(created_by),
            empty_layer: true,
            ..Default::default()
        });
        self.save()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_before_the_typed_run_defaults_still_load() {
        // What hod 0.0.1 wrote: isolation as a string (empty = default), the run defaults as
        // an untyped bag, no version.
        let old = serde_json::json!({
            "Type": BUILDER_TYPE, "FromImage": "busybox", "FromImageID": "", "FromImageDigest": "",
            "Container": "c", "ContainerID": "id", "MountPoint": "", "Config": {},
            "Isolation": "",
            "RunDefaults": {"capAdd": ["NET_ADMIN"], "dns": ["1.1.1.1"], "addHosts": ["h:10.0.0.1"], "network": "host"},
        });
        let s: BuilderState = serde_json::from_value(old.clone()).unwrap();
        assert_eq!(s.version, 0);
        assert_eq!(s.isolation, Isolation::Oci);
        assert_eq!(s.run_defaults.security.cap_add, ["NET_ADMIN"]);
        assert_eq!(s.run_defaults.dns.hosts[0].name, "h");
        assert_eq!(
            s.run_defaults.namespaces.network,
            Some(crate::run::NetworkMode::Host)
        );
        let mut no_defaults = old.clone();
        no_defaults["Isolation"] = "chroot".into();
        no_defaults.as_object_mut().unwrap().remove("RunDefaults");
        let s: BuilderState = serde_json::from_value(no_defaults).unwrap();
        assert_eq!(s.isolation, Isolation::Chroot);
        assert_eq!(s.run_defaults, RunDefaults::default());
        // The typed state round-trips.
        let mut s2 = s.clone();
        s2.version = STATE_VERSION;
        s2.run_defaults.group_add = vec!["wheel".into()];
        let v = serde_json::to_value(&s2).unwrap();
        assert_eq!(v["Isolation"], "chroot");
        assert_eq!(v["Version"], 1);
        let back: BuilderState = serde_json::from_value(v).unwrap();
        assert_eq!(back.run_defaults, s2.run_defaults);
    }
}
