//! The layer cipher, ocicrypt's `blockcipher` package: AES-256-CTR (a random 32-byte key and
//! a random 16-byte initial counter block, the "nonce"), then HMAC-SHA256 keyed with the same
//! key over the ciphertext. The key and nonce travel in the private options (wrapped per
//! recipient, see `jwe.rs`); the HMAC in the public options annotation.
//!
//! Both directions are `Write` adapters so that they sit inside the copy pipeline's writer
//! chain without a second pass: [`EncryptWriter`] between the compressor and the blob
//! digest, [`DecryptWriter`] between the source digest check and the decompressor. A
//! decrypted stream is only trusted once [`DecryptWriter::finish`] has compared the HMAC.
use std::collections::BTreeMap;
use std::io::{self, Write};

use aes::cipher::{KeyIvInit, StreamCipher};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The cipher name in the public options (`blockcipher.AES256CTR`).
pub const AES256CTR: &str = "AES_256_CTR_HMAC_SHA256";

type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;
type HmacSha256 = Hmac<Sha256>;

/// `PrivateLayerBlockCipherOptions` as ocicrypt marshals it (Go field order; `[]byte` as
/// standard base64). This is what each recipient's JWE protects.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct PrivateOptions {
    /// The symmetric key, base64.
    #[serde(rename = "symkey", default)]
    pub symkey: String,
    /// The digest of the data before encryption (informational: not trusted on decryption,
    /// as containers/image does not trust it either).
    #[serde(default)]
    pub digest: String,
    /// `{"nonce": base64}`.
    #[serde(rename = "cipheroptions", default)]
    pub cipher_options: Option<BTreeMap<String, String>>,
}

/// `PublicLayerBlockCipherOptions` (the `org.opencontainers.image.enc.pubopts` annotation).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct PublicOptions {
    /// The cipher type.
    #[serde(default)]
    pub cipher: String,
    /// The HMAC of the ciphertext, base64.
    #[serde(default)]
    pub hmac: String,
    /// Public cipher options (ocicrypt writes `{}`).
    #[serde(rename = "cipheroptions", default)]
    pub cipher_options: Option<BTreeMap<String, String>>,
}

/// The key and counter block of one layer.
#[derive(Clone)]
pub struct LayerKey {
    key: [u8; 32],
    nonce: [u8; 16],
}

impl LayerKey {
    /// A fresh random key and nonce (OS randomness).
    pub fn generate() -> LayerKey {
        let mut key = [0u8; 32];
        let mut nonce = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut key);
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        LayerKey { key, nonce }
    }

    /// The key and nonce from decrypted private options (the nonce may also be public).
    pub fn from_options(
        private: &PrivateOptions,
        public: &PublicOptions,
    ) -> Result<LayerKey, String> {
        let key = B64
            .decode(&private.symkey)
            .map_err(|_| "could not base64 decode the symmetric key".to_string())?;
        let key: [u8; 32] = key
            .as_slice()
            .try_into()
            .map_err(|_| format!("invalid key length of {} bytes; need 32 bytes", key.len()))?;
        let nonce = public
            .cipher_options
            .as_ref()
            .and_then(|o| o.get("nonce"))
            .or_else(|| private.cipher_options.as_ref().and_then(|o| o.get("nonce")))
            .ok_or_else(|| "no nonce in the layer's cipher options".to_string())?;
        let nonce = B64
            .decode(nonce)
            .map_err(|_| "could not base64 decode the nonce".to_string())?;
        let nonce: [u8; 16] = nonce
            .as_slice()
            .try_into()
            .map_err(|_| format!("invalid nonce length of {} bytes; need 16", nonce.len()))?;
        Ok(LayerKey { key, nonce })
    }

    /// The private options for this key, recording `digest` (the plain blob's).
    pub fn private_options(&self, digest: &str) -> PrivateOptions {
        PrivateOptions {
            symkey: B64.encode(self.key),
            digest: digest.to_string(),
            cipher_options: Some(BTreeMap::from([(
                "nonce".to_string(),
                B64.encode(self.nonce),
            )])),
        }
    }

    fn cipher(&self) -> Aes256Ctr {
        Aes256Ctr::new(&self.key.into(), &self.nonce.into())
    }

    fn mac(&self) -> HmacSha256 {
        <HmacSha256 as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length")
    }
}

const CHUNK: usize = 64 * 1024;

/// Encrypts what is written into `W` and MACs the ciphertext.
pub struct EncryptWriter<W: Write> {
    inner: W,
    cipher: Aes256Ctr,
    mac: HmacSha256,
    buf: Vec<u8>,
}

impl<W: Write> EncryptWriter<W> {
    /// Encrypt into `inner` with `key`.
    pub fn new(inner: W, key: &LayerKey) -> Self {
        EncryptWriter {
            inner,
            cipher: key.cipher(),
            mac: key.mac(),
            buf: Vec::with_capacity(CHUNK),
        }
    }

    /// The inner writer and the public options (with the ciphertext's HMAC).
    pub fn finish(mut self) -> io::Result<(W, PublicOptions)> {
        self.inner.flush()?;
        let hmac = self.mac.finalize().into_bytes();
        Ok((
            self.inner,
            PublicOptions {
                cipher: AES256CTR.to_string(),
                hmac: B64.encode(hmac),
                cipher_options: Some(BTreeMap::new()),
            },
        ))
    }
}

impl<W: Write> Write for EncryptWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK);
        self.buf.clear();
        self.buf.extend_from_slice(&data[..n]);
        self.cipher.apply_keystream(&mut self.buf);
        self.mac.update(&self.buf);
        self.inner.write_all(&self.buf)?;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Decrypts what is written into `W`, MACing the ciphertext; [`DecryptWriter::finish`]
/// fails when the HMAC differs from the expected one.
pub struct DecryptWriter<W: Write> {
    inner: W,
    cipher: Aes256Ctr,
    mac: HmacSha256,
    expected: Vec<u8>,
    buf: Vec<u8>,
}

impl<W: Write> DecryptWriter<W> {
    /// Decrypt into `inner`; `public` carries the expected HMAC.
    pub fn new(inner: W, key: &LayerKey, public: &PublicOptions) -> Result<Self, String> {
        if public.hmac.is_empty() {
            return Err("HMAC is not provided for decryption process".into());
        }
        let expected = B64
            .decode(&public.hmac)
            .map_err(|_| "could not base64 decode the HMAC".to_string())?;
        Ok(DecryptWriter {
            inner,
            cipher: key.cipher(),
            mac: key.mac(),
            expected,
            buf: Vec::with_capacity(CHUNK),
        })
    }

    /// Check the HMAC; the inner writer only if it matches.
    pub fn finish(mut self) -> io::Result<W> {
        self.inner.flush()?;
        let want = self.expected.clone();
        self.mac.verify_slice(&want).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "could not properly decrypt byte stream: the HMAC of the encrypted layer does not match",
            )
        })?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for DecryptWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK);
        self.mac.update(&data[..n]);
        self.buf.clear();
        self.buf.extend_from_slice(&data[..n]);
        self.cipher.apply_keystream(&mut self.buf);
        self.inner.write_all(&self.buf)?;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let key = LayerKey::generate();
        let plain: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut e = EncryptWriter::new(Vec::new(), &key);
        e.write_all(&plain).unwrap();
        let (ct, public) = e.finish().unwrap();
        assert_ne!(ct, plain);
        assert_eq!(public.cipher, AES256CTR);
        let private = key.private_options("sha256:x");
        let k2 = LayerKey::from_options(&private, &public).unwrap();
        let mut d = DecryptWriter::new(Vec::new(), &k2, &public).unwrap();
        for c in ct.chunks(777) {
            d.write_all(c).unwrap();
        }
        assert_eq!(d.finish().unwrap(), plain);
        // one flipped bit: the HMAC check refuses the stream
        let mut bad = ct.clone();
        bad[1000] ^= 1;
        let mut d = DecryptWriter::new(Vec::new(), &k2, &public).unwrap();
        d.write_all(&bad).unwrap();
        assert!(d.finish().is_err());
    }

    #[test]
    fn ctr_matches_go_full_block_counter() {
        // Go's cipher.NewCTR increments the whole 16-byte block big-endian: a nonce ending
        // in ff…ff carries into the upper bytes. Ctr128BE does the same; check the second
        // block's keystream equals AES(nonce + 1).
        use aes::cipher::{BlockEncrypt, KeyInit};
        let key = LayerKey {
            key: [7u8; 32],
            nonce: [0xff; 16],
        };
        let mut ks = vec![0u8; 32];
        key.cipher().apply_keystream(&mut ks);
        let aes = aes::Aes256::new(&key.key.into());
        let mut block = aes::Block::from([0u8; 16]); // ff..ff + 1 wraps to 0
        aes.encrypt_block(&mut block);
        assert_eq!(&ks[16..], block.as_slice());
    }
}
