//! hod: a daemonless, scriptable OCI container image builder.
mod commands;
mod ctx;

fn main() {
    builder::sys::reexec::dispatch();
}
