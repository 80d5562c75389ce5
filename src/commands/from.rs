//! `hod from`: create a working container from an image or `scratch`; prints its name.
use std::path::PathBuf;

use builder::options::FromOptions;
use builder::pull::PullPolicy;
use builder::Builder;
use serde_json::json;

use crate::ctx::Ctx;
use crate::flags::{registry_context, PlatformFlags, RegistryFlags};
use crate::output::{self, StderrReporter};

/// `hod from [options] IMAGE`
#[derive(Debug, clap::Args)]
pub struct FromArgs {
    /// The image: `scratch`, a name, an ID, or a transport reference (`oci:DIR[:TAG]`, …).
    pub image: String,
    /// Name for the working container (default `<image>-working-container`).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Write the container ID to this file.
    #[arg(long, value_name = "FILE")]
    pub cidfile: Option<PathBuf>,
    /// Pull policy: always, missing, never, newer (bare --pull means always).
    #[arg(long, value_name = "POLICY", num_args = 0..=1, require_equals = true, default_missing_value = "always")]
    pub pull: Option<String>,
    /// Same as --pull=always.
    #[arg(long, hide = true)]
    pub pull_always: bool,
    /// Same as --pull=never.
    #[arg(long, hide = true)]
    pub pull_never: bool,
    /// Don't print progress information when pulling.
    #[arg(short, long)]
    pub quiet: bool,
    /// Default format of images committed from the container: oci or docker (env BUILDAH_FORMAT).
    #[arg(short, long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Isolation for `run`: oci, chroot or rootless (env BUILDAH_ISOLATION).
    #[arg(long, value_name = "TYPE")]
    pub isolation: Option<String>,
    /// `--platform`, `--arch`, `--os`, `--variant`.
    #[command(flatten)]
    pub platform: PlatformFlags,
    /// Add a capability for later `run`s.
    #[arg(long, value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a capability for later `run`s.
    #[arg(long, value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Bind mount a volume into later `run`s.
    #[arg(short, long, value_name = "HOST-DIR:CONTAINER-DIR[:OPTIONS]")]
    pub volume: Vec<String>,
    /// Ulimit for later `run`s (type=soft[:hard]).
    #[arg(long, value_name = "TYPE=LIMIT")]
    pub ulimit: Vec<String>,
    /// Device to add to later `run`s.
    #[arg(long, value_name = "DEVICE")]
    pub device: Vec<String>,
    /// Security option for later `run`s.
    #[arg(long, value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// Network mode for later `run`s.
    #[arg(long, alias = "net", value_name = "MODE")]
    pub network: Option<String>,
    /// DNS server for later `run`s.
    #[arg(long, value_name = "IP")]
    pub dns: Vec<String>,
    /// DNS search domain for later `run`s.
    #[arg(long, value_name = "DOMAIN")]
    pub dns_search: Vec<String>,
    /// DNS option for later `run`s.
    #[arg(long, value_name = "OPT")]
    pub dns_option: Vec<String>,
    /// Add a host:ip entry to /etc/hosts in later `run`s.
    #[arg(long, value_name = "HOST:IP")]
    pub add_host: Vec<String>,
    /// User namespace for later `run`s.
    #[arg(long, value_name = "HOW")]
    pub userns: Option<String>,
    /// UTS namespace for later `run`s.
    #[arg(long, value_name = "HOW")]
    pub uts: Option<String>,
    /// PID namespace for later `run`s.
    #[arg(long, value_name = "HOW")]
    pub pid: Option<String>,
    /// IPC namespace for later `run`s.
    #[arg(long, value_name = "HOW")]
    pub ipc: Option<String>,
    /// Cgroup namespace for later `run`s.
    #[arg(long, value_name = "HOW")]
    pub cgroupns: Option<String>,
    /// Supplementary group for later `run`s.
    #[arg(long, value_name = "GROUP")]
    pub group_add: Vec<String>,
    /// Size of /dev/shm for later `run`s.
    #[arg(long, value_name = "SIZE")]
    pub shm_size: Option<String>,
    /// Memory limit for later `run`s.
    #[arg(short, long, value_name = "LIMIT")]
    pub memory: Option<String>,
    /// `--authfile`, `--creds`, `--cert-dir`, `--tls-verify`, `--retry`, `--retry-delay`.
    #[command(flatten)]
    pub registry: RegistryFlags,
}

/// Parse `--pull` values as buildah does (`true` = always, `false` = missing).
pub fn parse_pull_policy(s: &str) -> anyhow::Result<PullPolicy> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "always" | "true" => PullPolicy::Always,
        "missing" | "ifmissing" | "false" => PullPolicy::Missing,
        "never" => PullPolicy::Never,
        "newer" | "ifnewer" => PullPolicy::Newer,
        _ => anyhow::bail!("unsupported pull policy {s:?}"),
    })
}

/// The pull policy from `--pull`, `--pull-always`, `--pull-never`.
pub fn pull_policy(pull: Option<&str>, always: bool, never: bool) -> anyhow::Result<PullPolicy> {
    if [pull.is_some(), always, never]
        .iter()
        .filter(|b| **b)
        .count()
        > 1
    {
        anyhow::bail!("can only set one of 'pull' or 'pull-always' or 'pull-never'");
    }
    if always {
        return Ok(PullPolicy::Always);
    }
    if never {
        return Ok(PullPolicy::Never);
    }
    pull.map(parse_pull_policy)
        .unwrap_or(Ok(PullPolicy::Missing))
}

/// The settings later `run`s start from: the run module's `RunDefaults` (what it applies),
/// plus the other run-related flags kept verbatim (camelCase) for it to pick up.
pub fn run_defaults(a: &FromArgs) -> anyhow::Result<serde_json::Value> {
    let defaults = builder::run::RunDefaults {
        cap_add: a.cap_add.clone(),
        cap_drop: a.cap_drop.clone(),
        devices: a.device.clone(),
        ulimits: a.ulimit.clone(),
        volumes: a.volume.clone(),
        seccomp_unconfined: a
            .security_opt
            .iter()
            .any(|o| o == "seccomp=unconfined" || o == "seccomp:unconfined"),
        no_new_privileges: a.security_opt.iter().any(|o| {
            o == "no-new-privileges"
                || o == "no-new-privileges:true"
                || o == "no-new-privileges=true"
        }),
        ..Default::default()
    };
    let mut v = serde_json::to_value(defaults)?;
    if let serde_json::Value::Object(m) = &mut v {
        let extra = json!({
            "securityOpts": a.security_opt, "network": a.network, "dns": a.dns, "dnsSearch": a.dns_search,
            "dnsOptions": a.dns_option, "addHosts": a.add_host, "userns": a.userns, "uts": a.uts,
            "pid": a.pid, "ipc": a.ipc, "cgroupns": a.cgroupns, "groupAdd": a.group_add,
            "shmSize": a.shm_size, "memory": a.memory,
        });
        if let serde_json::Value::Object(e) = extra {
            for (k, val) in e {
                if !(val.is_null() || val.as_array().is_some_and(|x| x.is_empty())) {
                    m.entry(k).or_insert(val);
                }
            }
        }
    }
    Ok(v)
}

/// Create the container.
pub fn run(a: FromArgs, ctx: &Ctx) -> anyhow::Result<i32> {
    let mut opts = FromOptions::default();
    opts.name = a.name.clone();
    opts.pull_policy = pull_policy(a.pull.as_deref(), a.pull_always, a.pull_never)?;
    opts.format = super::parse_format(&a.format.clone().unwrap_or_else(super::default_format))?;
    opts.isolation = a
        .isolation
        .clone()
        .or_else(|| std::env::var("BUILDAH_ISOLATION").ok())
        .unwrap_or_default();
    if let Some(iso) = Some(opts.isolation.as_str()).filter(|s| !s.is_empty()) {
        if !matches!(iso, "oci" | "chroot" | "rootless" | "default") {
            anyhow::bail!("unrecognized isolation type {iso:?}");
        }
    }
    opts.registry = registry_context(&a.registry, Some(&a.platform), ctx)?;
    opts.run_defaults = run_defaults(&a)?;
    let store = ctx.store()?;
    let reporter = StderrReporter { quiet: a.quiet };
    let b = Builder::new_from(&store, &a.image, &opts, &reporter)?;
    if let Some(path) = &a.cidfile {
        super::write_user_file(path, b.id())?;
    }
    output::println(b.name())?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_defaults_reach_the_run_module() {
        use clap::Parser;
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            a: FromArgs,
        }
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
            "busybox",
        ]);
        let v = run_defaults(&t.a).unwrap();
        let d: builder::run::RunDefaults = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(d.cap_add, vec!["NET_ADMIN"]);
        assert_eq!(d.ulimits, vec!["nofile=10:20"]);
        assert!(d.seccomp_unconfined);
        assert!(!d.no_new_privileges);
        assert_eq!(v["dns"][0], "1.1.1.1");
        // no --network given: no network default (RunDefaults writes an empty one)
        assert!(d.network.is_empty());
        assert!(v.get("network").is_none_or(|n| n.is_null() || n == ""));
    }

    #[test]
    fn pull_policies() {
        let cases = [
            (None, false, false, PullPolicy::Missing),
            (Some("always"), false, false, PullPolicy::Always),
            (Some("true"), false, false, PullPolicy::Always),
            (Some("false"), false, false, PullPolicy::Missing),
            (Some("Never"), false, false, PullPolicy::Never),
            (Some("newer"), false, false, PullPolicy::Newer),
            (None, true, false, PullPolicy::Always),
            (None, false, true, PullPolicy::Never),
        ];
        for (p, a, n, want) in cases {
            assert_eq!(pull_policy(p, a, n).unwrap(), want, "{p:?} {a} {n}");
        }
        assert!(pull_policy(Some("always"), true, false).is_err());
        assert!(pull_policy(Some("sometimes"), false, false).is_err());
    }
}
