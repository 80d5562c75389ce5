//! `--chmod` of COPY/ADD and `hod copy/add`: an octal mode, or a chmod(1) symbolic mode
//! applied to each copied item's own source mode.
//!
//! ```text
//!   "0755"            -> Chmod::Octal(0o755)          every item gets exactly this
//!   "u=rwx,go=rX"     -> Chmod::Symbolic([clause..])  each item: apply(source mode, is_dir)
//! ```
//!
//! Symbolic modes follow GNU chmod (gnulib `mode_adjust`, Linux's chmod(1)) with a umask
//! of 0, per item as BuildKit applies them: a clause without `ugoa` affects everybody; `X`
//! adds execute when the item is a directory or already has an execute bit; `u`/`g`/`o` on
//! the right copy that class's current bits; clauses apply left to right. BuildKit parses
//! with BSD's setmode rules instead, which differ in corners only: BSD ignores `X` with `=`
//! and `-` (`a=rX` is `a=r` there, dirs included), looks at the original mode for `X`, and
//! masks clauses without `ugoa` by the daemon's umask.
use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A parsed `--chmod`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chmod {
    /// An octal mode (`0755`): every copied file and directory gets exactly these bits.
    Octal(u32),
    /// A symbolic mode (`u+x,go-w`), applied to each item's own mode.
    Symbolic(Vec<Clause>),
}

/// The operator of a symbolic clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `+`: add the bits.
    Add,
    /// `-`: remove the bits.
    Remove,
    /// `=`: set the affected classes to exactly the bits.
    Set,
}

/// What a clause's right-hand side names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perms {
    /// Literal bits from `rwxst`, and whether `X` was given.
    Bits {
        /// Permission bits (in all three classes; masked by the clause's classes).
        bits: u32,
        /// `X`: execute if a directory or already executable by someone.
        cond_exec: bool,
    },
    /// `u`, `g` or `o`: the current bits of that class (shift 6, 3 or 0).
    Copy(u32),
}

/// One `[ugoa]*[+-=][perms]` operation (`u+r-w` is two).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clause {
    /// Affected bits from `ugoa` (0 = not given: everybody).
    pub who: u32,
    /// The operator.
    pub op: Op,
    /// The permissions.
    pub perms: Perms,
}

const USR: u32 = 0o4700;
const GRP: u32 = 0o2070;
const OTH: u32 = 0o1007;
const ALL: u32 = 0o7777;
const XUGO: u32 = 0o111;

impl Chmod {
    /// Parse an octal (`0755`, at most `7777`) or symbolic (`u=rwx,g=rx,o=`) mode; the error
    /// names the value.
    pub fn parse(s: &str) -> Result<Chmod> {
        let bad = |why: &str| Error::invalid(format!("parsing chmod {s:?}: {why}"));
        if s.is_empty() {
            return Err(bad("empty mode"));
        }
        if s.bytes().all(|b| b.is_ascii_digit()) {
            return u32::from_str_radix(s, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .map(Chmod::Octal)
                .ok_or_else(|| bad("invalid octal mode"));
        }
        let mut clauses = Vec::new();
        for part in s.split(',') {
            let b = part.as_bytes();
            let mut i = 0;
            let mut who = 0;
            while i < b.len() {
                who |= match b[i] {
                    b'u' => USR,
                    b'g' => GRP,
                    b'o' => OTH,
                    b'a' => ALL,
                    _ => break,
                };
                i += 1;
            }
            if i == b.len() {
                return Err(bad(&format!("{part:?} has no operator (+, - or =)")));
            }
            while i < b.len() {
                let op = match b[i] {
                    b'+' => Op::Add,
                    b'-' => Op::Remove,
                    b'=' => Op::Set,
                    c => return Err(bad(&format!("unexpected {:?} in {part:?}", char::from(c)))),
                };
                i += 1;
                let perms = match b.get(i) {
                    Some(c @ (b'u' | b'g' | b'o')) => {
                        i += 1;
                        Perms::Copy(match c {
                            b'u' => 6,
                            b'g' => 3,
                            _ => 0,
                        })
                    }
                    _ => {
                        let (mut bits, mut cond_exec) = (0, false);
                        while let Some(c) = b.get(i) {
                            bits |= match c {
                                b'r' => 0o444,
                                b'w' => 0o222,
                                b'x' => 0o111,
                                b's' => 0o6000,
                                b't' => 0o1000,
                                b'X' => {
                                    cond_exec = true;
                                    0
                                }
                                _ => break,
                            };
                            i += 1;
                        }
                        Perms::Bits { bits, cond_exec }
                    }
                };
                clauses.push(Clause { who, op, perms });
            }
        }
        Ok(Chmod::Symbolic(clauses))
    }

    /// The mode an item whose own mode is `mode` gets (`is_dir` for `X`).
    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        let clauses = match self {
            Chmod::Octal(m) => return *m,
            Chmod::Symbolic(c) => c,
        };
        let mut new = mode & ALL;
        for c in clauses {
            let affected = if c.who == 0 { ALL } else { c.who };
            let mut value = match c.perms {
                Perms::Bits { bits, cond_exec } => {
                    if cond_exec && (is_dir || new & XUGO != 0) {
                        bits | XUGO
                    } else {
                        bits
                    }
                }
                Perms::Copy(shift) => {
                    let v = (new >> shift) & 0o7;
                    v | (v << 3) | (v << 6)
                }
            };
            // Set-id bits of a directory are kept unless the clause names them (GNU chmod).
            let mentioned = match c.perms {
                Perms::Bits { bits, .. } => bits & affected,
                Perms::Copy(_) => 0,
            };
            let omit = if is_dir { 0o6000 & !mentioned } else { 0 };
            value &= affected & !omit;
            new = match c.op {
                Op::Add => new | value,
                Op::Remove => new & !value,
                Op::Set => (new & (!affected | omit)) | value,
            };
        }
        new
    }
}

impl FromStr for Chmod {
    type Err = Error;
    fn from_str(s: &str) -> Result<Chmod> {
        Chmod::parse(s)
    }
}

impl fmt::Display for Chmod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Chmod::Octal(m) => write!(f, "{m:o}"),
            Chmod::Symbolic(cs) => {
                for (n, c) in cs.iter().enumerate() {
                    if n > 0 {
                        f.write_str(",")?;
                    }
                    for (bits, ch) in [(USR, 'u'), (GRP, 'g'), (OTH, 'o')] {
                        if c.who & bits == bits {
                            write!(f, "{ch}")?;
                        }
                    }
                    f.write_str(match c.op {
                        Op::Add => "+",
                        Op::Remove => "-",
                        Op::Set => "=",
                    })?;
                    match c.perms {
                        Perms::Copy(6) => f.write_str("u")?,
                        Perms::Copy(3) => f.write_str("g")?,
                        Perms::Copy(_) => f.write_str("o")?,
                        Perms::Bits { bits, cond_exec } => {
                            for (b, ch) in [
                                (0o444, 'r'),
                                (0o222, 'w'),
                                (0o111, 'x'),
                                (0o6000, 's'),
                                (0o1000, 't'),
                            ] {
                                if bits & b != 0 {
                                    write!(f, "{ch}")?;
                                }
                            }
                            if cond_exec {
                                f.write_str("X")?;
                            }
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ap(s: &str, mode: u32, dir: bool) -> u32 {
        Chmod::parse(s).unwrap().apply(mode, dir)
    }

    #[test]
    fn octal() {
        assert_eq!(Chmod::parse("0755").unwrap(), Chmod::Octal(0o755));
        assert_eq!(ap("660", 0o777, true), 0o660);
        assert_eq!(ap("4755", 0o644, false), 0o4755);
        for bad in ["9", "17777", "", "0o755"] {
            let e = Chmod::parse(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn symbolic_parses() {
        assert_eq!(
            Chmod::parse("u+x").unwrap(),
            Chmod::Symbolic(vec![Clause {
                who: USR,
                op: Op::Add,
                perms: Perms::Bits {
                    bits: 0o111,
                    cond_exec: false
                }
            }])
        );
        // two operators in one clause, and an empty right-hand side
        let Chmod::Symbolic(c) = Chmod::parse("u+r-w,o=").unwrap() else {
            panic!()
        };
        assert_eq!(c.len(), 3);
        assert_eq!((c[1].who, c[1].op), (USR, Op::Remove));
        assert_eq!(
            c[2].perms,
            Perms::Bits {
                bits: 0,
                cond_exec: false
            }
        );
        for bad in ["u", "ux", "u+q", "u+x,", "+x,,", "a=rw x", "z+x", "u+x7"] {
            let e = Chmod::parse(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
        }
        for s in ["u+x", "go-w", "u=rwx,g=rx,o=", "+x", "g=u", "u+r-w"] {
            let c = Chmod::parse(s).unwrap();
            assert_eq!(Chmod::parse(&c.to_string()).unwrap(), c, "{s}");
        }
    }

    /// Expected values checked against GNU chmod with `umask 0`.
    #[test]
    fn symbolic_applies() {
        assert_eq!(ap("u+x", 0o644, false), 0o744);
        assert_eq!(ap("go-w", 0o666, false), 0o644);
        assert_eq!(ap("+x", 0o644, false), 0o755);
        assert_eq!(ap("u=rwx,g=rx,o=", 0o600, false), 0o750);
        assert_eq!(ap("a=rX", 0o600, false), 0o444);
        assert_eq!(ap("a=rX", 0o700, false), 0o555);
        assert_eq!(ap("a=rX", 0o700, true), 0o555);
        assert_eq!(ap("a=rX", 0o600, true), 0o555);
        assert_eq!(ap("a-x,a+X", 0o755, false), 0o644);
        assert_eq!(ap("g=u", 0o640, false), 0o660);
        assert_eq!(ap("o=g,g-w", 0o674, false), 0o657);
        assert_eq!(ap("u+s,+t", 0o755, false), 0o5755);
        assert_eq!(ap("a=r", 0o2755, true), 0o2444);
        assert_eq!(ap("a=r", 0o2755, false), 0o444);
        assert_eq!(ap("u=rw", 0o4755, false), 0o655);
        assert_eq!(ap("go=", 0o777, true), 0o700);
        assert_eq!(ap("a-s", 0o2755, true), 0o755);
    }
}
