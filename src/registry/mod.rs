//! The registry: offerings graded on dimensions, each graded cell citing sources.
//!
//! This module owns the boundary between the TOML files people edit and the validated
//! [`Registry`] the rest of citewatch works on. [`parse`] takes file contents (never the file
//! system: [`load`] is the thin I/O edge that reads `registry/`) and returns either a
//! registry or every problem found, each naming its file and line. After this boundary
//! nothing re-checks: a [`Citation`] always has an http(s) URL, a known dimension and grade,
//! and a parsed selector.
//!
//! The unvalidated shapes (`RawRegistry`, `RawOffering`, ...) are private: they exist only
//! to carry spans so that problems can point at the line a person has to fix.

mod cache;
mod load;
mod raw;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

pub mod edit;
pub use cache::load_cached;
pub use load::{LoadError, load, load_with, read};

/// One registry file's path (as shown in messages) and its text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path as it should appear in messages, e.g. `registry/offerings/x.toml`.
    pub path: PathBuf,
    /// The file's full text.
    pub text: String,
}

/// The validated registry.
#[derive(Debug, Clone)]
pub struct Registry {
    /// Display name from `registry.toml`.
    pub name: String,
    /// Grades, ordered best to worst as written.
    pub grades: Vec<Grade>,
    /// Dimensions in file order.
    pub dimensions: Vec<Dimension>,
    /// Offerings ordered by id.
    pub offerings: Vec<Offering>,
}

/// An evidence grade such as `yes_public` (●).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grade {
    /// Stable id used in offering files.
    pub id: String,
    /// One-character symbol shown on compare pages.
    pub symbol: String,
    /// Human label.
    pub label: String,
}

/// A question every offering is graded on, e.g. SOC 2 Type II.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dimension {
    /// Stable id used as the cell key.
    pub id: String,
    /// Short label.
    pub label: String,
    /// The question a grade answers.
    pub question: String,
    /// Optional grouping for display.
    pub group: Option<String>,
    /// Evidence verified longer ago than this many days is `expired`.
    pub max_age_days: Option<u32>,
}

/// An AI model as one provider serves it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Offering {
    /// Stable id, equal to the file stem.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Who develops the model.
    pub developer: String,
    /// Who serves it.
    pub platform: String,
    /// Free-text category.
    pub category: String,
    /// One-paragraph description.
    pub summary: String,
    /// File the offering came from, for messages.
    pub file: PathBuf,
    /// Graded cells in file order.
    pub cells: Vec<Cell>,
}

/// How confident the grader is in a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    /// Strong, direct evidence.
    High,
    /// Evidence with gaps.
    Medium,
    /// Inferred or indirect.
    Low,
}

/// One offering's grade on one dimension, with its evidence.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cell {
    /// The dimension id.
    pub dimension: String,
    /// The grade id.
    pub grade: String,
    /// Optional confidence.
    pub confidence: Option<Confidence>,
    /// Date a human last checked the evidence.
    pub verified: Option<NaiveDate>,
    /// Text shown for the cell.
    pub summary: String,
    /// Sources cited, in file order.
    pub citations: Vec<Citation>,
    /// Line of the `[cells.<dimension>]` header.
    pub line: usize,
}

/// How a source is fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Render {
    /// A plain HTTP GET.
    #[default]
    Http,
    /// Rendered in a headless browser.
    Browser,
}

/// One source entry of one cell: a URL, usually a quote, and what to watch for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Citation {
    /// Offering id.
    pub offering: String,
    /// Dimension id.
    pub dimension: String,
    /// The URL exactly as written in the registry.
    pub url: String,
    /// The sentence quoted as evidence, if any.
    pub quote: Option<String>,
    /// Terms whose appearance must be flagged.
    pub absent: Vec<String>,
    /// CSS selector limiting which part of an HTML page counts.
    pub selector: Option<String>,
    /// Fetch method.
    pub render: Render,
    /// An archived copy of the evidence (`archived = "URL"`), used instead of an archive lookup.
    pub archived: Option<String>,
    /// File the citation is written in (shared by the citations of one file; not in the
    /// parse cache, which restores it from its offering's file).
    #[serde(skip, default = "no_file")]
    pub file: std::sync::Arc<std::path::Path>,
    /// Line of its `[[cells.x.sources]]` header.
    pub line: usize,
}

/// A citation's file before the parse cache restores it (see [`cache`]).
fn no_file() -> std::sync::Arc<std::path::Path> {
    std::sync::Arc::from(std::path::Path::new(""))
}

impl Citation {
    /// The URL as fetched: parsed, fragment removed (it is never sent). Parsed on demand
    /// rather than kept (a parsed URL per citation cost 14 MB at 100,000 citations). The
    /// registry checked it parses; a citation built otherwise with a URL that does not gets a
    /// reserved name that never resolves (RFC 6761), so it is judged unreachable, never skipped.
    pub fn fetch_url(&self) -> Url {
        match Url::parse(&self.url) {
            Ok(mut u) => {
                u.set_fragment(None);
                u
            }
            Err(_) => Url::parse("http://invalid.invalid/").expect("constant URL"),
        }
    }

    /// The citation's identity: (offering, dimension, url, quote). Editing any of these makes a
    /// new citation; reordering sources does not. Hex SHA-256 over the four parts.
    pub fn key(&self) -> String {
        self.identity().to_string()
    }

    /// [`Citation::key`] as bytes: no allocation, for maps over every citation.
    pub fn identity(&self) -> CitationKey {
        CitationKey::of(
            &self.offering,
            &self.dimension,
            &self.url,
            self.quote.as_deref(),
        )
    }
}

/// A citation's identity key as bytes (the first 16 bytes of SHA-256 over its identifying
/// parts); displayed as the 32 hex digits stored in the database.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CitationKey([u8; 16]);

impl CitationKey {
    /// The key of the citation with these four identifying parts.
    pub fn of(offering: &str, dimension: &str, url: &str, quote: Option<&str>) -> CitationKey {
        let mut h = Sha256::new();
        for part in [offering, dimension, url] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        match quote {
            Some(q) => {
                h.update([1u8]);
                h.update(q.as_bytes());
            }
            None => h.update([0u8]),
        }
        let mut key = [0u8; 16];
        key.copy_from_slice(&h.finalize()[..16]);
        CitationKey(key)
    }

    /// Parses the 32 hex digits of a stored key; `None` for anything else (such a key
    /// belongs to no citation of any registry).
    pub fn from_hex(s: &str) -> Option<CitationKey> {
        let mut key = [0u8; 16];
        hex::decode_to_slice(s, &mut key).ok()?;
        // Stored keys are lower case; an upper-case spelling is a different key.
        (s.bytes().all(|b| !b.is_ascii_uppercase())).then_some(CitationKey(key))
    }
}

impl fmt::Display for CitationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 32];
        // Cannot fail: the buffer is exactly twice the key's length.
        let _ = hex::encode_to_slice(self.0, &mut buf);
        f.write_str(std::str::from_utf8(&buf).unwrap_or_default())
    }
}

impl fmt::Debug for CitationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl PartialEq<str> for CitationKey {
    fn eq(&self, other: &str) -> bool {
        CitationKey::from_hex(other) == Some(*self)
    }
}

impl PartialEq<CitationKey> for String {
    fn eq(&self, other: &CitationKey) -> bool {
        other == self.as_str()
    }
}

impl PartialEq<String> for CitationKey {
    fn eq(&self, other: &String) -> bool {
        self == other.as_str()
    }
}

/// Computes the identity key of a citation from its four identifying parts.
pub fn citation_key(offering: &str, dimension: &str, url: &str, quote: Option<&str>) -> String {
    CitationKey::of(offering, dimension, url, quote).to_string()
}

impl Registry {
    /// Every citation of every offering, in offering, cell and source order.
    pub fn citations(&self) -> impl Iterator<Item = &Citation> {
        self.offerings
            .iter()
            .flat_map(|o| o.cells.iter())
            .flat_map(|c| c.citations.iter())
    }

    /// Every citation with its cell, in the order of [`Registry::citations`], without a
    /// lookup per citation (registries grow to 100,000 citations).
    pub fn citations_in_cells(&self) -> impl Iterator<Item = (&Cell, &Citation)> {
        self.offerings
            .iter()
            .flat_map(|o| o.cells.iter())
            .flat_map(|cell| cell.citations.iter().map(move |c| (cell, c)))
    }

    /// Each dimension's age limit by id.
    pub fn age_limits(&self) -> std::collections::HashMap<&str, Option<u32>> {
        self.dimensions
            .iter()
            .map(|d| (d.id.as_str(), d.max_age_days))
            .collect()
    }

    /// The dimension with this id.
    pub fn dimension(&self, id: &str) -> Option<&Dimension> {
        self.dimensions.iter().find(|d| d.id == id)
    }

    /// The grade with this id.
    pub fn grade(&self, id: &str) -> Option<&Grade> {
        self.grades.iter().find(|g| g.id == id)
    }

    /// The offering with this id.
    pub fn offering(&self, id: &str) -> Option<&Offering> {
        self.offerings.iter().find(|o| o.id == id)
    }

    /// The cell a citation belongs to.
    pub fn cell_of(&self, c: &Citation) -> Option<&Cell> {
        self.offering(&c.offering)?
            .cells
            .iter()
            .find(|cell| cell.dimension == c.dimension)
    }
}

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Severity {
    /// The registry cannot be used until this is fixed.
    Error,
    /// Worth fixing; the registry still works.
    Warning,
}

/// A problem found in a registry file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Problem {
    /// File, as given in [`SourceFile::path`].
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, in one line.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{}:{}: {}: {}",
            self.file.display(),
            self.line,
            sev,
            self.message
        )
    }
}

/// The result of parsing: a registry when no error was found, and every problem either way.
#[derive(Debug)]
pub struct Parsed {
    /// `Some` exactly when `problems` holds no error.
    pub registry: Option<Registry>,
    /// Errors and warnings, ordered by file and line.
    pub problems: Vec<Problem>,
}

impl Parsed {
    /// True when at least one problem is an error.
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(|p| p.severity == Severity::Error)
    }
}

/// Collects problems for one file, turning byte offsets into lines.
struct Reporter<'a> {
    file: &'a SourceFile,
    problems: &'a mut Vec<Problem>,
    /// Byte offsets of the file's newlines, so a line number is a binary search, not a scan
    /// from the top (which made linting quadratic in file size).
    newlines: Vec<usize>,
}

impl<'a> Reporter<'a> {
    fn new(file: &'a SourceFile, problems: &'a mut Vec<Problem>) -> Reporter<'a> {
        let newlines = file
            .text
            .bytes()
            .enumerate()
            .filter(|(_, b)| *b == b'\n')
            .map(|(i, _)| i)
            .collect();
        Reporter {
            file,
            problems,
            newlines,
        }
    }

    fn line_of(&self, offset: usize) -> usize {
        self.newlines.partition_point(|&n| n < offset) + 1
    }
    fn error(&mut self, offset: usize, message: impl Into<String>) {
        let line = self.line_of(offset);
        self.push(line, Severity::Error, message.into());
    }
    fn warning(&mut self, offset: usize, message: impl Into<String>) {
        let line = self.line_of(offset);
        self.push(line, Severity::Warning, message.into());
    }
    /// Whether an error (not a warning) was reported since `mark` (a length of `problems`).
    /// Warnings never remove anything from the registry; only errors do.
    fn errors_since(&self, mark: usize) -> bool {
        self.problems[mark..]
            .iter()
            .any(|p| p.severity == Severity::Error)
    }
    fn push(&mut self, line: usize, severity: Severity, message: String) {
        self.problems.push(Problem {
            file: self.file.path.clone(),
            line,
            severity,
            message,
        });
    }
}

/// Validates a registry: `registry_toml` is `registry.toml`, `offerings` the files of
/// `offerings/`. Pure: no file system access.
pub fn parse(registry_toml: &SourceFile, offerings: &[SourceFile]) -> Parsed {
    let mut p = Parser::new(registry_toml);
    for file in offerings {
        p.add_offering(file);
    }
    p.finish()
}

/// Validates a registry one offering file at a time, so a large registry's file texts need not
/// all be held at once.
pub struct Parser {
    vocab: Option<Vocabulary>,
    problems: Vec<Problem>,
    offerings: Vec<Offering>,
    seen_ids: HashMap<String, PathBuf>,
}

impl Parser {
    /// Starts with `registry.toml`.
    pub fn new(registry_toml: &SourceFile) -> Parser {
        let mut problems = Vec::new();
        let vocab = raw::parse_vocabulary(registry_toml, &mut problems);
        Parser {
            vocab,
            problems,
            offerings: Vec::new(),
            seen_ids: HashMap::new(),
        }
    }

    /// Validates one offering file.
    pub fn add_offering(&mut self, file: &SourceFile) {
        let mut rep = Reporter::new(file, &mut self.problems);
        if let Some(o) = raw::parse_offering(&mut rep, self.vocab.as_ref()) {
            if let Some(prev) = self.seen_ids.get(&o.id) {
                rep.error(
                    0,
                    format!("offering id `{}` is also used by {}", o.id, prev.display()),
                );
            } else {
                self.seen_ids.insert(o.id.clone(), file.path.clone());
                self.offerings.push(o);
            }
        }
    }

    /// The registry, if no file had an error, and every problem found.
    pub fn finish(self) -> Parsed {
        let Parser {
            vocab,
            mut problems,
            mut offerings,
            ..
        } = self;
        problems.sort_by(|a, b| (&a.file, a.line, a.severity).cmp(&(&b.file, b.line, b.severity)));
        problems.dedup();
        let has_errors = problems.iter().any(|p| p.severity == Severity::Error);
        let registry = match vocab {
            Some(v) if !has_errors => {
                offerings.sort_by(|a, b| a.id.cmp(&b.id));
                Some(Registry {
                    name: v.name,
                    grades: v.grades,
                    dimensions: v.dimensions,
                    offerings,
                })
            }
            _ => None,
        };
        Parsed { registry, problems }
    }
}

/// The validated vocabularies of `registry.toml`.
struct Vocabulary {
    name: String,
    grades: Vec<Grade>,
    dimensions: Vec<Dimension>,
    /// Dimension ids, built once: every cell of every offering is checked against them.
    dimension_ids: HashSet<String>,
}

impl Vocabulary {
    /// Whether a grade id exists (a scan: registries have a handful of grades).
    fn has_grade(&self, id: &str) -> bool {
        self.grades.iter().any(|g| g.id == id)
    }
}

/// The grade id meaning "no public evidence"; such cells may cite nothing.
pub const NO_EVIDENCE: &str = "no_evidence";

#[cfg(test)]
mod tests;
