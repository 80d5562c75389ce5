//! hod: a daemonless, scriptable OCI container image builder.
fn main() {
    builder::sys::reexec::dispatch();
}
