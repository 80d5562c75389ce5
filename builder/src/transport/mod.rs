//! Image transports: `ImageSource` → `ImageDestination` with one [`copy_image`] pipeline shared
//! by commit, push and pull (and later the registry transport).
//!
//! ```text
//!  source blob ─▶ sha256+size check ─▶ [decompress ─▶ sha256 (diff_id) ─▶ compress] ─▶ sha256 ─▶ staged temp file
//!                                                                                      │ (verified)
//!                                                               ImageDestination::put_blob (rename / apply)
//! ```
//! Every blob is verified (digest and size) while it is staged, before the destination makes
//! it visible (D36). Layer encryption and decryption (`--encryption-key`, `--decryption-key`)
//! are two more stages of the same writer chain (`image::encryption`):
//! `verify ─▶ [decrypt] ─▶ decompress ─▶ diff_id ─▶ compress ─▶ [encrypt ─▶ sha256] ─▶ file`. Manifests and configs are read with a 4 MiB bound (D37).
//! Format conversion (`--format`) changes the manifest's media types only; the config bytes,
//! and so the image ID, are kept, as containers/image does.
//! Progress: without a listener ([`Reporter::transfers`] `None`) the pipeline prints
//! buildah's per-blob lines; with one, it reports byte-level [`TransferEvent`]s instead,
//! counting itself only what neither end reports ([`ImageDestination::report_transfers`],
//! [`ImageSource::report_transfers`]; see `report`).
pub mod blob_cache;
pub mod codec;
pub mod dir;
pub mod docker_archive;
pub mod oci;
pub mod registry;
pub mod storage;

use std::io::{self, Seek, Write};
use std::path::{Path, PathBuf};

use crate::archive::Compression;
use crate::builder::ImageFormat;
use crate::error::{Error, IoResultExt, Result};
use crate::image::encryption::{
    self, DecryptStage, DecryptionConfig, EncryptStage, EncryptionConfig, EncryptionError, LayerKey,
};
use crate::image::manifest::{self, *};
use crate::image::platform::{choose_instance, Platform};
use crate::image::{Digest, ImageConfig, Sha256Writer};
use crate::options::RegistryContext;
use crate::reference::ImageReference;
use crate::report::{
    BlobMeter, CopyScope, MeteredRead, MeteredWrite, Reporter, TransferEvent, TransferProgress,
};
use crate::store::Store;
use std::sync::Arc;

use crate::archive::pipeline::LayerWriter;
use codec::{compression_of_media_type, Decoder, LimitedVec};

/// Transport errors.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// An unknown transport prefix.
    #[error("unknown transport {0:?}")]
    UnknownTransport(String),
    /// A transport that is recognised but not implemented.
    #[error("{0} transport not implemented yet")]
    NotImplemented(&'static str),
    /// A blob's content does not match its descriptor.
    #[error(
        "blob {expected} has digest {actual} and size {actual_size}, expected size {expected_size}"
    )]
    DigestMismatch {
        /// The descriptor's digest.
        expected: Digest,
        /// What the bytes hash to.
        actual: Digest,
        /// The descriptor's size.
        expected_size: i64,
        /// The bytes' length.
        actual_size: u64,
    },
    /// A layer's uncompressed content does not match the config's diff_id.
    #[error("layer {blob}: uncompressed digest {actual} does not match diff_id {expected}")]
    DiffIdMismatch {
        /// The layer blob.
        blob: Digest,
        /// The config's diff_id.
        expected: Digest,
        /// What the uncompressed bytes hash to.
        actual: Digest,
    },
    /// The image is malformed (layer/diff_id count, unsupported media type, …).
    #[error("{0}")]
    BadImage(String),
    /// The named image is not in the source.
    #[error("{0}: image not known")]
    NoSuchImage(String),
}

/// A blob the destination already holds or just stored.
#[derive(Debug, Clone, PartialEq)]
pub struct BlobInfo {
    /// Digest of the bytes as stored.
    pub digest: Digest,
    /// Size.
    pub size: i64,
    /// Its compression, when the destination reuses a blob other than the source's
    /// (`None` = the source blob itself or its recompression to the copy's target).
    pub compression: Option<Compression>,
    /// The repository a registry mounted the blob from (`None`: it was already there).
    pub mounted_from: Option<String>,
}

/// What the copy pipeline knows about a layer when handing it to a destination.
#[derive(Debug, Clone)]
pub struct LayerInfo {
    /// Position, bottom first.
    pub index: usize,
    /// The uncompressed digest (config `rootfs.diff_ids[index]`).
    pub diff_id: Option<Digest>,
    /// The blob's compression.
    pub compression: Compression,
    /// The compression the copy produces for this layer (a reused blob should have it).
    pub target: Compression,
    /// A container layer holding exactly this layer's files, which a store destination
    /// may take over instead of applying the tar ([`ImageSource::adoptable_layer`]).
    pub adopt: Option<AdoptableLayer>,
}

/// A container's layer whose files a store may move into a new layer (see
/// [`crate::store::Store::put_layer_adopting`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdoptableLayer {
    /// The store root the layer lives in (only that store may take it).
    pub root: PathBuf,
    /// The container's layer ID.
    pub layer: String,
}

/// A readable image.
pub trait ImageSource {
    /// The manifest (bytes exactly as stored) and its media type. `instance` selects a
    /// manifest listed in the source's index.
    fn manifest(&mut self, instance: Option<&Digest>) -> Result<(Vec<u8>, String)>;
    /// Write the bytes of the blob `desc` names (config or layer) to `out`. The caller
    /// verifies digest and size.
    fn write_blob(&mut self, desc: &Descriptor, out: &mut dyn Write) -> Result<()>;
    /// The source's description, for messages.
    fn describe(&self) -> String;
    /// Hand over a temporary file that already holds exactly the blob's bytes (a layer the
    /// source spooled itself, e.g. commit's new layer), saving the pipeline one copy. The
    /// pipeline still verifies it.
    fn take_blob_file(&mut self, _desc: &Descriptor) -> Option<tempfile::NamedTempFile> {
        None
    }
    /// A reader streaming the blob's bytes, for destinations that apply layers as they
    /// arrive ([`ImageDestination::put_layer_stream`]); `None` = not offered. The reader
    /// must verify the blob's digest and size itself and report end-of-file only after
    /// they matched (an error otherwise).
    fn open_blob(&mut self, _desc: &Descriptor) -> Result<Option<Box<dyn io::Read + Send>>> {
        Ok(None)
    }
    /// Whether the bytes [`ImageSource::write_blob`] gives for `desc` are checked by the
    /// source itself against what was recorded when `desc`'s digest was computed (a stored
    /// layer rebuilt from its tar-split, each file verified against its CRC-64, failing
    /// otherwise), so that the pipeline need not hash them again to verify them.
    fn verifies_blob(&self, _desc: &Descriptor) -> bool {
        false
    }
    /// A container layer whose files are exactly what the uncompressed blob `desc`
    /// describes (commit's new layer, when the container is removed right after): a store
    /// destination may move them into its new layer instead of writing them again.
    fn adoptable_layer(&self, _desc: &Descriptor) -> Option<AdoptableLayer> {
        None
    }
    /// The names the source itself records for the image (an `oci-archive:`'s ref-name
    /// annotation, a `docker-archive:`'s `RepoTags`), as stored; `pull::pulled_names`
    /// turns them into the names a pulled image gets.
    fn recorded_names(&self) -> Vec<String> {
        Vec::new()
    }
    /// Report the bytes of the layers this source transfers itself (a registry's downloads,
    /// including those running ahead of the pipeline) to `sink`: `true` when it does, and
    /// the pipeline then counts nothing itself. Not asked when the destination reports.
    fn report_transfers(&mut self, _sink: Arc<dyn TransferProgress>) -> bool {
        false
    }
}

/// A writable image. Nothing becomes visible before [`ImageDestination::commit`], except
/// content-addressed blobs (visible only once verified).
pub trait ImageDestination {
    /// A directory on the destination's filesystem where blobs are staged (renamed into
    /// place by `put_blob`).
    fn staging_dir(&self) -> &Path;
    /// The layer compression the destination needs, if it needs one.
    fn required_compression(&self) -> Option<Compression> {
        None
    }
    /// The compression the destination wants for layers that arrive uncompressed, when the
    /// caller asks for none (a registry: gzip, as containers/image's `DesiredLayerCompression`).
    fn desired_compression(&self) -> Option<Compression> {
        None
    }
    /// The manifest types accepted, preferred first.
    fn supported_manifest_types(&self) -> &'static [&'static str] {
        &[OCI_MANIFEST, DOCKER_MANIFEST]
    }
    /// Whether the destination already has this layer (`desc` as the source lists it);
    /// `Some` = skip the copy and use this blob in the manifest.
    fn try_reuse_layer(
        &mut self,
        _desc: &Descriptor,
        _layer: &LayerInfo,
    ) -> Result<Option<BlobInfo>> {
        Ok(None)
    }
    /// Whether the destination unpacks layers (the local store) rather than holding blobs:
    /// an encrypted layer without a key cannot go there.
    fn unpacks_layers(&self) -> bool {
        false
    }
    /// Whether [`ImageDestination::put_layer_stream`] is supported.
    fn accepts_layer_stream(&self) -> bool {
        false
    }
    /// Apply a layer streamed from the source (`r` from [`ImageSource::open_blob`], which
    /// fails rather than end on a digest mismatch) without staging it: the destination
    /// reads `r` to its end and discards what it applied when `r` fails.
    fn put_layer_stream(
        &mut self,
        _r: Box<dyn io::Read + Send>,
        _desc: &Descriptor,
        _layer: &LayerInfo,
    ) -> Result<()> {
        Err(bad("this destination does not apply streamed layers"))
    }
    /// Start sending a layer blob while it is still being produced (its digest is known only
    /// at the end): the copy writes every byte both to the staged file and to the returned
    /// stream, then calls [`ImageDestination::finish_blob_stream`]. `None` (the default):
    /// the destination takes the finished file through [`ImageDestination::put_blob`].
    fn start_blob_stream(&mut self) -> Result<Option<Box<dyn BlobStream>>> {
        Ok(None)
    }
    /// Complete a stream from [`ImageDestination::start_blob_stream`]: `file` holds the same
    /// bytes, verified as `desc`, for a destination that must send them again.
    fn finish_blob_stream(
        &mut self,
        stream: Box<dyn BlobStream>,
        file: tempfile::NamedTempFile,
        desc: &Descriptor,
        layer: Option<&LayerInfo>,
    ) -> Result<()> {
        drop(stream);
        self.put_blob(file, desc, layer)
    }
    /// Store a verified blob staged in `file` (its digest and size are `desc`'s). `layer` is
    /// `None` for the config.
    fn put_blob(
        &mut self,
        file: tempfile::NamedTempFile,
        desc: &Descriptor,
        layer: Option<&LayerInfo>,
    ) -> Result<()>;
    /// Store the manifest.
    fn put_manifest(&mut self, data: &[u8], media_type: &str) -> Result<()>;
    /// Store the manifest of one instance of a manifest list or index being copied (by its
    /// digest, not as the image's main manifest); the list itself then goes to
    /// [`ImageDestination::put_manifest`]. Destinations that can't hold lists refuse.
    fn put_instance_manifest(&mut self, _data: &[u8], _media_type: &str) -> Result<()> {
        Err(bad("the destination does not support manifest lists"))
    }
    /// Make the image visible, atomically.
    fn commit(self: Box<Self>) -> Result<()>;
    /// Report the bytes of the layers this destination transfers itself (a registry's
    /// uploads, which run after `put_blob` returned) to `sink`: `true` when it does, and
    /// neither the source nor the pipeline counts them then.
    fn report_transfers(&mut self, _sink: Arc<dyn TransferProgress>) -> bool {
        false
    }
}

/// The sending end of a blob upload that overlaps the blob's production (see
/// [`ImageDestination::start_blob_stream`]). Writes never fail: a stream that breaks is
/// abandoned, and the destination sends the staged file instead when it is finished.
pub trait BlobStream: Write + Send {
    /// For the destination that made it, to take its own stream back.
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send>;
}

/// Layers at least this large (uncompressed) are streamed to destinations that can.
const STREAM_MIN: i64 = 8 << 20;

/// The staged file plus, when the destination streams, the upload it feeds.
struct Tee {
    file: tempfile::NamedTempFile,
    stream: Option<Box<dyn BlobStream>>,
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        if let Some(s) = self.stream.as_mut() {
            s.write_all(&buf[..n])?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Options of [`copy_image`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CopyImageOptions {
    /// Convert the manifest to this format; `None` keeps the source's when the destination
    /// accepts it.
    pub format: Option<ImageFormat>,
    /// Recompress layers to this; `None` keeps the source's compression (unless the
    /// destination requires one).
    pub compression: Option<Compression>,
    /// The level layers are recompressed at; `None` = the format's default.
    pub compression_level: Option<i32>,
    /// Don't copy signatures (there are none yet; kept for the CLI contract).
    pub remove_signatures: bool,
    /// The instance to copy when the source is a manifest list or index (empty fields =
    /// the host's).
    pub platform: Platform,
    /// `--encryption-key`/`--encrypt-layer`: encrypt layers (forces the OCI format).
    pub encryption: Option<std::sync::Arc<EncryptionConfig>>,
    /// `--decryption-key`: decrypt encrypted layers.
    pub decryption: Option<std::sync::Arc<DecryptionConfig>>,
}

/// What a copy produced.
#[derive(Debug, Clone)]
pub struct CopyOutput {
    /// The manifest written.
    pub manifest: Vec<u8>,
    /// Its media type.
    pub manifest_type: String,
    /// Its digest.
    pub manifest_digest: Digest,
    /// The config digest (its hex is the image ID).
    pub config_digest: Digest,
}

fn bad(msg: impl Into<String>) -> Error {
    TransportError::BadImage(msg.into()).into()
}

/// A [`TransportError::BadImage`].
pub(crate) fn bad_image(msg: impl Into<String>) -> Error {
    bad(msg)
}

/// Read a blob into memory with the 4 MiB bound and verify it.
pub fn read_small_blob(src: &mut dyn ImageSource, desc: &Descriptor) -> Result<Vec<u8>> {
    if desc.size > MAX_MANIFEST_SIZE as i64 {
        return Err(bad(format!(
            "blob {} is {} bytes, more than the limit of {MAX_MANIFEST_SIZE}",
            desc.digest, desc.size
        )));
    }
    let mut w = Sha256Writer::new(LimitedVec {
        buf: Vec::new(),
        limit: MAX_MANIFEST_SIZE,
    });
    src.write_blob(desc, &mut w)
        .map_err(|e| e.context(format!("reading blob {}", desc.digest)))?;
    let (digest, size, v) = w.finish();
    verify(desc, &digest, size)?;
    Ok(v.buf)
}

fn verify(desc: &Descriptor, digest: &Digest, size: u64) -> Result<()> {
    if desc.digest.algorithm() != "sha256" {
        return Err(bad(format!(
            "blob {}: only sha256 digests are supported",
            desc.digest
        )));
    }
    if *digest != desc.digest || (desc.size >= 0 && desc.size as u64 != size) {
        return Err(TransportError::DigestMismatch {
            expected: desc.digest.clone(),
            actual: digest.clone(),
            expected_size: desc.size,
            actual_size: size,
        }
        .into());
    }
    Ok(())
}

/// The layer media type for a manifest type and compression.
pub fn layer_media_type(manifest_type: &str, c: Compression) -> Result<&'static str> {
    let docker = manifest_type == DOCKER_MANIFEST;
    Ok(match (docker, c) {
        (false, Compression::None) => OCI_LAYER_TAR,
        (false, Compression::Gzip) => OCI_LAYER_GZIP,
        (false, Compression::Zstd) => OCI_LAYER_ZSTD,
        (true, Compression::None) => DOCKER_LAYER_TAR,
        (true, Compression::Gzip) => DOCKER_LAYER_GZIP,
        (true, Compression::Zstd) => {
            return Err(bad(
                "zstd-compressed layers are not supported by the docker image format",
            ))
        }
        (_, other) => {
            return Err(bad(format!(
                "media type for {other:?}-compressed layers is not defined"
            )))
        }
    })
}

fn config_media_type(manifest_type: &str) -> &'static str {
    if manifest_type == DOCKER_MANIFEST {
        DOCKER_CONFIG
    } else {
        OCI_CONFIG
    }
}

/// Load the single-image manifest of a source, choosing `platform`'s instance (empty fields
/// = the host's) from an index or manifest list with [`choose_instance`].
pub fn load_image_manifest(
    src: &mut dyn ImageSource,
    platform: &Platform,
) -> Result<(Vec<u8>, String, ImageManifest)> {
    let (bytes, mt) = src.manifest(None)?;
    match manifest::parse_manifest(&bytes, Some(&mt))? {
        Manifest::Oci(m) | Manifest::Docker(m) => {
            let mt = m.media_type.clone().unwrap_or_else(|| {
                if mt.is_empty() {
                    OCI_MANIFEST.to_string()
                } else {
                    mt
                }
            });
            Ok((bytes, mt, m))
        }
        Manifest::OciIndex(i) | Manifest::DockerList(i) => {
            let pick = choose_instance(&i, platform)
                .map_err(|e| {
                    e.context(format!(
                        "choosing an image from manifest list {}",
                        src.describe()
                    ))
                })?
                .clone();
            let (bytes, mt) = src.manifest(Some(&pick.digest))?;
            let got = Digest::of(&bytes);
            verify(&pick, &got, bytes.len() as u64)?;
            match manifest::parse_manifest(&bytes, Some(&pick.media_type))? {
                Manifest::Oci(m) | Manifest::Docker(m) => {
                    let mt = m.media_type.clone().unwrap_or(if mt.is_empty() {
                        pick.media_type
                    } else {
                        mt
                    });
                    Ok((bytes, mt, m))
                }
                _ => Err(bad("nested manifest lists are not supported")),
            }
        }
    }
}

fn stage(dst: &dyn ImageDestination) -> Result<tempfile::NamedTempFile> {
    let dir = dst.staging_dir();
    tempfile::Builder::new()
        .prefix(".tmp-blob-")
        .tempfile_in(dir)
        .at("creating temporary file in", dir)
}

/// Copy one image from `src` to `dst`: the one pipeline of commit, push and pull.
pub fn copy_image(
    src: &mut dyn ImageSource,
    mut dst: Box<dyn ImageDestination + '_>,
    opts: &CopyImageOptions,
    reporter: &dyn Reporter,
) -> Result<CopyOutput> {
    reporter.progress("Getting image source signatures");
    // Byte-level progress, when the reporter shows it: counted by the one party that moves
    // the bytes (see `report`); `None` = the plain per-blob lines.
    let sink = reporter.transfers();
    let _scope = CopyScope::begin(&sink);
    // The destination uploading by itself: the pipeline meters preparing each blob for it.
    // The source downloading by itself: nothing here. Neither: the pipeline's reading is the
    // transfer.
    #[derive(Clone, Copy, PartialEq)]
    enum Metered {
        Off,
        Preparing,
        Transfer,
    }
    let metered = match &sink {
        Some(s) if dst.report_transfers(s.clone()) => Metered::Preparing,
        Some(s) if src.report_transfers(s.clone()) => Metered::Off,
        Some(_) => Metered::Transfer,
        None => Metered::Off,
    };
    let meter_for = |desc: &Descriptor| {
        let size = u64::try_from(desc.size).ok();
        match metered {
            Metered::Off => BlobMeter::none(),
            Metered::Preparing => BlobMeter::preparing(sink.as_ref(), &desc.digest, size),
            Metered::Transfer => BlobMeter::start(sink.as_ref(), &desc.digest, size),
        }
    };
    let (src_bytes, src_mt, src_manifest) = load_image_manifest(src, &opts.platform)?;
    let supported = dst.supported_manifest_types();
    // Encrypted layers need an OCI manifest (containers/image's `requiresOCIEncryption`):
    // when encrypting, or when copying encrypted layers without decrypting them.
    let src_encrypted = src_manifest
        .layers
        .iter()
        .any(|l| encryption::is_encrypted(&l.media_type));
    let needs_oci = opts.encryption.is_some() || (src_encrypted && opts.decryption.is_none());
    if opts.encryption.is_some() && dst.unpacks_layers() {
        return Err(EncryptionError::LocalStore.into());
    }
    if needs_oci {
        if opts.format == Some(ImageFormat::Docker) {
            return Err(EncryptionError::DockerFormat.into());
        }
        if !supported.contains(&OCI_MANIFEST) {
            return Err(EncryptionError::NeedsOci(supported.join(", ")).into());
        }
    }
    let want_mt = match opts.format {
        _ if needs_oci => OCI_MANIFEST,
        Some(ImageFormat::Oci) => OCI_MANIFEST,
        Some(ImageFormat::Docker) => DOCKER_MANIFEST,
        None => supported
            .iter()
            .copied()
            .find(|t| *t == src_mt)
            .unwrap_or(src_mt.as_str()),
    };
    let out_mt: &'static str = if supported.contains(&want_mt) {
        if want_mt == OCI_MANIFEST {
            OCI_MANIFEST
        } else {
            DOCKER_MANIFEST
        }
    } else {
        supported[0]
    };

    // The config first: its diff_ids describe the layers.
    let config_bytes = read_small_blob(src, &src_manifest.config)?;
    let config: ImageConfig = {
        manifest::check_no_duplicate_keys(&config_bytes).map_err(|source| Error::Json {
            op: "parsing".into(),
            path: "image config".into(),
            source,
        })?;
        serde_json::from_slice(&config_bytes).map_err(|source| Error::Json {
            op: "parsing".into(),
            path: "image config".into(),
            source,
        })?
    };
    let diff_ids = &config.rootfs.diff_ids;
    if diff_ids.len() != src_manifest.layers.len() {
        return Err(bad(format!(
            "image has {} layers but its config lists {} diff_ids",
            src_manifest.layers.len(),
            diff_ids.len()
        )));
    }

    // Which layers to encrypt; the keys of the encrypted layers to decrypt, unwrapped before
    // anything is copied (a wrong key or a missing one stores nothing).
    let to_encrypt = match &opts.encryption {
        Some(e) => e.layers.resolve(src_manifest.layers.len())?,
        None => vec![false; src_manifest.layers.len()],
    };
    let mut layer_keys = Vec::with_capacity(src_manifest.layers.len());
    for (index, desc) in src_manifest.layers.iter().enumerate() {
        layer_keys.push(match &opts.decryption {
            _ if !encryption::is_encrypted(&desc.media_type) => None,
            Some(dec) => Some(dec.layer_key(desc)?),
            None if dst.unpacks_layers() => {
                return Err(EncryptionError::MissingKey {
                    blob: desc.digest.clone(),
                    diff_id: diff_ids[index].clone(),
                }
                .into())
            }
            None => None,
        });
    }

    let mut out_layers = Vec::with_capacity(src_manifest.layers.len());
    for (index, desc) in src_manifest.layers.iter().enumerate() {
        let src_encrypted = encryption::is_encrypted(&desc.media_type);
        let decrypt = layer_keys[index].as_ref();
        // An encrypted layer without its key is copied as it is, still encrypted.
        let opaque = src_encrypted && decrypt.is_none();
        // containers/image never encrypts an already encrypted source layer again.
        let encrypt_key = (to_encrypt[index] && !src_encrypted).then(LayerKey::generate);
        let crypt = src_encrypted || encrypt_key.is_some();
        let src_c = compression_of_media_type(encryption::plain_media_type(&desc.media_type))
            .ok_or_else(|| {
                bad(format!(
                    "layer {}: unsupported media type {:?}",
                    desc.digest, desc.media_type
                ))
            })?;
        let target = if opaque {
            src_c
        } else {
            dst.required_compression()
                .or(opts.compression)
                .or(if src_c == Compression::None {
                    dst.desired_compression()
                } else {
                    None
                })
                .unwrap_or(src_c)
        };
        let info = LayerInfo {
            index,
            diff_id: Some(diff_ids[index].clone()),
            compression: src_c,
            target,
            adopt: None,
        };
        let out_media = layer_media_type(out_mt, target)?;
        // No reuse and no blob-cache records involving encrypted data (containers/image#1533):
        // a plain blob must never stand in for an encrypted one, nor the reverse.
        let reused = if crypt {
            None
        } else {
            dst.try_reuse_layer(desc, &info)?
        };
        if let Some(have) = reused {
            match (&sink, &have.mounted_from) {
                (None, _) => reporter.progress(&format!(
                    "Copying blob {} skipped: already exists",
                    desc.digest
                )),
                (Some(s), Some(from)) => s.event(TransferEvent::Mounted {
                    digest: &desc.digest,
                    from,
                }),
                (Some(s), None) => s.event(TransferEvent::Skipped {
                    digest: &desc.digest,
                }),
            }
            let reuse_media = match have.compression {
                Some(c) => layer_media_type(out_mt, c)?,
                None if have.digest == desc.digest => layer_media_type(out_mt, src_c)?,
                None => out_media,
            };
            let mut d = desc.clone();
            d.media_type = reuse_media.to_string();
            d.digest = have.digest;
            d.size = have.size;
            out_layers.push(d);
            continue;
        }
        if sink.is_none() {
            reporter.progress(&format!("Copying blob {}", desc.digest));
        }
        let mut meter = meter_for(desc);
        let mut spooled = if target == src_c && !crypt {
            src.take_blob_file(desc)
        } else {
            None
        };
        // download → verify → decompress → apply in one pass, when both ends can.
        if spooled.is_none() && target == src_c && !crypt && dst.accepts_layer_stream() {
            if let Some(r) = src.open_blob(desc)? {
                let r: Box<dyn io::Read + Send> = if meter.is_active() {
                    Box::new(MeteredRead::new(
                        r,
                        std::mem::replace(&mut meter, BlobMeter::none()),
                    ))
                } else {
                    r
                };
                let mut d = desc.clone();
                d.media_type = layer_media_type(out_mt, src_c)?.to_string();
                dst.put_layer_stream(r, &d, &info)
                    .map_err(|e| e.context(format!("copying blob {}", desc.digest)))?;
                blob_cache::record_compressed(&desc.digest, &diff_ids[index], src_c);
                out_layers.push(d);
                continue;
            }
        }
        let mut annotations = desc.annotations.clone();
        // An uncompressed spooled layer going into the store: the store hashes the tar while
        // it applies it and removes the layer when that digest is not `diff_id` (the blob's
        // own digest here), so reading the file once more to verify it first would only
        // hash the same bytes twice. The size is still checked here (from the file's length).
        let store_verifies =
            dst.unpacks_layers() && src_c == Compression::None && desc.digest == diff_ids[index];
        let mut adopt = None;
        let (file, out_digest, out_size, out_c, stream) = if let Some(f) =
            spooled.take_if(|_| store_verifies)
        {
            adopt = src.adoptable_layer(desc);
            let size = f.as_file().metadata().at("reading", f.path())?.len();
            verify(desc, &desc.digest, size)?;
            meter.add(size);
            meter.done();
            (f, desc.digest.clone(), size, src_c, None)
        } else if let Some(mut f) = spooled {
            let mut w = Sha256Writer::new(io::sink());
            f.as_file_mut().rewind().at("rewinding", f.path())?;
            io::copy(f.as_file_mut(), &mut w).at("reading", f.path())?;
            let (digest, size, _) = w.finish();
            verify(desc, &digest, size)?;
            meter.add(size);
            meter.done();
            (f, digest, size, src_c, None)
        } else if target == src_c && (opaque || !crypt) {
            let tmp = stage(dst.as_ref())?;
            let mut w = Sha256Writer::new(tmp);
            let mut out = MeteredWrite {
                inner: &mut w,
                meter: &mut meter,
            };
            src.write_blob(desc, &mut out)
                .map_err(|e| e.context(format!("copying blob {}", desc.digest)))?;
            let (digest, size, tmp) = w.finish();
            verify(desc, &digest, size)?;
            meter.done();
            if src_c == Compression::None && !opaque && digest != diff_ids[index] {
                return Err(TransportError::DiffIdMismatch {
                    blob: desc.digest.clone(),
                    expected: diff_ids[index].clone(),
                    actual: digest,
                }
                .into());
            }
            (tmp, digest, size, src_c, None)
        } else {
            let tmp = stage(dst.as_ref())?;
            let path = tmp.path().to_path_buf();
            let io_err = |e: io::Error| Error::Io {
                op: "recompressing blob into".into(),
                path: path.clone(),
                source: e,
            };
            let decrypt_err = |reason: String| -> Error {
                EncryptionError::Decrypt {
                    digest: desc.digest.clone(),
                    reason,
                }
                .into()
            };
            // source bytes → verify → [decrypt] → decompress → (diff_id, compress, blob
            // digest) → [encrypt → digest] → file (and, for big layers going to a registry,
            // straight on to its upload)
            let stream = if desc.size >= STREAM_MIN {
                dst.start_blob_stream()?
            } else {
                None
            };
            let tee = Tee { file: tmp, stream };
            let own_diff =
                decrypt.is_none() && src_c == Compression::None && desc.digest == diff_ids[index];
            let stage = EncryptStage::new(tee, encrypt_key.as_ref());
            let mut enc = if own_diff && src.verifies_blob(desc) {
                // The source checks the bytes itself against what was recorded when
                // their digest was computed: hashing them again would only cost CPU.
                LayerWriter::with_known_diff(
                    stage,
                    target,
                    opts.compression_level,
                    desc.digest.clone(),
                )?
            } else {
                LayerWriter::with_level(stage, target, opts.compression_level)?
            };
            let out = if own_diff {
                // An uncompressed blob is its own diff: the writer's diff ID digest is the
                // verification, so the bytes are hashed once, not twice.
                let mut metered = MeteredWrite {
                    inner: &mut enc,
                    meter: &mut meter,
                };
                src.write_blob(desc, &mut metered)
                    .map_err(|e| e.context(format!("copying blob {}", desc.digest)))?;
                meter.done();
                let out = enc.finish().map_err(io_err)?;
                verify(desc, &out.diff_id, out.diff_size)?;
                out
            } else {
                let dec = Decoder::new(enc, src_c).map_err(io_err)?;
                let dec = DecryptStage::new(dec, decrypt).map_err(decrypt_err)?;
                let mut verifier = Sha256Writer::new(dec);
                let mut metered = MeteredWrite {
                    inner: &mut verifier,
                    meter: &mut meter,
                };
                src.write_blob(desc, &mut metered)
                    .map_err(|e| e.context(format!("copying blob {}", desc.digest)))?;
                let (digest, size, dec) = verifier.finish();
                verify(desc, &digest, size)?;
                meter.done();
                // The HMAC is checked before the decrypted bytes are trusted any further.
                let dec = dec.finish().map_err(|e| decrypt_err(e.to_string()))?;
                let enc = dec.finish().map_err(io_err)?;
                enc.finish().map_err(io_err)?
            };
            if out.diff_id != diff_ids[index] {
                return Err(TransportError::DiffIdMismatch {
                    blob: desc.digest.clone(),
                    expected: diff_ids[index].clone(),
                    actual: out.diff_id,
                }
                .into());
            }
            let (tee, encrypted) = out.inner.finish().map_err(io_err)?;
            let Tee { file, stream } = tee;
            if decrypt.is_some() {
                // The decrypted layer carries no encryption annotations.
                if let Some(a) = &mut annotations {
                    a.retain(|k, _| !k.starts_with(encryption::ANNOTATION_PREFIX));
                }
                if annotations.as_ref().is_some_and(|a| a.is_empty()) {
                    annotations = None;
                }
            }
            match (encrypted, &encrypt_key, &opts.encryption) {
                (Some(e), Some(key), Some(cfg)) => {
                    let a = cfg.annotations(key, &e.public, &out.blob_digest)?;
                    annotations.get_or_insert_with(Default::default).extend(a);
                    (file, e.digest, e.size, target, stream)
                }
                _ => (file, out.blob_digest, out.blob_size, target, stream),
            }
        };
        if !crypt {
            blob_cache::record_compressed(&desc.digest, &diff_ids[index], src_c);
            blob_cache::record_compressed(&out_digest, &diff_ids[index], out_c);
        }
        let mut file = file;
        file.as_file_mut().flush().at("writing", file.path())?;
        file.as_file_mut().rewind().at("rewinding", file.path())?;
        let mut out_desc = desc.clone();
        out_desc.media_type = layer_media_type(out_mt, out_c)?.to_string();
        if opaque {
            out_desc.media_type = desc.media_type.clone();
        } else if encrypt_key.is_some() {
            out_desc.media_type.push_str(encryption::ENCRYPTED_SUFFIX);
        }
        out_desc.annotations = annotations;
        out_desc.digest = out_digest;
        out_desc.size = out_size as i64;
        let info = LayerInfo {
            compression: out_c,
            adopt,
            ..info
        };
        match stream {
            Some(s) => dst.finish_blob_stream(s, file, &out_desc, Some(&info)),
            None => dst.put_blob(file, &out_desc, Some(&info)),
        }
        .map_err(|e| e.context(format!("storing blob {}", out_desc.digest)))?;
        out_layers.push(out_desc);
    }

    reporter.progress(&format!("Copying config {}", src_manifest.config.digest));
    let mut tmp = stage(dst.as_ref())?;
    tmp.write_all(&config_bytes).at("writing", tmp.path())?;
    tmp.as_file_mut().rewind().at("rewinding", tmp.path())?;
    let mut config_desc = src_manifest.config.clone();
    config_desc.media_type = config_media_type(out_mt).to_string();
    dst.put_blob(tmp, &config_desc, None)
        .map_err(|e| e.context(format!("storing config {}", config_desc.digest)))?;

    // Keep the manifest byte-identical when nothing changed.
    let unchanged =
        out_mt == src_mt && out_layers == src_manifest.layers && config_desc == src_manifest.config;
    let manifest_bytes = if unchanged {
        src_bytes
    } else {
        let mut m = src_manifest.clone();
        m.schema_version = 2;
        m.media_type = Some(out_mt.to_string());
        m.config = config_desc.clone();
        m.layers = out_layers;
        if out_mt == DOCKER_MANIFEST {
            // Docker v2s2 has no annotations, artifact types or subjects.
            m.annotations = None;
            m.artifact_type = None;
            m.subject = None;
            for l in &mut m.layers {
                l.annotations = None;
            }
            m.config.annotations = None;
        }
        manifest::to_json(&m)
    };
    reporter.progress("Writing manifest to image destination");
    dst.put_manifest(&manifest_bytes, out_mt)?;
    if !opts.remove_signatures {
        reporter.progress("Storing signatures");
    }
    dst.commit()?;
    blob_cache::flush();
    Ok(CopyOutput {
        manifest_digest: Digest::of(&manifest_bytes),
        manifest: manifest_bytes,
        manifest_type: out_mt.to_string(),
        config_digest: config_desc.digest,
    })
}

/// Open a source for a parsed reference (local names resolve in `store`): the one place
/// every reader (`from`, `pull`, `push`'s and `copy --from`'s images) maps a transport to its
/// [`ImageSource`]. `ctx` carries registry access (used by `docker://`); the platform to
/// pick from a list is chosen later, by [`load_image_manifest`].
pub fn open_source<'s>(
    r: &ImageReference,
    store: Option<&'s Store>,
    ctx: &RegistryContext,
) -> Result<Box<dyn ImageSource + 's>> {
    Ok(match r {
        ImageReference::Oci { path, reference } => {
            Box::new(oci::OciLayoutSource::open(path, reference.as_deref())?)
        }
        ImageReference::OciArchive { path, reference } => {
            Box::new(oci::OciArchiveSource::open(path, reference.as_deref())?)
        }
        ImageReference::DockerArchive { path, selector } => Box::new(
            docker_archive::DockerArchiveSource::open(path, selector.as_ref())?,
        ),
        ImageReference::Dir { path } => Box::new(dir::DirSource::open(path)?),
        ImageReference::Storage {
            store: Some(spec),
            image,
        } => {
            let other = storage::open_store_spec(spec, store)?;
            Box::new(storage::StorageSource::open_handle(
                storage::StoreHandle::Owned(Box::new(other)),
                image,
            )?)
        }
        ImageReference::Storage { store: None, image } | ImageReference::Local(image) => {
            let store = store.ok_or_else(|| bad("no local store"))?;
            Box::new(storage::StorageSource::open(store, image)?)
        }
        ImageReference::Docker(named) => open_registry_source(named, ctx)?,
    })
}

/// Open a destination for a parsed reference: the one place `commit`, `push` (and `pull`'s
/// store) map a transport to its [`ImageDestination`]. Local names are normalised
/// (`myapp` → `localhost/myapp:latest`, see [`destination_names`]).
pub fn open_destination<'s>(
    r: &ImageReference,
    store: Option<&'s Store>,
    ctx: &RegistryContext,
) -> Result<Box<dyn ImageDestination + 's>> {
    Ok(match r {
        ImageReference::Oci { path, reference } => {
            Box::new(oci::OciLayoutDest::new(path, reference.as_deref())?)
        }
        ImageReference::OciArchive { path, reference } => {
            Box::new(oci::OciArchiveDest::new(path, reference.as_deref())?)
        }
        ImageReference::DockerArchive { path, selector } => {
            let tag = match selector {
                None => None,
                Some(crate::reference::ArchiveSelector::Named(n)) => Some(n.clone()),
                Some(crate::reference::ArchiveSelector::Index(_)) => {
                    return Err(bad(
                        "docker-archive: a source index (@N) cannot be used for writing",
                    ))
                }
            };
            Box::new(docker_archive::DockerArchiveDest::new(path, tag)?)
        }
        ImageReference::Dir { path } => Box::new(dir::DirDest::new(path)?),
        ImageReference::Storage {
            store: Some(spec), ..
        } => {
            let other = storage::open_store_spec(spec, store)?;
            Box::new(storage::StorageDest::with_handle(
                storage::StoreHandle::Owned(Box::new(other)),
                destination_names(r)?,
            )?)
        }
        ImageReference::Storage { store: None, .. } | ImageReference::Local(_) => {
            let store = store.ok_or_else(|| bad("no local store"))?;
            Box::new(storage::StorageDest::new(store, destination_names(r)?)?)
        }
        ImageReference::Docker(named) => open_registry_destination(named, ctx)?,
    })
}

/// The `docker://` source: where the registry transport (`transport/registry/`, over
/// `registries::resolve_endpoints(ctx, named)`) plugs in.
fn open_registry_source(
    named: &crate::reference::NamedRef,
    ctx: &RegistryContext,
) -> Result<Box<dyn ImageSource + 'static>> {
    Ok(Box::new(registry::RegistrySource::open(named, ctx)?))
}

/// The `docker://` destination: where the registry transport plugs in.
fn open_registry_destination(
    named: &crate::reference::NamedRef,
    ctx: &RegistryContext,
) -> Result<Box<dyn ImageDestination + 'static>> {
    Ok(Box::new(registry::RegistryDest::open(named, ctx)?))
}

/// The names a local-store destination gives the image: a bare name is a local one
/// (`app` → `localhost/app:latest`, libimage's `NormalizeName`, as buildah commit resolves
/// it); a `containers-storage:` name is normalised as that transport does
/// (`containers-storage:app` → `docker.io/library/app:latest`).
pub fn destination_names(r: &ImageReference) -> Result<Vec<String>> {
    Ok(match r {
        ImageReference::Local(n) if n.is_empty() => Vec::new(),
        ImageReference::Local(n) => vec![crate::reference::normalize_local_name(n)?.to_string()],
        ImageReference::Storage { image, .. } => {
            // `name@digest` and `@id` forms carry no name to give.
            let name = image.split('@').next().unwrap_or_default();
            if name.is_empty() {
                Vec::new()
            } else {
                vec![crate::reference::parse_named(name)?
                    .with_default_tag()
                    .to_string()]
            }
        }
        _ => Vec::new(),
    })
}

/// Read a file with a size bound (index.json, manifest.json, …).
pub(crate) fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path).at("opening", path)?;
    let mut buf = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut buf)
        .at("reading", path)?;
    if buf.len() as u64 > limit {
        return Err(bad(format!(
            "{} is larger than the limit of {limit} bytes",
            path.display()
        )));
    }
    Ok(buf)
}

/// Open a file refusing a symlink as its last component.
pub(crate) fn open_nofollow(path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .at("opening", path)
}

/// Persist a staged temp file to `target` (no-op when `target` exists: blobs are
/// content-addressed and verified).
pub(crate) fn persist_blob(file: tempfile::NamedTempFile, target: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if target.exists() {
        return Ok(());
    }
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .at("setting mode of", file.path())?;
    file.as_file().sync_all().at("syncing", file.path())?;
    match file.persist(target) {
        Ok(_) => Ok(()),
        // A file spooled on another filesystem (a source's own temporary file): copy it.
        Err(e) if e.error.raw_os_error() == Some(libc::EXDEV) => {
            let mut from = e.file;
            from.as_file_mut().rewind().at("rewinding", from.path())?;
            let dir = parent_dir(target);
            let mut to = tempfile::Builder::new()
                .prefix(".tmp-blob-")
                .tempfile_in(&dir)
                .at("creating temporary file in", &dir)?;
            io::copy(from.as_file_mut(), to.as_file_mut()).at("copying into", to.path())?;
            to.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))
                .at("setting mode of", to.path())?;
            to.as_file().sync_all().at("syncing", to.path())?;
            to.persist(target)
                .map_err(|e| e.error)
                .at("renaming into", target)?;
            Ok(())
        }
        Err(e) => Err(e.error).at("renaming into", target),
    }
}

/// A path naming a destination's parent directory, for staging next to a file.
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod persist_tests {
    use super::*;

    #[test]
    fn persist_across_filesystems_copies() {
        let shm = Path::new("/dev/shm");
        let t = tempfile::tempdir_in(crate::scratch::big_temp_dir()).unwrap();
        let same_fs = |a: &Path, b: &Path| {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(a).unwrap().dev() == std::fs::metadata(b).unwrap().dev()
        };
        if !shm.is_dir() || same_fs(shm, t.path()) {
            return;
        }
        let mut f = tempfile::NamedTempFile::new_in(shm).unwrap();
        f.write_all(b"blob").unwrap();
        let src_path = f.path().to_path_buf();
        let target = t.path().join("blob");
        persist_blob(f, &target).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"blob");
        assert!(!src_path.exists(), "the spooled source is removed");
        let left: Vec<_> = std::fs::read_dir(t.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left next to the blob");
    }
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn local_destination_names() {
        let cases = [
            ("app", vec!["localhost/app:latest"]),
            ("app:1", vec!["localhost/app:1"]),
            ("quay.io/a/b", vec!["quay.io/a/b:latest"]),
            (
                "containers-storage:new-image",
                vec!["docker.io/library/new-image:latest"],
            ),
            ("containers-storage:localhost/x:2", vec!["localhost/x:2"]),
            ("oci:/x:y", vec![]),
        ];
        for (input, want) in cases {
            let r = ImageReference::parse(input).unwrap();
            assert_eq!(destination_names(&r).unwrap(), want, "{input}");
        }
        assert!(destination_names(&ImageReference::Local(String::new()))
            .unwrap()
            .is_empty());
        assert!(destination_names(&ImageReference::parse("Bad/Name").unwrap()).is_err());
    }
}

#[cfg(test)]
mod progress_tests {
    //! Byte-level progress counted by the pipeline (local transports), and its absence.
    use super::testutil::*;
    use super::*;

    fn layers() -> Vec<Vec<u8>> {
        vec![layer_tar("a", &[1u8; 100_000]), layer_tar("b", b"small")]
    }

    #[test]
    fn the_pipeline_meters_what_it_reads_when_someone_listens() {
        let t = tempfile::tempdir().unwrap();
        for (n, target) in [None, Some(Compression::Zstd)].into_iter().enumerate() {
            let mut src = image(&layers(), Compression::None);
            let m: ImageManifest = serde_json::from_slice(&src.manifest).unwrap();
            let rep = Bars::default();
            let dst = oci::OciLayoutDest::new(&t.path().join(format!("lay{n}")), None).unwrap();
            let opts = CopyImageOptions {
                compression: target,
                ..Default::default()
            };
            copy_image(&mut src, Box::new(dst), &opts, &rep).unwrap();
            let (lines, events) = rep.take();
            let mut want = vec!["begin".to_string()];
            for l in &m.layers {
                // one blob after the other, each ending at its size (however the writes
                // were cut, at most one position per 64 KiB)
                want.push(format!("start {} Some({})", l.digest, l.size));
                let pos: Vec<String> = events
                    .iter()
                    .filter(|e| e.starts_with(&format!("pos {} ", l.digest)))
                    .cloned()
                    .collect();
                assert!(pos.len() as u64 <= 1 + l.size as u64 / crate::report::METER_BATCH);
                assert_eq!(pos.last(), Some(&format!("pos {} {}", l.digest, l.size)));
                want.extend(pos);
                want.push(format!("done {}", l.digest));
            }
            want.push("end".into());
            assert_eq!(events, want, "target {target:?}");
            // the bars replace the per-blob lines; the others stay
            assert_eq!(
                lines,
                vec![
                    "Getting image source signatures".to_string(),
                    format!("Copying config {}", m.config.digest),
                    "Writing manifest to image destination".into(),
                    "Storing signatures".into(),
                ]
            );
        }
    }

    #[test]
    fn nobody_listening_gets_the_plain_lines() {
        let t = tempfile::tempdir().unwrap();
        let mut src = image(&layers(), Compression::Gzip);
        let m: ImageManifest = serde_json::from_slice(&src.manifest).unwrap();
        let rep = Collect::default();
        let dst = oci::OciLayoutDest::new(&t.path().join("lay"), None).unwrap();
        copy_image(&mut src, Box::new(dst), &CopyImageOptions::default(), &rep).unwrap();
        let lines = rep.0.lock().unwrap().clone();
        let mut want = vec!["Getting image source signatures".to_string()];
        want.extend(
            m.layers
                .iter()
                .map(|l| format!("Copying blob {}", l.digest)),
        );
        want.extend([
            format!("Copying config {}", m.config.digest),
            "Writing manifest to image destination".into(),
            "Storing signatures".into(),
        ]);
        assert_eq!(lines, want);
    }

    #[test]
    fn streamed_into_the_store_and_skipped_the_second_time() {
        let t = tempfile::tempdir().unwrap();
        let store = storage::tests::vfs_store(t.path());
        let rep = Bars::default();
        let mut src = image(&layers(), Compression::Gzip);
        let m: ImageManifest = serde_json::from_slice(&src.manifest).unwrap();
        let dst =
            Box::new(storage::StorageDest::new(&store, vec!["localhost/p:1".into()]).unwrap());
        copy_image(&mut src, dst, &CopyImageOptions::default(), &rep).unwrap();
        let (_, events) = rep.take();
        for l in &m.layers {
            assert!(
                events.contains(&format!("pos {} {}", l.digest, l.size)),
                "{events:?}"
            );
            assert!(events.contains(&format!("done {}", l.digest)), "{events:?}");
        }
        let mut src = image(&layers(), Compression::Gzip);
        let dst =
            Box::new(storage::StorageDest::new(&store, vec!["localhost/p:2".into()]).unwrap());
        copy_image(&mut src, dst, &CopyImageOptions::default(), &rep).unwrap();
        let (lines, events) = rep.take();
        let mut want = vec!["begin".to_string()];
        want.extend(m.layers.iter().map(|l| format!("skipped {}", l.digest)));
        want.push("end".into());
        assert_eq!(events, want);
        assert!(
            !lines.iter().any(|l| l.starts_with("Copying blob")),
            "{lines:?}"
        );
        let _ = std::process::Command::new("umount")
            .arg("-R")
            .arg(store.options().root.clone())
            .output();
    }

    #[test]
    fn a_failed_copy_still_ends() {
        let t = tempfile::tempdir().unwrap();
        let mut src = image(&layers(), Compression::Gzip);
        let m: ImageManifest = serde_json::from_slice(&src.manifest).unwrap();
        // the second layer's bytes no longer match its digest
        src.blobs
            .insert(m.layers[1].digest.clone(), b"not the layer".to_vec());
        let rep = Bars::default();
        let dst = oci::OciLayoutDest::new(&t.path().join("lay"), None).unwrap();
        assert!(copy_image(&mut src, Box::new(dst), &CopyImageOptions::default(), &rep).is_err());
        let (_, events) = rep.take();
        assert_eq!(events.first().map(String::as_str), Some("begin"));
        assert_eq!(events.last().map(String::as_str), Some("end"));
        assert!(
            events.contains(&format!("failed {}", m.layers[1].digest)),
            "{events:?}"
        );
    }
}

#[cfg(test)]
mod platform_tests {
    use super::testutil::*;
    use super::*;

    /// A source whose top-level manifest is an OCI index of an amd64 and an arm64/v8 image.
    fn two_platform_source() -> (MemSource, Digest, Digest) {
        let amd = image(&[layer_tar("a", b"1")], Compression::None);
        let amd_m: ImageManifest = serde_json::from_slice(&amd.manifest).unwrap();
        let mut cfg: serde_json::Value =
            serde_json::from_slice(&amd.blobs[&amd_m.config.digest]).unwrap();
        cfg["architecture"] = "arm64".into();
        cfg["variant"] = "v8".into();
        let arm_cfg = serde_json::to_vec(&cfg).unwrap();
        let mut arm_m = amd_m.clone();
        arm_m.config.digest = Digest::of(&arm_cfg);
        arm_m.config.size = arm_cfg.len() as i64;
        let arm_bytes = manifest::to_json(&arm_m);
        let mut blobs = amd.blobs.clone();
        blobs.insert(arm_m.config.digest.clone(), arm_cfg);
        blobs.insert(Digest::of(&arm_bytes), arm_bytes.clone());
        blobs.insert(Digest::of(&amd.manifest), amd.manifest.clone());
        let entry = |bytes: &[u8], arch: &str, variant: Option<&str>| {
            let mut d = Descriptor::new(OCI_MANIFEST, Digest::of(bytes), bytes.len() as i64);
            d.platform = Some(manifest::Platform {
                os: "linux".into(),
                architecture: arch.into(),
                variant: variant.map(String::from),
                ..Default::default()
            });
            d
        };
        let mut index = ImageIndex::new_oci();
        index.manifests = vec![
            entry(&amd.manifest, "amd64", None),
            entry(&arm_bytes, "arm64", Some("v8")),
        ];
        let src = MemSource {
            manifest: manifest::to_json(&index),
            media_type: OCI_INDEX.into(),
            blobs,
        };
        (src, amd_m.config.digest, arm_m.config.digest)
    }

    #[test]
    fn the_copy_pipeline_takes_the_requested_instance() {
        let t = tempfile::tempdir().unwrap();
        for (platform, arm) in [
            ("linux/arm64", true),
            ("linux/aarch64", true),
            ("linux/arm64/v8", true),
            ("linux/amd64", false),
            ("linux/x86_64", false),
        ] {
            let (mut src, amd_cfg, arm_cfg) = two_platform_source();
            let opts = CopyImageOptions {
                platform: Platform::parse(platform).unwrap(),
                ..Default::default()
            };
            let dst =
                oci::OciLayoutDest::new(&t.path().join(platform.replace('/', "-")), None).unwrap();
            let out = copy_image(&mut src, Box::new(dst), &opts, &crate::report::Quiet).unwrap();
            let want = if arm { arm_cfg } else { amd_cfg };
            assert_eq!(out.config_digest, want, "{platform}");
        }
        let (mut src, _, _) = two_platform_source();
        let opts = CopyImageOptions {
            platform: Platform::parse("linux/ppc64le").unwrap(),
            ..Default::default()
        };
        let dst = oci::OciLayoutDest::new(&t.path().join("none"), None).unwrap();
        let e = copy_image(&mut src, Box::new(dst), &opts, &crate::report::Quiet)
            .err()
            .unwrap();
        let chain = format!("{e} {:?}", e);
        assert!(
            chain.contains("choosing an image from manifest list memory")
                && chain.contains("linux/amd64, linux/arm64/v8"),
            "{chain}"
        );
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! An in-memory image source for the pipeline tests.
    use super::*;
    use std::collections::BTreeMap;

    /// A source holding blobs in memory.
    pub struct MemSource {
        pub manifest: Vec<u8>,
        pub media_type: String,
        pub blobs: BTreeMap<Digest, Vec<u8>>,
    }

    impl ImageSource for MemSource {
        fn manifest(&mut self, instance: Option<&Digest>) -> Result<(Vec<u8>, String)> {
            match instance {
                None => Ok((self.manifest.clone(), self.media_type.clone())),
                Some(d) => Ok((
                    self.blobs
                        .get(d)
                        .cloned()
                        .ok_or_else(|| bad("no such manifest"))?,
                    String::new(),
                )),
            }
        }
        fn write_blob(&mut self, desc: &Descriptor, out: &mut dyn Write) -> Result<()> {
            let b = self
                .blobs
                .get(&desc.digest)
                .ok_or_else(|| bad(format!("no blob {}", desc.digest)))?;
            out.write_all(b).at("writing", "blob")
        }
        fn describe(&self) -> String {
            "memory".into()
        }
    }

    /// A small layer tar with one file.
    pub fn layer_tar(name: &str, content: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, content).unwrap();
        b.into_inner().unwrap()
    }

    /// An image with the given layer tars, compressed with `c`, as an OCI manifest.
    pub fn image(layers: &[Vec<u8>], c: Compression) -> MemSource {
        let mut blobs = BTreeMap::new();
        let mut cfg = ImageConfig::scratch();
        cfg.architecture = "amd64".into();
        cfg.config.cmd = Some(vec!["/bin/sh".into()]);
        let mut descs = Vec::new();
        for l in layers {
            cfg.rootfs.diff_ids.push(Digest::of(l));
            let mut e = crate::archive::compress::compressor(Vec::new(), c).unwrap();
            e.write_all(l).unwrap();
            let z = e.finish().unwrap();
            descs.push(Descriptor::new(
                layer_media_type(OCI_MANIFEST, c).unwrap(),
                Digest::of(&z),
                z.len() as i64,
            ));
            blobs.insert(Digest::of(&z), z);
        }
        let (cfg_bytes, _) = crate::image::convert::to_oci(&cfg);
        let cfg_desc = Descriptor::new(OCI_CONFIG, Digest::of(&cfg_bytes), cfg_bytes.len() as i64);
        blobs.insert(cfg_desc.digest.clone(), cfg_bytes);
        let m = ImageManifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.into()),
            artifact_type: None,
            config: cfg_desc,
            layers: descs,
            subject: None,
            annotations: None,
            other: BTreeMap::new(),
        };
        MemSource {
            manifest: manifest::to_json(&m),
            media_type: OCI_MANIFEST.into(),
            blobs,
        }
    }

    /// A reporter that shows byte-level progress: its lines, and its transfer events as text.
    #[derive(Default)]
    pub struct Bars {
        pub lines: Collect,
        pub events: Arc<crate::report::tests::Record>,
    }
    impl Reporter for Bars {
        fn progress(&self, line: &str) {
            self.lines.progress(line)
        }
        fn warn(&self, line: &str) {
            self.lines.warn(line)
        }
        fn transfers(&self) -> Option<Arc<dyn TransferProgress>> {
            Some(self.events.clone())
        }
    }
    impl Bars {
        /// The lines and events so far, taken.
        pub fn take(&self) -> (Vec<String>, Vec<String>) {
            (
                std::mem::take(&mut *self.lines.0.lock().unwrap()),
                self.events.take(),
            )
        }
    }

    /// A reporter collecting lines.
    #[derive(Default)]
    pub struct Collect(pub std::sync::Mutex<Vec<String>>);
    impl Reporter for Collect {
        fn progress(&self, line: &str) {
            self.0.lock().unwrap().push(line.to_string());
        }
        fn warn(&self, line: &str) {
            self.0.lock().unwrap().push(format!("WARN {line}"));
        }
    }
}

#[cfg(test)]
mod external_tools {
    //! The outputs checked by the tools podman/umoci/oci-image-tool users have. A tool that
    //! is not installed skips its check.
    use super::testutil::*;
    use super::*;
    use std::process::Command;

    /// Whether `tool` is installed; when it is not, a SKIPPED line (a failure in CI).
    fn have(tool: &str) -> bool {
        Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .is_ok_and(|o| o.status.success())
            || crate::test_skip::skipped(
                "transport interop test",
                &format!("{tool} is not installed"),
            )
    }

    /// Whether hod runs as root; when not, a SKIPPED line (a failure in CI).
    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
            || crate::test_skip::skipped("transport interop test", "needs root")
    }

    fn run(cmd: &mut Command) {
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{cmd:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn rootfs_layers() -> Vec<Vec<u8>> {
        vec![
            layer_tar("etc/hostname", b"hod\n"),
            layer_tar("hello.txt", b"hello\n"),
        ]
    }

    #[test]
    fn oci_layout_passes_oci_image_tool_and_umoci() {
        let t = tempfile::tempdir().unwrap();
        let lay = t.path().join("lay");
        for c in [Compression::Gzip, Compression::None] {
            let mut src = image(&rootfs_layers(), c);
            copy_image(
                &mut src,
                Box::new(oci::OciLayoutDest::new(&lay, Some("v1")).unwrap()),
                &CopyImageOptions::default(),
                &crate::report::Quiet,
            )
            .unwrap();
            if have("oci-image-tool") {
                // (Debian's oci-image-tool implements only `--type image`; `imageLayout` is "unimplemented".)
                run(Command::new("oci-image-tool")
                    .args(["validate", "--type", "image", "--ref", "name=v1"])
                    .arg(&lay));
            }
            if have("umoci") {
                let bundle = t.path().join(format!("bundle-{c:?}"));
                run(Command::new("umoci")
                    .arg("unpack")
                    .arg("--image")
                    .arg(format!("{}:v1", lay.display()))
                    .arg(&bundle));
                assert_eq!(
                    std::fs::read(bundle.join("rootfs/hello.txt")).unwrap(),
                    b"hello\n"
                );
            }
        }
    }

    #[test]
    fn skopeo_reads_every_local_transport() {
        if !have("skopeo") {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let o = CopyImageOptions::default();
        let q = &crate::report::Quiet;
        let refs = [
            format!("oci:{}:v1", t.path().join("lay").display()),
            format!("oci-archive:{}:v1", t.path().join("lay.tar").display()),
            format!("dir:{}", t.path().join("dir").display()),
            format!("docker-archive:{}:app:1", t.path().join("d.tar").display()),
        ];
        for r in &refs {
            let mut src = image(&rootfs_layers(), Compression::Gzip);
            let parsed = ImageReference::parse(r).unwrap();
            let out = copy_image(
                &mut src,
                open_destination(&parsed, None, &RegistryContext::default()).unwrap(),
                &o,
                q,
            )
            .unwrap();
            let res = Command::new("skopeo")
                .args(["inspect", "--raw"])
                .arg(r)
                .output()
                .unwrap();
            assert!(
                res.status.success(),
                "{r}: {}",
                String::from_utf8_lossy(&res.stderr)
            );
            if !r.starts_with("docker-archive:") {
                assert_eq!(res.stdout, out.manifest, "{r}");
            }
            // skopeo copies it (verifying every blob) to a fresh layout
            let dest = format!(
                "oci:{}:x",
                t.path()
                    .join(format!("copy-{}", parsed.transport()))
                    .display()
            );
            run(Command::new("skopeo")
                .args(["copy", "--insecure-policy", "-q"])
                .arg(r)
                .arg(&dest));
        }
        // and what skopeo writes, we read
        let theirs = [
            format!(
                "docker-archive:{}:app:2",
                t.path().join("s-d.tar").display()
            ),
            format!("oci-archive:{}:v2", t.path().join("s-o.tar").display()),
            format!("dir:{}", t.path().join("s-dir").display()),
            format!("oci:{}:v2", t.path().join("s-lay").display()),
        ];
        let src_ref = &refs[0];
        let mut want = None;
        for r in &theirs {
            run(Command::new("skopeo")
                .args(["copy", "--insecure-policy", "-q"])
                .arg(src_ref)
                .arg(r));
            let parsed = ImageReference::parse(r).unwrap();
            let mut src = open_source(&parsed, None, &RegistryContext::default()).unwrap();
            let dest = t.path().join(format!("ours-{}", parsed.transport()));
            let out = copy_image(
                src.as_mut(),
                Box::new(oci::OciLayoutDest::new(&dest, None).unwrap()),
                &o,
                q,
            )
            .unwrap();
            // the config (image ID) survives every hop
            let w = want.get_or_insert(out.config_digest.clone());
            assert_eq!(&out.config_digest, w, "{r}");
        }
    }

    #[test]
    fn podman_and_skopeo_share_our_store() {
        if !have("podman") || !have("skopeo") || !is_root() {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let store = storage::tests::vfs_store(t.path());
        let root = store.options().root.clone();
        let runroot = store.options().run_root.clone();
        let q = &crate::report::Quiet;
        // ours → theirs
        let mut src = image(&rootfs_layers(), Compression::Gzip);
        let dst =
            Box::new(storage::StorageDest::new(&store, vec!["localhost/ours:1".into()]).unwrap());
        let out = copy_image(&mut src, dst, &CopyImageOptions::default(), q).unwrap();
        let podman = |args: &[&str]| {
            let mut c = Command::new("podman");
            c.arg("--root")
                .arg(&root)
                .arg("--runroot")
                .arg(&runroot)
                .args(["--storage-driver", "vfs"])
                .args(args);
            c
        };
        let o = podman(&[
            "images",
            "--format",
            "{{.ID}} {{.Repository}}:{{.Tag}}",
            "--no-trunc",
        ])
        .output()
        .unwrap();
        let s = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(
            s.contains(&format!("{} localhost/ours:1", out.config_digest)),
            "{s} {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let csref = format!(
            "containers-storage:[vfs@{}+{}]localhost/ours:1",
            root.display(),
            runroot.display()
        );
        let exported = t.path().join("exported");
        run(Command::new("skopeo")
            .args(["copy", "--insecure-policy", "-q"])
            .arg(&csref)
            .arg(format!("oci:{}:x", exported.display())));
        // theirs → ours
        let ar = t.path().join("theirs.tar");
        let mut src = image(&[layer_tar("theirs", b"podman\n")], Compression::Gzip);
        let tag = crate::reference::parse_named("localhost/theirs:2").unwrap();
        let theirs = copy_image(
            &mut src,
            Box::new(docker_archive::DockerArchiveDest::new(&ar, Some(tag)).unwrap()),
            &CopyImageOptions::default(),
            q,
        )
        .unwrap();
        run(&mut podman(&["load", "-q", "-i", ar.to_str().unwrap()]));
        let mut s = storage::StorageSource::open(&store, "localhost/theirs:2").unwrap();
        let lay = t.path().join("lay");
        let back = copy_image(
            &mut s,
            Box::new(oci::OciLayoutDest::new(&lay, Some("t")).unwrap()),
            &CopyImageOptions::default(),
            q,
        )
        .unwrap();
        assert_eq!(back.config_digest, theirs.config_digest);
        let _ = Command::new("umount").arg("-R").arg(&root).output();
    }

    #[test]
    fn docker_archive_loads_in_podman() {
        if !have("podman") || !is_root() {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let ar = t.path().join("img.tar");
        let mut src = image(&rootfs_layers(), Compression::Gzip);
        let tag = crate::reference::parse_named("localhost/hodtest:1").unwrap();
        let out = copy_image(
            &mut src,
            Box::new(docker_archive::DockerArchiveDest::new(&ar, Some(tag)).unwrap()),
            &CopyImageOptions::default(),
            &crate::report::Quiet,
        )
        .unwrap();
        let root = t.path().join("root");
        let runroot = t.path().join("runroot");
        let podman = |args: &[&str]| {
            let mut c = Command::new("podman");
            c.arg("--root")
                .arg(&root)
                .arg("--runroot")
                .arg(&runroot)
                .args(["--storage-driver", "vfs"])
                .args(args);
            c
        };
        run(&mut podman(&["load", "-i", ar.to_str().unwrap()]));
        let o = podman(&[
            "images",
            "--format",
            "{{.ID}} {{.Repository}}:{{.Tag}}",
            "--no-trunc",
        ])
        .output()
        .unwrap();
        let s = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(
            s.contains(&format!("{} localhost/hodtest:1", out.config_digest)),
            "{s}"
        );
        // podman can read the oci-archive we write too
        let oa = t.path().join("img-oci.tar");
        let mut src = image(&rootfs_layers(), Compression::Gzip);
        copy_image(
            &mut src,
            Box::new(oci::OciArchiveDest::new(&oa, Some("localhost/hodoci:2")).unwrap()),
            &CopyImageOptions::default(),
            &crate::report::Quiet,
        )
        .unwrap();
        run(&mut podman(&["load", "-i", oa.to_str().unwrap()]));
        let _ = Command::new("umount").arg("-R").arg(&root).output();
    }
}
