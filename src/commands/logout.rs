//! `hod logout`: remove stored registry credentials.
use std::path::PathBuf;

use builder::options::RegistryContext;
use builder::registries::{LogoutOptions, LogoutOutcome};

use crate::ctx::Ctx;

/// `hod logout [options] REGISTRY`
#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    /// The registry (host[:port], or host/namespace/repository).
    pub registry: Option<String>,
    /// Remove the credentials of every registry in the auth file.
    #[arg(short, long)]
    pub all: bool,
    /// Path of the authentication file (env REGISTRY_AUTH_FILE).
    #[arg(long, value_name = "PATH", env = "REGISTRY_AUTH_FILE", hide_env = true)]
    pub authfile: Option<PathBuf>,
}

/// Log out.
pub fn run(a: LogoutArgs, ctx: &Ctx) -> anyhow::Result<i32> {
    let mut r = RegistryContext::default();
    r.auth_file = a.authfile.filter(|p| !p.as_os_str().is_empty());
    r.registries_conf = ctx.registries_conf.clone();
    let mut opts = LogoutOptions::default();
    opts.registry = a.registry;
    opts.all = a.all;
    match builder::registries::logout(&r, &opts)? {
        LogoutOutcome::Removed(key) => {
            crate::output::println(&format!("Removed login credentials for {key}"))?
        }
        LogoutOutcome::RemovedAll => {
            crate::output::println("Removed login credentials for all registries")?
        }
    }
    Ok(0)
}
