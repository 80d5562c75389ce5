//! `commit`: the container's change set as an image source, copied to a destination through
//! the one `transport::copy_image` pipeline.
//!
//! As buildah's `containerImageRef`: the base image's layers come from the store (their
//! uncompressed diffs), the new layer is the container's change set (or, with `--squash`,
//! its whole rootfs) written once to a temporary file while it is hashed, and the config is
//! the builder's canonical config with the new diff_id, a history entry and the creation
//! time. The image is recorded in the store only after every blob is in place, so a killed
//! commit leaves no image (an incomplete layer is removed by `Store::open`).
use std::collections::BTreeMap;
use std::io::{self, Seek, Write};
use std::path::PathBuf;

use crate::archive::diff::{write_changes_counted, ChangeSource, DiffOptions};
use crate::archive::Compression;
use crate::builder::{Builder, BuilderState, ImageFormat};
use crate::error::{Error, IoResultExt, Result, ResultExt};
use crate::image::manifest::{self, *};
use crate::image::{convert, Digest, History, ImageConfig, Sha256Writer};
use crate::reference::ImageReference;
use crate::report::Reporter;
use crate::store::{DriverKind, Layer, Store};
use crate::transport::{self, storage::layer_chain, CopyImageOptions, ImageSource};

/// The label buildah sets to name the builder that made an image.
pub const IDENTITY_LABEL: &str = "io.buildah.version";
/// Its value.
pub const IDENTITY_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Options of `hod commit` (and of the commit step of `bud`). `CommitOptions::default()`
/// is what `hod commit` does without flags.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CommitOptions {
    /// `--format`; `None` = `BUILDAH_FORMAT`, else the container's (its `from --format`).
    pub format: Option<ImageFormat>,
    /// Layer compression (`None` = `--disable-compression`, the default for local storage).
    pub compression: Compression,
    /// `--squash`: one layer with the whole rootfs.
    pub squash: bool,
    /// The container is removed right after the commit (bud's last commit of a build
    /// that removes its containers): committed to this store, its layer's files may be
    /// moved into the new layer instead of written again, leaving the container empty.
    pub consume_container: bool,
    /// `--timestamp`: created times and file mtimes set to this Unix time.
    pub timestamp: Option<i64>,
    /// `--omit-history`.
    pub omit_history: bool,
    /// `--identity-label` (default true): set `io.buildah.version`.
    pub identity_label: bool,
    /// The commit adds no layer, only a config (and an `empty_layer` history entry): a
    /// Containerfile step that changed nothing but the config, in `bud --layers`.
    pub empty_layer: bool,
    /// History `created_by` override.
    pub created_by: Option<String>,
    /// Extra manifest annotations.
    pub annotations: Vec<(String, String)>,
    /// `--unsetenv`: environment variables the committed image's config leaves out.
    pub unset_env: Vec<String>,
    /// Registry access when the destination is a registry (`docker://`).
    pub registry: crate::options::RegistryContext,
    /// `--encryption-key`/`--encrypt-layer`: encrypt the image's layers (OCI format).
    pub encryption: Option<std::sync::Arc<crate::image::encryption::EncryptionConfig>>,
}

impl Default for CommitOptions {
    fn default() -> Self {
        CommitOptions {
            format: None,
            compression: Compression::default(),
            squash: false,
            consume_container: false,
            timestamp: None,
            omit_history: false,
            identity_label: true,
            empty_layer: false,
            created_by: None,
            annotations: Vec::new(),
            unset_env: Vec::new(),
            registry: Default::default(),
            encryption: None,
        }
    }
}

impl CommitOptions {
    /// The format a commit of `state` writes: `format`, else `BUILDAH_FORMAT`, else the
    /// container's.
    pub fn resolved_format(&self, state: &BuilderState) -> Result<ImageFormat> {
        match self.format {
            Some(f) => Ok(f),
            None => Ok(ImageFormat::from_env()?.unwrap_or(state.format)),
        }
    }
}

/// What a commit produced.
#[derive(Debug, Clone)]
pub struct CommitOutput {
    /// The image ID (config digest hex).
    pub image_id: String,
    /// The manifest digest.
    pub manifest_digest: Digest,
}

/// The RFC 3339 form of a Unix time (`1970-01-01T00:00:00Z`).
pub fn rfc3339_of(t: i64) -> Result<String> {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .ok_or_else(|| Error::invalid(format!("timestamp {t} is out of range")))
}

/// Inputs of [`build_image`] that come from the store.
#[derive(Debug, Clone)]
pub struct LayerBlob {
    /// Uncompressed digest.
    pub digest: Digest,
    /// Uncompressed size.
    pub size: i64,
}

/// The config and manifest a commit writes, and the Docker-only fields the OCI format lost.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    /// Config bytes.
    pub config: Vec<u8>,
    /// Manifest bytes.
    pub manifest: Vec<u8>,
    /// Manifest media type.
    pub manifest_type: &'static str,
    /// Fields dropped by the OCI projection.
    pub dropped: Vec<convert::Dropped>,
}

/// Build config and manifest from the builder state, the base layers and the new layer
/// (uncompressed; the copy pipeline compresses as the destination wants).
pub fn build_image(
    state: &BuilderState,
    base: &[LayerBlob],
    new_layer: &LayerBlob,
    opts: &CommitOptions,
    created: &str,
) -> Result<BuiltImage> {
    let mut cfg: ImageConfig = state.config.clone();
    cfg.created = Some(created.to_string());
    let base_history_had_none = cfg.history.is_empty() && !base.is_empty();
    cfg.rootfs.kind = "layers".to_string();
    cfg.rootfs.diff_ids = if opts.squash {
        Vec::new()
    } else {
        base.iter().map(|l| l.digest.clone()).collect()
    };
    let empty_layer = opts.empty_layer && !opts.squash;
    if !empty_layer {
        cfg.rootfs.diff_ids.push(new_layer.digest.clone());
    }
    let omit_history = opts.omit_history || base_history_had_none;
    if opts.squash || omit_history {
        cfg.history.clear();
    }
    if !omit_history {
        for h in &state.appended_history {
            let mut h = h.clone();
            if opts.timestamp.is_some() {
                h.created = Some(created.to_string());
            }
            h.empty_layer = true;
            cfg.history.push(h);
        }
        let created_by = opts
            .created_by
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| Some(state.created_by.clone()).filter(|s| !s.is_empty()))
            .or_else(|| {
                cfg.config
                    .shell
                    .as_ref()
                    .map(|s| s.join(" "))
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or_else(|| "/bin/sh".to_string());
        let mut comment = state.history_comment.clone();
        // buildah notes the base image by name in the first entry it adds.
        if !state.from_image.is_empty() && !state.from_image_id.starts_with(&state.from_image) {
            if !comment.is_empty() {
                comment.push(' ');
            }
            comment.push_str(&format!("FROM {}", state.from_image));
        }
        cfg.history.push(History {
            created: Some(created.to_string()),
            created_by: Some(created_by),
            author: cfg.author.clone().filter(|a| !a.is_empty()),
            comment: Some(comment).filter(|c| !c.is_empty()),
            empty_layer,
        });
    }
    if !opts.unset_env.is_empty() {
        if let Some(env) = cfg.config.env.as_mut() {
            env.retain(|e| {
                let key = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
                !opts.unset_env.iter().any(|u| u == key)
            });
        }
    }
    if opts.identity_label {
        cfg.config
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(IDENTITY_LABEL.to_string(), IDENTITY_VERSION.to_string());
    }
    // Pure: without a format here, the container's (Builder::commit resolves the environment).
    let (config, dropped, mt) = match opts.format.unwrap_or(state.format) {
        ImageFormat::Oci => {
            let (c, d) = convert::to_oci(&cfg);
            (c, d, OCI_MANIFEST)
        }
        ImageFormat::Docker => {
            if opts.timestamp.is_none() && !state.container_id.is_empty() {
                cfg.other
                    .insert("container".into(), state.container_id.clone().into());
            } else {
                cfg.other.remove("container");
            }
            if let Ok(v) = serde_json::to_value(&cfg.config) {
                cfg.other.insert("container_config".into(), v);
            }
            (convert::to_docker(&cfg), Vec::new(), DOCKER_MANIFEST)
        }
    };
    let layer_mt = transport::layer_media_type(mt, Compression::None)?;
    let layers: Vec<&LayerBlob> = if opts.squash {
        vec![new_layer]
    } else if empty_layer {
        base.iter().collect()
    } else {
        base.iter().chain(std::iter::once(new_layer)).collect()
    };
    let mut annotations = BTreeMap::new();
    if mt == OCI_MANIFEST {
        annotations.extend(state.annotations.clone());
        if !state.from_image.is_empty() && !state.from_image_digest.is_empty() {
            annotations.insert(
                ANNOTATION_BASE_DIGEST.to_string(),
                state.from_image_digest.clone(),
            );
            // Only a fully-qualified name, as buildah's `from` sets it: a base given by
            // its ID (or a short name) has none.
            if !crate::from::is_short_name(&state.from_image) {
                annotations
                    .entry(ANNOTATION_BASE_NAME.to_string())
                    .or_insert_with(|| state.from_image.clone());
            }
        }
        annotations.insert(ANNOTATION_CREATED.to_string(), created.to_string());
        for (k, v) in &opts.annotations {
            annotations.insert(k.clone(), v.clone());
        }
    }
    let m = ImageManifest {
        schema_version: 2,
        media_type: Some(mt.to_string()),
        artifact_type: None,
        config: Descriptor::new(
            if mt == OCI_MANIFEST {
                OCI_CONFIG
            } else {
                DOCKER_CONFIG
            },
            Digest::of(&config),
            config.len() as i64,
        ),
        layers: layers
            .iter()
            .map(|l| Descriptor::new(layer_mt, l.digest.clone(), l.size))
            .collect(),
        subject: None,
        annotations: (!annotations.is_empty()).then_some(annotations),
        other: BTreeMap::new(),
    };
    Ok(BuiltImage {
        config,
        manifest: manifest::to_json(&m),
        manifest_type: mt,
        dropped,
    })
}

/// The container as an image source.
struct ContainerSource<'s> {
    store: &'s Store,
    name: String,
    built: BuiltImage,
    base: Vec<Layer>,
    new_digest: Digest,
    /// The new layer's spool (`None` once handed to the pipeline).
    layer_file: Option<std::fs::File>,
    layer_path: PathBuf,
    /// The container's layer, when its files may become the new layer.
    adopt: Option<crate::transport::AdoptableLayer>,
    _tmp: crate::scratch::ScratchDir,
}

impl ImageSource for ContainerSource<'_> {
    fn manifest(&mut self, instance: Option<&Digest>) -> Result<(Vec<u8>, String)> {
        if instance.is_some() {
            return Err(transport::bad_image("a container has no manifest list"));
        }
        Ok((
            self.built.manifest.clone(),
            self.built.manifest_type.to_string(),
        ))
    }
    fn write_blob(&mut self, desc: &Descriptor, out: &mut dyn Write) -> Result<()> {
        if desc.digest == Digest::of(&self.built.config) {
            return out.write_all(&self.built.config).at("writing", "config");
        }
        if desc.digest == self.new_digest {
            if let Some(f) = self.layer_file.as_mut() {
                f.rewind().at("rewinding", &self.layer_path)?;
                io::copy(f, out).at("reading", &self.layer_path)?;
                return Ok(());
            }
        }
        let l = self
            .base
            .iter()
            .find(|l| l.diff_digest.as_ref() == Some(&desc.digest))
            .ok_or_else(|| {
                transport::bad_image(format!("container {}: no layer {}", self.name, desc.digest))
            })?;
        self.store
            .layer_diff(&l.id, out)
            .map_err(|e| e.context(format!("reading layer {}", l.id)))
    }
    fn describe(&self) -> String {
        format!("container {}", self.name)
    }
    fn adoptable_layer(&self, desc: &Descriptor) -> Option<crate::transport::AdoptableLayer> {
        (desc.digest == self.new_digest)
            .then(|| self.adopt.clone())
            .flatten()
    }
    fn take_blob_file(&mut self, desc: &Descriptor) -> Option<tempfile::NamedTempFile> {
        if desc.digest != self.new_digest {
            return None;
        }
        // The spool path is absolute (under the big temp dir); on the unlikely failure keep
        // the file here and let the pipeline copy it.
        let path = tempfile::TempPath::try_from_path(&self.layer_path).ok()?;
        let f = self.layer_file.take()?;
        Some(tempfile::NamedTempFile::from_parts(f, path))
    }
}

impl Builder {
    /// Commit to `dest`: an image name in the local store (`myapp:1`), or a transport
    /// reference (`oci:/dir:tag`, `docker-archive:f.tar`, …). `None` = an unnamed local image.
    pub fn commit(
        &self,
        store: &Store,
        dest: Option<&str>,
        opts: &CommitOptions,
        reporter: &dyn Reporter,
    ) -> Result<CommitOutput> {
        let what = dest.unwrap_or("an unnamed image");
        // As buildah: a named --authfile must exist, whatever the destination.
        crate::registries::auth::check_auth_file(&opts.registry)?;
        if self.is_detached() {
            return Err(crate::Error::invalid(format!(
                "committing to {what}: the builder has no container yet"
            )));
        }
        self.commit_inner(store, dest, opts, reporter)
            .context_with(|| format!("committing container {:?} to {what}", self.name()))
    }

    fn commit_inner(
        &self,
        store: &Store,
        dest: Option<&str>,
        opts: &CommitOptions,
        reporter: &dyn Reporter,
    ) -> Result<CommitOutput> {
        let mut resolved = opts.clone();
        resolved.format = Some(opts.resolved_format(&self.state)?);
        let opts = &resolved;
        let dest_ref = match dest {
            None | Some("") => ImageReference::Local(String::new()),
            Some(d) => ImageReference::parse(d)?,
        };
        if let ImageReference::Docker(n) = &dest_ref {
            crate::registries::check_registry_sources(
                crate::registries::SourceUse::Commit,
                &n.domain,
            )?;
        }
        // Open the destination first: a bad destination fails before any work.
        let dst = transport::open_destination(&dest_ref, Some(store), &opts.registry)?;

        let base = match self.state.from_image_id.as_str() {
            "" => Vec::new(),
            id => {
                let image = store.image(id)?;
                layer_chain(store, &image.layer)?
            }
        };
        let mut base_blobs = Vec::with_capacity(base.len());
        for l in &base {
            match (&l.diff_digest, l.diff_size) {
                (Some(d), Some(s)) => base_blobs.push(LayerBlob {
                    digest: d.clone(),
                    size: s,
                }),
                _ => {
                    return Err(transport::bad_image(format!(
                        "layer {} has no recorded diff digest",
                        l.id
                    )))
                }
            }
        }

        // The new layer, hashed while it is written.
        let tmp = crate::scratch::ScratchDir::new("commit")?;
        let layer_path = tmp.path().join("layer.tar");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&layer_path)
            .at("creating", &layer_path)?;
        let mut w = Sha256Writer::new(io::BufWriter::new(file));
        // A container with ID maps stores host IDs: the layer gets the container's.
        let own = store.layer(&self.record.layer)?;
        let maps = crate::idmap::IdMappings::from_storage_json(&own.uid_map, &own.gid_map);
        let diff_opts = DiffOptions {
            timestamp: opts.timestamp,
            id_maps: (!maps.is_empty()).then_some(maps),
            ..Default::default()
        };
        let skipped = self.write_layer(store, &own.parent, opts.squash, &diff_opts, &mut w)?;
        // The container's files can become the new layer only when they are exactly what
        // the tar says: nothing left out, no times rewritten, no IDs shifted.
        let adoptable = opts.consume_container
            && skipped == 0
            && !opts.squash
            && diff_opts.timestamp.is_none()
            && diff_opts.latest_mtime.is_none()
            && diff_opts.id_maps.is_none();
        let (new_digest, new_size, bw) = w.finish();
        let file = bw
            .into_inner()
            .map_err(|e| e.into_error())
            .at("writing", &layer_path)?;

        let created = match opts.timestamp {
            Some(t) => rfc3339_of(t)?,
            None => crate::fsutil::now_rfc3339(),
        };
        let built = build_image(
            &self.state,
            &base_blobs,
            &LayerBlob {
                digest: new_digest.clone(),
                size: new_size as i64,
            },
            opts,
            &created,
        )?;
        // buildah warns when the field is set (`config`, the Containerfile instruction), not
        // again at commit; the drop is only logged here.
        for d in &built.dropped {
            tracing::debug!("commit: {}", d.warning());
        }
        let mut src = ContainerSource {
            store,
            name: self.name().to_string(),
            built,
            base,
            new_digest,
            layer_file: Some(file),
            layer_path,
            adopt: adoptable.then(|| crate::transport::AdoptableLayer {
                root: store.root().to_path_buf(),
                layer: self.record.layer.clone(),
            }),
            _tmp: tmp,
        };
        let copy_opts = CopyImageOptions {
            format: None,
            compression: (opts.compression != Compression::None).then_some(opts.compression),
            remove_signatures: false,
            encryption: opts.encryption.clone(),
            ..Default::default()
        };
        let out = transport::copy_image(&mut src, dst, &copy_opts, reporter)?;
        Ok(CommitOutput {
            image_id: out.config_digest.hex().to_string(),
            manifest_digest: out.manifest_digest,
        })
    }

    /// Write the container's change set (or whole rootfs with `squash`) as a tar; returns
    /// how many entries of the tree it left out (sockets). `parent` is the container layer's
    /// parent (what a vfs change set is computed against).
    fn write_layer(
        &self,
        store: &Store,
        parent: &str,
        squash: bool,
        diff_opts: &DiffOptions,
        out: &mut dyn Write,
    ) -> Result<usize> {
        let id = &self.record.layer;
        let dir = store.layer_diff_dir(id)?;
        match (store.driver(), squash) {
            (DriverKind::Overlay, false) => {
                write_changes_counted(ChangeSource::OverlayUpper(&dir), diff_opts, out)
            }
            (DriverKind::Vfs, false) => {
                // The container layer's own parent: the image's top layer, or the mapped
                // copy of it a container with ID maps sits on.
                let parent = match parent {
                    "" => None,
                    p => Some(store.layer_diff_dir(p)?),
                };
                write_changes_counted(
                    ChangeSource::Compare {
                        layer: &dir,
                        parent: parent.as_deref(),
                    },
                    diff_opts,
                    out,
                )
            }
            (DriverKind::Vfs, true) => write_changes_counted(
                ChangeSource::Compare {
                    layer: &dir,
                    parent: None,
                },
                diff_opts,
                out,
            ),
            (DriverKind::Overlay, true) => {
                let mnt = store.mount_layer(id)?;
                let r = write_changes_counted(
                    ChangeSource::Compare {
                        layer: &mnt,
                        parent: None,
                    },
                    diff_opts,
                    out,
                );
                let u = store.unmount_layer(id, false);
                let skipped = r?;
                u.map(|_| skipped)
            }
        }
    }
}

/// `commit --reference-time FILE` (buildah's hidden flag): the commit timestamp, in Unix
/// seconds, taken from the file's modification time; it then acts as `--timestamp`.
pub fn reference_time(file: &std::path::Path) -> Result<i64> {
    let modified = std::fs::metadata(file)
        .and_then(|m| m.modified())
        .at("reading the modification time of", file)?;
    Ok(match modified.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> BuilderState {
        let mut s = BuilderState {
            config: ImageConfig::scratch(),
            ..Default::default()
        };
        s.config.architecture = "amd64".into();
        s.container_id = "c".repeat(64);
        s.from_image = "docker.io/library/busybox:latest".into();
        s.from_image_id = "b".repeat(64);
        s.from_image_digest = format!("sha256:{}", "d".repeat(64));
        s.config.rootfs.diff_ids = vec![Digest::of(b"base")];
        s.config.history = vec![History {
            created_by: Some("base".into()),
            ..Default::default()
        }];
        s
    }

    fn base() -> Vec<LayerBlob> {
        vec![LayerBlob {
            digest: Digest::of(b"base"),
            size: 4,
        }]
    }

    fn new_layer() -> LayerBlob {
        LayerBlob {
            digest: Digest::of(b"new"),
            size: 3,
        }
    }

    fn opts() -> CommitOptions {
        CommitOptions {
            identity_label: true,
            timestamp: Some(0),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_are_the_clis() {
        let d = CommitOptions::default();
        assert!(
            d.identity_label,
            "buildah's --identity-label defaults to true"
        );
        assert_eq!(d.format, None);
        assert_eq!(d.compression, Compression::None);
        let s = BuilderState {
            format: ImageFormat::Docker,
            ..Default::default()
        };
        // Without BUILDAH_FORMAT (the test process does not set it), the container's.
        if std::env::var_os("BUILDAH_FORMAT").is_none() {
            assert_eq!(d.resolved_format(&s).unwrap(), ImageFormat::Docker);
        }
        let oci = CommitOptions {
            format: Some(ImageFormat::Oci),
            ..Default::default()
        };
        assert_eq!(oci.resolved_format(&s).unwrap(), ImageFormat::Oci);
        let b = build_image(&s, &base(), &new_layer(), &d, "t").unwrap();
        assert_eq!(b.manifest_type, DOCKER_MANIFEST);
        let cfg: ImageConfig = serde_json::from_slice(&b.config).unwrap();
        assert!(cfg.config.labels.unwrap().contains_key(IDENTITY_LABEL));
    }

    #[test]
    fn same_content_and_timestamp_give_the_same_id() {
        let a = build_image(
            &state(),
            &base(),
            &new_layer(),
            &opts(),
            &rfc3339_of(0).unwrap(),
        )
        .unwrap();
        let b = build_image(
            &state(),
            &base(),
            &new_layer(),
            &opts(),
            &rfc3339_of(0).unwrap(),
        )
        .unwrap();
        assert_eq!(convert::image_id(&a.config), convert::image_id(&b.config));
        assert_eq!(a.manifest, b.manifest);
        let c = build_image(
            &state(),
            &base(),
            &new_layer(),
            &opts(),
            &rfc3339_of(1).unwrap(),
        )
        .unwrap();
        assert_ne!(convert::image_id(&a.config), convert::image_id(&c.config));
    }

    #[test]
    fn config_and_manifest_contents() {
        let b = build_image(
            &state(),
            &base(),
            &new_layer(),
            &opts(),
            "1970-01-01T00:00:00Z",
        )
        .unwrap();
        let cfg: ImageConfig = serde_json::from_slice(&b.config).unwrap();
        assert_eq!(
            cfg.rootfs.diff_ids,
            vec![Digest::of(b"base"), Digest::of(b"new")]
        );
        assert_eq!(cfg.created.as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(cfg.history.len(), 2);
        assert_eq!(cfg.history[1].created_by.as_deref(), Some("/bin/sh"));
        assert_eq!(
            cfg.history[1].comment.as_deref(),
            Some("FROM docker.io/library/busybox:latest")
        );
        assert_eq!(cfg.config.labels.unwrap()[IDENTITY_LABEL], IDENTITY_VERSION);
        let Manifest::Oci(m) = parse_manifest(&b.manifest, Some(OCI_MANIFEST)).unwrap() else {
            panic!()
        };
        assert_eq!(m.layers.len(), 2);
        assert!(m.layers.iter().all(|l| l.media_type == OCI_LAYER_TAR));
        assert_eq!(m.config.digest, Digest::of(&b.config));
        let ann = m.annotations.unwrap();
        assert_eq!(
            ann[ANNOTATION_BASE_NAME],
            "docker.io/library/busybox:latest"
        );
        assert_eq!(ann[ANNOTATION_CREATED], "1970-01-01T00:00:00Z");
    }

    #[test]
    fn squash_omit_history_and_docker_format() {
        let mut s = state();
        s.config.config.healthcheck = Some(Default::default());
        let o = CommitOptions {
            squash: true,
            ..opts()
        };
        let b = build_image(&s, &base(), &new_layer(), &o, "t").unwrap();
        let cfg: ImageConfig = serde_json::from_slice(&b.config).unwrap();
        assert_eq!(cfg.rootfs.diff_ids, vec![Digest::of(b"new")]);
        assert_eq!(cfg.history.len(), 1);
        assert_eq!(b.dropped.len(), 1, "healthcheck dropped for OCI");
        let o = CommitOptions {
            omit_history: true,
            identity_label: false,
            format: Some(ImageFormat::Docker),
            ..opts()
        };
        let b = build_image(&s, &base(), &new_layer(), &o, "t").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&b.config).unwrap();
        assert!(v.get("history").is_none());
        assert!(v["config"].get("Labels").is_none());
        assert!(v["config"].get("Healthcheck").is_some());
        assert!(
            v.get("container").is_none(),
            "timestamped commits name no container"
        );
        let Manifest::Docker(m) = parse_manifest(&b.manifest, None).unwrap() else {
            panic!()
        };
        assert_eq!(m.layers[1].media_type, DOCKER_LAYER_TAR);
        assert!(m.annotations.is_none());
        // shell as created_by when none is set; explicit created_by wins
        let mut s2 = state();
        s2.config.config.shell = Some(vec!["/bin/bash".into(), "-c".into()]);
        let b = build_image(&s2, &base(), &new_layer(), &opts(), "t").unwrap();
        let cfg: ImageConfig = serde_json::from_slice(&b.config).unwrap();
        assert_eq!(
            cfg.history.last().unwrap().created_by.as_deref(),
            Some("/bin/bash -c")
        );
        let o = CommitOptions {
            created_by: Some("RUN x".into()),
            ..opts()
        };
        let cfg: ImageConfig = serde_json::from_slice(
            &build_image(&s2, &base(), &new_layer(), &o, "t")
                .unwrap()
                .config,
        )
        .unwrap();
        assert_eq!(
            cfg.history.last().unwrap().created_by.as_deref(),
            Some("RUN x")
        );
    }

    #[test]
    fn appended_history_comes_before_the_commit_entry() {
        let mut s = state();
        s.appended_history = vec![History {
            created: Some("x".into()),
            created_by: Some("/bin/sh -c #(nop) ENV A=1".into()),
            ..Default::default()
        }];
        s.created_by = "/bin/sh -c #(nop) CMD [\"sh\"]".into();
        let b = build_image(&s, &base(), &new_layer(), &opts(), &rfc3339_of(0).unwrap()).unwrap();
        let cfg: ImageConfig = serde_json::from_slice(&b.config).unwrap();
        assert_eq!(cfg.history.len(), 3);
        assert!(cfg.history[1].empty_layer);
        assert_eq!(
            cfg.history[1].created.as_deref(),
            Some("1970-01-01T00:00:00Z")
        );
        assert_eq!(
            cfg.history[1].created_by.as_deref(),
            Some("/bin/sh -c #(nop) ENV A=1")
        );
        assert!(!cfg.history[2].empty_layer);
        let with_omit = CommitOptions {
            omit_history: true,
            ..opts()
        };
        let b = build_image(&s, &base(), &new_layer(), &with_omit, "t").unwrap();
        let cfg: ImageConfig = serde_json::from_slice(&b.config).unwrap();
        assert!(cfg.history.is_empty());
    }

    #[test]
    fn empty_layer_commit_adds_only_config_and_history() {
        let o = CommitOptions {
            empty_layer: true,
            ..opts()
        };
        let b = build_image(&state(), &base(), &new_layer(), &o, "t").unwrap();
        let cfg: ImageConfig = serde_json::from_slice(&b.config).unwrap();
        assert_eq!(cfg.rootfs.diff_ids, [Digest::of(b"base")]);
        assert!(cfg.history.last().unwrap().empty_layer);
        let m: ImageManifest = serde_json::from_slice(&b.manifest).unwrap();
        assert_eq!(m.layers.len(), 1);
    }

    #[test]
    fn base_without_history_omits_history() {
        let mut s = state();
        s.config.history.clear();
        let b = build_image(&s, &base(), &new_layer(), &opts(), "t").unwrap();
        let cfg: ImageConfig = serde_json::from_slice(&b.config).unwrap();
        assert!(cfg.history.is_empty());
    }

    #[test]
    fn commit_to_store_is_reproducible_with_timestamp() {
        let t = tempfile::tempdir().unwrap();
        let store = crate::transport::storage::tests::vfs_store(t.path());
        let commit_once = |name: &str| {
            let rec = store
                .create_container(&[name.to_string()], None, "")
                .unwrap();
            let layer_dir = store.root().join("vfs").join("dir").join(&rec.layer);
            std::fs::create_dir_all(layer_dir.join("etc")).unwrap();
            std::fs::write(layer_dir.join("etc/motd"), "hi\n").unwrap();
            let mut state = BuilderState {
                config: ImageConfig::scratch(),
                ..Default::default()
            };
            state.container = name.to_string();
            state.container_id = rec.id.clone();
            let dir = store.container_dir(&rec.id).unwrap();
            let b = Builder {
                state,
                record: rec,
                dir,
            };
            b.commit(
                &store,
                Some(&format!("{name}-img")),
                &opts(),
                &crate::report::Quiet,
            )
            .unwrap()
        };
        let a = commit_once("one");
        let b = commit_once("two");
        assert_eq!(a.image_id, b.image_id);
        assert_eq!(a.manifest_digest, b.manifest_digest);
        let rec = store.image(&a.image_id).unwrap();
        assert!(
            rec.names.contains(&"localhost/one-img:latest".to_string()),
            "{:?}",
            rec.names
        );
        assert!(
            rec.names.contains(&"localhost/two-img:latest".to_string()),
            "{:?}",
            rec.names
        );
        let cfg: ImageConfig = serde_json::from_slice(
            &store
                .image_big_data(&a.image_id, &format!("sha256:{}", a.image_id))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(cfg.created.as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(cfg.rootfs.diff_ids.len(), 1);
    }

    fn store_with_driver(dir: &std::path::Path, driver: DriverKind) -> Store {
        Store::open(&crate::store::StoreOptions {
            root: dir.join("root"),
            run_root: dir.join("run"),
            driver,
            driver_options: Vec::new(),
        })
        .unwrap()
    }

    /// A working container over a two-layer base image, with `etc/new` added in its layer.
    fn container_on_base(store: &Store, name: &str) -> Builder {
        use crate::transport::testutil::{image, layer_tar};
        let mut src = image(
            &[layer_tar("etc/base1", b"1"), layer_tar("etc/base2", b"2")],
            Compression::Gzip,
        );
        let dst = Box::new(
            crate::transport::storage::StorageDest::new(store, vec!["localhost/base:1".into()])
                .unwrap(),
        );
        let out = transport::copy_image(
            &mut src,
            dst,
            &CopyImageOptions::default(),
            &crate::report::Quiet,
        )
        .unwrap();
        let image_id = out.config_digest.hex().to_string();
        let rec = store
            .create_container(&[name.to_string()], Some(&image_id), "")
            .unwrap();
        let dir = store.layer_diff_dir(&rec.layer).unwrap();
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::write(dir.join("etc/new"), "new\n").unwrap();
        let cfg_bytes = store
            .image_big_data(&image_id, &out.config_digest.to_string())
            .unwrap();
        let state = BuilderState {
            config: serde_json::from_slice(&cfg_bytes).unwrap(),
            container: name.to_string(),
            container_id: rec.id.clone(),
            from_image: "localhost/base:1".into(),
            from_image_id: image_id,
            from_image_digest: out.manifest_digest.to_string(),
            ..Default::default()
        };
        let udir = store.container_dir(&rec.id).unwrap();
        Builder {
            state,
            record: rec,
            dir: udir,
        }
    }

    fn layer_names(tar: &[u8]) -> Vec<String> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    struct UnmountOnDrop(std::path::PathBuf);
    impl Drop for UnmountOnDrop {
        fn drop(&mut self) {
            let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }

    #[test]
    fn commit_on_a_base_image_reuses_its_layers_and_squashes() {
        let drivers: &[DriverKind] = if nix::unistd::geteuid().is_root() {
            &[DriverKind::Vfs, DriverKind::Overlay]
        } else {
            &[DriverKind::Vfs]
        };
        for &driver in drivers {
            let t = tempfile::tempdir().unwrap();
            let store = store_with_driver(t.path(), driver);
            // The overlay driver makes its home a private mount (as containers/storage does);
            // undo it before the temporary directory goes, even when an assertion fails.
            let _home = UnmountOnDrop(t.path().join("root/overlay"));
            let b = container_on_base(&store, "work");
            let r = crate::transport::testutil::Collect::default();
            let out = b.commit(&store, Some("app:1"), &opts(), &r).unwrap();
            let lines = r.0.lock().unwrap().clone();
            assert_eq!(
                lines
                    .iter()
                    .filter(|l| l.ends_with("skipped: already exists"))
                    .count(),
                2,
                "{driver:?} {lines:?}"
            );
            let rec = store.image("localhost/app:1").unwrap();
            assert_eq!(rec.id, out.image_id);
            let chain = layer_chain(&store, &rec.layer).unwrap();
            assert_eq!(chain.len(), 3, "{driver:?}");
            let mut top = Vec::new();
            store.layer_diff(&chain[2].id, &mut top).unwrap();
            let names = layer_names(&top);
            assert!(
                names.iter().any(|n| n.trim_end_matches('/') == "etc/new"),
                "{driver:?} {names:?}"
            );
            assert!(
                !names.iter().any(|n| n.contains("base1")),
                "{driver:?} {names:?}"
            );

            // squashed into an OCI layout: one layer with everything; umoci unpacks it
            let lay = t.path().join("lay");
            let o = CommitOptions {
                squash: true,
                ..opts()
            };
            b.commit(
                &store,
                Some(&format!("oci:{}:sq", lay.display())),
                &o,
                &crate::report::Quiet,
            )
            .unwrap();
            let mut src = crate::transport::oci::OciLayoutSource::open(&lay, Some("sq")).unwrap();
            let (_, _, m) = transport::load_image_manifest(&mut src, &Default::default()).unwrap();
            assert_eq!(m.layers.len(), 1);
            assert_eq!(
                m.layers[0].media_type, OCI_LAYER_TAR,
                "commit keeps layers uncompressed by default"
            );
            let mut tarball = Vec::new();
            src.write_blob(&m.layers[0], &mut tarball).unwrap();
            let names = layer_names(&tarball);
            for f in ["etc/base1", "etc/base2", "etc/new"] {
                assert!(
                    names.iter().any(|n| n == f),
                    "{driver:?} {f} missing from {names:?}"
                );
            }
            if std::process::Command::new("umoci")
                .arg("--version")
                .output()
                .is_ok()
            {
                let bundle = t.path().join("bundle");
                let st = std::process::Command::new("umoci")
                    .arg("unpack")
                    .arg("--image")
                    .arg(format!("{}:sq", lay.display()))
                    .arg(&bundle)
                    .status()
                    .unwrap();
                assert!(st.success());
                assert_eq!(
                    std::fs::read(bundle.join("rootfs/etc/new")).unwrap(),
                    b"new\n"
                );
            }
            assert_eq!(
                store.layer_mount_count(&b.record.layer).unwrap(),
                0,
                "squash left a mount"
            );
            // compressed commit into a dir: gzip layers, base layers recompressed from the store
            let d = t.path().join("dir");
            let o = CommitOptions {
                compression: Compression::Gzip,
                ..opts()
            };
            b.commit(
                &store,
                Some(&format!("dir:{}", d.display())),
                &o,
                &crate::report::Quiet,
            )
            .unwrap();
            let m: ImageManifest =
                serde_json::from_slice(&std::fs::read(d.join("manifest.json")).unwrap()).unwrap();
            assert!(
                m.layers.iter().all(|l| l.media_type == OCI_LAYER_GZIP),
                "{:?}",
                m.layers
            );
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339_of(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_of(1700000000).unwrap(), "2023-11-14T22:13:20Z");
    }
}
