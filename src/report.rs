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
    pub key: crate::registry::CitationKey,
    /// Latest verdict (`pending` if never checked).
    pub verdict: Verdict,
    /// Whether the cell's evidence is older than allowed.
    pub expired: bool,
    /// The latest verdict as recorded (`None`: never checked), with the columns the output
    /// asked for.
    pub recorded: Option<Box<crate::store::RecordedVerdict>>,
}

impl CitationStatus<'_> {
    /// The verdict's explanation.
    pub fn detail(&self) -> &str {
        match &self.recorded {
            Some(r) => r.detail(),
            None => "not checked yet",
        }
    }
    /// When the verdict was decided.
    pub fn decided_at(&self) -> Option<&str> {
        self.recorded.as_ref().map(|r| r.decided_at())
    }
    /// Snapshot judged last.
    pub fn snapshot(&self) -> Option<&str> {
        self.recorded.as_ref().and_then(|r| r.snapshot_hash())
    }
    /// Baseline snapshot.
    pub fn baseline(&self) -> Option<&str> {
        self.recorded.as_ref().and_then(|r| r.baseline_snapshot())
    }
    /// When the baseline was set (first reading, or the last resolve).
    pub fn baseline_at(&self) -> Option<&str> {
        self.recorded.as_ref().and_then(|r| r.baseline_at())
    }
    /// Near-match variant found.
    pub fn found(&self) -> Option<&str> {
        self.recorded.as_ref().and_then(|r| r.found())
    }
    /// Live link to the quote (text fragment).
    pub fn link(&self) -> Option<&str> {
        self.recorded.as_ref().and_then(|r| r.link())
    }
    /// Where on the page the quote is.
    pub fn location(&self) -> Option<&str> {
        self.recorded.as_ref().and_then(|r| r.location())
    }
    /// Whether the source's bytes differ from the baseline.
    pub fn source_changed(&self) -> bool {
        matches!((self.snapshot(), self.baseline()), (Some(s), Some(b)) if s != b)
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
    /// Reviews of open items (change hunks, where a quote went), by citation key.
    pub reviews: HashMap<String, Review>,
    /// Time of rendering.
    pub now: DateTime<Utc>,
    /// The latest run and how it ended, if any run was recorded.
    pub last_run: Option<LastRun>,
    /// Notification targets with events waiting (filled by `check`).
    pub notifications: Vec<Undelivered>,
    /// Archived copies of lost evidence, by citation key.
    pub archived: HashMap<String, crate::archive::ArchivedCopy>,
}

/// A notification target with events it has not accepted yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Undelivered {
    /// The target as people see it (kind and host or repository).
    pub target: String,
    /// Events waiting for it.
    pub undelivered: i64,
    /// Its latest error (secrets redacted).
    pub error: Option<String>,
}

/// What a reviewer sees of one citation's change, built once from the stored snapshots and
/// rendered the same way by every format.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Review {
    /// Sentence hunks from baseline to now, when the source's wording changed.
    pub changes: Option<crate::review::ChangeSet>,
    /// For a quote that drifted, went missing or changed context: where it stood and what
    /// comes closest now.
    pub whereabouts: Option<crate::review::Whereabouts>,
}

/// The review of one citation from its baseline and current texts, or None when there is
/// nothing to show.
pub fn review_of(
    st: &CitationStatus<'_>,
    baseline: Option<&crate::extract::Extracted>,
    current: &crate::extract::Extracted,
) -> Option<Review> {
    let mut changes = baseline
        .filter(|_| st.source_changed())
        .map(|b| {
            crate::review::changes(&crate::review::outline(b), &crate::review::outline(current))
        })
        .filter(|c| !c.hunks.is_empty());
    let whereabouts = match (&st.citation.quote, st.verdict) {
        (Some(q), Verdict::Missing | Verdict::Drifted | Verdict::ContextChanged) => {
            Some(crate::review::whereabouts(q, baseline, current))
        }
        _ => None,
    };
    // A quote's reviewer needs the changes where the quote stood, not the whole page's.
    if st.citation.quote.is_some() {
        let section = whereabouts
            .as_ref()
            .and_then(|w| w.before.as_ref())
            .map(|p| p.section.clone());
        changes = changes.and_then(|mut c| {
            let section = section?;
            c.hunks.retain(|h| h.section == section);
            (!c.hunks.is_empty()).then_some(c)
        });
    }
    (changes.is_some() || whereabouts.is_some()).then_some(Review {
        changes,
        whereabouts,
    })
}

/// One open item with everything its renderers need, looked up once.
#[derive(Debug, Clone)]
pub struct ItemView<'s, 'a> {
    /// The queue item.
    pub item: &'s QueueItem,
    /// Its citation's recorded state.
    pub status: Option<&'s CitationStatus<'a>>,
    /// Its review, when there is something to show.
    pub review: Option<&'s Review>,
    /// The archived copy of its evidence, when one was found.
    pub archived: Option<&'s crate::archive::ArchivedCopy>,
}

/// One cell with open items.
#[derive(Debug, Clone)]
pub struct CellView<'s, 'a> {
    /// The cell.
    pub cell: &'a crate::registry::Cell,
    /// The dimension's label.
    pub dimension: &'a str,
    /// The grade's symbol and label.
    pub grade: (&'a str, &'a str),
    /// Its open items.
    pub items: Vec<ItemView<'s, 'a>>,
}

/// The open items of one offering, by cell in registry order.
#[derive(Debug, Clone)]
pub struct OfferingView<'s, 'a> {
    /// The offering.
    pub offering: &'a crate::registry::Offering,
    /// Its cells with open items.
    pub cells: Vec<CellView<'s, 'a>>,
}

/// The review report's view model: open items grouped by offering and cell, each with its
/// status and review. Every report format renders this one structure.
pub fn open_view<'s, 'a>(s: &'s State<'a>) -> Vec<OfferingView<'s, 'a>> {
    let registry: &'a Registry = s.registry;
    let mut out = Vec::new();
    for offering in &registry.offerings {
        let mut cells = Vec::new();
        for cell in &offering.cells {
            let items: Vec<ItemView<'s, 'a>> = s
                .open()
                .filter(|q| q.offering == offering.id && q.dimension == cell.dimension)
                .map(|q| item_view(s, q))
                .collect();
            if items.is_empty() {
                continue;
            }
            let dimension = registry
                .dimension(&cell.dimension)
                .map_or(cell.dimension.as_str(), |d| d.label.as_str());
            let grade = registry
                .grade(&cell.grade)
                .map_or(("", cell.grade.as_str()), |g| {
                    (g.symbol.as_str(), g.label.as_str())
                });
            cells.push(CellView {
                cell,
                dimension,
                grade,
                items,
            });
        }
        if !cells.is_empty() {
            out.push(OfferingView { offering, cells });
        }
    }
    out
}

/// The view of one queue item (open or not).
pub fn item_view<'s, 'a>(s: &'s State<'a>, q: &'s QueueItem) -> ItemView<'s, 'a> {
    ItemView {
        item: q,
        status: status_of(s, q),
        review: s.reviews.get(&q.citation_key),
        archived: s.archived.get(&q.citation_key),
    }
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
    #[serde(serialize_with = "path_as_shown")]
    file: &'a std::path::Path,
    line: usize,
}

/// A path as `Path::display` shows it, written without an intermediate `String`.
fn path_as_shown<S: serde::Serializer>(p: &&std::path::Path, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&p.display())
}

/// A sequence serialised one element at a time from an iterator: `check --format json` never
/// holds a second copy of 100,000 citations.
struct Streamed<F>(F);

impl<F, I> Serialize for Streamed<F>
where
    F: Fn() -> I,
    I: Iterator,
    I::Item: Serialize,
{
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq((self.0)())
    }
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
    /// SPEC §4: where an archived copy was found, its `url`, `captured` and `stands`.
    #[serde(skip_serializing_if = "Option::is_none")]
    archived: Option<&'a crate::archive::ArchivedCopy>,
}

#[derive(Serialize)]
struct JsonCheck<'a, C, Q> {
    registry: &'a str,
    generated_at: String,
    stale: bool,
    open_items: usize,
    /// The latest run ended abnormally and left citations unjudged.
    incomplete: bool,
    /// Citations never checked.
    pending: usize,
    last_run: Option<&'a LastRun>,
    /// Notification targets with events waiting.
    notifications: &'a [Undelivered],
    citations: C,
    queue: Q,
}

/// `check --format json`: one object with `citations[]` and `queue[]` (SPEC §4).
pub fn check_json(s: &State<'_>) -> String {
    let mut out = Vec::new();
    // Writing into memory cannot fail, and every field serialises.
    let _ = write_check_json(s, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// [`check_json`], streamed into `w` (a large registry's output is never held whole).
pub fn write_check_json(s: &State<'_>, w: &mut impl std::io::Write) -> std::io::Result<()> {
    let citations = Streamed(|| {
        s.citations.iter().map(|c| JsonCitation {
            offering: &c.citation.offering,
            dimension: &c.citation.dimension,
            url: &c.citation.url,
            verdict: c.verdict,
            expired: c.expired,
            quote: c.citation.quote.as_deref(),
            detail: c.detail(),
            link: c.link(),
            location: c.location(),
            checked_at: c.decided_at(),
            file: &c.citation.file,
            line: c.citation.line,
        })
    });
    let queue = Streamed(|| {
        s.queue.iter().map(|q| JsonQueue {
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
            archived: s.archived.get(&q.citation_key),
        })
    });
    let open_items = s.open().count();
    let out = JsonCheck {
        registry: &s.registry.name,
        generated_at: s.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        stale: open_items > 0,
        open_items,
        incomplete: s.incomplete().is_some(),
        pending: s.never_checked(),
        last_run: s.last_run.as_ref(),
        notifications: &s.notifications,
        citations,
        queue,
    };
    serde_json::to_writer_pretty(&mut *w, &out).map_err(std::io::Error::other)?;
    w.write_all(b"\n")
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
    for n in &s.notifications {
        let _ = writeln!(
            out,
            "NOTIFY: {} event{} not yet delivered to {}{}; they go out with the next run or `citewatch notify`",
            n.undelivered,
            if n.undelivered == 1 { "" } else { "s" },
            n.target,
            n.error
                .as_deref()
                .map(|e| format!(" (last error: {e})"))
                .unwrap_or_default()
        );
    }
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
    for ov in open_view(s) {
        let offering = ov.offering;
        let _ = writeln!(
            out,
            "### {} (`{}`)\n",
            md_escape(&offering.name),
            offering.id
        );
        for cv in &ov.cells {
            let cell = cv.cell;
            let _ = writeln!(
                out,
                "#### {} — {} {}\n",
                md_escape(cv.dimension),
                cv.grade.0,
                md_escape(cv.grade.1)
            );
            if !cell.summary.is_empty() {
                let _ = writeln!(out, "> {}\n", md_escape(&cell.summary));
            }
            if let Some(v) = cell.verified {
                let _ = writeln!(out, "Verified {v}.\n");
            }
            for iv in &cv.items {
                out.push_str(&item_md(iv));
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
            short_hash(c.baseline()),
            short_hash(c.snapshot())
        );
    }
    out
}

/// One queue item as a Markdown list entry: reason, link, detail, quote, where it went, the
/// change hunks and the snapshots. The report and GitHub issues use it alike.
pub fn item_md(iv: &ItemView<'_, '_>) -> String {
    let mut out = String::new();
    let q = iv.item;
    let status = iv.status;
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
        if let Some(a) = iv.archived {
            let _ = writeln!(
                out,
                "  - archived: {} <{}>",
                md_escape(&a.describe(st.citation.quote.is_some())),
                shown(&a.url)
            );
        }
        if let Some(found) = &st.found() {
            let _ = writeln!(out, "  - page now says: “{}”", md_escape(found));
            if let (Some(quote), Verdict::Drifted) = (&st.citation.quote, st.verdict) {
                let _ = writeln!(
                    out,
                    "  - quote → page: {}",
                    word_diff(&crate::evidence::normalise(quote), found)
                );
            }
        }
        if let Some(loc) = &st.location() {
            let _ = writeln!(out, "  - found under: {}", md_escape(loc));
        }
        if let Some(link) = &st.link() {
            let _ = writeln!(out, "  - live: <{}>", shown(link));
        }
        if let Some(r) = iv.review {
            if let Some(w) = &r.whereabouts {
                out.push_str(&whereabouts_md(w, st.verdict, "  "));
            }
            if let Some(c) = &r.changes {
                out.push_str(&changes_md(c, "  "));
            }
        }
        let _ = writeln!(
            out,
            "  - snapshots: baseline `{}` ({}), current `{}` ({})",
            short_hash(st.baseline()),
            st.baseline_at().map_or("none", short_ts),
            short_hash(st.snapshot()),
            st.decided_at().map_or("never", short_ts)
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

/// One side of a changed sentence pair from its word diff: the words it shares with the other
/// side, and its own changed words passed through `mark` — consecutive changed words as one
/// mark, even where the diff alternates removals and additions ("[-processing addendum-]",
/// not "[-processing-] [-addendum-]").
fn pair_side(
    parts: &[DiffPart],
    before: bool,
    mark: impl Fn(&str) -> String,
    same: impl Fn(&str) -> String,
) -> String {
    let mut words = Vec::new();
    let mut pending: Vec<&str> = Vec::new();
    let flush = |pending: &mut Vec<&str>, words: &mut Vec<String>| {
        if !pending.is_empty() {
            words.push(mark(&pending.join(" ")));
            pending.clear();
        }
    };
    for p in parts {
        match p {
            DiffPart::Same(t) => {
                flush(&mut pending, &mut words);
                words.push(same(t));
            }
            DiffPart::Gap => {
                flush(&mut pending, &mut words);
                words.push("…".to_string());
            }
            DiffPart::Removed(t) if before => pending.push(t),
            DiffPart::Added(t) if !before => pending.push(t),
            _ => {}
        }
    }
    flush(&mut pending, &mut words);
    words.join(" ")
}

/// Lines of one hunk a terminal shows.
const TERMINAL_HUNK_LINES: usize = 12;

/// Changed sections named before the list says "and N more".
const SECTIONS_LISTED: usize = 12;

/// The first changed sections' titles, each passed through `fmt` (escaping for the format).
fn section_names(c: &crate::review::ChangeSet, fmt: impl Fn(&str) -> String) -> Vec<String> {
    c.summary
        .sections_changed
        .iter()
        .take(SECTIONS_LISTED)
        .map(|s| fmt(hunk_title(s)))
        .collect()
}

fn more_sections(c: &crate::review::ChangeSet) -> String {
    let n = c.summary.sections_changed.len();
    if n > SECTIONS_LISTED {
        format!(" and {} more", n - SECTIONS_LISTED)
    } else {
        String::new()
    }
}

/// A hunk's title: its heading path, or where on the page it is when there is none.
fn hunk_title(section: &str) -> &str {
    if section.is_empty() {
        "(before the first heading)"
    } else {
        section
    }
}

/// The hunk lines as plain `diff`-like text: `  ` context, `- ` removed, `+ ` added, changed
/// words of a reworded sentence marked `[-…-]` and `{+…+}` (wdiff's convention).
fn hunk_lines_plain(h: &crate::review::Hunk) -> Vec<String> {
    use crate::review::HunkLine;
    let mut out = Vec::new();
    for l in &h.lines {
        match l {
            HunkLine::Context { text } => out.push(format!("  {text}")),
            HunkLine::Removed { text } => out.push(format!("- {text}")),
            HunkLine::Added { text } => out.push(format!("+ {text}")),
            HunkLine::Changed { parts, .. } => {
                out.push(format!(
                    "- {}",
                    pair_side(parts, true, |t| format!("[-{t}-]"), str::to_string)
                ));
                out.push(format!(
                    "+ {}",
                    pair_side(parts, false, |t| format!("{{+{t}+}}"), str::to_string)
                ));
            }
            HunkLine::MovedOut { text, to } => {
                out.push(format!("- [moved to «{}»] {text}", hunk_title(to)))
            }
            HunkLine::MovedIn { text, from } => {
                out.push(format!("+ [moved from «{}»] {text}", hunk_title(from)))
            }
        }
    }
    out
}

/// A change set in Markdown: the summary line, the changed sections, then one ```` ```diff ````
/// block per hunk (`@@ section @@`, `-`/`+` per sentence); past the shown count the rest are
/// folded in `<details>`. Every line starts with `indent`.
pub fn changes_md(c: &crate::review::ChangeSet, indent: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{indent}- change: {}", md_escape(&c.summary.line()));
    if !c.summary.sections_changed.is_empty() {
        let names = section_names(c, |s| format!("«{}»", md_escape(s)));
        let _ = writeln!(
            out,
            "{indent}- changed sections: {}{}",
            names.join(", "),
            more_sections(c)
        );
    }
    let shown = c.shown();
    for (n, h) in c.hunks.iter().enumerate() {
        if n == shown {
            let _ = writeln!(
                out,
                "\n{indent}<details><summary>{} more hunk{}</summary>\n",
                c.hunks.len() - shown,
                if c.hunks.len() - shown == 1 { "" } else { "s" }
            );
        }
        let lines = hunk_lines_plain(h);
        let longest_ticks = lines
            .iter()
            .flat_map(|l| l.split(|ch| ch != '`'))
            .map(str::len)
            .max()
            .unwrap_or(0);
        let fence = "`".repeat(longest_ticks.max(2) + 1);
        let _ = writeln!(out, "\n{indent}{fence}diff");
        let _ = writeln!(
            out,
            "{indent}@@ {} @@",
            hunk_title(&h.section).replace('\n', " ")
        );
        for l in lines {
            let _ = writeln!(out, "{indent}{}", l.replace(['\n', '\r'], " "));
        }
        let _ = writeln!(out, "{indent}{fence}");
    }
    if shown < c.hunks.len() {
        let _ = writeln!(out, "\n{indent}</details>\n");
    }
    out
}

/// Where a quote went, in Markdown list lines starting with `indent`.
pub fn whereabouts_md(w: &crate::review::Whereabouts, verdict: Verdict, indent: &str) -> String {
    let mut out = String::new();
    let under = |p: &crate::review::Passage| {
        if p.section.is_empty() {
            String::new()
        } else {
            format!(" (under «{}»)", md_escape(&p.section))
        }
    };
    if let Some(b) = &w.before {
        let _ = writeln!(
            out,
            "{indent}- at baseline{}: “{}”",
            under(b),
            md_escape(&b.text)
        );
    }
    if verdict == Verdict::ContextChanged {
        if let Some(n) = &w.now_exact {
            let _ = writeln!(out, "{indent}- now{}: “{}”", under(n), md_escape(&n.text));
        }
        return out;
    }
    match &w.closest {
        Some(c) => {
            let _ = writeln!(
                out,
                "{indent}- closest passage now{}, {:.0}% of the quote's words: “{}”",
                under(c),
                w.best_share * 100.0,
                md_escape(&c.text)
            );
            let _ = writeln!(
                out,
                "{indent}- quote → closest: {}",
                diff_md(&w.closest_diff)
            );
        }
        None => {
            let _ = writeln!(out, "{indent}- {}", w.none_line());
        }
    }
    out
}

/// A change set in HTML: the summary, the changed sections, one collapsible `<details>` per
/// hunk (the first ones open, the rest folded inside one more `<details>`).
pub fn changes_html(c: &crate::review::ChangeSet) -> String {
    use crate::review::HunkLine;
    let mut out = String::from("<div class=\"changes\">");
    let _ = write!(out, "<p class=\"summary\">{}</p>", esc(&c.summary.line()));
    if !c.summary.sections_changed.is_empty() {
        let names = section_names(c, |s| format!("<span class=\"sec\">{}</span>", esc(s)));
        let _ = write!(
            out,
            "<p class=\"meta\">Changed sections: {}{}</p>",
            names.join(" · "),
            esc(&more_sections(c))
        );
    }
    let shown = c.shown();
    for (n, h) in c.hunks.iter().enumerate() {
        if n == shown {
            let _ = write!(
                out,
                "<details class=\"more\"><summary>{} more hunk{}</summary>",
                c.hunks.len() - shown,
                if c.hunks.len() - shown == 1 { "" } else { "s" }
            );
        }
        let _ = write!(
            out,
            "<details class=\"hunk\"{}><summary>{}</summary>",
            if n < shown { " open" } else { "" },
            esc(hunk_title(&h.section))
        );
        for l in &h.lines {
            match l {
                HunkLine::Context { text } => {
                    let _ = write!(out, "<div class=\"hl ctx\">{}</div>", esc(text));
                }
                HunkLine::Removed { text } => {
                    let _ = write!(out, "<div class=\"hl del\"><b>−</b> {}</div>", esc(text));
                }
                HunkLine::Added { text } => {
                    let _ = write!(out, "<div class=\"hl add\"><b>+</b> {}</div>", esc(text));
                }
                HunkLine::Changed { parts, .. } => {
                    let _ = write!(
                        out,
                        "<div class=\"hl del\"><b>−</b> {}</div><div class=\"hl add\"><b>+</b> {}</div>",
                        pair_side(parts, true, |t| format!("<del>{}</del>", esc(t)), esc),
                        pair_side(parts, false, |t| format!("<ins>{}</ins>", esc(t)), esc)
                    );
                }
                HunkLine::MovedOut { text, to } => {
                    let _ = write!(
                        out,
                        "<div class=\"hl mv\"><b>↷</b> <i>moved to «{}»:</i> {}</div>",
                        esc(hunk_title(to)),
                        esc(text)
                    );
                }
                HunkLine::MovedIn { text, from } => {
                    let _ = write!(
                        out,
                        "<div class=\"hl mv\"><b>↶</b> <i>moved here from «{}»:</i> {}</div>",
                        esc(hunk_title(from)),
                        esc(text)
                    );
                }
            }
        }
        out.push_str("</details>");
    }
    if shown < c.hunks.len() {
        out.push_str("</details>");
    }
    out.push_str("</div>");
    out
}

/// Where a quote went, as HTML table rows.
pub fn whereabouts_html(w: &crate::review::Whereabouts, verdict: Verdict) -> String {
    let mut out = String::new();
    let under = |p: &crate::review::Passage| {
        if p.section.is_empty() {
            String::new()
        } else {
            format!("<div class=\"meta\">under «{}»</div>", esc(&p.section))
        }
    };
    if let Some(b) = &w.before {
        let _ = write!(
            out,
            "<tr><td>At baseline</td><td><blockquote>{}</blockquote>{}</td></tr>",
            esc(&b.text),
            under(b)
        );
    }
    if verdict == Verdict::ContextChanged {
        if let Some(n) = &w.now_exact {
            let _ = write!(
                out,
                "<tr><td>Now</td><td><blockquote>{}</blockquote>{}</td></tr>",
                esc(&n.text),
                under(n)
            );
        }
        return out;
    }
    match &w.closest {
        Some(c) => {
            let _ = write!(
                out,
                "<tr><td>Closest now</td><td><blockquote>{}</blockquote>{}<div class=\"meta\">{:.0}% of the quote's words</div><div>{}</div></td></tr>",
                esc(&c.text),
                under(c),
                w.best_share * 100.0,
                diff_html(&w.closest_diff)
            );
        }
        None => {
            let _ = write!(
                out,
                "<tr><td>Closest now</td><td>{}</td></tr>",
                esc(&w.none_line())
            );
        }
    }
    out
}

/// A change set for the terminal: red and green with the changed words in reverse video when
/// `colour`, otherwise the plain `-`/`+` form.
pub fn changes_text(c: &crate::review::ChangeSet, colour: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "change: {}", c.summary.line());
    if !c.summary.sections_changed.is_empty() {
        let names = section_names(c, str::to_string);
        let _ = writeln!(
            out,
            "changed sections: {}{}",
            names.join("; "),
            more_sections(c)
        );
    }
    let shown = c.shown();
    for h in c.hunks.iter().take(shown) {
        let title = format!("@@ {} @@", hunk_title(&h.section));
        if colour {
            let _ = writeln!(out, "\x1b[36m{title}\x1b[0m");
        } else {
            let _ = writeln!(out, "{title}");
        }
        // A terminal shows the start of a long hunk; the reports have all of it.
        let hidden = h.lines.len().saturating_sub(TERMINAL_HUNK_LINES);
        let more = |out: &mut String| {
            if hidden > 0 {
                let _ = writeln!(
                    out,
                    "  … {hidden} more line{} (see `citewatch report`)",
                    if hidden == 1 { "" } else { "s" }
                );
            }
        };
        if !colour {
            let lines = hunk_lines_plain(&crate::review::Hunk {
                section: h.section.clone(),
                lines: h.lines.iter().take(TERMINAL_HUNK_LINES).cloned().collect(),
            });
            for l in lines {
                let _ = writeln!(out, "{l}");
            }
            more(&mut out);
            continue;
        }
        use crate::review::HunkLine;
        for l in h.lines.iter().take(TERMINAL_HUNK_LINES) {
            let line = match l {
                HunkLine::Context { text } => format!("\x1b[2m  {text}\x1b[0m"),
                HunkLine::Removed { text } => format!("\x1b[31m- {text}\x1b[0m"),
                HunkLine::Added { text } => format!("\x1b[32m+ {text}\x1b[0m"),
                HunkLine::Changed { parts, .. } => format!(
                    "\x1b[31m- {}\x1b[0m\n\x1b[32m+ {}\x1b[0m",
                    pair_side(
                        parts,
                        true,
                        |t| format!("\x1b[7m{t}\x1b[27m"),
                        str::to_string
                    ),
                    pair_side(
                        parts,
                        false,
                        |t| format!("\x1b[7m{t}\x1b[27m"),
                        str::to_string
                    )
                ),
                HunkLine::MovedOut { text, to } => {
                    format!("\x1b[33m- [moved to «{}»] {text}\x1b[0m", hunk_title(to))
                }
                HunkLine::MovedIn { text, from } => {
                    format!(
                        "\x1b[33m+ [moved from «{}»] {text}\x1b[0m",
                        hunk_title(from)
                    )
                }
            };
            let _ = writeln!(out, "{line}");
        }
        more(&mut out);
    }
    if shown < c.hunks.len() {
        let _ = writeln!(
            out,
            "… {} more hunk{} (see `citewatch report`)",
            c.hunks.len() - shown,
            if c.hunks.len() - shown == 1 { "" } else { "s" }
        );
    }
    out
}

/// Where a quote went, for the terminal.
pub fn whereabouts_text(w: &crate::review::Whereabouts, verdict: Verdict) -> String {
    let mut out = String::new();
    let under = |p: &crate::review::Passage| {
        if p.section.is_empty() {
            String::new()
        } else {
            format!(" (under «{}»)", p.section)
        }
    };
    if let Some(b) = &w.before {
        let _ = writeln!(out, "at baseline{}: “{}”", under(b), b.text);
    }
    if verdict == Verdict::ContextChanged {
        if let Some(n) = &w.now_exact {
            let _ = writeln!(out, "now{}: “{}”", under(n), n.text);
        }
        return out;
    }
    match &w.closest {
        Some(c) => {
            let _ = writeln!(
                out,
                "closest passage now{}, {:.0}% of the quote's words: “{}”",
                under(c),
                w.best_share * 100.0,
                c.text
            );
            let plain: Vec<String> = w
                .closest_diff
                .iter()
                .map(|p| match p {
                    DiffPart::Same(t) => t.clone(),
                    DiffPart::Gap => "…".into(),
                    DiffPart::Removed(t) => format!("[-{t}-]"),
                    DiffPart::Added(t) => format!("{{+{t}+}}"),
                })
                .collect();
            let _ = writeln!(out, "quote → closest: {}", plain.join(" "));
        }
        None => {
            let _ = writeln!(out, "{}", w.none_line());
        }
    }
    out
}

/// One queue item in full for the terminal (`citewatch queue show`): the citation, what the
/// page says now, where a quote went, the change hunks, the snapshots and the commands that
/// would settle it. Colour when `colour` (a terminal), plain otherwise.
pub fn item_text(v: &ItemView<'_, '_>, colour: bool) -> String {
    let q = v.item;
    let mut out = String::new();
    let bold = |t: &str| {
        if colour {
            format!("\x1b[1m{t}\x1b[0m")
        } else {
            t.to_string()
        }
    };
    let _ = writeln!(
        out,
        "{} {}/{}",
        bold(&format!("#{} {} ({})", q.id, q.reason, q.status)),
        q.offering,
        q.dimension
    );
    let _ = writeln!(out, "url:         {}", shown(&q.url));
    let _ = writeln!(out, "detail:      {}", crate::redact(&q.detail));
    let _ = writeln!(
        out,
        "seen:        first {}, last {}",
        short_ts(&q.first_seen),
        short_ts(&q.last_seen)
    );
    if let Some(c) = &q.closed_at {
        let _ = writeln!(
            out,
            "closed:      {} by {}: {}",
            short_ts(c),
            q.closed_by.as_deref().unwrap_or("?"),
            q.note.as_deref().unwrap_or("")
        );
    }
    if let Some(st) = v.status {
        if let Some(quote) = &st.citation.quote {
            let _ = writeln!(out, "quote:       “{quote}”");
        }
        if let Some(a) = v.archived {
            let _ = writeln!(
                out,
                "archived:    {} ({})",
                a.describe(st.citation.quote.is_some()),
                shown(&a.url)
            );
        }
        if let Some(found) = &st.found() {
            let _ = writeln!(out, "page now:    “{found}”");
        }
        if let Some(loc) = &st.location() {
            let _ = writeln!(out, "found under: {loc}");
        }
        if let Some(link) = &st.link() {
            let _ = writeln!(out, "live:        {}", shown(link));
        }
        let _ = writeln!(
            out,
            "snapshots:   baseline {} ({}) → current {} ({})",
            short_hash(st.baseline()),
            st.baseline_at().map_or("none", short_ts),
            short_hash(st.snapshot()),
            st.decided_at().map_or("never", short_ts)
        );
        let _ = writeln!(
            out,
            "registry:    {}:{}",
            st.citation.file.display(),
            st.citation.line
        );
        if let Some(r) = v.review {
            if let Some(w) = &r.whereabouts {
                out.push('\n');
                out.push_str(&whereabouts_text(w, st.verdict));
            }
            if let Some(c) = &r.changes {
                out.push('\n');
                out.push_str(&changes_text(c, colour));
            }
        }
    }
    if q.status == "open" {
        let _ = writeln!(out, "\n{}", bold("settle it:"));
        let accept = match q.reason.as_str() {
            "drifted" => Some("the quote becomes the page's wording; verified becomes today"),
            "moved" => Some("the URL becomes the redirect's target; verified becomes today"),
            "expired" | "context_changed" => Some("verified becomes today"),
            _ => None,
        };
        if let Some(what) = accept {
            let _ = writeln!(
                out,
                "  citewatch queue accept {} [--dry-run]   # {what}",
                q.id
            );
        }
        let _ = writeln!(
            out,
            "  citewatch queue resolve {} --note \"…\"   # after editing the registry or re-checking",
            q.id
        );
        let _ = writeln!(
            out,
            "  citewatch queue dismiss {} --note \"…\"   # not a real problem",
            q.id
        );
    }
    out
}

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
                esc(c.detail())
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
                esc_attr(&format!("{reasons}: {}", c.detail())),
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
table{border-collapse:collapse;width:100%;table-layout:fixed}td{padding:.1rem .5rem .1rem 0;vertical-align:top;overflow-wrap:anywhere}td:first-child{width:6.5rem;color:#57606a}\
.changes .summary{font-weight:600;margin:.25rem 0}.sec{white-space:normal}.hunk,.more{border:1px solid #d0d7de;border-radius:6px;margin:.4rem 0}\
.hunk>summary,.more>summary{cursor:pointer;padding:.25rem .5rem;background:#f6f8fa;font-weight:600;overflow-wrap:anywhere}.more{padding:0 .4rem}\
.hl{padding:.15rem .5rem;white-space:pre-wrap;overflow-wrap:anywhere;font-size:.9rem}.hl.del{background:#fff0ee}.hl.add{background:#eafbef}.hl.ctx{color:#57606a}.hl.mv{background:#fff8c5}.hl b{font-family:ui-monospace,monospace}\
@media (max-width:600px){body{padding:.5rem;font-size:14px}table,tbody,tr,td{display:block;width:auto}td:first-child{width:auto;font-weight:600;padding-top:.4rem}}";

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
    for ov in open_view(s) {
        let offering = ov.offering;
        let _ = writeln!(
            out,
            "<h3>{} <span class=\"meta\">{}</span></h3>",
            esc(&offering.name),
            esc(&offering.id)
        );
        for cv in &ov.cells {
            let cell = cv.cell;
            let _ = writeln!(
                out,
                "<section class=\"cell\"><strong>{}</strong> — {} {}<br><span class=\"meta\">{}{}</span>",
                esc(cv.dimension),
                esc(cv.grade.0),
                esc(cv.grade.1),
                esc(&cell.summary),
                cell.verified
                    .map(|v| format!(" Verified {v}."))
                    .unwrap_or_default()
            );
            for iv in &cv.items {
                let q = iv.item;
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
                if let Some(st) = iv.status {
                    out.push_str("<table>");
                    if let Some(quote) = &st.citation.quote {
                        let _ = write!(
                            out,
                            "<tr><td>Quote</td><td><blockquote>{}</blockquote></td></tr>",
                            esc(quote)
                        );
                    }
                    if let Some(a) = iv.archived {
                        let _ = write!(
                            out,
                            "<tr><td>Archived</td><td><a href=\"{}\" rel=\"noreferrer noopener\">{}</a></td></tr>",
                            esc_attr(&safe_href(&shown(&a.url))),
                            esc(&a.describe(st.citation.quote.is_some()))
                        );
                    }
                    if let Some(found) = &st.found() {
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
                    let review = iv.review;
                    if let Some(w) = review.and_then(|r| r.whereabouts.as_ref()) {
                        out.push_str(&whereabouts_html(w, st.verdict));
                    }
                    if let Some(c) = review.and_then(|r| r.changes.as_ref()) {
                        let _ = write!(out, "<tr><td>Change</td><td>{}</td></tr>", changes_html(c));
                    }
                    if let Some(loc) = &st.location() {
                        let _ = write!(out, "<tr><td>Found under</td><td>{}</td></tr>", esc(loc));
                    }
                    if let Some(link) = &st.link() {
                        let _ = write!(
                            out,
                            "<tr><td>Live</td><td><a href=\"{}\" rel=\"noreferrer noopener\">open at the quote</a></td></tr>",
                            esc_attr(&safe_href(&shown(link)))
                        );
                    }
                    let _ = write!(
                        out,
                        "<tr><td>Snapshots</td><td><code>{}</code> (baseline, {}) → <code>{}</code> (checked {})</td></tr></table>",
                        esc(short_hash(st.baseline())),
                        esc(st.baseline_at().map_or("none", short_ts)),
                        esc(short_hash(st.snapshot())),
                        esc(st.decided_at().map_or("never", short_ts))
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
                esc(short_hash(c.baseline())),
                esc(short_hash(c.snapshot()))
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
