//! One-pass layer writing for commit: the tar goes through a sha256 of the uncompressed
//! stream (the diff ID), then the compressor, then a sha256 of the compressed blob.
use std::io::{self, Write};

use super::compress::{compressor_with_level, Compression, Finish};
use crate::error::Result;
use crate::image::{Digest, Sha256Writer};

/// What [`LayerWriter::finish`] reports.
#[derive(Debug)]
pub struct LayerDigests<W> {
    /// sha256 of the uncompressed tar (the layer's diff ID).
    pub diff_id: Digest,
    /// Length of the uncompressed tar.
    pub diff_size: u64,
    /// sha256 of the compressed blob (equal to `diff_id` when uncompressed).
    pub blob_digest: Digest,
    /// Length of the compressed blob.
    pub blob_size: u64,
    /// The compression used.
    pub compression: Compression,
    /// The inner writer, flushed.
    pub inner: W,
}

/// A writer that digests the uncompressed stream, compresses it and digests the result.
pub struct LayerWriter<W: Write + Send + 'static> {
    outer: Outer<Box<dyn Finish<Sha256Writer<W>> + Send>>,
    compression: Compression,
}

/// The uncompressed side: hashed, or (a diff ID the source vouches for) only counted.
enum Outer<C: Write> {
    Hash(Sha256Writer<C>),
    Known {
        inner: C,
        digest: Digest,
        written: u64,
    },
}

impl<C: Write> Outer<C> {
    fn written(&self) -> u64 {
        match self {
            Outer::Hash(h) => h.written(),
            Outer::Known { written, .. } => *written,
        }
    }
    fn finish(self) -> (Digest, u64, C) {
        match self {
            Outer::Hash(h) => h.finish(),
            Outer::Known {
                inner,
                digest,
                written,
            } => (digest, written, inner),
        }
    }
}

impl<C: Write> Write for Outer<C> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Outer::Hash(h) => h.write(buf),
            Outer::Known { inner, written, .. } => {
                let n = inner.write(buf)?;
                *written += n as u64;
                Ok(n)
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Outer::Hash(h) => h.flush(),
            Outer::Known { inner, .. } => inner.flush(),
        }
    }
}

impl<W: Write + Send + 'static> std::fmt::Debug for LayerWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerWriter")
            .field("compression", &self.compression)
            .field("written", &self.outer.written())
            .finish()
    }
}

impl<W: Write + Send + 'static> LayerWriter<W> {
    /// Write the blob into `w`, compressed with `c` (`None`, `Gzip` or `Zstd`).
    pub fn new(w: W, c: Compression) -> Result<LayerWriter<W>> {
        Self::with_level(w, c, None)
    }

    /// As [`LayerWriter::new`] at compression level `level` (`None` = the default).
    pub fn with_level(w: W, c: Compression, level: Option<i32>) -> Result<LayerWriter<W>> {
        let comp = compressor_with_level(Sha256Writer::new(w), c, level)?;
        Ok(LayerWriter {
            outer: Outer::Hash(Sha256Writer::new(comp)),
            compression: c,
        })
    }

    /// As [`LayerWriter::with_level`] for a stream whose digest is already known and
    /// verified by its source (a stored layer rebuilt from tar-split, every file checked
    /// against its CRC-64): the uncompressed bytes are counted, not hashed again, and
    /// [`LayerDigests::diff_id`] is `diff_id`.
    pub fn with_known_diff(
        w: W,
        c: Compression,
        level: Option<i32>,
        diff_id: Digest,
    ) -> Result<LayerWriter<W>> {
        let comp = compressor_with_level(Sha256Writer::new(w), c, level)?;
        Ok(LayerWriter {
            outer: Outer::Known {
                inner: comp,
                digest: diff_id,
                written: 0,
            },
            compression: c,
        })
    }

    /// Uncompressed bytes written so far.
    pub fn written(&self) -> u64 {
        self.outer.written()
    }

    /// Flush the compressor's trailer and return both digests.
    pub fn finish(self) -> io::Result<LayerDigests<W>> {
        let (diff_id, diff_size, comp) = self.outer.finish();
        let blob = comp.finish()?;
        let (blob_digest, blob_size, mut inner) = blob.finish();
        inner.flush()?;
        Ok(LayerDigests {
            diff_id,
            diff_size,
            blob_digest,
            blob_size,
            compression: self.compression,
            inner,
        })
    }
}

impl<W: Write + Send + 'static> Write for LayerWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outer.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.outer.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn digests_both_streams() {
        let data = b"layer bytes ".repeat(1000);
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let mut w = LayerWriter::new(Vec::new(), c).unwrap();
            w.write_all(&data).unwrap();
            let d = w.finish().unwrap();
            assert_eq!(d.diff_id, Digest::of(&data));
            assert_eq!(d.diff_size, data.len() as u64);
            assert_eq!(d.blob_digest, Digest::of(&d.inner));
            assert_eq!(d.blob_size, d.inner.len() as u64);
            if c == Compression::None {
                assert_eq!(d.blob_digest, d.diff_id);
            } else {
                assert_ne!(d.blob_digest, d.diff_id);
            }
            let mut back = Vec::new();
            super::super::compress::decompress(Box::new(io::Cursor::new(d.inner)))
                .unwrap()
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data);
        }
    }
}
