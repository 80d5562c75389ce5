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
    // Every error is shown; the last one is rmi's own.
    let mut errors = report.errors;
    match errors.pop() {
        Some(last) => {
            for e in errors {
                output::eprint_error(&anyhow::Error::from(e));
            }
            Err(last.into())
        }
        None => Ok(0),
    }
}
