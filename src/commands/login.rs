//! `hod login`: check credentials against a registry and store them in the auth file.
use std::path::PathBuf;

use builder::options::RegistryContext;
use builder::registries::LoginOptions;

use crate::ctx::Ctx;

/// `hod login [options] REGISTRY`
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// The registry (host[:port], or host/namespace/repository for per-repository credentials).
    pub registry: Option<String>,
    /// Path of the authentication file (env REGISTRY_AUTH_FILE).
    #[arg(long, value_name = "PATH", env = "REGISTRY_AUTH_FILE", hide_env = true)]
    pub authfile: Option<PathBuf>,
    /// Use certificates (*.crt, *.cert, *.key) in this directory to access the registry.
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// Print the user name stored for the registry (an error if there is none).
    #[arg(long)]
    pub get_login: bool,
    /// Password for the registry.
    #[arg(short, long, value_name = "PASSWORD")]
    pub password: Option<String>,
    /// Take the password from stdin.
    #[arg(long)]
    pub password_stdin: bool,
    /// Require HTTPS and verify certificates when accessing the registry (default: per registries.conf, else true).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub tls_verify: Option<bool>,
    /// User name for the registry.
    #[arg(short, long, value_name = "USER")]
    pub username: Option<String>,
    /// Say where the credentials were stored.
    #[arg(short, long)]
    pub verbose: bool,
}

/// Log in.
pub fn run(a: LoginArgs, ctx: &Ctx) -> anyhow::Result<i32> {
    let mut r = RegistryContext::default();
    r.auth_file = a.authfile.filter(|p| !p.as_os_str().is_empty());
    r.cert_dir = a.cert_dir;
    r.tls_verify = a.tls_verify;
    r.registries_conf = ctx.registries_conf.clone();
    r.short_name_alias_conf = ctx.short_name_alias_conf.clone();
    let mut opts = LoginOptions::default();
    opts.registry = a.registry;
    opts.username = a.username;
    opts.password = a.password;
    opts.password_stdin = a.password_stdin;
    opts.get_login = a.get_login;
    opts.verbose = a.verbose;
    builder::registries::login(&r, &opts, &mut crate::output::TerminalLoginIo)?;
    Ok(0)
}
