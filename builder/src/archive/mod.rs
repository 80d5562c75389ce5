//! Layer archives: tar writing from a change set, secure extraction into a layer directory,
//! whiteout conversion, tar-split metadata, compression and digesting.

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
