//! `hod run` (owned by the runtime work).
use crate::ctx::Ctx;

/// `hod run [options] CONTAINER [--] COMMAND [ARG...]`
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The working container.
    pub container: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Run the command; the result is hod's exit code.
pub fn run(_args: RunArgs, _ctx: &Ctx) -> anyhow::Result<i32> {
    anyhow::bail!("run is not implemented yet")
}
