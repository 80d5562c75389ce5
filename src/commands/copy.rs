//! `hod copy` and `hod add` (owned by the copier work).
use std::path::PathBuf;
use std::time::Duration;

use builder::copy::{CopyKind, CopyOptions};
use builder::Builder;

use crate::ctx::Ctx;
use crate::flags::{registry_context, RegistryFlags};

/// `hod copy|add [options] CONTAINER SRC [SRC...] DEST`
#[derive(Debug, clap::Args)]
// As in buildah, only --retry and --retry-delay of the registry flags are shown.
#[command(
    mut_arg("authfile", |a| a.hide(true)),
    mut_arg("creds", |a| a.hide(true)),
    mut_arg("cert_dir", |a| a.hide(true)),
    mut_arg("tls_verify", |a| a.hide(true))
)]
pub struct CopyArgs {
    /// Registry access for a `--from` image that is pulled; `--retry`, `--retry-delay` also
    /// for URL sources.
    #[command(flatten)]
    pub registry: RegistryFlags,
    /// Add a history entry noting the digest of the added content to the next commit.
    #[arg(long = "add-history", num_args = 0..=1, require_equals = true, default_missing_value = "true", env = "BUILDAH_HISTORY")]
    pub add_history: Option<bool>,
    /// Don't fail when a glob matches nothing.
    #[arg(long = "allow-empty-wildcard", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub allow_empty_wildcard: bool,
    /// Allow glob patterns in source paths.
    #[arg(long = "allow-wildcard", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true")]
    pub allow_wildcard: bool,
    /// Checksum (`sha256:<hex>`) the URL source must match.
    #[arg(long)]
    pub checksum: Option<String>,
    /// Permissions of the copied content: octal (`0755`), or symbolic (`u+x,go-w`, `a=rX`)
    /// applied to each item's own mode.
    #[arg(long)]
    pub chmod: Option<String>,
    /// Owner `user[:group]` of the copied content (names resolved in the container).
    #[arg(long)]
    pub chown: Option<String>,
    /// Context directory: sources must stay inside it; its .containerignore applies.
    #[arg(long = "contextdir", value_name = "DIRECTORY")]
    pub context_dir: Option<PathBuf>,
    /// Exclude content matching this pattern (repeatable).
    #[arg(long = "exclude", value_name = "PATTERN", value_delimiter = ',')]
    pub excludes: Vec<String>,
    /// Copy from this working container's or image's root instead of the host (a transport
    /// reference such as oci:DIR:TAG is pulled first).
    #[arg(long)]
    pub from: Option<String>,
    /// Alternative ignore file (needs --contextdir).
    #[arg(long = "ignorefile", value_name = "FILE")]
    pub ignore_file: Option<PathBuf>,
    /// Create an independent layer (accepted; content is copied into the container).
    #[arg(long)]
    pub link: bool,
    /// Copy a symlink named as a source as a link instead of its target.
    #[arg(long = "no-follow-symlinks")]
    pub no_follow_symlinks: bool,
    /// Preserve leading directories of sources (copy only).
    #[arg(long)]
    pub parents: bool,
    /// Don't print the digest of the copied content.
    #[arg(short, long)]
    pub quiet: bool,
    /// Timestamp (seconds since the epoch) for the copied content.
    #[arg(long)]
    pub timestamp: Option<i64>,
    /// Accepted for compatibility.
    #[arg(long = "remove-signatures", hide = true)]
    pub remove_signatures: bool,
    /// Accepted for compatibility.
    #[arg(long = "blob-cache", hide = true)]
    pub blob_cache: Option<String>,
    /// `--decryption-key` for an encrypted `--from` image.
    #[command(flatten)]
    pub decryption: crate::flags::DecryptionFlags,
    /// The working container, then sources, then the destination.
    #[arg(required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// Which verb was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// `copy`: no extraction, no URLs.
    Copy,
    /// `add`: extracts local archives, fetches URLs.
    Add,
}

/// Parse a Go-style duration: `2s`, `0.5s`, `100ms`, `1m30s`, `1h`.
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let bad = || anyhow::anyhow!("unable to parse value provided {s:?} as --retry-delay");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (num, tail) = rest.split_at(n);
        let v: f64 = num.parse().map_err(|_| bad())?;
        let u = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(u);
        let mul = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += v * mul;
        rest = tail;
    }
    Ok(Duration::from_secs_f64(total))
}

/// Copy; the result is hod's exit code.
pub fn run(verb: Verb, args: CopyArgs, ctx: &Ctx) -> anyhow::Result<i32> {
    let mut rest = args.args.clone();
    if rest.is_empty() {
        anyhow::bail!("container ID must be specified");
    }
    let name = rest.remove(0);
    if rest.is_empty() {
        anyhow::bail!("src must be specified");
    }
    if let Some(flag) = rest.iter().find(|a| a.starts_with('-')) {
        anyhow::bail!("no options ({flag}) can be specified after the image or container name");
    }
    let dest = if rest.len() > 1 {
        rest.pop().unwrap_or_default()
    } else {
        String::new()
    };
    if args.ignore_file.is_some() && args.context_dir.is_none() {
        anyhow::bail!(
            "--ignorefile option requires that you specify a context dir using --contextdir"
        );
    }
    let retry_delay = args.registry.retry_delay_or_default()?;
    let mut opts = CopyOptions::default();
    opts.kind = match verb {
        Verb::Copy => CopyKind::Copy,
        Verb::Add => CopyKind::Add,
    };
    opts.chown = args.chown;
    opts.chmod = args
        .chmod
        .as_deref()
        .map(builder::copier::Chmod::parse)
        .transpose()?;
    opts.from = args.from;
    opts.context_dir = args.context_dir;
    opts.ignore_file = args.ignore_file;
    opts.excludes = args.excludes;
    opts.checksum = args.checksum;
    opts.follow_links = !args.no_follow_symlinks;
    opts.allow_wildcard = args.allow_wildcard;
    opts.allow_empty_wildcard = args.allow_empty_wildcard;
    opts.timestamp = args.timestamp;
    opts.parents = args.parents && verb == Verb::Copy;
    opts.add_history = args.add_history.unwrap_or(false);
    opts.retries = args.registry.retry.unwrap_or(3);
    opts.registry = registry_context(&args.registry, None, ctx)?;
    opts.decryption = crate::flags::decryption_config(&args.decryption)?;
    opts.retry_delay = retry_delay;
    if args.link {
        tracing::debug!("--link: copying into the container's layer");
    }

    let store = ctx.store()?;
    let mut b = Builder::open(&store, &name)
        .map_err(|e| anyhow::Error::new(e).context(format!("reading build container {name:?}")))?;
    let summary = b.copy(&store, &rest, &dest, &opts)?;
    if let Some(d) = summary.digest.filter(|_| summary.items > 0) {
        if !args.quiet {
            println!("{d}");
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, clap::Parser)]
    struct T {
        #[command(flatten)]
        a: CopyArgs,
    }

    #[test]
    fn flags_and_positionals() {
        let t = T::try_parse_from([
            "copy",
            "--chown",
            "1:1",
            "-q",
            "--exclude",
            "a",
            "--exclude=b",
            "--allow-wildcard=false",
            "ctr",
            "src",
            "/dst",
        ])
        .unwrap();
        assert_eq!(t.a.args, ["ctr", "src", "/dst"]);
        assert_eq!(t.a.chown.as_deref(), Some("1:1"));
        assert!(t.a.quiet && !t.a.allow_wildcard && !t.a.allow_empty_wildcard);
        assert_eq!(t.a.excludes, ["a", "b"]);
        let t = T::try_parse_from(["copy", "--allow-empty-wildcard", "ctr", "src"]).unwrap();
        assert!(t.a.allow_empty_wildcard && t.a.allow_wildcard);
        // options after the container name are positionals, refused like buildah does
        for argv in [
            vec!["copy", "container1", "-q", "/tmp/container1"],
            vec![
                "copy",
                "container1",
                "--chown",
                "/tmp/container1",
                "--quiet",
            ],
            vec!["copy", "container1", "/tmp/container1", "--quiet"],
        ] {
            let t = T::try_parse_from(&argv).unwrap();
            let flag = argv[2..].iter().find(|a| a.starts_with('-')).unwrap();
            let e = run(Verb::Copy, t.a, &Ctx::default()).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("no options ({flag}) can be specified after the image or container name")
            );
        }
    }

    #[test]
    fn durations() {
        for (s, ms) in [
            ("2s", 2000),
            ("4s", 4000),
            ("0.5s", 500),
            ("100ms", 100),
            ("1m30s", 90_000),
            ("0", 0),
        ] {
            assert_eq!(parse_duration(s).unwrap().as_millis(), ms, "{s}");
        }
        assert_eq!(parse_duration("0.142857s").unwrap().as_micros(), 142_857);
        for bad in ["", "s", "5x", "abc"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
