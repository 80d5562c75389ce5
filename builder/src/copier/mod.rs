//! Rootfs-confined file operations: every path inside a rootfs is resolved inside it.

/// Copy errors.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A source path leaves its context directory.
    #[error("{path}: path escapes the context directory {context}")]
    Escapes {
        /// The offending path.
        path: String,
        /// The context directory.
        context: String,
    },
}
