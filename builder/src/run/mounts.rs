//! `-v/--volume` and `--mount` parsing (pure), and turning the parsed mounts into OCI mounts
//! (which needs the host: sources must exist, cache and overlay directories are created).
use std::path::{Path, PathBuf};

use oci_spec::runtime::Mount;
use sha2::Digest as _;

use super::RunError;

/// What kind of mount the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A host path bound in.
    Bind {
        /// The host path.
        source: PathBuf,
    },
    /// A host directory as the lower layer of an overlay whose writes are discarded (`:O`),
    /// or kept in a given upper directory (`:O,upperdir=DIR,workdir=DIR`).
    Overlay {
        /// The host path.
        source: PathBuf,
        /// `upperdir=` and `workdir=`: where the writes persist (else per-run scratch).
        upper_work: Option<(PathBuf, PathBuf)>,
    },
    /// A fresh tmpfs.
    Tmpfs,
    /// A persistent cache directory (`--mount type=cache`).
    Cache {
        /// The cache's ID (a safe file name).
        id: String,
    },
}

/// One parsed `-v` or `--mount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedMount {
    /// The kind and its source.
    pub kind: MountKind,
    /// Absolute destination in the container.
    pub destination: PathBuf,
    /// OCI mount options (`ro`, `nosuid`, `rprivate`, `size=…`, …).
    pub options: Vec<String>,
    /// `:U`: chown the source to the run's user (as host IDs).
    pub chown: bool,
}

fn invalid(msg: String) -> RunError {
    RunError::Invalid(msg)
}

fn check_destination(dest: &str, what: &str) -> Result<PathBuf, RunError> {
    if !dest.starts_with('/') {
        return Err(invalid(format!(
            "invalid {what}: destination {dest:?} must be an absolute path"
        )));
    }
    let clean = crate::rootfs::clean_container_path(dest);
    if clean == Path::new("/") {
        return Err(invalid(format!(
            "invalid {what}: / cannot be a mount destination"
        )));
    }
    for reserved in ["/proc", "/dev", "/sys"] {
        if clean == Path::new(reserved) || (reserved == "/proc" && clean.starts_with("/proc")) {
            return Err(invalid(format!(
                "invalid {what}: {reserved} cannot be a mount destination"
            )));
        }
    }
    Ok(clean)
}

fn propagation(v: &str) -> Option<&'static str> {
    Some(match v {
        "shared" => "shared",
        "rshared" => "rshared",
        "slave" => "slave",
        "rslave" => "rslave",
        "private" => "private",
        "rprivate" => "rprivate",
        _ => return None,
    })
}

/// Parse `-v SRC:DEST[:OPTIONS]`.
pub fn parse_volume(v: &str) -> Result<ParsedMount, RunError> {
    let parts: Vec<&str> = v.split(':').collect();
    let (src, dest, opts) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        _ => {
            return Err(invalid(format!(
                "invalid volume {v:?}: want SOURCE:DESTINATION[:OPTIONS]"
            )))
        }
    };
    if !src.starts_with('/') {
        return Err(invalid(format!("invalid volume {v:?}: named volumes are not supported; the source must be an absolute path")));
    }
    let destination = check_destination(dest, "volume")?;
    let mut options = vec!["rbind".to_string()];
    let mut overlay = false;
    let (mut upper, mut work) = (None, None);
    let mut chown = false;
    let mut rw_seen = None;
    let mut prop = None;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" | "rw" => {
                if rw_seen.replace(o).is_some() {
                    return Err(invalid(format!(
                        "invalid volume {v:?}: ro and rw given more than once"
                    )));
                }
            }
            "z" | "Z" => {} // SELinux relabelling: nothing to do without SELinux.
            "U" => chown = true,
            "O" => overlay = true,
            o if o.starts_with("upperdir=") || o.starts_with("workdir=") => {
                let (k, p) = o.split_once('=').unwrap_or((o, ""));
                if !p.starts_with('/') {
                    return Err(invalid(format!(
                        "invalid volume {v:?}: {k} must be an absolute path"
                    )));
                }
                let slot = if k == "upperdir" {
                    &mut upper
                } else {
                    &mut work
                };
                *slot = Some(PathBuf::from(p));
            }
            "nosuid" | "suid" | "nodev" | "dev" | "noexec" | "exec" => options.push(o.to_string()),
            p if propagation(p).is_some() => {
                if prop.replace(p).is_some() {
                    return Err(invalid(format!(
                        "invalid volume {v:?}: more than one propagation option"
                    )));
                }
            }
            other => {
                return Err(invalid(format!(
                    "invalid volume {v:?}: unknown option {other:?}"
                )))
            }
        }
    }
    if rw_seen == Some("ro") {
        options.push("ro".into());
    }
    options.push(prop.unwrap_or("rprivate").to_string());
    let upper_work = match (upper, work) {
        (None, None) => None,
        (Some(u), Some(w)) if overlay => Some((u, w)),
        (Some(_), Some(_)) => {
            return Err(invalid(format!(
                "invalid volume {v:?}: upperdir and workdir need the O option"
            )))
        }
        _ => {
            return Err(invalid(format!(
                "invalid volume {v:?}: upperdir and workdir go together"
            )))
        }
    };
    let kind = if overlay {
        MountKind::Overlay {
            source: PathBuf::from(src),
            upper_work,
        }
    } else {
        MountKind::Bind {
            source: PathBuf::from(src),
        }
    };
    Ok(ParsedMount {
        kind,
        destination,
        options,
        chown,
    })
}

/// Parse `--mount type=…,…`. Relative bind sources are taken from `context_dir`.
pub fn parse_mount(m: &str, context_dir: Option<&Path>) -> Result<ParsedMount, RunError> {
    let mut typ = None;
    let mut src: Option<String> = None;
    let mut dst: Option<String> = None;
    let mut id: Option<String> = None;
    let mut options: Vec<String> = Vec::new();
    let mut ro = false;
    let mut prop = None;
    let mut chown = false;
    for kv in m.split(',').filter(|s| !s.is_empty()) {
        let (k, v) = match kv.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (kv, None),
        };
        let need = |v: Option<&str>| {
            v.map(str::to_string)
                .ok_or_else(|| invalid(format!("invalid mount {m:?}: {k} needs a value")))
        };
        match k {
            "type" => typ = Some(need(v)?),
            "src" | "source" => src = Some(need(v)?),
            "dst" | "destination" | "target" => dst = Some(need(v)?),
            "ro" | "readonly" => ro = v.map(|v| v == "true" || v == "1").unwrap_or(true),
            "rw" => ro = false,
            "z" | "Z" | "relabel" | "bind-nonrecursive" | "notmpcopyup" | "tmpcopyup" => {}
            "U" => chown = true,
            "bind-propagation" => {
                let v = need(v)?;
                prop = Some(propagation(&v).ok_or_else(|| {
                    invalid(format!("invalid mount {m:?}: bind-propagation {v:?}"))
                })?);
            }
            "tmpfs-size" => options.push(format!("size={}", need(v)?)),
            "tmpfs-mode" => {
                let v = need(v)?;
                u32::from_str_radix(&v, 8)
                    .map_err(|_| invalid(format!("invalid mount {m:?}: tmpfs-mode {v:?}")))?;
                options.push(format!("mode={v}"));
            }
            "id" => id = Some(need(v)?),
            "sharing" | "mode" | "uid" | "gid" => {
                need(v)?;
            }
            other => {
                return Err(invalid(format!(
                    "invalid mount {m:?}: unknown option {other:?}"
                )))
            }
        }
    }
    let typ = typ.ok_or_else(|| invalid(format!("invalid mount {m:?}: type is required")))?;
    let dst =
        dst.ok_or_else(|| invalid(format!("invalid mount {m:?}: a destination is required")))?;
    let destination = check_destination(&dst, "mount")?;
    let kind = match typ.as_str() {
        "bind" => {
            let src =
                src.ok_or_else(|| invalid(format!("invalid mount {m:?}: bind needs a source")))?;
            let source = if src.starts_with('/') {
                PathBuf::from(src)
            } else {
                let ctx = context_dir.ok_or_else(|| {
                    invalid(format!(
                        "invalid mount {m:?}: relative source {src:?} needs --contextdir"
                    ))
                })?;
                // Lexically confined to the context directory.
                ctx.join(
                    crate::rootfs::clean_container_path(&src)
                        .strip_prefix("/")
                        .unwrap_or(Path::new("")),
                )
            };
            options.insert(0, "rbind".into());
            MountKind::Bind { source }
        }
        "tmpfs" => {
            options.insert(0, "nosuid".into());
            options.insert(1, "nodev".into());
            MountKind::Tmpfs
        }
        "cache" => {
            let id = id.unwrap_or_else(|| {
                hex::encode(sha2::Sha256::digest(
                    destination.to_string_lossy().as_bytes(),
                ))
            });
            if id.is_empty() || id.contains('/') || id == "." || id == ".." || id.contains('\0') {
                return Err(invalid(format!(
                    "invalid mount {m:?}: cache id {id:?} must be a plain name"
                )));
            }
            options.insert(0, "rbind".into());
            MountKind::Cache { id }
        }
        other => {
            return Err(invalid(format!(
                "invalid mount {m:?}: unsupported type {other:?}"
            )))
        }
    };
    if ro {
        options.push("ro".into());
    }
    if matches!(kind, MountKind::Bind { .. } | MountKind::Cache { .. }) {
        options.push(prop.unwrap_or("rprivate").to_string());
    } else if prop.is_some() {
        return Err(invalid(format!(
            "invalid mount {m:?}: bind-propagation is only for bind mounts"
        )));
    }
    Ok(ParsedMount {
        kind,
        destination,
        options,
        chown,
    })
}

/// Where the host side of mounts lives.
#[derive(Debug, Clone)]
pub struct MountDirs {
    /// Per-run scratch (overlay upper/work directories).
    pub run_dir: PathBuf,
    /// Root of `type=cache` directories.
    pub cache_dir: PathBuf,
}

/// Turn a parsed mount into an OCI mount, checking and creating what it needs on the host.
pub fn materialize(
    p: &ParsedMount,
    dirs: &MountDirs,
    index: usize,
    owner: (u32, u32),
) -> Result<Mount, RunError> {
    let io = |op: &str, path: &Path, e: std::io::Error| RunError::Io {
        op: op.into(),
        path: path.to_path_buf(),
        source: e,
    };
    let (typ, source, mut options) = match &p.kind {
        MountKind::Bind { source } => {
            std::fs::metadata(source).map_err(|e| io("checking mount source", source, e))?;
            ("bind".to_string(), source.clone(), p.options.clone())
        }
        MountKind::Overlay { source, upper_work } => {
            std::fs::metadata(source).map_err(|e| io("checking mount source", source, e))?;
            let (upper, work) = match upper_work {
                Some((u, w)) => {
                    for d in [u, w] {
                        std::fs::metadata(d).map_err(|e| io("checking overlay directory", d, e))?;
                    }
                    (u.clone(), w.clone())
                }
                None => {
                    let base = dirs.run_dir.join(format!("overlay-{index}"));
                    let (upper, work) = (base.join("upper"), base.join("work"));
                    for d in [&upper, &work] {
                        std::fs::create_dir_all(d).map_err(|e| io("creating", d, e))?;
                    }
                    (upper, work)
                }
            };
            let mut o: Vec<String> = p
                .options
                .iter()
                .filter(|o| {
                    *o != "rbind"
                        && !o.ends_with("private")
                        && !o.ends_with("shared")
                        && !o.ends_with("slave")
                })
                .cloned()
                .collect();
            o.push(format!(
                "lowerdir={},upperdir={},workdir={}",
                source.display(),
                upper.display(),
                work.display()
            ));
            ("overlay".to_string(), PathBuf::from("overlay"), o)
        }
        MountKind::Tmpfs => (
            "tmpfs".to_string(),
            PathBuf::from("tmpfs"),
            p.options.clone(),
        ),
        MountKind::Cache { id } => {
            let dir = dirs.cache_dir.join(id);
            std::fs::create_dir_all(&dir).map_err(|e| io("creating cache directory", &dir, e))?;
            ("bind".to_string(), dir, p.options.clone())
        }
    };
    if p.chown {
        chown_tree(&source, owner).map_err(|e| io("changing ownership of", &source, e))?;
    }
    options.dedup();
    let doc = serde_json::json!({
        "destination": p.destination, "type": typ, "source": source, "options": options,
    });
    serde_json::from_value(doc).map_err(|e| RunError::Invalid(format!("building mount: {e}")))
}

fn chown_tree(path: &Path, (uid, gid): (u32, u32)) -> std::io::Result<()> {
    for e in walkdir::WalkDir::new(path).follow_links(false) {
        let e = e.map_err(std::io::Error::other)?;
        std::os::unix::fs::lchown(e.path(), Some(uid), Some(gid))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes() {
        let v = parse_volume("/a:/b").unwrap();
        assert_eq!(
            v.kind,
            MountKind::Bind {
                source: "/a".into()
            }
        );
        assert_eq!(v.destination, PathBuf::from("/b"));
        assert_eq!(v.options, ["rbind", "rprivate"]);
        let v = parse_volume("/a:/b/../c:ro,z,U,rshared").unwrap();
        assert_eq!(v.destination, PathBuf::from("/c"));
        assert_eq!(v.options, ["rbind", "ro", "rshared"]);
        assert!(v.chown);
        let v = parse_volume("/a:/b:O").unwrap();
        assert_eq!(
            v.kind,
            MountKind::Overlay {
                source: "/a".into(),
                upper_work: None
            }
        );
        let v = parse_volume("/a:/b:O,upperdir=/u,workdir=/w").unwrap();
        assert_eq!(
            v.kind,
            MountKind::Overlay {
                source: "/a".into(),
                upper_work: Some(("/u".into(), "/w".into()))
            }
        );
        for bad in [
            "/a:/b:O,upperdir=/u",
            "/a:/b:upperdir=/u,workdir=/w",
            "/a:/b:O,upperdir=u,workdir=/w",
        ] {
            assert!(parse_volume(bad).is_err(), "{bad}");
        }
        for bad in [
            "/a",
            "a:/b",
            "/a:b",
            "/a:/b:bogus",
            "/a:/b:ro,rw",
            "/a:/proc",
            "/a:/proc/sys",
            "/a:/dev",
            "/a:/b:c:d",
            "/a:/sys/..",
        ] {
            assert!(parse_volume(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mounts() {
        let m = parse_mount("type=bind,src=/x,dst=/y,ro", None).unwrap();
        assert_eq!(
            m.kind,
            MountKind::Bind {
                source: "/x".into()
            }
        );
        assert_eq!(m.options, ["rbind", "ro", "rprivate"]);
        let m = parse_mount(
            "type=bind,source=sub/../../etc,target=/y",
            Some(Path::new("/ctx")),
        )
        .unwrap();
        assert_eq!(
            m.kind,
            MountKind::Bind {
                source: "/ctx/etc".into()
            }
        );
        let m = parse_mount(
            "type=tmpfs,destination=/t,tmpfs-size=1m,tmpfs-mode=1777",
            None,
        )
        .unwrap();
        assert_eq!(m.kind, MountKind::Tmpfs);
        assert_eq!(m.options, ["nosuid", "nodev", "size=1m", "mode=1777"]);
        let m = parse_mount("type=cache,target=/root/.cache,id=pip", None).unwrap();
        assert_eq!(m.kind, MountKind::Cache { id: "pip".into() });
        let m = parse_mount("type=cache,target=/c", None).unwrap();
        assert!(matches!(m.kind, MountKind::Cache { ref id } if id.len() == 64));
        for bad in [
            "type=bind,src=/x",
            "src=/x,dst=/y",
            "type=bind,src=/x,dst=/y,bind-propagation=suid",
            "type=bind,src=/x,dst=/y,bind-propagation=z",
            "type=bind,src=/x,dst=/y,bogus=1",
            "type=bind,src=/x,dst=/proc",
            "type=bind,src=/x,dst=/dev",
            "type=bind,src=/x,dst=/sys",
            "type=bind,src=rel,dst=/y",
            "type=cache,target=/c,id=../../x",
            "type=cache,target=/c,id=a/b",
            "type=volume,target=/v",
            "type=tmpfs,dst=/t,tmpfs-mode=999",
            "type=tmpfs,dst=/t,bind-propagation=shared",
        ] {
            assert!(parse_mount(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn materialize_checks_sources() {
        let t = tempfile::tempdir().unwrap();
        let dirs = MountDirs {
            run_dir: t.path().join("run"),
            cache_dir: t.path().join("cache"),
        };
        let p = parse_volume("/nonexistent-hod-source:/x").unwrap();
        let e = materialize(&p, &dirs, 0, (0, 0)).unwrap_err();
        assert!(e.to_string().contains("/nonexistent-hod-source"), "{e}");
        let p = parse_mount("type=cache,target=/c,id=abc", None).unwrap();
        let m = materialize(&p, &dirs, 0, (0, 0)).unwrap();
        assert_eq!(
            m.source().as_deref(),
            Some(t.path().join("cache/abc").as_path())
        );
        assert!(t.path().join("cache/abc").is_dir());
        let p = parse_volume(&format!("{}:/o:O", t.path().display())).unwrap();
        let m = materialize(&p, &dirs, 3, (0, 0)).unwrap();
        assert_eq!(m.typ().as_deref(), Some("overlay"));
        assert!(t.path().join("run/overlay-3/upper").is_dir());
    }
}
