//! `hod copy` and `hod add` (owned by the copier work).
use crate::ctx::Ctx;

/// `hod copy|add [options] CONTAINER SRC [SRC...] DEST`
#[derive(Debug, clap::Args)]
pub struct CopyArgs {
    /// The working container, then sources, then the destination.
    #[arg(required = true, num_args = 2..)]
    pub args: Vec<String>,
}

/// Which verb was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// `copy`: no extraction, no URLs.
    Copy,
    /// `add`: extracts local archives, fetches URLs.
    Add,
}

/// Copy; the result is hod's exit code.
pub fn run(_verb: Verb, _args: CopyArgs, _ctx: &Ctx) -> anyhow::Result<i32> {
    anyhow::bail!("copy is not implemented yet")
}
