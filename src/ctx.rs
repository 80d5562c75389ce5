//! What every subcommand receives: the resolved global options.
use std::path::PathBuf;

use builder::store::StoreOptions;

/// Resolved global options (CLI > env > storage.conf/containers.conf > defaults).
#[derive(Debug, Clone, Default)]
pub struct Ctx {
    /// Where and how the store lives.
    pub store_options: StoreOptions,
    /// `--registries-conf`, if given (into every `RegistryContext`, see `flags.rs`).
    pub registries_conf: Option<PathBuf>,
    /// `--registries-conf-dir`, if given (into every `RegistryContext`).
    pub registries_conf_dir: Option<PathBuf>,
    /// `--short-name-alias-conf`, if given (into every `RegistryContext`).
    pub short_name_alias_conf: Option<PathBuf>,
    /// `--log-level` (the subscriber is set up in `main`; kept for helpers that re-exec hod).
    #[allow(dead_code)]
    pub log_level: String,
}

impl Ctx {
    /// Open the store.
    pub fn store(&self) -> anyhow::Result<builder::Store> {
        Ok(builder::Store::open(&self.store_options)?)
    }
}
