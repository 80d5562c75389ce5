//! `push`: copy a local image to a transport reference.
use crate::archive::Compression;
use crate::builder::ImageFormat;
use crate::error::Result;
use crate::image::Digest;
use crate::report::Reporter;
use crate::store::Store;

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

/// Push `image` (name or ID in `store`) to `dest` (`oci:dir:tag`, `dir:…`, …).
pub fn push(
    _store: &Store,
    _image: &str,
    _dest: &str,
    _opts: &PushOptions,
    _reporter: &dyn Reporter,
) -> Result<Digest> {
    todo!("push")
}
