//! Progress bars on a terminal: the CLI reporters' [`TransferProgress`] sink.
//!
//! ```text
//!  stderr a terminal, not --quiet ─▶ TermBars: per copy (CopyBegin … CopyEnd)
//!      Preparing{size}→ a bar `Preparing blob 0123456789ab [==>  ] …` (read and compressed before
//!                       an upload), cleared when done
//!      Started{size}  → a bar `Copying blob 0123456789ab [====>   ] 1.2 MiB/4.0 MiB 3.1 MiB/s`
//!      Position{pos}  → the bar and the `Total` bar below the blobs' bars move
//!      Done           → the bar becomes the line `Copying blob 0123456789ab done 4.0 MiB (3.1 MiB/s)`
//!      Skipped/Mounted→ the line `Copying blob 0123456789ab skipped: already exists` / `mounted from R`
//!      CopyEnd        → every bar is cleared; `Total 4.0 MiB in 1.3s (3.1 MiB/s)` when bytes moved
//!  otherwise ─▶ no sink: the library prints buildah's plain lines, unchanged
//! ```
//! Every other stderr line of the reporters goes through [`TermBars::line`], which prints
//! above the bars, so bars and lines never tear each other; the bars are gone before the
//! command prints its result (the copy ends first).
use std::collections::HashMap;
use std::io::{self, IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use builder::image::Digest;
use builder::report::{TransferEvent, TransferProgress};
use indicatif::{BinaryBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bars of the transfers in progress, drawn on stderr.
pub struct TermBars {
    multi: MultiProgress,
    state: Mutex<State>,
}

impl std::fmt::Debug for TermBars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TermBars")
    }
}

#[derive(Default)]
struct State {
    /// Copies running (they may overlap in parallel build stages).
    depth: u32,
    blobs: HashMap<Digest, Blob>,
    total: Option<Total>,
}

struct Blob {
    bar: ProgressBar,
    /// Being prepared for a transfer, not transferred: not in the total, no done line.
    preparing: bool,
    size: Option<u64>,
    pos: u64,
    started: Instant,
}

struct Total {
    bar: ProgressBar,
    bytes: u64,
    started: Instant,
}

/// Bars when stderr is a terminal and progress is wanted; `None` otherwise (plain lines).
pub fn stderr_bars(quiet: bool) -> Option<Arc<TermBars>> {
    if quiet || !io::stderr().is_terminal() {
        return None;
    }
    Some(Arc::new(TermBars::new(ProgressDrawTarget::stderr())))
}

/// `sha256:0123456789abcdef…` → `0123456789ab`, as containers/image names blobs in bars.
fn short(d: &Digest) -> &str {
    let h = d.hex();
    &h[..h.len().min(12)]
}

/// `bytes` over `since` as `3.1 MiB/s`.
fn rate(bytes: u64, since: Instant) -> String {
    let secs = since.elapsed().as_secs_f64().max(0.001);
    format!("{}/s", BinaryBytes((bytes as f64 / secs) as u64))
}

fn blob_style(sized: bool, preparing: bool) -> ProgressStyle {
    let what = if preparing { "Preparing" } else { "Copying" };
    let t = if sized {
        format!("{what} blob {{prefix}} [{{wide_bar}}] {{binary_bytes}}/{{binary_total_bytes}} {{binary_bytes_per_sec}}")
    } else {
        format!("{what} blob {{prefix}} {{binary_bytes}} {{binary_bytes_per_sec}}")
    };
    ProgressStyle::with_template(&t)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

fn total_style() -> ProgressStyle {
    ProgressStyle::with_template("Total {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

impl TermBars {
    fn new(target: ProgressDrawTarget) -> TermBars {
        TermBars {
            multi: MultiProgress::with_draw_target(target),
            state: Mutex::new(State::default()),
        }
    }

    /// Write a line on stderr above the bars (a progress line, a warning).
    pub fn line(&self, s: &str) {
        self.multi.suspend(|| {
            let _ = writeln!(io::stderr(), "{s}");
        });
    }

    /// Run `f` (which writes to the terminal) with the bars taken off the screen meanwhile.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.multi.suspend(f)
    }

    fn println(&self, s: String) {
        let _ = self.multi.println(s);
    }

    fn total<'s>(&self, st: &'s mut State) -> &'s mut Total {
        st.total.get_or_insert_with(|| Total {
            bar: self
                .multi
                .add(ProgressBar::new(0).with_style(total_style())),
            bytes: 0,
            started: Instant::now(),
        })
    }

    /// Remove a blob's bar, taking its unfinished part off the total; `forget` takes its
    /// bytes off too (the transfer restarts from 0).
    fn drop_blob(&self, st: &mut State, b: &Blob, forget: bool) {
        b.bar.finish_and_clear();
        self.multi.remove(&b.bar);
        let Some(t) = &mut st.total else {
            return;
        };
        if b.preparing {
            return;
        }
        let size = b.size.unwrap_or(0);
        if forget {
            t.bar.dec_length(size);
            t.bar.dec(b.pos);
            t.bytes = t.bytes.saturating_sub(b.pos);
        } else {
            t.bar.dec_length(size.saturating_sub(b.pos));
        }
    }
}

impl TransferProgress for TermBars {
    fn event(&self, e: TransferEvent<'_>) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        let st = &mut *st;
        match e {
            TransferEvent::CopyBegin => st.depth += 1,
            TransferEvent::CopyEnd => {
                st.depth = st.depth.saturating_sub(1);
                if st.depth > 0 {
                    return;
                }
                for (_, b) in std::mem::take(&mut st.blobs) {
                    self.drop_blob(st, &b, false);
                }
                if let Some(t) = st.total.take() {
                    t.bar.finish_and_clear();
                    self.multi.remove(&t.bar);
                    if t.bytes > 0 {
                        let secs = t.started.elapsed().as_secs_f64();
                        self.println(format!(
                            "Total {} in {secs:.1}s ({})",
                            BinaryBytes(t.bytes),
                            rate(t.bytes, t.started)
                        ));
                    }
                }
            }
            _ if st.depth == 0 => {}
            TransferEvent::Started { digest, size } | TransferEvent::Preparing { digest, size } => {
                let preparing = matches!(e, TransferEvent::Preparing { .. });
                if let Some(old) = st.blobs.remove(digest) {
                    // Restarted (or prepared, now transferred): its bytes no longer count.
                    self.drop_blob(st, &old, true);
                }
                let total_bar = self.total(st).bar.clone();
                if let (Some(s), false) = (size, preparing) {
                    total_bar.inc_length(s);
                }
                let bar = ProgressBar::with_draw_target(size, ProgressDrawTarget::hidden())
                    .with_style(blob_style(size.is_some(), preparing))
                    .with_prefix(short(digest).to_string());
                let bar = self.multi.insert_before(&total_bar, bar);
                st.blobs.insert(
                    digest.clone(),
                    Blob {
                        bar,
                        preparing,
                        size,
                        pos: 0,
                        started: Instant::now(),
                    },
                );
            }
            TransferEvent::Position { digest, pos } => {
                let Some(b) = st.blobs.get_mut(digest) else {
                    return;
                };
                let old = std::mem::replace(&mut b.pos, pos);
                b.bar.set_position(pos);
                if b.preparing {
                    return;
                }
                if let Some(t) = &mut st.total {
                    if pos >= old {
                        t.bar.inc(pos - old);
                        t.bytes += pos - old;
                    } else {
                        t.bar.dec(old - pos);
                        t.bytes = t.bytes.saturating_sub(old - pos);
                    }
                }
            }
            TransferEvent::Done { digest } => {
                let Some(b) = st.blobs.remove(digest) else {
                    return;
                };
                b.bar.finish_and_clear();
                self.multi.remove(&b.bar);
                if b.preparing {
                    return;
                }
                // Bars redraw at most 20 times a second: show the total as it now is.
                if let Some(t) = &st.total {
                    t.bar.force_draw();
                }
                self.println(format!(
                    "Copying blob {} done {} ({})",
                    short(digest),
                    BinaryBytes(b.pos),
                    rate(b.pos, b.started)
                ));
            }
            TransferEvent::Failed { digest } => {
                if let Some(b) = st.blobs.remove(digest) {
                    self.drop_blob(st, &b, false);
                }
            }
            TransferEvent::Skipped { digest } => {
                self.println(format!(
                    "Copying blob {} skipped: already exists",
                    short(digest)
                ));
            }
            TransferEvent::Mounted { digest, from } => {
                self.println(format!(
                    "Copying blob {} mounted from {from}",
                    short(digest)
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_come_and_go_with_the_copy() {
        let bars = TermBars::new(ProgressDrawTarget::hidden());
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        bars.event(TransferEvent::Started {
            digest: &a,
            size: Some(10),
        });
        assert!(
            bars.state.lock().unwrap().blobs.is_empty(),
            "outside a copy"
        );
        bars.event(TransferEvent::CopyBegin);
        bars.event(TransferEvent::Started {
            digest: &a,
            size: Some(100),
        });
        bars.event(TransferEvent::Started {
            digest: &b,
            size: None,
        });
        bars.event(TransferEvent::Position {
            digest: &a,
            pos: 60,
        });
        bars.event(TransferEvent::Position { digest: &b, pos: 5 });
        {
            let st = bars.state.lock().unwrap();
            let t = st.total.as_ref().unwrap();
            assert_eq!(
                (t.bytes, t.bar.position(), t.bar.length()),
                (65, 65, Some(100))
            );
        }
        // a restarted blob no longer counts its bytes; a failed one keeps what it moved
        bars.event(TransferEvent::Started {
            digest: &a,
            size: Some(100),
        });
        bars.event(TransferEvent::Failed { digest: &b });
        {
            let st = bars.state.lock().unwrap();
            let t = st.total.as_ref().unwrap();
            assert_eq!((t.bytes, t.bar.position()), (5, 5));
            assert_eq!(t.bar.length(), Some(100));
            assert_eq!(st.blobs.len(), 1);
        }
        bars.event(TransferEvent::Position {
            digest: &a,
            pos: 100,
        });
        bars.event(TransferEvent::Done { digest: &a });
        // a blob being prepared shows a bar but counts nowhere in the total
        bars.event(TransferEvent::Preparing {
            digest: &b,
            size: Some(1000),
        });
        bars.event(TransferEvent::Position {
            digest: &b,
            pos: 700,
        });
        {
            let st = bars.state.lock().unwrap();
            let t = st.total.as_ref().unwrap();
            assert_eq!((t.bytes, t.bar.length()), (105, Some(100)));
            assert_eq!(st.blobs[&b].bar.position(), 700);
        }
        bars.event(TransferEvent::Done { digest: &b });
        assert!(bars.state.lock().unwrap().blobs.is_empty());
        bars.event(TransferEvent::CopyEnd);
        let st = bars.state.lock().unwrap();
        assert!(st.blobs.is_empty() && st.total.is_none() && st.depth == 0);
    }

    #[test]
    fn short_digest_is_twelve_hex() {
        let d = Digest::of(b"x");
        assert_eq!(short(&d), &d.hex()[..12]);
        assert!(rate(1 << 20, Instant::now()).ends_with("/s"));
    }
}
