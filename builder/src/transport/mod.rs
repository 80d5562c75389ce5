//! Image transports: `ImageSource` → `ImageDestination` with one `copy_image` pipeline shared
//! by commit, push and pull.

/// Transport errors.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// An unknown transport prefix.
    #[error("unknown transport {0:?}")]
    UnknownTransport(String),
}
