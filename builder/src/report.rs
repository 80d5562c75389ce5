//! User-facing progress ("Copying blob …", "Writing manifest to image destination") goes
//! through a [`Reporter`] the caller passes in; libraries never print.

/// A sink for progress lines and warnings.
pub trait Reporter: Send + Sync {
    /// A progress line, e.g. `Copying blob sha256:…`.
    fn progress(&self, line: &str);
    /// A warning shown to the user (`WARN[0000] …` in buildah).
    fn warn(&self, line: &str);
}

/// A reporter that drops everything (`--quiet`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet;

impl Reporter for Quiet {
    fn progress(&self, _line: &str) {}
    fn warn(&self, _line: &str) {}
}
