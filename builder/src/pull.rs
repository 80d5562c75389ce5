//! `pull`: copy an image from a transport reference into the store.
//!
//! The stored image is named as libimage names pulled images: `oci:DIR:REF` and
//! `oci-archive:` (by the ref-name annotation) → `NormalizeName(REF)` (`localhost/REF:latest`
//! for a bare ref); without a ref the image is unnamed; `docker-archive:` → its `RepoTags`;
//! `dir:` images are unnamed.
use crate::error::{Error, Result, ResultExt};
use crate::options::RegistryContext;
use crate::reference::{normalize_local_name, parse_named, ImageReference, NamedRef};
use crate::report::Reporter;
use crate::store::Store;
use crate::transport::{self, storage::StorageDest, CopyImageOptions, ImageSource};

/// When `from`/`pull` fetch an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Pull only when the image is not in the store.
    #[default]
    Missing,
    /// Always pull.
    Always,
    /// Never pull; the image must be local.
    Never,
    /// Pull when the source is newer.
    Newer,
}

impl PullPolicy {
    /// Parse a `--pull` value as buildah does (`true` = always, `false` = missing).
    pub fn parse(s: &str) -> Result<PullPolicy> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "always" | "true" => PullPolicy::Always,
            "missing" | "ifmissing" | "false" => PullPolicy::Missing,
            "never" => PullPolicy::Never,
            "newer" | "ifnewer" => PullPolicy::Newer,
            _ => {
                return Err(crate::Error::invalid(format!(
                    "unsupported pull policy {s:?}"
                )))
            }
        })
    }

    /// The policy from `--pull[=POLICY]`, `--pull-always` and `--pull-never` (at most one).
    pub fn from_flags(pull: Option<&str>, always: bool, never: bool) -> Result<PullPolicy> {
        if [pull.is_some(), always, never]
            .iter()
            .filter(|b| **b)
            .count()
            > 1
        {
            return Err(crate::Error::invalid(
                "can only set one of 'pull' or 'pull-always' or 'pull-never'",
            ));
        }
        if always {
            return Ok(PullPolicy::Always);
        }
        if never {
            return Ok(PullPolicy::Never);
        }
        pull.map(PullPolicy::parse)
            .unwrap_or(Ok(PullPolicy::Missing))
    }
}

/// Options of `hod pull` (and of the pull `from` does).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PullOptions {
    /// `--all-tags`.
    pub all_tags: bool,
    /// `--policy`.
    pub policy: PullPolicy,
    /// `--remove-signatures`.
    pub remove_signatures: bool,
    /// Registry access, and the platform to pick from a manifest list
    /// (`--platform`, `--arch`, `--os`, `--variant`).
    pub registry: RegistryContext,
    /// `--decryption-key`: keys for encrypted layers.
    pub decryption: Option<std::sync::Arc<crate::image::encryption::DecryptionConfig>>,
}

/// The names a pull of `r` gives the image, from the reference and what the opened source
/// records (libimage's rules): `oci:DIR:REF` → `NormalizeName(REF)`, `oci-archive:` → its
/// ref-name annotation normalised, `docker-archive:` → its `RepoTags`, `docker://NAME` →
/// `NAME`, `containers-storage:[store]NAME` → `NAME` normalised; `dir:` and an `oci:` without
/// a ref give none.
pub fn pulled_names(r: &ImageReference, src: &dyn ImageSource) -> Result<Vec<String>> {
    Ok(match r {
        ImageReference::Oci {
            reference: Some(name),
            ..
        } => vec![normalize_local_name(name)?.to_string()],
        ImageReference::Oci {
            reference: None, ..
        } => Vec::new(),
        ImageReference::OciArchive { .. } => match src.recorded_names().first() {
            Some(name) => vec![normalize_local_name(name)?.to_string()],
            None => Vec::new(),
        },
        ImageReference::DockerArchive { .. } => src
            .recorded_names()
            .iter()
            .filter_map(|t| parse_named(t).ok())
            .map(|n| n.with_default_tag().to_string())
            .collect(),
        // Images pulled from a directory are unnamed (buildah's pull-from-local-directory).
        ImageReference::Dir { .. } => Vec::new(),
        ImageReference::Docker(n) => vec![n.clone().with_default_tag().to_string()],
        ImageReference::Storage { .. } | ImageReference::Local(_) => {
            transport::destination_names(r)?
        }
    })
}

/// The registry references a name that is not in the store stands for, in the order to try
/// them: a qualified name is itself; a short name resolves through registries.conf (aliases,
/// then unqualified-search registries, `short-name-mode`), as containers/image does.
pub fn registry_candidates(name: &str, ctx: &RegistryContext) -> Result<Vec<NamedRef>> {
    // An image ID is never a registry name: it is simply not in the store.
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::NotFound {
            kind: "image",
            name: name.to_string(),
        });
    }
    crate::registries::resolve_short_name(ctx, name)
}

/// libimage's rule for `--policy=always`: a short name that is a local `localhost/` image is
/// pulled under that name (`image` → `localhost/image:latest`), not searched for elsewhere.
fn local_resolution(store: &Store, name: &str, opts: &PullOptions) -> String {
    if opts.policy != PullPolicy::Always || crate::registries::is_qualified(name) {
        return name.to_string();
    }
    let Ok(local) = normalize_local_name(name) else {
        return name.to_string();
    };
    let local = local.to_string();
    match store.image(name) {
        Ok(img) if img.names.contains(&local) => local,
        _ => name.to_string(),
    }
}

/// Copy the image `r` names into the store, through the one `transport::open_source`.
fn pull_one(
    store: &Store,
    r: &ImageReference,
    opts: &PullOptions,
    reporter: &dyn Reporter,
) -> Result<String> {
    if let ImageReference::Docker(n) = r {
        crate::registries::check_registry_sources(crate::registries::SourceUse::Pull, &n.domain)?;
    }
    // policy.json decides whether this source may be used at all (buildah checks it first).
    crate::registries::check_policy(&opts.registry, r.transport(), r)?;
    // containers/image's wording, which buildah's tests match ("initializing source docker://…").
    let mut source = transport::open_source(r, Some(store), &opts.registry)
        .context_with(|| format!("initializing source {r}"))?;
    let names = pulled_names(r, source.as_ref())?;
    let dst = Box::new(StorageDest::new(store, names)?);
    let copy = CopyImageOptions {
        remove_signatures: opts.remove_signatures,
        platform: opts.registry.platform.clone(),
        decryption: opts.decryption.clone(),
        ..Default::default()
    };
    let out = transport::copy_image(source.as_mut(), dst, &copy, reporter)?;
    Ok(out.config_digest.hex().to_string())
}

/// Whether a local image suits the platform asked for (`--platform`, `--arch`, `--os`,
/// `--variant`), checked before a `missing`/`newer` policy keeps it, as libimage does: an
/// image for another platform is pulled again. Nothing asked, or a config hod cannot read
/// (a manifest list, a foreign image): it suits.
fn local_platform_matches(
    store: &Store,
    img: &crate::store::ImageRecord,
    ctx: &RegistryContext,
) -> bool {
    if ctx.platform.is_empty() {
        return true;
    }
    let Ok(data) = store.image_big_data(&img.id, &format!("sha256:{}", img.id)) else {
        return true;
    };
    let Ok(c) = serde_json::from_slice::<crate::image::ImageConfig>(&data) else {
        return true;
    };
    let entry = crate::image::manifest::Platform {
        architecture: c.architecture,
        os: c.os,
        variant: c.variant,
        ..Default::default()
    };
    ctx.platform.wanted().iter().any(|w| w.matches(&entry))
}

/// Pull `src` into the store; returns the image ID.
pub fn pull(
    store: &Store,
    src: &str,
    opts: &PullOptions,
    reporter: &dyn Reporter,
) -> Result<String> {
    (|| -> Result<String> {
        crate::registries::auth::check_auth_file(&opts.registry)?;
        let r = ImageReference::parse(src)?;
        if opts.all_tags && !matches!(r, ImageReference::Docker(_) | ImageReference::Local(_)) {
            return Err(Error::invalid(format!(
                "pulling all tags is not supported for {} transport",
                r.transport()
            )));
        }
        match &r {
            ImageReference::Local(name)
            | ImageReference::Storage {
                store: None,
                image: name,
            } => {
                // A name: use the local image when the policy allows.
                if opts.policy != PullPolicy::Always {
                    match store.image(name) {
                        Ok(img) if local_platform_matches(store, &img, &opts.registry) => {
                            return Ok(img.id)
                        }
                        Ok(_) => {}
                        Err(Error::NotFound { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                if opts.policy == PullPolicy::Never || matches!(r, ImageReference::Storage { .. }) {
                    return Err(Error::NotFound {
                        kind: "image",
                        name: name.clone(),
                    });
                }
            }
            ImageReference::Docker(n) if opts.policy != PullPolicy::Always => {
                if let Ok(img) = store.image(&n.to_string()) {
                    if local_platform_matches(store, &img, &opts.registry) {
                        return Ok(img.id);
                    }
                }
                if opts.policy == PullPolicy::Never {
                    return Err(Error::NotFound {
                        kind: "image",
                        name: n.to_string(),
                    });
                }
            }
            _ => {}
        }
        if opts.all_tags {
            let named = match &r {
                ImageReference::Docker(n) => n.clone(),
                ImageReference::Local(name) => parse_named(name)?,
                _ => unreachable!("refused above"),
            };
            if named.tag.is_some() || named.digest.is_some() {
                return Err(Error::invalid(
                    "tag can't be used with --all-tags/-a".to_string(),
                ));
            }
            let mut last = None;
            for tag in transport::registry::list_tags(&named, &opts.registry)? {
                let mut n = named.clone();
                n.tag = Some(tag);
                reporter.progress(&format!("Trying to pull {n}..."));
                last = Some(pull_one(store, &ImageReference::Docker(n), opts, reporter)?);
            }
            return last.ok_or_else(|| Error::invalid(format!("{named} has no tags")));
        }
        // A name not in the store is a registry image: try each reference it stands for.
        let candidates = match &r {
            ImageReference::Local(name) => {
                registry_candidates(&local_resolution(store, name, opts), &opts.registry)?
                    .into_iter()
                    .map(ImageReference::Docker)
                    .collect()
            }
            _ => vec![r],
        };
        let mut errors = Vec::new();
        for r in &candidates {
            // libimage's line before each registry attempt (buildah prints it; -q hides it).
            if let ImageReference::Docker(n) = r {
                reporter.progress(&format!("Trying to pull {n}..."));
            }
            match pull_one(store, r, opts, reporter) {
                Ok(id) => return Ok(id),
                Err(e) if candidates.len() > 1 => {
                    tracing::debug!("pulling {r}: {e}");
                    errors.push(format!("{r}: {e}"));
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::invalid(errors.join("; ")))
    })()
    .context_with(|| format!("pulling image {src:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::Compression;
    use crate::report::Quiet;
    use crate::transport::testutil::*;

    #[test]
    fn all_tags_is_refused_for_local_transports() {
        // Refused before the source (or the store) is touched.
        let t = tempfile::tempdir().unwrap();
        let so = crate::store::StoreOptions {
            root: t.path().join("root"),
            run_root: t.path().join("run"),
            driver: crate::store::DriverKind::Vfs,
            driver_options: Vec::new(),
        };
        let store = Store::open(&so).unwrap();
        for (src, t) in [
            ("oci:/nonexistent", "oci"),
            ("oci-archive:/x.tar", "oci-archive"),
            ("docker-archive:/x.tar", "docker-archive"),
            ("dir:/x", "dir"),
        ] {
            let opts = PullOptions {
                all_tags: true,
                ..Default::default()
            };
            let err = pull(&store, src, &opts, &Quiet).unwrap_err();
            let chain = format!(
                "{err} {}",
                std::error::Error::source(&err)
                    .map(|e| e.to_string())
                    .unwrap_or_default()
            );
            assert!(
                chain.contains(&format!(
                    "pulling all tags is not supported for {t} transport"
                )),
                "{chain}"
            );
        }
    }

    fn pulled_names_of(src: &str) -> Result<Vec<String>> {
        let r = ImageReference::parse(src)?;
        let s = transport::open_source(&r, None, &RegistryContext::default())?;
        pulled_names(&r, s.as_ref())
    }

    #[test]
    fn names_of_pulled_images() {
        let t = tempfile::tempdir().unwrap();
        let lay = t.path().join("lay");
        let mut src = image(&[layer_tar("a", b"1")], Compression::None);
        transport::copy_image(
            &mut src,
            Box::new(crate::transport::oci::OciLayoutDest::new(&lay, Some("app:2")).unwrap()),
            &CopyImageOptions::default(),
            &Quiet,
        )
        .unwrap();
        assert_eq!(
            pulled_names_of(&format!("oci:{}:app:2", lay.display())).unwrap(),
            vec!["localhost/app:2"]
        );
        let ar = t.path().join("a.tar");
        let mut src = image(&[layer_tar("a", b"1")], Compression::None);
        transport::copy_image(
            &mut src,
            Box::new(crate::transport::oci::OciArchiveDest::new(&ar, Some("web")).unwrap()),
            &CopyImageOptions::default(),
            &Quiet,
        )
        .unwrap();
        assert_eq!(
            pulled_names_of(&format!("oci-archive:{}", ar.display())).unwrap(),
            vec!["localhost/web:latest"]
        );
        let da = t.path().join("d.tar");
        let mut src = image(&[layer_tar("a", b"1")], Compression::None);
        let tag = parse_named("quay.io/x/y:3").unwrap();
        transport::copy_image(
            &mut src,
            Box::new(
                crate::transport::docker_archive::DockerArchiveDest::new(&da, Some(tag)).unwrap(),
            ),
            &CopyImageOptions::default(),
            &Quiet,
        )
        .unwrap();
        assert_eq!(
            pulled_names_of(&format!("docker-archive:{}", da.display())).unwrap(),
            vec!["quay.io/x/y:3"]
        );
        let d = t.path().join("dd");
        let mut src = image(&[layer_tar("a", b"1")], Compression::None);
        transport::copy_image(
            &mut src,
            Box::new(crate::transport::dir::DirDest::new(&d).unwrap()),
            &CopyImageOptions::default(),
            &Quiet,
        )
        .unwrap();
        assert!(pulled_names_of(&format!("dir:{}", d.display()))
            .unwrap()
            .is_empty());
    }
}
