//! Fuzz target: the Containerfile parser (`imagebuildah::parser::parse`), the typed
//! instructions built from its nodes (`Containerfile::steps`), variable expansion
//! (`Step::expand`, the shell-word lexer) and the stage plan (`stage::from_steps`).
//!
//! Invariant: arbitrary text gives a result or a `ParseError`, never a panic.
#![no_main]

use imagebuildah::{parser, stage};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
    let src = String::from_utf8_lossy(data);
    let Ok(file) = parser::parse("Containerfile", &src) else {
        return;
    };
    for n in &file.nodes {
        let _ = n.dump();
    }
    let Ok(steps) = file.steps() else {
        return;
    };
    let env: BTreeMap<String, String> = [
        ("A", "a"),
        ("EMPTY", ""),
        ("SPACES", "x y  z"),
        ("GLOB", "*?[a]"),
        ("Q", "'\"\\$"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for s in &steps {
        let _ = s.expand(&env);
        let _ = s.expand_with_matches(&env);
        let _ = s.instruction.keyword();
    }
    let _ = stage::from_steps(steps);
});
