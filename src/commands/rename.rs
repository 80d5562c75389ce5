//! `hod rename`: rename a working container.
use crate::ctx::Ctx;

/// `hod rename CONTAINER NEW-NAME`
#[derive(Debug, clap::Args)]
pub struct RenameArgs {
    /// The container.
    pub container: String,
    /// Its new name.
    pub new_name: String,
}

/// Rename.
pub fn run(a: RenameArgs, ctx: &Ctx) -> anyhow::Result<i32> {
    let store = ctx.store()?;
    let mut b = super::open_builder(&store, &a.container)?;
    if b.name() == a.new_name {
        anyhow::bail!("renaming a container with the same name as its current name");
    }
    b.rename(&store, &a.new_name)?;
    Ok(0)
}
