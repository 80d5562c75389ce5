//! Where everything lives, and small filesystem helpers for the store.
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;

use crate::error::{IoResultExt, Result};
use crate::store::DriverKind;

/// The store's paths for one driver.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `<root>`.
    pub root: PathBuf,
    /// `<runroot>`.
    pub run_root: PathBuf,
    /// The driver.
    pub driver: DriverKind,
}

impl Paths {
    fn prefixed(&self, base: &Path, what: &str) -> PathBuf {
        base.join(format!("{}-{}", self.driver.name(), what))
    }
    /// `<root>/storage.lock`.
    pub fn storage_lock(&self) -> PathBuf {
        self.root.join("storage.lock")
    }
    /// `<root>/userns.lock`.
    pub fn userns_lock(&self) -> PathBuf {
        self.root.join("userns.lock")
    }
    /// `<root>/<driver>-layers`.
    pub fn layers_dir(&self) -> PathBuf {
        self.prefixed(&self.root, "layers")
    }
    /// `<root>/<driver>-layers/layers.json`.
    pub fn layers_json(&self) -> PathBuf {
        self.layers_dir().join("layers.json")
    }
    /// `<root>/<driver>-layers/volatile-layers.json` (written by newer containers/storage).
    pub fn volatile_layers_json(&self) -> PathBuf {
        self.layers_dir().join("volatile-layers.json")
    }
    /// `<root>/<driver>-layers/layers.lock`.
    pub fn layers_lock(&self) -> PathBuf {
        self.layers_dir().join("layers.lock")
    }
    /// `<root>/<driver>-layers/<id>.tar-split.gz`.
    pub fn tar_split(&self, id: &str) -> PathBuf {
        self.layers_dir().join(format!("{id}.tar-split.gz"))
    }
    /// `<root>/<driver>-layers/<id>` (layer big data; rarely present).
    pub fn layer_data_dir(&self, id: &str) -> PathBuf {
        self.layers_dir().join(id)
    }
    /// `<runroot>/<driver>-layers`.
    pub fn run_layers_dir(&self) -> PathBuf {
        self.prefixed(&self.run_root, "layers")
    }
    /// `<runroot>/<driver>-layers/mountpoints.json`.
    pub fn mountpoints_json(&self) -> PathBuf {
        self.run_layers_dir().join("mountpoints.json")
    }
    /// `<runroot>/<driver>-layers/mountpoints.lock`.
    pub fn mountpoints_lock(&self) -> PathBuf {
        self.run_layers_dir().join("mountpoints.lock")
    }
    /// `<root>/<driver>-images`.
    pub fn images_dir(&self) -> PathBuf {
        self.prefixed(&self.root, "images")
    }
    /// `<root>/<driver>-images/images.json`.
    pub fn images_json(&self) -> PathBuf {
        self.images_dir().join("images.json")
    }
    /// `<root>/<driver>-images/images.lock`.
    pub fn images_lock(&self) -> PathBuf {
        self.images_dir().join("images.lock")
    }
    /// `<root>/<driver>-images/<id>`.
    pub fn image_dir(&self, id: &str) -> PathBuf {
        self.images_dir().join(id)
    }
    /// `<root>/<driver>-containers`.
    pub fn containers_dir(&self) -> PathBuf {
        self.prefixed(&self.root, "containers")
    }
    /// `<root>/<driver>-containers/containers.json`.
    pub fn containers_json(&self) -> PathBuf {
        self.containers_dir().join("containers.json")
    }
    /// `<root>/<driver>-containers/volatile-containers.json` (newer containers/storage).
    pub fn volatile_containers_json(&self) -> PathBuf {
        self.containers_dir().join("volatile-containers.json")
    }
    /// `<root>/<driver>-containers/containers.lock`.
    pub fn containers_lock(&self) -> PathBuf {
        self.containers_dir().join("containers.lock")
    }
    /// `<runroot>/<driver>-containers`.
    pub fn run_containers_dir(&self) -> PathBuf {
        self.prefixed(&self.run_root, "containers")
    }
    /// `<runroot>/<driver>-locks`.
    pub fn run_locks_dir(&self) -> PathBuf {
        self.prefixed(&self.run_root, "locks")
    }
    /// The graph driver's home: `<root>/overlay` or `<root>/vfs`.
    pub fn driver_home(&self) -> PathBuf {
        self.root.join(self.driver.name())
    }
}

/// `mkdir -p` with `mode` for the directories it creates (umask-independent); existing
/// directories are left alone, like Go's `os.MkdirAll` (which is umask-dependent, but
/// containers/storage's modes are all within 0755).
pub fn mkdir_all(dir: &Path, mode: u32) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut cur = dir;
    while !cur.exists() {
        missing.push(cur.to_path_buf());
        match cur.parent() {
            Some(p) => cur = p,
            None => break,
        }
    }
    for d in missing.iter().rev() {
        match fs::DirBuilder::new().mode(mode).create(d) {
            Ok(()) => {
                fs::set_permissions(d, fs::Permissions::from_mode(mode)).at("setting mode of", d)?
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).at("creating directory", d),
        }
    }
    Ok(())
}

/// Create one directory with exactly `mode` (after umask, fixed with chmod).
pub fn mkdir_mode(dir: &Path, mode: u32) -> Result<()> {
    fs::DirBuilder::new()
        .mode(mode)
        .create(dir)
        .at("creating directory", dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode)).at("setting mode of", dir)
}

/// Remove a tree; missing is fine. Directories without write permission (0555 layer roots,
/// read-only dirs inside layers) are made writable and the removal retried.
pub fn remove_all(p: &Path) -> Result<()> {
    match fs::symlink_metadata(p) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).at("inspecting", p),
        Ok(m) if !m.is_dir() => {
            return fs::remove_file(p)
                .or_else(ignore_not_found)
                .at("removing", p)
        }
        Ok(_) => {}
    }
    match fs::remove_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) => {
            make_dirs_writable(p);
            fs::remove_dir_all(p)
                .or_else(ignore_not_found)
                .at("removing", p)
        }
    }
}

fn ignore_not_found(e: std::io::Error) -> std::io::Result<()> {
    if e.kind() == std::io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

fn make_dirs_writable(p: &Path) {
    if let Ok(m) = fs::symlink_metadata(p) {
        if m.is_dir() {
            let mode = m.permissions().mode();
            let _ = fs::set_permissions(p, fs::Permissions::from_mode((mode | 0o700) & 0o7777));
            if let Ok(rd) = fs::read_dir(p) {
                for e in rd.flatten() {
                    make_dirs_writable(&e.path());
                }
            }
        }
    }
}

/// containers/storage's `makeBigDataBaseName`: keys made only of `[0-9a-z.]` are used as
/// they are, anything else becomes `=` + standard base64 of the key.
pub fn big_data_base_name(key: &str) -> String {
    if !key.is_empty()
        && key
            .bytes()
            .all(|b| b == b'.' || b.is_ascii_digit() || b.is_ascii_lowercase())
    {
        key.to_string()
    } else {
        format!(
            "={}",
            base64::engine::general_purpose::STANDARD.encode(key.as_bytes())
        )
    }
}

/// Whether `id` is a 64-character lower-case hex ID (safe as a path component).
pub fn is_full_id(id: &str) -> bool {
    id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A random ID as containers/storage's `stringid.GenerateRandomID` makes them: 64 hex, and
/// never all-numeric in its first 12 characters.
pub fn random_id() -> String {
    loop {
        let id = crate::fsutil::random_id();
        if !id[..12].bytes().all(|b| b.is_ascii_digit()) {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_data_names() {
        // Observed in a buildah 1.28 store.
        let cases = [
            ("manifest", "manifest"),
            (
                "manifest-sha256:f1286c0e06b51e534035445925335a30d3fde293b369ea7d35a16420e79db348",
                "=bWFuaWZlc3Qtc2hhMjU2OmYxMjg2YzBlMDZiNTFlNTM0MDM1NDQ1OTI1MzM1YTMwZDNmZGUyOTNiMzY5ZWE3ZDM1YTE2NDIwZTc5ZGIzNDg=",
            ),
            (
                "sha256:c38612e31c4611009bc456ef670b7f3a722601f802154dd9d62bb7d9b18b7c51",
                "=c2hhMjU2OmMzODYxMmUzMWM0NjExMDA5YmM0NTZlZjY3MGI3ZjNhNzIyNjAxZjgwMjE1NGRkOWQ2MmJiN2Q5YjE4YjdjNTE=",
            ),
            ("a.b9", "a.b9"),
            ("Manifest", "=TWFuaWZlc3Q="),
        ];
        for (k, want) in cases {
            assert_eq!(big_data_base_name(k), want, "{k}");
        }
    }

    #[test]
    fn ids() {
        let id = random_id();
        assert!(is_full_id(&id));
        assert!(!is_full_id("../x"));
        assert!(!is_full_id(&"A".repeat(64)));
    }

    #[test]
    fn mkdir_and_remove() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a/b/c");
        mkdir_all(&p, 0o700).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o700
        );
        fs::write(p.join("f"), "x").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o555)).unwrap();
        remove_all(&d.path().join("a")).unwrap();
        assert!(!d.path().join("a").exists());
        remove_all(&d.path().join("a")).unwrap();
    }
}
