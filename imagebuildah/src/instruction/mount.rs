//! `RUN --mount=type=bind|cache|tmpfs|secret|ssh,…` as BuildKit parses it, plus the
//! options buildah adds (SELinux relabelling, propagation, ownership, tmpfs options).
use crate::parser::ParseErrorKind;
use crate::shell::ExpandError;

/// The mount type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    /// A directory of the context or of another stage/image (`from=`), read-only by default.
    Bind,
    /// A persistent cache directory kept in the store across builds.
    Cache,
    /// A fresh tmpfs.
    Tmpfs,
    /// A build secret (`--secret id=…`) as a file, or as an env variable with `env=`.
    Secret,
    /// The SSH agent socket (`--ssh`).
    Ssh,
}

impl MountKind {
    /// The name used in `type=`.
    pub fn as_str(self) -> &'static str {
        match self {
            MountKind::Bind => "bind",
            MountKind::Cache => "cache",
            MountKind::Tmpfs => "tmpfs",
            MountKind::Secret => "secret",
            MountKind::Ssh => "ssh",
        }
    }
}

/// How concurrent builds share a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheSharing {
    /// Used by all concurrent writers (default).
    #[default]
    Shared,
    /// A new cache for each concurrent writer.
    Private,
    /// One writer at a time; others wait.
    Locked,
}

/// One parsed `--mount` of a RUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMount {
    /// `type=` (default bind).
    pub kind: MountKind,
    /// `target=`/`dst=`/`destination=`: where it appears in the container. Secret and ssh
    /// mounts may leave it empty (defaults `/run/secrets/<id>` and the agent socket path).
    pub target: Option<String>,
    /// `source=`/`src=`: path in the context, stage or image (bind, cache).
    pub source: Option<String>,
    /// `from=`: stage name, image, or index (bind, cache).
    pub from: Option<String>,
    /// Read-only: explicit `ro`/`rw`, else bind and secret/ssh read-only, cache/tmpfs writable.
    pub readonly: bool,
    /// `id=`: the cache, secret or ssh id.
    pub id: Option<String>,
    /// `sharing=` (cache only).
    pub sharing: Option<CacheSharing>,
    /// `mode=` octal (cache, secret, ssh).
    pub mode: Option<u32>,
    /// `uid=` (cache, secret, ssh).
    pub uid: Option<u32>,
    /// `gid=` (cache, secret, ssh).
    pub gid: Option<u32>,
    /// `size=` in bytes (tmpfs; `tmpfs-size=` too).
    pub size: Option<u64>,
    /// `required` (secret, ssh): fail when the secret/agent is missing.
    pub required: bool,
    /// `env=` (secret): expose as this environment variable instead of a file.
    pub env: Option<String>,
    /// buildah's extra options, as written: `relabel=`, `z`, `Z`, `U`, `chown`,
    /// `bind-propagation=`, `bind-nonrecursive`, `tmpfs-mode=`, `tmpcopyup`, `notmpcopyup`,
    /// `nodev`, `noexec`, `nosuid`, `dev`, `exec`, `suid`, `rbind`, `consistency=`.
    pub options: Vec<(String, Option<String>)>,
    /// The specification as written (before expansion).
    pub spec: String,
}

/// buildah's extra mount options (kept in [`RunMount::options`]).
const EXTRA: &[&str] = &[
    "relabel",
    "z",
    "Z",
    "U",
    "chown",
    "bind-propagation",
    "bind-nonrecursive",
    "tmpfs-mode",
    "tmpcopyup",
    "notmpcopyup",
    "nodev",
    "noexec",
    "nosuid",
    "dev",
    "exec",
    "suid",
    "rbind",
    "consistency",
];

/// Splits a CSV record (Go `encoding/csv` for one line: `"…"` fields, `""` for a quote).
fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("unterminated quoted field".into()),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    out.push(field);
                    return Ok(out);
                }
                Some(',') => {}
                Some(c) => return Err(format!("extraneous {c:?} after quoted field")),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        out.push(field);
                        return Ok(out);
                    }
                    Some(',') => break,
                    Some(c) => field.push(c),
                }
            }
        }
        out.push(field);
    }
}

/// Go `strconv.ParseBool`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// docker's `units.RAMInBytes`: `64m`, `1g`, `512k`, `100` (bytes), binary multiples.
pub(crate) fn ram_in_bytes(v: &str) -> Option<u64> {
    let v = v.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let n: f64 = v[..split].parse().ok()?;
    let mult: f64 = match v[split..].to_ascii_lowercase().trim_end_matches(['b', 'i']) {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return None,
    };
    let b = n * mult;
    (b.is_finite() && (0.0..1.8e19).contains(&b)).then_some(b as u64)
}

/// A parse failure that may be an expansion failure.
enum MountError {
    Invalid(String),
    Expand(ExpandError),
}

impl RunMount {
    /// Parses a specification as written. Values holding a `$` that cannot be typed yet
    /// (a `$MODE` in `mode=`) are left unset here and checked by [`Self::parse_expanded`].
    pub fn parse(spec: &str) -> Result<RunMount, ParseErrorKind> {
        let ident = |s: &str| Ok::<_, ExpandError>(s.to_string());
        Self::parse_with(spec, &ident, true).map_err(|e| match e {
            MountError::Invalid(reason) => ParseErrorKind::InvalidMount {
                spec: spec.to_string(),
                reason,
            },
            MountError::Expand(e) => ParseErrorKind::Expand(e),
        })
    }

    /// Parses a specification with every value passed through `expand` first (BuildKit
    /// expands each `key=value`'s value with the build args).
    pub fn parse_expanded(
        spec: &str,
        expand: &dyn Fn(&str) -> Result<String, ExpandError>,
    ) -> Result<RunMount, ExpandError> {
        Self::parse_with(spec, expand, false).map_err(|e| match e {
            // The spec already parsed once; only an expanded value can be wrong now.
            MountError::Invalid(reason) => ExpandError::Invalid {
                what: format!("--mount={spec}"),
                reason,
            },
            MountError::Expand(e) => e,
        })
    }

    fn parse_with(
        spec: &str,
        expand: &dyn Fn(&str) -> Result<String, ExpandError>,
        lenient: bool,
    ) -> Result<RunMount, MountError> {
        let inv = |s: String| MountError::Invalid(s);
        let mut m = RunMount {
            kind: MountKind::Bind,
            target: None,
            source: None,
            from: None,
            readonly: true,
            id: None,
            sharing: None,
            mode: None,
            uid: None,
            gid: None,
            size: None,
            required: false,
            env: None,
            options: Vec::new(),
            spec: spec.to_string(),
        };
        let mut ro_auto = true;
        let fields = csv_fields(spec).map_err(inv)?;
        // `type=` decides what the other keys mean, wherever it is written.
        for f in &fields {
            if let Some((k, v)) = f.split_once('=') {
                if k.eq_ignore_ascii_case("type") {
                    m.kind = match v.to_ascii_lowercase().as_str() {
                        "bind" => MountKind::Bind,
                        "cache" => MountKind::Cache,
                        "tmpfs" => MountKind::Tmpfs,
                        "secret" => MountKind::Secret,
                        "ssh" => MountKind::Ssh,
                        _ => return Err(inv(format!("unsupported mount type {v:?}"))),
                    };
                }
            }
        }
        let num = |v: &str, radix: u32, what: &str| -> Result<Option<u32>, MountError> {
            match u32::from_str_radix(v, radix) {
                Ok(n) => Ok(Some(n)),
                Err(_) if lenient && v.contains('$') => Ok(None),
                Err(_) => Err(inv(format!("invalid value {v} for {what}"))),
            }
        };
        for field in fields.iter().filter(|f| !f.trim().is_empty()) {
            let (key, value) = match field.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (field.as_str(), None),
            };
            if EXTRA.contains(&key) {
                let value = value.map(expand).transpose().map_err(MountError::Expand)?;
                m.options.push((key.to_string(), value));
                continue;
            }
            let key = key.to_ascii_lowercase();
            let Some(raw) = value else {
                match key.as_str() {
                    "readonly" | "ro" => {
                        m.readonly = true;
                        ro_auto = false;
                    }
                    "readwrite" | "rw" => {
                        m.readonly = false;
                        ro_auto = false;
                    }
                    "required" if matches!(m.kind, MountKind::Secret | MountKind::Ssh) => {
                        m.required = true
                    }
                    "required" => {
                        return Err(inv(format!(
                            "unexpected key 'required' for mount type '{}'",
                            m.kind.as_str()
                        )))
                    }
                    _ => {
                        return Err(inv(format!(
                            "invalid field '{field}' must be a key=value pair"
                        )))
                    }
                }
                continue;
            };
            if key == "type" {
                continue;
            }
            if lenient && key == "from" && raw.find('$').is_some_and(|i| i + 1 != raw.len()) {
                return Err(inv(format!(
                    "'{key}' doesn't support variable expansion, define alias stage instead"
                )));
            }
            let v = expand(raw).map_err(MountError::Expand)?;
            let boolean =
                |v: &str| parse_bool(v).ok_or_else(|| inv(format!("invalid value for {key}: {v}")));
            match key.as_str() {
                "from" => m.from = Some(v),
                "source" | "src" => m.source = Some(v),
                "target" | "dst" | "destination" => m.target = Some(v),
                "readonly" | "ro" => {
                    m.readonly = boolean(&v)?;
                    ro_auto = false;
                }
                "readwrite" | "rw" => {
                    m.readonly = !boolean(&v)?;
                    ro_auto = false;
                }
                "required" => {
                    if !matches!(m.kind, MountKind::Secret | MountKind::Ssh) {
                        return Err(inv(format!(
                            "unexpected key 'required' for mount type '{}'",
                            m.kind.as_str()
                        )));
                    }
                    m.required = boolean(&v)?;
                }
                "id" => m.id = Some(v),
                "sharing" => {
                    m.sharing = Some(match v.to_ascii_lowercase().as_str() {
                        "shared" => CacheSharing::Shared,
                        "private" => CacheSharing::Private,
                        "locked" => CacheSharing::Locked,
                        _ => return Err(inv(format!("unsupported sharing value {v:?}"))),
                    })
                }
                "mode" => m.mode = num(&v, 8, "mode")?,
                "uid" => m.uid = num(&v, 10, "uid")?,
                "gid" => m.gid = num(&v, 10, "gid")?,
                "size" | "tmpfs-size" => match ram_in_bytes(&v) {
                    Some(n) => m.size = Some(n),
                    None if lenient && v.contains('$') => {}
                    None => return Err(inv(format!("invalid value {v} for size"))),
                },
                "env" => m.env = Some(v),
                _ => return Err(inv(format!("unexpected key '{key}' in '{field}'"))),
            }
        }
        let file_info = matches!(
            m.kind,
            MountKind::Cache | MountKind::Secret | MountKind::Ssh
        );
        if !file_info {
            for (what, set) in [
                ("mode", m.mode.is_some()),
                ("uid", m.uid.is_some()),
                ("gid", m.gid.is_some()),
            ] {
                if set {
                    return Err(inv(format!(
                        "{what} not allowed for {:?} type mounts",
                        m.kind.as_str()
                    )));
                }
            }
        }
        if ro_auto {
            m.readonly = !matches!(m.kind, MountKind::Cache | MountKind::Tmpfs);
        }
        if m.sharing.is_some() && m.kind != MountKind::Cache {
            return Err(inv(format!(
                "invalid cache sharing set for {} mount",
                m.kind.as_str()
            )));
        }
        if m.size.is_some() && m.kind != MountKind::Tmpfs {
            return Err(inv(format!(
                "unexpected key 'size' for mount type '{}'",
                m.kind.as_str()
            )));
        }
        if m.env.is_some() && m.kind != MountKind::Secret {
            return Err(inv(format!(
                "unexpected key 'env' for mount type '{}'",
                m.kind.as_str()
            )));
        }
        match m.kind {
            MountKind::Secret => {
                if m.from.is_some() {
                    return Err(inv("secret mount should not have a from".into()));
                }
                if m.sharing.is_some() {
                    return Err(inv("secret mount should not define sharing".into()));
                }
                if m.source.is_none() && m.target.is_none() && m.id.is_none() {
                    return Err(inv(
                        "invalid secret mount. one of source, target required".into()
                    ));
                }
                if m.source.is_some() && m.id.is_some() {
                    return Err(inv("both source and id can't be set".into()));
                }
            }
            MountKind::Ssh => {
                if m.from.is_some() {
                    return Err(inv("ssh mount should not have a from".into()));
                }
            }
            MountKind::Bind | MountKind::Cache | MountKind::Tmpfs => {
                if m.target.as_deref().is_none_or(str::is_empty) {
                    return Err(inv(format!(
                        "mount type {} requires a target",
                        m.kind.as_str()
                    )));
                }
            }
        }
        if m.kind == MountKind::Tmpfs && m.from.is_some() {
            return Err(inv("tmpfs mount should not have a from".into()));
        }
        Ok(m)
    }
}
