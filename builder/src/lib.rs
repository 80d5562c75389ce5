//! hod's library: the working-container primitives over a containers/storage-compatible store.
//!
//! ```text
//!  src (CLI) ──> builder::{from, mount, config, copy, commit, push, pull, rm, run}
//!                    │            (one file per primitive, each an `impl Builder` block)
//!                    ▼
//!  builder.rs (persisted working-container state) ──> store/ (layers, images, containers,
//!  image/ (one canonical config model)                 drivers vfs + overlay, locks)
//!  transport/ (ImageSource -> ImageDestination: oci, oci-archive, docker-archive, dir,
//!              containers-storage) ──> archive/ (tar, whiteouts, tar-split, compression)
//!  copier/ (rootfs-confined file operations)   run/ (OCI spec + embedded runtime)
//!  sys/ (the only `unsafe`: namespaces, mounts, re-exec helpers)
//!  rootfs/ (the one resolver confined to a rootfs, and its passwd/group reader: used by
//!          archive/, copier/, run/ and sys/)
//! ```
//!
//! Libraries never print: user-facing progress goes through a caller-supplied
//! [`report::Reporter`], diagnostics through `tracing`.
#![warn(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod archive;
pub mod builder;
pub mod commit;
pub mod config;
pub mod copier;
pub mod copy;
pub mod error;
pub mod from;
pub mod fsutil;
pub mod image;
pub mod images;
pub mod manifest;
pub mod mount;
pub mod options;
pub mod pull;
pub mod push;
pub mod reference;
pub mod registries;
pub mod report;
pub mod rm;
pub mod rootfs;
pub mod run;
pub mod scratch;
pub mod store;
pub mod sys;
pub mod transport;

pub use crate::builder::Builder;
pub use crate::error::{Error, IoResultExt, Result};
pub use crate::store::Store;
