//! `hod from`: create a working container from an image or `scratch`; prints its name.
use std::path::PathBuf;

use builder::options::FromOptions;
use builder::pull::PullPolicy;
use builder::run::Isolation;

use crate::ctx::Ctx;
use crate::flags::{
    decryption_config, id_mappings, registry_context, DecryptionFlags, IdMapFlags, PlatformFlags,
    RegistryFlags,
};
use crate::output::{self, StderrReporter};

use super::run_flags::RunDefaultsArgs;

/// `hod from [options] IMAGE`
#[derive(Debug, clap::Args)]
pub struct FromArgs {
    /// The image: `scratch`, a name, an ID, or a transport reference (`oci:DIR[:TAG]`, …).
    pub image: String,
    /// Name for the working container (default `<image>-working-container`).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Suffix of the generated container name, instead of `working-container`.
    #[arg(long, hide = true, value_name = "SUFFIX")]
    pub suffix: Option<String>,
    /// Write the container ID to this file.
    #[arg(long, value_name = "FILE")]
    pub cidfile: Option<PathBuf>,
    /// Pull policy: always, missing, never, newer (bare --pull means always).
    #[arg(long, value_name = "POLICY", num_args = 0..=1, require_equals = true, default_missing_value = "always")]
    pub pull: Option<String>,
    /// Same as --pull=always.
    #[arg(long, hide = true)]
    pub pull_always: bool,
    /// Same as --pull=never.
    #[arg(long, hide = true)]
    pub pull_never: bool,
    /// Don't print progress information when pulling.
    #[arg(short, long)]
    pub quiet: bool,
    /// Default format of images committed from the container: oci or docker (env BUILDAH_FORMAT).
    #[arg(short, long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Isolation for `run`: oci, chroot or rootless (default: BUILDAH_ISOLATION, else oci).
    #[arg(long, value_name = "TYPE")]
    pub isolation: Option<String>,
    /// `--decryption-key`.
    #[command(flatten)]
    pub decryption: DecryptionFlags,
    /// `--userns-uid-map-user`, `--userns-gid-map-group`.
    #[command(flatten)]
    pub id_maps: IdMapFlags,
    /// `--platform`, `--arch`, `--os`, `--variant`.
    #[command(flatten)]
    pub platform: PlatformFlags,
    /// Settings for later `run`s.
    #[command(flatten)]
    pub run: RunDefaultsArgs,
    /// `--authfile`, `--creds`, `--cert-dir`, `--tls-verify`, `--retry`, `--retry-delay`.
    #[command(flatten)]
    pub registry: RegistryFlags,
}

/// Parse `--pull` values as buildah does (`true` = always, `false` = missing).
pub fn parse_pull_policy(s: &str) -> anyhow::Result<PullPolicy> {
    Ok(PullPolicy::parse(s)?)
}

/// The pull policy from `--pull`, `--pull-always`, `--pull-never`.
pub fn pull_policy(pull: Option<&str>, always: bool, never: bool) -> anyhow::Result<PullPolicy> {
    Ok(PullPolicy::from_flags(pull, always, never)?)
}

/// Create the container.
pub fn run(a: FromArgs, ctx: &Ctx) -> anyhow::Result<i32> {
    let mut opts = FromOptions::default();
    opts.id_mappings = id_mappings(&a.id_maps, ctx)?;
    opts.name = a.name.clone();
    opts.suffix = a.suffix.clone();
    opts.pull_policy = pull_policy(a.pull.as_deref(), a.pull_always, a.pull_never)?;
    opts.format = a.format.as_deref().map(super::parse_format).transpose()?;
    opts.isolation = a.isolation.as_deref().map(Isolation::parse).transpose()?;
    opts.registry = registry_context(&a.registry, Some(&a.platform), ctx)?;
    opts.run_defaults = a.run.defaults()?;
    opts.decryption = decryption_config(&a.decryption)?;
    let store = ctx.store()?;
    let reporter = StderrReporter::new(a.quiet);
    let b = imagebuildah::onbuild::from(&store, &a.image, &opts, &reporter)?;
    if let Some(path) = &a.cidfile {
        super::write_user_file(path, b.id())?;
    }
    output::println(b.name())?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policies() {
        let cases = [
            (None, false, false, PullPolicy::Missing),
            (Some("always"), false, false, PullPolicy::Always),
            (Some("true"), false, false, PullPolicy::Always),
            (Some("false"), false, false, PullPolicy::Missing),
            (Some("Never"), false, false, PullPolicy::Never),
            (Some("newer"), false, false, PullPolicy::Newer),
            (None, true, false, PullPolicy::Always),
            (None, false, true, PullPolicy::Never),
        ];
        for (p, a, n, want) in cases {
            assert_eq!(pull_policy(p, a, n).unwrap(), want, "{p:?} {a} {n}");
        }
        assert!(pull_policy(Some("always"), true, false).is_err());
        assert!(pull_policy(Some("sometimes"), false, false).is_err());
    }
}
