//! `mount` / `umount`: mount a working container's rootfs and record it in its state.
use std::path::PathBuf;

use crate::builder::Builder;
use crate::error::{Result, ResultExt};
use crate::store::{DriverKind, Store};

/// buildah's rule for `mount` by a rootless user outside the user namespace: only vfs (a
/// directory), since an overlay mount made there would vanish with the command's namespace.
pub fn check_rootless_mount(driver: DriverKind) -> Result<()> {
    match crate::sys::userns::identity() {
        crate::sys::userns::Identity::Rootless {
            in_userns: false, ..
        } if driver != DriverKind::Vfs => Err(crate::error::Error::invalid(format!(
            "cannot mount using driver {} in rootless mode. You need to run it in a `hod unshare` session",
            driver.name()
        ))),
        _ => Ok(()),
    }
}

impl Builder {
    /// Mount the container's rootfs (its layer over the image's layers) and save the mount
    /// point in the state. Mounting twice returns the same path. Every call takes one mount
    /// reference (containers/storage counts them), so a caller's `mount` + `unmount` pair
    /// leaves an earlier mount in place.
    pub fn mount(&mut self, store: &Store) -> Result<PathBuf> {
        if self.is_detached() {
            return Err(crate::Error::invalid(
                "mounting a builder that has no container yet",
            ));
        }
        let path = store
            .mount_layer(&self.record.layer)
            .context_with(|| format!("mounting container {:?}", self.state.container))?;
        let text = path.to_string_lossy().into_owned();
        if self.state.mount_point != text {
            self.state.mount_point = text;
            self.save()?;
        }
        Ok(path)
    }

    /// Unmount the rootfs and clear the saved mount point.
    pub fn unmount(&mut self, store: &Store) -> Result<()> {
        let still = store
            .unmount_layer(&self.record.layer, false)
            .context_with(|| format!("unmounting container {:?}", self.state.container))?;
        if !still {
            self.state.mount_point.clear();
            self.save()?;
        }
        Ok(())
    }

    /// Where the rootfs is mounted now, if it is (the store's view, not the saved state).
    pub fn mount_point(&self, store: &Store) -> Result<Option<PathBuf>> {
        store.layer_mount_point(&self.record.layer)
    }
}
