//! The `pull` module.
