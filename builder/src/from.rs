//! `from`: create a working container from an image (or from `scratch`).
//!
//! ```text
//! image arg ──(transport prefix, or a name not in the store)──> pull::pull ──> image ID
//!     │ (plain name / ID / short ID / @digest)     (transport::open_source, RegistryContext)
//!     ▼
//! store.image() ──> big data "manifest" ──(list? choose_instance: "manifest-<digest>")
//!     ──> config digest ──> big data "sha256:<hex>" ──> ImageConfig
//! store.create_container(name, image) ──> hod.json in the container's userdata dir
//! ```
use std::path::PathBuf;

use crate::builder::{Builder, BuilderState, BUILDER_TYPE};
use crate::error::{Error, Result, ResultExt};
use crate::image::manifest::{self, Manifest};
use crate::image::platform::choose_instance;
use crate::image::{Digest, ImageConfig, Platform};
use crate::options::FromOptions;
use crate::pull::{PullOptions, PullPolicy};
use crate::report::Reporter;
use crate::store::{ImageRecord, Store};

/// The image name meaning "no image".
pub const SCRATCH: &str = "scratch";
/// OCI annotation: the base image's manifest digest.
pub const ANNOTATION_BASE_DIGEST: &str = "org.opencontainers.image.base.digest";
/// OCI annotation: the base image's fully-qualified name.
pub const ANNOTATION_BASE_NAME: &str = "org.opencontainers.image.base.name";

/// Whether `name` is a transport reference to pull (`oci:/dir:tag`, `docker-archive:f.tar`, …)
/// rather than a name in the local store.
pub fn is_transport_ref(name: &str) -> bool {
    crate::reference::ImageReference::parse(name).is_ok_and(|r| !r.is_local_storage())
}

/// The local-store name inside `containers-storage:NAME`, or `name` itself.
pub fn local_name(name: &str) -> &str {
    name.strip_prefix("containers-storage:").unwrap_or(name)
}

/// The image a container was made from, as `from` resolved it.
#[derive(Debug, Clone)]
pub struct BaseImage {
    /// The store's record.
    pub record: ImageRecord,
    /// The config (for the chosen platform).
    pub config: ImageConfig,
    /// The top-level manifest's digest.
    pub manifest_digest: Option<Digest>,
    /// Whether the manifest is Docker v2s2.
    pub docker: bool,
}

impl Builder {
    /// Create a working container from `image` (`scratch`, a name, an ID, a short ID,
    /// `@digest`, or a transport reference) and save its state.
    pub fn new_from(
        store: &Store,
        image: &str,
        opts: &FromOptions,
        reporter: &dyn Reporter,
    ) -> Result<Builder> {
        let base = resolve_base(store, image, opts, reporter)?;
        Builder::new_from_base(store, image, base.as_ref(), opts)
    }

    /// Create a working container from a base [`resolve_base`] found for `image` (the
    /// reference as the user wrote it: it names the container and the base annotations)
    /// and save its state.
    pub fn new_from_base(
        store: &Store,
        image: &str,
        base: Option<&BaseImage>,
        opts: &FromOptions,
    ) -> Result<Builder> {
        let mut state = initial_state(image, base, opts)?;
        let image_id = base.map(|b| b.record.id.clone());
        // A generated name is picked by the store under its lock (parallel `from`s of one
        // image would otherwise race for the same `-N` suffix).
        let maps = &opts.id_mappings;
        let record = match &opts.name {
            Some(n) => store.create_container_mapped(
                std::slice::from_ref(n),
                image_id.as_deref(),
                None,
                maps,
            ),
            None => {
                let base_name = match base {
                    Some(_) => {
                        format!(
                            "{}-{}",
                            image_name_prefix(&state.from_image),
                            opts.suffix.as_deref().unwrap_or("working-container")
                        )
                    }
                    None => opts
                        .suffix
                        .clone()
                        .unwrap_or_else(|| "working-container".to_string()),
                };
                store.create_container_mapped(&[], image_id.as_deref(), Some(&base_name), maps)
            }
        }
        .context_with(|| "creating container".to_string())?;
        state.container = record.names.first().cloned().unwrap_or_default();
        state.container_id = record.id.clone();
        let result = (|| {
            let b = Builder {
                state,
                dir: store.container_dir(&record.id)?,
                record: record.clone(),
            };
            b.save()?;
            Ok(b)
        })();
        if result.is_err() {
            if let Err(e) = store.delete_container(&record.id) {
                tracing::debug!("deleting container {} after a failed from: {e}", record.id);
            }
        }
        result
    }

    /// The builder [`Builder::new_from_base`] would make, without its container: the
    /// state lives in memory only ([`Builder::save`] keeps nothing, [`Builder::delete`]
    /// removes nothing, mounting fails). The Containerfile engine uses it for a `--layers`
    /// stage whose steps may all be cache hits, and makes the container only on a miss
    /// (on vfs a container is a copy of the whole base).
    pub fn detached_from_base(
        image: &str,
        base: Option<&BaseImage>,
        opts: &FromOptions,
    ) -> Result<Builder> {
        Ok(Builder {
            state: initial_state(image, base, opts)?,
            record: Default::default(),
            dir: PathBuf::new(),
        })
    }

    /// Whether the builder has no container and no state directory (see
    /// [`Builder::detached_from_base`]).
    pub fn is_detached(&self) -> bool {
        self.dir.as_os_str().is_empty()
    }
}

/// The found base of `image`: `None` for `scratch`, else the image (pulled when the
/// policy and reference say so) and its config for the platform.
pub fn resolve_base(
    store: &Store,
    image: &str,
    opts: &FromOptions,
    reporter: &dyn Reporter,
) -> Result<Option<BaseImage>> {
    if image == SCRATCH {
        Ok(None)
    } else {
        resolve_image(store, image, opts, reporter).map(Some)
    }
}

/// A new working container's state (without the container's name and ID), with the
/// environment's defaults decided here so every caller gets the CLI's.
fn initial_state(
    image: &str,
    base: Option<&BaseImage>,
    opts: &FromOptions,
) -> Result<BuilderState> {
    let format = match opts.format {
        Some(f) => f,
        None => crate::builder::ImageFormat::default_from_env()?,
    };
    let isolation = match opts.isolation {
        Some(i) => i,
        None => crate::run::Isolation::default_from_env()?,
    };
    let from_image = match base {
        None => String::new(),
        Some(b) => image_name_for(
            image.strip_prefix("containers-storage:").unwrap_or(image),
            &b.record,
        ),
    };
    let mut state = BuilderState {
        kind: BUILDER_TYPE.to_string(),
        from_image: from_image.clone(),
        from_image_id: base.map(|b| b.record.id.clone()).unwrap_or_default(),
        format,
        isolation,
        // containers.conf's [containers] defaults, under what the caller gave.
        run_defaults: crate::containers_conf::ContainersConf::load()
            .map_err(crate::error::Error::from)?
            .under(&opts.run_defaults),
        version: crate::builder::STATE_VERSION,
        id_mappings: opts.id_mappings.clone(),
        ..Default::default()
    };
    match base {
        None => {
            state.config = ImageConfig::scratch();
            let platform = &opts.registry.platform;
            if !platform.architecture.is_empty() {
                state.config.architecture = platform.architecture.clone();
            }
            if !platform.os.is_empty() {
                state.config.os = platform.os.clone();
            }
            if !platform.variant.is_empty() {
                state.config.variant = Some(platform.variant.clone());
            }
            state
                .annotations
                .insert(ANNOTATION_BASE_DIGEST.to_string(), String::new());
        }
        Some(b) => {
            state.config = b.config.clone();
            state.from_docker = b.docker;
            let digest = b
                .manifest_digest
                .as_ref()
                .map(|d| d.to_string())
                .unwrap_or_default();
            state.from_image_digest = digest.clone();
            state
                .annotations
                .insert(ANNOTATION_BASE_DIGEST.to_string(), digest);
            if !is_short_name(&from_image) {
                state
                    .annotations
                    .insert(ANNOTATION_BASE_NAME.to_string(), from_image);
            }
        }
    }
    Ok(state)
}

impl Builder {
    /// The ONBUILD triggers the container's config carries (the base image's, plus any
    /// `config --onbuild` added), as written (`RUN make`, `COPY . /src`, …). `from` keeps
    /// them; who interprets them is the caller's choice: the Containerfile engine parses
    /// them as instructions, `hod from` runs them as `buildah from` does
    /// (`imagebuildah::onbuild`).
    pub fn onbuild_triggers(&self) -> Vec<String> {
        self.state
            .config
            .config
            .on_build
            .clone()
            .unwrap_or_default()
    }

    /// Remove the triggers from the config (before running them; triggers the run adds
    /// stay for the image being built) and save the state; returns them.
    pub fn take_onbuild_triggers(&mut self) -> Result<Vec<String>> {
        let triggers = self.state.config.config.on_build.take().unwrap_or_default();
        if !triggers.is_empty() {
            self.save()?;
        }
        Ok(triggers)
    }
}

/// Find (pulling when the policy and reference say so) the image and read its config.
pub fn resolve_image(
    store: &Store,
    image: &str,
    opts: &FromOptions,
    reporter: &dyn Reporter,
) -> Result<BaseImage> {
    crate::reference::ImageReference::parse(image)?;
    let popts = PullOptions {
        policy: opts.pull_policy,
        registry: opts.registry.clone(),
        decryption: opts.decryption.clone(),
        ..Default::default()
    };
    let record = if is_transport_ref(image) {
        let id = crate::pull::pull(store, image, &popts, reporter)?;
        store.image(&id)?
    } else {
        let local = local_name(image);
        match store.image(local) {
            Ok(r) => {
                let by_name = !r.id.starts_with(local.trim_start_matches("sha256:"));
                // --pull=always: a name is pulled even when the store has it (buildah's
                // "Trying to pull …"); an image ID, a containers-storage: name and a
                // localhost/ name (never in a registry) are the store's.
                if opts.pull_policy == PullPolicy::Always
                    && by_name
                    && !image.starts_with("containers-storage:")
                    && !local.starts_with("localhost/")
                {
                    let id = crate::pull::pull(store, local, &popts, reporter)?;
                    return read_image(store, store.image(&id)?, &opts.registry.platform);
                }
                let img = read_image(store, r, &opts.registry.platform)?;
                // A local image of another platform than the one asked for is no hit
                // (libimage's lookup): it is pulled for that platform.
                if by_name
                    && opts.pull_policy != PullPolicy::Never
                    && !image.starts_with("containers-storage:")
                    && !platform_matches(&img.config, &opts.registry.platform)
                {
                    let have = Platform::new(
                        &img.config.os,
                        &img.config.architecture,
                        img.config.variant.as_deref().unwrap_or(""),
                    );
                    let want = opts.registry.platform.or_host();
                    // As buildah: the pull's error when it fails (a local-only name cannot
                    // be pulled, and says why).
                    if local.starts_with("localhost/") {
                        return Err(Error::invalid(format!(
                            "image {local}: image platform ({have}) does not match the expected platform ({want})"
                        )));
                    }
                    let id = crate::pull::pull(store, local, &popts, reporter).context_with(|| {
                        format!("image platform ({have}) does not match the expected platform ({want})")
                    })?;
                    return read_image(store, store.image(&id)?, &opts.registry.platform);
                }
                return Ok(img);
            }
            // Not in the store: a registry image, pulled as `pull` does (not for an explicit
            // `containers-storage:` name, nor with --pull=never).
            Err(e)
                if opts.pull_policy == PullPolicy::Never
                    || image.starts_with("containers-storage:") =>
            {
                return Err(e)
            }
            Err(e @ Error::NotFound { .. }) => {
                tracing::debug!("{local:?} is not in the store ({e}): pulling it");
                let id = crate::pull::pull(store, local, &popts, reporter)?;
                store.image(&id)?
            }
            Err(e) => return Err(e),
        }
    };
    read_image(store, record, &opts.registry.platform)
}

/// Whether an image's config is for `platform` (empty fields: the host's; a config without
/// an architecture suits any).
fn platform_matches(config: &ImageConfig, platform: &Platform) -> bool {
    if platform.is_empty() || config.architecture.is_empty() {
        return true;
    }
    let have = crate::image::manifest::Platform {
        os: config.os.clone(),
        architecture: config.architecture.clone(),
        variant: config.variant.clone(),
        ..Default::default()
    };
    platform.wanted().iter().any(|w| w.matches(&have))
}

/// Read an image's config through its manifest (OCI or Docker, picking the platform's
/// instance from a list with [`choose_instance`]), falling back to the `sha256:<id>` big data.
pub fn read_image(store: &Store, record: ImageRecord, platform: &Platform) -> Result<BaseImage> {
    let manifest = match store.image_big_data(&record.id, "manifest") {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::debug!("image {} has no manifest: {e}", record.id);
            None
        }
    };
    let mut manifest_digest = record
        .digest
        .clone()
        .or_else(|| manifest.as_deref().map(Digest::of));
    let mut docker = false;
    let mut config_key = format!("sha256:{}", record.id);
    if let Some(m) = &manifest {
        let parse = |data: &[u8]| {
            manifest::parse_manifest(data, None)
                .map_err(|e| e.context(format!("parsing manifest of image {}", record.id)))
        };
        // A manifest hod cannot read (Docker schema 1, from another tool) leaves the config
        // under its `sha256:<id>` key.
        let mut parsed = match parse(m) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!("{e}; reading the config by image ID");
                return read_config(store, record, &config_key, manifest_digest, false);
            }
        };
        if let Manifest::OciIndex(list) | Manifest::DockerList(list) = &parsed {
            let instance = choose_instance(list, platform).map_err(|e| {
                e.context(format!(
                    "finding an appropriate image in manifest list of image {}",
                    record.id
                ))
            })?;
            let data = match store
                .image_big_data(&record.id, &format!("manifest-{}", instance.digest))
            {
                Ok(d) => d,
                // A list made by `manifest create` (hod's, buildah's or podman's) holds only
                // the list: its instances are images of their own, found by digest.
                Err(Error::NotFound { .. }) => {
                    let rec = crate::manifest::instance_image(store, &record.id, &instance.digest)?;
                    return read_image(store, rec, platform);
                }
                Err(e) => return Err(e),
            };
            parsed = parse(&data)?;
            if manifest_digest.is_none() {
                manifest_digest = Some(Digest::of(m));
            }
        }
        match parsed {
            Manifest::Docker(im) => {
                docker = true;
                config_key = im.config.digest.to_string();
            }
            Manifest::Oci(im) => config_key = im.config.digest.to_string(),
            Manifest::OciIndex(_) | Manifest::DockerList(_) => {
                return Err(Error::invalid(format!(
                    "image {}: nested manifest lists are not supported",
                    record.id
                )))
            }
        }
    }
    read_config(store, record, &config_key, manifest_digest, docker)
}

fn read_config(
    store: &Store,
    record: ImageRecord,
    config_key: &str,
    manifest_digest: Option<Digest>,
    docker: bool,
) -> Result<BaseImage> {
    let data = store
        .image_big_data(&record.id, config_key)
        .context_with(|| format!("reading config of image {}", record.id))?;
    let config: ImageConfig = serde_json::from_slice(&data).map_err(|source| Error::Json {
        op: "parsing config of image".into(),
        path: record.id.clone().into(),
        source,
    })?;
    Ok(BaseImage {
        record,
        config,
        manifest_digest,
        docker,
    })
}

/// buildah's `getImageName`: the image's first name, or the one containing what the user typed.
pub fn image_name_for(typed: &str, record: &ImageRecord) -> String {
    let prefix = image_name_prefix(typed);
    match record.names.first() {
        None => typed.to_string(),
        Some(first) => record
            .names
            .iter()
            .find(|n| n.contains(&prefix))
            .unwrap_or(first)
            .clone(),
    }
}

/// buildah's `imageNamePrefix`: what a default container name starts with
/// (`docker.io/library/busybox:latest` → `busybox`, an ID → its first 12 characters).
pub fn image_name_prefix(name: &str) -> String {
    let mut prefix = name.to_string();
    if let Ok(d) = Digest::parse(name) {
        prefix = d.hex().chars().take(12).collect();
    }
    if prefix.len() == 64 && prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        prefix.truncate(12);
    }
    if let Some(p) = prefix.split(':').next() {
        prefix = p.to_string();
    }
    if let Some(p) = prefix.split('/').next_back() {
        prefix = p.to_string();
    }
    if let Some(p) = prefix.split('@').next() {
        prefix = p.to_string();
    }
    prefix
}

/// `name`, or `name-1`, `name-2`, … whichever is not in `taken`.
pub fn unused_name(name: &str, taken: &[String]) -> String {
    let mut candidate = name.to_string();
    let mut n = 1;
    while taken.contains(&candidate) {
        candidate = format!("{name}-{n}");
        n += 1;
    }
    candidate
}

/// Whether a reference has no registry part (`busybox`, `library/busybox:1`).
pub fn is_short_name(name: &str) -> bool {
    match name.split_once('/') {
        None => true,
        Some((first, _)) => !(first.contains('.') || first.contains(':') || first == "localhost"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onbuild_triggers_are_kept_then_taken() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = BuilderState {
            config: ImageConfig::scratch(),
            ..Default::default()
        };
        state.config.config.on_build = Some(vec!["ENV A=1".into(), "RUN make".into()]);
        let mut b = Builder {
            state,
            record: Default::default(),
            dir: dir.path().to_path_buf(),
        };
        assert_eq!(b.onbuild_triggers(), ["ENV A=1", "RUN make"]);
        assert_eq!(b.take_onbuild_triggers().unwrap(), ["ENV A=1", "RUN make"]);
        assert!(b.onbuild_triggers().is_empty());
        assert!(b.state.config.config.on_build.is_none());
        assert!(dir.path().join(crate::builder::STATE_FILE).exists());
        assert!(b.take_onbuild_triggers().unwrap().is_empty());
    }

    #[test]
    fn prefixes() {
        let id = "a".repeat(64);
        let cases = [
            ("docker.io/library/busybox:latest", "busybox".to_string()),
            ("busybox", "busybox".to_string()),
            ("quay.io/libpod/alpine@sha256:abc", "alpine".to_string()),
            ("localhost/app:1", "app".to_string()),
            (id.as_str(), "a".repeat(12)),
            (&format!("sha256:{id}"), "a".repeat(12)),
        ];
        for (input, want) in cases {
            assert_eq!(image_name_prefix(input), want, "{input}");
        }
    }

    #[test]
    fn unused_names() {
        let taken = vec![
            "x-working-container".to_string(),
            "x-working-container-1".to_string(),
        ];
        assert_eq!(
            unused_name("x-working-container", &taken),
            "x-working-container-2"
        );
        assert_eq!(
            unused_name("y-working-container", &taken),
            "y-working-container"
        );
        assert_eq!(unused_name("working-container", &[]), "working-container");
    }

    #[test]
    fn names_for_image() {
        let rec = ImageRecord {
            names: vec![
                "localhost/other:1".into(),
                "docker.io/library/busybox:latest".into(),
            ],
            ..Default::default()
        };
        assert_eq!(
            image_name_for("busybox", &rec),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(image_name_for("abc123", &rec), "localhost/other:1");
        let unnamed = ImageRecord::default();
        assert_eq!(image_name_for("abc123", &unnamed), "abc123");
    }

    #[test]
    fn short_names() {
        for (n, short) in [
            ("busybox", true),
            ("library/busybox", true),
            ("docker.io/library/busybox", false),
            ("localhost/x", false),
            ("reg:5000/x", false),
        ] {
            assert_eq!(is_short_name(n), short, "{n}");
        }
    }

    #[test]
    fn transports() {
        assert!(is_transport_ref("oci:/tmp/x:latest"));
        assert!(is_transport_ref("docker-archive:/tmp/x.tar"));
        assert!(!is_transport_ref("busybox:latest"));
        assert!(!is_transport_ref("containers-storage:busybox"));
    }

    #[test]
    fn a_stored_manifest_list_gives_the_platform_instance() {
        use crate::image::manifest::*;
        use crate::store::BigData;
        let t = tempfile::tempdir().unwrap();
        let store = crate::transport::storage::tests::vfs_store(t.path());
        let mut big = Vec::new();
        let mut index = ImageIndex::new_oci();
        for (arch, variant) in [("amd64", None), ("arm64", Some("v8"))] {
            let mut cfg = ImageConfig::scratch();
            cfg.architecture = arch.to_string();
            let cfg_bytes = serde_json::to_vec(&cfg).unwrap();
            let cfg_desc =
                Descriptor::new(OCI_CONFIG, Digest::of(&cfg_bytes), cfg_bytes.len() as i64);
            let m = ImageManifest {
                schema_version: 2,
                media_type: Some(OCI_MANIFEST.into()),
                artifact_type: None,
                config: cfg_desc.clone(),
                layers: Vec::new(),
                subject: None,
                annotations: None,
                other: Default::default(),
            };
            let m_bytes = to_json(&m);
            let mut d = Descriptor::new(OCI_MANIFEST, Digest::of(&m_bytes), m_bytes.len() as i64);
            d.platform = Some(crate::image::manifest::Platform {
                os: "linux".into(),
                architecture: arch.into(),
                variant: variant.map(String::from),
                ..Default::default()
            });
            index.manifests.push(d.clone());
            big.push(BigData {
                key: format!("manifest-{}", d.digest),
                data: m_bytes,
            });
            big.push(BigData {
                key: cfg_desc.digest.to_string(),
                data: cfg_bytes,
            });
        }
        big.push(BigData {
            key: "manifest".into(),
            data: to_json(&index),
        });
        let id = "a".repeat(64);
        let rec = store
            .create_image(&id, &["localhost/multi:1".to_string()], None, &big, None)
            .unwrap();
        for (platform, arch) in [("linux/arm64", "arm64"), ("linux/amd64", "amd64")] {
            let b = read_image(
                &store,
                rec.clone(),
                &crate::image::Platform::parse(platform).unwrap(),
            )
            .unwrap();
            assert_eq!(b.config.architecture, arch, "{platform}");
            assert_eq!(b.manifest_digest, Some(Digest::of(&to_json(&index))));
        }
        let e = read_image(
            &store,
            rec,
            &crate::image::Platform::parse("linux/s390x").unwrap(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("finding an appropriate image in manifest list of image"),
            "{e}"
        );
    }

    #[test]
    fn names_not_in_the_store_go_to_the_registry_unless_never() {
        let t = tempfile::tempdir().unwrap();
        let store = crate::transport::storage::tests::vfs_store(t.path());
        let chain = |e: &Error| {
            let mut s = e.to_string();
            let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
            while let Some(c) = cur {
                s.push_str(&format!(": {c}"));
                cur = c.source();
            }
            s
        };
        let opts = FromOptions {
            pull_policy: PullPolicy::Never,
            ..Default::default()
        };
        let e = Builder::new_from(&store, "nosuch", &opts, &crate::report::Quiet).unwrap_err();
        assert!(chain(&e).contains("image not known"), "{}", chain(&e));
        let e = Builder::new_from(
            &store,
            "containers-storage:nosuch",
            &FromOptions::default(),
            &crate::report::Quiet,
        )
        .unwrap_err();
        assert!(chain(&e).contains("image not known"), "{}", chain(&e));
        // --pull=missing: the name is pulled (through pull and the registry transport)
        let e = Builder::new_from(
            &store,
            "nosuch",
            &FromOptions::default(),
            &crate::report::Quiet,
        )
        .unwrap_err();
        let c = chain(&e);
        assert!(
            c.contains("pulling image \"nosuch\"") && !c.contains("image not known"),
            "{c}"
        );
        assert!(store.containers().unwrap().is_empty());
    }
}
