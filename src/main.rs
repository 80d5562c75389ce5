//! hod: a daemonless, scriptable OCI container image builder.
mod cli;
mod commands;
mod ctx;
mod flags;
mod logging;
mod output;
mod progress;
mod settings;
mod template;

fn main() {
    // Re-exec'd helpers must run before anything else (threads, parsing).
    builder::sys::reexec::dispatch();
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let argv = cli::hoist_subcommand_options(&argv);
    let cli = match cli::parse(&argv) {
        Ok(c) => c,
        // buildah checks the order of options before anything else: an option after the
        // image name is the error reported, even when the arguments are wrong too.
        Err(e) => match cli::check_order(&argv) {
            Some(msg) => output::exit(Err(anyhow::anyhow!(msg))),
            None => output::clap_exit(e, || cli::group_help(&argv)),
        },
    };
    if let Some(msg) = cli::check_order(&argv) {
        output::exit(Err(anyhow::anyhow!(msg)));
    }
    // A rootless user's hod runs again as root of its user namespace (still no thread).
    if cli.command.wants_userns() {
        if let Some(plan) = builder::sys::userns::Plan::for_this_process() {
            if let Some(w) = plan.warning() {
                if logging::filter_for(&cli.global.log_level, cli.global.debug)
                    .is_ok_and(|f| f != "error")
                {
                    output::warn(w);
                }
            }
            output::exit(plan.run().map_err(anyhow::Error::from));
        }
    }
    let result = logging::init(&cli.global.log_level, cli.global.debug)
        .and_then(|()| settings::resolve(&cli.global))
        .and_then(|ctx| cli.command.run(&ctx));
    output::exit(result)
}
