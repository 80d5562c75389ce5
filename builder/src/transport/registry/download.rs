//! Plain `http://` and `https://` GETs for ADD/COPY of URLs, on the same reqwest client
//! stack as the registry transport (system CA roots, redirects, HTTP/1.1 with chunked
//! bodies), streamed into an anonymous temporary file and hashed as they pass.
use std::fs::File;
use std::io::{Seek, Write};
use std::sync::OnceLock;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use super::block_on;
use super::client::{cause, is_transient_error};

/// A downloaded body.
#[derive(Debug)]
pub struct Download {
    /// The body, rewound.
    pub file: File,
    /// Its size.
    pub size: u64,
    /// The `Last-Modified` header, as sent.
    pub last_modified: Option<String>,
    /// `sha256:<hex>` of the body.
    pub digest: String,
}

/// Why a GET failed.
#[derive(Debug)]
pub enum DownloadError {
    /// The connection failed or broke: worth another attempt.
    Transient(String),
    /// The server's answer or the URL is wrong.
    Fatal(String),
}

fn client() -> std::result::Result<&'static reqwest::Client, DownloadError> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c);
    }
    let c = reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(300))
        .redirect(reqwest::redirect::Policy::limited(10))
        .user_agent(concat!("hod/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| DownloadError::Fatal(cause(&e)))?;
    Ok(CLIENT.get_or_init(|| c))
}

/// GET `url` into a temporary file.
pub fn get(url: &str) -> std::result::Result<Download, DownloadError> {
    let io = |e: std::io::Error| DownloadError::Fatal(e.to_string());
    let http = client()?;
    let fut = async {
        let mut resp = http
            .get(url)
            .header(reqwest::header::ACCEPT_ENCODING, "identity")
            .send()
            .await
            .map_err(|e| classify(&e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(DownloadError::Fatal(format!(
                "invalid response status {}",
                status.as_u16()
            )));
        }
        let last_modified = resp
            .headers()
            .get(reqwest::header::LAST_MODIFIED)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let expected = resp.content_length();
        let mut file = tempfile::tempfile().map_err(io)?;
        let mut h = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = resp.chunk().await.map_err(|e| classify(&e))? {
            h.update(&chunk);
            file.write_all(&chunk).map_err(io)?;
            size += chunk.len() as u64;
        }
        if expected.is_some_and(|n| n != size) {
            return Err(DownloadError::Transient(format!(
                "body truncated at {size} of {} bytes",
                expected.unwrap_or_default()
            )));
        }
        file.rewind().map_err(io)?;
        Ok(Download {
            file,
            size,
            last_modified,
            digest: format!("sha256:{}", hex::encode(h.finalize())),
        })
    };
    block_on(fut).map_err(|e| DownloadError::Fatal(e.to_string()))?
}

fn classify(e: &reqwest::Error) -> DownloadError {
    if is_transient_error(e) {
        DownloadError::Transient(cause(e))
    } else {
        DownloadError::Fatal(cause(e))
    }
}
