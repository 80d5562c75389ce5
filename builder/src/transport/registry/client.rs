//! One HTTP client per [`Endpoint`]: scheme choice (HTTPS, then plain HTTP when the endpoint
//! is insecure), TLS material, authentication and retries.
//!
//! ```text
//!  send(what, scope, make) ──▶ base URL (ping /v2/ once: https, else http if insecure)
//!        │                       └─ records the WWW-Authenticate challenge
//!        ├─▶ Authorization: Bearer <token for scope> | Basic <creds> | none
//!        ├─▶ 401 → parse challenge → fetch token (Basic creds to the realm, or anonymous) → once more
//!        └─▶ connection error, 5xx, 429 → wait (Retry-After, --retry-delay, or 2s·2ⁿ) → again
//! ```
//! Secrets never leave this file: credentials and tokens are only put in request headers,
//! never in URLs, errors or `tracing` events (which log method, URL and status only).
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::header::{HeaderMap, AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, Response, StatusCode};

use super::RegistryError;
use crate::error::Result;
use crate::options::{Credentials, RetryPolicy};
use crate::registries::Endpoint;

/// The longest `Retry-After` honoured; a registry asking for more gets this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How a registry asked to be authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// `Basic realm=…`.
    Basic,
    /// `Bearer realm=…,service=…`.
    Bearer {
        /// The token server.
        realm: String,
        /// The `service` parameter to send it.
        service: Option<String>,
    },
}

/// A bearer token and when to stop using it. Not `Debug`: it is a secret.
struct Token {
    value: String,
    expires: Instant,
}

#[derive(Default)]
struct State {
    base: Option<String>,
    challenge: Option<Challenge>,
    tokens: HashMap<String, Token>,
}

/// A client of one registry endpoint.
pub(crate) struct Client {
    /// Where it connects.
    pub(crate) ep: Endpoint,
    http: reqwest::Client,
    retry: RetryPolicy,
    state: Mutex<State>,
    /// Held while a bearer token is fetched: concurrent requests (parallel blob uploads)
    /// wait for the one fetch instead of each asking the realm for a token of its own.
    token_fetch: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("host", &self.ep.host)
            .field("repository", &self.ep.repository)
            .finish()
    }
}

/// A plain-HTTP server met with TLS, in the words of Go's `net/http` (scripts and buildah's
/// tests match them), before rustls's own.
fn go_tls_words(s: String) -> String {
    if s.contains("corrupt message of type InvalidContentType") {
        // A plain-HTTP server answering the TLS handshake.
        return format!("http: server gave HTTP response to HTTPS client ({s})");
    }
    s
}

/// Refused credentials, in containers/image's words (`ErrUnauthorizedForCredentials` around
/// the registry's `unauthorized: authentication required`), which buildah's tests match.
const BAD_CREDENTIALS: &str = "invalid username/password: unauthorized: authentication required";

/// rustls' verdicts on an untrusted server certificate, and Go's wording of them (what
/// buildah prints and its tests match).
fn go_tls_wording(m: &str) -> Option<&'static str> {
    const UNKNOWN: [&str; 3] = ["UnknownIssuer", "CaUsedAsEndEntity", "BadSignature"];
    if !m.starts_with("invalid peer certificate") {
        return None;
    }
    if UNKNOWN.iter().any(|u| m.contains(u)) {
        Some("x509: certificate signed by unknown authority")
    } else if m.contains("Expired") {
        Some("x509: certificate has expired or is not yet valid")
    } else if m.contains("NotValidForName") {
        Some("x509: certificate is not valid for this host name")
    } else {
        None
    }
}

/// The cause of a `reqwest` error as one line (its source chain, without the URL), TLS
/// failures in Go's words.
pub(crate) fn cause(e: &reqwest::Error) -> String {
    go_tls_words(cause_chain(e))
}

fn cause_chain(e: &reqwest::Error) -> String {
    let mut s = String::new();
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = cur {
        let m = err.to_string();
        let m = m.split(" for url (").next().unwrap_or_default().to_string();
        let m = go_tls_wording(&m).map(str::to_string).unwrap_or(m);
        if !m.is_empty() && !s.ends_with(&m) {
            if !s.is_empty() {
                s.push_str(": ");
            }
            s.push_str(&m);
        }
        cur = err.source();
    }
    s
}

/// Whether a transport-level error is worth another attempt (not a TLS verification or
/// a malformed request).
pub(crate) fn is_transient_error(e: &reqwest::Error) -> bool {
    is_transient(e)
}

fn is_transient(e: &reqwest::Error) -> bool {
    if e.is_builder() || e.is_redirect() || e.is_decode() {
        return false;
    }
    let c = cause(e).to_ascii_lowercase();
    !(c.contains("certificate") || c.contains("invalid peer") || c.contains("handshake"))
}

fn basic(c: &Credentials) -> String {
    let raw = format!("{}:{}", c.username, c.password);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// Parse a `WWW-Authenticate` header value.
pub(crate) fn parse_challenge(v: &str) -> Option<Challenge> {
    let v = v.trim();
    let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
    let params = parse_params(rest);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
        }),
        _ => None,
    }
}

/// `k="v", k2=v2` (quoted values may hold commas and `\"`).
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let b: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == ',' || b[i].is_whitespace()) {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i] != '=' && b[i] != ',' {
            i += 1;
        }
        let key: String = b[start..i].iter().collect::<String>().trim().to_lowercase();
        if i >= b.len() || b[i] != '=' {
            continue;
        }
        i += 1;
        let mut val = String::new();
        if i < b.len() && b[i] == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' && i + 1 < b.len() {
                    i += 1;
                }
                val.push(b[i]);
                i += 1;
            }
            i += 1;
        } else {
            while i < b.len() && b[i] != ',' {
                val.push(b[i]);
                i += 1;
            }
            val = val.trim().to_string();
        }
        if !key.is_empty() {
            out.insert(key, val);
        }
    }
    out
}

/// `Retry-After`, at most [`MAX_RETRY_AFTER`].
fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let v = h.get(RETRY_AFTER)?.to_str().ok()?;
    retry_after_value(v, chrono::Utc::now())
}

/// A `Retry-After` value as RFC 9110 §10.2.3 has it: delay-seconds, or an HTTP-date
/// (IMF-fixdate, and the obsolete RFC 850 and asctime forms recipients must accept),
/// which counts from `now` (a date already past: no wait). At most [`MAX_RETRY_AFTER`].
fn retry_after_value(v: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = v.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s).min(MAX_RETRY_AFTER));
    }
    let at = http_date(v)?;
    let wait = (at - now).to_std().unwrap_or(Duration::ZERO);
    Some(wait.min(MAX_RETRY_AFTER))
}

/// An HTTP-date (always UTC): `Sun, 06 Nov 1994 08:49:37 GMT`, `Sunday, 06-Nov-94 08:49:37
/// GMT` or `Sun Nov  6 08:49:37 1994`.
fn http_date(v: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::NaiveDateTime;
    // asctime pads the day with a space; one space between fields makes it one format.
    let squeezed = v.split_whitespace().collect::<Vec<_>>().join(" ");
    [
        "%a, %d %b %Y %H:%M:%S GMT",
        "%A, %d-%b-%y %H:%M:%S GMT",
        "%a %b %d %H:%M:%S %Y",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(&squeezed, f).ok())
    .map(|t| t.and_utc())
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(serde::Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// The most of an error body read (containers/image's `iolimits.maxErrorBodySize`).
const MAX_ERROR_BODY: u64 = 1 << 20;
/// The most of a token server's answer read (`iolimits.maxAuthTokenBodySize`).
const MAX_TOKEN_BODY: u64 = 1 << 20;

/// The body of `resp` if it is at most `limit` bytes; `None` (the rest unread) when longer,
/// so a hostile server cannot make hod hold an unbounded answer (docs/security.md D37).
async fn body_upto(mut resp: Response, limit: u64) -> reqwest::Result<Option<Vec<u8>>> {
    if resp.content_length().is_some_and(|l| l > limit) {
        return Ok(None);
    }
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if buf.len() as u64 + chunk.len() as u64 > limit {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Some(buf))
}

/// The registry's explanation of a failed response: distribution's `errors[].message`,
/// else the status line.
pub(crate) async fn explain(resp: Response) -> String {
    let status = resp.status();
    let body = body_upto(resp, MAX_ERROR_BODY)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    let msgs: Vec<String> = serde_json::from_slice::<ErrorBody>(&body)
        .map(|b| {
            b.errors
                .into_iter()
                .map(|e| {
                    if e.message.is_empty() {
                        e.code.to_lowercase().replace('_', " ")
                    } else {
                        e.message
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    if msgs.is_empty() {
        format!("received unexpected HTTP status: {status}")
    } else {
        msgs.join("; ")
    }
}

impl Client {
    /// A client for `ep`, with its TLS material loaded.
    pub(crate) fn new(ep: Endpoint, retry: RetryPolicy) -> Result<Client> {
        let err = |what: &str, e: String| RegistryError::Setup {
            registry: ep.host.clone(),
            cause: format!("{what}: {e}"),
        };
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(Duration::from_secs(30))
            .user_agent(concat!("hod/", env!("CARGO_PKG_VERSION")));
        if let Some(cfg) = super::tls::config(&ep).map_err(|e| err("TLS", e))? {
            b = b.use_preconfigured_tls(cfg);
        }
        let http = b
            .build()
            .map_err(|e| err("creating the HTTP client", cause(&e)))?;
        Ok(Client {
            ep,
            http,
            retry,
            state: Mutex::new(State::default()),
            token_fetch: tokio::sync::Mutex::new(()),
        })
    }

    /// `host/repository`, as errors name the registry.
    pub(crate) fn name(&self) -> String {
        format!("{}/{}", self.ep.host, self.ep.repository)
    }

    /// The scope of pulling (and pushing) this endpoint's repository.
    pub(crate) fn scope(&self, push: bool) -> String {
        format!(
            "repository:{}:{}",
            self.ep.repository,
            if push { "pull,push" } else { "pull" }
        )
    }

    /// The retry policy.
    pub(crate) fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// The wait before retry number `attempt + 1` when the registry named none.
    pub(crate) fn delay_for(&self, attempt: u32) -> Duration {
        self.delay(attempt, None)
    }

    fn delay(&self, attempt: u32, headers: Option<&HeaderMap>) -> Duration {
        if let Some(d) = headers.and_then(retry_after) {
            return d;
        }
        match self.retry.delay {
            Some(d) => d,
            None => Duration::from_secs(2u64 << attempt.min(5)),
        }
    }

    /// The base URL (`https://host` or `http://host`), pinging `/v2/` the first time.
    pub(crate) async fn base(&self) -> Result<String> {
        if let Some(b) = self
            .state
            .lock()
            .expect("registry client lock")
            .base
            .clone()
        {
            return Ok(b);
        }
        let mut schemes = vec!["https"];
        if self.ep.insecure {
            schemes.push("http");
        }
        let mut last = String::new();
        for attempt in 0..=self.retry.max_retries {
            let mut transient = false;
            for scheme in &schemes {
                let url = format!("{scheme}://{}/v2/", self.ep.host);
                tracing::debug!(%url, "ping");
                match self.http.get(&url).send().await {
                    Ok(resp) => {
                        let status = resp.status();
                        tracing::debug!(%url, %status, "ping answered");
                        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                            last = explain(resp).await;
                            transient = true;
                            break;
                        }
                        let ch = resp
                            .headers()
                            .get(WWW_AUTHENTICATE)
                            .and_then(|v| v.to_str().ok())
                            .and_then(parse_challenge);
                        let base = format!("{scheme}://{}", self.ep.host);
                        let mut st = self.state.lock().expect("registry client lock");
                        st.base = Some(base.clone());
                        if status == StatusCode::UNAUTHORIZED {
                            st.challenge = ch;
                        }
                        return Ok(base);
                    }
                    Err(e) => {
                        last = cause(&e);
                        tracing::debug!(%url, error = %last, "ping failed");
                        transient = is_transient(&e);
                    }
                }
            }
            if !transient || attempt == self.retry.max_retries {
                break;
            }
            tokio::time::sleep(self.delay(attempt, None)).await;
        }
        Err(RegistryError::Unreachable {
            registry: self.ep.host.clone(),
            cause: last,
        }
        .into())
    }

    fn auth_value(&self, scope: &str) -> Option<String> {
        let st = self.state.lock().expect("registry client lock");
        match &st.challenge {
            Some(Challenge::Basic) => self.ep.credentials.as_ref().map(basic),
            Some(Challenge::Bearer { .. }) => st
                .tokens
                .get(scope)
                .filter(|t| t.expires > Instant::now())
                .map(|t| format!("Bearer {}", t.value)),
            None => None,
        }
    }

    fn needs_token(&self, scope: &str) -> Option<Challenge> {
        let st = self.state.lock().expect("registry client lock");
        match &st.challenge {
            Some(c @ Challenge::Bearer { .. }) => {
                let fresh = st
                    .tokens
                    .get(scope)
                    .is_some_and(|t| t.expires > Instant::now());
                (!fresh).then(|| c.clone())
            }
            _ => None,
        }
    }

    fn unauthorized(&self, reason: &str) -> crate::Error {
        RegistryError::Unauthorized {
            registry: self.ep.host.clone(),
            reason: reason.to_string(),
        }
        .into()
    }

    /// Get a bearer token for `scope` (space-separated scopes) from the realm.
    async fn fetch_token(&self, ch: &Challenge, scope: &str) -> Result<()> {
        let Challenge::Bearer { realm, service } = ch else {
            return Ok(());
        };
        let mut q: Vec<(&str, &str)> = Vec::new();
        if let Some(s) = service {
            q.push(("service", s));
        }
        for s in scope.split(' ').filter(|s| !s.is_empty()) {
            q.push(("scope", s));
        }
        // An identity token (auth.json `identitytoken`, or `<token>` as the user name) is an
        // OAuth2 refresh token: POST the refresh-token grant, as containers/image does.
        let refresh = self
            .ep
            .credentials
            .as_ref()
            .filter(|c| c.username == crate::registries::auth::TOKEN_USER)
            .map(|c| c.password.clone());
        let mut last = String::new();
        for attempt in 0..=self.retry.max_retries {
            let req = match &refresh {
                Some(token) => {
                    let mut form: Vec<(&str, &str)> = vec![
                        ("grant_type", "refresh_token"),
                        ("refresh_token", token),
                        ("client_id", "containers/image"),
                    ];
                    if let Some(s) = service {
                        form.push(("service", s));
                    }
                    form.push(("scope", scope));
                    self.http.post(realm).form(&form)
                }
                None => {
                    let mut req = self.http.get(realm).query(&q);
                    if let Some(c) = &self.ep.credentials {
                        req = req.header(AUTHORIZATION, basic(c));
                    }
                    req
                }
            };
            tracing::debug!(%realm, %scope, identity_token = refresh.is_some(), "requesting a bearer token");
            match req.send().await {
                Ok(resp) if resp.status().is_success() => {
                    let body = body_upto(resp, MAX_TOKEN_BODY)
                        .await
                        .map_err(|e| RegistryError::Unreachable {
                            registry: self.ep.host.clone(),
                            cause: format!("reading token: {}", cause(&e)),
                        })?
                        .ok_or_else(|| {
                            self.unauthorized("the token server's answer is larger than 1 MiB")
                        })?;
                    let t: TokenResponse = serde_json::from_slice(&body).map_err(|_| {
                        self.unauthorized("the token server's answer is not a token response")
                    })?;
                    let value = t
                        .token
                        .filter(|s| !s.is_empty())
                        .or(t.access_token)
                        .filter(|s| !s.is_empty())
                        .ok_or_else(|| self.unauthorized("the token server returned no token"))?;
                    // containers/image: at least 60 s; renew a little early.
                    let life = Duration::from_secs(t.expires_in.unwrap_or(60).max(60));
                    let expires = Instant::now() + life - Duration::from_secs(5);
                    self.state
                        .lock()
                        .expect("registry client lock")
                        .tokens
                        .insert(scope.to_string(), Token { value, expires });
                    return Ok(());
                }
                Ok(resp)
                    if resp.status() == StatusCode::UNAUTHORIZED
                        || resp.status() == StatusCode::FORBIDDEN =>
                {
                    return Err(self.unauthorized(if self.ep.credentials.is_some() {
                        BAD_CREDENTIALS
                    } else {
                        "authentication required"
                    }));
                }
                Ok(resp) => {
                    let retryable = resp.status().is_server_error()
                        || resp.status() == StatusCode::TOO_MANY_REQUESTS;
                    let h = resp.headers().clone();
                    last = explain(resp).await;
                    if !retryable || attempt == self.retry.max_retries {
                        break;
                    }
                    tokio::time::sleep(self.delay(attempt, Some(&h))).await;
                }
                Err(e) => {
                    last = cause(&e);
                    if !is_transient(&e) || attempt == self.retry.max_retries {
                        break;
                    }
                    tokio::time::sleep(self.delay(attempt, None)).await;
                }
            }
        }
        Err(RegistryError::Unreachable {
            registry: self.ep.host.clone(),
            cause: format!("getting a token: {last}"),
        }
        .into())
    }

    /// Send a request built by `make` (from the client and the base URL) with
    /// authentication; 401 re-authenticates once, and unless `retry` is false, transient
    /// failures are retried per the policy. Returns the response when its status is neither
    /// 401 nor a retryable one; `what` names the operation and object for errors.
    pub(crate) async fn send(
        &self,
        what: &str,
        scope: &str,
        retry: bool,
        make: &(dyn Fn(&reqwest::Client, &str) -> Result<RequestBuilder> + Sync),
    ) -> Result<Response> {
        let base = self.base().await?;
        let max = if retry { self.retry.max_retries } else { 0 };
        let mut reauthed = false;
        let mut attempt = 0;
        loop {
            if self.needs_token(scope).is_some() {
                let _one = self.token_fetch.lock().await;
                // Another request may have fetched it while this one waited.
                if let Some(ch) = self.needs_token(scope) {
                    self.fetch_token(&ch, scope).await?;
                }
            }
            let mut req = make(&self.http, &base)?;
            if let Some(a) = self.auth_value(scope) {
                req = req.header(AUTHORIZATION, a);
            }
            let req = req.build().map_err(|e| self.failed(what, cause(&e)))?;
            let (method, url) = (req.method().clone(), req.url().clone());
            tracing::debug!(%method, %url, "registry request");
            let (fail, headers) = match self.http.execute(req).await {
                Ok(resp) => {
                    let status = resp.status();
                    tracing::debug!(%method, %url, %status, "registry response");
                    if status == StatusCode::UNAUTHORIZED {
                        let ch = resp
                            .headers()
                            .get(WWW_AUTHENTICATE)
                            .and_then(|v| v.to_str().ok())
                            .and_then(parse_challenge);
                        if reauthed || ch.is_none() {
                            return Err(self.unauthorized(if self.ep.credentials.is_some() {
                                BAD_CREDENTIALS
                            } else {
                                "authentication required"
                            }));
                        }
                        reauthed = true;
                        let ch = ch.expect("checked above");
                        {
                            let mut st = self.state.lock().expect("registry client lock");
                            st.tokens.remove(scope);
                            st.challenge = Some(ch.clone());
                        }
                        match &ch {
                            Challenge::Basic if self.ep.credentials.is_none() => {
                                return Err(self.unauthorized("authentication required"))
                            }
                            Challenge::Basic => {}
                            Challenge::Bearer { .. } => self.fetch_token(&ch, scope).await?,
                        }
                        continue;
                    }
                    if !(status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS) {
                        return Ok(resp);
                    }
                    let h = resp.headers().clone();
                    (format!("{status}: {}", explain(resp).await), Some(h))
                }
                Err(e) if is_transient(&e) => (cause(&e), None),
                Err(e) => return Err(self.failed(what, cause(&e))),
            };
            if attempt >= max {
                return Err(if !retry {
                    RegistryError::Transient {
                        what: what.to_string(),
                        registry: self.name(),
                        cause: fail,
                    }
                    .into()
                } else {
                    RegistryError::RetriesExhausted {
                        what: what.to_string(),
                        registry: self.name(),
                        attempts: attempt + 1,
                        cause: fail,
                    }
                    .into()
                });
            }
            let d = self.delay(attempt, headers.as_ref());
            tracing::info!(
                "{what} in {}: {fail}; retrying in {:?} (attempt {} of {})",
                self.name(),
                d,
                attempt + 2,
                max + 1
            );
            tokio::time::sleep(d).await;
            attempt += 1;
        }
    }

    /// An error of `what` on this registry.
    pub(crate) fn failed(&self, what: &str, cause: String) -> crate::Error {
        RegistryError::Failed {
            what: what.to_string(),
            registry: self.name(),
            cause,
        }
        .into()
    }

    /// Ping with authentication: `/v2/` answered 200 with the endpoint's credentials
    /// (through the token flow when the registry asks for it).
    pub(crate) async fn check_login(&self) -> Result<()> {
        let resp = self
            .send("checking credentials", "", true, &|c, base| {
                Ok(c.get(format!("{base}/v2/")))
            })
            .await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            let m = explain(resp).await;
            Err(self.failed("checking credentials", m))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into())
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(r#"bearer realm=http://x/t"#),
            Some(Challenge::Bearer {
                realm: "http://x/t".into(),
                service: None
            })
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge("Bearer service=x"), None);
    }

    #[test]
    fn retry_after_seconds() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(RETRY_AFTER, "99999".parse().unwrap());
        assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER));
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn retry_after_http_date() {
        let now = chrono::DateTime::parse_from_rfc3339("1994-11-06T08:49:30Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let seven = Some(Duration::from_secs(7));
        // RFC 9110's three forms of the same instant
        for v in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(retry_after_value(v, now), seven, "{v}");
        }
        // a date in the past: retry now; far ahead: the cap; not a date: ignored
        assert_eq!(
            retry_after_value("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            retry_after_value("Mon, 07 Nov 1994 08:49:37 GMT", now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(
            retry_after_value("Sun, 06 Nov 1994 08:49:37 CET", now),
            None
        );
        assert_eq!(retry_after_value("-1", now), None);
        // through the header, against the real clock
        let mut h = HeaderMap::new();
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(30))
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        h.insert(RETRY_AFTER, soon.parse().unwrap());
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        );
    }
}
