//! The only place with `unsafe`: namespaces, mounts, pivot_root/chroot, ID maps, fd passing,
//! and the registry of re-exec'd helpers. Every block carries a `// SAFETY:` line.
#![allow(unsafe_code)]

pub mod caps;
pub mod container;
pub mod process;
pub mod reexec;
pub mod seccomp;
pub mod unshare;
