//! `hod rmi`: remove images; prints `untagged: NAME` lines and the removed IDs.
use builder::images::{remove_images, RemoveOptions};

use crate::ctx::Ctx;
use crate::output;

/// `hod rmi [options] IMAGE...`
#[derive(Debug, clap::Args)]
pub struct RmiArgs {
    /// Images to remove (names untag; the image goes when no name is left).
    pub images: Vec<String>,
    /// Remove every image.
    #[arg(short, long)]
    pub all: bool,
    /// Remove dangling images (no name, no child image).
    #[arg(short, long)]
    pub prune: bool,
    /// Also remove the working containers using the images.
    #[arg(short, long)]
    pub force: bool,
}

/// Remove.
pub fn run(a: RmiArgs, ctx: &Ctx) -> anyhow::Result<i32> {
    let mut opts = RemoveOptions::default();
    opts.images = a.images;
    opts.all = a.all;
    opts.prune = a.prune;
    opts.force = a.force;
    let store = ctx.store()?;
    let report = remove_images(&store, &opts)?;
    let mut out = String::new();
    for u in &report.untagged {
        out.push_str(&format!("untagged: {u}\n"));
    }
    for id in &report.removed {
        out.push_str(&format!("{id}\n"));
    }
    output::print(&out)?;
    // One error: that error. Several: buildah's (hashicorp/go-multierror) list, one
    // `\t* ` line each.
    let mut errors = report.errors;
    if errors.len() <= 1 {
        return match errors.pop() {
            Some(e) => Err(e.into()),
            None => Ok(0),
        };
    }
    let list: Vec<String> = (errors.iter()).map(|e| format!("\t* {e:#}")).collect();
    anyhow::bail!("{} errors occurred:\n{}", list.len(), list.join("\n"))
}
