//! What every subcommand receives: the resolved global options.
use std::path::PathBuf;
use std::sync::OnceLock;

use builder::environment::{Environment, Fallbacks};

use builder::store::StoreOptions;

/// Resolved global options (CLI > env > storage.conf/containers.conf > defaults).
#[derive(Debug, Clone, Default)]
pub struct Ctx {
    /// Where and how the store lives.
    pub store_options: StoreOptions,
    /// The driver was chosen with `--storage-driver` or `STORAGE_DRIVER` (kept even where
    /// it cannot work; storage.conf's or the built-in default may fall back to vfs).
    pub driver_explicit: bool,
    /// The store options adapted to the environment, and what fell back (decided on the
    /// first [`Ctx::store`]).
    pub adapted: OnceLock<(StoreOptions, Fallbacks)>,
    /// `--registries-conf`, if given (into every `RegistryContext`, see `flags.rs`).
    pub registries_conf: Option<PathBuf>,
    /// `--registries-conf-dir`, if given (into every `RegistryContext`).
    pub registries_conf_dir: Option<PathBuf>,
    /// `--short-name-alias-conf`, if given (into every `RegistryContext`).
    pub short_name_alias_conf: Option<PathBuf>,
    /// `--userns-uid-map` / `--userns-gid-map` (the ID maps of new containers).
    pub id_maps: builder::idmap::IdMappingRequest,
    /// `--log-level` (the subscriber is set up in `main`; kept for helpers that re-exec hod).
    #[allow(dead_code)]
    pub log_level: String,
}

impl Ctx {
    /// Open the store, with the driver this environment allows
    /// ([`builder::environment::Environment::fallbacks`]); the first time, say in one line
    /// what hod falls back to, if anything.
    pub fn store(&self) -> anyhow::Result<builder::Store> {
        let (opts, fb) = self.adapted.get_or_init(|| {
            Environment::get().adapt_store(&self.store_options, self.driver_explicit)
        });
        static SAID: std::sync::Once = std::sync::Once::new();
        if !fb.is_empty() {
            SAID.call_once(|| crate::output::warn(&fb.to_string()));
        }
        Ok(builder::Store::open(opts)?)
    }
}
