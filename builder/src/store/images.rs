//! The image store: `images.json` and `<id>/<big-data file>`.
use std::collections::HashSet;
use std::fs;

use super::json;
use super::lock::{LockGuard, LockKind};
use super::paths::{self, big_data_base_name, Paths};
use super::{BigData, ImageRecord, Store, StoreError};
use crate::error::{Error, IoResultExt, Result};
use crate::image::Digest;

/// How names are changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NameOp {
    Set,
    Add,
    Remove,
}

#[derive(Debug, Default)]
pub(super) struct ImageSet {
    pub images: Vec<ImageRecord>,
}

/// c/storage `recomputeDigests`: `digest` first, then the digests of `manifest*` items.
pub(super) fn recompute_digests(i: &mut ImageRecord) {
    let mut v: Vec<Digest> = Vec::new();
    if let Some(d) = &i.digest {
        v.push(d.clone());
    }
    for key in &i.big_data_names {
        if key.starts_with("manifest") {
            if let Some(d) = i.big_data_digests.get(key) {
                if !v.contains(d) {
                    v.push(d.clone());
                }
            }
        }
    }
    for (key, d) in &i.big_data_digests {
        if key.starts_with("manifest") && !v.contains(d) {
            v.push(d.clone());
        }
    }
    if i.digest.is_none() {
        i.digest = v.first().cloned();
    }
    i.digests = v;
}

fn dedupe(names: &[String]) -> Vec<String> {
    let mut seen = HashSet::new();
    names
        .iter()
        .filter(|n| seen.insert(n.as_str()))
        .cloned()
        .collect()
}

fn add_to_history(i: &mut ImageRecord, name: &str) {
    let mut h = vec![name.to_string()];
    h.extend(i.names_history.iter().filter(|n| *n != name).cloned());
    i.names_history = dedupe(&h);
}

impl ImageSet {
    pub fn load(p: &Paths) -> Result<ImageSet> {
        let mut images: Vec<ImageRecord> = json::read_list(&p.images_json())?;
        // A name held twice: the earlier image loses it (as c/storage's load does).
        let mut owner: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for idx in 0..images.len() {
            for n in images[idx].names.clone() {
                if let Some(prev) = owner.insert(n.clone(), idx) {
                    images[prev].names.retain(|x| *x != n);
                }
            }
            recompute_digests(&mut images[idx]);
        }
        Ok(ImageSet { images })
    }

    pub fn save(&self, p: &Paths, g: &LockGuard) -> Result<()> {
        g.record_write()?;
        json::write_file(&p.images_json(), &self.images)
    }

    fn index(&self, name: &str) -> Result<usize> {
        lookup_index(&self.images, name)
    }

    /// Take `name` away from every image but `keep`.
    fn take_name(&mut self, name: &str, keep: usize) {
        for (i, img) in self.images.iter_mut().enumerate() {
            if i != keep {
                img.names.retain(|n| n != name);
            }
        }
    }
}

use crate::reference::{repo_matches as stored_repo_matches, split_name as split_ref};

/// Find an image the way podman/buildah resolve local names.
pub(crate) fn lookup_index(images: &[ImageRecord], name: &str) -> Result<usize> {
    let not_found = || Error::NotFound {
        kind: "image",
        name: name.to_string(),
    };
    if name.is_empty() {
        return Err(not_found());
    }
    if let Some(i) = images.iter().position(|i| i.id == name) {
        return Ok(i);
    }
    if let Some(i) = images
        .iter()
        .position(|i| i.names.iter().any(|n| n == name))
    {
        return Ok(i);
    }
    if let Some(hex) = name.strip_prefix("sha256:") {
        if paths::is_full_id(hex) {
            return images
                .iter()
                .position(|i| i.id == hex)
                .ok_or_else(not_found);
        }
        return Err(Error::invalid(format!(
            "{name}: invalid format: no 64-byte hexadecimal value"
        )));
    }
    let (repo, tag, digest) = split_ref(name);
    let repo = crate::reference::normalize_typed_repo(repo);
    let repo = repo.as_str();
    let repo_matches = |candidate_repo: &str| stored_repo_matches(candidate_repo, repo);
    if let Some(d) = digest {
        let d = Digest::parse(d).map_err(|_| not_found())?;
        let hits: Vec<usize> = images
            .iter()
            .enumerate()
            .filter(|(_, i)| {
                i.digests.contains(&d)
                    && i.names
                        .iter()
                        .chain(i.names_history.iter())
                        .any(|n| repo_matches(split_ref(n).0))
            })
            .map(|(ix, _)| ix)
            .collect();
        return hits.first().copied().ok_or_else(not_found);
    }
    let tag = tag.unwrap_or("latest");
    if !repo.is_empty()
        && repo
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/:".contains(&b))
    {
        // Preference: localhost, docker.io, then anything else (first in store order).
        let mut best: Option<(u8, usize)> = None;
        for (ix, img) in images.iter().enumerate() {
            for n in &img.names {
                let (r, t, d) = split_ref(n);
                if d.is_some() || t.unwrap_or("latest") != tag || !repo_matches(r) {
                    continue;
                }
                let rank = if r.starts_with("localhost/") {
                    0
                } else if r.starts_with("docker.io/") {
                    1
                } else {
                    2
                };
                if best.is_none_or(|(b, _)| rank < b) {
                    best = Some((rank, ix));
                }
            }
        }
        if let Some((_, ix)) = best {
            return Ok(ix);
        }
    }
    if name
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        let mut it = images
            .iter()
            .enumerate()
            .filter(|(_, i)| i.id.starts_with(name));
        match (it.next(), it.next()) {
            (Some((ix, _)), None) => return Ok(ix),
            (Some(_), Some(_)) => return Err(StoreError::Ambiguous(name.to_string()).into()),
            _ => {}
        }
    }
    Err(not_found())
}

impl Store {
    pub(super) fn images_impl(&self) -> Result<Vec<ImageRecord>> {
        let _g = self.lock(self.paths.images_lock(), LockKind::Shared)?;
        Ok(ImageSet::load(&self.paths)?.images)
    }

    pub(super) fn image_impl(&self, name: &str) -> Result<ImageRecord> {
        let _g = self.lock(self.paths.images_lock(), LockKind::Shared)?;
        let set = ImageSet::load(&self.paths)?;
        let i = set.index(name)?;
        Ok(set.images[i].clone())
    }

    /// Write one big-data file and record its size and digest on `img` (not saved).
    fn write_big_data(&self, img: &mut ImageRecord, key: &str, data: &[u8]) -> Result<()> {
        if key.is_empty() {
            return Err(Error::invalid(
                "can't set empty name for image big data item",
            ));
        }
        let base = big_data_base_name(key);
        if base.contains('/') {
            return Err(Error::invalid(format!(
                "image big data key {key:?} cannot be stored (its file name would contain '/')"
            )));
        }
        let dir = self.paths.image_dir(&img.id);
        paths::mkdir_all(&dir, 0o700)?;
        crate::fsutil::atomic_write(&dir.join(base), data, 0o600)?;
        img.big_data_sizes
            .insert(key.to_string(), data.len() as i64);
        img.big_data_digests
            .insert(key.to_string(), Digest::of(data));
        if !img.big_data_names.iter().any(|k| k == key) {
            img.big_data_names.push(key.to_string());
        }
        Ok(())
    }

    pub(super) fn create_image_impl(
        &self,
        id: &str,
        names: &[String],
        top_layer: Option<&str>,
        big_data: &[BigData],
        created: Option<String>,
    ) -> Result<ImageRecord> {
        let id = id.strip_prefix("sha256:").unwrap_or(id);
        if !paths::is_full_id(id) {
            return Err(Error::invalid(format!(
                "invalid image ID {id:?}: expected 64 lower-case hex characters"
            )));
        }
        let layer = match top_layer.filter(|l| !l.is_empty()) {
            Some(l) => self.layer(l)?.id,
            None => String::new(),
        };
        let names = dedupe(names);
        let g = self.lock(self.paths.images_lock(), LockKind::Exclusive)?;
        let mut set = ImageSet::load(&self.paths)?;
        let ix = match set.images.iter().position(|i| i.id == id) {
            Some(ix) => ix,
            None => {
                let created = created
                    .as_deref()
                    .map(json::normalize_time)
                    .unwrap_or_else(json::now);
                set.images.push(ImageRecord {
                    id: id.to_string(),
                    layer,
                    created: Some(created),
                    ..Default::default()
                });
                set.images.len() - 1
            }
        };
        let mut img = set.images[ix].clone();
        for bd in big_data {
            self.write_big_data(&mut img, &bd.key, &bd.data)?;
        }
        if let Some(d) = img.big_data_digests.get("manifest") {
            img.digest = Some(d.clone());
        }
        recompute_digests(&mut img);
        for n in &names {
            if !img.names.contains(n) {
                img.names.push(n.clone());
            }
            add_to_history(&mut img, n);
        }
        set.images[ix] = img;
        for n in &names {
            set.take_name(n, ix);
        }
        set.save(&self.paths, &g)?;
        Ok(set.images[ix].clone())
    }

    /// Record a new image (no layer) whose names must all be free: the check and the write
    /// happen under one exclusive lock (`manifest create`).
    pub(super) fn create_image_with_free_names_impl(
        &self,
        id: &str,
        names: &[String],
        big_data: &[BigData],
    ) -> Result<ImageRecord> {
        let names = dedupe(names);
        let g = self.lock(self.paths.images_lock(), LockKind::Exclusive)?;
        let mut set = ImageSet::load(&self.paths)?;
        if set.images.iter().any(|i| i.id == id) {
            return Err(StoreError::Duplicate {
                kind: "image",
                id: id.to_string(),
            }
            .into());
        }
        for n in &names {
            if let Some(other) = set.images.iter().find(|i| i.names.contains(n)) {
                return Err(Error::NameInUse {
                    name: n.clone(),
                    id: other.id.clone(),
                });
            }
        }
        let mut img = ImageRecord {
            id: id.to_string(),
            created: Some(json::now()),
            names: names.clone(),
            ..Default::default()
        };
        for n in &names {
            add_to_history(&mut img, n);
        }
        for bd in big_data {
            self.write_big_data(&mut img, &bd.key, &bd.data)?;
        }
        img.digest = img.big_data_digests.get("manifest").cloned();
        recompute_digests(&mut img);
        set.images.push(img.clone());
        set.save(&self.paths, &g)?;
        Ok(img)
    }

    /// Read the `keys` big-data items of an image (`None` for a missing one), let `f` compute
    /// new items, and write them, all under one exclusive lock of `images.lock` (a manifest
    /// list's read-modify-write). `f` gets the image record as it is under the lock.
    pub(super) fn update_image_big_data_impl(
        &self,
        id: &str,
        keys: &[&str],
        f: &mut super::BigDataUpdate<'_>,
    ) -> Result<ImageRecord> {
        let g = self.lock(self.paths.images_lock(), LockKind::Exclusive)?;
        let mut set = ImageSet::load(&self.paths)?;
        let ix = set.index(id)?;
        let mut img = set.images[ix].clone();
        let mut old = Vec::with_capacity(keys.len());
        for key in keys {
            let base = big_data_base_name(key);
            let p = self.paths.image_dir(&img.id).join(&base);
            old.push(if key.is_empty() || base.contains('/') {
                None
            } else {
                match fs::read(&p) {
                    Ok(d) => Some(d),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(e) => return Err(e).at("reading", &p),
                }
            });
        }
        for bd in f(&img, old)? {
            self.write_big_data(&mut img, &bd.key, &bd.data)?;
        }
        if let Some(d) = img.big_data_digests.get("manifest") {
            img.digest = Some(d.clone());
        }
        recompute_digests(&mut img);
        set.images[ix] = img.clone();
        set.save(&self.paths, &g)?;
        Ok(img)
    }

    pub(super) fn image_big_data_impl(&self, id: &str, key: &str) -> Result<Vec<u8>> {
        let _g = self.lock(self.paths.images_lock(), LockKind::Shared)?;
        let set = ImageSet::load(&self.paths)?;
        let img = &set.images[set.index(id)?];
        let base = big_data_base_name(key);
        if key.is_empty() || base.contains('/') {
            return Err(Error::NotFound {
                kind: "image big-data item",
                name: format!("{} {key}", img.id),
            });
        }
        let p = self.paths.image_dir(&img.id).join(base);
        match fs::read(&p) {
            Ok(d) => Ok(d),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NotFound {
                kind: "image big-data item",
                name: format!("{} {key}", img.id),
            }),
            Err(e) => Err(e).at("reading", &p),
        }
    }

    pub(super) fn set_image_big_data_impl(&self, id: &str, key: &str, data: &[u8]) -> Result<()> {
        let g = self.lock(self.paths.images_lock(), LockKind::Exclusive)?;
        let mut set = ImageSet::load(&self.paths)?;
        let ix = set.index(id)?;
        let mut img = set.images[ix].clone();
        self.write_big_data(&mut img, key, data)?;
        if key == "manifest" {
            img.digest = img.big_data_digests.get("manifest").cloned();
        }
        recompute_digests(&mut img);
        set.images[ix] = img;
        set.save(&self.paths, &g)
    }

    pub(super) fn set_image_metadata_impl(&self, id: &str, metadata: &str) -> Result<()> {
        let g = self.lock(self.paths.images_lock(), LockKind::Exclusive)?;
        let mut set = ImageSet::load(&self.paths)?;
        let ix = set.index(id)?;
        set.images[ix].metadata = metadata.to_string();
        set.save(&self.paths, &g)
    }

    pub(super) fn update_image_names(&self, id: &str, names: &[String], op: NameOp) -> Result<()> {
        let g = self.lock(self.paths.images_lock(), LockKind::Exclusive)?;
        let mut set = ImageSet::load(&self.paths)?;
        let ix = set.index(id)?;
        let old = set.images[ix].names.clone();
        let new: Vec<String> = match op {
            NameOp::Set => dedupe(names),
            NameOp::Add => dedupe(&old.iter().chain(names.iter()).cloned().collect::<Vec<_>>()),
            NameOp::Remove => old.iter().filter(|n| !names.contains(n)).cloned().collect(),
        };
        for n in &new {
            set.take_name(n, ix);
            add_to_history(&mut set.images[ix], n);
        }
        set.images[ix].names = new;
        set.save(&self.paths, &g)
    }

    pub(super) fn delete_image_impl(&self, id: &str) -> Result<Vec<String>> {
        let lg = self.lock(self.paths.layers_lock(), LockKind::Exclusive)?;
        let ig = self.lock(self.paths.images_lock(), LockKind::Exclusive)?;
        let cg = self.lock(self.paths.containers_lock(), LockKind::Exclusive)?;
        let mut layers = super::layers::LayerSet::load(&self.paths)?;
        let mut set = ImageSet::load(&self.paths)?;
        let cs = super::containers::ContainerSet::load(&self.paths)?;
        let ix = set.index(id)?;
        let image = set.images[ix].clone();
        let users: Vec<String> = cs
            .containers
            .iter()
            .filter(|c| c.image == image.id)
            .map(|c| c.names.first().cloned().unwrap_or_else(|| c.id.clone()))
            .collect();
        if !users.is_empty() {
            return Err(Error::ImageInUse {
                image: image.id,
                containers: users,
            });
        }
        // Layers to remove: mapped top layers, then down the chain from the top layer until
        // one is used by a container, another image, or a layer not being removed.
        let mut others: HashSet<&str> = HashSet::new();
        for i in set.images.iter().filter(|i| i.id != image.id) {
            others.insert(i.layer.as_str());
            others.extend(i.mapped_layers.iter().map(String::as_str));
        }
        let container_layers: HashSet<&str> =
            cs.containers.iter().map(|c| c.layer.as_str()).collect();
        let mut remove: Vec<String> = image.mapped_layers.clone();
        let mut cur = image.layer.clone();
        while !cur.is_empty() {
            if container_layers.contains(cur.as_str()) || others.contains(cur.as_str()) {
                break;
            }
            let mut check = vec![cur.clone()];
            if cur == image.layer {
                check.extend(image.mapped_layers.iter().cloned());
            }
            let has_other_children = layers
                .layers
                .iter()
                .any(|l| check.contains(&l.parent) && !remove.contains(&l.id));
            if has_other_children {
                break;
            }
            let parent = layers
                .layers
                .iter()
                .find(|l| l.id == cur)
                .map(|l| l.parent.clone())
                .unwrap_or_default();
            remove.push(cur.clone());
            cur = parent;
        }
        drop(others);
        drop(container_layers);
        set.images.remove(ix);
        set.save(&self.paths, &ig)?;
        paths::remove_all(&self.paths.image_dir(&image.id))?;
        for l in &remove {
            if layers.layers.iter().any(|x| x.id == *l) {
                self.delete_layer_locked(&lg, &mut layers, l)
                    .map_err(|e| e.context(format!("deleting layer {l} of image {}", image.id)))?;
            }
        }
        drop(cg);
        Ok(remove)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(id: &str, names: &[&str]) -> ImageRecord {
        ImageRecord {
            id: id.repeat(64 / id.len()),
            names: names.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn split() {
        assert_eq!(split_ref("busybox"), ("busybox", None, None));
        assert_eq!(
            split_ref("localhost:5000/a/b:1"),
            ("localhost:5000/a/b", Some("1"), None)
        );
        assert_eq!(split_ref("a@sha256:00"), ("a", None, Some("sha256:00")));
        assert_eq!(
            split_ref("localhost:5000/a"),
            ("localhost:5000/a", None, None)
        );
    }

    #[test]
    fn lookups() {
        let mut images = vec![
            img(
                "a",
                &[
                    "docker.io/library/busybox:latest",
                    "docker.io/library/busybox:1",
                ],
            ),
            img("b", &["localhost/busybox:latest", "localhost/app:v2"]),
            img("c1", &["quay.io/org/tool:latest"]),
            img("c2", &["registry.example.com:5000/x/y:3"]),
        ];
        let dg = Digest::of(b"manifest");
        images[2].digest = Some(dg.clone());
        recompute_digests(&mut images[2]);
        let a = "a".repeat(64);
        let cases: &[(&str, Option<usize>)] = &[
            (&a, Some(0)),
            ("busybox", Some(1)),
            ("busybox:latest", Some(1)),
            ("busybox:1", Some(0)),
            ("docker.io/library/busybox", Some(0)),
            ("docker.io/busybox", Some(0)),
            ("library/busybox:1", Some(0)),
            ("localhost/busybox", Some(1)),
            ("app:v2", Some(1)),
            ("app", None),
            ("tool", Some(2)),
            ("org/tool", Some(2)),
            ("quay.io/tool", None),
            ("x/y:3", Some(3)),
            ("registry.example.com:5000/x/y:3", Some(3)),
            ("aaaa", Some(0)),
            ("bbb", Some(1)),
            ("nothing", None),
            ("", None),
        ];
        for (name, want) in cases {
            let got = lookup_index(&images, name).ok();
            assert_eq!(got, *want, "{name}");
        }
        assert!(matches!(
            lookup_index(&images, "c"),
            Err(Error::Store(StoreError::Ambiguous(_)))
        ));
        assert_eq!(lookup_index(&images, &format!("tool@{dg}")).ok(), Some(2));
        assert_eq!(
            lookup_index(&images, &format!("quay.io/org/tool@{dg}")).ok(),
            Some(2)
        );
        assert!(lookup_index(&images, &format!("busybox@{dg}")).is_err());
        assert_eq!(lookup_index(&images, &format!("sha256:{a}")).ok(), Some(0));
        assert!(lookup_index(&images, "sha256:aa").is_err());
        assert!(matches!(
            lookup_index(&images, "nope"),
            Err(Error::NotFound { kind: "image", .. })
        ));
    }

    #[test]
    fn digests_recomputed() {
        let mut i = ImageRecord::default();
        let m = Digest::of(b"m");
        let m2 = Digest::of(b"m2");
        i.big_data_names = vec![
            "sha256:x".into(),
            "manifest-sha256:y".into(),
            "manifest".into(),
        ];
        i.big_data_digests.insert("manifest".into(), m.clone());
        i.big_data_digests
            .insert("manifest-sha256:y".into(), m2.clone());
        i.big_data_digests
            .insert("sha256:x".into(), Digest::of(b"c"));
        recompute_digests(&mut i);
        assert_eq!(i.digest, Some(m2.clone()));
        assert_eq!(i.digests, vec![m2.clone(), m.clone()]);
        i.digest = Some(m.clone());
        recompute_digests(&mut i);
        assert_eq!(i.digests, vec![m, m2]);
    }
}
