//! Registry credentials as containers/image keeps them (containers-auth.json(5)).
//!
//! ```text
//!  lookup(key = "host[/ns/repo]")
//!    --creds (RegistryContext.credentials) ──▶ done
//!    for helper in registries.conf credential-helpers (default ["containers-auth.json"]):
//!      containers-auth.json: for file in [--authfile | REGISTRY_AUTH_FILE
//!                                          | $XDG_RUNTIME_DIR/containers/auth.json
//!                                          | /run/containers/$UID/auth.json,
//!                                         $XDG_CONFIG_HOME/containers/auth.json,
//!                                         $DOCKER_CONFIG/config.json | ~/.docker/config.json,
//!                                         ~/.dockercfg (legacy)]:
//!          credHelpers[host] ─▶ docker-credential-<name> get
//!          auths[host/ns/repo], auths[host/ns], auths[host] (most specific first),
//!          then normalised keys (https://host/v1/, index.docker.io)
//!          credsStore ─▶ docker-credential-<name> get (docker's global store)
//!      other name: docker-credential-<name> get
//! ```
//!
//! Writes ([`store`], [`erase`], [`erase_all`]) go to the first file of that list (created
//! 0600 in a 0700 directory, replaced atomically) or to the `credHelpers` helper of the key.
//! The parsing and key matching are pure ([`AuthFile::parse`], [`AuthFile::find`]); I/O is in
//! [`lookup`] and the writers.
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoResultExt, Result};
use crate::options::{Credentials, RegistryContext};

use super::SysEnv;

/// The reserved `credential-helpers` name for the auth files themselves.
pub const AUTH_FILE_HELPER: &str = "containers-auth.json";

/// The user name docker uses for an identity token in credential helpers and in
/// [`Credentials`]: the password is then the token.
pub const TOKEN_USER: &str = "<token>";

/// One `auths` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthEntry {
    /// base64 of `user:password`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth: String,
    /// An OAuth2 refresh token.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub identitytoken: String,
    /// Anything else docker or others wrote; kept on rewrite.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// An auth file (`auth.json` or docker's `config.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuthFile {
    /// Credentials by key (`host`, `host/ns`, `host/ns/repo`, or docker's URLs).
    #[serde(default)]
    pub auths: BTreeMap<String, AuthEntry>,
    /// Per-registry credential helpers.
    #[serde(
        default,
        rename = "credHelpers",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub cred_helpers: BTreeMap<String, String>,
    /// docker's default credential store.
    #[serde(
        default,
        rename = "credsStore",
        skip_serializing_if = "Option::is_none"
    )]
    pub creds_store: Option<String>,
    /// Other keys (docker's config.json has many); kept on rewrite.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// Where credentials were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// Decoded from an `auths` entry.
    Creds(Credentials),
    /// To be asked from `docker-credential-<helper>` for this server.
    Helper {
        /// The helper's name.
        helper: String,
        /// The server name to ask for.
        server: String,
    },
}

fn json_err(path: &Path, op: &str, e: serde_json::Error) -> Error {
    Error::Json {
        op: op.to_string(),
        path: path.to_path_buf(),
        source: e,
    }
}

impl AuthFile {
    /// Parse a file's text (pure). `legacy`: the `~/.dockercfg` format (`auths` at the top).
    pub fn parse(text: &str, path: &Path, legacy: bool) -> Result<AuthFile> {
        if legacy {
            let auths = serde_json::from_str(text)
                .map_err(|e| json_err(path, "unmarshaling JSON at", e))?;
            return Ok(AuthFile {
                auths,
                ..AuthFile::default()
            });
        }
        serde_json::from_str(text).map_err(|e| json_err(path, "unmarshaling JSON at", e))
    }

    /// What this file says for `key` (`host` or `host/ns/…/repo`), most specific first.
    pub fn find(&self, key: &str) -> Result<Option<Found>> {
        let host = key.split('/').next().unwrap_or(key);
        if let Some(h) = self.cred_helpers.get(host) {
            return Ok(Some(Found::Helper {
                helper: h.clone(),
                server: host.to_string(),
            }));
        }
        for k in key_candidates(key) {
            if let Some(e) = self.auths.get(k) {
                return decode(e);
            }
        }
        let norm = normalize_registry(host);
        for (k, e) in &self.auths {
            if normalize_key(k) == norm {
                return decode(e);
            }
        }
        if let Some(store) = &self.creds_store {
            return Ok(Some(Found::Helper {
                helper: store.clone(),
                server: host.to_string(),
            }));
        }
        Ok(None)
    }

    /// Serialise as containers/image does (tab-indented JSON).
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        // A map of strings and JSON values always serialises.
        let _ = self.serialize(&mut ser);
        out
    }
}

/// `host/ns/repo`, `host/ns`, `host`.
pub fn key_candidates(key: &str) -> Vec<&str> {
    let mut v = vec![key];
    let mut k = key;
    while let Some(i) = k.rfind('/') {
        k = &k[..i];
        v.push(k);
    }
    v
}

/// docker's `convertToHostname` plus the docker.io aliases, for a registry name.
pub fn normalize_registry(key: &str) -> String {
    let s = key
        .strip_prefix("http://")
        .or_else(|| key.strip_prefix("https://"))
        .unwrap_or(key);
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "registry-1.docker.io" | "docker.io" => "index.docker.io".to_string(),
        h => h.to_string(),
    }
}

/// An auth file key as a registry name: URL keys (`https://host/v1/`) are cut to their
/// host; `host/ns` keys stay as they are (they match only exactly).
pub fn normalize_key(key: &str) -> String {
    if key.starts_with("http://") || key.starts_with("https://") {
        normalize_registry(key)
    } else {
        match key {
            "registry-1.docker.io" | "docker.io" => "index.docker.io".to_string(),
            k => k.to_string(),
        }
    }
}

fn decode(e: &AuthEntry) -> Result<Option<Found>> {
    if e.auth.is_empty() && e.identitytoken.is_empty() {
        return Ok(None);
    }
    if !e.identitytoken.is_empty() {
        return Ok(Some(Found::Creds(Credentials {
            username: TOKEN_USER.to_string(),
            password: e.identitytoken.clone(),
        })));
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(e.auth.trim())
        .map_err(|err| Error::invalid(format!("decoding auth entry: {err}")))?;
    let s = String::from_utf8_lossy(&raw);
    // An entry that is not user:password is skipped, as docker does.
    Ok(s.split_once(':').map(|(u, p)| {
        Found::Creds(Credentials {
            username: u.to_string(),
            password: p.trim_matches('\0').to_string(),
        })
    }))
}

/// One auth file and whether it is in the legacy format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthPath {
    /// The file.
    pub path: PathBuf,
    /// `~/.dockercfg` format.
    pub legacy: bool,
}

/// The file login writes to and lookups read first.
pub fn write_path(ctx: &RegistryContext, env: &SysEnv) -> Result<PathBuf> {
    if let Some(p) = ctx
        .auth_file
        .clone()
        .or_else(|| env.registry_auth_file.clone())
    {
        return Ok(p);
    }
    if let Some(rt) = &env.xdg_runtime_dir {
        if !rt.exists() {
            return Err(Error::invalid(format!(
                "{:?} directory set by $XDG_RUNTIME_DIR does not exist. Either create the directory or unset $XDG_RUNTIME_DIR.",
                rt.display().to_string()
            )));
        }
        return Ok(rt.join("containers/auth.json"));
    }
    Ok(env.system_path(&format!("run/containers/{}/auth.json", env.uid)))
}

/// A given `--authfile` must exist (buildah's `CheckAuthFile`, for every command taking it):
/// "checking authfile: stat FILE: no such file or directory".
pub fn check_auth_file(ctx: &RegistryContext) -> Result<()> {
    let Some(f) = &ctx.auth_file else {
        return Ok(());
    };
    match std::fs::metadata(f) {
        Ok(_) => Ok(()),
        Err(e) => {
            let cause = match e.kind() {
                std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
                std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
                _ => e.to_string(),
            };
            Err(Error::invalid(format!(
                "checking authfile: stat {}: {cause}",
                f.display()
            )))
        }
    }
}

/// Every auth file to read, in order.
pub fn read_paths(ctx: &RegistryContext, env: &SysEnv) -> Vec<AuthPath> {
    let mut v = Vec::new();
    match write_path(ctx, env) {
        Ok(p) => v.push(AuthPath {
            path: p,
            legacy: false,
        }),
        Err(e) => {
            tracing::warn!("{e}: Trying to pull image in the event that it is a public image.")
        }
    }
    let cfg_home = env
        .xdg_config_home
        .clone()
        .unwrap_or_else(|| env.home.join(".config"));
    v.push(AuthPath {
        path: cfg_home.join("containers/auth.json"),
        legacy: false,
    });
    v.push(AuthPath {
        path: env
            .docker_config
            .as_ref()
            .map(|d| d.join("config.json"))
            .unwrap_or_else(|| env.home.join(".docker/config.json")),
        legacy: false,
    });
    v.push(AuthPath {
        path: env.home.join(".dockercfg"),
        legacy: true,
    });
    v
}

/// Read an auth file; a missing one is empty.
pub fn read_file(p: &AuthPath) -> Result<AuthFile> {
    match std::fs::read_to_string(&p.path) {
        Ok(t) => AuthFile::parse(&t, &p.path, p.legacy),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AuthFile::default()),
        Err(e) => Err(e).at("reading auth file", &p.path),
    }
}

/// The credentials for `key` (`host` or `host/ns/repo`), as containers/image finds them.
/// `helpers` is registries.conf's `credential-helpers` (see `RegistriesConf::credential_helpers`).
pub fn lookup(
    ctx: &RegistryContext,
    env: &SysEnv,
    helpers: &[String],
    key: &str,
) -> Result<Option<Credentials>> {
    if let Some(c) = &ctx.credentials {
        return Ok(Some(c.clone()));
    }
    let host = key.split('/').next().unwrap_or(key);
    let mut first_err = None;
    for helper in helpers {
        let got = if helper == AUTH_FILE_HELPER {
            lookup_files(ctx, env, key)
        } else {
            helper_get(env, helper, host)
        };
        match got {
            Ok(Some(c)) => return Ok(Some(c)),
            Ok(None) => {}
            Err(e) => {
                tracing::debug!("looking up credentials for {key} in {helper}: {e}");
                first_err.get_or_insert(e);
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(None),
    }
}

fn lookup_files(ctx: &RegistryContext, env: &SysEnv, key: &str) -> Result<Option<Credentials>> {
    for p in read_paths(ctx, env) {
        let file = read_file(&p)?;
        let found = if p.legacy {
            // Legacy files only know registry keys.
            file.find(key.split('/').next().unwrap_or(key))?
        } else {
            file.find(key)?
        };
        let creds = match found {
            None => None,
            Some(Found::Creds(c)) => Some(c),
            Some(Found::Helper { helper, server }) => helper_get(env, &helper, &server)?,
        };
        if let Some(c) = creds.filter(|c| !c.username.is_empty() || !c.password.is_empty()) {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// The credential helper protocol (docker-credential-helpers): `get`, `store`, `erase`.
fn run_helper(
    env: &SysEnv,
    helper: &str,
    verb: &str,
    input: &[u8],
) -> Result<std::result::Result<Vec<u8>, String>> {
    let prog = format!("docker-credential-{helper}");
    let mut cmd = Command::new(&prog);
    if let Some(path) = &env.path {
        // Also where `prog` is looked up (std searches the child's PATH when it is set).
        cmd.env("PATH", path);
    }
    let mut child = cmd
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .at("executing credential helper", &prog)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .at("writing to credential helper", &prog)?;
    }
    let out = child
        .wait_with_output()
        .at("waiting for credential helper", &prog)?;
    if out.status.success() {
        Ok(Ok(out.stdout))
    } else {
        let mut msg = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if msg.is_empty() {
            msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        }
        Ok(Err(msg))
    }
}

const NOT_FOUND: &str = "credentials not found in native keychain";

#[derive(Deserialize, Serialize)]
struct HelperCreds {
    #[serde(rename = "ServerURL", default)]
    server_url: String,
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// `docker-credential-<helper> get` for `server`; `None` when it has nothing.
pub fn helper_get(env: &SysEnv, helper: &str, server: &str) -> Result<Option<Credentials>> {
    match run_helper(env, helper, "get", server.as_bytes())? {
        Ok(out) => {
            let c: HelperCreds = serde_json::from_slice(&out).map_err(|e| {
                json_err(
                    Path::new(&format!("docker-credential-{helper}")),
                    "parsing the output of",
                    e,
                )
            })?;
            if c.username.is_empty() && c.secret.is_empty() {
                return Ok(None);
            }
            Ok(Some(Credentials {
                username: c.username,
                password: c.secret,
            }))
        }
        Err(msg) if msg.contains(NOT_FOUND) => Ok(None),
        Err(msg) => Err(Error::invalid(format!(
            "getting credentials for {server} from docker-credential-{helper}: {msg}"
        ))),
    }
}

fn helper_store(env: &SysEnv, helper: &str, server: &str, c: &Credentials) -> Result<()> {
    let body = serde_json::to_vec(&HelperCreds {
        server_url: server.to_string(),
        username: c.username.clone(),
        secret: c.password.clone(),
    })
    .map_err(|e| json_err(Path::new(server), "encoding credentials for", e))?;
    run_helper(env, helper, "store", &body)?.map_err(|msg| {
        Error::invalid(format!(
            "storing credentials for {server} in docker-credential-{helper}: {msg}"
        ))
    })?;
    Ok(())
}

/// `Ok(true)` erased, `Ok(false)` the helper had nothing.
fn helper_erase(env: &SysEnv, helper: &str, server: &str) -> Result<bool> {
    match run_helper(env, helper, "erase", server.as_bytes())? {
        Ok(_) => Ok(true),
        Err(msg) if msg.contains(NOT_FOUND) => Ok(false),
        Err(msg) => Err(Error::invalid(format!(
            "removing credentials for {server} from credential helper {helper}: {msg}"
        ))),
    }
}

/// Read-modify-write of the write path: directory created 0700, file replaced atomically, 0600.
fn modify(
    ctx: &RegistryContext,
    env: &SysEnv,
    edit: impl FnOnce(&mut AuthFile) -> Result<bool>,
) -> Result<PathBuf> {
    let path = write_path(ctx, env)?;
    let ap = AuthPath {
        path: path.clone(),
        legacy: false,
    };
    let mut file = read_file(&ap)?;
    if edit(&mut file)? {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .at("creating directory", dir)?;
        }
        crate::fsutil::atomic_write(&path, &file.to_json(), 0o600)?;
    }
    Ok(path)
}

use std::os::unix::fs::DirBuilderExt as _;

/// Store credentials for `key` (login). Returns where they went (a file path or
/// "credential helper: NAME").
pub fn store(
    ctx: &RegistryContext,
    env: &SysEnv,
    helpers: &[String],
    key: &str,
    creds: &Credentials,
) -> Result<String> {
    let mut first_err = None;
    for helper in helpers {
        let res = if helper == AUTH_FILE_HELPER {
            let mut desc = None;
            modify(ctx, env, |f| {
                if let Some(h) = f.cred_helpers.get(key).cloned() {
                    helper_store(env, &h, key, creds)?;
                    desc = Some(format!("credential helper: {h}"));
                    return Ok(false);
                }
                let auth = base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", creds.username, creds.password));
                let entry = f.auths.entry(key.to_string()).or_default();
                entry.auth = auth;
                entry.identitytoken.clear();
                Ok(true)
            })
            .map(|p| desc.unwrap_or_else(|| p.display().to_string()))
        } else {
            helper_store(env, helper, key, creds).map(|()| format!("credential helper: {helper}"))
        };
        match res {
            Ok(d) => return Ok(d),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    Err(first_err.unwrap_or_else(|| Error::invalid("no credential helpers configured")))
}

/// Remove the credentials of `key` everywhere they can be written. `Ok(false)`: there were
/// none (the caller says "not logged into KEY").
pub fn erase(ctx: &RegistryContext, env: &SysEnv, helpers: &[String], key: &str) -> Result<bool> {
    let mut logged_in = false;
    for helper in helpers {
        if helper == AUTH_FILE_HELPER {
            modify(ctx, env, |f| {
                if let Some(h) = f.cred_helpers.get(key).cloned() {
                    logged_in |= helper_erase(env, &h, key)?;
                }
                if f.auths.remove(key).is_some() {
                    logged_in = true;
                    return Ok(true);
                }
                // A registry key also removes docker's spellings of it (`https://host/v1/`).
                if !key.contains('/') {
                    let norm = normalize_registry(key);
                    let before = f.auths.len();
                    f.auths.retain(|k, _| normalize_key(k) != norm);
                    if f.auths.len() != before {
                        logged_in = true;
                        return Ok(true);
                    }
                }
                Ok(false)
            })?;
        } else {
            logged_in |= helper_erase(env, helper, key)?;
        }
    }
    Ok(logged_in)
}

/// Remove every credential of the write path's file (and of its `credHelpers`) — `logout --all`.
pub fn erase_all(ctx: &RegistryContext, env: &SysEnv, helpers: &[String]) -> Result<()> {
    for helper in helpers {
        if helper == AUTH_FILE_HELPER {
            modify(ctx, env, |f| {
                for (server, h) in std::mem::take(&mut f.cred_helpers) {
                    helper_erase(env, &h, &server)?;
                }
                f.auths.clear();
                Ok(true)
            })?;
        }
        // External helpers have no portable "list"; containers/image's best effort is skipped.
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }
    fn creds(u: &str, p: &str) -> Option<Found> {
        Some(Found::Creds(Credentials {
            username: u.into(),
            password: p.into(),
        }))
    }

    #[test]
    fn key_matching_most_specific_first() {
        let text = format!(
            r#"{{"auths": {{
                "quay.io": {{"auth": "{}"}},
                "quay.io/ns": {{"auth": "{}"}},
                "quay.io/ns/repo": {{"auth": "{}"}},
                "https://index.docker.io/v1/": {{"auth": "{}"}},
                "http://old.example.com/v1/": {{"auth": "{}"}},
                "tok.io": {{"identitytoken": "T0K"}},
                "bad.io": {{"auth": "{}"}}
            }}, "credHelpers": {{"helped.io": "pass"}}, "credsStore": "desktop", "HttpHeaders": {{"X": "y"}}}}"#,
            b64("h:1"),
            b64("n:2"),
            b64("r:3"),
            b64("d:4"),
            b64("o:5:colon\0"),
            b64("nocolon"),
        );
        let f = AuthFile::parse(&text, Path::new("a.json"), false).unwrap();
        let table: &[(&str, Option<Found>)] = &[
            ("quay.io/ns/repo", creds("r", "3")),
            ("quay.io/ns/other", creds("n", "2")),
            ("quay.io/other/x", creds("h", "1")),
            ("quay.io", creds("h", "1")),
            ("docker.io/library/busybox", creds("d", "4")),
            ("registry-1.docker.io", creds("d", "4")),
            ("old.example.com/x", creds("o", "5:colon")),
            ("tok.io/x", creds(TOKEN_USER, "T0K")),
            ("bad.io", None),
            (
                "helped.io/x",
                Some(Found::Helper {
                    helper: "pass".into(),
                    server: "helped.io".into(),
                }),
            ),
            (
                "unknown.io/x",
                Some(Found::Helper {
                    helper: "desktop".into(),
                    server: "unknown.io".into(),
                }),
            ),
        ];
        for (key, want) in table {
            assert_eq!(&f.find(key).unwrap(), want, "{key}");
        }
        // Unknown keys survive a rewrite.
        let again = AuthFile::parse(
            std::str::from_utf8(&f.to_json()).unwrap(),
            Path::new("a.json"),
            false,
        )
        .unwrap();
        assert_eq!(again, f);
        assert!(String::from_utf8(f.to_json())
            .unwrap()
            .contains("\n\t\"HttpHeaders\""));
    }

    #[test]
    fn bad_files_name_the_file() {
        let e = AuthFile::parse("{", Path::new("/x/auth.json"), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("/x/auth.json"), "{e}");
        let legacy = format!(r#"{{"reg.io": {{"auth": "{}"}}}}"#, b64("l:p"));
        let f = AuthFile::parse(&legacy, Path::new(".dockercfg"), true).unwrap();
        assert_eq!(f.find("reg.io").unwrap(), creds("l", "p"));
    }

    fn env(root: &Path) -> SysEnv {
        SysEnv {
            home: root.join("home"),
            uid: 1000,
            root: root.to_path_buf(),
            ..SysEnv::default()
        }
    }

    #[test]
    fn file_order() {
        let t = tempfile::tempdir().unwrap();
        let mut e = env(t.path());
        let ctx = RegistryContext::default();
        let paths: Vec<PathBuf> = read_paths(&ctx, &e).into_iter().map(|p| p.path).collect();
        assert_eq!(
            paths,
            vec![
                t.path().join("run/containers/1000/auth.json"),
                t.path().join("home/.config/containers/auth.json"),
                t.path().join("home/.docker/config.json"),
                t.path().join("home/.dockercfg"),
            ]
        );
        e.xdg_runtime_dir = Some(t.path().join("xdg"));
        assert!(write_path(&ctx, &e)
            .unwrap_err()
            .to_string()
            .contains("XDG_RUNTIME_DIR"));
        std::fs::create_dir(t.path().join("xdg")).unwrap();
        assert_eq!(
            write_path(&ctx, &e).unwrap(),
            t.path().join("xdg/containers/auth.json")
        );
        e.registry_auth_file = Some(t.path().join("env.json"));
        assert_eq!(write_path(&ctx, &e).unwrap(), t.path().join("env.json"));
        let mut ctx2 = ctx.clone();
        ctx2.auth_file = Some(t.path().join("flag.json"));
        assert_eq!(write_path(&ctx2, &e).unwrap(), t.path().join("flag.json"));
        e.docker_config = Some(t.path().join("dc"));
        e.xdg_config_home = Some(t.path().join("cfg"));
        let paths: Vec<PathBuf> = read_paths(&ctx2, &e).into_iter().map(|p| p.path).collect();
        assert_eq!(paths[1], t.path().join("cfg/containers/auth.json"));
        assert_eq!(paths[2], t.path().join("dc/config.json"));
    }

    #[test]
    fn store_lookup_erase_round_trip() {
        let t = tempfile::tempdir().unwrap();
        let e = env(t.path());
        let authfile = t.path().join("new/dir/auth.json");
        let ctx = RegistryContext {
            auth_file: Some(authfile.clone()),
            ..RegistryContext::default()
        };
        let helpers = vec![AUTH_FILE_HELPER.to_string()];
        // Fallback: docker's config.json is read when auth.json has nothing.
        std::fs::create_dir_all(t.path().join("home/.docker")).unwrap();
        std::fs::write(
            t.path().join("home/.docker/config.json"),
            format!(r#"{{"auths":{{"quay.io":{{"auth":"{}"}}}}}}"#, b64("dk:pw")),
        )
        .unwrap();
        let got = lookup(&ctx, &e, &helpers, "quay.io/a/b").unwrap().unwrap();
        assert_eq!(got.username, "dk");
        let c = Credentials {
            username: "u".into(),
            password: "p:w".into(),
        };
        let desc = store(&ctx, &e, &helpers, "quay.io/a", &c).unwrap();
        assert_eq!(desc, authfile.display().to_string());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&authfile).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dmode = std::fs::metadata(authfile.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dmode & 0o777, 0o700);
        assert_eq!(
            lookup(&ctx, &e, &helpers, "quay.io/a/b").unwrap().unwrap(),
            c
        );
        assert_eq!(
            lookup(&ctx, &e, &helpers, "quay.io/z")
                .unwrap()
                .unwrap()
                .username,
            "dk"
        );
        // --creds overrides everything.
        let mut with_creds = ctx.clone();
        with_creds.credentials = Some(Credentials {
            username: "cli".into(),
            password: "x".into(),
        });
        assert_eq!(
            lookup(&with_creds, &e, &helpers, "quay.io/a")
                .unwrap()
                .unwrap()
                .username,
            "cli"
        );
        assert!(erase(&ctx, &e, &helpers, "quay.io/a").unwrap());
        assert!(!erase(&ctx, &e, &helpers, "quay.io/a").unwrap());
        store(&ctx, &e, &helpers, "https://index.docker.io/v1/", &c).unwrap();
        assert!(erase(&ctx, &e, &helpers, "docker.io").unwrap());
        store(&ctx, &e, &helpers, "a.io", &c).unwrap();
        erase_all(&ctx, &e, &helpers).unwrap();
        let f = read_file(&AuthPath {
            path: authfile.clone(),
            legacy: false,
        })
        .unwrap();
        assert!(f.auths.is_empty());
        assert_eq!(
            std::fs::read_to_string(&authfile).unwrap(),
            "{\n\t\"auths\": {}\n}"
        );
    }

    #[test]
    fn credential_helper_protocol() {
        let t = tempfile::tempdir().unwrap();
        let bin = t.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let store_dir = t.path().join("store");
        std::fs::create_dir(&store_dir).unwrap();
        // A helper keeping one file per server, speaking the docker-credential-helpers protocol.
        let script = format!(
            r#"#!/bin/sh
d={}
case "$1" in
get) read -r s; f="$d/$(echo "$s" | tr / _)"; if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi;;
store) cat > "$d/tmp"; s=$(sed 's/.*"ServerURL":"\([^"]*\)".*/\1/' "$d/tmp" | tr / _); mv "$d/tmp" "$d/$s";;
erase) read -r s; f="$d/$(echo "$s" | tr / _)"; if [ -f "$f" ]; then rm "$f"; else echo "credentials not found in native keychain"; exit 1; fi;;
*) echo "unknown verb"; exit 1;;
esac
"#,
            store_dir.display()
        );
        let h = bin.join("docker-credential-hodtest");
        std::fs::write(&h, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&h, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![bin.clone()];
        paths.extend(std::env::split_paths(&path));
        let mut e = env(t.path());
        e.path = Some(std::env::join_paths(paths).unwrap());

        let c = Credentials {
            username: "hu".into(),
            password: "hp".into(),
        };
        assert_eq!(helper_get(&e, "hodtest", "h.io").unwrap(), None);
        helper_store(&e, "hodtest", "h.io", &c).unwrap();
        assert_eq!(helper_get(&e, "hodtest", "h.io").unwrap(), Some(c.clone()));
        // Through registries.conf's credential-helpers, and through an auth file's credHelpers.
        let ctx = RegistryContext {
            auth_file: Some(t.path().join("auth.json")),
            ..RegistryContext::default()
        };
        let helpers = vec!["hodtest".to_string()];
        assert_eq!(
            lookup(&ctx, &e, &helpers, "h.io/x/y").unwrap(),
            Some(c.clone())
        );
        std::fs::write(
            t.path().join("auth.json"),
            r#"{"auths":{},"credHelpers":{"g.io":"hodtest"}}"#,
        )
        .unwrap();
        let files = vec![AUTH_FILE_HELPER.to_string()];
        assert_eq!(
            store(&ctx, &e, &files, "g.io", &c).unwrap(),
            "credential helper: hodtest"
        );
        assert_eq!(lookup(&ctx, &e, &files, "g.io/x").unwrap(), Some(c.clone()));
        assert!(erase(&ctx, &e, &files, "g.io").unwrap());
        assert_eq!(lookup(&ctx, &e, &files, "g.io/x").unwrap(), None);
        assert!(helper_erase(&e, "hodtest", "h.io").unwrap());
        assert!(!helper_erase(&e, "hodtest", "h.io").unwrap());
        let err = helper_get(&e, "nonexistent-hod-helper", "x.io")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("docker-credential-nonexistent-hod-helper"),
            "{err}"
        );
    }
}
