//! JSON the way containers/storage (Go `encoding/json`) writes it, and tolerant reading.
//!
//! Go escapes `<`, `>`, `&`, U+2028 and U+2029 as `\u003c`… and writes `\b`/`\f` as
//! `\u0008`/`\u000c`; struct fields come in declaration order (our record types declare them
//! in the same order) and map keys sorted. Times are RFC 3339 with trailing zeros of the
//! fraction trimmed (`time.RFC3339Nano`).
use std::io::{self, Write};
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::ser::{CharEscape, Formatter};

use crate::error::{Error, Result};
use crate::store::StoreError;

/// A compact formatter with Go's string escaping.
#[derive(Debug, Default)]
pub struct GoFormatter;

impl Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let esc: &[u8] = match c {
                '<' => b"\\u003c",
                '>' => b"\\u003e",
                '&' => b"\\u0026",
                '\u{2028}' => b"\\u2028",
                '\u{2029}' => b"\\u2029",
                _ => continue,
            };
            w.write_all(&fragment.as_bytes()[start..i])?;
            w.write_all(esc)?;
            start = i + c.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + Write>(&mut self, w: &mut W, e: CharEscape) -> io::Result<()> {
        let s: Vec<u8> = match e {
            CharEscape::Quote => b"\\\"".to_vec(),
            CharEscape::ReverseSolidus => b"\\\\".to_vec(),
            CharEscape::Solidus => b"/".to_vec(),
            CharEscape::LineFeed => b"\\n".to_vec(),
            CharEscape::CarriageReturn => b"\\r".to_vec(),
            CharEscape::Tab => b"\\t".to_vec(),
            CharEscape::Backspace => b"\\u0008".to_vec(),
            CharEscape::FormFeed => b"\\u000c".to_vec(),
            CharEscape::AsciiControl(b) => format!("\\u{:04x}", b).into_bytes(),
        };
        w.write_all(&s)
    }
}

/// Serialise like Go's `json.Marshal`.
pub fn to_go_json<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    v.serialize(&mut ser).map_err(|e| Error::Json {
        op: "encoding".into(),
        path: "store metadata".into(),
        source: e,
    })?;
    Ok(out)
}

/// Read a JSON array file: missing or empty means `[]`; unparsable is [`StoreError::Corrupt`].
pub fn read_list<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::Io {
                op: "reading".into(),
                path: path.to_path_buf(),
                source: e,
            })
        }
    };
    if data.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(Vec::new());
    }
    // Go accepts `null` for a slice.
    if data.trim_ascii() == b"null" {
        return Ok(Vec::new());
    }
    serde_json::from_slice(&data).map_err(|e| {
        StoreError::Corrupt {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
        .into()
    })
}

/// Write `v` as Go JSON to `path` atomically (mode 0600).
pub fn write_file<T: Serialize + ?Sized>(path: &Path, v: &T) -> Result<()> {
    let data = to_go_json(v)?;
    crate::fsutil::atomic_write(path, &data, 0o600)
}

/// Deserialise `null` as the default value (Go writes and accepts `null` for nil slices/maps).
pub fn nullable<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Format a time as Go's `time.RFC3339Nano` does (fraction without trailing zeros; `Z` for UTC).
pub fn go_time<Tz: chrono::TimeZone>(t: &chrono::DateTime<Tz>) -> String
where
    Tz::Offset: std::fmt::Display,
{
    use chrono::{Offset, Timelike};
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.nanosecond() % 1_000_000_000;
    let mut frac = String::new();
    if nanos != 0 {
        frac = format!(".{:09}", nanos);
        while frac.ends_with('0') {
            frac.pop();
        }
    }
    let off = t.offset().fix().local_minus_utc();
    let zone = if off == 0 {
        "Z".to_string()
    } else {
        let sign = if off < 0 { '-' } else { '+' };
        let a = off.abs();
        format!("{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60)
    };
    format!("{base}{frac}{zone}")
}

/// The current time, UTC, Go style.
pub fn now() -> String {
    go_time(&chrono::Utc::now())
}

/// Normalise a caller-supplied RFC 3339 time to Go's rendering (kept as is if unparsable).
pub fn normalize_time(s: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(s) {
        Ok(t) => go_time(&t),
        Err(_) => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_escaping() {
        let cases: &[(&str, &str)] = &[
            ("plain", "\"plain\""),
            ("<a&b>", "\"\\u003ca\\u0026b\\u003e\""),
            ("q\"\\", "\"q\\\"\\\\\""),
            ("\n\t\r", "\"\\n\\t\\r\""),
            ("\u{8}\u{c}\u{1}", "\"\\u0008\\u000c\\u0001\""),
            ("x\u{2028}y", "\"x\\u2028y\""),
            ("/é", "\"/é\""),
        ];
        for (input, want) in cases {
            assert_eq!(
                String::from_utf8(to_go_json(input).unwrap()).unwrap(),
                *want,
                "{input:?}"
            );
        }
    }

    #[test]
    fn go_times() {
        use chrono::TimeZone;
        let t = chrono::Utc
            .with_ymd_and_hms(2026, 12, 1, 18, 50, 48)
            .unwrap();
        assert_eq!(go_time(&t), "2026-12-01T18:50:48Z");
        let t2 = t + chrono::Duration::nanoseconds(756_449_060);
        assert_eq!(go_time(&t2), "2026-12-01T18:50:48.75644906Z");
        assert_eq!(
            normalize_time("2024-01-02T03:04:05.500+02:00"),
            "2024-01-02T03:04:05.5+02:00"
        );
        assert_eq!(
            normalize_time("2024-01-02T03:04:05.000000000Z"),
            "2024-01-02T03:04:05Z"
        );
    }

    #[test]
    fn read_list_cases() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.json");
        assert!(read_list::<serde_json::Value>(&p).unwrap().is_empty());
        std::fs::write(&p, "").unwrap();
        assert!(read_list::<serde_json::Value>(&p).unwrap().is_empty());
        std::fs::write(&p, "null").unwrap();
        assert!(read_list::<serde_json::Value>(&p).unwrap().is_empty());
        std::fs::write(&p, "[1,2]").unwrap();
        assert_eq!(read_list::<serde_json::Value>(&p).unwrap().len(), 2);
        std::fs::write(&p, "[{").unwrap();
        let e = read_list::<serde_json::Value>(&p).unwrap_err();
        assert!(
            matches!(e, Error::Store(StoreError::Corrupt { .. })),
            "{e:?}"
        );
    }
}
