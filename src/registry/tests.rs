//! Registry parsing and every lint problem class, each pinned to its file and line.

use super::*;

const VOCAB: &str = r#"name = "Test registry"

[[grades]]
id = "yes_public"
symbol = "●"
label = "Yes, public"

[[grades]]
id = "no_evidence"
symbol = "○"
label = "No public evidence"

[[dimensions]]
id = "soc2_type2"
label = "SOC 2 Type II"
question = "Is a SOC 2 Type II report available?"
max_age_days = 180

[[dimensions]]
id = "iso_27001"
label = "ISO 27001"
question = "ISO?"
"#;

const GOOD: &str = r#"id = "acme"
name = "Acme API"
developer = "Acme"
platform = "Acme"
category = "first_party"
summary = "An offering."

[cells.soc2_type2]
grade = "yes_public"
confidence = "high"
verified = 2026-07-05
summary = "Public report."

[[cells.soc2_type2.sources]]
url = "https://acme.example/trust#soc2"
quote = "complies with SOC 2 Type II"
selector = "main"

[[cells.soc2_type2.sources]]
url = "https://acme.example/other"

[cells.iso_27001]
grade = "no_evidence"
verified = 2026-07-05

[[cells.iso_27001.sources]]
url = "https://acme.example/trust"
absent = ["ISO 27001"]
render = "browser"
"#;

fn file(path: &str, text: &str) -> SourceFile {
    SourceFile {
        path: path.into(),
        text: text.into(),
    }
}

fn lint(vocab: &str, offerings: &[(&str, &str)]) -> Parsed {
    let files: Vec<SourceFile> = offerings.iter().map(|(p, t)| file(p, t)).collect();
    parse(&file("registry/registry.toml", vocab), &files)
}

/// The single error of a parse, as `file:line: message`.
fn only_error(p: &Parsed) -> (String, usize, String) {
    let errors: Vec<&Problem> = p
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .collect();
    assert_eq!(errors.len(), 1, "expected one error, got {:#?}", p.problems);
    (
        errors[0].file.display().to_string(),
        errors[0].line,
        errors[0].message.clone(),
    )
}

fn with(line_from: &str, line_to: &str) -> String {
    assert!(GOOD.contains(line_from), "{line_from}");
    GOOD.replacen(line_from, line_to, 1)
}

const OFF: &str = "registry/offerings/acme.toml";

#[test]
fn parses_a_good_registry() {
    let p = lint(VOCAB, &[(OFF, GOOD)]);
    assert!(p.problems.is_empty(), "{:#?}", p.problems);
    let r = p.registry.unwrap();
    assert_eq!(r.name, "Test registry");
    assert_eq!(r.grades.len(), 2);
    assert_eq!(r.dimensions[0].max_age_days, Some(180));
    let o = &r.offerings[0];
    assert_eq!(o.id, "acme");
    assert_eq!(o.cells.len(), 2);
    assert_eq!(o.cells[0].dimension, "soc2_type2", "cells keep file order");
    assert_eq!(o.cells[0].line, 8);
    assert_eq!(o.cells[0].confidence, Some(Confidence::High));
    assert_eq!(o.cells[0].verified, NaiveDate::from_ymd_opt(2026, 7, 5));
    let c = &o.cells[0].citations[0];
    assert_eq!(
        c.url, "https://acme.example/trust#soc2",
        "url kept as written"
    );
    assert_eq!(
        c.fetch_url().as_str(),
        "https://acme.example/trust",
        "fragment never sent"
    );
    assert_eq!(c.selector.as_deref(), Some("main"));
    assert_eq!(c.line, 14);
    let w = &o.cells[1].citations[0];
    assert_eq!(w.absent, vec!["ISO 27001".to_string()]);
    assert_eq!(w.render, Render::Browser);
    assert_eq!(r.citations().count(), 3);
}

#[test]
fn citation_identity_ignores_order_but_not_edits() {
    let reordered = GOOD.replace(
        "[[cells.soc2_type2.sources]]\nurl = \"https://acme.example/trust#soc2\"\nquote = \"complies with SOC 2 Type II\"\nselector = \"main\"\n\n[[cells.soc2_type2.sources]]\nurl = \"https://acme.example/other\"\n",
        "[[cells.soc2_type2.sources]]\nurl = \"https://acme.example/other\"\n\n[[cells.soc2_type2.sources]]\nurl = \"https://acme.example/trust#soc2\"\nquote = \"complies with SOC 2 Type II\"\nselector = \"main\"\n",
    );
    assert_ne!(reordered, GOOD);
    let keys = |text: &str| {
        let r = lint(VOCAB, &[(OFF, text)]).registry.unwrap();
        let mut k: Vec<String> = r.citations().map(Citation::key).collect();
        k.sort();
        k
    };
    assert_eq!(keys(GOOD), keys(&reordered));
    let edited = GOOD.replace("complies with SOC 2 Type II", "complies with SOC 2 Type 2");
    assert_ne!(keys(GOOD), keys(&edited));
    // Selector is not part of the identity.
    let reselected = GOOD.replace("selector = \"main\"", "selector = \"article\"");
    assert_eq!(keys(GOOD), keys(&reselected));
}

#[test]
fn toml_syntax_error_has_its_line() {
    let p = lint(
        VOCAB,
        &[(OFF, &with("grade = \"yes_public\"", "grade = yes_public"))],
    );
    let (f, line, msg) = only_error(&p);
    assert_eq!((f.as_str(), line), (OFF, 9));
    assert!(msg.starts_with("invalid TOML"), "{msg}");
    assert!(p.registry.is_none());
}

#[test]
fn unknown_field_is_an_error() {
    let p = lint(
        VOCAB,
        &[(
            OFF,
            &with(
                "category = \"first_party\"",
                "category = \"first_party\"\ncolour = \"red\"",
            ),
        )],
    );
    let (_, line, msg) = only_error(&p);
    assert_eq!(line, 6);
    assert!(msg.contains("unknown field `colour`"), "{msg}");
}

#[test]
fn missing_required_field_is_an_error() {
    let p = lint(VOCAB, &[(OFF, &with("developer = \"Acme\"\n", ""))]);
    let (_, _, msg) = only_error(&p);
    assert!(msg.contains("missing field `developer`"), "{msg}");
}

#[test]
fn id_must_equal_file_stem() {
    let p = lint(VOCAB, &[("registry/offerings/other.toml", GOOD)]);
    let (f, line, msg) = only_error(&p);
    assert_eq!((f.as_str(), line), ("registry/offerings/other.toml", 1));
    assert!(msg.contains("must equal the file stem `other`"), "{msg}");
}

#[test]
fn duplicate_offering_id_across_files() {
    let p = lint(
        VOCAB,
        &[(OFF, GOOD), ("registry/offerings/sub/acme.toml", GOOD)],
    );
    let (f, _, msg) = only_error(&p);
    assert_eq!(f, "registry/offerings/sub/acme.toml");
    assert!(msg.contains("also used by"), "{msg}");
}

#[test]
fn unknown_dimension_key() {
    let p = lint(
        VOCAB,
        &[(OFF, &GOOD.replace("cells.iso_27001", "cells.iso_9001"))],
    );
    let (_, line, msg) = only_error(&p);
    assert_eq!(line, 22);
    assert!(msg.contains("no dimension `iso_9001`"), "{msg}");
}

#[test]
fn unknown_grade() {
    let p = lint(
        VOCAB,
        &[(
            OFF,
            &with("grade = \"yes_public\"", "grade = \"excellent\""),
        )],
    );
    let (_, line, msg) = only_error(&p);
    assert_eq!(line, 9);
    assert!(msg.contains("unknown grade `excellent`"), "{msg}");
}

#[test]
fn bad_confidence() {
    let p = lint(
        VOCAB,
        &[(
            OFF,
            &with("confidence = \"high\"", "confidence = \"certain\""),
        )],
    );
    let (_, line, msg) = only_error(&p);
    assert_eq!(line, 10);
    assert!(msg.contains("confidence `certain`"), "{msg}");
}

#[test]
fn verified_must_be_a_plain_date() {
    let p = lint(
        VOCAB,
        &[(
            OFF,
            &with(
                "verified = 2026-07-05\nsummary = \"Public report.\"",
                "verified = 2026-07-05T12:00:00Z\nsummary = \"Public report.\"",
            ),
        )],
    );
    let (_, line, msg) = only_error(&p);
    assert_eq!(line, 11);
    assert!(msg.contains("plain date"), "{msg}");
}

#[test]
fn url_problems() {
    for (bad, needle) in [
        ("ftp://acme.example/x", "must be http or https"),
        ("not a url", "invalid URL"),
        (
            "https://user:secret@acme.example/",
            "must not carry credentials",
        ),
    ] {
        let p = lint(VOCAB, &[(OFF, &with("https://acme.example/other", bad))]);
        let (_, line, msg) = only_error(&p);
        assert_eq!(line, 20, "{bad}");
        assert!(msg.contains(needle), "{bad}: {msg}");
    }
}

#[test]
fn empty_quote_and_empty_absent_term() {
    let p = lint(
        VOCAB,
        &[(
            OFF,
            &with("quote = \"complies with SOC 2 Type II\"", "quote = \"  \""),
        )],
    );
    let (_, line, msg) = only_error(&p);
    assert_eq!(line, 16);
    assert!(msg.contains("quote is empty"), "{msg}");
    let p = lint(
        VOCAB,
        &[(
            OFF,
            &with("absent = [\"ISO 27001\"]", "absent = [\"ISO 27001\", \"\"]"),
        )],
    );
    let (_, line, msg) = only_error(&p);
    assert_eq!(line, 28);
    assert!(msg.contains("empty term"), "{msg}");
}

#[test]
fn invalid_selector_and_render() {
    let p = lint(
        VOCAB,
        &[(OFF, &with("selector = \"main\"", "selector = \"main[[\""))],
    );
    let (_, line, msg) = only_error(&p);
    assert_eq!(line, 17);
    assert_eq!(msg, "`cells.soc2_type2`: invalid CSS selector `main[[`");
    let p = lint(
        VOCAB,
        &[(OFF, &with("render = \"browser\"", "render = \"chrome\""))],
    );
    let (_, line, msg) = only_error(&p);
    assert_eq!(line, 29);
    assert!(msg.contains("render `chrome`"), "{msg}");
}

#[test]
fn duplicate_citation_in_a_cell() {
    let dup = with(
        "[[cells.soc2_type2.sources]]\nurl = \"https://acme.example/other\"\n",
        "[[cells.soc2_type2.sources]]\nurl = \"https://acme.example/other\"\n\n[[cells.soc2_type2.sources]]\nurl = \"https://acme.example/other\"\n",
    );
    let p = lint(VOCAB, &[(OFF, &dup)]);
    let (_, line, msg) = only_error(&p);
    assert_eq!(line, 22, "the second source's header");
    assert!(msg.contains("same quote twice"), "{msg}");
}

#[test]
fn warnings_do_not_block() {
    // A graded cell without sources, a cell without a verified date, a very short quote.
    let warn = GOOD
        .replace("quote = \"complies with SOC 2 Type II\"", "quote = \"SOC 2\"")
        .replace("[cells.iso_27001]\ngrade = \"no_evidence\"\nverified = 2026-07-05\n", "[cells.iso_27001]\ngrade = \"yes_public\"\n")
        .replace("[[cells.iso_27001.sources]]\nurl = \"https://acme.example/trust\"\nabsent = [\"ISO 27001\"]\nrender = \"browser\"\n", "");
    let p = lint(VOCAB, &[(OFF, &warn)]);
    assert!(p.registry.is_some(), "{:#?}", p.problems);
    let lines: Vec<(usize, &str)> = p
        .problems
        .iter()
        .map(|p| (p.line, p.message.as_str()))
        .collect();
    assert!(p.problems.iter().all(|p| p.severity == Severity::Warning));
    assert!(
        lines
            .iter()
            .any(|(l, m)| *l == 16 && m.contains("very short")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|(l, m)| *l == 22 && m.contains("no `verified` date")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|(l, m)| *l == 22 && m.contains("cites no source")),
        "{lines:?}"
    );
}

#[test]
fn no_evidence_cell_may_cite_nothing() {
    let text = GOOD.replace("[[cells.iso_27001.sources]]\nurl = \"https://acme.example/trust\"\nabsent = [\"ISO 27001\"]\nrender = \"browser\"\n", "");
    let p = lint(VOCAB, &[(OFF, &text)]);
    assert!(p.problems.is_empty(), "{:#?}", p.problems);
}

#[test]
fn vocabulary_problems() {
    let dup_grade = VOCAB.replacen("id = \"no_evidence\"", "id = \"yes_public\"", 1);
    let p = lint(&dup_grade, &[]);
    let (f, line, msg) = only_error(&p);
    assert_eq!((f.as_str(), line), ("registry/registry.toml", 9));
    assert!(msg.contains("duplicate grade id"), "{msg}");
    let dup_dim = VOCAB.replacen("id = \"iso_27001\"", "id = \"soc2_type2\"", 1);
    let (_, line, msg) = only_error(&lint(&dup_dim, &[]));
    assert_eq!(line, 20);
    assert!(msg.contains("duplicate dimension id"), "{msg}");
    let bad_age = VOCAB.replacen("max_age_days = 180", "max_age_days = -3", 1);
    let (_, line, msg) = only_error(&lint(&bad_age, &[]));
    assert_eq!(line, 17);
    assert!(msg.contains("positive number of days"), "{msg}");
    let (_, _, msg) = only_error(&lint(
        "name = \"x\"\n[[dimensions]]\nid='a'\nlabel='A'\nquestion='?'\n",
        &[],
    ));
    assert!(msg.contains("no [[grades]]"), "{msg}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let bad = GOOD
        .replace("grade = \"yes_public\"", "grade = \"excellent\"")
        .replace("https://acme.example/other", "ftp://x")
        .replace("render = \"browser\"", "render = \"chrome\"");
    let p = lint(
        VOCAB,
        &[
            (OFF, &bad),
            (
                "registry/offerings/zed.toml",
                &GOOD.replace("\"acme\"", "\"nope\""),
            ),
        ],
    );
    let errors: Vec<String> = p.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(errors.len(), 4, "{errors:#?}");
    assert!(
        errors[0].starts_with("registry/offerings/acme.toml:9: error: "),
        "{errors:#?}"
    );
    assert!(
        errors[3].starts_with("registry/offerings/zed.toml:1: error: "),
        "{errors:#?}"
    );
}

#[test]
fn bundled_registry_is_clean_and_complete() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("registry");
    let p = load(&dir).expect("bundled registry readable");
    assert!(p.problems.is_empty(), "{:#?}", p.problems);
    let r = p.registry.unwrap();
    let grade_symbols: Vec<&str> = r.grades.iter().map(|g| g.symbol.as_str()).collect();
    assert_eq!(grade_symbols, ["●", "◐", "◔", "○", "?"]);
    let dims: Vec<&str> = r.dimensions.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(
        dims,
        [
            "soc2_type2",
            "iso_27001",
            "iso_42001",
            "trust_center",
            "hipaa_baa",
            "gdpr_dpa",
            "training_on_customer_data",
            "retention_zdr",
            "data_residency",
            "gpai_cop",
            "art53_summary"
        ]
    );
    assert!(
        r.dimensions
            .iter()
            .all(|d| d.max_age_days.is_some() && !d.question.is_empty())
    );
    let ids: Vec<&str> = r.offerings.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids, ["mistral-azure", "mistral-la-plateforme"]);
    for o in &r.offerings {
        assert_eq!(o.cells.len(), 11, "{}", o.id);
        for c in &o.cells {
            assert_eq!(c.verified, NaiveDate::from_ymd_opt(2026, 7, 5));
            assert!(
                c.confidence.is_some() && !c.summary.is_empty(),
                "{}/{}",
                o.id,
                c.dimension
            );
            assert!(
                !c.citations.is_empty(),
                "{}/{} cites or watches something",
                o.id,
                c.dimension
            );
            if c.grade == NO_EVIDENCE {
                assert!(
                    c.citations.iter().all(|s| !s.absent.is_empty()),
                    "{}/{} watches for terms",
                    o.id,
                    c.dimension
                );
            }
        }
    }
    // The seed's grades, cell by cell.
    let grade = |o: &str, d: &str| {
        r.offering(o)
            .unwrap()
            .cells
            .iter()
            .find(|c| c.dimension == d)
            .unwrap()
            .grade
            .clone()
    };
    assert_eq!(grade("mistral-la-plateforme", "soc2_type2"), "yes_gated");
    assert_eq!(grade("mistral-la-plateforme", "art53_summary"), "unclear");
    assert_eq!(grade("mistral-azure", "art53_summary"), "no_evidence");
    assert_eq!(grade("mistral-azure", "iso_42001"), "partial");
}

#[test]
fn archived_copy_is_read_and_linted_like_a_url() {
    let archived = "https://web.archive.org/web/20260704000000/https://acme.example/trust";
    let p = lint(
        VOCAB,
        &[(
            OFF,
            &with(
                "selector = \"main\"",
                &format!("selector = \"main\"\narchived = \"{archived}\""),
            ),
        )],
    );
    assert!(p.problems.is_empty(), "{:#?}", p.problems);
    let reg = p.registry.as_ref().expect("registry");
    let c = reg
        .citations()
        .find(|c| c.dimension == "soc2_type2" && c.quote.is_some())
        .expect("citation");
    assert_eq!(c.archived.as_deref(), Some(archived));

    for (bad, says) in [
        ("ftp://archive.example/x", "must be http or https"),
        ("not a url", "invalid archived URL"),
        (
            "https://user:pw@archive.example/x",
            "must not carry credentials",
        ),
    ] {
        let p = lint(
            VOCAB,
            &[(
                OFF,
                &with(
                    "selector = \"main\"",
                    &format!("selector = \"main\"\narchived = \"{bad}\""),
                ),
            )],
        );
        let (_, line, msg) = only_error(&p);
        assert_eq!(line, 18, "{msg}");
        assert!(msg.contains(says) && msg.contains("archived"), "{msg}");
    }
}

#[test]
fn citation_key_bytes_match_the_stored_hex() {
    let k = CitationKey::of("o", "d", "https://a.example/x", Some("Quote."));
    let hex = citation_key("o", "d", "https://a.example/x", Some("Quote."));
    assert_eq!(k.to_string(), hex);
    assert_eq!(hex.len(), 32);
    assert_eq!(CitationKey::from_hex(&hex), Some(k));
    assert!(k == *hex.as_str() && hex == k);
    // A quote, none, and an empty quote are three citations.
    let none = CitationKey::of("o", "d", "https://a.example/x", None);
    let empty = CitationKey::of("o", "d", "https://a.example/x", Some(""));
    assert!(none != k && empty != k && none != empty);
    // Only our own spelling parses: 32 lower-case hex digits.
    for bad in [
        "",
        "zz",
        &hex[..31],
        &format!("{hex}0"),
        &hex.to_uppercase(),
        "gggggggggggggggggggggggggggggggg",
    ] {
        assert_eq!(CitationKey::from_hex(bad), None, "{bad}");
        assert!(k != *bad);
    }
}
