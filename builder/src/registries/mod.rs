//! Where and how to reach a registry: registries.conf (v2 and `.d`), policy.json, auth files
//! and credential helpers, `certs.d`, resolved for one reference into the ordered list of
//! [`Endpoint`]s the `docker://` transport tries (mirrors first, then the primary location).
//!
//! ```text
//!  RegistryContext ──▶ resolve_endpoints(ctx, &NamedRef) ──▶ [Endpoint, …] ──▶ transport::registry
//!   (CLI flags)         conf.rs:   registries.conf: prefix/location/mirrors/blocked/insecure
//!   + SysEnv            auth.rs:   auth.json / --creds / credential helpers
//!   (HOME, XDG_*, …)    certs.rs:  certs.d / --cert-dir
//!  resolve_short_name(ctx, "name") ──▶ [NamedRef, …]   (aliases, unqualified-search-registries)
//!  policy::check_policy(ctx, transport, &ImageReference)  (policy.json)
//!  login / logout (login.rs) ──▶ auth.rs writes, transport::registry::check_login
//! ```
//!
//! Every reader is split into a pure parser (tested with tables) and the I/O that finds the
//! files; the environment the files are found through is one value, [`SysEnv`], so tests
//! never read the machine's configuration.
use std::ffi::OsString;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::options::{Credentials, RegistryContext, ShortNameMode};
use crate::reference::{parse_named, NamedRef, DEFAULT_DOMAIN};

pub mod auth;
pub mod certs;
pub mod conf;
pub mod login;
pub mod policy;
pub mod sources;

pub use login::{login, logout, LoginIo, LoginOptions, LogoutOptions, LogoutOutcome};
pub use policy::check_policy;
pub use sources::{check_registry_sources, SourceUse};

/// The registry host docker.io's API really lives on.
pub const DOCKER_REGISTRY_HOST: &str = "registry-1.docker.io";

/// The process environment the configuration files are found through (containers/image
/// reads these variables directly; hod reads them once, here).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SysEnv {
    /// `$HOME`.
    pub home: PathBuf,
    /// The host user ID hod acts for, a rootless user's also inside its user namespace
    /// (root reads `/var/cache`, others `~/.cache`).
    pub uid: u32,
    /// Prefix of system paths (`/etc/containers/…`, `/run/containers/…`): `/` except in tests
    /// (containers/image's `RootForImplicitAbsolutePaths`).
    pub root: PathBuf,
    /// `$XDG_RUNTIME_DIR`.
    pub xdg_runtime_dir: Option<PathBuf>,
    /// `$XDG_CONFIG_HOME`.
    pub xdg_config_home: Option<PathBuf>,
    /// `$DOCKER_CONFIG`.
    pub docker_config: Option<PathBuf>,
    /// `$REGISTRY_AUTH_FILE`.
    pub registry_auth_file: Option<PathBuf>,
    /// `$CONTAINERS_REGISTRIES_CONF`.
    pub registries_conf_env: Option<PathBuf>,
    /// `$PATH` for credential helpers (`None`: the process's).
    pub path: Option<OsString>,
    /// Both stdin and stdout are terminals (short-name resolution).
    pub tty: bool,
}

impl SysEnv {
    /// Read the process environment.
    pub fn from_process() -> SysEnv {
        use std::io::IsTerminal as _;
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        SysEnv {
            home: var("HOME").unwrap_or_else(|| PathBuf::from("/")),
            // The host UID containers/image uses (`GetRootlessUID`), also in the user namespace.
            uid: crate::sys::userns::identity().host_uid(),
            root: PathBuf::from("/"),
            xdg_runtime_dir: var("XDG_RUNTIME_DIR"),
            xdg_config_home: var("XDG_CONFIG_HOME"),
            docker_config: var("DOCKER_CONFIG"),
            registry_auth_file: var("REGISTRY_AUTH_FILE"),
            registries_conf_env: var("CONTAINERS_REGISTRIES_CONF"),
            path: None,
            tty: std::io::stdin().is_terminal() && std::io::stdout().is_terminal(),
        }
    }

    /// A system path (`etc/containers/…`, relative) under [`SysEnv::root`].
    pub fn system_path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}

/// One place to reach a repository, fully resolved: the `docker://` transport needs nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Endpoint {
    /// `host[:port]` to connect to (`docker.io` is already `registry-1.docker.io`).
    pub host: String,
    /// The repository path on that host (rewritten for a mirror or a `location` prefix).
    pub repository: String,
    /// Plain HTTP is allowed (and tried after HTTPS fails) and TLS is not verified.
    pub insecure: bool,
    /// Extra CA certificates (PEM files) to trust.
    pub ca_certs: Vec<PathBuf>,
    /// Client certificate and key (PEM files).
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Credentials for this host, if any.
    pub credentials: Option<Credentials>,
    /// A mirror (pull only), not the primary location.
    pub is_mirror: bool,
}

impl Endpoint {
    /// An endpoint with no TLS material and no credentials.
    pub fn new(host: impl Into<String>, repository: impl Into<String>) -> Endpoint {
        Endpoint {
            host: host.into(),
            repository: repository.into(),
            insecure: false,
            ca_certs: Vec::new(),
            client_cert: None,
            credentials: None,
            is_mirror: false,
        }
    }
}

/// The `Endpoint.host` of a registry domain (`docker.io` is served by `registry-1.docker.io`).
pub fn api_host(domain: &str) -> String {
    if domain == DEFAULT_DOMAIN {
        DOCKER_REGISTRY_HOST.to_string()
    } else {
        domain.to_string()
    }
}

fn blocked_error(conf: &conf::RegistriesConf, reg: &conf::Registry) -> Error {
    let mut places = vec![conf.main_path.display().to_string()];
    places.extend(conf.dir_paths.iter().map(|d| d.display().to_string()));
    Error::invalid(format!(
        "registry {} is blocked in {}",
        reg.prefix,
        places.join(" or ")
    ))
}

/// One endpoint for `named` on its own domain (or a mirror's), with TLS files and credentials.
fn endpoint_for(
    ctx: &RegistryContext,
    env: &SysEnv,
    conf: &conf::RegistriesConf,
    primary_domain: &str,
    named: &NamedRef,
    conf_insecure: bool,
    is_mirror: bool,
) -> Result<Endpoint> {
    let mut ep = Endpoint::new(api_host(&named.domain), named.path.clone());
    ep.is_mirror = is_mirror;
    ep.insecure = match ctx.tls_verify {
        Some(verify) => !verify,
        None => {
            conf_insecure
                || sources::RegistrySources::from_env()?
                    .is_some_and(|s| s.is_insecure(&named.domain))
        }
    };
    let tls = certs::for_host(ctx, env, &named.domain)?;
    ep.ca_certs = tls.ca_certs;
    ep.client_cert = tls.client_pairs.into_iter().next();
    ep.credentials = if ctx.credentials.is_some() && named.domain != primary_domain {
        // --creds are meant for the registry the user named, never for a mirror elsewhere.
        let mut plain = ctx.clone();
        plain.credentials = None;
        auth::lookup(&plain, env, &conf.credential_helpers(), &named.repository())?
    } else {
        auth::lookup(ctx, env, &conf.credential_helpers(), &named.repository())?
    };
    Ok(ep)
}

/// Rewrite `name` (`host/path[:tag][@digest]`) from `prefix` to `location`.
fn rewrite(name: &str, prefix: &str, location: &str) -> Result<NamedRef> {
    if location.is_empty() {
        return parse_named(name);
    }
    let n = conf::ref_matching_prefix(name, prefix).ok_or_else(|| {
        Error::invalid(format!(
            "invalid rewrite of {name:?}: prefix {prefix:?} does not match"
        ))
    })?;
    let rewritten = format!("{location}{}", &name[n..]);
    parse_named(&rewritten).map_err(|e| {
        Error::invalid(format!(
            "rewriting reference {name:?} with location {location:?}: {e}"
        ))
    })
}

/// The endpoints to try for `named`, in order: for pulls the mirrors of its `[[registry]]`
/// (by `pull-from-mirror` / `mirror-by-digest-only`) and then its location (prefix
/// rewritten); for pushes only the name itself, as containers/image does. A blocked
/// registry is an error naming it.
pub fn resolve_endpoints(
    ctx: &RegistryContext,
    named: &NamedRef,
    for_push: bool,
) -> Result<Vec<Endpoint>> {
    resolve_endpoints_in(ctx, &SysEnv::from_process(), named, for_push)
}

/// [`resolve_endpoints`] with an explicit environment.
pub fn resolve_endpoints_in(
    ctx: &RegistryContext,
    env: &SysEnv,
    named: &NamedRef,
    for_push: bool,
) -> Result<Vec<Endpoint>> {
    let conf = conf::load(ctx, env)?;
    let name = named.to_string();
    let Some(reg) = conf.find_registry(&name) else {
        return Ok(vec![endpoint_for(
            ctx,
            env,
            &conf,
            &named.domain,
            named,
            false,
            false,
        )?]);
    };
    if reg.blocked {
        return Err(blocked_error(&conf, reg));
    }
    if for_push {
        return Ok(vec![endpoint_for(
            ctx,
            env,
            &conf,
            &named.domain,
            named,
            reg.insecure,
            false,
        )?]);
    }
    let digested = named.digest.is_some();
    let mut out = Vec::new();
    for m in &reg.mirrors {
        let used = if reg.mirror_by_digest_only {
            digested
        } else {
            match m.pull_from_mirror {
                conf::PullFromMirror::All => true,
                conf::PullFromMirror::DigestOnly => digested,
                conf::PullFromMirror::TagOnly => !digested,
            }
        };
        if used {
            let r = rewrite(&name, &reg.prefix, &m.location)?;
            out.push(endpoint_for(
                ctx,
                env,
                &conf,
                &named.domain,
                &r,
                m.insecure,
                true,
            )?);
        }
    }
    let r = rewrite(&name, &reg.prefix, &reg.location)?;
    out.push(endpoint_for(
        ctx,
        env,
        &conf,
        &named.domain,
        &r,
        reg.insecure,
        false,
    )?);
    Ok(out)
}

/// Whether `name` names its registry (`quay.io/x`, `localhost/x`, `host:5000/x`).
pub fn is_qualified(name: &str) -> bool {
    match name.split_once('/') {
        Some((first, _)) => first.contains('.') || first.contains(':') || first == "localhost",
        None => false,
    }
}

/// `name` without `:tag` (of the last component) and `@digest`, and that suffix.
fn split_suffix(name: &str) -> (&str, &str) {
    let end = name.find('@').unwrap_or(name.len());
    let base = &name[..end];
    let last_slash = base.rfind('/').map_or(0, |i| i + 1);
    let cut = base[last_slash..].find(':').map_or(end, |i| last_slash + i);
    (&name[..cut], &name[cut..])
}

/// The candidates a possibly-short name stands for, as containers/image resolves it: a
/// qualified name (including `localhost/…`) is itself; else its alias (short-name-aliases.conf,
/// then registries.conf); else each unqualified-search registry. With several candidates,
/// `enforcing` mode without a TTY is an error; hod never prompts, so on a TTY (and in
/// `permissive` and `disabled` modes) all candidates are returned in order. Names without a
/// tag or digest get `:latest`.
pub fn resolve_short_name(ctx: &RegistryContext, name: &str) -> Result<Vec<NamedRef>> {
    resolve_short_name_in(ctx, &SysEnv::from_process(), name)
}

/// [`resolve_short_name`] with an explicit environment.
pub fn resolve_short_name_in(
    ctx: &RegistryContext,
    env: &SysEnv,
    name: &str,
) -> Result<Vec<NamedRef>> {
    // Validate first: an invalid name is an error whatever the configuration.
    parse_named(name)?;
    if is_qualified(name) {
        return Ok(vec![parse_named(name)?.with_default_tag()]);
    }
    let conf = conf::load(ctx, env)?;
    let (short, suffix) = split_suffix(name);
    if let Some(alias) = conf.alias(short) {
        return Ok(vec![
            parse_named(&format!("{}{suffix}", alias.value))?.with_default_tag()
        ]);
    }
    if conf.unqualified_search_registries.is_empty() {
        let origin = conf.search_origin.as_deref().unwrap_or(&conf.main_path);
        return Err(Error::invalid(format!(
            "short-name {name:?} did not resolve to an alias and no unqualified-search registries are defined in {:?}",
            origin.display().to_string()
        )));
    }
    let mut out = Vec::new();
    for reg in &conf.unqualified_search_registries {
        out.push(parse_named(&format!("{reg}/{name}"))?.with_default_tag());
    }
    let mode = ctx
        .short_name_mode
        .or(conf.short_name_mode)
        .unwrap_or(ShortNameMode::Permissive);
    if mode == ShortNameMode::Enforcing && out.len() > 1 && !env.tty {
        return Err(Error::invalid(
            "short-name resolution enforced but cannot prompt without a TTY",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn setup(t: &Path, conf: &str) -> (RegistryContext, SysEnv) {
        std::fs::write(t.join("registries.conf"), conf).unwrap();
        let env = SysEnv {
            home: t.join("home"),
            root: t.to_path_buf(),
            uid: 1000,
            ..SysEnv::default()
        };
        let ctx = RegistryContext {
            registries_conf: Some(t.join("registries.conf")),
            registries_conf_dir: Some(t.join("registries.conf.d")),
            auth_file: Some(t.join("auth.json")),
            ..RegistryContext::default()
        };
        (ctx, env)
    }

    const CONF: &str = r#"
unqualified-search-registries = ["quay.io", "docker.io"]
[aliases]
"fedora" = "registry.fedoraproject.org/fedora"
[[registry]]
prefix = "example.com/foo"
location = "internal.example.net/bar"
[[registry.mirror]]
location = "mirror-0.local/m0"
[[registry.mirror]]
location = "mirror-1.local/m1"
insecure = true
pull-from-mirror = "digest-only"
[[registry.mirror]]
location = "mirror-2.local"
pull-from-mirror = "tag-only"
[[registry]]
location = "digests.io"
mirror-by-digest-only = true
insecure = true
[[registry.mirror]]
location = "dmirror.io"
[[registry]]
location = "blocked.io"
blocked = true
[[registry]]
prefix = "*.wild.io"
insecure = true
[[registry]]
prefix = "docker.io/library"
location = "hub-mirror.local/library"
"#;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn eps(
        ctx: &RegistryContext,
        env: &SysEnv,
        name: &str,
        push: bool,
    ) -> Vec<(String, bool, bool)> {
        let named = parse_named(name).unwrap();
        resolve_endpoints_in(ctx, env, &named, push)
            .unwrap()
            .into_iter()
            .map(|e| {
                (
                    format!("{}/{}", e.host, e.repository),
                    e.insecure,
                    e.is_mirror,
                )
            })
            .collect()
    }

    #[test]
    fn endpoints_table() {
        let t = tempfile::tempdir().unwrap();
        let (ctx, env) = setup(t.path(), CONF);
        let s = |v: &[(&str, bool, bool)]| -> Vec<(String, bool, bool)> {
            v.iter().map(|(a, b, c)| (a.to_string(), *b, *c)).collect()
        };
        let by_digest = format!("example.com/foo/img@{DIGEST}");
        type Case<'a> = (&'a str, bool, Vec<(String, bool, bool)>);
        let table: Vec<Case> = vec![
            (
                "example.com/foo/img:1",
                false,
                s(&[
                    ("mirror-0.local/m0/img", false, true),
                    ("mirror-2.local/img", false, true),
                    ("internal.example.net/bar/img", false, false),
                ]),
            ),
            (
                &by_digest,
                false,
                s(&[
                    ("mirror-0.local/m0/img", false, true),
                    ("mirror-1.local/m1/img", true, true),
                    ("internal.example.net/bar/img", false, false),
                ]),
            ),
            // Pushes are neither mirrored nor rewritten.
            (
                "example.com/foo/img:1",
                true,
                s(&[("example.com/foo/img", false, false)]),
            ),
            ("digests.io/x:1", false, s(&[("digests.io/x", true, false)])),
            (
                "example.com/other:1",
                false,
                s(&[("example.com/other", false, false)]),
            ),
            ("a.b.wild.io/x", false, s(&[("a.b.wild.io/x", true, false)])),
            (
                "busybox",
                false,
                s(&[("hub-mirror.local/library/busybox", false, false)]),
            ),
            (
                "docker.io/user/x",
                false,
                s(&[("registry-1.docker.io/user/x", false, false)]),
            ),
        ];
        for (name, push, want) in table {
            assert_eq!(eps(&ctx, &env, name, push), want, "{name} push={push}");
        }
        let digests = eps(&ctx, &env, &format!("digests.io/x@{DIGEST}"), false);
        assert_eq!(digests[0], ("dmirror.io/x".to_string(), false, true));
        // --tls-verify overrides registries.conf.
        let mut verify = ctx.clone();
        verify.tls_verify = Some(true);
        assert!(!eps(&verify, &env, "digests.io/x", false)[0].1);
        verify.tls_verify = Some(false);
        assert!(eps(&verify, &env, "quay.io/x", false)[0].1);
        // Blocked, for pulls and pushes alike.
        for push in [false, true] {
            let e = resolve_endpoints_in(&ctx, &env, &parse_named("blocked.io/a/b").unwrap(), push)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("registry blocked.io is blocked in "), "{e}");
            assert!(e.contains("registries.conf"), "{e}");
        }
    }

    #[test]
    fn endpoints_carry_credentials_and_certs() {
        let t = tempfile::tempdir().unwrap();
        let (mut ctx, env) = setup(t.path(), CONF);
        std::fs::write(
            t.path().join("auth.json"),
            r#"{"auths":{"example.com":{"auth":"cHJpbTpw"},"mirror-0.local/m0":{"auth":"bTA6cA=="}}}"#,
        )
        .unwrap();
        let certs = t
            .path()
            .join("home/.config/containers/certs.d/mirror-0.local");
        std::fs::create_dir_all(&certs).unwrap();
        for f in ["ca.crt", "c.cert", "c.key"] {
            std::fs::write(certs.join(f), "x").unwrap();
        }
        let named = parse_named("example.com/foo/img:1").unwrap();
        let e = resolve_endpoints_in(&ctx, &env, &named, false).unwrap();
        assert_eq!(e[0].credentials.as_ref().unwrap().username, "m0");
        assert_eq!(e[0].ca_certs, vec![certs.join("ca.crt")]);
        assert_eq!(
            e[0].client_cert,
            Some((certs.join("c.cert"), certs.join("c.key")))
        );
        assert!(e[1].credentials.is_none() && e[1].ca_certs.is_empty());
        let pushed = resolve_endpoints_in(&ctx, &env, &named, true).unwrap();
        assert_eq!(pushed[0].credentials.as_ref().unwrap().username, "prim");
        // --creds go to the named registry only, never to mirrors on other hosts.
        ctx.credentials = Some(Credentials {
            username: "cli".into(),
            password: "x".into(),
        });
        let e = resolve_endpoints_in(
            &ctx,
            &env,
            &parse_named("example.com/foo/img:1").unwrap(),
            true,
        )
        .unwrap();
        assert_eq!(e[0].credentials.as_ref().unwrap().username, "cli");
        let e = resolve_endpoints_in(&ctx, &env, &named, false).unwrap();
        assert_eq!(e[0].credentials.as_ref().unwrap().username, "m0");
    }

    #[test]
    fn short_names_table() {
        let t = tempfile::tempdir().unwrap();
        let (ctx, env) = setup(t.path(), CONF);
        let names = |ctx: &RegistryContext, env: &SysEnv, n: &str| -> Result<Vec<String>> {
            Ok(resolve_short_name_in(ctx, env, n)?
                .into_iter()
                .map(|r| r.to_string())
                .collect())
        };
        let table: &[(&str, &[&str])] = &[
            ("quay.io/x/y", &["quay.io/x/y:latest"]),
            ("localhost/app", &["localhost/app:latest"]),
            ("localhost:5000/app:2", &["localhost:5000/app:2"]),
            ("fedora", &["registry.fedoraproject.org/fedora:latest"]),
            ("fedora:38", &["registry.fedoraproject.org/fedora:38"]),
            ("app:1", &["quay.io/app:1", "docker.io/library/app:1"]),
            (
                "ns/app",
                &["quay.io/ns/app:latest", "docker.io/ns/app:latest"],
            ),
        ];
        for (n, want) in table {
            assert_eq!(names(&ctx, &env, n).unwrap(), *want, "{n}");
        }
        let d = names(&ctx, &env, &format!("fedora@{DIGEST}")).unwrap();
        assert_eq!(
            d,
            vec![format!("registry.fedoraproject.org/fedora@{DIGEST}")]
        );
        // Enforcing without a TTY: several candidates are an error, one is fine.
        let mut enforcing = ctx.clone();
        enforcing.short_name_mode = Some(ShortNameMode::Enforcing);
        let e = names(&enforcing, &env, "app").unwrap_err().to_string();
        assert_eq!(
            e,
            "short-name resolution enforced but cannot prompt without a TTY"
        );
        assert!(names(&enforcing, &env, "fedora").is_ok());
        let tty = SysEnv {
            tty: true,
            ..env.clone()
        };
        assert_eq!(names(&enforcing, &tty, "app").unwrap().len(), 2);
        let (one, env1) = setup(
            t.path(),
            "unqualified-search-registries = [\"only.io\"]\nshort-name-mode = \"enforcing\"\n",
        );
        assert_eq!(
            names(&one, &env1, "app").unwrap(),
            vec!["only.io/app:latest"]
        );
        let (none, env0) = setup(t.path(), "unqualified-search-registries = []\n");
        let e = names(&none, &env0, "app").unwrap_err().to_string();
        assert!(e.starts_with("short-name \"app\" did not resolve to an alias and no unqualified-search registries are defined in "), "{e}");
        assert!(names(&none, &env0, "Bad!Name").is_err());
    }
}
