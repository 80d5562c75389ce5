//! `push`: copy a local image to a transport reference.
use crate::archive::Compression;
use crate::builder::ImageFormat;
use crate::error::{Result, ResultExt};
use crate::image::Digest;
use crate::reference::{parse_named, ImageReference};
use crate::report::Reporter;
use crate::store::Store;
use crate::transport::{self, storage::StorageSource, CopyImageOptions};

/// Options of `hod push`.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PushOptions {
    /// `--format`: convert the manifest; `None` keeps the image's own.
    pub format: Option<ImageFormat>,
    /// Layer compression at the destination (`None` here = the transport's default).
    pub compression: Option<Compression>,
    /// `--remove-signatures`.
    pub remove_signatures: bool,
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

/// Push `image` (name or ID in `store`) to `dest` (`oci:dir:tag`, `dir:…`, …).
pub fn push(
    store: &Store,
    image: &str,
    dest: &str,
    opts: &PushOptions,
    reporter: &dyn Reporter,
) -> Result<Digest> {
    (|| -> Result<Digest> {
        let dst_ref = push_destination(dest)?;
        let dst = transport::open_destination(&dst_ref, Some(store))?;
        let mut src = StorageSource::open(store, image)?;
        // buildah push compresses with gzip unless told otherwise; the local store keeps
        // layers as they are.
        let compression = if dst_ref.is_local_storage() {
            opts.compression
        } else {
            Some(opts.compression.unwrap_or(Compression::Gzip))
        };
        let copy = CopyImageOptions {
            format: opts.format,
            compression,
            remove_signatures: opts.remove_signatures,
        };
        Ok(transport::copy_image(&mut src, dst, &copy, reporter)?.manifest_digest)
    })()
    .context_with(|| format!("pushing image {image:?} to {dest:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
