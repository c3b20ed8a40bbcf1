//! Rendering: `check` output and the review report.
//!
//! Pure: takes the registry, the recorded state and `now`, returns a `String`. One function per
//! format; the CLI decides where the string goes. JSON field names are fixed by SPEC §4.

use std::collections::HashMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::registry::{Citation, Registry};
use crate::store::QueueItem;
use crate::verdict::Verdict;

/// The recorded state of one citation.
#[derive(Debug, Clone)]
pub struct CitationStatus<'a> {
    /// The citation.
    pub citation: &'a Citation,
    /// Latest verdict (`pending` if never checked).
    pub verdict: Verdict,
    /// Its explanation.
    pub detail: String,
    /// Whether the cell's evidence is older than allowed.
    pub expired: bool,
    /// When the verdict was decided.
    pub decided_at: Option<String>,
    /// Snapshot judged last.
    pub snapshot: Option<String>,
    /// Baseline snapshot.
    pub baseline: Option<String>,
    /// Near-match variant found.
    pub found: Option<String>,
    /// Live link to the quote (text fragment).
    pub link: Option<String>,
    /// Where on the page the quote is.
    pub location: Option<String>,
}

impl CitationStatus<'_> {
    /// Whether the source's bytes differ from the baseline.
    pub fn source_changed(&self) -> bool {
        matches!((&self.snapshot, &self.baseline), (Some(s), Some(b)) if s != b)
    }
}

/// Everything a check or report renders.
#[derive(Debug, Clone)]
pub struct State<'a> {
    /// The registry.
    pub registry: &'a Registry,
    /// Every citation of the registry, in registry order.
    pub citations: Vec<CitationStatus<'a>>,
    /// Queue items of the registry's citations (open first, then closed, by id).
    pub queue: Vec<QueueItem>,
    /// Word diffs (baseline → current) by citation key, where text changed.
    pub diffs: HashMap<String, String>,
    /// Time of rendering.
    pub now: DateTime<Utc>,
}

impl State<'_> {
    /// Open queue items.
    pub fn open(&self) -> impl Iterator<Item = &QueueItem> {
        self.queue.iter().filter(|q| q.status == "open")
    }
}

#[derive(Serialize)]
struct JsonCitation<'a> {
    offering: &'a str,
    dimension: &'a str,
    url: &'a str,
    verdict: Verdict,
    expired: bool,
    quote: Option<&'a str>,
    detail: &'a str,
    link: Option<&'a str>,
    location: Option<&'a str>,
    checked_at: Option<&'a str>,
    file: String,
    line: usize,
}

#[derive(Serialize)]
struct JsonQueue<'a> {
    id: i64,
    offering: &'a str,
    dimension: &'a str,
    url: &'a str,
    reason: &'a str,
    status: &'a str,
    detail: &'a str,
    first_seen: &'a str,
    last_seen: &'a str,
    closed_at: Option<&'a str>,
    closed_by: Option<&'a str>,
    note: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonCheck<'a> {
    registry: &'a str,
    generated_at: String,
    stale: bool,
    open_items: usize,
    citations: Vec<JsonCitation<'a>>,
    queue: Vec<JsonQueue<'a>>,
}

/// `check --format json`: one object with `citations[]` and `queue[]` (SPEC §4).
pub fn check_json(s: &State<'_>) -> String {
    let citations = s
        .citations
        .iter()
        .map(|c| JsonCitation {
            offering: &c.citation.offering,
            dimension: &c.citation.dimension,
            url: &c.citation.url,
            verdict: c.verdict,
            expired: c.expired,
            quote: c.citation.quote.as_deref(),
            detail: &c.detail,
            link: c.link.as_deref(),
            location: c.location.as_deref(),
            checked_at: c.decided_at.as_deref(),
            file: c.citation.file.display().to_string(),
            line: c.citation.line,
        })
        .collect();
    let queue = s
        .queue
        .iter()
        .map(|q| JsonQueue {
            id: q.id,
            offering: &q.offering,
            dimension: &q.dimension,
            url: &q.url,
            reason: &q.reason,
            status: &q.status,
            detail: &q.detail,
            first_seen: &q.first_seen,
            last_seen: &q.last_seen,
            closed_at: q.closed_at.as_deref(),
            closed_by: q.closed_by.as_deref(),
            note: q.note.as_deref(),
        })
        .collect();
    let open_items = s.open().count();
    let out = JsonCheck {
        registry: &s.registry.name,
        generated_at: s.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        stale: open_items > 0,
        open_items,
        citations,
        queue,
    };
    let mut text = serde_json::to_string_pretty(&out).expect("serialisable");
    text.push('\n');
    text
}

/// `check --format text`: open items first, then a one-line summary.
pub fn check_text(s: &State<'_>) -> String {
    let mut out = String::new();
    for q in s.open() {
        let _ = writeln!(
            out,
            "OPEN #{} {} {}/{} {}\n    {}",
            q.id, q.reason, q.offering, q.dimension, q.url, q.detail
        );
    }
    let pending = s
        .citations
        .iter()
        .filter(|c| c.verdict == Verdict::Pending)
        .count();
    let mut counts: Vec<(Verdict, usize)> = Vec::new();
    for c in &s.citations {
        match counts.iter_mut().find(|(v, _)| *v == c.verdict) {
            Some((_, n)) => *n += 1,
            None => counts.push((c.verdict, 1)),
        }
    }
    counts.sort();
    let counts = counts
        .iter()
        .map(|(v, n)| format!("{n} {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let open = s.open().count();
    let _ = writeln!(
        out,
        "{}: {} citations ({}); {} expired; {} open queue item{}{}",
        if open > 0 { "STALE" } else { "OK" },
        s.citations.len(),
        if counts.is_empty() {
            "none".into()
        } else {
            counts
        },
        s.citations.iter().filter(|c| c.expired).count(),
        open,
        if open == 1 { "" } else { "s" },
        if pending > 0 {
            format!("; {pending} never checked (run `citewatch run`)")
        } else {
            String::new()
        }
    );
    out
}

/// `report --format md`: open items and changed sources, per offering and cell.
pub fn report_md(s: &State<'_>) -> String {
    let mut out = String::new();
    let open: Vec<&QueueItem> = s.open().collect();
    let _ = writeln!(out, "# Review report: {}\n", md_escape(&s.registry.name));
    let _ = writeln!(
        out,
        "Generated {}. {} citations, {} open queue item{}.\n",
        s.now.format("%Y-%m-%d %H:%M UTC"),
        s.citations.len(),
        open.len(),
        if open.len() == 1 { "" } else { "s" }
    );
    let _ = writeln!(out, "## Open items\n");
    if open.is_empty() {
        let _ = writeln!(out, "Nothing to re-verify.\n");
    }
    for offering in &s.registry.offerings {
        let items: Vec<&&QueueItem> = open.iter().filter(|q| q.offering == offering.id).collect();
        if items.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "### {} (`{}`)\n",
            md_escape(&offering.name),
            offering.id
        );
        for cell in &offering.cells {
            let cell_items: Vec<&&&QueueItem> = items
                .iter()
                .filter(|q| q.dimension == cell.dimension)
                .collect();
            if cell_items.is_empty() {
                continue;
            }
            let dim = s.registry.dimension(&cell.dimension);
            let grade = s.registry.grade(&cell.grade);
            let _ = writeln!(
                out,
                "#### {} — {} {}\n",
                md_escape(dim.map_or(cell.dimension.as_str(), |d| d.label.as_str())),
                grade.map_or("", |g| g.symbol.as_str()),
                md_escape(grade.map_or(cell.grade.as_str(), |g| g.label.as_str()))
            );
            if !cell.summary.is_empty() {
                let _ = writeln!(out, "> {}\n", md_escape(&cell.summary));
            }
            if let Some(v) = cell.verified {
                let _ = writeln!(out, "Verified {v}.\n");
            }
            for q in cell_items {
                let status = s
                    .citations
                    .iter()
                    .find(|c| c.citation.key() == q.citation_key);
                let _ = writeln!(
                    out,
                    "- **{}** (#{}) <{}>: {}  \n  first seen {}, last seen {}",
                    q.reason,
                    q.id,
                    q.url,
                    md_escape(&q.detail),
                    short_ts(&q.first_seen),
                    short_ts(&q.last_seen)
                );
                if let Some(st) = status {
                    if let Some(quote) = &st.citation.quote {
                        let _ = writeln!(out, "  - quote: “{}”", md_escape(quote));
                    }
                    if let Some(found) = &st.found {
                        let _ = writeln!(out, "  - page now says: “{}”", md_escape(found));
                        if let (Some(quote), Verdict::Drifted) = (&st.citation.quote, st.verdict) {
                            let _ = writeln!(
                                out,
                                "  - quote → page: {}",
                                word_diff(&crate::evidence::normalise(quote), found)
                            );
                        }
                    }
                    if let Some(loc) = &st.location {
                        let _ = writeln!(out, "  - found under: {}", md_escape(loc));
                    }
                    if let Some(link) = &st.link {
                        let _ = writeln!(out, "  - live: <{link}>");
                    }
                    if let Some(d) = s.diffs.get(&q.citation_key) {
                        let _ = writeln!(out, "  - change: {d}");
                    }
                    let _ = writeln!(
                        out,
                        "  - snapshots: baseline `{}`, current `{}`",
                        short_hash(st.baseline.as_deref()),
                        short_hash(st.snapshot.as_deref())
                    );
                }
            }
            out.push('\n');
        }
    }
    let _ = writeln!(out, "## Changed sources with evidence intact\n");
    let intact: Vec<&CitationStatus<'_>> = s
        .citations
        .iter()
        .filter(|c| {
            c.source_changed() && matches!(c.verdict, Verdict::Verified | Verdict::Unchanged)
        })
        .collect();
    if intact.is_empty() {
        let _ = writeln!(out, "None.");
    }
    for c in intact {
        let _ = writeln!(
            out,
            "- {}/{} <{}>: {} (baseline `{}`, current `{}`)",
            c.citation.offering,
            c.citation.dimension,
            c.citation.url,
            c.verdict,
            short_hash(c.baseline.as_deref()),
            short_hash(c.snapshot.as_deref())
        );
    }
    out
}

fn short_hash(h: Option<&str>) -> &str {
    h.map_or("none", |h| &h[..h.len().min(12)])
}

fn short_ts(t: &str) -> &str {
    &t[..t.len().min(16)]
}

/// Escapes Markdown so page and registry text cannot inject links, HTML or emphasis.
pub fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A compact word-level diff: changed runs as `~~removed~~ **added**` with a few words of
/// context, hunks separated by ` … `.
pub fn word_diff(before: &str, after: &str) -> String {
    const CONTEXT: usize = 6;
    let diff = similar::TextDiff::from_words(before, after);
    let mut tokens: Vec<(similar::ChangeTag, String)> = Vec::new();
    for ch in diff.iter_all_changes() {
        let v = ch.value().to_string();
        match tokens.last_mut() {
            Some((tag, text)) if *tag == ch.tag() => text.push_str(&v),
            _ => tokens.push((ch.tag(), v)),
        }
    }
    let mut hunks = Vec::new();
    for (i, (tag, text)) in tokens.iter().enumerate() {
        match tag {
            similar::ChangeTag::Equal => {
                let words: Vec<&str> = text.split_whitespace().collect();
                let first = i == 0;
                let last = i + 1 == tokens.len();
                if words.len() <= 2 * CONTEXT && !first && !last {
                    hunks.push(md_escape(&words.join(" ")));
                } else {
                    let mut part = String::new();
                    if !first {
                        part.push_str(&md_escape(&words[..words.len().min(CONTEXT)].join(" ")));
                    }
                    if !first && !last {
                        part.push_str(" … ");
                    } else if first && !last {
                        part.push_str("… ");
                    } else if last && !first {
                        part.push_str(" …");
                    }
                    if !last {
                        part.push_str(&md_escape(
                            &words[words.len().saturating_sub(CONTEXT)..].join(" "),
                        ));
                    }
                    hunks.push(part);
                }
            }
            similar::ChangeTag::Delete => hunks.push(format!("~~{}~~", md_escape(text.trim()))),
            similar::ChangeTag::Insert => hunks.push(format!("**{}**", md_escape(text.trim()))),
        }
    }
    hunks
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_diff_marks_changes_with_context() {
        let d = word_diff(
            "Data is kept for 30 days and then deleted.",
            "Data is kept for 90 days and then deleted.",
        );
        assert!(d.contains("~~30~~ **90**"), "{d}");
        assert!(d.contains("kept for"), "{d}");
    }

    #[test]
    fn md_escape_neutralises_markup() {
        assert_eq!(md_escape("<script>[x](y)"), "\\<script\\>\\[x\\](y)");
    }
}
