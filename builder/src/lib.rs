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
pub mod containers_conf;
pub mod copier;
pub mod copy;
pub mod environment;
pub mod error;
pub mod from;
pub mod fsutil;
pub mod idmap;
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

/// What the library's own tests do when a tool or capability they need is missing.
#[cfg(test)]
pub(crate) mod test_skip {
    /// Reports that `test` cannot run because of `why`: a loud `SKIPPED` line on stderr, or,
    /// when `CI` is set (`.ci/run` sets it), a panic, so a check CI should run never passes by
    /// skipping. Returns `false` so callers can write `if !cond { return skipped(..) }`.
    #[allow(clippy::print_stderr)]
    pub(crate) fn skipped(test: &str, why: &str) -> bool {
        if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
            panic!("{test} would be SKIPPED ({why}), and CI is set: skips fail in CI");
        }
        eprintln!("########## SKIPPED {test}: {why} ##########");
        // hack/test.sh counts skips in `$HOD_SKIP_LOG` (a passing test's output is hidden).
        if let Some(p) = std::env::var_os("HOD_SKIP_LOG").filter(|p| !p.is_empty()) {
            use std::io::Write;
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
            {
                let _ = writeln!(f, "{test}: {why}");
            }
        }
        false
    }
}
