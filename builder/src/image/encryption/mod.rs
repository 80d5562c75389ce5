//! Layer encryption compatible with containers/ocicrypt (what buildah's `--encryption-key`,
//! `--encrypt-layer` and `--decryption-key` use), inside the one `transport::copy_image`
//! pipeline.
//!
//! ```text
//!  push/commit (--encryption-key jwe:PUB, --encrypt-layer N):
//!   source blob ─▶ sha256 check ─▶ [decompress ─▶ diff_id ─▶ compress] ─▶ AES-256-CTR ─▶ HMAC ─▶ sha256 ─▶ staged file
//!                                                                          │ (EncryptWriter)
//!        key+nonce+digest (private options) ─▶ JWE per layer (RSA-OAEP / ECDH-ES+A256KW, A256GCM)
//!        annotations: org.opencontainers.image.enc.keys.jwe = base64(JWE JSON)[,…]
//!                     org.opencontainers.image.enc.pubopts  = base64({"cipher","hmac","cipheroptions"})
//!        media type:  …tar+gzip ─▶ …tar+gzip+encrypted (the manifest is forced to OCI)
//!
//!  pull/from/bud (--decryption-key PRIV[:PASSWORD]):
//!   (every encrypted layer's JWE is unwrapped first: a wrong key fails before anything is copied)
//!   source blob ─▶ sha256 check ─▶ AES-256-CTR ─▶ decompress ─▶ diff_id check ─▶ compress ─▶ staged file
//!                                  (DecryptWriter: HMAC over the ciphertext, checked at the end,
//!                                   before the blob is stored)
//! ```
//!
//! An encrypted layer without a key is copied as it is to destinations that only hold
//! blobs (`oci:`, `dir:`, `docker://`), and refused by the local store, which must unpack it.
//! The format is ocicrypt's: `blockcipher.rs` (the layer cipher and its options JSON),
//! `jwe.rs` (the key wrapper), `keys.rs` (PEM key files). Only the `jwe` protocol is
//! implemented; `pgp`, `pkcs7`, `pkcs11` and `provider:` are refused by name.
pub mod blockcipher;
pub mod jwe;
pub mod keys;

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

pub use blockcipher::{DecryptWriter, EncryptWriter, LayerKey, PrivateOptions, PublicOptions};
pub use keys::{PrivateKey, PublicKey};

use crate::image::manifest::Descriptor;
use crate::image::{Digest, Sha256Writer};

/// The annotation holding the jwe-wrapped private options.
pub const ANNOTATION_KEYS_JWE: &str = "org.opencontainers.image.enc.keys.jwe";
/// The annotation holding the public options.
pub const ANNOTATION_PUBOPTS: &str = "org.opencontainers.image.enc.pubopts";
/// Every encryption annotation starts with this (removed on decryption).
pub const ANNOTATION_PREFIX: &str = "org.opencontainers.image.enc";
/// Key-wrapper annotations of the protocols hod cannot unwrap, with their names.
const OTHER_SCHEMES: &[(&str, &str)] = &[
    ("org.opencontainers.image.enc.keys.pgp", "pgp"),
    ("org.opencontainers.image.enc.keys.pkcs7", "pkcs7"),
    ("org.opencontainers.image.enc.keys.pkcs11", "pkcs11"),
];
/// The suffix of encrypted layer media types.
pub const ENCRYPTED_SUFFIX: &str = "+encrypted";

/// Encryption errors.
#[derive(Debug, thiserror::Error)]
pub enum EncryptionError {
    /// `--encryption-key` without `PROTOCOL:`.
    #[error("invalid recipient format {0:?}: expected PROTOCOL:KEYFILE (e.g. jwe:key.pub)")]
    InvalidRecipient(String),
    /// A protocol ocicrypt knows but hod does not implement.
    #[error("encryption protocol {0:?} is not supported by hod: only \"jwe\" is")]
    UnsupportedProtocol(String),
    /// A protocol nobody knows.
    #[error("provided protocol not recognized: {0:?} (hod supports \"jwe\")")]
    UnknownProtocol(String),
    /// A key file that cannot be read or used.
    #[error("reading {what} {}: {reason}", path.display())]
    Key {
        /// "encryption key" or "decryption key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// `--encrypt-layer` out of range.
    #[error(
        "when choosing layers to encrypt, layer index {index} out of range ({total} layers exist)"
    )]
    LayerIndex {
        /// The index given.
        index: i64,
        /// The image's layer count.
        total: usize,
    },
    /// A layer could not be encrypted.
    #[error("encrypting blob {digest}: {reason}")]
    Encrypt {
        /// The source layer.
        digest: Digest,
        /// Why.
        reason: String,
    },
    /// A layer could not be decrypted (no fitting key, bad options, HMAC mismatch).
    #[error("decrypting layer {digest}: {reason}")]
    Decrypt {
        /// The source layer.
        digest: Digest,
        /// Why, in ocicrypt's words.
        reason: String,
    },
    /// An encrypted layer reached a destination that must unpack it, without a key.
    #[error("layer {blob} is encrypted and no decryption key was given (--decryption-key): its content does not match config's DiffID {diff_id}")]
    MissingKey {
        /// The layer.
        blob: Digest,
        /// Its diff_id.
        diff_id: Digest,
    },
    /// Encryption needs the OCI manifest format.
    #[error("encryption required but the destination only supports MIME types [{0}], none of which support encryption")]
    NeedsOci(String),
    /// Encryption asked for a destination that unpacks layers (the local store).
    #[error("encrypted layers cannot be stored in local storage, which unpacks them: commit or push to oci:, oci-archive:, dir: or docker:// to encrypt")]
    LocalStore,
    /// `--format docker` with encryption.
    #[error("encryption required together with format docker, which does not support encryption")]
    DockerFormat,
}

/// Whether a layer media type is encrypted (`…+encrypted`).
pub fn is_encrypted(media_type: &str) -> bool {
    media_type.ends_with(ENCRYPTED_SUFFIX)
}

/// The plain media type of an encrypted one (itself when not encrypted).
pub fn plain_media_type(media_type: &str) -> &str {
    media_type
        .strip_suffix(ENCRYPTED_SUFFIX)
        .unwrap_or(media_type)
}

/// Which layers `--encrypt-layer` selects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LayerSelection {
    /// No `--encrypt-layer`: every layer.
    #[default]
    All,
    /// These indexes; negative ones count from the top (`-1` = the last layer).
    Indexes(Vec<i64>),
}

impl LayerSelection {
    /// From the `--encrypt-layer` values (none = all).
    pub fn from_flags(indexes: &[i64]) -> LayerSelection {
        if indexes.is_empty() {
            LayerSelection::All
        } else {
            LayerSelection::Indexes(indexes.to_vec())
        }
    }

    /// For an image of `total` layers, whether each is to be encrypted (containers/image's
    /// rule: an index out of range is an error).
    pub fn resolve(&self, total: usize) -> Result<Vec<bool>, EncryptionError> {
        let mut out = vec![matches!(self, LayerSelection::All); total];
        if let LayerSelection::Indexes(list) = self {
            for &i in list {
                let at = if i < 0 { i + total as i64 } else { i };
                if at < 0 || at >= total as i64 {
                    return Err(EncryptionError::LayerIndex { index: i, total });
                }
                out[at as usize] = true;
            }
        }
        Ok(out)
    }
}

/// `--encryption-key` and `--encrypt-layer`: the recipients and the layers.
#[derive(Debug, Clone)]
pub struct EncryptionConfig {
    /// The jwe recipients.
    pub recipients: Vec<PublicKey>,
    /// The layers to encrypt.
    pub layers: LayerSelection,
}

impl EncryptionConfig {
    /// Read `--encryption-key PROTOCOL:FILE` values; `None` when there are none
    /// (`--encrypt-layer` alone does nothing, as in buildah).
    pub fn from_flags(
        keys: &[String],
        layers: &[i64],
    ) -> Result<Option<EncryptionConfig>, EncryptionError> {
        if keys.is_empty() {
            return Ok(None);
        }
        let mut recipients = Vec::new();
        for k in keys {
            let (proto, file) = k
                .split_once(':')
                .ok_or_else(|| EncryptionError::InvalidRecipient(k.clone()))?;
            match proto {
                "jwe" => {}
                "pgp" | "pkcs7" | "pkcs11" | "provider" => {
                    return Err(EncryptionError::UnsupportedProtocol(proto.to_string()))
                }
                _ => return Err(EncryptionError::UnknownProtocol(proto.to_string())),
            }
            let key_err = |reason: String| EncryptionError::Key {
                what: "encryption key",
                path: PathBuf::from(file),
                reason,
            };
            let data = std::fs::read(file).map_err(|e| key_err(e.to_string()))?;
            recipients.push(keys::parse_public_key(&data).map_err(key_err)?);
        }
        Ok(Some(EncryptionConfig {
            recipients,
            layers: LayerSelection::from_flags(layers),
        }))
    }

    /// The annotations of a layer encrypted with `key` (whose ciphertext HMAC is in
    /// `public`); `plain` is the digest of the blob before encryption.
    pub fn annotations(
        &self,
        key: &LayerKey,
        public: &PublicOptions,
        plain: &Digest,
    ) -> Result<BTreeMap<String, String>, EncryptionError> {
        let err = |reason: String| EncryptionError::Encrypt {
            digest: plain.clone(),
            reason,
        };
        let private = serde_json::to_vec(&key.private_options(&plain.to_string()))
            .map_err(|e| err(e.to_string()))?;
        let jwe = jwe::wrap(&self.recipients, &private).map_err(err)?;
        let public = serde_json::to_vec(public).map_err(|e| err(e.to_string()))?;
        Ok(BTreeMap::from([
            (ANNOTATION_KEYS_JWE.to_string(), B64.encode(jwe)),
            (ANNOTATION_PUBOPTS.to_string(), B64.encode(public)),
        ]))
    }
}

/// `--decryption-key FILE[:PASSWORD]`: the private keys to try.
#[derive(Debug, Clone, Default)]
pub struct DecryptionConfig {
    /// The keys, in the order given.
    pub keys: Vec<PrivateKey>,
}

impl DecryptionConfig {
    /// Read `--decryption-key` values; `None` when there are none.
    pub fn from_flags(specs: &[String]) -> Result<Option<DecryptionConfig>, EncryptionError> {
        if specs.is_empty() {
            return Ok(None);
        }
        let mut keys = Vec::new();
        for s in specs {
            // ocicrypt: FILE[:PASSWORD], PASSWORD = pass=…, file=…, fd=… or the literal.
            let (file, password) = match s.split_once(':') {
                Some((f, p)) => (f, Some(p)),
                None => (s.as_str(), None),
            };
            let key_err = |reason: String| EncryptionError::Key {
                what: "decryption key",
                path: PathBuf::from(file),
                reason,
            };
            let password = match password {
                None => None,
                Some(p) => Some(if let Some(f) = p.strip_prefix("file=") {
                    std::fs::read(f)
                        .map_err(|e| key_err(format!("reading password file {f}: {e}")))?
                } else if let Some(fd) = p.strip_prefix("fd=") {
                    // ocicrypt reads one read(2) of at most 64 bytes from the descriptor.
                    let n: u32 = fd
                        .parse()
                        .map_err(|_| key_err(format!("could not parse file descriptor {fd}")))?;
                    let mut buf = vec![0u8; 64];
                    let got = std::fs::File::open(format!("/proc/self/fd/{n}"))
                        .and_then(|mut f| std::io::Read::read(&mut f, &mut buf))
                        .map_err(|e| {
                            key_err(format!("could not read from file descriptor {n}: {e}"))
                        })?;
                    buf.truncate(got);
                    buf
                } else {
                    p.strip_prefix("pass=").unwrap_or(p).as_bytes().to_vec()
                }),
            };
            let data = std::fs::read(file).map_err(|e| key_err(e.to_string()))?;
            keys.push(keys::parse_private_key(&data, password.as_deref()).map_err(key_err)?);
        }
        Ok(Some(DecryptionConfig { keys }))
    }

    /// Unwrap the key of the encrypted layer `desc` (from its annotations), with
    /// ocicrypt's error wording (`decryptLayerKeyOptsData`).
    pub fn layer_key(
        &self,
        desc: &Descriptor,
    ) -> Result<(LayerKey, PublicOptions), EncryptionError> {
        let err = |reason: String| EncryptionError::Decrypt {
            digest: desc.digest.clone(),
            reason,
        };
        let empty = BTreeMap::new();
        let ann = desc.annotations.as_ref().unwrap_or(&empty);
        let Some(wrapped) = ann.get(ANNOTATION_KEYS_JWE).filter(|s| !s.is_empty()) else {
            if let Some((_, scheme)) = OTHER_SCHEMES.iter().find(|(a, _)| ann.contains_key(*a)) {
                return Err(err(format!(
                    "the layer's key is wrapped with the {scheme} protocol, which hod does not support (only jwe)"
                )));
            }
            return Err(err("missing private key needed for decryption".into()));
        };
        let mut errs = String::new();
        let mut private = None;
        for one in wrapped.split(',') {
            let jwe = B64
                .decode(one)
                .map_err(|_| err("could not base64 decode the annotation".into()))?;
            match jwe::unwrap(&jwe, &self.keys) {
                Ok(p) => {
                    private = Some(p);
                    break;
                }
                Err(e) => errs.push_str(&format!("- {e}\n")),
            }
        }
        let Some(private) = private else {
            return Err(err(format!(
                "no suitable key unwrapper found or none of the private keys could be used for decryption:\nno suitable key found for decrypting layer key:\n{}",
                errs.trim_end()
            )));
        };
        let private: PrivateOptions = serde_json::from_slice(&private)
            .map_err(|e| err(format!("could not JSON unmarshal privOptsData: {e}")))?;
        let public: PublicOptions = match ann.get(ANNOTATION_PUBOPTS).filter(|s| !s.is_empty()) {
            None => PublicOptions::default(),
            Some(p) => {
                let raw = B64
                    .decode(p)
                    .map_err(|_| err("could not base64 decode the public options".into()))?;
                serde_json::from_slice(&raw)
                    .map_err(|e| err(format!("could not JSON unmarshal pubOptsData: {e}")))?
            }
        };
        match public.cipher.as_str() {
            "" => return Err(err("no cipher type provided".into())),
            blockcipher::AES256CTR => {}
            other => return Err(err(format!("unsupported cipher type: {other}"))),
        }
        let key = LayerKey::from_options(&private, &public).map_err(err)?;
        Ok((key, public))
    }
}

/// The encryption step of the copy pipeline's writer chain: pass-through, or encrypt and
/// digest the ciphertext.
pub enum EncryptStage<W: Write> {
    /// Not encrypting.
    Plain(W),
    /// Encrypting; the ciphertext is digested on its way to `W`.
    Encrypt(Box<EncryptWriter<Sha256Writer<W>>>),
}

/// What [`EncryptStage::finish`] learnt about the ciphertext.
#[derive(Debug, Clone)]
pub struct Encrypted {
    /// The encrypted blob's digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// The public options (HMAC).
    pub public: PublicOptions,
}

impl<W: Write> EncryptStage<W> {
    /// Encrypt into `w` with `key`, or pass through when `key` is `None`.
    pub fn new(w: W, key: Option<&LayerKey>) -> Self {
        match key {
            None => EncryptStage::Plain(w),
            Some(k) => EncryptStage::Encrypt(Box::new(EncryptWriter::new(Sha256Writer::new(w), k))),
        }
    }

    /// The inner writer, and the ciphertext's digest, size and HMAC when encrypting.
    pub fn finish(self) -> io::Result<(W, Option<Encrypted>)> {
        match self {
            EncryptStage::Plain(w) => Ok((w, None)),
            EncryptStage::Encrypt(e) => {
                let (w, public) = (*e).finish()?;
                let (digest, size, w) = w.finish();
                Ok((
                    w,
                    Some(Encrypted {
                        digest,
                        size,
                        public,
                    }),
                ))
            }
        }
    }
}

impl<W: Write> Write for EncryptStage<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            EncryptStage::Plain(w) => w.write(buf),
            EncryptStage::Encrypt(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            EncryptStage::Plain(w) => w.flush(),
            EncryptStage::Encrypt(w) => w.flush(),
        }
    }
}

/// The decryption step of the copy pipeline's writer chain: pass-through or decrypt.
pub enum DecryptStage<W: Write> {
    /// Not decrypting.
    Plain(W),
    /// Decrypting (HMAC checked by [`DecryptStage::finish`]).
    Decrypt(Box<DecryptWriter<W>>),
}

impl<W: Write> DecryptStage<W> {
    /// Decrypt into `w` with an unwrapped layer key, or pass through.
    pub fn new(w: W, key: Option<&(LayerKey, PublicOptions)>) -> Result<Self, String> {
        Ok(match key {
            None => DecryptStage::Plain(w),
            Some((k, public)) => DecryptStage::Decrypt(Box::new(DecryptWriter::new(w, k, public)?)),
        })
    }

    /// The inner writer, once the HMAC matched.
    pub fn finish(self) -> io::Result<W> {
        match self {
            DecryptStage::Plain(w) => Ok(w),
            DecryptStage::Decrypt(d) => (*d).finish(),
        }
    }
}

impl<W: Write> Write for DecryptStage<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            DecryptStage::Plain(w) => w.write(buf),
            DecryptStage::Decrypt(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            DecryptStage::Plain(w) => w.flush(),
            DecryptStage::Decrypt(w) => w.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_protected_pkcs8_keys() {
        if std::process::Command::new("openssl")
            .arg("version")
            .output()
            .is_err()
        {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let key = t.path().join("k.pem");
        let st = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -aes-256-cbc -pass pass:s3cret -out {} 2>/dev/null",
                key.display()
            ))
            .status()
            .unwrap();
        assert!(st.success());
        let k = key.display().to_string();
        let pw = t.path().join("pw");
        std::fs::write(&pw, "s3cret").unwrap();
        for spec in [
            format!("{k}:s3cret"),
            format!("{k}:pass=s3cret"),
            format!("{k}:file={}", pw.display()),
        ] {
            let c = DecryptionConfig::from_flags(std::slice::from_ref(&spec))
                .unwrap()
                .unwrap();
            assert!(matches!(c.keys[0], PrivateKey::Rsa(_)), "{spec}");
        }
        let e = DecryptionConfig::from_flags(std::slice::from_ref(&k)).unwrap_err();
        assert!(e.to_string().contains("missing password"), "{e}");
        let e = DecryptionConfig::from_flags(&[format!("{k}:wrong")]).unwrap_err();
        assert!(e.to_string().contains("wrong password"), "{e}");
    }

    #[test]
    fn layer_selection_as_containers_image() {
        assert_eq!(LayerSelection::All.resolve(3).unwrap(), [true; 3]);
        let s = LayerSelection::from_flags(&[0, -1]);
        assert_eq!(s.resolve(3).unwrap(), [true, false, true]);
        let e = LayerSelection::from_flags(&[3]).resolve(3).unwrap_err();
        assert_eq!(
            e.to_string(),
            "when choosing layers to encrypt, layer index 3 out of range (3 layers exist)"
        );
        assert!(LayerSelection::from_flags(&[-4]).resolve(3).is_err());
    }

    #[test]
    fn protocols_other_than_jwe_are_refused_by_name() {
        for p in ["pgp", "pkcs7", "pkcs11"] {
            let e = EncryptionConfig::from_flags(&[format!("{p}:x")], &[]).unwrap_err();
            assert!(
                e.to_string().contains(&format!("{p:?} is not supported")),
                "{e}"
            );
        }
        let e = EncryptionConfig::from_flags(&["nope:x".into()], &[]).unwrap_err();
        assert!(e.to_string().contains("not recognized"), "{e}");
        assert!(EncryptionConfig::from_flags(&["key.pub".into()], &[]).is_err());
        assert!(EncryptionConfig::from_flags(&[], &[1]).unwrap().is_none());
    }

    #[test]
    fn layer_key_round_trip_through_annotations() {
        let sk = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).unwrap();
        let enc = EncryptionConfig {
            recipients: vec![PublicKey::Rsa(sk.to_public_key())],
            layers: LayerSelection::All,
        };
        let key = LayerKey::generate();
        let mut w = EncryptStage::new(Vec::new(), Some(&key));
        w.write_all(b"layer bytes").unwrap();
        let (ct, info) = w.finish().unwrap();
        let info = info.unwrap();
        assert_eq!(info.digest, Digest::of(&ct));
        let plain = Digest::of(b"layer bytes");
        let ann = enc.annotations(&key, &info.public, &plain).unwrap();
        // pubopts is base64 JSON with the cipher and hmac, as ocicrypt writes it
        let pubopts: serde_json::Value =
            serde_json::from_slice(&B64.decode(&ann[ANNOTATION_PUBOPTS]).unwrap()).unwrap();
        assert_eq!(pubopts["cipher"], "AES_256_CTR_HMAC_SHA256");
        assert!(pubopts["hmac"].is_string());
        let mut desc = Descriptor::new(
            "application/vnd.oci.image.layer.v1.tar+gzip+encrypted",
            info.digest,
            ct.len() as i64,
        );
        desc.annotations = Some(ann);
        let dec = DecryptionConfig {
            keys: vec![PrivateKey::Rsa(Box::new(sk))],
        };
        let k = dec.layer_key(&desc).unwrap();
        let mut d = DecryptStage::new(Vec::new(), Some(&k)).unwrap();
        d.write_all(&ct).unwrap();
        assert_eq!(d.finish().unwrap(), b"layer bytes");
        // the wrong key: ocicrypt's words, which buildah's tests match
        let other = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).unwrap();
        let e = DecryptionConfig {
            keys: vec![PrivateKey::Rsa(Box::new(other))],
        }
        .layer_key(&desc)
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("no suitable key unwrapper found or none of the private keys could be used for decryption"), "{e}");
        assert!(
            e.contains("- JWE: No suitable private key found for decryption"),
            "{e}"
        );
    }
}
