//! The `options` module.
