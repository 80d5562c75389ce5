//! Golden-file tests of the Containerfile parser.
//!
//! Each directory of `tests/data/parser/` holds a `Containerfile` and an `expected` dump:
//! for `<case>/`, one S-expression per node (`Node::dump`) followed by its typed
//! instruction; for `<case>-negative/`, the error message. `UPDATE_GOLDEN=1` rewrites the
//! `expected` files from the current output (review the diff before committing).
use std::fs;
use std::path::Path;

use imagebuildah::parser;

fn render(name: &str, src: &str) -> String {
    let file = parser::parse("Containerfile", src);
    let negative = name.ends_with("-negative");
    let result = file.and_then(|f| {
        let steps = f.steps()?;
        let mut out = String::new();
        let dump = f.dump();
        let mut node_lines = dump.lines().peekable();
        // Directive line first, then each node followed by its typed form.
        if let Some(l) = node_lines.peek() {
            if l.starts_with("(directives") {
                out.push_str(l);
                out.push('\n');
                node_lines.next();
            }
        }
        for step in &steps {
            out.push_str(node_lines.next().unwrap_or_default());
            out.push('\n');
            out.push_str(&format!("  => {:?}\n", step.instruction));
        }
        for rest in node_lines {
            out.push_str(rest);
            out.push('\n');
        }
        Ok(out)
    });
    match (negative, result) {
        (false, Ok(out)) => out,
        (true, Err(e)) => format!("{e}\n"),
        (false, Err(e)) => format!("UNEXPECTED ERROR: {e}\n"),
        (true, Ok(out)) => format!("UNEXPECTED SUCCESS:\n{out}"),
    }
}

#[test]
fn golden() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/parser");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut dirs: Vec<_> = fs::read_dir(&root)
        .expect("reading tests/data/parser")
        .map(|e| e.expect("listing tests/data/parser").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 30,
        "the golden corpus has {} cases",
        dirs.len()
    );
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let src = fs::read_to_string(dir.join("Containerfile")).expect("reading Containerfile");
        let got = render(&name, &src);
        let expected_path = dir.join("expected");
        assert!(!got.starts_with("UNEXPECTED"), "{name}: {got}");
        if update {
            fs::write(&expected_path, &got).expect("writing expected");
            continue;
        }
        let want = fs::read_to_string(&expected_path).unwrap_or_default();
        if got != want {
            failures.push(format!("--- {name}: expected\n{want}--- got\n{got}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden case(s) differ (UPDATE_GOLDEN=1 to rewrite):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
