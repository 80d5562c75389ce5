//! The `push` module.
