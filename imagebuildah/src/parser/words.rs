//! Word splitters of the parser stage (BuildKit's `extractBuilderFlags` and `parseWords`).

/// Splits the leading `--flag[=value]` words off an instruction's arguments.
/// Returns the rest of the line and the flag words (quotes and backslashes resolved).
/// A lone `--` ends the flags; `escape` escapes the next character.
pub(crate) fn extract_flags(line: &str, escape: char) -> (&str, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut i = 0;
    loop {
        let at_end = i >= chars.len();
        let (pos, ch) = if at_end { (line.len(), '\0') } else { chars[i] };
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if ch.is_whitespace() {
                i += 1;
                continue;
            }
            let dash2 = ch == '-' && chars.get(i + 1).is_some_and(|&(_, c)| c == '-');
            if !dash2 {
                return (&line[pos..], words);
            }
            phase = Phase::Word;
        }
        if at_end {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        }
        match phase {
            Phase::Word => {
                if ch.is_whitespace() {
                    phase = Phase::Spaces;
                    if word == "--" {
                        return (&line[pos..], words);
                    }
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    word.clear();
                    blank_ok = false;
                    i += 1;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    quote = ch;
                    blank_ok = true;
                    phase = Phase::Quote;
                    i += 1;
                    continue;
                }
                let mut c = ch;
                if ch == escape {
                    if i + 1 >= chars.len() {
                        i += 1;
                        continue;
                    }
                    i += 1;
                    c = chars[i].1;
                }
                word.push(c);
                i += 1;
            }
            Phase::Quote => {
                if ch == quote {
                    phase = Phase::Word;
                    i += 1;
                    continue;
                }
                let mut c = ch;
                if ch == escape {
                    if i + 1 >= chars.len() {
                        phase = Phase::Word;
                        i += 1;
                        continue;
                    }
                    i += 1;
                    c = chars[i].1;
                }
                word.push(c);
                i += 1;
            }
            Phase::Spaces => unreachable!("handled above"),
        }
    }
    ("", words)
}

/// Splits on blanks outside quotes, keeping quotes and escape characters in the words
/// (they are removed later by expansion): the ENV/LABEL/ARG splitter.
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut i = 0;
    loop {
        let at_end = i >= chars.len();
        let ch = if at_end { '\0' } else { chars[i] };
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if ch.is_whitespace() {
                i += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if at_end {
            if blank_ok || !word.is_empty() {
                words.push(word);
            }
            break;
        }
        match phase {
            Phase::Word => {
                if ch.is_whitespace() {
                    phase = Phase::Spaces;
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    blank_ok = false;
                    i += 1;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    quote = ch;
                    blank_ok = true;
                    phase = Phase::Quote;
                }
                if ch == escape {
                    if i + 1 >= chars.len() {
                        i += 1;
                        continue;
                    }
                    word.push(ch);
                    i += 1;
                    word.push(chars[i]);
                    i += 1;
                    continue;
                }
                word.push(ch);
                i += 1;
            }
            Phase::Quote => {
                if ch == quote {
                    phase = Phase::Word;
                }
                if ch == escape && quote != '\'' {
                    if i + 1 >= chars.len() {
                        phase = Phase::Word;
                        i += 1;
                        continue;
                    }
                    word.push(ch);
                    i += 1;
                    word.push(chars[i]);
                    i += 1;
                    continue;
                }
                word.push(ch);
                i += 1;
            }
            Phase::Spaces => unreachable!("handled above"),
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        let cases: &[(&str, &str, &[&str])] = &[
            ("--from=a /x /y", "/x /y", &["--from=a"]),
            ("  --a --b=\"c d\" rest", "rest", &["--a", "--b=c d"]),
            ("-- --x y", " --x y", &[]),
            ("--only", "", &["--only"]),
            ("plain --x", "plain --x", &[]),
            ("--x=a\\ b c", "c", &["--x=a b"]),
            ("", "", &[]),
            ("-", "-", &[]),
            ("--q='", "", &["--q="]),
        ];
        for (input, rest, flags) in cases {
            let (r, f) = extract_flags(input, '\\');
            assert_eq!(
                (r, f.as_slice()),
                (
                    *rest,
                    &flags.iter().map(|s| s.to_string()).collect::<Vec<_>>()[..]
                ),
                "{input}"
            );
        }
    }

    #[test]
    fn words() {
        let cases: &[(&str, &[&str])] = &[
            ("a=b c=d", &["a=b", "c=d"]),
            ("a=\"b c\" d", &["a=\"b c\"", "d"]),
            ("a='x \\' y", &["a='x \\'", "y"]),
            ("a=b\\ c", &["a=b\\ c"]),
            ("x=\"\"", &["x=\"\""]),
            ("  ", &[]),
            ("a\\", &["a"]),
        ];
        for (input, want) in cases {
            assert_eq!(parse_words(input, '\\'), *want, "{input}");
        }
    }
}
