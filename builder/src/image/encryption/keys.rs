//! Reading the key files `--encryption-key jwe:FILE` and `--decryption-key FILE[:PASSWORD]`
//! name: PEM public keys (PKIX `PUBLIC KEY`, PKCS#1 `RSA PUBLIC KEY`) and private keys
//! (PKCS#8 `PRIVATE KEY`, PKCS#1 `RSA PRIVATE KEY`, SEC1 `EC PRIVATE KEY`) of RSA or EC
//! P-256/P-384, as ocicrypt's `utils.ParsePublicKey`/`ParsePrivateKey` read them; a
//! password-protected PKCS#8 key (`ENCRYPTED PRIVATE KEY`) with the password given.
use std::fmt;

use p256::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};

/// A recipient's public key.
#[derive(Clone)]
pub enum PublicKey {
    /// RSA: the layer key is wrapped with RSA-OAEP (ocicrypt's choice for RSA keys).
    Rsa(rsa::RsaPublicKey),
    /// EC P-256: ECDH-ES+A256KW.
    P256(p256::PublicKey),
    /// EC P-384: ECDH-ES+A256KW.
    P384(p384::PublicKey),
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PublicKey::Rsa(_) => "PublicKey::Rsa",
            PublicKey::P256(_) => "PublicKey::P256",
            PublicKey::P384(_) => "PublicKey::P384",
        })
    }
}

/// A private key that may unwrap a layer key.
#[derive(Clone)]
pub enum PrivateKey {
    /// RSA (RSA-OAEP, RSA-OAEP-256).
    Rsa(Box<rsa::RsaPrivateKey>),
    /// EC P-256 (ECDH-ES+A128KW/A192KW/A256KW).
    P256(p256::SecretKey),
    /// EC P-384.
    P384(p384::SecretKey),
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.write_str(match self {
            PrivateKey::Rsa(_) => "PrivateKey::Rsa(..)",
            PrivateKey::P256(_) => "PrivateKey::P256(..)",
            PrivateKey::P384(_) => "PrivateKey::P384(..)",
        })
    }
}

/// The first PEM block whose label names a key (skipping e.g. `EC PARAMETERS`, which
/// `openssl ecparam -genkey` writes first): its label and the block's text.
fn key_block(text: &str) -> Option<(&str, &str)> {
    let mut rest = text;
    let mut offset = 0;
    while let Some(at) = rest.find("-----BEGIN ") {
        let start = offset + at;
        let label_start = start + "-----BEGIN ".len();
        let label_len = text[label_start..].find("-----")?;
        let label = &text[label_start..label_start + label_len];
        let end_marker = format!("-----END {label}-----");
        let end = text[label_start..].find(&end_marker)? + label_start + end_marker.len();
        if label.ends_with("KEY") {
            return Some((label, &text[start..end]));
        }
        offset = end;
        rest = &text[end..];
    }
    None
}

/// Parse a PEM public key. `Err` says why in words.
pub fn parse_public_key(data: &[u8]) -> Result<PublicKey, String> {
    let text = std::str::from_utf8(data).map_err(|_| "not a PEM file".to_string())?;
    if text.contains("-----BEGIN CERTIFICATE-----") {
        return Err(
            "x509 certificates are for the pkcs7 protocol, which hod does not support".into(),
        );
    }
    let Some((label, text)) = key_block(text) else {
        return Err("file provided is not a public key (a PEM \"PUBLIC KEY\")".into());
    };
    match Some(label) {
        Some("PUBLIC KEY") => {
            if let Ok(k) = rsa::RsaPublicKey::from_public_key_pem(text) {
                return Ok(PublicKey::Rsa(k));
            }
            if let Ok(k) = p256::PublicKey::from_public_key_pem(text) {
                return Ok(PublicKey::P256(k));
            }
            if let Ok(k) = p384::PublicKey::from_public_key_pem(text) {
                return Ok(PublicKey::P384(k));
            }
            Err("not an RSA, EC P-256 or EC P-384 public key".into())
        }
        Some("RSA PUBLIC KEY") => rsa::RsaPublicKey::from_pkcs1_pem(text)
            .map(PublicKey::Rsa)
            .map_err(|e| format!("parsing PKCS#1 RSA public key: {e}")),
        Some(other) if other.contains("PRIVATE KEY") => {
            Err("file provided is a private key, not a public key".into())
        }
        _ => Err("file provided is not a public key (a PEM \"PUBLIC KEY\")".into()),
    }
}

/// Parse a PEM private key; `password` decrypts an encrypted PKCS#8 one.
pub fn parse_private_key(data: &[u8], password: Option<&[u8]>) -> Result<PrivateKey, String> {
    let text = std::str::from_utf8(data).map_err(|_| "not a PEM file".to_string())?;
    let Some((label, text)) = key_block(text) else {
        return Err("file provided is not a private key (a PEM \"PRIVATE KEY\")".into());
    };
    if label == "ENCRYPTED PRIVATE KEY" {
        // PKCS#8 with PBES2 (what `openssl genpkey -aes256` and OpenSSL 3's `genrsa -aes256`
        // write), as Go's x509 reads it for ocicrypt.
        let Some(password) = password else {
            return Err("missing password for encrypted private key".into());
        };
        let doc = pkcs8::EncryptedPrivateKeyInfo::try_from(
            pkcs8::Document::from_pem(text)
                .map_err(|e| format!("parsing encrypted private key: {e}"))?
                .1
                .as_bytes(),
        )
        .map_err(|e| format!("parsing encrypted private key: {e}"))?
        .decrypt(password)
        .map_err(|_| "wrong password: could not decrypt private key".to_string())?;
        let der = doc.as_bytes();
        if let Ok(k) = rsa::RsaPrivateKey::from_pkcs8_der(der) {
            return Ok(PrivateKey::Rsa(Box::new(k)));
        }
        if let Ok(k) = p256::SecretKey::from_pkcs8_der(der) {
            return Ok(PrivateKey::P256(k));
        }
        if let Ok(k) = p384::SecretKey::from_pkcs8_der(der) {
            return Ok(PrivateKey::P384(k));
        }
        return Err("not an RSA, EC P-256 or EC P-384 private key".into());
    }
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(
            "legacy OpenSSL-encrypted PEM keys are not supported by hod; convert the key to \
             encrypted PKCS#8 (openssl pkcs8 -topk8 -v2 aes-256-cbc) or decrypt it first"
                .into(),
        );
    }
    match Some(label) {
        Some("PRIVATE KEY") => {
            if let Ok(k) = rsa::RsaPrivateKey::from_pkcs8_pem(text) {
                return Ok(PrivateKey::Rsa(Box::new(k)));
            }
            if let Ok(k) = p256::SecretKey::from_pkcs8_pem(text) {
                return Ok(PrivateKey::P256(k));
            }
            if let Ok(k) = p384::SecretKey::from_pkcs8_pem(text) {
                return Ok(PrivateKey::P384(k));
            }
            Err("not an RSA, EC P-256 or EC P-384 private key".into())
        }
        Some("RSA PRIVATE KEY") => rsa::RsaPrivateKey::from_pkcs1_pem(text)
            .map(|k| PrivateKey::Rsa(Box::new(k)))
            .map_err(|e| format!("parsing PKCS#1 RSA private key: {e}")),
        Some("EC PRIVATE KEY") => {
            if let Ok(k) = p256::SecretKey::from_sec1_pem(text) {
                return Ok(PrivateKey::P256(k));
            }
            p384::SecretKey::from_sec1_pem(text)
                .map(PrivateKey::P384)
                .map_err(|_| "not an EC P-256 or P-384 private key".into())
        }
        _ => Err("file provided is not a private key (a PEM \"PRIVATE KEY\")".into()),
    }
}
