//! tar-split: the JSON-lines record of a tar stream's non-file bytes (vbatts/tar-split, as
//! containers/storage stores it gzip-compressed in `<driver>-layers/<id>.tar-split.gz`), and
//! reassembly of the exact stream from it plus the files.
//!
//! Each line is one entry: `{"type":2,"payload":"<base64>","position":N}` for a raw segment
//! (headers, padding, trailer), `{"type":1,"name":"…","size":N,"payload":"<base64 crc64>","position":N}`
//! for a file whose content lives on disk (`payload` is `null` when `size` is 0; `name_raw`
//! replaces `name` when the name is not UTF-8).
use std::collections::HashSet;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

use base64::Engine as _;
use rustix::fs::{Mode, OFlags};
use serde::Deserialize;

use super::ArchiveError;
use crate::error::{Error, IoResultExt, Result};
use crate::rootfs::Root;

/// Entry type of a file payload.
pub const FILE_TYPE: i32 = 1;
/// Entry type of a raw segment.
pub const SEGMENT_TYPE: i32 = 2;

/// CRC-64 with the ISO polynomial, as Go's `hash/crc64` with `crc64.ISO` (tar-split's checksum).
#[derive(Debug, Clone)]
pub struct Crc64 {
    crc: u64,
}

/// Slice-by-8 tables: `T[0]` is the classic byte table (ISO polynomial, reflected, as Go's
/// `crc64.ISO`), `T[k][i]` is `T[0][i]` advanced by `k` zero bytes.
const fn crc_tables() -> [[u64; 256]; 8] {
    let mut t = [[0u64; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u64;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 == 1 {
                (c >> 1) ^ 0xD800_0000_0000_0000
            } else {
                c >> 1
            };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut k = 1;
        while k < 8 {
            let prev = t[k - 1][i];
            t[k][i] = t[0][(prev & 0xff) as usize] ^ (prev >> 8);
            k += 1;
        }
        i += 1;
    }
    t
}

static CRC_TABLES: [[u64; 256]; 8] = crc_tables();

impl Default for Crc64 {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc64 {
    /// A fresh checksum.
    pub fn new() -> Crc64 {
        Crc64 { crc: 0 }
    }
    /// Feed bytes.
    pub fn update(&mut self, data: &[u8]) {
        let t = &CRC_TABLES;
        let mut c = !self.crc;
        let mut chunks = data.chunks_exact(8);
        for w in &mut chunks {
            let x = c ^ u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            c = t[7][(x & 0xff) as usize]
                ^ t[6][((x >> 8) & 0xff) as usize]
                ^ t[5][((x >> 16) & 0xff) as usize]
                ^ t[4][((x >> 24) & 0xff) as usize]
                ^ t[3][((x >> 32) & 0xff) as usize]
                ^ t[2][((x >> 40) & 0xff) as usize]
                ^ t[1][((x >> 48) & 0xff) as usize]
                ^ t[0][(x >> 56) as usize];
        }
        for b in chunks.remainder() {
            c = t[0][((c as u8) ^ *b) as usize] ^ (c >> 8);
        }
        self.crc = !c;
    }
    /// The current value.
    pub fn value(&self) -> u64 {
        self.crc
    }
    /// The value as tar-split stores it (8 bytes big-endian).
    pub fn bytes(&self) -> [u8; 8] {
        self.crc.to_be_bytes()
    }
}

/// Go's `filepath.Clean` on bytes (used for tar-split's duplicate-name check).
pub fn go_clean(p: &[u8]) -> Vec<u8> {
    if p.is_empty() {
        return b".".to_vec();
    }
    let rooted = p[0] == b'/';
    let mut out: Vec<&[u8]> = Vec::new();
    for c in p.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                if out.last().is_some_and(|l| *l != b"..") {
                    out.pop();
                } else if !rooted {
                    out.push(c);
                }
            }
            c => out.push(c),
        }
    }
    let mut s = if rooted { b"/".to_vec() } else { Vec::new() };
    s.extend(out.join(&b'/'));
    if s.is_empty() {
        s.push(b'.');
    }
    s
}

/// Append `s` as a JSON string the way Go's `encoding/json` does (HTML-safe escaping).
fn go_json_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for ch in s.chars() {
        match ch {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 || c == '<' || c == '>' || c == '&' => {
                let v = c as u32;
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(v >> 4) as usize]);
                out.push(HEX[(v & 15) as usize]);
            }
            '\u{2028}' => out.extend_from_slice(b"\\u2028"),
            '\u{2029}' => out.extend_from_slice(b"\\u2029"),
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    out.push(b'"');
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Writes tar-split entries as JSON lines (tar-split's `storage.NewJSONPacker`), refusing
/// duplicate file names as it does.
#[derive(Debug)]
pub struct Packer<W: Write> {
    w: W,
    pos: u64,
    seen: HashSet<Vec<u8>>,
    line: Vec<u8>,
}

impl<W: Write> Packer<W> {
    /// A packer writing into `w` (already compressed, if wanted).
    pub fn new(w: W) -> Packer<W> {
        Packer {
            w,
            pos: 0,
            seen: HashSet::new(),
            line: Vec::new(),
        }
    }

    /// Record raw stream bytes. Empty segments are not recorded.
    pub fn add_segment(&mut self, payload: &[u8]) -> io::Result<()> {
        if payload.is_empty() {
            return Ok(());
        }
        self.line.clear();
        self.line.extend_from_slice(b"{\"type\":2,\"payload\":\"");
        self.line.extend_from_slice(b64(payload).as_bytes());
        self.line.extend_from_slice(b"\",");
        self.finish_line()
    }

    /// Record a file entry: its name, content size and CRC-64 (required when `size > 0`).
    pub fn add_file(&mut self, name: &[u8], size: u64, crc: Option<[u8; 8]>) -> io::Result<()> {
        if !self.seen.insert(go_clean(name)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "duplicates of file paths not supported: {:?}",
                    String::from_utf8_lossy(name)
                ),
            ));
        }
        self.line.clear();
        self.line.extend_from_slice(b"{\"type\":1,");
        match std::str::from_utf8(name) {
            Ok(s) if !s.is_empty() => {
                self.line.extend_from_slice(b"\"name\":");
                go_json_string(&mut self.line, s);
                self.line.push(b',');
            }
            Ok(_) => {}
            Err(_) => {
                self.line.extend_from_slice(b"\"name_raw\":\"");
                self.line.extend_from_slice(b64(name).as_bytes());
                self.line.extend_from_slice(b"\",");
            }
        }
        if size > 0 {
            self.line
                .extend_from_slice(format!("\"size\":{size},").as_bytes());
        }
        match crc {
            Some(c) => {
                self.line.extend_from_slice(b"\"payload\":\"");
                self.line.extend_from_slice(b64(&c).as_bytes());
                self.line.extend_from_slice(b"\",");
            }
            None => self.line.extend_from_slice(b"\"payload\":null,"),
        }
        self.finish_line()
    }

    fn finish_line(&mut self) -> io::Result<()> {
        self.line
            .extend_from_slice(format!("\"position\":{}}}\n", self.pos).as_bytes());
        self.w.write_all(&self.line)?;
        self.pos += 1;
        Ok(())
    }

    /// The inner writer.
    pub fn into_inner(self) -> W {
        self.w
    }
}

/// One decoded tar-split entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// Raw stream bytes.
    Segment(Vec<u8>),
    /// A file whose content comes from disk.
    File {
        /// The name as in the tar.
        name: Vec<u8>,
        /// Content length.
        size: u64,
        /// CRC-64 (ISO) of the content, big-endian, when `size > 0`.
        crc: Option<Vec<u8>>,
    },
}

#[derive(Deserialize)]
struct RawEntry {
    #[serde(rename = "type")]
    kind: i32,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    name_raw: Option<String>,
    #[serde(default)]
    size: Option<i64>,
    #[serde(default)]
    payload: Option<String>,
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Reads entries from uncompressed tar-split JSON lines (refusing duplicate file names).
pub struct Unpacker<R: BufRead> {
    r: R,
    seen: HashSet<Vec<u8>>,
    line: Vec<u8>,
}

impl<R: BufRead> Unpacker<R> {
    /// Read from `r`.
    pub fn new(r: R) -> Unpacker<R> {
        Unpacker {
            r,
            seen: HashSet::new(),
            line: Vec::new(),
        }
    }

    /// The next entry, `None` at the end.
    pub fn next_entry(&mut self) -> io::Result<Option<Entry>> {
        loop {
            self.line.clear();
            if self.r.read_until(b'\n', &mut self.line)? == 0 {
                return Ok(None);
            }
            if self.line.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            break;
        }
        let raw: RawEntry = serde_json::from_slice(&self.line)
            .map_err(|e| bad(format!("decoding tar-split entry: {e}")))?;
        let dec = |s: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| bad(format!("decoding tar-split payload: {e}")))
        };
        let payload = raw.payload.as_deref().map(dec).transpose()?;
        match raw.kind {
            SEGMENT_TYPE => Ok(Some(Entry::Segment(payload.unwrap_or_default()))),
            FILE_TYPE => {
                let name = match (raw.name_raw.as_deref(), raw.name) {
                    (Some(r), _) if !r.is_empty() => dec(r)?,
                    (_, Some(n)) => n.into_bytes(),
                    _ => Vec::new(),
                };
                let size = raw.size.unwrap_or(0);
                if size < 0 {
                    return Err(bad(format!(
                        "negative size in tar-split entry {:?}",
                        String::from_utf8_lossy(&name)
                    )));
                }
                if !self.seen.insert(go_clean(&name)) {
                    return Err(bad("duplicates of file paths not supported".into()));
                }
                Ok(Some(Entry::File {
                    name,
                    size: size as u64,
                    crc: payload,
                }))
            }
            k => Err(bad(format!("unknown tar-split entry type {k}"))),
        }
    }
}

/// Rebuild the exact tar stream from gzip-compressed tar-split metadata and the layer's files
/// under `root` (opened inside it), verifying each file's size and CRC-64.
pub fn assemble(tar_split_gz: &mut dyn Read, root: &Path, out: &mut dyn Write) -> Result<()> {
    let root = Root::open(root).at("opening", root)?;
    let gz = flate2::read::MultiGzDecoder::new(tar_split_gz);
    let mut up = Unpacker::new(BufReader::new(gz));
    let mut buf = vec![0u8; 128 * 1024];
    let ts = Path::new("tar-split metadata");
    while let Some(e) = up.next_entry().at("reading", ts)? {
        match e {
            Entry::Segment(b) => out.write_all(&b).at("writing", "tar stream")?,
            Entry::File { size: 0, .. } => {}
            Entry::File { name, size, crc } => {
                let shown = root.display(&name);
                let mut f = std::fs::File::from(
                    root.open_at(&name, OFlags::RDONLY | OFlags::NOFOLLOW, Mode::empty())
                        .at("opening", &shown)?,
                );
                let mut c = Crc64::new();
                let mut left = size;
                while left > 0 {
                    let want = left.min(buf.len() as u64) as usize;
                    let n = f.read(&mut buf[..want]).at("reading", &shown)?;
                    if n == 0 {
                        return Err(mismatch(
                            &name,
                            format!("file is shorter than its recorded size {size}"),
                        ));
                    }
                    c.update(&buf[..n]);
                    out.write_all(&buf[..n]).at("writing", "tar stream")?;
                    left -= n as u64;
                }
                if f.read(&mut buf[..1]).at("reading", &shown)? != 0 {
                    return Err(mismatch(
                        &name,
                        format!("file is longer than its recorded size {size}"),
                    ));
                }
                if crc.as_deref() != Some(&c.bytes()[..]) {
                    return Err(mismatch(&name, "file integrity checksum failed".into()));
                }
            }
        }
    }
    Ok(())
}

fn mismatch(name: &[u8], reason: String) -> Error {
    ArchiveError::BadEntry {
        name: String::from_utf8_lossy(name).into_owned(),
        reason,
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_iso_check_value() {
        let mut c = Crc64::new();
        c.update(b"123456789");
        assert_eq!(c.value(), 0xb909_56c7_75a4_1001);
        let mut d = Crc64::new();
        d.update(b"1234");
        d.update(b"56789");
        assert_eq!(d.value(), c.value());
        assert_eq!(Crc64::new().value(), 0);
    }

    /// The bitwise definition, to check the slice-by-8 tables against.
    fn crc64_bitwise(data: &[u8]) -> u64 {
        let mut c = !0u64;
        for b in data {
            c ^= u64::from(*b);
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    (c >> 1) ^ 0xD800_0000_0000_0000
                } else {
                    c >> 1
                };
            }
        }
        !c
    }

    #[test]
    fn crc64_slices_match_the_bitwise_definition_at_any_split() {
        let data: Vec<u8> = (0..1000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 999, 1000] {
            let want = crc64_bitwise(&data[..len]);
            let mut whole = Crc64::new();
            whole.update(&data[..len]);
            assert_eq!(whole.value(), want, "len {len}");
            for split in [0, 1, 3, 8, len / 2] {
                let split = split.min(len);
                let mut c = Crc64::new();
                c.update(&data[..split]);
                c.update(&data[split..len]);
                assert_eq!(c.value(), want, "len {len} split {split}");
            }
        }
    }

    #[test]
    fn go_clean_table() {
        for (i, o) in [
            ("", "."),
            ("a/b/", "a/b"),
            ("./a//b/./c", "a/b/c"),
            ("a/../../b", "../b"),
            ("/../x", "/x"),
            ("/", "/"),
            ("..", ".."),
        ] {
            assert_eq!(go_clean(i.as_bytes()), o.as_bytes(), "{i}");
        }
    }

    #[test]
    fn packer_lines_match_go() {
        let mut p = Packer::new(Vec::new());
        p.add_segment(b"hdr").unwrap();
        p.add_file(b"a<b>&\"\n", 3, Some([1, 2, 3, 4, 5, 6, 7, 8]))
            .unwrap();
        p.add_file(b"empty", 0, None).unwrap();
        p.add_file(b"\xff\xfe", 0, None).unwrap();
        p.add_segment(b"").unwrap();
        assert!(p.add_file(b"./empty", 0, None).is_err());
        let out = String::from_utf8(p.into_inner()).unwrap();
        assert_eq!(
            out,
            concat!(
                "{\"type\":2,\"payload\":\"aGRy\",\"position\":0}\n",
                "{\"type\":1,\"name\":\"a\\u003cb\\u003e\\u0026\\\"\\n\",\"size\":3,\"payload\":\"AQIDBAUGBwg=\",\"position\":1}\n",
                "{\"type\":1,\"name\":\"empty\",\"payload\":null,\"position\":2}\n",
                "{\"type\":1,\"name_raw\":\"//4=\",\"payload\":null,\"position\":3}\n",
            )
        );
        let mut up = Unpacker::new(out.as_bytes());
        assert_eq!(
            up.next_entry().unwrap(),
            Some(Entry::Segment(b"hdr".to_vec()))
        );
        assert_eq!(
            up.next_entry().unwrap(),
            Some(Entry::File {
                name: b"a<b>&\"\n".to_vec(),
                size: 3,
                crc: Some(vec![1, 2, 3, 4, 5, 6, 7, 8])
            })
        );
        assert_eq!(
            up.next_entry().unwrap(),
            Some(Entry::File {
                name: b"empty".to_vec(),
                size: 0,
                crc: None
            })
        );
        assert_eq!(
            up.next_entry().unwrap(),
            Some(Entry::File {
                name: b"\xff\xfe".to_vec(),
                size: 0,
                crc: None
            })
        );
        assert_eq!(up.next_entry().unwrap(), None);
    }
}
