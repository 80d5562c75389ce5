//! The container store: `containers.json` (+ `volatile-containers.json` if a newer
//! containers/storage wrote one) and the per-container directories.
use std::collections::HashSet;

use super::json;
use super::layers::LayerSet;
use super::lock::{LockGuard, LockKind};
use super::paths::{self, Paths};
use super::{ContainerRecord, Layer, PutLayerOptions, Store, StoreError};
use crate::error::{Error, IoResultExt, Result};
use crate::idmap::IdMappings;

#[derive(Debug, Default)]
pub(super) struct ContainerSet {
    pub containers: Vec<ContainerRecord>,
    volatile: HashSet<String>,
    had_volatile_file: bool,
}

impl ContainerSet {
    pub fn load(p: &Paths) -> Result<ContainerSet> {
        let mut set = ContainerSet::default();
        let mut seen = HashSet::new();
        for c in json::read_list::<ContainerRecord>(&p.containers_json())? {
            if seen.insert(c.id.clone()) {
                set.containers.push(c);
            }
        }
        let vp = p.volatile_containers_json();
        if vp.exists() {
            set.had_volatile_file = true;
            for c in json::read_list::<ContainerRecord>(&vp)? {
                if seen.insert(c.id.clone()) {
                    set.volatile.insert(c.id.clone());
                    set.containers.push(c);
                }
            }
        }
        Ok(set)
    }

    pub fn save(&self, p: &Paths, g: &LockGuard) -> Result<()> {
        g.record_write()?;
        let stable: Vec<&ContainerRecord> = self
            .containers
            .iter()
            .filter(|c| !self.volatile.contains(&c.id))
            .collect();
        json::write_file(&p.containers_json(), &stable)?;
        if self.had_volatile_file {
            let vol: Vec<&ContainerRecord> = self
                .containers
                .iter()
                .filter(|c| self.volatile.contains(&c.id))
                .collect();
            json::write_file(&p.volatile_containers_json(), &vol)?;
        }
        Ok(())
    }

    /// By ID, name, layer ID, or unique ID prefix (c/storage's container lookup).
    pub fn index(&self, name: &str) -> Result<usize> {
        let not_found = || Error::NotFound {
            kind: "container",
            name: name.to_string(),
        };
        if name.is_empty() {
            return Err(not_found());
        }
        if let Some(i) = self.containers.iter().position(|c| c.id == name) {
            return Ok(i);
        }
        if let Some(i) = self
            .containers
            .iter()
            .position(|c| c.names.iter().any(|n| n == name))
        {
            return Ok(i);
        }
        if let Some(i) = self.containers.iter().position(|c| c.layer == name) {
            return Ok(i);
        }
        let mut it = self
            .containers
            .iter()
            .enumerate()
            .filter(|(_, c)| c.id.starts_with(name));
        match (it.next(), it.next()) {
            (Some((i, _)), None) => Ok(i),
            (Some(_), Some(_)) => Err(StoreError::Ambiguous(name.to_string()).into()),
            _ => Err(not_found()),
        }
    }

    /// The first of `names` another container (not `except`) holds.
    fn name_conflict(&self, names: &[String], except: Option<&str>) -> Option<(String, String)> {
        for n in names {
            if let Some(c) = self
                .containers
                .iter()
                .find(|c| Some(c.id.as_str()) != except && c.names.contains(n))
            {
                return Some((n.clone(), c.id.clone()));
            }
        }
        None
    }
}

fn dedupe(names: &[String]) -> Vec<String> {
    let mut seen = HashSet::new();
    names
        .iter()
        .filter(|n| seen.insert(n.as_str()))
        .cloned()
        .collect()
}

impl Store {
    pub(super) fn containers_impl(&self) -> Result<Vec<ContainerRecord>> {
        let _g = self.lock(self.paths.containers_lock(), LockKind::Shared)?;
        Ok(ContainerSet::load(&self.paths)?.containers)
    }

    pub(super) fn container_impl(&self, name: &str) -> Result<ContainerRecord> {
        let _g = self.lock(self.paths.containers_lock(), LockKind::Shared)?;
        let set = ContainerSet::load(&self.paths)?;
        let i = set.index(name)?;
        Ok(set.containers[i].clone())
    }

    /// The image's top layer shifted through `maps` (see [`crate::idmap`]): the one the
    /// image record lists in `mapped-top-layers` with these maps, else a new one, made by
    /// applying the image's whole tree with its owners mapped to host IDs.
    fn mapped_top_layer(&self, image_id: &str, top: &str, maps: &IdMappings) -> Result<String> {
        let (uids, gids) = (
            IdMappings::storage_json(&maps.uids),
            IdMappings::storage_json(&maps.gids),
        );
        {
            let _lg = self.lock(self.paths.layers_lock(), LockKind::Shared)?;
            let _ig = self.lock(self.paths.images_lock(), LockKind::Shared)?;
            let layers = LayerSet::load(&self.paths)?;
            let images = super::images::ImageSet::load(&self.paths)?;
            let image = &images.images[super::images::lookup_index(&images.images, image_id)?];
            if let Some(l) = layers.layers.iter().find(|l| {
                image.mapped_layers.contains(&l.id)
                    && !l.is_incomplete()
                    && l.uid_map == uids
                    && l.gid_map == gids
            }) {
                return Ok(l.id.clone());
            }
        }
        let mnt = self.mount_layer(top)?;
        let made = (|| -> Result<Layer> {
            let (mut rd, mut wr) = std::io::pipe().at("creating", "a pipe")?;
            std::thread::scope(|sc| {
                let mnt = &mnt;
                let writer = sc.spawn(move || {
                    crate::archive::diff::write_changes(
                        crate::archive::diff::ChangeSource::Compare {
                            layer: mnt,
                            parent: None,
                        },
                        &crate::archive::diff::DiffOptions::default(),
                        &mut wr,
                    )
                });
                let put =
                    self.put_layer_mapped(None, &mut rd, &PutLayerOptions::default(), Some(maps));
                // Closing the read end stops a writer the put left mid-stream.
                drop(rd);
                let wrote = writer.join().unwrap_or_else(|_| {
                    Err(crate::Error::invalid("the layer writer thread panicked"))
                });
                let layer = put?;
                wrote?;
                Ok(layer)
            })
        })();
        let unmounted = self.unmount_layer(top, false);
        let layer = made.map_err(|e| e.context(format!("mapping the IDs of layer {top}")))?;
        unmounted?;
        {
            let lg = self.lock(self.paths.layers_lock(), LockKind::Exclusive)?;
            let mut layers = LayerSet::load(&self.paths)?;
            if let Some(l) = layers.get_mut(&layer.id) {
                l.uid_map = uids;
                l.gid_map = gids;
            }
            layers.save(&self.paths, &lg)?;
            let ig = self.lock(self.paths.images_lock(), LockKind::Exclusive)?;
            let mut images = super::images::ImageSet::load(&self.paths)?;
            let ix = super::images::lookup_index(&images.images, image_id)?;
            images.images[ix].mapped_layers.push(layer.id.clone());
            images.save(&self.paths, &ig)?;
        }
        Ok(layer.id)
    }

    /// Create a container. With `auto_name`, its name is the first of `base`, `base-1`,
    /// `base-2`, … no container holds, chosen under the exclusive lock (race-free). With
    /// `maps`, its layer sits on the image's mapped top layer and records the maps.
    pub(super) fn create_container_impl(
        &self,
        names: &[String],
        image: Option<&str>,
        metadata: &str,
        auto_name: Option<&str>,
        maps: &IdMappings,
    ) -> Result<ContainerRecord> {
        let mut names = dedupe(names);
        // The mapped top layer first: making it takes the layer locks itself.
        let mapped_top = match image.filter(|i| !i.is_empty() && !maps.is_empty()) {
            Some(name) => {
                let (id, top) = {
                    let _ig = self.lock(self.paths.images_lock(), LockKind::Shared)?;
                    let set = super::images::ImageSet::load(&self.paths)?;
                    let i = &set.images[super::images::lookup_index(&set.images, name)?];
                    (i.id.clone(), i.layer.clone())
                };
                if top.is_empty() {
                    None
                } else {
                    Some(self.mapped_top_layer(&id, &top, maps)?)
                }
            }
            None => None,
        };
        let lg = self.lock(self.paths.layers_lock(), LockKind::Exclusive)?;
        let mut layers = LayerSet::load(&self.paths)?;
        let (image_id, mut top) = match image.filter(|i| !i.is_empty()) {
            Some(name) => {
                let _ig = self.lock(self.paths.images_lock(), LockKind::Shared)?;
                let set = super::images::ImageSet::load(&self.paths)?;
                let i = &set.images[super::images::lookup_index(&set.images, name)?];
                (i.id.clone(), (!i.layer.is_empty()).then(|| i.layer.clone()))
            }
            None => (String::new(), None),
        };
        if mapped_top.is_some() {
            top = mapped_top;
        }
        if let Some(t) = &top {
            if !layers
                .layers
                .iter()
                .any(|l| l.id == *t && !l.is_incomplete())
            {
                return Err(Error::NotFound {
                    kind: "layer",
                    name: t.clone(),
                });
            }
        }
        // Fail early on taken names (checked again, under the exclusive lock, below).
        {
            let _cg = self.lock(self.paths.containers_lock(), LockKind::Shared)?;
            if let Some((name, id)) = ContainerSet::load(&self.paths)?.name_conflict(&names, None) {
                return Err(Error::NameInUse { name, id });
            }
        }
        let mut layer = self.create_layer_locked(&lg, &mut layers, None, top.as_deref(), None)?;
        if !maps.is_empty() {
            layer.uid_map = IdMappings::storage_json(&maps.uids);
            layer.gid_map = IdMappings::storage_json(&maps.gids);
            if let Some(l) = layers.get_mut(&layer.id) {
                *l = layer.clone();
            }
            layers.save(&self.paths, &lg)?;
        }
        let result = (|| -> Result<ContainerRecord> {
            let cg = self.lock(self.paths.containers_lock(), LockKind::Exclusive)?;
            let mut set = ContainerSet::load(&self.paths)?;
            if let Some(base) = auto_name {
                let taken = |n: &str| {
                    set.containers
                        .iter()
                        .any(|c| c.names.iter().any(|x| x == n))
                };
                let mut candidate = base.to_string();
                let mut n = 1;
                while taken(&candidate) {
                    candidate = format!("{base}-{n}");
                    n += 1;
                }
                names = vec![candidate];
            }
            if let Some((name, id)) = set.name_conflict(&names, None) {
                return Err(Error::NameInUse { name, id });
            }
            let id = loop {
                let id = paths::random_id();
                if !set.containers.iter().any(|c| c.id == id) {
                    break id;
                }
            };
            let mut rec = ContainerRecord {
                id,
                names: names.clone(),
                image: image_id.clone(),
                layer: layer.id.clone(),
                metadata: metadata.to_string(),
                created: Some(json::now()),
                uid_map: layer.uid_map.clone(),
                gid_map: layer.gid_map.clone(),
                ..Default::default()
            };
            // What c/storage records when SELinux labels are not in use.
            rec.flags.insert(
                "MountLabel".into(),
                serde_json::Value::String(String::new()),
            );
            rec.flags.insert(
                "ProcessLabel".into(),
                serde_json::Value::String(String::new()),
            );
            set.containers.push(rec.clone());
            set.save(&self.paths, &cg)?;
            Ok(rec)
        })();
        if result.is_err() {
            if let Err(e) = self.delete_layer_locked(&lg, &mut layers, &layer.id) {
                tracing::debug!(
                    "deleting layer {} of a container that could not be created: {e}",
                    layer.id
                );
            }
        }
        result
    }

    pub(super) fn set_container_names_impl(&self, id: &str, names: &[String]) -> Result<()> {
        let names = dedupe(names);
        let g = self.lock(self.paths.containers_lock(), LockKind::Exclusive)?;
        let mut set = ContainerSet::load(&self.paths)?;
        let ix = set.index(id)?;
        let cid = set.containers[ix].id.clone();
        if let Some((name, id)) = set.name_conflict(&names, Some(&cid)) {
            return Err(Error::NameInUse { name, id });
        }
        set.containers[ix].names = names;
        set.save(&self.paths, &g)
    }

    pub(super) fn set_container_metadata_impl(&self, id: &str, metadata: &str) -> Result<()> {
        let g = self.lock(self.paths.containers_lock(), LockKind::Exclusive)?;
        let mut set = ContainerSet::load(&self.paths)?;
        let ix = set.index(id)?;
        set.containers[ix].metadata = metadata.to_string();
        set.save(&self.paths, &g)
    }

    pub(super) fn delete_container_impl(&self, id: &str) -> Result<()> {
        let lg = self.lock(self.paths.layers_lock(), LockKind::Exclusive)?;
        let _ig = self.lock(self.paths.images_lock(), LockKind::Exclusive)?;
        let cg = self.lock(self.paths.containers_lock(), LockKind::Exclusive)?;
        let mut layers = LayerSet::load(&self.paths)?;
        let mut set = ContainerSet::load(&self.paths)?;
        let ix = set.index(id)?;
        let c = set.containers[ix].clone();
        // The layer first, so that a failure leaves the record that names it.
        if layers.layers.iter().any(|l| l.id == c.layer) {
            self.delete_layer_locked(&lg, &mut layers, &c.layer)
                .map_err(|e| e.context(format!("deleting layer of container {}", c.id)))?;
        }
        if !paths::is_full_id(&c.id) {
            return Err(StoreError::Corrupt {
                path: self.paths.containers_json(),
                message: format!("invalid container ID {:?}", c.id),
            }
            .into());
        }
        paths::remove_all(&self.paths.containers_dir().join(&c.id))?;
        paths::remove_all(&self.paths.run_containers_dir().join(&c.id))?;
        set.containers.remove(ix);
        set.save(&self.paths, &cg)
    }
}
