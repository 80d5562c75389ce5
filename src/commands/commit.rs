//! `hod commit`: create an image from a working container; prints the image ID.
use std::path::PathBuf;

use builder::archive::Compression;
use builder::commit::CommitOptions;

use crate::ctx::Ctx;
use crate::flags::{registry_context, RegistryFlags};
use crate::output::{self, StderrReporter};

/// `hod commit [options] CONTAINER [IMAGE]`
#[derive(Debug, clap::Args)]
pub struct CommitArgs {
    /// The working container.
    pub container: String,
    /// The image name or transport reference (`oci:DIR:TAG`, `docker-archive:FILE`, …).
    pub image: Option<String>,
    /// Image format: oci or docker (default: BUILDAH_FORMAT, else the container's).
    #[arg(short, long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Don't compress layers (the default for local storage).
    #[arg(short = 'D', long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub disable_compression: Option<bool>,
    /// Layer compression: gzip, zstd or none.
    #[arg(long, value_name = "FORMAT")]
    pub compression_format: Option<String>,
    /// Remove the working container after committing.
    #[arg(long)]
    pub rm: bool,
    /// Produce an image with a single layer.
    #[arg(long)]
    pub squash: bool,
    /// Set the created time (and file times in new layers) to this Unix time.
    #[arg(long, value_name = "SECONDS")]
    pub timestamp: Option<i64>,
    /// Set the created time (as --timestamp) to this file's modification time.
    #[arg(long, hide = true, value_name = "FILE", conflicts_with = "timestamp")]
    pub reference_time: Option<PathBuf>,
    /// Write the image ID to this file.
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    /// Don't print progress information.
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't include history in the image.
    #[arg(long)]
    pub omit_history: bool,
    /// Add the io.buildah.version label (default true).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub identity_label: Option<bool>,
    /// Add a manifest annotation (k=v) to the image.
    #[arg(long, value_name = "KEY=VALUE")]
    pub annotation: Vec<String>,
    /// Leave this environment variable out of the committed image's configuration.
    #[arg(long, value_name = "ENV", value_delimiter = ',')]
    pub unsetenv: Vec<String>,
    /// Set the created timestamp to the epoch (same as --timestamp 0).
    #[arg(long, conflicts_with_all = ["timestamp", "reference_time"])]
    pub omit_timestamp: bool,
    /// `--encryption-key`, `--encrypt-layer`.
    #[command(flatten)]
    pub encryption: crate::flags::EncryptionFlags,
    /// `--authfile`, `--creds`, `--cert-dir`, `--tls-verify`, `--retry`, `--retry-delay`
    /// (for a `docker://` destination).
    #[command(flatten)]
    pub registry: RegistryFlags,
}

/// Parse `--compression-format`.
pub fn parse_compression(s: &str) -> anyhow::Result<Compression> {
    Ok(match s {
        "gzip" => Compression::Gzip,
        "zstd" | "zstd:chunked" => Compression::Zstd,
        "none" | "uncompressed" => Compression::None,
        _ => anyhow::bail!("unsupported compression format {s:?} (use gzip, zstd or none)"),
    })
}

/// Commit.
pub fn run(a: CommitArgs, ctx: &Ctx) -> anyhow::Result<i32> {
    let store = ctx.store()?;
    let b = super::open_builder(&store, &a.container)?;
    let mut opts = CommitOptions::default();
    opts.format = a.format.as_deref().map(super::parse_format).transpose()?;
    opts.compression = match (&a.compression_format, a.disable_compression) {
        (Some(c), _) => parse_compression(c)?,
        (None, Some(false)) => Compression::Gzip,
        _ => Compression::None,
    };
    opts.squash = a.squash;
    opts.timestamp = match &a.reference_time {
        Some(f) => Some(builder::commit::reference_time(f)?),
        None if a.omit_timestamp => Some(0),
        None => a.timestamp,
    };
    opts.unset_env = a.unsetenv.clone();
    opts.omit_history = a.omit_history;
    if let Some(l) = a.identity_label {
        opts.identity_label = l;
    }
    for ann in &a.annotation {
        let (k, v) = ann.split_once('=').unwrap_or((ann.as_str(), ""));
        opts.annotations.push((k.to_string(), v.to_string()));
    }
    opts.registry = registry_context(&a.registry, None, ctx)?;
    opts.encryption = crate::flags::encryption_config(&a.encryption)?;
    let reporter = StderrReporter::new(a.quiet);
    let out = b.commit(&store, a.image.as_deref(), &opts, &reporter)?;
    if let Some(path) = &a.iidfile {
        super::write_user_file(path, &format!("sha256:{}", out.image_id))?;
    }
    if a.rm {
        b.delete(&store)?;
    }
    // buildah prints the ID only when it is not written to --iidfile.
    if a.iidfile.is_none() {
        output::println(&out.image_id)?;
    }
    Ok(0)
}
