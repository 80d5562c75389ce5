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
        .event_format(Logrus)
        .try_init();
    Ok(())
}

/// logrus's text format (what buildah writes to a non-terminal stderr, and what scripts
/// grep): `time="2006-01-02T15:04:05Z" level=debug msg="…"`, fields as `key=value`.
struct Logrus;

/// logrus's level names.
fn logrus_level(l: &tracing::Level) -> &'static str {
    match *l {
        tracing::Level::TRACE => "trace",
        tracing::Level::DEBUG => "debug",
        tracing::Level::INFO => "info",
        tracing::Level::WARN => "warning",
        tracing::Level::ERROR => "error",
    }
}

/// One event's message and fields.
#[derive(Default)]
struct Fields {
    msg: String,
    rest: String,
}

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.msg = format!("{value:?}");
        } else {
            self.rest
                .push_str(&format!(" {}={:?}", field.name(), format!("{value:?}")));
        }
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.msg = value.to_string();
        } else {
            self.rest.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

/// The line for one event.
fn logrus_line(time: &str, level: &tracing::Level, f: &Fields) -> String {
    format!(
        "time={time:?} level={} msg={:?}{}",
        logrus_level(level),
        f.msg,
        f.rest
    )
}

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for Logrus
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut f = Fields::default();
        event.record(&mut f);
        let time = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        writeln!(
            writer,
            "{}",
            logrus_line(&time, event.metadata().level(), &f)
        )
    }
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

    #[test]
    fn logrus_lines() {
        let f = super::Fields {
            msg: "trying \"vfs\"".into(),
            rest: String::new(),
        };
        assert_eq!(
            super::logrus_line("2006-01-02T15:04:05Z", &tracing::Level::DEBUG, &f),
            r#"time="2006-01-02T15:04:05Z" level=debug msg="trying \"vfs\"""#
        );
        assert!(super::logrus_line("t", &tracing::Level::WARN, &f).contains(" level=warning "));
    }
}
