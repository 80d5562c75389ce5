//! User-facing progress ("Copying blob …", "Writing manifest to image destination") goes
//! through a [`Reporter`] the caller passes in; libraries never print.
//!
//! Byte-level progress of blob transfers is a second, optional channel: a reporter that
//! shows it (the CLI on a terminal) hands out a [`TransferProgress`] sink, and the one party
//! that moves a blob's bytes over the slow medium reports them there as [`TransferEvent`]s:
//!
//! ```text
//!  copy_image ─ reporter.transfers() ─▶ None: plain lines only ("Copying blob sha256:…"), nothing counted
//!                                   └─▶ Some(sink): CopyBegin … CopyEnd around the copy, and per blob
//!                                        Started{size} → Position{pos}… → Done | Failed, or Skipped | Mounted,
//!                                        from the destination (registry uploads, each after the
//!                                        pipeline's Preparing{size} → Position… → Done of the blob it
//!                                        reads and compresses), else the source (registry downloads,
//!                                        also the ones running ahead), else the pipeline itself
//!                                        (bytes read from the source)
//! ```
//! A [`BlobMeter`] does the counting: positions are sent at most once per [`METER_BATCH`]
//! bytes, and a meter without a sink is a no-op, so nobody listening costs nothing.
use std::io::{self, Read, Write};
use std::sync::Arc;

use crate::image::Digest;

/// A sink for progress lines and warnings.
pub trait Reporter: Send + Sync {
    /// A progress line, e.g. `Copying blob …`.
    fn progress(&self, line: &str);
    /// A warning shown to the user (`WARN[0000] …` in buildah).
    fn warn(&self, line: &str);
    /// Where byte-level transfer progress goes, when this reporter shows it (progress bars
    /// on a terminal). `None`, the default: nothing is counted and the copy pipeline prints
    /// its plain per-blob lines instead.
    fn transfers(&self) -> Option<Arc<dyn TransferProgress>> {
        None
    }
}

/// A reporter that drops everything (`--quiet`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet;

impl Reporter for Quiet {
    fn progress(&self, _line: &str) {}
    fn warn(&self, _line: &str) {}
}

/// One step of a transfer, as a [`TransferProgress`] sink receives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferEvent<'a> {
    /// A copy of an image begins; every `CopyBegin` is followed by its `CopyEnd`, even when
    /// the copy fails. Copies may nest or overlap (parallel build stages).
    CopyBegin,
    /// The copy ended (succeeded or failed); no more events for its blobs.
    CopyEnd,
    /// A blob transfer starts; the same digest started again means the transfer restarted
    /// from the beginning (a retried upload).
    Started {
        /// The blob.
        digest: &'a Digest,
        /// Its size, when known.
        size: Option<u64>,
    },
    /// The pipeline starts preparing a blob (reading, verifying, recompressing it) that the
    /// destination transfers later itself: not a transfer, but it can take a while. Its
    /// `Position`s and `Done` (or `Failed`) follow as for a transfer, before the transfer's
    /// own `Started`.
    Preparing {
        /// The source's blob.
        digest: &'a Digest,
        /// Its size, when known.
        size: Option<u64>,
    },
    /// Bytes of the blob moved so far (absolute, so a resumed or repeated chunk is not
    /// counted twice).
    Position {
        /// The blob.
        digest: &'a Digest,
        /// Bytes moved so far.
        pos: u64,
    },
    /// The blob arrived whole (and verified, where the reporting party verifies).
    Done {
        /// The blob.
        digest: &'a Digest,
    },
    /// The transfer stopped without completing (the copy's error says why).
    Failed {
        /// The blob.
        digest: &'a Digest,
    },
    /// The destination already has the blob: nothing was transferred.
    Skipped {
        /// The blob.
        digest: &'a Digest,
    },
    /// The destination registry mounted the blob from another repository.
    Mounted {
        /// The blob.
        digest: &'a Digest,
        /// The repository it was mounted from.
        from: &'a str,
    },
}

/// Receives [`TransferEvent`]s; shared with background transfers, so `'static`.
pub trait TransferProgress: Send + Sync {
    /// One event. Called at most once per [`METER_BATCH`] bytes per blob.
    fn event(&self, e: TransferEvent<'_>);
}

/// A shared sink, or none.
pub type Transfers = Option<Arc<dyn TransferProgress>>;

/// Bytes between two [`TransferEvent::Position`] reports of one blob.
pub const METER_BATCH: u64 = 64 << 10;

/// Counts the bytes of one blob transfer for a [`TransferProgress`] sink. Dropped without
/// [`BlobMeter::done`], it reports [`TransferEvent::Failed`].
pub struct BlobMeter {
    sink: Option<(Arc<dyn TransferProgress>, Digest)>,
    pos: u64,
    reported: u64,
}

impl std::fmt::Debug for BlobMeter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobMeter")
            .field("digest", &self.sink.as_ref().map(|(_, d)| d))
            .field("pos", &self.pos)
            .finish()
    }
}

impl BlobMeter {
    /// Start metering `digest` (reports [`TransferEvent::Started`]); a no-op meter when
    /// `sink` is `None`.
    pub fn start(
        sink: Option<&Arc<dyn TransferProgress>>,
        digest: &Digest,
        size: Option<u64>,
    ) -> Self {
        Self::begin(sink, TransferEvent::Started { digest, size }, digest)
    }

    /// Start metering the preparation of `digest` (reports [`TransferEvent::Preparing`]).
    pub fn preparing(
        sink: Option<&Arc<dyn TransferProgress>>,
        digest: &Digest,
        size: Option<u64>,
    ) -> Self {
        Self::begin(sink, TransferEvent::Preparing { digest, size }, digest)
    }

    fn begin(
        sink: Option<&Arc<dyn TransferProgress>>,
        first: TransferEvent<'_>,
        digest: &Digest,
    ) -> Self {
        let sink = sink.map(|s| {
            s.event(first);
            (s.clone(), digest.clone())
        });
        BlobMeter {
            sink,
            pos: 0,
            reported: 0,
        }
    }

    /// A meter that reports nothing.
    pub fn none() -> Self {
        BlobMeter {
            sink: None,
            pos: 0,
            reported: 0,
        }
    }

    /// Whether anyone listens.
    pub fn is_active(&self) -> bool {
        self.sink.is_some()
    }

    /// `n` more bytes moved.
    #[inline]
    pub fn add(&mut self, n: u64) {
        if self.sink.is_some() {
            self.set(self.pos + n);
        }
    }

    /// `pos` bytes moved so far (absolute).
    #[inline]
    pub fn set(&mut self, pos: u64) {
        let Some((s, digest)) = &self.sink else {
            return;
        };
        self.pos = pos;
        if pos.abs_diff(self.reported) >= METER_BATCH {
            self.reported = pos;
            s.event(TransferEvent::Position { digest, pos });
        }
    }

    /// The transfer starts over from byte 0 (reports [`TransferEvent::Started`] again).
    pub fn restart(&mut self, size: Option<u64>) {
        if let Some((s, digest)) = &self.sink {
            self.pos = 0;
            self.reported = 0;
            s.event(TransferEvent::Started { digest, size });
        }
    }

    /// The transfer completed.
    pub fn done(mut self) {
        if let Some((s, digest)) = self.sink.take() {
            if self.pos != self.reported {
                s.event(TransferEvent::Position {
                    digest: &digest,
                    pos: self.pos,
                });
            }
            s.event(TransferEvent::Done { digest: &digest });
        }
    }
}

impl Drop for BlobMeter {
    fn drop(&mut self) {
        if let Some((s, digest)) = self.sink.take() {
            s.event(TransferEvent::Failed { digest: &digest });
        }
    }
}

/// A writer counting what passes into a [`BlobMeter`].
#[derive(Debug)]
pub struct MeteredWrite<'a, W: ?Sized> {
    /// Where the bytes go.
    pub inner: &'a mut W,
    /// What counts them.
    pub meter: &'a mut BlobMeter,
}

impl<W: Write + ?Sized> Write for MeteredWrite<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.meter.add(n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader counting what passes into its [`BlobMeter`], which reports
/// [`TransferEvent::Done`] at end-of-file (the streams it wraps end only once verified).
#[derive(Debug)]
pub struct MeteredRead<R> {
    inner: R,
    meter: Option<BlobMeter>,
}

impl<R> MeteredRead<R> {
    /// Count what `inner` yields.
    pub fn new(inner: R, meter: BlobMeter) -> Self {
        MeteredRead {
            inner,
            meter: Some(meter),
        }
    }
}

impl<R: Read> Read for MeteredRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            if let Some(m) = self.meter.take() {
                m.done();
            }
        } else if let Some(m) = &mut self.meter {
            m.add(n as u64);
        }
        Ok(n)
    }
}

/// Reports [`TransferEvent::CopyBegin`] now and [`TransferEvent::CopyEnd`] when dropped.
pub struct CopyScope(Transfers);

impl CopyScope {
    /// Begin a copy on `sink` (nothing when `None`).
    pub fn begin(sink: &Transfers) -> Self {
        if let Some(s) = sink {
            s.event(TransferEvent::CopyBegin);
        }
        CopyScope(sink.clone())
    }
}

impl Drop for CopyScope {
    fn drop(&mut self) {
        if let Some(s) = &self.0 {
            s.event(TransferEvent::CopyEnd);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A sink recording events as text.
    #[derive(Default)]
    pub struct Record(pub Mutex<Vec<String>>);

    impl TransferProgress for Record {
        fn event(&self, e: TransferEvent<'_>) {
            let s = match e {
                TransferEvent::CopyBegin => "begin".to_string(),
                TransferEvent::CopyEnd => "end".to_string(),
                TransferEvent::Started { digest, size } => format!("start {digest} {size:?}"),
                TransferEvent::Preparing { digest, size } => {
                    format!("preparing {digest} {size:?}")
                }
                TransferEvent::Position { digest, pos } => format!("pos {digest} {pos}"),
                TransferEvent::Done { digest } => format!("done {digest}"),
                TransferEvent::Failed { digest } => format!("failed {digest}"),
                TransferEvent::Skipped { digest } => format!("skipped {digest}"),
                TransferEvent::Mounted { digest, from } => format!("mounted {digest} {from}"),
            };
            self.0.lock().unwrap().push(s);
        }
    }

    impl Record {
        pub fn take(&self) -> Vec<String> {
            std::mem::take(&mut *self.0.lock().unwrap())
        }
    }

    #[test]
    fn meter_batches_and_finishes() {
        let rec = Arc::new(Record::default());
        let sink: Arc<dyn TransferProgress> = rec.clone();
        let d = Digest::of(b"x");
        let mut m = BlobMeter::start(Some(&sink), &d, Some(200_000));
        for _ in 0..200 {
            m.add(1000);
        }
        m.done();
        let ev = rec.take();
        // one start, a position per 64 KiB (65,000 / 131,000 / 197,000), the rest, done
        assert_eq!(
            ev,
            vec![
                format!("start {d} Some(200000)"),
                format!("pos {d} 66000"),
                format!("pos {d} 132000"),
                format!("pos {d} 198000"),
                format!("pos {d} 200000"),
                format!("done {d}"),
            ]
        );
        // dropped unfinished: failed; restarted: started again
        let mut m = BlobMeter::start(Some(&sink), &d, None);
        m.add(10);
        m.restart(None);
        drop(m);
        assert_eq!(
            rec.take(),
            vec![
                format!("start {d} None"),
                format!("start {d} None"),
                format!("failed {d}"),
            ]
        );
        // no sink: nothing, and the reader still reads
        let mut r = MeteredRead::new(&b"abc"[..], BlobMeter::none());
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "abc");
        // a metered reader reports done at end-of-file only
        let mut r = MeteredRead::new(&[7u8; 70_000][..], BlobMeter::start(Some(&sink), &d, None));
        let mut buf = [0u8; 10_000];
        while r.read(&mut buf).unwrap() > 0 {}
        assert_eq!(
            rec.take(),
            vec![
                format!("start {d} None"),
                format!("pos {d} 70000"),
                format!("done {d}"),
            ]
        );
    }
}
