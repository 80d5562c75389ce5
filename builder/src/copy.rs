//! `copy` / `add`: copy host files, other containers' or images' files, archives (add) and
//! URLs (add) into the working container, every write resolved inside its rootfs.
use crate::builder::Builder;
use crate::error::Result;
use crate::store::Store;

/// COPY or ADD semantics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CopyKind {
    /// Plain copy.
    #[default]
    Copy,
    /// Also extract local archives and fetch URLs.
    Add,
}

/// Options of `hod copy` / `hod add` (and of COPY/ADD in `bud`).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CopyOptions {
    /// COPY or ADD.
    pub kind: CopyKind,
    /// `--chown user[:group]`, resolved in the container.
    pub chown: Option<String>,
    /// `--chmod` (octal).
    pub chmod: Option<String>,
    /// `--from`: a container or image to copy from instead of the host.
    pub from: Option<String>,
    /// `--contextdir`: sources must stay inside it.
    pub context_dir: Option<std::path::PathBuf>,
    /// `--ignorefile`.
    pub ignore_file: Option<std::path::PathBuf>,
    /// `--exclude` patterns.
    pub excludes: Vec<String>,
    /// `--checksum` for URL sources (ADD).
    pub checksum: Option<String>,
}

impl Builder {
    /// Copy `sources` to `dest` inside the container.
    pub fn copy(&mut self, _store: &Store, _sources: &[String], _dest: &str, _opts: &CopyOptions) -> Result<()> {
        todo!("Builder::copy")
    }
}
