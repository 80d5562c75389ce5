//! hod's integration tests: one binary driving the CLI.
mod docs;
