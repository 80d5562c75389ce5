//! `hod rm`: remove working containers; prints each removed container's ID.
use anyhow::Context as _;
use builder::Builder;

use crate::ctx::Ctx;
use crate::output;

/// `hod rm [options] CONTAINER...`
#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Containers to remove.
    pub containers: Vec<String>,
    /// Remove every working container.
    #[arg(short, long)]
    pub all: bool,
}

/// Remove.
pub fn run(a: RmArgs, ctx: &Ctx) -> anyhow::Result<i32> {
    if a.containers.is_empty() && !a.all {
        anyhow::bail!("container ID must be specified");
    }
    if !a.containers.is_empty() && a.all {
        anyhow::bail!("when using the --all switch, you may not pass any containers names or IDs");
    }
    let store = ctx.store()?;
    let targets: Vec<(String, anyhow::Result<Builder>)> = if a.all {
        Builder::open_all(&store)
            .context("reading build containers")?
            .into_iter()
            .map(|b| (b.name().to_string(), Ok(b)))
            .collect()
    } else {
        a.containers
            .iter()
            .map(|n| {
                (
                    n.clone(),
                    Builder::open(&store, n).map_err(anyhow::Error::new),
                )
            })
            .collect()
    };
    let mut last_err: Option<anyhow::Error> = None;
    for (name, b) in targets {
        let r = b.and_then(|b| {
            let id = b.id().to_string();
            b.delete(&store)?;
            output::println(&id)
        });
        if let Err(e) = r {
            let e = e.context(format!("removing container {name:?}"));
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
