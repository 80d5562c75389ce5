//! `docker://`: images in a registry, over the OCI distribution spec.
//!
//! ```text
//!  RegistryContext + NamedRef ──▶ endpoints (mirrors first, then the primary)
//!        │
//!        ▼
//!  RegistrySource ── GET /v2/<repo>/manifests/<ref>  (Accept: OCI/Docker manifest + index/list, ≤ 4 MiB)
//!                └── GET /v2/<repo>/blobs/<digest>   (streamed; sha256 + size checked as the bytes pass;
//!                                                     a dropped connection resumes with Range)
//!  RegistryDest   ── HEAD blobs (skip what the registry has), POST ?mount=&from= (cross-repository),
//!                    POST + PUT ?digest= (monolithic) or POST + PATCH… + PUT (chunked, large blobs),
//!                    PUT /v2/<repo>/manifests/<tag|digest>
//! ```
//! tokio and reqwest live only in this module: every public function is synchronous and
//! runs its future on the lazily created runtime ([`runtime`]). `client` handles TLS,
//! authentication (Bearer token flow, Basic) and retries; no credential or token ever
//! reaches an error, the output or a log line.
mod client;
pub mod download;
pub(crate) mod runtime;
mod tls;

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE};
use reqwest::StatusCode;
use sha2::{Digest as _, Sha256};

use super::{BlobInfo, BlobStream, ImageDestination, ImageSource, LayerInfo, TransportError};
use crate::archive::Compression;
use crate::error::{Error, IoResultExt, Result};
use crate::image::manifest::*;
use crate::image::Digest;
use crate::options::RegistryContext;
use crate::reference::NamedRef;
use crate::registries::Endpoint;
use crate::report::{BlobMeter, TransferEvent, TransferProgress};
use client::{explain, Client};
pub(crate) use runtime::block_on;

/// Blobs larger than this are uploaded in chunks of this size (PATCH), smaller ones in
/// one PUT.
const CHUNK_SIZE: u64 = 64 << 20;

/// The manifest types asked for, preferred first.
const MANIFEST_ACCEPT: &[&str] = &[
    OCI_MANIFEST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST_LIST,
];

/// Registry errors. None of them carries a credential or a token.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The client could not be set up (TLS material unreadable, …).
    #[error("setting up the connection to registry {registry}: {cause}")]
    Setup {
        /// `host[:port]`.
        registry: String,
        /// What went wrong.
        cause: String,
    },
    /// The registry could not be reached at all.
    #[error("pinging container registry {registry}: {cause}")]
    Unreachable {
        /// `host[:port]`.
        registry: String,
        /// What went wrong.
        cause: String,
    },
    /// The registry refused the credentials (or asked for some and there were none).
    #[error("authenticating to registry {registry}: {reason}")]
    Unauthorized {
        /// `host[:port]`.
        registry: String,
        /// `invalid username/password`, `authentication required`, …
        reason: String,
    },
    /// An operation failed.
    #[error("{what} in {registry}: {cause}")]
    Failed {
        /// The operation and object: `reading manifest latest`, `reading blob sha256:…`.
        what: String,
        /// `host/repository`.
        registry: String,
        /// The registry's message or the transport error.
        cause: String,
    },
    /// An operation failed transiently (connection reset, 5xx, 429) on its single attempt.
    #[error("{what} in {registry}: {cause}")]
    Transient {
        /// The operation and object.
        what: String,
        /// `host/repository`.
        registry: String,
        /// What went wrong.
        cause: String,
    },
    /// Transient failures went on after every retry.
    #[error("{what} in {registry}: giving up after {attempts} attempts: {cause}")]
    RetriesExhausted {
        /// The operation and object.
        what: String,
        /// `host/repository`.
        registry: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        cause: String,
    },
    /// A manifest larger than the 4 MiB bound.
    #[error("reading manifest {reference} in {registry}: manifest is larger than the limit of {MAX_MANIFEST_SIZE} bytes")]
    ManifestTooBig {
        /// Tag or digest.
        reference: String,
        /// `host/repository`.
        registry: String,
    },
    /// A manifest of a type hod does not know.
    #[error("reading manifest {reference} in {registry}: unsupported manifest media type {media_type:?}")]
    UnsupportedMediaType {
        /// Tag or digest.
        reference: String,
        /// `host/repository`.
        registry: String,
        /// The type the registry announced.
        media_type: String,
    },
}

/// The endpoints to try for `named`: mirrors first and the primary location last for a
/// pull, the primary only for a push (registries.conf, auth files, certs.d, `--tls-verify`,
/// `--creds`, `--cert-dir`, resolved by [`crate::registries::resolve_endpoints`]).
pub fn endpoints(ctx: &RegistryContext, named: &NamedRef, for_push: bool) -> Result<Vec<Endpoint>> {
    crate::registries::resolve_endpoints(ctx, named, for_push)
}

/// Check that `ep`'s credentials are accepted: `GET /v2/`, through the token flow when the
/// registry asks for it (`hod login`).
pub fn check_login(ep: &Endpoint) -> Result<()> {
    // One attempt, as buildah's login: a wrong address or TLS setup fails at once.
    let once = crate::options::RetryPolicy {
        max_retries: 0,
        delay: None,
    };
    let c = Client::new(ep.clone(), once)?;
    block_on(c.check_login())?
}

/// The tags of `named`'s repository (`GET /v2/<repo>/tags/list`, following `Link: <…>;
/// rel="next"` pages), as `pull --all-tags` needs them.
pub fn list_tags(named: &NamedRef, ctx: &RegistryContext) -> Result<Vec<String>> {
    let ep = endpoints(ctx, named, false)?
        .into_iter()
        .rfind(|e| !e.is_mirror)
        .ok_or_else(|| Error::invalid(format!("no registry to list the tags of {named}")))?;
    let client = Client::new(ep, ctx.retry)?;
    block_on(async {
        let what = "listing tags".to_string();
        let mut path = format!("/v2/{}/tags/list", client.ep.repository);
        let mut tags = Vec::new();
        for _ in 0..1000 {
            let p = path.clone();
            let resp = client
                .send(&what, &client.scope(false), true, &|c, base| {
                    Ok(c.get(format!("{base}{p}")))
                })
                .await?;
            if !resp.status().is_success() {
                let m = explain(resp).await;
                return Err(client.failed(&what, m));
            }
            let next = resp
                .headers()
                .get(reqwest::header::LINK)
                .and_then(|v| v.to_str().ok())
                .filter(|v| v.contains("rel=\"next\""))
                .and_then(|v| Some(v.split_once('<')?.1.split_once('>')?.0.to_string()));
            let body = read_limited(
                resp,
                16 << 20,
                || client.failed(&what, "tag list larger than 16 MiB".into()),
                |c| client.failed(&what, c),
            )
            .await?;
            #[derive(serde::Deserialize)]
            struct TagList {
                #[serde(default)]
                tags: Option<Vec<String>>,
            }
            let list: TagList = serde_json::from_slice(&body)
                .map_err(|e| client.failed(&what, format!("parsing the tag list: {e}")))?;
            tags.extend(list.tags.unwrap_or_default());
            match next {
                Some(n) if n.starts_with('/') => path = n,
                Some(n) => match n.find("/v2/") {
                    Some(i) => path = n[i..].to_string(),
                    None => break,
                },
                None => break,
            }
        }
        Ok(tags)
    })?
}

/// Where this transport reports the bytes of the layers it moves (see `report`), if anyone
/// listens.
#[derive(Clone, Default)]
struct Sink(Option<Arc<dyn TransferProgress>>);

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Sink(on)"
        } else {
            "Sink(off)"
        })
    }
}

/// Tag or digest of a reference, as the manifest URL wants it.
fn reference_of(named: &NamedRef) -> String {
    match (&named.digest, &named.tag) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.clone(),
        (None, None) => crate::reference::DEFAULT_TAG.to_string(),
    }
}

fn remember_blob(d: &Digest, host: &str, repo: &str) {
    super::blob_cache::record_location(d, host, repo);
}

/// Read a response body of at most `limit` bytes.
async fn read_limited(
    resp: reqwest::Response,
    limit: u64,
    too_big: impl Fn() -> Error,
    failed: impl Fn(String) -> Error,
) -> Result<Vec<u8>> {
    if resp.content_length().is_some_and(|l| l > limit) {
        return Err(too_big());
    }
    let mut resp = resp;
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| failed(client::cause(&e)))? {
        if buf.len() as u64 + chunk.len() as u64 > limit {
            return Err(too_big());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// Layer transfers a source runs at once: the one the pipeline asked for (streamed when
/// the destination applies streams) and the next ones of the manifest, downloaded ahead
/// into verified temporary files.
const PREFETCH: usize = 3;

type Download = tokio::task::JoinHandle<Result<tempfile::NamedTempFile>>;

/// An image in a registry, for reading. When the pipeline asks for a layer, the next
/// [`PREFETCH`]` - 1` layers of the manifest start downloading in the background (verified
/// while they stream, into temporary files), so the network works while the pipeline
/// decompresses and applies; the requested layer itself, when not already downloaded, is
/// streamed straight into the destination ([`ImageSource::open_blob`]) or its staging file.
#[derive(Debug)]
pub struct RegistrySource {
    client: Arc<Client>,
    named: NamedRef,
    top: (Vec<u8>, String),
    /// The layers of the last image manifest handed out.
    layers: Vec<Descriptor>,
    prefetch: HashMap<Digest, Download>,
    /// Layers already handed over (not fetched ahead again).
    taken: HashSet<Digest>,
    /// Background downloads that failed: the error `write_blob` reports.
    failed: HashMap<Digest, Error>,
    /// Where layer downloads report their bytes.
    sink: Sink,
    /// Where prefetched blobs are spooled (made on first use).
    spool: Option<crate::scratch::ScratchDir>,
}

impl Drop for RegistrySource {
    fn drop(&mut self) {
        for (_, h) in self.prefetch.drain() {
            h.abort();
        }
    }
}

impl RegistrySource {
    fn note_manifest(&mut self, bytes: &[u8], mt: &str) {
        if let Ok(Manifest::Oci(m) | Manifest::Docker(m)) = parse_manifest(bytes, Some(mt)) {
            self.layers = m.layers;
        }
    }

    /// Start downloading the layers after `desc` in the background (the pipeline fetches
    /// `desc` itself), up to [`PREFETCH`]` - 1` at a time.
    fn start_prefetch(&mut self, desc: &Descriptor) -> Result<()> {
        let Some(pos) = self.layers.iter().position(|l| l.digest == desc.digest) else {
            return Ok(());
        };
        let upcoming: Vec<Descriptor> = self.layers[pos + 1..]
            .iter()
            .take(PREFETCH - 1)
            .cloned()
            .collect();
        for d in upcoming {
            let running = self.prefetch.values().filter(|h| !h.is_finished()).count();
            if self.prefetch.contains_key(&d.digest)
                || self.taken.contains(&d.digest)
                || d.digest == desc.digest
                || running >= PREFETCH - 1
            {
                continue;
            }
            let client = self.client.clone();
            let key = d.digest.clone();
            let meter = self.meter(&d);
            if self.spool.is_none() {
                self.spool = Some(crate::scratch::ScratchDir::new("pull")?);
            }
            let dir = self
                .spool
                .as_ref()
                .map(|s| s.path().to_path_buf())
                .unwrap_or_default();
            let task = async move {
                let mut f = tempfile::Builder::new()
                    .prefix(".tmp-blob-")
                    .tempfile_in(&dir)
                    .at("creating temporary file in", &dir)?;
                read_blob(&client, &d, f.as_file_mut(), meter).await?;
                remember_blob(&d.digest, &client.ep.host, &client.ep.repository);
                Ok(f)
            };
            self.prefetch.insert(key, runtime::spawn(task)?);
        }
        Ok(())
    }

    /// A meter for downloading `desc`: active for the manifest's layers when someone
    /// listens (configs and manifests are small and get none).
    fn meter(&self, desc: &Descriptor) -> BlobMeter {
        match &self.sink.0 {
            Some(s) if self.layers.iter().any(|l| l.digest == desc.digest) => {
                BlobMeter::start(Some(s), &desc.digest, u64::try_from(desc.size).ok())
            }
            _ => BlobMeter::none(),
        }
    }

    /// The background download of `desc`, if one was started, waited for.
    fn downloaded(&mut self, desc: &Descriptor) -> Result<Option<tempfile::NamedTempFile>> {
        if let Some(e) = self.failed.remove(&desc.digest) {
            return Err(e);
        }
        let Some(h) = self.prefetch.remove(&desc.digest) else {
            return Ok(None);
        };
        self.taken.insert(desc.digest.clone());
        match block_on(h)? {
            Ok(r) => r.map(Some),
            Err(e) => Err(self.client.failed(
                &format!("reading blob {}", desc.digest),
                format!("download task failed: {e}"),
            )),
        }
    }
}

impl RegistrySource {
    /// Open `named`: the first endpoint (mirrors first) that has its manifest is used; when
    /// none does, the primary location's error is returned.
    pub fn open(named: &NamedRef, ctx: &RegistryContext) -> Result<RegistrySource> {
        let eps = endpoints(ctx, named, false)?;
        let reference = reference_of(named);
        let mut last = None;
        for ep in eps {
            let client = Arc::new(Client::new(ep, ctx.retry)?);
            match block_on(fetch_manifest(&client, &reference))? {
                Ok(top) => {
                    return Ok(RegistrySource {
                        client,
                        named: named.clone(),
                        top,
                        layers: Vec::new(),
                        prefetch: HashMap::new(),
                        taken: HashSet::new(),
                        failed: HashMap::new(),
                        sink: Sink::default(),
                        spool: None,
                    })
                }
                Err(e) => {
                    tracing::debug!("{e}");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::invalid(format!("no registry to pull {named} from"))))
    }
}

/// GET a manifest (by tag or digest) with its media type, bounded and checked.
async fn fetch_manifest(client: &Client, reference: &str) -> Result<(Vec<u8>, String)> {
    let what = format!("reading manifest {reference}");
    let url_ref = reference.to_string();
    let repo = client.ep.repository.clone();
    let resp = client
        .send(&what, &client.scope(false), true, &|c, base| {
            Ok(c.get(format!("{base}/v2/{repo}/manifests/{url_ref}"))
                .header(ACCEPT, MANIFEST_ACCEPT.join(", ")))
        })
        .await?;
    if !resp.status().is_success() {
        let m = explain(resp).await;
        return Err(client.failed(&what, m));
    }
    let header_mt = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_string())
        .unwrap_or_default();
    let too_big = || {
        Error::from(RegistryError::ManifestTooBig {
            reference: reference.to_string(),
            registry: client.name(),
        })
    };
    let bytes = read_limited(resp, MAX_MANIFEST_SIZE, too_big, |c| {
        client.failed(&what, c)
    })
    .await?;
    let doc_mt = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("mediaType")?.as_str().map(str::to_string));
    let known = |m: &str| MANIFEST_ACCEPT.contains(&m);
    let mt = if known(&header_mt) {
        header_mt
    } else if let Some(d) = doc_mt.as_deref().filter(|d| known(d)) {
        d.to_string()
    } else if let Some(d) = doc_mt {
        return Err(RegistryError::UnsupportedMediaType {
            reference: reference.to_string(),
            registry: client.name(),
            media_type: d,
        }
        .into());
    } else if header_mt.is_empty()
        || header_mt == "application/json"
        || header_mt == "application/octet-stream"
        || header_mt == "text/plain"
    {
        // No type anywhere: let the parser guess from the structure (OCI allows it).
        String::new()
    } else {
        return Err(RegistryError::UnsupportedMediaType {
            reference: reference.to_string(),
            registry: client.name(),
            media_type: header_mt,
        }
        .into());
    };
    if let Ok(d) = Digest::parse(reference) {
        let got = Digest::of(&bytes);
        if got != d {
            return Err(client.failed(
                &what,
                format!("manifest digest {got} does not match the requested {d}"),
            ));
        }
    }
    Ok((bytes, mt))
}

impl ImageSource for RegistrySource {
    fn manifest(&mut self, instance: Option<&Digest>) -> Result<(Vec<u8>, String)> {
        let (bytes, mt) = match instance {
            None => self.top.clone(),
            Some(d) => block_on(fetch_manifest(&self.client, &d.to_string()))??,
        };
        self.note_manifest(&bytes, &mt);
        Ok((bytes, mt))
    }

    fn write_blob(&mut self, desc: &Descriptor, out: &mut dyn Write) -> Result<()> {
        if let Some(mut f) = self.downloaded(desc)? {
            // Already verified; the pipeline hashes it again as it passes.
            f.as_file_mut()
                .seek(SeekFrom::Start(0))
                .at("rewinding", f.path())?;
            std::io::copy(f.as_file_mut(), out).at("copying", f.path())?;
            return Ok(());
        }
        self.start_prefetch(desc)?;
        let client = self.client.clone();
        let meter = self.meter(desc);
        block_on(read_blob(&client, desc, out, meter))??;
        remember_blob(&desc.digest, &client.ep.host, &client.ep.repository);
        Ok(())
    }

    fn take_blob_file(&mut self, desc: &Descriptor) -> Option<tempfile::NamedTempFile> {
        let r = self
            .start_prefetch(desc)
            .and_then(|()| self.downloaded(desc));
        match r {
            Ok(f) => f,
            Err(e) => {
                // Reported by the write_blob the pipeline falls back to.
                self.failed.insert(desc.digest.clone(), e);
                None
            }
        }
    }

    /// Stream `desc` (when no background download of it exists): the bytes pass through a
    /// bounded channel from the runtime, and end-of-file comes only after the digest and
    /// size matched.
    fn open_blob(&mut self, desc: &Descriptor) -> Result<Option<Box<dyn std::io::Read + Send>>> {
        if self.prefetch.contains_key(&desc.digest) || self.failed.contains_key(&desc.digest) {
            return Ok(None);
        }
        self.start_prefetch(desc)?;
        self.taken.insert(desc.digest.clone());
        let (tx, rx) = std::sync::mpsc::sync_channel(STREAM_CHUNKS);
        let client = self.client.clone();
        let d = desc.clone();
        let meter = self.meter(desc);
        let task = async move {
            let mut w = ChannelWriter { tx: tx.clone() };
            match read_blob(&client, &d, &mut w, meter).await {
                Ok(()) => {
                    remember_blob(&d.digest, &client.ep.host, &client.ep.repository);
                    let _ = tokio::task::block_in_place(|| tx.send(Chunk::Done));
                }
                Err(e) => {
                    let _ = tokio::task::block_in_place(|| tx.send(Chunk::Failed(chain(&e))));
                }
            }
        };
        let handle = runtime::spawn(task)?;
        Ok(Some(Box::new(ChannelReader {
            rx,
            buf: Vec::new(),
            pos: 0,
            done: false,
            _task: AbortOnDrop(handle),
        })))
    }

    fn describe(&self) -> String {
        format!("docker://{}", self.named)
    }

    fn report_transfers(&mut self, sink: Arc<dyn TransferProgress>) -> bool {
        self.sink = Sink(Some(sink));
        true
    }
}

/// Chunks buffered between a streaming download and its reader.
const STREAM_CHUNKS: usize = 8;

enum Chunk {
    Data(Vec<u8>),
    Done,
    Failed(String),
}

/// The writing end of a streamed blob (inside the runtime: a full channel parks the task's
/// worker with `block_in_place`, so the other transfers go on).
struct ChannelWriter {
    tx: std::sync::mpsc::SyncSender<Chunk>,
}

impl Write for ChannelWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        tokio::task::block_in_place(|| self.tx.send(Chunk::Data(b.to_vec())))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "reader went away"))?;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The reading end of a streamed blob: end-of-file only after the `Done` the download
/// sends once the digest and size matched.
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<Chunk>,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
    _task: AbortOnDrop,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.buf.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Chunk::Data(v)) => {
                    self.buf = v;
                    self.pos = 0;
                }
                Ok(Chunk::Done) => self.done = true,
                Ok(Chunk::Failed(m)) => return Err(std::io::Error::other(m)),
                Err(_) => {
                    return Err(std::io::Error::other(
                        "the blob download ended before it was verified",
                    ))
                }
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// An error with its causes, as one line.
fn chain(e: &Error) -> String {
    let mut s = e.to_string();
    let mut cur = std::error::Error::source(e);
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Stream a blob into `out`, hashing and counting as it passes: more bytes than the
/// descriptor's size stop the transfer, and a digest or size mismatch is an error (the
/// caller, which staged `out`, discards it). A connection dropped mid-blob is resumed with
/// `Range: bytes=N-` (or by skipping N bytes when the registry ignores the range).
/// `meter` counts the bytes and reports done once they are verified.
async fn read_blob<W: Write + ?Sized>(
    client: &Client,
    desc: &Descriptor,
    out: &mut W,
    mut meter: BlobMeter,
) -> Result<()> {
    let what = format!("reading blob {}", desc.digest);
    let repo = client.ep.repository.clone();
    let digest = desc.digest.to_string();
    let mut hasher = Sha256::new();
    let mut written: u64 = 0;
    let mut drops = 0u32;
    let max = client.retry_policy().max_retries;
    'attempt: loop {
        let from = written;
        let mut resp = client
            .send(&what, &client.scope(false), true, &|c, base| {
                let mut r = c.get(format!("{base}/v2/{repo}/blobs/{digest}"));
                if from > 0 {
                    r = r.header(RANGE, format!("bytes={from}-"));
                }
                Ok(r)
            })
            .await?;
        let mut skip = match resp.status() {
            StatusCode::OK => from,
            StatusCode::PARTIAL_CONTENT if from > 0 => 0,
            _ => {
                let m = explain(resp).await;
                return Err(client.failed(&what, m));
            }
        };
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    let mut data = &chunk[..];
                    if skip > 0 {
                        let n = skip.min(data.len() as u64) as usize;
                        data = &data[n..];
                        skip -= n as u64;
                    }
                    if desc.size >= 0 && written + data.len() as u64 > desc.size as u64 {
                        return Err(client
                            .failed(&what, format!("blob is larger than its size {}", desc.size)));
                    }
                    hasher.update(data);
                    if let Err(e) = out.write_all(data) {
                        return Err(Error::Io {
                            op: "writing blob".into(),
                            path: PathBuf::from(desc.digest.to_string()),
                            source: e,
                        });
                    }
                    written += data.len() as u64;
                    meter.set(written);
                }
                Ok(None) => break 'attempt,
                Err(e) => {
                    drops += 1;
                    let cause = client::cause(&e);
                    if drops > max {
                        return Err(RegistryError::RetriesExhausted {
                            what,
                            registry: client.name(),
                            attempts: drops,
                            cause,
                        }
                        .into());
                    }
                    let d = client.delay_for(drops - 1);
                    tracing::info!(
                        "{what} in {}: {cause} after {written} bytes; resuming in {d:?}",
                        client.name()
                    );
                    tokio::time::sleep(d).await;
                    continue 'attempt;
                }
            }
        }
    }
    let actual = Digest::from_sha256_hex(&hex::encode(hasher.finalize()))?;
    if actual != desc.digest || (desc.size >= 0 && desc.size as u64 != written) {
        return Err(TransportError::DigestMismatch {
            expected: desc.digest.clone(),
            actual,
            expected_size: desc.size,
            actual_size: written,
        }
        .into());
    }
    meter.done();
    Ok(())
}

/// Blob uploads running at once (each holds its staged file until done).
const MAX_UPLOADS: usize = 3;

/// An image in a registry, for writing. Blobs are uploaded in the background, up to
/// [`MAX_UPLOADS`] at a time, while the pipeline prepares the next layer; the manifest is
/// written only after every upload succeeded.
#[derive(Debug)]
pub struct RegistryDest {
    pusher: Pusher,
    reference: String,
    staging: crate::scratch::ScratchDir,
    uploads: std::collections::VecDeque<tokio::task::JoinHandle<Result<()>>>,
}

impl Drop for RegistryDest {
    fn drop(&mut self) {
        for h in self.uploads.drain(..) {
            h.abort();
        }
    }
}

/// The upload side of a destination, cloned into background uploads.
#[derive(Debug, Clone)]
struct Pusher {
    client: Arc<Client>,
    /// Blobs larger than this go up in PATCH chunks of this size.
    chunk_size: u64,
    /// Where layer uploads report their bytes.
    sink: Sink,
}

impl RegistryDest {
    /// A destination for `named` (its primary location; mirrors are for pulling only).
    pub fn open(named: &NamedRef, ctx: &RegistryContext) -> Result<RegistryDest> {
        let ep = endpoints(ctx, named, true)?
            .into_iter()
            .rfind(|e| !e.is_mirror)
            .ok_or_else(|| Error::invalid(format!("no registry to push {named} to")))?;
        let staging = crate::scratch::ScratchDir::new("registry-dest")?;
        Ok(RegistryDest {
            pusher: Pusher {
                client: Arc::new(Client::new(ep, ctx.retry)?),
                chunk_size: CHUNK_SIZE,
                sink: Sink::default(),
            },
            reference: reference_of(named),
            staging,
            uploads: Default::default(),
        })
    }

    /// Wait for the oldest background upload.
    fn wait_oldest(&mut self) -> Result<()> {
        match self.uploads.pop_front() {
            None => Ok(()),
            Some(h) => match block_on(h)? {
                Ok(r) => r,
                Err(e) => Err(self
                    .pusher
                    .client
                    .failed("uploading blob", format!("upload task failed: {e}"))),
            },
        }
    }
}

impl Pusher {
    /// HEAD the blob: its size when the registry has it.
    async fn blob_size(&self, d: &Digest) -> Result<Option<i64>> {
        let what = format!("checking whether a blob {d} exists");
        let repo = self.client.ep.repository.clone();
        let resp = self
            .client
            .send(&what, &self.client.scope(true), true, &|c, base| {
                Ok(c.head(format!("{base}/v2/{repo}/blobs/{d}")))
            })
            .await?;
        match resp.status() {
            // The header, not `content_length()`: a HEAD response has no body, so reqwest
            // reports 0 for it, and a reused layer would get size 0 (-1) in the manifest.
            s if s.is_success() => Ok(Some(
                resp.headers()
                    .get(CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i64>().ok())
                    .unwrap_or(-1),
            )),
            StatusCode::NOT_FOUND => Ok(None),
            s => Err(self
                .client
                .failed(&what, format!("received unexpected HTTP status: {s}"))),
        }
    }

    /// Mount `d` from another repository of the same registry: `true` when it was (201).
    async fn mount(&self, d: &Digest, from: &str) -> Result<bool> {
        let what = format!("mounting blob {d} from {from}");
        let repo = self.client.ep.repository.clone();
        let scope = format!("{} repository:{from}:pull", self.client.scope(true));
        let resp = self
            .client
            .send(&what, &scope, true, &|c, base| {
                Ok(c.post(format!("{base}/v2/{repo}/blobs/uploads/"))
                    .query(&[("mount", d.to_string().as_str()), ("from", from)])
                    .header(CONTENT_LENGTH, "0"))
            })
            .await?;
        match resp.status() {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => {
                // An upload session was opened instead: cancel it, the caller uploads.
                if let Some(loc) = self.location(&resp).await {
                    let _ = self
                        .client
                        .send("cancelling upload", &scope, false, &|c, _| {
                            Ok(c.delete(loc.clone()))
                        })
                        .await;
                }
                Ok(false)
            }
            _ => Ok(false),
        }
    }

    async fn location(&self, resp: &reqwest::Response) -> Option<String> {
        let loc = resp.headers().get(LOCATION)?.to_str().ok()?.to_string();
        let base = self.client.base().await.ok()?;
        Some(
            if loc.starts_with("http://") || loc.starts_with("https://") {
                loc
            } else if loc.starts_with('/') {
                format!("{base}{loc}")
            } else {
                format!("{base}/{loc}")
            },
        )
    }

    /// Upload the blob in `path` (already verified as `desc`): the whole sequence is
    /// retried on transient failures. With `progress`, the bytes sent are reported there.
    async fn upload(&self, path: &Path, desc: &Descriptor, progress: &Sink) -> Result<()> {
        let max = self.client.retry_policy().max_retries;
        let mut attempt = 0;
        loop {
            match self.upload_once(path, desc, progress).await {
                Err(Error::Registry(RegistryError::Transient {
                    what,
                    registry,
                    cause,
                })) => {
                    if attempt >= max {
                        return Err(RegistryError::RetriesExhausted {
                            what,
                            registry,
                            attempts: attempt + 1,
                            cause,
                        }
                        .into());
                    }
                    let d = self.client.delay_for(attempt);
                    tracing::info!("{what} in {registry}: {cause}; retrying in {d:?}");
                    tokio::time::sleep(d).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn upload_once(&self, path: &Path, desc: &Descriptor, progress: &Sink) -> Result<()> {
        let body = |p: &Path, offset: u64, n: u64| {
            let sink = progress.0.clone().map(|s| (s, desc.digest.clone()));
            file_body(p, offset, n, sink)
        };
        let what = format!("uploading blob {}", desc.digest);
        let scope = self.client.scope(true);
        let mut loc = self.open_upload(&what, &scope).await?;
        let size = desc.size.max(0) as u64;
        let with_digest = |loc: &str| with_digest(loc, &desc.digest);
        if size <= self.chunk_size {
            let url = with_digest(&loc);
            let p = path.to_path_buf();
            let resp = self
                .client
                .send(&what, &scope, false, &|c, _| {
                    Ok(c.put(url.clone())
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .header(CONTENT_LENGTH, size.to_string())
                        .body(body(&p, 0, size)?))
                })
                .await?;
            return self.expect_created(resp, &what).await;
        }
        let mut offset = 0u64;
        while offset < size {
            let n = self.chunk_size.min(size - offset);
            let p = path.to_path_buf();
            let url = loc.clone();
            let resp = self
                .client
                .send(&what, &scope, false, &|c, _| {
                    Ok(c.patch(url.clone())
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .header(CONTENT_RANGE, format!("{offset}-{}", offset + n - 1))
                        .header(CONTENT_LENGTH, n.to_string())
                        .body(body(&p, offset, n)?))
                })
                .await?;
            if resp.status() != StatusCode::ACCEPTED {
                let m = explain(resp).await;
                return Err(self.client.failed(&what, m));
            }
            loc = self.location(&resp).await.ok_or_else(|| {
                self.client
                    .failed(&what, "no upload location returned".into())
            })?;
            offset += n;
        }
        let url = with_digest(&loc);
        let resp = self
            .client
            .send(&what, &scope, false, &|c, _| {
                Ok(c.put(url.clone()).header(CONTENT_LENGTH, "0"))
            })
            .await?;
        self.expect_created(resp, &what).await
    }

    /// Open an upload session (POST, 202): its location.
    async fn open_upload(&self, what: &str, scope: &str) -> Result<String> {
        let repo = self.client.ep.repository.clone();
        let resp = self
            .client
            .send(what, scope, true, &|c, base| {
                Ok(c.post(format!("{base}/v2/{repo}/blobs/uploads/"))
                    .header(CONTENT_LENGTH, "0"))
            })
            .await?;
        if resp.status() != StatusCode::ACCEPTED {
            let m = explain(resp).await;
            return Err(self.client.failed(what, m));
        }
        self.location(&resp).await.ok_or_else(|| {
            self.client
                .failed(what, "no upload location returned".into())
        })
    }

    /// Open an upload session and send it everything `rx` yields as one PATCH with a
    /// chunked body (the distribution spec's streamed upload), while the blob is still being
    /// produced; the session's location after the PATCH is returned for the closing PUT.
    async fn stream_upload(&self, rx: tokio::sync::mpsc::Receiver<Vec<u8>>) -> Result<String> {
        let what = "uploading blob (streamed)".to_string();
        let scope = self.client.scope(true);
        let loc = self.open_upload(&what, &scope).await?;
        // The body can be sent once: a second attempt (after a 401, say) fails, and the
        // caller falls back to the staged file.
        let rx = std::sync::Mutex::new(Some(rx));
        let resp =
            self.client
                .send(&what, &scope, false, &|c, _| {
                    let rx =
                        rx.lock().ok().and_then(|mut r| r.take()).ok_or_else(|| {
                            Error::invalid("the streamed blob body was already sent")
                        })?;
                    let body = futures_util::stream::unfold(rx, |mut rx| async move {
                        rx.recv()
                            .await
                            .map(|piece| (Ok::<_, std::io::Error>(piece), rx))
                    });
                    Ok(c.patch(loc.clone())
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .body(reqwest::Body::wrap_stream(body)))
                })
                .await?;
        if resp.status() != StatusCode::ACCEPTED {
            let m = explain(resp).await;
            return Err(self.client.failed(&what, m));
        }
        self.location(&resp).await.ok_or_else(|| {
            self.client
                .failed(&what, "no upload location returned".into())
        })
    }

    /// Close a streamed upload session at `loc` as `desc` (the registry checks the digest).
    async fn complete_upload(&self, loc: &str, desc: &Descriptor) -> Result<()> {
        let what = format!("uploading blob {}", desc.digest);
        let url = with_digest(loc, &desc.digest);
        let resp = self
            .client
            .send(&what, &self.client.scope(true), false, &|c, _| {
                Ok(c.put(url.clone()).header(CONTENT_LENGTH, "0"))
            })
            .await?;
        self.expect_created(resp, &what).await
    }

    async fn expect_created(&self, resp: reqwest::Response, what: &str) -> Result<()> {
        if resp.status() == StatusCode::CREATED {
            Ok(())
        } else {
            let m = explain(resp).await;
            Err(self.client.failed(what, m))
        }
    }
}

/// An upload session's location with the blob's `digest` query (the closing PUT).
fn with_digest(loc: &str, digest: &Digest) -> String {
    let sep = if loc.contains('?') { '&' } else { '?' };
    format!("{loc}{sep}digest={digest}")
}

/// A request body streaming `len` bytes of `path` from `offset`, 1 MiB at a time; each
/// chunk handed to the connection is reported to `progress` as the blob's position.
fn file_body(
    path: &Path,
    offset: u64,
    len: u64,
    progress: Option<(Arc<dyn TransferProgress>, Digest)>,
) -> Result<reqwest::Body> {
    let mut f = std::fs::File::open(path).at("opening", path)?;
    f.seek(SeekFrom::Start(offset)).at("seeking in", path)?;
    let state = (f, offset, offset + len, progress);
    let stream = futures_util::stream::unfold(state, |(mut f, pos, end, progress)| async move {
        if pos >= end {
            return None;
        }
        let n = (end - pos).min(1 << 20) as usize;
        let mut buf = vec![0u8; n];
        match f.read_exact(&mut buf) {
            Ok(()) => {
                let pos = pos + n as u64;
                if let Some((s, digest)) = &progress {
                    s.event(TransferEvent::Position { digest, pos });
                }
                Some((Ok::<_, std::io::Error>(buf), (f, pos, end, progress)))
            }
            Err(e) => Some((Err(e), (f, end, end, progress))),
        }
    });
    Ok(reqwest::Body::wrap_stream(stream))
}

/// Bytes per piece handed to a streamed upload.
const STREAM_PIECE: usize = 1 << 20;

/// A blob upload fed while the blob is produced ([`ImageDestination::start_blob_stream`]).
struct RegistryStream {
    tx: Option<tokio::sync::mpsc::Sender<Vec<u8>>>,
    buf: Vec<u8>,
    task: Option<tokio::task::JoinHandle<Result<String>>>,
}

impl RegistryStream {
    fn send(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let piece = std::mem::replace(&mut self.buf, Vec::with_capacity(STREAM_PIECE));
        // A closed channel means the upload failed: keep going, the staged file is complete.
        if let Some(tx) = &self.tx {
            if tx.blocking_send(piece).is_err() {
                self.tx = None;
            }
        }
    }

    /// Send what is buffered and end the body; the task then yields the session location.
    fn close(mut self) -> Option<tokio::task::JoinHandle<Result<String>>> {
        self.send();
        self.tx = None;
        self.task.take()
    }
}

impl Drop for RegistryStream {
    fn drop(&mut self) {
        // Abandoned (the copy failed): end the body and stop the request.
        self.tx = None;
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

impl io::Write for RegistryStream {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if self.tx.is_some() {
            self.buf.extend_from_slice(b);
            if self.buf.len() >= STREAM_PIECE {
                self.send();
            }
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlobStream for RegistryStream {
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }
}

impl ImageDestination for RegistryDest {
    fn staging_dir(&self) -> &Path {
        self.staging.path()
    }

    fn start_blob_stream(&mut self) -> Result<Option<Box<dyn BlobStream>>> {
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let pusher = self.pusher.clone();
        let task = runtime::spawn(async move { pusher.stream_upload(rx).await })?;
        Ok(Some(Box::new(RegistryStream {
            tx: Some(tx),
            buf: Vec::with_capacity(STREAM_PIECE),
            task: Some(task),
        })))
    }

    fn finish_blob_stream(
        &mut self,
        stream: Box<dyn BlobStream>,
        file: tempfile::NamedTempFile,
        desc: &Descriptor,
        layer: Option<&LayerInfo>,
    ) -> Result<()> {
        let Ok(stream) = stream.into_any().downcast::<RegistryStream>() else {
            return self.put_blob(file, desc, layer);
        };
        let streamed = stream.close();
        while self.uploads.len() >= MAX_UPLOADS {
            self.wait_oldest()?;
        }
        let pusher = self.pusher.clone();
        let desc = desc.clone();
        let progress = self.pusher.sink.clone();
        let task = async move {
            // The bytes went up while the layer was prepared (its bar): report the blob.
            let mut meter = BlobMeter::start(
                progress.0.as_ref(),
                &desc.digest,
                u64::try_from(desc.size).ok(),
            );
            let sent = match streamed {
                Some(t) => match t.await {
                    Ok(Ok(loc)) => pusher.complete_upload(&loc, &desc).await,
                    Ok(Err(e)) => Err(e),
                    Err(e) => Err(Error::invalid(format!("streamed upload task: {e}"))),
                },
                None => Err(Error::invalid("streamed upload was not started")),
            };
            if let Err(e) = sent {
                // Whatever broke the stream, the staged file is whole: send it the usual
                // way (with retries), unless the registry has the blob after all.
                tracing::info!(
                    "streamed upload of {} failed ({e}); sending it again",
                    desc.digest
                );
                if pusher.blob_size(&desc.digest).await?.is_none() {
                    pusher.upload(file.path(), &desc, &progress).await?;
                }
            }
            meter.set(u64::try_from(desc.size).unwrap_or(0));
            meter.done();
            drop(file);
            remember_blob(
                &desc.digest,
                &pusher.client.ep.host,
                &pusher.client.ep.repository,
            );
            Ok(())
        };
        self.uploads.push_back(runtime::spawn(task)?);
        Ok(())
    }

    fn desired_compression(&self) -> Option<Compression> {
        Some(Compression::Gzip)
    }

    /// The source's blob, or (from the blob-info cache) another blob holding the same
    /// layer with the copy's target compression: HEAD in this repository first, then a
    /// cross-repository mount from a repository of this registry known to have it.
    fn try_reuse_layer(
        &mut self,
        desc: &Descriptor,
        layer: &LayerInfo,
    ) -> Result<Option<BlobInfo>> {
        let host = self.pusher.client.ep.host.clone();
        let repo = self.pusher.client.ep.repository.clone();
        let mut candidates = vec![(desc.digest.clone(), desc.size, None)];
        if let Some(diff_id) = &layer.diff_id {
            for d in super::blob_cache::compressed_for(diff_id, layer.target) {
                if d != desc.digest {
                    candidates.push((d, -1, Some(layer.target)));
                }
            }
        }
        block_on(async {
            for (d, size, compression) in &candidates {
                if let Some(have) = self.pusher.blob_size(d).await? {
                    remember_blob(d, &host, &repo);
                    return Ok(Some(BlobInfo {
                        digest: d.clone(),
                        size: if have > 0 { have } else { *size },
                        compression: *compression,
                        mounted_from: None,
                    }));
                }
            }
            for (d, size, compression) in &candidates {
                for from in super::blob_cache::repositories_with(d, &host, &repo) {
                    if self.pusher.mount(d, &from).await? {
                        remember_blob(d, &host, &repo);
                        let size = match size {
                            s if *s >= 0 => *s,
                            _ => self.pusher.blob_size(d).await?.unwrap_or(-1),
                        };
                        return Ok(Some(BlobInfo {
                            digest: d.clone(),
                            size,
                            compression: *compression,
                            mounted_from: Some(from),
                        }));
                    }
                }
            }
            Ok(None)
        })?
    }

    fn put_blob(
        &mut self,
        file: tempfile::NamedTempFile,
        desc: &Descriptor,
        layer: Option<&LayerInfo>,
    ) -> Result<()> {
        while self.uploads.len() >= MAX_UPLOADS {
            self.wait_oldest()?;
        }
        let pusher = self.pusher.clone();
        let desc = desc.clone();
        // Layers report their upload (configs are small and get no bar).
        let progress = if layer.is_some() {
            self.pusher.sink.clone()
        } else {
            Sink::default()
        };
        let task = async move {
            if pusher.blob_size(&desc.digest).await?.is_none() {
                let meter = BlobMeter::start(
                    progress.0.as_ref(),
                    &desc.digest,
                    u64::try_from(desc.size).ok(),
                );
                pusher.upload(file.path(), &desc, &progress).await?;
                meter.done();
            } else if let Some(s) = &progress.0 {
                s.event(TransferEvent::Skipped {
                    digest: &desc.digest,
                });
            }
            drop(file);
            remember_blob(
                &desc.digest,
                &pusher.client.ep.host,
                &pusher.client.ep.repository,
            );
            Ok(())
        };
        self.uploads.push_back(runtime::spawn(task)?);
        Ok(())
    }

    fn put_manifest(&mut self, data: &[u8], media_type: &str) -> Result<()> {
        let reference = self.reference.clone();
        self.put_manifest_at(data, media_type, reference)
    }

    fn put_instance_manifest(&mut self, data: &[u8], media_type: &str) -> Result<()> {
        // A list's instance goes in by digest; the list's own PUT then tags it.
        self.put_manifest_at(data, media_type, Digest::of(data).to_string())
    }

    fn commit(self: Box<Self>) -> Result<()> {
        // The manifest PUT made the image visible; nothing is staged beyond the temp dir.
        Ok(())
    }

    fn report_transfers(&mut self, sink: Arc<dyn TransferProgress>) -> bool {
        self.pusher.sink = Sink(Some(sink));
        true
    }
}

impl RegistryDest {
    /// PUT a manifest under `reference` (a tag, or a digest for a list's instance), once
    /// every blob upload has finished.
    fn put_manifest_at(&mut self, data: &[u8], media_type: &str, reference: String) -> Result<()> {
        while !self.uploads.is_empty() {
            self.wait_oldest()?;
        }
        let what = format!("writing manifest {reference}");
        let repo = self.pusher.client.ep.repository.clone();
        let body = data.to_vec();
        let mt = media_type.to_string();
        let client = self.pusher.client.clone();
        block_on(async move {
            let resp = client
                .send(&what, &client.scope(true), true, &|c, base| {
                    Ok(c.put(format!("{base}/v2/{repo}/manifests/{reference}"))
                        .header(CONTENT_TYPE, mt.clone())
                        .body(body.clone()))
                })
                .await?;
            if resp.status().is_success() {
                Ok(())
            } else {
                let m = explain(resp).await;
                Err(client.failed(&what, m))
            }
        })?
    }
}

#[cfg(test)]
#[path = "../../../../tests/it/common/registry.rs"]
pub(crate) mod test_registry;

#[cfg(test)]
mod tests {
    //! Against a real `docker-registry` on 127.0.0.1 (skipped, loudly, without it).
    use super::test_registry::{FaultyProxy, Mode, TestRegistry, PASSWORD, USER};
    use super::*;
    use crate::options::{Credentials, RetryPolicy};
    use crate::transport::testutil::{image, layer_tar, Collect};
    use crate::transport::{copy_image, oci::OciLayoutDest, CopyImageOptions, CopyOutput};
    use std::time::Duration;

    fn ctx(reg_host_mode: &Mode) -> RegistryContext {
        let mut c = RegistryContext {
            retry: RetryPolicy {
                max_retries: 2,
                delay: Some(Duration::from_millis(10)),
            },
            ..Default::default()
        };
        match reg_host_mode {
            Mode::Tls => {}
            _ => c.tls_verify = Some(false),
        }
        if matches!(reg_host_mode, Mode::Basic | Mode::Token { .. }) {
            c.credentials = Some(Credentials {
                username: USER.into(),
                password: PASSWORD.into(),
            });
        }
        c
    }

    trait Chain {
        fn chain(&self) -> String;
    }
    impl Chain for Error {
        /// The message as the CLI prints it: the source chain joined with ": ".
        fn chain(&self) -> String {
            let mut s = self.to_string();
            let mut cur = std::error::Error::source(self);
            while let Some(e) = cur {
                s.push_str(": ");
                s.push_str(&e.to_string());
                cur = e.source();
            }
            s
        }
    }

    fn named(host: &str, repo: &str) -> NamedRef {
        crate::reference::parse_named(&format!("{host}/{repo}")).unwrap()
    }

    fn layers() -> Vec<Vec<u8>> {
        vec![
            layer_tar("etc/hostname", b"hod\n"),
            layer_tar("hello.txt", b"hello registry\n"),
        ]
    }

    fn push(
        host: &str,
        repo: &str,
        c: &RegistryContext,
        comp: Compression,
    ) -> (CopyOutput, Vec<String>) {
        let mut src = image(&layers(), comp);
        let dst = RegistryDest::open(&named(host, repo), c).unwrap();
        let rep = Collect::default();
        let out = copy_image(&mut src, Box::new(dst), &CopyImageOptions::default(), &rep).unwrap();
        let lines = rep.0.lock().unwrap().clone();
        (out, lines)
    }

    fn pull(host: &str, repo: &str, c: &RegistryContext) -> Result<CopyOutput> {
        let t = tempfile::tempdir().unwrap();
        let mut src = RegistrySource::open(&named(host, repo), c)?;
        copy_image(
            &mut src,
            Box::new(OciLayoutDest::new(&t.path().join("lay"), Some("x")).unwrap()),
            &CopyImageOptions::default(),
            &crate::report::Quiet,
        )
    }

    /// With someone listening, the registry reports its own transfers: uploads (after
    /// `put_blob` returned), HEAD hits, cross-repository mounts, downloads (also the ones
    /// running ahead); the pipeline prints no per-blob line and counts nothing itself.
    #[test]
    fn transfers_are_reported_by_the_registry() {
        use crate::transport::testutil::Bars;
        let Some(reg) = TestRegistry::start(Mode::Plain) else {
            return;
        };
        let c = ctx(&Mode::Plain);
        let big = vec![
            layer_tar(
                "big",
                &(0..300_000u32)
                    .map(|i| (i * 7919 % 251) as u8)
                    .collect::<Vec<_>>(),
            ),
            layer_tar("small", b"hello"),
            layer_tar("third", b"3"),
        ];
        let copy_to = |repo: &str, rep: &Bars| {
            let mut src = image(&big, Compression::Gzip);
            let dst = RegistryDest::open(&named(&reg.host, repo), &c).unwrap();
            copy_image(&mut src, Box::new(dst), &CopyImageOptions::default(), rep).unwrap()
        };
        let rep = Bars::default();
        let out = copy_to("hod/ev:1", &rep);
        let m: ImageManifest = serde_json::from_slice(&out.manifest).unwrap();
        let (lines, events) = rep.take();
        assert!(
            !lines.iter().any(|l| l.starts_with("Copying blob")),
            "{lines:?}"
        );
        assert_eq!(events.first().map(String::as_str), Some("begin"));
        assert_eq!(events.last().map(String::as_str), Some("end"));
        for l in &m.layers {
            let d = &l.digest;
            let start = format!("start {d} Some({})", l.size);
            let i = events.iter().position(|e| *e == start).expect(&start);
            let done = events.iter().rposition(|e| *e == format!("done {d}"));
            assert!(done.is_some_and(|j| j > i), "{d}: {events:?}");
            // before it, the pipeline prepared (read and verified) the blob
            let prep = format!("preparing {d} Some({})", l.size);
            let p = events.iter().position(|e| *e == prep).expect(&prep);
            assert!(events[p..i].contains(&format!("done {d}")), "{events:?}");
            // the upload's position ends at the size
            let last = events.iter().rfind(|e| e.starts_with(&format!("pos {d} ")));
            assert_eq!(last, Some(&format!("pos {d} {}", l.size)), "{events:?}");
        }
        assert!(
            !events
                .iter()
                .any(|e| e.contains(&m.config.digest.to_string())),
            "no bar for the config: {events:?}"
        );
        // the same repository again: every layer is there (HEAD)
        copy_to("hod/ev:2", &rep);
        let (_, events) = rep.take();
        let mut want = vec!["begin".to_string()];
        want.extend(m.layers.iter().map(|l| format!("skipped {}", l.digest)));
        want.push("end".into());
        assert_eq!(events, want);
        // another repository: mounted from the first
        copy_to("hod/other:1", &rep);
        let (_, events) = rep.take();
        let mut want = vec!["begin".to_string()];
        want.extend(
            m.layers
                .iter()
                .map(|l| format!("mounted {} hod/ev", l.digest)),
        );
        want.push("end".into());
        assert_eq!(events, want);
        // pulled: the source reports each layer's download, ahead of the pipeline or not
        let t = tempfile::tempdir().unwrap();
        let mut src = RegistrySource::open(&named(&reg.host, "hod/ev:1"), &c).unwrap();
        let dst = OciLayoutDest::new(&t.path().join("lay"), Some("x")).unwrap();
        copy_image(&mut src, Box::new(dst), &CopyImageOptions::default(), &rep).unwrap();
        let (lines, events) = rep.take();
        assert!(
            !lines.iter().any(|l| l.starts_with("Copying blob")),
            "{lines:?}"
        );
        for l in &m.layers {
            let d = &l.digest;
            assert_eq!(
                events
                    .iter()
                    .filter(|e| **e == format!("start {d} Some({})", l.size))
                    .count(),
                1,
                "{events:?}"
            );
            assert!(
                events.contains(&format!("pos {d} {}", l.size)),
                "{events:?}"
            );
            assert!(events.contains(&format!("done {d}")), "{events:?}");
        }
        assert_eq!(events.last().map(String::as_str), Some("end"));
        assert!(
            !events.iter().any(|e| e.starts_with("failed")),
            "{events:?}"
        );
    }

    #[test]
    fn plain_round_trip_skips_and_mounts() {
        let Some(reg) = TestRegistry::start(Mode::Plain) else {
            return;
        };
        let c = ctx(&Mode::Plain);
        let (out, lines) = push(&reg.host, "hod/a:1", &c, Compression::Gzip);
        assert!(
            lines.iter().any(|l| l.starts_with("Copying blob sha256:")),
            "{lines:?}"
        );
        let back = pull(&reg.host, "hod/a:1", &c).unwrap();
        assert_eq!(back.config_digest, out.config_digest);
        assert_eq!(back.manifest_digest, out.manifest_digest);
        // by digest too
        let by_digest = pull(&reg.host, &format!("hod/a@{}", out.manifest_digest), &c).unwrap();
        assert_eq!(by_digest.manifest_digest, out.manifest_digest);
        // a second push finds every layer there (HEAD)
        let (_, lines) = push(&reg.host, "hod/a:2", &c, Compression::Gzip);
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.ends_with("skipped: already exists"))
                .count(),
            2,
            "{lines:?}"
        );
        // another repository of the same registry: mounted, not uploaded
        let (_, lines) = push(&reg.host, "hod/b:1", &c, Compression::Gzip);
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.ends_with("skipped: already exists"))
                .count(),
            2,
            "{lines:?}"
        );
        assert!(pull(&reg.host, "hod/b:1", &c).is_ok());
        // uncompressed source → gzip (the registry's desired compression); zstd kept
        let (out, _) = push(&reg.host, "hod/c:raw", &c, Compression::None);
        let m: ImageManifest = serde_json::from_slice(&out.manifest).unwrap();
        assert!(
            m.layers.iter().all(|l| l.media_type == OCI_LAYER_GZIP),
            "{m:?}"
        );
        let (out, _) = push(&reg.host, "hod/c:zstd", &c, Compression::Zstd);
        let m: ImageManifest = serde_json::from_slice(&out.manifest).unwrap();
        assert!(
            m.layers.iter().all(|l| l.media_type == OCI_LAYER_ZSTD),
            "{m:?}"
        );
        assert_eq!(
            pull(&reg.host, "hod/c:zstd", &c).unwrap().config_digest,
            out.config_digest
        );
        // a missing tag names the manifest and the registry
        let e = pull(&reg.host, "hod/a:nope", &c).unwrap_err().chain();
        assert!(
            e.contains("reading manifest nope in") && e.contains(&reg.host),
            "{e}"
        );
    }

    #[test]
    fn chunked_upload() {
        let Some(reg) = TestRegistry::start(Mode::Plain) else {
            return;
        };
        let c = ctx(&Mode::Plain);
        let big: Vec<u8> = (0..3_000_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let mut src = image(&[layer_tar("big", &big)], Compression::None);
        let mut dst = RegistryDest::open(&named(&reg.host, "hod/big:1"), &c).unwrap();
        dst.pusher.chunk_size = 1 << 20;
        let out = copy_image(
            &mut src,
            Box::new(dst),
            &CopyImageOptions::default(),
            &crate::report::Quiet,
        )
        .unwrap();
        assert_eq!(
            pull(&reg.host, "hod/big:1", &c).unwrap().config_digest,
            out.config_digest
        );
    }

    #[test]
    fn tls_with_ca_from_cert_dir() {
        let Some(reg) = TestRegistry::start(Mode::Tls) else {
            return;
        };
        let mut c = ctx(&Mode::Tls);
        // not trusted: one clear error, not retried
        let e = RegistrySource::open(&named(&reg.host, "hod/t:1"), &c)
            .unwrap_err()
            .chain();
        assert!(e.contains(&reg.host) && e.contains("certificate"), "{e}");
        c.cert_dir = Some(reg.cert_dir.clone());
        let (out, _) = push(&reg.host, "hod/t:1", &c, Compression::Gzip);
        assert_eq!(
            pull(&reg.host, "hod/t:1", &c).unwrap().config_digest,
            out.config_digest
        );
        // --tls-verify=false: no verification
        let mut c = ctx(&Mode::Plain);
        c.tls_verify = Some(false);
        assert!(pull(&reg.host, "hod/t:1", &c).is_ok());
        // a self-signed server certificate trusted through --cert-dir
        let Some(reg) = TestRegistry::start(Mode::TlsSelfSigned) else {
            return;
        };
        let mut c = ctx(&Mode::Tls);
        let e = RegistrySource::open(&named(&reg.host, "hod/t:1"), &c)
            .unwrap_err()
            .chain();
        assert!(e.contains("certificate"), "{e}");
        c.cert_dir = Some(reg.cert_dir.clone());
        let (out, _) = push(&reg.host, "hod/t:1", &c, Compression::Gzip);
        assert_eq!(
            pull(&reg.host, "hod/t:1", &c).unwrap().config_digest,
            out.config_digest
        );
    }

    fn no_secret(e: &str) {
        assert!(!e.contains(PASSWORD), "password leaked: {e}");
        assert!(!e.contains("Basic "), "authorization leaked: {e}");
    }

    #[test]
    fn basic_auth() {
        let Some(reg) = TestRegistry::start(Mode::Basic) else {
            return;
        };
        let c = ctx(&Mode::Basic);
        let (out, _) = push(&reg.host, "hod/basic:1", &c, Compression::Gzip);
        assert_eq!(
            pull(&reg.host, "hod/basic:1", &c).unwrap().config_digest,
            out.config_digest
        );
        let ep = &endpoints(&c, &named(&reg.host, "hod/basic"), false).unwrap();
        check_login(&ep[0]).unwrap();
        let mut wrong = c.clone();
        wrong.credentials = Some(Credentials {
            username: USER.into(),
            password: "wrong".into(),
        });
        let e = pull(&reg.host, "hod/basic:1", &wrong).unwrap_err().chain();
        assert!(
            e.contains(&format!("authenticating to registry {}", reg.host)),
            "{e}"
        );
        assert!(e.contains("invalid username/password"), "{e}");
        no_secret(&e);
        let ep = &endpoints(&wrong, &named(&reg.host, "hod/basic"), false).unwrap();
        assert!(check_login(&ep[0]).is_err());
        let mut anon = c.clone();
        anon.credentials = None;
        let e = pull(&reg.host, "hod/basic:1", &anon).unwrap_err().chain();
        assert!(e.contains("authentication required"), "{e}");
    }

    #[test]
    fn bearer_token_flow() {
        for access_token in [false, true] {
            let Some(reg) = TestRegistry::start(Mode::Token { access_token }) else {
                return;
            };
            let c = ctx(&Mode::Basic);
            let (out, _) = push(&reg.host, "hod/tok:1", &c, Compression::Gzip);
            // one token for the push scope, reused for every blob and the manifest
            assert_eq!(reg.tokens_issued(), 1, "{}", reg.log());
            assert_eq!(
                pull(&reg.host, "hod/tok:1", &c).unwrap().config_digest,
                out.config_digest
            );
            assert_eq!(reg.tokens_issued(), 2);
            let ep = &endpoints(&c, &named(&reg.host, "hod/tok"), false).unwrap();
            check_login(&ep[0]).unwrap();
            let mut wrong = c.clone();
            wrong.credentials = Some(Credentials {
                username: USER.into(),
                password: "nope".into(),
            });
            let e = pull(&reg.host, "hod/tok:1", &wrong).unwrap_err().chain();
            assert!(
                e.contains(&format!("authenticating to registry {}", reg.host)),
                "{e}"
            );
            no_secret(&e);
            let ep = &endpoints(&wrong, &named(&reg.host, "hod/tok"), false).unwrap();
            assert!(check_login(&ep[0]).is_err());
        }
    }

    #[test]
    fn faults() {
        let Some(reg) = TestRegistry::start(Mode::Plain) else {
            return;
        };
        let c = ctx(&Mode::Plain);
        let (out, _) = push(&reg.host, "hod/f:1", &c, Compression::Gzip);
        // a connection dropped mid-blob is resumed
        let Some(p) = FaultyProxy::start(&reg.host, "drop-blob-once") else {
            return;
        };
        assert_eq!(
            pull(&p.host, "hod/f:1", &c).unwrap().config_digest,
            out.config_digest
        );
        assert!(
            p.requests()
                .iter()
                .filter(|r| r.contains("/blobs/"))
                .count()
                >= 6
        );
        // … and after the retries, one clear error
        let p = FaultyProxy::start(&reg.host, "drop-blob").unwrap();
        let e = pull(&p.host, "hod/f:1", &c).unwrap_err().chain();
        assert!(
            e.contains("giving up after 3 attempts") && e.contains(&p.host),
            "{e}"
        );
        let p = FaultyProxy::start(&reg.host, "500").unwrap();
        let e = pull(&p.host, "hod/f:1", &c).unwrap_err().chain();
        assert!(
            e.contains("reading manifest 1 in")
                && e.contains("giving up after 3 attempts")
                && e.contains("500"),
            "{e}"
        );
        assert_eq!(
            p.requests()
                .iter()
                .filter(|r| r.contains("/manifests/"))
                .count(),
            3
        );
        let p = FaultyProxy::start(&reg.host, "corrupt-blob").unwrap();
        let e = format!("{:?}", pull(&p.host, "hod/f:1", &c).unwrap_err());
        assert!(e.contains("DigestMismatch"), "{e}");
        let p = FaultyProxy::start(&reg.host, "big-manifest").unwrap();
        let e = pull(&p.host, "hod/f:1", &c).unwrap_err().chain();
        assert!(e.contains("larger than the limit of 4194304"), "{e}");
        let p = FaultyProxy::start(&reg.host, "unknown-mt").unwrap();
        let e = pull(&p.host, "hod/f:1", &c).unwrap_err().chain();
        assert!(
            e.contains("unsupported manifest media type \"application/vnd.hod.unknown+json\""),
            "{e}"
        );
    }

    #[test]
    fn streamed_into_the_store_and_nothing_kept_on_a_bad_blob() {
        let Some(reg) = TestRegistry::start(Mode::Plain) else {
            return;
        };
        let c = ctx(&Mode::Plain);
        let (out, _) = push(&reg.host, "hod/s:1", &c, Compression::Gzip);
        let q = &crate::report::Quiet;
        // a corrupt blob: refused while streaming, no layer or image left behind
        let p = FaultyProxy::start(&reg.host, "corrupt-blob").unwrap();
        let t = tempfile::tempdir().unwrap();
        let store = crate::transport::storage::tests::vfs_store(t.path());
        let mut src = RegistrySource::open(&named(&p.host, "hod/s:1"), &c).unwrap();
        let dst = crate::transport::storage::StorageDest::new(&store, vec!["x:1".into()]).unwrap();
        let e = copy_image(&mut src, Box::new(dst), &CopyImageOptions::default(), q)
            .unwrap_err()
            .chain();
        assert!(e.contains("sha256:"), "{e}");
        assert!(store.layers().unwrap().is_empty(), "{:?}", store.layers());
        assert!(store.images().unwrap().is_empty());
        // the real thing: streamed (first layer) and prefetched (second), both applied
        let mut src = RegistrySource::open(&named(&reg.host, "hod/s:1"), &c).unwrap();
        let dst = crate::transport::storage::StorageDest::new(&store, vec!["x:1".into()]).unwrap();
        let got = copy_image(&mut src, Box::new(dst), &CopyImageOptions::default(), q).unwrap();
        assert_eq!(got.config_digest, out.config_digest);
        assert_eq!(store.layers().unwrap().len(), 2);
        let _ = std::process::Command::new("umount")
            .arg("-R")
            .arg(t.path().join("root"))
            .output();
    }
}
