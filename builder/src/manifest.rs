//! Manifest lists (`hod manifest …`), stored as buildah 1.28 and podman store them, so each
//! tool sees the others' lists.
//!
//! ```text
//!  images.json: { id: <random>, names: ["localhost/mylist:latest"], no layer,
//!                 big-data-names: ["manifest", "instances.json"] }
//!  <id>/manifest        the list itself: an OCI image index (always OCI in the store)
//!  <id>/instances.json  {"": <list id>, "<instance digest>": "<where it came from>"}
//!                       e.g. "containers-storage:[vfs@/root+/run]@<image id>", "oci:/dir:tag"
//!
//!  create ──▶ Store::create_image_with_free_names (names checked and written under one lock)
//!  add / annotate / remove ──▶ Store::update_image_big_data (read-modify-write under one lock)
//!  add IMAGE ──▶ store image, else transport::open_source(ref) ──▶ manifest (+ config for the
//!               platform: os, architecture, variant, os.version, os.features)
//!  push LIST DEST ──▶ transport::open_destination(DEST)
//!       [--all] each instance: store image by digest, else its recorded reference
//!               ──copy_image──▶ InstanceDest (put_instance_manifest: by digest, not tagged)
//!       the list (instance descriptors updated to what was written) ──▶ put_manifest, commit
//!  from LIST ──▶ choose_instance ──▶ instance_image (the store image with that digest)
//! ```
//! The instance images are not part of the list record: `manifest rm` removes only the list.
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::archive::Compression;
use crate::builder::ImageFormat;
use crate::error::{Error, Result, ResultExt};
use crate::image::manifest::{
    self, Descriptor, ImageIndex, Manifest, DOCKER_MANIFEST_LIST, OCI_INDEX,
};
use crate::image::platform::{choose_instance, Platform};
use crate::image::{Digest, ImageConfig};
use crate::options::RegistryContext;
use crate::reference::{normalize_local_name, parse_named, ImageReference};
use crate::report::{Reporter, TransferProgress};
use crate::store::{BigData, ImageRecord, Store};
use crate::transport::{
    self, read_small_blob, BlobInfo, CopyImageOptions, ImageDestination, ImageSource, LayerInfo,
};
use std::sync::Arc;

/// The big-data key holding the list's instance → source-reference map.
pub const INSTANCES_KEY: &str = "instances.json";
/// The big-data key holding the list itself.
pub const MANIFEST_KEY: &str = "manifest";

/// The list `manifest create` stores, byte for byte as buildah 1.28 does (an empty Docker
/// list; any change stores an OCI index).
pub const EMPTY_LIST: &[u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":null}"#;

/// Manifest-list errors.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The named image exists but is not a list.
    #[error("{0}: image is not a manifest list")]
    NotAList(String),
    /// No instance with that digest.
    #[error("no instance matching digest {0:?} found in manifest list: file does not exist")]
    NoInstance(String),
    /// An instance of a list is not in local storage.
    #[error("instance {digest} of manifest list {list} is not in local storage")]
    InstanceNotLocal {
        /// The list's ID.
        list: String,
        /// The instance digest.
        digest: Digest,
    },
    /// A manifest that should be a list is not one.
    #[error("tried manifest is of type {0} (not a list type)")]
    NotAListType(String),
}

/// The list type written by `manifest push --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    /// An OCI image index.
    Oci,
    /// A Docker manifest list (v2s2).
    Docker,
}

impl ListFormat {
    /// Parse `oci` or `v2s2` (`docker` too), as buildah's `--format`.
    pub fn parse(s: &str) -> Result<ListFormat> {
        match s.to_ascii_lowercase().as_str() {
            "oci" => Ok(ListFormat::Oci),
            "v2s2" | "docker" => Ok(ListFormat::Docker),
            _ => Err(Error::invalid(format!(
                "unsupported format {s:?}: should be either \"oci\" or \"v2s2\""
            ))),
        }
    }
    /// The list's media type.
    pub fn media_type(self) -> &'static str {
        match self {
            ListFormat::Oci => OCI_INDEX,
            ListFormat::Docker => DOCKER_MANIFEST_LIST,
        }
    }
    fn image_format(self) -> ImageFormat {
        match self {
            ListFormat::Oci => ImageFormat::Oci,
            ListFormat::Docker => ImageFormat::Docker,
        }
    }
}

/// What `--annotation`, `--arch`, `--os`, `--os-version`, `--os-features`, `--variant` and
/// `--features` set on an instance (`None` = leave as it is).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct InstanceUpdate {
    /// Replaces the instance's annotations when not empty.
    pub annotations: BTreeMap<String, String>,
    /// Architecture.
    pub arch: Option<String>,
    /// OS.
    pub os: Option<String>,
    /// OS version.
    pub os_version: Option<String>,
    /// OS features.
    pub os_features: Option<Vec<String>>,
    /// Architecture variant.
    pub variant: Option<String>,
    /// CPU features. An OCI index (the stored form) has no place for them, so, as in
    /// buildah 1.28, they are not recorded.
    pub features: Option<Vec<String>>,
}

impl InstanceUpdate {
    fn apply(&self, d: &mut Descriptor) {
        if !self.annotations.is_empty() {
            d.annotations = Some(self.annotations.clone());
        }
        let p = d.platform.get_or_insert_with(Default::default);
        if let Some(a) = &self.arch {
            p.architecture = a.clone();
        }
        if let Some(o) = &self.os {
            p.os = o.clone();
        }
        if let Some(v) = &self.os_version {
            p.os_version = Some(v.clone()).filter(|v| !v.is_empty());
        }
        if let Some(f) = &self.os_features {
            p.os_features = Some(f.clone()).filter(|f| !f.is_empty());
        }
        if let Some(v) = &self.variant {
            p.variant = Some(v.clone()).filter(|v| !v.is_empty());
        }
    }
}

/// Options of [`create`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CreateOptions {
    /// `--all`: add every instance of images that are lists.
    pub all: bool,
    /// `--amend`: use an existing list of that name instead of failing.
    pub amend: bool,
    /// Registry access for images named by reference.
    pub registry: RegistryContext,
}

/// Options of [`add`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AddOptions {
    /// `--all`: add every instance of an image that is a list (else the host's).
    pub all: bool,
    /// Overrides for the added instance(s).
    pub update: InstanceUpdate,
    /// Registry access.
    pub registry: RegistryContext,
}

/// Options of [`push`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PushListOptions {
    /// `--all`: copy the instances' images too (buildah 1.28's default: only the list).
    pub all: bool,
    /// `--format`: the list type (and instance format) to write; `None` keeps the stored.
    pub format: Option<ListFormat>,
    /// `--remove-signatures`.
    pub remove_signatures: bool,
    /// `--rm`: remove the list from local storage once pushed.
    pub rm: bool,
    /// Registry access.
    pub registry: RegistryContext,
}

/// A manifest list loaded from the store.
#[derive(Debug, Clone)]
pub struct ManifestList {
    /// The list image's ID.
    pub id: String,
    /// Its names.
    pub names: Vec<String>,
    /// The list.
    pub index: ImageIndex,
    /// `instances.json`: instance digest → the reference it was added from (`""` → the ID).
    pub instances: BTreeMap<String, String>,
}

fn parse_list(id: &str, name: &str, manifest: &[u8]) -> Result<ImageIndex> {
    match manifest::parse_manifest(manifest, None)
        .map_err(|e| e.context(format!("parsing manifest list of image {id}")))?
    {
        Manifest::OciIndex(i) | Manifest::DockerList(i) => Ok(i),
        _ => Err(ManifestError::NotAList(name.to_string()).into()),
    }
}

fn parse_instances(data: Option<&[u8]>) -> Result<BTreeMap<String, String>> {
    match data {
        None => Ok(BTreeMap::new()),
        Some(d) => serde_json::from_slice(d).map_err(|source| Error::Json {
            op: "parsing".into(),
            path: INSTANCES_KEY.into(),
            source,
        }),
    }
}

fn display_name(rec: &ImageRecord, typed: &str) -> String {
    rec.names
        .first()
        .cloned()
        .unwrap_or_else(|| typed.to_string())
}

/// Whether a store record is a manifest list (its `manifest` item is an index or list).
pub fn is_list(store: &Store, rec: &ImageRecord) -> bool {
    if !rec.big_data_names.iter().any(|k| k == MANIFEST_KEY) || !rec.layer.is_empty() {
        return false;
    }
    match store.image_big_data(&rec.id, MANIFEST_KEY) {
        Ok(m) => matches!(
            manifest::parse_manifest(&m, None),
            Ok(Manifest::OciIndex(_) | Manifest::DockerList(_))
        ),
        Err(_) => false,
    }
}

/// Load the list `name` (name, ID or ID prefix).
pub fn load(store: &Store, name: &str) -> Result<ManifestList> {
    let rec = store.image(name)?;
    let shown = display_name(&rec, name);
    let m = match store.image_big_data(&rec.id, MANIFEST_KEY) {
        Ok(m) => m,
        Err(Error::NotFound { .. }) => return Err(ManifestError::NotAList(shown).into()),
        Err(e) => return Err(e),
    };
    if !rec.layer.is_empty() {
        return Err(ManifestError::NotAList(shown).into());
    }
    let index = parse_list(&rec.id, &shown, &m)?;
    let inst = match store.image_big_data(&rec.id, INSTANCES_KEY) {
        Ok(d) => Some(d),
        Err(Error::NotFound { .. }) => None,
        Err(e) => return Err(e),
    };
    Ok(ManifestList {
        id: rec.id.clone(),
        names: rec.names.clone(),
        index,
        instances: parse_instances(inst.as_deref())?,
    })
}

/// `manifest exists`: whether a manifest list `name` is in the store (an image that is not
/// a list is [`ManifestError::NotAList`]).
pub fn exists(store: &Store, name: &str) -> Result<bool> {
    match load(store, name) {
        Ok(_) => Ok(true),
        Err(Error::NotFound { .. }) => Ok(false),
        // An image that is not a list is an error, as in buildah 1.28 (exit 125).
        Err(e) => Err(e),
    }
}

/// The image in the store that is instance `digest` of the list `list_id` (`from LIST`).
pub fn instance_image(store: &Store, list_id: &str, digest: &Digest) -> Result<ImageRecord> {
    store
        .images_by_digest(digest)?
        .into_iter()
        .find(|r| r.id != list_id && (!r.layer.is_empty() || !is_list(store, r)))
        .ok_or_else(|| {
            ManifestError::InstanceNotLocal {
                list: list_id.to_string(),
                digest: digest.clone(),
            }
            .into()
        })
}

/// What `push` and `rmi`-like verbs act on when `name` is a list: the store image of the
/// `platform`'s instance (as buildah 1.28 resolves a list name to an image); any other name
/// is returned as it is.
pub fn image_or_instance(store: &Store, name: &str, platform: &Platform) -> Result<String> {
    let rec = match store.image(name) {
        Ok(r) => r,
        Err(_) => return Ok(name.to_string()),
    };
    if !is_list(store, &rec) {
        return Ok(name.to_string());
    }
    let l = load(store, &rec.id)?;
    let d = choose_instance(&l.index, platform)?;
    Ok(instance_image(store, &l.id, &d.digest)?.id)
}

/// The platforms image `name` is available for (`bud --all-platforms`): the entries of a
/// manifest list in the store; else, unless the pull policy is never, of the list the name
/// has in its registry (buildah asks the registry); else the image's own platform (pulled
/// first when it is not here).
pub fn platforms_of(
    store: &Store,
    name: &str,
    opts: &crate::options::FromOptions,
    reporter: &dyn Reporter,
) -> Result<Vec<Platform>> {
    let of_list = |l: &ImageIndex| -> Vec<Platform> {
        l.manifests
            .iter()
            .filter_map(|d| d.platform.as_ref())
            .map(|p| Platform::new(&p.os, &p.architecture, p.variant.as_deref().unwrap_or("")))
            .collect()
    };
    let local = crate::from::local_name(name);
    let rec = match store.image(local) {
        Ok(r) => Some(r),
        Err(Error::NotFound { .. }) => None,
        Err(e) => return Err(e),
    };
    if let Some(r) = &rec {
        if let Ok(m) = store.image_big_data(&r.id, MANIFEST_KEY) {
            if let Ok(Manifest::OciIndex(l) | Manifest::DockerList(l)) =
                manifest::parse_manifest(&m, None)
            {
                return Ok(of_list(&l));
            }
        }
    }
    let never = opts.pull_policy == crate::pull::PullPolicy::Never;
    // A pulled image keeps only its own instance: the registry says which others there are.
    let remote = match ImageReference::parse(name)? {
        ImageReference::Local(n) if !never && !n.starts_with("localhost/") => parse_named(&n)
            .ok()
            .map(|n| ImageReference::Docker(n.with_default_tag())),
        ImageReference::Local(_) => None,
        r => Some(r),
    };
    if let Some(r) = remote {
        let listed = (|| -> Result<Option<Vec<Platform>>> {
            let mut src = transport::open_source(&r, Some(store), &opts.registry)?;
            let (bytes, mt) = src.manifest(None)?;
            Ok(
                match manifest::parse_manifest(&bytes, Some(mt.as_str()).filter(|m| !m.is_empty()))?
                {
                    Manifest::OciIndex(l) | Manifest::DockerList(l) => Some(of_list(&l)),
                    _ => None,
                },
            )
        })();
        match listed {
            Ok(Some(p)) => return Ok(p),
            Ok(None) => {}
            Err(e) if rec.is_none() => return Err(e),
            Err(e) => tracing::debug!("reading the manifest of {name}: {e}; using the local image"),
        }
    }
    let rec = match rec {
        Some(r) => r,
        None if !never => {
            let popts = crate::pull::PullOptions {
                policy: opts.pull_policy,
                registry: opts.registry.clone(),
                ..Default::default()
            };
            let id = crate::pull::pull(store, local, &popts, reporter)?;
            store.image(&id)?
        }
        None => {
            return Err(Error::NotFound {
                kind: "image",
                name: name.to_string(),
            })
        }
    };
    let c = crate::from::read_image(store, rec, &Platform::default())?.config;
    Ok(vec![Platform::new(
        &c.os,
        &c.architecture,
        c.variant.as_deref().unwrap_or(""),
    )])
}

fn index_bytes(index: &ImageIndex) -> Vec<u8> {
    manifest::to_json(index)
}

fn instances_bytes(map: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    crate::store::json::to_go_json(map)
}

/// `manifest create LIST [IMAGE…]`: a new empty OCI index named `name` (or, with `--amend`,
/// the existing list), then each image added. Returns the list's ID.
pub fn create(
    store: &Store,
    name: &str,
    images: &[String],
    opts: &CreateOptions,
    reporter: &dyn Reporter,
) -> Result<String> {
    crate::registries::auth::check_auth_file(&opts.registry)?;
    let full = normalize_local_name(name)?.with_default_tag().to_string();
    let existing = if opts.amend {
        match load(store, &full) {
            Ok(l) => Some(l.id),
            Err(Error::NotFound { .. }) => None,
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    let id = match existing {
        Some(id) => id,
        None => {
            let id = crate::store::paths::random_id();
            let instances = BTreeMap::from([(String::new(), id.clone())]);
            store
                .create_image_with_free_names(
                    &id,
                    std::slice::from_ref(&full),
                    &[
                        BigData {
                            key: MANIFEST_KEY.into(),
                            data: EMPTY_LIST.to_vec(),
                        },
                        BigData {
                            key: INSTANCES_KEY.into(),
                            data: instances_bytes(&instances)?,
                        },
                    ],
                )
                .map_err(|e| match e {
                    Error::NameInUse { name, id } => Error::invalid(format!(
                        "image name {name:?} is already associated with image {id:?}: that name is already in use"
                    )),
                    e => e,
                })
                .context_with(|| "creating image to hold manifest list".to_string())?;
            id
        }
    };
    let add_opts = AddOptions {
        all: opts.all,
        update: InstanceUpdate::default(),
        registry: opts.registry.clone(),
    };
    for image in images {
        add(store, &id, image, &add_opts, reporter)?;
    }
    Ok(id)
}

/// One instance found for `add`: its descriptor and where it came from.
struct Found {
    desc: Descriptor,
    reference: String,
}

fn store_reference(store: &Store, id: &str) -> String {
    format!(
        "containers-storage:[{}@{}+{}]@{id}",
        store.driver().name(),
        store.root().display(),
        store.run_root().display()
    )
}

fn absolute(p: &Path) -> std::path::PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|c| c.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// The reference string recorded in `instances.json` (paths made absolute, as
/// containers/image's `ImageName` gives them).
fn reference_string(r: &ImageReference) -> String {
    let mut r = r.clone();
    match &mut r {
        ImageReference::Oci { path, .. }
        | ImageReference::OciArchive { path, .. }
        | ImageReference::DockerArchive { path, .. }
        | ImageReference::Dir { path } => *path = absolute(path),
        _ => {}
    }
    match &r {
        // containers/image writes `oci:PATH:` when there is no reference.
        ImageReference::Oci {
            reference: None, ..
        } => format!("{r}:"),
        _ => r.to_string(),
    }
}

fn platform_of_config(config: &[u8]) -> Result<manifest::Platform> {
    let c: ImageConfig = serde_json::from_slice(config).map_err(|source| Error::Json {
        op: "parsing".into(),
        path: "image config".into(),
        source,
    })?;
    Ok(manifest::Platform {
        architecture: c.architecture,
        os: c.os,
        os_version: c.os_version.filter(|v| !v.is_empty()),
        os_features: c.os_features.filter(|f| !f.is_empty()),
        variant: c.variant.filter(|v| !v.is_empty()),
        other: Default::default(),
    })
}

/// The descriptor of one single-image manifest read from `src` (`instance` = by digest).
fn describe_image(
    src: &mut dyn ImageSource,
    bytes: Vec<u8>,
    declared: &str,
    known: Option<&Descriptor>,
) -> Result<Descriptor> {
    let parsed = manifest::parse_manifest(&bytes, Some(declared).filter(|d| !d.is_empty()))?;
    let (mt, m) = match parsed {
        Manifest::Oci(m) => (manifest::OCI_MANIFEST, m),
        Manifest::Docker(m) => (manifest::DOCKER_MANIFEST, m),
        _ => {
            return Err(transport::bad_image(
                "nested manifest lists are not supported",
            ))
        }
    };
    let mut d = Descriptor::new(mt, Digest::of(&bytes), bytes.len() as i64);
    d.platform = match known.and_then(|k| k.platform.clone()) {
        Some(p) => Some(p),
        None => Some(platform_of_config(&read_small_blob(src, &m.config)?)?),
    };
    Ok(d)
}

/// Find what `image` names (a store image, else a transport reference; a bare name not in
/// the store is a registry reference) and describe the instance(s) to add.
fn find_instances(
    store: &Store,
    image: &str,
    all: bool,
    ctx: &RegistryContext,
) -> Result<(Digest, Vec<Found>)> {
    let r = ImageReference::parse(image)?;
    let local = match &r {
        ImageReference::Local(n)
        | ImageReference::Storage {
            store: None,
            image: n,
        } => match store.image(n) {
            Ok(rec) => Some(rec),
            Err(Error::NotFound { .. }) if matches!(r, ImageReference::Local(_)) => None,
            Err(e) => return Err(e),
        },
        _ => None,
    };
    if let Some(rec) = local {
        if is_list(store, &rec) {
            // A list in the store: its instances, with the references it recorded.
            let l = load(store, &rec.id)?;
            let picked: Vec<Descriptor> = if all {
                l.index.manifests.clone()
            } else {
                vec![choose_instance(&l.index, &Platform::default())?.clone()]
            };
            let top = rec
                .digest
                .clone()
                .unwrap_or_else(|| Digest::of(&index_bytes(&l.index)));
            let found = picked
                .into_iter()
                .map(|d| Found {
                    reference: l
                        .instances
                        .get(&d.digest.to_string())
                        .cloned()
                        .unwrap_or_default(),
                    desc: d,
                })
                .collect();
            return Ok((top, found));
        }
        let mut src = transport::storage::StorageSource::open(store, &rec.id)?;
        let bytes = store.image_big_data(&rec.id, MANIFEST_KEY)?;
        let d = describe_image(&mut src, bytes, "", None)?;
        return Ok((
            d.digest.clone(),
            vec![Found {
                desc: d,
                reference: store_reference(store, &rec.id),
            }],
        ));
    }
    let r = match r {
        ImageReference::Local(n) => ImageReference::Docker(parse_named(&n)?.with_default_tag()),
        r => r,
    };
    let reference = reference_string(&r);
    let mut src = transport::open_source(&r, Some(store), ctx)?;
    let (bytes, mt) = src.manifest(None)?;
    let top = Digest::of(&bytes);
    match manifest::parse_manifest(&bytes, Some(mt.as_str()).filter(|m| !m.is_empty()))? {
        Manifest::OciIndex(i) | Manifest::DockerList(i) => {
            let picked: Vec<Descriptor> = if all {
                i.manifests.clone()
            } else {
                vec![choose_instance(&i, &Platform::default())?.clone()]
            };
            let mut found = Vec::new();
            for p in picked {
                let (b, m) = src.manifest(Some(&p.digest))?;
                if Digest::of(&b) != p.digest {
                    return Err(transport::bad_image(format!(
                        "manifest {} of {reference} does not match its digest",
                        p.digest
                    )));
                }
                let mut d = describe_image(src.as_mut(), b, &m, Some(&p))?;
                d.annotations = p.annotations.clone();
                found.push(Found {
                    desc: d,
                    reference: reference.clone(),
                });
            }
            Ok((top, found))
        }
        _ => {
            let d = describe_image(src.as_mut(), bytes, &mt, None)?;
            Ok((top, vec![Found { desc: d, reference }]))
        }
    }
}

/// What [`update_list`] applies: the list and its `instances.json` map, changed in place.
type ListUpdate<'a> = dyn FnMut(&mut ImageIndex, &mut BTreeMap<String, String>) -> Result<()> + 'a;

/// Read-modify-write of a list under the store's lock.
fn update_list(store: &Store, list_id: &str, f: &mut ListUpdate<'_>) -> Result<()> {
    store.update_image_big_data(list_id, &[MANIFEST_KEY, INSTANCES_KEY], &mut |rec, old| {
        let shown = display_name(rec, list_id);
        let m = old[0]
            .as_deref()
            .ok_or_else(|| Error::from(ManifestError::NotAList(shown.clone())))?;
        let mut index = parse_list(&rec.id, &shown, m)?;
        let mut inst = parse_instances(old[1].as_deref())?;
        inst.entry(String::new()).or_insert_with(|| rec.id.clone());
        f(&mut index, &mut inst)?;
        // As buildah 1.28 saves a changed list: an OCI index.
        index.schema_version = 2;
        index.media_type = Some(OCI_INDEX.to_string());
        Ok(vec![
            BigData {
                key: MANIFEST_KEY.into(),
                data: index_bytes(&index),
            },
            BigData {
                key: INSTANCES_KEY.into(),
                data: instances_bytes(&inst)?,
            },
        ])
    })?;
    Ok(())
}

/// `manifest add LIST IMAGE`: add the image (the host's instance of a list, or with `--all`
/// every instance) to the list. Returns the list's ID and the added manifest's digest.
pub fn add(
    store: &Store,
    list: &str,
    image: &str,
    opts: &AddOptions,
    _reporter: &dyn Reporter,
) -> Result<(String, Digest)> {
    crate::registries::auth::check_auth_file(&opts.registry)?;
    let l = load(store, list)?;
    let (top, found) = find_instances(store, image, opts.all, &opts.registry)
        .context_with(|| format!("adding {image:?} to manifest list {list:?}"))?;
    update_list(store, &l.id, &mut |index, inst| {
        for f in &found {
            let mut d = f.desc.clone();
            opts.update.apply(&mut d);
            match index.manifests.iter_mut().find(|m| m.digest == d.digest) {
                Some(m) => *m = d,
                None => index.manifests.push(d),
            }
            if !f.reference.is_empty() {
                inst.insert(f.desc.digest.to_string(), f.reference.clone());
            }
        }
        Ok(())
    })?;
    // buildah prints the instance it added (the source list's digest only with --all).
    let shown = match found.as_slice() {
        [one] if !opts.all => one.desc.digest.clone(),
        _ => top,
    };
    Ok((l.id, shown))
}

/// The digest an `annotate`/`remove` argument names: a digest, else an image whose digest
/// is used.
fn instance_digest(store: &Store, instance: &str) -> Result<Digest> {
    if let Ok(d) = instance.parse::<Digest>() {
        return Ok(d);
    }
    let rec = store.image(instance)?;
    rec.digest
        .ok_or_else(|| Error::invalid(format!("image {instance:?} has no manifest digest")))
}

/// `manifest annotate LIST INSTANCE`: change an instance's platform fields and annotations.
pub fn annotate(
    store: &Store,
    list: &str,
    instance: &str,
    update: &InstanceUpdate,
) -> Result<(String, Digest)> {
    let l = load(store, list)?;
    let d = instance_digest(store, instance)?;
    update_list(store, &l.id, &mut |index, _| {
        let m = index
            .manifests
            .iter_mut()
            .find(|m| m.digest == d)
            .ok_or_else(|| Error::from(ManifestError::NoInstance(d.to_string())))?;
        update.apply(m);
        Ok(())
    })
    .context_with(|| format!("annotating manifest list {list:?}"))?;
    Ok((l.id, d))
}

/// `manifest remove LIST DIGEST`: drop an instance from the list.
pub fn remove(store: &Store, list: &str, instance: &str) -> Result<(String, Digest)> {
    let l = load(store, list)?;
    let d: Digest = instance
        .parse()
        .map_err(|_| Error::invalid(format!("invalid instance digest {instance:?}")))?;
    update_list(store, &l.id, &mut |index, inst| {
        let before = index.manifests.len();
        index.manifests.retain(|m| m.digest != d);
        if index.manifests.len() == before {
            return Err(ManifestError::NoInstance(d.to_string()).into());
        }
        inst.remove(&d.to_string());
        Ok(())
    })
    .context_with(|| format!("removing from manifest list {list:?}"))?;
    Ok((l.id, d))
}

/// What `manifest rm` removed.
#[derive(Debug, Clone)]
pub struct Removed {
    /// The names removed (`untagged: NAME`).
    pub names: Vec<String>,
    /// The list's ID when the list itself went (`None`: one of its names only).
    pub id: Option<String>,
}

/// `manifest rm LIST`: remove the list record only (its instances stay). As `rmi`, a name
/// of a list with other names only untags that name.
pub fn rm(store: &Store, list: &str) -> Result<Removed> {
    let l = load(store, list)?;
    if l.names.len() > 1 {
        if let Some(n) = l
            .names
            .iter()
            .find(|n| crate::reference::name_matches(n, list))
        {
            let rest: Vec<String> = l.names.iter().filter(|x| *x != n).cloned().collect();
            store.set_image_names(&l.id, &rest)?;
            return Ok(Removed {
                names: vec![n.clone()],
                id: None,
            });
        }
    }
    store.delete_image(&l.id)?;
    Ok(Removed {
        names: l.names,
        id: Some(l.id),
    })
}

#[derive(Serialize)]
struct ShownPlatform<'a> {
    architecture: &'a str,
    os: &'a str,
    #[serde(rename = "os.version", skip_serializing_if = "Option::is_none")]
    os_version: Option<&'a String>,
    #[serde(rename = "os.features", skip_serializing_if = "Option::is_none")]
    os_features: Option<&'a Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a String>,
}

#[derive(Serialize)]
struct ShownDescriptor<'a> {
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    size: i64,
    digest: &'a Digest,
    platform: ShownPlatform<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<&'a BTreeMap<String, String>>,
}

#[derive(Serialize)]
struct ShownList<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: i64,
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    manifests: Vec<ShownDescriptor<'a>>,
}

fn indent4<T: Serialize>(v: &T) -> Result<String> {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    v.serialize(&mut ser).map_err(|source| Error::Json {
        op: "formatting".into(),
        path: "manifest list".into(),
        source,
    })?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The JSON `manifest inspect` prints for a local list: buildah 1.28's view of it (the
/// Docker list form, with each entry's annotations), indented by four spaces.
pub fn inspect_text(list: &ManifestList) -> Result<String> {
    let empty = manifest::Platform::default();
    let shown = ShownList {
        schema_version: 2,
        media_type: DOCKER_MANIFEST_LIST,
        manifests: list
            .index
            .manifests
            .iter()
            .map(|d| {
                let p = d.platform.as_ref().unwrap_or(&empty);
                ShownDescriptor {
                    media_type: &d.media_type,
                    size: d.size,
                    digest: &d.digest,
                    platform: ShownPlatform {
                        architecture: &p.architecture,
                        os: &p.os,
                        os_version: p.os_version.as_ref(),
                        os_features: p.os_features.as_ref(),
                        variant: p.variant.as_ref(),
                    },
                    annotations: d.annotations.as_ref(),
                }
            })
            .collect(),
    };
    indent4(&shown)
}

/// `manifest inspect NAME`: a local list as [`inspect_text`] shows it; otherwise `NAME` is
/// read through its transport (a bare name: a registry) and must be a list, printed as
/// stored, indented.
pub fn inspect(store: &Store, name: &str, ctx: &RegistryContext) -> Result<String> {
    crate::registries::auth::check_auth_file(ctx)?;
    match load(store, name) {
        Ok(l) => return inspect_text(&l),
        Err(Error::NotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    let r = match ImageReference::parse(name)? {
        ImageReference::Local(n) => ImageReference::Docker(parse_named(&n)?.with_default_tag()),
        r => r,
    };
    (|| -> Result<String> {
        let mut src = transport::open_source(&r, Some(store), ctx)?;
        let (bytes, mt) = src.manifest(None)?;
        match manifest::parse_manifest(&bytes, Some(mt.as_str()).filter(|m| !m.is_empty()))? {
            Manifest::OciIndex(_) | Manifest::DockerList(_) => {
                let v: serde_json::Value =
                    serde_json::from_slice(&bytes).map_err(|source| Error::Json {
                        op: "parsing".into(),
                        path: "manifest list".into(),
                        source,
                    })?;
                indent4(&v)
            }
            other => Err(ManifestError::NotAListType(other.media_type().to_string()).into()),
        }
    })()
    .context_with(|| format!("reading image \"{r}\""))
}

/// A source limited to one instance (by digest) of a list it holds.
struct InstanceSource<'s> {
    inner: Box<dyn ImageSource + 's>,
    digest: Digest,
}

impl ImageSource for InstanceSource<'_> {
    fn manifest(&mut self, instance: Option<&Digest>) -> Result<(Vec<u8>, String)> {
        if instance.is_some() {
            return self.inner.manifest(instance);
        }
        let (b, mt) = self.inner.manifest(None)?;
        if Digest::of(&b) == self.digest {
            return Ok((b, mt));
        }
        let (b, mt) = self.inner.manifest(Some(&self.digest))?;
        if Digest::of(&b) != self.digest {
            return Err(transport::bad_image(format!(
                "{}: manifest {} does not match its digest",
                self.inner.describe(),
                self.digest
            )));
        }
        Ok((b, mt))
    }
    fn write_blob(&mut self, desc: &Descriptor, out: &mut dyn Write) -> Result<()> {
        self.inner.write_blob(desc, out)
    }
    fn open_blob(&mut self, desc: &Descriptor) -> Result<Option<Box<dyn std::io::Read + Send>>> {
        self.inner.open_blob(desc)
    }
    fn describe(&self) -> String {
        format!("{}@{}", self.inner.describe(), self.digest)
    }
    fn report_transfers(&mut self, sink: Arc<dyn TransferProgress>) -> bool {
        self.inner.report_transfers(sink)
    }
}

/// A destination that takes one instance of a list being copied: its manifest goes in by
/// digest ([`ImageDestination::put_instance_manifest`]) and its commit waits for the list's.
struct InstanceDest<'a, 'd> {
    inner: &'a mut (dyn ImageDestination + 'd),
}

impl ImageDestination for InstanceDest<'_, '_> {
    fn staging_dir(&self) -> &Path {
        self.inner.staging_dir()
    }
    fn required_compression(&self) -> Option<Compression> {
        self.inner.required_compression()
    }
    fn desired_compression(&self) -> Option<Compression> {
        self.inner.desired_compression()
    }
    fn supported_manifest_types(&self) -> &'static [&'static str] {
        self.inner.supported_manifest_types()
    }
    fn try_reuse_layer(
        &mut self,
        desc: &Descriptor,
        layer: &LayerInfo,
    ) -> Result<Option<BlobInfo>> {
        self.inner.try_reuse_layer(desc, layer)
    }
    fn accepts_layer_stream(&self) -> bool {
        self.inner.accepts_layer_stream()
    }
    fn put_layer_stream(
        &mut self,
        r: Box<dyn std::io::Read + Send>,
        desc: &Descriptor,
        layer: &LayerInfo,
    ) -> Result<()> {
        self.inner.put_layer_stream(r, desc, layer)
    }
    fn put_blob(
        &mut self,
        file: tempfile::NamedTempFile,
        desc: &Descriptor,
        layer: Option<&LayerInfo>,
    ) -> Result<()> {
        self.inner.put_blob(file, desc, layer)
    }
    fn put_manifest(&mut self, data: &[u8], media_type: &str) -> Result<()> {
        self.inner.put_instance_manifest(data, media_type)
    }
    fn commit(self: Box<Self>) -> Result<()> {
        Ok(())
    }
    fn report_transfers(&mut self, sink: Arc<dyn TransferProgress>) -> bool {
        self.inner.report_transfers(sink)
    }
}

/// Open the source of one instance: the store image with that digest, else the reference
/// the list recorded for it.
fn open_instance<'s>(
    store: &'s Store,
    list: &ManifestList,
    d: &Descriptor,
    ctx: &RegistryContext,
) -> Result<Box<dyn ImageSource + 's>> {
    if let Ok(rec) = instance_image(store, &list.id, &d.digest) {
        if rec.digest.as_ref() == Some(&d.digest) {
            return Ok(Box::new(transport::storage::StorageSource::open(
                store, &rec.id,
            )?));
        }
    }
    let reference = list
        .instances
        .get(&d.digest.to_string())
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            Error::from(ManifestError::InstanceNotLocal {
                list: list.id.clone(),
                digest: d.digest.clone(),
            })
        })?;
    let r = ImageReference::parse(reference.strip_suffix(':').unwrap_or(reference))?;
    let inner = transport::open_source(&r, Some(store), ctx)?;
    Ok(Box::new(InstanceSource {
        inner,
        digest: d.digest.clone(),
    }))
}

/// `manifest push LIST DEST`: write the list (and with `--all` each instance's image first)
/// to `dest` (a bare name is a registry). Returns the digest of the list as written.
pub fn push(
    store: &Store,
    list: &str,
    dest: &str,
    opts: &PushListOptions,
    reporter: &dyn Reporter,
) -> Result<Digest> {
    crate::registries::auth::check_auth_file(&opts.registry)?;
    let l = load(store, list)?;
    let digest = (|| -> Result<Digest> {
        let dst_ref = crate::push::push_destination(dest)?;
        let mut dst = transport::open_destination(&dst_ref, Some(store), &opts.registry)?;
        let compression = if dst_ref.is_local_storage() {
            None
        } else {
            Some(Compression::Gzip)
        };
        let mut index = l.index.clone();
        let total = index.manifests.len();
        reporter.progress("Getting image list signatures");
        reporter.progress(&format!(
            "Copying {} of {total} images in list",
            if opts.all { total } else { 0 }
        ));
        if opts.all {
            for (i, d) in index.manifests.iter_mut().enumerate() {
                reporter.progress(&format!("Copying image {} ({}/{total})", d.digest, i + 1));
                let mut src = open_instance(store, &l, d, &opts.registry)?;
                let copy = CopyImageOptions {
                    format: opts.format.map(ListFormat::image_format),
                    compression,
                    remove_signatures: opts.remove_signatures,
                    ..Default::default()
                };
                let out = transport::copy_image(
                    src.as_mut(),
                    Box::new(InstanceDest {
                        inner: dst.as_mut(),
                    }),
                    &copy,
                    reporter,
                )
                .map_err(|e| e.context(format!("copying image {}", d.digest)))?;
                d.media_type = out.manifest_type.clone();
                d.size = out.manifest.len() as i64;
                d.digest = out.manifest_digest;
            }
        }
        let format = opts.format.unwrap_or(match index.media_type.as_deref() {
            Some(DOCKER_MANIFEST_LIST) => ListFormat::Docker,
            _ => ListFormat::Oci,
        });
        index.schema_version = 2;
        index.media_type = Some(format.media_type().to_string());
        if format == ListFormat::Docker {
            index.annotations = None;
            index.artifact_type = None;
            index.subject = None;
            for d in &mut index.manifests {
                d.annotations = None;
            }
        }
        let bytes = index_bytes(&index);
        reporter.progress("Writing manifest list to image destination");
        dst.put_manifest(&bytes, format.media_type())?;
        if !opts.remove_signatures {
            reporter.progress("Storing list signatures");
        }
        dst.commit()?;
        Ok(Digest::of(&bytes))
    })()
    .context_with(|| format!("pushing manifest list {list:?} to {dest:?}"))?;
    if opts.rm {
        store.delete_image(&l.id)?;
    }
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_formats() {
        assert_eq!(ListFormat::parse("v2s2").unwrap(), ListFormat::Docker);
        assert_eq!(ListFormat::parse("OCI").unwrap(), ListFormat::Oci);
        assert!(ListFormat::parse("tar").is_err());
    }

    #[test]
    fn inspect_prints_buildahs_view() {
        let mut index = ImageIndex::new_oci();
        let mut d = Descriptor::new(manifest::OCI_MANIFEST, Digest::of(b"x"), 1);
        d.platform = Some(manifest::Platform {
            architecture: "arm".into(),
            os: "linux".into(),
            os_version: Some("10.1".into()),
            os_features: Some(vec!["a".into()]),
            variant: Some("v7".into()),
            other: Default::default(),
        });
        d.annotations = Some(BTreeMap::from([("x".into(), "y".into())]));
        index.manifests.push(d);
        let l = ManifestList {
            id: "i".into(),
            names: vec![],
            index,
            instances: BTreeMap::new(),
        };
        let t = inspect_text(&l).unwrap();
        let want = format!(
            r#"{{
    "schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
    "manifests": [
        {{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "size": 1,
            "digest": "{}",
            "platform": {{
                "architecture": "arm",
                "os": "linux",
                "os.version": "10.1",
                "os.features": [
                    "a"
                ],
                "variant": "v7"
            }},
            "annotations": {{
                "x": "y"
            }}
        }}
    ]
}}"#,
            Digest::of(b"x")
        );
        assert_eq!(t, want);
    }

    #[test]
    fn lists_live_in_the_store_as_buildah_keeps_them() {
        let t = tempfile::tempdir().unwrap();
        let store = crate::transport::storage::tests::vfs_store(t.path());
        let id = create(
            &store,
            "mylist",
            &[],
            &CreateOptions::default(),
            &crate::report::Quiet,
        )
        .unwrap();
        let rec = store.image("localhost/mylist:latest").unwrap();
        assert_eq!(rec.id, id);
        assert_eq!(rec.big_data_names, vec!["manifest", "instances.json"]);
        // the digest buildah 1.28.2's record of a new list has
        assert_eq!(
            rec.digest.unwrap().to_string(),
            "sha256:20b959ad5960230b65a77b746bdbf5d991ade4d7a129c2554e167acdcc990531"
        );
        assert!(load(&store, "mylist").unwrap().index.manifests.is_empty());
        let inst = store.image_big_data(&id, INSTANCES_KEY).unwrap();
        assert_eq!(inst, format!("{{\"\":\"{id}\"}}").into_bytes());
        assert!(exists(&store, "mylist").unwrap());
        assert!(!exists(&store, "other").unwrap());
        store
            .create_image(
                &"a".repeat(64),
                &["localhost/img:latest".into()],
                None,
                &[],
                None,
            )
            .unwrap();
        assert!(exists(&store, "img").is_err());
        // a second create fails, --amend reuses it
        let e = create(
            &store,
            "mylist",
            &[],
            &CreateOptions::default(),
            &crate::report::Quiet,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("creating image to hold manifest list"),
            "{e}"
        );
        let amend = CreateOptions {
            amend: true,
            ..Default::default()
        };
        assert_eq!(
            create(&store, "mylist", &[], &amend, &crate::report::Quiet).unwrap(),
            id
        );
        let r = rm(&store, "mylist").unwrap();
        assert_eq!(r.id, Some(id));
        assert!(!exists(&store, "mylist").unwrap());
    }
}
