//! `hod pull`: copy an image into local storage; prints its ID.
use std::path::PathBuf;

use builder::pull::PullOptions;

use crate::ctx::Ctx;
use crate::output::{self, StderrReporter};

/// `hod pull [options] IMAGE`
#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// The source (`oci:DIR[:TAG]`, `oci-archive:FILE`, `docker-archive:FILE`, `dir:DIR`, …).
    pub image: String,
    /// Pull every tagged image in the repository.
    #[arg(short, long)]
    pub all_tags: bool,
    /// When to pull: always, missing, never, newer.
    #[arg(long, value_name = "POLICY", default_value = "missing")]
    pub policy: String,
    /// Don't print progress information.
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't copy signatures.
    #[arg(long)]
    pub remove_signatures: bool,
    /// Registry TLS verification (accepted; local transports only).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub tls_verify: Option<bool>,
    /// Registry auth file (accepted; local transports only).
    #[arg(long, value_name = "PATH")]
    pub authfile: Option<PathBuf>,
    /// Signature policy file (not usually used).
    #[arg(long, hide = true, value_name = "PATH")]
    pub signature_policy: Option<PathBuf>,
}

/// Pull.
pub fn run(a: PullArgs, ctx: &Ctx) -> anyhow::Result<i32> {
    let store = ctx.store()?;
    let mut opts = PullOptions::default();
    opts.all_tags = a.all_tags;
    opts.policy = super::from::parse_pull_policy(&a.policy)?;
    let reporter = StderrReporter { quiet: a.quiet };
    let id = builder::pull::pull(&store, &a.image, &opts, &reporter)?;
    output::println(&id)?;
    Ok(0)
}
