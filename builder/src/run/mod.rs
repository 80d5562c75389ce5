//! `run`: an OCI runtime spec from the working container and options, executed by the
//! embedded runtime, `chroot` isolation, or an external runtime.
//!
//! ```text
//! Builder::run ─ mount ─ user::resolve ─ mounts::{parse,materialize} ─ etc files
//!      └─> spec::generate (pure) ─> execute ─┬─ embedded::run ─> re-exec'd helper (sys::container)
//!                                             └─ oci::run ─> runc run --bundle
//! ```
use std::path::{Path, PathBuf};

use crate::builder::Builder;
use crate::error::{Error, Result};
use crate::store::Store;

pub mod bare;
pub mod embedded;
pub mod mounts;
pub mod oci;
pub mod policy;
pub mod seccomp;
pub mod spec;
pub mod unshare;
pub mod user;

pub use policy::{
    parse_size, Dns, HostEntry, Namespaces, Resources, RunDefaults, SeccompProfile, Security,
};
pub use spec::{generate, EtcFiles, IdMap, Rlimit, SpecInputs};
pub use user::ResolvedUser;

/// Run errors.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The command ran and exited with this status (passed through as hod's own).
    #[error("command exited with status {0}")]
    ExitStatus(i32),
    /// Bad options: user, mounts, capabilities, ulimits.
    #[error("{0}")]
    Invalid(String),
    /// A host filesystem operation failed.
    #[error("{op} {}", path.display())]
    Io {
        /// What was being done.
        op: String,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The runtime could not set up the container.
    #[error("setting up the container: {0}")]
    Setup(String),
}

/// `--isolation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// The embedded OCI runtime (or `--runtime`).
    #[default]
    Oci,
    /// chroot plus the mounts that are allowed, for hosts without CAP_SYS_ADMIN.
    Chroot,
    /// OCI with a user namespace, host network and UTS namespaces.
    Rootless,
}

impl Isolation {
    /// Parse `oci`, `chroot`, `rootless` (also `BUILDAH_ISOLATION`'s values; `runc`, `crun`
    /// and `default` mean `oci`).
    pub fn parse(s: &str) -> std::result::Result<Isolation, RunError> {
        match s.to_ascii_lowercase().as_str() {
            "" | "default" | "oci" | "runc" | "crun" => Ok(Isolation::Oci),
            "chroot" => Ok(Isolation::Chroot),
            "rootless" => Ok(Isolation::Rootless),
            other => Err(RunError::Invalid(format!(
                "unrecognized isolation type {other:?}"
            ))),
        }
    }

    /// `BUILDAH_ISOLATION`, when it is set and not empty.
    pub fn from_env() -> std::result::Result<Option<Isolation>, RunError> {
        match std::env::var("BUILDAH_ISOLATION") {
            Ok(v) if !v.is_empty() => Isolation::parse(&v).map(Some),
            _ => Ok(None),
        }
    }

    /// The isolation a container gets when `from` is not told: `BUILDAH_ISOLATION`, else
    /// `rootless` for a rootless user (as buildah), else OCI where this environment lets hod
    /// create namespaces, else chroot ([`crate::environment::Environment::default_isolation`]).
    pub fn default_from_env() -> std::result::Result<Isolation, RunError> {
        Ok(Isolation::from_env()?.unwrap_or_else(|| {
            if crate::sys::userns::identity().is_rootless() {
                Isolation::Rootless
            } else {
                crate::environment::Environment::get().default_isolation()
            }
        }))
    }

    /// buildah's name for it (`oci`, `chroot`, `rootless`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Isolation::Oci => "oci",
            Isolation::Chroot => "chroot",
            Isolation::Rootless => "rootless",
        }
    }
}

/// A builder state's `Isolation` (a string; empty in states written before it was typed).
pub(crate) fn isolation_from_state<'de, D>(d: D) -> std::result::Result<Isolation, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::Deserialize;
    let s = Option::<String>::deserialize(d)?.unwrap_or_default();
    Isolation::parse(&s).map_err(serde::de::Error::custom)
}

/// `--network`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// A new network namespace with loopback only.
    #[default]
    Private,
    /// Same as private (no interfaces besides loopback).
    None,
    /// The host's network namespace.
    Host,
    /// An existing network namespace (`/proc/PID/ns/net`, `ns:PATH`), joined.
    Path(PathBuf),
}

impl NetworkMode {
    /// Parse `private`, `none`, `host`, a namespace path (`""`/`default` = private).
    pub fn parse(s: &str) -> std::result::Result<NetworkMode, RunError> {
        match s {
            // buildah takes "container" (its NetworkDefault spelling) as private too.
            "" | "default" | "private" | "bridge" | "container" => Ok(NetworkMode::Private),
            "none" => Ok(NetworkMode::None),
            "host" => Ok(NetworkMode::Host),
            other => match namespace_path(other) {
                Some(p) => Ok(NetworkMode::Path(p)),
                None => Err(RunError::Invalid(format!(
                    "unable to find network with name or ID {other}: network not found"
                ))),
            },
        }
    }
}

/// `/PATH` or `ns:/PATH`: a namespace to join (buildah's spellings).
fn namespace_path(s: &str) -> Option<PathBuf> {
    let p = s.strip_prefix("ns:").unwrap_or(s);
    p.starts_with('/').then(|| PathBuf::from(p))
}

/// `--pid`, `--ipc`, `--uts`, `--cgroupns`, `--userns`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NamespaceMode {
    /// A new namespace.
    #[default]
    Private,
    /// The host's.
    Host,
    /// An existing namespace (`/proc/PID/ns/TYPE`, `ns:PATH`), joined.
    Path(PathBuf),
}

impl NamespaceMode {
    /// Parse `""`, `private` (also `container`), `host`, a namespace path (`/…`, `ns:/…`).
    pub fn parse(s: &str) -> std::result::Result<NamespaceMode, RunError> {
        match s {
            "" | "private" | "container" => Ok(NamespaceMode::Private),
            "host" => Ok(NamespaceMode::Host),
            other => namespace_path(other)
                .map(NamespaceMode::Path)
                .ok_or_else(|| {
                    RunError::Invalid(format!(
                        "namespace mode {other:?} is not supported (use private, host or a path)"
                    ))
                }),
        }
    }
}

/// Options of `hod run` (and RUN in `bud`). Settings left unset here come from the
/// container's [`RunDefaults`] (what `from` was given), see [`RunOptions::with_defaults`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RunOptions {
    /// `--add-history`: after a successful run, record `<shell> <command>` as an
    /// empty-layer history entry of the next commit (buildah run's text).
    pub add_history: bool,
    /// Isolation; `None` = `BUILDAH_ISOLATION`, else the container's (from `from`).
    pub isolation: Option<Isolation>,
    /// An external OCI runtime to use instead of the embedded one; `None` =
    /// `BUILDAH_RUNTIME` when set, else the embedded runtime.
    pub runtime: Option<PathBuf>,
    /// Global flags for the external runtime (`log-format=json`).
    pub runtime_flags: Vec<String>,
    /// `user[:group]`; default: the image config's user, else root.
    pub user: Option<String>,
    /// Working directory; default: the image config's, else `/`.
    pub workdir: Option<String>,
    /// Extra `KEY=value` (or `KEY`, taken from hod's environment).
    pub env: Vec<String>,
    /// Hostname; default: the container ID's first 12 characters.
    pub hostname: Option<String>,
    /// Keep the image's `/etc/hosts`.
    pub no_hosts: bool,
    /// Keep the image's `/etc/hostname`.
    pub no_hostname: bool,
    /// `--network`, `--pid`, `--ipc`, `--uts`, `--cgroupns`, `--userns` (chroot isolation
    /// always uses the host's network, PID and IPC namespaces).
    pub namespaces: Namespaces,
    /// Capabilities and `--security-opt`.
    pub security: Security,
    /// `--memory`, `--shm-size`, `--ulimit`.
    pub resources: Resources,
    /// `--dns*`, `--add-host`.
    pub dns: Dns,
    /// `--group-add`: supplementary groups (names from the rootfs's /etc/group, or GIDs).
    pub group_add: Vec<String>,
    /// `--device host[:container][:perms]`.
    pub devices: Vec<String>,
    /// `-v SRC:DEST[:OPTS]`.
    pub volumes: Vec<String>,
    /// `--mount type=…`.
    pub mounts: Vec<String>,
    /// `--cgroup-parent` (of `from`/`bud`): the run's cgroup is made under this one
    /// (cgroupfs layout: relative to hod's own cgroup in each hierarchy unless absolute).
    pub cgroup_parent: Option<String>,
    /// Directory relative `--mount type=bind` sources are taken from.
    pub context_dir: Option<PathBuf>,
    /// Allocate a pty; `None` = when stdin is a terminal.
    pub terminal: Option<bool>,
    /// chroot instead of pivot_root (also when `BUILDAH_NOPIVOT` is set).
    pub no_pivot: bool,
    /// User-namespace UID maps (`--userns-uid-map`); non-empty = a user namespace.
    pub uid_map: Vec<IdMap>,
    /// User-namespace GID maps.
    pub gid_map: Vec<IdMap>,
    /// The base image's name, for `/run/.containerenv` (`image=`).
    pub image_name: String,
    /// The base image's ID, for `/run/.containerenv` (`imageid=`).
    pub image_id: String,
    /// Send the command's stdout to this file instead of hod's (`bud -q` discards it).
    pub stdout: Option<PathBuf>,
    /// Give the command /dev/null as stdin instead of hod's (`bud --jobs` with stages run
    /// side by side, as buildah).
    pub null_stdin: bool,
}

impl RunOptions {
    /// These options with the container's defaults applied underneath: lists add up (the
    /// defaults first, so a run's `--cap-drop` wins over a default `--cap-add`), a setting
    /// given here wins over the default.
    pub fn with_defaults(&self, d: &RunDefaults) -> RunOptions {
        let cat = |a: &[String], b: &[String]| a.iter().chain(b).cloned().collect::<Vec<_>>();
        let mut o = self.clone();
        o.namespaces = self.namespaces.or(&d.namespaces);
        o.security = self.security.or(&d.security);
        o.resources = self.resources.or(&d.resources);
        o.dns = self.dns.or(&d.dns);
        o.group_add = cat(&d.group_add, &self.group_add);
        o.devices = cat(&d.devices, &self.devices);
        o.volumes = cat(&d.volumes, &self.volumes);
        o.no_hosts |= d.no_hosts;
        if o.cgroup_parent.is_none() {
            o.cgroup_parent = d.cgroup_parent.clone();
        }
        o.no_hostname |= d.no_hostname;
        o
    }

    /// The network mode in effect (private unless said).
    pub fn network(&self) -> NetworkMode {
        self.namespaces.network.clone().unwrap_or_default()
    }
}

impl IdMap {
    /// Parse `container:host:size[,container:host:size…]` (`--userns-uid-map`).
    pub fn parse_list(s: &str) -> std::result::Result<Vec<IdMap>, RunError> {
        s.split(',')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let f: Vec<&str> = p.split(':').collect();
                let n = |x: &str| {
                    x.parse::<u32>()
                        .map_err(|_| RunError::Invalid(format!("invalid ID map {p:?}")))
                };
                match f.as_slice() {
                    [c, h, z] => Ok(IdMap {
                        container_id: n(c)?,
                        host_id: n(h)?,
                        size: n(z)?,
                    }),
                    _ => Err(RunError::Invalid(format!(
                        "invalid ID map {p:?}: want container:host:size"
                    ))),
                }
            })
            .collect()
    }
}

/// How [`execute`] runs a spec.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ExecOptions {
    /// Isolation mode.
    pub isolation: Isolation,
    /// chroot instead of pivot_root.
    pub no_pivot: bool,
    /// Relay a pty.
    pub terminal: bool,
    /// Where the payload / `config.json` are written (exists, private to this run).
    pub bundle_dir: PathBuf,
    /// An external runtime.
    pub runtime: Option<PathBuf>,
    /// Its global flags.
    pub runtime_flags: Vec<String>,
    /// Container ID (names the external runtime's container).
    pub container_id: String,
    /// Send the command's stdout to this file instead of hod's (tests, captured RUNs).
    pub stdout: Option<PathBuf>,
    /// Send the command's stderr to this file instead of hod's.
    pub stderr: Option<PathBuf>,
    /// /dev/null as the command's stdin (ignored with a terminal).
    pub null_stdin: bool,
}

/// Run `spec` over `rootfs`. `Ok` is the command's exit status; a command that could not be
/// executed is an error carrying status 1 (what runc and buildah give), runtime failures are
/// plain errors (hod exits 125).
pub fn execute(spec: &oci_spec::runtime::Spec, rootfs: &Path, opts: &ExecOptions) -> Result<i32> {
    if let Some(rt) = &opts.runtime {
        return Ok(oci::run(rt, spec, rootfs, opts)?);
    }
    let (code, reports) = embedded::run(spec, rootfs, opts)?;
    if let Some(msg) = reports.setup.first() {
        return Err(RunError::Setup(msg.clone()).into());
    }
    if let Some(msg) = reports.exec.first() {
        return Err(Error::from(RunError::ExitStatus(code)).context(format!("running {msg}")));
    }
    Ok(code)
}

/// Open a file the command's output goes to: created when missing, appended to (so
/// `/dev/stderr` redirected to a file is not truncated).
pub(crate) fn open_output(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

/// `--device HOST[:CTR][:rwm]` where HOST may be a directory: each device node below it is
/// added as `CTR/<its name>` (buildah's directory of devices); otherwise [`parse_device`].
pub fn parse_devices(
    d: &str,
) -> std::result::Result<Vec<oci_spec::runtime::LinuxDevice>, RunError> {
    use std::os::unix::fs::FileTypeExt;
    let mut parts = d.splitn(3, ':');
    let host = parts.next().unwrap_or("");
    if !Path::new(host).is_dir() {
        return Ok(vec![parse_device(d)?]);
    }
    let rest: Vec<&str> = parts.collect();
    let (ctr, perms) = match rest.as_slice() {
        [] => (host, None),
        [c] if c.starts_with('/') => (*c, None),
        [p] => (host, Some(*p)),
        [c, p] => (*c, Some(*p)),
        _ => return Err(RunError::Invalid(format!("invalid device {d:?}"))),
    };
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(host).sort_by_file_name() {
        let e =
            e.map_err(|e| RunError::Invalid(format!("reading device directory {host}: {e}")))?;
        let ft = e.file_type();
        if !(ft.is_char_device() || ft.is_block_device()) {
            continue;
        }
        let name = e.file_name().to_string_lossy();
        let target = format!("{}/{name}", ctr.trim_end_matches('/'));
        let spec = match perms {
            Some(p) => format!("{}:{target}:{p}", e.path().display()),
            None => format!("{}:{target}", e.path().display()),
        };
        out.push(parse_device(&spec)?);
    }
    Ok(out)
}

/// `--device /dev/x[:/dev/y][:rwm]` → an OCI device (the host node is stat'ed).
pub fn parse_device(d: &str) -> std::result::Result<oci_spec::runtime::LinuxDevice, RunError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let parts: Vec<&str> = d.split(':').collect();
    let (host, ctr, _perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, c] if c.starts_with('/') => (*h, *c, "rwm"),
        [h, p] => (*h, *h, *p),
        [h, c, p] => (*h, *c, *p),
        _ => return Err(RunError::Invalid(format!("invalid device {d:?}"))),
    };
    if !ctr.starts_with('/') {
        return Err(RunError::Invalid(format!(
            "invalid device {d:?}: {ctr:?} is not an absolute path"
        )));
    }
    let md = std::fs::metadata(host).map_err(|e| RunError::Io {
        op: "checking device".into(),
        path: host.into(),
        source: e,
    })?;
    let ft = md.file_type();
    let typ = if ft.is_char_device() {
        "c"
    } else if ft.is_block_device() {
        "b"
    } else {
        return Err(RunError::Invalid(format!("{host} is not a device node")));
    };
    let rdev = md.rdev();
    let doc = serde_json::json!({
        "path": crate::rootfs::clean_container_path(ctr),
        "type": typ,
        "major": nix::sys::stat::major(rdev),
        "minor": nix::sys::stat::minor(rdev),
        "fileMode": md.mode() & 0o7777,
        "uid": md.uid(),
        "gid": md.gid(),
    });
    serde_json::from_value(doc).map_err(|e| RunError::Invalid(format!("device {d:?}: {e}")))
}

/// The run's /etc/hosts: `--add-host` entries first (as buildah's etchosts), the host's,
/// then the container's own names.
fn hosts_content(hostname: &str, name: &str, host_network: bool, dns: &Dns) -> String {
    let mut s = dns.hosts_lines();
    s.push_str(
        &std::fs::read_to_string("/etc/hosts")
            .unwrap_or_else(|_| "127.0.0.1\tlocalhost\n::1\tlocalhost\n".into()),
    );
    if !s.ends_with('\n') && !s.is_empty() {
        s.push('\n');
    }
    if !host_network {
        let names = if name.is_empty() || name == hostname {
            hostname.to_string()
        } else {
            format!("{hostname} {name}")
        };
        s.push_str(&format!("127.0.0.1\t{names}\n::1\t{names}\n"));
    }
    s
}

/// A failed file-system operation on `path` during a run.
fn io_err(op: &str, path: &Path, e: std::io::Error) -> RunError {
    RunError::Io {
        op: op.into(),
        path: path.to_path_buf(),
        source: e,
    }
}

/// The `/run/.containerenv` buildah provides (shell-sourceable `key="value"` lines).
fn containerenv_content(name: &str, id: &str, image: &str, image_id: &str) -> String {
    let rootless = u8::from(!nix::unistd::geteuid().is_root());
    format!(
        "engine=\"buildah-hod-{}\"\nname={name:?}\nid={id:?}\nimage={image:?}\nimageid={image_id:?}\nrootless={rootless}\n",
        env!("CARGO_PKG_VERSION")
    )
}

fn resolv_content(host_network: bool, dns: &Dns) -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    if host_network {
        return dns.resolv_conf(&host);
    }
    // Local resolvers are unreachable from a private network namespace.
    let kept: Vec<&str> = host
        .lines()
        .filter(|l| {
            let mut f = l.split_whitespace();
            !(f.next() == Some("nameserver")
                && f.next()
                    .is_some_and(|a| a.starts_with("127.") || a == "::1"))
        })
        .collect();
    let mut s = kept.join("\n");
    if !s.is_empty() {
        s.push('\n');
    }
    dns.resolv_conf(&s)
}

/// The limits the container gets when `--ulimit` does not say (the current ones: hod cannot
/// raise hard limits without CAP_SYS_RESOURCE, so buildah's 1048576 is not attempted).
pub fn current_rlimits() -> Vec<Rlimit> {
    use nix::sys::resource::{getrlimit, Resource};
    let mut out = Vec::new();
    for (name, r) in [
        ("RLIMIT_NOFILE", Resource::RLIMIT_NOFILE),
        ("RLIMIT_NPROC", Resource::RLIMIT_NPROC),
    ] {
        if let Ok((soft, hard)) = getrlimit(r) {
            out.push(Rlimit {
                name: name.into(),
                soft,
                hard,
            });
        }
    }
    out
}

/// Prepare the rootfs side (placeholders, working directory, mount checks) and generate the
/// spec; `bundle` is this run's private directory.
#[allow(clippy::too_many_arguments)]
pub fn prepare(
    rootfs: &Path,
    config: &crate::image::ContainerConfig,
    command: &[String],
    opts: &RunOptions,
    container_id: &str,
    container_name: &str,
    bundle: &Path,
    cache_dir: &Path,
) -> Result<(oci_spec::runtime::Spec, bool)> {
    use crate::rootfs::{is_dir, is_symlink, resolve_in_root, Create};
    if command.is_empty() {
        return Err(RunError::Invalid("command must be specified".into()).into());
    }
    let isolation = opts.isolation.unwrap_or_default();
    let chroot = isolation == Isolation::Chroot;
    let network = if chroot {
        if opts
            .namespaces
            .network
            .as_ref()
            .is_some_and(|n| *n != NetworkMode::Host)
        {
            return Err(RunError::Invalid(
                "cannot set --network other than host with --isolation chroot".into(),
            )
            .into());
        }
        NetworkMode::Host
    } else if isolation == Isolation::Rootless && opts.namespaces.network.is_none() {
        NetworkMode::Host
    } else {
        opts.network()
    };
    if network == NetworkMode::Private && crate::sys::userns::identity().is_rootless() {
        warn_rootless_network();
    }
    let root = std::fs::File::open(rootfs).map_err(|e| io_err("opening", rootfs, e))?;
    let user_spec = opts
        .user
        .clone()
        .or_else(|| config.user.clone())
        .unwrap_or_default();
    let mut user = user::resolve(rootfs, &user_spec)?;
    for g in &opts.group_add {
        let gid = user::resolve_group(rootfs, g)?;
        if !user.additional_gids.contains(&gid) {
            user.additional_gids.push(gid);
        }
    }

    // Working directory, created inside the rootfs.
    let wd = opts
        .workdir
        .clone()
        .or_else(|| config.working_dir.clone().filter(|w| !w.is_empty()))
        .unwrap_or_else(|| "/".into());
    if wd.starts_with("/proc/self/fd") || wd.starts_with("/proc/thread-self/fd") {
        return Err(RunError::Invalid(format!("working directory {wd:?} is not allowed")).into());
    }
    let wfd = resolve_in_root(&root, Path::new(&wd), Create::Dir, true)
        .map_err(|e| io_err("creating working directory", Path::new(&wd), e))?;
    if !is_dir(&wfd).map_err(|e| io_err("checking", Path::new(&wd), e))? {
        return Err(
            RunError::Invalid(format!("working directory {wd:?} is not a directory")).into(),
        );
    }

    // The image's volumes: buildah creates each missing mountpoint in the rootfs before a
    // run (run.bats "run-builtin-volume-omitted"), so the directory is there afterwards too.
    for vol in config.volumes.iter().flat_map(|v| v.keys()) {
        let vp = Path::new(vol);
        if !vp.is_absolute() {
            continue;
        }
        resolve_in_root(&root, vp, Create::Dir, true)
            .map_err(|e| io_err("creating volume mountpoint", vp, e))?;
    }

    // Mounts.
    let dirs = mounts::MountDirs {
        run_dir: bundle.to_path_buf(),
        cache_dir: cache_dir.to_path_buf(),
    };
    let mut parsed = Vec::new();
    for v in &opts.volumes {
        parsed.push(mounts::parse_volume(v)?);
    }
    for m in &opts.mounts {
        parsed.push(mounts::parse_mount(m, opts.context_dir.as_deref())?);
    }
    // `:U` gives the source to the run's user (buildah's process UID/GID), as host IDs.
    let owner = (
        crate::idmap::host_id(&opts.uid_map, user.uid),
        crate::idmap::host_id(&opts.gid_map, user.gid),
    );
    let mut extra = Vec::new();
    for (i, p) in parsed.iter().enumerate() {
        // A destination that is a symlink in the rootfs, or that climbs out of it through
        // one, is refused before anything runs.
        if let Some(link) = crate::rootfs::symlink_escape(&root, &p.destination)
            .map_err(|e| io_err("checking mount destination", &p.destination, e))?
        {
            return Err(RunError::Invalid(format!(
                "mount destination {} escapes the container's rootfs through symbolic link {}",
                p.destination.display(),
                link.display()
            ))
            .into());
        }
        match resolve_in_root(&root, &p.destination, Create::No, false) {
            Ok(fd) if is_symlink(&fd).unwrap_or(false) => {
                return Err(RunError::Invalid(format!(
                    "mount destination {} is a symbolic link in the container",
                    p.destination.display()
                ))
                .into())
            }
            _ => {}
        }
        extra.push(mounts::materialize(p, &dirs, i, owner)?);
    }
    if chroot
        && (!parsed.is_empty() || !opts.devices.is_empty())
        && crate::environment::Environment::get().chroot_setup()
            == crate::environment::ChrootSetup::Bare
    {
        return Err(RunError::Invalid(
            "--volume, --mount and --device need a mount namespace, and this process can \
             create none (no CAP_SYS_ADMIN and no user namespaces)"
                .into(),
        )
        .into());
    }
    let mut devices = Vec::new();
    for d in &opts.devices {
        devices.extend(parse_devices(d)?);
    }

    let hostname = opts
        .hostname
        .clone()
        .unwrap_or_else(|| container_id.chars().take(12).collect());
    let host_net = network == NetworkMode::Host;
    let mut etc = EtcFiles::default();
    let placeholder = |dest: &str| -> Result<()> {
        resolve_in_root(&root, Path::new(dest), Create::File, true)
            .map(drop)
            .map_err(|e| io_err("creating placeholder", Path::new(dest), e).into())
    };
    if !opts.no_hosts {
        placeholder("/etc/hosts")?;
        let p = bundle.join("hosts");
        std::fs::write(
            &p,
            hosts_content(&hostname, container_name, host_net, &opts.dns),
        )
        .map_err(|e| io_err("writing", &p, e))?;
        etc.hosts = Some(p);
    }
    // `--dns=none`: the image's resolv.conf stays.
    if !opts.dns.disabled {
        placeholder("/etc/resolv.conf")?;
        let p = bundle.join("resolv.conf");
        std::fs::write(&p, resolv_content(host_net, &opts.dns))
            .map_err(|e| io_err("writing", &p, e))?;
        etc.resolv_conf = Some(p);
    }
    // buildah (through runc's /run/.containerenv mount point) leaves an empty /run behind.
    resolve_in_root(&root, Path::new("/run"), Create::Dir, true)
        .map(drop)
        .map_err(|e| io_err("creating", Path::new("/run"), e))?;
    // /run/.containerenv, as buildah writes it (the caller removes the placeholder after
    // the run when the image did not have one).
    placeholder("/run/.containerenv")?;
    let p = bundle.join("containerenv");
    std::fs::write(
        &p,
        containerenv_content(
            container_name,
            container_id,
            &opts.image_name,
            &opts.image_id,
        ),
    )
    .map_err(|e| io_err("writing", &p, e))?;
    etc.containerenv = Some(p);
    if !opts.no_hostname {
        placeholder("/etc/hostname")?;
        let p = bundle.join("hostname");
        std::fs::write(&p, format!("{hostname}\n")).map_err(|e| io_err("writing", &p, e))?;
        etc.hostname = Some(p);
    }

    // A user namespace to join: hod's own is no user namespace at all; another one's maps
    // (which runc wants in the spec) are read from its process (`/proc/PID/{uid,gid}_map`).
    let mut user_ns = opts.namespaces.user.clone();
    let mut joined_maps = None;
    if let Some(NamespaceMode::Path(p)) = &user_ns {
        if same_namespace(p, Path::new("/proc/self/ns/user")) {
            user_ns = Some(NamespaceMode::Host);
        } else if let Some(proc_dir) = p.parent().and_then(Path::parent) {
            let read = |f: &str| {
                let path = proc_dir.join(f);
                std::fs::read_to_string(&path)
                    .map_err(|e| io_err("reading", &path, e))
                    .map(|t| parse_proc_id_map(&t))
            };
            joined_maps = Some((read("uid_map")?, read("gid_map")?));
        }
    }
    let id_maps = if joined_maps.is_some() {
        joined_maps
    } else if !opts.uid_map.is_empty() {
        let g = if opts.gid_map.is_empty() {
            opts.uid_map.clone()
        } else {
            opts.gid_map.clone()
        };
        Some((opts.uid_map.clone(), g))
    } else if isolation == Isolation::Rootless
        || opts.namespaces.user == Some(NamespaceMode::Private)
    {
        Some(default_rootless_maps())
    } else if (user.uid != 0 || user.gid != 0)
        && !crate::environment::Environment::get().keeps_owners()
    {
        // Only one ID here (hod's, root): a run as another user gets it in a nested user
        // namespace, where it is that user.
        let own = |id: u32, ours: u32| IdMap {
            container_id: id,
            host_id: ours,
            size: 1,
        };
        Some((
            vec![own(user.uid, nix::unistd::geteuid().as_raw())],
            vec![own(user.gid, nix::unistd::getegid().as_raw())],
        ))
    } else {
        None
    };
    let terminal = opts
        .terminal
        .unwrap_or_else(|| nix::unistd::isatty(0).unwrap_or(false));
    let mut eff = opts.clone();
    eff.namespaces.user = user_ns;
    eff.isolation = Some(isolation);
    eff.namespaces.network = Some(network);
    if isolation == Isolation::Rootless {
        eff.namespaces.uts = Some(NamespaceMode::Host);
        if opts.hostname.is_none() {
            eff.hostname = None;
        }
    }
    if chroot {
        eff.namespaces.pid = Some(NamespaceMode::Host);
        eff.namespaces.ipc = Some(NamespaceMode::Host);
        eff.namespaces.cgroup = Some(NamespaceMode::Host);
    }
    let seccomp_profile = seccomp::Profile::for_option(opts.security.seccomp.as_ref())?;
    let inputs = SpecInputs {
        seccomp_profile,
        rootfs,
        config,
        opts: &eff,
        command,
        hostname,
        user,
        etc,
        extra_mounts: extra,
        devices,
        default_rlimits: current_rlimits(),
        id_maps,
        terminal,
    };
    let mut spec = generate(&inputs)?;
    if let Some(parent) = opts.cgroup_parent.as_deref().filter(|p| !p.is_empty()) {
        let leaf = format!(
            "hod-{}-{}",
            container_id.chars().take(12).collect::<String>(),
            &crate::fsutil::random_id()[..8]
        );
        if let Some(l) = spec.linux_mut() {
            l.set_cgroups_path(Some(Path::new(parent).join(leaf)));
        }
    }
    Ok((spec, terminal))
}

/// Whether this host runs programs built for `arch` (Go's names: amd64, arm64, …): its own
/// architecture, 386 on amd64, arm on arm64, or any other through an enabled binfmt_misc
/// handler (qemu-user-static registers `qemu-<cpu>`). A RUN in an image of another
/// architecture needs one.
pub fn can_run_arch(arch: &str) -> bool {
    let host = crate::image::config::host_arch();
    if arch.is_empty()
        || arch == host
        || (host, arch) == ("amd64", "386")
        || (host, arch) == ("arm64", "arm")
    {
        return true;
    }
    let cpu = match arch {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "386" => "i386",
        "mips64le" => "mips64el",
        "mipsle" => "mipsel",
        "loong64" => "loongarch64",
        a => a,
    };
    let Ok(entries) = std::fs::read_dir("/proc/sys/fs/binfmt_misc") else {
        return false;
    };
    entries.flatten().any(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        let ours = name
            .strip_prefix("qemu-")
            .is_some_and(|r| r == cpu || r.strip_prefix(cpu).is_some_and(|t| t.starts_with('-')));
        ours && std::fs::read_to_string(e.path()).is_ok_and(|t| t.lines().next() == Some("enabled"))
    })
}

/// A rootless user asked for a private network with outside access (buildah sets one up with
/// slirp4netns or pasta): hod gives loopback only, and says so once per process.
fn warn_rootless_network() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let tun = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .is_ok();
        let why = if tun {
            "hod does not run slirp4netns or pasta"
        } else {
            "that needs slirp4netns or pasta and /dev/net/tun, which this user cannot open"
        };
        tracing::warn!(
            "rootless RUN cannot get a network with outside access ({why}): it gets a private network with loopback only; use --network host for the host's network, or --network none"
        );
    });
}

/// The maps `--isolation rootless` uses: root → the caller's IDs, plus its /etc/subuid
/// ranges; for root (of the host, or of a user namespace such as rootless hod's own), the IDs
/// its namespace has, each mapped to itself.
pub fn default_rootless_maps() -> (Vec<IdMap>, Vec<IdMap>) {
    use crate::sys::userns::{identity_maps, parse_subid, rootless_map};
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    if uid == 0 {
        let read = |f: &str| identity_maps(&std::fs::read_to_string(f).unwrap_or_default());
        return (read("/proc/self/uid_map"), read("/proc/self/gid_map"));
    }
    let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_default();
    let read = |f: &str| std::fs::read_to_string(f).unwrap_or_default();
    (
        rootless_map(uid, &parse_subid(&read("/etc/subuid"), &name, Some(uid))),
        rootless_map(gid, &parse_subid(&read("/etc/subgid"), &name, Some(gid))),
    )
}

/// Whether two namespace files name the same namespace.
fn same_namespace(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => (x.dev(), x.ino()) == (y.dev(), y.ino()),
        _ => false,
    }
}

/// `/proc/PID/uid_map`'s lines (`inside outside count`).
fn parse_proc_id_map(text: &str) -> Vec<IdMap> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<u32> = l
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            match f.as_slice() {
                [c, h, z] => Some(IdMap {
                    container_id: *c,
                    host_id: *h,
                    size: *z,
                }),
                _ => None,
            }
        })
        .collect()
}

/// `--mount` values with `from=IMAGE` rewritten to bind the source from inside the image's
/// rootfs (resolved inside it, so a link cannot lead out); the working containers made for
/// that go into `temps`.
fn mounts_from_images(
    store: &Store,
    mounts: &[String],
    temps: &mut Vec<Builder>,
) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(mounts.len());
    for m in mounts {
        let parts: Vec<&str> = m.split(',').collect();
        let Some(from) = parts.iter().find_map(|p| p.strip_prefix("from=")) else {
            out.push(m.clone());
            continue;
        };
        if from.is_empty() {
            return Err(
                RunError::Invalid(format!("invalid mount {m:?}: from needs an image")).into(),
            );
        }
        let src = parts
            .iter()
            .find_map(|p| p.strip_prefix("src=").or_else(|| p.strip_prefix("source=")))
            .unwrap_or(".");
        let mut b = Builder::new_from(
            store,
            from,
            &crate::options::FromOptions::default(),
            &crate::report::Quiet,
        )?;
        let root = b.mount(store);
        temps.push(b);
        let root = root?;
        let clean = crate::rootfs::clean_container_path(&format!("/{src}"));
        let abs = crate::rootfs::Root::open(&root)
            .and_then(|r| r.real_path(&clean))
            .map_err(|e| io_err("resolving mount source", &clean, e))?
            .ok_or_else(|| {
                io_err(
                    "resolving mount source",
                    &clean,
                    std::io::Error::from_raw_os_error(libc::ENOENT),
                )
            })?;
        let mut rewritten: Vec<String> = parts
            .iter()
            .filter(|p| {
                !(p.starts_with("from=") || p.starts_with("src=") || p.starts_with("source="))
            })
            .map(|p| p.to_string())
            .collect();
        rewritten.push(format!("src={}", abs.display()));
        out.push(rewritten.join(","));
    }
    Ok(out)
}

impl Builder {
    /// Run `command` in the container; returns the command's exit status. The container's
    /// run defaults (from `from`) go under `opts`; the isolation is `opts`', else
    /// `BUILDAH_ISOLATION`'s, else the container's.
    pub fn run(&mut self, store: &Store, command: &[String], opts: &RunOptions) -> Result<i32> {
        let mut opts = opts.with_defaults(&self.state.run_defaults);
        // A container with ID maps runs in a user namespace with them.
        if opts.uid_map.is_empty() && !self.state.id_mappings.is_empty() {
            opts.uid_map = self.state.id_mappings.uids.clone();
            opts.gid_map = self.state.id_mappings.gids.clone();
        }
        // containers.conf's default_ulimits as they are now go under everything else (buildah
        // applies them at run time; its other [containers] keys were taken at `from`).
        let conf = crate::containers_conf::ContainersConf::load()?;
        let conf_limits = Resources {
            ulimits: conf.run_defaults.resources.ulimits.clone(),
            ..Default::default()
        };
        opts.resources = opts.resources.or(&conf_limits);
        if opts.isolation.is_none() {
            opts.isolation = Some(Isolation::from_env()?.unwrap_or(self.state.isolation));
        }
        // The environment's defaults, here so that bud's RUN gets them too.
        if opts.runtime.is_none() {
            opts.runtime = std::env::var_os("BUILDAH_RUNTIME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from);
        }
        opts.no_pivot |= std::env::var("BUILDAH_NOPIVOT")
            .is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"));
        // `--mount …,from=IMAGE`: a bind from the image's rootfs, through temporary working
        // containers removed after the run.
        let mut temps = Vec::new();
        let resolved = mounts_from_images(store, &opts.mounts, &mut temps);
        let result = match resolved {
            Ok(m) => {
                opts.mounts = m;
                self.run_with_mounts(store, command, &opts)
            }
            Err(e) => Err(e),
        };
        for t in temps {
            if let Err(e) = t.delete(store) {
                tracing::debug!("removing the container of a --mount from=: {e:#}");
            }
        }
        result
    }

    fn run_with_mounts(
        &mut self,
        store: &Store,
        command: &[String],
        opts: &RunOptions,
    ) -> Result<i32> {
        // One mount reference for the run, given back after it (an earlier mount stays).
        let rootfs = self.mount(store)?;
        let result = self.run_mounted(store, &rootfs, command, opts);
        if let Err(e) = self.unmount(store) {
            tracing::debug!("unmounting after run: {e:#}");
        }
        if opts.add_history && matches!(result, Ok(0)) {
            let shell = match &self.state.config.config.shell {
                Some(s) if !s.is_empty() => s.join(" "),
                _ => "/bin/sh -c".to_string(),
            };
            self.add_history(format!("{shell} {}", command.join(" ")))?;
        }
        result
    }

    fn run_mounted(
        &mut self,
        store: &Store,
        rootfs: &Path,
        command: &[String],
        opts: &RunOptions,
    ) -> Result<i32> {
        let run_dir = store.container_run_dir(self.id())?;
        std::fs::create_dir_all(&run_dir).map_err(|e| RunError::Io {
            op: "creating".into(),
            path: run_dir.clone(),
            source: e,
        })?;
        // A run in a user namespace whose root is not the host's cannot reach the store
        // (its directories are 0700, root's): as buildah, the bundle goes to /var/tmp,
        // traversable, with the rootfs bound at `mnt/rootfs` in it.
        let userns_view = if !opts.uid_map.is_empty()
            && nix::unistd::geteuid().is_root()
            && !crate::sys::userns::identity().is_rootless()
        {
            Some(UsernsBundle::new(rootfs)?)
        } else {
            None
        };
        let bundle = match &userns_view {
            Some(v) => v.bundle(),
            None => tempfile::Builder::new()
                .prefix("run-")
                .tempdir_in(&run_dir)
                .map_err(|e| RunError::Io {
                    op: "creating run directory in".into(),
                    path: run_dir.clone(),
                    source: e,
                })?,
        };
        let rootfs = match &userns_view {
            Some(v) => v.rootfs.as_path(),
            None => rootfs,
        };
        let cache_dir = store.root().join("hod-cache");
        let mut opts = opts.clone();
        opts.image_name = self.state.from_image.clone();
        opts.image_id = self.state.from_image_id.clone();
        let opts = &opts;
        let had_containerenv = containerenv_present(rootfs);
        let prepared = prepare(
            rootfs,
            &self.state.config.config,
            command,
            opts,
            self.id(),
            self.name(),
            bundle.path(),
            &cache_dir,
        );
        let result = prepared.and_then(|(spec, terminal)| {
            let eo = ExecOptions {
                isolation: opts.isolation.unwrap_or_default(),
                no_pivot: opts.no_pivot,
                terminal,
                bundle_dir: bundle.path().to_path_buf(),
                runtime: opts.runtime.clone(),
                runtime_flags: opts.runtime_flags.clone(),
                container_id: self.id().to_string(),
                stdout: opts.stdout.clone(),
                null_stdin: opts.null_stdin,
                ..Default::default()
            };
            // Where nothing can be mounted, the files the spec binds go into the rootfs
            // for the run (and out again when `_staged` drops, before the placeholder
            // cleanup below).
            let _staged = if eo.isolation == Isolation::Chroot
                && crate::environment::Environment::get().chroot_setup()
                    == crate::environment::ChrootSetup::Bare
            {
                Some(bare::Staged::put(
                    rootfs,
                    &EtcFiles::in_bundle(bundle.path()),
                )?)
            } else {
                None
            };
            execute(&spec, rootfs, &eo)
        });
        if !had_containerenv {
            remove_containerenv_placeholder(rootfs);
        }
        result
    }
}

/// The bundle of a run in a user namespace: a 0711 directory in /var/tmp with the rootfs
/// bound at `mnt/rootfs`, unbound when dropped (and left in place, never deleted, if the
/// unmount fails: removing it would descend into the container's files).
struct UsernsBundle {
    dir: Option<tempfile::TempDir>,
    rootfs: PathBuf,
}

impl UsernsBundle {
    fn new(rootfs: &Path) -> Result<UsernsBundle> {
        use std::os::unix::fs::PermissionsExt;
        let base = Path::new("/var/tmp");
        let dir = tempfile::Builder::new()
            .prefix("hod-run-")
            .tempdir_in(base)
            .map_err(|e| io_err("creating a run directory in", base, e))?;
        let mnt = dir.path().join("mnt");
        let target = mnt.join("rootfs");
        for d in [dir.path(), &mnt] {
            std::fs::create_dir_all(d)
                .and_then(|_| std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o711)))
                .map_err(|e| io_err("creating", d, e))?;
        }
        std::fs::create_dir(&target).map_err(|e| io_err("creating", &target, e))?;
        nix::mount::mount(
            Some(rootfs),
            &target,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND | nix::mount::MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| io_err("bind-mounting the rootfs on", &target, e.into()))?;
        Ok(UsernsBundle {
            dir: Some(dir),
            rootfs: target,
        })
    }

    /// A private directory in the bundle for this run's files (the spec, /etc files).
    fn bundle(&self) -> tempfile::TempDir {
        // The run's own files go in a subdirectory the caller removes.
        let parent = self
            .dir
            .as_ref()
            .map(|d| d.path())
            .unwrap_or(Path::new("/var/tmp"));
        let d = tempfile::Builder::new()
            .prefix("run-")
            .tempdir_in(parent)
            .unwrap_or_else(|_| tempfile::TempDir::new().expect("a temporary directory"));
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o711));
        }
        d
    }
}

impl Drop for UsernsBundle {
    fn drop(&mut self) {
        let unmounted = nix::mount::umount2(&self.rootfs, nix::mount::MntFlags::MNT_DETACH);
        match unmounted {
            Ok(()) => {
                let _ = std::fs::remove_dir(&self.rootfs);
            }
            Err(e) => {
                tracing::warn!(
                    "unmounting {}: {e}; leaving the directory in place",
                    self.rootfs.display()
                );
                if let Some(d) = self.dir.take() {
                    let _ = d.keep();
                }
            }
        }
    }
}

/// Whether the rootfs has a `/run/.containerenv` of its own.
fn containerenv_present(rootfs: &Path) -> bool {
    use crate::rootfs::{resolve_in_root, Create};
    std::fs::File::open(rootfs)
        .and_then(|root| resolve_in_root(&root, Path::new("/run/.containerenv"), Create::No, false))
        .is_ok()
}

/// Remove the empty `/run/.containerenv` mount point a run made (buildah leaves none behind).
fn remove_containerenv_placeholder(rootfs: &Path) {
    use crate::rootfs::{resolve_in_root, Create};
    let run = std::fs::File::open(rootfs)
        .and_then(|root| resolve_in_root(&root, Path::new("/run"), Create::No, true));
    let Ok(run) = run else { return };
    let name = ".containerenv";
    match rustix::fs::statat(&run, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st)
            if rustix::fs::FileType::from_raw_mode(st.st_mode)
                == rustix::fs::FileType::RegularFile
                && st.st_size == 0 =>
        {
            if let Err(e) = rustix::fs::unlinkat(&run, name, rustix::fs::AtFlags::empty()) {
                tracing::debug!("removing /run/.containerenv placeholder: {e}");
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod option_tests {
    use super::*;

    #[test]
    fn defaults_go_underneath() {
        let d = RunDefaults {
            security: Security {
                cap_add: vec!["NET_RAW".into()],
                cap_drop: vec!["CHOWN".into()],
                ..Default::default()
            },
            no_hosts: true,
            group_add: vec!["wheel".into()],
            ..Default::default()
        };
        let o = RunOptions {
            security: Security {
                cap_add: vec!["CHOWN".into()],
                cap_drop: vec!["NET_RAW".into()],
                ..Default::default()
            },
            group_add: vec!["10".into()],
            ..Default::default()
        };
        let m = o.with_defaults(&d);
        let caps = spec::capability_set(None, &m.security.cap_add, &m.security.cap_drop).unwrap();
        assert!(
            caps.contains(&"CAP_CHOWN"),
            "a run's cap-add beats a default cap-drop"
        );
        assert!(
            !caps.contains(&"CAP_NET_RAW"),
            "a run's cap-drop beats a default cap-add"
        );
        assert!(m.no_hosts);
        assert_eq!(m.group_add, ["wheel", "10"]);
    }
    #[test]
    fn host_ids_through_maps() {
        let maps = [
            IdMap {
                container_id: 0,
                host_id: 100000,
                size: 1000,
            },
            IdMap {
                container_id: 1000,
                host_id: 5000,
                size: 1,
            },
        ];
        for (id, want) in [
            (0, 100000),
            (888, 100888),
            (999, 100999),
            (1000, 5000),
            (1001, 1001),
        ] {
            assert_eq!(crate::idmap::host_id(&maps, id), want, "{id}");
        }
        assert_eq!(crate::idmap::host_id(&[], 888), 888);
    }

    #[test]
    fn proxy_variables_pass_through() {
        // from.bats "from proxy test": FTP_PROXY=x hod run … printenv FTP_PROXY.
        let host = |k: &str| match k {
            "FTP_PROXY" => Some("123".to_string()),
            "https_proxy" => Some("http://p:3128".to_string()),
            "PATH" => Some("/host/bin".to_string()),
            _ => None,
        };
        assert_eq!(
            spec::proxy_env(host),
            ["https_proxy=http://p:3128", "FTP_PROXY=123"]
        );
        assert!(spec::proxy_env(|_| None).is_empty());
    }

    #[test]
    fn shm_size_and_container_network() {
        for (v, want) in [
            ("80m", Some(80u64 << 20)),
            ("1G", Some(1 << 30)),
            ("4096", Some(4096)),
            ("", None),
            ("0", None),
        ] {
            assert_eq!(spec::parse_shm_size(v).ok(), want, "{v:?}");
        }
        let d = RunDefaults {
            resources: Resources::parse(None, Some("80m"), &[]).unwrap(),
            ..Default::default()
        };
        assert_eq!(
            RunOptions::default().with_defaults(&d).resources.shm_size,
            Some(80 << 20)
        );
        let own = RunOptions {
            resources: Resources::parse(None, Some("1g"), &[]).unwrap(),
            ..Default::default()
        };
        assert_eq!(own.with_defaults(&d).resources.shm_size, Some(1 << 30));
        // from.bats "from add-host test" runs with --net=container.
        assert_eq!(
            NetworkMode::parse("container").unwrap(),
            NetworkMode::Private
        );
    }

    #[test]
    fn defaults_as_older_hods_wrote_them() {
        // The untyped bag hod wrote before the typed defaults: snake_case keys, null for
        // unset options, security options as given.
        let j = serde_json::json!({
            "cap_add": ["CAP_NET_ADMIN"], "cap_drop": ["CAP_DAC_OVERRIDE"],
            "volumes": [], "ulimits": ["nofile=10"], "devices": [],
            "security_opts": ["no-new-privileges", "seccomp=unconfined"],
            "network": "none", "dns": [], "userns": null, "uts": null, "shm_size": null,
        });
        let d = RunDefaults::from_state_value(&j);
        let m = RunOptions::default().with_defaults(&d);
        let caps = spec::capability_set(None, &m.security.cap_add, &m.security.cap_drop).unwrap();
        assert!(!caps.contains(&"CAP_DAC_OVERRIDE"), "{caps:?}");
        assert!(caps.contains(&"CAP_NET_ADMIN"), "{caps:?}");
        assert!(m.security.no_new_privileges == Some(true) && m.security.seccomp_unconfined());
        assert_eq!(m.network(), NetworkMode::None);
        assert_eq!(m.resources.ulimits[0].soft, 10);
        // A run's own --network wins; a null network is no default.
        let own = RunOptions {
            namespaces: Namespaces {
                network: Some(NetworkMode::Host),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(own.with_defaults(&d).network(), NetworkMode::Host);
        let d = RunDefaults::from_state_value(
            &serde_json::json!({"network": null, "security_opts": null}),
        );
        assert_eq!(
            RunOptions::default().with_defaults(&d).namespaces.network,
            None
        );
    }

    #[test]
    fn isolation_in_state() {
        #[derive(serde::Deserialize)]
        struct S {
            #[serde(deserialize_with = "isolation_from_state")]
            i: Isolation,
        }
        for (v, want) in [
            ("", Isolation::Oci),
            ("chroot", Isolation::Chroot),
            ("rootless", Isolation::Rootless),
        ] {
            let s: S = serde_json::from_value(serde_json::json!({ "i": v })).unwrap();
            assert_eq!(s.i, want);
        }
        assert_eq!(serde_json::to_value(Isolation::Chroot).unwrap(), "chroot");
        assert!(serde_json::from_value::<S>(serde_json::json!({"i": "vm"})).is_err());
    }

    #[test]
    fn id_maps() {
        assert_eq!(
            IdMap::parse_list("0:100000:65536,65536:1:1").unwrap(),
            [
                IdMap {
                    container_id: 0,
                    host_id: 100000,
                    size: 65536
                },
                IdMap {
                    container_id: 65536,
                    host_id: 1,
                    size: 1
                }
            ]
        );
        for bad in ["0:1", "a:b:c", "0:1:2:3", "-1:0:1"] {
            assert!(IdMap::parse_list(bad).is_err(), "{bad}");
        }
    }
}
