//! The only stdout/stderr writer: result → exit code, error rendering, the progress
//! reporter, Go-style tables (`text/tabwriter`) and JSON.
use std::io::{self, Write};

use serde_json::Value;

use crate::template::Template;

/// Exit status of a generic failure, as buildah uses.
pub const EXIT_FAILURE: i32 = 125;

/// Map the command's result to the process exit (the one place that does).
pub fn exit(result: anyhow::Result<i32>) -> ! {
    let code = match result {
        Ok(code) => code,
        Err(e) => exit_code(&e).unwrap_or_else(|| {
            let _ = writeln!(io::stderr(), "Error: {}", render(&e));
            EXIT_FAILURE
        }),
    };
    let _ = io::stdout().flush();
    std::process::exit(code)
}

/// The error and its causes joined with ": ", system errors worded as Go words them
/// (`no space left on device`, not `No space left on device (os error 28)`), since scripts
/// and buildah's tests match those words.
pub fn render(e: &anyhow::Error) -> String {
    let parts: Vec<String> = e
        .chain()
        .map(|c| match c.downcast_ref::<io::Error>() {
            Some(io) if io.raw_os_error().is_some() => go_errno_text(io),
            _ => c.to_string(),
        })
        .collect();
    parts.join(": ")
}

fn go_errno_text(e: &io::Error) -> String {
    let s = e.to_string();
    let s = match s.rfind(" (os error ") {
        Some(i) => &s[..i],
        None => &s[..],
    };
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// `Some(code)` when the error needs no message: a broken pipe (0), or a failing command
/// whose status passes through (also printed, since the user should know why).
fn exit_code(e: &anyhow::Error) -> Option<i32> {
    for cause in e.chain() {
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            if io.kind() == io::ErrorKind::BrokenPipe {
                return Some(0);
            }
        }
    }
    for cause in e.chain() {
        if let Some(be) = cause.downcast_ref::<imagebuildah::BuildError>() {
            if let Some(code) = be.exit_status() {
                let _ = writeln!(io::stderr(), "Error: {e:#}");
                return Some(code);
            }
        }
        if let Some(be) = cause.downcast_ref::<builder::Error>() {
            if let Some(code) = be.exit_status() {
                let _ = writeln!(io::stderr(), "Error: {}", render(e));
                return Some(code);
            }
        }
    }
    None
}

/// clap's errors: help and version go to stdout with 0; usage errors print `Error: …` and 125.
/// A command with subcommands called without one, or with one it lacks, prints its help
/// (`group_help`, as buildah's root and `buildah manifest` do) and succeeds.
pub fn clap_exit(e: clap::Error, group_help: impl FnOnce() -> Option<String>) -> ! {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            std::process::exit(0)
        }
        kind @ (ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        | ErrorKind::MissingSubcommand
        | ErrorKind::InvalidSubcommand) => {
            if let Some(help) = group_help() {
                let _ = write!(io::stdout(), "{help}");
                let _ = io::stdout().flush();
                std::process::exit(0)
            }
            let _ = writeln!(io::stderr(), "Error: {}", clap_message(&e, kind));
            std::process::exit(EXIT_FAILURE)
        }
        kind => {
            let _ = writeln!(io::stderr(), "Error: {}", clap_message(&e, kind));
            std::process::exit(EXIT_FAILURE)
        }
    }
}

/// One line for a clap error: cobra's wording for unknown flags, else clap's first paragraph.
fn clap_message(e: &clap::Error, kind: clap::error::ErrorKind) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    // cobra: `unknown command "X" for "buildah"`.
    if kind == ErrorKind::InvalidSubcommand {
        if let Some(ContextValue::String(cmd)) = e.get(ContextKind::InvalidSubcommand) {
            return format!(
                "unknown command {cmd:?} for \"{}\"",
                crate::cli::program_name()
            );
        }
    }
    if kind == ErrorKind::UnknownArgument {
        if let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) {
            if arg.starts_with('-') {
                return format!("unknown flag: {}", arg.split('=').next().unwrap_or(arg));
            }
        }
    }
    if kind == ErrorKind::ValueValidation {
        // pflag's wording: invalid argument "VALUE" for "--flag" flag: CAUSE
        if let (Some(ContextValue::String(arg)), Some(ContextValue::String(value))) = (
            e.get(ContextKind::InvalidArg),
            e.get(ContextKind::InvalidValue),
        ) {
            let flag = arg.split(' ').next().unwrap_or(arg);
            let cause = std::error::Error::source(e)
                .map(|c| c.to_string())
                .unwrap_or_default();
            return format!("invalid argument {value:?} for \"{flag}\" flag: {cause}");
        }
    }
    let rendered = e.render().to_string();
    let first: Vec<&str> = rendered
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let text = first.join(" ");
    text.strip_prefix("error: ").unwrap_or(&text).to_string()
}

/// Write to stdout; a broken pipe surfaces as an error `exit` maps to 0.
pub fn print(s: &str) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(s.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Write a line to stdout.
pub fn println(s: &str) -> anyhow::Result<()> {
    print(&format!("{s}\n"))
}

/// `hod login`'s prompts and messages on the terminal, as buildah's (stdout).
pub struct TerminalLoginIo;

impl builder::registries::LoginIo for TerminalLoginIo {
    fn say(&mut self, line: &str) {
        let _ = writeln!(io::stdout(), "{line}");
    }
    fn ask(&mut self, prompt: &str) -> builder::Result<String> {
        let mut out = io::stdout();
        let _ = write!(out, "{prompt}");
        let _ = out.flush();
        let mut line = String::new();
        let n = io::BufRead::read_line(&mut io::stdin().lock(), &mut line)
            .map_err(|e| builder::Error::invalid(e.to_string()))?;
        if n == 0 {
            return Err(builder::Error::invalid("EOF"));
        }
        Ok(line)
    }
    fn ask_secret(&mut self, prompt: &str) -> builder::Result<String> {
        let mut out = io::stdout();
        let _ = write!(out, "{prompt}");
        let _ = out.flush();
        let secret = builder::registries::login::read_secret_line()?;
        let _ = writeln!(out);
        Ok(secret)
    }
    fn read_stdin(&mut self) -> builder::Result<String> {
        let mut s = String::new();
        io::Read::read_to_string(&mut io::stdin(), &mut s)
            .map_err(|e| builder::Error::invalid(format!("reading password from stdin: {e}")))?;
        Ok(s)
    }
}

/// Print an error that is not the last one (commands that go on after a failure).
pub fn eprint_error(e: &anyhow::Error) {
    let _ = writeln!(io::stderr(), "{e:#}");
}

/// A warning on stderr, as buildah (logrus) shows it: `WARN[0000] …` on a terminal, else
/// logrus's text format, `time="…" level=warning msg="…"` (what scripts and buildah's tests
/// grep, e.g. `missing \"foo\" build argument`).
pub fn warn(msg: &str) {
    use std::io::IsTerminal;
    let line = if io::stderr().is_terminal() {
        format!("WARN[0000] {msg}")
    } else {
        logrus_warning(msg, &chrono::Utc::now())
    };
    let _ = writeln!(io::stderr(), "{line}");
}

/// logrus's text-format line for a warning (the message quoted as Go's %q does).
fn logrus_warning(msg: &str, now: &chrono::DateTime<chrono::Utc>) -> String {
    let time = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    format!("time={time:?} level=warning msg={msg:?}")
}

/// JSON indented with four spaces, as Go's `json.MarshalIndent(v, "", "    ")`.
pub fn json_pretty(v: &impl serde::Serialize) -> anyhow::Result<String> {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    v.serialize(&mut ser)?;
    Ok(String::from_utf8(buf)?)
}

/// Progress lines and warnings to stderr (nothing when quiet); on a terminal, blob
/// transfers as progress bars ([`crate::progress`]) instead of buildah's plain lines.
#[derive(Debug, Clone)]
pub struct StderrReporter {
    /// Drop progress lines (warnings still show).
    pub quiet: bool,
    /// The bars, when stderr is a terminal and not quiet.
    bars: Option<std::sync::Arc<crate::progress::TermBars>>,
}

impl StderrReporter {
    /// A reporter for a command's `--quiet`.
    pub fn new(quiet: bool) -> StderrReporter {
        StderrReporter {
            quiet,
            bars: crate::progress::stderr_bars(quiet),
        }
    }
}

impl builder::report::Reporter for StderrReporter {
    fn progress(&self, line: &str) {
        if self.quiet {
            return;
        }
        match &self.bars {
            Some(b) => b.line(line),
            None => {
                let _ = writeln!(io::stderr(), "{line}");
            }
        }
    }
    fn warn(&self, line: &str) {
        match &self.bars {
            Some(b) => b.suspend(|| warn(line)),
            None => warn(line),
        }
    }
    fn transfers(&self) -> Option<std::sync::Arc<dyn builder::report::TransferProgress>> {
        self.bars.clone().map(|b| b as _)
    }
}

/// Go's `text/tabwriter` with (minwidth 8, tabwidth 2, padding 2, ' '), as podman's report
/// writer uses: tab-terminated cells are aligned per column; a line's last cell is not.
pub fn tabwrite(text: &str) -> String {
    let lines: Vec<Vec<&str>> = text
        .split_terminator('\n')
        .map(|l| l.split('\t').collect())
        .collect();
    let mut out = String::new();
    // Columns are aligned over blocks of consecutive lines that have the column.
    let mut widths_for_line: Vec<Vec<usize>> = vec![Vec::new(); lines.len()];
    let max_cols = lines
        .iter()
        .map(|l| l.len().saturating_sub(1))
        .max()
        .unwrap_or(0);
    for col in 0..max_cols {
        let mut i = 0;
        while i < lines.len() {
            if lines[i].len() <= col + 1 {
                i += 1;
                continue;
            }
            let start = i;
            let mut width = 8;
            while i < lines.len() && lines[i].len() > col + 1 {
                width = width.max(lines[i][col].chars().count() + 2);
                i += 1;
            }
            for w in widths_for_line.iter_mut().take(i).skip(start) {
                w.push(width);
            }
        }
    }
    for (cells, widths) in lines.iter().zip(widths_for_line) {
        for (j, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if j + 1 < cells.len() {
                let w = widths.get(j).copied().unwrap_or(8);
                out.push_str(&" ".repeat(w.saturating_sub(cell.chars().count())));
            }
        }
        out.push('\n');
    }
    out
}

/// podman's `StdoutTemplateArray`: `table` prefix → a header row rendered from `headers`
/// (field → title); spaces become tabs; every row through the tab writer.
pub fn render_rows(
    format: &str,
    rows: &[Value],
    headers: &[(&str, &str)],
) -> anyhow::Result<String> {
    let format = format.replace("\\t", "\t");
    let mut text = String::new();
    let body = if let Some(rest) = format.strip_prefix("table") {
        let t = rest.trim().replace(' ', "\t");
        let mut hdr = serde_json::Map::new();
        for (k, v) in headers {
            hdr.insert(k.to_string(), Value::String(v.to_string()));
        }
        let tmpl =
            Template::parse(&t).map_err(|e| anyhow::anyhow!("template parsing error: {e}"))?;
        text.push_str(&header_render(&tmpl, &Value::Object(hdr))?);
        text.push('\n');
        t
    } else {
        format.replace(' ', "\t")
    };
    let tmpl =
        Template::parse(&body).map_err(|e| anyhow::anyhow!("template parsing error: {e}"))?;
    for row in rows {
        text.push_str(&tmpl.render(row)?);
        text.push('\n');
    }
    Ok(tabwrite(&text))
}

/// Render the header row; fields without a title print nothing.
fn header_render(tmpl: &Template, hdr: &Value) -> anyhow::Result<String> {
    Ok(tmpl.render(hdr)?.replace("<no value>", ""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tabwriter_aligns_like_go() {
        assert_eq!(
            tabwrite("a\tbb\tc\nxxxxxxxxxx\ty\tz\n"),
            "a           bb      c\nxxxxxxxxxx  y       z\n"
        );
        assert_eq!(tabwrite("only\n"), "only\n");
    }

    #[test]
    fn rows_with_table_header() {
        let rows = vec![
            json!({"Name": "localhost/a", "Tag": "latest"}),
            json!({"Name": "docker.io/library/busybox", "Tag": "1"}),
        ];
        let out = render_rows(
            "table {{.Name}}\t{{.Tag}}",
            &rows,
            &[("Name", "REPOSITORY"), ("Tag", "TAG")],
        )
        .unwrap();
        assert_eq!(out, "REPOSITORY                 TAG\nlocalhost/a                latest\ndocker.io/library/busybox  1\n");
        let out = render_rows("{{.Name}}", &rows, &[]).unwrap();
        assert_eq!(out, "localhost/a\ndocker.io/library/busybox\n");
        let out = render_rows("{{.Tag}} {{.Name}}", &rows, &[]).unwrap();
        assert_eq!(
            out,
            "latest  localhost/a\n1       docker.io/library/busybox\n"
        );
    }

    #[test]
    fn warnings_off_a_terminal_are_logrus_text() {
        let t = chrono::DateTime::from_timestamp(0, 0).unwrap();
        assert_eq!(
            logrus_warning("missing \"foo\" build argument", &t),
            r#"time="1970-01-01T00:00:00Z" level=warning msg="missing \"foo\" build argument""#
        );
    }

    #[test]
    fn json_uses_four_spaces() {
        assert_eq!(
            json_pretty(&json!({"a": [1]})).unwrap(),
            "{\n    \"a\": [\n        1\n    ]\n}"
        );
    }
}
