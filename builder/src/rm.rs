//! `rm`: remove a working container (unmounting it first).
use crate::builder::Builder;
use crate::error::{Result, ResultExt};
use crate::store::Store;

impl Builder {
    /// Unmount (every reference) and delete the container, its layer and its directories.
    pub fn delete(self, store: &Store) -> Result<()> {
        self.remove_container(store)
    }

    /// [`Builder::delete`] through a shared reference; the value names a removed container
    /// afterwards.
    pub fn remove_container(&self, store: &Store) -> Result<()> {
        if self.is_detached() {
            return Ok(());
        }
        if let Err(e) = store.unmount_layer(&self.record.layer, true) {
            tracing::debug!("unmounting {} before removal: {e}", self.record.id);
        }
        store
            .delete_container(&self.record.id)
            .context_with(|| format!("removing container {:?}", self.state.container))
    }

    /// Rename the container (store names and saved state).
    pub fn rename(&mut self, store: &Store, new_name: &str) -> Result<()> {
        if let Ok(other) = store.container(new_name) {
            if other.id != self.record.id {
                return Err(crate::Error::NameInUse {
                    name: new_name.to_string(),
                    id: other.id,
                });
            }
        }
        let mut names = self.record.names.clone();
        names.retain(|n| n != &self.state.container);
        names.insert(0, new_name.to_string());
        store
            .set_container_names(&self.record.id, &names)
            .context_with(|| format!("renaming container {:?}", self.state.container))?;
        self.record.names = names;
        self.state.container = new_name.to_string();
        self.save()
    }
}
