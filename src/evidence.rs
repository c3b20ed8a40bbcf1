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
    // Text whose only non-ASCII characters are the typography folded below (curly quotes,
    // dashes, no-break and thin spaces, the ellipsis, invisible characters) needs no NFKC
    // pass: folding gives the same result. Other text goes through NFKC first.
    let simple = s.is_ascii()
        || s.chars().all(|c| {
            c.is_ascii()
                || matches!(c, '\u{2018}'..='\u{201F}' | '\u{2010}'..='\u{2015}' | '\u{00A0}' | '\u{2009}' | '\u{202F}' | '\u{2026}' | '\u{00AD}' | '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AB}' | '\u{00BB}' | '\u{2212}')
        });
    if simple {
        fold_into(s, &mut out);
    } else {
        let nfkc: String = s.nfkc().collect();
        fold_into(&nfkc, &mut out);
    }
    out
}

/// Folds typography and whitespace of NFKC text into `out`. Runs of plain ASCII are copied
/// as slices; only other characters are looked at one by one.
fn fold_into(s: &str, out: &mut String) {
    let bytes = s.as_bytes();
    let mut pending_space = false;
    let mut i = 0;
    let flush = |out: &mut String, pending: &mut bool| {
        if *pending {
            if !out.is_empty() {
                out.push(' ');
            }
            *pending = false;
        }
    };
    while i < bytes.len() {
        let b = bytes[i];
        if b < 0x80 {
            if b.is_ascii_whitespace() || b == 0x0B {
                pending_space = true;
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len()
                && bytes[i] < 0x80
                && !bytes[i].is_ascii_whitespace()
                && bytes[i] != 0x0B
                && bytes[i] != b'`'
            {
                i += 1;
            }
            flush(out, &mut pending_space);
            if i > start {
                out.push_str(&s[start..i]);
            } else {
                out.push('\'');
                i += 1;
            }
            continue;
        }
        let c = s[i..].chars().next().expect("char at a boundary");
        i += c.len_utf8();
        match c {
            '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' | '\u{02BC}'
            | '\u{FF07}' | '\u{00B4}' => {
                flush(out, &mut pending_space);
                out.push('\'');
            }
            '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' | '\u{00AB}'
            | '\u{00BB}' => {
                flush(out, &mut pending_space);
                out.push('"');
            }
            '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' | '\u{2015}'
            | '\u{2212}' | '\u{FE58}' | '\u{FE63}' | '\u{FF0D}' => {
                flush(out, &mut pending_space);
                out.push('-');
            }
            '\u{00AD}' | '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' => {}
            '\u{2026}' => {
                flush(out, &mut pending_space);
                out.push_str("...");
            }
            c if c.is_whitespace() => pending_space = true,
            c => {
                flush(out, &mut pending_space);
                out.push(c);
            }
        }
    }
}

/// The form in which a page's wording is compared with its baseline, for citations without a
/// quote. Beyond [`normalise`], it drops what is not wording: list numbering and bullets at the
/// start of a block (renumbered lists, `<ol>` turned into literal "1."), relative dates
/// ("Updated 5 days ago", "Updated this week"), the format of absolute dates ("December 17,
/// 2025" = "17 December 2025" = "2025-12-17"), opaque tokens (UUIDs, long hex) and sentence
/// punctuation at word ends. Blocks are joined by spaces, so markup that splits or merges
/// blocks does not count either.
pub fn comparable(raw: &str) -> String {
    let mut stripped = String::with_capacity(raw.len());
    for line in raw.lines() {
        let n = normalise(line);
        let n = strip_list_marker(&n);
        if !n.is_empty() {
            stripped.push_str(n);
            stripped.push('\n');
        }
    }
    // One pass of each pattern over the whole text (their literal prefilters make that far
    // cheaper than line by line); none of them crosses a line break.
    let s = rewrite_noise(&stripped);
    // Sentence punctuation at word ends ("Obligations:" vs "Obligations.") is layout, not
    // wording; punctuation inside words and numbers ("3.5", "U.S") stays.
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        let w = word.trim_end_matches(['.', ',', ';', ':', '!', '?']);
        if w.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
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

/// A block without its list numbering or bullet ("B.3.c. ", "(iv) ", "• ").
pub fn strip_list_marker(s: &str) -> &str {
    // Most lines start with a word: skip the regex unless a marker is possible.
    let b = s.as_bytes();
    let possible = match b.first() {
        None => false,
        Some(c) if c.is_ascii_alphanumeric() => b.iter().take(16).any(|&c| c == b'.' || c == b')'),
        Some(c) if c.is_ascii() => matches!(c, b'(' | b'*' | b'-' | b'>'),
        Some(_) => true,
    };
    if !possible {
        return s;
    }
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

/// Everything [`comparable`] rewrites, in one pattern so the text is scanned once: relative
/// dates, dates with month names or in ISO form, and opaque tokens. ASCII word boundaries keep
/// the regex on its fast DFA path.
static NOISE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(concat!(
        r"(?i)(?-u:\b)(?:",
        // "Updated 5 days ago", "Updated this week", "today"
        r"(?P<rel>(?:(?:last )?(?:updated|edited|posted|published|modified|reviewed)(?: on)?:? )?(?:(?:over |about |almost |more than |less than )?(?:\d+|an?|one|two|three|few|several) (?:second|minute|hour|day|week|month|year)s? ago|today|yesterday|(?:this|last) (?:week|month|year)|just now|a while ago))",
        // "December 17, 2025", "Dec. 17th 2025"
        r"|(?P<mdy>(?P<mdy_m>jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.? (?P<mdy_d>\d{1,2})(?:st|nd|rd|th)?,? (?P<mdy_y>\d{4}))",
        // "17 December 2025", "17th of Dec 2025"
        r"|(?P<dmy>(?P<dmy_d>\d{1,2})(?:st|nd|rd|th)? (?:of )?(?P<dmy_m>jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?,? (?P<dmy_y>\d{4}))",
        // "2025-12-17"
        r"|(?P<iso>(?P<iso_y>\d{4})-(?P<iso_m>\d{1,2})-(?P<iso_d>\d{1,2}))",
        // UUIDs, long hex, long mixed letter-digit tokens
        r"|(?P<tok>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{24,}|[a-z0-9_-]*\d[a-z0-9_-]*[a-z][a-z0-9_-]{22,})",
        r")(?-u:\b)"
    ))
    .expect("valid regex")
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

fn month_number(name: &str) -> Option<u32> {
    let n = name.to_lowercase();
    MONTHS
        .iter()
        .position(|m| m.starts_with(&n[..n.len().min(3)]))
        .map(|i| i as u32 + 1)
}

fn iso_date(y: &str, m: u32, d: &str) -> Option<String> {
    let d: u32 = d.parse().ok()?;
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then(|| format!("{y}-{m:02}-{d:02}"))
}

/// Rewrites noise to stable placeholders: relative dates to `<recent>`, dates to
/// `YYYY-MM-DD`, tokens to `<token>`.
fn rewrite_noise(s: &str) -> std::borrow::Cow<'_, str> {
    NOISE.replace_all(s, |c: &regex::Captures<'_>| {
        let whole = c[0].to_string();
        if c.name("rel").is_some() {
            "<recent>".to_string()
        } else if c.name("tok").is_some() {
            "<token>".to_string()
        } else if c.name("mdy").is_some() {
            month_number(&c["mdy_m"])
                .and_then(|m| iso_date(&c["mdy_y"], m, &c["mdy_d"]))
                .unwrap_or(whole)
        } else if c.name("dmy").is_some() {
            month_number(&c["dmy_m"])
                .and_then(|m| iso_date(&c["dmy_y"], m, &c["dmy_d"]))
                .unwrap_or(whole)
        } else {
            c["iso_m"]
                .parse()
                .ok()
                .and_then(|m| iso_date(&c["iso_y"], m, &c["iso_d"]))
                .unwrap_or(whole)
        }
    })
}

/// SHA-256 (hex) of normalised text: the identity of a page's wording.
pub fn text_hash(normalised: &str) -> String {
    hex::encode(Sha256::digest(normalised.as_bytes()))
}

/// Similarity (1 − edits ÷ quote length) at or above which a near variant of a quote counts as
/// `drifted` rather than `missing`. At 0.80 a 60-character quote tolerates 12 edits: a
/// rewording of a phrase, a changed product name, a dropped clause. A variant found this way
/// is never `verified`, whatever its score.
pub const DRIFT_THRESHOLD: f64 = 0.80;

/// Quotes shorter than this many bytes are matched exactly (up to letter case) only: below it,
/// an approximate match is too likely to be a different sentence.
pub const MIN_FUZZY_LEN: usize = 16;

/// Longest gap, in bytes of normalised text, between consecutive parts of a quote written with
/// an ellipsis ("ZDR is available ... only for stateless API calls").
pub const MAX_ELLIPSIS_GAP: usize = 600;

/// Where and how a quote was found in normalised text.
#[derive(Debug, Clone, PartialEq)]
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
        /// 1 − edits ÷ quote length (1.0 for a case-only difference).
        similarity: f64,
    },
    /// Not present.
    Absent,
}

/// Finds a quote in text. Both must already be [`normalise`]d. `...` in the quote means "and
/// later, nearby": each part must be found, in order, within [`MAX_ELLIPSIS_GAP`].
pub fn find_quote(quote: &str, text: &str) -> QuoteMatch {
    let parts: Vec<&str> = quote
        .split("...")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    match parts.len() {
        0 => QuoteMatch::Absent,
        1 => find_in(parts[0], text, 0, text.len()),
        _ => find_parts(&parts, text),
    }
}

/// Finds one quote (no ellipsis) within `text[from..to]`: exact, then up to letter case, then
/// approximately. Offsets returned are into `text`.
fn find_in(quote: &str, text: &str, from: usize, to: usize) -> QuoteMatch {
    let hay = &text[from..to];
    // An occurrence that starts or ends inside a word ("Type I" in "Type II") is not the
    // quote; it is reported as a near match showing the whole word.
    let mut partial = None;
    for (i, _) in hay.match_indices(quote) {
        if on_word_bounds(hay, i, i + quote.len()) {
            return QuoteMatch::Exact {
                start: from + i,
                end: from + i + quote.len(),
            };
        }
        partial.get_or_insert(i);
    }
    if let Some(i) = partial {
        let (start, end) = widen_to_words(hay, i, i + quote.len());
        return QuoteMatch::Near {
            start: from + start,
            end: from + end,
            found: hay[start..end].to_string(),
            why: "the page continues a word the quote ends or starts in".into(),
            similarity: quote.len() as f64 / (end - start) as f64,
        };
    }
    // Case-only differences: lowercase both sides char by char, keeping byte offsets of the
    // original text so the variant can be shown as written.
    let lower = Lowered::new(hay);
    let lower_quote: String = quote.chars().flat_map(char::to_lowercase).collect();
    if let Some(i) = lower.text.find(&lower_quote) {
        let start = lower.input_offset(i);
        let end = lower.input_offset(i + lower_quote.len());
        return QuoteMatch::Near {
            start: from + start,
            end: from + end,
            found: hay[start..end].to_string(),
            why: "differs only in letter case".into(),
            similarity: 1.0,
        };
    }
    if quote.len() < MIN_FUZZY_LEN {
        return QuoteMatch::Absent;
    }
    match approximate(quote, hay) {
        Some((start, end, edits)) => {
            let similarity = 1.0 - edits as f64 / quote.len() as f64;
            let found = hay[start..end].to_string();
            let mut why = format!("{edits} edits, {:.0}% similar", similarity * 100.0);
            let critical = critical_changes(quote, &found);
            if !critical.is_empty() {
                why.push_str(&format!("; {}", critical.join(", ")));
            }
            QuoteMatch::Near {
                start: from + start,
                end: from + end,
                found,
                why,
                similarity,
            }
        }
        None => QuoteMatch::Absent,
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric()
}

/// Whether `hay[start..end]` neither starts nor ends in the middle of a word.
fn on_word_bounds(hay: &str, start: usize, end: usize) -> bool {
    let inner_first = hay[start..end].chars().next();
    let inner_last = hay[start..end].chars().next_back();
    let before = hay[..start].chars().next_back();
    let after = hay[end..].chars().next();
    let starts_inside = inner_first.is_some_and(is_word) && before.is_some_and(is_word);
    let ends_inside = inner_last.is_some_and(is_word) && after.is_some_and(is_word);
    !(starts_inside || ends_inside)
}

/// Widens `start..end` to whole words.
fn widen_to_words(hay: &str, mut start: usize, mut end: usize) -> (usize, usize) {
    while start > 0
        && hay[..start].chars().next_back().is_some_and(is_word)
        && hay[start..].chars().next().is_some_and(is_word)
    {
        start -= hay[..start].chars().next_back().map_or(1, char::len_utf8);
    }
    while end < hay.len()
        && hay[..end].chars().next_back().is_some_and(is_word)
        && hay[end..].chars().next().is_some_and(is_word)
    {
        end += hay[end..].chars().next().map_or(1, char::len_utf8);
    }
    (start, end)
}

/// Best approximate occurrence of `quote` in `hay` within the drift threshold: (start, end,
/// edits), on character boundaries. Bit-parallel Levenshtein search (triple_accel).
pub fn approximate(quote: &str, hay: &str) -> Option<(usize, usize, u32)> {
    let budget = ((1.0 - DRIFT_THRESHOLD) * quote.len() as f64).floor() as u32;
    if budget == 0 || hay.is_empty() {
        return None;
    }
    let best = triple_accel::levenshtein::levenshtein_search_simd_with_opts(
        quote.as_bytes(),
        hay.as_bytes(),
        budget,
        triple_accel::SearchType::Best,
        triple_accel::levenshtein::LEVENSHTEIN_COSTS,
        false,
    )
    .min_by_key(|m| (m.k, m.start))?;
    let mut start = best.start;
    while start > 0 && !hay.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = best.end.min(hay.len());
    while end < hay.len() && !hay.is_char_boundary(end) {
        end += 1;
    }
    // Show whole words: a match that stops mid-word ("the Scale an") is widened to the word.
    let (start, end) = widen_to_words(hay, start, end);
    (start < end).then_some((start, end, best.k))
}

/// Finds the parts of an ellipsis quote in order, each within [`MAX_ELLIPSIS_GAP`] of the one
/// before. Tries several places for the first part, so an early partial match does not hide a
/// later full one.
fn find_parts(parts: &[&str], text: &str) -> QuoteMatch {
    let mut candidates: Vec<usize> = text
        .match_indices(parts[0])
        .map(|(i, _)| i)
        .take(50)
        .collect();
    if candidates.is_empty() {
        match find_in(parts[0], text, 0, text.len()) {
            QuoteMatch::Exact { start, .. } | QuoteMatch::Near { start, .. } => {
                candidates.push(start)
            }
            QuoteMatch::Absent => return QuoteMatch::Absent,
        }
    }
    let mut best_near: Option<QuoteMatch> = None;
    for first in candidates {
        let mut pos = first;
        let mut start = None;
        let mut exact = true;
        let mut whys = Vec::new();
        let mut sim: f64 = 1.0;
        let mut ok = true;
        for (n, part) in parts.iter().enumerate() {
            let window_end = if n == 0 {
                text.len()
            } else {
                (pos + MAX_ELLIPSIS_GAP + 2 * part.len()).min(text.len())
            };
            let window_end = ceil_char(text, window_end);
            match find_in(part, text, pos, window_end) {
                QuoteMatch::Exact { start: s, end: e } => {
                    start.get_or_insert(s);
                    pos = e;
                }
                QuoteMatch::Near {
                    start: s,
                    end: e,
                    why,
                    similarity,
                    ..
                } => {
                    start.get_or_insert(s);
                    pos = e;
                    exact = false;
                    sim = sim.min(similarity);
                    whys.push(format!("part {}: {why}", n + 1));
                }
                QuoteMatch::Absent => {
                    ok = false;
                    break;
                }
            }
        }
        if !ok {
            continue;
        }
        let Some(start) = start else {
            continue;
        };
        if exact {
            return QuoteMatch::Exact { start, end: pos };
        }
        if best_near.is_none() {
            best_near = Some(QuoteMatch::Near {
                start,
                end: pos,
                found: text[start..pos].to_string(),
                why: whys.join("; "),
                similarity: sim,
            });
        }
    }
    best_near.unwrap_or(QuoteMatch::Absent)
}

static CRITICAL: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"(?i)(?-u:\b)(?:type\s+(?:iv|v|i{1,3}|\d)|\d+(?:[.,:/-]\d+)*|iso|iec|soc|gdpr|hipaa|ccpa|fedramp|pci|nist|eu|us|uk)(?-u:\b)").expect("valid regex")
});

/// Numbers and standard names ("27001", "Type II", "SOC") of a text, in order, lowercased.
pub fn critical_tokens(s: &str) -> Vec<String> {
    CRITICAL
        .find_iter(s)
        .map(|m| {
            m.as_str()
                .to_lowercase()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// How the numbers and standard names of `found` differ from those of `quote`, e.g.
/// `"27001 → 27002"`. Empty when they agree: a near match that changes one of these changes
/// what the evidence says, whatever its similarity score.
pub fn critical_changes(quote: &str, found: &str) -> Vec<String> {
    let a = critical_tokens(quote);
    let b = critical_tokens(found);
    if a == b {
        return Vec::new();
    }
    let removed: Vec<&String> = a.iter().filter(|t| !b.contains(t)).collect();
    let added: Vec<&String> = b.iter().filter(|t| !a.contains(t)).collect();
    match (removed.is_empty(), added.is_empty()) {
        (false, false) => vec![format!("changed {} → {}", join(&removed), join(&added))],
        (false, true) => vec![format!("dropped {}", join(&removed))],
        (true, false) => vec![format!("added {}", join(&added))],
        (true, true) => vec!["numbers or standard names reordered".into()],
    }
}

fn join(v: &[&String]) -> String {
    v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
}

/// A text lowercased character by character, able to map a byte offset of the result back to
/// the input: to the start of the character it came from, or to the input's end.
struct Lowered {
    text: String,
    /// The characters whose lowercase differs in byte length or is several characters (rare:
    /// 'İ', 'ẞ', ...), in order: between them, offsets differ by a constant.
    irregular: Vec<Irregular>,
}

/// Where one irregular character sits in the lowercased text and in the input.
struct Irregular {
    lower: std::ops::Range<usize>,
    input: std::ops::Range<usize>,
}

impl Lowered {
    fn new(input: &str) -> Self {
        let bytes = input.as_bytes();
        let mut text = String::with_capacity(input.len());
        let mut irregular = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            // A run of ASCII lowercases in place, byte for byte.
            let run = bytes[i..]
                .iter()
                .position(|b| !b.is_ascii())
                .unwrap_or(bytes.len() - i);
            if run > 0 {
                let at = text.len();
                text.push_str(&input[i..i + run]);
                text[at..].make_ascii_lowercase();
                i += run;
                continue;
            }
            let c = input[i..].chars().next().unwrap_or('\u{FFFD}');
            let at = text.len();
            let mut chars = 0;
            for l in c.to_lowercase() {
                text.push(l);
                chars += 1;
            }
            if chars != 1 || text.len() - at != c.len_utf8() {
                irregular.push(Irregular {
                    lower: at..text.len(),
                    input: i..i + c.len_utf8(),
                });
            }
            i += c.len_utf8();
        }
        Lowered { text, irregular }
    }

    /// The input offset of the character that lowercased to the one at `at` (a character
    /// boundary of the lowercased text, or its length: the input's length).
    fn input_offset(&self, at: usize) -> usize {
        let k = self.irregular.partition_point(|r| r.lower.start <= at);
        match k.checked_sub(1).map(|k| &self.irregular[k]) {
            None => at,
            Some(r) if at < r.lower.end => r.input.start,
            Some(r) => r.input.end + (at - r.lower.end),
        }
    }
}

/// Words that flip or limit what a sentence claims: negation, exceptions, hedging and time
/// limits. Multi-word cues come first so "no longer" is not also counted as "no".
const MEANING_CUES: &[&str] = &[
    "no longer",
    "not yet",
    "only if",
    "subject to",
    "except",
    "excluding",
    "excludes",
    "unless",
    "until",
    "through",
    "not",
    "no",
    "never",
    "none",
    "nor",
    "neither",
    "cannot",
    "can't",
    "won't",
    "doesn't",
    "don't",
    "isn't",
    "aren't",
    "wasn't",
    "only",
    "solely",
    "may",
    "might",
    "could",
    "intend",
    "intends",
    "plan",
    "plans",
    "planned",
    "expect",
    "expected",
    "expects",
    "pending",
    "previously",
    "formerly",
    "former",
    "discontinued",
    "deprecated",
    "suspended",
    "expired",
    "revoked",
    "withdrawn",
    "retired",
    "beta",
    "preview",
    "limited",
    "before",
    "after",
];

fn cue_counts(s: &str) -> Vec<(&'static str, usize)> {
    let lower = format!(
        " {} ",
        s.to_lowercase()
            .replace(|c: char| !c.is_alphanumeric() && c != '\'' && c != ' ', " ")
    );
    let mut rest = lower;
    let mut counts = Vec::new();
    for cue in MEANING_CUES {
        let pat = format!(" {cue} ");
        let n = rest.matches(&pat).count();
        if n > 0 {
            counts.push((*cue, n));
            rest = rest.replace(&pat, " ");
        }
    }
    counts
}

/// How the meaning around a quote shifted between two contexts (the sentences around it at
/// baseline and now): cues of negation, exception, hedging or time limits added or removed,
/// numbers or standard names changed. Empty when nothing meaningful moved.
pub fn meaning_shift(before: &str, after: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (b, a) = (cue_counts(before), cue_counts(after));
    let count =
        |v: &[(&str, usize)], cue: &str| v.iter().find(|(c, _)| *c == cue).map_or(0, |(_, n)| *n);
    for cue in MEANING_CUES {
        let (nb, na) = (count(&b, cue), count(&a, cue));
        if na > nb {
            out.push(format!("adds \"{cue}\""));
        } else if nb > na {
            out.push(format!("removes \"{cue}\""));
        }
    }
    out.extend(critical_changes(before, after));
    out
}

/// A page's normalised text with a map back to its lines, for locating matches.
#[derive(Debug, Clone)]
pub struct Doc<'a> {
    /// Normalised text (lines joined by single spaces).
    pub text: String,
    line_starts: Vec<usize>,
    lines: Vec<&'a str>,
    info: &'a [crate::extract::LineInfo],
}

impl<'a> Doc<'a> {
    /// Prepares extracted text for matching.
    pub fn new(ex: &'a crate::extract::Extracted) -> Doc<'a> {
        let mut text = String::with_capacity(ex.text.len());
        let mut line_starts = Vec::new();
        let mut lines = Vec::new();
        for line in ex.text.lines() {
            let n = normalise(line);
            if !text.is_empty() && !n.is_empty() {
                text.push(' ');
            }
            line_starts.push(text.len());
            lines.push(line);
            text.push_str(&n);
        }
        Doc {
            text,
            line_starts,
            lines,
            info: &ex.lines,
        }
    }

    fn line_at(&self, offset: usize) -> usize {
        self.line_starts
            .partition_point(|&s| s <= offset)
            .saturating_sub(1)
    }

    /// The headings above a position, outermost first ("Security › Certifications").
    pub fn heading_path(&self, offset: usize) -> Vec<String> {
        if self.info.len() != self.lines.len() || self.lines.is_empty() {
            return Vec::new();
        }
        let mut path = Vec::new();
        let mut ceiling = u8::MAX;
        let mut i = self.line_at(offset) as isize;
        while i >= 0 && ceiling > 1 {
            let idx = i as usize;
            if let Some(level) = self.info[idx].heading
                && level < ceiling
            {
                path.push(normalise(self.lines[idx]));
                ceiling = level;
            }
            i -= 1;
        }
        path.reverse();
        path
    }

    /// The sentence around `start..end`, kept within the lines (blocks) the match spans, so a
    /// heading above is not taken for part of the sentence.
    pub fn context(&self, start: usize, end: usize) -> String {
        let first = self.line_at(start);
        let last = self.line_at(end.saturating_sub(1).max(start));
        let lo = self.line_starts.get(first).copied().unwrap_or(0);
        // The next line's start, less the joining space; an empty next line adds no space,
        // so step back to a character boundary rather than into the last character.
        let hi = self
            .line_starts
            .get(last + 1)
            .map_or(self.text.len(), |&s| {
                ceil_char(&self.text, s.saturating_sub(1)).max(end)
            });
        let window = &self.text[lo..hi.min(self.text.len())];
        sentence_around(window, start - lo, end - lo)
    }

    /// Whether the text at a position is hidden on the page until a reader acts.
    pub fn hidden_at(&self, offset: usize) -> bool {
        self.info
            .get(self.line_at(offset))
            .is_some_and(|i| i.hidden)
    }

    /// "Heading › Heading" for a position, with "(hidden on the page)" when it is.
    pub fn location(&self, offset: usize) -> Option<String> {
        let mut s = self.heading_path(offset).join(" › ");
        if self.hidden_at(offset) {
            if !s.is_empty() {
                s.push(' ');
            }
            s.push_str("(hidden on the page)");
        }
        (!s.is_empty()).then_some(s)
    }
}

/// A link that opens `url` scrolled to and highlighting `text[start..end]` (a URL text
/// fragment, `#:~:text=`). Long passages use the `start,end` form; a prefix is added when the
/// passage also occurs earlier on the page.
pub fn text_fragment(url: &str, text: &str, start: usize, end: usize) -> String {
    let passage = &text[start..end];
    let words: Vec<&str> = passage.split_whitespace().collect();
    let directive = if words.len() > 10 {
        format!(
            "{},{}",
            fragment_encode(&words[..4].join(" ")),
            fragment_encode(&words[words.len() - 4..].join(" "))
        )
    } else {
        fragment_encode(passage)
    };
    let directive = if text.matches(passage).count() > 1 {
        let before: Vec<&str> = text[..start]
            .split_whitespace()
            .rev()
            .take(3)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        if before.is_empty() {
            directive
        } else {
            format!("{}-,{directive}", fragment_encode(&before.join(" ")))
        }
    } else {
        directive
    };
    let base = url.split('#').next().unwrap_or(url);
    format!("{base}#:~:text={directive}")
}

/// Percent-encodes for a text directive: everything but ASCII letters, digits and `._~`
/// (`-`, `,` and `&` are syntax there).
fn fragment_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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
    if terms.is_empty() {
        return Vec::new();
    }
    let lower = Lowered::new(text);
    let lower_text = lower.text.as_str();
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
                let start = lower.input_offset(i);
                let end = lower.input_offset(j);
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

/// A list label that starts a clause: `(a)`, `(iv)`, `(12)`, or `b.` standing alone.
static CLAUSE_LABEL: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"(?:^|\s)(?:\((?:[a-zA-Z]|[ivxlcIVXLC]{1,6}|\d{1,3})\)|[a-zA-Z]\.)\s")
        .expect("valid regex")
});

/// The clause around `text[start..end]`: bounded by sentence ends, `;`, line breaks and list
/// labels such as `(a)`, `(iv)` or `b.` (a label itself is left out), at most 150 bytes
/// either side. Context is compared clause by clause, so the next list item landing in the
/// same block is not taken for a change around the quote.
pub fn sentence_around(text: &str, start: usize, end: usize) -> String {
    const REACH: usize = 150;
    const ENDS: [char; 5] = ['.', '!', '?', '\n', ';'];
    let reach_lo = floor_char(text, start.saturating_sub(REACH));
    let mut lo = text[..start]
        .rfind(ENDS)
        .map(|i| i + 1)
        .unwrap_or(0)
        .max(reach_lo);
    // A label between the boundary and the quote starts the clause the quote is in.
    if let Some(m) = CLAUSE_LABEL.find_iter(&text[lo..start]).last() {
        lo += m.end();
    }
    let reach_hi = ceil_char(text, (end + REACH).min(text.len()));
    let mut hi = text[end..]
        .find(ENDS)
        .map(|i| end + i + 1)
        .unwrap_or(text.len())
        .min(reach_hi);
    if let Some(m) = CLAUSE_LABEL.find(&text[end..hi]) {
        hi = end + m.start();
    }
    let lo = floor_char(text, lo.min(start));
    let hi = ceil_char(text, hi.max(end));
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
    /// Every character boundary of the lowercased text maps back exactly as a per-byte table
    /// built the plain way would.
    #[test]
    fn lowered_offsets_match_a_per_byte_table() {
        let samples = [
            "",
            "Plain ASCII Text",
            "İstanbul İİ ẞtraße ΣΑΣ café",
            "x\u{130}y\u{1E9E}z\u{2126}Ω\u{212A}K",
            "日本語 MIXED Ünïcödé \u{10400}\u{10428}",
        ];
        for s in samples {
            let mut table = Vec::new();
            let mut plain = String::new();
            for (i, c) in s.char_indices() {
                for l in c.to_lowercase() {
                    let before = plain.len();
                    plain.push(l);
                    table.extend(std::iter::repeat_n(i, plain.len() - before));
                }
            }
            table.push(s.len());
            let lowered = super::Lowered::new(s);
            assert_eq!(lowered.text, plain, "{s:?}");
            for j in (0..=plain.len()).filter(|&j| plain.is_char_boundary(j)) {
                assert_eq!(lowered.input_offset(j), table[j], "{s:?} at {j}");
            }
        }
    }

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
    fn approximate_match_on_both_sides_of_the_threshold() {
        let text = normalise(
            "The models hosted in this serverless API deployment scenario are subject to Azure data, privacy, and security commitments.",
        );
        let q = normalise(
            "The models hosted in this standard deployment scenario are subject to Azure data, privacy, and security commitments.",
        );
        match find_quote(&q, &text) {
            QuoteMatch::Near {
                similarity, found, ..
            } => {
                assert!((DRIFT_THRESHOLD..1.0).contains(&similarity), "{similarity}");
                assert!(found.contains("serverless API"), "{found}");
            }
            other => panic!("expected near, got {other:?}"),
        }
        // A different sentence on the same subject is below the threshold.
        let q = normalise("Microsoft stores prompts and outputs for thirty days to detect abuse.");
        assert_eq!(find_quote(&q, &text), QuoteMatch::Absent);
        // Short quotes are exact only.
        assert_eq!(find_quote("Azure dota", &text), QuoteMatch::Absent);
    }

    #[test]
    fn a_changed_number_or_standard_is_named() {
        let text = normalise("Mistral complies with SOC 2 Type I and ISO 27002 frameworks.");
        let q = normalise("complies with SOC 2 Type II and ISO 27001 frameworks");
        match find_quote(&q, &text) {
            QuoteMatch::Near {
                why, similarity, ..
            } => {
                assert!(
                    similarity > 0.9,
                    "a high score does not make it verified: {similarity}"
                );
                assert!(
                    why.contains("type ii") && why.contains("27001 type i 27002")
                        || why.contains("changed"),
                    "{why}"
                );
            }
            other => panic!("expected near, got {other:?}"),
        }
        assert_eq!(
            critical_changes("ISO 27001", "ISO 27002"),
            vec!["changed 27001 → 27002".to_string()]
        );
        assert!(critical_changes("SOC 2 Type II", "SOC 2 Type II").is_empty());
    }

    #[test]
    fn ellipsis_quotes_need_every_part_in_order_nearby() {
        let text = normalise(
            "Zero Data Retention (ZDR) is available only for the Scale plan. It applies only for stateless API calls. Other text.",
        );
        assert!(matches!(
            find_quote(
                "Zero Data Retention (ZDR) is available ... only for stateless API calls",
                &text
            ),
            QuoteMatch::Exact { .. }
        ));
        assert!(matches!(
            find_quote(
                "Zero Data Retention (ZDR) is available \u{2026} only for stateless API calls",
                &normalise(&text)
            ),
            QuoteMatch::Absent | QuoteMatch::Exact { .. }
        ));
        assert!(matches!(
            find_quote(
                &normalise(
                    "Zero Data Retention (ZDR) is available \u{2026} only for stateless API calls"
                ),
                &text
            ),
            QuoteMatch::Exact { .. }
        ));
        assert_eq!(
            find_quote(
                "only for stateless API calls ... Zero Data Retention",
                &text
            ),
            QuoteMatch::Absent,
            "order matters"
        );
        let far = format!(
            "Zero Data Retention (ZDR) is available. {} Only for stateless API calls.",
            "filler words here ".repeat(60)
        );
        assert_eq!(
            find_quote(
                "Zero Data Retention (ZDR) is available ... Only for stateless API calls",
                &normalise(&far)
            ),
            QuoteMatch::Absent,
            "too far apart"
        );
    }

    #[test]
    fn meaning_shift_sees_negation_time_limits_and_numbers() {
        let base = "Mistral complies with SOC 2 Type II and ISO 27001/27701 frameworks.";
        assert!(meaning_shift(base, base).is_empty());
        assert_eq!(
            meaning_shift(
                base,
                "Mistral no longer complies with SOC 2 Type II and ISO 27001/27701 frameworks."
            ),
            vec!["adds \"no longer\"".to_string()]
        );
        assert_eq!(
            meaning_shift(
                base,
                "Until 1 March 2027, Mistral complies with SOC 2 Type II and ISO 27001/27701 frameworks."
            )[0],
            "adds \"until\""
        );
        assert!(
            meaning_shift(
                "Data is kept for 30 days, and models are stateless.",
                "Data is kept for 90 days, and models are stateless."
            )[0]
            .contains("30 → 90")
        );
        assert!(
            meaning_shift(
                base,
                "Mistral proudly complies with SOC 2 Type II and ISO 27001/27701 frameworks."
            )
            .is_empty(),
            "an adverb is not a shift"
        );
    }

    #[test]
    fn doc_locates_headings_and_hidden_text() {
        let ex = crate::extract::html_extract(
            "<h1>Trust</h1><h2>Certifications</h2><p>We hold ISO 27001.</p><h2>Other</h2><div hidden><p>Secret ISO 42001.</p></div>",
            None,
        );
        let doc = Doc::new(&ex);
        let at = doc.text.find("ISO 27001").unwrap();
        assert_eq!(doc.heading_path(at), ["Trust", "Certifications"]);
        assert_eq!(doc.location(at).as_deref(), Some("Trust › Certifications"));
        let at = doc.text.find("ISO 42001").unwrap();
        assert_eq!(
            doc.location(at).as_deref(),
            Some("Trust › Other (hidden on the page)")
        );
        assert_eq!(doc.text, normalise(&ex.text));
    }

    /// Regression (found by the property tests): an empty line after a line ending in a
    /// multi-byte character put the context's end inside that character.
    #[test]
    fn context_after_an_empty_line_stays_on_character_boundaries() {
        let ex = crate::extract::Extracted {
            text: "la qualité\n \nsuite".into(),
            wording: String::new(),
            ..Default::default()
        };
        let doc = Doc::new(&ex);
        assert_eq!(doc.context(0, 2), "la qualité");
    }

    #[test]
    fn context_stays_within_the_blocks_of_the_match() {
        let ex = crate::extract::html_extract(
            "<h2>Certifications</h2><p>Mistral complies with SOC 2. Other.</p>",
            None,
        );
        let doc = Doc::new(&ex);
        let at = doc.text.find("complies").unwrap();
        assert_eq!(
            doc.context(at, at + "complies with SOC 2".len()),
            "Mistral complies with SOC 2."
        );
    }

    #[test]
    fn near_matches_are_shown_as_whole_words() {
        let page = normalise(
            "ZDR is available only for the Scale plan and only for stateless API callers today.",
        );
        match find_quote(
            "available only for the Scale plan and only for stateless API calls",
            &page,
        ) {
            QuoteMatch::Near { found, .. } => assert_eq!(
                found,
                "available only for the Scale plan and only for stateless API callers"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_exact_match_must_not_end_inside_a_word() {
        let page = normalise("We hold SOC 2 Type II reports and ISO 27001 certificates.");
        match find_quote("We hold SOC 2 Type I", &page) {
            QuoteMatch::Near { found, .. } => assert_eq!(found, "We hold SOC 2 Type II"),
            other => panic!("Type I is not Type II: {other:?}"),
        }
        assert!(matches!(
            find_quote("SOC 2 Type II reports", &page),
            QuoteMatch::Exact { .. }
        ));
        assert!(
            matches!(find_quote("certificates.", &page), QuoteMatch::Exact { .. }),
            "punctuation ends are fine"
        );
    }

    #[test]
    fn text_fragments_encode_and_disambiguate() {
        let text = "Models are stateless, and they don't store any prompts or outputs.";
        let start = text.find("they").unwrap();
        let end = text.len() - 1;
        assert_eq!(
            text_fragment("https://learn.example/doc#section", text, start, end),
            "https://learn.example/doc#:~:text=they%20don%27t%20store%20any%20prompts%20or%20outputs"
        );
        let twice = "Data is stateless. Data is stateless.";
        let second = twice.rfind("Data").unwrap();
        assert_eq!(
            text_fragment("https://x.example/", twice, second, twice.len()),
            "https://x.example/#:~:text=Data%20is%20stateless.-,Data%20is%20stateless."
        );
        let long = "one two three four five six seven eight nine ten eleven twelve";
        assert_eq!(
            text_fragment("https://x.example/", long, 0, long.len()),
            "https://x.example/#:~:text=one%20two%20three%20four,nine%20ten%20eleven%20twelve"
        );
    }

    /// Sellers' algorithm: the fewest edits turning `needle` into some substring of `hay`.
    fn reference_distance(needle: &[u8], hay: &[u8]) -> u32 {
        let m = needle.len();
        let mut prev: Vec<u32> = (0..=m as u32).collect();
        let mut best = prev[m];
        for &h in hay {
            let mut cur = vec![0u32; m + 1];
            for i in 1..=m {
                let sub = prev[i - 1] + u32::from(needle[i - 1] != h);
                cur[i] = sub.min(prev[i] + 1).min(cur[i - 1] + 1);
            }
            best = best.min(cur[m]);
            prev = cur;
        }
        best
    }

    proptest::proptest! {
        #[test]
        fn approximate_agrees_with_a_simple_reference(needle in "[abc ]{5,40}", hay in "[abc ]{0,200}") {
            let budget = ((1.0 - DRIFT_THRESHOLD) * needle.len() as f64).floor() as u32;
            let reference = reference_distance(needle.as_bytes(), hay.as_bytes());
            match approximate(&needle, &hay) {
                Some((start, end, k)) => {
                    proptest::prop_assert_eq!(k, reference);
                    proptest::prop_assert!(k <= budget);
                    // The span found really is that close to the needle.
                    proptest::prop_assert!(reference_distance(needle.as_bytes(), &hay.as_bytes()[start..end]) <= k);
                }
                None => proptest::prop_assert!(budget == 0 || reference > budget || hay.is_empty(), "missed a match at distance {} (budget {})", reference, budget),
            }
        }
    }

    #[test]
    fn quotes_span_elements_and_can_be_long() {
        let ex = crate::extract::html_extract(
            "<p>We support:</p><ul><li>SOC 2 <em>Type II</em></li><li>ISO&nbsp;27001</li></ul><p>See <a href='/x'>our trust center</a>.</p>",
            None,
        );
        let doc = Doc::new(&ex);
        assert!(matches!(
            find_quote(
                "We support: SOC 2 Type II ISO 27001 See our trust center.",
                &doc.text
            ),
            QuoteMatch::Exact { .. }
        ));
        let long = "Customer data is processed only on documented instructions. ".repeat(12);
        let page = normalise(&format!("Intro. {long} Outro."));
        assert!(matches!(
            find_quote(&normalise(&long), &page),
            QuoteMatch::Exact { .. }
        ));
        let drifted = page.replacen("documented", "written", 1);
        match find_quote(&normalise(&long), &drifted) {
            QuoteMatch::Near { similarity, .. } => {
                assert!(similarity > 0.98 && similarity < 1.0, "{similarity}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn text_hash_is_stable() {
        assert_eq!(text_hash("a"), text_hash("a"));
        assert_ne!(text_hash("a"), text_hash("b"));
    }
}
