//! `docker-archive:` — the `docker save` format: `manifest.json`
//! (`[{"Config":"<hex>.json","RepoTags":[…],"Layers":["<hex>.tar",…]}]`), the config as
//! `<hex>.json`, uncompressed layers as `<diff_id hex>.tar`, and `repositories`.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{bad_image, parent_dir, ImageDestination, ImageSource, LayerInfo, TransportError};
use crate::archive::Compression;
use crate::error::{Error, IoResultExt, Result};
use crate::image::manifest::{self, *};
use crate::image::{Digest, ImageConfig, Sha256Writer};
use crate::reference::{ArchiveSelector, NamedRef};

/// One entry of `manifest.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ArchiveItem {
    /// The config file's name.
    pub config: String,
    /// `name:tag` entries.
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    /// The layer files' names, bottom first.
    pub layers: Vec<String>,
    /// Unknown fields (`LayerSources`, `Parent`), kept.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// A `docker-archive:` destination (one image per archive).
pub struct DockerArchiveDest {
    path: PathBuf,
    staging: PathBuf,
    tar: tar::Builder<fs::File>,
    tmp_path: tempfile::TempPath,
    tag: Option<NamedRef>,
    layers: Vec<String>,
    config: Option<String>,
    written: HashSet<String>,
}

impl std::fmt::Debug for DockerArchiveDest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerArchiveDest")
            .field("path", &self.path)
            .finish()
    }
}

impl DockerArchiveDest {
    /// Write `path`, tagging the image `tag`.
    pub fn new(path: &Path, tag: Option<NamedRef>) -> Result<DockerArchiveDest> {
        let staging = parent_dir(path);
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&staging)
            .at("creating temporary file in", &staging)?;
        let (file, tmp_path) = tmp.into_parts();
        Ok(DockerArchiveDest {
            path: path.to_path_buf(),
            staging,
            tar: tar::Builder::new(file),
            tmp_path,
            tag,
            layers: Vec::new(),
            config: None,
            written: HashSet::new(),
        })
    }

    fn append(&mut self, name: &str, size: u64, data: &mut dyn Read) -> Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_size(size);
        self.tar
            .append_data(&mut h, name, data)
            .at("writing archive member", &self.path)?;
        Ok(())
    }
}

impl ImageDestination for DockerArchiveDest {
    fn staging_dir(&self) -> &Path {
        &self.staging
    }
    fn required_compression(&self) -> Option<Compression> {
        Some(Compression::None)
    }
    fn supported_manifest_types(&self) -> &'static [&'static str] {
        &[DOCKER_MANIFEST]
    }
    fn put_blob(
        &mut self,
        mut file: tempfile::NamedTempFile,
        desc: &Descriptor,
        layer: Option<&LayerInfo>,
    ) -> Result<()> {
        let name = match layer {
            Some(_) => format!("{}.tar", desc.digest.hex()),
            None => format!("{}.json", desc.digest.hex()),
        };
        if self.written.insert(name.clone()) {
            self.append(&name, desc.size as u64, file.as_file_mut())?;
        }
        match layer {
            Some(_) => self.layers.push(name),
            None => self.config = Some(name),
        }
        Ok(())
    }
    fn put_manifest(&mut self, _data: &[u8], _media_type: &str) -> Result<()> {
        Ok(())
    }
    fn commit(self: Box<Self>) -> Result<()> {
        let mut this = *self;
        let config = this
            .config
            .clone()
            .ok_or_else(|| bad_image("no config was written"))?;
        let tags: Vec<String> = this.tag.iter().map(|t| t.to_string()).collect();
        let item = ArchiveItem {
            config,
            repo_tags: Some(tags),
            layers: this.layers.clone(),
            other: BTreeMap::new(),
        };
        let m = manifest::to_json(&vec![item]);
        this.append("manifest.json", m.len() as u64, &mut &m[..])?;
        if let (Some(tag), Some(top)) = (&this.tag, this.layers.last()) {
            let top_hex = top.trim_end_matches(".tar").to_string();
            let repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::from([(
                tag.repository(),
                BTreeMap::from([(tag.tag.clone().unwrap_or_else(|| "latest".into()), top_hex)]),
            )]);
            let r = manifest::to_json(&repos);
            this.append("repositories", r.len() as u64, &mut &r[..])?;
        }
        let file = this.tar.into_inner().at("finishing archive", &this.path)?;
        file.sync_all().at("syncing", &this.path)?;
        this.tmp_path
            .persist(&this.path)
            .map_err(|e| e.error)
            .at("renaming into", &this.path)?;
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct Member {
    offset: u64,
    size: u64,
    link: Option<String>,
}

/// A `docker-archive:` source.
#[derive(Debug)]
pub struct DockerArchiveSource {
    path: PathBuf,
    file: fs::File,
    manifest: Vec<u8>,
    /// blob digest → (member offset, size, decompress?)
    blobs: HashMap<Digest, (u64, u64, Compression)>,
    repo_tags: Vec<String>,
}

fn clean_name(name: &str) -> Option<String> {
    let p = Path::new(name);
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            _ => return None,
        }
    }
    out.to_str().map(String::from)
}

impl DockerArchiveSource {
    /// Open the image `selector` picks (the only one when `None`) in the archive `path`.
    pub fn open(path: &Path, selector: Option<&ArchiveSelector>) -> Result<DockerArchiveSource> {
        let file = fs::File::open(path).at("opening", path)?;
        let mut members: HashMap<String, Member> = HashMap::new();
        {
            let mut ar = tar::Archive::new(&file);
            for e in ar.entries().at("reading", path)? {
                let e = e.at("reading", path)?;
                let raw = e
                    .path()
                    .at("reading entry name in", path)?
                    .to_string_lossy()
                    .into_owned();
                let Some(name) = clean_name(&raw) else {
                    continue;
                };
                let link = match e.header().entry_type() {
                    tar::EntryType::Symlink | tar::EntryType::Link => {
                        let l = e
                            .link_name()
                            .at("reading link in", path)?
                            .map(|l| l.to_string_lossy().into_owned());
                        let base = if e.header().entry_type() == tar::EntryType::Symlink {
                            Path::new(&name)
                                .parent()
                                .map(|p| p.to_string_lossy().into_owned())
                                .unwrap_or_default()
                        } else {
                            String::new()
                        };
                        l.and_then(|l| clean_name(format!("{base}/{l}").trim_start_matches('/')))
                    }
                    tar::EntryType::Regular | tar::EntryType::Continuous => None,
                    _ => continue,
                };
                members.insert(
                    name,
                    Member {
                        offset: e.raw_file_position(),
                        size: e.size(),
                        link,
                    },
                );
            }
        }
        let resolve = |name: &str| -> Result<Member> {
            // Names in manifest.json must be plain relative paths (D36); only links inside
            // the archive may use `..`, resolved lexically within it.
            if Path::new(name)
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
            {
                return Err(bad_image(format!(
                    "{}: invalid member name {name:?} in manifest.json",
                    path.display()
                )));
            }
            let mut n = clean_name(name)
                .ok_or_else(|| bad_image(format!("invalid member name {name:?}")))?;
            for _ in 0..16 {
                let m = members
                    .get(&n)
                    .ok_or_else(|| bad_image(format!("{}: no member {n:?}", path.display())))?;
                match &m.link {
                    None => return Ok(m.clone()),
                    Some(l) => n = l.clone(),
                }
            }
            Err(bad_image(format!(
                "{}: too many links resolving {name:?}",
                path.display()
            )))
        };
        let read_member = |m: &Member, limit: u64| -> Result<Vec<u8>> {
            if m.size > limit {
                return Err(bad_image(format!(
                    "{}: member larger than {limit} bytes",
                    path.display()
                )));
            }
            let mut f = &file;
            f.seek(SeekFrom::Start(m.offset)).at("reading", path)?;
            let mut buf = Vec::with_capacity(m.size as usize);
            f.take(m.size).read_to_end(&mut buf).at("reading", path)?;
            Ok(buf)
        };
        let mdata = read_member(&resolve("manifest.json")?, MAX_MANIFEST_SIZE)?;
        manifest::check_no_duplicate_keys(&mdata).map_err(|source| Error::Json {
            op: "parsing".into(),
            path: path.join("manifest.json"),
            source,
        })?;
        let items: Vec<ArchiveItem> =
            serde_json::from_slice(&mdata).map_err(|source| Error::Json {
                op: "parsing".into(),
                path: path.join("manifest.json"),
                source,
            })?;
        let item = match selector {
            None if items.len() == 1 => &items[0],
            None => {
                return Err(bad_image(format!(
                    "{} holds {} images: select one with :NAME:TAG or :@N",
                    path.display(),
                    items.len()
                )))
            }
            Some(ArchiveSelector::Index(i)) => items.get(*i).ok_or_else(|| {
                Error::from(TransportError::NoSuchImage(format!(
                    "docker-archive:{}:@{i}",
                    path.display()
                )))
            })?,
            Some(ArchiveSelector::Named(n)) => {
                let want = n.to_string();
                items
                    .iter()
                    .find(|it| {
                        it.repo_tags.iter().flatten().any(|t| {
                            crate::reference::parse_named(t)
                                .map(|x| x.with_default_tag().to_string())
                                .ok()
                                .as_deref()
                                == Some(&want)
                        })
                    })
                    .ok_or_else(|| {
                        Error::from(TransportError::NoSuchImage(format!(
                            "docker-archive:{}:{}",
                            path.display(),
                            n.familiar()
                        )))
                    })?
            }
        };
        let config_m = resolve(&item.config)?;
        let config = read_member(&config_m, MAX_MANIFEST_SIZE)?;
        let cfg: ImageConfig = serde_json::from_slice(&config).map_err(|source| Error::Json {
            op: "parsing".into(),
            path: path.join(&item.config),
            source,
        })?;
        if cfg.rootfs.diff_ids.len() != item.layers.len() {
            return Err(bad_image(format!(
                "{}: {} layers but {} diff_ids",
                path.display(),
                item.layers.len(),
                cfg.rootfs.diff_ids.len()
            )));
        }
        let mut blobs = HashMap::new();
        let config_digest = Digest::of(&config);
        blobs.insert(
            config_digest.clone(),
            (config_m.offset, config_m.size, Compression::None),
        );
        let mut layers = Vec::new();
        for (i, l) in item.layers.iter().enumerate() {
            let m = resolve(l)?;
            let mut head = [0u8; 8];
            let mut f = &file;
            f.seek(SeekFrom::Start(m.offset)).at("reading", path)?;
            let n = f.take(m.size.min(8)).read(&mut head).at("reading", path)?;
            let c = Compression::detect(&head[..n]);
            let desc = match c {
                Compression::None => Descriptor::new(
                    DOCKER_LAYER_TAR,
                    cfg.rootfs.diff_ids[i].clone(),
                    m.size as i64,
                ),
                Compression::Gzip => {
                    f.seek(SeekFrom::Start(m.offset)).at("reading", path)?;
                    let mut w = Sha256Writer::new(io::sink());
                    io::copy(&mut f.take(m.size), &mut w).at("reading", path)?;
                    let (d, n, _) = w.finish();
                    Descriptor::new(DOCKER_LAYER_GZIP, d, n as i64)
                }
                other => {
                    return Err(bad_image(format!(
                        "{}: layer {l} is {other:?}-compressed, which is not supported here",
                        path.display()
                    )))
                }
            };
            blobs.insert(desc.digest.clone(), (m.offset, m.size, Compression::None));
            layers.push(desc);
        }
        let m = ImageManifest {
            schema_version: 2,
            media_type: Some(DOCKER_MANIFEST.to_string()),
            artifact_type: None,
            config: Descriptor::new(DOCKER_CONFIG, config_digest, config.len() as i64),
            layers,
            subject: None,
            annotations: None,
            other: BTreeMap::new(),
        };
        Ok(DockerArchiveSource {
            path: path.to_path_buf(),
            file,
            manifest: manifest::to_json(&m),
            blobs,
            repo_tags: item.repo_tags.clone().unwrap_or_default(),
        })
    }

    /// The `RepoTags` of the selected image.
    pub fn repo_tags(&self) -> &[String] {
        &self.repo_tags
    }
}

impl ImageSource for DockerArchiveSource {
    fn manifest(&mut self, instance: Option<&Digest>) -> Result<(Vec<u8>, String)> {
        if instance.is_some() {
            return Err(bad_image("docker-archive has no manifest lists"));
        }
        Ok((self.manifest.clone(), DOCKER_MANIFEST.to_string()))
    }
    fn write_blob(&mut self, desc: &Descriptor, out: &mut dyn Write) -> Result<()> {
        let (offset, size, _) = *self.blobs.get(&desc.digest).ok_or_else(|| {
            bad_image(format!("{}: no blob {}", self.path.display(), desc.digest))
        })?;
        self.file
            .seek(SeekFrom::Start(offset))
            .at("reading", &self.path)?;
        io::copy(&mut (&self.file).take(size), out).at("reading", &self.path)?;
        Ok(())
    }
    fn describe(&self) -> String {
        format!("docker-archive:{}", self.path.display())
    }
    fn recorded_names(&self) -> Vec<String> {
        self.repo_tags.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Quiet;
    use crate::transport::oci::{OciLayoutDest, OciLayoutSource};
    use crate::transport::testutil::*;
    use crate::transport::{copy_image, CopyImageOptions};

    #[test]
    fn archive_roundtrip_decompresses_and_tags() {
        let t = tempfile::tempdir().unwrap();
        let ar = t.path().join("a.tar");
        let l1 = layer_tar("a", b"1");
        let mut src = image(&[l1.clone(), layer_tar("b", b"2")], Compression::Gzip);
        let tag = crate::reference::parse_named("app:1").unwrap();
        copy_image(
            &mut src,
            Box::new(DockerArchiveDest::new(&ar, Some(tag.clone())).unwrap()),
            &CopyImageOptions::default(),
            &Quiet,
        )
        .unwrap();
        let mut s = DockerArchiveSource::open(
            &ar,
            Some(&ArchiveSelector::Named(tag.clone().with_default_tag())),
        )
        .unwrap();
        assert_eq!(s.repo_tags(), &["docker.io/library/app:1".to_string()]);
        let (m, _) = s.manifest(None).unwrap();
        let Manifest::Docker(m) = parse_manifest(&m, None).unwrap() else {
            panic!()
        };
        assert_eq!(m.layers[0].digest, Digest::of(&l1));
        assert_eq!(m.layers[0].media_type, DOCKER_LAYER_TAR);
        let lay = t.path().join("lay");
        copy_image(
            &mut s,
            Box::new(OciLayoutDest::new(&lay, Some("x")).unwrap()),
            &CopyImageOptions::default(),
            &Quiet,
        )
        .unwrap();
        OciLayoutSource::open(&lay, Some("x")).unwrap();
        assert!(DockerArchiveSource::open(&ar, Some(&ArchiveSelector::Index(0))).is_ok());
        assert!(DockerArchiveSource::open(&ar, Some(&ArchiveSelector::Index(1))).is_err());
        assert!(DockerArchiveSource::open(
            &ar,
            Some(&ArchiveSelector::Named(
                crate::reference::parse_named("other:1").unwrap()
            ))
        )
        .is_err());
        assert_eq!(clean_name("./a/../b"), Some("b".into()));
        // manifest.json naming a member outside the archive's namespace is refused
        let evil = t.path().join("evil.tar");
        let mut b = tar::Builder::new(fs::File::create(&evil).unwrap());
        let m = br#"[{"Config":"../../etc/passwd","RepoTags":null,"Layers":[]}]"#;
        let mut h = tar::Header::new_ustar();
        h.set_size(m.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, "manifest.json", &m[..]).unwrap();
        b.finish().unwrap();
        drop(b);
        let err = DockerArchiveSource::open(&evil, None).unwrap_err();
        assert!(err.to_string().contains("invalid member name"), "{err}");
        assert_eq!(clean_name("../b"), None);
    }
}
