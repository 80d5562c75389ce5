//! `dir:` — containers/image's directory transport: `manifest.json`, blobs named by digest
//! hex, and a `version` file.
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::{
    bad_image, open_nofollow, persist_blob, read_bounded, ImageDestination, ImageSource, LayerInfo,
};
use crate::error::{IoResultExt, Result};
use crate::fsutil::atomic_write;
use crate::image::manifest::{self, Descriptor, MAX_MANIFEST_SIZE};
use crate::image::Digest;

/// The content of the `version` file.
pub const VERSION: &str = "Directory Transport Version: 1.1\n";

/// A `dir:` destination.
#[derive(Debug)]
pub struct DirDest {
    dir: PathBuf,
}

impl DirDest {
    /// Create `dir`, or empty it when it holds an earlier `dir:` image; refuse another
    /// non-empty directory.
    pub fn new(dir: &Path) -> Result<DirDest> {
        match fs::read_dir(dir) {
            Ok(entries) => {
                let entries: Vec<_> = entries
                    .collect::<io::Result<_>>()
                    .at("reading directory", dir)?;
                if !entries.is_empty() {
                    if !dir.join("version").is_file() {
                        return Err(bad_image(format!(
                            "non-empty directory {} is not a dir: image; refusing to overwrite it",
                            dir.display()
                        )));
                    }
                    for e in entries {
                        let p = e.path();
                        let md = fs::symlink_metadata(&p).at("reading metadata of", &p)?;
                        if md.is_dir() {
                            fs::remove_dir_all(&p).at("removing", &p)?;
                        } else {
                            fs::remove_file(&p).at("removing", &p)?;
                        }
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(dir).at("creating directory", dir)?
            }
            Err(e) => return Err(e).at("reading directory", dir),
        }
        atomic_write(&dir.join("version"), VERSION.as_bytes(), 0o644)?;
        Ok(DirDest {
            dir: dir.to_path_buf(),
        })
    }
}

impl ImageDestination for DirDest {
    fn staging_dir(&self) -> &Path {
        &self.dir
    }
    fn put_blob(
        &mut self,
        file: tempfile::NamedTempFile,
        desc: &Descriptor,
        _layer: Option<&LayerInfo>,
    ) -> Result<()> {
        persist_blob(file, &self.dir.join(desc.digest.hex()))
    }
    fn put_manifest(&mut self, data: &[u8], _media_type: &str) -> Result<()> {
        atomic_write(&self.dir.join("manifest.json"), data, 0o644)
    }
    fn put_instance_manifest(&mut self, data: &[u8], _media_type: &str) -> Result<()> {
        // containers/image's dir transport: `<hex>.manifest.json` for a list's instances.
        let name = format!("{}.manifest.json", Digest::of(data).hex());
        atomic_write(&self.dir.join(name), data, 0o644)
    }
    fn commit(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

/// A `dir:` source.
#[derive(Debug)]
pub struct DirSource {
    dir: PathBuf,
}

impl DirSource {
    /// Open the image in `dir`.
    pub fn open(dir: &Path) -> Result<DirSource> {
        let v = read_bounded(&dir.join("version"), 4096)?;
        if !String::from_utf8_lossy(&v).starts_with("Directory Transport Version: 1.") {
            return Err(bad_image(format!(
                "{}: unsupported directory transport version",
                dir.display()
            )));
        }
        Ok(DirSource {
            dir: dir.to_path_buf(),
        })
    }
}

impl ImageSource for DirSource {
    fn manifest(&mut self, instance: Option<&Digest>) -> Result<(Vec<u8>, String)> {
        let path = match instance {
            Some(d) => self.dir.join(format!("{}.manifest.json", d.hex())),
            None => self.dir.join("manifest.json"),
        };
        let data = read_bounded(&path, MAX_MANIFEST_SIZE)?;
        let mt = manifest::parse_manifest(&data, None)?
            .media_type()
            .to_string();
        Ok((data, mt))
    }
    fn write_blob(&mut self, desc: &Descriptor, out: &mut dyn Write) -> Result<()> {
        let path = self.dir.join(desc.digest.hex());
        let mut f = open_nofollow(&path)?;
        io::copy(&mut f, out).at("reading", &path)?;
        Ok(())
    }
    fn describe(&self) -> String {
        format!("dir:{}", self.dir.display())
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
    fn dir_roundtrip_and_overwrite_rules() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("d");
        let mut src = image(
            &[layer_tar("a", b"1"), layer_tar("b", b"2")],
            Compression::Gzip,
        );
        copy_image(
            &mut src,
            Box::new(DirDest::new(&d).unwrap()),
            &CopyImageOptions::default(),
            &Quiet,
        )
        .unwrap();
        assert_eq!(fs::read_to_string(d.join("version")).unwrap(), VERSION);
        assert_eq!(fs::read(d.join("manifest.json")).unwrap(), src.manifest);
        // rewrite over it
        copy_image(
            &mut src,
            Box::new(DirDest::new(&d).unwrap()),
            &CopyImageOptions::default(),
            &Quiet,
        )
        .unwrap();
        let mut s = DirSource::open(&d).unwrap();
        let d2 = t.path().join("d2");
        let o = copy_image(
            &mut s,
            Box::new(DirDest::new(&d2).unwrap()),
            &CopyImageOptions::default(),
            &Quiet,
        )
        .unwrap();
        assert_eq!(o.manifest, src.manifest);
        let other = t.path().join("other");
        fs::create_dir(&other).unwrap();
        fs::write(other.join("precious"), "x").unwrap();
        assert!(DirDest::new(&other).is_err());
        assert!(other.join("precious").exists());
    }
}
