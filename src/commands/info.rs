//! `hod info`: host and store information, as JSON (buildah's shape) or a Go template.
use std::io::IsTerminal;

use serde_json::{json, Map, Value};

use crate::ctx::Ctx;
use crate::output;
use crate::template::Template;

/// `hod info [options]`
#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// Also show debugging information.
    #[arg(short, long)]
    pub debug: bool,
    /// Format the output with a Go template (e.g. '{{.store.GraphDriverName}}').
    #[arg(long, value_name = "TEMPLATE")]
    pub format: Option<String>,
}

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// `/etc/os-release` `ID` and `VERSION_ID`.
pub fn os_release(text: &str) -> (String, String) {
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_else(|| "unknown".to_string())
    };
    (get("ID"), get("VERSION_ID"))
}

/// `MemTotal:  123 kB` → bytes.
pub fn meminfo(text: &str, key: &str) -> i64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .and_then(|v| v.split_whitespace().next()?.parse::<i64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// The OCI runtime `run --runtime` would use by default, as buildah reports it:
/// `BUILDAH_RUNTIME` when set and non-empty, else `runc`.
fn oci_runtime(env: Option<std::ffi::OsString>) -> String {
    env.map(|v| v.to_string_lossy().into_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "runc".to_string())
}

fn host_info() -> Value {
    let mem = read_trim("/proc/meminfo").unwrap_or_default();
    let (dist, ver) = os_release(&read_trim("/etc/os-release").unwrap_or_default());
    let uptime = read_trim("/proc/uptime")
        .and_then(|u| u.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    let secs = uptime as u64;
    let cgroup2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    // A normal user, also as root of its user namespace.
    let rootless = builder::sys::userns::identity().is_rootless();
    json!({
        "os": std::env::consts::OS,
        "arch": builder::image::config::host_arch(),
        "variant": "",
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "rootless": rootless,
        "CgroupVersion": if cgroup2 { "v2" } else { "v1" },
        "OCIRuntime": oci_runtime(std::env::var_os("BUILDAH_RUNTIME")),
        "MemTotal": meminfo(&mem, "MemTotal"),
        "MemFree": meminfo(&mem, "MemFree"),
        "SwapTotal": meminfo(&mem, "SwapTotal"),
        "SwapFree": meminfo(&mem, "SwapFree"),
        "Distribution": {"distribution": dist, "version": ver},
        "kernel": read_trim("/proc/sys/kernel/osrelease").unwrap_or_default(),
        "uptime": format!("{}h {}m {}.{:02}s", secs / 3600, (secs % 3600) / 60, secs % 60, ((uptime.fract()) * 100.0) as u64),
        "hostname": read_trim("/proc/sys/kernel/hostname").unwrap_or_default(),
    })
}

/// Gather and print.
pub fn run(a: InfoArgs, ctx: &Ctx) -> anyhow::Result<i32> {
    let store = ctx.store()?;
    let o = store.options();
    let mut info = Map::new();
    info.insert("host".into(), host_info());
    info.insert(
        "store".into(),
        json!({
            "GraphRoot": o.root.display().to_string(),
            "RunRoot": o.run_root.display().to_string(),
            "GraphImageStore": "",
            "GraphTransientStore": false,
            "GraphDriverName": o.driver.name(),
            "GraphOptions": o.driver_options,
            "GraphStatus": {},
            "ImageStore": {"number": store.images()?.len()},
            "ContainerStore": {"number": store.containers()?.len()},
        }),
    );
    if a.debug {
        info.insert("debug".into(), json!({"compiler": "rustc", "go version": "", "buildah version": env!("CARGO_PKG_VERSION"), "git commit": ""}));
    }
    let info = Value::Object(info);
    let tty = std::io::stdout().is_terminal();
    if let Some(fmt) = &a.format {
        if !fmt.contains("{{") {
            anyhow::bail!("invalid format provided: {fmt}");
        }
        let t = Template::parse(fmt).map_err(|e| anyhow::anyhow!("template parsing error: {e}"))?;
        let mut out = t.render(&info)?;
        if tty {
            out.push('\n');
        }
        output::print(&out)?;
        return Ok(0);
    }
    output::println(&output::json_pretty(&info)?)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parsers() {
        assert_eq!(
            super::os_release("NAME=\"Debian\"\nID=debian\nVERSION_ID=\"13\"\n"),
            ("debian".to_string(), "13".to_string())
        );
        assert_eq!(
            super::os_release(""),
            ("unknown".to_string(), "unknown".to_string())
        );
        assert_eq!(
            super::meminfo("MemTotal:       1000 kB\nMemFree: 5 kB\n", "MemFree"),
            5120
        );
    }

    #[test]
    fn oci_runtime_follows_buildah_runtime() {
        let cases: [(Option<&str>, &str); 4] = [
            (None, "runc"),
            (Some(""), "runc"),
            (Some("crun"), "crun"),
            (Some("/usr/local/bin/runc"), "/usr/local/bin/runc"),
        ];
        for (env, want) in cases {
            assert_eq!(super::oci_runtime(env.map(Into::into)), want, "{env:?}");
        }
    }
}
