//! Every subcommand has a man page (`docs/hod-<verb>.1.md`), and every long flag its
//! `--help` lists appears on that page (global flags on `docs/hod.1.md`).
//!
//! `--help` is laid out as cobra lays it out (buildah's): a command's own options under
//! `Flags:`, the global ones under `Global Flags:` (under `Flags:` on the root, whose own
//! they are), subcommands under `Available Commands:`.
use std::path::{Path, PathBuf};
use std::process::Command;

fn hod_help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hod"))
        .args(args)
        .arg("--help")
        .output()
        .expect("running hod --help");
    assert!(
        out.status.success(),
        "hod {args:?} --help failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 help")
}

/// The lines of one `Heading:` section of the help.
fn section<'a>(help: &'a str, heading: &str) -> Vec<&'a str> {
    let mut lines = help.lines().skip_while(|l| l.trim_end() != heading);
    lines.next();
    lines.take_while(|l| !l.trim().is_empty()).collect()
}

/// Long flags (`--name`) defined on option lines of a section (not those in descriptions).
fn long_flags(lines: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for l in lines {
        let t = l.trim_start();
        let t = match t.strip_prefix('-') {
            Some(rest) if !rest.starts_with('-') => {
                rest.split_once(", ").map(|(_, r)| r).unwrap_or("")
            }
            _ => t,
        };
        if let Some(rest) = t.strip_prefix("--") {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            if !name.is_empty() && name != "help" && name != "version" {
                out.push(name);
            }
        }
    }
    out
}

fn subcommands() -> Vec<String> {
    commands_of(&[])
}

/// The subcommands `hod ARGS… --help` lists (`help` itself left out).
fn commands_of(args: &[&str]) -> Vec<String> {
    let help = hod_help(args);
    section(&help, "Available Commands:")
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

fn docs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs")
}

fn page(name: &str) -> String {
    let p = docs_dir().join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

fn documents(page: &str, flag: &str) -> bool {
    page.contains(&format!("**--{flag}**"))
        || page.contains(&format!("**--{flag}="))
        || page.contains(&format!("**--{flag} "))
}

#[test]
fn parser_finds_flags() {
    let lines = [
        "  -a, --all   Remove every working container",
        "      --root <DIR>  Storage root (see --help)",
        "  -h, --help  Print help",
    ];
    assert_eq!(long_flags(&lines), vec!["all", "root"]);
}

#[test]
fn every_subcommand_has_a_page_listing_its_flags() {
    let verbs = subcommands();
    assert!(
        verbs.len() >= 20,
        "expected the full command set, got {verbs:?}"
    );
    let mut missing = Vec::new();
    for verb in &verbs {
        let path = docs_dir().join(format!("hod-{verb}.1.md"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            missing.push(format!("{}: no page", path.display()));
            continue;
        };
        let help = hod_help(&[verb]);
        for flag in long_flags(&section(&help, "Flags:")) {
            if !documents(&text, &flag) {
                missing.push(format!("hod-{verb}.1.md: --{flag}"));
            }
        }
        // Nested subcommands (`hod manifest create`): each its own page
        // `hod-<verb>-<sub>.1.md`, listed on the verb's page.
        for sub in commands_of(&[verb]) {
            let name = format!("hod-{verb}-{sub}");
            if !text.contains(&format!("{name}(1)")) {
                missing.push(format!("hod-{verb}.1.md: does not list {name}(1)"));
            }
            let path = docs_dir().join(format!("{name}.1.md"));
            let Ok(sub_text) = std::fs::read_to_string(&path) else {
                missing.push(format!("{}: no page", path.display()));
                continue;
            };
            let help = hod_help(&[verb, &sub]);
            for flag in long_flags(&section(&help, "Flags:")) {
                if !documents(&sub_text, &flag) {
                    missing.push(format!("{name}.1.md: --{flag}"));
                }
            }
        }
    }
    assert!(missing.is_empty(), "undocumented:\n{}", missing.join("\n"));
}

#[test]
fn global_flags_and_commands_are_on_the_main_page() {
    let text = page("hod.1.md");
    let help = hod_help(&[]);
    let flags = long_flags(&section(&help, "Flags:"));
    assert!(
        flags.iter().any(|f| f == "root"),
        "no global flags found in hod --help: {help}"
    );
    for flag in flags {
        assert!(documents(&text, &flag), "hod.1.md lacks --{flag}");
    }
    for verb in subcommands() {
        assert!(
            text.contains(&format!("hod-{verb}(1)")),
            "hod.1.md does not list hod-{verb}(1)"
        );
    }
}
