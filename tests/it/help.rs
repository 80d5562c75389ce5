//! `help` and `--help` in cobra's layout, which scripts and buildah's own `help.bats` read,
//! and hod naming itself after argv[0]: installed as a `buildah` symlink (the drop-in
//! install) it says `buildah`, run as `hod` it says `hod`.
//!
//! [`cobra_layout_through_a_buildah_symlink`] walks the command tree as `help.bats` does
//! (validated with `HOD_BIN=/usr/bin/buildah`, whose binary is named `buildah` anyway).
use std::os::unix::fs::symlink;
use std::path::PathBuf;

use crate::common::{self, Run, TestContext};

/// The binary under test as an absolute path (`HOD_BIN` may be a command name).
fn binary() -> PathBuf {
    let bin = common::hod_bin();
    if bin.is_absolute() {
        return bin;
    }
    let out = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {}", bin.display())])
        .output()
        .expect("sh");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// A store, and the binary under test reached through a symlink called `name`.
fn invoked_as(name: &str) -> (tempfile::TempDir, TestContext) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let link = dir.path().join(name);
    symlink(binary(), &link).expect("symlink");
    (dir, TestContext::with_bin("vfs", link))
}

/// The line after `Usage:`: the synopsis.
fn usage_line(help: &str) -> &str {
    let mut lines = help.lines().skip_while(|l| *l != "Usage:");
    lines.next();
    lines.next().unwrap_or("")
}

/// The names listed under `Available Commands:`.
fn commands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| *l != "Available Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

fn ok(ctx: &TestContext, args: &[&str]) -> Run {
    let r = ctx.hod(args);
    common::assert_no_panic(&r);
    let r = r.success();
    assert!(r.stderr.is_empty(), "help on stderr:\n{}", r.dump());
    r
}

/// `help.bats`' `check_help`: every listed command has a usage line `  buildah <path>`,
/// `help X` prints what `X --help` prints, `[flags]` is in the usage iff the help has a
/// `Flags:` section, commands with subcommands (usage ending in `[command]`) are walked
/// too and print their `--help` when called bare or with an unknown subcommand. Returns
/// the paths of the commands with subcommands found.
fn check_help(ctx: &TestContext, path: &[&str]) -> Vec<String> {
    let mut groups = Vec::new();
    let listing = ok(ctx, &[&["help"], path].concat());
    let names = commands(&listing.stdout);
    assert!(!names.is_empty(), "no commands listed:\n{}", listing.dump());
    for name in &names {
        let full = [path, &[name.as_str()]].concat();
        let by_command = ok(ctx, &[&["help"], &full[..]].concat());
        let by_flag = ok(ctx, &[&full[..], &["--help"]].concat());
        assert_eq!(
            by_command.stdout, by_flag.stdout,
            "`help {full:?}` and `{full:?} --help` differ"
        );
        let help = &by_command.stdout;
        let usage = usage_line(help);
        let want = format!("  buildah {}", full.join(" "));
        assert!(
            usage.starts_with(&want),
            "usage {usage:?} does not start with {want:?}:\n{help}"
        );
        if usage.ends_with("[command]") {
            groups.push(full.join(" "));
            groups.extend(check_help(ctx, &full));
            continue;
        }
        assert_eq!(
            usage.contains("[flags"),
            help.contains("Flags:"),
            "usage {usage:?}: `[flags]` iff a Flags: section:\n{help}"
        );
    }
    let full_help = ok(ctx, &[path, &["--help"]].concat()).stdout;
    assert_eq!(
        ok(ctx, path).stdout,
        full_help,
        "{path:?} without a subcommand"
    );
    if path.is_empty() {
        ctx.hod(["NoSuchCommand"])
            .one_error_naming(r#"unknown command "NoSuchCommand" for "buildah""#);
    } else {
        assert_eq!(
            ok(ctx, &[path, &["NoSuchCommand"]].concat()).stdout,
            full_help,
            "{path:?} with an unknown subcommand"
        );
    }
    groups
}

#[test]
fn cobra_layout_through_a_buildah_symlink() {
    let (_link, ctx) = invoked_as("buildah");
    let root = ok(&ctx, &["--help"]).stdout;
    assert!(
        root.contains("\nUsage:\n  buildah [flags]\n  buildah [command]\n"),
        "{root}"
    );
    for heading in ["Available Commands:", "Flags:"] {
        assert!(root.lines().any(|l| l == heading), "no {heading}:\n{root}");
    }
    let names = commands(&root);
    for expected in ["from", "manifest", "help"] {
        assert!(names.iter().any(|n| n == expected), "{expected}: {names:?}");
    }
    let groups = check_help(&ctx, &[]);
    assert_eq!(groups, ["manifest"], "commands with subcommands");
    let manifest = ok(&ctx, &["manifest", "--help"]).stdout;
    assert_eq!(usage_line(&manifest), "  buildah manifest [command]");
    assert!(commands(&manifest).iter().any(|c| c == "create"));
    assert_eq!(
        ok(&ctx, &["help", "manifest", "NoSuchCommand"]).stdout,
        manifest,
        "help of an unknown manifest subcommand"
    );
}

#[test]
fn hod_names_itself_after_argv0() {
    if common::is_buildah() {
        // buildah calls itself buildah whatever its name; the buildah half is checked above.
        common::skipped("hod_names_itself_after_argv0", "hod-only behaviour");
        return;
    }
    let (_link, ctx) = invoked_as("hod");
    let help = ok(&ctx, &["--help"]).stdout;
    assert!(
        help.contains("\nUsage:\n  hod [flags]\n  hod [command]\n"),
        "{help}"
    );
    assert!(!help.contains("buildah ["), "{help}");
    let create = ok(&ctx, &["help", "manifest", "create"]).stdout;
    assert!(
        usage_line(&create).starts_with("  hod manifest create [flags]"),
        "{create}"
    );
    ctx.hod(["NoSuchCommand"])
        .one_error_naming(r#"unknown command "NoSuchCommand" for "hod""#);
    // The cargo-built binary itself is named hod.
    let direct = TestContext::new("vfs");
    let help = ok(&direct, &["--help"]).stdout;
    assert!(help.contains("\n  hod [command]\n"), "{help}");
}
