//! `hod config`: update the image configuration kept for a working container.
use builder::config::{apply, ConfigChanges};

use crate::ctx::Ctx;
use crate::output;

/// `hod config [options] CONTAINER`
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// The working container.
    pub container: String,
    /// Add a history entry for this change (env BUILDAH_HISTORY).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub add_history: Option<bool>,
    /// Add an image annotation (k=v; `k-` removes, `-` removes all).
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub annotation: Vec<String>,
    /// Set the target architecture.
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,
    /// Set the author contact information.
    #[arg(long, value_name = "AUTHOR")]
    pub author: Option<String>,
    /// Set the default command (JSON array or shell words).
    #[arg(long, value_name = "COMMAND", allow_hyphen_values = true)]
    pub cmd: Option<String>,
    /// Set the image comment (docker format only).
    #[arg(long, value_name = "COMMENT")]
    pub comment: Option<String>,
    /// Set the description of how the top layer was created.
    #[arg(long, value_name = "DESCRIPTION")]
    pub created_by: Option<String>,
    /// Set the domain name for containers (docker format only).
    #[arg(long, value_name = "DOMAIN")]
    pub domainname: Option<String>,
    /// Set the entry point (JSON array, or a string run with /bin/sh -c).
    #[arg(long, value_name = "ENTRYPOINT", allow_hyphen_values = true)]
    pub entrypoint: Option<String>,
    /// Add an environment variable (k=v; `k` takes the host's value; `k-` removes; `-` removes all).
    #[arg(short, long, value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    /// Set a health check command (NONE, "CMD …", "CMD-SHELL …", or empty to remove).
    #[arg(long, value_name = "COMMAND", allow_hyphen_values = true)]
    pub healthcheck: Option<String>,
    /// Set the interval between health checks.
    #[arg(long, value_name = "INTERVAL")]
    pub healthcheck_interval: Option<String>,
    /// Set the number of failures before unhealthy.
    #[arg(long, value_name = "COUNT")]
    pub healthcheck_retries: Option<i64>,
    /// Set the interval between checks during the start period.
    #[arg(long, value_name = "INTERVAL")]
    pub healthcheck_start_interval: Option<String>,
    /// Set the start period during which failures don't count.
    #[arg(long, value_name = "INTERVAL")]
    pub healthcheck_start_period: Option<String>,
    /// Set how long a check may take.
    #[arg(long, value_name = "INTERVAL")]
    pub healthcheck_timeout: Option<String>,
    /// Set a comment for the next history entry.
    #[arg(long, value_name = "COMMENT")]
    pub history_comment: Option<String>,
    /// Set the hostname for containers (docker format only).
    #[arg(long, value_name = "HOSTNAME")]
    pub hostname: Option<String>,
    /// Add an image label (k=v; `k-` removes, `-` removes all).
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Add an ONBUILD trigger (docker format only).
    #[arg(long, value_name = "COMMAND", value_delimiter = ',')]
    pub onbuild: Vec<String>,
    /// Set the target operating system.
    #[arg(long, value_name = "OS")]
    pub os: Option<String>,
    /// Add a required OS feature (`f-` removes, `-` removes all).
    #[arg(long, value_name = "FEATURE")]
    pub os_feature: Vec<String>,
    /// Set the required OS version.
    #[arg(long, value_name = "VERSION")]
    pub os_version: Option<String>,
    /// Expose a port (port[/proto]; `p-` removes, `-` removes all).
    #[arg(
        short,
        long,
        value_name = "PORT",
        value_delimiter = ',',
        allow_hyphen_values = true
    )]
    pub port: Vec<String>,
    /// Set the shell for shell-form commands (docker format only).
    #[arg(long, value_name = "SHELL")]
    pub shell: Option<String>,
    /// Set the stop signal.
    #[arg(long, value_name = "SIGNAL")]
    pub stop_signal: Option<String>,
    /// Set the default user[:group].
    #[arg(short, long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// Set the architecture variant.
    #[arg(long, value_name = "VARIANT")]
    pub variant: Option<String>,
    /// Mark a volume (`v-` removes, `-` removes all).
    #[arg(
        short,
        long,
        value_name = "VOLUME",
        value_delimiter = ',',
        allow_hyphen_values = true
    )]
    pub volume: Vec<String>,
    /// Set the working directory.
    #[arg(long, value_name = "DIR")]
    pub workingdir: Option<String>,
    /// Remove an environment variable.
    #[arg(long, value_name = "KEY", value_delimiter = ',')]
    pub unsetenv: Vec<String>,
    /// Remove a label, including one inherited from the base image.
    #[arg(long, value_name = "KEY", value_delimiter = ',')]
    pub unsetlabel: Vec<String>,
    /// Remove an annotation, including one inherited from the base image.
    #[arg(long, value_name = "KEY", value_delimiter = ',')]
    pub unsetannotation: Vec<String>,
}

/// `BUILDAH_HISTORY` as a bool.
fn env_history() -> bool {
    std::env::var("BUILDAH_HISTORY")
        .map(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
        .unwrap_or(false)
}

impl ConfigArgs {
    /// The library's view of the flags.
    pub fn changes(&self) -> ConfigChanges {
        let mut c = ConfigChanges::default();
        c.add_history = self.add_history.unwrap_or_else(env_history);
        c.annotations = self.annotation.clone();
        c.arch = self.arch.clone();
        c.author = self.author.clone();
        c.cmd = self.cmd.clone();
        c.comment = self.comment.clone();
        c.created_by = self.created_by.clone();
        c.domainname = self.domainname.clone();
        c.entrypoint = self.entrypoint.clone();
        c.env = self.env.clone();
        c.healthcheck = self.healthcheck.clone();
        c.healthcheck_interval = self.healthcheck_interval.clone();
        c.healthcheck_retries = self.healthcheck_retries;
        c.healthcheck_start_interval = self.healthcheck_start_interval.clone();
        c.healthcheck_start_period = self.healthcheck_start_period.clone();
        c.healthcheck_timeout = self.healthcheck_timeout.clone();
        c.history_comment = self.history_comment.clone();
        c.hostname = self.hostname.clone();
        c.labels = self.label.clone();
        c.onbuild = self.onbuild.clone();
        c.os = self.os.clone();
        c.os_features = self.os_feature.clone();
        c.os_version = self.os_version.clone();
        c.ports = self.port.clone();
        c.shell = self.shell.clone();
        c.stop_signal = self.stop_signal.clone();
        c.user = self.user.clone();
        c.variant = self.variant.clone();
        c.volumes = self.volume.clone();
        c.workingdir = self.workingdir.clone();
        c.unset_env = self.unsetenv.clone();
        c.unset_labels = self.unsetlabel.clone();
        c.unset_annotations = self.unsetannotation.clone();
        c
    }
}

/// Apply and save.
pub fn run(a: ConfigArgs, ctx: &Ctx) -> anyhow::Result<i32> {
    let store = ctx.store()?;
    let mut b = super::open_builder(&store, &a.container)?;
    let changes = a.changes();
    let warnings = apply(&mut b.state, &changes, &|k| std::env::var(k).ok())?;
    for w in warnings {
        output::warn(&w);
    }
    b.save()?;
    Ok(0)
}
