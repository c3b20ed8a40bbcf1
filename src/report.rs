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
    /// Its identity key (computed once).
    pub key: String,
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
    /// When the baseline was set (first reading, or the last resolve).
    pub baseline_at: Option<String>,
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
    pub diffs: HashMap<String, Vec<DiffPart>>,
    /// Time of rendering.
    pub now: DateTime<Utc>,
    /// The latest run and how it ended, if any run was recorded.
    pub last_run: Option<LastRun>,
}

/// How the latest run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunEnd {
    /// It finished normally.
    Finished,
    /// It is still going (its process holds the run lock).
    InProgress,
    /// It ended abnormally: the run deadline, an internal error, a database or disk failure.
    Failed,
    /// Its process died without recording an end (killed, crashed, power lost).
    Interrupted,
}

/// The latest run, for `check`: a run that ended abnormally is named until a later run
/// finishes, with how far it got.
#[derive(Debug, Clone, Serialize)]
pub struct LastRun {
    /// As recorded.
    #[serde(flatten)]
    pub record: crate::store::RunRecord,
    /// How it ended.
    pub end: RunEnd,
}

impl LastRun {
    /// Whether it ended abnormally (so some of its citations were not judged by it).
    pub fn abnormal(&self) -> bool {
        matches!(self.end, RunEnd::Failed | RunEnd::Interrupted)
    }

    /// Citations it planned and did not judge.
    pub fn unjudged(&self) -> i64 {
        (self.record.citations - self.record.citations_judged).max(0)
    }

    /// One line for people: when it started, how it ended, how far it got.
    pub fn describe(&self) -> String {
        let r = &self.record;
        let how = match self.end {
            RunEnd::Finished => "finished".to_string(),
            RunEnd::InProgress => "is in progress".to_string(),
            RunEnd::Interrupted => {
                "was interrupted (its process died: killed or crashed)".to_string()
            }
            RunEnd::Failed => format!(
                "ended abnormally ({})",
                r.ended.as_deref().unwrap_or("no reason recorded")
            ),
        };
        format!(
            "run #{} started {} {how}: {} of {} URLs fetched, {} of {} citations judged",
            r.id, r.started_at, r.urls_done, r.urls, r.citations_judged, r.citations
        )
    }
}

impl State<'_> {
    /// Open queue items.
    pub fn open(&self) -> impl Iterator<Item = &QueueItem> {
        self.queue.iter().filter(|q| q.status == "open")
    }

    /// The latest run, when it ended abnormally and left citations unjudged: the gate is not
    /// green until a later run finishes.
    pub fn incomplete(&self) -> Option<&LastRun> {
        self.last_run
            .as_ref()
            .filter(|r| r.abnormal() && r.unjudged() > 0)
    }

    /// Citations never checked at all.
    pub fn never_checked(&self) -> usize {
        self.citations
            .iter()
            .filter(|c| c.verdict == Verdict::Pending)
            .count()
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
    /// The latest run ended abnormally and left citations unjudged.
    incomplete: bool,
    /// Citations never checked.
    pending: usize,
    last_run: Option<&'a LastRun>,
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
        incomplete: s.incomplete().is_some(),
        pending: s.never_checked(),
        last_run: s.last_run.as_ref(),
        citations,
        queue,
    };
    let mut text = serde_json::to_string_pretty(&out).expect("serialisable");
    text.push('\n');
    text
}

/// `check --format text`: an abnormal last run first, then open items, then a one-line summary.
pub fn check_text(s: &State<'_>) -> String {
    let mut out = String::new();
    // An abnormal last run comes first: everything below rests on it.
    if let Some(run) = s.incomplete() {
        let _ = writeln!(
            out,
            "INCOMPLETE: {}; {} citation{} not judged by it keep older verdicts or none",
            run.describe(),
            run.unjudged(),
            if run.unjudged() == 1 { "" } else { "s" }
        );
    } else if let Some(run) = s.last_run.as_ref().filter(|r| r.end == RunEnd::InProgress) {
        let _ = writeln!(out, "note: {}", run.describe());
    }
    for q in s.open() {
        let _ = writeln!(
            out,
            "OPEN #{} {} {}/{} {}\n    {}",
            q.id,
            q.reason,
            q.offering,
            q.dimension,
            shown(&q.url),
            crate::redact(&q.detail)
        );
    }
    let pending = s.never_checked();
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
    let headline = if open > 0 {
        "STALE"
    } else if s.incomplete().is_some() {
        "INCOMPLETE"
    } else {
        "OK"
    };
    let _ = writeln!(
        out,
        "{headline}: {} citations ({}); {} expired; {} open queue item{}{}",
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

/// Open items grouped as the reports show them: by offering, then cell, in registry order.
type ByCell<'s, 'a> = Vec<(
    &'a crate::registry::Offering,
    Vec<(&'a crate::registry::Cell, Vec<&'s QueueItem>)>,
)>;

fn open_by_cell<'s, 'a>(s: &'s State<'a>) -> ByCell<'s, 'a> {
    let mut out = Vec::new();
    for offering in &s.registry.offerings {
        let cells: Vec<_> = offering
            .cells
            .iter()
            .map(|cell| {
                (
                    cell,
                    s.open()
                        .filter(|q| q.offering == offering.id && q.dimension == cell.dimension)
                        .collect::<Vec<_>>(),
                )
            })
            .filter(|(_, items)| !items.is_empty())
            .collect();
        if !cells.is_empty() {
            out.push((offering, cells));
        }
    }
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
    for (offering, cells) in open_by_cell(s) {
        let _ = writeln!(
            out,
            "### {} (`{}`)\n",
            md_escape(&offering.name),
            offering.id
        );
        for (cell, cell_items) in cells {
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
                let status = status_of(s, q);
                let _ = writeln!(
                    out,
                    "- **{}** (#{}) <{}>: {}  \n  first seen {}, last seen {}",
                    q.reason,
                    q.id,
                    shown(&q.url),
                    md_escape(&crate::redact(&q.detail)),
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
                        let _ = writeln!(out, "  - live: <{}>", shown(link));
                    }
                    if let Some(d) = s.diffs.get(&q.citation_key) {
                        let _ = writeln!(out, "  - change: {}", diff_md(d));
                    }
                    let _ = writeln!(
                        out,
                        "  - snapshots: baseline `{}` ({}), current `{}` ({})",
                        short_hash(st.baseline.as_deref()),
                        st.baseline_at.as_deref().map_or("none", short_ts),
                        short_hash(st.snapshot.as_deref()),
                        st.decided_at.as_deref().map_or("never", short_ts)
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
            shown(&c.citation.url),
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

pub use crate::review::{DiffPart, diff_parts};

/// The diff as Markdown: `~~removed~~ **added**`, gaps as `…`.
pub fn diff_md(parts: &[DiffPart]) -> String {
    parts
        .iter()
        .map(|p| match p {
            DiffPart::Same(t) => md_escape(t),
            DiffPart::Gap => "…".to_string(),
            DiffPart::Removed(t) => format!("~~{}~~", md_escape(t)),
            DiffPart::Added(t) => format!("**{}**", md_escape(t)),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The diff as HTML: `<del>`/`<ins>`, every word escaped.
pub fn diff_html(parts: &[DiffPart]) -> String {
    parts
        .iter()
        .map(|p| match p {
            DiffPart::Same(t) => esc(t),
            DiffPart::Gap => "…".to_string(),
            DiffPart::Removed(t) => format!("<del>{}</del>", esc(t)),
            DiffPart::Added(t) => format!("<ins>{}</ins>", esc(t)),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A compact word diff in Markdown (see [`diff_parts`]).
pub fn word_diff(before: &str, after: &str) -> String {
    diff_md(&diff_parts(before, after))
}

fn esc(s: &str) -> String {
    html_escape::encode_text(s).into_owned()
}

fn esc_attr(s: &str) -> String {
    html_escape::encode_double_quoted_attribute(s).into_owned()
}

/// The citation status behind a queue item.
fn status_of<'s, 'a>(s: &'s State<'a>, q: &QueueItem) -> Option<&'s CitationStatus<'a>> {
    s.citations.iter().find(|c| c.key == q.citation_key)
}

/// Open items whose reason is in `fail_on` (all open items when `fail_on` is empty).
pub fn failing<'s>(s: &'s State<'_>, fail_on: &[String]) -> Vec<&'s QueueItem> {
    s.open()
        .filter(|q| fail_on.is_empty() || fail_on.iter().any(|r| r == &q.reason))
        .collect()
}

/// `check --format junit`: one test case per citation, a failure for each with a failing open
/// item. JUnit XML as Jenkins, GitLab and GitHub test reporters read it.
pub fn check_junit(s: &State<'_>, fail_on: &[String]) -> String {
    let failing = failing(s, fail_on);
    let mut cases = String::new();
    let mut failures = 0;
    for c in &s.citations {
        let items: Vec<&&QueueItem> = failing.iter().filter(|q| q.citation_key == c.key).collect();
        let name = format!("{} {}", c.citation.dimension, shown(&c.citation.url));
        let _ = write!(
            cases,
            "    <testcase classname=\"{}\" name=\"{}\" file=\"{}\" line=\"{}\">",
            esc_attr(&c.citation.offering),
            esc_attr(&name),
            esc_attr(&c.citation.file.display().to_string()),
            c.citation.line
        );
        if items.is_empty() {
            let _ = write!(
                cases,
                "<system-out>{}: {}</system-out>",
                c.verdict,
                esc(&c.detail)
            );
        } else {
            failures += 1;
            let reasons = items
                .iter()
                .map(|q| q.reason.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let text = items
                .iter()
                .map(|q| format!("#{} {}: {}", q.id, q.reason, q.detail))
                .collect::<Vec<_>>()
                .join("\n");
            let _ = write!(
                cases,
                "<failure message=\"{}\" type=\"{}\">{}</failure>",
                esc_attr(&format!("{reasons}: {}", c.detail)),
                esc_attr(&reasons),
                esc(&text)
            );
        }
        cases.push_str("</testcase>\n");
    }
    let mut n = s.citations.len();
    if let Some(run) = s.incomplete() {
        n += 1;
        failures += 1;
        let _ = writeln!(
            cases,
            "    <testcase classname=\"citewatch\" name=\"last run\"><failure message=\"{}\" type=\"incomplete\"/></testcase>",
            esc_attr(&run.describe())
        );
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"citewatch\" tests=\"{n}\" failures=\"{failures}\">\n  <testsuite name=\"{}\" tests=\"{n}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" timestamp=\"{}\">",
        esc_attr(&s.registry.name),
        s.now.format("%Y-%m-%dT%H:%M:%S"),
    );
    out.push_str(&cases);
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// GitHub's workflow-command escaping for messages (`%`, CR, LF) and properties (also `:` `,`).
fn gh_escape(s: &str, property: bool) -> String {
    let mut out = s
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A");
    if property {
        out = out.replace(':', "%3A").replace(',', "%2C");
    }
    out
}

/// `check --format github`: one `::error` annotation per failing open item, at the citation's
/// file and line, then a summary line.
pub fn check_github(s: &State<'_>, fail_on: &[String]) -> String {
    let mut out = String::new();
    for q in failing(s, fail_on) {
        let (file, line) = status_of(s, q).map_or((String::new(), 1), |c| {
            (c.citation.file.display().to_string(), c.citation.line)
        });
        let title = format!("citewatch: {} {}/{}", q.reason, q.offering, q.dimension);
        let msg = format!(
            "{} — {} (queue item #{})",
            shown(&q.url),
            crate::redact(&q.detail),
            q.id
        );
        let _ = writeln!(
            out,
            "::error file={},line={line},title={}::{}",
            gh_escape(&file, true),
            gh_escape(&title, true),
            gh_escape(&msg, false)
        );
    }
    if let Some(run) = s.incomplete() {
        let _ = writeln!(
            out,
            "::error title={}::{}",
            gh_escape("citewatch: last run incomplete", true),
            gh_escape(&run.describe(), false)
        );
    }
    out.push_str(
        &check_text(s)
            .lines()
            .last()
            .map(|l| format!("{l}\n"))
            .unwrap_or_default(),
    );
    out
}

const HTML_CSS: &str = "body{font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:60rem;padding:1rem;color:#1b1f23;background:#fff}\
h1{font-size:1.5rem}h2{font-size:1.25rem;border-bottom:1px solid #d0d7de;padding-bottom:.25rem;margin-top:2rem}h3{font-size:1.1rem}\
.cell{border:1px solid #d0d7de;border-radius:6px;padding:.75rem;margin:.75rem 0}.meta{color:#57606a;font-size:.85rem}\
.item{border-top:1px solid #eaeef2;padding-top:.5rem;margin-top:.5rem}.reason{display:inline-block;font-weight:600;border-radius:1rem;padding:0 .6rem;background:#ffebe9;color:#82071e}\
.reason.expired{background:#fff8c5;color:#7d4e00}.reason.changed,.reason.moved{background:#ddf4ff;color:#0a3069}\
blockquote{margin:.4rem 0;padding:.25rem .75rem;border-left:4px solid #d0d7de;color:#24292f}code{font-size:.85em;word-break:break-all}\
del{background:#ffebe9;text-decoration:line-through}ins{background:#dafbe1;text-decoration:none}a{color:#0969da;word-break:break-all}\
table{border-collapse:collapse}td{padding:.1rem .5rem .1rem 0;vertical-align:top}@media (max-width:600px){body{padding:.5rem;font-size:14px}}";

/// `report --format html`: one self-contained file (inline CSS, no scripts, a restrictive
/// Content-Security-Policy), readable on a phone; every piece of page or registry text is
/// escaped.
pub fn report_html(s: &State<'_>) -> String {
    let open: Vec<&QueueItem> = s.open().collect();
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><meta name=\"referrer\" content=\"no-referrer\">\
<title>Review report: {}</title><style>{HTML_CSS}</style></head><body>\n",
        esc(&s.registry.name)
    );
    let _ = writeln!(out, "<h1>Review report: {}</h1>", esc(&s.registry.name));
    let _ = writeln!(
        out,
        "<p class=\"meta\">Generated {}. {} citations, <strong id=\"open-count\">{}</strong> open queue item{}.</p>",
        s.now.format("%Y-%m-%d %H:%M UTC"),
        s.citations.len(),
        open.len(),
        if open.len() == 1 { "" } else { "s" }
    );
    let _ = writeln!(out, "<h2>Open items</h2>");
    if open.is_empty() {
        let _ = writeln!(out, "<p>Nothing to re-verify.</p>");
    }
    for (offering, cells) in open_by_cell(s) {
        let _ = writeln!(
            out,
            "<h3>{} <span class=\"meta\">{}</span></h3>",
            esc(&offering.name),
            esc(&offering.id)
        );
        for (cell, cell_items) in cells {
            let dim = s.registry.dimension(&cell.dimension);
            let grade = s.registry.grade(&cell.grade);
            let _ = writeln!(
                out,
                "<section class=\"cell\"><strong>{}</strong> — {} {}<br><span class=\"meta\">{}{}</span>",
                esc(dim.map_or(cell.dimension.as_str(), |d| d.label.as_str())),
                esc(grade.map_or("", |g| g.symbol.as_str())),
                esc(grade.map_or(cell.grade.as_str(), |g| g.label.as_str())),
                esc(&cell.summary),
                cell.verified
                    .map(|v| format!(" Verified {v}."))
                    .unwrap_or_default()
            );
            for q in cell_items {
                let _ = write!(
                    out,
                    "<div class=\"item\" id=\"item-{}\"><span class=\"reason {}\">{}</span> <span class=\"meta\">#{} · first seen {} · last seen {}</span><br><a href=\"{}\" rel=\"noreferrer noopener\">{}</a><p>{}</p>",
                    q.id,
                    esc_attr(&q.reason),
                    esc(&q.reason),
                    q.id,
                    esc(short_ts(&q.first_seen)),
                    esc(short_ts(&q.last_seen)),
                    esc_attr(&safe_href(&shown(&q.url))),
                    esc(&shown(&q.url)),
                    esc(&crate::redact(&q.detail))
                );
                if let Some(st) = status_of(s, q) {
                    out.push_str("<table>");
                    if let Some(quote) = &st.citation.quote {
                        let _ = write!(
                            out,
                            "<tr><td>Quote</td><td><blockquote>{}</blockquote></td></tr>",
                            esc(quote)
                        );
                    }
                    if let Some(found) = &st.found {
                        let _ = write!(
                            out,
                            "<tr><td>Page now</td><td><blockquote>{}</blockquote></td></tr>",
                            esc(found)
                        );
                        if let (Some(quote), Verdict::Drifted) = (&st.citation.quote, st.verdict) {
                            let _ = write!(
                                out,
                                "<tr><td>Diff</td><td>{}</td></tr>",
                                diff_html(&diff_parts(&crate::evidence::normalise(quote), found))
                            );
                        }
                    }
                    if let Some(d) = s.diffs.get(&q.citation_key) {
                        let _ = write!(out, "<tr><td>Change</td><td>{}</td></tr>", diff_html(d));
                    }
                    if let Some(loc) = &st.location {
                        let _ = write!(out, "<tr><td>Found under</td><td>{}</td></tr>", esc(loc));
                    }
                    if let Some(link) = &st.link {
                        let _ = write!(
                            out,
                            "<tr><td>Live</td><td><a href=\"{}\" rel=\"noreferrer noopener\">open at the quote</a></td></tr>",
                            esc_attr(&safe_href(&shown(link)))
                        );
                    }
                    let _ = write!(
                        out,
                        "<tr><td>Snapshots</td><td><code>{}</code> (baseline, {}) → <code>{}</code> (checked {})</td></tr></table>",
                        esc(short_hash(st.baseline.as_deref())),
                        esc(st.baseline_at.as_deref().map_or("none", short_ts)),
                        esc(short_hash(st.snapshot.as_deref())),
                        esc(st.decided_at.as_deref().map_or("never", short_ts))
                    );
                }
                out.push_str("</div>\n");
            }
            out.push_str("</section>\n");
        }
    }
    let _ = writeln!(out, "<h2>Changed sources with evidence intact</h2>");
    let intact: Vec<&CitationStatus<'_>> = s
        .citations
        .iter()
        .filter(|c| {
            c.source_changed() && matches!(c.verdict, Verdict::Verified | Verdict::Unchanged)
        })
        .collect();
    if intact.is_empty() {
        out.push_str("<p>None.</p>\n");
    } else {
        out.push_str("<ul>\n");
        for c in intact {
            let _ = writeln!(
                out,
                "<li>{}/{} <a href=\"{}\" rel=\"noreferrer noopener\">{}</a>: {} <span class=\"meta\">(<code>{}</code> → <code>{}</code>)</span></li>",
                esc(&c.citation.offering),
                esc(&c.citation.dimension),
                esc_attr(&safe_href(&shown(&c.citation.url))),
                esc(&shown(&c.citation.url)),
                c.verdict,
                esc(short_hash(c.baseline.as_deref())),
                esc(short_hash(c.snapshot.as_deref()))
            );
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</body></html>\n");
    out
}

/// A URL for display in a report: credentials and query string removed (they may hold
/// tokens), a `#:~:text=` fragment kept.
fn shown(url: &str) -> String {
    match url.split_once("#:~:") {
        Some((base, frag)) => format!("{}#:~:{frag}", crate::redact(base)),
        None => crate::redact(url),
    }
}

/// Only http(s) links are emitted as links (the registry guarantees it; this keeps the
/// report safe even if that ever changed).
fn safe_href(url: &str) -> String {
    if url.starts_with("https://") || url.starts_with("http://") {
        url.to_string()
    } else {
        "#".into()
    }
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
        assert_eq!(d, "Data is kept for ~~30~~ **90** days and then deleted.");
        let long = "one two three four five six seven eight nine ten eleven twelve";
        let d = word_diff(&format!("{long} old {long}"), &format!("{long} new {long}"));
        assert_eq!(
            d,
            "… seven eight nine ten eleven twelve ~~old~~ **new** one two three four five six …"
        );
    }

    #[test]
    fn github_escaping() {
        assert_eq!(gh_escape("a%b\nc:d,e", false), "a%25b%0Ac:d,e");
        assert_eq!(gh_escape("a:b,c", true), "a%3Ab%2Cc");
    }

    #[test]
    fn md_escape_neutralises_markup() {
        assert_eq!(md_escape("<script>[x](y)"), "\\<script\\>\\[x\\](y)");
    }
}
