//! TLS with the CA files of `certs.d` / `--cert-dir`, as Go's crypto/tls treats them.
//!
//! ```text
//!  roots = system roots + every *.crt ──▶ WebPKI verification ──ok──▶ accepted
//!                                              │ failed
//!                                              ▼
//!  the server's certificate is byte-for-byte one of the *.crt files ──▶ accepted
//! ```
//!
//! A registry run with a self-signed certificate (`openssl req -x509 …`, what buildah's own
//! tests and many private registries do) has a leaf that is also a CA (`CA:TRUE`). Go accepts
//! it when that very certificate is among the trusted roots; WebPKI refuses a CA used as an
//! end entity. The user pinned that exact certificate in the registry's own certificate
//! directory, so accepting it (and nothing else) keeps Go's — buildah's — behaviour.
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::registries::Endpoint;

#[derive(Debug)]
struct PinnedOrWebPki {
    inner: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for PinnedOrWebPki {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(v) => Ok(v),
            Err(_)
                if self
                    .pinned
                    .iter()
                    .any(|p| p.as_ref() == end_entity.as_ref()) =>
            {
                Ok(ServerCertVerified::assertion())
            }
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The rustls configuration for `ep` (which has CA files and verifies TLS): system roots plus
/// its CAs, a server certificate equal to one of its CA files accepted, and its client
/// certificate if any. Errors are `(what, cause)` for the caller's setup error.
pub(crate) fn client_config(ep: &Endpoint) -> Result<rustls::ClientConfig, (String, String)> {
    // ring, the provider reqwest's own rustls configuration uses in this build (rustls marks
    // it deprecated only for its lack of post-quantum key exchange).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    let mut pinned = Vec::new();
    for ca in &ep.ca_certs {
        let what = || format!("parsing CA certificate {}", ca.display());
        let pem = std::fs::read(ca).map_err(|e| {
            (
                format!("reading CA certificate {}", ca.display()),
                e.to_string(),
            )
        })?;
        for c in CertificateDer::pem_slice_iter(&pem) {
            let c = c.map_err(|e| (what(), e.to_string()))?;
            // A self-signed leaf may not be a valid trust anchor for WebPKI; it is pinned anyway.
            let _ = roots.add(c.clone());
            pinned.push(c);
        }
    }
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| {
            (
                "setting up certificate verification".to_string(),
                e.to_string(),
            )
        })?;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ("setting up TLS".to_string(), e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedOrWebPki { inner, pinned }));
    let mut config = match &ep.client_cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let what = || format!("loading client certificate {}", cert.display());
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                .map_err(|e| (what(), e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| (what(), e.to_string()))?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                (
                    format!("loading client key {}", key.display()),
                    e.to_string(),
                )
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| (what(), e.to_string()))?
        }
    };
    // reqwest is built without HTTP/2 here.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
