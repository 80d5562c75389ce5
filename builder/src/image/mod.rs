//! The image model: one canonical [`ImageConfig`] (a superset of OCI and Docker v2s2 image
//! configs), digests, ocicrypt-compatible layer encryption (`encryption/`), the manifest/index/descriptor types (`manifest.rs`), and the typed
//! [`Platform`] with the one instance chooser over indexes (`platform.rs`).
//!
//! The working container keeps only the canonical model; conversion to OCI or Docker JSON
//! happens at commit/push time (`to_oci`, `to_docker` in `convert.rs`). Maps are `BTreeMap` so
//! that serialised JSON, and therefore image IDs, are deterministic.
pub mod config;
pub mod convert;
pub mod digest;
pub mod encryption;
pub mod manifest;
pub mod platform;

pub use config::{ContainerConfig, HealthConfig, History, ImageConfig, RootFs};
pub use digest::{Digest, Sha256Writer};
pub use platform::Platform;
