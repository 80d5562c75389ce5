//! Write-side helpers for the copy pipeline: a finishable decompressing writer (the
//! compressing side and the read-side decoders are `archive::compress`'s), media-type
//! compression mapping and a bounded in-memory writer.
use std::io::{self, Write};

use crate::archive::Compression;
use crate::image::manifest::*;

/// The compression a layer media type declares.
pub fn compression_of_media_type(mt: &str) -> Option<Compression> {
    match mt {
        OCI_LAYER_TAR | OCI_LAYER_NONDIST_TAR | DOCKER_LAYER_TAR => Some(Compression::None),
        OCI_LAYER_GZIP | OCI_LAYER_NONDIST_GZIP | DOCKER_LAYER_GZIP | DOCKER_LAYER_FOREIGN_GZIP => {
            Some(Compression::Gzip)
        }
        OCI_LAYER_ZSTD | OCI_LAYER_NONDIST_ZSTD => Some(Compression::Zstd),
        _ => None,
    }
}

/// A writer that decompresses what is written into `W`.
pub enum Decoder<W: Write> {
    /// Pass-through.
    None(W),
    /// gzip.
    Gzip(flate2::write::MultiGzDecoder<W>),
    /// zstd.
    Zstd(zstd::stream::write::Decoder<'static, W>),
    /// bzip2.
    Bzip2(bzip2::write::BzDecoder<W>),
    /// xz.
    Xz(xz2::write::XzDecoder<W>),
}

impl<W: Write> Decoder<W> {
    /// Decode `c` into `w`.
    pub fn new(w: W, c: Compression) -> io::Result<Self> {
        Ok(match c {
            Compression::None => Decoder::None(w),
            Compression::Gzip => Decoder::Gzip(flate2::write::MultiGzDecoder::new(w)),
            Compression::Zstd => Decoder::Zstd(zstd::stream::write::Decoder::new(w)?),
            Compression::Bzip2 => Decoder::Bzip2(bzip2::write::BzDecoder::new(w)),
            Compression::Xz => Decoder::Xz(xz2::write::XzDecoder::new_multi_decoder(w)),
        })
    }
    /// Flush everything and return the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Decoder::None(w) => Ok(w),
            Decoder::Gzip(d) => d.finish(),
            Decoder::Zstd(mut d) => {
                d.flush()?;
                Ok(d.into_inner())
            }
            Decoder::Bzip2(mut d) => d.finish(),
            Decoder::Xz(mut d) => d.finish(),
        }
    }
}

impl<W: Write> Write for Decoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Decoder::None(w) => w.write(buf),
            Decoder::Gzip(d) => d.write(buf),
            Decoder::Zstd(d) => d.write(buf),
            Decoder::Bzip2(d) => d.write(buf),
            Decoder::Xz(d) => d.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Decoder::None(w) => w.flush(),
            Decoder::Gzip(d) => d.flush(),
            Decoder::Zstd(d) => d.flush(),
            Decoder::Bzip2(d) => d.flush(),
            Decoder::Xz(d) => d.flush(),
        }
    }
}

/// A writer into memory that refuses to grow beyond a limit (bounded config/manifest reads).
#[derive(Debug, Default)]
pub struct LimitedVec {
    /// The bytes.
    pub buf: Vec<u8>,
    /// The limit.
    pub limit: u64,
}

impl Write for LimitedVec {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if self.buf.len() as u64 + b.len() as u64 > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("blob exceeds the size limit of {} bytes", self.limit),
            ));
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoder_roundtrip() {
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
            let mut e = crate::archive::compress::compressor(Vec::new(), c).unwrap();
            e.write_all(&data).unwrap();
            let z = e.finish().unwrap();
            let mut d = Decoder::new(Vec::new(), c).unwrap();
            d.write_all(&z).unwrap();
            assert_eq!(d.finish().unwrap(), data);
        }
        let mut d = Decoder::new(Vec::new(), Compression::Gzip).unwrap();
        assert!(d
            .write_all(b"not gzip at all")
            .and_then(|_| d.finish().map(|_| ()))
            .is_err());
    }

    #[test]
    fn limited_vec_refuses_growth() {
        let mut v = LimitedVec {
            buf: Vec::new(),
            limit: 4,
        };
        v.write_all(b"1234").unwrap();
        assert!(v.write_all(b"5").is_err());
    }
}
