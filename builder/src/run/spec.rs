//! The OCI runtime spec of one `run`, generated from the working container's image config and
//! the run options (pure: everything that needs I/O is resolved by the caller first and
//! passed in [`SpecInputs`]).
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde_json::{json, Value};

use super::user::ResolvedUser;
use super::{NamespaceMode, NetworkMode, RunError, RunOptions};
use crate::image::ContainerConfig;
use crate::sys::caps;

/// buildah's default capability set (containers.conf `default_capabilities`).
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

/// `PATH` when the image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Paths hidden from the container (as buildah's runc spec, plus powercap/thermal).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/fs/selinux",
    "/sys/dev",
    "/sys/devices/virtual/powercap",
    "/sys/class/thermal",
];

/// Paths made read-only.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// One resource limit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rlimit {
    /// `RLIMIT_NOFILE`.
    pub name: String,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// Files generated in the container's run directory and bind-mounted over the rootfs's.
#[derive(Debug, Clone, Default)]
pub struct EtcFiles {
    /// `/etc/hosts`.
    pub hosts: Option<PathBuf>,
    /// `/etc/resolv.conf`.
    pub resolv_conf: Option<PathBuf>,
    /// `/etc/hostname`.
    pub hostname: Option<PathBuf>,
    /// `/run/.containerenv`.
    pub containerenv: Option<PathBuf>,
}

impl EtcFiles {
    /// The files [`super::prepare`] wrote into a run's `bundle` directory.
    pub fn in_bundle(bundle: &Path) -> EtcFiles {
        let f = |name: &str| Some(bundle.join(name)).filter(|p| p.is_file());
        EtcFiles {
            hosts: f("hosts"),
            resolv_conf: f("resolv.conf"),
            hostname: f("hostname"),
            containerenv: f("containerenv"),
        }
    }
}

/// One user-namespace ID mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdMap {
    /// First ID inside the namespace.
    pub container_id: u32,
    /// First ID outside.
    pub host_id: u32,
    /// Number of IDs.
    pub size: u32,
}

/// Everything [`generate`] needs.
#[derive(Debug, Clone)]
pub struct SpecInputs<'a> {
    /// Host path of the rootfs.
    pub rootfs: &'a Path,
    /// The image's run-time config (env, working dir, user).
    pub config: &'a ContainerConfig,
    /// The run options.
    pub opts: &'a RunOptions,
    /// The command (argv).
    pub command: &'a [String],
    /// The hostname (`--hostname`, else the container ID's first 12 characters).
    pub hostname: String,
    /// The resolved user.
    pub user: ResolvedUser,
    /// Generated `/etc` files.
    pub etc: EtcFiles,
    /// `-v` and `--mount` mounts, already parsed and checked.
    pub extra_mounts: Vec<oci_spec::runtime::Mount>,
    /// `--device` devices, already resolved.
    pub devices: Vec<oci_spec::runtime::LinuxDevice>,
    /// Limits for rlimits the options do not set (the current process's, by default).
    pub default_rlimits: Vec<Rlimit>,
    /// User-namespace maps (uid, gid), when the run gets a user namespace.
    pub id_maps: Option<(Vec<IdMap>, Vec<IdMap>)>,
    /// Whether a terminal is attached.
    pub terminal: bool,
    /// The seccomp profile (`--security-opt seccomp=FILE`, or the default one the caller
    /// found: [`super::seccomp::Profile::for_option`]); `None` = containers/common's built-in
    /// default, unless `seccomp=unconfined` says no filter.
    pub seccomp_profile: Option<super::seccomp::Profile>,
}

fn set_env(env: &mut Vec<String>, kv: &str) {
    let key = kv.split('=').next().unwrap_or(kv);
    env.retain(|e| e.split('=').next() != Some(key));
    env.push(kv.to_string());
}

fn has_env(env: &[String], key: &str) -> bool {
    env.iter().any(|e| e.split('=').next() == Some(key))
}

/// The proxy variables buildah passes from its own environment into every run (before the
/// image's environment and `--env`, which override them).
pub const PROXY_ENV: &[&str] = &[
    "http_proxy",
    "https_proxy",
    "ftp_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "FTP_PROXY",
    "NO_PROXY",
];

/// `KEY=value` for each [`PROXY_ENV`] variable `lookup` finds.
pub fn proxy_env(lookup: impl Fn(&str) -> Option<String>) -> Vec<String> {
    PROXY_ENV
        .iter()
        .filter_map(|k| lookup(k).map(|v| format!("{k}={v}")))
        .collect()
}

/// Parse a `--shm-size` value (`64m`, `1g`, `512k`, `1048576`, `100b`) into bytes.
pub fn parse_shm_size(s: &str) -> Result<u64, RunError> {
    super::policy::parse_size(s).map_err(|_| RunError::Invalid(format!("invalid --shm-size {s:?}")))
}

/// The final capability set: `base` (containers.conf's `default_capabilities`, else
/// buildah's default set), `--cap-add`, then `--cap-drop` (a capability in both is dropped,
/// as buildah documents). `ALL` is accepted in all three.
pub fn capability_set(
    base: Option<&[String]>,
    add: &[String],
    drop: &[String],
) -> Result<Vec<&'static str>, RunError> {
    let mut set: Vec<&'static str> = DEFAULT_CAPABILITIES.to_vec();
    let expand = |names: &[String]| -> Result<Vec<&'static str>, RunError> {
        let mut out = Vec::new();
        for n in names {
            if n.eq_ignore_ascii_case("all") {
                out.extend(caps::ALL.iter().copied());
            } else {
                out.push(
                    caps::canonical(n)
                        .ok_or_else(|| RunError::Invalid(format!("unknown capability {n:?}")))?,
                );
            }
        }
        Ok(out)
    };
    if let Some(base) = base {
        set = Vec::new();
        for c in expand(base)? {
            if !set.contains(&c) {
                set.push(c);
            }
        }
    }
    for c in expand(add)? {
        if !set.contains(&c) {
            set.push(c);
        }
    }
    let dropped = expand(drop)?;
    set.retain(|c| !dropped.contains(c));
    set.sort_by_key(|c| caps::number(c));
    Ok(set)
}

/// Parse `--ulimit type=soft[:hard]` (`nofile=1024:2048`, `core=-1`).
pub fn parse_ulimit(s: &str) -> Result<Rlimit, RunError> {
    let bad = || RunError::Invalid(format!("invalid ulimit {s:?}: want type=soft[:hard]"));
    let (name, vals) = s.split_once('=').ok_or_else(bad)?;
    let known = [
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
        "as",
    ];
    let name = name.trim().to_ascii_lowercase();
    if !known.contains(&name.as_str()) {
        return Err(RunError::Invalid(format!("invalid ulimit type {name:?}")));
    }
    let num = |v: &str| -> Result<u64, RunError> {
        if v == "-1" || v == "unlimited" {
            Ok(u64::MAX)
        } else {
            v.parse::<u64>().map_err(|_| bad())
        }
    };
    let (soft, hard) = match vals.split_once(':') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(vals)?, num(vals)?),
    };
    if soft > hard {
        return Err(RunError::Invalid(format!(
            "invalid ulimit {s:?}: soft limit {soft} exceeds hard limit {hard}"
        )));
    }
    Ok(Rlimit {
        name: format!("RLIMIT_{}", name.to_ascii_uppercase()),
        soft,
        hard,
    })
}

fn mount_json(dest: &str, typ: &str, source: &str, options: &[&str]) -> Value {
    json!({"destination": dest, "type": typ, "source": source, "options": options})
}

/// Build the spec.
pub fn generate(inp: &SpecInputs<'_>) -> Result<Spec, RunError> {
    let opts = inp.opts;
    if inp.command.is_empty() {
        return Err(RunError::Invalid("command must be specified".into()));
    }
    // Environment: image, then --env; PATH, HOSTNAME, HOME defaults.
    let mut env: Vec<String> = proxy_env(|k| std::env::var(k).ok());
    for e in inp.config.env.iter().flatten() {
        if e.contains('=') {
            set_env(&mut env, e);
        }
    }
    for e in &opts.env {
        if e.contains('=') {
            set_env(&mut env, e);
        } else if let Ok(v) = std::env::var(e) {
            // `--env NAME` takes the value from hod's own environment, like buildah.
            set_env(&mut env, &format!("{e}={v}"));
        }
    }
    if !has_env(&env, "PATH") {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    if inp.terminal && !has_env(&env, "TERM") {
        env.push("TERM=xterm".into());
    }
    if !has_env(&env, "HOSTNAME") {
        env.push(format!("HOSTNAME={}", inp.hostname));
    }
    if !has_env(&env, "HOME") {
        env.push(format!("HOME={}", inp.user.home));
    }

    let cwd = opts
        .workdir
        .clone()
        .or_else(|| inp.config.working_dir.clone().filter(|w| !w.is_empty()))
        .unwrap_or_else(|| "/".to_string());
    let cwd = crate::rootfs::clean_container_path(&cwd);

    let sec = &opts.security;
    let capabilities = capability_set(
        sec.base_capabilities.as_deref(),
        &sec.cap_add,
        &sec.cap_drop,
    )?;

    let mut rlimits: Vec<Rlimit> = Vec::new();
    for r in &opts.resources.ulimits {
        rlimits.retain(|x| x.name != r.name);
        rlimits.push(r.clone());
    }
    for d in &inp.default_rlimits {
        if !rlimits.iter().any(|r| r.name == d.name) {
            rlimits.push(d.clone());
        }
    }

    // Namespaces.
    let ns = &opts.namespaces;
    // A new namespace (`{"type"}`), a joined one (`{"type", "path"}`), or the host's (none).
    let ns_entry = |typ: &str, m: &Option<NamespaceMode>| match m {
        Some(NamespaceMode::Host) => None,
        Some(NamespaceMode::Path(p)) => Some(json!({"type": typ, "path": p})),
        None | Some(NamespaceMode::Private) => Some(json!({"type": typ})),
    };
    let private = |m: &Option<NamespaceMode>| matches!(m, None | Some(NamespaceMode::Private));
    let mut namespaces = vec![json!({"type": "mount"})];
    namespaces.extend(ns_entry("pid", &ns.pid));
    namespaces.extend(ns_entry("ipc", &ns.ipc));
    namespaces.extend(ns_entry("uts", &ns.uts));
    match opts.network() {
        NetworkMode::Host => {}
        NetworkMode::Path(p) => namespaces.push(json!({"type": "network", "path": p})),
        NetworkMode::Private | NetworkMode::None => namespaces.push(json!({"type": "network"})),
    }
    // The cgroup namespace is hod's unless `--cgroupns private` asks for one.
    if matches!(
        ns.cgroup,
        Some(NamespaceMode::Private | NamespaceMode::Path(_))
    ) {
        namespaces.extend(ns_entry("cgroup", &ns.cgroup));
    }
    if let Some(NamespaceMode::Path(p)) = &ns.user {
        namespaces.push(json!({"type": "user", "path": p}));
    } else if inp.id_maps.is_some() {
        namespaces.push(json!({"type": "user"}));
    }

    let sys_opts: &[&str] = &["nosuid", "noexec", "nodev", "ro"];
    let shm_size_opt = match opts.resources.shm_size {
        Some(v) => format!("size={v}"),
        None => "size=65536k".to_string(),
    };
    let mut mounts = vec![
        mount_json("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount_json(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "noexec", "strictatime", "mode=755", "size=65536k"],
        ),
        mount_json(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount_json(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm_size_opt],
        ),
        mount_json(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount_json("/sys", "sysfs", "sysfs", sys_opts),
    ];
    // In a user namespace that does not own the network namespace (the host's), sysfs
    // cannot be mounted: bind the host's read-only, as buildah does. Likewise mqueue with
    // the host's IPC namespace.
    let new_userns = inp.id_maps.is_some() && !matches!(ns.user, Some(NamespaceMode::Host));
    if new_userns && opts.network() == NetworkMode::Host {
        if let Some(m) = mounts.iter_mut().find(|m| m["destination"] == "/sys") {
            *m = mount_json(
                "/sys",
                "bind",
                "/sys",
                &["rbind", "nosuid", "noexec", "nodev", "ro"],
            );
        }
    }
    // The cgroups, where sysfs is mounted (not bound), as buildah adds them, but read-only:
    // buildah's `rw` would let a RUN's root write hod's own cgroup (or the host's root
    // one), as hod makes no cgroup per RUN.
    if mounts
        .iter()
        .any(|m| m["destination"] == "/sys" && m["type"] == "sysfs")
    {
        mounts.push(mount_json(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["rprivate", "nosuid", "noexec", "nodev", "relatime", "ro"],
        ));
    }
    if new_userns && matches!(ns.ipc, Some(NamespaceMode::Host)) {
        if let Some(m) = mounts
            .iter_mut()
            .find(|m| m["destination"] == "/dev/mqueue")
        {
            *m = mount_json(
                "/dev/mqueue",
                "bind",
                "/dev/mqueue",
                &["rbind", "nosuid", "noexec", "nodev"],
            );
        }
    }
    let mut user_dests: Vec<PathBuf> = Vec::new();
    for m in &inp.extra_mounts {
        user_dests.push(m.destination().clone());
        mounts.push(
            serde_json::to_value(m)
                .map_err(|e| RunError::Invalid(format!("encoding mount: {e}")))?,
        );
    }
    let etc = [
        ("/etc/hosts", &inp.etc.hosts),
        ("/etc/resolv.conf", &inp.etc.resolv_conf),
        ("/etc/hostname", &inp.etc.hostname),
        ("/run/.containerenv", &inp.etc.containerenv),
    ];
    for (dest, src) in etc {
        if let Some(src) = src {
            // A user mount on the same destination wins.
            if user_dests.iter().any(|d| d == Path::new(dest)) {
                continue;
            }
            mounts.push(mount_json(
                dest,
                "bind",
                &src.to_string_lossy(),
                &["bind", "rprivate"],
            ));
        }
    }

    let cap_names: Vec<&str> = capabilities.clone();
    // `--security-opt mask=` adds to the masked paths, `unmask=` (or `unmask=ALL`) removes.
    let unmask_all = sec.unmask.iter().any(|u| u == "ALL");
    let mut masked: Vec<String> = MASKED_PATHS
        .iter()
        .map(|p| p.to_string())
        .filter(|p| !unmask_all && !sec.unmask.contains(p))
        .collect();
    for m in &sec.mask {
        if !masked.contains(m) {
            masked.push(m.clone());
        }
    }
    let mut linux = json!({
        "namespaces": namespaces,
        "maskedPaths": masked,
        "readonlyPaths": READONLY_PATHS,
        "rootfsPropagation": "rprivate",
        "devices": serde_json::to_value(&inp.devices).map_err(|e| RunError::Invalid(format!("encoding devices: {e}")))?,
    });
    if sec.seccomp != Some(super::SeccompProfile::Unconfined) {
        let builtin;
        let profile = match &inp.seccomp_profile {
            Some(p) => p,
            None => {
                builtin = super::seccomp::Profile::builtin();
                &builtin
            }
        };
        let kernel = super::seccomp::kernel_version();
        if let Some(resolved) =
            super::seccomp::resolve(profile, &cap_names, super::seccomp::native_arch(), kernel)?
        {
            linux["seccomp"] = serde_json::to_value(resolved)
                .map_err(|e| RunError::Invalid(format!("encoding the seccomp profile: {e}")))?;
        }
    }
    let r = &opts.resources;
    if r.memory.is_some() || r.memory_swap.is_some() || r.cpu_shares.is_some() {
        let mut res = json!({});
        if let Some(limit) = r.memory {
            res["memory"]["limit"] = json!(limit);
        }
        if let Some(swap) = r.memory_swap {
            res["memory"]["swap"] = json!(swap);
        }
        if let Some(shares) = r.cpu_shares {
            res["cpu"] = json!({"shares": shares});
        }
        linux["resources"] = res;
    }
    if let Some((u, g)) = &inp.id_maps {
        let conv = |m: &Vec<IdMap>| -> Value {
            m.iter()
                .map(
                    |x| json!({"containerID": x.container_id, "hostID": x.host_id, "size": x.size}),
                )
                .collect()
        };
        linux["uidMappings"] = conv(u);
        linux["gidMappings"] = conv(g);
    }

    let mut doc = json!({
        "ociVersion": "1.0.2",
        "root": {"path": inp.rootfs.to_string_lossy(), "readonly": false},
        "process": {
            "terminal": inp.terminal,
            "user": {
                "uid": inp.user.uid,
                "gid": inp.user.gid,
                "additionalGids": inp.user.additional_gids,
            },
            "args": inp.command,
            "env": env,
            "cwd": cwd.to_string_lossy(),
            "capabilities": {
                "bounding": cap_names,
                "effective": cap_names,
                "permitted": cap_names,
                "inheritable": [],
                "ambient": [],
            },
            "rlimits": rlimits.iter().map(|r| json!({"type": r.name, "soft": r.soft, "hard": r.hard})).collect::<Vec<_>>(),
            "noNewPrivileges": sec.no_new_privileges.unwrap_or(false),
        },
        "mounts": mounts,
        "linux": linux,
    });
    // A hostname needs a new UTS namespace (runc refuses it otherwise; a joined one is not
    // hod's to rename).
    if private(&ns.uts) {
        doc["hostname"] = json!(inp.hostname);
    }
    if let Some(profile) = sec.apparmor.as_deref().filter(|p| *p != "unconfined") {
        doc["process"]["apparmorProfile"] = json!(profile);
    }
    serde_json::from_value(doc)
        .map_err(|e| RunError::Invalid(format!("building the runtime spec: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs<'a>(
        cfg: &'a ContainerConfig,
        opts: &'a RunOptions,
        cmd: &'a [String],
    ) -> SpecInputs<'a> {
        SpecInputs {
            rootfs: Path::new("/tmp/rootfs"),
            config: cfg,
            opts,
            command: cmd,
            hostname: "abcdef012345".into(),
            user: ResolvedUser {
                uid: 0,
                gid: 0,
                additional_gids: vec![],
                home: "/root".into(),
            },
            etc: EtcFiles {
                hosts: Some("/run/x/hosts".into()),
                ..Default::default()
            },
            extra_mounts: vec![],
            devices: vec![],
            default_rlimits: vec![Rlimit {
                name: "RLIMIT_NOFILE".into(),
                soft: 1024,
                hard: 4096,
            }],
            id_maps: None,
            terminal: false,
            seccomp_profile: None,
        }
    }

    fn caps_of(spec: &Spec) -> u64 {
        let c = spec
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap();
        let v = serde_json::to_value(c.effective()).unwrap();
        caps::mask(v.as_array().unwrap().iter().map(|x| x.as_str().unwrap()))
    }

    #[test]
    fn defaults_match_buildah() {
        let cfg = ContainerConfig::default();
        let opts = RunOptions::default();
        let cmd = vec!["id".to_string()];
        let spec = generate(&inputs(&cfg, &opts, &cmd)).unwrap();
        assert_eq!(caps_of(&spec), 0x800405fb);
        let p = spec.process().as_ref().unwrap();
        let env = p.env().clone().unwrap();
        assert!(env.contains(&format!("PATH={DEFAULT_PATH}")));
        assert!(env.contains(&"HOME=/root".to_string()));
        assert!(env.contains(&"HOSTNAME=abcdef012345".to_string()));
        assert_eq!(p.cwd(), Path::new("/"));
        assert_eq!(p.no_new_privileges(), Some(false));
        let c = p.capabilities().as_ref().unwrap();
        assert!(c.inheritable().as_ref().unwrap().is_empty());
        assert!(c.ambient().as_ref().unwrap().is_empty());
        let dests: Vec<String> = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| m.destination().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/sys",
                "/sys/fs/cgroup",
                "/etc/hosts"
            ]
        );
        let ns: Vec<String> = spec
            .linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| n.typ().to_string())
            .collect();
        assert_eq!(ns, ["mnt", "pid", "ipc", "uts", "net"]);
        assert!(spec.linux().as_ref().unwrap().seccomp().is_some());
        assert_eq!(spec.hostname().as_deref(), Some("abcdef012345"));
        let rl = p.rlimits().as_ref().unwrap();
        assert_eq!(rl.len(), 1);
        assert_eq!((rl[0].soft(), rl[0].hard()), (1024, 4096));
    }

    #[test]
    fn env_workdir_and_options() {
        let cfg = ContainerConfig {
            env: Some(vec![
                "PATH=/bin".into(),
                "A=1".into(),
                "HOME=/home/img".into(),
                // S40: a bare name in the image never picks up hod's environment.
                "CARGO".into(),
            ]),
            working_dir: Some("/srv/../app".into()),
            ..Default::default()
        };
        let opts = RunOptions {
            env: vec!["A=2".into(), "B=3".into()],
            security: super::super::Security {
                cap_add: vec!["sys_admin".into(), "NET_RAW".into()],
                cap_drop: vec!["CAP_NET_RAW".into(), "chown".into()],
                ..Default::default()
            },
            resources: super::super::Resources::parse(None, None, &["nofile=10:20".into()])
                .unwrap(),
            namespaces: super::super::Namespaces {
                network: Some(NetworkMode::Host),
                pid: Some(NamespaceMode::Host),
                ..Default::default()
            },
            ..Default::default()
        };
        let cmd = vec!["sh".to_string()];
        let spec = generate(&inputs(&cfg, &opts, &cmd)).unwrap();
        let p = spec.process().as_ref().unwrap();
        let env = p.env().clone().unwrap();
        assert_eq!(
            env.iter()
                .filter(|e| e.starts_with("A="))
                .collect::<Vec<_>>(),
            ["A=2"]
        );
        assert!(env.contains(&"PATH=/bin".to_string()));
        assert!(env.contains(&"HOME=/home/img".to_string()));
        assert!(env.contains(&"B=3".to_string()));
        assert!(std::env::var("CARGO").is_ok(), "cargo sets CARGO for tests");
        assert!(!env.iter().any(|e| e.starts_with("CARGO")), "{env:?}");
        assert_eq!(p.cwd(), Path::new("/app"));
        let m = caps_of(&spec);
        assert_ne!(m & (1 << 21), 0, "sys_admin added");
        assert_eq!(m & (1 << 13), 0, "net_raw added and dropped: dropped");
        assert_eq!(m & 1, 0, "chown dropped");
        let rl = p.rlimits().as_ref().unwrap();
        assert_eq!((rl[0].soft(), rl[0].hard()), (10, 20));
        let ns: Vec<String> = spec
            .linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| n.typ().to_string())
            .collect();
        assert_eq!(ns, ["mnt", "ipc", "uts"]);
    }

    #[test]
    fn security_resources_and_namespaces_reach_the_spec() {
        use super::super::{Namespaces, Resources, Security};
        let cfg = ContainerConfig::default();
        let cmd = vec!["id".to_string()];
        let opts = RunOptions {
            security: Security::parse_opts(&[
                "no-new-privileges".into(),
                "mask=/proc/extra".into(),
                "unmask=/proc/kcore".into(),
                "apparmor=myprofile".into(),
            ])
            .unwrap(),
            resources: Resources {
                cpu_shares: Some(512),
                memory_swap: Some(-1),
                ..Resources::parse(Some("256m"), Some("1m"), &[]).unwrap()
            },
            namespaces: Namespaces {
                cgroup: Some(NamespaceMode::Private),
                uts: Some(NamespaceMode::Host),
                ..Default::default()
            },
            ..Default::default()
        };
        let spec = generate(&inputs(&cfg, &opts, &cmd)).unwrap();
        let v = serde_json::to_value(&spec).unwrap();
        assert_eq!(v["process"]["noNewPrivileges"], true);
        assert_eq!(v["process"]["apparmorProfile"], "myprofile");
        assert_eq!(v["linux"]["resources"]["memory"]["limit"], 256 << 20);
        assert_eq!(v["linux"]["resources"]["memory"]["swap"], -1);
        assert_eq!(v["linux"]["resources"]["cpu"]["shares"], 512);
        let masked: Vec<&str> = v["linux"]["maskedPaths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        assert!(masked.contains(&"/proc/extra") && !masked.contains(&"/proc/kcore"));
        let ns: Vec<&str> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(ns, ["mount", "pid", "ipc", "network", "cgroup"]);
        assert!(v.get("hostname").is_none(), "host UTS: no hostname");
        let shm = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/dev/shm")
            .unwrap();
        assert!(shm["options"]
            .as_array()
            .unwrap()
            .contains(&json!("size=1048576")));
        // unconfined: no filter; a profile file's content is used as given.
        let mut unconfined = opts.clone();
        unconfined.security.seccomp = Some(super::super::SeccompProfile::Unconfined);
        let spec = generate(&inputs(&cfg, &unconfined, &cmd)).unwrap();
        assert!(spec.linux().as_ref().unwrap().seccomp().is_none());
        let mut i = inputs(&cfg, &opts, &cmd);
        i.seccomp_profile =
            Some(serde_json::from_value(json!({"defaultAction": "SCMP_ACT_LOG"})).unwrap());
        let v = serde_json::to_value(generate(&i).unwrap()).unwrap();
        assert_eq!(v["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_LOG");
    }

    #[test]
    fn errors() {
        let cfg = ContainerConfig::default();
        let empty: Vec<String> = vec![];
        let opts = RunOptions::default();
        assert!(generate(&inputs(&cfg, &opts, &empty))
            .unwrap_err()
            .to_string()
            .contains("command must be specified"));
        let bad = RunOptions {
            security: super::super::Security {
                cap_add: vec!["CAP_BOGUS".into()],
                ..Default::default()
            },
            ..Default::default()
        };
        let cmd = vec!["id".to_string()];
        assert!(generate(&inputs(&cfg, &bad, &cmd)).is_err());
    }

    #[test]
    fn ulimits_table() {
        let ok: &[(&str, &str, u64, u64)] = &[
            ("nofile=1024", "RLIMIT_NOFILE", 1024, 1024),
            ("nofile=1024:2048", "RLIMIT_NOFILE", 1024, 2048),
            ("core=-1", "RLIMIT_CORE", u64::MAX, u64::MAX),
            ("NPROC=5:unlimited", "RLIMIT_NPROC", 5, u64::MAX),
        ];
        for (s, n, soft, hard) in ok {
            assert_eq!(
                parse_ulimit(s).unwrap(),
                Rlimit {
                    name: n.to_string(),
                    soft: *soft,
                    hard: *hard
                },
                "{s}"
            );
        }
        for s in ["nofile", "bogus=1", "nofile=a", "nofile=2:1", "=1"] {
            assert!(parse_ulimit(s).is_err(), "{s}");
        }
    }

    #[test]
    fn seccomp_profile_depends_on_caps() {
        // The default spec carries containers/common's profile resolved for the capabilities:
        // setns is refused (EPERM) without CAP_SYS_ADMIN and allowed with it.
        let cfg = ContainerConfig::default();
        let cmd = vec!["true".to_string()];
        let setns_rules = |opts: &RunOptions| -> Vec<Value> {
            let v = serde_json::to_value(generate(&inputs(&cfg, opts, &cmd)).unwrap()).unwrap();
            assert_eq!(v["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
            assert_eq!(v["linux"]["seccomp"]["defaultErrnoRet"], 38);
            v["linux"]["seccomp"]["syscalls"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["names"].as_array().unwrap().contains(&json!("setns")))
                .cloned()
                .collect()
        };
        let opts = RunOptions::default();
        assert!(setns_rules(&opts)
            .iter()
            .any(|r| r["action"] == "SCMP_ACT_ERRNO" && r["errnoRet"] == 1));
        let mut admin = opts.clone();
        admin.security.cap_add = vec!["SYS_ADMIN".into()];
        let rules = setns_rules(&admin);
        assert!(!rules.is_empty() && rules.iter().all(|r| r["action"] == "SCMP_ACT_ALLOW"));
    }
}
