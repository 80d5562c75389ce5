//! Re-exec'd helpers: hod runs itself (`/proc/self/exe`) with `argv[0]` set to a helper name
//! to do namespace work in a fresh, single-threaded process. `main` calls [`dispatch`] first.

/// If this process was started as one of hod's helpers, run it and exit; otherwise return.
/// Must be called before any thread or async runtime exists.
pub fn dispatch() {}
