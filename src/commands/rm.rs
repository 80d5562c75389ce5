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

/// `NAME: container not known` becomes `container not known` when the
/// caller's context ("removing container \"NAME\"") already names it, as buildah prints.
fn without_repeated_name(e: anyhow::Error, name: &str) -> anyhow::Error {
    match e.downcast_ref::<builder::Error>() {
        Some(builder::Error::NotFound { kind, name: n }) if n == name => {
            anyhow::anyhow!("{kind} not known")
        }
        _ => e,
    }
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
            let e = without_repeated_name(e, &name).context(format!("removing container {name:?}"));
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

#[cfg(test)]
mod tests {
    #[test]
    fn not_found_loses_only_the_repeated_name() {
        let nf = |n: &str| {
            anyhow::Error::new(builder::Error::NotFound {
                kind: "container",
                name: n.to_string(),
            })
        };
        let cases = [
            (nf("x"), "x", "container not known"),
            (nf("y"), "x", "y: container not known"),
            (anyhow::anyhow!("other failure"), "x", "other failure"),
        ];
        for (e, name, want) in cases {
            let got = super::without_repeated_name(e, name)
                .context(format!("removing container {name:?}"));
            assert_eq!(
                format!("{got:#}"),
                format!("removing container {name:?}: {want}")
            );
        }
    }
}
