//! Containerfile engine: parser, stage plan and an executor over `builder` primitives.
//!
//! ```text
//!  &str ─▶ parser::parse ─▶ Containerfile { directives, nodes: Vec<Node> }
//!             └─▶ instruction::steps / Containerfile::steps ─▶ Vec<Step { Instruction, … }>
//!                    └─▶ Step::expand(env)  (shell::Lexer; args::Args holds the ARG scope)
//! ```
//!
//! [`onbuild`] runs an image's ONBUILD triggers for `hod from` (buildah `from`'s handling); a
//! build takes them with `Builder::take_onbuild_triggers` and parses them as instructions.
#![warn(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod args;
pub mod instruction;
pub mod onbuild;
pub mod parser;
pub mod shell;
