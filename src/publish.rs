//! Publishing: the registry as a static site with live freshness on every cell.
//!
//! Pure. [`build`] turns the registry and the recorded state (latest verdicts, open queue
//! items, the verdicts of the last runs) into [`SiteData`], the one structure every page and
//! `data.json` render from; [`pages`] renders it: `index.html`, one compare page per pair, one
//! page per offering with a freshness timeline (an SVG, no JavaScript), `data.json` and its JSON
//! Schema. Pages are self-contained (inline CSS, no scripts, fonts or external styles, a strict
//! Content-Security-Policy), every text from the registry or a page is escaped, and links are
//! relative so the folder can be served from anywhere or opened from disk.

use std::collections::HashMap;
use std::fmt::Write as _;

use chrono::NaiveDate;
use serde::Serialize;

use crate::registry::Registry;
use crate::report::State;
use crate::verdict::Verdict;

/// `data.json`'s schema version (SPEC §4 `schema`).
pub const SCHEMA_VERSION: u32 = 1;

/// The JSON Schema of `data.json`, shipped beside it.
pub const DATA_SCHEMA: &str = include_str!("publish.schema.json");

/// Runs the timeline shows at most.
pub const TIMELINE_RUNS: usize = 90;

/// The seed's sentence above every compare table.
pub const COMPARE_INTRO: &str = "The same dimension can grade differently depending on who serves the model. Every cell links to its source; grades are evidence grades, not endorsements.";

/// Whether a cell's grade is still backed (SPEC §4 `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CellStatus {
    /// Every source was checked on the last run that judged it, and the evidence stands.
    Stands,
    /// An open queue item says the evidence may no longer stand.
    Attention,
    /// The cell's `verified` date is older than its dimension allows.
    Expired,
    /// A source of the cell was never checked, or could not be read on its last check.
    Unchecked,
}

impl CellStatus {
    fn word(self) -> &'static str {
        match self {
            CellStatus::Stands => "stands",
            CellStatus::Attention => "attention",
            CellStatus::Expired => "expired",
            CellStatus::Unchecked => "unchecked",
        }
    }
}

/// What one run said about a cell, for the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunClass {
    /// Every source read and the evidence stood.
    Stands,
    /// A source's evidence did not stand (drifted, missing, changed, gone, blocked, …).
    Attention,
    /// A source could not be read this run (not confirmed either way).
    Unreachable,
}

impl RunClass {
    fn of(v: Verdict) -> Option<RunClass> {
        match v {
            Verdict::Verified | Verdict::Unchanged => Some(RunClass::Stands),
            Verdict::Unreachable => Some(RunClass::Unreachable),
            Verdict::Pending => None,
            _ => Some(RunClass::Attention),
        }
    }

    fn word(self) -> &'static str {
        match self {
            RunClass::Stands => "stands",
            RunClass::Attention => "attention",
            RunClass::Unreachable => "unreachable",
        }
    }
}

/// An open queue item of a cell's source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    /// The queue reason (a verdict word or `expired`).
    pub reason: String,
    /// When it was first seen (RFC 3339).
    pub since: String,
    /// Queue item id.
    pub item: i64,
    /// The source it concerns.
    pub url: String,
}

/// One source of a cell as published.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Source {
    /// URL as written in the registry.
    pub url: String,
    /// Its host, shown beside the link.
    pub host: String,
    /// The quoted evidence, if any.
    pub quote: Option<String>,
    /// Where to open it: the text-fragment deep link to a verified quote, else the URL.
    pub link: String,
    /// Latest verdict.
    pub verdict: Verdict,
    /// When it was last checked (RFC 3339), if ever.
    pub checked_at: Option<String>,
    /// An archived copy of the evidence, when one is known.
    pub archived: Option<String>,
}

/// One graded cell with its freshness.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    /// Dimension id.
    pub dimension: String,
    /// Dimension label.
    pub dimension_label: String,
    /// Grade id.
    pub grade: String,
    /// Grade symbol (● ◐ ◔ ○ ?).
    pub grade_symbol: String,
    /// Grade label.
    pub grade_label: String,
    /// high | medium | low.
    pub confidence: Option<String>,
    /// The cell's summary.
    pub summary: String,
    /// Date a human last checked the evidence.
    pub verified: Option<NaiveDate>,
    /// Whether the grade is still backed.
    pub status: CellStatus,
    /// When a source of the cell was last checked (RFC 3339).
    pub checked_at: Option<String>,
    /// Days since `verified`.
    pub age_days: Option<i64>,
    /// The dimension's age limit.
    pub max_age_days: Option<u32>,
    /// Open items on its sources.
    pub problems: Vec<Problem>,
    /// Its sources.
    pub sources: Vec<Source>,
    /// What each run of the timeline said (None: no verdict that run), oldest first.
    pub timeline: Vec<Option<RunClass>>,
    /// A source could not be read on its last check (so the cell is `unchecked`).
    #[serde(skip)]
    pub unreadable: bool,
}

/// One offering as published.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Offering {
    /// Stable id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Model developer.
    pub developer: String,
    /// Serving platform.
    pub platform: String,
    /// Free-text category.
    pub category: String,
    /// Summary.
    pub summary: String,
    /// Its page in the site.
    pub page: String,
    /// Its cells in the registry's dimension order.
    pub cells: Vec<Cell>,
}

/// A run column of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    /// Run id.
    pub id: i64,
    /// When it started (RFC 3339).
    pub started_at: String,
}

/// A compare page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Compare {
    /// First offering id.
    pub a: String,
    /// Second offering id.
    pub b: String,
    /// Its page in the site.
    pub page: String,
}

/// Everything the site shows; `data.json` is this, serialised.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SiteData {
    /// `data.json` schema version.
    pub schema: u32,
    /// The registry's name.
    pub registry: String,
    /// When the site was generated (RFC 3339).
    pub generated: String,
    /// Offerings in registry order.
    pub offerings: Vec<Offering>,
    /// Compare pages.
    pub compare: Vec<Compare>,
    /// Timeline columns, oldest first.
    pub runs: Vec<Run>,
}

/// The pairs compared by default: every pair of offerings sharing a developer or a platform.
/// A first-party offering (served by its own developer) comes first, as on the seed's page
/// ("Mistral La Plateforme vs Mistral via Azure AI"); otherwise registry order.
pub fn default_pairs(registry: &Registry) -> Vec<(String, String)> {
    let o = &registry.offerings;
    let first_party = |x: &crate::registry::Offering| x.developer == x.platform;
    let mut out = Vec::new();
    for (i, a) in o.iter().enumerate() {
        for b in &o[i + 1..] {
            if a.developer == b.developer || a.platform == b.platform {
                let (a, b) = if first_party(b) && !first_party(a) {
                    (b, a)
                } else {
                    (a, b)
                };
                out.push((a.id.clone(), b.id.clone()));
            }
        }
    }
    out
}

fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default()
}

/// Builds the site's data from the recorded state. `runs` are the timeline's runs (oldest
/// first); `history` the verdicts of those runs as (run id, citation key, verdict word).
pub fn build(
    state: &State<'_>,
    runs: &[(i64, String)],
    history: &[(i64, String, String)],
    pairs: &[(String, String)],
) -> SiteData {
    let registry = state.registry;
    let today = state.now.date_naive();
    let runs: Vec<(i64, String)> = runs
        .iter()
        .skip(runs.len().saturating_sub(TIMELINE_RUNS))
        .cloned()
        .collect();
    let column: HashMap<i64, usize> = runs.iter().enumerate().map(|(i, r)| (r.0, i)).collect();
    let mut by_key: HashMap<&str, Vec<(usize, Verdict)>> = HashMap::new();
    for (run, key, verdict) in history {
        if let (Some(&col), Ok(v)) = (column.get(run), verdict.parse::<Verdict>()) {
            by_key.entry(key.as_str()).or_default().push((col, v));
        }
    }
    let status_of: HashMap<(&str, &str, &str, Option<&str>), &crate::report::CitationStatus<'_>> =
        state
            .citations
            .iter()
            .map(|c| {
                (
                    (
                        c.citation.offering.as_str(),
                        c.citation.dimension.as_str(),
                        c.citation.url.as_str(),
                        c.citation.quote.as_deref(),
                    ),
                    c,
                )
            })
            .collect();
    let mut offerings = Vec::new();
    for o in &registry.offerings {
        let mut cells = Vec::new();
        for d in &registry.dimensions {
            let Some(cell) = o.cells.iter().find(|c| c.dimension == d.id) else {
                continue;
            };
            let grade = registry.grade(&cell.grade);
            let mut sources = Vec::new();
            let mut problems = Vec::new();
            let mut timeline: Vec<Option<RunClass>> = vec![None; runs.len()];
            let mut unchecked = false;
            let mut unreadable = false;
            let mut checked_at: Option<String> = None;
            for c in &cell.citations {
                let st = status_of
                    .get(&(
                        c.offering.as_str(),
                        c.dimension.as_str(),
                        c.url.as_str(),
                        c.quote.as_deref(),
                    ))
                    .copied();
                let verdict = st.map_or(Verdict::Pending, |s| s.verdict);
                // Never checked, or not readable on its last check: nothing confirms it.
                unchecked |= matches!(verdict, Verdict::Pending | Verdict::Unreachable);
                unreadable |= verdict == Verdict::Unreachable;
                let decided = st.and_then(|s| s.decided_at()).map(str::to_string);
                if decided > checked_at {
                    checked_at = decided.clone();
                }
                let link = st
                    .filter(|s| s.verdict == Verdict::Verified)
                    .and_then(|s| s.link())
                    .unwrap_or(&c.url)
                    .to_string();
                sources.push(Source {
                    url: c.url.clone(),
                    host: host_of(&c.url),
                    quote: c.quote.clone(),
                    link,
                    verdict,
                    checked_at: decided,
                    archived: c.archived.clone().or_else(|| {
                        st.and_then(|st| state.archived.get(&st.key.to_string()))
                            .map(|a| a.url.clone())
                    }),
                });
                if let Some(st) = st {
                    for q in state.open().filter(|q| q.citation_key == st.key) {
                        problems.push(Problem {
                            reason: q.reason.clone(),
                            since: q.first_seen.clone(),
                            item: q.id,
                            url: q.url.clone(),
                        });
                    }
                    for (col, v) in by_key
                        .get(st.key.to_string().as_str())
                        .into_iter()
                        .flatten()
                    {
                        let class = RunClass::of(*v);
                        let slot = &mut timeline[*col];
                        *slot = match (*slot, class) {
                            (Some(RunClass::Attention), _) | (_, Some(RunClass::Attention)) => {
                                Some(RunClass::Attention)
                            }
                            (Some(RunClass::Unreachable), _) | (_, Some(RunClass::Unreachable)) => {
                                Some(RunClass::Unreachable)
                            }
                            (a, b) => a.or(b),
                        };
                    }
                }
            }
            problems.sort_by_key(|p| p.item);
            let expired = crate::verdict::is_expired(cell.verified, d.max_age_days, today);
            let status = if problems.iter().any(|p| p.reason != crate::verdict::EXPIRED) {
                CellStatus::Attention
            } else if expired {
                CellStatus::Expired
            } else if unchecked {
                CellStatus::Unchecked
            } else {
                CellStatus::Stands
            };
            cells.push(Cell {
                unreadable,
                dimension: d.id.clone(),
                dimension_label: d.label.clone(),
                grade: cell.grade.clone(),
                grade_symbol: grade.map(|g| g.symbol.clone()).unwrap_or_default(),
                grade_label: grade.map_or(cell.grade.clone(), |g| g.label.clone()),
                confidence: cell.confidence.map(|c| {
                    match c {
                        crate::registry::Confidence::High => "high",
                        crate::registry::Confidence::Medium => "medium",
                        crate::registry::Confidence::Low => "low",
                    }
                    .to_string()
                }),
                summary: cell.summary.clone(),
                verified: cell.verified,
                status,
                checked_at,
                age_days: cell.verified.map(|v| (today - v).num_days()),
                max_age_days: d.max_age_days,
                problems,
                sources,
                timeline,
            });
        }
        offerings.push(Offering {
            id: o.id.clone(),
            name: o.name.clone(),
            developer: o.developer.clone(),
            platform: o.platform.clone(),
            category: o.category.clone(),
            summary: o.summary.clone(),
            page: offering_page(&o.id),
            cells,
        });
    }
    SiteData {
        schema: SCHEMA_VERSION,
        registry: registry.name.clone(),
        generated: state.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        offerings,
        compare: pairs
            .iter()
            .map(|(a, b)| Compare {
                a: a.clone(),
                b: b.clone(),
                page: compare_page(a, b),
            })
            .collect(),
        runs: runs
            .into_iter()
            .map(|(id, started_at)| Run { id, started_at })
            .collect(),
    }
}

fn offering_page(id: &str) -> String {
    format!("offering-{id}.html")
}

fn compare_page(a: &str, b: &str) -> String {
    format!("compare-{a}-vs-{b}.html")
}

fn esc(s: &str) -> String {
    html_escape::encode_text(s).into_owned()
}

fn attr(s: &str) -> String {
    html_escape::encode_double_quoted_attribute(s).into_owned()
}

/// Only http(s) links are emitted (the registry guarantees it; this keeps the site safe if
/// that ever changed).
fn href(url: &str) -> String {
    if url.starts_with("https://") || url.starts_with("http://") {
        attr(url)
    } else {
        "#".into()
    }
}

fn day(ts: &str) -> &str {
    &ts[..ts.len().min(10)]
}

const CSS: &str = "*{box-sizing:border-box}body{font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:78rem;padding:1rem;color:#1b1f23;background:#fff}\
a{color:#0969da;overflow-wrap:anywhere}h1{font-size:1.5rem;margin:.25rem 0}h2{font-size:1.2rem;margin-top:1.75rem}.crumbs,.meta{color:#57606a;font-size:.85rem}\
table.grid{border-collapse:collapse;width:100%;table-layout:fixed}.grid th,.grid td{border:1px solid #d0d7de;padding:.5rem;vertical-align:top;text-align:left;overflow-wrap:anywhere}\
.grid th{background:#f6f8fa}.grid th.dim{width:11rem}.grade{font-weight:600;white-space:nowrap}.sum{margin:.25rem 0}.src{margin:.25rem 0 0;padding-left:1.1rem;font-size:.9rem}\
.fresh{display:inline-block;margin-top:.4rem;padding:.1rem .5rem;border-radius:.75rem;font-size:.85rem;font-weight:600;border:1px solid}\
.fresh.stands{background:#dafbe1;color:#116329;border-color:#4ac26b}.fresh.attention{background:#ffebe9;color:#82071e;border-color:#ff8182}\
.fresh.expired{background:#fff8c5;color:#7d4e00;border-color:#d4a72c}.fresh.unchecked{background:#f6f8fa;color:#57606a;border-color:#afb8c1;border-style:dashed}\
.age{font-size:.8rem;color:#57606a}.tl{overflow-x:auto;border:1px solid #d0d7de;border-radius:6px;padding:.5rem;margin:.5rem 0}.tl svg{display:block}\
.legend span{display:inline-block;margin-right:1rem;font-size:.85rem}.sw{display:inline-block;width:.8rem;height:.8rem;vertical-align:middle;margin-right:.25rem;border:1px solid #8c959f}\
.figs{display:flex;flex-wrap:wrap;gap:.75rem}.fig{border:1px solid #d0d7de;border-radius:6px;padding:.5rem .75rem;min-width:9rem}.fig b{font-size:1.4rem;display:block}\
@media (max-width:700px){body{padding:.5rem;font-size:14px}table.grid,.grid tbody,.grid tr,.grid td{display:block;width:auto}.grid thead{display:none}\
.grid tr{border:1px solid #d0d7de;border-radius:6px;margin:.75rem 0}.grid td{border:0;border-top:1px solid #eaeef2}\
.grid td.dim{background:#f6f8fa;font-weight:700;border-top:0}.grid td[data-label]::before{content:attr(data-label);display:block;font-size:.8rem;color:#57606a;font-weight:600}}";

fn head(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><meta name=\"referrer\" content=\"no-referrer\">\
<title>{}</title><style>{CSS}</style></head><body>\n",
        esc(title)
    )
}

/// The freshness badge of a cell: icon, words and colour, so a stale cell is told apart with
/// and without colour.
fn freshness(c: &Cell) -> String {
    let text = match c.status {
        CellStatus::Stands => format!(
            "✓ checked {}: evidence stands",
            c.checked_at.as_deref().map_or("?", day)
        ),
        CellStatus::Attention => {
            let p = c
                .problems
                .iter()
                .find(|p| p.reason != crate::verdict::EXPIRED);
            match p {
                Some(p) => format!(
                    "⚠ {} since {} (queue #{})",
                    p.reason.replace('_', " "),
                    day(&p.since),
                    p.item
                ),
                None => "⚠ needs attention".into(),
            }
        }
        CellStatus::Expired => format!(
            "⌛ expired: verified {}, limit {} days",
            c.verified.map_or("?".into(), |v| v.to_string()),
            c.max_age_days.unwrap_or(0)
        ),
        CellStatus::Unchecked if c.unreadable => format!(
            "? source unreadable when checked {}",
            c.checked_at.as_deref().map_or("?", day)
        ),
        CellStatus::Unchecked => "? never checked".into(),
    };
    let verified = c
        .verified
        .map(|v| format!("<div class=\"meta\">verified {v}</div>"))
        .unwrap_or_default();
    format!(
        "{verified}<span class=\"fresh {}\" title=\"{}\">{}</span>",
        c.status.word(),
        c.status.word(),
        esc(&text)
    )
}

fn sources_html(c: &Cell) -> String {
    if c.sources.is_empty() {
        return "<p class=\"meta\">No source cited.</p>".into();
    }
    let mut out = String::from("<ul class=\"src\">");
    for s in &c.sources {
        let what = if s.quote.is_some() && s.verdict == Verdict::Verified {
            "quote"
        } else {
            "source"
        };
        let _ = write!(
            out,
            "<li><a href=\"{}\" rel=\"noreferrer noopener\">{}</a> <span class=\"meta\">{} · {}</span>",
            href(&s.link),
            esc(if s.host.is_empty() { &s.url } else { &s.host }),
            what,
            esc(s.verdict.as_str())
        );
        if let Some(q) = &s.quote {
            let _ = write!(out, "<div class=\"meta\">“{}”</div>", esc(q));
        }
        if let Some(a) = &s.archived {
            let _ = write!(
                out,
                " <a href=\"{}\" rel=\"noreferrer noopener\">archived copy</a>",
                href(a)
            );
        }
        out.push_str("</li>");
    }
    out.push_str("</ul>");
    out
}

fn cell_html(c: &Cell) -> String {
    format!(
        "<span class=\"grade\">{} {}</span><p class=\"sum\">{}</p>{}{}",
        esc(&c.grade_symbol),
        esc(&c.grade_label),
        esc(&c.summary),
        sources_html(c),
        freshness(c)
    )
}

/// Renders every file of the site: (file name, contents).
pub fn pages(d: &SiteData) -> Vec<(String, String)> {
    let mut out = vec![("index.html".to_string(), index_html(d))];
    for c in &d.compare {
        let (Some(a), Some(b)) = (
            d.offerings.iter().find(|o| o.id == c.a),
            d.offerings.iter().find(|o| o.id == c.b),
        ) else {
            continue;
        };
        out.push((c.page.clone(), compare_html(d, a, b)));
    }
    for o in &d.offerings {
        out.push((o.page.clone(), offering_html(d, o)));
    }
    let mut json = serde_json::to_string_pretty(d).unwrap_or_else(|_| "{}".into());
    json.push('\n');
    out.push(("data.json".into(), json));
    out.push(("data.schema.json".into(), DATA_SCHEMA.to_string()));
    out
}

fn compare_html(d: &SiteData, a: &Offering, b: &Offering) -> String {
    let title = format!("{} vs {}", a.name, b.name);
    let mut out = head(&format!("{title} — {}", d.registry));
    let _ = writeln!(
        out,
        "<p class=\"crumbs\"><a href=\"index.html\">Registry</a> / compare</p><h1>{}</h1><p>{}</p>",
        esc(&title),
        esc(COMPARE_INTRO)
    );
    let _ = writeln!(
        out,
        "<table class=\"grid\"><thead><tr><th class=\"dim\">Dimension</th><th><a href=\"{}\">{}</a></th><th><a href=\"{}\">{}</a></th></tr></thead><tbody>",
        attr(&a.page),
        esc(&a.name),
        attr(&b.page),
        esc(&b.name)
    );
    // One row per dimension in the registry's order (the order of the offerings' cells).
    let mut dims: Vec<(&str, &str)> = Vec::new();
    for c in a.cells.iter().chain(&b.cells) {
        if !dims.iter().any(|(id, _)| *id == c.dimension) {
            dims.push((&c.dimension, &c.dimension_label));
        }
    }
    let order: Vec<&str> = d
        .offerings
        .iter()
        .flat_map(|o| o.cells.iter().map(|c| c.dimension.as_str()))
        .collect();
    dims.sort_by_key(|(id, _)| order.iter().position(|o| o == id));
    for (id, label) in dims {
        let _ = write!(
            out,
            "<tr data-dimension=\"{}\"><td class=\"dim\">{}</td>",
            attr(id),
            esc(label)
        );
        for o in [a, b] {
            let cell = o.cells.iter().find(|c| c.dimension == id);
            let _ = write!(
                out,
                "<td data-label=\"{}\" data-status=\"{}\">{}</td>",
                attr(&o.name),
                cell.map_or("", |c| c.status.word()),
                cell.map_or_else(
                    || "<span class=\"meta\">not graded</span>".into(),
                    cell_html
                )
            );
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
    let _ = writeln!(out, "{}", footer(d));
    out
}

fn footer(d: &SiteData) -> String {
    format!(
        "<p class=\"meta\">Generated {} by citewatch from the registry “{}”. <a href=\"data.json\">data.json</a></p></body></html>",
        esc(day(&d.generated)),
        esc(&d.registry)
    )
}

/// Colours of the timeline's classes (and of "no verdict that run").
fn class_colour(c: Option<RunClass>) -> &'static str {
    match c {
        Some(RunClass::Stands) => "#4ac26b",
        Some(RunClass::Attention) => "#cf222e",
        Some(RunClass::Unreachable) => "#d4a72c",
        None => "#ffffff",
    }
}

/// The freshness timeline: one row per cell, one column per run, no script.
fn timeline_svg(d: &SiteData, o: &Offering) -> String {
    const LABEL: usize = 190;
    const COL: usize = 12;
    const ROW: usize = 20;
    let cols = d.runs.len();
    let width = LABEL + (cols.max(1) * COL).max(200) + 10;
    let height = o.cells.len() * ROW + 40;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"Freshness of each cell over the last {cols} runs\" font-family=\"system-ui,sans-serif\" font-size=\"12\">"
    );
    for (r, c) in o.cells.iter().enumerate() {
        let y = r * ROW + 4;
        let label: String = c.dimension_label.chars().take(26).collect();
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#24292f\">{}</text>",
            LABEL - 8,
            y + 12,
            esc(&label)
        );
        for (i, class) in c.timeline.iter().enumerate() {
            let run = &d.runs[i];
            let _ = write!(
                out,
                "<rect class=\"run\" data-run=\"{}\" x=\"{}\" y=\"{y}\" width=\"{}\" height=\"{}\" fill=\"{}\" stroke=\"#d0d7de\"><title>{}: {} ({})</title></rect>",
                run.id,
                LABEL + i * COL,
                COL - 2,
                ROW - 4,
                class_colour(*class),
                esc(&c.dimension_label),
                class.map_or("no verdict", |c| c.word()),
                esc(day(&run.started_at))
            );
        }
    }
    let y = o.cells.len() * ROW + 20;
    if let (Some(first), Some(last)) = (d.runs.first(), d.runs.last()) {
        let span = if cols == 1 {
            format!("run of {}", day(&first.started_at))
        } else {
            format!(
                "{cols} runs, {} → {}",
                day(&first.started_at),
                day(&last.started_at)
            )
        };
        let _ = write!(
            out,
            "<text x=\"{LABEL}\" y=\"{y}\" fill=\"#57606a\">{}</text>",
            esc(&span)
        );
    } else {
        let _ = write!(
            out,
            "<text x=\"{LABEL}\" y=\"{y}\" fill=\"#57606a\">no runs recorded yet</text>"
        );
    }
    out.push_str("</svg>");
    out
}

fn offering_html(d: &SiteData, o: &Offering) -> String {
    let mut out = head(&format!("{} — {}", o.name, d.registry));
    let _ = writeln!(
        out,
        "<p class=\"crumbs\"><a href=\"index.html\">Registry</a> / {}</p><h1>{}</h1><p class=\"meta\">{} · developer {} · platform {}</p><p>{}</p>",
        esc(&o.platform),
        esc(&o.name),
        esc(&o.category),
        esc(&o.developer),
        esc(&o.platform),
        esc(&o.summary)
    );
    let _ = writeln!(
        out,
        "<h2>Freshness, last {} run{}</h2><div class=\"tl\">{}</div><p class=\"legend\"><span><i class=\"sw\" style=\"background:#4ac26b\"></i>evidence stands</span><span><i class=\"sw\" style=\"background:#cf222e\"></i>needs attention</span><span><i class=\"sw\" style=\"background:#d4a72c\"></i>unreachable</span><span><i class=\"sw\" style=\"background:#fff\"></i>no verdict</span></p>",
        d.runs.len(),
        if d.runs.len() == 1 { "" } else { "s" },
        timeline_svg(d, o)
    );
    let _ = writeln!(
        out,
        "<h2>Cells</h2><table class=\"grid\"><thead><tr><th class=\"dim\">Dimension</th><th>Grade and evidence</th><th style=\"width:12rem\">Age</th></tr></thead><tbody>"
    );
    for c in &o.cells {
        let age = match (c.age_days, c.max_age_days) {
            (Some(a), Some(m)) => format!("{a} of {m} days"),
            (Some(a), None) => format!("{a} days (no limit)"),
            _ => "not verified".into(),
        };
        let _ = writeln!(
            out,
            "<tr data-dimension=\"{}\"><td class=\"dim\">{}</td><td data-label=\"Grade and evidence\" data-status=\"{}\">{}</td><td data-label=\"Age of the evidence\" class=\"age\">{}</td></tr>",
            attr(&c.dimension),
            esc(&c.dimension_label),
            c.status.word(),
            cell_html(c),
            esc(&age)
        );
    }
    out.push_str("</tbody></table>\n");
    let _ = writeln!(out, "{}", footer(d));
    out
}

fn index_html(d: &SiteData) -> String {
    let mut out = head(&d.registry);
    let _ = writeln!(out, "<h1>{}</h1>", esc(&d.registry));
    let cells: Vec<&Cell> = d.offerings.iter().flat_map(|o| &o.cells).collect();
    let count = |s: CellStatus| cells.iter().filter(|c| c.status == s).count();
    let _ = writeln!(
        out,
        "<div class=\"figs\"><div class=\"fig\"><b>{}</b>cells whose evidence stands</div><div class=\"fig\"><b>{}</b>cells with open items</div><div class=\"fig\"><b>{}</b>cells past their age limit</div><div class=\"fig\"><b>{}</b>cells never checked</div></div>",
        count(CellStatus::Stands),
        count(CellStatus::Attention),
        count(CellStatus::Expired),
        count(CellStatus::Unchecked)
    );
    if !d.compare.is_empty() {
        out.push_str("<h2>Compare</h2><ul>");
        for c in &d.compare {
            let name = |id: &str| {
                d.offerings
                    .iter()
                    .find(|o| o.id == id)
                    .map_or(id.to_string(), |o| o.name.clone())
            };
            let _ = write!(
                out,
                "<li><a href=\"{}\">{} vs {}</a></li>",
                attr(&c.page),
                esc(&name(&c.a)),
                esc(&name(&c.b))
            );
        }
        out.push_str("</ul>");
    }
    let mut platforms: Vec<&str> = Vec::new();
    for o in &d.offerings {
        if !platforms.contains(&o.platform.as_str()) {
            platforms.push(&o.platform);
        }
    }
    for p in platforms {
        let _ = writeln!(out, "<h2>{}</h2><ul>", esc(p));
        for o in d.offerings.iter().filter(|o| o.platform == p) {
            let stands = o
                .cells
                .iter()
                .filter(|c| c.status == CellStatus::Stands)
                .count();
            let _ = writeln!(
                out,
                "<li><a href=\"{}\">{}</a> <span class=\"meta\">{} · {stands} of {} cells stand</span></li>",
                attr(&o.page),
                esc(&o.name),
                esc(&o.developer),
                o.cells.len()
            );
        }
        out.push_str("</ul>");
    }
    let _ = writeln!(out, "{}", footer(d));
    out
}
