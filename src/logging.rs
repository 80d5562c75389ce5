//! tracing-subscriber to stderr, from `--log-level` / `--debug`.
use tracing_subscriber::EnvFilter;

/// Map buildah's (logrus) level names to a tracing filter.
pub fn filter_for(level: &str, debug: bool) -> anyhow::Result<&'static str> {
    if debug {
        return Ok("debug");
    }
    Ok(match level.to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warn" | "warning" => "warn",
        "error" | "fatal" | "panic" => "error",
        other => anyhow::bail!("unable to parse log level: not a valid logrus Level: {other:?}"),
    })
}

/// Install the subscriber (once).
pub fn init(level: &str, debug: bool) -> anyhow::Result<()> {
    let f = filter_for(level, debug)?;
    use std::io::IsTerminal as _;
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: a warning in a log file stays one plain line.
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(EnvFilter::new(f))
        .with_target(false)
        .try_init();
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn levels() {
        assert_eq!(super::filter_for("WARN", false).unwrap(), "warn");
        assert_eq!(super::filter_for("fatal", false).unwrap(), "error");
        assert_eq!(super::filter_for("warn", true).unwrap(), "debug");
        assert!(super::filter_for("loud", false).is_err());
    }
}
