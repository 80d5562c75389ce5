//! Re-exec'd helpers: hod runs itself (`/proc/self/exe`) with [`HELPER_ENV`] naming a helper
//! to do namespace work in a fresh, single-threaded process. `main` calls [`dispatch`] first.
//!
//! | helper    | what it does                                             | input                         |
//! |-----------|----------------------------------------------------------|-------------------------------|
//! | `run`     | the embedded runtime ([`super::container::helper_main`]) | [`PAYLOAD_ENV`] file, fds 3/4 |
//! | `unshare` | user + mount namespace for `hod unshare`                 | argv, fds 3/4                 |
//! | `probe`   | what the environment allows ([`super::probe`])           | argv; the answer is the status |
//!
//! Not a helper but started the same way: a rootless hod re-executed into its user namespace
//! ([`super::userns`]) enters it here and then goes on with `main`.
use std::process::Command;

/// Environment variable naming the helper to run.
pub const HELPER_ENV: &str = "_HOD_REEXEC_HELPER";
/// Environment variable with the path of the helper's JSON payload.
pub const PAYLOAD_ENV: &str = "_HOD_REEXEC_PAYLOAD";

/// A command that runs helper `name` (the caller adds arguments, environment and fds).
pub fn command(name: &str) -> Command {
    let mut cmd = Command::new("/proc/self/exe");
    cmd.env(HELPER_ENV, name);
    cmd
}

/// If this process was started as one of hod's helpers, run it and exit; otherwise return.
/// Must be called before any thread or async runtime exists.
pub fn dispatch() {
    super::userns::enter_child();
    let Some(name) = std::env::var_os(HELPER_ENV) else {
        return;
    };
    // The marker must not leak into the command the helper eventually runs.
    // SAFETY-free: single-threaded at this point (called first thing in main).
    let name = name.to_string_lossy().into_owned();
    let code = match name.as_str() {
        "run" => super::container::helper_main(),
        "unshare" => super::unshare::helper_main(),
        "probe" => super::probe::helper_main(),
        _ => 125,
    };
    std::process::exit(code);
}

/// In test binaries there is no hod `main`: run [`dispatch`] from the ELF initialisers, before
/// the test harness starts any thread, so the builder's own tests can spawn the helpers.
// SAFETY: an `.init_array` entry runs before `main` and before any thread exists; `dispatch`
// only reads the environment and, for a helper, runs it and exits (nothing it uses needs
// Rust's runtime set up beyond what the C runtime has done by then).
#[cfg(test)]
#[allow(unsafe_code)]
#[used]
#[link_section = ".init_array"]
static TEST_DISPATCH: extern "C" fn() = {
    extern "C" fn init() {
        dispatch();
    }
    init
};
