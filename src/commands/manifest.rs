//! `hod manifest`: create and work with manifest lists and image indexes (one library call
//! per subcommand, in `builder::manifest`).
use std::collections::BTreeMap;
use std::path::PathBuf;

use builder::manifest::{self, AddOptions, CreateOptions, InstanceUpdate, PushListOptions};

use crate::ctx::Ctx;
use crate::flags::{registry_context, RegistryFlags};
use crate::output::{self, StderrReporter};

/// `hod manifest COMMAND`
#[derive(Debug, clap::Args)]
pub struct ManifestArgs {
    /// The manifest subcommand.
    #[command(subcommand)]
    pub command: ManifestCommand,
}

/// The `manifest` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ManifestCommand {
    /// Add images to a manifest list or image index.
    Add(AddArgs),
    /// Add or update information about an entry in a manifest list or image index.
    Annotate(AnnotateArgs),
    /// Create manifest list or image index.
    Create(CreateArgs),
    /// Check if a manifest list exists in local storage.
    Exists(NameArgs),
    /// Display the contents of a manifest list or image index.
    Inspect(InspectArgs),
    /// Push a manifest list or image index to a registry.
    Push(PushArgs),
    /// Remove an entry from a manifest list or image index.
    Remove(RemoveArgs),
    /// Remove manifest list or image index.
    Rm(RmArgs),
}

/// `hod manifest create [options] LIST [IMAGE…]`
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The new list's name.
    pub list: String,
    /// Images to add to it.
    pub images: Vec<String>,
    /// Add all of the lists' images if the images to add are lists.
    #[arg(long)]
    pub all: bool,
    /// Modify an existing list if one with the desired name already exists.
    #[arg(long)]
    pub amend: bool,
    /// `--authfile`, `--creds`, `--cert-dir`, `--tls-verify`, `--retry`, `--retry-delay`.
    #[command(flatten)]
    pub registry: RegistryFlags,
}

/// Platform and annotation overrides (`manifest add` and `manifest annotate`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct InstanceFlags {
    /// Set an annotation (KEY=VALUE) for the specified image (replaces its annotations).
    #[arg(long = "annotation", value_name = "KEY=VALUE", value_delimiter = ',')]
    pub annotations: Vec<String>,
    /// Override the architecture of the specified image.
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,
    /// Override the OS of the specified image.
    #[arg(long, value_name = "OS")]
    pub os: Option<String>,
    /// Override the OS features of the specified image (comma-separated).
    #[arg(long, value_name = "FEATURES", value_delimiter = ',')]
    pub os_features: Option<Vec<String>>,
    /// Override the OS version of the specified image.
    #[arg(long, value_name = "VERSION")]
    pub os_version: Option<String>,
    /// Override the architecture variant of the specified image.
    #[arg(long, value_name = "VARIANT")]
    pub variant: Option<String>,
    /// Override the CPU features of the specified image (not recorded in an OCI index,
    /// as in buildah 1.28).
    #[arg(long, value_name = "FEATURES", value_delimiter = ',')]
    pub features: Option<Vec<String>>,
}

impl InstanceFlags {
    fn update(&self) -> anyhow::Result<InstanceUpdate> {
        let mut u = InstanceUpdate::default();
        let mut ann = BTreeMap::new();
        for a in &self.annotations {
            let (k, v) = a
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("no value given for annotation {a:?}"))?;
            ann.insert(k.to_string(), v.to_string());
        }
        u.annotations = ann;
        u.arch = self.arch.clone();
        u.os = self.os.clone();
        u.os_features = self.os_features.clone();
        u.os_version = self.os_version.clone();
        u.variant = self.variant.clone();
        u.features = self.features.clone();
        Ok(u)
    }
}

/// `hod manifest add [options] LIST IMAGE`
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// The list.
    pub list: String,
    /// The image (local name or ID, or a transport reference).
    pub image: String,
    /// Add all of the list's images if the image is a list.
    #[arg(long)]
    pub all: bool,
    /// Platform and annotation overrides.
    #[command(flatten)]
    pub instance: InstanceFlags,
    /// `--authfile`, `--creds`, `--cert-dir`, `--tls-verify`, `--retry`, `--retry-delay`.
    #[command(flatten)]
    pub registry: RegistryFlags,
}

/// `hod manifest annotate [options] LIST IMAGE|DIGEST`
#[derive(Debug, clap::Args)]
pub struct AnnotateArgs {
    /// The list.
    pub list: String,
    /// The entry: its manifest digest, or an image whose digest it is.
    pub image: String,
    /// Platform and annotation overrides.
    #[command(flatten)]
    pub instance: InstanceFlags,
}

/// A single list name (`manifest exists`).
#[derive(Debug, clap::Args)]
pub struct NameArgs {
    /// The list.
    pub list: String,
}

/// `hod manifest inspect LIST`
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The list (local, or a transport reference).
    pub list: String,
    /// `--authfile`, `--creds`, `--cert-dir`, `--tls-verify`, `--retry`, `--retry-delay`.
    #[command(flatten)]
    pub registry: RegistryFlags,
}

/// `hod manifest push [options] LIST DESTINATION`
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The list.
    pub list: String,
    /// Where to (`docker://…`, `oci:DIR[:TAG]`, `dir:DIR`); a bare name is a registry.
    pub destination: String,
    /// Also push the images in the list.
    #[arg(long)]
    pub all: bool,
    /// Manifest list type (oci or v2s2) to use when pushing the list (default: the stored, oci).
    #[arg(short, long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// After copying the list, write its digest to this file.
    #[arg(long, value_name = "FILE")]
    pub digestfile: Option<PathBuf>,
    /// Don't output progress information.
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't copy signatures when pushing images.
    #[arg(long)]
    pub remove_signatures: bool,
    /// Remove the manifest list from local storage if the push succeeds.
    #[arg(long, visible_alias = "purge")]
    pub rm: bool,
    /// `--authfile`, `--creds`, `--cert-dir`, `--tls-verify`, `--retry`, `--retry-delay`.
    #[command(flatten)]
    pub registry: RegistryFlags,
}

/// `hod manifest remove LIST DIGEST`
#[derive(Debug, clap::Args)]
pub struct RemoveArgs {
    /// The list.
    pub list: String,
    /// The entry's manifest digest.
    pub digest: String,
}

/// `hod manifest rm LIST…`
#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// The lists to remove (their images stay).
    #[arg(required = true)]
    pub lists: Vec<String>,
}

/// Run a `manifest` subcommand.
pub fn run(a: ManifestArgs, ctx: &Ctx) -> anyhow::Result<i32> {
    let store = ctx.store()?;
    match a.command {
        ManifestCommand::Create(a) => {
            let mut o = CreateOptions::default();
            o.all = a.all;
            o.amend = a.amend;
            o.registry = registry_context(&a.registry, None, ctx)?;
            let id = manifest::create(&store, &a.list, &a.images, &o, &StderrReporter::new(false))?;
            output::print(&format!("{id}\n"))?;
        }
        ManifestCommand::Add(a) => {
            let mut o = AddOptions::default();
            o.all = a.all;
            o.update = a.instance.update()?;
            o.registry = registry_context(&a.registry, None, ctx)?;
            let (id, d) =
                manifest::add(&store, &a.list, &a.image, &o, &StderrReporter::new(false))?;
            output::print(&format!("{id}: {d}\n"))?;
        }
        ManifestCommand::Annotate(a) => {
            let (id, d) = manifest::annotate(&store, &a.list, &a.image, &a.instance.update()?)?;
            output::print(&format!("{id}: {d}\n"))?;
        }
        ManifestCommand::Exists(a) => {
            return Ok(if manifest::exists(&store, &a.list)? {
                0
            } else {
                1
            });
        }
        ManifestCommand::Inspect(a) => {
            let r = registry_context(&a.registry, None, ctx)?;
            output::print(&format!("{}\n", manifest::inspect(&store, &a.list, &r)?))?;
        }
        ManifestCommand::Push(a) => {
            let mut o = PushListOptions::default();
            o.all = a.all;
            o.format = a
                .format
                .as_deref()
                .map(manifest::ListFormat::parse)
                .transpose()?;
            o.remove_signatures = a.remove_signatures;
            o.rm = a.rm;
            o.registry = registry_context(&a.registry, None, ctx)?;
            let reporter = StderrReporter::new(a.quiet);
            let d = manifest::push(&store, &a.list, &a.destination, &o, &reporter)?;
            if let Some(p) = &a.digestfile {
                super::write_user_file(p, &d.to_string())?;
            }
        }
        ManifestCommand::Remove(a) => {
            let (id, d) = manifest::remove(&store, &a.list, &a.digest)?;
            output::print(&format!("{id}: {d}\n"))?;
        }
        ManifestCommand::Rm(a) => {
            let mut last = None;
            for l in &a.lists {
                match manifest::rm(&store, l) {
                    Ok(r) => {
                        let mut out = String::new();
                        for n in &r.names {
                            out.push_str(&format!("untagged: {n}\n"));
                        }
                        if let Some(id) = &r.id {
                            out.push_str(&format!("{id}\n"));
                        }
                        output::print(&out)?;
                    }
                    Err(e) => {
                        if let Some(prev) = last.replace(e) {
                            output::eprint_error(&anyhow::Error::from(prev));
                        }
                    }
                }
            }
            if let Some(e) = last {
                return Err(e.into());
            }
        }
    }
    Ok(0)
}
