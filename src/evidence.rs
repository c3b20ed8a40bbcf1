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
    fn text_hash_is_stable() {
        assert_eq!(text_hash("a"), text_hash("a"));
        assert_ne!(text_hash("a"), text_hash("b"));
    }
}
