//! `hod push`: copy a local image to a transport reference.
use std::path::PathBuf;

use builder::push::PushOptions;

use crate::ctx::Ctx;
use crate::flags::{encryption_config, registry_context, EncryptionFlags, RegistryFlags};
use crate::output::StderrReporter;

/// `hod push [options] IMAGE [DESTINATION]`
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The local image.
    pub image: String,
    /// Where to (`oci:DIR[:TAG]`, `oci-archive:FILE`, `docker-archive:FILE`, `dir:DIR`, …);
    /// default: the image name.
    pub destination: Option<String>,
    /// Convert the manifest to this format: oci, docker (v2s2).
    #[arg(short, long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Don't compress layers.
    #[arg(short = 'D', long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub disable_compression: Option<bool>,
    /// Layer compression: gzip, zstd or none.
    #[arg(long, value_name = "FORMAT")]
    pub compression_format: Option<String>,
    /// Compression level: 0-9 for gzip (default 3), 1-22 for zstd (default 3).
    #[arg(long, value_name = "LEVEL")]
    pub compression_level: Option<i32>,
    /// Write the manifest digest to this file.
    #[arg(long, value_name = "FILE")]
    pub digestfile: Option<PathBuf>,
    /// Don't print progress information.
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't copy signatures.
    #[arg(long)]
    pub remove_signatures: bool,
    /// Remove the local image after a successful push.
    #[arg(long)]
    pub rm: bool,
    /// `--encryption-key`, `--encrypt-layer`.
    #[command(flatten)]
    pub encryption: EncryptionFlags,
    /// `--authfile`, `--creds`, `--cert-dir`, `--tls-verify`, `--retry`, `--retry-delay`.
    #[command(flatten)]
    pub registry: RegistryFlags,
}

/// Push.
pub fn run(a: PushArgs, ctx: &Ctx) -> anyhow::Result<i32> {
    let store = ctx.store()?;
    let mut opts = PushOptions::default();
    opts.format = a.format.as_deref().map(super::parse_format).transpose()?;
    opts.compression = match (&a.compression_format, a.disable_compression) {
        (Some(c), _) => Some(super::commit::parse_compression(c)?),
        (None, Some(true)) => Some(builder::archive::Compression::None),
        _ => None,
    };
    opts.compression_level = a.compression_level;
    opts.remove_signatures = a.remove_signatures;
    opts.registry = registry_context(&a.registry, None, ctx)?;
    opts.encryption = encryption_config(&a.encryption)?;
    let dest = a.destination.clone().unwrap_or_else(|| a.image.clone());
    let reporter = StderrReporter::new(a.quiet);
    let digest = builder::push::push(&store, &a.image, &dest, &opts, &reporter)?;
    if let Some(path) = &a.digestfile {
        super::write_user_file(path, &digest.to_string())?;
    }
    if a.rm {
        let img = store.image(&a.image)?;
        store.delete_image(&img.id)?;
    }
    Ok(0)
}
