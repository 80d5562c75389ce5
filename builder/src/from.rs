//! The `from` module.
