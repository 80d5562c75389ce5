//! The `mount` module.
