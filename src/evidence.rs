//! Evidence: does the cited sentence still stand in the page's text?
//!
//! Pure: takes a quote (or terms) and extracted text, returns where and how it was found.
//! Both sides go through the same [`normalise`], so typography that a reader does not see as a
//! change — curly vs straight quotes, dash variants, non-breaking or zero-width spaces, soft
//! hyphens, Unicode compatibility forms, line breaks between elements — never breaks a match.
//! Case is kept: a case-only difference is reported as a near match, not as a missing quote.

use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;

/// Normalises text for comparison: NFKC, one form of quote marks, apostrophes and dashes,
/// zero-width characters and soft hyphens removed, all whitespace runs folded to one space,
/// trimmed.
pub fn normalise(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    for c in s.nfkc() {
        let c = match c {
            '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' | '\u{02BC}'
            | '\u{FF07}' | '`' | '\u{00B4}' => '\'',
            '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' | '\u{00AB}'
            | '\u{00BB}' => '"',
            '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' | '\u{2015}'
            | '\u{2212}' | '\u{FE58}' | '\u{FE63}' | '\u{FF0D}' => '-',
            '\u{00AD}' | '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' => continue,
            c => c,
        };
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    out
}

/// The form in which a page's wording is compared with its baseline, for citations without a
/// quote. Beyond [`normalise`], it drops what is not wording: list numbering and bullets at the
/// start of a block (renumbered lists, `<ol>` turned into literal "1."), relative dates
/// ("Updated 5 days ago", "Updated this week"), the format of absolute dates ("December 17,
/// 2025" = "17 December 2025" = "2025-12-17"), opaque tokens (UUIDs, long hex) and sentence
/// punctuation at word ends. Blocks are joined by spaces, so markup that splits or merges
/// blocks does not count either.
pub fn comparable(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for line in raw.lines() {
        let n = normalise(line);
        let n = strip_list_marker(&n);
        if n.is_empty() {
            continue;
        }
        let n = RELATIVE_DATE.replace_all(n, "<recent>");
        let n = canonical_dates(&n);
        let n = TOKEN.replace_all(&n, "<token>");
        // Sentence punctuation at word ends ("Obligations:" vs "Obligations.") is layout, not
        // wording; punctuation inside words and numbers ("3.5", "U.S") stays.
        for word in n.split_whitespace() {
            let w = word.trim_end_matches(['.', ',', ';', ':', '!', '?']);
            if w.is_empty() {
                continue;
            }
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(w);
        }
    }
    out
}

static LIST_MARKER: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    // "(a)", "(iv)", "a)", "1.", "a.", "iv.", "A.1", "B.3.a.", "1.2.3", "§ 4", bullets.
    regex::Regex::new(
        r"^(?:\(\s*(?:\d{1,3}|[a-zA-Z]|[ivxlcIVXLC]{1,6})\s*\)|(?:\d{1,3}|[a-zA-Z]|[ivxlcIVXLC]{1,6})\)|(?:\d{1,3}|[a-zA-Z]|[ivxlcIVXLC]{1,6})(?:\.(?:\d{1,3}|[a-zA-Z]|[ivxlcIVXLC]{1,6}))*\.|(?:\d{1,3}|[a-zA-Z])(?:\.(?:\d{1,3}|[a-zA-Z]|[ivxlcIVXLC]{1,6}))+|§+ ?\d+(?:\.\d+)*\.?|[•·▪◦‣∙●○■□*\->–—])\s+",
    )
    .expect("valid regex")
});

fn strip_list_marker(s: &str) -> &str {
    let mut s = s;
    // Nested markers ("1. (a) text") come off one after another.
    for _ in 0..3 {
        match LIST_MARKER.find(s) {
            Some(m) => s = &s[m.end()..],
            None => break,
        }
    }
    s
}

static RELATIVE_DATE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"(?i)\b(?:(?:last )?(?:updated|edited|posted|published|modified|reviewed)(?: on)?:? )?(?:(?:over |about |almost |more than |less than )?(?:\d+|an?|one|two|three|few|several) (?:second|minute|hour|day|week|month|year)s? ago|today|yesterday|(?:this|last) (?:week|month|year)|just now|a while ago)\b").expect("valid regex")
});

static TOKEN: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"(?i)\b(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{24,}|[a-z0-9_-]*\d[a-z0-9_-]*[a-z][a-z0-9_-]{22,})\b").expect("valid regex")
});

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

static DATE_MDY: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"(?i)\b(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.? (\d{1,2})(?:st|nd|rd|th)?,? (\d{4})\b").expect("valid regex")
});
static DATE_DMY: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"(?i)\b(\d{1,2})(?:st|nd|rd|th)? (?:of )?(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?,? (\d{4})\b").expect("valid regex")
});
static DATE_ISO: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b").expect("valid regex")
});

fn month_number(name: &str) -> Option<u32> {
    let n = name.to_lowercase();
    MONTHS
        .iter()
        .position(|m| m.starts_with(&n[..n.len().min(3)]))
        .map(|i| i as u32 + 1)
}

/// Rewrites dates written with month names, or as ISO, to `YYYY-MM-DD`.
fn canonical_dates(s: &str) -> String {
    let iso = |y: &str, m: u32, d: &str| -> Option<String> {
        let d: u32 = d.parse().ok()?;
        ((1..=31).contains(&d)).then(|| format!("{y}-{m:02}-{d:02}"))
    };
    let s = DATE_MDY.replace_all(s, |c: &regex::Captures<'_>| {
        month_number(&c[1])
            .and_then(|m| iso(&c[3], m, &c[2]))
            .unwrap_or_else(|| c[0].to_string())
    });
    let s = DATE_DMY.replace_all(&s, |c: &regex::Captures<'_>| {
        month_number(&c[2])
            .and_then(|m| iso(&c[3], m, &c[1]))
            .unwrap_or_else(|| c[0].to_string())
    });
    DATE_ISO
        .replace_all(&s, |c: &regex::Captures<'_>| {
            let m: u32 = c[2].parse().unwrap_or(0);
            if (1..=12).contains(&m) {
                iso(&c[1], m, &c[3]).unwrap_or_else(|| c[0].to_string())
            } else {
                c[0].to_string()
            }
        })
        .into_owned()
}

/// SHA-256 (hex) of normalised text: the identity of a page's wording.
pub fn text_hash(normalised: &str) -> String {
    hex::encode(Sha256::digest(normalised.as_bytes()))
}

/// Where and how a quote was found in normalised text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuoteMatch {
    /// Present verbatim (after normalisation), at this byte range of the text.
    Exact {
        /// Byte offset of the first character.
        start: usize,
        /// Byte offset after the last character.
        end: usize,
    },
    /// Present except for a difference the matcher tolerates; `found` is what the page says.
    Near {
        /// Byte offset of the first character.
        start: usize,
        /// Byte offset after the last character.
        end: usize,
        /// The variant found on the page.
        found: String,
        /// Why it is not exact, for the report.
        why: String,
    },
    /// Not present.
    Absent,
}

/// Finds a quote in text. Both must already be [`normalise`]d.
pub fn find_quote(quote: &str, text: &str) -> QuoteMatch {
    if quote.is_empty() {
        return QuoteMatch::Absent;
    }
    if let Some(start) = text.find(quote) {
        return QuoteMatch::Exact {
            start,
            end: start + quote.len(),
        };
    }
    // Case-only differences: lowercase both sides char by char, keeping byte offsets of the
    // original text so the variant can be shown as written.
    let (lower_text, map) = lowercase_with_offsets(text);
    let lower_quote: String = quote.chars().flat_map(char::to_lowercase).collect();
    if let Some(i) = lower_text.find(&lower_quote) {
        let start = map[i];
        let end = map
            .get(i + lower_quote.len())
            .copied()
            .unwrap_or(text.len());
        return QuoteMatch::Near {
            start,
            end,
            found: text[start..end].to_string(),
            why: "differs only in letter case".into(),
        };
    }
    QuoteMatch::Absent
}

/// Lowercases text, returning for every byte of the result the byte offset in the input of the
/// character it came from (plus one entry for the end).
fn lowercase_with_offsets(text: &str) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(text.len());
    let mut map = Vec::with_capacity(text.len() + 1);
    for (i, c) in text.char_indices() {
        for l in c.to_lowercase() {
            let before = out.len();
            out.push(l);
            map.extend(std::iter::repeat_n(i, out.len() - before));
        }
    }
    map.push(text.len());
    (out, map)
}

/// A term from a citation's `absent` list that now appears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appearance {
    /// The term as written in the registry.
    pub term: String,
    /// The sentence (or surrounding text) where it appears.
    pub context: String,
}

/// Finds terms that appear in normalised text, case-insensitively and on word boundaries
/// ("BAA" does not match "BAAS").
pub fn find_terms(terms: &[String], text: &str) -> Vec<Appearance> {
    let (lower_text, map) = lowercase_with_offsets(text);
    let mut found = Vec::new();
    for term in terms {
        let t = normalise(term).to_lowercase();
        if t.is_empty() {
            continue;
        }
        let mut from = 0;
        while let Some(i) = lower_text[from..].find(&t) {
            let i = from + i;
            let j = i + t.len();
            let before_ok = lower_text[..i]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_alphanumeric());
            let after_ok = lower_text[j..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_alphanumeric());
            if before_ok && after_ok {
                let start = map[i];
                let end = map.get(j).copied().unwrap_or(text.len());
                found.push(Appearance {
                    term: term.clone(),
                    context: sentence_around(text, start, end),
                });
                break;
            }
            from = i + lower_text[i..].chars().next().map_or(1, char::len_utf8);
        }
    }
    found
}

/// The sentence containing bytes `start..end`, bounded to about 300 characters.
pub fn sentence_around(text: &str, start: usize, end: usize) -> String {
    const REACH: usize = 150;
    let lo = text[..start]
        .rfind(['.', '!', '?', '\n'])
        .map(|i| i + 1)
        .unwrap_or(0)
        .max(start.saturating_sub(REACH));
    let hi = text[end..]
        .find(['.', '!', '?', '\n'])
        .map(|i| end + i + 1)
        .unwrap_or(text.len())
        .min(end + REACH);
    let lo = floor_char(text, lo);
    let hi = ceil_char(text, hi);
    text[lo..hi].trim().to_string()
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char(s: &str, mut i: usize) -> usize {
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i.min(s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_typography() {
        assert_eq!(
            normalise("Microsoft doesn\u{2019}t  share"),
            "Microsoft doesn't share"
        );
        assert_eq!(normalise("\u{201C}x\u{201D}"), "\"x\"");
        assert_eq!(
            normalise("ISO\u{00A0}27001\u{2013}27701"),
            "ISO 27001-27701"
        );
        assert_eq!(normalise("com\u{00AD}plies wi\u{200B}th"), "complies with");
        assert_eq!(normalise("\n  a\n\tb  "), "a b");
        assert_eq!(normalise("\u{FB01}le \u{2026}"), "file ...");
    }

    #[test]
    fn exact_match_after_normalisation() {
        let text = normalise(
            "Mistral \u{201C}complies with SOC\u{00A0}2 Type II\nand ISO 27001/27701 frameworks\u{201D}.",
        );
        let q = normalise("complies with SOC 2 Type II and ISO 27001/27701 frameworks");
        assert!(matches!(find_quote(&q, &text), QuoteMatch::Exact { .. }));
    }

    #[test]
    fn case_only_difference_is_near() {
        let text = normalise("Models Are Stateless, and they don't store any prompts.");
        let q = normalise("Models are stateless, and they don't store any prompts.");
        match find_quote(&q, &text) {
            QuoteMatch::Near { found, .. } => assert_eq!(
                found,
                "Models Are Stateless, and they don't store any prompts."
            ),
            other => panic!("expected near, got {other:?}"),
        }
        assert_eq!(find_quote("not here", &text), QuoteMatch::Absent);
    }

    #[test]
    fn terms_on_word_boundaries() {
        let text =
            normalise("We offer BAAS hosting. We are certified to ISO/IEC 42001:2023 since May.");
        let found = find_terms(&["BAA".into(), "iso/iec 42001".into()], &text);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].term, "iso/iec 42001");
        assert_eq!(
            found[0].context,
            "We are certified to ISO/IEC 42001:2023 since May."
        );
    }

    #[test]
    fn comparable_ignores_what_is_not_wording() {
        let a = comparable(
            "1. Definitions. Terms apply.\n(a) Customer means you.\nUpdated 5 days ago\nEffective: December 17, 2025",
        );
        let b = comparable(
            "Definitions. Terms apply.\n\u{2022} Customer means you.\nUpdated: 6 days ago\nEffective: 17 December 2025",
        );
        assert_eq!(a, b);
        let c = comparable(
            "Definitions. Terms apply. Customer means you. Updated this week Effective: 2025-12-17",
        );
        assert_eq!(a, c);
        assert_eq!(
            comparable("Report it here 297a385f-b3bd-4ecd-9466-7d9ad55371ce now"),
            comparable("Report it here 4f1f16ba-10d3-4d09-9ecc-c721aad90f24 now")
        );
        // Wording changes still count, numbers included.
        assert_ne!(
            comparable("Data is kept for 30 days."),
            comparable("Data is kept for 90 days.")
        );
        assert_ne!(
            comparable("Effective: December 17, 2025"),
            comparable("Effective: December 18, 2025")
        );
        assert_ne!(
            comparable("1. We do not sell data."),
            comparable("1. We sell data.")
        );
        // A number that is the sentence itself is not a list marker.
        assert_eq!(comparable("2026 was a good year."), "2026 was a good year");
        assert_eq!(comparable("B.3.a. retain data"), comparable("retain data"));
        assert_eq!(
            comparable("C.1.a.ii \"Clauses\" means"),
            comparable("\"Clauses\" means")
        );
        assert_eq!(
            comparable("Customer Obligations: none"),
            comparable("Customer Obligations. none")
        );
        assert_eq!(
            comparable("(iv) We sell. 3.5 percent"),
            "We sell 3.5 percent"
        );
    }

    #[test]
    fn text_hash_is_stable() {
        assert_eq!(text_hash("a"), text_hash("a"));
        assert_ne!(text_hash("a"), text_hash("b"));
    }
}
