//! `mount` / `umount`: mount a working container's rootfs and record it in its state.
use std::path::PathBuf;

use crate::builder::Builder;
use crate::error::Result;
use crate::store::Store;

impl Builder {
    /// Mount the container's rootfs (its layer over the image's layers) and save the mount
    /// point in the state. Mounting twice returns the same path.
    pub fn mount(&mut self, _store: &Store) -> Result<PathBuf> {
        todo!("Builder::mount")
    }
    /// Unmount the rootfs and clear the saved mount point.
    pub fn unmount(&mut self, _store: &Store) -> Result<()> {
        todo!("Builder::unmount")
    }
}
