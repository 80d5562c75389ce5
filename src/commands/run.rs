//! `hod run` (owned by the runtime work).
use std::path::PathBuf;

use builder::run::{Isolation, Namespaces, Resources, RunOptions, Security};
use builder::Builder;

use crate::ctx::Ctx;

/// `hod run [options] [--] CONTAINER COMMAND [ARG...]`
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Add a history entry noting the command (`<shell> <command>`) to the next commit.
    #[arg(long, env = "BUILDAH_HISTORY")]
    pub add_history: bool,
    /// Add a capability (repeatable, or a comma-separated list).
    #[arg(long = "cap-add", value_name = "CAP", value_delimiter = ',')]
    pub cap_add: Vec<String>,
    /// Drop a capability (repeatable, or a comma-separated list).
    #[arg(long = "cap-drop", value_name = "CAP", value_delimiter = ',')]
    pub cap_drop: Vec<String>,
    /// cgroup namespace: private or host (default: the container's, else hod's).
    #[arg(long)]
    pub cgroupns: Option<String>,
    /// Context directory for relative `--mount type=bind` sources.
    #[arg(long)]
    pub contextdir: Option<PathBuf>,
    /// Add a host device: HOST[:CONTAINER][:PERMS].
    #[arg(long)]
    pub device: Vec<String>,
    /// Set an environment variable for this run.
    #[arg(short = 'e', long)]
    pub env: Vec<String>,
    /// Hostname.
    #[arg(long)]
    pub hostname: Option<String>,
    /// IPC namespace: private, host, or a namespace path to join (/proc/PID/ns/…).
    #[arg(long)]
    pub ipc: Option<String>,
    /// Isolation: oci, chroot or rootless (default: BUILDAH_ISOLATION, else the container's).
    #[arg(long)]
    pub isolation: Option<String>,
    /// Attach a mount: type=bind|tmpfs|cache,….
    #[arg(long)]
    pub mount: Vec<String>,
    /// Network: private, none, host, or a path to join (/proc/PID/ns/net).
    #[arg(long, visible_alias = "net")]
    pub network: Option<String>,
    /// Do not generate /etc/hostname.
    #[arg(long)]
    pub no_hostname: bool,
    /// Do not generate /etc/hosts.
    #[arg(long)]
    pub no_hosts: bool,
    /// chroot instead of pivot_root (also when BUILDAH_NOPIVOT is set).
    #[arg(long)]
    pub no_pivot: bool,
    /// PID namespace: private, host, or a namespace path to join (/proc/PID/ns/…).
    #[arg(long)]
    pub pid: Option<String>,
    /// An external OCI runtime (e.g. runc) instead of the embedded one (default: BUILDAH_RUNTIME).
    #[arg(long)]
    pub runtime: Option<PathBuf>,
    /// Global flag for the external runtime (without the leading --).
    #[arg(long = "runtime-flag", value_delimiter = ',')]
    pub runtime_flag: Vec<String>,
    /// Security option: seccomp=unconfined|PATH, apparmor=, label=, no-new-privileges, mask=, unmask=.
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Allocate a pseudo-terminal (default: when stdin is a terminal).
    #[arg(short = 't', long = "tty", visible_alias = "terminal", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub tty: Option<bool>,
    /// Resource limit: type=soft[:hard].
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// user[:group] to run as.
    #[arg(long)]
    pub user: Option<String>,
    /// UTS namespace: private, host, or a namespace path to join (/proc/PID/ns/…).
    #[arg(long)]
    pub uts: Option<String>,
    /// Exit codes that count as success.
    #[arg(long = "valid-exit-codes", value_delimiter = ',')]
    pub valid_exit_codes: Vec<i32>,
    /// Bind mount: SOURCE:DESTINATION[:OPTIONS].
    #[arg(short = 'v', long)]
    pub volume: Vec<String>,
    /// Working directory for this run.
    #[arg(long)]
    pub workingdir: Option<String>,
    /// The working container.
    pub container: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Translate the flags into library options.
pub fn options(args: &RunArgs) -> anyhow::Result<RunOptions> {
    let mut o = RunOptions::default();
    o.add_history = args.add_history;
    o.isolation = args
        .isolation
        .as_deref()
        .map(Isolation::parse)
        .transpose()?;
    o.runtime = args.runtime.clone().filter(|r| !r.as_os_str().is_empty());
    o.runtime_flags = args.runtime_flag.clone();
    o.user = args.user.clone();
    o.workdir = args.workingdir.clone();
    o.env = args.env.clone();
    o.hostname = args.hostname.clone();
    o.no_hosts = args.no_hosts;
    o.no_hostname = args.no_hostname;
    o.devices = args.device.clone();
    o.volumes = args.volume.clone();
    o.mounts = args.mount.clone();
    o.context_dir = args.contextdir.clone();
    o.namespaces = Namespaces::parse(
        args.network.as_deref(),
        args.pid.as_deref(),
        args.ipc.as_deref(),
        args.uts.as_deref(),
        args.cgroupns.as_deref(),
        None,
    )?;
    o.terminal = args.tty;
    o.resources = Resources::parse(None, None, &args.ulimit)?;
    o.no_pivot = args.no_pivot;
    o.security = Security::parse_opts(&args.security_opt)?;
    o.security.cap_add = args.cap_add.clone();
    o.security.cap_drop = args.cap_drop.clone();
    Ok(o)
}

/// Run the command; the result is hod's exit code.
pub fn run(args: RunArgs, ctx: &Ctx) -> anyhow::Result<i32> {
    let opts = options(&args)?;
    if args.command.is_empty() {
        anyhow::bail!("command must be specified");
    }
    let store = ctx.store()?;
    let mut b = Builder::open(&store, &args.container)?;
    let code = match b.run(&store, &args.command, &opts) {
        Ok(code) => code,
        Err(e) => match e.exit_status() {
            // The command could not be executed: say which and why, keep its status.
            Some(code) => {
                eprintln!("Error: {e:#}");
                code
            }
            None => return Err(e.into()),
        },
    };
    if !args.valid_exit_codes.is_empty() {
        if args.valid_exit_codes.contains(&code) {
            return Ok(0);
        }
        if code == 0 {
            anyhow::bail!("exit status 0 is not in --valid-exit-codes");
        }
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        a: RunArgs,
    }

    fn parse(args: &[&str]) -> RunArgs {
        T::try_parse_from(std::iter::once("run").chain(args.iter().copied()))
            .unwrap()
            .a
    }

    #[test]
    fn flags() {
        let a = parse(&[
            "-t",
            "--user",
            "u1",
            "-v",
            "/a:/b:ro",
            "--network=host",
            "ctr",
            "--",
            "sh",
            "-c",
            "x",
        ]);
        assert_eq!(a.tty, Some(true));
        assert_eq!(a.container, "ctr");
        assert_eq!(a.command, ["sh", "-c", "x"]);
        let o = options(&a).unwrap();
        assert_eq!(o.network(), builder::run::NetworkMode::Host);
        let a = parse(&["-t", "ctr", "sh"]);
        assert_eq!((a.tty, a.container.as_str()), (Some(true), "ctr"));
        let a = parse(&["--tty=false", "--isolation", "chroot", "ctr", "ls", "-l"]);
        assert_eq!(a.tty, Some(false));
        assert_eq!(a.command, ["ls", "-l"]);
        assert_eq!(options(&a).unwrap().isolation, Some(Isolation::Chroot));
        let a = parse(&[
            "--valid-exit-codes",
            "0,1",
            "--runtime-flag",
            "log-format=json",
            "ctr",
            "true",
        ]);
        assert_eq!(a.valid_exit_codes, [0, 1]);
        assert!(options(&parse(&["--network", "bogus", "c", "x"])).is_err());
        assert!(options(&parse(&["--security-opt", "bogus=x", "c", "x"])).is_err());
        let o = options(&parse(&["--security-opt", "label=disable", "c", "x"])).unwrap();
        assert_eq!(o.security.labels, ["disable"]);
    }
}
