//! Store queries over images: one snapshot of the image and layer records, with the
//! relations buildah (libimage's layer tree) derives from them, used by `images`, `rmi`,
//! `inspect` and the layer cache of `bud`.
//!
//! ```text
//! ImageIndex::load(store) ── images.json + layers.json, read once
//!     ├─ get(name)            the one lookup (reference::name_matches rules)
//!     ├─ config(id)           the config (history, labels, diff IDs), read lazily, cached
//!     ├─ parent / children    layer tree + history prefix (libimage's areParentAndChild)
//!     ├─ is_dangling / is_intermediate, size, created
//!     ├─ by_label / by_created_by      candidates for the layer cache
//!     └─ list(filters, all)   `images --filter` (ImageFilter)
//! remove_images(store, …)     `rmi` (untag, delete, dangling parents after them, --prune, --all)
//! ```
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::image::{History, ImageConfig};
use crate::reference;
use crate::store::{ImageRecord, Layer, Store};

/// A snapshot of the store's images and layers with the queries over them.
pub struct ImageIndex<'a> {
    store: &'a Store,
    images: Vec<ImageRecord>,
    layers: HashMap<String, Layer>,
    /// Layer ID → the layers whose parent it is.
    child_layers: HashMap<String, Vec<String>>,
    /// Top layer ID → indexes of the images on it.
    by_top: HashMap<String, Vec<usize>>,
    configs: Mutex<HashMap<String, Option<Arc<ImageConfig>>>>,
}

impl std::fmt::Debug for ImageIndex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageIndex")
            .field("images", &self.images.len())
            .field("layers", &self.layers.len())
            .finish()
    }
}

impl<'a> ImageIndex<'a> {
    /// Read the image and layer records once.
    pub fn load(store: &'a Store) -> Result<ImageIndex<'a>> {
        let images = store.images()?;
        let layers: HashMap<String, Layer> = store
            .layers()?
            .into_iter()
            .map(|l| (l.id.clone(), l))
            .collect();
        let mut child_layers: HashMap<String, Vec<String>> = HashMap::new();
        for l in layers.values() {
            if !l.parent.is_empty() {
                child_layers
                    .entry(l.parent.clone())
                    .or_default()
                    .push(l.id.clone());
            }
        }
        let mut by_top: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, img) in images.iter().enumerate() {
            by_top.entry(img.layer.clone()).or_default().push(i);
        }
        Ok(ImageIndex {
            store,
            images,
            layers,
            child_layers,
            by_top,
            configs: Mutex::new(HashMap::new()),
        })
    }

    /// Every image, in store order.
    pub fn images(&self) -> &[ImageRecord] {
        &self.images
    }

    /// The image a name, ID, short ID or `@digest` refers to (the store's lookup rules).
    pub fn get(&self, name_or_id: &str) -> Result<&ImageRecord> {
        let i = crate::store::lookup_image_index(&self.images, name_or_id)?;
        Ok(&self.images[i])
    }

    /// The image with this full ID.
    pub fn by_id(&self, id: &str) -> Option<&ImageRecord> {
        self.images.iter().find(|i| i.id == id)
    }

    /// The image's config (`None` when the store has none for it), read once.
    pub fn config(&self, id: &str) -> Option<Arc<ImageConfig>> {
        let mut cache = self.configs.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry(id.to_string())
            .or_insert_with(|| {
                let data = self
                    .store
                    .image_big_data(id, &format!("sha256:{id}"))
                    .map_err(|e| tracing::debug!("image {id} has no config: {e}"))
                    .ok()?;
                serde_json::from_slice::<ImageConfig>(&data)
                    .map_err(|e| tracing::debug!("parsing config of image {id}: {e}"))
                    .ok()
                    .map(Arc::new)
            })
            .clone()
    }

    /// The image's labels.
    pub fn labels(&self, id: &str) -> BTreeMap<String, String> {
        self.config(id)
            .and_then(|c| c.config.labels.clone())
            .unwrap_or_default()
    }

    /// The image's history.
    pub fn history(&self, id: &str) -> Vec<History> {
        self.config(id)
            .map(|c| c.history.clone())
            .unwrap_or_default()
    }

    /// The `created_by` of the image's last history entry (what a build step recorded).
    pub fn last_created_by(&self, id: &str) -> Option<String> {
        self.config(id)
            .and_then(|c| c.history.last().and_then(|h| h.created_by.clone()))
    }

    /// Creation time as stored (RFC 3339; the record's, else the config's).
    pub fn created_raw(&self, id: &str) -> String {
        self.by_id(id)
            .and_then(|r| r.created.clone())
            .or_else(|| self.config(id).and_then(|c| c.created.clone()))
            .unwrap_or_default()
    }

    /// Creation time, Unix seconds (0 when unknown).
    pub fn created(&self, id: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(&self.created_raw(id))
            .map(|t| t.timestamp())
            .unwrap_or(0)
    }

    /// Creation time in nanoseconds since the epoch, for ordering (`before=`/`since=`): images
    /// committed within one second are still ordered, as Go's `time.Before` orders them.
    pub fn created_nanos(&self, id: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(&self.created_raw(id))
            .ok()
            .and_then(|t| t.timestamp_nanos_opt())
            .unwrap_or(0)
    }

    /// The image's layers, top first.
    pub fn layer_chain(&self, id: &str) -> Vec<&Layer> {
        let mut out = Vec::new();
        let Some(img) = self.by_id(id) else {
            return out;
        };
        let mut cur = img.layer.as_str();
        while let Some(l) = self.layers.get(cur) {
            out.push(l);
            if l.parent.is_empty() || out.len() > 4096 {
                break;
            }
            cur = &l.parent;
        }
        out
    }

    /// Sum of the layers' uncompressed sizes.
    pub fn size(&self, id: &str) -> i64 {
        self.layer_chain(id)
            .iter()
            .map(|l| l.diff_size.unwrap_or(0))
            .sum()
    }

    /// libimage's `areParentAndChild`: the child's history continues the parent's and its
    /// diff IDs start with the parent's. Without both configs, the layer relation decides.
    fn is_parent_of(&self, parent: &ImageRecord, child: &ImageRecord) -> bool {
        if parent.id == child.id {
            return false;
        }
        match (self.config(&parent.id), self.config(&child.id)) {
            (Some(p), Some(c)) => {
                p.history.len() < c.history.len()
                    && p.history.iter().zip(&c.history).all(|(a, b)| a == b)
                    && p.rootfs.diff_ids.len() <= c.rootfs.diff_ids.len()
                    && p.rootfs
                        .diff_ids
                        .iter()
                        .zip(&c.rootfs.diff_ids)
                        .all(|(a, b)| a == b)
            }
            _ => {
                !parent.layer.is_empty()
                    && self
                        .layers
                        .get(&child.layer)
                        .is_some_and(|l| l.parent == parent.layer)
            }
        }
    }

    fn images_on(&self, layer: &str) -> impl Iterator<Item = &ImageRecord> {
        self.by_top
            .get(layer)
            .into_iter()
            .flatten()
            .map(|i| &self.images[*i])
    }

    /// The image this one was built on: on its top layer's parent layer or on the same top
    /// layer (a step that added no layer), with the history this one continues.
    pub fn parent(&self, id: &str) -> Option<&ImageRecord> {
        let child = self.by_id(id)?;
        let mut candidates: Vec<&ImageRecord> = self.images_on(&child.layer).collect();
        if let Some(l) = self.layers.get(&child.layer) {
            candidates.extend(self.images_on(&l.parent));
        }
        // The nearest: config-only steps (ENV, EXPOSE, …) leave several ancestors on one
        // layer, each a parent by history; the one with the longest history is the direct one.
        candidates
            .into_iter()
            .filter(|p| self.is_parent_of(p, child))
            .max_by_key(|p| self.config(&p.id).map_or(0, |c| c.history.len()))
    }

    /// The images built directly on this one (the layer cache's candidates for the next
    /// step): on a child layer of its top layer, or on the same top layer.
    pub fn children(&self, id: &str) -> Vec<&ImageRecord> {
        let Some(parent) = self.by_id(id) else {
            return Vec::new();
        };
        let mut candidates: Vec<&ImageRecord> = Vec::new();
        for l in self.child_layers.get(&parent.layer).into_iter().flatten() {
            candidates.extend(self.images_on(l));
        }
        candidates.extend(self.images_on(&parent.layer));
        candidates
            .into_iter()
            .filter(|c| self.is_parent_of(parent, c))
            .collect()
    }

    /// The images a build's first step from `scratch` may have made: one history entry and
    /// at most one layer (the layer cache's candidates when there is no base image).
    pub fn children_of_scratch(&self) -> Vec<&ImageRecord> {
        self.images
            .iter()
            .filter(|i| {
                self.config(&i.id)
                    .is_some_and(|c| c.history.len() == 1 && c.rootfs.diff_ids.len() <= 1)
            })
            .collect()
    }

    /// Whether any image is built on this one.
    pub fn has_children(&self, id: &str) -> bool {
        !self.children(id).is_empty()
    }

    /// No names and no children (what `rmi --prune` removes).
    pub fn is_dangling(&self, id: &str) -> bool {
        self.by_id(id).is_some_and(|i| i.names.is_empty()) && !self.has_children(id)
    }

    /// No names but children: a build's intermediate image (hidden by `images` without `-a`).
    pub fn is_intermediate(&self, id: &str) -> bool {
        self.by_id(id).is_some_and(|i| i.names.is_empty()) && self.has_children(id)
    }

    /// Images with label `key` (equal to `value` when given).
    pub fn by_label(&self, key: &str, value: Option<&str>) -> Vec<&ImageRecord> {
        self.images
            .iter()
            .filter(|i| {
                self.labels(&i.id)
                    .get(key)
                    .is_some_and(|v| value.is_none_or(|w| w == v))
            })
            .collect()
    }

    /// Images whose last history entry was created by `created_by`.
    pub fn by_created_by(&self, created_by: &str) -> Vec<&ImageRecord> {
        self.images
            .iter()
            .filter(|i| self.last_created_by(&i.id).as_deref() == Some(created_by))
            .collect()
    }

    /// Whether `img` passes `filter`.
    pub fn matches(&self, img: &ImageRecord, filter: &ImageFilter) -> Result<bool> {
        let id = img.id.as_str();
        let hit = match &filter.kind {
            FilterKind::Reference(p) => img.names.iter().any(|n| reference::pattern_matches(n, p)),
            FilterKind::Dangling(want) => self.is_dangling(id) == *want,
            FilterKind::Intermediate(want) => self.is_intermediate(id) == *want,
            FilterKind::Readonly(want) => !*want,
            FilterKind::Id(want) => id == want.strip_prefix("sha256:").unwrap_or(want),
            FilterKind::Label(k, v) => self
                .labels(id)
                .get(k)
                .is_some_and(|x| v.as_ref().is_none_or(|v| v == x)),
            FilterKind::Before(name) => {
                self.created_nanos(id) < self.created_nanos(&self.get(name)?.id)
            }
            FilterKind::Since(name) => {
                self.created_nanos(id) > self.created_nanos(&self.get(name)?.id)
            }
        };
        Ok(hit != filter.negate)
    }

    /// `images`: the images passing every filter; intermediate ones only with `all`.
    pub fn list(&self, filters: &[ImageFilter], all: bool) -> Result<Vec<&ImageRecord>> {
        let mut out = Vec::new();
        for img in &self.images {
            if !all && self.is_intermediate(&img.id) {
                continue;
            }
            let mut keep = true;
            for f in filters {
                if !self.matches(img, f)? {
                    keep = false;
                    break;
                }
            }
            if keep {
                out.push(img);
            }
        }
        Ok(out)
    }
}

/// One `images --filter KEY=VALUE` (or `KEY!=VALUE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFilter {
    /// What is tested.
    pub kind: FilterKind,
    /// `!=`: keep the images that do not pass.
    pub negate: bool,
}

/// The filters `buildah images` supports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterKind {
    /// `reference=PATTERN` (glob, see [`reference::pattern_matches`]).
    Reference(String),
    /// `dangling=BOOL`: no names and no children.
    Dangling(bool),
    /// `intermediate=BOOL`: no names but children.
    Intermediate(bool),
    /// `readonly=BOOL` (hod has no read-only image stores).
    Readonly(bool),
    /// `id=ID`: the full ID.
    Id(String),
    /// `label=KEY[=VALUE]`.
    Label(String, Option<String>),
    /// `before=IMAGE`: created before it.
    Before(String),
    /// `since=IMAGE` / `after=IMAGE`: created after it.
    Since(String),
}

impl ImageFilter {
    /// Parse `KEY=VALUE` / `KEY!=VALUE`.
    pub fn parse(s: &str) -> Result<ImageFilter> {
        let (key, negate, value) = if let Some((k, v)) = s.split_once("!=") {
            (k, true, v)
        } else if let Some((k, v)) = s.split_once('=') {
            (k, false, v)
        } else {
            return Err(Error::invalid(format!(
                "invalid image filter {s:?}: must be in the format \"filter=value or filter!=value\""
            )));
        };
        let boolean = |v: &str| -> Result<bool> {
            match v {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(Error::invalid(format!(
                    "invalid image filter {s:?}: {key} takes true or false"
                ))),
            }
        };
        let kind = match key {
            "reference" => FilterKind::Reference(value.to_string()),
            "dangling" => FilterKind::Dangling(boolean(value)?),
            "intermediate" => FilterKind::Intermediate(boolean(value)?),
            "readonly" => FilterKind::Readonly(boolean(value)?),
            "id" => FilterKind::Id(value.to_string()),
            "label" => match value.split_once('=') {
                Some((k, v)) => FilterKind::Label(k.to_string(), Some(v.to_string())),
                None => FilterKind::Label(value.to_string(), None),
            },
            "before" => FilterKind::Before(value.to_string()),
            "since" | "after" => FilterKind::Since(value.to_string()),
            other => {
                return Err(Error::invalid(format!(
                    "unsupported image filter {other:?}"
                )))
            }
        };
        Ok(ImageFilter { kind, negate })
    }
}

/// What `rmi` is asked to remove.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RemoveOptions {
    /// Names or IDs (a name of an image with other names only untags it).
    pub images: Vec<String>,
    /// `--all`: every image.
    pub all: bool,
    /// `--prune`: every dangling image.
    pub prune: bool,
    /// `--force`: remove the working containers using the images first.
    pub force: bool,
}

/// What `rmi` did; errors per image, in order (the last one is `rmi`'s own).
#[derive(Debug, Default)]
pub struct RemoveReport {
    /// Names removed (`untagged: NAME`).
    pub untagged: Vec<String>,
    /// IDs of the images deleted.
    pub removed: Vec<String>,
    /// Images that could not be removed.
    pub errors: Vec<Error>,
}

/// `rmi`: untag or delete the images asked for; after a deleted image, its parent goes too
/// when that leaves it dangling (libimage's behaviour).
pub fn remove_images(store: &Store, opts: &RemoveOptions) -> Result<RemoveReport> {
    if opts.images.is_empty() && !opts.all && !opts.prune {
        return Err(Error::invalid("image name or ID must be specified"));
    }
    if !opts.images.is_empty() && opts.all {
        return Err(Error::invalid(
            "when using the --all switch, you may not pass any images names or IDs",
        ));
    }
    if opts.all && opts.prune {
        return Err(Error::invalid(
            "when using the --all switch, you may not use --prune switch",
        ));
    }
    if !opts.images.is_empty() && opts.prune {
        return Err(Error::invalid(
            "when using the --prune switch, you may not pass any images names or IDs",
        ));
    }
    let mut report = RemoveReport::default();
    let targets: Vec<(String, Option<String>)> = if opts.all || opts.prune {
        let index = ImageIndex::load(store)?;
        index
            .images()
            .iter()
            .filter(|i| opts.all || index.is_dangling(&i.id))
            .map(|i| (i.id.clone(), None))
            .collect()
    } else {
        opts.images
            .iter()
            .map(|n| {
                let n = crate::from::local_name(n).to_string();
                (n.clone(), Some(n))
            })
            .collect()
    };
    for (name, typed) in targets {
        if let Err(e) = remove_one(store, &name, typed.as_deref(), opts.force, &mut report) {
            report.errors.push(e);
        }
    }
    Ok(report)
}

fn remove_one(
    store: &Store,
    name: &str,
    typed: Option<&str>,
    force: bool,
    report: &mut RemoveReport,
) -> Result<()> {
    let index = ImageIndex::load(store)?;
    let img = match index.get(name) {
        Ok(i) => i.clone(),
        // Already gone with a child removed before it (--all, --prune).
        Err(Error::NotFound { .. }) if typed.is_none() => return Ok(()),
        Err(e) => return Err(e),
    };
    // A name (not an ID) of an image with other names: untag only.
    if let Some(typed) = typed {
        let named = img
            .names
            .iter()
            .find(|n| reference::name_matches(n, typed))
            .cloned();
        if let (Some(n), true) = (named, img.names.len() > 1) {
            let rest: Vec<String> = img.names.iter().filter(|x| **x != n).cloned().collect();
            store.set_image_names(&img.id, &rest)?;
            report.untagged.push(n);
            return Ok(());
        }
    }
    let parent = index.parent(&img.id).cloned();
    drop(index);
    delete_image(store, &img, force)?;
    report.untagged.extend(img.names.iter().cloned());
    report.removed.push(img.id.clone());
    // The parent goes too when this leaves it dangling.
    let mut next = parent;
    while let Some(p) = next.take() {
        let index = ImageIndex::load(store)?;
        if !index.is_dangling(&p.id) {
            break;
        }
        next = index.parent(&p.id).cloned();
        drop(index);
        match delete_image(store, &p, false) {
            Ok(()) => report.removed.push(p.id.clone()),
            Err(e) => {
                tracing::debug!("keeping dangling parent {}: {e}", p.id);
                break;
            }
        }
    }
    Ok(())
}

fn delete_image(store: &Store, img: &ImageRecord, force: bool) -> Result<()> {
    if force {
        for c in store.containers()? {
            if c.image == img.id {
                match crate::Builder::open(store, &c.id) {
                    Ok(b) => b.delete(store)?,
                    Err(_) => store.delete_container(&c.id)?,
                }
            }
        }
    }
    store.delete_image(&img.id)?;
    Ok(())
}

#[cfg(test)]
mod tests;
