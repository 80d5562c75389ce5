//! `run`: an OCI runtime spec from the working container and options, executed by the
//! embedded runtime, `chroot` isolation, or an external runtime.

/// Run errors.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The command ran and exited with this status (passed through as hod's own).
    #[error("command exited with status {0}")]
    ExitStatus(i32),
}
