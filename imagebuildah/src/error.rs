//! The engine's errors: a step's failure names the step (`error building at STEP "RUN
//! false"`), the cause stays reachable through `source()` (so a failing RUN's exit status
//! passes through to hod's own).
use std::path::PathBuf;

/// The engine's result type.
pub type Result<T, E = BuildError> = std::result::Result<T, E>;

/// Every error a build returns.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A host file operation failed.
    #[error("{op} {}", path.display())]
    Io {
        /// What was being done.
        op: String,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Bad input: options, Containerfile contents, stage names.
    #[error("{0}")]
    Invalid(String),
    /// A Containerfile could not be parsed (the message names file and line).
    #[error(transparent)]
    Parse(Box<crate::parser::ParseError>),
    /// A primitive failed.
    #[error(transparent)]
    Builder(#[from] builder::Error),
    /// A RUN's command exited with this status.
    #[error("exit status {0}")]
    ExitStatus(i32),
    /// A step failed: `error building at STEP "RUN false"`.
    #[error("error building at STEP \"{step}\"")]
    Step {
        /// The step as written (after expansion).
        step: String,
        /// The cause.
        #[source]
        source: Box<BuildError>,
    },
    /// A stage of a build that runs stages side by side (`--jobs`) failed: names it.
    #[error("building stage {stage}")]
    Stage {
        /// The stage's name, or its index.
        stage: String,
        /// The cause.
        #[source]
        source: Box<BuildError>,
    },
    /// The build for one of several platforms failed: `[linux/arm64]: …`.
    #[error("[{platform}]")]
    Platform {
        /// `os/arch[/variant]`.
        platform: String,
        /// The cause.
        #[source]
        source: Box<BuildError>,
    },
}

impl From<crate::parser::ParseError> for BuildError {
    fn from(e: crate::parser::ParseError) -> BuildError {
        BuildError::Parse(Box::new(e))
    }
}

impl BuildError {
    /// An [`BuildError::Invalid`].
    pub fn invalid(msg: impl Into<String>) -> BuildError {
        BuildError::Invalid(msg.into())
    }

    /// `tag NAME: cause` (a `-t` value that is not a valid image name).
    pub fn context_tag(self, tag: &str) -> BuildError {
        let s = self.to_string();
        let cause = s.rsplit(": ").next().unwrap_or(&s).to_string();
        BuildError::invalid(format!("tag {tag}: invalid reference format: {cause}"))
    }

    /// The exit status of a failing RUN inside this error, if there is one.
    pub fn exit_status(&self) -> Option<i32> {
        match self {
            BuildError::Builder(e) => e.exit_status(),
            BuildError::ExitStatus(code) => Some(*code),
            BuildError::Step { source, .. }
            | BuildError::Stage { source, .. }
            | BuildError::Platform { source, .. } => source.exit_status(),
            _ => None,
        }
    }
}

/// Attach a path to an `io::Error`.
pub(crate) fn io_at(
    op: &str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> BuildError {
    let path = path.into();
    let op = op.to_string();
    move |source| BuildError::Io { op, path, source }
}
