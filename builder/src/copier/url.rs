//! ADD/COPY of `http://` and `https://` URLs, fetched with the registry transport's HTTP
//! client (`transport::registry::download`: redirects, chunked bodies, TLS with the system
//! roots); the body is kept in an anonymous host temporary file and its digest checked
//! before anything is written into the rootfs.
use std::fs::File;
use std::io;
use std::time::Duration;

use crate::error::{Error, Result};

/// Whether `s` is a URL source.
pub fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// A downloaded body.
#[derive(Debug)]
pub struct Fetched {
    /// The body, rewound.
    pub file: File,
    /// Its size.
    pub size: u64,
    /// `Last-Modified`, as Unix seconds.
    pub last_modified: Option<i64>,
    /// `sha256:<hex>` of the body.
    pub digest: String,
}

/// A URL failure.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    /// Transport problems (worth a retry).
    #[error("fetching {url}")]
    Io {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Anything else.
    #[error("fetching {url}: {msg}")]
    Bad {
        /// The URL.
        url: String,
        /// What went wrong.
        msg: String,
    },
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// The file name ADD gives a URL's content: the last segment of its path, decoded, and
/// refused when it is empty, `.`, `..`, or holds `/`, NUL or control characters.
pub fn file_name(url: &str) -> Result<String> {
    let bad = |why: &str| {
        Error::invalid(format!("cannot derive a file name from URL {url:?}: {why}; name the destination file explicitly"))
    };
    let rest = url.split_once("://").map(|x| x.1).unwrap_or(url);
    let path = match rest.find('/') {
        Some(i) => &rest[i..],
        None => "",
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    let seg = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let name = String::from_utf8(percent_decode(seg)).map_err(|_| bad("not UTF-8"))?;
    if name.is_empty() || name == "." || name == ".." {
        return Err(bad("no file name in its path"));
    }
    if name
        .chars()
        .any(|c| c == '/' || c == '\\' || c.is_control())
    {
        return Err(bad("unsafe characters in its file name"));
    }
    Ok(name)
}

fn fetch_once(url: &str) -> std::result::Result<Fetched, UrlError> {
    use crate::transport::registry::download::{get, DownloadError};
    if !is_url(url) {
        return Err(UrlError::Bad {
            url: url.to_string(),
            msg: "unsupported URL scheme".into(),
        });
    }
    match get(url) {
        Ok(d) => Ok(Fetched {
            file: d.file,
            size: d.size,
            last_modified: d
                .last_modified
                .and_then(|v| chrono::DateTime::parse_from_rfc2822(&v).ok())
                .map(|d| d.timestamp()),
            digest: d.digest,
        }),
        Err(DownloadError::Transient(msg)) => Err(UrlError::Io {
            url: url.to_string(),
            source: io::Error::other(msg),
        }),
        Err(DownloadError::Fatal(msg)) => Err(UrlError::Bad {
            url: url.to_string(),
            msg,
        }),
    }
}

/// GET `url`, retrying transport failures `retries` times `delay` apart, and check the
/// body against `checksum` (`sha256:<hex>`) when given.
pub fn fetch(url: &str, checksum: Option<&str>, retries: u32, delay: Duration) -> Result<Fetched> {
    let want = match checksum {
        Some(c) => Some(parse_checksum(c)?),
        None => None,
    };
    let mut attempt = 0;
    let f = loop {
        match fetch_once(url) {
            Ok(f) => break f,
            Err(UrlError::Io { url: u, source }) if attempt < retries => {
                attempt += 1;
                tracing::debug!(
                    "fetching {u}: {source}; retrying in {delay:?} ({attempt}/{retries})"
                );
                std::thread::sleep(delay);
            }
            Err(e) => return Err(Error::invalid(error_chain(&e))),
        }
    };
    if let Some(want) = want {
        if f.digest != want {
            return Err(Error::invalid(format!(
                "unexpected response digest for {url:?}: {}, want {want}",
                f.digest
            )));
        }
    }
    Ok(f)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Validate a `--checksum` value; only `sha256:<64 hex>` is accepted.
pub fn parse_checksum(c: &str) -> Result<String> {
    let (alg, hexpart) = c.split_once(':').ok_or_else(|| {
        Error::invalid(format!(
            "invalid checksum flag: invalid checksum digest format {c:?}"
        ))
    })?;
    if alg != "sha256" {
        return Err(Error::invalid(format!(
            "invalid checksum flag: unsupported digest algorithm {alg:?}"
        )));
    }
    if hexpart.len() != 64
        || !hexpart
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(Error::invalid(format!(
            "invalid checksum flag: invalid checksum digest format {c:?}"
        )));
    }
    Ok(c.to_string())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use sha2::{Digest as _, Sha256};
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    /// Serve `responses` (raw HTTP responses, one per connection) on 127.0.0.1.
    pub(crate) fn serve(responses: Vec<Vec<u8>>) -> (u16, std::thread::JoinHandle<Vec<String>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let mut reqs = Vec::new();
            for resp in responses {
                let (mut s, _) = l.accept().unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut req = String::new();
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                        break;
                    }
                    req.push_str(&line);
                }
                reqs.push(req);
                // One response per connection: say so, or a pooling client may send its next
                // request on this socket after it is closed (a reset, not a retry).
                let status_end = resp.windows(2).position(|w| w == b"\r\n").unwrap_or(0) + 2;
                s.write_all(&resp[..status_end]).unwrap();
                s.write_all(b"Connection: close\r\n").unwrap();
                s.write_all(&resp[status_end..]).unwrap();
            }
            reqs
        });
        (port, h)
    }

    pub(crate) fn ok_response(body: &[u8], extra: &str) -> Vec<u8> {
        let mut v = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n{extra}\r\n",
            body.len()
        )
        .into_bytes();
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn names() {
        for (u, want) in [
            ("http://h/a/b.txt", Some("b.txt")),
            ("http://h/a/b%20c.txt?x=1#f", Some("b c.txt")),
            ("http://h/", None),
            ("http://h/dir/", Some("dir")),
            ("http://h", None),
            ("http://h/a/..", None),
            ("http://h/a/%2e%2e", None),
            ("http://h/a/x%2fy", None),
            ("http://h/a/x%0ay", None),
            ("http://h/a/x%00", None),
        ] {
            assert_eq!(file_name(u).ok().as_deref(), want, "{u}");
        }
    }

    #[test]
    fn checksums() {
        assert!(parse_checksum(&format!("sha256:{}", "a".repeat(64))).is_ok());
        for bad in [
            "sha256:abc",
            "md5:00",
            "nocolon",
            &format!("sha256:{}", "A".repeat(64)),
        ] {
            assert!(parse_checksum(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fetch_plain_chunked_and_redirect() {
        let body = b"hello world\n";
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7\r\n world\n\r\n0\r\n\r\n".to_vec();
        let (port, h) = serve(vec![
            ok_response(body, "Last-Modified: Thu, 31 Oct 2019 01:23:45 GMT\r\n"),
            b"HTTP/1.1 302 Found\r\nLocation: /final\r\nContent-Length: 0\r\n\r\n".to_vec(),
            chunked,
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
        ]);
        let mut f = fetch(
            &format!("http://127.0.0.1:{port}/file"),
            None,
            0,
            Duration::ZERO,
        )
        .unwrap();
        let mut s = String::new();
        f.file.read_to_string(&mut s).unwrap();
        assert_eq!(s.as_bytes(), body);
        assert_eq!(f.size, body.len() as u64);
        assert_eq!(f.last_modified, Some(1572485025));
        assert_eq!(
            f.digest,
            format!("sha256:{}", hex::encode(Sha256::digest(body)))
        );
        let mut f = fetch(
            &format!("http://127.0.0.1:{port}/redir"),
            None,
            0,
            Duration::ZERO,
        )
        .unwrap();
        let mut s = String::new();
        f.file.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello world\n");
        let e = fetch(
            &format!("http://127.0.0.1:{port}/missing"),
            None,
            0,
            Duration::ZERO,
        )
        .unwrap_err();
        assert!(e.to_string().contains("invalid response status 404"), "{e}");
        let reqs = h.join().unwrap();
        assert!(reqs[0].starts_with("GET /file HTTP/1.1\r\n"), "{}", reqs[0]);
        assert!(
            reqs[2].starts_with("GET /final HTTP/1.1\r\n"),
            "{}",
            reqs[2]
        );
    }

    #[test]
    fn https_errors_name_the_url_and_the_cause() {
        // nothing listens: a transport error, retried, then reported with the URL
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let u = format!("https://127.0.0.1:{port}/x");
        let e = fetch(&u, None, 1, Duration::from_millis(1)).unwrap_err();
        assert!(
            e.to_string().contains(&u) && e.to_string().contains("onnect"),
            "{e}"
        );
        // a plain-HTTP server spoken to over TLS: a TLS error, not retried forever
        let (port, _h) = serve(vec![ok_response(b"x", "")]);
        let e = fetch(
            &format!("https://127.0.0.1:{port}/x"),
            None,
            0,
            Duration::ZERO,
        )
        .unwrap_err();
        assert!(e.to_string().contains("127.0.0.1"), "{e}");
    }

    #[test]
    fn https_against_a_tls_server() {
        // the test registry's TLS: its CA is not in the system roots, so the certificate
        // is refused (ADD trusts the system roots only, as buildah does)
        let Some(reg) = crate::transport::registry::test_registry::TestRegistry::start(
            crate::transport::registry::test_registry::Mode::Tls,
        ) else {
            return;
        };
        let e = fetch(
            &format!("https://{}/v2/", reg.host),
            None,
            0,
            Duration::ZERO,
        )
        .unwrap_err();
        assert!(e.to_string().contains("certificate"), "{e}");
    }
}
