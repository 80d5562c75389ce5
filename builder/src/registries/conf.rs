//! `registries.conf` (containers-registries.conf(5)) and its drop-ins, read as
//! containers/image's `sysregistriesv2` reads them.
//!
//! ```text
//!  --registries-conf | CONTAINERS_REGISTRIES_CONF | ~/.config/containers/registries.conf
//!  | /etc/containers/registries.conf                       (main file; v1 or v2)
//!    then registries.conf.d/*.conf (lexical order, per directory; v2 only)
//!      parse() each file ─▶ PartialConf ─▶ merge() in order ─▶ RegistriesConf
//!  short-name-aliases.conf [aliases] ─▶ RegistriesConf::cache_aliases (they win)
//! ```
//!
//! Later files override earlier ones field by field: `unqualified-search-registries`,
//! `short-name-mode` and `credential-helpers` when set, `[[registry]]` tables by `prefix`,
//! `[aliases]` by name (an empty value erases the alias). Errors name the file.
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, IoResultExt, Result};
use crate::options::{RegistryContext, ShortNameMode};

use super::SysEnv;

/// `pull-from-mirror` of one `[[registry.mirror]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullFromMirror {
    /// Digest and tag pulls (the default).
    #[default]
    All,
    /// Only pulls by digest.
    DigestOnly,
    /// Only pulls by tag.
    TagOnly,
}

/// One `[[registry.mirror]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// `host[:port][/namespace…]`.
    pub location: String,
    /// Plain HTTP / unverified TLS allowed.
    pub insecure: bool,
    /// Which pulls use this mirror.
    pub pull_from_mirror: PullFromMirror,
}

/// One `[[registry]]` table, validated (`prefix` defaulted from `location`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    /// The prefix of user-visible names it applies to (`*.example.com` wildcards allowed).
    pub prefix: String,
    /// Where the prefix really lives; empty only for a wildcard prefix (no rewrite).
    pub location: String,
    /// Plain HTTP / unverified TLS allowed.
    pub insecure: bool,
    /// Pulls and pushes are refused.
    pub blocked: bool,
    /// Mirrors are used only for digest references.
    pub mirror_by_digest_only: bool,
    /// Mirrors, tried in order before `location` (pulls only).
    pub mirrors: Vec<Mirror>,
}

/// A short-name alias and the file that defined it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    /// The fully-qualified repository (`registry.com/ns/image`).
    pub value: String,
    /// The file it came from.
    pub origin: PathBuf,
}

/// The merged configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistriesConf {
    /// `unqualified-search-registries`, in order.
    pub unqualified_search_registries: Vec<String>,
    /// The file that set `unqualified-search-registries` (for error messages).
    pub search_origin: Option<PathBuf>,
    /// `short-name-mode`; `None` = containers/image's default (permissive).
    pub short_name_mode: Option<ShortNameMode>,
    /// `credential-helpers`; empty = `["containers-auth.json"]`.
    pub credential_helpers: Vec<String>,
    /// `[[registry]]` tables, unique by prefix, sorted by prefix.
    pub registries: Vec<Registry>,
    /// `[aliases]` of registries.conf and its drop-ins.
    pub aliases: BTreeMap<String, Alias>,
    /// `[aliases]` of short-name-aliases.conf (these take precedence).
    pub cache_aliases: BTreeMap<String, Alias>,
    /// The main file (for "blocked in …" messages).
    pub main_path: PathBuf,
    /// The drop-in directories consulted.
    pub dir_paths: Vec<PathBuf>,
}

/// What one file says; `None` = not set in this file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartialConf {
    /// `unqualified-search-registries`, if the file sets it.
    pub unqualified_search_registries: Option<Vec<String>>,
    /// `short-name-mode`, if set.
    pub short_name_mode: Option<ShortNameMode>,
    /// `credential-helpers`, if set.
    pub credential_helpers: Option<Vec<String>>,
    /// `[[registry]]` tables, validated and unique by prefix (first wins).
    pub registries: Vec<Registry>,
    /// `[aliases]` (an empty value erases an earlier alias).
    pub aliases: BTreeMap<String, String>,
    /// The file.
    pub origin: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
struct RawFile {
    #[serde(rename = "unqualified-search-registries")]
    unqualified_search_registries: Option<Vec<String>>,
    #[serde(rename = "short-name-mode")]
    short_name_mode: Option<String>,
    #[serde(rename = "credential-helpers")]
    credential_helpers: Option<Vec<String>>,
    #[serde(default)]
    registry: Vec<RawRegistry>,
    #[serde(default)]
    aliases: BTreeMap<String, String>,
    /// The deprecated v1 format.
    registries: Option<RawV1>,
}

#[derive(Debug, Default, Deserialize)]
struct RawRegistry {
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    blocked: bool,
    #[serde(default, rename = "mirror-by-digest-only")]
    mirror_by_digest_only: bool,
    #[serde(default)]
    mirror: Vec<RawMirror>,
    #[serde(default, rename = "pull-from-mirror")]
    pull_from_mirror: String,
}

#[derive(Debug, Default, Deserialize)]
struct RawMirror {
    #[serde(default)]
    location: String,
    #[serde(default)]
    insecure: bool,
    #[serde(default, rename = "pull-from-mirror")]
    pull_from_mirror: String,
}

#[derive(Debug, Default, Deserialize)]
struct RawV1 {
    #[serde(default)]
    search: RawV1List,
    #[serde(default)]
    insecure: RawV1List,
    #[serde(default)]
    block: RawV1List,
}

#[derive(Debug, Default, Deserialize)]
struct RawV1List {
    #[serde(default)]
    registries: Vec<String>,
}

impl RawV1 {
    fn nonempty(&self) -> bool {
        !self.search.registries.is_empty()
            || !self.insecure.registries.is_empty()
            || !self.block.registries.is_empty()
    }
}

fn invalid(origin: &Path, msg: impl std::fmt::Display) -> Error {
    Error::invalid(format!(
        "loading registries configuration {:?}: {msg}",
        origin.display().to_string()
    ))
}

/// `parseLocation`: no URI scheme, trailing slashes dropped.
fn parse_location(s: &str) -> std::result::Result<String, String> {
    let s = s.trim_end_matches('/');
    if s.starts_with("http://") || s.starts_with("https://") {
        return Err(format!(
            "invalid location '{s}': URI schemes are not supported"
        ));
    }
    Ok(s.to_string())
}

fn parse_mode(s: &str) -> std::result::Result<Option<ShortNameMode>, String> {
    match s {
        "" => Ok(None),
        "enforcing" => Ok(Some(ShortNameMode::Enforcing)),
        "permissive" => Ok(Some(ShortNameMode::Permissive)),
        "disabled" => Ok(Some(ShortNameMode::Disabled)),
        _ => Err(format!("invalid short name mode {s:?}")),
    }
}

fn parse_pull_from_mirror(s: &str, loc: &str) -> std::result::Result<PullFromMirror, String> {
    match s {
        "" | "all" => Ok(PullFromMirror::All),
        "digest-only" => Ok(PullFromMirror::DigestOnly),
        "tag-only" => Ok(PullFromMirror::TagOnly),
        _ => Err(format!(
            "unsupported pull-from-mirror value {s:?} for mirror {loc:?}"
        )),
    }
}

/// Parse one file's text (pure). The deprecated v1 format (`[registries.search]`, …) is
/// converted to v2 as containers/image does; mixing both in one file is an error.
pub fn parse(text: &str, origin: &Path) -> Result<PartialConf> {
    let raw: RawFile = toml::from_str(text).map_err(|e| invalid(origin, e.message()))?;
    let v1 = raw.registries.as_ref().is_some_and(RawV1::nonempty);
    let v2 = raw.unqualified_search_registries.is_some()
        || !raw.registry.is_empty()
        || !raw.aliases.is_empty()
        || raw.short_name_mode.is_some()
        || raw.credential_helpers.is_some();
    if v1 && v2 {
        return Err(invalid(origin, "mixing sysregistry v1/v2 is not supported"));
    }
    let mut out = PartialConf {
        origin: origin.to_path_buf(),
        ..PartialConf::default()
    };
    if v1 {
        convert_v1(raw.registries.unwrap_or_default(), &mut out).map_err(|e| invalid(origin, e))?;
        return Ok(out);
    }
    out.short_name_mode =
        parse_mode(raw.short_name_mode.as_deref().unwrap_or("")).map_err(|e| invalid(origin, e))?;
    out.credential_helpers = raw.credential_helpers;
    if let Some(list) = raw.unqualified_search_registries {
        let mut v = Vec::new();
        for r in list {
            let r = parse_location(&r).map_err(|e| invalid(origin, e))?;
            if r.contains('/') {
                return Err(invalid(
                    origin,
                    format!(
                        "invalid unqualified-search-registries entry {r:?}: must be host[:port]"
                    ),
                ));
            }
            v.push(r);
        }
        out.unqualified_search_registries = Some(v);
    }
    for raw in raw.registry {
        let reg = validate_registry(raw).map_err(|e| invalid(origin, e))?;
        // The first table of a prefix wins; later ones with the same prefix are ignored.
        if !out.registries.iter().any(|r| r.prefix == reg.prefix) {
            out.registries.push(reg);
        }
    }
    check_conflicts(&out.registries).map_err(|e| invalid(origin, e))?;
    for (name, value) in raw.aliases {
        validate_alias(&name, &value).map_err(|e| invalid(origin, e))?;
        out.aliases.insert(name, value);
    }
    Ok(out)
}

fn convert_v1(v1: RawV1, out: &mut PartialConf) -> std::result::Result<(), String> {
    let mut regs: Vec<Registry> = Vec::new();
    let mut get = |loc: &str| -> std::result::Result<usize, String> {
        let loc = parse_location(loc)?;
        if let Some(i) = regs.iter().position(|r| r.location == loc) {
            return Ok(i);
        }
        regs.push(Registry {
            prefix: loc.clone(),
            location: loc,
            insecure: false,
            blocked: false,
            mirror_by_digest_only: false,
            mirrors: Vec::new(),
        });
        Ok(regs.len() - 1)
    };
    let mut blocked = Vec::new();
    let mut insecure = Vec::new();
    for b in &v1.block.registries {
        blocked.push(get(b)?);
    }
    for i in &v1.insecure.registries {
        insecure.push(get(i)?);
    }
    for i in blocked {
        regs[i].blocked = true;
    }
    for i in insecure {
        regs[i].insecure = true;
    }
    out.registries = regs;
    let mut search = Vec::new();
    for s in v1.search.registries {
        search.push(parse_location(&s)?);
    }
    out.unqualified_search_registries = Some(search);
    Ok(())
}

fn validate_registry(raw: RawRegistry) -> std::result::Result<Registry, String> {
    let location = parse_location(&raw.location)?;
    let prefix = if raw.prefix.is_empty() {
        if location.is_empty() {
            return Err("invalid condition: both location and prefix are unset".into());
        }
        location.clone()
    } else {
        parse_location(&raw.prefix)?
    };
    if prefix.starts_with("*.") && prefix.contains(['/', '@', ':']) {
        return Err(format!(
            "Wildcarded prefix should be in the format: *.example.com. Current prefix {prefix:?} is incorrectly formatted"
        ));
    }
    if prefix.contains('*') && !prefix.starts_with("*.") || prefix[1..].contains('*') {
        return Err(format!(
            "invalid prefix {prefix:?}: a wildcard is only allowed as a leading \"*.\""
        ));
    }
    if location.is_empty() && !prefix.starts_with("*.") {
        return Err(format!(
            "invalid location for prefix {prefix:?}: only a wildcarded prefix may have an empty location"
        ));
    }
    if !raw.pull_from_mirror.is_empty() {
        return Err(format!(
            "pull-from-mirror must not be set for a non-mirror registry {prefix:?}"
        ));
    }
    let mut mirrors = Vec::new();
    for m in raw.mirror {
        let loc = parse_location(&m.location)?;
        if loc.is_empty() {
            return Err("invalid condition: mirror location is unset".into());
        }
        if raw.mirror_by_digest_only && !m.pull_from_mirror.is_empty() {
            return Err(format!(
                "cannot set mirror usage mirror-by-digest-only for the registry ({location:?}) and pull-from-mirror for per-mirror ({loc:?}) at the same time"
            ));
        }
        mirrors.push(Mirror {
            pull_from_mirror: parse_pull_from_mirror(&m.pull_from_mirror, &loc)?,
            location: loc,
            insecure: m.insecure,
        });
    }
    Ok(Registry {
        prefix,
        location,
        insecure: raw.insecure,
        blocked: raw.blocked,
        mirror_by_digest_only: raw.mirror_by_digest_only,
        mirrors,
    })
}

/// A location named by several tables must agree on `insecure` and `blocked`.
fn check_conflicts(regs: &[Registry]) -> std::result::Result<(), String> {
    for (i, a) in regs.iter().enumerate() {
        let key = |r: &Registry| {
            if r.location.is_empty() {
                r.prefix.clone()
            } else {
                r.location.clone()
            }
        };
        for b in &regs[i + 1..] {
            if key(a) != key(b) {
                continue;
            }
            if a.insecure != b.insecure {
                return Err(format!(
                    "registry '{}' is defined multiple times with conflicting 'insecure' setting",
                    key(a)
                ));
            }
            if a.blocked != b.blocked {
                return Err(format!(
                    "registry '{}' is defined multiple times with conflicting 'blocked' setting",
                    key(a)
                ));
            }
        }
    }
    Ok(())
}

fn has_domain(name: &str) -> bool {
    match name.split_once('/') {
        Some((first, _)) => first.contains('.') || first.contains(':') || first == "localhost",
        None => false,
    }
}

fn has_tag_or_digest(name: &str) -> bool {
    let last = name.rsplit('/').next().unwrap_or(name);
    last.contains(':') || name.contains('@')
}

/// Alias names are short (no registry, not localhost, no tag or digest); values are
/// fully-qualified repositories without tag or digest (or empty, to erase).
fn validate_alias(name: &str, value: &str) -> std::result::Result<(), String> {
    if has_domain(name) || name == "localhost" || name.starts_with("localhost/") {
        return Err(format!(
            "invalid short name {name:?}: must not contain a registry and must not refer to localhost"
        ));
    }
    if has_tag_or_digest(name) {
        return Err(format!(
            "invalid short name {name:?}: must not contain a tag or digest"
        ));
    }
    crate::reference::parse_named(name).map_err(|e| format!("invalid short name {name:?}: {e}"))?;
    if value.is_empty() {
        return Ok(());
    }
    if !has_domain(value) {
        return Err(format!(
            "invalid alias value {value:?} for {name:?}: must be a fully-qualified repository"
        ));
    }
    if has_tag_or_digest(value) {
        return Err(format!(
            "invalid alias value {value:?} for {name:?}: must not contain a tag or digest"
        ));
    }
    crate::reference::parse_named(value)
        .map_err(|e| format!("invalid alias value {value:?} for {name:?}: {e}"))?;
    Ok(())
}

impl RegistriesConf {
    /// Apply one file on top (containers/image's `updateWithConfigurationFrom`).
    pub fn merge(&mut self, upd: PartialConf) {
        let mut by_prefix: BTreeMap<String, Registry> = self
            .registries
            .drain(..)
            .map(|r| (r.prefix.clone(), r))
            .collect();
        for r in upd.registries {
            by_prefix.insert(r.prefix.clone(), r);
        }
        self.registries = by_prefix.into_values().collect();
        if let Some(s) = upd.unqualified_search_registries {
            self.unqualified_search_registries = s;
            self.search_origin = Some(upd.origin.clone());
        }
        if let Some(h) = upd.credential_helpers {
            self.credential_helpers = h;
        }
        if upd.short_name_mode.is_some() {
            self.short_name_mode = upd.short_name_mode;
        }
        merge_aliases(&mut self.aliases, upd.aliases, &upd.origin);
    }

    /// The `[[registry]]` whose prefix is the longest match of `name` (`host/path[:tag|@digest]`).
    pub fn find_registry(&self, name: &str) -> Option<&Registry> {
        let mut best: Option<&Registry> = None;
        for r in &self.registries {
            if ref_matching_prefix(name, &r.prefix).is_some()
                && best.is_none_or(|b| r.prefix.len() > b.prefix.len())
            {
                best = Some(r);
            }
        }
        best
    }

    /// The alias of a short name: short-name-aliases.conf first, then registries.conf.
    pub fn alias(&self, name: &str) -> Option<&Alias> {
        self.cache_aliases
            .get(name)
            .or_else(|| self.aliases.get(name))
            .filter(|a| !a.value.is_empty())
    }

    /// The effective `credential-helpers` list.
    pub fn credential_helpers(&self) -> Vec<String> {
        if self.credential_helpers.is_empty() {
            vec![super::auth::AUTH_FILE_HELPER.to_string()]
        } else {
            self.credential_helpers.clone()
        }
    }
}

fn merge_aliases(
    into: &mut BTreeMap<String, Alias>,
    from: BTreeMap<String, String>,
    origin: &Path,
) {
    for (name, value) in from {
        if value.is_empty() {
            into.remove(&name);
        } else {
            into.insert(
                name,
                Alias {
                    value,
                    origin: origin.to_path_buf(),
                },
            );
        }
    }
}

/// containers/image's `refMatchingPrefix`: the length of `name` matched by `prefix`, or
/// `None`. A match must end at the end of `name` or before `:`, `/` or `@`; a `*.example.com`
/// prefix matches any subdomain in the host part.
pub fn ref_matching_prefix(name: &str, prefix: &str) -> Option<usize> {
    if let Some(suffix) = prefix.strip_prefix('*') {
        // suffix = ".example.com"
        let idx = name.find(suffix)?;
        if name[..idx].contains('/') {
            return None;
        }
        let end = idx + suffix.len();
        return match name.as_bytes().get(end) {
            None => Some(end),
            Some(b':' | b'/' | b'@') => Some(end),
            Some(_) => None,
        };
    }
    if !name.starts_with(prefix) {
        return None;
    }
    match name.as_bytes().get(prefix.len()) {
        None => Some(prefix.len()),
        Some(b':' | b'/' | b'@') => Some(prefix.len()),
        Some(_) => None,
    }
}

/// Where the configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfPaths {
    /// The main file.
    pub main: PathBuf,
    /// Drop-in directories, in loading order.
    pub dirs: Vec<PathBuf>,
    /// short-name-aliases.conf.
    pub alias_cache: PathBuf,
}

/// The files containers/image would read for this context and environment.
pub fn conf_paths(ctx: &RegistryContext, env: &SysEnv) -> ConfPaths {
    let user_conf = env.home.join(".config/containers/registries.conf");
    let user_dir = env.home.join(".config/containers/registries.conf.d");
    let system_conf = env.system_path("etc/containers/registries.conf");
    let system_dir = env.system_path("etc/containers/registries.conf.d");
    let explicit = ctx
        .registries_conf
        .clone()
        .or_else(|| env.registries_conf_env.clone());
    let (main, dirs) = if let Some(p) = explicit {
        let dirs = match &ctx.registries_conf_dir {
            Some(d) => vec![d.clone()],
            None => vec![system_dir, user_dir],
        };
        (p, dirs)
    } else if user_conf.exists() {
        let dirs = match &ctx.registries_conf_dir {
            Some(d) => vec![d.clone()],
            None => vec![user_dir],
        };
        (user_conf, dirs)
    } else {
        let dirs = match &ctx.registries_conf_dir {
            Some(d) => vec![d.clone()],
            None => vec![system_dir, user_dir],
        };
        (system_conf, dirs)
    };
    let alias_cache = ctx.short_name_alias_conf.clone().unwrap_or_else(|| {
        if env.uid == 0 {
            env.system_path("var/cache/containers/short-name-aliases.conf")
        } else {
            env.home.join(".cache/containers/short-name-aliases.conf")
        }
    });
    ConfPaths {
        main,
        dirs,
        alias_cache,
    }
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).at("reading registries configuration", path),
    }
}

/// The `*.conf` files of one drop-in directory, in lexical order (missing dir = none).
fn drop_ins(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).at("reading directory", dir),
    };
    let mut files = Vec::new();
    for e in entries {
        let e = e.at("reading directory", dir)?;
        let p = e.path();
        if p.extension().is_some_and(|x| x == "conf") && p.is_file() {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// Load and merge the configuration for `ctx`.
pub fn load(ctx: &RegistryContext, env: &SysEnv) -> Result<RegistriesConf> {
    let paths = conf_paths(ctx, env);
    let mut conf = RegistriesConf {
        main_path: paths.main.clone(),
        dir_paths: paths.dirs.clone(),
        ..RegistriesConf::default()
    };
    if let Some(text) = read_optional(&paths.main)? {
        conf.merge(parse(&text, &paths.main)?);
    }
    for dir in &paths.dirs {
        for file in drop_ins(dir)? {
            let text = fs::read_to_string(&file).at("reading registries configuration", &file)?;
            conf.merge(parse(&text, &file)?);
        }
    }
    if let Some(text) = read_optional(&paths.alias_cache)? {
        let part = parse(&text, &paths.alias_cache)?;
        merge_aliases(&mut conf.cache_aliases, part.aliases, &paths.alias_cache);
    }
    Ok(conf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PartialConf {
        parse(s, Path::new("/t/registries.conf")).unwrap()
    }
    fn err(s: &str) -> String {
        parse(s, Path::new("/t/registries.conf"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn parses_v2_fields() {
        let c = p(r#"
unqualified-search-registries = ["quay.io", "docker.io/"]
short-name-mode = "enforcing"
credential-helpers = ["containers-auth.json", "pass"]
[aliases]
"fedora" = "registry.fedoraproject.org/fedora"
[[registry]]
prefix = "example.com/foo"
location = "internal.example.net/bar/"
insecure = true
[[registry.mirror]]
location = "mirror-0.local/foo"
[[registry.mirror]]
location = "mirror-1.local/foo"
insecure = true
pull-from-mirror = "digest-only"
[[registry]]
location = "registry.com"
blocked = true
mirror-by-digest-only = true
"#);
        assert_eq!(
            c.unqualified_search_registries,
            Some(vec!["quay.io".to_string(), "docker.io".to_string()])
        );
        assert_eq!(c.short_name_mode, Some(ShortNameMode::Enforcing));
        assert_eq!(c.credential_helpers.as_ref().unwrap().len(), 2);
        assert_eq!(c.aliases["fedora"], "registry.fedoraproject.org/fedora");
        let r = &c.registries[0];
        assert_eq!(
            (r.prefix.as_str(), r.location.as_str(), r.insecure),
            ("example.com/foo", "internal.example.net/bar", true)
        );
        assert_eq!(r.mirrors.len(), 2);
        assert_eq!(r.mirrors[1].pull_from_mirror, PullFromMirror::DigestOnly);
        assert!(r.mirrors[1].insecure && !r.mirrors[0].insecure);
        let r = &c.registries[1];
        assert_eq!(r.prefix, "registry.com");
        assert!(r.blocked && r.mirror_by_digest_only);
    }

    #[test]
    fn invalid_files_name_the_file() {
        let table: &[(&str, &str)] = &[
            ("[[registry]]\ninsecure = true\n", "both location and prefix are unset"),
            ("[[registry]]\nlocation = \"https://x.io\"\n", "URI schemes are not supported"),
            ("[[registry]]\nprefix = \"*.x.io/foo\"\n", "Wildcarded prefix"),
            ("[[registry]]\nprefix = \"x.*.io\"\nlocation=\"y\"\n", "wildcard"),
            ("[[registry]]\nprefix = \"x.io\"\n", "empty location"),
            ("[[registry]]\nlocation = \"x.io\"\npull-from-mirror = \"all\"\n", "non-mirror registry"),
            ("[[registry]]\nlocation = \"x.io\"\n[[registry.mirror]]\ninsecure = true\n", "mirror location is unset"),
            ("[[registry]]\nlocation = \"x.io\"\n[[registry.mirror]]\nlocation = \"m\"\npull-from-mirror = \"sometimes\"\n", "unsupported pull-from-mirror"),
            ("[[registry]]\nlocation = \"x.io\"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = \"m\"\npull-from-mirror = \"tag-only\"\n", "at the same time"),
            ("[[registry]]\nprefix = \"a.io\"\nlocation = \"x.io\"\n[[registry]]\nprefix = \"b.io\"\nlocation = \"x.io\"\ninsecure = true\n", "conflicting 'insecure'"),
            ("short-name-mode = \"strict\"\n", "invalid short name mode"),
            ("[registries.search]\nregistries = [\"a.io\"]\n[[registry]]\nlocation = \"b\"\n", "mixing sysregistry v1/v2"),
            ("[aliases]\n\"quay.io/x\" = \"quay.io/x/y\"\n", "must not contain a registry"),
            ("[aliases]\n\"x:1\" = \"quay.io/x/y\"\n", "tag or digest"),
            ("[aliases]\n\"x\" = \"x/y\"\n", "fully-qualified"),
            ("[aliases]\n\"x\" = \"quay.io/x/y:1\"\n", "tag or digest"),
            ("unqualified-search-registries = [\"quay.io/ns\"]\n", "must be host[:port]"),
            ("this is = not toml = at all", ""),
        ];
        for (text, want) in table {
            let e = err(text);
            assert!(
                e.starts_with("loading registries configuration \"/t/registries.conf\": "),
                "{e}"
            );
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn v1_is_converted() {
        let c = p("[registries.search]\nregistries = ['r1.com', 'r2.com']\n[registries.insecure]\nregistries = ['r3.com']\n[registries.block]\nregistries = ['bad.com', 'r3.com']\n");
        assert_eq!(
            c.unqualified_search_registries.unwrap(),
            vec!["r1.com", "r2.com"]
        );
        assert_eq!(c.registries.len(), 2);
        assert!(c.registries[0].blocked && !c.registries[0].insecure);
        assert_eq!(c.registries[1].prefix, "r3.com");
        assert!(c.registries[1].blocked && c.registries[1].insecure);
    }

    #[test]
    fn duplicate_prefix_first_wins() {
        let c = p("[[registry]]\nprefix=\"a.io\"\nlocation=\"one.io\"\n[[registry]]\nprefix=\"a.io\"\nlocation=\"two.io\"\n");
        assert_eq!(c.registries.len(), 1);
        assert_eq!(c.registries[0].location, "one.io");
    }

    #[test]
    fn prefix_matching() {
        let table: &[(&str, &str, Option<usize>)] = &[
            ("example.com/foo/bar:1", "example.com/foo", Some(15)),
            ("example.com/foobar", "example.com/foo", None),
            ("example.com", "example.com", Some(11)),
            ("example.com:5000/x", "example.com", Some(11)),
            ("example.com/x@sha256:ab", "example.com/x", Some(13)),
            ("a.example.com/x", "*.example.com", Some(13)),
            ("a.b.example.com:5000/x", "*.example.com", Some(15)),
            ("example.com/x", "*.example.com", None),
            ("evil.com/a.example.com/x", "*.example.com", None),
            ("a.example.community/x", "*.example.com", None),
        ];
        for (name, prefix, want) in table {
            assert_eq!(ref_matching_prefix(name, prefix), *want, "{name} {prefix}");
        }
    }

    #[test]
    fn longest_prefix_wins() {
        let mut c = RegistriesConf::default();
        c.merge(p(r#"
[[registry]]
prefix = "*.example.com"
insecure = true
[[registry]]
location = "reg.example.com"
[[registry]]
prefix = "reg.example.com/ns"
location = "b.example.com/other"
"#));
        let f = |n: &str| c.find_registry(n).map(|r| r.prefix.clone());
        assert_eq!(
            f("reg.example.com/ns/x:1").as_deref(),
            Some("reg.example.com/ns")
        );
        assert_eq!(
            f("reg.example.com/other/x").as_deref(),
            Some("reg.example.com")
        );
        assert_eq!(f("z.example.com/x").as_deref(), Some("*.example.com"));
        assert_eq!(f("quay.io/x"), None);
    }

    fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
        let p = dir.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap();
        p
    }

    fn env_in(root: &Path) -> SysEnv {
        SysEnv {
            home: root.join("home"),
            uid: 0,
            root: root.to_path_buf(),
            ..SysEnv::default()
        }
    }

    #[test]
    fn drop_ins_override_in_lexical_order() {
        let t = tempfile::tempdir().unwrap();
        let main = write(
            t.path(),
            "etc/containers/registries.conf",
            "unqualified-search-registries = [\"main.io\"]\nshort-name-mode=\"enforcing\"\n[aliases]\n\"a\" = \"main.io/a\"\n\"b\" = \"main.io/b\"\n[[registry]]\nprefix = \"x.io\"\nlocation = \"main-x.io\"\n",
        );
        let d = "etc/containers/registries.conf.d";
        write(t.path(), &format!("{d}/20-b.conf"), "unqualified-search-registries = [\"b.io\"]\n[aliases]\n\"b\" = \"\"\n[[registry]]\nprefix = \"x.io\"\nlocation = \"b-x.io\"\n");
        write(t.path(), &format!("{d}/10-a.conf"), "unqualified-search-registries = [\"a.io\"]\nshort-name-mode=\"permissive\"\n[aliases]\n\"a\" = \"a.io/a\"\n[[registry]]\nlocation = \"y.io\"\n");
        write(t.path(), &format!("{d}/30-c.txt"), "not = [ toml");
        write(
            t.path(),
            "var/cache/containers/short-name-aliases.conf",
            "[aliases]\n\"c\" = \"cache.io/c\"\n\"a\" = \"cache.io/a\"\n",
        );
        let env = env_in(t.path());
        let c = load(&RegistryContext::default(), &env).unwrap();
        assert_eq!(c.main_path, main);
        assert_eq!(c.unqualified_search_registries, vec!["b.io"]);
        assert_eq!(
            c.search_origin.as_deref(),
            Some(t.path().join(d).join("20-b.conf").as_path())
        );
        assert_eq!(c.short_name_mode, Some(ShortNameMode::Permissive));
        assert_eq!(c.find_registry("x.io/z").unwrap().location, "b-x.io");
        assert_eq!(c.find_registry("y.io/z").unwrap().location, "y.io");
        assert_eq!(c.alias("a").unwrap().value, "cache.io/a");
        assert!(c.alias("b").is_none());
        assert_eq!(c.alias("c").unwrap().value, "cache.io/c");
        assert_eq!(c.aliases["a"].value, "a.io/a");
    }

    #[test]
    fn explicit_paths_and_env() {
        let t = tempfile::tempdir().unwrap();
        write(
            t.path(),
            "etc/containers/registries.conf",
            "unqualified-search-registries = [\"sys.io\"]\n",
        );
        let mine = write(
            t.path(),
            "mine.conf",
            "unqualified-search-registries = [\"mine.io\"]\n",
        );
        let envf = write(
            t.path(),
            "env.conf",
            "unqualified-search-registries = [\"env.io\"]\n",
        );
        write(t.path(), "dd/1.conf", "short-name-mode = \"disabled\"\n");
        let mut env = env_in(t.path());
        let mut ctx = RegistryContext::default();
        assert_eq!(
            load(&ctx, &env).unwrap().unqualified_search_registries,
            vec!["sys.io"]
        );
        env.registries_conf_env = Some(envf);
        assert_eq!(
            load(&ctx, &env).unwrap().unqualified_search_registries,
            vec!["env.io"]
        );
        ctx.registries_conf = Some(mine);
        ctx.registries_conf_dir = Some(t.path().join("dd"));
        let c = load(&ctx, &env).unwrap();
        assert_eq!(c.unqualified_search_registries, vec!["mine.io"]);
        assert_eq!(c.short_name_mode, Some(ShortNameMode::Disabled));
        // A user file replaces the system one (and its drop-in directory).
        let env = env_in(t.path());
        write(
            t.path(),
            "home/.config/containers/registries.conf",
            "unqualified-search-registries = [\"user.io\"]\n",
        );
        let c = load(&RegistryContext::default(), &env).unwrap();
        assert_eq!(c.unqualified_search_registries, vec!["user.io"]);
        // A broken drop-in is an error naming it.
        write(
            t.path(),
            "home/.config/containers/registries.conf.d/9.conf",
            "[[registry]]\n",
        );
        let e = load(&RegistryContext::default(), &env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("registries.conf.d/9.conf"), "{e}");
    }
}
