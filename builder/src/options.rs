//! Options of the primitives, gathered in one place. `FromOptions` lives here; the others are
//! defined next to their primitive and re-exported.
use crate::builder::ImageFormat;
pub use crate::commit::CommitOptions;
pub use crate::copy::{CopyKind, CopyOptions};
pub use crate::pull::{PullOptions, PullPolicy};
pub use crate::push::PushOptions;
pub use crate::run::RunOptions;

/// Options of `hod from` (and of each `FROM` in `bud`).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct FromOptions {
    /// `--name`: the container's name; the default is `<image>-working-container`, made
    /// unique with `-1`, `-2`, ….
    pub name: Option<String>,
    /// `--pull`: when to fetch the image.
    pub pull_policy: PullPolicy,
    /// `--format`: the default format of images committed from the container.
    pub format: ImageFormat,
    /// `--isolation` (`oci`, `chroot`, `rootless`); empty = the run module's default.
    pub isolation: String,
    /// Settings for later `run`s (capabilities, devices, ulimits, …) as the run module reads them.
    pub run_defaults: serde_json::Value,
    /// `--arch`, `--os`, `--variant`, `--platform`: the instance to pick from a manifest list.
    pub platform: Platform,
}

/// The platform to select from a manifest list (empty fields = the host's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// GOARCH spelling (`amd64`, `arm64`).
    pub architecture: String,
    /// `v8`, …
    pub variant: String,
}

impl Platform {
    /// Parse `os/arch[/variant]`.
    pub fn parse(s: &str) -> crate::Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: String::new(),
            }),
            [os, arch, variant] => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: variant.to_string(),
            }),
            _ => Err(crate::Error::invalid(format!(
                "invalid platform {s:?}: expected os/arch[/variant]"
            ))),
        }
    }
}
