//! Write-side codecs for the copy pipeline: a decompressing writer and a compressing writer,
//! both finishable so the hashing writers around them can be taken apart afterwards.
//!
//! (The read-side detection and decompression of `archive::compress` are used where a
//! reader is needed.)
use std::io::{self, Read, Write};

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

/// Detect a compression from a stream's first bytes.
pub fn sniff(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else if head.starts_with(b"BZh") {
        Compression::Bzip2
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Compression::Xz
    } else {
        Compression::None
    }
}

/// A reader that decompresses `r` according to `c`.
pub fn decoding_reader<'a, R: Read + 'a>(r: R, c: Compression) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match c {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(r)?),
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(r)),
        Compression::Xz => Box::new(xz2::read::XzDecoder::new_multi_decoder(r)),
    })
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

/// A writer that compresses into `W` (gzip or zstd; `None` passes through).
pub enum Encoder<W: Write> {
    /// Pass-through.
    None(W),
    /// gzip.
    Gzip(flate2::write::GzEncoder<W>),
    /// zstd.
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    /// Compress with `c` into `w`.
    pub fn new(w: W, c: Compression) -> io::Result<Self> {
        Ok(match c {
            Compression::None => Encoder::None(w),
            Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                w,
                flate2::Compression::default(),
            )),
            Compression::Zstd => Encoder::Zstd(zstd::stream::write::Encoder::new(w, 3)?),
            Compression::Bzip2 | Compression::Xz => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "bzip2 and xz compression can only be read",
                ))
            }
        })
    }
    /// Write the trailer and return the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::None(w) => Ok(w),
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::None(w) => w.write(buf),
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::None(w) => w.flush(),
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
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
    fn encode_decode_roundtrip() {
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
            let mut e = Encoder::new(Vec::new(), c).unwrap();
            e.write_all(&data).unwrap();
            let z = e.finish().unwrap();
            assert_eq!(sniff(&z), c);
            let mut d = Decoder::new(Vec::new(), c).unwrap();
            d.write_all(&z).unwrap();
            assert_eq!(d.finish().unwrap(), data);
            let mut out = Vec::new();
            decoding_reader(&z[..], c)
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, data);
        }
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
