//! Google's robots.txt specification tests (github.com/google/robotstxt-spec-test, Apache-2.0,
//! copied under `tests/fixtures/robotstxt-spec-test/`) run through citewatch's matcher.
//! Every STANDARD expectation must pass; GOOGLE_SPECIFIC ones are counted and reported.

use std::path::{Path, PathBuf};

use citewatch::fetch::robots::Robots;

/// A token of the protobuf text format, as much of it as these files use.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(Vec<u8>),
    Punct(char),
}

fn lex(src: &str) -> Vec<Tok> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            c if c.is_ascii_whitespace() => i += 1,
            b'"' | b'\'' => {
                let quote = c;
                i += 1;
                let mut s = Vec::new();
                while b[i] != quote {
                    if b[i] == b'\\' {
                        i += 1;
                        match b[i] {
                            b'n' => s.push(b'\n'),
                            b'r' => s.push(b'\r'),
                            b't' => s.push(b'\t'),
                            b'x' | b'X' => {
                                let mut v = 0u8;
                                let mut n = 0;
                                while n < 2 && b[i + 1].is_ascii_hexdigit() {
                                    v = v * 16 + (b[i + 1] as char).to_digit(16).unwrap() as u8;
                                    i += 1;
                                    n += 1;
                                }
                                s.push(v);
                            }
                            d @ b'0'..=b'7' => {
                                let mut v = u32::from(d - b'0');
                                let mut n = 1;
                                while n < 3 && (b'0'..=b'7').contains(&b[i + 1]) {
                                    v = v * 8 + u32::from(b[i + 1] - b'0');
                                    i += 1;
                                    n += 1;
                                }
                                s.push(v as u8);
                            }
                            other => s.push(other),
                        }
                        i += 1;
                    } else {
                        s.push(b[i]);
                        i += 1;
                    }
                }
                i += 1;
                // Adjacent string literals concatenate.
                if let Some(Tok::Str(prev)) = out.last_mut() {
                    prev.extend(s);
                } else {
                    out.push(Tok::Str(s));
                }
            }
            b'{' | b'}' | b'[' | b']' | b':' | b',' => {
                out.push(Tok::Punct(c as char));
                i += 1;
            }
            _ => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.')
                {
                    i += 1;
                }
                assert!(i > start, "unexpected byte {c:?} in textproto");
                out.push(Tok::Ident(src[start..i].to_string()));
            }
        }
    }
    out
}

#[derive(Debug, Default)]
struct Expectation {
    url: String,
    agent: String,
    allowed: bool,
    google_specific: bool,
}

#[derive(Debug, Default)]
struct Case {
    robots: Vec<u8>,
    expectations: Vec<Expectation>,
}

/// Reads `tests: [ { robotstxt: "..." test_expectations: [ { ... } ] } ]`.
fn parse(src: &str) -> Vec<Case> {
    let toks = lex(src);
    let mut cases = Vec::new();
    let mut depth = 0;
    let mut key: Option<String> = None;
    for t in toks {
        match t {
            Tok::Punct('{') => {
                depth += 1;
                if depth == 1 {
                    cases.push(Case::default());
                } else if depth == 2 {
                    cases
                        .last_mut()
                        .unwrap()
                        .expectations
                        .push(Expectation::default());
                }
            }
            Tok::Punct('}') => depth -= 1,
            Tok::Punct(_) => {}
            Tok::Ident(id) if key.is_none() => key = Some(id),
            Tok::Ident(value) => {
                let k = key.take().unwrap();
                let e = cases.last_mut().unwrap().expectations.last_mut().unwrap();
                match k.as_str() {
                    "expected_outcome" => e.allowed = value == "ALLOWED",
                    "test_type" => e.google_specific = value == "GOOGLE_SPECIFIC",
                    other => panic!("unexpected enum field {other}"),
                }
            }
            Tok::Str(s) => {
                let k = key.take().unwrap();
                let case = cases.last_mut().unwrap();
                match k.as_str() {
                    "robotstxt" => case.robots = s,
                    "testurl" => {
                        case.expectations.last_mut().unwrap().url = String::from_utf8(s).unwrap()
                    }
                    "useragent" => {
                        case.expectations.last_mut().unwrap().agent = String::from_utf8(s).unwrap()
                    }
                    "additional_explanation" => {}
                    other => panic!("unexpected string field {other}"),
                }
            }
        }
        // `tests:` and `test_expectations:` are keys followed by lists, not values.
        if matches!(key.as_deref(), Some("tests") | Some("test_expectations")) {
            key = None;
        }
    }
    cases
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "textproto") {
            out.push(p);
        }
    }
}

#[test]
fn google_robotstxt_specification_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/robotstxt-spec-test/src/main/resources/CTC");
    let mut paths = Vec::new();
    files(&root, &mut paths);
    paths.sort();
    let (mut standard, mut standard_ok, mut google, mut google_ok) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for path in &paths {
        for case in parse(&std::fs::read_to_string(path).unwrap()) {
            let robots = Robots::parse(&case.robots);
            for e in &case.expectations {
                let got = robots.allowed(&e.agent, &e.url);
                let pass = got == e.allowed;
                if e.google_specific {
                    google += 1;
                    google_ok += usize::from(pass);
                } else {
                    standard += 1;
                    standard_ok += usize::from(pass);
                    if !pass {
                        failures.push(format!(
                            "{}: agent {:?} url {:?} expected {} robots {:?}",
                            path.file_name().unwrap().to_string_lossy(),
                            e.agent,
                            e.url,
                            if e.allowed { "ALLOWED" } else { "DISALLOWED" },
                            String::from_utf8_lossy(&case.robots)
                                .chars()
                                .take(300)
                                .collect::<String>()
                        ));
                    }
                }
            }
        }
    }
    eprintln!(
        "robots.txt spec tests: STANDARD {standard_ok}/{standard}, GOOGLE_SPECIFIC {google_ok}/{google}, total {}/{}",
        standard_ok + google_ok,
        standard + google
    );
    assert_eq!(standard + google, 400, "all expectations were read");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
