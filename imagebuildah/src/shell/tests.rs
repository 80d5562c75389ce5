//! Table tests of the word expander (cases after BuildKit's `envVarTest` and `wordsTest`).
use super::*;

fn env() -> BTreeMap<String, String> {
    [
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("EMPTY", ""),
        ("SPACED", "a  b c"),
        ("PATH", "/usr/local/bin:/usr/bin:/bin"),
        ("FILE", "archive.tar.gz"),
        ("X", "x"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[test]
fn process_word_table() {
    let e = env();
    let cases: &[(&str, &str)] = &[
        ("hello", "hello"),
        ("he'll'o", "hello"),
        (
            "he'llo",
            "ERR unexpected end of statement while looking for matching single-quote",
        ),
        ("he\\'llo", "he'llo"),
        (
            "he\\\\'llo",
            "ERR unexpected end of statement while looking for matching single-quote",
        ),
        ("abc\\'def", "abc'def"),
        ("\"abc\\\"def\"", "abc\"def"),
        ("\"abc\\x\"", "abc\\x"),
        ("'abc\\\"def'", "abc\\\"def"),
        ("\"he'llo\"", "he'llo"),
        (
            "\"unterminated",
            "ERR unexpected end of statement while looking for matching double-quote",
        ),
        ("hell\\o", "hello"),
        ("hello\\", "hello"),
        ("$PWD", "/home"),
        ("$PWD/x", "/home/x"),
        ("${PWD}", "/home"),
        ("${PWD}x", "/homex"),
        ("$PWDx", ""),
        ("\\$PWD", "$PWD"),
        ("'$PWD'", "$PWD"),
        ("\"$PWD\"", "/home"),
        ("\"\\$PWD\"", "$PWD"),
        ("$", "$"),
        ("a$", "a$"),
        ("$.", "$."),
        ("${", "ERR syntax error: missing '}'"),
        ("${PWD", "ERR syntax error: missing '}'"),
        ("${}", "ERR syntax error: bad substitution"),
        ("${:x}", "ERR syntax error: bad substitution"),
        ("${{x}", "ERR syntax error: bad substitution"),
        ("${PWD!x}", "ERR unsupported modifier (!) in substitution"),
        ("${PWD:#x}", "ERR unsupported modifier (:#) in substitution"),
        (
            "${PWD:/x/y}",
            "ERR unsupported modifier (:/) in substitution",
        ),
        ("${PWD:=x}", "ERR unsupported modifier (:=) in substitution"),
        ("$KOREAN", "한국어"),
        ("한국어$SHELL", "한국어bash"),
        ("${UNSET:-def}", "def"),
        ("${EMPTY:-def}", "def"),
        ("${SHELL:-def}", "bash"),
        ("${UNSET-def}", "def"),
        ("${EMPTY-def}", ""),
        ("${UNSET:-${SHELL}}", "bash"),
        ("${UNSET:-'a b'}", "a b"),
        ("${SHELL:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${UNSET:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${UNSET+alt}", ""),
        ("${SHELL:?oops}", "bash"),
        ("${UNSET:?}", "ERR UNSET: is not allowed to be unset"),
        ("${UNSET:?must be set}", "ERR UNSET: must be set"),
        ("${EMPTY:?}", "ERR EMPTY: is not allowed to be empty"),
        ("${EMPTY?}", ""),
        ("${UNSET?need}", "ERR UNSET: need"),
        ("${FILE#*.}", "tar.gz"),
        ("${FILE##*.}", "gz"),
        ("${FILE%.*}", "archive.tar"),
        ("${FILE%%.*}", "archive"),
        ("${FILE#nomatch}", "archive.tar.gz"),
        ("${FILE%\\.gz}", "archive.tar"),
        ("${FILE#[a-c]}", "rchive.tar.gz"),
        ("${FILE#[!a]}", "archive.tar.gz"),
        ("${FILE#?}", "rchive.tar.gz"),
        ("${UNSET#x}", ""),
        ("${PATH/bin/sbin}", "/usr/local/sbin:/usr/bin:/bin"),
        ("${PATH//bin/sbin}", "/usr/local/sbin:/usr/sbin:/sbin"),
        ("${PATH//:/ }", "/usr/local/bin /usr/bin /bin"),
        ("${PATH/\\/usr*:/}", "/bin"),
        ("${PATH/nomatch/x}", "/usr/local/bin:/usr/bin:/bin"),
        ("${X/x}", "ERR syntax error: missing '/' in ${}"),
        ("${UNSET/x/y}", ""),
        ("a <<  EOF", "a <<  EOF"),
        ("${SPACED}", "a  b c"),
        ("\"$SPACED\"", "a  b c"),
        ("$1", ""),
        ("$$", "$$"),
        ("$@ $? $! $*", "$@ $? $! $*"),
        ("${@}${#:-d}${-:+x}${$}", "d"),
        ("$1x", "x"),
        ("a  b", "a  b"),
        ("$X$X", "xx"),
        ("${X}${X:-y}", "xx"),
    ];
    let lx = Lexer::new('\\');
    for (input, want) in cases {
        let got = match lx.process_word(input, &e) {
            Ok(s) => s,
            Err(err) => format!("ERR {err}"),
        };
        assert_eq!(&got, want, "process_word({input:?})");
    }
}

#[test]
fn backtick_escape() {
    let e = env();
    let lx = Lexer::new('`');
    let cases: &[(&str, &str)] = &[
        ("c:\\windows", "c:\\windows"),
        ("a`$PWD", "a$PWD"),
        ("\"`\"q\"", "\"q"),
        ("`$X", "$X"),
        ("$X`", "x"),
    ];
    for (input, want) in cases {
        assert_eq!(lx.process_word(input, &e).unwrap(), *want, "{input:?}");
    }
}

#[test]
fn process_words_table() {
    let e = env();
    let cases: &[(&str, &[&str])] = &[
        ("hello", &["hello"]),
        ("hello world", &["hello", "world"]),
        ("  hello   world  ", &["hello", "world"]),
        ("'hello world'", &["hello world"]),
        ("\"hello world\" x", &["hello world", "x"]),
        ("hello\\ world", &["hello world"]),
        ("$SPACED", &["a", "b", "c"]),
        ("\"$SPACED\"", &["a  b c"]),
        ("x$SPACED", &["xa", "b", "c"]),
        ("''", &[]),
        ("cat <<  EOF > x", &["cat", "<<  EOF", ">", "x"]),
        ("a<b", &["a<b"]),
        ("a '' b", &["a", "b"]),
        ("$EMPTY", &[]),
        ("", &[]),
    ];
    let lx = Lexer::new('\\');
    for (input, want) in cases {
        assert_eq!(
            lx.process_words(input, &e).unwrap(),
            *want,
            "process_words({input:?})"
        );
    }
}

#[test]
fn raw_and_skip_unset() {
    let e = env();
    let raw = Lexer {
        raw_quotes: true,
        raw_escapes: true,
        ..Lexer::new('\\')
    };
    assert_eq!(
        raw.process_word("echo \"$X\" 'y' \\z", &e).unwrap(),
        "echo \"x\" 'y' \\z"
    );
    let skip = Lexer {
        skip_unset: true,
        ..Lexer::new('\\')
    };
    assert_eq!(
        skip.process_word("$UNSET ${UNSET} ${UNSET:-d} $X", &e)
            .unwrap(),
        "$UNSET ${UNSET} ${UNSET:-d} x"
    );
}

#[test]
fn skip_quotes() {
    let e = env();
    let lx = Lexer {
        skip_quotes: true,
        ..Lexer::new('\\')
    };
    assert_eq!(
        lx.process_word("'$X' \"$X\" \\$X", &e).unwrap(),
        "'x' \"x\" $X"
    );
}

#[test]
fn matches_are_recorded() {
    let e = env();
    let (out, names) = Lexer::new('\\')
        .process_word_with_matches("$X ${UNSET:-$SHELL} '$NOT'", &e)
        .unwrap();
    assert_eq!(out, "x bash $NOT");
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["SHELL", "UNSET", "X"]
    );
}

#[test]
fn lookups() {
    let v = vec![
        ("A".to_string(), "1".to_string()),
        ("A".to_string(), "2".to_string()),
    ];
    assert_eq!(process_word("$A", '\\', &v).unwrap(), "2");
    let f = FnLookup(|n: &str| (n == "B").then(|| "b".to_string()));
    let c = Chain(&v, f);
    assert_eq!(process_words("$A $B $C", '\\', &c).unwrap(), ["2", "b"]);
}

/// Nothing panics and nothing hangs on hostile input.
#[test]
fn nasty_inputs() {
    let e = env();
    let mut inputs: Vec<String> = [
        "${",
        "${X",
        "${X:",
        "${X:-",
        "${X#",
        "${X/",
        "${X//",
        "${X/a",
        "${X/a/",
        "$",
        "\\",
        "'",
        "\"",
        "\"\\",
        "${X:?}",
        "${#}",
        "${@}",
        "${0}",
        "${X:",
        "[",
        "${X#[}",
        "${X#[a-}",
        "${X%[!]}",
        "${X/[/]}",
        "${X//}",
        "${X///}",
        "\u{0}",
        "${\u{fffd}}",
        "$\u{1F600}",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    inputs.push("${PATH//*a*a*a*a*a*a*a*a*/x}".into());
    inputs.push("$".repeat(1000));
    inputs.push("${X:-".repeat(200));
    for i in &inputs {
        for lx in [
            Lexer::new('\\'),
            Lexer::new('`'),
            Lexer {
                raw_quotes: true,
                raw_escapes: true,
                skip_unset: true,
                skip_quotes: true,
                escape: '\\',
            },
        ] {
            let _ = lx.process_word(i, &e);
            let _ = lx.process_words(i, &e);
        }
    }
}
