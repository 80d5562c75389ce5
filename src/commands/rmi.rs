//! `hod rmi`: remove images; prints `untagged: NAME` lines and the removed IDs.
use builder::store::ImageRecord;

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
    /// Remove dangling (unnamed) images.
    #[arg(short, long)]
    pub prune: bool,
    /// Also remove the working containers using the images.
    #[arg(short, long)]
    pub force: bool,
}

/// Remove containers using `img` (for --force).
fn remove_users(store: &builder::Store, img: &ImageRecord) -> anyhow::Result<()> {
    for c in store.containers()? {
        if c.image == img.id {
            match builder::Builder::open(store, &c.id) {
                Ok(b) => b.delete(store)?,
                Err(_) => store.delete_container(&c.id)?,
            }
        }
    }
    Ok(())
}

/// Remove.
pub fn run(a: RmiArgs, ctx: &Ctx) -> anyhow::Result<i32> {
    if a.images.is_empty() && !a.all && !a.prune {
        anyhow::bail!("image name or ID must be specified");
    }
    if !a.images.is_empty() && a.all {
        anyhow::bail!("when using the --all switch, you may not pass any images names or IDs");
    }
    if a.all && a.prune {
        anyhow::bail!("when using the --all switch, you may not use --prune switch");
    }
    if !a.images.is_empty() && a.prune {
        anyhow::bail!("when using the --prune switch, you may not pass any images names or IDs");
    }
    let store = ctx.store()?;
    let mut untagged = Vec::new();
    let mut removed = Vec::new();
    let mut last_err: Option<anyhow::Error> = None;
    let remove = |img: ImageRecord, removed: &mut Vec<String>| -> anyhow::Result<()> {
        if a.force {
            remove_users(&store, &img)?;
        }
        store.delete_image(&img.id)?;
        removed.push(img.id);
        Ok(())
    };
    if a.all || a.prune {
        let mut images = store.images()?;
        if a.prune {
            images.retain(|i| i.names.is_empty());
        }
        for img in images {
            let names = img.names.clone();
            match remove(img, &mut removed) {
                Ok(()) => untagged.extend(names),
                Err(e) => {
                    if let Some(prev) = last_err.replace(e) {
                        output::eprint_error(&prev);
                    }
                }
            }
        }
    } else {
        for name in &a.images {
            let name = builder::from::local_name(name);
            let r = (|| -> anyhow::Result<()> {
                let img = store.image(name)?;
                // A name (not an ID) with other names left: untag only.
                let full = img
                    .names
                    .iter()
                    .find(|n| {
                        **n == *name
                            || n.ends_with(&format!("/{name}"))
                            || n.ends_with(&format!("/{name}:latest"))
                            || **n == format!("{name}:latest")
                    })
                    .cloned();
                if let (Some(n), true) = (&full, img.names.len() > 1) {
                    let rest: Vec<String> = img.names.iter().filter(|x| *x != n).cloned().collect();
                    store.set_image_names(&img.id, &rest)?;
                    untagged.push(n.clone());
                    return Ok(());
                }
                let names = img.names.clone();
                remove(img, &mut removed)?;
                untagged.extend(names);
                Ok(())
            })();
            if let Err(e) = r {
                if let Some(prev) = last_err.replace(e) {
                    output::eprint_error(&prev);
                }
            }
        }
    }
    let mut out = String::new();
    for u in &untagged {
        out.push_str(&format!("untagged: {u}\n"));
    }
    for id in &removed {
        out.push_str(&format!("{id}\n"));
    }
    output::print(&out)?;
    match last_err {
        Some(e) => Err(e),
        None => Ok(0),
    }
}
