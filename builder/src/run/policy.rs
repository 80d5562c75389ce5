//! Typed run policy: the namespace, security, resource, DNS/hosts settings a `run` applies,
//! given per run ([`RunOptions`](super::RunOptions)) or once at `from` time and persisted in
//! the builder state as [`RunDefaults`] (then a run's own settings go on top, see
//! [`RunOptions::with_defaults`](super::RunOptions::with_defaults)).
//!
//! ```text
//! CLI flags (from / run / bud) ──parse_*──> Namespaces, Security, Resources, Dns
//!        └─ from: RunDefaults ──> BuilderState.run_defaults (hod.json)
//!        └─ run:  RunOptions ──with_defaults(state)──> prepare ──> spec::generate
//! ```
//!
//! `--security-opt` has exactly one parser, [`Security::parse_opts`], used by `from`, `run`
//! and `bud`.
use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::spec::{parse_ulimit, Rlimit};
use super::{NamespaceMode, NetworkMode, RunError};

/// Namespace choices; `None` = not said here (the container's default, else private; a
/// cgroup namespace is shared with hod unless asked for).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Namespaces {
    /// `--network`.
    pub network: Option<NetworkMode>,
    /// `--pid`.
    pub pid: Option<NamespaceMode>,
    /// `--ipc`.
    pub ipc: Option<NamespaceMode>,
    /// `--uts`.
    pub uts: Option<NamespaceMode>,
    /// `--cgroupns`.
    pub cgroup: Option<NamespaceMode>,
    /// `--userns` (`host`, or `container`/`private`: a user namespace with the default maps).
    pub user: Option<NamespaceMode>,
}

impl Namespaces {
    /// These choices, with `under`'s where these say nothing.
    pub fn or(&self, under: &Namespaces) -> Namespaces {
        Namespaces {
            network: self.network.clone().or_else(|| under.network.clone()),
            pid: self.pid.clone().or_else(|| under.pid.clone()),
            ipc: self.ipc.clone().or_else(|| under.ipc.clone()),
            uts: self.uts.clone().or_else(|| under.uts.clone()),
            cgroup: self.cgroup.clone().or_else(|| under.cgroup.clone()),
            user: self.user.clone().or_else(|| under.user.clone()),
        }
    }

    /// Parse the CLI's strings (`None` = flag not given); errors name the flag.
    pub fn parse(
        network: Option<&str>,
        pid: Option<&str>,
        ipc: Option<&str>,
        uts: Option<&str>,
        cgroupns: Option<&str>,
        userns: Option<&str>,
    ) -> Result<Namespaces, RunError> {
        let ns = |flag: &str, v: Option<&str>| -> Result<Option<NamespaceMode>, RunError> {
            v.map(|v| {
                NamespaceMode::parse(v).map_err(|e| RunError::Invalid(format!("--{flag}: {e}")))
            })
            .transpose()
        };
        Ok(Namespaces {
            network: network.map(NetworkMode::parse).transpose()?,
            pid: ns("pid", pid)?,
            ipc: ns("ipc", ipc)?,
            uts: ns("uts", uts)?,
            cgroup: ns("cgroupns", cgroupns)?,
            user: ns("userns", userns)?,
        })
    }
}

/// `--security-opt seccomp=…`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SeccompProfile {
    /// No filter.
    Unconfined,
    /// A profile file (OCI `linux.seccomp` JSON, as containers/common writes them).
    File(PathBuf),
}

/// Capabilities and `--security-opt`, parsed once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Security {
    /// The set `--cap-add`/`--cap-drop` start from: containers.conf `default_capabilities`
    /// (`None` = buildah's default set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_capabilities: Option<Vec<String>>,
    /// `--cap-add`.
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
    /// `seccomp=unconfined|PATH`; `None` = the default profile.
    pub seccomp: Option<SeccompProfile>,
    /// `apparmor=PROFILE` (recorded in the spec; the embedded runtime loads no profiles).
    pub apparmor: Option<String>,
    /// `label=…` (`disable`, `user:…`, `type:…`, …; hod applies no SELinux labels).
    pub labels: Vec<String>,
    /// `no-new-privileges[=BOOL]`; `None` = not said (off).
    pub no_new_privileges: Option<bool>,
    /// `mask=PATH[:PATH…]`: extra paths hidden from the container.
    pub mask: Vec<String>,
    /// `unmask=PATH[:PATH…]|ALL`: default-masked paths left visible.
    pub unmask: Vec<String>,
}

impl Security {
    /// Parse `--security-opt` values (buildah's spellings: `no-new-privileges`,
    /// `seccomp=…`, `apparmor=…`, `label=…`, `mask=…`, `unmask=…`; Docker's `:` separator and
    /// `no-new-privileges=BOOL` are accepted too).
    pub fn parse_opts(opts: &[String]) -> Result<Security, RunError> {
        let mut s = Security::default();
        for opt in opts {
            s.apply_opt(opt)?;
        }
        Ok(s)
    }

    /// Apply one `--security-opt` value.
    pub fn apply_opt(&mut self, opt: &str) -> Result<(), RunError> {
        if opt == "no-new-privileges" {
            self.no_new_privileges = Some(true);
            return Ok(());
        }
        let (key, value) = opt
            .split_once('=')
            .or_else(|| opt.split_once(':'))
            .ok_or_else(|| {
                RunError::Invalid(format!("invalid --security-opt name=value pair: {opt:?}"))
            })?;
        match key {
            "no-new-privileges" => {
                self.no_new_privileges = Some(match value {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(RunError::Invalid(format!(
                            "invalid --security-opt {opt:?}: no-new-privileges takes true or false"
                        )))
                    }
                })
            }
            "seccomp" if value == "unconfined" => self.seccomp = Some(SeccompProfile::Unconfined),
            "seccomp" if !value.is_empty() => {
                self.seccomp = Some(SeccompProfile::File(PathBuf::from(value)))
            }
            "apparmor" if !value.is_empty() => self.apparmor = Some(value.to_string()),
            "label" if !value.is_empty() => self.labels.push(value.to_string()),
            "mask" => self.mask.extend(split_paths(value)),
            "unmask" => self.unmask.extend(split_paths(value)),
            _ => return Err(RunError::Invalid(format!("invalid --security-opt {opt:?}"))),
        }
        Ok(())
    }

    /// These settings on top of `under` (lists add up; a capability this adds that `under`
    /// dropped is added back; single values here win).
    pub fn or(&self, under: &Security) -> Security {
        let cat = |a: &[String], b: &[String]| a.iter().chain(b).cloned().collect::<Vec<_>>();
        let mut cap_drop = cat(&under.cap_drop, &self.cap_drop);
        cap_drop.retain(|c| {
            !self.cap_add.iter().any(|a| a.eq_ignore_ascii_case(c)) || self.cap_drop.contains(c)
        });
        Security {
            base_capabilities: (self.base_capabilities.clone())
                .or_else(|| under.base_capabilities.clone()),
            cap_add: cat(&under.cap_add, &self.cap_add),
            cap_drop,
            seccomp: self.seccomp.clone().or_else(|| under.seccomp.clone()),
            apparmor: self.apparmor.clone().or_else(|| under.apparmor.clone()),
            labels: cat(&under.labels, &self.labels),
            no_new_privileges: self.no_new_privileges.or(under.no_new_privileges),
            mask: cat(&under.mask, &self.mask),
            unmask: cat(&under.unmask, &self.unmask),
        }
    }

    /// Whether the default seccomp filter is off.
    pub fn seccomp_unconfined(&self) -> bool {
        self.seccomp == Some(SeccompProfile::Unconfined)
    }
}

fn split_paths(v: &str) -> impl Iterator<Item = String> + '_ {
    v.split(':').filter(|p| !p.is_empty()).map(str::to_string)
}

/// Resource limits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Resources {
    /// `--memory`, bytes (the spec's `linux.resources.memory.limit`).
    pub memory: Option<u64>,
    /// `--shm-size`, bytes (default 64 MiB).
    pub shm_size: Option<u64>,
    /// `--ulimit`.
    pub ulimits: Vec<Rlimit>,
    /// `--cpu-shares` (`-c`): relative CPU weight (the spec's `linux.resources.cpu.shares`).
    pub cpu_shares: Option<u64>,
    /// `--memory-swap`: memory plus swap, bytes; `-1` is unlimited (the spec's
    /// `linux.resources.memory.swap`).
    pub memory_swap: Option<i64>,
}

impl Resources {
    /// Parse `--memory`, `--shm-size` and `--ulimit` values.
    pub fn parse(
        memory: Option<&str>,
        shm_size: Option<&str>,
        ulimits: &[String],
    ) -> Result<Resources, RunError> {
        Ok(Resources {
            memory: memory
                .map(|m| {
                    parse_size(m)
                        .map_err(|_| RunError::Invalid(format!("invalid value for memory {m:?}")))
                })
                .transpose()?,
            shm_size: shm_size
                .map(|s| {
                    parse_size(s)
                        .map_err(|_| RunError::Invalid(format!("invalid --shm-size {s:?}")))
                })
                .transpose()?,
            ulimits: ulimits
                .iter()
                .map(|u| parse_ulimit(u))
                .collect::<Result<_, _>>()?,
            ..Resources::default()
        })
    }

    /// Parse a `--memory-swap` value: a size as for `--memory`, or `-1` for unlimited.
    pub fn parse_memory_swap(s: &str) -> Result<i64, RunError> {
        if s.trim() == "-1" {
            return Ok(-1);
        }
        parse_size(s)
            .ok()
            .and_then(|v| i64::try_from(v).ok())
            .ok_or_else(|| RunError::Invalid(format!("invalid value for memory-swap {s:?}")))
    }

    /// These limits on top of `under` (a ulimit here replaces the same one there).
    pub fn or(&self, under: &Resources) -> Resources {
        let mut ulimits: Vec<Rlimit> = under
            .ulimits
            .iter()
            .filter(|u| !self.ulimits.iter().any(|o| o.name == u.name))
            .cloned()
            .collect();
        ulimits.extend(self.ulimits.iter().cloned());
        Resources {
            memory: self.memory.or(under.memory),
            shm_size: self.shm_size.or(under.shm_size),
            ulimits,
            cpu_shares: self.cpu_shares.or(under.cpu_shares),
            memory_swap: self.memory_swap.or(under.memory_swap),
        }
    }
}

/// Parse a size (`64m`, `1g`, `512k`, `1048576`, `100b`; also `kb`, `mb`, `gb`) into bytes.
pub fn parse_size(s: &str) -> Result<u64, RunError> {
    let t = s.trim().to_ascii_lowercase();
    let bad = || RunError::Invalid(format!("invalid size {s:?}"));
    let t = t
        .strip_suffix('b')
        .filter(|x| !x.is_empty() && x.ends_with(|c: char| c.is_ascii_alphabetic()))
        .unwrap_or(&t);
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'b')) => (&t[..i], 1),
        Some((i, 'k')) => (&t[..i], 1u64 << 10),
        Some((i, 'm')) => (&t[..i], 1 << 20),
        Some((i, 'g')) => (&t[..i], 1 << 30),
        Some(_) => (t, 1),
        None => return Err(bad()),
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    match n.checked_mul(mult) {
        Some(v) if v > 0 => Ok(v),
        _ => Err(bad()),
    }
}

/// `--add-host NAME:IP`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostEntry {
    /// Host name.
    pub name: String,
    /// Its address.
    pub ip: IpAddr,
}

impl HostEntry {
    /// Parse `name:ip` (the IP may be IPv6: everything after the first `:`).
    pub fn parse(s: &str) -> Result<HostEntry, RunError> {
        let (name, ip) = s.split_once(':').ok_or_else(|| {
            RunError::Invalid(format!(
                "unable to parse host entry {s:?}: incorrect format"
            ))
        })?;
        if name.is_empty() {
            return Err(RunError::Invalid(format!(
                "hostname in host entry {s:?} is empty"
            )));
        }
        let ip = ip
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| RunError::Invalid(format!("invalid IP address in add-host: {ip:?}")))?;
        Ok(HostEntry {
            name: name.to_string(),
            ip,
        })
    }
}

/// `--dns`, `--dns-search`, `--dns-option`, `--add-host`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Dns {
    /// `--dns` servers (replace the host's nameservers in the run's resolv.conf).
    pub servers: Vec<IpAddr>,
    /// `--dns=none`: no resolv.conf is generated (the image's stays).
    pub disabled: bool,
    /// `--dns-search` domains (replace the host's; `.` = none).
    pub search: Vec<String>,
    /// `--dns-option` options (replace the host's).
    pub options: Vec<String>,
    /// `--add-host` entries (first in the run's /etc/hosts).
    pub hosts: Vec<HostEntry>,
}

impl Dns {
    /// buildah's rule for `bud`: `--add-host` entries need the /etc/hosts that
    /// `--no-hosts` turns off.
    pub fn refuse_add_host_with_no_hosts(no_hosts: bool, hosts: &[String]) -> Result<(), RunError> {
        if no_hosts && !hosts.is_empty() {
            return Err(RunError::Invalid(
                "--no-hosts and --add-host conflict, can not be used together".into(),
            ));
        }
        Ok(())
    }

    /// `bud`'s rule (buildah's GenBuildOptions): with `--network=none`, any of `--dns`,
    /// `--dns-option`, `--dns-search` is an error, checked before their values are.
    pub fn refuse_with_network_none(
        network: Option<NetworkMode>,
        servers: &[String],
        options: &[String],
        search: &[String],
    ) -> Result<(), RunError> {
        if network != Some(NetworkMode::None) {
            return Ok(());
        }
        for (flag, given) in [
            ("--dns", servers),
            ("--dns-option", options),
            ("--dns-search", search),
        ] {
            if !given.is_empty() {
                return Err(RunError::Invalid(format!(
                    "the {flag} option cannot be used with --network=none"
                )));
            }
        }
        Ok(())
    }

    /// Parse the flags' values.
    pub fn parse(
        servers: &[String],
        search: &[String],
        options: &[String],
        hosts: &[String],
    ) -> Result<Dns, RunError> {
        let mut d = Dns::default();
        for s in servers {
            if s.eq_ignore_ascii_case("none") {
                if servers.len() > 1 {
                    return Err(RunError::Invalid(
                        "invalid --dns: none may not be used with any other --dns options".into(),
                    ));
                }
                d.disabled = true;
            } else {
                d.servers.push(
                    s.parse()
                        .map_err(|_| RunError::Invalid(format!("{s} is not an ip address")))?,
                );
            }
        }
        d.search = search.to_vec();
        d.options = options.to_vec();
        d.hosts = hosts
            .iter()
            .map(|h| HostEntry::parse(h))
            .collect::<Result<_, _>>()?;
        Ok(d)
    }

    /// These settings on top of `under` (each list given here replaces that list there;
    /// hosts add up).
    pub fn or(&self, under: &Dns) -> Dns {
        let pick =
            |a: &Vec<String>, b: &Vec<String>| if a.is_empty() { b.clone() } else { a.clone() };
        let (servers, disabled) = if self.servers.is_empty() && !self.disabled {
            (under.servers.clone(), under.disabled)
        } else {
            (self.servers.clone(), self.disabled)
        };
        Dns {
            servers,
            disabled,
            search: pick(&self.search, &under.search),
            options: pick(&self.options, &under.options),
            hosts: under.hosts.iter().chain(&self.hosts).cloned().collect(),
        }
    }

    /// The run's resolv.conf from the host's (already filtered) content: each of servers,
    /// search and options given here replaces the host's lines of that kind (buildah's
    /// resolvconf.Build layout: search, nameservers, options).
    pub fn resolv_conf(&self, host: &str) -> String {
        if self.servers.is_empty() && self.search.is_empty() && self.options.is_empty() {
            return host.to_string();
        }
        let field = |prefix: &str| -> Vec<String> {
            host.lines()
                .filter_map(|l| l.trim().strip_prefix(prefix))
                .filter(|rest| rest.starts_with([' ', '\t']))
                .flat_map(|rest| rest.split_whitespace().map(str::to_string))
                .collect()
        };
        let servers: Vec<String> = if self.servers.is_empty() {
            field("nameserver")
        } else {
            self.servers.iter().map(IpAddr::to_string).collect()
        };
        let search = if self.search.is_empty() {
            field("search")
        } else {
            self.search.clone()
        };
        let options = if self.options.is_empty() {
            field("options")
        } else {
            self.options.clone()
        };
        let mut out = String::new();
        let search = search.join(" ");
        if !search.trim().is_empty() && search.trim() != "." {
            out.push_str(&format!("search {search}\n"));
        }
        for s in servers {
            out.push_str(&format!("nameserver {s}\n"));
        }
        let options = options.join(" ");
        if !options.trim().is_empty() {
            out.push_str(&format!("options {options}\n"));
        }
        out
    }

    /// The `--add-host` lines for /etc/hosts (`IP\tNAME`).
    pub fn hosts_lines(&self) -> String {
        self.hosts
            .iter()
            .map(|h| format!("{}\t{}\n", h.ip, h.name))
            .collect()
    }
}

/// What `hod from` (and each `FROM` of `bud`) sets for every later `run` of the container,
/// persisted in the builder state. A run's own options go on top
/// ([`RunOptions::with_defaults`](super::RunOptions::with_defaults)).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
#[non_exhaustive]
pub struct RunDefaults {
    /// `--network`, `--pid`, `--ipc`, `--uts`, `--cgroupns`, `--userns`.
    pub namespaces: Namespaces,
    /// `--cap-add`, `--cap-drop`, `--security-opt`.
    pub security: Security,
    /// `--memory`, `--shm-size`, `--ulimit`.
    pub resources: Resources,
    /// `--dns*`, `--add-host`.
    pub dns: Dns,
    /// `--device`.
    pub devices: Vec<String>,
    /// `-v`.
    pub volumes: Vec<String>,
    /// `--group-add`: supplementary groups (names from the rootfs's /etc/group, or GIDs).
    pub group_add: Vec<String>,
    /// Keep the image's /etc/hosts.
    pub no_hosts: bool,
    /// Keep the image's /etc/hostname.
    pub no_hostname: bool,
    /// `--cgroup-parent`: the cgroup later runs are made under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup_parent: Option<String>,
}

impl RunDefaults {
    /// Read the builder state's `RunDefaults`: this shape, or the untyped bag hod wrote
    /// before (camelCase or snake_case keys, strings as given on the command line); values
    /// the old bag held that no longer parse are dropped with a debug message.
    pub fn from_state_value(v: &serde_json::Value) -> RunDefaults {
        if v.is_null() {
            return RunDefaults::default();
        }
        // The typed shape has objects where the old bag had strings and arrays.
        let typed = ["namespaces", "security", "resources", "dns"]
            .iter()
            .any(|k| v.get(k).is_some_and(|x| x.is_object()));
        if typed {
            match serde_json::from_value::<RunDefaults>(v.clone()) {
                Ok(d) => return d,
                Err(e) => tracing::debug!("reading run defaults: {e}"),
            }
        }
        legacy(v)
    }
}

/// The untyped bag of hod ≤ 0.0.1.
fn legacy(v: &serde_json::Value) -> RunDefaults {
    let get = |keys: &[&str]| keys.iter().find_map(|k| v.get(*k)).filter(|x| !x.is_null());
    let strs = |keys: &[&str]| -> Vec<String> {
        get(keys)
            .and_then(|x| x.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let s = |keys: &[&str]| get(keys).and_then(|x| x.as_str()).filter(|x| !x.is_empty());
    let b = |keys: &[&str]| get(keys).and_then(|x| x.as_bool()).unwrap_or(false);
    let warn = |what: &str, e: RunError| {
        tracing::debug!("old run defaults: dropping {what}: {e}");
    };
    let mut d = RunDefaults {
        devices: strs(&["devices"]),
        volumes: strs(&["volumes"]),
        group_add: strs(&["groupAdd", "group_add"]),
        no_hosts: b(&["noHosts", "no_hosts"]),
        no_hostname: b(&["noHostname", "no_hostname"]),
        ..Default::default()
    };
    match Namespaces::parse(
        s(&["network"]),
        s(&["pid"]),
        s(&["ipc"]),
        s(&["uts"]),
        s(&["cgroupns"]),
        s(&["userns"]),
    ) {
        Ok(n) => d.namespaces = n,
        Err(e) => warn("namespaces", e),
    }
    let mut sec = Security::default();
    for o in strs(&["securityOpts", "security_opts"]) {
        if let Err(e) = sec.apply_opt(&o) {
            warn("a security option", e);
        }
    }
    if b(&["seccompUnconfined", "seccomp_unconfined"]) {
        sec.seccomp = Some(SeccompProfile::Unconfined);
    }
    if b(&["noNewPrivileges", "no_new_privileges"]) {
        sec.no_new_privileges = Some(true);
    }
    sec.cap_add = strs(&["capAdd", "cap_add"]);
    sec.cap_drop = strs(&["capDrop", "cap_drop"]);
    d.security = sec;
    match Resources::parse(
        s(&["memory"]),
        s(&["shmSize", "shm_size"]),
        &strs(&["ulimits"]),
    ) {
        Ok(r) => d.resources = r,
        Err(e) => warn("resources", e),
    }
    match Dns::parse(
        &strs(&["dns"]),
        &strs(&["dnsSearch", "dns_search"]),
        &strs(&["dnsOptions", "dns_options"]),
        &strs(&["addHosts", "add_hosts"]),
    ) {
        Ok(x) => d.dns = x,
        Err(e) => warn("dns", e),
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn security_opts() {
        let s = Security::parse_opts(&v(&[
            "seccomp=unconfined",
            "no-new-privileges",
            "apparmor=unconfined",
            "label=disable",
            "label=type:spc_t",
            "mask=/proc/a:/proc/b",
            "unmask=ALL",
        ]))
        .unwrap();
        assert!(s.seccomp_unconfined());
        assert_eq!(s.no_new_privileges, Some(true));
        assert_eq!(s.apparmor.as_deref(), Some("unconfined"));
        assert_eq!(s.labels, ["disable", "type:spc_t"]);
        assert_eq!(s.mask, ["/proc/a", "/proc/b"]);
        assert_eq!(s.unmask, ["ALL"]);
        // Docker's spellings.
        let s =
            Security::parse_opts(&v(&["seccomp:unconfined", "no-new-privileges=false"])).unwrap();
        assert!(s.seccomp_unconfined());
        assert_eq!(s.no_new_privileges, Some(false));
        let s = Security::parse_opts(&v(&["seccomp=/etc/p.json"])).unwrap();
        assert_eq!(s.seccomp, Some(SeccompProfile::File("/etc/p.json".into())));
        for bad in [
            "bogus",
            "foo=bar",
            "no-new-privileges=maybe",
            "seccomp=",
            "label=",
        ] {
            assert!(Security::parse_opts(&v(&[bad])).is_err(), "{bad}");
        }
        assert!(Security::parse_opts(&v(&["x"]))
            .unwrap_err()
            .to_string()
            .contains("invalid --security-opt name=value pair"));
    }

    #[test]
    fn security_layers() {
        let from = Security {
            cap_add: v(&["NET_RAW"]),
            cap_drop: v(&["CHOWN"]),
            seccomp: Some(SeccompProfile::Unconfined),
            no_new_privileges: Some(true),
            ..Default::default()
        };
        let run = Security {
            cap_add: v(&["chown"]),
            no_new_privileges: Some(false),
            ..Default::default()
        };
        let m = run.or(&from);
        assert_eq!(m.cap_add, ["NET_RAW", "chown"]);
        assert!(
            m.cap_drop.is_empty(),
            "a run's cap-add beats a default cap-drop"
        );
        assert!(m.seccomp_unconfined());
        assert_eq!(m.no_new_privileges, Some(false));
    }

    #[test]
    fn sizes_and_resources() {
        for (s, want) in [
            ("80m", Some(80u64 << 20)),
            ("1G", Some(1 << 30)),
            ("1gb", Some(1 << 30)),
            ("512k", Some(512 << 10)),
            ("4096", Some(4096)),
            ("100b", Some(100)),
            ("", None),
            ("m", None),
            ("0", None),
            ("-1m", None),
            ("10x", None),
        ] {
            assert_eq!(parse_size(s).ok(), want, "{s:?}");
        }
        let r = Resources::parse(Some("256m"), None, &v(&["nofile=10:20"])).unwrap();
        assert_eq!(r.memory, Some(256 << 20));
        assert_eq!(r.ulimits[0].name, "RLIMIT_NOFILE");
        assert!(Resources::parse(Some("lots"), None, &[]).is_err());
        let run = Resources::parse(None, Some("1g"), &v(&["nofile=5"])).unwrap();
        let m = run.or(&r);
        assert_eq!((m.memory, m.shm_size), (Some(256 << 20), Some(1 << 30)));
        assert_eq!(m.ulimits.len(), 1);
        assert_eq!(m.ulimits[0].soft, 5);
    }

    #[test]
    fn dns_and_hosts() {
        let d = Dns::parse(
            &v(&["1.1.1.1", "2001:db8::1"]),
            &v(&["example.com"]),
            &v(&["ndots:2"]),
            &v(&["myhost:10.0.0.1", "six:2001:db8::2"]),
        )
        .unwrap();
        let host = "search corp.local\nnameserver 8.8.8.8\noptions rotate\n";
        assert_eq!(
            d.resolv_conf(host),
            "search example.com\nnameserver 1.1.1.1\nnameserver 2001:db8::1\noptions ndots:2\n"
        );
        assert_eq!(d.hosts_lines(), "10.0.0.1\tmyhost\n2001:db8::2\tsix\n");
        // Only servers given: the host's search and options stay.
        let d2 = Dns::parse(&v(&["9.9.9.9"]), &[], &[], &[]).unwrap();
        assert_eq!(
            d2.resolv_conf(host),
            "search corp.local\nnameserver 9.9.9.9\noptions rotate\n"
        );
        assert_eq!(Dns::default().resolv_conf(host), host);
        assert!(Dns::parse(&v(&["none"]), &[], &[], &[]).unwrap().disabled);
        assert!(Dns::parse(&v(&["none", "1.1.1.1"]), &[], &[], &[]).is_err());
        assert!(Dns::parse(&v(&["not-an-ip"]), &[], &[], &[]).is_err());
        for bad in ["nocolon", ":1.2.3.4", "h:notip"] {
            assert!(HostEntry::parse(bad).is_err(), "{bad}");
        }
        // Layering: a run's servers replace the container's; hosts add up.
        let run = Dns::parse(&v(&["8.8.4.4"]), &[], &[], &v(&["r:10.0.0.9"])).unwrap();
        let m = run.or(&d);
        assert_eq!(m.servers, [IpAddr::from([8, 8, 4, 4])]);
        assert_eq!(m.search, ["example.com"]);
        assert_eq!(m.hosts.len(), 3);
    }

    #[test]
    fn namespaces_layer() {
        let from = Namespaces::parse(
            Some("host"),
            Some("host"),
            None,
            None,
            Some("private"),
            None,
        )
        .unwrap();
        let run = Namespaces::parse(Some("none"), None, Some("host"), None, None, None).unwrap();
        let m = run.or(&from);
        assert_eq!(m.network, Some(NetworkMode::None));
        assert_eq!(m.pid, Some(NamespaceMode::Host));
        assert_eq!(m.ipc, Some(NamespaceMode::Host));
        assert_eq!(m.uts, None);
        assert_eq!(m.cgroup, Some(NamespaceMode::Private));
        assert!(
            Namespaces::parse(None, Some("bogus"), None, None, None, None)
                .unwrap_err()
                .to_string()
                .contains("--pid")
        );
    }

    #[test]
    fn dns_flags_refused_with_network_none_before_their_values_are_checked() {
        let none = Some(NetworkMode::None);
        let e = Dns::refuse_with_network_none(none.clone(), &v(&["example.com"]), &[], &[])
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the --dns option cannot be used with --network=none"
        );
        let e = Dns::refuse_with_network_none(none.clone(), &[], &[], &v(&["example.com"]))
            .unwrap_err();
        assert!(e.to_string().starts_with("the --dns-search option"));
        let e = Dns::refuse_with_network_none(none.clone(), &[], &v(&["use-vc"]), &[]).unwrap_err();
        assert!(e.to_string().starts_with("the --dns-option option"));
        assert!(Dns::refuse_with_network_none(none.clone(), &[], &[], &[]).is_ok());
        let host = Some(NetworkMode::Host);
        assert!(Dns::refuse_with_network_none(host, &v(&["1.1.1.1"]), &[], &[]).is_ok());
        let e = Dns::refuse_add_host_with_no_hosts(true, &v(&["h:1.2.3.4"])).unwrap_err();
        assert!(e.to_string().contains("--no-hosts and --add-host conflict"));
        assert!(Dns::refuse_add_host_with_no_hosts(false, &v(&["h:1.2.3.4"])).is_ok());
        assert!(Dns::refuse_add_host_with_no_hosts(true, &[]).is_ok());
    }

    #[test]
    fn memory_swap_takes_sizes_and_minus_one() {
        assert_eq!(Resources::parse_memory_swap("-1").unwrap(), -1);
        assert_eq!(Resources::parse_memory_swap("70m").unwrap(), 70 << 20);
        assert!(Resources::parse_memory_swap("-2").is_err());
        assert!(Resources::parse_memory_swap("bogus").is_err());
    }

    #[test]
    fn state_round_trip_and_legacy() {
        let d = RunDefaults {
            namespaces: Namespaces {
                network: Some(NetworkMode::Host),
                ..Default::default()
            },
            dns: Dns::parse(&v(&["1.1.1.1"]), &[], &[], &v(&["h:1.2.3.4"])).unwrap(),
            group_add: v(&["wheel"]),
            resources: Resources::parse(Some("1g"), None, &[]).unwrap(),
            ..Default::default()
        };
        let j = serde_json::to_value(&d).unwrap();
        assert_eq!(RunDefaults::from_state_value(&j), d);
        // The bag hod wrote before the typed defaults.
        let old = serde_json::json!({
            "capAdd": ["NET_ADMIN"], "capDrop": [], "devices": [], "ulimits": ["nofile=10:20"],
            "volumes": [], "seccompUnconfined": true, "noNewPrivileges": false,
            "securityOpts": ["seccomp=unconfined"], "network": "", "shmSize": "",
            "noHosts": false, "noHostname": false,
            "dns": ["1.1.1.1"], "addHosts": ["h:1.2.3.4"], "pid": "host", "groupAdd": ["10"],
            "memory": "64m",
        });
        let d = RunDefaults::from_state_value(&old);
        assert_eq!(d.security.cap_add, ["NET_ADMIN"]);
        assert!(d.security.seccomp_unconfined());
        assert_eq!(d.resources.ulimits[0].hard, 20);
        assert_eq!(d.resources.memory, Some(64 << 20));
        assert_eq!(d.dns.servers.len(), 1);
        assert_eq!(d.dns.hosts[0].name, "h");
        assert_eq!(d.namespaces.pid, Some(NamespaceMode::Host));
        assert_eq!(d.namespaces.network, None);
        assert_eq!(d.group_add, ["10"]);
        assert_eq!(
            RunDefaults::from_state_value(&serde_json::Value::Null),
            RunDefaults::default()
        );
        // Snake-case keys (an older from) and nulls.
        let old = serde_json::json!({"cap_drop": ["CHOWN"], "security_opts": null, "network": "none", "userns": null});
        let d = RunDefaults::from_state_value(&old);
        assert_eq!(d.security.cap_drop, ["CHOWN"]);
        assert_eq!(d.namespaces.network, Some(NetworkMode::None));
    }
}
