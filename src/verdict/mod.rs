//! Verdicts: what one fetch means for one citation.
//!
//! Pure: combines the fetch result (already classified where it happened), the citation's text
//! now and at baseline, and the source's failure history into one [`Verdict`] with a detail
//! line, plus the queue reasons it implies. The words are fixed by SPEC §3. Policy knobs
//! (failure confirmation) and the clock arrive as arguments.
//!
//! This stage decides everything that has a rule: [`reading::assess`] decides whether what a
//! fetch brought back is the document at all (error pages, bot walls, stubs, shells, empty
//! bodies, a `304` with nothing to re-use) and where the failure streak stands; [`judge`]
//! decides each citation on that reading; [`expiry`] applies the age policy. The pipeline
//! only gathers facts and records the decisions.

pub mod reading;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::evidence::{self, QuoteMatch};
use crate::extract::Extracted;
use crate::registry::Citation;

/// The verdict on one citation for one run (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The quote is present.
    Verified,
    /// A close variant of the quote is present.
    Drifted,
    /// The quote is present but its surroundings changed meaning.
    ContextChanged,
    /// The source was read fine and the quote is not in it.
    Missing,
    /// No quote; the text is the same as at baseline.
    Unchanged,
    /// No quote; the text differs from baseline.
    Changed,
    /// A term listed in `absent` now appears.
    Appeared,
    /// The fetch failed and the failure is not confirmed yet.
    Unreachable,
    /// Confirmed dead.
    Gone,
    /// Cannot be read as a visitor.
    Blocked,
    /// Permanently redirected; the evidence stands at the target.
    Moved,
    /// Not checked yet.
    Pending,
}

impl Verdict {
    /// Every verdict, in SPEC order.
    pub const ALL: [Verdict; 12] = [
        Verdict::Verified,
        Verdict::Drifted,
        Verdict::ContextChanged,
        Verdict::Missing,
        Verdict::Unchanged,
        Verdict::Changed,
        Verdict::Appeared,
        Verdict::Unreachable,
        Verdict::Gone,
        Verdict::Blocked,
        Verdict::Moved,
        Verdict::Pending,
    ];

    /// The fixed word.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Verified => "verified",
            Verdict::Drifted => "drifted",
            Verdict::ContextChanged => "context_changed",
            Verdict::Missing => "missing",
            Verdict::Unchanged => "unchanged",
            Verdict::Changed => "changed",
            Verdict::Appeared => "appeared",
            Verdict::Unreachable => "unreachable",
            Verdict::Gone => "gone",
            Verdict::Blocked => "blocked",
            Verdict::Moved => "moved",
            Verdict::Pending => "pending",
        }
    }

    /// Whether this verdict puts the citation in the re-verification queue.
    pub fn is_queued(self) -> bool {
        !matches!(
            self,
            Verdict::Verified | Verdict::Unchanged | Verdict::Unreachable | Verdict::Pending
        )
    }

    /// Whether the evidence was judged from content that was actually read.
    pub fn read_content(self) -> bool {
        matches!(
            self,
            Verdict::Verified
                | Verdict::Drifted
                | Verdict::ContextChanged
                | Verdict::Missing
                | Verdict::Unchanged
                | Verdict::Changed
                | Verdict::Appeared
                | Verdict::Moved
        )
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Verdict {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Verdict::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown verdict `{s}`"))
    }
}

/// The reason a queue item exists: a queued verdict, or `expired`.
pub const EXPIRED: &str = "expired";

/// How a failed fetch is classified, once, where it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// Might work next time: timeouts, resets, 5xx, 429.
    Transient,
    /// Cannot be read as a visitor: 401, 403, 451, robots.txt, address guard, bot walls.
    Blocked,
    /// Looks dead but needs confirmation: 404, DNS name not found.
    Dead,
    /// Dead at once: 410.
    Gone,
    /// Not attempted this run — robots.txt could not be read, or the host asked to be left
    /// alone for longer than the cap — so it says nothing about the page and does not count
    /// toward confirming it gone.
    Deferred,
}

impl FailureClass {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Transient => "transient",
            FailureClass::Deferred => "deferred",
            FailureClass::Blocked => "blocked",
            FailureClass::Dead => "dead",
            FailureClass::Gone => "gone",
        }
    }
}

/// When repeated failures become `gone`.
#[derive(Debug, Clone, Copy)]
pub struct ConfirmPolicy {
    /// Consecutive failed runs needed.
    pub failures: u32,
    /// Hours the failures must span.
    pub hours: u32,
}

impl Default for ConfirmPolicy {
    fn default() -> Self {
        ConfirmPolicy {
            failures: 3,
            hours: 48,
        }
    }
}

/// What the fetch stage read for a URL, as the verdict stage needs it.
#[derive(Debug, Clone)]
pub enum Reading<'a> {
    /// Content was read (freshly, or re-used after a 304).
    Read {
        /// The citation's extracted text (selector applied), or why there is none.
        text: Result<&'a Extracted, &'a str>,
        /// Target of a permanent redirect from the cited URL, if any.
        moved_to: Option<&'a str>,
        /// The redirect chain, for details (`301 a -> b`, ...); empty when none.
        redirects: &'a str,
    },
    /// The fetch failed.
    Failed {
        /// Its class.
        class: FailureClass,
        /// One line for people.
        detail: &'a str,
        /// Consecutive failed runs, this one included.
        consecutive: u32,
        /// When the first of those failures happened.
        first_failure_at: DateTime<Utc>,
    },
}

/// The verdict on one citation with everything the store and report need.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// The verdict.
    pub verdict: Verdict,
    /// One line explaining it.
    pub detail: String,
    /// Hash of the normalised text the citation was judged on, when content was read.
    pub text_hash: Option<String>,
    /// Identifies the state behind the verdict, so a closed queue item is not reopened until it
    /// changes: the text hash for content verdicts, the failure for failures.
    pub fingerprint: String,
    /// What the page says where the quote was expected (near matches), for the report.
    pub found: Option<String>,
    /// Other queue reasons beyond the verdict (e.g. `appeared` next to `missing`).
    pub also: Vec<Verdict>,
    /// Link to the live page scrolled to the quote (a `#:~:text=` fragment), when found.
    pub link: Option<String>,
    /// Where on the page the quote was found: heading path, and whether it is hidden.
    pub location: Option<String>,
}

impl Judgement {
    fn new(
        verdict: Verdict,
        detail: impl Into<String>,
        fingerprint: impl Into<String>,
    ) -> Judgement {
        Judgement {
            verdict,
            detail: detail.into(),
            text_hash: None,
            fingerprint: fingerprint.into(),
            found: None,
            also: vec![],
            link: None,
            location: None,
        }
    }
}

impl Judgement {
    /// Queue reasons this judgement implies (without `expired`, decided separately).
    pub fn queue_reasons(&self) -> Vec<&'static str> {
        let mut r: Vec<&'static str> = Vec::new();
        if self.verdict.is_queued() {
            r.push(self.verdict.as_str());
        }
        for v in &self.also {
            if v.is_queued() && !r.contains(&v.as_str()) {
                r.push(v.as_str());
            }
        }
        r
    }
}

/// The version of everything a content verdict is computed by: extraction, normalisation,
/// quote matching, change detection and the judging rules. Bump it whenever any of them
/// changes what a verdict would be: every citation is then judged afresh once, on its stored
/// snapshot, instead of re-using its previous judgement.
pub const ENGINE: u32 = 1;

/// What a content verdict is decided on (see [`judge`]): the engine, the body (its snapshot
/// hash and content type), the citation (key, selector, absent terms, render mode), its
/// baseline snapshot, and how the body was reached (permanent-redirect target, redirect
/// chain). Two readings with the same basis get the same judgement, so a run may re-use the
/// previous one instead of extracting and matching again. Hex SHA-256 over the parts, each
/// length-prefixed so no two different tuples hash alike.
///
/// A quote citation without a baseline counts as having this very snapshot as its baseline:
/// the reading becomes the baseline, and a quote judged against its own page's text reads
/// exactly as one judged with no baseline (the test
/// `a_quote_judged_against_its_own_page_reads_as_a_first_reading` holds [`judge`] to that), so
/// the run after a first reading re-uses it too. A citation without a quote is not: its first
/// reading says so in its detail.
///
/// `key` is the citation's identity key ([`Citation::key`]), passed in because the run
/// already has it (a SHA-256 per citation saved).
pub fn basis(
    citation: &Citation,
    key: &str,
    snapshot: &str,
    content_type: Option<&str>,
    baseline: Option<&str>,
    moved_to: Option<&str>,
    redirects: &str,
) -> String {
    use sha2::{Digest, Sha256};
    // The parts laid out in one buffer and hashed at once: the same bytes as hashing them
    // part by part, without a copy into the hasher's block per small piece.
    let mut buf = Vec::with_capacity(
        160 + snapshot.len()
            + key.len()
            + redirects.len()
            + citation.absent.iter().map(|t| t.len() + 9).sum::<usize>(),
    );
    let mut part = |p: Option<&str>| match p {
        None => buf.push(0u8),
        Some(p) => {
            buf.push(1u8);
            buf.extend_from_slice(&(p.len() as u64).to_le_bytes());
            buf.extend_from_slice(p.as_bytes());
        }
    };
    let mut number = itoa::Buffer::new();
    part(Some(number.format(ENGINE)));
    part(Some(snapshot));
    part(content_type);
    part(Some(key));
    part(citation.selector.as_deref());
    part(Some(number.format(citation.absent.len())));
    for term in &citation.absent {
        part(Some(term));
    }
    part(Some(match citation.render {
        crate::registry::Render::Http => "http",
        crate::registry::Render::Browser => "browser",
    }));
    let baseline = baseline.or(citation.quote.as_ref().map(|_| snapshot));
    part(baseline);
    part(moved_to);
    part(Some(redirects));
    hex::encode(Sha256::digest(&buf))
}

/// Judges one citation. `baseline` is the citation's extracted text at baseline (None when
/// there is no baseline yet: this reading becomes it).
pub fn judge(
    citation: &Citation,
    reading: &Reading<'_>,
    baseline: Option<&Extracted>,
    policy: ConfirmPolicy,
    now: DateTime<Utc>,
) -> Judgement {
    match reading {
        Reading::Failed {
            class,
            detail,
            consecutive,
            first_failure_at,
        } => judge_failure(*class, detail, *consecutive, *first_failure_at, policy, now),
        Reading::Read {
            text: Err(why),
            redirects,
            ..
        } => Judgement::new(
            Verdict::Blocked,
            with_redirects(why.to_string(), redirects),
            format!("unreadable:{why}"),
        ),
        Reading::Read {
            text: Ok(extracted),
            moved_to,
            redirects,
        } => {
            let doc = evidence::Doc::new(extracted);
            let mut j = judge_content(citation, &doc, extracted, baseline);
            j.text_hash = Some(evidence::text_hash(&doc.text));
            if let Some(target) = moved_to {
                if matches!(j.verdict, Verdict::Verified | Verdict::Unchanged) {
                    j.detail = format!("permanently redirected to {target}; {}", j.detail);
                    j.verdict = Verdict::Moved;
                    j.fingerprint = format!("moved:{target}");
                } else {
                    j.also.push(Verdict::Moved);
                }
            }
            j.detail = with_redirects(j.detail, redirects);
            j
        }
    }
}

fn with_redirects(detail: String, redirects: &str) -> String {
    if redirects.is_empty() {
        detail
    } else {
        format!("{detail} (redirects: {redirects})")
    }
}

fn judge_failure(
    class: FailureClass,
    detail: &str,
    consecutive: u32,
    first_failure_at: DateTime<Utc>,
    policy: ConfirmPolicy,
    now: DateTime<Utc>,
) -> Judgement {
    let (verdict, detail) = match class {
        FailureClass::Blocked => (Verdict::Blocked, detail.to_string()),
        FailureClass::Gone => (Verdict::Gone, detail.to_string()),
        FailureClass::Deferred => (
            Verdict::Unreachable,
            format!("{detail} (not attempted this run; does not count toward gone)"),
        ),
        FailureClass::Transient | FailureClass::Dead => {
            let span_hours = (now - first_failure_at).num_minutes() as f64 / 60.0;
            if consecutive >= policy.failures && span_hours >= f64::from(policy.hours) {
                (
                    Verdict::Gone,
                    format!(
                        "{detail}; failed on {consecutive} consecutive runs over {span_hours:.0} h"
                    ),
                )
            } else {
                (
                    Verdict::Unreachable,
                    format!(
                        "{detail} (failure {consecutive} of {} needed over {} h to confirm)",
                        policy.failures, policy.hours
                    ),
                )
            }
        }
    };
    Judgement::new(verdict, detail, format!("{}:{}", class.as_str(), verdict))
}

/// Judges readable content against the quote, absent terms and baseline. Sets the
/// fingerprint that keeps a closed queue item closed: what the verdict rests on (the variant
/// found, the context, the page's wording), never raw bytes, so noise does not reopen items.
fn judge_content(
    citation: &Citation,
    doc: &evidence::Doc<'_>,
    extracted: &Extracted,
    baseline: Option<&Extracted>,
) -> Judgement {
    let text = doc.text.as_str();
    // The comparable wording costs a pass over the page; only some verdicts need it.
    let wording_cell = std::cell::OnceCell::new();
    let wording = || {
        wording_cell
            .get_or_init(|| evidence::comparable(&extracted.wording))
            .as_str()
    };
    let mut j = Judgement::new(Verdict::Verified, "", "");
    if text.is_empty() {
        let why = match &citation.selector {
            Some(s) => format!("selector `{s}` matched no text"),
            None => "the page has no text".to_string(),
        };
        j.verdict = if citation.quote.is_some() {
            Verdict::Missing
        } else {
            Verdict::Changed
        };
        j.detail = why;
        j.fingerprint = "empty".into();
        return j;
    }
    match &citation.quote {
        Some(quote) => {
            judge_quote(citation, &evidence::normalise(quote), doc, baseline, &mut j);
            if j.verdict == Verdict::Missing {
                j.fingerprint = format!("missing:{}", evidence::text_hash(wording()));
            }
        }
        None => {
            let base = baseline.map(|b| evidence::comparable(&b.wording));
            j.fingerprint = evidence::text_hash(wording());
            match base {
                None => {
                    j.verdict = Verdict::Unchanged;
                    j.detail = "first reading; recorded as baseline".into();
                }
                Some(b) if b == wording() => {
                    j.verdict = Verdict::Unchanged;
                    j.detail = "wording unchanged since baseline".into();
                }
                Some(b) => {
                    j.verdict = Verdict::Changed;
                    j.detail = change_summary(&b, wording());
                }
            }
        }
    }
    let appeared = evidence::find_terms(&citation.absent, text);
    if !appeared.is_empty() {
        let what = appeared
            .iter()
            .map(|a| format!("`{}` in \"{}\"", a.term, a.context))
            .collect::<Vec<_>>()
            .join("; ");
        if matches!(
            j.verdict,
            Verdict::Verified | Verdict::Unchanged | Verdict::Changed
        ) {
            // The appearance is the change that matters; one item, not two.
            let also_changed = if j.verdict == Verdict::Changed {
                " (the text also changed since baseline)"
            } else {
                ""
            };
            j.verdict = Verdict::Appeared;
            j.detail = format!("absent term appeared: {what}{also_changed}");
            j.fingerprint = format!("appeared:{}", evidence::text_hash(&what));
        } else {
            j.also.push(Verdict::Appeared);
            j.detail = format!("{}; absent term appeared: {what}", j.detail);
        }
    }
    j
}

/// Quote citations: verified, context_changed, drifted or missing.
fn judge_quote(
    citation: &Citation,
    q: &str,
    doc: &evidence::Doc<'_>,
    baseline: Option<&Extracted>,
    j: &mut Judgement,
) {
    let text = doc.text.as_str();
    match evidence::find_quote(q, text) {
        QuoteMatch::Exact { start, end } => {
            j.link = Some(evidence::text_fragment(&citation.url, text, start, end));
            j.location = doc.location(start);
            let now_ctx = doc.context(start, end);
            let shift = baseline.and_then(|b| {
                let bdoc = evidence::Doc::new(b);
                let (bs, be) = match evidence::find_quote(q, &bdoc.text) {
                    QuoteMatch::Exact { start, end } | QuoteMatch::Near { start, end, .. } => {
                        (start, end)
                    }
                    QuoteMatch::Absent => return None,
                };
                let before_ctx = bdoc.context(bs, be);
                let shifts = evidence::meaning_shift(&before_ctx, &now_ctx);
                (!shifts.is_empty()).then_some((shifts, before_ctx))
            });
            match shift {
                Some((shifts, before_ctx)) => {
                    j.verdict = Verdict::ContextChanged;
                    j.fingerprint = format!("context:{}", evidence::text_hash(&now_ctx));
                    j.detail = format!(
                        "the quote stands but the sentence around it changed ({}): was \"{before_ctx}\", now \"{now_ctx}\"",
                        shifts.join(", ")
                    );
                    j.found = Some(now_ctx);
                }
                None => {
                    j.verdict = Verdict::Verified;
                    j.detail = format!("quote found: \"{now_ctx}\"");
                }
            }
        }
        QuoteMatch::Near {
            start,
            end,
            found,
            why,
            ..
        } => {
            j.link = Some(evidence::text_fragment(&citation.url, text, start, end));
            j.location = doc.location(start);
            j.verdict = Verdict::Drifted;
            j.fingerprint = format!("drifted:{}", evidence::text_hash(&found));
            j.detail = format!("close variant found ({why}): \"{found}\"");
            j.found = Some(found);
        }
        QuoteMatch::Absent => {
            j.verdict = Verdict::Missing;
            j.detail = "the quote is not on the page".into();
        }
    }
}

/// A one-line summary of a word-level change: words removed and added.
fn change_summary(before: &str, after: &str) -> String {
    let diff = similar::TextDiff::from_words(before, after);
    let (mut removed, mut added) = (0usize, 0usize);
    for change in diff.iter_all_changes() {
        if change.value().trim().is_empty() {
            continue;
        }
        match change.tag() {
            similar::ChangeTag::Delete => removed += 1,
            similar::ChangeTag::Insert => added += 1,
            similar::ChangeTag::Equal => {}
        }
    }
    format!("text changed since baseline: {removed} words removed, {added} words added")
}

/// The age policy for one citation: whether its cell's evidence is expired on `today`, and the
/// line that explains it (empty when no limit applies).
pub fn expiry(
    verified: Option<NaiveDate>,
    max_age_days: Option<u32>,
    dimension: &str,
    today: NaiveDate,
) -> (bool, String) {
    let detail = match (verified, max_age_days) {
        (Some(v), Some(m)) => {
            format!("evidence verified {v}, older than the {m}-day limit of `{dimension}`")
        }
        _ => String::new(),
    };
    (is_expired(verified, max_age_days, today), detail)
}

/// Whether a cell's evidence is older than its dimension allows on `today`.
pub fn is_expired(
    verified: Option<NaiveDate>,
    max_age_days: Option<u32>,
    today: NaiveDate,
) -> bool {
    match (verified, max_age_days) {
        (Some(v), Some(max)) => (today - v).num_days() > i64::from(max),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Render;

    #[test]
    fn every_part_of_a_basis_counts() {
        let c = citation(Some("Quote"), &["x"]);
        let b = |c: &Citation, snap, ct, base, moved, redirects| {
            basis(c, &c.key(), snap, ct, base, moved, redirects)
        };
        let reference = b(&c, "s1", Some("text/html"), Some("b1"), None, "");
        assert_eq!(
            reference,
            b(&c, "s1", Some("text/html"), Some("b1"), None, "")
        );
        let mut other = vec![
            b(&c, "s2", Some("text/html"), Some("b1"), None, ""),
            b(&c, "s1", Some("application/pdf"), Some("b1"), None, ""),
            b(&c, "s1", None, Some("b1"), None, ""),
            b(&c, "s1", Some("text/html"), Some("b2"), None, ""),
            b(
                &c,
                "s1",
                Some("text/html"),
                Some("b1"),
                Some("https://x/"),
                "",
            ),
            b(
                &c,
                "s1",
                Some("text/html"),
                Some("b1"),
                None,
                "301 → https://x/",
            ),
        ];
        let variants = [
            Citation {
                quote: Some("Quote!".into()),
                ..c.clone()
            },
            Citation {
                selector: Some("main".into()),
                ..c.clone()
            },
            Citation {
                absent: vec!["y".into()],
                ..c.clone()
            },
            Citation {
                absent: vec!["x".into(), "y".into()],
                ..c.clone()
            },
            Citation {
                render: Render::Browser,
                ..c.clone()
            },
            Citation {
                url: "https://example.com/other".into(),
                ..c.clone()
            },
        ];
        for v in &variants {
            other.push(b(v, "s1", Some("text/html"), Some("b1"), None, ""));
        }
        for (i, o) in other.iter().enumerate() {
            assert_ne!(&reference, o, "variant {i} hashed like the reference");
        }
        // A quote without a baseline is judged as against its own page; a citation without a
        // quote is not (its first reading says so).
        assert_eq!(
            b(&c, "s1", None, None, None, ""),
            b(&c, "s1", None, Some("s1"), None, "")
        );
        let plain = citation(None, &[]);
        assert_ne!(
            b(&plain, "s1", None, None, None, ""),
            b(&plain, "s1", None, Some("s1"), None, "")
        );
    }

    /// A stored basis must not move when the code computing it does (every judgement would
    /// be re-done once): the basis is the SHA-256 of its parts laid out as written here, part
    /// by part.
    #[test]
    fn a_basis_is_its_parts_hashed_in_order() {
        use sha2::{Digest, Sha256};
        let reference = |c: &Citation,
                         key: &str,
                         snap: &str,
                         ct: Option<&str>,
                         base: Option<&str>,
                         moved: Option<&str>,
                         redirects: &str| {
            let mut h = Sha256::new();
            let mut part = |p: Option<&str>| match p {
                None => h.update([0u8]),
                Some(p) => {
                    h.update([1u8]);
                    h.update((p.len() as u64).to_le_bytes());
                    h.update(p.as_bytes());
                }
            };
            part(Some(&ENGINE.to_string()));
            part(Some(snap));
            part(ct);
            part(Some(key));
            part(c.selector.as_deref());
            part(Some(&c.absent.len().to_string()));
            for t in &c.absent {
                part(Some(t));
            }
            part(Some(match c.render {
                Render::Http => "http",
                Render::Browser => "browser",
            }));
            part(base.or(c.quote.as_ref().map(|_| snap)));
            part(moved);
            part(Some(redirects));
            hex::encode(h.finalize())
        };
        let absent: Vec<String> = (0..12).map(|i| format!("term {i}")).collect();
        let absent: Vec<&str> = absent.iter().map(String::as_str).collect();
        let mut selected = citation(Some("q"), &absent);
        selected.selector = Some("main".into());
        selected.render = Render::Browser;
        for c in [citation(None, &[]), citation(Some("q"), &["x"]), selected] {
            for (ct, base, moved, redirects) in [
                (None, None, None, ""),
                (
                    Some("text/html"),
                    Some("b1"),
                    Some("https://m/"),
                    "301 a -> b",
                ),
            ] {
                assert_eq!(
                    basis(&c, "k1", "s1", ct, base, moved, redirects),
                    reference(&c, "k1", "s1", ct, base, moved, redirects)
                );
            }
        }
    }

    fn citation(quote: Option<&str>, absent: &[&str]) -> Citation {
        Citation {
            offering: "o".into(),
            dimension: "d".into(),
            url: "https://example.com/".into(),
            quote: quote.map(str::to_string),
            absent: absent.iter().map(|s| s.to_string()).collect(),
            selector: None,
            render: Render::Http,
            archived: None,
            file: std::sync::Arc::from(std::path::Path::new("x.toml")),
            line: 1,
        }
    }

    fn ex(t: &str) -> Extracted {
        Extracted::plain(t.into())
    }

    fn read(e: &Extracted) -> Reading<'_> {
        Reading::Read {
            text: Ok(e),
            moved_to: None,
            redirects: "",
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-11-25T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn verdict_words_round_trip() {
        for v in Verdict::ALL {
            assert_eq!(v.as_str().parse::<Verdict>().unwrap(), v);
            assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{v}\""));
        }
    }

    #[test]
    fn quote_verdicts() {
        let c = citation(Some("complies with SOC 2"), &[]);
        let p = ConfirmPolicy::default();
        assert_eq!(
            judge(
                &c,
                &read(&ex("It complies with SOC\u{a0}2.")),
                None,
                p,
                now()
            )
            .verdict,
            Verdict::Verified
        );
        assert_eq!(
            judge(&c, &read(&ex("It Complies With SOC 2.")), None, p, now()).verdict,
            Verdict::Drifted
        );
        assert_eq!(
            judge(&c, &read(&ex("Nothing here.")), None, p, now()).verdict,
            Verdict::Missing
        );
    }

    #[test]
    fn change_verdicts() {
        let c = citation(None, &[]);
        let p = ConfirmPolicy::default();
        assert_eq!(
            judge(&c, &read(&ex("a b")), None, p, now()).verdict,
            Verdict::Unchanged
        );
        assert_eq!(
            judge(&c, &read(&ex("a  b")), Some(&ex("a b")), p, now()).verdict,
            Verdict::Unchanged
        );
        let j = judge(&c, &read(&ex("a c")), Some(&ex("a b")), p, now());
        assert_eq!(j.verdict, Verdict::Changed);
        assert!(
            j.detail.contains("1 words removed, 1 words added"),
            "{}",
            j.detail
        );
    }

    #[test]
    fn appeared_wins_over_verified_and_accompanies_missing() {
        let p = ConfirmPolicy::default();
        let c = citation(None, &["ISO 42001"]);
        let j = judge(&c, &read(&ex("Now ISO 42001 certified.")), None, p, now());
        assert_eq!(j.verdict, Verdict::Appeared);
        let c = citation(Some("SOC 2 Type II"), &["ISO 42001"]);
        let j = judge(&c, &read(&ex("Now ISO 42001 certified.")), None, p, now());
        assert_eq!(j.verdict, Verdict::Missing);
        assert_eq!(j.queue_reasons(), vec!["missing", "appeared"]);
    }

    #[test]
    fn failures_confirm_only_after_count_and_span() {
        let c = citation(None, &[]);
        let p = ConfirmPolicy {
            failures: 3,
            hours: 48,
        };
        let fail = |n, hours_ago: i64| Reading::Failed {
            class: FailureClass::Dead,
            detail: "HTTP 404",
            consecutive: n,
            first_failure_at: now() - chrono::Duration::hours(hours_ago),
        };
        assert_eq!(
            judge(&c, &fail(1, 0), None, p, now()).verdict,
            Verdict::Unreachable
        );
        assert_eq!(
            judge(&c, &fail(3, 24), None, p, now()).verdict,
            Verdict::Unreachable
        );
        assert_eq!(
            judge(&c, &fail(3, 48), None, p, now()).verdict,
            Verdict::Gone
        );
        let gone = Reading::Failed {
            class: FailureClass::Gone,
            detail: "HTTP 410",
            consecutive: 1,
            first_failure_at: now(),
        };
        assert_eq!(judge(&c, &gone, None, p, now()).verdict, Verdict::Gone);
        let blocked = Reading::Failed {
            class: FailureClass::Blocked,
            detail: "HTTP 403",
            consecutive: 1,
            first_failure_at: now(),
        };
        assert_eq!(
            judge(&c, &blocked, None, p, now()).verdict,
            Verdict::Blocked
        );
    }

    #[test]
    fn moved_when_evidence_stands_at_target() {
        let c = citation(Some("complies with SOC 2"), &[]);
        let r = Reading::Read {
            text: Ok(&ex("complies with SOC 2")),
            moved_to: Some("https://new.example/"),
            redirects: "301 a -> b",
        };
        let j = judge(&c, &r, None, ConfirmPolicy::default(), now());
        assert_eq!(j.verdict, Verdict::Moved);
        let r = Reading::Read {
            text: Ok(&ex("other")),
            moved_to: Some("https://new.example/"),
            redirects: "301 a -> b",
        };
        let j = judge(&c, &r, None, ConfirmPolicy::default(), now());
        assert_eq!(j.verdict, Verdict::Missing);
        assert!(j.detail.contains("301 a -> b"));
    }

    #[test]
    fn context_changed_when_negation_or_a_number_appears_around_the_quote() {
        let c = citation(
            Some("complies with SOC 2 Type II and ISO 27001/27701 frameworks"),
            &[],
        );
        let p = ConfirmPolicy::default();
        let base = ex("Mistral complies with SOC 2 Type II and ISO 27001/27701 frameworks.");
        let j = judge(
            &c,
            &read(&ex(
                "Mistral no longer complies with SOC 2 Type II and ISO 27001/27701 frameworks.",
            )),
            Some(&base),
            p,
            now(),
        );
        assert_eq!(j.verdict, Verdict::ContextChanged, "{}", j.detail);
        assert!(
            j.detail.contains("adds \"no longer\"") && j.detail.contains("was \"Mistral complies"),
            "{}",
            j.detail
        );
        let j = judge(
            &c,
            &read(&ex(
                "Since 2024, Mistral complies with SOC 2 Type II and ISO 27001/27701 frameworks.",
            )),
            Some(&ex(
                "Since 2023, Mistral complies with SOC 2 Type II and ISO 27001/27701 frameworks.",
            )),
            p,
            now(),
        );
        assert_eq!(j.verdict, Verdict::ContextChanged, "{}", j.detail);
        assert!(j.detail.contains("2023 → 2024"), "{}", j.detail);
        let j = judge(&c, &read(&base), Some(&base), p, now());
        assert_eq!(j.verdict, Verdict::Verified);
        assert_eq!(
            j.link.as_deref(),
            Some(
                "https://example.com/#:~:text=complies%20with%20SOC%202%20Type%20II%20and%20ISO%2027001%2F27701%20frameworks"
            )
        );
        // Without a baseline there is nothing to compare the context with.
        let j = judge(
            &c,
            &read(&ex(
                "Mistral no longer complies with SOC 2 Type II and ISO 27001/27701 frameworks.",
            )),
            None,
            p,
            now(),
        );
        assert_eq!(j.verdict, Verdict::Verified);
    }

    #[test]
    fn a_changed_number_inside_a_near_match_is_drifted() {
        let c = citation(
            Some("complies with SOC 2 Type II and ISO 27001 frameworks"),
            &[],
        );
        let j = judge(
            &c,
            &read(&ex(
                "Mistral complies with SOC 2 Type I and ISO 27002 frameworks.",
            )),
            None,
            ConfirmPolicy::default(),
            now(),
        );
        assert_eq!(j.verdict, Verdict::Drifted);
        assert!(j.detail.contains("changed"), "{}", j.detail);
        assert_eq!(
            j.found.as_deref(),
            Some("complies with SOC 2 Type I and ISO 27002 frameworks")
        );
    }

    #[test]
    fn expiry_boundary() {
        let v = NaiveDate::from_ymd_opt(2026, 7, 5);
        let day = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert!(!is_expired(v, Some(180), day("2027-01-01")));
        assert!(is_expired(v, Some(180), day("2027-01-02")));
        assert!(!is_expired(v, None, day("2030-01-01")));
        assert!(!is_expired(None, Some(1), day("2030-01-01")));
    }
}
