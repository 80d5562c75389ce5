//! The flag group of the settings every later `run` starts from, shared by `from` and `bud`
//! (`#[command(flatten)]`): it only collects strings and hands them to the library's parsers.
use builder::run::{Dns, Namespaces, Resources, RunDefaults, Security};

/// `--cap-add`, `--security-opt`, `--network`, `--dns`, `--memory`, … of `from` and `bud`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RunDefaultsArgs {
    /// Add a capability for later `run`s (repeatable, or a comma-separated list).
    #[arg(long, value_name = "CAP", value_delimiter = ',')]
    pub cap_add: Vec<String>,
    /// Drop a capability for later `run`s (repeatable, or a comma-separated list).
    #[arg(long, value_name = "CAP", value_delimiter = ',')]
    pub cap_drop: Vec<String>,
    /// Bind mount a volume into later `run`s.
    #[arg(short, long, value_name = "HOST-DIR:CONTAINER-DIR[:OPTIONS]")]
    pub volume: Vec<String>,
    /// Ulimit for later `run`s (type=soft[:hard]).
    #[arg(long, value_name = "TYPE=LIMIT", value_delimiter = ',')]
    pub ulimit: Vec<String>,
    /// Device to add to later `run`s.
    #[arg(long, value_name = "DEVICE")]
    pub device: Vec<String>,
    /// Security option for later `run`s: seccomp=unconfined|PATH, apparmor=, label=,
    /// no-new-privileges, mask=, unmask=.
    #[arg(long, value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// Network mode for later `run`s: private, none or host.
    #[arg(long, alias = "net", value_name = "MODE")]
    pub network: Option<String>,
    /// DNS server for later `run`s' /etc/resolv.conf (none: keep the image's).
    #[arg(long, value_name = "IP", value_delimiter = ',')]
    pub dns: Vec<String>,
    /// DNS search domain for later `run`s' /etc/resolv.conf.
    #[arg(long, value_name = "DOMAIN", value_delimiter = ',')]
    pub dns_search: Vec<String>,
    /// DNS option for later `run`s' /etc/resolv.conf.
    #[arg(long, value_name = "OPT", value_delimiter = ',')]
    pub dns_option: Vec<String>,
    /// Add a host:ip entry to /etc/hosts in later `run`s.
    #[arg(long, value_name = "HOST:IP", value_delimiter = ',')]
    pub add_host: Vec<String>,
    /// User namespace for later `run`s: container (private) or host.
    #[arg(long, value_name = "HOW")]
    pub userns: Option<String>,
    /// UTS namespace for later `run`s: private or host.
    #[arg(long, value_name = "HOW")]
    pub uts: Option<String>,
    /// PID namespace for later `run`s: private or host.
    #[arg(long, value_name = "HOW")]
    pub pid: Option<String>,
    /// IPC namespace for later `run`s: private or host.
    #[arg(long, value_name = "HOW")]
    pub ipc: Option<String>,
    /// Cgroup namespace for later `run`s: private or host.
    #[arg(long, value_name = "HOW")]
    pub cgroupns: Option<String>,
    /// Supplementary group (name or GID) for later `run`s.
    #[arg(long, value_name = "GROUP", value_delimiter = ',')]
    pub group_add: Vec<String>,
    /// Size of /dev/shm for later `run`s.
    #[arg(long, value_name = "SIZE")]
    pub shm_size: Option<String>,
    /// Memory limit for later `run`s (number with unit b, k, m or g).
    #[arg(short, long, value_name = "LIMIT")]
    pub memory: Option<String>,
    /// Cgroup under which later `run`s' cgroups are made (cgroupfs: relative to hod's own).
    #[arg(long, value_name = "PATH")]
    pub cgroup_parent: Option<String>,
    /// Memory plus swap limit for later `run`s (as --memory; -1: unlimited swap).
    #[arg(long, value_name = "LIMIT", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// CPU shares (relative weight) for later `run`s.
    #[arg(short = 'c', long, value_name = "SHARES", allow_hyphen_values = true,
          value_parser = parse_cpu_shares)]
    pub cpu_shares: Option<u64>,
}

/// `--cpu-shares` as Go's `strconv.ParseUint` (buildah's message quotes it).
fn parse_cpu_shares(s: &str) -> Result<u64, String> {
    s.parse()
        .map_err(|_| format!("strconv.ParseUint: parsing {s:?}: invalid syntax"))
}

impl RunDefaultsArgs {
    /// `bud`'s typed defaults: as [`defaults`](Self::defaults) with bud's `--no-hosts`,
    /// after buildah's build-only checks (no `--dns*` flag with `--network=none`, no
    /// `--add-host` with `--no-hosts`).
    pub fn bud_defaults(&self, no_hosts: bool) -> anyhow::Result<RunDefaults> {
        let network = self
            .network
            .as_deref()
            .map(builder::run::NetworkMode::parse)
            .transpose()?;
        Dns::refuse_with_network_none(network, &self.dns, &self.dns_option, &self.dns_search)?;
        Dns::refuse_add_host_with_no_hosts(no_hosts, &self.add_host)?;
        let mut d = self.defaults()?;
        d.no_hosts = no_hosts;
        Ok(d)
    }

    /// The library's typed defaults.
    pub fn defaults(&self) -> anyhow::Result<RunDefaults> {
        let mut security = Security::parse_opts(&self.security_opt)?;
        security.cap_add = self.cap_add.clone();
        security.cap_drop = self.cap_drop.clone();
        let mut d = RunDefaults::default();
        d.namespaces = Namespaces::parse(
            self.network.as_deref(),
            self.pid.as_deref(),
            self.ipc.as_deref(),
            self.uts.as_deref(),
            self.cgroupns.as_deref(),
            self.userns.as_deref(),
        )?;
        d.security = security;
        d.resources = Resources::parse(
            self.memory.as_deref(),
            self.shm_size.as_deref(),
            &self.ulimit,
        )?;
        d.resources.cpu_shares = self.cpu_shares;
        d.resources.memory_swap = self
            .memory_swap
            .as_deref()
            .map(Resources::parse_memory_swap)
            .transpose()?;
        d.dns = Dns::parse(
            &self.dns,
            &self.dns_search,
            &self.dns_option,
            &self.add_host,
        )?;
        d.devices = self.device.clone();
        d.volumes = self.volume.clone();
        d.group_add = self.group_add.clone();
        d.cgroup_parent = self.cgroup_parent.clone();
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: RunDefaultsArgs,
    }

    #[test]
    fn flags_become_typed_defaults() {
        let t = T::parse_from([
            "x",
            "--cap-add",
            "NET_ADMIN",
            "--security-opt",
            "seccomp=unconfined",
            "--ulimit",
            "nofile=10:20",
            "--dns",
            "1.1.1.1",
            "--add-host",
            "h:10.0.0.1",
            "--pid",
            "host",
            "--memory",
            "64m",
            "--group-add",
            "wheel",
        ]);
        let d = t.a.defaults().unwrap();
        assert_eq!(d.security.cap_add, vec!["NET_ADMIN"]);
        assert!(d.security.seccomp_unconfined());
        assert_eq!(d.resources.ulimits[0].hard, 20);
        assert_eq!(d.resources.memory, Some(64 << 20));
        assert_eq!(d.dns.servers[0].to_string(), "1.1.1.1");
        assert_eq!(d.dns.hosts[0].name, "h");
        assert_eq!(d.namespaces.pid, Some(builder::run::NamespaceMode::Host));
        assert_eq!(d.namespaces.network, None, "no --network: no default");
        assert_eq!(d.group_add, ["wheel"]);
        let t = T::parse_from(["x", "-c", "2", "--memory-swap", "-1"]);
        let d = t.a.defaults().unwrap();
        assert_eq!(
            (d.resources.cpu_shares, d.resources.memory_swap),
            (Some(2), Some(-1))
        );
        let e = T::try_parse_from(["x", "--cpu-shares", "bogus"])
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("parsing \"bogus\": invalid syntax"),
            "{e}"
        );
        // A missing value takes the next flag, as Go's pflag does, and fails on it.
        assert!(T::try_parse_from(["x", "-c", "--memory", "1m"]).is_err());
        let t = T::parse_from(["x", "--dns=example.com", "--network=none"]);
        let e = t.a.bud_defaults(false).unwrap_err().to_string();
        assert_eq!(e, "the --dns option cannot be used with --network=none");
        let bad = T::parse_from(["x", "--security-opt", "bogus=1"]);
        assert!(bad.a.defaults().is_err());
    }
}
