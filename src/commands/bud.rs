//! `hod bud` / `build` / `build-using-dockerfile`: flags → [`BuildOptions`] → one
//! `imagebuildah::build` call; prints the image ID.
use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::Context as _;
use builder::archive::Compression;
use builder::run::Isolation;
use imagebuildah::options::{
    BuildContext, BuildOptions, BuildOutputSpec, ContainerfileSource, Secret,
};
use imagebuildah::BuildReporter;

use super::run_flags::RunDefaultsArgs;
use crate::ctx::Ctx;
use crate::flags::{registry_context, BuildPlatformFlags, RegistryFlags};

/// `hod bud [options] [CONTEXT]`
#[derive(Debug, clap::Args)]
pub struct BudArgs {
    /// The build context directory (default: the current directory).
    #[arg(value_name = "CONTEXT")]
    pub context: Vec<PathBuf>,
    /// Containerfile to build (repeatable; `-` reads standard input).
    #[arg(short = 'f', long = "file", value_name = "PATH", value_delimiter = ',')]
    pub file: Vec<String>,
    /// Name of the resulting image (repeatable).
    #[arg(short = 't', long = "tag", value_name = "NAME")]
    pub tag: Vec<String>,
    /// ARG=VALUE for the Containerfile's ARGs (ARG alone takes it from the environment).
    #[arg(long = "build-arg", value_name = "ARG=VALUE")]
    pub build_arg: Vec<String>,
    /// File of ARG=VALUE lines.
    #[arg(long = "build-arg-file", value_name = "FILE")]
    pub build_arg_file: Vec<PathBuf>,
    /// The stage to build (and stop after).
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// Build only the stages the target needs (default true).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true")]
    pub skip_unused_stages: bool,
    /// Additional build context NAME=DIR or NAME=docker-image://IMAGE (used before a stage
    /// of that name).
    #[arg(long, value_name = "NAME=VALUE")]
    pub build_context: Vec<String>,
    /// Replace the first FROM's image.
    #[arg(long, value_name = "IMAGE")]
    pub from: Option<String>,
    /// Cache intermediate images (env BUILDAH_LAYERS).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub layers: Option<bool>,
    /// Do not use cached intermediate images.
    #[arg(long)]
    pub no_cache: bool,
    /// With --layers: say, for each step that missed the cache, what differed from the
    /// closest cached step (parent, instruction, a build arg, a source path).
    #[arg(long)]
    pub explain_cache: bool,
    /// Only use cached images created less than DURATION ago (Go syntax: 1h, 30m, 10s; 0 is
    /// --no-cache).
    #[arg(long, value_name = "DURATION")]
    pub cache_ttl: Option<String>,
    /// Registry repository to look missed steps up in (REPO:<cache key>), with --layers.
    #[arg(long, value_name = "REPO", value_delimiter = ',')]
    pub cache_from: Vec<String>,
    /// Registry repository to push each step's image to (REPO:<cache key>), with --layers.
    #[arg(long, value_name = "REPO", value_delimiter = ',')]
    pub cache_to: Vec<String>,
    /// Pull policy for base images: always, missing, never, newer.
    #[arg(long, value_name = "POLICY", num_args = 0..=1, require_equals = true, default_missing_value = "always")]
    pub pull: Option<String>,
    /// Always pull base images.
    #[arg(long, hide = true)]
    pub pull_always: bool,
    /// Never pull base images.
    #[arg(long, hide = true)]
    pub pull_never: bool,
    /// Image format: oci or docker (env BUILDAH_FORMAT).
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Write the image ID to this file.
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    /// Squash the new layers into one.
    #[arg(long)]
    pub squash: bool,
    /// Created time (seconds since the epoch) of the image, its history and its files.
    #[arg(long, value_name = "SECONDS")]
    pub timestamp: Option<i64>,
    /// Log resource usage (CPU, elapsed time, I/O) at each step.
    #[arg(long)]
    pub log_rusage: bool,
    /// With --log-rusage: write the usage lines to this file instead of the output.
    #[arg(long, value_name = "FILE")]
    pub rusage_logfile: Option<PathBuf>,
    /// KEY=VALUE label of the image (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// KEY=VALUE annotation of the image (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub annotation: Vec<String>,
    /// KEY=VALUE environment variable of the image (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Remove an environment variable from the image.
    #[arg(long, value_name = "KEY", value_delimiter = ',')]
    pub unsetenv: Vec<String>,
    /// OS version of the image.
    #[arg(long, value_name = "VERSION")]
    pub os_version: Option<String>,
    /// Required OS feature of the image (FEATURE- removes one).
    #[arg(long, value_name = "FEATURE")]
    pub os_feature: Vec<String>,
    /// Secret for RUN --mount=type=secret: id=ID,src=PATH or id=ID,env=VAR.
    #[arg(long, value_name = "id=ID,src=PATH")]
    pub secret: Vec<String>,
    /// SSH agent socket or keys for RUN --mount=type=ssh: default (=$SSH_AUTH_SOCK) or
    /// ID[=SOCKET|KEY[,KEY…]].
    #[arg(long, value_name = "default|ID[=SOCKET|KEY[,KEY]]")]
    pub ssh: Vec<String>,
    /// Isolation: oci, chroot or rootless (env BUILDAH_ISOLATION).
    #[arg(long, value_name = "TYPE", env = "BUILDAH_ISOLATION")]
    pub isolation: Option<String>,
    /// External OCI runtime (env BUILDAH_RUNTIME).
    #[arg(long, value_name = "PATH", env = "BUILDAH_RUNTIME")]
    pub runtime: Option<PathBuf>,
    /// Global flag for the external runtime.
    #[arg(long, value_name = "FLAG", value_delimiter = ',')]
    pub runtime_flag: Vec<String>,
    /// Do not create /etc/hosts for RUN.
    #[arg(long)]
    pub no_hosts: bool,
    /// Print only the image ID.
    #[arg(short, long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub quiet: bool,
    /// Remove the working containers after a successful build (default true).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true")]
    pub rm: bool,
    /// Remove the working containers even after a failed build.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub force_rm: bool,
    /// Write hod's output to this file instead of stdout and stderr.
    #[arg(long, value_name = "FILE")]
    pub logfile: Option<PathBuf>,
    /// With --logfile F, write each platform's output to F_<os>_<arch> instead.
    #[arg(long)]
    pub logsplit: bool,
    /// Write the result's files: type=local,dest=DIR or type=tar,dest=FILE.
    #[arg(short = 'o', long, value_name = "type=local,dest=DIR")]
    pub output: Option<String>,
    /// Stages to build concurrently, each once the stages it uses are done (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub jobs: usize,
    /// Pass stdin into the RUN containers (without it they read /dev/null).
    #[arg(long)]
    pub stdin: bool,
    /// Leave the build history out of the image.
    #[arg(long)]
    pub omit_history: bool,
    /// Add the io.buildah.version label (default true).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true")]
    pub identity_label: bool,
    /// Layer compression: gzip, zstd or none.
    #[arg(long, value_name = "FORMAT")]
    pub compression_format: Option<String>,
    /// Don't compress layers (the default for local storage).
    #[arg(short = 'D', long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub disable_compression: Option<bool>,
    /// Alternative ignore file instead of .containerignore/.dockerignore.
    #[arg(long, value_name = "FILE")]
    pub ignorefile: Option<PathBuf>,
    /// Legacy option without effect (buildah's too).
    #[arg(long)]
    pub compress: bool,
    /// Docker-specific option without effect (buildah's too).
    #[arg(long)]
    pub disable_content_trust: bool,
    /// Mount for every RUN: type=bind|tmpfs|cache,… (as hod run --mount).
    #[arg(long, value_name = "type=TYPE,...")]
    pub mount: Vec<String>,
    /// Extra flag for cpp when preprocessing *.in Containerfiles.
    #[arg(long, value_name = "FLAG", allow_hyphen_values = true)]
    pub cpp_flag: Vec<String>,
    /// Settings of every RUN (namespaces, capabilities, security, resources, DNS, -v).
    #[command(flatten)]
    pub run_defaults: RunDefaultsArgs,
    /// Registry access for base images.
    #[command(flatten)]
    pub registry: RegistryFlags,
    /// `--decryption-key` for encrypted base images.
    #[command(flatten)]
    pub decryption: crate::flags::DecryptionFlags,
    /// `--userns-uid-map-user`, `--userns-gid-map-group`.
    #[command(flatten)]
    pub id_maps: crate::flags::IdMapFlags,
    /// `--encryption-key`, `--encrypt-layer` for the built image.
    #[command(flatten)]
    pub encryption: crate::flags::EncryptionFlags,
    /// Platform(s) of base images and of the result.
    #[command(flatten)]
    pub platform: BuildPlatformFlags,
    /// Add the image(s) to this manifest list, creating it if missing.
    #[arg(long, value_name = "LIST")]
    pub manifest: Option<String>,
}

/// The step lines go to stdout (or --logfile), progress and warnings to stderr.
struct CliReporter {
    quiet: bool,
    log: Option<std::sync::Mutex<std::fs::File>>,
    /// stdout carries the `--output -` tar: the build's lines go to stderr.
    stdout_taken: bool,
    /// Progress bars for the pulls, when stderr is a terminal (and no --logfile).
    bars: Option<std::sync::Arc<crate::progress::TermBars>>,
}

impl CliReporter {
    fn out(&self, line: &str) {
        match &self.log {
            Some(f) => {
                if let Ok(mut f) = f.lock() {
                    let _ = writeln!(f, "{line}");
                }
            }
            None if self.stdout_taken => self.stderr(line),
            None => {
                let write = || {
                    let _ = writeln!(std::io::stdout(), "{line}");
                };
                match &self.bars {
                    Some(b) => b.suspend(write),
                    None => write(),
                }
            }
        }
    }

    /// A line on stderr, above the bars when they are shown.
    fn stderr(&self, line: &str) {
        match &self.bars {
            Some(b) => b.line(line),
            None => {
                let _ = writeln!(std::io::stderr(), "{line}");
            }
        }
    }
}

impl builder::report::Reporter for CliReporter {
    fn progress(&self, line: &str) {
        if self.quiet {
            return;
        }
        match &self.log {
            Some(_) => self.out(line),
            None => self.stderr(line),
        }
    }
    fn transfers(&self) -> Option<std::sync::Arc<dyn builder::report::TransferProgress>> {
        self.bars.clone().map(|b| b as _)
    }
    fn warn(&self, line: &str) {
        match (&self.log, &self.bars) {
            (Some(_), _) => self.out(&format!("WARN[0000] {line}")),
            (None, Some(b)) => b.suspend(|| crate::output::warn(line)),
            (None, None) => crate::output::warn(line),
        }
    }
}

impl BuildReporter for CliReporter {
    fn step(&self, line: &str) {
        if !self.quiet {
            let _ = std::io::stdout().flush();
            self.out(line);
        }
    }
}

fn key_value(s: &str, what: &str) -> anyhow::Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => anyhow::bail!("{what} {s:?} must be KEY=VALUE"),
    }
}

/// `--build-arg` values; `NAME` alone takes hod's environment (skipped when unset).
fn build_arg(s: &str) -> Option<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) => Some((k.to_string(), v.to_string())),
        None => std::env::var(s).ok().map(|v| (s.to_string(), v)),
    }
}

/// Flags → options.
pub fn options(a: &BudArgs, ctx: &Ctx) -> anyhow::Result<BuildOptions> {
    // Checked first, as buildah checks them before it opens the store.
    let id_mappings = crate::flags::id_mappings(&a.id_maps, ctx)?;
    if a.context.len() > 1 {
        anyhow::bail!("accepts at most 1 arg(s), received {}", a.context.len());
    }
    let context = a
        .context
        .first()
        .cloned()
        .unwrap_or_else(|| PathBuf::from("."));
    let mut o = BuildOptions::new(context);
    for f in &a.file {
        if f == "-" {
            let mut data = Vec::new();
            std::io::stdin()
                .read_to_end(&mut data)
                .context("reading Containerfile from stdin")?;
            o.containerfiles.push(ContainerfileSource::Contents {
                name: "-".into(),
                data,
            });
        } else {
            o.containerfiles
                .push(ContainerfileSource::Path(PathBuf::from(f)));
        }
    }
    o.tags = a.tag.clone();
    for file in &a.build_arg_file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading build arg file {}", file.display()))?;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some((k, v)) = build_arg(line) {
                o.build_args.insert(k, v);
            }
        }
    }
    for s in &a.build_arg {
        if let Some((k, v)) = build_arg(s) {
            o.build_args.insert(k, v);
        }
    }
    o.target = a.target.clone();
    o.skip_unused_stages = a.skip_unused_stages;
    for c in &a.build_context {
        let (name, bc) = BuildContext::parse(c).map_err(anyhow::Error::msg)?;
        o.build_contexts.insert(name, bc);
    }
    o.from = a.from.clone();
    o.layers = match a.layers {
        Some(l) => l,
        None => std::env::var("BUILDAH_LAYERS")
            .ok()
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes")),
    };
    o.no_cache = a.no_cache;
    o.explain_cache = a.explain_cache;
    o.cache_from = a.cache_from.clone();
    o.cache_to = a.cache_to.clone();
    if let Some(t) = &a.cache_ttl {
        o.cache_ttl = Some(
            imagebuildah::instruction::parse_go_duration(t).ok_or_else(|| {
                anyhow::anyhow!("parsing --cache-ttl {t:?}: time: invalid duration {t:?}")
            })?,
        );
    }
    o.pull_policy = super::from::pull_policy(a.pull.as_deref(), a.pull_always, a.pull_never)?;
    o.format = a.format.as_deref().map(super::parse_format).transpose()?;
    o.squash = a.squash;
    o.timestamp = a.timestamp;
    o.log_rusage = a.log_rusage;
    o.rusage_logfile = a.rusage_logfile.clone();
    if a.logsplit {
        o.log_split = Some(
            a.logfile
                .clone()
                .ok_or_else(|| anyhow::anyhow!("cannot use --logsplit without --logfile"))?,
        );
    }
    for l in &a.label {
        o.labels.push(match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.clone(), String::new()),
        });
    }
    for l in &a.annotation {
        o.annotations.push(key_value(l, "annotation")?);
    }
    o.env = a.env.clone();
    o.unset_env = a.unsetenv.clone();
    o.os_version = a.os_version.clone();
    o.os_features = a.os_feature.clone();
    for s in &a.secret {
        o.secrets
            .push(Secret::parse(s).map_err(anyhow::Error::msg)?);
    }
    for s in &a.ssh {
        o.ssh
            .push(imagebuildah::ssh::SshSource::parse(s).map_err(anyhow::Error::msg)?);
    }
    let r = &mut o.run;
    r.isolation = a.isolation.as_deref().map(Isolation::parse).transpose()?;
    r.runtime = a.runtime.clone().filter(|p| !p.as_os_str().is_empty());
    r.runtime_flags = a.runtime_flag.clone();
    r.mounts = a.mount.clone();
    r.terminal = Some(false);
    if a.quiet {
        // buildah -q shows no RUN output either.
        r.stdout = Some(PathBuf::from("/dev/null"));
    }
    o.run_defaults = a.run_defaults.bud_defaults(a.no_hosts)?;
    o.registry = registry_context(&a.registry, Some(&a.platform.first()), ctx)?;
    o.decryption = crate::flags::decryption_config(&a.decryption)?;
    o.id_mappings = id_mappings;
    o.encryption = crate::flags::encryption_config(&a.encryption)?;
    o.platforms = a.platform.platforms()?;
    o.all_platforms = a.platform.all_platforms;
    o.manifest = a.manifest.clone().filter(|m| !m.is_empty());
    o.quiet = a.quiet;
    o.remove_containers = a.rm || a.force_rm;
    o.force_remove = a.force_rm;
    o.output = a
        .output
        .as_deref()
        .map(BuildOutputSpec::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    o.jobs = a.jobs;
    // RUN reads hod's stdin only with --stdin, and never when stages run side by side
    // (buildah reads /dev/null then too): a build in `cmdlist | sh` leaves the rest alone.
    o.run.null_stdin = !a.stdin || a.jobs != 1;
    o.omit_history = a.omit_history;
    o.identity_label = a.identity_label;
    o.compression = match (&a.compression_format, a.disable_compression) {
        (Some(c), _) => super::commit::parse_compression(c)?,
        (None, Some(false)) => Compression::Gzip,
        _ => Compression::None,
    };
    o.ignore_file = a.ignorefile.clone();
    o.cpp_flags = a.cpp_flag.clone();
    if let Ok(flags) = std::env::var("BUILDAH_CPPFLAGS") {
        o.cpp_env_flags = builder::config::shell_words(&flags)
            .map_err(|e| anyhow::anyhow!("parsing BUILDAH_CPPFLAGS {flags:?}: {e}"))?;
    }
    Ok(o)
}

/// `hod bud`.
pub fn run(a: BudArgs, ctx: &Ctx) -> anyhow::Result<i32> {
    let mut opts = options(&a, ctx)?;
    // `hod bud -`: the context (a tar) or the Containerfile comes from stdin.
    let _stdin_context =
        if a.context.first().map(PathBuf::as_path) == Some(std::path::Path::new("-")) {
            let mut data = Vec::new();
            std::io::stdin()
                .read_to_end(&mut data)
                .context("reading the build context from stdin")?;
            let rc = imagebuildah::remote::from_bytes(data)?;
            opts.context_dir = rc.dir.clone();
            if opts.containerfiles.is_empty() {
                if let Some(cf) = &rc.containerfile {
                    opts.containerfiles
                        .push(ContainerfileSource::Path(cf.clone()));
                }
            }
            Some(rc)
        } else {
            None
        };
    // `-o -` / `type=tar,dest=-`: the tar goes to stdout once the build is done.
    let to_stdout = matches!(
        &opts.output,
        Some(BuildOutputSpec::Tar(p)) | Some(BuildOutputSpec::Local(p)) if p.as_os_str() == "-"
    );
    let spool = if to_stdout {
        let t =
            tempfile::NamedTempFile::new().context("creating a temporary file for --output -")?;
        opts.output = Some(BuildOutputSpec::Tar(t.path().to_path_buf()));
        if opts.run.stdout.is_none() {
            // RUN output must not mix with the tar.
            opts.run.stdout = Some(PathBuf::from("/dev/stderr"));
        }
        Some(t)
    } else {
        None
    };
    let log = match &a.logfile {
        Some(p) => Some(std::sync::Mutex::new(
            std::fs::File::create(p)
                .with_context(|| format!("creating log file {}", p.display()))?,
        )),
        None => None,
    };
    let reporter = CliReporter {
        quiet: a.quiet,
        log,
        stdout_taken: to_stdout,
        bars: match &a.logfile {
            Some(_) => None,
            None => crate::progress::stderr_bars(a.quiet),
        },
    };
    let store = ctx.store()?;
    let out = imagebuildah::build(&store, &opts, &reporter)?;
    if let Some(path) = &a.iidfile {
        super::write_user_file(path, &format!("sha256:{}", out.image_id))?;
    }
    if a.iidfile.is_none() {
        // One ID per platform built (buildah's builds each print theirs), the last is the result.
        for id in out
            .image_ids
            .iter()
            .take(out.image_ids.len().saturating_sub(1))
        {
            reporter.out(id);
        }
        reporter.out(&out.image_id);
    }
    if let Some(t) = spool {
        let mut f = std::fs::File::open(t.path()).context("reading the --output tar")?;
        std::io::copy(&mut f, &mut std::io::stdout().lock())
            .context("writing the tar to stdout")?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        a: BudArgs,
    }

    fn parse(args: &[&str]) -> BudArgs {
        T::try_parse_from(std::iter::once("bud").chain(args.iter().copied()))
            .unwrap()
            .a
    }

    #[test]
    fn flags_to_options() {
        let a = parse(&[
            "-t",
            "a",
            "-t",
            "b",
            "--build-arg",
            "X=1",
            "--layers",
            "--network=host",
            "--secret",
            "id=s,src=/etc/hostname",
            "--ssh",
            "git=/k1,/k2",
            "--rm=false",
            "ctx",
        ]);
        let ctx = Ctx::default();
        let o = options(&a, &ctx).unwrap();
        assert_eq!(o.tags, ["a", "b"]);
        assert_eq!(o.build_args["X"], "1");
        assert!(o.layers);
        assert!(!o.remove_containers);
        assert_eq!(
            o.run_defaults.namespaces.network,
            Some(builder::run::NetworkMode::Host)
        );
        assert_eq!(o.secrets[0].id, "s");
        assert_eq!((o.ssh[0].id.as_str(), o.ssh[0].paths.len()), ("git", 2));
        assert_eq!(o.context_dir, PathBuf::from("ctx"));
        // buildah: 0 is "no limit"; clap refuses negative values (usize).
        assert_eq!(options(&parse(&["--jobs", "0"]), &ctx).unwrap().jobs, 0);
        assert!(options(&parse(&["--output", "type=bogus,dest=x"]), &ctx).is_err());
    }
}
