//! `push`: copy a local image to a transport reference.
use crate::archive::Compression;
use crate::builder::ImageFormat;
use crate::error::{Result, ResultExt};
use crate::image::Digest;
use crate::options::RegistryContext;
use crate::reference::{parse_named, ArchiveSelector, ImageReference, NamedRef};
use crate::report::Reporter;
use crate::store::Store;
use crate::transport::{self, CopyImageOptions};

/// Options of `hod push`.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PushOptions {
    /// `--format`: convert the manifest; `None` keeps the image's own.
    pub format: Option<ImageFormat>,
    /// Layer compression at the destination (`None` here = the transport's default).
    pub compression: Option<Compression>,
    /// `--compression-level` (gzip 0–9, zstd 1–22); `None` = the format's default.
    pub compression_level: Option<i32>,
    /// `--remove-signatures`.
    pub remove_signatures: bool,
    /// Registry access (`--authfile`, `--creds`, `--cert-dir`, `--tls-verify`, `--retry`, …).
    pub registry: RegistryContext,
    /// `--encryption-key`/`--encrypt-layer`.
    pub encryption: Option<std::sync::Arc<crate::image::encryption::EncryptionConfig>>,
}

/// The destination a push names: a transport reference, or a bare name meaning a registry
/// (`buildah push img quay.io/x/y` = `docker://quay.io/x/y`).
pub fn push_destination(dest: &str) -> Result<ImageReference> {
    match ImageReference::parse(dest)? {
        ImageReference::Local(name) => Ok(ImageReference::Docker(
            parse_named(&name)?.with_default_tag(),
        )),
        other => Ok(other),
    }
}

/// The name a docker-archive push without one records: `image` when it names the image,
/// else the image's first name (none for an unnamed image pushed by ID).
fn archive_name_for(store: &Store, image: &str) -> Option<NamedRef> {
    let index = crate::images::ImageIndex::load(store).ok()?;
    let rec = index.get(image).ok()?;
    let by_name = parse_named(image)
        .ok()
        .map(|n| n.with_default_tag())
        .filter(|n| rec.names.iter().any(|x| *x == n.to_string()));
    by_name.or_else(|| (rec.names.first()).and_then(|n| parse_named(n).ok()))
}

/// Push `image` (name or ID in `store`) to `dest` (`oci:dir:tag`, `dir:…`, …).
pub fn push(
    store: &Store,
    image: &str,
    dest: &str,
    opts: &PushOptions,
    reporter: &dyn Reporter,
) -> Result<Digest> {
    (|| -> Result<Digest> {
        crate::registries::auth::check_auth_file(&opts.registry)?;
        let mut dst_ref = push_destination(dest)?;
        if let ImageReference::Docker(n) = &dst_ref {
            crate::registries::check_registry_sources(
                crate::registries::SourceUse::Push,
                &n.domain,
            )?;
        }
        // libimage: a docker-archive written without a name records the source's (the name
        // pushed, else the image's first), so loading it back gives the image its name.
        if let ImageReference::DockerArchive { selector, .. } = &mut dst_ref {
            if selector.is_none() {
                *selector = archive_name_for(store, image).map(ArchiveSelector::Named);
            }
        }
        let dst = transport::open_destination(&dst_ref, Some(store), &opts.registry)?;
        // A list's name pushes the host's instance, as buildah 1.28 does (`manifest push`
        // pushes the list).
        let image = crate::manifest::image_or_instance(store, image, &Default::default())?;
        let src_ref = ImageReference::Storage { store: None, image };
        let mut src = transport::open_source(&src_ref, Some(store), &opts.registry)?;
        // buildah push compresses with gzip unless told otherwise; the local store keeps
        // layers as they are.
        let compression = if dst_ref.is_local_storage() {
            opts.compression
        } else {
            Some(opts.compression.unwrap_or(Compression::Gzip))
        };
        if let Some(level) = opts.compression_level {
            crate::archive::compress::check_level(compression.unwrap_or(Compression::Gzip), level)?;
        }
        let copy = CopyImageOptions {
            format: opts.format,
            compression,
            compression_level: opts.compression_level,
            remove_signatures: opts.remove_signatures,
            encryption: opts.encryption.clone(),
            ..Default::default()
        };
        Ok(transport::copy_image(src.as_mut(), dst, &copy, reporter)?.manifest_digest)
    })()
    .context_with(|| format!("pushing image {image:?} to {dest:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_within_the_store_adds_a_name_and_to_oci_compresses() {
        use crate::transport::testutil::*;
        let t = tempfile::tempdir().unwrap();
        let store = crate::transport::storage::tests::vfs_store(t.path());
        let mut src = image(&[layer_tar("a", b"1")], Compression::None);
        let dst = Box::new(
            crate::transport::storage::StorageDest::new(&store, vec!["localhost/x:1".into()])
                .unwrap(),
        );
        let out = transport::copy_image(
            &mut src,
            dst,
            &CopyImageOptions::default(),
            &crate::report::Quiet,
        )
        .unwrap();
        push(
            &store,
            "localhost/x:1",
            "containers-storage:localhost/y:2",
            &PushOptions::default(),
            &crate::report::Quiet,
        )
        .unwrap();
        let rec = store.image("localhost/y:2").unwrap();
        assert_eq!(rec.id, out.config_digest.hex());
        assert!(rec.names.contains(&"localhost/x:1".to_string()));
        assert_eq!(store.layers().unwrap().len(), 1);
        // to an OCI layout: gzip by default, uncompressed with -D
        for (c, want) in [
            (None, crate::image::manifest::OCI_LAYER_GZIP),
            (
                Some(Compression::None),
                crate::image::manifest::OCI_LAYER_TAR,
            ),
        ] {
            let lay = t.path().join(format!("lay-{want}"));
            let opts = PushOptions {
                compression: c,
                ..Default::default()
            };
            let d = push(
                &store,
                "localhost/x:1",
                &format!("oci:{}:t", lay.display()),
                &opts,
                &crate::report::Quiet,
            )
            .unwrap();
            let mut s = crate::transport::oci::OciLayoutSource::open(&lay, Some("t")).unwrap();
            let (bytes, _, m) =
                transport::load_image_manifest(&mut s, &Default::default()).unwrap();
            assert_eq!(crate::image::Digest::of(&bytes), d);
            assert_eq!(m.layers[0].media_type, want);
            assert_eq!(m.config.digest, out.config_digest);
        }
        // a bare name is a registry: here one that is not listening (no retries)
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut opts = PushOptions::default();
        opts.registry.retry.max_retries = 0;
        opts.registry.tls_verify = Some(false);
        let err = push(
            &store,
            "localhost/x:1",
            &format!("127.0.0.1:{port}/a/b"),
            &opts,
            &crate::report::Quiet,
        )
        .unwrap_err();
        let chain = format!(
            "{err}: {}",
            std::error::Error::source(&err)
                .map(|e| e.to_string())
                .unwrap_or_default()
        );
        assert!(
            chain.contains(&format!("pinging container registry 127.0.0.1:{port}")),
            "{chain}"
        );
    }

    #[test]
    fn bare_destinations_are_registries() {
        assert!(
            matches!(push_destination("quay.io/a/b").unwrap(), ImageReference::Docker(n) if n.to_string() == "quay.io/a/b:latest")
        );
        assert!(matches!(
            push_destination("oci:/x:y").unwrap(),
            ImageReference::Oci { .. }
        ));
    }
}
