//! Compression: detection by magic, compressors and decompressors.
use std::io::{Read, Write};

use crate::error::Result;

/// A layer compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Uncompressed tar.
    #[default]
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
    /// bzip2 (read only).
    Bzip2,
    /// xz (read only).
    Xz,
}

impl Compression {
    /// Detect from the first bytes of a stream.
    pub fn detect(_head: &[u8]) -> Compression {
        todo!("archive::compress::detect")
    }
    /// containers/storage's numeric code (0 none, 1 bzip2, 2 gzip, 3 xz, 4 zstd).
    pub fn storage_code(self) -> i32 {
        match self {
            Compression::None => 0,
            Compression::Bzip2 => 1,
            Compression::Gzip => 2,
            Compression::Xz => 3,
            Compression::Zstd => 4,
        }
    }
}

/// A reader that decompresses `r` according to its magic bytes.
pub fn decompress(_r: Box<dyn Read + Send>) -> Result<Box<dyn Read + Send>> {
    todo!("archive::compress::decompress")
}

/// A compressing writer; call [`Finish::finish`] to flush the trailer and get `w` back.
pub trait Finish<W>: Write {
    /// Write the trailer and return the inner writer.
    fn finish(self: Box<Self>) -> std::io::Result<W>;
}

/// A writer that compresses into `w` (`None` passes through).
pub fn compressor<W: Write + Send + 'static>(_w: W, _c: Compression) -> Result<Box<dyn Finish<W> + Send>> {
    todo!("archive::compress::compressor")
}
