//! ADD/COPY of `http://` URLs: a small blocking HTTP/1.1 GET over `std::net::TcpStream`
//! (redirects, chunked bodies), the body kept in an anonymous host temporary file and its
//! digest checked before anything is written into the rootfs.
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, Write};
use std::net::TcpStream;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// Largest response header block.
const MAX_HEADER: usize = 64 * 1024;
/// Redirects followed.
const MAX_REDIRECTS: usize = 10;

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

struct Parsed {
    host: String,
    port: u16,
    path: String,
}

fn parse(url: &str) -> std::result::Result<Parsed, String> {
    let rest = if let Some(r) = url.strip_prefix("http://") {
        r
    } else if url.starts_with("https://") {
        return Err("https URLs are not supported by this build (only http://)".into());
    } else {
        return Err("unsupported URL scheme".into());
    };
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = path.split('#').next().unwrap_or("/");
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    if authority.contains('@') {
        return Err("credentials in URLs are not supported".into());
    }
    let (host, port) = if let Some(h) = authority.strip_prefix('[') {
        let (h, p) = h.split_once(']').ok_or("bad IPv6 address")?;
        (format!("[{h}]"), p.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    let port = match port {
        Some(p) => p.parse().map_err(|_| format!("bad port {p:?}"))?,
        None => 80,
    };
    if host.is_empty() || host.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err("bad host".into());
    }
    if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err("bad path".into());
    }
    Ok(Parsed { host, port, path })
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

fn read_head(r: &mut BufReader<TcpStream>) -> io::Result<(u16, Vec<(String, String)>)> {
    let mut total = 0;
    let mut line = String::new();
    let mut lines = Vec::new();
    loop {
        line.clear();
        let n = r
            .by_ref()
            .take((MAX_HEADER - total + 1) as u64)
            .read_line(&mut line)?;
        total += n;
        if n == 0 || total > MAX_HEADER {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "truncated or oversized response header",
            ));
        }
        let l = line.trim_end_matches(['\r', '\n']).to_string();
        if l.is_empty() {
            break;
        }
        lines.push(l);
    }
    let status = lines
        .first()
        .and_then(|s| s.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad status line"))?;
    let headers = lines[1..]
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok((status, headers))
}

fn copy_chunked(r: &mut BufReader<TcpStream>, out: &mut dyn Write) -> io::Result<u64> {
    let mut total = 0u64;
    loop {
        let mut line = String::new();
        r.by_ref().take(1024).read_line(&mut line)?;
        let size = u64::from_str_radix(line.trim().split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
        if size == 0 {
            // trailers
            loop {
                let mut t = String::new();
                if r.by_ref().take(8192).read_line(&mut t)? == 0 || t.trim().is_empty() {
                    return Ok(total);
                }
            }
        }
        let n = io::copy(&mut r.by_ref().take(size), out)?;
        if n != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "truncated chunk",
            ));
        }
        total += n;
        let mut crlf = String::new();
        r.by_ref().take(2).read_line(&mut crlf)?;
    }
}

/// Hashes what passes through.
struct HashingWriter<'a> {
    inner: &'a mut File,
    h: Sha256,
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(b)?;
        self.h.update(&b[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn fetch_once(url: &str) -> std::result::Result<Fetched, UrlError> {
    let bad = |u: &str, m: String| UrlError::Bad {
        url: u.to_string(),
        msg: m,
    };
    let mut current = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let p = parse(&current).map_err(|m| bad(&current, m))?;
        let io_err = |source| UrlError::Io {
            url: current.clone(),
            source,
        };
        let stream =
            TcpStream::connect((p.host.trim_matches(['[', ']']), p.port)).map_err(io_err)?;
        stream
            .set_read_timeout(Some(Duration::from_secs(300)))
            .map_err(io_err)?;
        let mut w = stream.try_clone().map_err(io_err)?;
        let host_hdr = if p.port == 80 {
            p.host.clone()
        } else {
            format!("{}:{}", p.host, p.port)
        };
        write!(w, "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: hod\r\nAccept: */*\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n", p.path, host_hdr)
            .map_err(io_err)?;
        let mut r = BufReader::new(stream);
        let (status, headers) = read_head(&mut r).map_err(io_err)?;
        let header = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        if matches!(status, 301 | 302 | 303 | 307 | 308) {
            let loc = header("location")
                .ok_or_else(|| bad(&current, format!("redirect {status} without a Location")))?;
            current = if is_url(&loc) {
                loc
            } else if loc.starts_with('/') {
                format!("http://{host_hdr}{loc}")
            } else {
                let base = p.path.rsplit_once('/').map(|x| x.0).unwrap_or("");
                format!("http://{host_hdr}{base}/{loc}")
            };
            continue;
        }
        if !(200..300).contains(&status) {
            return Err(bad(&current, format!("invalid response status {status}")));
        }
        let mut file = tempfile::tempfile().map_err(io_err)?;
        let mut hw = HashingWriter {
            inner: &mut file,
            h: Sha256::new(),
        };
        let size = if header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
        {
            copy_chunked(&mut r, &mut hw).map_err(io_err)?
        } else if let Some(len) = header("content-length") {
            let len: u64 = len
                .parse()
                .map_err(|_| bad(&current, format!("bad Content-Length {len:?}")))?;
            let n = io::copy(&mut r.by_ref().take(len), &mut hw).map_err(io_err)?;
            if n != len {
                return Err(io_err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("body truncated at {n} of {len} bytes"),
                )));
            }
            n
        } else {
            io::copy(&mut r, &mut hw).map_err(io_err)?
        };
        let digest = format!("sha256:{}", hex::encode(hw.h.finalize()));
        file.rewind().map_err(io_err)?;
        let last_modified = header("last-modified")
            .and_then(|v| chrono::DateTime::parse_from_rfc2822(&v).ok())
            .map(|d| d.timestamp());
        return Ok(Fetched {
            file,
            size,
            last_modified,
            digest,
        });
    }
    Err(bad(url, "too many redirects".into()))
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
                s.write_all(&resp).unwrap();
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
    fn https_is_refused_clearly() {
        let e = fetch("https://127.0.0.1:1/x", None, 0, Duration::ZERO).unwrap_err();
        assert!(e.to_string().contains("https"), "{e}");
    }
}
