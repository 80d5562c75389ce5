//! Containerfile engine: parser, stage plan and an executor over `builder` primitives.
//!
//! The engine arrives with the `bud` issue; this crate exists now so that the dependency
//! direction `src -> imagebuildah -> builder` holds from the first commit.

pub mod onbuild;
