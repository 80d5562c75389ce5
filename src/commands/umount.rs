//! `hod umount`: unmount working containers' root filesystems.
use anyhow::Context as _;
use builder::Builder;

use crate::ctx::Ctx;
use crate::output;

/// `hod umount [options] CONTAINER...`
#[derive(Debug, clap::Args)]
pub struct UmountArgs {
    /// Containers to unmount.
    pub containers: Vec<String>,
    /// Unmount every working container.
    #[arg(short, long)]
    pub all: bool,
}

/// Unmount.
pub fn run(a: UmountArgs, ctx: &Ctx) -> anyhow::Result<i32> {
    if a.all && !a.containers.is_empty() {
        anyhow::bail!("when using the --all switch, you may not pass any containers names or IDs");
    }
    if !a.all && a.containers.is_empty() {
        anyhow::bail!("at least one container name or ID must be specified");
    }
    let store = ctx.store()?;
    let builders = if a.all {
        Builder::open_all(&store)
            .context("reading build containers")?
            .into_iter()
            .map(Ok)
            .collect::<Vec<_>>()
    } else {
        a.containers
            .iter()
            .map(|n| super::open_builder(&store, n))
            .collect()
    };
    let mut last_err: Option<anyhow::Error> = None;
    for b in builders {
        let r = b.and_then(|mut b| {
            if a.all && b.mount_point(&store)?.is_none() {
                return Ok(());
            }
            let id = b.id().to_string();
            b.unmount(&store)
                .with_context(|| format!("unmounting container {:?}", b.name()))?;
            output::println(&id)
        });
        if let Err(e) = r {
            if let Some(prev) = last_err.replace(e) {
                output::eprint_error(&prev);
            }
        }
    }
    match last_err {
        Some(e) => Err(e),
        None => Ok(0),
    }
}
