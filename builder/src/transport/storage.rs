//! `containers-storage:` — our [`Store`], laid out as containers/image's storage transport
//! does: each layer is applied (decompressed) on its parent with the ID
//! `diff_id hex` (bottom) or `sha256(parent + "+" + diff_id hex)`, an existing layer with that
//! ID is reused, and the image is recorded last with the big-data items `manifest-<digest>`,
//! `manifest` and `<config digest>`; its ID is the config digest's hex.
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::{bad_image, BlobInfo, ImageDestination, ImageSource, LayerInfo};
use crate::archive::Compression;
use crate::error::{IoResultExt, Result};
use crate::image::manifest::{self, *};
use crate::image::{Digest, ImageConfig};
use crate::reference::StoreSpec;
use crate::store::{BigData, DriverKind, Layer, PutLayerOptions, Store, StoreOptions};

/// The store a storage reference uses: the caller's, or one opened for a
/// `containers-storage:[DRIVER@ROOT+RUNROOT:OPTS]` reference.
#[derive(Debug)]
pub enum StoreHandle<'s> {
    /// The caller's store.
    Borrowed(&'s Store),
    /// A store opened for the reference.
    Owned(Box<Store>),
}

impl std::ops::Deref for StoreHandle<'_> {
    type Target = Store;
    fn deref(&self) -> &Store {
        match self {
            StoreHandle::Borrowed(s) => s,
            StoreHandle::Owned(s) => s,
        }
    }
}

/// Open the store a `[DRIVER@ROOT+RUNROOT:OPTS]` specification names; what it leaves out
/// comes from `default` (the store hod was started with).
pub fn open_store_spec(spec: &StoreSpec, default: Option<&Store>) -> Result<Store> {
    let d = default.map(|s| s.options().clone());
    let root = spec
        .root
        .clone()
        .or_else(|| d.as_ref().map(|o| o.root.clone()))
        .ok_or_else(|| bad_image("containers-storage reference names no store root"))?;
    let run_root = spec
        .run_root
        .clone()
        .or_else(|| d.as_ref().map(|o| o.run_root.clone()))
        .ok_or_else(|| bad_image("containers-storage reference names no store run root"))?;
    let driver = match &spec.driver {
        Some(name) => DriverKind::parse(name)?,
        None => d.as_ref().map(|o| o.driver).unwrap_or_default(),
    };
    let driver_options = if spec.options.is_empty() {
        d.map(|o| o.driver_options).unwrap_or_default()
    } else {
        spec.options.clone()
    };
    Store::open(&StoreOptions {
        root,
        run_root,
        driver,
        driver_options,
    })
}

/// The big-data key of a manifest with this digest.
pub fn manifest_key(d: &Digest) -> String {
    format!("manifest-{d}")
}

/// The layer ID containers/image gives a layer with `diff_id` on `parent`.
pub fn chain_layer_id(parent: Option<&str>, diff_id: &Digest) -> String {
    match parent {
        None => diff_id.hex().to_string(),
        Some(p) => Digest::of(format!("{p}+{}", diff_id.hex()).as_bytes())
            .hex()
            .to_string(),
    }
}

/// A destination in the local store.
pub struct StorageDest<'s> {
    store: StoreHandle<'s>,
    names: Vec<String>,
    staging: crate::scratch::ScratchDir,
    top: Option<String>,
    config: Option<(Digest, Vec<u8>)>,
    manifest: Option<(Digest, Vec<u8>)>,
}

impl std::fmt::Debug for StorageDest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageDest")
            .field("names", &self.names)
            .field("top", &self.top)
            .finish()
    }
}

impl<'s> StorageDest<'s> {
    /// Write an image named `names` (already normalised) into `store`.
    pub fn new(store: &'s Store, names: Vec<String>) -> Result<StorageDest<'s>> {
        StorageDest::with_handle(StoreHandle::Borrowed(store), names)
    }

    /// Write into the store `store` refers to.
    pub fn with_handle(store: StoreHandle<'s>, names: Vec<String>) -> Result<StorageDest<'s>> {
        let staging = crate::scratch::ScratchDir::new("storage-dest")?;
        Ok(StorageDest {
            store,
            names,
            staging,
            top: None,
            config: None,
            manifest: None,
        })
    }

    /// Decompress and apply a streamed layer; the stream is read to its end before the
    /// layer is kept (the source verifies the blob digest at the end), and a failure then
    /// removes the layer again.
    fn apply_stream(
        &mut self,
        r: Box<dyn Read + Send>,
        c: Compression,
        id: String,
        desc: &Descriptor,
        layer: &LayerInfo,
    ) -> Result<()> {
        let mut r = crate::archive::compress::decompress_as(r, c)?;
        let opts = PutLayerOptions {
            id: Some(id),
            compressed: Some((desc.digest.clone(), desc.size, c.storage_code())),
            expected_diff_digest: layer.diff_id.clone(),
        };
        let l = self.store.put_layer(self.top.as_deref(), &mut r, &opts)?;
        // Whatever follows the tar (and the source's final digest check).
        let rest = std::io::copy(&mut r, &mut std::io::sink());
        match rest {
            Ok(_) => {
                self.top = Some(l.id);
                Ok(())
            }
            Err(e) => {
                let _ = self.store.delete_layer(&l.id);
                Err(e).at("reading layer", desc.digest.to_string())
            }
        }
    }

    fn usable_layer(&self, id: &str) -> Option<Layer> {
        let l = self.store.layer(id).ok()?;
        if l.is_incomplete() {
            return None;
        }
        Some(l)
    }
}

impl ImageDestination for StorageDest<'_> {
    fn staging_dir(&self) -> &Path {
        self.staging.path()
    }
    fn try_reuse_layer(
        &mut self,
        desc: &Descriptor,
        layer: &LayerInfo,
    ) -> Result<Option<BlobInfo>> {
        let Some(diff_id) = &layer.diff_id else {
            return Ok(None);
        };
        let id = chain_layer_id(self.top.as_deref(), diff_id);
        let found = match self.usable_layer(&id) {
            Some(l) if l.diff_digest.as_ref() == Some(diff_id) => Some(l),
            // A layer with the same content on the same parent under another ID (made by
            // a tool that names layers differently) is as good.
            _ => self
                .store
                .layers_by_diff_digest(diff_id)?
                .into_iter()
                .find(|l| l.parent == self.top.clone().unwrap_or_default() && !l.is_incomplete()),
        };
        match found {
            Some(l) => {
                self.top = Some(l.id);
                Ok(Some(BlobInfo {
                    digest: desc.digest.clone(),
                    size: desc.size,
                    compression: None,
                    mounted_from: None,
                }))
            }
            None => Ok(None),
        }
    }
    fn unpacks_layers(&self) -> bool {
        true
    }
    fn accepts_layer_stream(&self) -> bool {
        true
    }
    fn put_layer_stream(
        &mut self,
        r: Box<dyn Read + Send>,
        desc: &Descriptor,
        layer: &LayerInfo,
    ) -> Result<()> {
        let diff_id = layer.diff_id.clone().unwrap_or_else(|| desc.digest.clone());
        let id = chain_layer_id(self.top.as_deref(), &diff_id);
        if let Some(l) = self.usable_layer(&id) {
            // Someone else applied it meanwhile: still read (and so verify) the stream.
            let mut r = r;
            std::io::copy(&mut r, &mut std::io::sink())
                .at("reading layer", desc.digest.to_string())?;
            self.top = Some(l.id);
            return Ok(());
        }
        let c = if layer.compression == Compression::None {
            let (c, r2) = crate::archive::compress::detect_reader(r)?;
            return self.apply_stream(r2, c, id, desc, layer);
        } else {
            layer.compression
        };
        self.apply_stream(r, c, id, desc, layer)
    }
    fn put_blob(
        &mut self,
        file: tempfile::NamedTempFile,
        desc: &Descriptor,
        layer: Option<&LayerInfo>,
    ) -> Result<()> {
        let path = file.path().to_path_buf();
        let Some(layer) = layer else {
            let data = std::fs::read(&path).at("reading", &path)?;
            self.config = Some((desc.digest.clone(), data));
            return Ok(());
        };
        let diff_id = layer.diff_id.clone().unwrap_or_else(|| desc.digest.clone());
        let id = chain_layer_id(self.top.as_deref(), &diff_id);
        if let Some(l) = self.usable_layer(&id) {
            self.top = Some(l.id);
            return Ok(());
        }
        let mut f = std::fs::File::open(&path).at("opening", &path)?;
        let mut head = [0u8; 8];
        let n = f.read(&mut head).at("reading", &path)?;
        drop(f);
        let c = if layer.compression == Compression::None {
            Compression::detect(&head[..n])
        } else {
            layer.compression
        };
        let f = std::fs::File::open(&path).at("opening", &path)?;
        let mut r = crate::archive::compress::decompress_as(
            Box::new(std::io::BufReader::with_capacity(1 << 20, f)),
            c,
        )?;
        let opts = PutLayerOptions {
            id: Some(id),
            compressed: Some((desc.digest.clone(), desc.size, c.storage_code())),
            expected_diff_digest: layer.diff_id.clone(),
        };
        // A container's layer this store may take over (commit of a container removed
        // right after): its files move into the new layer; the tar is only read.
        if let Some(a) = layer
            .adopt
            .as_ref()
            .filter(|a| c == Compression::None && a.root == self.store.root())
        {
            if let Some(l) =
                self.store
                    .put_layer_adopting(self.top.as_deref(), &mut r, &opts, &a.layer)?
            {
                tracing::debug!(
                    "layer {}: took over the files of container layer {}",
                    l.id,
                    a.layer
                );
                self.top = Some(l.id);
                return Ok(());
            }
        }
        let l = self.store.put_layer(self.top.as_deref(), &mut r, &opts)?;
        self.top = Some(l.id);
        Ok(())
    }
    fn put_manifest(&mut self, data: &[u8], _media_type: &str) -> Result<()> {
        self.manifest = Some((Digest::of(data), data.to_vec()));
        Ok(())
    }
    fn commit(self: Box<Self>) -> Result<()> {
        let (config_digest, config) = self
            .config
            .clone()
            .ok_or_else(|| bad_image("no config was written"))?;
        let (manifest_digest, manifest) = self
            .manifest
            .clone()
            .ok_or_else(|| bad_image("no manifest was written"))?;
        let id = config_digest.hex().to_string();
        let created = serde_json::from_slice::<ImageConfig>(&config)
            .ok()
            .and_then(|c| c.created);
        let big = vec![
            BigData {
                key: manifest_key(&manifest_digest),
                data: manifest.clone(),
            },
            BigData {
                key: "manifest".to_string(),
                data: manifest,
            },
            BigData {
                key: config_digest.to_string(),
                data: config,
            },
        ];
        // An image with this ID already there gets the names added and the big data
        // replaced (the store's create_image contract, as containers/image does).
        let existed = self.store.image(&id).is_ok();
        self.store
            .create_image(&id, &self.names, self.top.as_deref(), &big, created)?;
        // containers/image's debug lines (scripts count the images a build makes by them).
        if existed {
            tracing::debug!("reusing image ID {id:?}");
        } else {
            tracing::debug!("created new image ID {id:?}");
        }
        Ok(())
    }
}

/// An image in the local store as a source. Layers are served uncompressed (from the
/// store's diffs), so the manifest is rewritten with the layers' diff digests and sizes
/// when the stored one lists other blobs (as containers/image's `LayerInfosForCopy` does).
pub struct StorageSource<'s> {
    store: StoreHandle<'s>,
    id: String,
    manifest: Vec<u8>,
    media_type: String,
    layers: Vec<Layer>,
}

impl std::fmt::Debug for StorageSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageSource")
            .field("id", &self.id)
            .finish()
    }
}

/// The layer chain of a top layer, bottom first.
pub fn layer_chain(store: &Store, top: &str) -> Result<Vec<Layer>> {
    let mut out = Vec::new();
    let mut cur = (!top.is_empty()).then(|| top.to_string());
    while let Some(id) = cur {
        if out.len() > 1000 {
            return Err(bad_image(format!("layer chain of {top} is too long")));
        }
        let l = store.layer(&id)?;
        cur = (!l.parent.is_empty()).then(|| l.parent.clone());
        out.push(l);
    }
    out.reverse();
    Ok(out)
}

impl<'s> StorageSource<'s> {
    /// Open the image `name` (name, ID or prefix) of `store`.
    pub fn open(store: &'s Store, name: &str) -> Result<StorageSource<'s>> {
        StorageSource::open_handle(StoreHandle::Borrowed(store), name)
    }

    /// Open the image `name` of the store `store` refers to.
    pub fn open_handle(store: StoreHandle<'s>, name: &str) -> Result<StorageSource<'s>> {
        let rec = store.image(name)?;
        let layers = layer_chain(&store, &rec.layer)?;
        let stored = store.image_big_data(&rec.id, "manifest")?;
        let parsed = manifest::parse_manifest(&stored, None)?;
        let (mt, mut m) = match parsed {
            Manifest::Oci(m) => (OCI_MANIFEST, m),
            Manifest::Docker(m) => (DOCKER_MANIFEST, m),
            _ => {
                return Err(bad_image(format!(
                    "image {}: stored manifest is a list",
                    rec.id
                )))
            }
        };
        if m.layers.len() != layers.len() {
            return Err(bad_image(format!(
                "image {}: manifest lists {} layers, the store has {}",
                rec.id,
                m.layers.len(),
                layers.len()
            )));
        }
        let mut changed = false;
        for (d, l) in m.layers.iter_mut().zip(&layers) {
            let (Some(dd), Some(ds)) = (&l.diff_digest, l.diff_size) else {
                return Err(bad_image(format!(
                    "layer {} has no recorded diff digest",
                    l.id
                )));
            };
            if d.digest != *dd || d.size != ds {
                d.digest = dd.clone();
                d.size = ds;
                d.media_type = super::layer_media_type(mt, Compression::None)?.to_string();
                changed = true;
            }
        }
        let manifest = if changed {
            manifest::to_json(&m)
        } else {
            stored
        };
        Ok(StorageSource {
            store,
            id: rec.id,
            manifest,
            media_type: mt.to_string(),
            layers,
        })
    }

    /// The image ID.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl ImageSource for StorageSource<'_> {
    fn manifest(&mut self, instance: Option<&Digest>) -> Result<(Vec<u8>, String)> {
        if instance.is_some() {
            return Err(bad_image("stored images have no manifest lists"));
        }
        Ok((self.manifest.clone(), self.media_type.clone()))
    }
    fn write_blob(&mut self, desc: &Descriptor, out: &mut dyn Write) -> Result<()> {
        if let Some(l) = self
            .layers
            .iter()
            .find(|l| l.diff_digest.as_ref() == Some(&desc.digest))
        {
            return self
                .store
                .layer_diff(&l.id, out)
                .map_err(|e| e.context(format!("reading layer {}", l.id)));
        }
        let data = self
            .store
            .image_big_data(&self.id, &desc.digest.to_string())?;
        out.write_all(&data).at("writing", PathBuf::from("blob"))?;
        Ok(())
    }
    fn describe(&self) -> String {
        format!("containers-storage:{}", self.id)
    }
    fn verifies_blob(&self, desc: &Descriptor) -> bool {
        self.layers
            .iter()
            .find(|l| l.diff_digest.as_ref() == Some(&desc.digest))
            .is_some_and(|l| self.store.layer_diff_is_checked(&l.id))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::report::Quiet;
    use crate::store::{DriverKind, StoreOptions};
    use crate::transport::oci::{OciLayoutDest, OciLayoutSource};
    use crate::transport::testutil::*;
    use crate::transport::{copy_image, CopyImageOptions};

    pub(crate) fn vfs_store(dir: &Path) -> Store {
        Store::open(&StoreOptions {
            root: dir.join("root"),
            run_root: dir.join("run"),
            driver: DriverKind::Vfs,
            driver_options: Vec::new(),
        })
        .unwrap()
    }

    #[test]
    fn pull_into_store_reuses_layers_and_pushes_back() {
        let t = tempfile::tempdir().unwrap();
        let store = vfs_store(t.path());
        let mut src = image(
            &[layer_tar("a", b"1"), layer_tar("b", b"2")],
            Compression::Gzip,
        );
        let out = copy_image(
            &mut src,
            Box::new(StorageDest::new(&store, vec!["localhost/x:1".into()]).unwrap()),
            &CopyImageOptions::default(),
            &Quiet,
        )
        .unwrap();
        let id = out.config_digest.hex().to_string();
        let rec = store.image("localhost/x:1").unwrap();
        assert_eq!(rec.id, id);
        for key in [
            "manifest".to_string(),
            manifest_key(&out.manifest_digest),
            out.config_digest.to_string(),
        ] {
            assert!(
                rec.big_data_names.contains(&key),
                "{key} missing: {:?}",
                rec.big_data_names
            );
        }
        assert_eq!(store.image_big_data(&id, "manifest").unwrap(), out.manifest);
        let chain = layer_chain(&store, &rec.layer).unwrap();
        assert_eq!(chain.len(), 2);
        let m: ImageManifest = serde_json::from_slice(&src.manifest).unwrap();
        assert_eq!(
            chain[0].compressed_diff_digest.as_ref(),
            Some(&m.layers[0].digest)
        );
        // second copy: every layer is reused
        let r = Collect::default();
        copy_image(
            &mut src,
            Box::new(StorageDest::new(&store, vec!["localhost/x:2".into()]).unwrap()),
            &CopyImageOptions::default(),
            &r,
        )
        .unwrap();
        let lines = r.0.lock().unwrap().clone();
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.ends_with("skipped: already exists"))
                .count(),
            2,
            "{lines:?}"
        );
        assert_eq!(store.layers().unwrap().len(), 2);
        // back out: uncompressed diffs, same config
        let lay = t.path().join("lay");
        let mut s = StorageSource::open(&store, "localhost/x:1").unwrap();
        let back = copy_image(
            &mut s,
            Box::new(OciLayoutDest::new(&lay, Some("v")).unwrap()),
            &CopyImageOptions::default(),
            &Quiet,
        )
        .unwrap();
        assert_eq!(back.config_digest, out.config_digest);
        OciLayoutSource::open(&lay, Some("v")).unwrap();
    }

    #[test]
    fn copy_between_stores_through_a_store_spec() {
        let t = tempfile::tempdir().unwrap();
        let store = vfs_store(t.path());
        let mut src = image(&[layer_tar("a", b"1")], Compression::Gzip);
        let dst = Box::new(StorageDest::new(&store, vec!["localhost/x:1".into()]).unwrap());
        let out = copy_image(&mut src, dst, &CopyImageOptions::default(), &Quiet).unwrap();
        let other_root = t.path().join("other");
        let r = crate::reference::ImageReference::parse(&format!(
            "containers-storage:[vfs@{}+{}]localhost/copied:1",
            other_root.display(),
            t.path().join("other-run").display()
        ))
        .unwrap();
        let mut s = StorageSource::open(&store, "localhost/x:1").unwrap();
        let dst =
            crate::transport::open_destination(&r, Some(&store), &Default::default()).unwrap();
        copy_image(&mut s, dst, &CopyImageOptions::default(), &Quiet).unwrap();
        let other = open_store_spec(
            &StoreSpec {
                root: Some(other_root.clone()),
                run_root: Some(t.path().join("other-run")),
                ..Default::default()
            },
            Some(&store),
        )
        .unwrap();
        assert_eq!(
            other.driver(),
            DriverKind::Vfs,
            "driver taken from the spec's default"
        );
        assert_eq!(
            other.image("localhost/copied:1").unwrap().id,
            out.config_digest.hex()
        );
        // and read back from it as a source
        let mut back =
            crate::transport::open_source(&r, Some(&store), &Default::default()).unwrap();
        let lay = t.path().join("lay");
        let o = copy_image(
            back.as_mut(),
            Box::new(OciLayoutDest::new(&lay, None).unwrap()),
            &CopyImageOptions::default(),
            &Quiet,
        )
        .unwrap();
        assert_eq!(o.config_digest, out.config_digest);
        assert!(open_store_spec(&StoreSpec::default(), None).is_err());
    }

    #[test]
    fn failed_copy_leaves_no_image() {
        let t = tempfile::tempdir().unwrap();
        let store = vfs_store(t.path());
        let mut src = image(
            &[layer_tar("a", b"1"), layer_tar("b", b"2")],
            Compression::None,
        );
        let m: ImageManifest = serde_json::from_slice(&src.manifest).unwrap();
        src.blobs.get_mut(&m.layers[1].digest).unwrap()[600] ^= 1;
        let dst = Box::new(StorageDest::new(&store, vec!["localhost/bad:1".into()]).unwrap());
        assert!(copy_image(&mut src, dst, &CopyImageOptions::default(), &Quiet).is_err());
        assert!(store.images().unwrap().is_empty());
        assert!(store.image("localhost/bad:1").is_err());
    }

    #[test]
    fn a_pushed_layer_is_checked_against_its_tar_split() {
        let t = tempfile::tempdir().unwrap();
        let store = vfs_store(t.path());
        let mut src = image(&[layer_tar("f", b"original")], Compression::Gzip);
        copy_image(
            &mut src,
            Box::new(StorageDest::new(&store, vec!["localhost/x:1".into()]).unwrap()),
            &CopyImageOptions::default(),
            &Quiet,
        )
        .unwrap();
        let l = &store.layers().unwrap()[0];
        assert!(store.layer_diff_is_checked(&l.id));
        let s = StorageSource::open(&store, "localhost/x:1").unwrap();
        let m: ImageManifest = serde_json::from_slice(&s.manifest).unwrap();
        assert!(s.verifies_blob(&m.layers[0]));
        assert!(!s.verifies_blob(&m.config));
        // Recompressed from the store (the diff ID is not hashed again): same digests.
        for c in [Compression::Gzip, Compression::Zstd] {
            let mut s = StorageSource::open(&store, "localhost/x:1").unwrap();
            let lay = t.path().join(format!("ok-{c:?}"));
            let opts = CopyImageOptions {
                compression: Some(c),
                ..Default::default()
            };
            let out = copy_image(
                &mut s,
                Box::new(OciLayoutDest::new(&lay, Some("v")).unwrap()),
                &opts,
                &Quiet,
            )
            .unwrap();
            let cfg: ImageConfig = serde_json::from_slice(
                &std::fs::read(lay.join("blobs/sha256").join(out.config_digest.hex())).unwrap(),
            )
            .unwrap();
            assert_eq!(cfg.rootfs.diff_ids, [l.diff_digest.clone().unwrap()]);
        }
        // A file changed behind the store's back (same size) is caught, nothing written.
        let f = store.layer_diff_dir(&l.id).unwrap().join("f");
        std::fs::write(&f, b"tampered").unwrap();
        let mut s = StorageSource::open(&store, "localhost/x:1").unwrap();
        let lay = t.path().join("bad");
        let opts = CopyImageOptions {
            compression: Some(Compression::Gzip),
            ..Default::default()
        };
        let e = copy_image(
            &mut s,
            Box::new(OciLayoutDest::new(&lay, Some("v")).unwrap()),
            &opts,
            &Quiet,
        )
        .expect_err("a tampered layer is refused");
        assert!(format!("{e:?}").contains("checksum"), "{e:?}");
        assert!(OciLayoutSource::open(&lay, Some("v")).is_err());
    }

    /// A source that hands over spooled files (as commit does), possibly tampered with.
    struct SpoolingSource {
        inner: MemSource,
        dir: tempfile::TempDir,
        flip: bool,
    }
    impl ImageSource for SpoolingSource {
        fn manifest(&mut self, i: Option<&Digest>) -> Result<(Vec<u8>, String)> {
            self.inner.manifest(i)
        }
        fn write_blob(&mut self, desc: &Descriptor, out: &mut dyn Write) -> Result<()> {
            self.inner.write_blob(desc, out)
        }
        fn describe(&self) -> String {
            "spooling".into()
        }
        fn take_blob_file(&mut self, desc: &Descriptor) -> Option<tempfile::NamedTempFile> {
            let mut bytes = self.inner.blobs.get(&desc.digest)?.clone();
            if self.flip {
                bytes[600] ^= 1;
            }
            let mut f = tempfile::NamedTempFile::new_in(self.dir.path()).unwrap();
            f.write_all(&bytes).unwrap();
            Some(f)
        }
    }

    #[test]
    fn a_spooled_layer_is_verified_by_the_store_as_it_is_applied() {
        let t = tempfile::tempdir().unwrap();
        let store = vfs_store(t.path());
        for flip in [true, false] {
            let mut src = SpoolingSource {
                inner: image(&[layer_tar("a", b"1")], Compression::None),
                dir: tempfile::tempdir().unwrap(),
                flip,
            };
            let dst = Box::new(StorageDest::new(&store, vec!["localhost/s:1".into()]).unwrap());
            let r = copy_image(&mut src, dst, &CopyImageOptions::default(), &Quiet);
            if flip {
                let e = r.expect_err("a tampered spool is refused");
                assert!(format!("{e:?}").contains("igest"), "{e:?}");
                assert!(store.images().unwrap().is_empty());
                assert!(store.layers().unwrap().is_empty(), "no layer is left");
            } else {
                r.unwrap();
                let l = store.layers().unwrap();
                assert_eq!(l.len(), 1);
                let m: ImageManifest = serde_json::from_slice(&src.inner.manifest).unwrap();
                assert_eq!(l[0].diff_digest.as_ref(), Some(&m.layers[0].digest));
            }
        }
    }

    #[test]
    fn chain_ids_match_containers_image() {
        let d = Digest::of(b"layer");
        assert_eq!(chain_layer_id(None, &d), d.hex());
        let want = Digest::of(format!("{}+{}", "p", d.hex()).as_bytes());
        assert_eq!(chain_layer_id(Some("p"), &d), want.hex());
        assert_eq!(manifest_key(&d), format!("manifest-sha256:{}", d.hex()));
    }
}
