//! `hod unshare` (owned by the runtime work).
use builder::Builder;

use crate::ctx::Ctx;

/// `hod unshare [options] [COMMAND [ARGS...]]`
#[derive(Debug, clap::Args)]
pub struct UnshareArgs {
    /// Mount a working container and put its mount point in $VAR (`[VAR=]container`).
    #[arg(short = 'm', long = "mount", value_delimiter = ',')]
    pub mount: Vec<String>,
    /// The command and its arguments (default: $SHELL).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Run the command in the namespaces; the result is hod's exit code.
pub fn run(args: UnshareArgs, ctx: &Ctx) -> anyhow::Result<i32> {
    let mut env = Vec::new();
    if !args.mount.is_empty() {
        let store = ctx.store()?;
        for m in &args.mount {
            let (var, name) = match m.split_once('=') {
                Some((v, n)) => (v.to_string(), n.to_string()),
                None => (m.clone(), m.clone()),
            };
            let mut b = Builder::open(&store, &name)?;
            let path = b.mount(&store)?;
            env.push((var, path.to_string_lossy().into_owned()));
        }
    }
    let command = if args.command.is_empty() {
        vec![std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into())]
    } else {
        args.command
    };
    match builder::run::unshare::unshare(&command, &env) {
        Ok(code) => Ok(code),
        Err(e) => match e.exit_status() {
            Some(code) => {
                eprintln!("Error: {e:#}");
                Ok(if code == 0 { 127 } else { code })
            }
            None => Err(e.into()),
        },
    }
}
