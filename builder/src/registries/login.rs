//! `hod login` / `hod logout`, as containers/common's `pkg/auth` does them for buildah.
//!
//! ```text
//!  login(ctx, opts, io)
//!    key = REGISTRY or host/ns/repo (http[s]:// URLs reduced to host[:port])
//!    --get-login: auth::lookup(key) ─▶ io.say(user) | "not logged into KEY"
//!    user/password: -u/-p, --password-stdin (io.read_stdin), else io.ask / io.ask_secret
//!      (no -u/-p and stored credentials: try them first)
//!    check(Endpoint{host, creds, TLS per registries.conf/certs.d/--tls-verify})
//!      ok ─▶ auth::store(key) ─▶ "Login Succeeded!"
//!      401 ─▶ logging into "KEY": invalid username/password
//!  logout(ctx, opts, io): auth::erase(key) | auth::erase_all ─▶ "Removed login credentials for KEY"
//! ```
//!
//! The library never prints: user-facing lines and prompts go through [`LoginIo`], which the
//! CLI implements on the terminal and tests implement in memory.
use crate::error::{Error, Result};
use crate::options::{Credentials, RegistryContext};

use super::{auth, certs, conf, Endpoint, SysEnv};

/// The user-facing side of login and logout.
pub trait LoginIo {
    /// A line of output (stdout in the CLI).
    fn say(&mut self, line: &str);
    /// Show `prompt` (no newline) and read one line.
    fn ask(&mut self, prompt: &str) -> Result<String>;
    /// Show `prompt` and read a secret without echo.
    fn ask_secret(&mut self, prompt: &str) -> Result<String>;
    /// All of stdin (`--password-stdin`).
    fn read_stdin(&mut self) -> Result<String>;
}

/// `hod login` options.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct LoginOptions {
    /// The registry (`host[:port]`, or `host/ns/repo` for per-repository credentials).
    pub registry: Option<String>,
    /// `-u`.
    pub username: Option<String>,
    /// `-p`.
    pub password: Option<String>,
    /// `--password-stdin`.
    pub password_stdin: bool,
    /// `--get-login`: print the stored user name instead.
    pub get_login: bool,
    /// `-v`: say where the credentials were stored.
    pub verbose: bool,
}

/// `hod logout` options.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct LogoutOptions {
    /// The registry (or `host/ns/repo` key).
    pub registry: Option<String>,
    /// `--all`.
    pub all: bool,
}

/// What logout did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoutOutcome {
    /// The credentials of this key were removed.
    Removed(String),
    /// Every credential was removed.
    RemovedAll,
}

/// How a credential check failed.
#[derive(Debug)]
pub enum CheckError {
    /// The registry refused the credentials.
    Unauthorized(Error),
    /// Anything else (unreachable, TLS, …).
    Other(Error),
}

/// Turn the argument into a credentials key and its registry (containers/common's
/// `parseCredentialsKey` with repositories accepted).
pub fn parse_key(arg: &str) -> Result<(String, String)> {
    let key = if let Some(rest) = arg
        .strip_prefix("https://")
        .or_else(|| arg.strip_prefix("http://"))
    {
        rest.split('/').next().unwrap_or(rest).to_string()
    } else {
        arg.to_string()
    };
    let registry = key.split('/').next().unwrap_or(&key).to_string();
    if registry == key {
        return Ok((key, registry));
    }
    let named = crate::reference::parse_named(&key)
        .map_err(|e| Error::invalid(format!("parse reference from {key:?}: {e}")))?;
    if named.tag.is_some() || named.digest.is_some() {
        return Err(Error::invalid(format!(
            "reference {:?} contains tag or digest",
            named.to_string()
        )));
    }
    Ok((key, registry))
}

/// The endpoint a login to `registry` talks to.
pub fn login_endpoint(
    ctx: &RegistryContext,
    env: &SysEnv,
    conf: &conf::RegistriesConf,
    registry: &str,
    creds: Credentials,
) -> Result<Endpoint> {
    let mut insecure = false;
    if let Some(reg) = conf.find_registry(registry) {
        if reg.blocked {
            return Err(super::blocked_error(conf, reg));
        }
        insecure = reg.insecure;
    }
    let mut ep = Endpoint::new(super::api_host(registry), "");
    ep.insecure = match ctx.tls_verify {
        Some(v) => !v,
        None => insecure,
    };
    let tls = certs::for_host(ctx, env, registry)?;
    ep.ca_certs = tls.ca_certs;
    ep.client_cert = tls.client_pairs.into_iter().next();
    ep.credentials = Some(creds);
    Ok(ep)
}

/// `hod login` against the `docker://` transport's credential check.
pub fn login(ctx: &RegistryContext, opts: &LoginOptions, io: &mut dyn LoginIo) -> Result<()> {
    login_with(ctx, &SysEnv::from_process(), opts, io, &transport_check)
}

fn transport_check(ep: &Endpoint) -> std::result::Result<(), CheckError> {
    crate::transport::registry::check_login(ep).map_err(|e| {
        if is_unauthorized(&e) {
            CheckError::Unauthorized(e)
        } else {
            CheckError::Other(e)
        }
    })
}

fn is_unauthorized(e: &Error) -> bool {
    match e {
        Error::Registry(crate::transport::registry::RegistryError::Unauthorized { .. }) => true,
        Error::Context { source, .. } => is_unauthorized(source),
        _ => false,
    }
}

/// [`login`] with an explicit environment and credential check.
pub fn login_with(
    ctx: &RegistryContext,
    env: &SysEnv,
    opts: &LoginOptions,
    io: &mut dyn LoginIo,
    check: &dyn Fn(&Endpoint) -> std::result::Result<(), CheckError>,
) -> Result<()> {
    let Some(arg) = opts.registry.as_deref() else {
        return Err(Error::invalid("please specify a registry to login to"));
    };
    let (key, registry) = parse_key(arg)?;
    let conf = conf::load(ctx, env)?;
    let helpers = conf.credential_helpers();
    let existing = auth::lookup(ctx, env, &helpers, &key)
        .map_err(|e| e.context("get credentials"))?
        .unwrap_or_default();
    if opts.get_login {
        if existing.username.is_empty() {
            return Err(Error::invalid(format!("not logged into {key}")));
        }
        io.say(&existing.username);
        return Ok(());
    }
    if existing.username == auth::TOKEN_USER {
        return Err(Error::invalid(
            "currently logged in, auth file contains an Identity token",
        ));
    }
    let mut password = opts.password.clone().unwrap_or_default();
    if opts.password_stdin {
        if !password.is_empty() {
            return Err(Error::invalid(
                "Can't specify both --password-stdin and --password",
            ));
        }
        if opts.username.as_deref().unwrap_or("").is_empty() {
            return Err(Error::invalid(
                "Must provide --username with --password-stdin",
            ));
        }
        // Lines are joined without their line ends, as containers/common's scanner does.
        password = io.read_stdin()?.lines().collect();
    }
    let username = opts.username.clone().unwrap_or_default();
    if username.is_empty()
        && password.is_empty()
        && !existing.username.is_empty()
        && !existing.password.is_empty()
    {
        io.say(&format!(
            "Authenticating with existing credentials for {key}"
        ));
        let ep = login_endpoint(ctx, env, &conf, &registry, existing.clone())?;
        if check(&ep).is_ok() {
            io.say(&format!(
                "Existing credentials are valid. Already logged in to {registry}"
            ));
            return Ok(());
        }
        io.say("Existing credentials are invalid, please enter valid username and password");
    }
    let username = if username.is_empty() {
        let prompt = if existing.username.is_empty() {
            "Username: ".to_string()
        } else {
            format!("Username ({}): ", existing.username)
        };
        let u = io
            .ask(&prompt)
            .map_err(|e| e.context("getting username and password: reading username"))?;
        if u.trim().is_empty() {
            existing.username.clone()
        } else {
            u.trim().to_string()
        }
    } else {
        username.trim().to_string()
    };
    if password.is_empty() {
        password = io
            .ask_secret("Password: ")
            .map_err(|e| e.context("getting username and password: reading password"))?;
    }
    let creds = Credentials { username, password };
    let ep = login_endpoint(ctx, env, &conf, &registry, creds.clone())?;
    match check(&ep) {
        Ok(()) => {
            let desc = auth::store(ctx, env, &helpers, &key, &creds)?;
            if opts.verbose {
                io.say(&format!("Used:  {desc}"));
            }
            io.say("Login Succeeded!");
            Ok(())
        }
        Err(CheckError::Unauthorized(e)) => {
            tracing::debug!("error logging into {key:?}: {e}");
            Err(Error::invalid(format!(
                "logging into {key:?}: invalid username/password"
            )))
        }
        Err(CheckError::Other(e)) => Err(e.context(format!("authenticating creds for {key:?}"))),
    }
}

/// Read one line from stdin without echo when it is a terminal (`Password: `), else a plain
/// line. The line end is dropped; end of input is an error ("EOF").
pub fn read_secret_line() -> Result<String> {
    use std::io::BufRead as _;
    let stdin = std::io::stdin();
    let saved = rustix::termios::tcgetattr(&stdin).ok();
    if let Some(saved) = &saved {
        let mut quiet = saved.clone();
        quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &quiet);
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(saved) = &saved {
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, saved);
    }
    match read {
        Ok(0) => Err(Error::invalid("EOF")),
        Ok(_) => Ok(line.trim_end_matches(['\n', '\r']).to_string()),
        Err(e) => Err(Error::invalid(e.to_string())),
    }
}

/// `hod logout`.
pub fn logout(ctx: &RegistryContext, opts: &LogoutOptions) -> Result<LogoutOutcome> {
    logout_in(ctx, &SysEnv::from_process(), opts)
}

/// [`logout`] with an explicit environment.
pub fn logout_in(
    ctx: &RegistryContext,
    env: &SysEnv,
    opts: &LogoutOptions,
) -> Result<LogoutOutcome> {
    auth::check_auth_file(ctx)?;
    let conf = conf::load(ctx, env)?;
    let helpers = conf.credential_helpers();
    if opts.all {
        if opts.registry.is_some() {
            return Err(Error::invalid("--all takes no arguments"));
        }
        auth::erase_all(ctx, env, &helpers)?;
        return Ok(LogoutOutcome::RemovedAll);
    }
    let Some(arg) = opts.registry.as_deref() else {
        return Err(Error::invalid("registry must be given"));
    };
    let (key, _registry) = parse_key(arg)?;
    if auth::erase(ctx, env, &helpers, &key)
        .map_err(|e| e.context(format!("logging out of {key:?}")))?
    {
        Ok(LogoutOutcome::Removed(key))
    } else {
        Err(Error::invalid(format!("not logged into {key}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::path::Path;

    #[derive(Default)]
    struct FakeIo {
        said: Vec<String>,
        answers: Vec<String>,
        stdin: String,
    }
    impl LoginIo for FakeIo {
        fn say(&mut self, line: &str) {
            self.said.push(line.to_string());
        }
        fn ask(&mut self, prompt: &str) -> Result<String> {
            self.said.push(prompt.to_string());
            if self.answers.is_empty() {
                return Err(Error::invalid("EOF"));
            }
            Ok(self.answers.remove(0))
        }
        fn ask_secret(&mut self, prompt: &str) -> Result<String> {
            self.ask(prompt)
        }
        fn read_stdin(&mut self) -> Result<String> {
            Ok(self.stdin.clone())
        }
    }

    fn setup(t: &Path) -> (RegistryContext, SysEnv) {
        let env = SysEnv {
            home: t.join("home"),
            root: t.to_path_buf(),
            uid: 1000,
            ..SysEnv::default()
        };
        let ctx = RegistryContext {
            auth_file: Some(t.join("auth.json")),
            ..RegistryContext::default()
        };
        (ctx, env)
    }

    /// A registry that accepts only u/pw and records the endpoints it saw.
    fn registry(
        seen: &RefCell<Vec<Endpoint>>,
    ) -> impl Fn(&Endpoint) -> std::result::Result<(), CheckError> + '_ {
        move |ep: &Endpoint| {
            seen.borrow_mut().push(ep.clone());
            let c = ep.credentials.clone().unwrap_or_default();
            if c.username == "u" && c.password == "pw" {
                Ok(())
            } else {
                Err(CheckError::Unauthorized(Error::invalid("401")))
            }
        }
    }

    type KeyCase<'a> = (&'a str, std::result::Result<(&'a str, &'a str), &'a str>);

    #[test]
    fn keys() {
        let table: &[KeyCase] = &[
            ("quay.io", Ok(("quay.io", "quay.io"))),
            ("localhost:5000", Ok(("localhost:5000", "localhost:5000"))),
            ("https://quay.io/v2/", Ok(("quay.io", "quay.io"))),
            ("quay.io/ns/repo", Ok(("quay.io/ns/repo", "quay.io"))),
            ("quay.io/ns:tag", Err("contains tag or digest")),
            ("quay.io/NS", Err("parse reference")),
        ];
        for (arg, want) in table {
            match (parse_key(arg), want) {
                (Ok((k, r)), Ok((wk, wr))) => assert_eq!((k.as_str(), r.as_str()), (*wk, *wr)),
                (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{arg}: {e}"),
                (got, _) => panic!("{arg}: {got:?}"),
            }
        }
    }

    #[test]
    fn login_flow() {
        let t = tempfile::tempdir().unwrap();
        let (ctx, env) = setup(t.path());
        let seen = RefCell::new(Vec::new());
        let check = registry(&seen);
        let opts = |u: Option<&str>, p: Option<&str>| LoginOptions {
            registry: Some("127.0.0.1:5000".into()),
            username: u.map(String::from),
            password: p.map(String::from),
            ..LoginOptions::default()
        };
        // Wrong password: buildah's message, nothing stored.
        let mut io = FakeIo::default();
        let e = login_with(&ctx, &env, &opts(Some("u"), Some("bad")), &mut io, &check).unwrap_err();
        assert_eq!(
            e.to_string(),
            "logging into \"127.0.0.1:5000\": invalid username/password"
        );
        assert!(!t.path().join("auth.json").exists());
        // Right password.
        let mut io = FakeIo::default();
        login_with(&ctx, &env, &opts(Some("u"), Some("pw")), &mut io, &check).unwrap();
        assert_eq!(io.said, vec!["Login Succeeded!"]);
        let ep = seen.borrow().last().cloned().unwrap();
        assert_eq!(ep.host, "127.0.0.1:5000");
        assert!(!ep.insecure);
        // --get-login.
        let mut io = FakeIo::default();
        let get = LoginOptions {
            get_login: true,
            ..opts(None, None)
        };
        login_with(&ctx, &env, &get, &mut io, &check).unwrap();
        assert_eq!(io.said, vec!["u"]);
        // Stored credentials are tried first.
        let mut io = FakeIo::default();
        login_with(&ctx, &env, &opts(None, None), &mut io, &check).unwrap();
        assert_eq!(
            io.said[1],
            "Existing credentials are valid. Already logged in to 127.0.0.1:5000"
        );
        // Prompts, with the stored user as the default; --password-stdin rules.
        let mut io = FakeIo {
            answers: vec!["\n".into(), "pw".into()],
            ..FakeIo::default()
        };
        login_with(&ctx, &env, &opts(None, Some("x")), &mut io, &check).unwrap_err();
        let mut io = FakeIo {
            answers: vec!["".into()],
            ..FakeIo::default()
        };
        let mut o = opts(None, Some("pw"));
        o.verbose = true;
        login_with(&ctx, &env, &o, &mut io, &check).unwrap();
        assert_eq!(io.said[0], "Username (u): ");
        assert!(io.said[1].starts_with("Used:  ") && io.said[1].ends_with("auth.json"));
        let mut o = opts(Some("u"), None);
        o.password_stdin = true;
        let mut io = FakeIo {
            stdin: "pw\n".into(),
            ..FakeIo::default()
        };
        login_with(&ctx, &env, &o, &mut io, &check).unwrap();
        o.password = Some("pw".into());
        let e = login_with(&ctx, &env, &o, &mut FakeIo::default(), &check).unwrap_err();
        assert!(e.to_string().contains("Can't specify both"));
        o.password = None;
        o.username = None;
        let e = login_with(&ctx, &env, &o, &mut FakeIo::default(), &check).unwrap_err();
        assert!(e.to_string().contains("Must provide --username"));
        // No registry.
        let e = login_with(
            &ctx,
            &env,
            &LoginOptions::default(),
            &mut FakeIo::default(),
            &check,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "please specify a registry to login to");
        // Unreachable: other errors keep their cause.
        let down = |_: &Endpoint| {
            Err(CheckError::Other(Error::invalid(
                "pinging container registry x: refused",
            )))
        };
        let e = login_with(
            &ctx,
            &env,
            &opts(Some("u"), Some("pw")),
            &mut FakeIo::default(),
            &down,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "authenticating creds for \"127.0.0.1:5000\"");
    }

    #[test]
    fn login_endpoint_tls_and_blocked() {
        let t = tempfile::tempdir().unwrap();
        let (mut ctx, env) = setup(t.path());
        std::fs::write(
            t.path().join("r.conf"),
            "[[registry]]\nlocation = \"insecure.io\"\ninsecure = true\n[[registry]]\nlocation = \"blocked.io\"\nblocked = true\n",
        )
        .unwrap();
        ctx.registries_conf = Some(t.path().join("r.conf"));
        ctx.registries_conf_dir = Some(t.path().join("none"));
        let conf = conf::load(&ctx, &env).unwrap();
        let c = Credentials::default();
        assert!(
            login_endpoint(&ctx, &env, &conf, "insecure.io", c.clone())
                .unwrap()
                .insecure
        );
        assert!(
            !login_endpoint(&ctx, &env, &conf, "other.io", c.clone())
                .unwrap()
                .insecure
        );
        assert_eq!(
            login_endpoint(&ctx, &env, &conf, "docker.io", c.clone())
                .unwrap()
                .host,
            "registry-1.docker.io"
        );
        let e = login_endpoint(&ctx, &env, &conf, "blocked.io", c.clone()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("registry blocked.io is blocked in "),
            "{e}"
        );
        ctx.tls_verify = Some(true);
        assert!(
            !login_endpoint(&ctx, &env, &conf, "insecure.io", c.clone())
                .unwrap()
                .insecure
        );
        ctx.tls_verify = Some(false);
        assert!(
            login_endpoint(&ctx, &env, &conf, "other.io", c)
                .unwrap()
                .insecure
        );
    }

    #[test]
    fn logout_flow() {
        let t = tempfile::tempdir().unwrap();
        let (ctx, env) = setup(t.path());
        let lo = |r: Option<&str>, all: bool| LogoutOptions {
            registry: r.map(String::from),
            all,
        };
        let e = logout_in(&ctx, &env, &lo(Some("a.io"), false))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!(
                "checking authfile: stat {}: no such file or directory",
                t.path().join("auth.json").display()
            )
        );
        std::fs::write(t.path().join("auth.json"), r#"{"auths":{"a.io":{"auth":"dTpw"},"b.io/ns":{"auth":"dTpw"},"c.io":{"auth":"dTpw"}}}"#).unwrap();
        assert_eq!(
            logout_in(&ctx, &env, &lo(Some("a.io"), false)).unwrap(),
            LogoutOutcome::Removed("a.io".into())
        );
        assert_eq!(
            logout_in(&ctx, &env, &lo(Some("a.io"), false))
                .unwrap_err()
                .to_string(),
            "not logged into a.io"
        );
        assert_eq!(
            logout_in(&ctx, &env, &lo(Some("b.io"), false))
                .unwrap_err()
                .to_string(),
            "not logged into b.io"
        );
        assert!(logout_in(&ctx, &env, &lo(Some("b.io/ns"), false)).is_ok());
        assert_eq!(
            logout_in(&ctx, &env, &lo(None, false))
                .unwrap_err()
                .to_string(),
            "registry must be given"
        );
        assert_eq!(
            logout_in(&ctx, &env, &lo(Some("c.io"), true))
                .unwrap_err()
                .to_string(),
            "--all takes no arguments"
        );
        assert_eq!(
            logout_in(&ctx, &env, &lo(None, true)).unwrap(),
            LogoutOutcome::RemovedAll
        );
        let text = std::fs::read_to_string(t.path().join("auth.json")).unwrap();
        assert_eq!(text, "{\n\t\"auths\": {}\n}");
    }
}
