//! The clap root: global options (buildah's) and the subcommands.
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::commands::{self, copy::Verb};
use crate::ctx::Ctx;

/// hod: a daemonless, scriptable OCI container image builder (buildah-compatible).
#[derive(Debug, Parser)]
#[command(
    name = "hod",
    version = concat!("version ", env!("CARGO_PKG_VERSION"), " (image-spec 1.1.0, runtime-spec 1.2.0)"),
    about,
    disable_help_subcommand = true,
    // buildah's (cobra/pflag) parser lets the last of a repeated option win; scripts and
    // buildah's own test helpers rely on it (`--root` given twice, `--quiet --quiet`).
    args_override_self = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Global options.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand accepts (before or after the subcommand name).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GlobalArgs {
    /// Storage root dir (default from storage.conf, else /var/lib/containers/storage).
    #[arg(
        long,
        global = true,
        help_heading = "Global Options",
        value_name = "DIR"
    )]
    pub root: Option<PathBuf>,
    /// Storage state dir (default from storage.conf, else /run/containers/storage).
    #[arg(
        long,
        global = true,
        help_heading = "Global Options",
        value_name = "DIR"
    )]
    pub runroot: Option<PathBuf>,
    /// Storage driver: overlay or vfs (env STORAGE_DRIVER; default from storage.conf).
    #[arg(
        long,
        global = true,
        help_heading = "Global Options",
        value_name = "DRIVER"
    )]
    pub storage_driver: Option<String>,
    /// Storage driver option, e.g. overlay.mount_program=/usr/bin/fuse-overlayfs (repeatable, comma-separated; env STORAGE_OPTS).
    #[arg(
        long,
        global = true,
        help_heading = "Global Options",
        value_name = "OPTION",
        value_delimiter = ','
    )]
    pub storage_opt: Vec<String>,
    /// The log level: trace, debug, info, warn, error, fatal or panic.
    #[arg(
        long,
        global = true,
        help_heading = "Global Options",
        value_name = "LEVEL",
        default_value = "warn"
    )]
    pub log_level: String,
    /// Print debugging information (same as --log-level=debug).
    #[arg(long, global = true, help_heading = "Global Options", hide = true)]
    pub debug: bool,
    /// Path to registries.conf (not usually used).
    #[arg(
        long,
        global = true,
        help_heading = "Global Options",
        value_name = "FILE"
    )]
    pub registries_conf: Option<PathBuf>,
    /// Path to a registries.conf.d directory (not usually used).
    #[arg(
        long,
        global = true,
        help_heading = "Global Options",
        value_name = "DIR"
    )]
    pub registries_conf_dir: Option<PathBuf>,
    /// Path to the short-name alias cache file (not usually used).
    #[arg(
        long,
        global = true,
        help_heading = "Global Options",
        value_name = "FILE"
    )]
    pub short_name_alias_conf: Option<PathBuf>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Add the contents of files, URLs or directories to a container.
    Add(commands::copy::CopyArgs),
    /// Build an image using instructions from Containerfiles.
    #[command(name = "bud", aliases = ["build", "build-using-dockerfile"])]
    Bud(Box<commands::bud::BudArgs>),
    /// Create an image from a working container.
    Commit(commands::commit::CommitArgs),
    /// Update image configuration settings in a working container.
    Config(commands::config::ConfigArgs),
    /// List working containers and their base images.
    #[command(visible_aliases = ["list", "ls", "ps"])]
    Containers(commands::containers::ContainersArgs),
    /// Copy the contents of files or directories into a container.
    Copy(commands::copy::CopyArgs),
    /// Create a working container based on an image.
    From(commands::from::FromArgs),
    /// List images in local storage.
    Images(commands::images::ImagesArgs),
    /// Display information about the host and the store.
    Info(commands::info::InfoArgs),
    /// Inspect the configuration of a container or image.
    Inspect(commands::inspect::InspectArgs),
    /// Login to a container registry.
    Login(commands::login::LoginArgs),
    /// Logout of a container registry.
    Logout(commands::logout::LogoutArgs),
    /// Manipulate manifest lists.
    Manifest(commands::manifest::ManifestArgs),
    /// Mount a working container's root filesystem.
    Mount(commands::mount::MountArgs),
    /// Pull an image from a transport reference into local storage.
    Pull(commands::pull::PullArgs),
    /// Push an image from local storage to a transport reference.
    Push(commands::push::PushArgs),
    /// Rename a working container.
    Rename(commands::rename::RenameArgs),
    /// Remove one or more working containers.
    #[command(visible_alias = "delete")]
    Rm(commands::rm::RmArgs),
    /// Remove one or more images from local storage.
    Rmi(commands::rmi::RmiArgs),
    /// Run a command inside of the container.
    Run(commands::run::RunArgs),
    /// Add an additional name to a local image.
    Tag(commands::tag::TagArgs),
    /// Unmount the root file system of working containers.
    #[command(visible_alias = "unmount")]
    Umount(commands::umount::UmountArgs),
    /// Run a command in a modified user namespace.
    Unshare(commands::unshare::UnshareArgs),
    /// Display the hod version information.
    Version(commands::version::VersionArgs),
}

impl Command {
    /// Whether a rootless user's hod runs this in its user namespace: everything but
    /// `version` and `mount` (which, like buildah's, must be run from `hod unshare` for a
    /// mount to outlive it), as buildah decides it.
    pub fn wants_userns(&self) -> bool {
        !matches!(self, Command::Version(_) | Command::Mount(_))
    }

    /// Run the subcommand; the result is the exit code.
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<i32> {
        match self {
            Command::Add(a) => commands::copy::run(Verb::Add, a, ctx),
            Command::Bud(a) => commands::bud::run(*a, ctx),
            Command::Commit(a) => commands::commit::run(a, ctx),
            Command::Config(a) => commands::config::run(a, ctx),
            Command::Containers(a) => commands::containers::run(a, ctx),
            Command::Copy(a) => commands::copy::run(Verb::Copy, a, ctx),
            Command::From(a) => commands::from::run(a, ctx),
            Command::Images(a) => commands::images::run(a, ctx),
            Command::Info(a) => commands::info::run(a, ctx),
            Command::Inspect(a) => commands::inspect::run(a, ctx),
            Command::Login(a) => commands::login::run(a, ctx),
            Command::Logout(a) => commands::logout::run(a, ctx),
            Command::Manifest(a) => commands::manifest::run(a, ctx),
            Command::Mount(a) => commands::mount::run(a, ctx),
            Command::Pull(a) => commands::pull::run(a, ctx),
            Command::Push(a) => commands::push::run(a, ctx),
            Command::Rename(a) => commands::rename::run(a, ctx),
            Command::Rm(a) => commands::rm::run(a, ctx),
            Command::Rmi(a) => commands::rmi::run(a, ctx),
            Command::Run(a) => commands::run::run(a, ctx),
            Command::Tag(a) => commands::tag::run(a, ctx),
            Command::Umount(a) => commands::umount::run(a, ctx),
            Command::Unshare(a) => commands::unshare::run(a, ctx),
            Command::Version(a) => commands::version::run(a, ctx),
        }
    }
}

/// Subcommands that, as in buildah (`SetInterspersed(false)` + `VerifyFlagsArgsOrder`),
/// refuse options after the first image or container name.
const STRICT_ORDER: &[&str] = &[
    "add", "commit", "config", "copy", "from", "images", "inspect", "mount", "pull", "push", "rm",
    "rmi", "umount",
];

/// Whether `arg` (an option as typed) consumes the next argv element as its value.
fn takes_separate_value(cmd: &clap::Command, arg: &str) -> bool {
    let find = |a: &clap::Arg| -> bool {
        let wants = a.get_action().takes_values();
        let optional = a.get_num_args().is_some_and(|n| n.min_values() == 0);
        wants && !optional
    };
    if let Some(long) = arg.strip_prefix("--") {
        if long.contains('=') {
            return false;
        }
        return cmd
            .get_arguments()
            .find(|a| {
                a.get_long() == Some(long)
                    || a.get_all_aliases().is_some_and(|al| al.contains(&long))
            })
            .is_some_and(find);
    }
    // `-x` takes the next element; `-xVALUE` / `-abc` (flags only) do not.
    let shorts: Vec<char> = arg.chars().skip(1).collect();
    match shorts.as_slice() {
        [c] => cmd
            .get_arguments()
            .find(|a| a.get_short() == Some(*c))
            .is_some_and(find),
        _ => {
            let last = shorts.last().copied();
            let all_flags = shorts.iter().take(shorts.len().saturating_sub(1)).all(|c| {
                cmd.get_arguments()
                    .find(|a| a.get_short() == Some(*c))
                    .is_some_and(|a| !a.get_action().takes_values())
            });
            all_flags
                && last.is_some_and(|c| {
                    cmd.get_arguments()
                        .find(|a| a.get_short() == Some(c))
                        .is_some_and(find)
                })
        }
    }
}

/// buildah's `VerifyFlagsArgsOrder`: `Some(message)` when an option follows the first
/// positional argument of a strict subcommand.
pub fn check_order(argv: &[String]) -> Option<String> {
    use clap::CommandFactory;
    let root = Cli::command();
    let mut i = 1;
    // Global options before the subcommand.
    while i < argv.len() && argv[i].starts_with('-') {
        i += if takes_separate_value(&root, &argv[i]) {
            2
        } else {
            1
        };
    }
    let name = argv.get(i)?;
    let sub = root.find_subcommand(name)?;
    if !STRICT_ORDER.contains(&sub.get_name()) {
        return None;
    }
    let mut seen_positional = false;
    let mut j = i + 1;
    while j < argv.len() {
        let a = &argv[j];
        if a == "--" {
            return None;
        }
        if seen_positional {
            if a.starts_with('-') {
                return Some(format!(
                    "no options ({a}) can be specified after the image or container name"
                ));
            }
        } else if a.starts_with('-') && a.len() > 1 {
            let global = root.get_arguments().any(|g| {
                a.strip_prefix("--")
                    .is_some_and(|l| Some(l.split('=').next().unwrap_or(l)) == g.get_long())
            });
            let cmd = if global { &root } else { sub };
            if takes_separate_value(cmd, a) {
                j += 1;
            }
        } else {
            seen_positional = true;
        }
        j += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::check_order;

    fn argv(s: &str) -> Vec<String> {
        std::iter::once("hod")
            .chain(s.split_whitespace())
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn flags_after_names_are_refused() {
        let bad = [
            ("images img1 -n", "-n"),
            (
                "images img1 --filter=service=redis img2",
                "--filter=service=redis",
            ),
            ("--root /x rm c1 -a", "-a"),
            ("config c1 --env a=b", "--env"),
            ("from busybox --name x", "--name"),
        ];
        for (cmd, flag) in bad {
            assert_eq!(
                check_order(&argv(cmd)),
                Some(format!(
                    "no options ({flag}) can be specified after the image or container name"
                )),
                "{cmd}"
            );
        }
        let good = [
            "images -n img1",
            "--root /x --storage-driver vfs from --name x busybox",
            "config --env a=b --cmd -x c1",
            "from --pull=never -q busybox",
            "commit -f docker c1 img",
            "run c1 ls -l",
            "images",
            "tag img a -x",
            "from -qf docker busybox",
        ];
        for cmd in good {
            assert_eq!(check_order(&argv(cmd)), None, "{cmd}");
        }
    }

    #[test]
    fn a_repeated_option_takes_the_last_value() {
        use clap::Parser;
        let cli = super::Cli::try_parse_from(argv("--root /a --root /b images -q -q"))
            .expect("repeated options are accepted");
        assert_eq!(cli.global.root, Some(std::path::PathBuf::from("/b")));
        let cli = super::Cli::try_parse_from(argv("from --name a --name b scratch"))
            .expect("repeated subcommand options are accepted");
        match cli.command {
            super::Command::From(a) => assert_eq!(a.name.as_deref(), Some("b")),
            _ => panic!("not from"),
        }
    }

    #[test]
    fn short_name_alias_conf_is_a_global_flag() {
        use clap::Parser;
        for cmd in [
            "--short-name-alias-conf /tmp/aliases.conf images",
            "images --short-name-alias-conf /tmp/aliases.conf",
        ] {
            let cli = super::Cli::try_parse_from(argv(cmd)).expect(cmd);
            assert_eq!(
                cli.global.short_name_alias_conf,
                Some(std::path::PathBuf::from("/tmp/aliases.conf")),
                "{cmd}"
            );
        }
    }
}
