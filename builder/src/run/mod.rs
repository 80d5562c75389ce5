//! `run`: an OCI runtime spec from the working container and options, executed by the
//! embedded runtime, `chroot` isolation, or an external runtime.
use crate::builder::Builder;
use crate::error::Result;
use crate::store::Store;

/// Run errors.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The command ran and exited with this status (passed through as hod's own).
    #[error("command exited with status {0}")]
    ExitStatus(i32),
}

/// Options of `hod run` (and RUN in `bud`); grouped sub-structs are added by the runtime work.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RunOptions {}

impl Builder {
    /// Run `command` in the container; returns the command's exit status.
    pub fn run(&mut self, _store: &Store, _command: &[String], _opts: &RunOptions) -> Result<i32> {
        todo!("Builder::run")
    }
}
