//! Table tests of typing and per-instruction expansion.
use std::collections::BTreeMap;

use super::*;
use crate::shell::NoEnv;

fn env() -> BTreeMap<String, String> {
    [
        ("BASE", "alpine"),
        ("VER", "3.19"),
        ("DIR", "/app"),
        ("USER", "app"),
        ("PORTS", "80 443/tcp"),
        ("SPACED", "a b"),
        ("STAGE", "build"),
        ("MODE", "0700"),
        ("BADMODE", "rwx"),
        ("PLAT", "linux/arm64"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Parses `src` (after a FROM when it is not one) and expands its last instruction.
fn expand_last(src: &str, escape: char) -> Result<Instruction, String> {
    let file = if src.to_ascii_uppercase().starts_with("FROM")
        || src.starts_with('#')
        || src.to_ascii_uppercase().starts_with("ARG")
    {
        src.to_string()
    } else {
        format!("FROM x\n{src}")
    };
    let steps = steps("Containerfile", &file).map_err(|e| e.to_string())?;
    let last = steps.last().expect("one step");
    assert_eq!(last.escape, escape);
    last.expand(&env()).map_err(|e| e.to_string())
}

fn kv(pairs: &[(&str, &str)]) -> Vec<KeyValue> {
    pairs
        .iter()
        .map(|(k, v)| KeyValue {
            key: k.to_string(),
            value: v.to_string(),
        })
        .collect()
}

#[test]
fn expansion_table() {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let cases: Vec<(&str, Instruction)> = vec![
        (
            "FROM --platform=$PLAT ${BASE}:$VER AS Final",
            Instruction::From(From {
                image: "alpine:3.19".into(),
                alias: Some("final".into()),
                platform: Some("linux/arm64".into()),
            }),
        ),
        (
            "ENV A=$DIR/bin B=\"$SPACED c\" C='$DIR' D=\\$DIR",
            Instruction::Env(kv(&[
                ("A", "/app/bin"),
                ("B", "a b c"),
                ("C", "$DIR"),
                ("D", "$DIR"),
            ])),
        ),
        (
            "ENV LEGACY $DIR and \"quoted\"",
            Instruction::Env(kv(&[("LEGACY", "/app and quoted")])),
        ),
        (
            "ENV ${USER}_HOME=/home/$USER",
            Instruction::Env(kv(&[("app_HOME", "/home/app")])),
        ),
        (
            "LABEL \"com.x\"=\"$USER's\" plain=${MISSING:-dflt}",
            Instruction::Label(kv(&[("com.x", "app's"), ("plain", "dflt")])),
        ),
        (
            "ARG X=$DIR/x Y",
            Instruction::Arg(vec![
                ArgDecl {
                    name: "X".into(),
                    default: Some("/app/x".into()),
                },
                ArgDecl {
                    name: "Y".into(),
                    default: None,
                },
            ]),
        ),
        (
            "FROM x AS ${STAGE}-Two",
            Instruction::From(From {
                image: "x".into(),
                alias: Some("build-two".into()),
                platform: None,
            }),
        ),
        ("WORKDIR $DIR/src", Instruction::Workdir("/app/src".into())),
        ("USER ${USER}:${GID:-0}", Instruction::User("app:0".into())),
        (
            "STOPSIGNAL ${SIG:-SIGQUIT}",
            Instruction::StopSignal("SIGQUIT".into()),
        ),
        (
            "EXPOSE $PORTS 53/udp",
            Instruction::Expose(s(&["80", "443/tcp", "53/udp"])),
        ),
        (
            "VOLUME $DIR/data \"$SPACED\"",
            Instruction::Volume(s(&["/app/data", "a b"])),
        ),
        (
            "VOLUME [\"$DIR/x\", \"$SPACED\"]",
            Instruction::Volume(s(&["/app/x", "a b"])),
        ),
        (
            "RUN echo $DIR",
            Instruction::Run(Run {
                command: Command::Shell("echo $DIR".into()),
                mounts: vec![],
                network: None,
                security: None,
                heredocs: vec![],
            }),
        ),
        (
            "CMD echo $DIR",
            Instruction::Cmd(Command::Shell("echo $DIR".into())),
        ),
        (
            "ENTRYPOINT [\"$DIR\"]",
            Instruction::Entrypoint(Command::Exec(s(&["$DIR"]))),
        ),
        ("MAINTAINER $USER", Instruction::Maintainer("$USER".into())),
        ("SHELL [\"$DIR\"]", Instruction::Shell(s(&["$DIR"]))),
    ];
    for (src, want) in cases {
        assert_eq!(expand_last(src, '\\'), Ok(want), "{src}");
    }
}

#[test]
fn copy_expansion() {
    let Instruction::Copy(c) = expand_last(
        "COPY --from=$STAGE --chown=$USER:$USER --chmod=${MODE} --exclude=$DIR/*.tmp $DIR/a '$DIR' ${DIR}/",
        '\\',
    )
    .unwrap() else {
        panic!("not a COPY")
    };
    assert_eq!(c.from.as_deref(), Some("build"));
    assert_eq!(c.chown.as_deref(), Some("app:app"));
    assert_eq!(c.chmod.as_deref(), Some("0700"));
    assert_eq!(c.exclude, ["/app/*.tmp"]);
    assert_eq!(c.sources, ["/app/a", "$DIR"]);
    // Shell-form paths are split on blanks first, then each is expanded on its own (as
    // BuildKit and imagebuilder do): a quoted path with a blank needs the JSON form.
    let err = expand_last("COPY \"b c\" /d", '\\').unwrap_err();
    assert_eq!(
        err,
        "Containerfile:2: unexpected end of statement while looking for matching double-quote"
    );
    assert_eq!(c.dest, "/app/");

    let Instruction::Add(a) =
        expand_last("ADD --checksum=$SUM [\"$DIR/a b\", \"/d\"]", '\\').unwrap()
    else {
        panic!("not an ADD")
    };
    assert_eq!(
        (a.sources, a.dest, a.checksum),
        (
            vec!["/app/a b".to_string()],
            "/d".into(),
            Some(String::new())
        )
    );
}

#[test]
fn copy_heredoc_body_expansion() {
    // BuildKit expands unquoted COPY heredoc bodies with quotes as plain characters and
    // `\` as the escape: `'$USER'` expands, `\$USER` does not (and loses its `\`).
    let src = "FROM x\nCOPY <<EOF <<'RAW' /d/\nuser=$USER '$USER' \"q\" \\$USER a\\nb\nEOF\nkeep $USER\nRAW\n";
    let steps = steps("Containerfile", src).unwrap();
    let Instruction::Copy(c) = steps[1].expand(&env()).unwrap() else {
        panic!()
    };
    assert_eq!(c.heredocs[0].content, "user=app 'app' \"q\" $USER anb\n");
    assert_eq!(
        c.heredocs[1].content, "keep $USER\n",
        "quoted delimiter: no expansion"
    );
}

#[test]
fn run_mount_expansion() {
    let ins = expand_last(
        "RUN --mount=type=cache,target=$DIR/cache,id=${STAGE}-c,mode=$MODE --mount=type=bind,from=build,target=/$STAGE make",
        '\\',
    )
    .unwrap();
    let Instruction::Run(r) = ins else { panic!() };
    assert_eq!(r.mounts[0].target.as_deref(), Some("/app/cache"));
    assert_eq!(r.mounts[0].id.as_deref(), Some("build-c"));
    assert_eq!(r.mounts[0].mode, Some(0o700));
    assert_eq!(r.mounts[1].target.as_deref(), Some("/build"));
    assert_eq!(r.command, Command::Shell("make".into()));

    // `$MODE` cannot be typed before expansion; a bad value is refused after it.
    let err = expand_last("RUN --mount=type=cache,target=/c,mode=$BADMODE true", '\\').unwrap_err();
    assert_eq!(
        err,
        "Containerfile:2: --mount=type=cache,target=/c,mode=$BADMODE: invalid value rwx for mode"
    );
}

#[test]
fn backtick_escape_expansion() {
    let src = "# escape=`\nFROM x\nENV P=C:\\dir\\`$notvar Q=`\"x`\"\nWORKDIR C:\\$P";
    let steps = steps("Containerfile", src).unwrap();
    assert_eq!(steps[1].escape, '`');
    let Instruction::Env(e) = steps[1].expand(&env()).unwrap() else {
        panic!()
    };
    assert_eq!(e, kv(&[("P", "C:\\dir\\$notvar"), ("Q", "\"x\"")]));
}

#[test]
fn expansion_errors_name_the_step() {
    let err = expand_last("WORKDIR ${DIR:?must be set} ${NOPE:?is required}", '\\').unwrap_err();
    assert_eq!(err, "Containerfile:2: NOPE: is required");
    let err = expand_last("USER ${USER", '\\').unwrap_err();
    assert_eq!(err, "Containerfile:2: syntax error: missing '}'");
}

#[test]
fn matches_are_reported() {
    let steps = steps(
        "Containerfile",
        "FROM x\nCOPY --chown=$USER $DIR/a ${X:-$Y} /d\n",
    )
    .unwrap();
    let (_, names) = steps[1].expand_with_matches(&env()).unwrap();
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["DIR", "USER", "X", "Y"]
    );
    let steps = super::steps("Containerfile", "FROM x\nRUN echo $DIR\n").unwrap();
    let (_, names) = steps[1].expand_with_matches(&env()).unwrap();
    assert!(
        names.is_empty(),
        "RUN is expanded by the shell, not the builder"
    );
}

/// The config buildah 1.28.2 produced for this file (`buildah bud` + `inspect`, recorded
/// on the development machine), reproduced by typing and expanding with ENV in scope.
#[test]
fn buildah_parity() {
    let src = r#"FROM scratch
ENV A=1 PORTS="80 443/tcp"
ENV B=$@ C=$1x D=${UNSET:-"b c"} E=\$A F='$A' G="q\"$A" H=${A:-}
ENV LEGACY value with "quotes" $A
LABEL "com.example.vendor"="ACME Inc" x=$A 'y z'=1
EXPOSE $PORTS 53/udp
WORKDIR /w/$A
USER ${A}:${GID:-0}
STOPSIGNAL $A
VOLUME $PORTS "/xy"
"#;
    let mut env: Vec<(String, String)> = Vec::new();
    let mut labels = Vec::new();
    let mut rest = Vec::new();
    for step in steps("Containerfile", src).unwrap() {
        match step.expand(&env).unwrap() {
            Instruction::Env(kvs) => env.extend(kvs.into_iter().map(|kv| (kv.key, kv.value))),
            Instruction::Label(kvs) => labels.extend(kvs.into_iter().map(|kv| (kv.key, kv.value))),
            Instruction::From(_) => {}
            other => rest.push(other),
        }
    }
    let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    assert_eq!(
        env,
        [
            "A=1",
            "PORTS=80 443/tcp",
            "B=$@",
            "C=x",
            "D=b c",
            "E=$A",
            "F=$A",
            "G=q\"1",
            "H=1",
            "LEGACY=value with quotes 1",
        ]
    );
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    assert_eq!(labels, ["com.example.vendor=ACME Inc", "x=1", "y z=1"]);
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        rest,
        [
            Instruction::Expose(s(&["80", "443/tcp", "53/udp"])),
            Instruction::Workdir("/w/1".into()),
            Instruction::User("1:0".into()),
            Instruction::StopSignal("1".into()),
            Instruction::Volume(s(&["80 443/tcp", "/xy"])),
        ]
    );
}

/// Continuations (empty and comment lines inside, CRLF, at EOF) under `# escape=\``:
/// buildah 1.28.2 gives the same labels except `b` and `h`, because imagebuilder expands
/// words with `\\` whatever the directive says (`b=c:d`, `h=a\``); hod follows BuildKit.
#[test]
fn continuations_with_backtick() {
    let src = "# escape=`\r\nFROM scratch\r\nLABEL a=\"x `\r\n  y\" b=c:\\d\r\nLABEL c=1 `\r\n\r\n  d=2\r\nLABEL e=3 `\r\n# comment\r\n   # indented comment\r\n  f=4\r\nLABEL   g=\"tab\there\"   h=${X:-a`$b}\r\nLABEL i=last `";
    let mut labels = Vec::new();
    for step in steps("Containerfile", src).unwrap() {
        if let Instruction::Label(kvs) = step.expand(&NoEnv).unwrap() {
            labels.extend(kvs.into_iter().map(|kv| format!("{}={}", kv.key, kv.value)));
        }
    }
    assert_eq!(
        labels,
        [
            "a=x   y",
            "b=c:\\d",
            "c=1",
            "d=2",
            "e=3",
            "f=4",
            "g=tab\there",
            "h=a$b",
            "i=last"
        ]
    );
}

#[test]
fn heredoc_runs() {
    let src = "FROM x\nRUN <<EOF\necho a\nEOF\nRUN <<'S'\n#!/usr/bin/env python3\nprint(1)\nS\n\
RUN <<A cat - && <<-B cat\none\nA\n\ttwo\n\tB\nRUN echo no heredoc\nRUN [\"echo\"]\nRUN <<EOF sh -x\ntrue\nEOF\n";
    let runs: Vec<Option<HeredocRun>> = steps("Containerfile", src)
        .unwrap()
        .into_iter()
        .filter_map(|s| match s.instruction {
            Instruction::Run(r) => Some(r.heredoc_run()),
            _ => None,
        })
        .collect();
    assert_eq!(
        runs,
        [
            Some(HeredocRun::Shell("echo a\n".into())),
            Some(HeredocRun::Executable {
                name: "S".into(),
                content: "#!/usr/bin/env python3\nprint(1)\n".into()
            }),
            Some(HeredocRun::Shell(
                "<<A cat - && <<-B cat\none\nA\ntwo\nB".into()
            )),
            None,
            None,
            Some(HeredocRun::Shell("<<EOF sh -x\ntrue\nEOF".into())),
        ]
    );
}

/// The metadata part of buildah's `tests/conformance/testdata/Dockerfile.edgecases`: buildah
/// 1.28.2 (`bud --format docker` + `inspect`) gave Env `SCUBA=1 DUBA 3`, Cmd
/// `/bin/sh -c "echo 'test' | wc -"`, OnBuild as written after ONBUILD, author as written.
#[test]
fn buildah_parity_edgecases() {
    let src = "FROM scratch\nMAINTAINER docker <docker@docker.io>\n\
ONBUILD RUN [\"echo\", \"test\"]\nONBUILD RUN echo test\nONBUILD COPY . /\n\
# ENV \\\nENV SCUBA 1 DUBA 3\nENV SCUBA \"1 DUBA 3\"\n\
CMD [\"echo\", \"test\"]\nCMD echo 'test' | wc -\n#EXPOSE\\\nEXPOSE 3000\nEXPOSE 9000 5000 6000\n\
USER docker:root\nVOLUME [\"/test\", \"/test2\"]\nVOLUME /test3\nWORKDIR /test\n";
    let got: Vec<Instruction> = steps("Containerfile", src)
        .unwrap()
        .iter()
        .map(|s| s.expand(&NoEnv).unwrap())
        .collect();
    let onbuild: Vec<&str> = got
        .iter()
        .filter_map(|i| match i {
            Instruction::OnBuild(o) => Some(o.expression.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        onbuild,
        ["RUN [\"echo\", \"test\"]", "RUN echo test", "COPY . /"]
    );
    assert!(got.contains(&Instruction::Maintainer("docker <docker@docker.io>".into())));
    assert!(got.contains(&Instruction::Env(kv(&[("SCUBA", "1 DUBA 3")]))));
    assert_eq!(
        got.iter()
            .filter(|i| matches!(i, Instruction::Env(e) if e == &kv(&[("SCUBA", "1 DUBA 3")])))
            .count(),
        2
    );
    assert!(got.contains(&Instruction::Cmd(Command::Shell(
        "echo 'test' | wc -".into()
    ))));
    assert!(got.contains(&Instruction::Expose(vec![
        "9000".into(),
        "5000".into(),
        "6000".into()
    ])));
    assert!(got.contains(&Instruction::Volume(vec!["/test".into(), "/test2".into()])));
    assert!(got.contains(&Instruction::User("docker:root".into())));
}

#[test]
fn go_durations() {
    let cases: &[(&str, Option<u64>)] = &[
        ("30s", Some(30_000)),
        ("1m30s", Some(90_000)),
        ("1.5h", Some(5_400_000)),
        ("500ms", Some(500)),
        ("0", Some(0)),
        ("2h45m", Some(9_900_000)),
        ("5", None),
        ("", None),
        ("s", None),
        ("-1s", None),
        ("1d", None),
        ("99999999999h", None),
    ];
    for (s, want) in cases {
        assert_eq!(
            parse_go_duration(s).map(|d| d.as_millis() as u64),
            *want,
            "{s}"
        );
    }
}

#[test]
fn tmpfs_sizes() {
    for (s, want) in [
        ("64m", Some(64 << 20)),
        ("1g", Some(1 << 30)),
        ("512", Some(512)),
        ("1kb", Some(1024)),
        ("x", None),
        ("", None),
    ] {
        assert_eq!(mount::ram_in_bytes(s), want, "{s}");
    }
}

/// Tokens that stress the lexer, glued together by a tiny deterministic generator.
const TOKENS: &[&str] = &[
    "FROM ",
    "RUN ",
    "COPY ",
    "ADD ",
    "ENV ",
    "ARG ",
    "LABEL ",
    "ONBUILD ",
    "HEALTHCHECK ",
    "CMD ",
    "SHELL ",
    "VOLUME ",
    "EXPOSE ",
    "USER ",
    "WORKDIR ",
    "--mount=",
    "--from=",
    "--chown=",
    "--",
    "type=cache,",
    "target=/x,",
    "mode=",
    "\\",
    "`",
    "\n",
    "\r\n",
    "\r",
    "\t",
    " ",
    "#",
    "# escape=`\n",
    "# escape=\\\n",
    "# syntax=x\n",
    "<<",
    "<<-",
    "EOF",
    "\nEOF\n",
    "'",
    "\"",
    "[",
    "]",
    "[\"a\"]",
    "${",
    "}",
    "$",
    ":-",
    "#",
    "%",
    "/",
    "=",
    "a",
    "é",
    "\u{feff}",
    "\u{0}",
    "CMD",
    "NONE",
    "AS",
    ",",
    "3<<X\nX\n",
    "\\\n",
    "`\n",
];

#[test]
fn nasty_inputs_never_panic() {
    let fixed = [
        "",
        "\n",
        "\r\n",
        "\\",
        "FROM",
        "FROM\\",
        "RUN <<",
        "RUN <<-",
        "RUN <<''",
        "RUN <<\"\"",
        "RUN <<EOF",
        "COPY <<EOF",
        "COPY <<a <<b /d\na\n",
        "RUN ['",
        "RUN [\"a\", [\"b\"]]",
        "ONBUILD",
        "ONBUILD ONBUILD",
        "ONBUILD RUN <<EOF\nEOF",
        "HEALTHCHECK",
        "HEALTHCHECK CMD",
        "HEALTHCHECK --interval= CMD x",
        "ENV =",
        "ENV ==",
        "ENV a",
        "LABEL \"",
        "ARG =",
        "RUN --mount= true",
        "RUN --mount=, true",
        "RUN --mount=\"unterminated true",
        "RUN --mount=type=cache,target=/c,mode=$ true",
        "FROM --platform x",
        "\u{feff}",
        "# escape=`\n#escape=`",
        "RUN a \\\n# c\n\n",
        "COPY [\"a\"] /x",
        "EXPOSE",
        "VOLUME []",
        "FROM a AS b c",
        "\u{0}\u{0}",
        "RUN \u{2028}x",
        "COPY --chmod=\u{1F600} a b",
    ];
    let check = |src: &str| {
        if let Ok(file) = parser::parse("F", src) {
            let _ = file.dump();
            if let Ok(steps) = file.steps() {
                for s in &steps {
                    let _ = s.expand(&env());
                    let _ = s.expand(&NoEnv);
                }
            }
        }
    };
    for src in fixed {
        check(src);
    }
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..4000 {
        let mut src = String::new();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let len = (seed % 24) as usize;
        for _ in 0..len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            src.push_str(TOKENS[(seed % TOKENS.len() as u64) as usize]);
        }
        check(&src);
    }
    // Random characters from a hostile alphabet, whole files at a time.
    let alphabet: Vec<char> = "RUNCOPYADDFROMENV $${}:-#%/\\`'\"[]<>=,\n\r\t\u{0}é\u{feff}"
        .chars()
        .collect();
    for _ in 0..3000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let len = (seed % 120) as usize;
        let mut src = String::from("FROM x\n");
        for _ in 0..len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            src.push(alphabet[(seed % alphabet.len() as u64) as usize]);
        }
        check(&src);
    }
}
