//! Apply a layer tar to a directory, confined to it.
use std::io::{Read, Write};
use std::path::Path;

use crate::error::Result;
use crate::image::Digest;

/// How whiteouts in the tar are materialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhiteoutFormat {
    /// Overlay: `.wh.x` becomes a 0/0 character device `x`; `.wh..wh..opq` sets
    /// `trusted.overlay.opaque=y` on its directory. The target is an empty `diff/` dir.
    Overlay,
    /// Full tree (vfs, or a rootfs): `.wh.x` deletes `x`; an opaque marker deletes what the
    /// directory held before this layer. The target already holds the parent's tree.
    Delete,
}

/// Options for [`apply_layer`].
#[non_exhaustive]
pub struct ApplyOptions<'a> {
    /// Whiteout handling.
    pub whiteouts: WhiteoutFormat,
    /// Where to write the gzip-compressed tar-split metadata of the stream, if anywhere.
    pub tar_split: Option<&'a mut dyn Write>,
    /// Leave ownership as the current user instead of the tar's (rootless without maps).
    pub ignore_chown_errors: bool,
}

impl std::fmt::Debug for ApplyOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplyOptions")
            .field("whiteouts", &self.whiteouts)
            .field("tar_split", &self.tar_split.is_some())
            .field("ignore_chown_errors", &self.ignore_chown_errors)
            .finish()
    }
}

impl<'a> ApplyOptions<'a> {
    /// Options with the given whiteout format, no tar-split, chown on.
    pub fn new(whiteouts: WhiteoutFormat) -> Self {
        ApplyOptions { whiteouts, tar_split: None, ignore_chown_errors: false }
    }
}

/// What applying a layer produced.
#[derive(Debug, Clone)]
pub struct ApplySummary {
    /// sha256 of the whole uncompressed stream as read (to EOF).
    pub diff_digest: Digest,
    /// Its length.
    pub diff_size: u64,
}

/// Apply an uncompressed tar stream (read to EOF) to `dir`. Entries that would leave `dir`
/// lexically are refused; links met inside are resolved inside `dir`.
pub fn apply_layer(_dir: &Path, _tar: &mut dyn Read, _opts: ApplyOptions<'_>) -> Result<ApplySummary> {
    todo!("archive::apply_layer")
}
