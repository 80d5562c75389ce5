//! The `jwe` key wrapper (ocicrypt's `keywrap/jwe`, which uses go-jose): the layer's
//! private options JSON is the plaintext of one JWE (RFC 7516) per layer with every jwe
//! recipient, content-encrypted with A256GCM under a random CEK; the CEK is wrapped per
//! recipient with RSA-OAEP (RSA keys, go-jose's `RSA_OAEP`, SHA-1) or ECDH-ES+A256KW (EC
//! keys; Concat KDF over the ephemeral-static shared secret, then AES key wrap).
//!
//! Serialisation is go-jose's `FullSerialize`: the flattened JSON form for one recipient
//! (whose `alg`/`epk` move into the protected header), the general form with `recipients`
//! for several. Reading accepts both, and the compact form; `RSA-OAEP`, `RSA-OAEP-256`,
//! `ECDH-ES+A128KW/A192KW/A256KW` and `A128GCM/A192GCM/A256GCM`, as ocicrypt's `UnwrapKey`
//! (the CBC-HMAC content encryptions, which nothing writes for image layers, are refused).
use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::AesGcm;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use rand::RngCore;
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};

use super::keys::{PrivateKey, PublicKey};

const RSA_OAEP: &str = "RSA-OAEP";
const RSA_OAEP_256: &str = "RSA-OAEP-256";
const ECDH_ES_A256KW: &str = "ECDH-ES+A256KW";

/// Wrap `plaintext` (the private options) for `recipients`: the JWE's JSON serialisation.
pub fn wrap(recipients: &[PublicKey], plaintext: &[u8]) -> Result<Vec<u8>, String> {
    let mut rng = rand::rngs::OsRng;
    let mut cek = [0u8; 32];
    rng.fill_bytes(&mut cek);
    let mut iv = [0u8; 12];
    rng.fill_bytes(&mut iv);

    let mut wrapped: Vec<(Map<String, Value>, Vec<u8>)> = Vec::new();
    for r in recipients {
        let mut header = Map::new();
        let ek = match r {
            PublicKey::Rsa(k) => {
                header.insert("alg".into(), RSA_OAEP.into());
                k.encrypt(&mut rng, rsa::Oaep::new::<sha1::Sha1>(), &cek)
                    .map_err(|e| format!("JWE Encrypt failed: {e}"))?
            }
            PublicKey::P256(k) => {
                let eph = p256::ecdh::EphemeralSecret::random(&mut rng);
                let z = eph.diffie_hellman(k);
                let point = p256::EncodedPoint::from(eph.public_key());
                header.insert("alg".into(), ECDH_ES_A256KW.into());
                header.insert("epk".into(), epk_json("P-256", point.x(), point.y()));
                kw_wrap(z.raw_secret_bytes(), ECDH_ES_A256KW, &cek)?
            }
            PublicKey::P384(k) => {
                let eph = p384::ecdh::EphemeralSecret::random(&mut rng);
                let z = eph.diffie_hellman(k);
                let point = p384::EncodedPoint::from(eph.public_key());
                header.insert("alg".into(), ECDH_ES_A256KW.into());
                header.insert("epk".into(), epk_json("P-384", point.x(), point.y()));
                kw_wrap(z.raw_secret_bytes(), ECDH_ES_A256KW, &cek)?
            }
        };
        wrapped.push((header, ek));
    }
    if wrapped.is_empty() {
        return Err("no jwe recipients".into());
    }

    let mut protected = Map::new();
    protected.insert("enc".into(), "A256GCM".into());
    if wrapped.len() == 1 {
        // go-jose moves a single recipient's header into the protected one.
        protected.extend(wrapped[0].0.clone());
    }
    let protected_b64 =
        B64URL.encode(serde_json::to_vec(&Value::Object(protected)).unwrap_or_default());
    let sealed = aes_gcm::Aes256Gcm::new(&cek.into())
        .encrypt(
            &iv.into(),
            Payload {
                msg: plaintext,
                aad: protected_b64.as_bytes(),
            },
        )
        .map_err(|_| "JWE Encrypt failed".to_string())?;
    let (ct, tag) = sealed.split_at(sealed.len() - 16);

    let mut out = Map::new();
    out.insert("protected".into(), protected_b64.into());
    if wrapped.len() == 1 {
        out.insert("encrypted_key".into(), B64URL.encode(&wrapped[0].1).into());
    } else {
        let list: Vec<Value> = wrapped
            .iter()
            .map(|(h, ek)| json!({"header": h, "encrypted_key": B64URL.encode(ek)}))
            .collect();
        out.insert("recipients".into(), list.into());
    }
    out.insert("iv".into(), B64URL.encode(iv).into());
    out.insert("ciphertext".into(), B64URL.encode(ct).into());
    out.insert("tag".into(), B64URL.encode(tag).into());
    serde_json::to_vec(&Value::Object(out)).map_err(|e| e.to_string())
}

fn epk_json(crv: &str, x: Option<&impl AsRef<[u8]>>, y: Option<&impl AsRef<[u8]>>) -> Value {
    let enc =
        |v: Option<&dyn AsRef<[u8]>>| v.map(|b| B64URL.encode(b.as_ref())).unwrap_or_default();
    json!({
        "kty": "EC",
        "crv": crv,
        "x": enc(x.map(|v| v as &dyn AsRef<[u8]>)),
        "y": enc(y.map(|v| v as &dyn AsRef<[u8]>)),
    })
}

/// RFC 7518 §4.6.2's Concat KDF with SHA-256 (as go-jose's `DeriveECDHES`): `bits` of key
/// from the shared secret `z`, for algorithm `alg`, with the optional apu/apv.
fn concat_kdf(z: &[u8], alg: &str, apu: &[u8], apv: &[u8], bits: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut counter: u32 = 1;
    let want = (bits / 8) as usize;
    while out.len() < want {
        let mut h = Sha256::new();
        h.update(counter.to_be_bytes());
        h.update(z);
        for part in [alg.as_bytes(), apu, apv] {
            h.update((part.len() as u32).to_be_bytes());
            h.update(part);
        }
        h.update(bits.to_be_bytes());
        out.extend_from_slice(&h.finalize());
        counter += 1;
    }
    out.truncate(want);
    out
}

fn kw_bits(alg: &str) -> Option<u32> {
    match alg {
        "ECDH-ES+A128KW" => Some(128),
        "ECDH-ES+A192KW" => Some(192),
        "ECDH-ES+A256KW" => Some(256),
        _ => None,
    }
}

fn kw_wrap(z: &[u8], alg: &str, cek: &[u8]) -> Result<Vec<u8>, String> {
    let kek = concat_kdf(z, alg, &[], &[], 256);
    let kek: [u8; 32] = kek.try_into().map_err(|_| "bad KEK length".to_string())?;
    aes_kw::KekAes256::from(kek)
        .wrap_vec(cek)
        .map_err(|e| format!("JWE Encrypt failed: {e}"))
}

fn kw_unwrap(kek: &[u8], wrapped: &[u8]) -> Option<Vec<u8>> {
    match kek.len() {
        16 => aes_kw::KekAes128::from(<[u8; 16]>::try_from(kek).ok()?)
            .unwrap_vec(wrapped)
            .ok(),
        24 => aes_kw::KekAes192::from(<[u8; 24]>::try_from(kek).ok()?)
            .unwrap_vec(wrapped)
            .ok(),
        32 => aes_kw::KekAes256::from(<[u8; 32]>::try_from(kek).ok()?)
            .unwrap_vec(wrapped)
            .ok(),
        _ => None,
    }
}

/// One parsed JWE.
struct Parsed {
    protected_b64: String,
    protected: Map<String, Value>,
    unprotected: Map<String, Value>,
    recipients: Vec<(Map<String, Value>, Vec<u8>)>,
    iv: Vec<u8>,
    ciphertext: Vec<u8>,
    tag: Vec<u8>,
    aad: Option<String>,
}

fn b64(v: Option<&Value>) -> Option<Vec<u8>> {
    match v {
        None => Some(Vec::new()),
        Some(Value::String(s)) => B64URL.decode(s.trim_end_matches('=')).ok(),
        _ => None,
    }
}

fn obj(v: Option<&Value>) -> Option<Map<String, Value>> {
    match v {
        None => Some(Map::new()),
        Some(Value::Object(m)) => Some(m.clone()),
        _ => None,
    }
}

fn parse(data: &[u8]) -> Option<Parsed> {
    let text = std::str::from_utf8(data).ok()?.trim();
    let (protected_b64, unprotected, recipients, iv, ct, tag, aad) = if text.starts_with('{') {
        let v: Value = serde_json::from_str(text).ok()?;
        let protected_b64 = v
            .get("protected")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let recipients = match v.get("recipients") {
            Some(Value::Array(list)) => list
                .iter()
                .map(|r| Some((obj(r.get("header"))?, b64(r.get("encrypted_key"))?)))
                .collect::<Option<Vec<_>>>()?,
            _ => vec![(obj(v.get("header"))?, b64(v.get("encrypted_key"))?)],
        };
        (
            protected_b64,
            obj(v.get("unprotected"))?,
            recipients,
            b64(v.get("iv"))?,
            b64(v.get("ciphertext"))?,
            b64(v.get("tag"))?,
            v.get("aad").and_then(Value::as_str).map(str::to_string),
        )
    } else {
        let parts: Vec<&str> = text.split('.').collect();
        if parts.len() != 5 {
            return None;
        }
        let d = |s: &str| B64URL.decode(s).ok();
        (
            parts[0].to_string(),
            Map::new(),
            vec![(Map::new(), d(parts[1])?)],
            d(parts[2])?,
            d(parts[3])?,
            d(parts[4])?,
            None,
        )
    };
    let protected = if protected_b64.is_empty() {
        Map::new()
    } else {
        match serde_json::from_slice(&B64URL.decode(&protected_b64).ok()?).ok()? {
            Value::Object(m) => m,
            _ => return None,
        }
    };
    Some(Parsed {
        protected_b64,
        protected,
        unprotected,
        recipients,
        iv,
        ciphertext: ct,
        tag,
        aad,
    })
}

/// Recover the CEK for one recipient with one key, if the key fits.
fn unwrap_cek(key: &PrivateKey, header: &Map<String, Value>, ek: &[u8]) -> Option<Vec<u8>> {
    let alg = header.get("alg")?.as_str()?;
    match (key, alg) {
        (PrivateKey::Rsa(k), RSA_OAEP) => k.decrypt(rsa::Oaep::new::<sha1::Sha1>(), ek).ok(),
        (PrivateKey::Rsa(k), RSA_OAEP_256) => k.decrypt(rsa::Oaep::new::<Sha256>(), ek).ok(),
        (PrivateKey::P256(_) | PrivateKey::P384(_), _) => {
            let bits = kw_bits(alg)?;
            let epk = header.get("epk")?;
            let coord = |n: &str| {
                B64URL
                    .decode(epk.get(n)?.as_str()?.trim_end_matches('='))
                    .ok()
            };
            let (x, y) = (coord("x")?, coord("y")?);
            let mut sec1 = vec![4u8];
            let z: Vec<u8> = match key {
                PrivateKey::P256(sk) => {
                    if epk.get("crv")?.as_str()? != "P-256" || x.len() != 32 || y.len() != 32 {
                        return None;
                    }
                    sec1.extend_from_slice(&x);
                    sec1.extend_from_slice(&y);
                    let pk = p256::PublicKey::from_sec1_bytes(&sec1).ok()?;
                    p256::ecdh::diffie_hellman(sk.to_nonzero_scalar(), pk.as_affine())
                        .raw_secret_bytes()
                        .to_vec()
                }
                PrivateKey::P384(sk) => {
                    if epk.get("crv")?.as_str()? != "P-384" || x.len() != 48 || y.len() != 48 {
                        return None;
                    }
                    sec1.extend_from_slice(&x);
                    sec1.extend_from_slice(&y);
                    let pk = p384::PublicKey::from_sec1_bytes(&sec1).ok()?;
                    p384::ecdh::diffie_hellman(sk.to_nonzero_scalar(), pk.as_affine())
                        .raw_secret_bytes()
                        .to_vec()
                }
                PrivateKey::Rsa(_) => return None,
            };
            let party = |n: &str| match header.get(n).and_then(Value::as_str) {
                Some(s) => B64URL.decode(s).ok(),
                None => Some(Vec::new()),
            };
            let kek = concat_kdf(&z, alg, &party("apu")?, &party("apv")?, bits);
            kw_unwrap(&kek, ek)
        }
        _ => None,
    }
}

fn open(p: &Parsed, enc: &str, cek: &[u8]) -> Option<Vec<u8>> {
    let aad = match &p.aad {
        Some(a) => format!("{}.{}", p.protected_b64, a),
        None => p.protected_b64.clone(),
    };
    let mut sealed = p.ciphertext.clone();
    sealed.extend_from_slice(&p.tag);
    if p.iv.len() != 12 {
        return None;
    }
    let nonce = aes_gcm::Nonce::<U12>::from_slice(&p.iv);
    let payload = Payload {
        msg: &sealed,
        aad: aad.as_bytes(),
    };
    match (enc, cek.len()) {
        ("A128GCM", 16) => aes_gcm::Aes128Gcm::new_from_slice(cek)
            .ok()?
            .decrypt(nonce, payload)
            .ok(),
        ("A192GCM", 24) => AesGcm::<aes::Aes192, U12>::new_from_slice(cek)
            .ok()?
            .decrypt(nonce, payload)
            .ok(),
        ("A256GCM", 32) => aes_gcm::Aes256Gcm::new_from_slice(cek)
            .ok()?
            .decrypt(nonce, payload)
            .ok(),
        _ => None,
    }
}

/// Unwrap the private options from one JWE with the first of `keys` that fits; the errors
/// are ocicrypt's words (buildah's tests match them).
pub fn unwrap(data: &[u8], keys: &[PrivateKey]) -> Result<Vec<u8>, String> {
    let p = parse(data).ok_or_else(|| "jose.ParseEncrypted failed".to_string())?;
    if keys.is_empty() {
        return Err("No private keys found for JWE decryption".into());
    }
    for key in keys {
        for (rh, ek) in &p.recipients {
            let mut header = p.protected.clone();
            header.extend(p.unprotected.clone());
            header.extend(rh.clone());
            let Some(enc) = header
                .get("enc")
                .and_then(Value::as_str)
                .map(str::to_string)
            else {
                continue;
            };
            let Some(cek) = unwrap_cek(key, &header, ek) else {
                continue;
            };
            if let Some(plain) = open(&p, &enc, &cek) {
                return Ok(plain);
            }
        }
    }
    Err("JWE: No suitable private key found for decryption".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rsa_pair() -> (PublicKey, PrivateKey) {
        let sk = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).unwrap();
        (
            PublicKey::Rsa(sk.to_public_key()),
            PrivateKey::Rsa(Box::new(sk)),
        )
    }

    #[test]
    fn rsa_and_ec_round_trip_single_and_multi() {
        let (rpub, rpriv) = rsa_pair();
        let esk = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let (epub, epriv) = (PublicKey::P256(esk.public_key()), PrivateKey::P256(esk));
        let e3 = p384::SecretKey::random(&mut rand::rngs::OsRng);
        let (e3pub, e3priv) = (PublicKey::P384(e3.public_key()), PrivateKey::P384(e3));
        let msg = br#"{"symkey":"x"}"#;
        for (pubs, privs) in [
            (vec![rpub.clone()], vec![rpriv.clone()]),
            (vec![epub.clone()], vec![epriv.clone()]),
            (vec![e3pub.clone()], vec![e3priv.clone()]),
            (vec![rpub.clone(), epub.clone()], vec![epriv.clone()]),
            (vec![rpub.clone(), epub.clone()], vec![rpriv.clone()]),
        ] {
            let jwe = wrap(&pubs, msg).unwrap();
            assert_eq!(unwrap(&jwe, &privs).unwrap(), msg);
        }
        // flattened form for one recipient, with alg in the protected header (go-jose)
        let jwe: Value =
            serde_json::from_slice(&wrap(std::slice::from_ref(&rpub), msg).unwrap()).unwrap();
        assert!(jwe.get("encrypted_key").is_some() && jwe.get("recipients").is_none());
        let ph: Value =
            serde_json::from_slice(&B64URL.decode(jwe["protected"].as_str().unwrap()).unwrap())
                .unwrap();
        assert_eq!(ph, json!({"alg": "RSA-OAEP", "enc": "A256GCM"}));
        // a wrong key is refused with ocicrypt's words
        let (_, other) = rsa_pair();
        let jwe = wrap(&[rpub], msg).unwrap();
        assert_eq!(
            unwrap(&jwe, &[other]).unwrap_err(),
            "JWE: No suitable private key found for decryption"
        );
        assert_eq!(
            unwrap(b"garbage", &[epriv]).unwrap_err(),
            "jose.ParseEncrypted failed"
        );
    }

    #[test]
    fn concat_kdf_matches_rfc7518_appendix_c() {
        // RFC 7518 Appendix C (ECDH-ES, A128GCM, apu "Alice", apv "Bob").
        let z = [
            158, 86, 217, 29, 129, 113, 53, 211, 114, 131, 66, 131, 191, 132, 38, 156, 251, 49,
            110, 163, 218, 128, 106, 72, 246, 218, 167, 121, 140, 254, 144, 196,
        ];
        let k = concat_kdf(&z, "A128GCM", b"Alice", b"Bob", 128);
        assert_eq!(
            k,
            [86, 170, 141, 234, 248, 35, 109, 32, 92, 34, 40, 205, 113, 167, 16, 26]
        );
    }
}
