//! `pull`: copy an image from a transport reference into the store.
use crate::error::Result;
use crate::report::Reporter;
use crate::store::Store;

/// When `from`/`pull` fetch an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Pull only when the image is not in the store.
    #[default]
    Missing,
    /// Always pull.
    Always,
    /// Never pull; the image must be local.
    Never,
    /// Pull when the source is newer.
    Newer,
}

/// Options of `hod pull`.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PullOptions {
    /// `--all-tags`.
    pub all_tags: bool,
    /// `--policy`.
    pub policy: PullPolicy,
}

/// Pull `src` into the store; returns the image ID.
pub fn pull(
    _store: &Store,
    _src: &str,
    _opts: &PullOptions,
    _reporter: &dyn Reporter,
) -> Result<String> {
    todo!("pull")
}
