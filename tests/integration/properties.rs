//! Property tests of the stages that read untrusted bytes: extraction, the verdict stage's
//! decision on a body, and evidence matching, on arbitrary bytes and arbitrary quotes.
//! 11,000 cases in all. Properties: no panic; offsets stay on character boundaries inside the
//! text; an exact match is the quote; `verified` only where the quote is on the page; and each
//! extraction ends (a generous per-case ceiling catches a hang, not a slowdown — speed is
//! measured by the benchmarks).

use std::time::{Duration, Instant};

use citewatch::evidence::{self, QuoteMatch};
use citewatch::extract::{self, Extracted};
use citewatch::registry::{Citation, Render};
use citewatch::verdict::reading::{self, Assessment, Observed, SourceHistory};
use citewatch::verdict::{self, ConfirmPolicy, Reading, Verdict};
use proptest::prelude::*;

/// The property tests' seed: fixed, so CI judges the same 11,000 cases every time; set
/// `CITEWATCH_PROPTEST_SEED` to explore others (`random` for a fresh one each run).
fn seed() -> proptest::test_runner::RngSeed {
    use proptest::test_runner::RngSeed;
    match std::env::var("CITEWATCH_PROPTEST_SEED").ok().as_deref() {
        Some("random") => RngSeed::Random,
        Some(s) => s.parse().map_or(RngSeed::Fixed(20261126), RngSeed::Fixed),
        None => RngSeed::Fixed(20261126),
    }
}

/// Far above any real case; only a hang or a quadratic blow-up on a 4 KiB input reaches it.
const HANG: Duration = Duration::from_secs(20);

/// Pieces that exercise the parser, the walker and the matchers where they are fragile.
const PIECES: &[&str] = &[
    "<div>",
    "</div>",
    "<p>",
    "</p>",
    "<main>",
    "</main>",
    "<h2>",
    "</h2>",
    "<li>",
    "<details>",
    "<summary>",
    "<table><tr><td>",
    "<script>",
    "</script>",
    "<style>",
    "<noscript>",
    "<template>",
    "<svg>",
    "<!--",
    "-->",
    "<![CDATA[",
    "<br>",
    "<img alt='SOC 2'>",
    "<meta charset=windows-1252>",
    "<meta http-equiv='refresh' content='0; url=/x'>",
    "<div hidden>",
    "<span aria-hidden=true>",
    "&amp;",
    "&nbsp;",
    "&#0;",
    "&#x110000;",
    "\0",
    "\u{feff}",
    "é",
    "\u{2019}",
    "\u{2026}",
    "...",
    "Type II",
    "Type I",
    "SOC 2",
    "ISO 27001",
    "no longer",
    "not",
    ";",
    "(a)",
    "(iv)",
    "b.",
    ".",
    " ",
    "\n",
    "\t",
    "Redirecting to",
    "has moved to",
    "Loading",
    "Just a moment...",
    "502 Bad Gateway",
    "Customer data is encrypted",
];

fn htmlish() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(PIECES).prop_map(str::to_string),
            1 => "[a-zA-Z0-9 ]{1,12}",
            1 => any::<String>().prop_map(|s| s.chars().take(8).collect()),
        ],
        0..120,
    )
    .prop_map(|v| v.concat())
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop::sample::select(vec![
        "text/html",
        "text/html; charset=utf-8",
        "text/html; charset=x-klingon",
        "text/plain",
        "application/pdf",
        "application/octet-stream",
        "image/png",
        "application/xhtml+xml",
        "",
    ]))
    .prop_map(|o| o.map(str::to_string))
}

fn selector() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop::sample::select(vec![
        "main",
        "p",
        "div div",
        "#x",
        "li:first-child",
        "*",
    ]))
    .prop_map(|o| o.map(str::to_string))
}

fn quote() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 .;,()'\u{2019}\u{2026}-]{0,40}",
        any::<String>().prop_map(|s| s.chars().take(30).collect()),
        prop::sample::select(PIECES).prop_map(str::to_string),
        Just("Customer data is encrypted".to_string()),
        Just("SOC 2 ... ISO 27001".to_string()),
    ]
}

fn citation(quote: Option<String>, absent: Vec<String>) -> Citation {
    Citation {
        offering: "o".into(),
        dimension: "d".into(),
        url: "https://example.com/p?a=1".into(),
        quote,
        absent,
        selector: None,
        render: Render::Http,
        archived: None,
        file: std::sync::Arc::from(std::path::Path::new("o.toml")),
        line: 1,
    }
}

fn now() -> chrono::DateTime<chrono::Utc> {
    "2026-11-26T00:00:00Z".parse().unwrap()
}

/// Extraction and the verdict stage's decision on a body, over one input.
fn read_body(bytes: &[u8], ct: Option<&str>, sel: Option<&str>) -> Result<(), TestCaseError> {
    let t = Instant::now();
    let full = extract::extract(bytes, ct, None);
    let with_selector = extract::extract(bytes, ct, sel);
    prop_assert!(t.elapsed() < HANG, "extraction took {:?}", t.elapsed());
    if let Ok(ex) = &full {
        prop_assert_eq!(
            ex.lines.is_empty() || ex.lines.len() == ex.text.lines().count(),
            true
        );
    }
    if let (Ok(a), Ok(b)) = (&full, &with_selector) {
        // A selector only ever narrows the page.
        prop_assert!(b.text.len() <= a.text.len() + b.text.lines().count() + 1);
    }
    for render in [Render::Http, Render::Browser] {
        let observed = Observed::Body {
            bytes,
            full: match &full {
                Ok(e) => Ok(e),
                Err(_) => Err("unreadable"),
            },
            render,
        };
        for words in [None, Some(0), Some(5000)] {
            let h = SourceHistory {
                consecutive_failures: 2,
                first_failure_at: None,
                last_good_words: words,
            };
            match reading::assess(&observed, &h, now()) {
                Assessment::Document => prop_assert!(full.is_ok()),
                Assessment::Failure(f) => {
                    prop_assert!(!f.detail.is_empty());
                    prop_assert_eq!(f.consecutive, 3);
                }
            }
        }
    }
    Ok(())
}

/// Matching and judging one quote against one text: no panic, sound answers.
fn match_quote(quote: &str, page: &str) -> Result<(), TestCaseError> {
    let q = evidence::normalise(quote);
    let text = evidence::normalise(page);
    match evidence::find_quote(&q, &text) {
        QuoteMatch::Exact { start, end } => {
            prop_assert!(start <= end && end <= text.len());
            prop_assert!(text.is_char_boundary(start) && text.is_char_boundary(end));
            let span = &text[start..end];
            if q.contains("...") {
                for part in q.split("...").map(str::trim).filter(|p| !p.is_empty()) {
                    prop_assert!(span.contains(part), "part {:?} not in {:?}", part, span);
                }
            } else {
                prop_assert_eq!(span, q.as_str());
            }
        }
        QuoteMatch::Near {
            start,
            end,
            similarity,
            ..
        } => {
            prop_assert!(start <= end && end <= text.len());
            prop_assert!(text.is_char_boundary(start) && text.is_char_boundary(end));
            prop_assert!((0.0..=1.0).contains(&similarity));
        }
        QuoteMatch::Absent => {}
    }
    let at = text.len() / 2;
    let at = (0..=at)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    let _ = evidence::sentence_around(&text, at, at);
    let ex = Extracted {
        text: page.to_string(),
        wording: page.to_string(),
        ..Extracted::default()
    };
    let c = citation(
        (!quote.trim().is_empty()).then(|| quote.to_string()),
        vec![quote.to_string()],
    );
    let reading = Reading::Read {
        text: Ok(&ex),
        moved_to: None,
        redirects: "",
    };
    let j = verdict::judge(&c, &reading, Some(&ex), ConfirmPolicy::default(), now());
    if j.verdict == Verdict::Verified && !q.contains("...") {
        let doc = evidence::Doc::new(&ex);
        prop_assert!(
            doc.text.contains(q.trim()),
            "verified but {:?} is not in {:?}",
            q,
            doc.text
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, rng_seed: seed(), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_extraction_or_the_decision(
        bytes in prop::collection::vec(any::<u8>(), 0..4096),
        ct in content_type(),
        sel in selector(),
    ) {
        read_body(&bytes, ct.as_deref(), sel.as_deref())?;
    }

    #[test]
    fn arbitrary_quotes_match_soundly(quote in quote(), page in htmlish()) {
        match_quote(&quote, &page)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2500, failure_persistence: None, rng_seed: seed(), ..ProptestConfig::default() })]

    #[test]
    fn markup_soup_never_panics_extraction_or_the_decision(
        html in htmlish(),
        ct in content_type(),
        sel in selector(),
    ) {
        read_body(html.as_bytes(), ct.as_deref(), sel.as_deref())?;
        let _ = extract::nesting_estimate(&html);
    }

    #[test]
    fn quotes_found_in_extracted_pages_match_soundly(quote in quote(), html in htmlish()) {
        let ex = extract::html_extract(&format!("<p>{quote}</p>{html}"), None);
        match_quote(&quote, &ex.text)?;
    }
}
