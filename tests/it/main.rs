//! hod's integration tests: one test binary driving the CLI.
//!
//! `cargo test --test it` runs them against the `hod` built by cargo;
//! `HOD_BIN=/usr/bin/buildah cargo test --test it` runs them against buildah
//! (the drop-in reference), which is how they were validated before hod worked.
//! Tests needing root or podman/skopeo print `SKIPPED` and return when those
//! are missing; CI (hack/test.sh) runs as root with all of them installed.

mod common;

mod bud;
mod bud_adopt;
mod bud_cache;
mod bud_cache_registry;
mod bud_flags;
mod bud_reap;
mod commit;
mod concurrency;
mod docs;
mod encryption;
mod errors;
mod help;
mod idmap;
mod kills;
mod login;
mod pods;
mod progress;
mod push;
mod registries_conf;
mod registry;
mod rootless;
mod run;
mod seccomp;
mod security_layers;
mod security_runtime;
mod store;
