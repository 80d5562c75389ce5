//! The `config` module.
