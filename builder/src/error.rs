//! Typed errors. `Display` carries only this level's context ("reading layer sha256:…");
//! the cause is exposed through `source()`, and the CLI joins the chain with ": ".
use std::io;
use std::path::{Path, PathBuf};

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every error the `builder` library returns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation on a named path failed.
    #[error("{op} {}", path.display())]
    Io {
        /// What was being done, as a gerund: "reading", "creating directory".
        op: String,
        /// The object of the operation.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A JSON document could not be parsed or produced.
    #[error("{op} {}", path.display())]
    Json {
        /// What was being done.
        op: String,
        /// The file (or a pseudo-path naming the object).
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A named object does not exist.
    #[error("{name}: {kind} not known")]
    NotFound {
        /// "image", "container" or "layer".
        kind: &'static str,
        /// The name, ID or reference the user gave.
        name: String,
    },
    /// An image is still used by containers and cannot be removed.
    #[error("image used by {}: image is in use by a container", containers.join(", "))]
    ImageInUse {
        /// The image ID.
        image: String,
        /// Containers using it.
        containers: Vec<String>,
    },
    /// A name is already taken.
    #[error("the name {name:?} is already in use by {id}")]
    NameInUse {
        /// The name.
        name: String,
        /// The object holding it.
        id: String,
    },
    /// The user's input is not valid.
    #[error("{0}")]
    Invalid(String),
    /// Something else went wrong with context attached: "committing container x".
    #[error("{context}")]
    Context {
        /// The operation and object.
        context: String,
        /// The cause.
        #[source]
        source: Box<Error>,
    },
    /// Store errors.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Layer archive errors.
    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),
    /// Image transport errors.
    #[error(transparent)]
    Transport(#[from] crate::transport::TransportError),
    /// Registry (`docker://`) errors.
    #[error(transparent)]
    Registry(#[from] crate::transport::registry::RegistryError),
    /// Rootfs-confined copy errors.
    #[error(transparent)]
    Copy(#[from] crate::copier::CopyError),
    /// `run` errors, including the command's own exit status.
    #[error(transparent)]
    Run(#[from] crate::run::RunError),
    /// Layer encryption errors (`--encryption-key`, `--decryption-key`).
    #[error(transparent)]
    Encryption(#[from] crate::image::encryption::EncryptionError),
    /// Manifest-list errors.
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
}

impl Error {
    /// Wrap with an operation/object context: `err.context(format!("committing {name}"))`.
    pub fn context(self, context: impl Into<String>) -> Error {
        Error::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }

    /// Build an [`Error::Invalid`].
    pub fn invalid(msg: impl Into<String>) -> Error {
        Error::Invalid(msg.into())
    }

    /// The exit status a failing command passed through, if this error is one.
    pub fn exit_status(&self) -> Option<i32> {
        match self {
            Error::Run(crate::run::RunError::ExitStatus(code)) => Some(*code),
            Error::Context { source, .. } => source.exit_status(),
            _ => None,
        }
    }
}

/// Attach an operation and a path to an `io::Error`.
pub trait IoResultExt<T> {
    /// `fs::read(p).at("reading", p)?`
    fn at(self, op: &str, path: impl AsRef<Path>) -> Result<T>;
}

impl<T> IoResultExt<T> for io::Result<T> {
    fn at(self, op: &str, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|source| Error::Io {
            op: op.to_string(),
            path: path.as_ref().to_path_buf(),
            source,
        })
    }
}

/// Attach context to any library result.
pub trait ResultExt<T> {
    /// `store.image(x).context_with(|| format!("reading image {x}"))?`
    fn context_with(self, f: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: Into<Error>> ResultExt<T> for std::result::Result<T, E> {
    fn context_with(self, f: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| e.into().context(f()))
    }
}
