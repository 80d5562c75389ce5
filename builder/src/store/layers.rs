//! The layer store: `layers.json` (+ `volatile-layers.json` if a newer containers/storage
//! wrote one), `<id>.tar-split.gz`, and mount counts in the run root's `mountpoints.json`.
use std::collections::HashSet;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::containers::ContainerSet;
use super::json;
use super::lock::{self, LockGuard, LockKind};
use super::paths::{self, Paths};
use super::{Layer, PutLayerOptions, Store, StoreError};
use crate::archive::apply::{ApplySummary, WhiteoutFormat};
use crate::error::{Error, IoResultExt, Result};

/// `layers.lock` paths this process holds exclusively while applying a layer tar (count per
/// path). A `layer_diff` in another thread of this process then reads without the lock: the
/// holder only adds its own new layer, and every other writer waits for it, so this is safe,
/// and it lets a caller stream one layer's diff into `put_layer` of the same store.
static APPLYING: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

struct ApplyingMark(PathBuf);

impl ApplyingMark {
    fn new(p: PathBuf) -> ApplyingMark {
        APPLYING
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(p.clone());
        ApplyingMark(p)
    }
}

impl Drop for ApplyingMark {
    fn drop(&mut self) {
        let mut v = APPLYING.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = v.iter().position(|p| *p == self.0) {
            v.swap_remove(i);
        }
    }
}

fn applying(p: &Path) -> bool {
    APPLYING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .any(|x| x == p)
}

/// containers/storage's flag for a layer still being written.
pub const INCOMPLETE_FLAG: &str = "incomplete";

/// The layers of both JSON files, remembering which came from the volatile one.
#[derive(Debug, Default)]
pub(super) struct LayerSet {
    pub layers: Vec<Layer>,
    volatile: HashSet<String>,
    had_volatile_file: bool,
}

impl LayerSet {
    pub fn load(p: &Paths) -> Result<LayerSet> {
        let mut set = LayerSet::default();
        let mut seen = HashSet::new();
        for l in json::read_list::<Layer>(&p.layers_json())? {
            if seen.insert(l.id.clone()) {
                set.layers.push(l);
            }
        }
        let vp = p.volatile_layers_json();
        if vp.exists() {
            set.had_volatile_file = true;
            for l in json::read_list::<Layer>(&vp)? {
                if seen.insert(l.id.clone()) {
                    set.volatile.insert(l.id.clone());
                    set.layers.push(l);
                }
            }
        }
        Ok(set)
    }

    /// Save under the exclusive `layers.lock` (`guard`): record the write first, as
    /// containers/storage does, then replace the file(s).
    pub fn save(&self, p: &Paths, guard: &LockGuard) -> Result<()> {
        guard.record_write()?;
        let stable: Vec<&Layer> = self
            .layers
            .iter()
            .filter(|l| !self.volatile.contains(&l.id))
            .collect();
        json::write_file(&p.layers_json(), &stable)?;
        if self.had_volatile_file {
            let vol: Vec<&Layer> = self
                .layers
                .iter()
                .filter(|l| self.volatile.contains(&l.id))
                .collect();
            json::write_file(&p.volatile_layers_json(), &vol)?;
        }
        Ok(())
    }

    /// By ID, name, or unique ID prefix (like c/storage's lookup).
    pub fn lookup(&self, name: &str) -> Result<&Layer> {
        if let Some(l) = self.layers.iter().find(|l| l.id == name) {
            return Ok(l);
        }
        if let Some(l) = self
            .layers
            .iter()
            .find(|l| l.names.iter().any(|n| n == name))
        {
            return Ok(l);
        }
        let not_found = || Error::NotFound {
            kind: "layer",
            name: name.to_string(),
        };
        if name.is_empty() {
            return Err(not_found());
        }
        let mut it = self.layers.iter().filter(|l| l.id.starts_with(name));
        match (it.next(), it.next()) {
            (Some(l), None) => Ok(l),
            (Some(_), Some(_)) => Err(StoreError::Ambiguous(name.to_string()).into()),
            _ => Err(not_found()),
        }
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Layer> {
        self.layers.iter_mut().find(|l| l.id == id)
    }

    pub fn remove(&mut self, id: &str) {
        self.layers.retain(|l| l.id != id);
        self.volatile.remove(id);
    }
}

/// One entry of `mountpoints.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct MountPoint {
    pub id: String,
    #[serde(rename = "path", default)]
    pub path: String,
    #[serde(default)]
    pub count: i64,
}

pub(super) fn load_mounts(p: &Paths) -> Result<Vec<MountPoint>> {
    json::read_list(&p.mountpoints_json())
}

/// Save under the exclusive `mountpoints.lock`; entries with no count or path are dropped.
pub(super) fn save_mounts(p: &Paths, guard: &LockGuard, mounts: &[MountPoint]) -> Result<()> {
    let keep: Vec<&MountPoint> = mounts
        .iter()
        .filter(|m| m.count > 0 && !m.path.is_empty())
        .collect();
    guard.record_write()?;
    json::write_file(&p.mountpoints_json(), &keep)
}

/// The callback that fills a layer directory from the tar (the real one is
/// `archive::apply::apply_layer`); it writes tar-split metadata to the writer it is given.
pub(super) type Applier<'a> =
    dyn FnMut(&Path, WhiteoutFormat, &mut dyn Write) -> Result<ApplySummary> + 'a;

impl Store {
    pub(super) fn lock(&self, path: PathBuf, kind: LockKind) -> Result<LockGuard> {
        lock::lock(&path, kind)
    }

    pub(super) fn init_dirs(&self) -> Result<()> {
        let p = &self.paths;
        for d in [
            p.root.clone(),
            p.run_root.clone(),
            p.layers_dir(),
            p.images_dir(),
            p.containers_dir(),
            p.run_layers_dir(),
            p.run_containers_dir(),
            p.run_locks_dir(),
        ] {
            paths::mkdir_all(&d, 0o700)?;
        }
        for l in [
            p.storage_lock(),
            p.userns_lock(),
            p.layers_lock(),
            p.mountpoints_lock(),
            p.images_lock(),
            p.containers_lock(),
        ] {
            lock::ensure_lock_file(&l)?;
        }
        self.driver.init()
    }

    /// Delete layers a killed writer left flagged `incomplete` (under the exclusive lock;
    /// a shared look first so that the common case does not serialise openers).
    pub(super) fn cleanup_incomplete(&self) -> Result<()> {
        let stale_temps = || -> Vec<PathBuf> {
            fs::read_dir(self.paths.layers_dir())
                .map(|rd| {
                    rd.flatten()
                        .filter(|e| {
                            e.file_name()
                                .to_string_lossy()
                                .starts_with(".tmp-tar-split-")
                        })
                        .map(|e| e.path())
                        .collect()
                })
                .unwrap_or_default()
        };
        // Containers naming a layer that is gone: a removal killed after the layer's record
        // was dropped and before the container's was.
        let dangling = |set: &LayerSet| -> Result<HashSet<String>> {
            let _cg = self.lock(self.paths.containers_lock(), LockKind::Shared)?;
            let ids: HashSet<&str> = set.layers.iter().map(|l| l.id.as_str()).collect();
            Ok(ContainerSet::load(&self.paths)?
                .containers
                .iter()
                .filter(|c| !c.layer.is_empty() && !ids.contains(c.layer.as_str()))
                .map(|c| c.layer.clone())
                .collect())
        };
        {
            let _g = self.lock(self.paths.layers_lock(), LockKind::Shared)?;
            let set = LayerSet::load(&self.paths)?;
            let any_incomplete = set.layers.iter().any(Layer::is_incomplete);
            if !any_incomplete && stale_temps().is_empty() && dangling(&set)?.is_empty() {
                return Ok(());
            }
        }
        let g = self.lock(self.paths.layers_lock(), LockKind::Exclusive)?;
        // Tar-split temp files only exist while their writer holds this lock: any left now
        // belong to a killed writer.
        for p in stale_temps() {
            let _ = fs::remove_file(p);
        }
        let mut set = LayerSet::load(&self.paths)?;
        let incomplete: Vec<String> = set
            .layers
            .iter()
            .filter(|l| l.is_incomplete())
            .map(|l| l.id.clone())
            .collect();
        let mut deleted = dangling(&set)?;
        if incomplete.is_empty() && deleted.is_empty() {
            return Ok(());
        }
        let mut first_err = None;
        for id in &incomplete {
            tracing::debug!("found incomplete layer {id}, deleting it");
            if let Err(e) = self.remove_layer_files(id) {
                first_err.get_or_insert(e);
                continue;
            }
            set.remove(id);
            deleted.insert(id.clone());
        }
        set.save(&self.paths, &g)?;
        if let Err(e) = self.drop_containers_of(&deleted) {
            first_err.get_or_insert(e);
        }
        match first_err {
            Some(e) => Err(e.context(format!(
                "deleting incomplete layers in {}",
                self.paths.layers_dir().display()
            ))),
            None => Ok(()),
        }
    }

    /// Drop the records (and directories) of the containers whose layer is in `deleted`,
    /// with `layers.lock` held by the caller. Container removal deletes the layer first
    /// (flagging it `incomplete`) and the record after, so a removal killed in between
    /// leaves a record naming a layer [`Self::cleanup_incomplete`] has just deleted: the
    /// removal is finished here, so no container names a missing layer.
    fn drop_containers_of(&self, deleted: &HashSet<String>) -> Result<()> {
        if deleted.is_empty() {
            return Ok(());
        }
        let _ig = self.lock(self.paths.images_lock(), LockKind::Exclusive)?;
        let cg = self.lock(self.paths.containers_lock(), LockKind::Exclusive)?;
        let mut cs = ContainerSet::load(&self.paths)?;
        let gone: Vec<String> = cs
            .containers
            .iter()
            .filter(|c| deleted.contains(&c.layer) && paths::is_full_id(&c.id))
            .map(|c| c.id.clone())
            .collect();
        if gone.is_empty() {
            return Ok(());
        }
        for id in &gone {
            tracing::debug!(
                "container {id} was being removed (its layer was incomplete or gone); finishing"
            );
            paths::remove_all(&self.paths.containers_dir().join(id))?;
            paths::remove_all(&self.paths.run_containers_dir().join(id))?;
        }
        cs.containers.retain(|c| !gone.contains(&c.id));
        cs.save(&self.paths, &cg)
    }

    /// Remove a layer's driver dirs, tar-split and data dir (not its record).
    fn remove_layer_files(&self, id: &str) -> Result<()> {
        if !paths::is_full_id(id) && (id.is_empty() || id.contains('/') || id == "." || id == "..")
        {
            return Err(StoreError::Corrupt {
                path: self.paths.layers_json(),
                message: format!("invalid layer ID {id:?}"),
            }
            .into());
        }
        let _ = self.driver.put(id);
        match self.driver.stage_removal(id) {
            Ok(None) => {}
            Ok(Some(s)) => self
                .staged
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((std::thread::current().id(), s)),
            Err(e) => {
                tracing::debug!("moving layer {id} aside: {e}; deleting it in place");
                self.driver.remove(id)?;
            }
        }
        paths::remove_all(&self.paths.tar_split(id))?;
        paths::remove_all(&self.paths.layer_data_dir(id))
    }

    pub(super) fn layers_impl(&self) -> Result<Vec<Layer>> {
        let _g = self.lock(self.paths.layers_lock(), LockKind::Shared)?;
        Ok(LayerSet::load(&self.paths)?
            .layers
            .into_iter()
            .filter(|l| !l.is_incomplete())
            .collect())
    }

    pub(super) fn layer_impl(&self, id: &str) -> Result<Layer> {
        let _g = self.lock(self.paths.layers_lock(), LockKind::Shared)?;
        let set = LayerSet::load(&self.paths)?;
        let l = set.lookup(id)?;
        if l.is_incomplete() {
            return Err(Error::NotFound {
                kind: "layer",
                name: id.to_string(),
            });
        }
        Ok(l.clone())
    }

    /// `put_layer` with the tar applied by `apply` (tests pass their own).
    pub(super) fn put_layer_with(
        &self,
        parent: Option<&str>,
        opts: &PutLayerOptions,
        apply: &mut Applier<'_>,
    ) -> Result<Layer> {
        // Marked before waiting for the lock, so that a layer_diff feeding `apply` from
        // another thread never waits for us (see APPLYING).
        let _mark = ApplyingMark::new(self.paths.layers_lock());
        let g = self.lock(self.paths.layers_lock(), LockKind::Exclusive)?;
        let mut set = LayerSet::load(&self.paths)?;
        let parent = self.resolve_parent(&set, parent)?;
        if let Some(p) = &parent {
            // c/storage's ErrParentIsContainer: a container's layer is not a parent.
            let _cg = self.lock(self.paths.containers_lock(), LockKind::Shared)?;
            let cs = super::containers::ContainerSet::load(&self.paths)?;
            if let Some(c) = cs.containers.iter().find(|c| c.layer == *p) {
                return Err(StoreError::LayerInUse {
                    layer: p.clone(),
                    by: format!(
                        "container {} (a container's layer cannot be a parent)",
                        c.id
                    ),
                }
                .into());
            }
        }
        self.create_layer_locked(
            &g,
            &mut set,
            opts.id.clone(),
            parent.as_deref(),
            Some((opts, apply)),
        )
    }

    /// See [`Store::put_layer_adopting`].
    pub(super) fn put_layer_adopting_impl(
        &self,
        parent: Option<&str>,
        tar: &mut dyn Read,
        opts: &PutLayerOptions,
        from: &str,
    ) -> Result<Option<Layer>> {
        let _mark = ApplyingMark::new(self.paths.layers_lock());
        let g = self.lock(self.paths.layers_lock(), LockKind::Exclusive)?;
        let mut set = LayerSet::load(&self.paths)?;
        let parent = self.resolve_parent(&set, parent)?;
        // Only a container's own layer, on the same parent, unshifted, made by no tar
        // (no tar-split), and mounted nowhere.
        let Some(src) = set.layers.iter().find(|l| l.id == from).cloned() else {
            return Ok(None);
        };
        let usable = !src.is_incomplete()
            && src.parent == parent.clone().unwrap_or_default()
            && src.uid_map.is_empty()
            && src.gid_map.is_empty()
            && !self.paths.tar_split(&src.id).exists()
            && {
                let _cg = self.lock(self.paths.containers_lock(), LockKind::Shared)?;
                super::containers::ContainerSet::load(&self.paths)?
                    .containers
                    .iter()
                    .any(|c| c.layer == src.id)
            }
            && {
                let _mg = self.lock(self.paths.mountpoints_lock(), LockKind::Shared)?;
                !load_mounts(&self.paths)?
                    .iter()
                    .any(|m| m.id == src.id && m.count > 0)
            }
            && !self.driver.layer_mounted(&src.id);
        if !usable {
            tracing::debug!("layer {from}: not taken over (mounted, or not a container's own)");
            return Ok(None);
        }
        let tree = self.driver.diff_dir(&src.id);
        let expected = opts.expected_diff_digest.clone();
        let mut adopt = |dir: &Path, whiteouts: WhiteoutFormat, ts: &mut dyn Write| {
            let mut o = crate::archive::apply::ApplyOptions::new(whiteouts);
            o.tar_split = Some(ts);
            o.record_only = true;
            let summary = crate::archive::apply::apply_layer(dir, tar, o)?;
            // The files move only once the tar is known to be what was expected.
            if let Some(exp) = &expected {
                if *exp != summary.diff_digest {
                    return Err(StoreError::DigestMismatch {
                        expected: exp.clone(),
                        actual: summary.diff_digest,
                    }
                    .into());
                }
            }
            fs::remove_dir(dir).at("removing", dir)?;
            fs::rename(&tree, dir).at("moving", &tree)?;
            // The container keeps an empty tree until it is removed.
            fs::create_dir(&tree).at("creating", &tree)?;
            Ok(summary)
        };
        self.create_layer_locked_as(
            &g,
            &mut set,
            opts.id.clone(),
            parent.as_deref(),
            Some((opts, &mut adopt)),
            true,
        )
        .map(Some)
    }

    pub(super) fn create_rw_layer_impl(&self, parent: Option<&str>) -> Result<Layer> {
        let g = self.lock(self.paths.layers_lock(), LockKind::Exclusive)?;
        let mut set = LayerSet::load(&self.paths)?;
        let parent = self.resolve_parent(&set, parent)?;
        self.create_layer_locked(&g, &mut set, None, parent.as_deref(), None)
    }

    fn resolve_parent(&self, set: &LayerSet, parent: Option<&str>) -> Result<Option<String>> {
        let Some(p) = parent.filter(|p| !p.is_empty()) else {
            return Ok(None);
        };
        let l = set.lookup(p)?;
        if l.is_incomplete() {
            return Err(Error::NotFound {
                kind: "layer",
                name: p.to_string(),
            });
        }
        Ok(Some(l.id.clone()))
    }

    /// Create a layer with `layers.lock` held exclusively (`g`): record it `incomplete`,
    /// create the driver dirs, apply the tar if any, fill in digests, clear the flag. On any
    /// failure the layer is deleted again.
    pub(super) fn create_layer_locked(
        &self,
        g: &LockGuard,
        set: &mut LayerSet,
        id: Option<String>,
        parent: Option<&str>,
        content: Option<(&PutLayerOptions, &mut Applier<'_>)>,
    ) -> Result<Layer> {
        self.create_layer_locked_as(g, set, id, parent, content, false)
    }

    /// [`Store::create_layer_locked`]; with `empty`, vfs makes the layer's directory empty
    /// instead of a copy of the parent's tree (its files are moved in by the applier).
    fn create_layer_locked_as(
        &self,
        g: &LockGuard,
        set: &mut LayerSet,
        id: Option<String>,
        parent: Option<&str>,
        content: Option<(&PutLayerOptions, &mut Applier<'_>)>,
        empty: bool,
    ) -> Result<Layer> {
        let id = match id {
            Some(id) => {
                if !paths::is_full_id(&id) {
                    return Err(Error::invalid(format!(
                        "invalid layer ID {id:?}: expected 64 lower-case hex characters"
                    )));
                }
                if set.layers.iter().any(|l| l.id == id) {
                    return Err(StoreError::Duplicate { kind: "layer", id }.into());
                }
                id
            }
            None => loop {
                let id = paths::random_id();
                if !set.layers.iter().any(|l| l.id == id) {
                    break id;
                }
            },
        };
        let mut layer = Layer {
            id: id.clone(),
            parent: parent.unwrap_or_default().to_string(),
            created: Some(json::now()),
            ..Default::default()
        };
        layer
            .flags
            .insert(INCOMPLETE_FLAG.into(), serde_json::Value::Bool(true));
        set.layers.push(layer.clone());
        set.save(&self.paths, g)?;

        let result = (|| -> Result<Layer> {
            let driver_parent = if empty && self.driver.kind == super::DriverKind::Vfs {
                None
            } else {
                parent
            };
            self.driver.create(&id, driver_parent)?;
            if let Some((opts, apply)) = content {
                self.fill_layer(&mut layer, opts, apply)?;
            }
            layer.flags.remove(INCOMPLETE_FLAG);
            if let Some(l) = set.get_mut(&id) {
                *l = layer.clone();
            }
            set.save(&self.paths, g)?;
            Ok(layer.clone())
        })();
        match result {
            Ok(l) => Ok(l),
            Err(e) => {
                if let Err(e2) = self.remove_layer_files(&id) {
                    tracing::debug!("cleaning up failed layer {id}: {e2}");
                }
                set.remove(&id);
                if let Err(e2) = set.save(&self.paths, g) {
                    tracing::debug!("saving layers after failed layer {id}: {e2}");
                }
                Err(e)
            }
        }
    }

    /// Apply the tar into the new layer, store its tar-split and record digests and sizes.
    fn fill_layer(
        &self,
        layer: &mut Layer,
        opts: &PutLayerOptions,
        apply: &mut Applier<'_>,
    ) -> Result<()> {
        let ldir = self.paths.layers_dir();
        let mut ts = tempfile::Builder::new()
            .prefix(".tmp-tar-split-")
            .tempfile_in(&ldir)
            .at("creating temporary file in", &ldir)?;
        let dir = self.driver.diff_dir(&layer.id);
        let summary = {
            let f = ts.as_file_mut();
            let mut bw = std::io::BufWriter::new(f);
            let s = apply(&dir, self.driver.whiteouts(), &mut bw)?;
            bw.flush().at("writing", ldir.join(".tmp-tar-split"))?;
            s
        };
        if let Some(exp) = &opts.expected_diff_digest {
            if *exp != summary.diff_digest {
                return Err(StoreError::DigestMismatch {
                    expected: exp.clone(),
                    actual: summary.diff_digest,
                }
                .into());
            }
        }
        install_tar_split(ts, &self.paths.tar_split(&layer.id))?;
        layer.diff_digest = Some(summary.diff_digest.clone());
        layer.diff_size = Some(summary.diff_size as i64);
        match &opts.compressed {
            Some((d, size, code)) => {
                layer.compressed_diff_digest = Some(d.clone());
                layer.compressed_size = Some(*size);
                layer.compression = Some(*code);
            }
            None => {
                layer.compressed_diff_digest = Some(summary.diff_digest);
                layer.compressed_size = Some(summary.diff_size as i64);
            }
        }
        layer.uid_set = summary.uids;
        layer.gid_set = summary.gids;
        Ok(())
    }

    pub(super) fn delete_layer_impl(&self, id: &str) -> Result<()> {
        let g = self.lock(self.paths.layers_lock(), LockKind::Exclusive)?;
        let mut set = LayerSet::load(&self.paths)?;
        let lid = set.lookup(id)?.id.clone();
        if let Some(child) = set.layers.iter().find(|l| l.parent == lid) {
            return Err(StoreError::LayerInUse {
                layer: lid,
                by: format!("layer {}", child.id),
            }
            .into());
        }
        {
            let _ig = self.lock(self.paths.images_lock(), LockKind::Shared)?;
            let images = super::images::ImageSet::load(&self.paths)?;
            if let Some(i) = images
                .images
                .iter()
                .find(|i| i.layer == lid || i.mapped_layers.contains(&lid))
            {
                return Err(StoreError::LayerInUse {
                    layer: lid,
                    by: format!("image {}", i.id),
                }
                .into());
            }
            let _cg = self.lock(self.paths.containers_lock(), LockKind::Shared)?;
            let cs = super::containers::ContainerSet::load(&self.paths)?;
            if let Some(c) = cs.containers.iter().find(|c| c.layer == lid) {
                return Err(StoreError::LayerInUse {
                    layer: lid,
                    by: format!("container {}", c.id),
                }
                .into());
            }
        }
        self.delete_layer_locked(&g, &mut set, &lid)
    }

    /// Delete one layer with `layers.lock` held: unmount, flag incomplete (so an interrupted
    /// delete is finished by the next opener), remove files, drop the record.
    pub(super) fn delete_layer_locked(
        &self,
        g: &LockGuard,
        set: &mut LayerSet,
        id: &str,
    ) -> Result<()> {
        {
            let mg = self.lock(self.paths.mountpoints_lock(), LockKind::Exclusive)?;
            let mut mounts = load_mounts(&self.paths)?;
            if let Some(m) = mounts.iter_mut().find(|m| m.id == id) {
                self.driver.put(id)?;
                m.count = 0;
                save_mounts(&self.paths, &mg, &mounts)?;
            }
        }
        if let Some(l) = set.get_mut(id) {
            if !l.is_incomplete() {
                l.flags
                    .insert(INCOMPLETE_FLAG.into(), serde_json::Value::Bool(true));
                set.save(&self.paths, g)?;
            }
        }
        self.remove_layer_files(id)?;
        set.remove(id);
        set.save(&self.paths, g)
    }

    /// The layer is resolved and its tar-split opened under the shared lock, which is then
    /// released before streaming: a caller may pipe this into `put_layer` of the same store
    /// (which holds `layers.lock` exclusively) without deadlocking. A layer deleted meanwhile
    /// makes the stream fail, never silently change.
    pub(super) fn layer_diff_impl(&self, id: &str, w: &mut dyn Write) -> Result<()> {
        let (lid, diff, parent_dir, tar_split, id_maps) = {
            let lp = self.paths.layers_lock();
            let _g = if applying(&lp) {
                None
            } else {
                Some(self.lock(lp, LockKind::Shared)?)
            };
            let set = LayerSet::load(&self.paths)?;
            let l = set.lookup(id)?;
            if l.is_incomplete() {
                return Err(Error::NotFound {
                    kind: "layer",
                    name: id.to_string(),
                });
            }
            let tsp = self.paths.tar_split(&l.id);
            let ts = match fs::File::open(&tsp) {
                Ok(f) => Some(f),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(e).at("opening", &tsp),
            };
            let parent_dir = (!l.parent.is_empty()).then(|| self.driver.diff_dir(&l.parent));
            let maps = crate::idmap::IdMappings::from_storage_json(&l.uid_map, &l.gid_map);
            (
                l.id.clone(),
                self.driver.diff_dir(&l.id),
                parent_dir,
                ts,
                (!maps.is_empty()).then_some(maps),
            )
        };
        let ctx = || format!("reading layer {lid}");
        match tar_split {
            Some(f) => {
                let mut r = std::io::BufReader::new(f);
                crate::archive::tarsplit::assemble(&mut r, &diff, w).map_err(|e| e.context(ctx()))
            }
            None => {
                let src = self.driver.change_source(&diff, parent_dir.as_deref());
                crate::archive::diff::write_changes(
                    src,
                    &crate::archive::diff::DiffOptions {
                        id_maps,
                        ..Default::default()
                    },
                    w,
                )
                .map_err(|e| e.context(ctx()))
            }
        }
    }

    pub(super) fn mount_layer_impl(&self, id: &str) -> Result<PathBuf> {
        // c/storage holds the graph lock through any mount (so a concurrent Shutdown cannot
        // unmount the driver home under us), then the layer store and the mounts lock.
        let _sg = self.lock(self.paths.storage_lock(), LockKind::Exclusive)?;
        let _g = self.lock(self.paths.layers_lock(), LockKind::Exclusive)?;
        let set = LayerSet::load(&self.paths)?;
        let l = set.lookup(id)?;
        if l.is_incomplete() {
            return Err(Error::NotFound {
                kind: "layer",
                name: id.to_string(),
            });
        }
        let lid = l.id.clone();
        let mg = self.lock(self.paths.mountpoints_lock(), LockKind::Exclusive)?;
        let mut mounts = load_mounts(&self.paths)?;
        let idx = match mounts.iter().position(|m| m.id == lid) {
            Some(i) => i,
            None => {
                mounts.push(MountPoint {
                    id: lid.clone(),
                    ..Default::default()
                });
                mounts.len() - 1
            }
        };
        if mounts[idx].count > 0
            && !mounts[idx].path.is_empty()
            && self.driver.is_mounted(Path::new(&mounts[idx].path))
        {
            mounts[idx].count += 1;
            let p = PathBuf::from(&mounts[idx].path);
            save_mounts(&self.paths, &mg, &mounts)?;
            return Ok(p);
        }
        let p = self
            .driver
            .get(&lid)
            .map_err(|e| e.context(format!("mounting layer {lid}")))?;
        mounts[idx].path = clean(&p);
        // On overlay, a count left from a mount that is gone (unmounted by the kernel, or
        // made in the mount namespace of a rootless hod or `hod unshare` session that has
        // ended) counts nothing: this mount is the one. vfs has no mounts to look at.
        mounts[idx].count = if self.driver.kind == crate::store::DriverKind::Overlay {
            1
        } else {
            mounts[idx].count.max(0) + 1
        };
        if let Err(e) = save_mounts(&self.paths, &mg, &mounts) {
            let _ = self.driver.put(&lid);
            return Err(e);
        }
        Ok(p)
    }

    pub(super) fn unmount_layer_impl(&self, id: &str, force: bool) -> Result<bool> {
        let _g = self.lock(self.paths.layers_lock(), LockKind::Exclusive)?;
        let set = LayerSet::load(&self.paths)?;
        let mg = self.lock(self.paths.mountpoints_lock(), LockKind::Exclusive)?;
        let mut mounts = load_mounts(&self.paths)?;
        let lid = match set.lookup(id) {
            Ok(l) => l.id.clone(),
            // c/storage also accepts the mount point.
            Err(e) => match mounts.iter().find(|m| Path::new(&m.path) == Path::new(id)) {
                Some(m) => m.id.clone(),
                None => return Err(e),
            },
        };
        let idx = mounts.iter().position(|m| m.id == lid);
        let count = idx.map(|i| mounts[i].count).unwrap_or(0);
        if !force && count > 1 {
            let i = idx.unwrap_or_default();
            mounts[i].count -= 1;
            save_mounts(&self.paths, &mg, &mounts)?;
            return Ok(true);
        }
        self.driver
            .put(&lid)
            .map_err(|e| e.context(format!("unmounting layer {lid}")))?;
        if let Some(i) = idx {
            mounts[i].count = 0;
            mounts[i].path.clear();
            save_mounts(&self.paths, &mg, &mounts)?;
        }
        Ok(false)
    }

    pub(super) fn layer_mount_point_impl(&self, id: &str) -> Result<Option<PathBuf>> {
        let _g = self.lock(self.paths.layers_lock(), LockKind::Shared)?;
        let set = LayerSet::load(&self.paths)?;
        let lid = set.lookup(id)?.id.clone();
        let _mg = self.lock(self.paths.mountpoints_lock(), LockKind::Shared)?;
        Ok(load_mounts(&self.paths)?
            .into_iter()
            .find(|m| m.id == lid && m.count > 0 && !m.path.is_empty())
            .map(|m| PathBuf::from(m.path)))
    }

    pub(super) fn layer_mount_count_impl(&self, id: &str) -> Result<u32> {
        let _g = self.lock(self.paths.layers_lock(), LockKind::Shared)?;
        let set = LayerSet::load(&self.paths)?;
        let lid = set.lookup(id)?.id.clone();
        let _mg = self.lock(self.paths.mountpoints_lock(), LockKind::Shared)?;
        Ok(load_mounts(&self.paths)?
            .into_iter()
            .find(|m| m.id == lid)
            .map(|m| m.count.max(0) as u32)
            .unwrap_or(0))
    }
}

/// `filepath.Clean` for an absolute path we produced.
fn clean(p: &Path) -> String {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out.display().to_string()
}

/// Move the tar-split the applier wrote into place, gzip-compressing it first if it was
/// written uncompressed. An empty file means the applier wrote none: nothing is installed.
fn install_tar_split(mut ts: tempfile::NamedTempFile, dest: &Path) -> Result<()> {
    let f = ts.as_file_mut();
    let len = f.metadata().at("inspecting", dest)?.len();
    if len == 0 {
        return Ok(());
    }
    let mut head = [0u8; 2];
    f.seek(SeekFrom::Start(0)).at("reading", dest)?;
    f.read_exact(&mut head).at("reading", dest)?;
    let dir = dest.parent().unwrap_or(Path::new("."));
    let final_tmp = if head == [0x1f, 0x8b] {
        ts
    } else {
        f.seek(SeekFrom::Start(0)).at("reading", dest)?;
        let out = tempfile::Builder::new()
            .prefix(".tmp-tar-split-")
            .tempfile_in(dir)
            .at("creating temporary file in", dir)?;
        let mut enc = flate2::write::GzEncoder::new(
            std::io::BufWriter::new(out),
            flate2::Compression::default(),
        );
        std::io::copy(f, &mut enc).at("compressing", dest)?;
        enc.finish()
            .at("compressing", dest)?
            .into_inner()
            .map_err(|e| e.into_error())
            .at("writing", dest)?
    };
    use std::os::unix::fs::PermissionsExt;
    final_tmp
        .as_file()
        .set_permissions(fs::Permissions::from_mode(0o600))
        .at("setting mode of", dest)?;
    final_tmp.as_file().sync_all().at("syncing", dest)?;
    final_tmp
        .persist(dest)
        .map_err(|e| e.error)
        .at("renaming into", dest)?;
    Ok(())
}
