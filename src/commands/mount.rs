//! `hod mount`: mount working containers' root filesystems; with no names, list mounts.
use anyhow::Context as _;
use builder::Builder;
use serde_json::json;

use crate::ctx::Ctx;
use crate::output;

/// `hod mount [options] [CONTAINER...]`
#[derive(Debug, clap::Args)]
pub struct MountArgs {
    /// Containers to mount.
    pub containers: Vec<String>,
    /// Output JSON.
    #[arg(long)]
    pub json: bool,
    /// Do not truncate output.
    #[arg(long)]
    pub notruncate: bool,
}

/// Mount or list.
pub fn run(a: MountArgs, ctx: &Ctx) -> anyhow::Result<i32> {
    builder::mount::check_rootless_mount(ctx.store_options.driver)?;
    let store = ctx.store()?;
    let mut out = String::new();
    let mut rows = Vec::new();
    let mut last_err: Option<anyhow::Error> = None;
    if a.containers.is_empty() {
        for b in Builder::open_all(&store).context("reading build containers")? {
            if let Some(p) = b.mount_point(&store)? {
                let p = p.display().to_string();
                out.push_str(&format!("{} {p}\n", b.name()));
                rows.push(json!({"container": b.name(), "mountPoint": p}));
            }
        }
    } else {
        let many = a.containers.len() > 1;
        for name in &a.containers {
            let mut b = match super::open_builder(&store, name) {
                Ok(b) => b,
                Err(e) => {
                    if let Some(prev) = last_err.replace(e) {
                        output::eprint_error(&prev);
                    }
                    continue;
                }
            };
            match b.mount(&store) {
                Ok(p) => {
                    let p = p.display().to_string();
                    if many {
                        out.push_str(&format!("{name} {p}\n"));
                        rows.push(json!({"container": name, "mountPoint": p}));
                    } else {
                        out.push_str(&format!("{p}\n"));
                        rows.push(json!({"mountPoint": p}));
                    }
                }
                Err(e) => {
                    let e = anyhow::Error::new(e)
                        .context(format!("mounting {name:?} container {:?}", b.name()));
                    if let Some(prev) = last_err.replace(e) {
                        output::eprint_error(&prev);
                    }
                }
            }
        }
    }
    if a.json {
        output::println(&output::json_pretty(&rows)?)?;
    } else {
        output::print(&out)?;
    }
    match last_err {
        Some(e) => Err(e),
        None => Ok(0),
    }
}
