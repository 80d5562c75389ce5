//! `hod unshare` (owned by the runtime work).
use crate::ctx::Ctx;

/// `hod unshare [options] [COMMAND [ARGS...]]`
#[derive(Debug, clap::Args)]
pub struct UnshareArgs {
    /// The command and its arguments (default: $SHELL).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Run the command in the namespaces; the result is hod's exit code.
pub fn run(_args: UnshareArgs, _ctx: &Ctx) -> anyhow::Result<i32> {
    anyhow::bail!("unshare is not implemented yet")
}
