//! `commit`: the container's change set as an image source, copied to a destination through
//! the one `transport::copy_image` pipeline.
use crate::archive::Compression;
use crate::builder::{Builder, ImageFormat};
use crate::error::Result;
use crate::image::Digest;
use crate::report::Reporter;
use crate::store::Store;

/// Options of `hod commit` (and of the commit step of `bud`).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CommitOptions {
    /// `--format`.
    pub format: ImageFormat,
    /// Layer compression (`None` = `--disable-compression`, the default for local storage).
    pub compression: Compression,
    /// `--squash`: one layer with the whole rootfs.
    pub squash: bool,
    /// `--timestamp`: created times and file mtimes set to this Unix time.
    pub timestamp: Option<i64>,
    /// `--omit-history`.
    pub omit_history: bool,
    /// `--identity-label` (default true): set `io.buildah.version`.
    pub identity_label: bool,
    /// History `created_by` override.
    pub created_by: Option<String>,
    /// Extra manifest annotations.
    pub annotations: Vec<(String, String)>,
}

/// What a commit produced.
#[derive(Debug, Clone)]
pub struct CommitOutput {
    /// The image ID (config digest hex).
    pub image_id: String,
    /// The manifest digest.
    pub manifest_digest: Digest,
}

impl Builder {
    /// Commit to `dest`: an image name in the local store (`myapp:1`), or a transport
    /// reference (`oci:/dir:tag`, `docker-archive:f.tar`, …). `None` = an unnamed local image.
    pub fn commit(
        &self,
        _store: &Store,
        _dest: Option<&str>,
        _opts: &CommitOptions,
        _reporter: &dyn Reporter,
    ) -> Result<CommitOutput> {
        todo!("Builder::commit")
    }
}
