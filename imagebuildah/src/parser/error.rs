//! Parse errors: each one names the file, the line and (where there is one) the instruction.
use std::fmt;

use super::Location;
use crate::shell::ExpandError;

/// A Containerfile could not be parsed, or an instruction could not be expanded.
///
/// Displays as `Containerfile:7: unknown instruction: FOO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Where the offending instruction (or line) is.
    pub location: Location,
    /// The instruction's original text, as written (continuations joined); empty when the
    /// error is not about one instruction (e.g. a directive).
    pub instruction: String,
    /// What is wrong (boxed: errors travel through `Result`s on every path).
    pub kind: Box<ParseErrorKind>,
}

/// buildah's list of COPY/ADD flags (its bats tests match on it), plus the ones hod
/// also takes; empty for other instructions.
fn supported_note(instruction: &str) -> &'static str {
    match instruction {
        "COPY" => {
            " (COPY only supports the --chmod=<permissions> --chown=<uid:gid> \
             --from=<image|stage> and the --exclude=<pattern> flags, plus --link and --parents)"
        }
        "ADD" => {
            " (ADD only supports the --chmod=<permissions>, --chown=<uid:gid>, and \
             --checksum=<checksum> --exclude=<pattern> flags, plus --link, --keep-git-dir and \
             --unpack)"
        }
        _ => "",
    }
}

impl ParseError {
    /// An error at `location` about the instruction `instruction`.
    pub fn new(location: Location, instruction: impl Into<String>, kind: ParseErrorKind) -> Self {
        ParseError {
            location,
            instruction: instruction.into(),
            kind: Box::new(kind),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.kind)
    }
}

impl std::error::Error for ParseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        None
    }
}

/// The kinds of parse error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The keyword is not a Containerfile instruction.
    #[error("unknown instruction: {0}")]
    UnknownInstruction(String),
    /// A `--flag` the instruction does not take. For COPY and ADD the message also
    /// carries buildah's wording ("COPY only supports the …"), which its tests look for.
    #[error("unknown flag: --{flag}{}", supported_note(instruction))]
    UnknownFlag {
        /// The instruction keyword (upper case).
        instruction: String,
        /// The flag name without `--`.
        flag: String,
    },
    /// A flag that takes a value was given none (`--chown`).
    #[error("missing a value on flag: --{flag}{}", supported_note(instruction))]
    MissingFlagValue {
        /// The instruction keyword (upper case).
        instruction: String,
        /// The flag name without `--`.
        flag: String,
    },
    /// A single-valued flag was given twice.
    #[error("duplicate flag specified: --{0}")]
    DuplicateFlag(String),
    /// A flag's value is not valid.
    #[error("unsupported value {value:?} for --{flag}: {reason}")]
    InvalidFlagValue {
        /// The flag name without `--`.
        flag: String,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// A `RUN --mount=` specification is not valid.
    #[error("invalid mount {spec:?}: {reason}")]
    InvalidMount {
        /// The specification as written.
        spec: String,
        /// Why it is refused.
        reason: String,
    },
    /// The instruction's arguments are wrong: "FROM requires either one or three arguments".
    #[error("{0}")]
    Arguments(String),
    /// A JSON array with something other than strings in it.
    #[error("when using JSON array syntax, arrays must be comprised of strings only")]
    JsonNotStringArray,
    /// A heredoc whose terminator never came.
    #[error("unterminated heredoc {0}")]
    UnterminatedHeredoc(String),
    /// A parser directive (`# escape=`, `# syntax=`, `# check=`) is wrong.
    #[error("{0}")]
    Directive(String),
    /// ONBUILD of ONBUILD, FROM or MAINTAINER.
    #[error("{0} isn't allowed as an ONBUILD trigger")]
    OnBuildTrigger(String),
    /// A variable expansion failed.
    #[error("{0}")]
    Expand(#[from] ExpandError),
}
