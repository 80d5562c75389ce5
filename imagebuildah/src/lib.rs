//! Containerfile engine: parser, stage plan and an executor over `builder` primitives.
//!
//! ```text
//!  &str ─▶ parser::parse ─▶ Containerfile { directives, nodes: Vec<Node> }
//!             └─▶ instruction::steps / Containerfile::steps ─▶ Vec<Step { Instruction, … }>
//!                    └─▶ Step::expand(env)  (shell::Lexer; args::Args holds the ARG scope)
//!  build::build(store, &BuildOptions, reporter)
//!     ├─ include (Containerfile.in: cpp or the built-in #include)
//!     ├─ stage::Plan (stages, --target, the stages it needs)
//!     ├─ schedule (--jobs: each stage once the stages it uses are done, N at once)
//!     └─ executor (one stage = one working container; Builder::{new_from, run, copy,
//!                  commit} and the config setters, the same calls the CLI makes)
//! ```
//!
//! [`onbuild`] runs an image's ONBUILD triggers for `hod from` (buildah `from`'s handling); a
//! build takes them with `Builder::take_onbuild_triggers` and parses them as instructions.
#![warn(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod args;
pub mod build;
pub mod cache;
pub mod digests;
pub mod error;
pub mod executor;
pub mod include;
pub mod instruction;
pub mod onbuild;
pub mod options;
pub mod parser;
pub mod remote;
pub mod rusage;
pub mod schedule;
pub mod shell;
pub mod ssh;
pub mod stage;

pub use build::{build, BuildOutput};
pub use error::BuildError;
pub use options::BuildOptions;

/// Where a build's own lines go: `STEP n/m: …`, `COMMIT`, `--> id`, `Successfully tagged`
/// (buildah prints them on stdout), besides the primitives' progress and warnings.
pub trait BuildReporter: builder::report::Reporter {
    /// One line of the build's output.
    fn step(&self, line: &str);
}
