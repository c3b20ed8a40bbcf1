//! The unvalidated TOML shapes and their checks. Every field that a message may point at is
//! `Spanned`, so problems carry the line a person must edit.

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDate;
use serde::Deserialize;
use toml::Spanned;
use url::Url;

use super::{
    Cell, Citation, Confidence, Dimension, Grade, NO_EVIDENCE, Offering, Problem, Render, Reporter,
    SourceFile, Vocabulary,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistry {
    name: Spanned<String>,
    #[serde(default)]
    grades: Vec<Spanned<RawGrade>>,
    #[serde(default)]
    dimensions: Vec<Spanned<RawDimension>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrade {
    id: Spanned<String>,
    symbol: Spanned<String>,
    label: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDimension {
    id: Spanned<String>,
    label: String,
    question: String,
    group: Option<String>,
    max_age_days: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOffering {
    id: Spanned<String>,
    name: String,
    developer: String,
    platform: String,
    category: String,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    cells: BTreeMap<Spanned<String>, Spanned<RawCell>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCell {
    grade: Spanned<String>,
    confidence: Option<Spanned<String>>,
    verified: Option<Spanned<toml::value::Datetime>>,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    sources: Vec<Spanned<RawSource>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    url: Spanned<String>,
    quote: Option<Spanned<String>>,
    #[serde(default)]
    absent: Vec<Spanned<String>>,
    selector: Option<Spanned<String>>,
    render: Option<Spanned<String>>,
    archived: Option<Spanned<String>>,
}

/// Deserializes one file, reporting a syntax or shape error at its line.
fn decode<T: for<'de> Deserialize<'de>>(rep: &mut Reporter<'_>) -> Option<T> {
    match toml::from_str::<T>(&rep.file.text) {
        Ok(v) => Some(v),
        Err(e) => {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            // toml's message spans several lines with a source excerpt; keep the first.
            let msg = e.message().lines().next().unwrap_or("invalid TOML").trim();
            rep.error(offset, format!("invalid TOML: {msg}"));
            None
        }
    }
}

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

pub(super) fn parse_vocabulary(
    file: &SourceFile,
    problems: &mut Vec<Problem>,
) -> Option<Vocabulary> {
    let mut rep = Reporter::new(file, problems);
    let raw: RawRegistry = decode(&mut rep)?;
    let errors_before = rep.problems.len();
    if raw.name.get_ref().trim().is_empty() {
        rep.error(raw.name.span().start, "`name` must not be empty");
    }
    if raw.grades.is_empty() {
        rep.error(0, "no [[grades]] defined");
    }
    if raw.dimensions.is_empty() {
        rep.error(0, "no [[dimensions]] defined");
    }
    let mut grades = Vec::new();
    let mut seen = HashSet::new();
    for g in raw.grades {
        let g = g.into_inner();
        let id = g.id.get_ref().clone();
        if !is_id(&id) {
            rep.error(
                g.id.span().start,
                format!("grade id `{id}` must be lowercase letters, digits, `_` or `-`"),
            );
        } else if !seen.insert(id.clone()) {
            rep.error(g.id.span().start, format!("duplicate grade id `{id}`"));
        }
        if g.symbol.get_ref().trim().is_empty() {
            rep.error(
                g.symbol.span().start,
                format!("grade `{id}` has an empty symbol"),
            );
        }
        grades.push(Grade {
            id,
            symbol: g.symbol.into_inner(),
            label: g.label,
        });
    }
    let mut dimensions = Vec::new();
    let mut seen = HashSet::new();
    for d in raw.dimensions {
        let d = d.into_inner();
        let id = d.id.get_ref().clone();
        if !is_id(&id) {
            rep.error(
                d.id.span().start,
                format!("dimension id `{id}` must be lowercase letters, digits, `_` or `-`"),
            );
        } else if !seen.insert(id.clone()) {
            rep.error(d.id.span().start, format!("duplicate dimension id `{id}`"));
        }
        let max_age_days = match d.max_age_days {
            None => None,
            Some(m) => match u32::try_from(*m.get_ref()) {
                Ok(v) if v > 0 => Some(v),
                _ => {
                    rep.error(
                        m.span().start,
                        format!("max_age_days of `{id}` must be a positive number of days"),
                    );
                    None
                }
            },
        };
        dimensions.push(Dimension {
            id,
            label: d.label,
            question: d.question,
            group: d.group,
            max_age_days,
        });
    }
    let ok = !rep.errors_since(errors_before);
    ok.then(|| Vocabulary {
        name: raw.name.into_inner(),
        dimension_ids: dimensions.iter().map(|d| d.id.clone()).collect(),
        grades,
        dimensions,
    })
}

pub(super) fn parse_offering(
    rep: &mut Reporter<'_>,
    vocab: Option<&Vocabulary>,
) -> Option<Offering> {
    let raw: RawOffering = decode(rep)?;
    let errors_before = rep.problems.len();
    let id = raw.id.get_ref().clone();
    let stem = rep
        .file
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if id != stem {
        rep.error(
            raw.id.span().start,
            format!("offering id `{id}` must equal the file stem `{stem}`"),
        );
    } else if !is_id(&id) {
        rep.error(
            raw.id.span().start,
            format!("offering id `{id}` must be lowercase letters, digits, `_` or `-`"),
        );
    }
    let mut cells_in_order: Vec<(Spanned<String>, Spanned<RawCell>)> =
        raw.cells.into_iter().collect();
    cells_in_order.sort_by_key(|(k, _)| k.span().start);
    let mut cells = Vec::new();
    let file: std::sync::Arc<std::path::Path> = std::sync::Arc::from(rep.file.path.as_path());
    for (key, cell) in cells_in_order {
        let dim = key.get_ref().clone();
        let cell_line = rep.line_of(key.span().start);
        if let Some(v) = vocab
            && !v.dimension_ids.contains(dim.as_str())
        {
            rep.error(
                key.span().start,
                format!("`cells.{dim}`: no dimension `{dim}` in registry.toml"),
            );
        }
        let cell = cell.into_inner();
        if let Some(v) = vocab
            && !v.has_grade(cell.grade.get_ref())
        {
            rep.error(
                cell.grade.span().start,
                format!(
                    "`cells.{dim}`: unknown grade `{}` (known: {})",
                    cell.grade.get_ref(),
                    join_ids(v.grades.iter().map(|g| g.id.as_str()))
                ),
            );
        }
        let confidence = cell.confidence.and_then(|c| match c.get_ref().as_str() {
            "high" => Some(Confidence::High),
            "medium" => Some(Confidence::Medium),
            "low" => Some(Confidence::Low),
            other => {
                rep.error(
                    c.span().start,
                    format!("`cells.{dim}`: confidence `{other}` must be high, medium or low"),
                );
                None
            }
        });
        let verified = match cell.verified {
            None => {
                rep.warning(
                    key.span().start,
                    format!("`cells.{dim}` has no `verified` date; its evidence can never expire"),
                );
                None
            }
            Some(v) => match date_of(v.get_ref()) {
                Some(d) => Some(d),
                None => {
                    rep.error(v.span().start, format!("`cells.{dim}`: verified must be a plain date like 2026-07-05, not `{}`", v.get_ref()));
                    None
                }
            },
        };
        if cell.sources.is_empty() && cell.grade.get_ref() != NO_EVIDENCE {
            rep.warning(
                key.span().start,
                format!(
                    "`cells.{dim}` is graded `{}` but cites no source",
                    cell.grade.get_ref()
                ),
            );
        }
        // Exactly sized: a cell usually cites one or two sources, and a growing Vec would keep
        // room for four (a 100,000-cell registry spent 114 MB on the empty slots).
        let mut citations = Vec::with_capacity(cell.sources.len());
        let mut identities = HashSet::new();
        for src in cell.sources {
            let at = src.span().start;
            let src = src.into_inner();
            if let Some(c) = citation(rep, &id, &dim, at, src, &file) {
                if !identities.insert((c.url.clone(), c.quote.clone())) {
                    rep.error(
                        at,
                        format!("`cells.{dim}` cites `{}` with the same quote twice", c.url),
                    );
                }
                citations.push(c);
            }
        }
        citations.shrink_to_fit();
        cells.push(Cell {
            dimension: dim,
            grade: cell.grade.into_inner(),
            confidence,
            verified,
            summary: cell.summary,
            citations,
            line: cell_line,
        });
    }
    cells.shrink_to_fit();
    let ok = !rep.errors_since(errors_before);
    ok.then(|| Offering {
        id,
        name: raw.name,
        developer: raw.developer,
        platform: raw.platform,
        category: raw.category,
        summary: raw.summary,
        file: rep.file.path.clone(),
        cells,
    })
}

fn citation(
    rep: &mut Reporter<'_>,
    offering: &str,
    dim: &str,
    at: usize,
    src: RawSource,
    file: &std::sync::Arc<std::path::Path>,
) -> Option<Citation> {
    let errors_before = rep.problems.len();
    let url_text = src.url.get_ref().clone();
    // Checked here, parsed again where fetched (see `Citation::fetch_url`).
    let parses = web_url(rep, dim, "URL", src.url.span().start, &url_text).is_some();
    let archived = match src.archived {
        Some(a) => {
            let at = a.span().start;
            let text = a.into_inner();
            web_url(rep, dim, "archived URL", at, &text).map(|_| text)
        }
        None => None,
    };
    let quote = match src.quote {
        Some(q) if q.get_ref().trim().is_empty() => {
            rep.error(
                q.span().start,
                format!("`cells.{dim}`: quote is empty (leave it out instead)"),
            );
            None
        }
        Some(q) => {
            if q.get_ref().trim().chars().count() < 12 {
                rep.warning(
                    q.span().start,
                    format!(
                        "`cells.{dim}`: quote `{}` is very short and may match by accident",
                        q.get_ref()
                    ),
                );
            }
            Some(q.into_inner())
        }
        None => None,
    };
    let mut absent = Vec::new();
    for term in src.absent {
        if term.get_ref().trim().is_empty() {
            rep.error(
                term.span().start,
                format!("`cells.{dim}`: empty term in `absent`"),
            );
        } else {
            absent.push(term.into_inner());
        }
    }
    let selector = match src.selector {
        Some(s) => match scraper::Selector::parse(s.get_ref()) {
            Ok(_) => Some(s.into_inner()),
            // scraper's parse errors read "Unexpected error occurred..." over several lines;
            // the selector itself says more.
            Err(_) => {
                rep.error(
                    s.span().start,
                    format!("`cells.{dim}`: invalid CSS selector `{}`", s.get_ref()),
                );
                None
            }
        },
        None => None,
    };
    let render = match src.render {
        None => Render::Http,
        Some(r) => match r.get_ref().as_str() {
            "http" => Render::Http,
            "browser" => Render::Browser,
            other => {
                rep.error(
                    r.span().start,
                    format!("`cells.{dim}`: render `{other}` must be \"http\" or \"browser\""),
                );
                Render::Http
            }
        },
    };
    // Only errors drop a citation (and then block the whole registry); a warning such as a
    // very short quote leaves it to be judged like any other.
    if rep.errors_since(errors_before) || !parses {
        return None;
    }
    Some(Citation {
        offering: offering.to_string(),
        dimension: dim.to_string(),
        url: url_text,
        quote,
        absent,
        selector,
        render,
        archived,
        file: file.clone(),
        line: rep.line_of(at),
    })
}

/// Checks a URL written in the registry (a source's `url` or `archived`): it must parse, be http
/// or https, carry no credentials and name a host. Returns it without its fragment (never sent).
fn web_url(rep: &mut Reporter<'_>, dim: &str, what: &str, at: usize, text: &str) -> Option<Url> {
    match Url::parse(text) {
        Err(e) => {
            rep.error(at, format!("`cells.{dim}`: invalid {what} `{text}`: {e}"));
            None
        }
        Ok(u) if !matches!(u.scheme(), "http" | "https") => {
            rep.error(
                at,
                format!("`cells.{dim}`: {what} `{text}` must be http or https"),
            );
            None
        }
        Ok(u) if !u.username().is_empty() || u.password().is_some() => {
            rep.error(
                at,
                format!("`cells.{dim}`: {what} `{text}` must not carry credentials"),
            );
            None
        }
        Ok(u) if u.host_str().is_none_or(str::is_empty) => {
            rep.error(at, format!("`cells.{dim}`: {what} `{text}` has no host"));
            None
        }
        Ok(mut u) => {
            u.set_fragment(None);
            Some(u)
        }
    }
}

fn date_of(dt: &toml::value::Datetime) -> Option<NaiveDate> {
    match (dt.date, dt.time, dt.offset) {
        (Some(d), None, None) => {
            NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
        }
        _ => None,
    }
}

fn join_ids<'a>(ids: impl Iterator<Item = &'a str>) -> String {
    ids.collect::<Vec<_>>().join(", ")
}
