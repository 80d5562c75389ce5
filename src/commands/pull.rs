//! `hod pull`: copy an image into local storage; prints its ID.
use builder::pull::PullOptions;

use crate::ctx::Ctx;
use crate::flags::{
    decryption_config, registry_context, DecryptionFlags, PlatformFlags, RegistryFlags,
};
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
    /// `--decryption-key`.
    #[command(flatten)]
    pub decryption: DecryptionFlags,
    /// `--platform`, `--arch`, `--os`, `--variant`.
    #[command(flatten)]
    pub platform: PlatformFlags,
    /// `--authfile`, `--creds`, `--cert-dir`, `--tls-verify`, `--retry`, `--retry-delay`.
    #[command(flatten)]
    pub registry: RegistryFlags,
}

/// Pull.
pub fn run(a: PullArgs, ctx: &Ctx) -> anyhow::Result<i32> {
    let store = ctx.store()?;
    let mut opts = PullOptions::default();
    opts.all_tags = a.all_tags;
    opts.policy = super::from::parse_pull_policy(&a.policy)?;
    opts.remove_signatures = a.remove_signatures;
    opts.registry = registry_context(&a.registry, Some(&a.platform), ctx)?;
    opts.decryption = decryption_config(&a.decryption)?;
    let reporter = StderrReporter::new(a.quiet);
    let id = builder::pull::pull(&store, &a.image, &opts, &reporter)?;
    output::println(&id)?;
    Ok(0)
}
