//! Resolve the global options into a [`Ctx`]: CLI > env > storage.conf > built-in defaults,
//! as containers/storage and buildah do.
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use builder::store::driver::overlay::RootlessOverlay;
use builder::store::{DriverKind, StoreOptions};

use crate::cli::GlobalArgs;
use crate::ctx::Ctx;

/// Default persistent root for root.
pub const DEFAULT_ROOT: &str = "/var/lib/containers/storage";
/// Default run root for root.
pub const DEFAULT_RUNROOT: &str = "/run/containers/storage";
/// System-wide storage.conf.
pub const SYSTEM_STORAGE_CONF: &str = "/etc/containers/storage.conf";

/// What storage.conf says (only the keys hod uses).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageConf {
    /// `[storage] driver`.
    pub driver: Option<String>,
    /// `[storage] graphroot`.
    pub graphroot: Option<PathBuf>,
    /// `[storage] runroot`.
    pub runroot: Option<PathBuf>,
    /// `[storage] rootless_storage_path` (a rootless user's graphroot; `$HOME`, `$UID`,
    /// `$USER` expanded).
    pub rootless_storage_path: Option<PathBuf>,
    /// `[storage.options.<driver>] key = value` as `driver.key=value` (plus any
    /// `[storage.options] mount_program`-style keys as `key=value` under the driver).
    pub options: Vec<String>,
}

/// Parse storage.conf text.
pub fn parse_storage_conf(text: &str) -> anyhow::Result<StorageConf> {
    let v: toml::Table = text.parse().context("parsing storage.conf")?;
    let mut out = StorageConf::default();
    let Some(storage) = v.get("storage").and_then(|s| s.as_table()) else {
        return Ok(out);
    };
    let s = |k: &str| {
        storage
            .get(k)
            .and_then(|x| x.as_str())
            .filter(|x| !x.is_empty())
            .map(str::to_string)
    };
    out.driver = s("driver");
    out.graphroot = s("graphroot").map(PathBuf::from);
    out.runroot = s("runroot").map(PathBuf::from);
    out.rootless_storage_path = s("rootless_storage_path").map(PathBuf::from);
    if let Some(opts) = storage.get("options").and_then(|o| o.as_table()) {
        let driver = out.driver.clone().unwrap_or_else(|| "overlay".to_string());
        let driver = if driver == "overlay2" {
            "overlay".to_string()
        } else {
            driver
        };
        // Driver-specific tables: [storage.options.overlay], [storage.options.vfs].
        for (name, table) in opts
            .iter()
            .filter_map(|(k, v)| v.as_table().map(|t| (k, t)))
        {
            if *name != driver {
                continue;
            }
            for (k, val) in table {
                if let Some(sv) = scalar(val) {
                    out.options.push(format!("{name}.{k}={sv}"));
                }
            }
        }
        // Old-style driver keys directly under [storage.options].
        for key in [
            "mount_program",
            "mountopt",
            "skip_mount_home",
            "ignore_chown_errors",
            "size",
            "force_mask",
        ] {
            if let Some(sv) = opts.get(key).and_then(scalar) {
                let opt = format!("{driver}.{key}={sv}");
                if !out
                    .options
                    .iter()
                    .any(|o| o.starts_with(&format!("{driver}.{key}=")))
                {
                    out.options.push(opt);
                }
            }
        }
    }
    Ok(out)
}

fn scalar(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) if !s.is_empty() => Some(s.clone()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Integer(i) => Some(i.to_string()),
        _ => None,
    }
}

/// The rootless user's storage.conf: `$CONTAINERS_STORAGE_CONF`, else
/// `$XDG_CONFIG_HOME/containers/storage.conf`, else `~/.config/containers/storage.conf`
/// (containers/storage's `DefaultConfigFile` for a rootless user).
fn user_storage_conf_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(p) = env("CONTAINERS_STORAGE_CONF").filter(|s| !s.is_empty()) {
        return Some(PathBuf::from(p));
    }
    env("XDG_CONFIG_HOME")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".config")))
        .map(|c| c.join("containers/storage.conf"))
}

fn read_conf(path: &Path) -> anyhow::Result<Option<StorageConf>> {
    match std::fs::read_to_string(path) {
        Ok(t) => parse_storage_conf(&t)
            .map(Some)
            .with_context(|| format!("reading {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// What a rootless user's defaults depend on besides the environment variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootlessHost {
    /// The user's host UID.
    pub uid: u32,
    /// The run-time directory: `$XDG_RUNTIME_DIR`, else `/run/user/UID` when it is the
    /// user's, else `$TMPDIR/podman-run-UID` (podman's fallback).
    pub runtime_dir: PathBuf,
    /// What overlay can do here.
    pub overlay: RootlessOverlay,
}

impl RootlessHost {
    /// Probe this host for the user `uid`.
    fn probe(uid: u32, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<RootlessHost> {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let me = rustix::process::geteuid().as_raw();
        let runtime_dir = match env("XDG_RUNTIME_DIR").filter(|s| !s.is_empty()) {
            Some(d) => PathBuf::from(d),
            None => {
                let run_user = PathBuf::from(format!("/run/user/{uid}"));
                match std::fs::metadata(&run_user) {
                    Ok(m) if m.is_dir() && m.uid() == me && m.mode() & 0o700 == 0o700 => run_user,
                    _ => {
                        let tmp = env("TMPDIR")
                            .filter(|s| !s.is_empty())
                            .unwrap_or_else(|| "/tmp".into());
                        let d = Path::new(&tmp).join(format!("podman-run-{uid}"));
                        if let Err(e) = std::fs::create_dir(&d) {
                            if e.kind() != std::io::ErrorKind::AlreadyExists {
                                return Err(e).with_context(|| format!("creating {}", d.display()));
                            }
                        } else {
                            let _ = std::fs::set_permissions(
                                &d,
                                std::fs::Permissions::from_mode(0o700),
                            );
                        }
                        let m = std::fs::symlink_metadata(&d)
                            .with_context(|| format!("checking {}", d.display()))?;
                        if !m.is_dir() || m.uid() != me {
                            anyhow::bail!(
                                "run-time directory {} is not a directory owned by you: set XDG_RUNTIME_DIR",
                                d.display()
                            );
                        }
                        d
                    }
                }
            }
        };
        Ok(RootlessHost {
            uid,
            runtime_dir,
            overlay: builder::store::driver::overlay::rootless_overlay(),
        })
    }
}

/// containers/storage's `expandEnvPath`: `$UID` is the user's UID, other `$VAR`/`${VAR}`
/// come from the environment (unset ones expand to nothing).
pub fn expand_path(p: &Path, uid: u32, env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    let s = p.to_string_lossy().replace("$UID", &uid.to_string());
    let mut out = String::new();
    let mut rest = s.as_str();
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, tail) = if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(j) => (&inner[..j], &inner[j + 1..]),
                None => ("", after),
            }
        } else {
            let j = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..j], &after[j..])
        };
        if name.is_empty() {
            out.push('$');
            rest = after;
            continue;
        }
        out.push_str(&env(name).unwrap_or_default());
        rest = tail;
    }
    out.push_str(rest);
    PathBuf::from(out)
}

/// Resolve with the real environment and files.
pub fn resolve(g: &GlobalArgs) -> anyhow::Result<Ctx> {
    let env = |k: &str| std::env::var(k).ok();
    let identity = builder::sys::userns::identity();
    let (conf, rootless) = if identity.is_rootless() {
        // The user's storage.conf replaces the system one; without it the system one's
        // driver settings and rootless_storage_path apply, never its graphroot/runroot.
        let conf = match user_storage_conf_path(&env) {
            Some(p) => read_conf(&p)?,
            None => None,
        };
        let conf = match conf {
            Some(c) => c,
            None => {
                let mut c = read_conf(Path::new(SYSTEM_STORAGE_CONF))?.unwrap_or_default();
                c.graphroot = None;
                c.runroot = None;
                c
            }
        };
        let host = RootlessHost::probe(identity.host_uid(), &env)?;
        (conf, Some(host))
    } else {
        let path = env("CONTAINERS_STORAGE_CONF")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(SYSTEM_STORAGE_CONF));
        (read_conf(&path)?.unwrap_or_default(), None)
    };
    resolve_with(g, &conf, &env, rootless.as_ref())
}

/// The pure part of [`resolve`]: `rootless` is set for a rootless user (in or outside the
/// user namespace).
pub fn resolve_with(
    g: &GlobalArgs,
    conf: &StorageConf,
    env: &dyn Fn(&str) -> Option<String>,
    rootless: Option<&RootlessHost>,
) -> anyhow::Result<Ctx> {
    let (root, run_root) = match rootless {
        Some(host) => {
            let data = env("XDG_DATA_HOME")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .or_else(|| env("HOME").map(|h| Path::new(&h).join(".local/share")))
                .unwrap_or_else(|| PathBuf::from("/tmp"));
            let exp = |p: &PathBuf| expand_path(p, host.uid, env);
            let root = g.root.clone().unwrap_or_else(|| {
                conf.graphroot
                    .as_ref()
                    .or(conf.rootless_storage_path.as_ref())
                    .map(exp)
                    .unwrap_or_else(|| data.join("containers/storage"))
            });
            let run = g.runroot.clone().unwrap_or_else(|| {
                conf.runroot
                    .as_ref()
                    .map(exp)
                    .unwrap_or_else(|| host.runtime_dir.join("containers"))
            });
            (root, run)
        }
        None => (
            g.root
                .clone()
                .or_else(|| conf.graphroot.clone())
                .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT)),
            g.runroot
                .clone()
                .or_else(|| conf.runroot.clone())
                .unwrap_or_else(|| PathBuf::from(DEFAULT_RUNROOT)),
        ),
    };
    let env_driver = env("STORAGE_DRIVER").filter(|s| !s.is_empty());
    let driver_name = g
        .storage_driver
        .clone()
        .or(env_driver.clone())
        .or_else(|| conf.driver.clone())
        .unwrap_or_else(|| match rootless.map(|h| &h.overlay) {
            // A rootless user without a configured driver: overlay where it works.
            Some(RootlessOverlay::Unavailable) => "vfs".to_string(),
            _ => "overlay".to_string(),
        });
    let driver = DriverKind::parse(&driver_name)?;
    let mut driver_options: Vec<String> = if !g.storage_opt.is_empty() {
        g.storage_opt
            .iter()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect()
    } else if let Some(opts) = env("STORAGE_OPTS").filter(|s| !s.is_empty()) {
        opts.split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    } else if g.storage_driver.is_some() || env_driver.is_some() {
        // A driver chosen on the command line or in the environment drops storage.conf's
        // options for the configured driver, as buildah does.
        Vec::new()
    } else {
        conf.options.clone()
    };
    // Rootless overlay on a kernel that cannot mount it in a user namespace: fuse-overlayfs,
    // unless a mount program is configured already.
    if let (Some(RootlessOverlay::MountProgram(prog)), DriverKind::Overlay) =
        (rootless.map(|h| &h.overlay), driver)
    {
        if !driver_options.iter().any(|o| o.contains("mount_program=")) {
            driver_options.push(format!("overlay.mount_program={}", prog.display()));
        }
    }
    let mut store_options = StoreOptions::default();
    store_options.root = root;
    store_options.run_root = run_root;
    store_options.driver = driver;
    store_options.driver_options = driver_options;
    let log_level = if g.debug {
        "debug".to_string()
    } else {
        g.log_level.clone()
    };
    Ok(Ctx {
        store_options,
        driver_explicit: g.storage_driver.is_some() || env_driver.is_some(),
        adapted: Default::default(),
        registries_conf: g.registries_conf.clone(),
        registries_conf_dir: g.registries_conf_dir.clone(),
        short_name_alias_conf: g.short_name_alias_conf.clone(),
        id_maps: builder::idmap::IdMappingRequest {
            uid_map: g.userns_uid_map.clone(),
            gid_map: g.userns_gid_map.clone(),
            ..Default::default()
        },
        log_level,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const CONF: &str = r#"
[storage]
driver = "vfs"
graphroot = "/srv/graph"
runroot = "/srv/run"
[storage.options]
additionalimagestores = []
mount_program = "/usr/bin/fuse-overlayfs"
[storage.options.vfs]
ignore_chown_errors = "true"
[storage.options.overlay]
mountopt = "nodev"
"#;

    fn args() -> GlobalArgs {
        GlobalArgs {
            log_level: "warn".into(),
            ..Default::default()
        }
    }

    #[test]
    fn parses_storage_conf() {
        let c = parse_storage_conf(CONF).unwrap();
        assert_eq!(c.driver.as_deref(), Some("vfs"));
        assert_eq!(c.graphroot.as_deref(), Some(Path::new("/srv/graph")));
        assert_eq!(
            c.options,
            vec![
                "vfs.ignore_chown_errors=true",
                "vfs.mount_program=/usr/bin/fuse-overlayfs"
            ]
        );
        assert_eq!(parse_storage_conf("").unwrap(), StorageConf::default());
        assert!(parse_storage_conf("[storage\n").is_err());
    }

    #[test]
    fn precedence_table() {
        let conf = parse_storage_conf(CONF).unwrap();
        struct Case {
            cli_root: Option<&'static str>,
            cli_driver: Option<&'static str>,
            cli_opts: Vec<&'static str>,
            env: Vec<(&'static str, &'static str)>,
            root: &'static str,
            driver: DriverKind,
            opts: Vec<&'static str>,
        }
        let cases = vec![
            Case {
                cli_root: None,
                cli_driver: None,
                cli_opts: vec![],
                env: vec![],
                root: "/srv/graph",
                driver: DriverKind::Vfs,
                opts: conf
                    .options
                    .iter()
                    .map(|s| &*Box::leak(s.clone().into_boxed_str()))
                    .collect(),
            },
            Case {
                cli_root: Some("/tmp/r"),
                cli_driver: Some("overlay"),
                cli_opts: vec![],
                env: vec![],
                root: "/tmp/r",
                driver: DriverKind::Overlay,
                opts: vec![],
            },
            Case {
                cli_root: None,
                cli_driver: None,
                cli_opts: vec![],
                env: vec![
                    ("STORAGE_DRIVER", "overlay"),
                    ("STORAGE_OPTS", "overlay.mountopt=nodev,x=y"),
                ],
                root: "/srv/graph",
                driver: DriverKind::Overlay,
                opts: vec!["overlay.mountopt=nodev", "x=y"],
            },
            Case {
                cli_root: None,
                cli_driver: Some("vfs"),
                cli_opts: vec!["a=b"],
                env: vec![("STORAGE_DRIVER", "overlay")],
                root: "/srv/graph",
                driver: DriverKind::Vfs,
                opts: vec!["a=b"],
            },
        ];
        for (i, c) in cases.into_iter().enumerate() {
            let mut g = args();
            g.root = c.cli_root.map(PathBuf::from);
            g.storage_driver = c.cli_driver.map(str::to_string);
            g.storage_opt = c.cli_opts.iter().map(|s| s.to_string()).collect();
            let env: HashMap<&str, &str> = c.env.into_iter().collect();
            let ctx =
                resolve_with(&g, &conf, &|k| env.get(k).map(|s| s.to_string()), None).unwrap();
            assert_eq!(ctx.store_options.root, PathBuf::from(c.root), "case {i}");
            assert_eq!(ctx.store_options.driver, c.driver, "case {i}");
            assert_eq!(ctx.store_options.driver_options, c.opts, "case {i}");
        }
    }

    #[test]
    fn defaults_without_conf() {
        let ctx = resolve_with(&args(), &StorageConf::default(), &|_| None, None).unwrap();
        assert_eq!(ctx.store_options.root, PathBuf::from(DEFAULT_ROOT));
        assert_eq!(ctx.store_options.run_root, PathBuf::from(DEFAULT_RUNROOT));
        assert_eq!(ctx.store_options.driver, DriverKind::Overlay);
        let mut g = args();
        g.storage_driver = Some("btrfs".into());
        assert!(resolve_with(&g, &StorageConf::default(), &|_| None, None).is_err());
    }

    fn host(overlay: RootlessOverlay) -> RootlessHost {
        RootlessHost {
            uid: 1000,
            runtime_dir: PathBuf::from("/run/user/1000"),
            overlay,
        }
    }

    #[test]
    fn rootless_defaults() {
        let h = host(RootlessOverlay::Native);
        let home = |k: &str| (k == "HOME").then(|| "/home/u".to_string());
        let ctx = resolve_with(&args(), &StorageConf::default(), &home, Some(&h)).unwrap();
        assert_eq!(
            ctx.store_options.root,
            PathBuf::from("/home/u/.local/share/containers/storage")
        );
        assert_eq!(
            ctx.store_options.run_root,
            PathBuf::from("/run/user/1000/containers")
        );
        assert_eq!(ctx.store_options.driver, DriverKind::Overlay);
        assert!(ctx.store_options.driver_options.is_empty());
        // XDG_DATA_HOME wins over HOME.
        let xdg = |k: &str| match k {
            "HOME" => Some("/home/u".to_string()),
            "XDG_DATA_HOME" => Some("/data".to_string()),
            _ => None,
        };
        let ctx = resolve_with(&args(), &StorageConf::default(), &xdg, Some(&h)).unwrap();
        assert_eq!(
            ctx.store_options.root,
            PathBuf::from("/data/containers/storage")
        );
        // No overlay in a user namespace: vfs; fuse-overlayfs: overlay through it.
        let ctx = resolve_with(
            &args(),
            &StorageConf::default(),
            &home,
            Some(&host(RootlessOverlay::Unavailable)),
        )
        .unwrap();
        assert_eq!(ctx.store_options.driver, DriverKind::Vfs);
        let fuse = host(RootlessOverlay::MountProgram(
            "/usr/bin/fuse-overlayfs".into(),
        ));
        let ctx = resolve_with(&args(), &StorageConf::default(), &home, Some(&fuse)).unwrap();
        assert_eq!(ctx.store_options.driver, DriverKind::Overlay);
        assert_eq!(
            ctx.store_options.driver_options,
            vec!["overlay.mount_program=/usr/bin/fuse-overlayfs"]
        );
        // The user's storage.conf: graphroot, else rootless_storage_path (expanded).
        let conf = parse_storage_conf(
            "[storage]\ndriver = \"vfs\"\nrootless_storage_path = \"$HOME/s/$UID\"\n",
        )
        .unwrap();
        let ctx = resolve_with(&args(), &conf, &home, Some(&h)).unwrap();
        assert_eq!(ctx.store_options.root, PathBuf::from("/home/u/s/1000"));
        assert_eq!(ctx.store_options.driver, DriverKind::Vfs);
        let conf =
            parse_storage_conf("[storage]\ngraphroot = \"/g\"\nrunroot = \"/r/$UID\"\n").unwrap();
        let ctx = resolve_with(&args(), &conf, &home, Some(&h)).unwrap();
        assert_eq!(ctx.store_options.root, PathBuf::from("/g"));
        assert_eq!(ctx.store_options.run_root, PathBuf::from("/r/1000"));
    }

    #[test]
    fn path_expansion() {
        let env = |k: &str| match k {
            "HOME" => Some("/home/u".to_string()),
            "USER" => Some("u".to_string()),
            _ => None,
        };
        assert_eq!(
            expand_path(Path::new("$HOME/x/${USER}/$UID/$NOPE/a$"), 7, &env),
            PathBuf::from("/home/u/x/u/7//a$")
        );
    }
}
