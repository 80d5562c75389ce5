//! `hod version`: version information in buildah's layout.
use serde_json::json;

use crate::ctx::Ctx;
use crate::output;

/// `hod version [--json]`
#[derive(Debug, clap::Args)]
pub struct VersionArgs {
    /// Output JSON.
    #[arg(long)]
    pub json: bool,
}

/// OCI image-spec version hod writes.
pub const IMAGE_SPEC: &str = "1.1.0";
/// OCI runtime-spec version hod generates.
pub const RUNTIME_SPEC: &str = "1.2.0";

/// Print.
pub fn run(a: VersionArgs, _ctx: &Ctx) -> anyhow::Result<i32> {
    let version = env!("CARGO_PKG_VERSION");
    let os_arch = format!(
        "{}/{}",
        std::env::consts::OS,
        builder::image::config::host_arch()
    );
    // buildah prints the Go toolchain here; hod is built with Rust (its declared minimum).
    let rust = format!("rust{}", env!("CARGO_PKG_RUST_VERSION"));
    let fields = [
        ("Version", version.to_string()),
        ("Go Version", rust.clone()),
        ("Image Spec", IMAGE_SPEC.to_string()),
        ("Runtime Spec", RUNTIME_SPEC.to_string()),
        (
            "Git Commit",
            option_env!("HOD_GIT_COMMIT").unwrap_or("").to_string(),
        ),
        ("Built", "Thu Jan  1 00:00:00 1970".to_string()),
        ("OS/Arch", os_arch.clone()),
        ("BuildPlatform", os_arch.clone()),
    ];
    if a.json {
        let v = json!({
            "version": version, "goVersion": rust, "imageSpec": IMAGE_SPEC, "runtimeSpec": RUNTIME_SPEC,
            "gitCommit": option_env!("HOD_GIT_COMMIT").unwrap_or(""), "built": 0, "osArch": os_arch, "buildPlatform": os_arch,
        });
        output::println(&output::json_pretty(&v)?)?;
        return Ok(0);
    }
    let mut out = String::new();
    for (k, v) in fields {
        // Go's Println("Version:        ", v): the padded label, a space, the value.
        out.push_str(&format!("{:<16} {v}\n", format!("{k}:")));
    }
    output::print(&out)?;
    Ok(0)
}
