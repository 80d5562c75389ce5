//! Resolve the global options into a [`Ctx`]: CLI > env > storage.conf > built-in defaults,
//! as containers/storage and buildah do.
use std::path::{Path, PathBuf};

use anyhow::Context as _;
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

/// The storage.conf to read: `$CONTAINERS_STORAGE_CONF`, else the rootless user file, else
/// the system one.
fn storage_conf_path(env: &dyn Fn(&str) -> Option<String>, rootless: bool) -> PathBuf {
    if let Some(p) = env("CONTAINERS_STORAGE_CONF").filter(|s| !s.is_empty()) {
        return PathBuf::from(p);
    }
    if rootless {
        let cfg = env("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| env("HOME").map(|h| Path::new(&h).join(".config")));
        if let Some(c) = cfg {
            let p = c.join("containers/storage.conf");
            if p.exists() {
                return p;
            }
        }
    }
    PathBuf::from(SYSTEM_STORAGE_CONF)
}

fn is_rootless() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() != 0)
        .unwrap_or(false)
}

/// Resolve with the real environment and files.
pub fn resolve(g: &GlobalArgs) -> anyhow::Result<Ctx> {
    let env = |k: &str| std::env::var(k).ok();
    let rootless = is_rootless();
    let path = storage_conf_path(&env, rootless);
    let conf = match std::fs::read_to_string(&path) {
        Ok(t) => parse_storage_conf(&t).with_context(|| format!("reading {}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => StorageConf::default(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    resolve_with(g, &conf, &env, rootless)
}

/// The pure part of [`resolve`].
pub fn resolve_with(
    g: &GlobalArgs,
    conf: &StorageConf,
    env: &dyn Fn(&str) -> Option<String>,
    rootless: bool,
) -> anyhow::Result<Ctx> {
    let (def_root, def_run) = if rootless {
        let data = env("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| env("HOME").map(|h| Path::new(&h).join(".local/share")))
            .unwrap_or_else(|| PathBuf::from("/tmp"));
        let run = env("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        (data.join("containers/storage"), run.join("containers"))
    } else {
        (PathBuf::from(DEFAULT_ROOT), PathBuf::from(DEFAULT_RUNROOT))
    };
    let root = g
        .root
        .clone()
        .or_else(|| {
            if rootless {
                None
            } else {
                conf.graphroot.clone()
            }
        })
        .unwrap_or(def_root);
    let run_root = g
        .runroot
        .clone()
        .or_else(|| if rootless { None } else { conf.runroot.clone() })
        .unwrap_or(def_run);
    let env_driver = env("STORAGE_DRIVER").filter(|s| !s.is_empty());
    let driver_name = g
        .storage_driver
        .clone()
        .or(env_driver.clone())
        .or_else(|| conf.driver.clone())
        .unwrap_or_else(|| "overlay".to_string());
    let driver = DriverKind::parse(&driver_name)?;
    let driver_options = if !g.storage_opt.is_empty() {
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
                resolve_with(&g, &conf, &|k| env.get(k).map(|s| s.to_string()), false).unwrap();
            assert_eq!(ctx.store_options.root, PathBuf::from(c.root), "case {i}");
            assert_eq!(ctx.store_options.driver, c.driver, "case {i}");
            assert_eq!(ctx.store_options.driver_options, c.opts, "case {i}");
        }
    }

    #[test]
    fn defaults_without_conf() {
        let ctx = resolve_with(&args(), &StorageConf::default(), &|_| None, false).unwrap();
        assert_eq!(ctx.store_options.root, PathBuf::from(DEFAULT_ROOT));
        assert_eq!(ctx.store_options.run_root, PathBuf::from(DEFAULT_RUNROOT));
        assert_eq!(ctx.store_options.driver, DriverKind::Overlay);
        let mut g = args();
        g.storage_driver = Some("btrfs".into());
        assert!(resolve_with(&g, &StorageConf::default(), &|_| None, false).is_err());
        let ctx = resolve_with(
            &args(),
            &StorageConf::default(),
            &|k| (k == "HOME").then(|| "/home/u".to_string()),
            true,
        )
        .unwrap();
        assert_eq!(
            ctx.store_options.root,
            PathBuf::from("/home/u/.local/share/containers/storage")
        );
    }
}
