//! A layer's change set as a tar stream.
use std::io::Write;
use std::path::Path;

use crate::error::Result;

/// Where the changes come from.
#[derive(Debug, Clone, Copy)]
pub enum ChangeSource<'a> {
    /// An overlay upper directory: everything in it is a change; 0/0 char devices are
    /// whiteouts, `trusted.overlay.opaque=y` directories are opaque.
    OverlayUpper(&'a Path),
    /// A full tree compared with its parent's full tree (vfs); `None` = everything is new.
    Compare {
        /// The layer's tree.
        layer: &'a Path,
        /// The parent's tree.
        parent: Option<&'a Path>,
    },
}

/// Options for [`write_changes`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DiffOptions {
    /// Clamp every mtime (and the entries' times) to this Unix time (`--timestamp`).
    pub timestamp: Option<i64>,
}

/// Write the change set as an uncompressed tar to `out`: sorted by path, hard links within
/// the layer as link entries, xattrs as PAX `SCHILY.xattr.*`, devices, `.wh.` whiteouts.
pub fn write_changes(_src: ChangeSource<'_>, _opts: &DiffOptions, _out: &mut dyn Write) -> Result<()> {
    todo!("archive::diff::write_changes")
}
