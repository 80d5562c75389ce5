//! The one tokio runtime of hod, created the first time a registry is used (so never
//! before `main`'s namespace re-exec, and never for local-only commands), and the
//! synchronous facade over it: [`block_on`].
use std::future::Future;
use std::sync::OnceLock;

use crate::error::{Error, Result};

static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

/// The runtime, built on first use: two workers (hod is mostly waiting on the network).
fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("hod-registry")
        .enable_all()
        .build()
        .map_err(|e| Error::invalid(format!("starting the registry client runtime: {e}")))?;
    // A concurrent first use may have won: its runtime is used and ours dropped.
    let _ = RUNTIME.set(rt);
    Ok(RUNTIME.get().expect("set above"))
}

/// Run `f` to completion on the registry runtime from synchronous code.
pub(crate) fn block_on<F: Future>(f: F) -> Result<F::Output> {
    Ok(runtime()?.block_on(f))
}

/// Start `f` in the background on the registry runtime.
pub(crate) fn spawn<F>(f: F) -> Result<tokio::task::JoinHandle<F::Output>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Ok(runtime()?.spawn(f))
}
