//! TLS material for a registry host (containers-certs.d(5)), as containers/image finds it.
//!
//! ```text
//!  --cert-dir DIR ─────────────────────────────────────────────┐
//!  else the first existing of ~/.config/containers/certs.d/HOST, │─▶ scan(dir): *.crt CAs,
//!       /etc/containers/certs.d/HOST, /etc/docker/certs.d/HOST   │   *.cert + *.key pairs
//! ```
//!
//! `HOST` is `host[:port]` as the user wrote it (`docker.io`, not `registry-1.docker.io`).
//! A `.cert` without its `.key` (or a `.key` without its `.cert`) is an error naming them.
use std::path::{Path, PathBuf};

use crate::error::{Error, IoResultExt, Result};
use crate::options::RegistryContext;

use super::SysEnv;

/// What a certificate directory holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA certificates (`*.crt`), sorted.
    pub ca_certs: Vec<PathBuf>,
    /// Client certificate and key pairs (`NAME.cert` + `NAME.key`), sorted.
    pub client_pairs: Vec<(PathBuf, PathBuf)>,
}

/// The directory to read for `host` (it may not exist).
pub fn cert_dir(ctx: &RegistryContext, env: &SysEnv, host: &str) -> PathBuf {
    if let Some(d) = &ctx.cert_dir {
        return d.clone();
    }
    let candidates = [
        env.home.join(".config/containers/certs.d"),
        env.system_path("etc/containers/certs.d"),
        env.system_path("etc/docker/certs.d"),
    ];
    let mut last = PathBuf::new();
    for base in candidates {
        last = base.join(host);
        if last.exists() {
            break;
        }
    }
    last
}

/// Classify file names (pure): CAs, client pairs, or an error for an unpaired file.
pub fn classify(dir: &Path, names: &[String]) -> Result<TlsFiles> {
    let mut out = TlsFiles::default();
    let mut names: Vec<&String> = names.iter().collect();
    names.sort();
    let has = |n: &str| names.iter().any(|x| x.as_str() == n);
    for name in &names {
        if name.ends_with(".crt") {
            out.ca_certs.push(dir.join(name));
        } else if let Some(stem) = name.strip_suffix(".cert") {
            let key = format!("{stem}.key");
            if !has(&key) {
                return Err(Error::invalid(format!(
                    "missing key {key} for client certificate {}. Note that CA certificates should use the extension .crt",
                    dir.join(name).display()
                )));
            }
            out.client_pairs.push((dir.join(name), dir.join(key)));
        } else if let Some(stem) = name.strip_suffix(".key") {
            let cert = format!("{stem}.cert");
            if !has(&cert) {
                return Err(Error::invalid(format!(
                    "missing client certificate {cert} for key {}",
                    dir.join(name).display()
                )));
            }
        }
    }
    Ok(out)
}

/// Read `dir` (missing = nothing).
pub fn scan(dir: &Path) -> Result<TlsFiles> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(TlsFiles::default()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            tracing::debug!("skipping certificate directory {}: {e}", dir.display());
            return Ok(TlsFiles::default());
        }
        Err(e) => return Err(e).at("reading certificate directory", dir),
    };
    let mut names = Vec::new();
    for e in entries {
        let e = e.at("reading certificate directory", dir)?;
        names.push(e.file_name().to_string_lossy().into_owned());
    }
    classify(dir, &names)
}

/// The TLS files for `host[:port]`.
pub fn for_host(ctx: &RegistryContext, env: &SysEnv, host: &str) -> Result<TlsFiles> {
    scan(&cert_dir(ctx, env, host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_table() {
        let d = Path::new("/c/h:5000");
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let ok = classify(
            d,
            &s(&["ca.crt", "b.crt", "client.cert", "client.key", "README"]),
        )
        .unwrap();
        assert_eq!(ok.ca_certs, vec![d.join("b.crt"), d.join("ca.crt")]);
        assert_eq!(
            ok.client_pairs,
            vec![(d.join("client.cert"), d.join("client.key"))]
        );
        let table: &[(&[&str], &str)] = &[
            (
                &["c.cert"],
                "missing key c.key for client certificate /c/h:5000/c.cert",
            ),
            (
                &["c.key"],
                "missing client certificate c.cert for key /c/h:5000/c.key",
            ),
            (&["a.cert", "b.key"], "missing key a.key"),
        ];
        for (names, want) in table {
            let e = classify(d, &s(names)).unwrap_err().to_string();
            assert!(e.contains(want), "{names:?}: {e}");
        }
    }

    #[test]
    fn directory_precedence() {
        let t = tempfile::tempdir().unwrap();
        let env = SysEnv {
            home: t.path().join("home"),
            root: t.path().to_path_buf(),
            ..SysEnv::default()
        };
        let ctx = RegistryContext::default();
        let host = "reg.io:5000";
        // None exists: the last candidate (docker's), which scans as empty.
        assert_eq!(
            cert_dir(&ctx, &env, host),
            t.path().join("etc/docker/certs.d").join(host)
        );
        assert_eq!(for_host(&ctx, &env, host).unwrap(), TlsFiles::default());
        for (i, base) in [
            "etc/docker/certs.d",
            "etc/containers/certs.d",
            "home/.config/containers/certs.d",
        ]
        .iter()
        .enumerate()
        {
            let d = t.path().join(base).join(host);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(format!("ca{i}.crt")), "x").unwrap();
            assert_eq!(cert_dir(&ctx, &env, host), d);
            assert_eq!(
                for_host(&ctx, &env, host).unwrap().ca_certs,
                vec![d.join(format!("ca{i}.crt"))]
            );
        }
        let mut ctx = ctx;
        ctx.cert_dir = Some(t.path().join("flag"));
        std::fs::create_dir_all(t.path().join("flag")).unwrap();
        std::fs::write(t.path().join("flag/only.cert"), "x").unwrap();
        let e = for_host(&ctx, &env, host).unwrap_err().to_string();
        assert!(e.contains("flag/only.cert"), "{e}");
    }
}
