//! The `commit` module.
