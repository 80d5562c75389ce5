//! `pull`: copy an image from a transport reference into the store.
//!
//! The stored image is named as libimage names pulled images: `oci:DIR:REF` and
//! `oci-archive:` (by the ref-name annotation) → `NormalizeName(REF)` (`localhost/REF:latest`
//! for a bare ref); without a ref the image is unnamed; `docker-archive:` → its `RepoTags`;
//! `dir:` images are unnamed.
use crate::error::{Error, Result, ResultExt};
use crate::image::manifest::ANNOTATION_REF_NAME;
use crate::reference::{normalize_local_name, parse_named, ImageReference};
use crate::report::Reporter;
use crate::store::Store;
use crate::transport::docker_archive::DockerArchiveSource;
use crate::transport::oci::{OciArchiveSource, OciLayoutSource};
use crate::transport::{
    self, dir::DirSource, storage::StorageDest, CopyImageOptions, ImageSource, TransportError,
};

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

/// Options of `hod pull`.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PullOptions {
    /// `--all-tags`.
    pub all_tags: bool,
    /// `--policy`.
    pub policy: PullPolicy,
}

/// The source of a pull and the names the pulled image gets.
fn open_pull_source(
    r: &ImageReference,
    default_store: Option<&Store>,
) -> Result<(Box<dyn ImageSource>, Vec<String>)> {
    Ok(match r {
        ImageReference::Oci { path, reference } => {
            let s = OciLayoutSource::open(path, reference.as_deref())?;
            let names = match reference {
                Some(r) => vec![normalize_local_name(r)?.to_string()],
                None => Vec::new(),
            };
            (Box::new(s), names)
        }
        ImageReference::OciArchive { path, reference } => {
            let s = OciArchiveSource::open(path, reference.as_deref())?;
            let names = match s.descriptor().annotation(ANNOTATION_REF_NAME) {
                Some(r) => vec![normalize_local_name(r)?.to_string()],
                None => Vec::new(),
            };
            (Box::new(s), names)
        }
        ImageReference::DockerArchive { path, selector } => {
            let s = DockerArchiveSource::open(path, selector.as_ref())?;
            let names = s
                .repo_tags()
                .iter()
                .filter_map(|t| parse_named(t).ok())
                .map(|n| n.with_default_tag().to_string())
                .collect();
            (Box::new(s), names)
        }
        ImageReference::Dir { path } => {
            let s = DirSource::open(path)?;
            // Images pulled from a directory are unnamed (buildah's pull-from-local-directory).
            let _ = path;
            (Box::new(s), Vec::new())
        }
        ImageReference::Docker(_) | ImageReference::Local(_) => {
            return Err(TransportError::NotImplemented("registry (docker://)").into())
        }
        ImageReference::Storage {
            store: Some(spec),
            image,
        } => {
            let other = transport::storage::open_store_spec(spec, default_store)?;
            let s = transport::storage::StorageSource::open_handle(
                transport::storage::StoreHandle::Owned(Box::new(other)),
                image,
            )?;
            (Box::new(s), transport::destination_names(r)?)
        }
        ImageReference::Storage { store: None, .. } => {
            return Err(transport::bad_image(
                "containers-storage sources are already local",
            ))
        }
    })
}

/// The names a pull of `src` would give the image (without reading it when that is not
/// needed): exposed for the CLI's messages and for tests.
pub fn pulled_names(src: &str) -> Result<Vec<String>> {
    let r = ImageReference::parse(src)?;
    Ok(open_pull_source(&r, None)?.1)
}

/// Pull `src` into the store; returns the image ID.
pub fn pull(
    store: &Store,
    src: &str,
    opts: &PullOptions,
    reporter: &dyn Reporter,
) -> Result<String> {
    (|| -> Result<String> {
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
                    if let Ok(img) = store.image(name) {
                        return Ok(img.id);
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
                    return Ok(img.id);
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
        let (mut source, names) = open_pull_source(&r, Some(store))?;
        let dst = Box::new(StorageDest::new(store, names)?);
        let out =
            transport::copy_image(source.as_mut(), dst, &CopyImageOptions::default(), reporter)?;
        Ok(out.config_digest.hex().to_string())
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
            pulled_names(&format!("oci:{}:app:2", lay.display())).unwrap(),
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
            pulled_names(&format!("oci-archive:{}", ar.display())).unwrap(),
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
            pulled_names(&format!("docker-archive:{}", da.display())).unwrap(),
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
        assert!(pulled_names(&format!("dir:{}", d.display()))
            .unwrap()
            .is_empty());
    }
}
