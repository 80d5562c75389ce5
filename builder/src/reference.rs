//! The `reference` module.
