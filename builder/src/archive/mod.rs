//! Layer archives: tar writing from a change set, secure extraction into a layer directory,
//! whiteout conversion, tar-split metadata, compression and digesting.
//!
//! - [`apply`]: apply an uncompressed layer tar to a directory (overlay- or vfs-style
//!   whiteouts), writing tar-split metadata and computing the diff digest in the same pass.
//! - [`tarsplit`]: the tar-split JSON-lines format; reassembling the exact tar from a
//!   tar-split file plus the layer's files.
//! - [`diff`]: the change set of a layer (overlay upper dir, or vfs dir against its parent)
//!   written as a tar stream, in deterministic order.
//! - [`compress`]: compression detection, compressors and decompressors.
//! - [`pipeline`]: [`pipeline::LayerWriter`], one pass over a layer for commit: diff ID and
//!   size of the tar, digest and size of the compressed blob.
pub mod apply;
pub mod compress;
pub mod diff;
pub mod pargz;
pub mod pipeline;
pub mod tarsplit;

pub use compress::Compression;

/// Archive errors.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A tar entry is unsafe or malformed.
    #[error("invalid tar entry {name:?}: {reason}")]
    BadEntry {
        /// The entry name as found.
        name: String,
        /// Why it is refused.
        reason: String,
    },
}

#[cfg(test)]
mod tests;
