//! Containerfile engine: parser, stage plan and an executor over `builder` primitives.
//!
//! ```text
//!  &str ─▶ parser::parse ─▶ Containerfile { directives, nodes: Vec<Node> }
//!             └─▶ instruction::steps / Containerfile::steps ─▶ Vec<Step { Instruction, … }>
//!                    └─▶ Step::expand(env)  (shell::Lexer; args::Args holds the ARG scope)
//! ```
#![warn(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod args;
pub mod instruction;
pub mod parser;
pub mod shell;
