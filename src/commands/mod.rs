//! One file per verb: clap `Args` and `run(args, &Ctx) -> anyhow::Result<i32>` (the exit code).
pub mod bud;
pub mod commit;
pub mod config;
pub mod containers;
pub mod copy;
pub mod from;
pub mod images;
pub mod info;
pub mod inspect;
pub mod login;
pub mod logout;
pub mod manifest;
pub mod mount;
pub mod pull;
pub mod push;
pub mod rename;
pub mod rm;
pub mod rmi;
pub mod run;
pub mod run_flags;
pub mod tag;
pub mod umount;
pub mod unshare;
pub mod version;

use anyhow::Context as _;
use builder::builder::ImageFormat;
use builder::{Builder, Store};

/// Open a working container, with buildah's error context.
pub fn open_builder(store: &Store, name: &str) -> anyhow::Result<Builder> {
    Builder::open(store, name).with_context(|| format!("reading build container {name:?}"))
}

/// Parse `--format oci|docker` (also `oci-archive`-style aliases buildah accepts).
pub fn parse_format(s: &str) -> anyhow::Result<ImageFormat> {
    Ok(ImageFormat::parse(s)?)
}

/// Write `data` to a file the user named (`--cidfile`, `--iidfile`, `--digestfile`).
pub fn write_user_file(path: &std::path::Path, data: &str) -> anyhow::Result<()> {
    std::fs::write(path, data).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats() {
        assert_eq!(super::parse_format("OCI").unwrap(), super::ImageFormat::Oci);
        assert_eq!(
            super::parse_format("docker").unwrap(),
            super::ImageFormat::Docker
        );
        assert!(super::parse_format("tar").is_err());
    }
}
