//! Image references: transport prefixes (`oci:`, `oci-archive:`, `docker-archive:`, `dir:`,
//! `containers-storage:`, `docker://`) and image names, normalised as containers/image
//! (`docker/reference`) and libimage do.
//!
//! - [`parse_named`] is `ParseNormalizedNamed`: `busybox` → `docker.io/library/busybox`,
//!   `quay.io/x/y:1` unchanged, `index.docker.io/…` → `docker.io/…`.
//! - [`normalize_local_name`] is libimage's `NormalizeName`, used for names given to commit,
//!   tag and pull into local storage: a name without a registry gets `localhost/`, a name
//!   without tag or digest gets `:latest` (`myapp:1` → `localhost/myapp:1`).
use std::fmt;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::image::Digest;

/// The default registry of unqualified names.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The repository prefix of official images on the default registry.
pub const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The registry of images named locally.
pub const LOCAL_DOMAIN: &str = "localhost";
/// The default tag.
pub const DEFAULT_TAG: &str = "latest";
const MAX_NAME_LEN: usize = 255;

/// A parsed image name: `domain/path[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedRef {
    /// Registry host[:port] (`docker.io`, `localhost`, `quay.io:443`).
    pub domain: String,
    /// Repository path (`library/busybox`).
    pub path: String,
    /// Tag.
    pub tag: Option<String>,
    /// Digest.
    pub digest: Option<Digest>,
}

impl NamedRef {
    /// `domain/path` without tag or digest.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }
    /// With `:latest` added when there is neither tag nor digest.
    pub fn with_default_tag(mut self) -> NamedRef {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }
    /// The familiar form docker shows (`busybox:latest` for `docker.io/library/busybox:latest`).
    pub fn familiar(&self) -> String {
        let mut path = self.path.as_str();
        let mut s = String::new();
        if self.domain == DEFAULT_DOMAIN {
            if let Some(rest) = path.strip_prefix(OFFICIAL_REPO_PREFIX) {
                if !rest.contains('/') {
                    path = rest;
                }
            }
        } else {
            s.push_str(&self.domain);
            s.push('/');
        }
        s.push_str(path);
        self.push_suffix(&mut s);
        s
    }
    fn push_suffix(&self, s: &mut String) {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
    }
}

impl fmt::Display for NamedRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.repository();
        self.push_suffix(&mut s);
        f.write_str(&s)
    }
}

fn invalid(s: &str, why: &str) -> Error {
    Error::invalid(format!("parsing reference {s:?}: {why}"))
}

fn is_path_component(c: &str) -> bool {
    // [a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum_lower(b[0]) || !is_alnum_lower(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum_lower(b[i]) {
            i += 1;
            continue;
        }
        // a separator run
        let start = i;
        while i < b.len() && !is_alnum_lower(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn is_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.contains(']') || h.ends_with(']') => (h, Some(p)),
        _ => (d, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if host.starts_with('[') && host.ends_with(']') {
        return host.len() > 2
            && host[1..host.len() - 1]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':');
    }
    !host.is_empty()
        && host.split('.').all(|l| {
            let b = l.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        })
}

fn is_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'))
}

/// Split `name[:tag][@digest]` into its parts, validating tag and digest.
fn split_suffixes(s: &str) -> Result<(&str, Option<String>, Option<Digest>)> {
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => (
            r,
            Some(Digest::parse(d).map_err(|_| invalid(s, "invalid digest"))?),
        ),
        None => (s, None),
    };
    let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => {
            let t = &rest[last_slash + i + 1..];
            if !is_tag(t) {
                return Err(invalid(s, "invalid tag"));
            }
            (&rest[..last_slash + i], Some(t.to_string()))
        }
        None => (rest, None),
    };
    Ok((name, tag, digest))
}

/// Whether the first path component of a name is a registry (contains `.` or `:`, or is
/// `localhost`, or has upper case letters, as `splitDockerDomain` decides).
fn first_is_domain(first: &str) -> bool {
    first.contains('.')
        || first.contains(':')
        || first == LOCAL_DOMAIN
        || first.bytes().any(|b| b.is_ascii_uppercase())
}

fn is_full_hex_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Parse a name as `ParseNormalizedNamed` does: the default registry is `docker.io`, its
/// single-component repositories get `library/`.
pub fn parse_named(s: &str) -> Result<NamedRef> {
    if s.is_empty() {
        return Err(invalid(s, "empty name"));
    }
    if is_full_hex_id(s) {
        return Err(invalid(s, "cannot specify 64-byte hexadecimal strings"));
    }
    let (name, tag, digest) = split_suffixes(s)?;
    let (mut domain, mut path) = match name.split_once('/') {
        Some((first, rest)) if first_is_domain(first) => (first.to_string(), rest.to_string()),
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == "index.docker.io" {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !path.contains('/') {
        path = format!("{OFFICIAL_REPO_PREFIX}{path}");
    }
    if !is_domain(&domain) {
        return Err(invalid(s, "invalid registry name"));
    }
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(invalid(s, "repository name must be lowercase"));
    }
    if !path.split('/').all(is_path_component) {
        return Err(invalid(s, "invalid reference format"));
    }
    if domain.len() + 1 + path.len() > MAX_NAME_LEN {
        return Err(invalid(
            s,
            "repository name must not be more than 255 characters",
        ));
    }
    Ok(NamedRef {
        domain,
        path,
        tag,
        digest,
    })
}

/// libimage's `NormalizeName`: a name without a registry is a local one (`localhost/`); a
/// name without tag or digest gets `:latest`.
pub fn normalize_local_name(s: &str) -> Result<NamedRef> {
    let (name, _, _) = split_suffixes(s)?;
    let qualified = match name.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == LOCAL_DOMAIN => {
            s.to_string()
        }
        _ => format!("{LOCAL_DOMAIN}/{s}"),
    };
    Ok(parse_named(&qualified)?.with_default_tag())
}

/// Where a `containers-storage:` reference points to a store other than the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreSpec {
    /// Graph driver name.
    pub driver: Option<String>,
    /// Graph root.
    pub root: Option<PathBuf>,
    /// Run root.
    pub run_root: Option<PathBuf>,
    /// Driver options.
    pub options: Vec<String>,
}

/// What a `docker-archive:` reference selects inside the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveSelector {
    /// `NAME:TAG` (normalised with `docker.io` defaults).
    Named(NamedRef),
    /// `@N`: the N-th image of manifest.json (sources only).
    Index(usize),
}

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageReference {
    /// `oci:PATH[:REF]`: an OCI image layout directory.
    Oci {
        /// The layout directory.
        path: PathBuf,
        /// The `org.opencontainers.image.ref.name` value.
        reference: Option<String>,
    },
    /// `oci-archive:PATH[:REF]`: a tar of an OCI image layout.
    OciArchive {
        /// The tar file.
        path: PathBuf,
        /// The ref name.
        reference: Option<String>,
    },
    /// `docker-archive:PATH[:NAME:TAG|:@N]`: `docker save` format.
    DockerArchive {
        /// The tar file.
        path: PathBuf,
        /// Which image, or the tag to write.
        selector: Option<ArchiveSelector>,
    },
    /// `dir:PATH`: containers/image's directory transport.
    Dir {
        /// The directory.
        path: PathBuf,
    },
    /// `containers-storage:[DRIVER@ROOT+RUNROOT:OPTS]NAME`: a local store.
    Storage {
        /// A store other than the default one.
        store: Option<StoreSpec>,
        /// The image name, ID or `name@digest`, as given.
        image: String,
    },
    /// `docker://NAME`: a registry (not implemented yet).
    Docker(NamedRef),
    /// A bare name or ID: an image in the default local store.
    Local(String),
}

/// Known transport names.
pub const TRANSPORTS: &[&str] = &[
    "oci",
    "oci-archive",
    "docker-archive",
    "dir",
    "containers-storage",
    "docker",
];

/// The ref-name grammar of OCI layouts (image-spec annotations).
fn is_oci_ref_name(s: &str) -> bool {
    fn component(c: &str) -> bool {
        // alnum (sep alnum)*, sep = [-._:@+] | --
        let b = c.as_bytes();
        if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric()
        {
            return false;
        }
        let mut i = 0;
        while i < b.len() {
            if b[i].is_ascii_alphanumeric() {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && !b[i].is_ascii_alphanumeric() {
                i += 1;
            }
            let sep = &c[start..i];
            if !(sep == "--" || (sep.len() == 1 && "-._:@+".contains(sep))) {
                return false;
            }
        }
        true
    }
    s.split('/').all(component)
}

fn split_path_ref(rest: &str) -> (PathBuf, Option<String>) {
    match rest.split_once(':') {
        Some((p, r)) if !r.is_empty() => (PathBuf::from(p), Some(r.to_string())),
        Some((p, _)) => (PathBuf::from(p), None),
        None => (PathBuf::from(rest), None),
    }
}

impl ImageReference {
    /// Parse `transport:details`, or a bare image name. An unknown prefix (`localhost:5000/x`)
    /// is a bare name, as buildah falls back to local storage when `ParseImageName` fails.
    pub fn parse(s: &str) -> Result<ImageReference> {
        let Some((transport, rest)) = s.split_once(':') else {
            return Ok(ImageReference::Local(s.to_string()));
        };
        match transport {
            "oci" | "oci-archive" => {
                let (path, reference) = split_path_ref(rest);
                if path.as_os_str().is_empty() {
                    return Err(invalid(s, "empty path"));
                }
                if let Some(r) = &reference {
                    if !is_oci_ref_name(r) {
                        return Err(invalid(s, "invalid image reference name"));
                    }
                }
                Ok(if transport == "oci" {
                    ImageReference::Oci { path, reference }
                } else {
                    ImageReference::OciArchive { path, reference }
                })
            }
            "docker-archive" => {
                let (path, sel) = split_path_ref(rest);
                if path.as_os_str().is_empty() {
                    return Err(invalid(s, "empty path"));
                }
                let selector = match sel {
                    None => None,
                    Some(sel) => Some(if let Some(n) = sel.strip_prefix('@') {
                        ArchiveSelector::Index(
                            n.parse().map_err(|_| invalid(s, "invalid source index"))?,
                        )
                    } else {
                        let named = parse_named(&sel)?;
                        if named.digest.is_some() {
                            return Err(invalid(
                                s,
                                "docker-archive doesn't support digest references",
                            ));
                        }
                        ArchiveSelector::Named(named.with_default_tag())
                    }),
                };
                Ok(ImageReference::DockerArchive { path, selector })
            }
            "dir" => {
                if rest.is_empty() {
                    return Err(invalid(s, "empty path"));
                }
                Ok(ImageReference::Dir {
                    path: PathBuf::from(rest),
                })
            }
            "containers-storage" => {
                let (store, image) = if let Some(r) = rest.strip_prefix('[') {
                    let (spec, image) = r
                        .split_once(']')
                        .ok_or_else(|| invalid(s, "missing ']' in store specification"))?;
                    (
                        Some(parse_store_spec(spec).map_err(|why| invalid(s, why))?),
                        image,
                    )
                } else {
                    (None, rest)
                };
                if image.is_empty() {
                    return Err(invalid(s, "no image name"));
                }
                Ok(ImageReference::Storage {
                    store,
                    image: image.to_string(),
                })
            }
            "docker" => match rest.strip_prefix("//") {
                Some(name) => Ok(ImageReference::Docker(
                    parse_named(name)?.with_default_tag(),
                )),
                // `docker:latest` is a name, not a transport.
                None => Ok(ImageReference::Local(s.to_string())),
            },
            "docker-daemon" | "tarball" | "sif" | "ostree" => Err(invalid(
                s,
                &format!("the {transport} transport is not supported"),
            )),
            _ => Ok(ImageReference::Local(s.to_string())),
        }
    }

    /// The transport name (`oci`, …; `containers-storage` for local names).
    pub fn transport(&self) -> &'static str {
        match self {
            ImageReference::Oci { .. } => "oci",
            ImageReference::OciArchive { .. } => "oci-archive",
            ImageReference::DockerArchive { .. } => "docker-archive",
            ImageReference::Dir { .. } => "dir",
            ImageReference::Storage { .. } | ImageReference::Local(_) => "containers-storage",
            ImageReference::Docker(_) => "docker",
        }
    }

    /// Whether the reference names the local store.
    pub fn is_local_storage(&self) -> bool {
        matches!(
            self,
            ImageReference::Local(_) | ImageReference::Storage { store: None, .. }
        )
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageReference::Oci { path, reference }
            | ImageReference::OciArchive { path, reference } => {
                write!(f, "{}:{}", self.transport(), path.display())?;
                if let Some(r) = reference {
                    write!(f, ":{r}")?;
                }
                Ok(())
            }
            ImageReference::DockerArchive { path, selector } => {
                write!(f, "docker-archive:{}", path.display())?;
                match selector {
                    Some(ArchiveSelector::Named(n)) => write!(f, ":{}", n.familiar()),
                    Some(ArchiveSelector::Index(i)) => write!(f, ":@{i}"),
                    None => Ok(()),
                }
            }
            ImageReference::Dir { path } => write!(f, "dir:{}", path.display()),
            ImageReference::Storage { image, .. } => write!(f, "containers-storage:{image}"),
            ImageReference::Docker(n) => write!(f, "docker://{n}"),
            ImageReference::Local(n) => f.write_str(n),
        }
    }
}

/// `DRIVER@ROOT+RUNROOT:OPTS` (each part optional).
fn parse_store_spec(spec: &str) -> std::result::Result<StoreSpec, &'static str> {
    let mut out = StoreSpec::default();
    let (main, opts) = match spec.split_once(':') {
        Some((m, o)) => (m, Some(o)),
        None => (spec, None),
    };
    if let Some(o) = opts {
        out.options = o
            .split(',')
            .filter(|x| !x.is_empty())
            .map(String::from)
            .collect();
    }
    let (driver, roots) = match main.split_once('@') {
        Some((d, r)) => (Some(d), r),
        None => (None, main),
    };
    if let Some(d) = driver.filter(|d| !d.is_empty()) {
        out.driver = Some(d.to_string());
    }
    let (root, run_root) = match roots.split_once('+') {
        Some((a, b)) => (a, Some(b)),
        None => (roots, None),
    };
    if !root.is_empty() {
        if !root.starts_with('/') {
            return Err("store root must be an absolute path");
        }
        out.root = Some(PathBuf::from(root));
    }
    if let Some(r) = run_root.filter(|r| !r.is_empty()) {
        if !r.starts_with('/') {
            return Err("store run root must be an absolute path");
        }
        out.run_root = Some(PathBuf::from(r));
    }
    Ok(out)
}

// ---- The one matcher of stored image names -------------------------------------------------
//
// Every place that asks "does this stored name mean what the user typed" (store lookups,
// `rmi`'s untagging, `images --filter reference=`, `inspect`) goes through these.

/// Split a stored or typed name into `repo`, `tag`, `digest` (`docker.io/x/y:1@sha256:…`).
pub fn split_name(s: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (s, None),
    };
    let slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
    match rest[slash..].rfind(':') {
        Some(c) => (&rest[..slash + c], Some(&rest[slash + c + 1..]), digest),
        None => (rest, None, digest),
    }
}

/// Whether the first path component of `repo` is a registry host (docker's rule).
pub fn has_domain(repo: &str) -> bool {
    match repo.split_once('/') {
        None => false,
        Some((first, _)) => {
            first.contains('.')
                || first.contains(':')
                || first == LOCAL_DOMAIN
                || first.chars().any(|c| c.is_ascii_uppercase())
        }
    }
}

/// A typed repository as the store compares it: `docker.io/x` → `docker.io/library/x`.
pub fn normalize_typed_repo(repo: &str) -> String {
    match repo
        .strip_prefix("docker.io/")
        .or_else(|| repo.strip_prefix("index.docker.io/"))
    {
        Some(rest) if !rest.contains('/') => format!("docker.io/library/{rest}"),
        Some(rest) => format!("docker.io/{rest}"),
        None => repo.to_string(),
    }
}

/// Whether the stored repository `stored_repo` is what a user means by `typed_repo`
/// (normalized with [`normalize_typed_repo`]): exactly, when it names a registry; else in
/// `localhost/`, `docker.io/` (`library/`), or any registry's repository of that path.
pub fn repo_matches(stored_repo: &str, typed_repo: &str) -> bool {
    if has_domain(typed_repo) {
        return stored_repo == typed_repo;
    }
    stored_repo == format!("{LOCAL_DOMAIN}/{typed_repo}")
        || stored_repo == format!("{DEFAULT_DOMAIN}/{typed_repo}")
        || (!typed_repo.contains('/')
            && stored_repo == format!("{DEFAULT_DOMAIN}/{OFFICIAL_REPO_PREFIX}{typed_repo}"))
        || stored_repo.ends_with(&format!("/{typed_repo}"))
}

/// Whether the stored name `stored` is what a user means by `typed` (a name with or
/// without registry and tag; `:latest` when no tag or digest is typed).
pub fn name_matches(stored: &str, typed: &str) -> bool {
    let (repo, tag, digest) = split_name(typed);
    let repo = normalize_typed_repo(repo);
    let (srepo, stag, sdigest) = split_name(stored);
    if !repo_matches(srepo, &repo) {
        return false;
    }
    match digest {
        Some(d) => sdigest == Some(d),
        None => sdigest.is_none() && stag.unwrap_or(DEFAULT_TAG) == tag.unwrap_or(DEFAULT_TAG),
    }
}

/// A glob with `*` and `?`.
pub fn glob_match(pat: &str, s: &str) -> bool {
    fn go(p: &[char], s: &[char]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], s) || (!s.is_empty() && go(p, &s[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &s[1..]),
            _ => false,
        }
    }
    go(
        &pat.chars().collect::<Vec<_>>(),
        &s.chars().collect::<Vec<_>>(),
    )
}

/// `images --filter reference=PATTERN`: whether the stored name matches the glob in its full
/// form or without its registry (and `library/`), each with or without the tag.
pub fn pattern_matches(stored: &str, pattern: &str) -> bool {
    let short = stored
        .split_once('/')
        .filter(|(d, _)| d.contains('.') || d.contains(':') || *d == LOCAL_DOMAIN)
        .map(|(_, r)| r)
        .unwrap_or(stored);
    let short2 = short.strip_prefix(OFFICIAL_REPO_PREFIX).unwrap_or(short);
    let no_tag = |x: &str| {
        x.rsplit_once(':')
            .filter(|(_, t)| !t.contains('/'))
            .map(|(r, _)| r.to_string())
            .unwrap_or_else(|| x.to_string())
    };
    [stored, short, short2]
        .iter()
        .any(|c| glob_match(pattern, c) || glob_match(pattern, &no_tag(c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalized_names() {
        let cases = [
            ("busybox", "docker.io/library/busybox"),
            ("busybox:1.36", "docker.io/library/busybox:1.36"),
            ("docker.io/busybox", "docker.io/library/busybox"),
            (
                "index.docker.io/library/busybox",
                "docker.io/library/busybox",
            ),
            ("user/app", "docker.io/user/app"),
            ("quay.io/a/b:v1", "quay.io/a/b:v1"),
            ("localhost/app", "localhost/app"),
            ("localhost:5000/app:1", "localhost:5000/app:1"),
            ("reg.example.com:443/x/y/z", "reg.example.com:443/x/y/z"),
            ("a__b/c-d.e---f", "docker.io/a__b/c-d.e---f"),
        ];
        for (input, want) in cases {
            assert_eq!(parse_named(input).unwrap().to_string(), want, "{input}");
        }
        let d = format!("sha256:{}", "a".repeat(64));
        let n = parse_named(&format!("busybox:1@{d}")).unwrap();
        assert_eq!(n.tag.as_deref(), Some("1"));
        assert_eq!(n.digest.unwrap().to_string(), d);
    }

    #[test]
    fn invalid_names() {
        for bad in [
            "",
            "Busybox/UP",
            "docker.io/Busybox",
            "a//b",
            "a/",
            "-a",
            "a:b:c",
            "x:",
            "x@sha256:zz",
            &"a".repeat(64),
            "a..b",
        ] {
            assert!(parse_named(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn local_names() {
        let cases = [
            ("myapp:1", "localhost/myapp:1"),
            ("busybox", "localhost/busybox:latest"),
            ("team/app", "localhost/team/app:latest"),
            ("localhost/app", "localhost/app:latest"),
            ("docker.io/busybox", "docker.io/library/busybox:latest"),
            ("quay.io/a/b", "quay.io/a/b:latest"),
            ("registry:5000/a", "registry:5000/a:latest"),
        ];
        for (input, want) in cases {
            assert_eq!(
                normalize_local_name(input).unwrap().to_string(),
                want,
                "{input}"
            );
        }
    }

    #[test]
    fn familiar_form() {
        assert_eq!(
            parse_named("busybox")
                .unwrap()
                .with_default_tag()
                .familiar(),
            "busybox:latest"
        );
        assert_eq!(
            parse_named("quay.io/a/b:1").unwrap().familiar(),
            "quay.io/a/b:1"
        );
    }

    #[test]
    fn transports() {
        use ImageReference as R;
        let p = PathBuf::from;
        let cases: Vec<(&str, R)> = vec![
            (
                "oci:/tmp/lay",
                R::Oci {
                    path: p("/tmp/lay"),
                    reference: None,
                },
            ),
            (
                "oci:/tmp/lay:v1",
                R::Oci {
                    path: p("/tmp/lay"),
                    reference: Some("v1".into()),
                },
            ),
            (
                "oci:lay:my/app:1.0",
                R::Oci {
                    path: p("lay"),
                    reference: Some("my/app:1.0".into()),
                },
            ),
            (
                "oci-archive:/a.tar:x",
                R::OciArchive {
                    path: p("/a.tar"),
                    reference: Some("x".into()),
                },
            ),
            (
                "docker-archive:/a.tar",
                R::DockerArchive {
                    path: p("/a.tar"),
                    selector: None,
                },
            ),
            (
                "docker-archive:/a.tar:app:2",
                R::DockerArchive {
                    path: p("/a.tar"),
                    selector: Some(ArchiveSelector::Named(parse_named("app:2").unwrap())),
                },
            ),
            (
                "docker-archive:/a.tar:app",
                R::DockerArchive {
                    path: p("/a.tar"),
                    selector: Some(ArchiveSelector::Named(parse_named("app:latest").unwrap())),
                },
            ),
            (
                "docker-archive:/a.tar:@1",
                R::DockerArchive {
                    path: p("/a.tar"),
                    selector: Some(ArchiveSelector::Index(1)),
                },
            ),
            ("dir:/d:x", R::Dir { path: p("/d:x") }),
            (
                "containers-storage:busybox",
                R::Storage {
                    store: None,
                    image: "busybox".into(),
                },
            ),
            (
                "containers-storage:[vfs@/r+/rr:vfs.ignore_chown_errors=true]app:1",
                R::Storage {
                    store: Some(StoreSpec {
                        driver: Some("vfs".into()),
                        root: Some(p("/r")),
                        run_root: Some(p("/rr")),
                        options: vec!["vfs.ignore_chown_errors=true".into()],
                    }),
                    image: "app:1".into(),
                },
            ),
            (
                "containers-storage:[/r]x",
                R::Storage {
                    store: Some(StoreSpec {
                        root: Some(p("/r")),
                        ..Default::default()
                    }),
                    image: "x".into(),
                },
            ),
            (
                "docker://busybox",
                R::Docker(parse_named("busybox:latest").unwrap()),
            ),
            ("busybox", R::Local("busybox".into())),
            ("localhost:5000/a:1", R::Local("localhost:5000/a:1".into())),
            ("docker:latest", R::Local("docker:latest".into())),
        ];
        for (input, want) in cases {
            assert_eq!(ImageReference::parse(input).unwrap(), want, "{input}");
        }
        for bad in [
            "oci:",
            "oci:/x:bad ref",
            "oci:/x:-a",
            "docker-archive:/a:@x",
            "docker-archive:/a:x@sha256:",
            "dir:",
            "containers-storage:",
            "containers-storage:[rel]x",
            "containers-storage:[/r",
            "docker://x/UP",
            "docker-daemon:x",
        ] {
            assert!(ImageReference::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn display_roundtrips() {
        for s in [
            "oci:/tmp/lay:v1",
            "oci-archive:/a.tar",
            "docker-archive:/a.tar:app:2",
            "docker-archive:/a.tar:@0",
            "dir:/d",
            "docker://quay.io/a/b:1",
        ] {
            assert_eq!(ImageReference::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn one_matcher() {
        let bb = "docker.io/library/busybox:latest";
        for typed in [
            "busybox",
            "busybox:latest",
            "library/busybox",
            "docker.io/busybox",
            "docker.io/library/busybox:latest",
        ] {
            assert!(name_matches(bb, typed), "{typed}");
        }
        for typed in ["busybox:1", "quay.io/busybox", "box", "localhost/busybox"] {
            assert!(!name_matches(bb, typed), "{typed}");
        }
        assert!(name_matches("localhost/app:1", "app:1"));
        assert!(name_matches("quay.io/ns/app:latest", "ns/app"));
        assert!(name_matches("quay.io/ns/app@sha256:00", "ns/app@sha256:00"));
        assert!(!name_matches("quay.io/ns/app@sha256:00", "ns/app"));
        let pause = "registry.k8s.io/pause:3.9";
        assert!(pattern_matches(pause, "pause*"));
        assert!(pattern_matches(pause, pause));
        assert!(pattern_matches(pause, "pause"));
        assert!(!pattern_matches(pause, "u*"));
        assert!(pattern_matches(bb, "busy*"));
        assert!(pattern_matches("localhost/child:latest", "*child*"));
        assert!(glob_match("a*c?", "abbbcd"));
        assert_eq!(
            split_name("reg:5000/a/b:1@sha256:x"),
            ("reg:5000/a/b", Some("1"), Some("sha256:x"))
        );
    }
}
