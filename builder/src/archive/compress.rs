//! Compression: detection by magic, compressors and decompressors.
use std::io::{self, Read, Write};

use crate::error::{IoResultExt, Result};

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

/// How many leading bytes [`Compression::detect`] needs at most.
pub const MAGIC_LEN: usize = 6;

impl Compression {
    /// Detect from the first bytes of a stream.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b, 0x08]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if head.starts_with(b"BZh") {
            Compression::Bzip2
        } else if head.starts_with(&[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) {
            Compression::Xz
        } else {
            Compression::None
        }
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

/// Read up to `buf.len()` bytes, stopping early only at EOF.
fn read_head(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Peek at the magic of `r`, returning the detected compression and a reader that still
/// yields every byte of `r` (the peeked bytes first).
pub fn detect_reader(mut r: Box<dyn Read + Send>) -> Result<(Compression, Box<dyn Read + Send>)> {
    let mut head = [0u8; MAGIC_LEN];
    let n = read_head(&mut r, &mut head).at("reading", "compressed stream header")?;
    let c = Compression::detect(&head[..n]);
    let chained: Box<dyn Read + Send> = Box::new(io::Cursor::new(head[..n].to_vec()).chain(r));
    Ok((c, chained))
}

/// A reader that decompresses `r` according to its magic bytes.
pub fn decompress(r: Box<dyn Read + Send>) -> Result<Box<dyn Read + Send>> {
    let (c, r) = detect_reader(r)?;
    decompress_as(r, c)
}

/// A reader that decompresses `r` as `c`.
pub fn decompress_as(r: Box<dyn Read + Send>, c: Compression) -> Result<Box<dyn Read + Send>> {
    Ok(match c {
        Compression::None => r,
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(r).at("starting", "zstd decoder")?)
        }
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(r)),
        Compression::Xz => Box::new(xz2::read::XzDecoder::new_multi_decoder(r)),
    })
}

/// A compressing writer; call [`Finish::finish`] to flush the trailer and get `w` back.
pub trait Finish<W>: Write {
    /// Write the trailer and return the inner writer.
    fn finish(self: Box<Self>) -> std::io::Result<W>;
}

struct Plain<W>(W);

impl<W: Write> Write for Plain<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write> Finish<W> for Plain<W> {
    fn finish(self: Box<Self>) -> io::Result<W> {
        let mut w = self.0;
        w.flush()?;
        Ok(w)
    }
}

impl<W: Write> Finish<W> for super::pargz::ParGzEncoder<W> {
    fn finish(self: Box<Self>) -> io::Result<W> {
        super::pargz::ParGzEncoder::finish(*self)
    }
}

impl<W: Write> Finish<W> for zstd::stream::write::Encoder<'static, W> {
    fn finish(self: Box<Self>) -> io::Result<W> {
        zstd::stream::write::Encoder::finish(*self)
    }
}

/// gzip level used for layers: zlib-rs's level 3 gives blobs the size of buildah's default
/// (klauspost's level 6) at a quarter less CPU than zlib's level 6 (docs/design/decisions.md).
pub const GZIP_LEVEL: u32 = 3;
/// zstd level used for layers (containers/image's default).
pub const ZSTD_LEVEL: i32 = 3;

/// A writer that compresses into `w` at the default level (`None` passes through).
pub fn compressor<W: Write + Send + 'static>(
    w: W,
    c: Compression,
) -> Result<Box<dyn Finish<W> + Send>> {
    compressor_with_level(w, c, None)
}

/// Check a `--compression-level` for `c`: gzip takes 0–9, zstd 1–22 (as containers/image).
pub fn check_level(c: Compression, level: i32) -> Result<()> {
    let ok = match c {
        Compression::Gzip => (0..=9).contains(&level),
        Compression::Zstd => (1..=22).contains(&level),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(crate::error::Error::invalid(format!(
            "compression level {level} is out of range for {} (gzip: 0-9, zstd: 1-22)",
            format!("{c:?}").to_lowercase()
        )))
    }
}

/// A writer that compresses into `w` (`None` passes through); `level` overrides the default
/// ([`GZIP_LEVEL`], [`ZSTD_LEVEL`]). gzip runs on every core ([`super::pargz`]); zstd uses
/// its own worker threads.
pub fn compressor_with_level<W: Write + Send + 'static>(
    w: W,
    c: Compression,
    level: Option<i32>,
) -> Result<Box<dyn Finish<W> + Send>> {
    if let Some(l) = level {
        check_level(c, l)?;
    }
    Ok(match c {
        Compression::None => Box::new(Plain(w)),
        Compression::Gzip => Box::new(super::pargz::ParGzEncoder::new(
            w,
            level.map_or(GZIP_LEVEL, |l| l as u32),
        )),
        Compression::Zstd => {
            let mut e = zstd::stream::write::Encoder::new(w, level.unwrap_or(ZSTD_LEVEL))
                .at("starting", "zstd encoder")?;
            // Always at least one worker: zstd's output is then the same for any number
            // of workers, so a layer's digest does not depend on the machine.
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
            e.multithread(threads as u32)
                .at("starting", "zstd worker threads")?;
            Box::new(e)
        }
        Compression::Bzip2 | Compression::Xz => {
            return Err(crate::error::Error::invalid(format!(
                "compressing with {c:?} is not supported"
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect_table() {
        let cases: &[(&[u8], Compression)] = &[
            (&[0x1f, 0x8b, 0x08, 0], Compression::Gzip),
            (&[0x28, 0xb5, 0x2f, 0xfd, 1], Compression::Zstd),
            (b"BZh91AY", Compression::Bzip2),
            (&[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], Compression::Xz),
            (&[0xfd, 0x37, 0x7a, 0x58, 0x5a], Compression::None),
            (b"ustar", Compression::None),
            (b"", Compression::None),
            (&[0x1f], Compression::None),
        ];
        for (head, want) in cases {
            assert_eq!(Compression::detect(head), *want, "{head:?}");
        }
    }

    fn roundtrip(c: Compression, data: &[u8]) {
        let mut w = compressor(Vec::new(), c).unwrap();
        w.write_all(data).unwrap();
        let out = w.finish().unwrap();
        if c != Compression::None {
            assert_ne!(out, data);
        }
        assert_eq!(Compression::detect(&out), c);
        let mut r = decompress(Box::new(io::Cursor::new(out))).unwrap();
        let mut back = Vec::new();
        r.read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn roundtrips_keep_peeked_bytes() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            roundtrip(c, &data);
            roundtrip(c, b"abc");
            roundtrip(c, b"");
        }
    }

    #[test]
    fn bzip2_and_xz_decompress() {
        let data = b"hello layer".repeat(100);
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        bz.write_all(&data).unwrap();
        let mut xz = xz2::write::XzEncoder::new(Vec::new(), 6);
        xz.write_all(&data).unwrap();
        for (blob, c) in [
            (bz.finish().unwrap(), Compression::Bzip2),
            (xz.finish().unwrap(), Compression::Xz),
        ] {
            assert_eq!(Compression::detect(&blob), c);
            let mut back = Vec::new();
            decompress(Box::new(io::Cursor::new(blob)))
                .unwrap()
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data);
        }
        assert!(compressor(Vec::new(), Compression::Xz).is_err());
    }

    #[test]
    fn zstd_frames_do_not_depend_on_the_worker_count() {
        // What `compressor_with_level` relies on to keep layer digests machine-independent.
        let mut data = Vec::new();
        let mut x = 1u64;
        for i in 0..10_000_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 3 == 0 {
                data.extend_from_slice(&x.to_le_bytes()[..3]);
            } else {
                data.extend_from_slice(b"ab\n");
            }
        }
        let z = |workers: u32| {
            let mut e = zstd::stream::write::Encoder::new(Vec::new(), ZSTD_LEVEL).unwrap();
            e.multithread(workers).unwrap();
            e.write_all(&data).unwrap();
            e.finish().unwrap()
        };
        let one = z(1);
        assert_eq!(z(2), one);
        assert_eq!(z(5), one);
    }

    #[test]
    fn levels_are_checked() {
        assert!(check_level(Compression::Gzip, 9).is_ok());
        assert!(check_level(Compression::Gzip, 10).is_err());
        assert!(check_level(Compression::Zstd, 0).is_err());
        assert!(check_level(Compression::Zstd, 19).is_ok());
        assert!(compressor_with_level(Vec::new(), Compression::Gzip, Some(-2)).is_err());
    }

    #[test]
    fn multistream_gzip() {
        let mut all = Vec::new();
        for part in [&b"one"[..], b"two"] {
            let mut w = compressor(Vec::new(), Compression::Gzip).unwrap();
            w.write_all(part).unwrap();
            all.extend(w.finish().unwrap());
        }
        let mut back = Vec::new();
        decompress(Box::new(io::Cursor::new(all)))
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, b"onetwo");
    }
}
