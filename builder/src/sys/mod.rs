//! The only place with `unsafe`: namespaces, mounts, pivot_root/chroot, ID maps, fd passing,
//! and the registry of re-exec'd helpers. `unsafe_code` is denied workspace-wide and allowed
//! file by file, only in the files that have `unsafe` (`process.rs`, `seccomp.rs` for the one
//! seccomp(2) call, and the test binaries' `.init_array` hook in `reexec.rs`); every block
//! carries a `// SAFETY:` line.

pub mod caps;
pub mod container;
pub mod probe;
pub mod process;
pub mod reexec;
pub mod seccomp;
pub mod unshare;
pub mod userns;
