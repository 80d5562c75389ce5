//! Flag groups shared by several verbs, each `#[command(flatten)]`-ed where buildah has it,
//! and the one function that turns them into the library's typed context.
//!
//! ```text
//!  RegistryFlags (--authfile --creds --cert-dir --tls-verify --retry --retry-delay
//!                 --signature-policy)        from, pull, push, commit, copy/add
//!  PlatformFlags (--platform --arch --os --variant)          from, pull
//!  BuildPlatformFlags (the same, --platform a list; --all-platforms)    bud
//!        │  + Ctx (--registries-conf, --registries-conf-dir, --short-name-alias-conf)
//!        ▼
//!  registry_context(..) ──▶ builder::options::RegistryContext ──▶ {From,Pull,Push,Commit,Copy}Options
//!
//!  EncryptionFlags (--encryption-key --encrypt-layer)          push, commit, bud
//!  DecryptionFlags (--decryption-key)                          pull, from, bud
//!        ▼ encryption_config(..) / decryption_config(..) (key files read here, once)
//!  builder::image::encryption::{EncryptionConfig, DecryptionConfig}
//! ```
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use builder::image::encryption::{DecryptionConfig, EncryptionConfig};
use builder::options::{Credentials, Platform, RegistryContext, RetryPolicy};

use crate::ctx::Ctx;

/// buildah's registry flags (`--authfile`, `--creds`, `--cert-dir`, `--tls-verify`,
/// `--retry`, `--retry-delay`, hidden `--signature-policy`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RegistryFlags {
    /// Path of the registry authentication file (env REGISTRY_AUTH_FILE).
    #[arg(long, value_name = "PATH", env = "REGISTRY_AUTH_FILE")]
    pub authfile: Option<PathBuf>,
    /// Use USER[:PASS] for accessing the registry (asks for a missing password on a terminal).
    #[arg(long, value_name = "USER[:PASS]")]
    pub creds: Option<String>,
    /// Use certificates (*.crt, *.cert, *.key) in this directory to access the registry.
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// Require HTTPS and verify certificates when accessing the registry (default true).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub tls_verify: Option<bool>,
    /// Number of times to retry in case of failure when pulling or pushing (default 3).
    #[arg(long, value_name = "N")]
    pub retry: Option<u32>,
    /// Delay between retries in case of failure (default 2s).
    #[arg(long, value_name = "DURATION")]
    pub retry_delay: Option<String>,
    /// Signature policy file (not usually used).
    #[arg(long, hide = true, value_name = "PATH")]
    pub signature_policy: Option<PathBuf>,
}

/// The platform to pick from a manifest list (`from`, `pull`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PlatformFlags {
    /// Choose the image for OS/ARCH[/VARIANT] instead of this host's (e.g. linux/arm64).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Choose the image for this architecture instead of the host's.
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,
    /// Choose the image for this OS instead of the host's.
    #[arg(long, value_name = "OS")]
    pub os: Option<String>,
    /// Choose the image for this architecture variant (e.g. v7, v8).
    #[arg(long, value_name = "VARIANT")]
    pub variant: Option<String>,
}

impl PlatformFlags {
    /// The typed, normalised platform (empty fields = the host's). As buildah, `--platform`
    /// may not be combined with `--os`, `--arch` or `--variant`.
    pub fn platform(&self) -> anyhow::Result<Platform> {
        let parts = [&self.os, &self.arch, &self.variant];
        match &self.platform {
            Some(_) if parts.iter().any(|p| p.is_some()) => {
                anyhow::bail!("invalid --platform may not be used with --os, --arch, or --variant")
            }
            Some(p) => Ok(Platform::parse(p)?),
            None => Ok(Platform::new(
                self.os.as_deref().unwrap_or(""),
                self.arch.as_deref().unwrap_or(""),
                self.variant.as_deref().unwrap_or(""),
            )),
        }
    }
}

/// `bud`'s platform flags: `--platform` repeats or takes a comma list (one build each).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BuildPlatformFlags {
    /// Build for OS/ARCH[/VARIANT] instead of this host's (e.g. linux/arm64); several
    /// (repeated, or a comma list) build once each, for --manifest.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_delimiter = ',')]
    pub platform: Vec<String>,
    /// Build for this architecture instead of the host's.
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,
    /// Build for this OS instead of the host's.
    #[arg(long, value_name = "OS")]
    pub os: Option<String>,
    /// Build for this architecture variant (e.g. v7, v8).
    #[arg(long, value_name = "VARIANT")]
    pub variant: Option<String>,
    /// Build for every platform all the base images are available for (for --manifest).
    #[arg(long, conflicts_with = "platform")]
    pub all_platforms: bool,
}

impl BuildPlatformFlags {
    /// The platform of one build (the first of several), as `from`'s flags give it.
    pub fn first(&self) -> PlatformFlags {
        PlatformFlags {
            platform: self.platform.first().cloned(),
            arch: self.arch.clone(),
            os: self.os.clone(),
            variant: self.variant.clone(),
        }
    }

    /// Every `--platform` value, typed (empty when none was given).
    pub fn platforms(&self) -> anyhow::Result<Vec<Platform>> {
        if self.platform.len() > 1 {
            // --os/--arch/--variant with several: refused as with one.
            self.first().platform()?;
        }
        let mut out: Vec<Platform> = Vec::new();
        for p in &self.platform {
            let p = Platform::parse(p)?;
            if !out.contains(&p) {
                out.push(p);
            }
        }
        Ok(out)
    }
}

impl RegistryFlags {
    /// `--retry` and `--retry-delay` as the library's policy.
    pub fn retry_policy(&self) -> anyhow::Result<RetryPolicy> {
        let mut r = RetryPolicy::default();
        if let Some(n) = self.retry {
            r.max_retries = n;
        }
        r.delay = self
            .retry_delay
            .as_deref()
            .map(crate::commands::copy::parse_duration)
            .transpose()?;
        Ok(r)
    }

    /// The fixed delay between retries (`--retry-delay`, else buildah's 2 s).
    pub fn retry_delay_or_default(&self) -> anyhow::Result<Duration> {
        Ok(self.retry_policy()?.delay.unwrap_or(Duration::from_secs(2)))
    }
}

/// The one place registry flags, platform flags and the global registry options become a
/// [`RegistryContext`]. `platform` is `None` for verbs without platform flags.
pub fn registry_context(
    flags: &RegistryFlags,
    platform: Option<&PlatformFlags>,
    ctx: &Ctx,
) -> anyhow::Result<RegistryContext> {
    let mut r = RegistryContext::default();
    r.auth_file = flags.authfile.clone().filter(|p| !p.as_os_str().is_empty());
    r.credentials = flags
        .creds
        .as_deref()
        .map(|c| parse_creds(c, &mut TerminalPrompt))
        .transpose()?;
    r.cert_dir = flags.cert_dir.clone();
    r.tls_verify = flags.tls_verify;
    r.registries_conf = ctx.registries_conf.clone();
    r.registries_conf_dir = ctx.registries_conf_dir.clone();
    r.short_name_alias_conf = ctx.short_name_alias_conf.clone();
    r.signature_policy = flags.signature_policy.clone();
    r.retry = flags.retry_policy()?;
    if let Some(p) = platform {
        r.platform = p.platform()?;
    }
    Ok(r)
}

/// Where a missing user name or password comes from.
pub trait Prompt {
    /// Ask for a value; `secret` = don't echo it.
    fn ask(&mut self, what: &str, secret: bool) -> anyhow::Result<String>;
}

/// Asks on the terminal (stdin), as buildah does; refuses when stdin is not a terminal.
pub struct TerminalPrompt;

impl Prompt for TerminalPrompt {
    fn ask(&mut self, what: &str, secret: bool) -> anyhow::Result<String> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            anyhow::bail!(
                "--creds: no {} given and stdin is not a terminal to ask for it (use --creds USER:PASS)",
                what.to_ascii_lowercase()
            );
        }
        let mut err = std::io::stderr();
        write!(err, "{what}: ")?;
        err.flush()?;
        let saved = if secret {
            let saved = rustix::termios::tcgetattr(&stdin).context("reading terminal settings")?;
            let mut quiet = saved.clone();
            quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
            rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &quiet)
                .context("turning terminal echo off")?;
            Some(saved)
        } else {
            None
        };
        let mut line = String::new();
        let read = stdin.lock().read_line(&mut line);
        if let Some(saved) = saved {
            let _ =
                rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &saved);
            let _ = writeln!(err);
        }
        read.context("could not read from terminal")?;
        Ok(line.trim_end_matches(['\n', '\r']).to_string())
    }
}

/// Parse `--creds USER[:PASS]` as buildah does (split at the first `:`); a missing user name
/// or password is asked for through `prompt`.
pub fn parse_creds(creds: &str, prompt: &mut dyn Prompt) -> anyhow::Result<Credentials> {
    if creds.is_empty() {
        anyhow::bail!("--creds: no credentials supplied");
    }
    let (mut username, mut password) = match creds.split_once(':') {
        Some((u, p)) => (u.to_string(), p.to_string()),
        None => (creds.to_string(), String::new()),
    };
    if username.is_empty() {
        username = prompt.ask("Username", false)?;
    }
    if password.is_empty() {
        password = prompt.ask("Password", true)?;
    }
    if username.is_empty() {
        anyhow::bail!("--creds: no user name given");
    }
    Ok(Credentials { username, password })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, clap::Parser)]
    struct T {
        #[command(flatten)]
        r: RegistryFlags,
        #[command(flatten)]
        p: PlatformFlags,
    }

    struct Answers(Vec<&'static str>, Vec<(String, bool)>);
    impl Prompt for Answers {
        fn ask(&mut self, what: &str, secret: bool) -> anyhow::Result<String> {
            self.1.push((what.to_string(), secret));
            Ok(self.0.remove(0).to_string())
        }
    }

    #[test]
    fn every_flag_reaches_the_context() {
        let t = T::try_parse_from([
            "x",
            "--authfile",
            "/a.json",
            "--creds",
            "me:s3:cret",
            "--cert-dir",
            "/certs",
            "--tls-verify=false",
            "--retry",
            "5",
            "--retry-delay",
            "500ms",
            "--signature-policy",
            "/p.json",
            "--platform",
            "linux/aarch64",
        ])
        .unwrap();
        let ctx = Ctx {
            registries_conf: Some("/r.conf".into()),
            registries_conf_dir: Some("/r.d".into()),
            short_name_alias_conf: Some("/alias.conf".into()),
            ..Default::default()
        };
        let r = registry_context(&t.r, Some(&t.p), &ctx).unwrap();
        assert_eq!(
            r.auth_file.as_deref(),
            Some(std::path::Path::new("/a.json"))
        );
        let c = r.credentials.clone().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("me", "s3:cret")
        );
        assert!(
            !format!("{r:?}").contains("s3:cret"),
            "Debug hides the password"
        );
        assert_eq!(r.cert_dir.as_deref(), Some(std::path::Path::new("/certs")));
        assert_eq!(r.tls_verify, Some(false));
        assert_eq!(r.retry.max_retries, 5);
        assert_eq!(r.retry.delay, Some(Duration::from_millis(500)));
        assert_eq!(r.signature_policy, Some("/p.json".into()));
        assert_eq!(r.registries_conf, Some("/r.conf".into()));
        assert_eq!(r.registries_conf_dir, Some("/r.d".into()));
        assert_eq!(r.short_name_alias_conf, Some("/alias.conf".into()));
        assert_eq!(r.platform, Platform::new("linux", "arm64", ""));
        // nothing given: the defaults, no platform unless asked
        let t = T::try_parse_from(["x", "--tls-verify"]).unwrap();
        let r = registry_context(&t.r, None, &Ctx::default()).unwrap();
        assert_eq!(r.tls_verify, Some(true));
        assert_eq!(r.retry, RetryPolicy::default());
        assert!(r.credentials.is_none() && r.platform.is_empty());
    }

    #[test]
    fn platform_flags() {
        let parse = |args: &[&str]| {
            let mut argv = vec!["x"];
            argv.extend(args);
            T::try_parse_from(argv).unwrap().p.platform()
        };
        assert_eq!(
            parse(&["--arch", "x86_64"]).unwrap(),
            Platform::new("", "amd64", "")
        );
        assert_eq!(
            parse(&["--os", "linux", "--arch", "arm", "--variant", "v6"]).unwrap(),
            Platform::new("linux", "arm", "v6")
        );
        assert_eq!(
            parse(&["--platform", "linux/arm64/v8"]).unwrap(),
            Platform::new("linux", "arm64", "v8")
        );
        assert!(parse(&[]).unwrap().is_empty());
        let e = parse(&["--platform", "linux/amd64", "--arch", "arm64"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid --platform may not be used with --os, --arch, or --variant"
        );
        assert!(parse(&["--platform", "linux//x"]).is_err());
    }

    #[test]
    fn creds() {
        let mut none = Answers(vec![], vec![]);
        let c = parse_creds("u:p", &mut none).unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p"));
        assert!(none.1.is_empty());
        let mut a = Answers(vec!["typed"], vec![]);
        let c = parse_creds("u", &mut a).unwrap();
        assert_eq!(c.password, "typed");
        assert_eq!(a.1, vec![("Password".to_string(), true)]);
        let mut a = Answers(vec!["who"], vec![]);
        let c = parse_creds(":pw", &mut a).unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("who", "pw"));
        assert_eq!(a.1, vec![("Username".to_string(), false)]);
        assert!(parse_creds("", &mut none).is_err());
        assert!(parse_creds(":", &mut Answers(vec!["", "x"], vec![])).is_err());
    }

    #[test]
    fn bad_retry_delay() {
        let t = T::try_parse_from(["x", "--retry-delay", "soon"]).unwrap();
        let e = registry_context(&t.r, None, &Ctx::default()).unwrap_err();
        assert!(e.to_string().contains("--retry-delay"), "{e}");
    }
}

/// buildah's image encryption flags (push, commit, bud).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EncryptionFlags {
    /// Encrypt layers for this recipient: PROTOCOL:KEYFILE, e.g. jwe:key.pub (repeatable;
    /// only the jwe protocol is supported).
    #[arg(
        long = "encryption-key",
        value_name = "PROTOCOL:KEYFILE",
        value_delimiter = ','
    )]
    pub encryption_key: Vec<String>,
    /// Encrypt only the layer at this index (repeatable; negative counts from the top,
    /// -1 = the last layer; default: every layer).
    #[arg(
        long = "encrypt-layer",
        value_name = "INDEX",
        value_delimiter = ',',
        allow_negative_numbers = true
    )]
    pub encrypt_layer: Vec<i64>,
}

/// buildah's `--decryption-key` (pull, from, bud).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DecryptionFlags {
    /// Decrypt encrypted layers with this private key: KEYFILE[:PASSPHRASE] (repeatable).
    #[arg(
        long = "decryption-key",
        value_name = "KEYFILE[:PASSPHRASE]",
        value_delimiter = ','
    )]
    pub decryption_key: Vec<String>,
}

/// buildah's name-based ID-mapping flags of `from` and `bud` (the triples,
/// `--userns-uid-map`/`--userns-gid-map`, are global flags).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct IdMapFlags {
    /// Map the container's IDs to the UID ranges of this user in /etc/subuid.
    #[arg(long, value_name = "USER")]
    pub userns_uid_map_user: Option<String>,
    /// Map the container's IDs to the GID ranges of this group in /etc/subgid.
    #[arg(long, value_name = "GROUP")]
    pub userns_gid_map_group: Option<String>,
}

/// The ID maps of a new container: these flags over the global triples.
pub fn id_mappings(f: &IdMapFlags, ctx: &Ctx) -> anyhow::Result<builder::idmap::IdMappings> {
    let req = builder::idmap::IdMappingRequest {
        uid_map_user: f.userns_uid_map_user.clone().filter(|s| !s.is_empty()),
        gid_map_group: f.userns_gid_map_group.clone().filter(|s| !s.is_empty()),
        ..ctx.id_maps.clone()
    };
    Ok(req.resolve()?)
}

/// The encryption configuration the flags ask for (`None` = no encryption).
pub fn encryption_config(
    f: &EncryptionFlags,
) -> anyhow::Result<Option<std::sync::Arc<EncryptionConfig>>> {
    Ok(
        EncryptionConfig::from_flags(&f.encryption_key, &f.encrypt_layer)
            .map_err(builder::error::Error::from)?
            .map(std::sync::Arc::new),
    )
}

/// The decryption keys the flags name (`None` = none).
pub fn decryption_config(
    f: &DecryptionFlags,
) -> anyhow::Result<Option<std::sync::Arc<DecryptionConfig>>> {
    Ok(DecryptionConfig::from_flags(&f.decryption_key)
        .map_err(builder::error::Error::from)?
        .map(std::sync::Arc::new))
}
