//! Graph drivers: how layer contents are laid out and mounted.
//!
//! - `overlay`: `<root>/overlay/<id>/{diff,work,merged,link,lower|empty}` and
//!   `<root>/overlay/l/<short> -> ../<id>/diff`; a layer is mounted as overlayfs.
//! - `vfs`: `<root>/vfs/dir/<id>/` holds the full tree; "mounting" returns the directory.
pub mod mountinfo;
pub mod overlay;
pub mod tempdirs;
pub mod vfs;

use std::path::{Path, PathBuf};

use crate::archive::apply::WhiteoutFormat;
use crate::archive::diff::ChangeSource;
use crate::error::Result;
use crate::store::paths::Paths;
use crate::store::{DriverKind, StoreError};

/// Parsed driver options (`overlay.mountopt=…`, `overlay.mount_program=…`,
/// `overlay.skip_mount_home=…`, `*.ignore_chown_errors=…`).
#[derive(Debug, Clone, Default)]
pub struct DriverOptions {
    /// Extra overlay mount options.
    pub mount_options: Vec<String>,
    /// A FUSE mount program (fuse-overlayfs).
    pub mount_program: Option<String>,
    /// Do not make the driver home a private bind mount.
    pub skip_mount_home: bool,
    /// Ignore chown failures while applying layers.
    pub ignore_chown_errors: bool,
}

impl DriverOptions {
    /// Overlay in a rootless user namespace without a mount program: mounted with
    /// `userxattr`, opaque directories marked `user.overlay.opaque` (as containers/storage).
    pub fn userxattr(&self, kind: DriverKind) -> bool {
        kind == DriverKind::Overlay
            && self.mount_program.is_none()
            && crate::sys::userns::identity().is_rootless()
    }

    /// The overlay mount options the kernel gets: the configured ones, plus `userxattr`
    /// where [`DriverOptions::userxattr`] says so.
    pub fn overlay_mount_options(&self, kind: DriverKind) -> Vec<String> {
        let mut v = self.mount_options.clone();
        if self.userxattr(kind) && !v.iter().any(|o| o == "userxattr") {
            v.push("userxattr".to_string());
        }
        v
    }

    /// Parse `driver.key=value` pairs for `kind`; unknown keys are an error, like c/storage.
    pub fn parse(kind: DriverKind, opts: &[String]) -> Result<DriverOptions> {
        let mut o = DriverOptions::default();
        for opt in opts {
            let (key, val) = opt.split_once('=').ok_or_else(|| {
                StoreError::Unsupported(format!(
                    "unable to parse storage option {opt:?}: expected key=value"
                ))
            })?;
            let key = key.trim().to_ascii_lowercase();
            let val = val.trim();
            let bare = key
                .strip_prefix(kind.name())
                .or_else(|| key.strip_prefix("overlay2"))
                .unwrap_or(&key)
                .trim_start_matches('.');
            let truthy = || matches!(val, "1" | "t" | "T" | "true" | "TRUE" | "True");
            match (kind, bare) {
                (_, "ignore_chown_errors") => o.ignore_chown_errors = truthy(),
                (DriverKind::Overlay, "mountopt") => o
                    .mount_options
                    .extend(val.split(',').filter(|s| !s.is_empty()).map(String::from)),
                (DriverKind::Overlay, "mount_program") => {
                    o.mount_program = (!val.is_empty()).then(|| val.to_string())
                }
                (DriverKind::Overlay, "skip_mount_home") => o.skip_mount_home = truthy(),
                // Accepted and ignored: they change nothing for what hod does.
                (
                    DriverKind::Overlay,
                    "size"
                    | "inodes"
                    | "force_mask"
                    | "use_composefs"
                    | "imagestore"
                    | "additionalimagestore",
                ) => {}
                (DriverKind::Vfs, "imagestore") => {}
                _ => {
                    return Err(StoreError::Unsupported(format!(
                        "{} driver does not support {key} options",
                        kind.name()
                    ))
                    .into())
                }
            }
        }
        Ok(o)
    }
}

/// The graph driver of an opened store.
#[derive(Debug, Clone)]
pub struct Driver {
    /// Which driver.
    pub kind: DriverKind,
    /// `<root>/<driver>`.
    pub home: PathBuf,
    /// Options.
    pub opts: DriverOptions,
    /// Overlay in a rootless user namespace without a mount program: mounted with
    /// `userxattr`, opaque directories marked `user.overlay.opaque` (as containers/storage).
    pub userxattr: bool,
}

impl Driver {
    /// The driver for `paths`.
    pub fn new(paths: &Paths, opts: DriverOptions) -> Driver {
        let userxattr = opts.userxattr(paths.driver);
        Driver {
            kind: paths.driver,
            home: paths.driver_home(),
            opts,
            userxattr,
        }
    }

    /// Create the driver's home directories.
    pub fn init(&self) -> Result<()> {
        match self.kind {
            DriverKind::Overlay => overlay::init(self)?,
            DriverKind::Vfs => vfs::init(self)?,
        }
        if let Err(e) = tempdirs::recover(&self.home) {
            tracing::debug!("removing what interrupted removals left: {e}");
        }
        Ok(())
    }

    /// Create the directories of a new layer on top of `parent`.
    pub fn create(&self, id: &str, parent: Option<&str>) -> Result<()> {
        match self.kind {
            DriverKind::Overlay => overlay::create(self, id, parent),
            DriverKind::Vfs => vfs::create(self, id, parent),
        }
    }

    /// Remove a layer's directories (and, for overlay, its `l/` link).
    pub fn remove(&self, id: &str) -> Result<()> {
        match self.kind {
            DriverKind::Overlay => overlay::remove(self, id),
            DriverKind::Vfs => vfs::remove(self, id),
        }
    }

    /// Move a layer's directories out of the driver's namespace (and, for overlay, remove
    /// its `l/` link) for deletion later: see [`tempdirs`]. `None` when it has none.
    pub fn stage_removal(&self, id: &str) -> Result<Option<tempdirs::Staged>> {
        if self.kind == DriverKind::Overlay {
            overlay::unlink(self, id);
        }
        tempdirs::stage(&self.home, &self.layer_dir(id))
    }

    /// Whether the layer's directory exists.
    pub fn exists(&self, id: &str) -> bool {
        self.layer_dir(id).is_dir()
    }

    /// `<root>/overlay/<id>` or `<root>/vfs/dir/<id>`.
    pub fn layer_dir(&self, id: &str) -> PathBuf {
        match self.kind {
            DriverKind::Overlay => self.home.join(id),
            DriverKind::Vfs => self.home.join("dir").join(id),
        }
    }

    /// Where a layer's own files are (the tar is applied there; tar-split reassembles from
    /// there): overlay `diff/`, vfs the layer dir.
    pub fn diff_dir(&self, id: &str) -> PathBuf {
        match self.kind {
            DriverKind::Overlay => self.home.join(id).join("diff"),
            DriverKind::Vfs => self.layer_dir(id),
        }
    }

    /// The whiteout format layer tars are applied with.
    pub fn whiteouts(&self) -> WhiteoutFormat {
        match self.kind {
            DriverKind::Overlay => WhiteoutFormat::Overlay,
            DriverKind::Vfs => WhiteoutFormat::Delete,
        }
    }

    /// The xattr that marks an opaque directory in an overlay layer: `user.overlay.opaque`
    /// in a rootless user namespace, where `trusted.*` cannot be set (the kernel's overlay
    /// reads it with `userxattr`, fuse-overlayfs reads it too), else `trusted.overlay.opaque`.
    pub fn opaque_xattr(&self) -> &'static str {
        if self.userxattr
            || self.kind == DriverKind::Overlay && crate::sys::userns::identity().is_rootless()
        {
            crate::archive::apply::USER_OPAQUE_XATTR
        } else {
            crate::archive::apply::OPAQUE_XATTR
        }
    }

    /// How to compute a layer's change set (for layers without tar-split).
    pub fn change_source<'a>(
        &self,
        diff: &'a Path,
        parent_dir: Option<&'a Path>,
    ) -> ChangeSource<'a> {
        match self.kind {
            DriverKind::Overlay => ChangeSource::OverlayUpper(diff),
            DriverKind::Vfs => ChangeSource::Compare {
                layer: diff,
                parent: parent_dir,
            },
        }
    }

    /// Make the layer's tree available; returns where.
    pub fn get(&self, id: &str) -> Result<PathBuf> {
        match self.kind {
            DriverKind::Overlay => overlay::get(self, id),
            DriverKind::Vfs => vfs::get(self, id),
        }
    }

    /// Undo [`Driver::get`].
    pub fn put(&self, id: &str) -> Result<()> {
        match self.kind {
            DriverKind::Overlay => overlay::put(self, id),
            DriverKind::Vfs => Ok(()),
        }
    }

    /// Whether layer `id` is mounted now (overlay: at `<home>/<id>/merged`; vfs: never).
    pub fn layer_mounted(&self, id: &str) -> bool {
        match self.kind {
            DriverKind::Overlay => mountinfo::is_mount_point(&self.home.join(id).join("merged")),
            DriverKind::Vfs => false,
        }
    }

    /// Whether `path` is currently a mount of this driver's kind (vfs: never).
    pub fn is_mounted(&self, path: &Path) -> bool {
        match self.kind {
            DriverKind::Overlay => mountinfo::is_mount_point(path),
            DriverKind::Vfs => false,
        }
    }
}

/// Flag `dir` (where each layer gets a directory of its own) as the top of unrelated
/// hierarchies for ext2/3/4's Orlov allocator (`chattr +T`): each layer directory is then
/// placed in a block group of its own choosing, not crowded into its parent's. Elsewhere the
/// flag is unsupported, and that is fine.
pub(super) fn mark_top_dir(dir: &Path) {
    use rustix::fs::IFlags;
    let set = || -> std::io::Result<()> {
        let f = std::fs::File::open(dir)?;
        let flags = rustix::fs::ioctl_getflags(&f)?;
        if !flags.contains(IFlags::TOPDIR) {
            rustix::fs::ioctl_setflags(&f, flags | IFlags::TOPDIR)?;
        }
        Ok(())
    };
    if let Err(e) = set() {
        tracing::trace!("marking {} as a top directory: {e}", dir.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::paths::Paths;

    /// On ext2/3/4 the directory holding the layer directories is flagged `T` by `init`;
    /// elsewhere `init` works all the same.
    #[test]
    fn layer_parents_are_top_directories_on_ext4() {
        let d = tempfile::tempdir().unwrap();
        let ext = rustix::fs::statfs(d.path()).unwrap().f_type as i64 == 0xEF53;
        for (kind, dir) in [
            (DriverKind::Vfs, "vfs/dir"),
            (DriverKind::Overlay, "overlay"),
        ] {
            let paths = Paths {
                root: d.path().to_path_buf(),
                run_root: d.path().join("run"),
                driver: kind,
            };
            let opts = DriverOptions {
                skip_mount_home: true,
                ..Default::default()
            };
            Driver::new(&paths, opts).init().unwrap();
            let f = std::fs::File::open(d.path().join(dir)).unwrap();
            let top = rustix::fs::ioctl_getflags(&f)
                .map(|fl| fl.contains(rustix::fs::IFlags::TOPDIR))
                .unwrap_or(false);
            assert_eq!(top, ext, "{dir}: T flag {top}, ext4 {ext}");
        }
    }
}
