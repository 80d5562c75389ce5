//! The `rm` module.
