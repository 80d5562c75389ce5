//! `--log-rusage` and `--rusage-logfile`: buildah's per-step resource usage lines.
//!
//! ```text
//! build ─> RusageReporter (wraps the build's reporter)
//!            STEP k/N (k > 1) ─> line for the usage since the last line, then the STEP line
//!            end of the build ─> one last line
//!          line: "<system>(system) <user>(user) <elapsed>(elapsed) <in> input <out> output"
//!            to the build's output, or to the --rusage-logfile (truncated first)
//! ```
//! The counters are `getrusage(RUSAGE_CHILDREN)`'s, as buildah's `pkg/rusage`, formatted as
//! its `FormatDiff` does (Go durations rounded to milliseconds, go-units' decimal sizes).
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use builder::sys::process::{children_usage, ChildrenUsage};

use crate::error::{io_at, Result};
use crate::BuildReporter;

/// A reporter that adds the resource usage lines to another one's output.
pub struct RusageReporter<'a> {
    inner: &'a dyn BuildReporter,
    file: Option<Mutex<File>>,
    last: Mutex<(Instant, ChildrenUsage)>,
}

impl<'a> RusageReporter<'a> {
    /// Start counting; lines go to `logfile` (created or truncated) or to `inner`'s steps.
    pub fn new(inner: &'a dyn BuildReporter, logfile: Option<&Path>) -> Result<Self> {
        let file = logfile
            .map(|p| {
                File::create(p)
                    .map(Mutex::new)
                    .map_err(io_at("creating file to store rusage logs", p))
            })
            .transpose()?;
        Ok(RusageReporter {
            inner,
            file,
            last: Mutex::new((Instant::now(), children_usage().unwrap_or_default())),
        })
    }

    /// Write the usage since the last line (an unreadable counter is reported, not fatal).
    pub fn log(&self) {
        let now = children_usage();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let line = match now {
            Ok(u) => {
                let t = Instant::now();
                let line = format_diff(&u, &last.1, t.duration_since(last.0));
                *last = (t, u);
                line
            }
            Err(e) => format!("error gathering resource usage information: {e}"),
        };
        match &self.file {
            Some(f) => {
                let mut f = f.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(e) = writeln!(f, "{line}") {
                    self.inner
                        .warn(&format!("writing to the rusage log file: {e}"));
                }
            }
            None => self.inner.step(&line),
        }
    }
}

impl builder::report::Reporter for RusageReporter<'_> {
    fn progress(&self, line: &str) {
        self.inner.progress(line)
    }
    fn warn(&self, line: &str) {
        self.inner.warn(line)
    }
    fn transfers(&self) -> Option<std::sync::Arc<dyn builder::report::TransferProgress>> {
        self.inner.transfers()
    }
}

impl BuildReporter for RusageReporter<'_> {
    fn step(&self, line: &str) {
        if is_later_step(line) {
            self.log();
        }
        self.inner.step(line)
    }
}

/// `STEP k/N: …` with k > 1, after an optional `[platform] ` prefix.
fn is_later_step(line: &str) -> bool {
    let l = match line.strip_prefix('[') {
        Some(rest) => rest.split_once("] ").map_or(line, |(_, l)| l),
        None => line,
    };
    l.strip_prefix("STEP ")
        .and_then(|s| s.split_once('/'))
        .and_then(|(k, _)| k.parse::<u32>().ok())
        .is_some_and(|k| k > 1)
}

/// buildah's `rusage.FormatDiff`.
fn format_diff(now: &ChildrenUsage, then: &ChildrenUsage, elapsed: Duration) -> String {
    format!(
        "{}(system) {}(user) {}(elapsed) {} input {} output",
        go_duration_ms(now.system.saturating_sub(then.system)),
        go_duration_ms(now.user.saturating_sub(then.user)),
        go_duration_ms(elapsed),
        human_size((now.in_blocks - then.in_blocks).max(0) as f64 * 512.0),
        human_size((now.out_blocks - then.out_blocks).max(0) as f64 * 512.0),
    )
}

/// Go's `Duration.Round(time.Millisecond).String()`: `0s`, `12ms`, `1.5s`, `2m3.004s`, `1h0m0s`.
pub(crate) fn go_duration_ms(d: Duration) -> String {
    let ms = (d.as_micros() + 500) / 1000;
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let (s, frac) = (rest / 1000, rest % 1000);
    let mut secs = s.to_string();
    if frac > 0 {
        secs.push_str(format!(".{frac:03}").trim_end_matches('0'));
    }
    match (h, m) {
        (0, 0) => format!("{secs}s"),
        (0, m) => format!("{m}m{secs}s"),
        (h, m) => format!("{h}h{m}m{secs}s"),
    }
}

/// go-units' `HumanSize`: decimal units, four significant digits (`%.4g`).
fn human_size(mut size: f64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut i = 0;
    while size >= 1000.0 && i < UNITS.len() - 1 {
        size /= 1000.0;
        i += 1;
    }
    let decimals = match size {
        s if s >= 100.0 => 1,
        s if s >= 10.0 => 2,
        _ => 3,
    };
    let mut n = format!("{size:.decimals$}");
    if n.contains('.') {
        n = n.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{n}{}", UNITS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_buildah() {
        assert_eq!(go_duration_ms(Duration::ZERO), "0s");
        assert_eq!(go_duration_ms(Duration::from_micros(12_400)), "12ms");
        assert_eq!(go_duration_ms(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration_ms(Duration::from_millis(123_004)), "2m3.004s");
        assert_eq!(go_duration_ms(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(human_size(0.0), "0B");
        assert_eq!(human_size(512.0), "512B");
        assert_eq!(human_size(4096.0), "4.096kB");
        assert_eq!(human_size(1_234_567.0), "1.235MB");
        assert_eq!(human_size(20_000.0), "20kB");
        let a = ChildrenUsage::default();
        let b = ChildrenUsage {
            system: Duration::from_millis(20),
            user: Duration::from_millis(1500),
            in_blocks: 8,
            out_blocks: 2,
        };
        assert_eq!(
            format_diff(&b, &a, Duration::from_millis(2001)),
            "20ms(system) 1.5s(user) 2.001s(elapsed) 4.096kB input 1.024kB output"
        );
    }

    #[test]
    fn later_steps_only() {
        assert!(is_later_step("STEP 2/3: RUN x"));
        assert!(is_later_step("[linux/arm64] STEP 3/3: RUN x"));
        assert!(!is_later_step("STEP 1/3: FROM x"));
        assert!(!is_later_step("COMMIT x"));
    }
}
