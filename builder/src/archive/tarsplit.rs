//! tar-split: the JSON-lines record of a tar stream's non-file bytes (vbatts/tar-split, as
//! containers/storage stores it gzip-compressed in `<driver>-layers/<id>.tar-split.gz`), and
//! reassembly of the exact stream from it plus the files.
use std::io::{Read, Write};
use std::path::Path;

use crate::error::Result;

/// Rebuild the exact tar stream from gzip-compressed tar-split metadata and the layer's files
/// under `root` (opened inside it), verifying each file's size and CRC-64.
pub fn assemble(_tar_split_gz: &mut dyn Read, _root: &Path, _out: &mut dyn Write) -> Result<()> {
    todo!("archive::tarsplit::assemble")
}
