//! The container store: `containers.json` (+ `volatile-containers.json` if a newer
//! containers/storage wrote one) and the per-container directories.
use std::collections::HashSet;

use super::json;
use super::layers::LayerSet;
use super::lock::{LockGuard, LockKind};
use super::paths::{self, Paths};
use super::{ContainerRecord, Store, StoreError};
use crate::error::{Error, Result};

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

    /// Create a container. With `auto_name`, its name is the first of `base`, `base-1`,
    /// `base-2`, … no container holds, chosen under the exclusive lock (race-free).
    pub(super) fn create_container_impl(
        &self,
        names: &[String],
        image: Option<&str>,
        metadata: &str,
        auto_name: Option<&str>,
    ) -> Result<ContainerRecord> {
        let mut names = dedupe(names);
        let lg = self.lock(self.paths.layers_lock(), LockKind::Exclusive)?;
        let mut layers = LayerSet::load(&self.paths)?;
        let (image_id, top) = match image.filter(|i| !i.is_empty()) {
            Some(name) => {
                let _ig = self.lock(self.paths.images_lock(), LockKind::Shared)?;
                let set = super::images::ImageSet::load(&self.paths)?;
                let i = &set.images[super::images::lookup_index(&set.images, name)?];
                (i.id.clone(), (!i.layer.is_empty()).then(|| i.layer.clone()))
            }
            None => (String::new(), None),
        };
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
        let layer = self.create_layer_locked(&lg, &mut layers, None, top.as_deref(), None)?;
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
