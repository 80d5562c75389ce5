//! The clap root: global options (buildah's) and the subcommands, and how they are shown.
//!
//! ```text
//! argv[0] ──basename──▶ program_name()            ("hod", or "buildah" for a drop-in symlink)
//! Cli (derive) ──command()──▶ named, built, cobra-shaped clap::Command ──parse()──▶ Cli
//!                                  └─ group_help(): `hod manifest` / `hod manifest X` → its help
//! ```
//!
//! Help is laid out as cobra (buildah's parser) lays it out, since scripts and buildah's own
//! tests read it: `Usage:` then the usage indented on its own line (`[flags]`, `[command]`),
//! `Available Commands:`, `Flags:`, `Global Flags:`.
use std::path::PathBuf;
use std::sync::OnceLock;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::commands::{self, copy::Verb};
use crate::ctx::Ctx;

/// hod: a daemonless, scriptable OCI container image builder (buildah-compatible).
#[derive(Debug, Parser)]
#[command(
    name = "hod",
    version = concat!("version ", env!("CARGO_PKG_VERSION"), " (image-spec 1.1.0, runtime-spec 1.2.0)"),
    about,
    // `command()` adds cobra's `help` command instead (it takes `--help` itself).
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

/// The heading of the global options in every command's help (cobra's).
const GLOBAL_FLAGS: &str = "Global Flags";

/// Options every subcommand accepts (before or after the subcommand name).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GlobalArgs {
    /// Storage root dir (default from storage.conf, else /var/lib/containers/storage).
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL_FLAGS,
        value_name = "DIR"
    )]
    pub root: Option<PathBuf>,
    /// Storage state dir (default from storage.conf, else /run/containers/storage).
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL_FLAGS,
        value_name = "DIR"
    )]
    pub runroot: Option<PathBuf>,
    /// Storage driver: overlay or vfs (env STORAGE_DRIVER; default from storage.conf).
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL_FLAGS,
        value_name = "DRIVER"
    )]
    pub storage_driver: Option<String>,
    /// Storage driver option, e.g. overlay.mount_program=/usr/bin/fuse-overlayfs (repeatable, comma-separated; env STORAGE_OPTS).
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL_FLAGS,
        value_name = "OPTION",
        value_delimiter = ','
    )]
    pub storage_opt: Vec<String>,
    /// The log level: trace, debug, info, warn, error, fatal or panic.
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL_FLAGS,
        value_name = "LEVEL",
        default_value = "warn"
    )]
    pub log_level: String,
    /// Print debugging information (same as --log-level=debug).
    #[arg(long, global = true, help_heading = GLOBAL_FLAGS, hide = true)]
    pub debug: bool,
    /// Path to registries.conf (not usually used).
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL_FLAGS,
        value_name = "FILE"
    )]
    pub registries_conf: Option<PathBuf>,
    /// Path to a registries.conf.d directory (not usually used).
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL_FLAGS,
        value_name = "DIR"
    )]
    pub registries_conf_dir: Option<PathBuf>,
    /// Cgroup manager: cgroupfs or systemd (hod always lays runs' cgroups out as cgroupfs
    /// does; accepted for buildah's scripts).
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL_FLAGS,
        value_name = "MANAGER",
        value_parser = ["cgroupfs", "systemd"]
    )]
    pub cgroup_manager: Option<String>,
    /// Path to the short-name alias cache file (not usually used).
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL_FLAGS,
        value_name = "FILE"
    )]
    pub short_name_alias_conf: Option<PathBuf>,
    /// Default UID map for new containers (`from`, `bud`): container:host:size triples;
    /// their files are stored shifted and RUN gets a user namespace.
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL_FLAGS,
        value_name = "MAP",
        value_delimiter = ','
    )]
    pub userns_uid_map: Vec<String>,
    /// Default GID map for new containers (needs --userns-uid-map).
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL_FLAGS,
        value_name = "MAP",
        value_delimiter = ','
    )]
    pub userns_gid_map: Vec<String>,
}

/// The subcommands.
// Parsed once per process and moved into its verb: the size of the largest argument struct
// costs nothing worth boxing each verb's arguments for (only `bud`'s are boxed, being far
// the largest).
#[allow(clippy::large_enum_variant)]
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

/// The name hod answers to: the basename of the name it was invoked as (`argv[0]`), so
/// that hod installed as `buildah` (a symlink, the drop-in install) says `buildah` in its
/// usage lines and messages, as buildah does; `hod` when argv[0] is unusable.
pub fn program_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        std::env::args_os()
            .next()
            .and_then(|a| {
                std::path::Path::new(&a)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "hod".to_string())
    })
}

/// cobra's help layout (see the module docs); `{usage}` is set per command by [`cobra_usage`].
const HELP_TEMPLATE: &str = "{about-with-newline}\nUsage:\n  {usage}\n\n{all-args}{after-help}\n";

/// The command tree as hod shows and parses it: named after [`program_name`], help in
/// cobra's layout on every command.
pub fn command() -> clap::Command {
    let name = program_name();
    // cobra's `help [command…]`, answered in `parse`.
    let mut root = Cli::command()
        .name(name)
        .bin_name(name)
        .display_name(name)
        .subcommand(
            clap::Command::new(HELP)
                .about("Help about any command")
                .arg(
                    clap::Arg::new("command")
                        .value_name("command")
                        .num_args(0..)
                        .help("The command (path) to show the help of"),
                ),
        );
    prepare(&mut root, true);
    // Building copies the global options into every subcommand, adds `-V` and sets the
    // bin names (`hod manifest create`) the usage lines need.
    root.build();
    cobra_shape(&mut root, true);
    root
}

/// The root's `help [command…]`: the `--help` of that command.
const HELP: &str = "help";

/// Before `build`: cobra's `-h, --help` ("help for NAME", first in "Flags:", ahead of the
/// global options clap appends), and a `help` command on the root only
/// (`hod help manifest create`), as in cobra.
fn prepare(cmd: &mut clap::Command, is_root: bool) {
    let name = cmd.get_name().to_string();
    let mut c = std::mem::take(cmd).disable_help_flag(true).arg(
        clap::Arg::new("help")
            .short('h')
            .long("help")
            .action(clap::ArgAction::Help)
            .help(format!("help for {name}"))
            .help_heading("Flags"),
    );
    if !is_root && c.has_subcommands() {
        c = c.disable_help_subcommand(true);
    }
    *cmd = c;
    for sub in cmd.get_subcommands_mut() {
        prepare(sub, false);
    }
}

/// Applies cobra's layout to `cmd` and everything below it (after `build`).
fn cobra_shape(cmd: &mut clap::Command, is_root: bool) {
    let usage = cobra_usage(cmd, is_root);
    let groups = cmd.has_subcommands();
    let bin = cmd.get_bin_name().unwrap_or(cmd.get_name()).to_string();
    let mut c = std::mem::take(cmd)
        .help_template(HELP_TEMPLATE)
        .subcommand_help_heading("Available Commands")
        .subcommand_value_name("command")
        .override_usage(usage)
        // cobra's "Flags:": the command's own options (positionals stay under "Arguments:",
        // the global options under "Global Flags:" but on the root, whose own they are).
        .mut_args(|a| match a.get_help_heading() {
            _ if a.is_positional() => a,
            None => a.help_heading("Flags"),
            Some(GLOBAL_FLAGS) if is_root => a.help_heading("Flags"),
            Some(_) => a,
        });
    if groups {
        c = c.after_help(format!(
            "Use \"{bin} [command] --help\" for more information about a command."
        ));
    }
    *cmd = c;
    for sub in cmd.get_subcommands_mut() {
        cobra_shape(sub, false);
    }
}

/// cobra's usage line(s): `hod [flags]` and `hod [command]` for the root, `hod manifest
/// [command]` for a command with subcommands, clap's usage with `[flags]` for `[OPTIONS]`
/// for the others (their arguments stay shown).
fn cobra_usage(cmd: &mut clap::Command, is_root: bool) -> String {
    let bin = cmd.get_bin_name().unwrap_or(cmd.get_name()).to_string();
    if cmd.has_subcommands() {
        return if is_root {
            format!("{bin} [flags]\n  {bin} [command]")
        } else {
            format!("{bin} [command]")
        };
    }
    let usage = cmd.render_usage().to_string();
    let usage = usage.strip_prefix("Usage: ").unwrap_or(&usage);
    let has_flags = cmd
        .get_arguments()
        .any(|a| !a.is_positional() && !a.is_hide_set());
    match (usage.contains("[OPTIONS]"), has_flags) {
        (true, _) => usage.replacen("[OPTIONS]", "[flags]", 1),
        (false, true) => match usage.strip_prefix(&bin) {
            Some(rest) => format!("{bin} [flags]{rest}"),
            None => format!("{usage} [flags]"),
        },
        (false, false) => usage.to_string(),
    }
}

/// Parses `argv` with [`command`]; `help [command…]` is answered as `[command…] --help`
/// (a `DisplayHelp` "error", as clap answers `--help`).
pub fn parse(argv: &[String]) -> Result<Cli, clap::Error> {
    let matches = command().try_get_matches_from(argv)?;
    if let Some((HELP, m)) = matches.subcommand() {
        let path = m.get_many::<String>("command").into_iter().flatten();
        let help = argv[..1]
            .iter()
            .chain(path)
            .map(String::as_str)
            .chain(["--help"]);
        command().try_get_matches_from(help)?;
    }
    Cli::from_arg_matches(&matches)
}

/// cobra finds the subcommand by skipping the options before it, and gives those options
/// to the subcommand: `buildah --signature-policy p build .` is `buildah build
/// --signature-policy p .` (bud.bats calls it so). clap takes only the root's own options
/// there, so the others move after the subcommand's name (after the deepest name, for
/// `manifest create`). As in cobra, an option unknown to the root takes the next word as
/// its value unless it has `=`, or the next word is a subcommand that has it as a flag
/// without a value. Anything else is returned as it is, for clap to report.
pub fn hoist_subcommand_options(argv: &[String]) -> Vec<String> {
    // The usual `hod VERB …`: nothing before the name, no command tree to build.
    if !argv.get(1).is_some_and(|a| a.starts_with('-') && a != "-") {
        return argv.to_vec();
    }
    let root = command();
    let root_has = |a: &str| -> bool {
        if let Some(long) = a.strip_prefix("--") {
            let long = long.split('=').next().unwrap_or(long);
            root.get_arguments().any(|g| g.get_long() == Some(long))
        } else {
            a.chars()
                .nth(1)
                .is_some_and(|c| root.get_arguments().any(|g| g.get_short() == Some(c)))
        }
    };
    let mut kept: Vec<String> = argv.iter().take(1).cloned().collect();
    let mut moved: Vec<String> = Vec::new();
    let mut i = 1;
    while i < argv.len() && argv[i].starts_with('-') && argv[i] != "-" {
        let a = argv[i].as_str();
        if a == "--" {
            return argv.to_vec();
        }
        let (dest, width) = if root_has(a) {
            let w = if takes_separate_value(&root, a) { 2 } else { 1 };
            (&mut kept, w)
        } else {
            let single = a.starts_with("--") || a.chars().count() == 2;
            let flag_of_next = argv
                .get(i + 1)
                .and_then(|n| root.find_subcommand(n))
                .is_some_and(|sub| !takes_separate_value(sub, a));
            let w = if a.contains('=') || !single || flag_of_next {
                1
            } else {
                2
            };
            (&mut moved, w)
        };
        let end = (i + width).min(argv.len());
        dest.extend(argv[i..end].iter().cloned());
        i = end;
    }
    if moved.is_empty() {
        return argv.to_vec();
    }
    let Some(mut cmd) = argv
        .get(i)
        .and_then(|n| root.find_subcommand(n))
        .filter(|c| c.get_name() != HELP)
        .cloned()
    else {
        return argv.to_vec();
    };
    // Down the groups (`manifest create`): their own options stay where they are.
    let mut end = i + 1;
    while cmd.has_subcommands() {
        let j = skip_options(&cmd, argv, end);
        match argv.get(j).and_then(|n| cmd.find_subcommand(n)).cloned() {
            Some(sub) => {
                cmd = sub;
                end = j + 1;
            }
            None => break,
        }
    }
    kept.extend(argv[i..end].iter().cloned());
    kept.extend(moved);
    kept.extend(argv[end..].iter().cloned());
    kept
}

/// The help a command with subcommands prints when called without one, or with one it
/// does not have (`hod manifest`, `hod manifest NoSuchCommand`), as cobra does: its full
/// `--help`. `None` for anything else, and for an unknown command of the root (an error).
pub fn group_help(argv: &[String]) -> Option<String> {
    let mut cmd = command();
    let mut i = 1;
    let mut path: Vec<&str> = Vec::new();
    let mut skipped_help = false;
    loop {
        // Options before the next name (global ones, or the group's own).
        i = skip_options(&cmd, argv, i);
        if argv.get(i).is_some_and(|a| a == "--") {
            return None;
        }
        if !cmd.has_subcommands() {
            return None;
        }
        match argv.get(i) {
            None => break,
            Some(name) => match cmd.find_subcommand(name) {
                // `help manifest NoSuchCommand` is `manifest NoSuchCommand`.
                Some(sub) if sub.get_name() == HELP && path.is_empty() && !skipped_help => {
                    skipped_help = true;
                    i += 1;
                }
                Some(sub) if sub.get_name() != HELP => {
                    let sub = sub.clone();
                    cmd = sub;
                    path.push(name);
                    i += 1;
                }
                Some(_) => return None,
                None if path.is_empty() => return None,
                None => break,
            },
        }
    }
    // Exactly what `hod <path> --help` prints.
    let help = std::iter::once(argv[0].as_str())
        .chain(path)
        .chain(["--help"]);
    match command().try_get_matches_from(help) {
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => Some(e.render().to_string()),
        _ => None,
    }
}

/// Subcommands that, as in buildah (`SetInterspersed(false)` + `VerifyFlagsArgsOrder`),
/// refuse options after the first image or container name.
const STRICT_ORDER: &[&str] = &[
    "add", "commit", "config", "copy", "from", "images", "inspect", "mount", "pull", "push", "rm",
    "rmi", "umount",
];

/// The index of the first word from `i` on that is not an option of `cmd` (an option's
/// separate value skipped with it); `-` and `--` stop it.
fn skip_options(cmd: &clap::Command, argv: &[String], mut i: usize) -> usize {
    while i < argv.len() && argv[i].starts_with('-') && argv[i] != "-" && argv[i] != "--" {
        i += if takes_separate_value(cmd, &argv[i]) {
            2
        } else {
            1
        };
    }
    i
}

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
    use super::{check_order, hoist_subcommand_options};

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

    #[test]
    fn options_before_the_subcommand_go_to_it_as_in_cobra() {
        let cases = [
            // bud.bats: a build option before `build`.
            (
                "--signature-policy /p build -t x .",
                "build --signature-policy /p -t x .",
            ),
            // Global options stay; the others follow the name.
            (
                "--root /r --layers=true bud --storage-driver vfs .",
                "--root /r bud --layers=true --storage-driver vfs .",
            ),
            // An option the subcommand has without a value does not swallow its name.
            ("--layers bud .", "bud --layers ."),
            ("-q bud .", "bud -q ."),
            // After the deepest name of a group.
            ("--all manifest create l i", "manifest create --all l i"),
            // Nothing to move, or nothing to move it to: as typed.
            ("--root /r images", "--root /r images"),
            ("--bogus", "--bogus"),
            ("--bogus v nosuchcommand", "--bogus v nosuchcommand"),
            ("-- images", "-- images"),
        ];
        for (typed, want) in cases {
            assert_eq!(
                hoist_subcommand_options(&argv(typed)),
                argv(want),
                "{typed}"
            );
        }
    }
}
