//! Parallel gzip (pigz-style): the layer compressor for pushes and commits.
//!
//! ```text
//!  write() ──▶ 1 MiB input blocks ──▶ worker threads ──▶ in-order output ──▶ inner writer
//!              │  (+ the previous      raw deflate of each block,
//!              │   32 KiB as the        ending on a byte boundary
//!              │   dictionary)          (sync flush; the last one finishes)
//!              └─▶ CRC-32 and length of the whole input, for the gzip trailer
//! ```
//!
//! One gzip member, readable by any gunzip. Blocks are compressed independently but each
//! is primed with the 32 KiB of input before it, so the ratio is that of one stream to
//! within a fraction of a percent. The output depends only on the input and the level,
//! never on the number of threads or their timing, so a layer digest is reproducible.
//!
//! Incompressible stretches (already-compressed files, random bytes) are the slow case of
//! zlib's match search and gain nothing from it: each 64 KiB segment whose byte entropy is
//! near 8 bits and which shows no repeated strings is written as deflate *stored* blocks
//! instead, as klauspost/compress (buildah's compressor) also does. See
//! `docs/design/decisions.md` ("Parallel gzip").
use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, FlushCompress, Status};

/// Input bytes per block handed to a worker.
const BLOCK: usize = 1 << 20;
/// Bytes of the previous input that prime each block (deflate's window).
const WINDOW: usize = 32 << 10;
/// The unit of the stored/deflate decision.
const SEGMENT: usize = 64 << 10;
/// Largest payload of one stored block.
const STORED_MAX: usize = 65_535;

/// gzip header: magic, deflate, no flags, mtime 0, no extra flags, OS unknown (as flate2).
const HEADER: [u8; 10] = [0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff];

struct Job {
    input: Vec<u8>,
    dict: Vec<u8>,
    last: bool,
    reply: SyncSender<io::Result<Vec<u8>>>,
}

struct Pool {
    jobs: Option<mpsc::Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    fn new(threads: usize, level: u32) -> Pool {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let workers = (0..threads)
            .map(|_| {
                let rx = Arc::clone(&rx);
                std::thread::spawn(move || loop {
                    // A poisoned lock means another worker panicked: stop too.
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    let out = deflate_block(&job.input, &job.dict, level, job.last);
                    // The encoder may have been dropped mid-stream; nobody to tell then.
                    let _ = job.reply.send(out);
                })
            })
            .collect();
        Pool {
            jobs: Some(tx),
            workers,
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.jobs.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// A gzip writer that compresses 1 MiB blocks on several threads.
pub struct ParGzEncoder<W: Write> {
    inner: Option<W>,
    level: u32,
    threads: usize,
    block: Vec<u8>,
    dict: Vec<u8>,
    crc: flate2::Crc,
    header_written: bool,
    pool: Option<Pool>,
    pending: VecDeque<Receiver<io::Result<Vec<u8>>>>,
}

impl<W: Write> ParGzEncoder<W> {
    /// Compress into `w` at zlib `level` (0–9), on as many threads as the machine has.
    pub fn new(w: W, level: u32) -> ParGzEncoder<W> {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(8);
        Self::with_threads(w, level, threads)
    }

    /// As [`ParGzEncoder::new`] with an explicit number of worker threads (at least 1).
    pub fn with_threads(w: W, level: u32, threads: usize) -> ParGzEncoder<W> {
        ParGzEncoder {
            inner: Some(w),
            level: level.min(9),
            threads: threads.max(1),
            block: Vec::with_capacity(BLOCK),
            dict: Vec::new(),
            crc: flate2::Crc::new(),
            header_written: false,
            pool: None,
            pending: VecDeque::new(),
        }
    }

    fn inner(&mut self) -> io::Result<&mut W> {
        self.inner
            .as_mut()
            .ok_or_else(|| io::Error::other("gzip encoder already finished"))
    }

    fn write_header(&mut self) -> io::Result<()> {
        if !self.header_written {
            self.inner()?.write_all(&HEADER)?;
            self.header_written = true;
        }
        Ok(())
    }

    /// Write out the oldest pending block.
    fn drain_one(&mut self) -> io::Result<()> {
        if let Some(rx) = self.pending.pop_front() {
            let out = rx
                .recv()
                .map_err(|_| io::Error::other("gzip worker thread died"))??;
            self.inner()?.write_all(&out)?;
        }
        Ok(())
    }

    /// Hand the full block to the pool (or compress it here when it is the only one).
    fn submit(&mut self, last: bool) -> io::Result<()> {
        self.write_header()?;
        let input = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK));
        let dict = std::mem::take(&mut self.dict);
        self.dict = input[input.len().saturating_sub(WINDOW)..].to_vec();
        if last && self.pending.is_empty() {
            // Small layers (and the tail) need no threads.
            let out = deflate_block(&input, &dict, self.level, true)?;
            return self.inner()?.write_all(&out);
        }
        let (tx, rx) = mpsc::sync_channel(1);
        let job = Job {
            input,
            dict,
            last,
            reply: tx,
        };
        let threads = self.threads;
        let level = self.level;
        let pool = self.pool.get_or_insert_with(|| Pool::new(threads, level));
        pool.jobs
            .as_ref()
            .and_then(|j| j.send(job).ok())
            .ok_or_else(|| io::Error::other("gzip worker pool is gone"))?;
        self.pending.push_back(rx);
        while self.pending.len() > 2 * self.threads {
            self.drain_one()?;
        }
        Ok(())
    }

    /// Write the last block and the trailer; return the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.submit(true)?;
        while !self.pending.is_empty() {
            self.drain_one()?;
        }
        let crc = self.crc.sum();
        let len = self.crc.amount();
        let mut w = self
            .inner
            .take()
            .ok_or_else(|| io::Error::other("gzip encoder already finished"))?;
        w.write_all(&crc.to_le_bytes())?;
        w.write_all(&len.to_le_bytes())?;
        w.flush()?;
        Ok(w)
    }
}

impl<W: Write> Write for ParGzEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(BLOCK - self.block.len());
        self.block.extend_from_slice(&buf[..n]);
        self.crc.update(&buf[..n]);
        if self.block.len() == BLOCK {
            self.submit(false)?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        // Blocks are only cut at 1 MiB boundaries, so the output stays independent of how
        // callers flush; flush what is already compressed.
        while !self.pending.is_empty() {
            self.drain_one()?;
        }
        match self.inner.as_mut() {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

/// The raw deflate of one block: segments judged incompressible as stored blocks, runs of
/// the others through zlib primed with the preceding window. The result ends on a byte
/// boundary; with `last`, the final block bit is set.
fn deflate_block(input: &[u8], dict: &[u8], level: u32, last: bool) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len() + input.len() / 64 + 64);
    if input.is_empty() {
        if last {
            stored(&mut out, &[], true);
        }
        return Ok(out);
    }
    // Runs of segments with the same verdict, in order.
    let mut runs: Vec<(usize, usize, bool)> = Vec::new();
    for start in (0..input.len()).step_by(SEGMENT) {
        let end = (start + SEGMENT).min(input.len());
        let raw = level == 0 || incompressible(&input[start..end]);
        match runs.last_mut() {
            Some((_, e, r)) if *r == raw => *e = end,
            _ => runs.push((start, end, raw)),
        }
    }
    let n = runs.len();
    for (i, (start, end, raw)) in runs.into_iter().enumerate() {
        let fin = last && i + 1 == n;
        if raw {
            stored(&mut out, &input[start..end], fin);
        } else {
            // The window before this run: from this block, or the previous one's tail.
            let mut window = Vec::new();
            if start < WINDOW {
                window.extend_from_slice(&dict[dict.len().saturating_sub(WINDOW - start)..]);
            }
            window.extend_from_slice(&input[start.saturating_sub(WINDOW)..start]);
            deflate_run(&mut out, &input[start..end], &window, level, fin)?;
        }
    }
    Ok(out)
}

fn deflate_run(
    out: &mut Vec<u8>,
    input: &[u8],
    window: &[u8],
    level: u32,
    fin: bool,
) -> io::Result<()> {
    let mut c = Compress::new(flate2::Compression::new(level), false);
    if !window.is_empty() {
        c.set_dictionary(window).map_err(io::Error::other)?;
    }
    let flush = if fin {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(64 << 10);
        }
        let done = c.total_in() as usize;
        let status = c
            .compress_vec(&input[done..], out, flush)
            .map_err(io::Error::other)?;
        let all_in = c.total_in() as usize == input.len();
        let finished = if fin {
            status == Status::StreamEnd
        } else {
            // A sync flush is complete when zlib left output space unused.
            all_in && out.len() < out.capacity()
        };
        if finished {
            return Ok(());
        }
    }
}

/// Deflate stored blocks for `data` (each starts byte-aligned: the previous output always
/// ends on a byte boundary).
fn stored(out: &mut Vec<u8>, data: &[u8], fin: bool) {
    let mut chunks = data.chunks(STORED_MAX).peekable();
    if data.is_empty() {
        out.extend_from_slice(&[u8::from(fin), 0, 0, 0xff, 0xff]);
        return;
    }
    while let Some(chunk) = chunks.next() {
        let is_final = fin && chunks.peek().is_none();
        let len = chunk.len() as u16;
        out.push(u8::from(is_final));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
}

/// Whether deflate would gain (almost) nothing on `seg`: order-0 entropy close to 8 bits
/// per byte (Huffman coding cannot help) and no repeated 8-byte strings at sampled
/// positions (LZ77 matching cannot either).
fn incompressible(seg: &[u8]) -> bool {
    if seg.len() < 4096 {
        return false;
    }
    let mut hist = [0u32; 256];
    for &b in seg {
        hist[b as usize] += 1;
    }
    let n = seg.len() as f64;
    let entropy: f64 = hist
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum();
    if entropy < 7.95 {
        return false;
    }
    // Sampled repeat check: remember where each hashed 8-byte string was seen.
    const BITS: u32 = 12;
    const STEP: usize = 16;
    let mut table = [u32::MAX; 1 << BITS];
    let (mut samples, mut repeats) = (0u32, 0u32);
    let mut i = 0;
    while i + 8 <= seg.len() {
        let v = u64::from_le_bytes(seg[i..i + 8].try_into().unwrap_or([0; 8]));
        let h = (v.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - BITS)) as usize;
        let prev = table[h];
        if prev != u32::MAX {
            let p = prev as usize;
            if seg[p..p + 8] == seg[i..i + 8] {
                repeats += 1;
            }
        }
        table[h] = i as u32;
        samples += 1;
        i += STEP;
    }
    // Random data repeats an 8-byte string with probability ~0; text far more often.
    repeats * 200 < samples
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut back)
            .unwrap();
        back
    }

    fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    fn text(n: usize) -> Vec<u8> {
        let mut t = Vec::new();
        let mut i = 0u64;
        while t.len() < n {
            t.extend_from_slice(format!("{i}\n").as_bytes());
            i += 1;
        }
        t.truncate(n);
        t
    }

    fn gz(data: &[u8], level: u32, threads: usize, write_size: usize) -> Vec<u8> {
        let mut e = ParGzEncoder::with_threads(Vec::new(), level, threads);
        for c in data.chunks(write_size.max(1)) {
            e.write_all(c).unwrap();
        }
        e.finish().unwrap()
    }

    #[test]
    fn roundtrips_and_is_independent_of_threads_and_writes() {
        let mut mixed = pseudo_random(BLOCK + 300_000, 7);
        mixed.extend(text(2 * BLOCK + 12_345));
        mixed.extend(pseudo_random(70_000, 9));
        // Random bytes repeated within the window: high entropy, yet compressible.
        let r = pseudo_random(8192, 3);
        for _ in 0..40 {
            mixed.extend_from_slice(&r);
        }
        for data in [Vec::new(), b"x".to_vec(), text(1000), mixed] {
            let one = gz(&data, 6, 1, 1 << 20);
            assert_eq!(gunzip(&one), data);
            for (threads, ws) in [(2, 4096), (3, 777), (4, 1 << 16)] {
                assert_eq!(gz(&data, 6, threads, ws), one, "threads {threads}");
            }
            for level in [0, 1, 9] {
                assert_eq!(gunzip(&gz(&data, level, 2, 1 << 16)), data, "level {level}");
            }
        }
    }

    #[test]
    fn stores_random_and_compresses_text_and_repeats() {
        let random = pseudo_random(4 * SEGMENT, 11);
        assert!(incompressible(&random[..SEGMENT]));
        let out = gz(&random, 6, 2, 1 << 16);
        // Stored: 5 bytes per 64 KiB chunk plus header and trailer.
        assert!(
            out.len() < random.len() + random.len() / 1000 + 64,
            "{}",
            out.len()
        );
        let t = text(4 * SEGMENT);
        assert!(!incompressible(&t[..SEGMENT]));
        let z = gz(&t, 6, 2, 1 << 16).len();
        assert!(z < t.len() / 2, "text compressed to {z} of {}", t.len());
        let r = pseudo_random(4096, 5);
        let rep: Vec<u8> = r.iter().cycle().take(SEGMENT).copied().collect();
        assert!(!incompressible(&rep), "repeats must be deflated");
    }

    #[test]
    fn ratio_matches_one_stream() {
        let t = text(3 * BLOCK);
        let mut one = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        one.write_all(&t).unwrap();
        let one = one.finish().unwrap();
        let par = gz(&t, 6, 2, 1 << 16);
        assert!(
            (par.len() as f64) < one.len() as f64 * 1.01,
            "{} vs {}",
            par.len(),
            one.len()
        );
    }

    #[test]
    fn multistream_readers_see_one_member() {
        let data = text(BLOCK + 10);
        let out = gz(&data, 6, 2, 1 << 16);
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }
}
