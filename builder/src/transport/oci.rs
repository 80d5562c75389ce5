//! `oci:` (OCI image layout directory) and `oci-archive:` (a tar of one).
//!
//! ```text
//! <dir>/oci-layout          {"imageLayoutVersion":"1.0.0"}
//! <dir>/index.json          manifests, the image's name in org.opencontainers.image.ref.name
//! <dir>/blobs/sha256/<hex>
//! ```
//! Writing into an existing layout adds the blobs and replaces the index entry with the same
//! ref name; index.json is replaced atomically at commit.
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use super::{
    bad_image, open_nofollow, parent_dir, persist_blob, read_bounded, ImageDestination,
    ImageSource, LayerInfo, TransportError,
};
use crate::error::{Error, IoResultExt, Result};
use crate::fsutil::atomic_write;
use crate::image::manifest::{self, *};
use crate::image::Digest;

const LAYOUT_FILE: &str = "oci-layout";
const LAYOUT_JSON: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
const INDEX_FILE: &str = "index.json";

fn blob_path(dir: &Path, d: &Digest) -> PathBuf {
    dir.join("blobs").join(d.algorithm()).join(d.hex())
}

/// Read and strictly parse a layout's index.json (bounded).
pub fn read_index(dir: &Path) -> Result<ImageIndex> {
    let path = dir.join(INDEX_FILE);
    let data = read_bounded(&path, MAX_MANIFEST_SIZE)?;
    match manifest::parse_manifest(&data, None)
        .map_err(|e| e.context(format!("parsing {}", path.display())))?
    {
        Manifest::OciIndex(i) | Manifest::DockerList(i) => Ok(i),
        _ => Err(bad_image(format!(
            "{} is not an image index",
            path.display()
        ))),
    }
}

/// An OCI layout being written.
#[derive(Debug)]
pub struct OciLayoutDest {
    dir: PathBuf,
    reference: Option<String>,
    manifest: Option<Descriptor>,
}

impl OciLayoutDest {
    /// Open (creating) the layout at `dir`; the image will be named `reference`.
    pub fn new(dir: &Path, reference: Option<&str>) -> Result<OciLayoutDest> {
        let blobs = dir.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).at("creating directory", &blobs)?;
        let layout = dir.join(LAYOUT_FILE);
        match fs::read(&layout) {
            Ok(data) => {
                let v: serde_json::Value =
                    serde_json::from_slice(&data).map_err(|source| Error::Json {
                        op: "parsing".into(),
                        path: layout.clone(),
                        source,
                    })?;
                if v.get("imageLayoutVersion").and_then(|x| x.as_str()) != Some("1.0.0") {
                    return Err(bad_image(format!(
                        "{}: unsupported image layout version",
                        layout.display()
                    )));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                atomic_write(&layout, LAYOUT_JSON, 0o644)?
            }
            Err(e) => return Err(e).at("reading", &layout),
        }
        Ok(OciLayoutDest {
            dir: dir.to_path_buf(),
            reference: reference.map(String::from),
            manifest: None,
        })
    }

    fn write_index(&self) -> Result<()> {
        let Some(desc) = &self.manifest else {
            return Err(bad_image("no manifest was written"));
        };
        let mut index = if self.dir.join(INDEX_FILE).exists() {
            read_index(&self.dir)?
        } else {
            ImageIndex::new_oci()
        };
        if index.media_type.is_none() {
            index.media_type = Some(OCI_INDEX.to_string());
        }
        let mut desc = desc.clone();
        if let Some(r) = &self.reference {
            index
                .manifests
                .retain(|d| d.annotation(ANNOTATION_REF_NAME) != Some(r.as_str()));
            desc.annotations = Some(BTreeMap::from([(
                ANNOTATION_REF_NAME.to_string(),
                r.clone(),
            )]));
        } else {
            // An unnamed image replaces nothing but itself.
            index
                .manifests
                .retain(|d| !(d.digest == desc.digest && d.annotations.is_none()));
        }
        index.manifests.push(desc);
        atomic_write(
            &self.dir.join(INDEX_FILE),
            &manifest::to_json(&index),
            0o644,
        )
    }
}

impl ImageDestination for OciLayoutDest {
    fn staging_dir(&self) -> &Path {
        &self.dir
    }
    fn put_blob(
        &mut self,
        file: tempfile::NamedTempFile,
        desc: &Descriptor,
        _layer: Option<&LayerInfo>,
    ) -> Result<()> {
        persist_blob(file, &blob_path(&self.dir, &desc.digest))
    }
    fn put_manifest(&mut self, data: &[u8], media_type: &str) -> Result<()> {
        let digest = Digest::of(data);
        let path = blob_path(&self.dir, &digest);
        if !path.exists() {
            atomic_write(&path, data, 0o644)?;
        }
        self.manifest = Some(Descriptor::new(media_type, digest, data.len() as i64));
        Ok(())
    }
    fn put_instance_manifest(&mut self, data: &[u8], _media_type: &str) -> Result<()> {
        let path = blob_path(&self.dir, &Digest::of(data));
        if !path.exists() {
            atomic_write(&path, data, 0o644)?;
        }
        Ok(())
    }
    fn commit(self: Box<Self>) -> Result<()> {
        self.write_index()
    }
}

/// An image in an OCI layout.
#[derive(Debug)]
pub struct OciLayoutSource {
    dir: PathBuf,
    desc: Descriptor,
}

impl OciLayoutSource {
    /// Open the image named `reference` in the layout at `dir` (the only image when `None`).
    pub fn open(dir: &Path, reference: Option<&str>) -> Result<OciLayoutSource> {
        let index = read_index(dir)?;
        let desc = match reference {
            Some(r) => index
                .manifests
                .iter()
                .find(|d| d.annotation(ANNOTATION_REF_NAME) == Some(r))
                .ok_or_else(|| {
                    Error::from(TransportError::NoSuchImage(format!(
                        "oci:{}:{r}",
                        dir.display()
                    )))
                })?,
            None => match index.manifests.as_slice() {
                [one] => one,
                [] => {
                    return Err(
                        TransportError::NoSuchImage(format!("oci:{}", dir.display())).into(),
                    )
                }
                _ => {
                    return Err(bad_image(format!(
                        "more than one image in {}: name one with oci:PATH:REF",
                        dir.display()
                    )))
                }
            },
        }
        .clone();
        Ok(OciLayoutSource {
            dir: dir.to_path_buf(),
            desc,
        })
    }

    /// The index entry of the image.
    pub fn descriptor(&self) -> &Descriptor {
        &self.desc
    }
}

impl ImageSource for OciLayoutSource {
    fn manifest(&mut self, instance: Option<&Digest>) -> Result<(Vec<u8>, String)> {
        let (digest, mt) = match instance {
            Some(d) => (d.clone(), String::new()),
            None => (self.desc.digest.clone(), self.desc.media_type.clone()),
        };
        let path = blob_path(&self.dir, &digest);
        let data = read_bounded(&path, MAX_MANIFEST_SIZE)?;
        if Digest::of(&data) != digest
            || (instance.is_none() && self.desc.size != data.len() as i64)
        {
            return Err(TransportError::DigestMismatch {
                expected: digest,
                actual: Digest::of(&data),
                expected_size: self.desc.size,
                actual_size: data.len() as u64,
            }
            .into());
        }
        Ok((data, mt))
    }
    fn write_blob(&mut self, desc: &Descriptor, out: &mut dyn Write) -> Result<()> {
        let path = blob_path(&self.dir, &desc.digest);
        let mut f = open_nofollow(&path)?;
        io::copy(&mut f, out).at("reading", &path)?;
        Ok(())
    }
    fn describe(&self) -> String {
        format!("oci:{}", self.dir.display())
    }
    fn recorded_names(&self) -> Vec<String> {
        self.desc
            .annotation(ANNOTATION_REF_NAME)
            .map(String::from)
            .into_iter()
            .collect()
    }
}

/// An `oci-archive:` destination: a layout in a temporary directory, tarred into place at
/// commit (temp file + rename).
#[derive(Debug)]
pub struct OciArchiveDest {
    path: PathBuf,
    tmp: tempfile::TempDir,
    inner: OciLayoutDest,
}

impl OciArchiveDest {
    /// Write the archive `path`, naming the image `reference`.
    pub fn new(path: &Path, reference: Option<&str>) -> Result<OciArchiveDest> {
        let parent = parent_dir(path);
        let tmp = tempfile::Builder::new()
            .prefix(".oci-archive-")
            .tempdir_in(&parent)
            .at("creating temporary directory in", &parent)?;
        let inner = OciLayoutDest::new(tmp.path(), reference)?;
        Ok(OciArchiveDest {
            path: path.to_path_buf(),
            tmp,
            inner,
        })
    }
}

/// Tar the layout `dir` into `out` (sorted, fixed metadata).
pub fn tar_layout(dir: &Path, out: &mut dyn Write) -> Result<()> {
    let mut b = tar::Builder::new(out);
    b.mode(tar::HeaderMode::Deterministic);
    let mut entries: Vec<PathBuf> = Vec::new();
    for e in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
        let e = e.map_err(|e| Error::invalid(format!("walking {}: {e}", dir.display())))?;
        let name = e.file_name().to_string_lossy();
        if name.starts_with(".tmp-") {
            continue;
        }
        entries.push(
            e.path()
                .strip_prefix(dir)
                .map(Path::to_path_buf)
                .unwrap_or_default(),
        );
    }
    for rel in entries {
        let full = dir.join(&rel);
        let md = fs::symlink_metadata(&full).at("reading metadata of", &full)?;
        let mut h = tar::Header::new_ustar();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        if md.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            b.append_data(&mut h, &rel, io::empty())
                .at("writing archive entry", &rel)?;
        } else if md.is_file() {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(md.len());
            let f = open_nofollow(&full)?;
            b.append_data(&mut h, &rel, f)
                .at("writing archive entry", &rel)?;
        }
    }
    b.finish().at("finishing archive", dir)?;
    Ok(())
}

impl ImageDestination for OciArchiveDest {
    fn staging_dir(&self) -> &Path {
        self.inner.staging_dir()
    }
    fn put_blob(
        &mut self,
        file: tempfile::NamedTempFile,
        desc: &Descriptor,
        layer: Option<&LayerInfo>,
    ) -> Result<()> {
        self.inner.put_blob(file, desc, layer)
    }
    fn put_manifest(&mut self, data: &[u8], media_type: &str) -> Result<()> {
        self.inner.put_manifest(data, media_type)
    }
    fn put_instance_manifest(&mut self, data: &[u8], media_type: &str) -> Result<()> {
        self.inner.put_instance_manifest(data, media_type)
    }
    fn commit(self: Box<Self>) -> Result<()> {
        let this = *self;
        this.inner.write_index()?;
        let parent = parent_dir(&this.path);
        let mut out = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&parent)
            .at("creating temporary file in", &parent)?;
        {
            let mut w = io::BufWriter::new(out.as_file_mut());
            tar_layout(this.tmp.path(), &mut w)?;
            w.flush().at("writing", &this.path)?;
        }
        out.as_file().sync_all().at("syncing", out.path())?;
        {
            use std::os::unix::fs::PermissionsExt;
            out.as_file()
                .set_permissions(fs::Permissions::from_mode(0o644))
                .at("setting mode of", &this.path)?;
        }
        out.persist(&this.path)
            .map_err(|e| e.error)
            .at("renaming into", &this.path)?;
        Ok(())
    }
}

/// An `oci-archive:` source: the archive's layout files extracted into a temporary directory.
/// Only `oci-layout`, `index.json` and `blobs/<algo>/<hex>` regular files are taken.
#[derive(Debug)]
pub struct OciArchiveSource {
    _tmp: crate::scratch::ScratchDir,
    inner: OciLayoutSource,
}

impl OciArchiveSource {
    /// Open the image `reference` of the archive `path`.
    pub fn open(path: &Path, reference: Option<&str>) -> Result<OciArchiveSource> {
        let tmp = crate::scratch::ScratchDir::new("oci-archive")?;
        extract_layout(path, tmp.path())?;
        let inner = OciLayoutSource::open(tmp.path(), reference)?;
        Ok(OciArchiveSource { _tmp: tmp, inner })
    }

    /// The index entry of the image.
    pub fn descriptor(&self) -> &Descriptor {
        self.inner.descriptor()
    }
}

fn layout_member(name: &Path) -> Option<PathBuf> {
    let parts: Vec<&str> = name
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect();
    // Any `..`, root or odd component makes the entry unusable.
    if name.components().any(|c| {
        matches!(
            c,
            Component::ParentDir | Component::RootDir | Component::Prefix(_)
        )
    }) {
        return None;
    }
    match parts.as_slice() {
        [LAYOUT_FILE] | [INDEX_FILE] => Some(PathBuf::from(parts[0])),
        ["blobs", algo, hex] => {
            Digest::parse(&format!("{algo}:{hex}")).ok()?;
            Some(PathBuf::from("blobs").join(algo).join(hex))
        }
        _ => None,
    }
}

fn extract_layout(archive: &Path, dir: &Path) -> Result<()> {
    let f = fs::File::open(archive).at("opening", archive)?;
    let mut ar = tar::Archive::new(io::BufReader::new(f));
    for entry in ar.entries().at("reading", archive)? {
        let mut entry = entry.at("reading", archive)?;
        let name = entry
            .path()
            .at("reading entry name in", archive)?
            .into_owned();
        let Some(rel) = layout_member(&name) else {
            continue;
        };
        if !rel.starts_with("blobs") && entry.size() > MAX_MANIFEST_SIZE {
            // index.json and oci-layout are read whole: refuse a huge one before writing it (D37).
            return Err(bad_image(format!(
                "{}: {} is larger than {MAX_MANIFEST_SIZE} bytes",
                archive.display(),
                name.display()
            )));
        }
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(bad_image(format!(
                "{}: {} is not a regular file",
                archive.display(),
                name.display()
            )));
        }
        let target = dir.join(&rel);
        if let Some(p) = target.parent() {
            fs::create_dir_all(p).at("creating directory", p)?;
        }
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&target)
            .at("creating", &target)?;
        io::copy(&mut entry.by_ref().take(u64::MAX), &mut out).at("extracting", &target)?;
    }
    Ok(())
}

impl ImageSource for OciArchiveSource {
    fn manifest(&mut self, instance: Option<&Digest>) -> Result<(Vec<u8>, String)> {
        self.inner.manifest(instance)
    }
    fn write_blob(&mut self, desc: &Descriptor, out: &mut dyn Write) -> Result<()> {
        self.inner.write_blob(desc, out)
    }
    fn describe(&self) -> String {
        "oci-archive".to_string()
    }
    fn recorded_names(&self) -> Vec<String> {
        self.inner.recorded_names()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::Compression;
    use crate::report::Quiet;
    use crate::transport::testutil::*;
    use crate::transport::{copy_image, CopyImageOptions};

    #[test]
    fn layout_roundtrip_and_ref_replacement() {
        let t = tempfile::tempdir().unwrap();
        let lay = t.path().join("lay");
        let mut src = image(&[layer_tar("a", b"hello")], Compression::Gzip);
        let r = Collect::default();
        let out = copy_image(
            &mut src,
            Box::new(OciLayoutDest::new(&lay, Some("v1")).unwrap()),
            &CopyImageOptions::default(),
            &r,
        )
        .unwrap();
        // unchanged → byte-identical manifest
        assert_eq!(out.manifest, src.manifest);
        let lines = r.0.lock().unwrap().clone();
        assert!(
            lines.iter().any(|l| l.starts_with("Copying blob sha256:")),
            "{lines:?}"
        );
        assert!(lines
            .iter()
            .any(|l| l.starts_with("Copying config sha256:")));
        assert!(lines.contains(&"Writing manifest to image destination".to_string()));
        // second image under another ref, then replace v1
        let mut src2 = image(&[layer_tar("b", b"x")], Compression::None);
        copy_image(
            &mut src2,
            Box::new(OciLayoutDest::new(&lay, Some("v2")).unwrap()),
            &CopyImageOptions::default(),
            &Quiet,
        )
        .unwrap();
        let mut src3 = image(&[layer_tar("c", b"y")], Compression::None);
        let o3 = copy_image(
            &mut src3,
            Box::new(OciLayoutDest::new(&lay, Some("v1")).unwrap()),
            &CopyImageOptions::default(),
            &Quiet,
        )
        .unwrap();
        let idx = read_index(&lay).unwrap();
        assert_eq!(idx.manifests.len(), 2);
        let v1 = idx
            .manifests
            .iter()
            .find(|d| d.annotation(ANNOTATION_REF_NAME) == Some("v1"))
            .unwrap();
        assert_eq!(v1.digest, o3.manifest_digest);
        // read back
        let mut s = OciLayoutSource::open(&lay, Some("v2")).unwrap();
        let t2 = tempfile::tempdir().unwrap();
        let o = copy_image(
            &mut s,
            Box::new(OciLayoutDest::new(t2.path(), Some("z")).unwrap()),
            &CopyImageOptions::default(),
            &Quiet,
        )
        .unwrap();
        assert_eq!(o.manifest, src2.manifest);
        assert!(OciLayoutSource::open(&lay, Some("nope")).is_err());
        assert!(
            OciLayoutSource::open(&lay, None).is_err(),
            "two images, no ref"
        );
    }

    #[test]
    fn recompression_and_format_conversion() {
        let t = tempfile::tempdir().unwrap();
        let tarball = layer_tar("f", &vec![7u8; 50_000]);
        let mut src = image(std::slice::from_ref(&tarball), Compression::None);
        let opts = CopyImageOptions {
            compression: Some(Compression::Gzip),
            format: Some(crate::builder::ImageFormat::Docker),
            ..Default::default()
        };
        let out = copy_image(
            &mut src,
            Box::new(OciLayoutDest::new(t.path(), None).unwrap()),
            &opts,
            &Quiet,
        )
        .unwrap();
        let Manifest::Docker(m) = parse_manifest(&out.manifest, None).unwrap() else {
            panic!()
        };
        assert_eq!(m.layers[0].media_type, DOCKER_LAYER_GZIP);
        assert_eq!(m.config.media_type, DOCKER_CONFIG);
        let blob = fs::read(blob_path(t.path(), &m.layers[0].digest)).unwrap();
        assert_eq!(Digest::of(&blob), m.layers[0].digest);
        assert_eq!(blob.len() as i64, m.layers[0].size);
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&blob[..])
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, tarball);
        // config bytes unchanged by format conversion
        let src_m: ImageManifest = serde_json::from_slice(&src.manifest).unwrap();
        assert_eq!(m.config.digest, src_m.config.digest);
    }

    #[test]
    fn corrupt_blob_is_rejected_and_not_stored() {
        let t = tempfile::tempdir().unwrap();
        let mut src = image(&[layer_tar("a", b"hello")], Compression::Gzip);
        let m: ImageManifest = serde_json::from_slice(&src.manifest).unwrap();
        let d = m.layers[0].digest.clone();
        src.blobs.get_mut(&d).unwrap().push(0);
        let err = copy_image(
            &mut src,
            Box::new(OciLayoutDest::new(t.path(), None).unwrap()),
            &CopyImageOptions::default(),
            &Quiet,
        )
        .unwrap_err();
        assert!(
            matches!(err, Error::Transport(TransportError::DigestMismatch { .. })),
            "{err:?}"
        );
        assert!(!blob_path(t.path(), &d).exists());
        assert!(!t.path().join(INDEX_FILE).exists());
        // and when recompressing
        let t2 = tempfile::tempdir().unwrap();
        let opts = CopyImageOptions {
            compression: Some(Compression::Zstd),
            ..Default::default()
        };
        assert!(copy_image(
            &mut src,
            Box::new(OciLayoutDest::new(t2.path(), None).unwrap()),
            &opts,
            &Quiet
        )
        .is_err());
        assert!(!t2.path().join(INDEX_FILE).exists());
        let left: Vec<_> = fs::read_dir(t2.path().join("blobs/sha256"))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn wrong_diff_id_is_rejected() {
        let t = tempfile::tempdir().unwrap();
        let mut src = image(&[layer_tar("a", b"hello")], Compression::None);
        // Rewrite the config with a wrong diff_id.
        let mut m: ImageManifest = serde_json::from_slice(&src.manifest).unwrap();
        let mut cfg: crate::image::ImageConfig =
            serde_json::from_slice(&src.blobs[&m.config.digest]).unwrap();
        cfg.rootfs.diff_ids[0] = Digest::of(b"other");
        let cb = crate::image::convert::to_oci(&cfg).0;
        m.config = Descriptor::new(OCI_CONFIG, Digest::of(&cb), cb.len() as i64);
        src.blobs.insert(m.config.digest.clone(), cb);
        src.manifest = to_json(&m);
        let err = copy_image(
            &mut src,
            Box::new(OciLayoutDest::new(t.path(), None).unwrap()),
            &CopyImageOptions::default(),
            &Quiet,
        )
        .unwrap_err();
        assert!(
            matches!(err, Error::Transport(TransportError::DiffIdMismatch { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn archive_roundtrip_ignores_foreign_members() {
        let t = tempfile::tempdir().unwrap();
        let ar = t.path().join("img.tar");
        let mut src = image(&[layer_tar("a", b"hello")], Compression::Gzip);
        copy_image(
            &mut src,
            Box::new(OciArchiveDest::new(&ar, Some("latest")).unwrap()),
            &CopyImageOptions::default(),
            &Quiet,
        )
        .unwrap();
        let mut s = OciArchiveSource::open(&ar, Some("latest")).unwrap();
        let t2 = tempfile::tempdir().unwrap();
        let o = copy_image(
            &mut s,
            Box::new(OciLayoutDest::new(t2.path(), None).unwrap()),
            &CopyImageOptions::default(),
            &Quiet,
        )
        .unwrap();
        assert_eq!(o.manifest, src.manifest);
        for (name, ok) in [
            ("../x", false),
            ("blobs/sha256/../../x", false),
            ("./index.json", true),
            ("blobs/sha256/abc", false),
            ("etc/passwd", false),
        ] {
            assert_eq!(layout_member(Path::new(name)).is_some(), ok, "{name}");
        }
        // an oversized index.json is refused while extracting (D37)
        let big = t.path().join("big.tar");
        {
            let mut b = tar::Builder::new(fs::File::create(&big).unwrap());
            let data = vec![b' '; (MAX_MANIFEST_SIZE + 1) as usize];
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, "index.json", &data[..]).unwrap();
            b.finish().unwrap();
        }
        let err = OciArchiveSource::open(&big, None).unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
        fs::remove_file(&big).unwrap();
        // nothing left next to the archive
        let names: Vec<_> = fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("img.tar")]);
    }
}
