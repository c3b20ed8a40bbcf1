//! Archived copies: when a citation's evidence is lost (`missing`, `drifted`, `gone`, `moved`,
//! `blocked`), find the capture of its URL in a Wayback-compatible archive closest to — and not
//! after — the cell's `verified` date, read that capture's original bytes through the same
//! polite, guarded fetcher, and judge the quote there.
//!
//! APIs (the Internet Archive's documentation: <https://archive.org/help/wayback_api.php> for
//! the availability API, <https://github.com/internetarchive/wayback/tree/master/wayback-cdx-server>
//! for the CDX server):
//! - CDX: `{endpoint}/cdx/search/cdx?url=U&to=YYYYMMDD&output=json&filter=statuscode:200&limit=-1`
//!   answers a JSON array of rows, the first row naming the fields; `limit=-1` asks for the last
//!   capture up to the date. Tried first: it can say "not after".
//! - Availability: `{endpoint}/wayback/available?url=U&timestamp=YYYYMMDD` answers
//!   `{"archived_snapshots": {"closest": {"available": true, "url", "timestamp", "status"}}}`;
//!   the closest capture may be after the date, and is then not used. The fallback when CDX fails.
//! - A capture's original bytes: `{endpoint}/web/{timestamp}id_/{url}`.
//!
//! The module splits into pure parts (queries, answers, the judgement) and [`follow_up`], the
//! run stage that does the I/O. At most one lookup per URL and verified date per day; a failing
//! archive is recorded and retried the next day, and never fails the run.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde_json::Value;

use crate::extract::Extracted;
use crate::registry::Citation;

/// A capture in the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    /// 14-digit Wayback timestamp, `YYYYMMDDhhmmss` (UTC).
    pub timestamp: String,
    /// The URL as the archive captured it.
    pub original: String,
}

impl Capture {
    /// The capture as people open it: `{endpoint}/web/{timestamp}/{original}`.
    pub fn view_url(&self, endpoint: &str) -> String {
        format!(
            "{}/web/{}/{}",
            endpoint.trim_end_matches('/'),
            self.timestamp,
            self.original
        )
    }

    /// The capture's original bytes, without the archive's banner: the `id_` form.
    pub fn raw_url(&self, endpoint: &str) -> String {
        format!(
            "{}/web/{}id_/{}",
            endpoint.trim_end_matches('/'),
            self.timestamp,
            self.original
        )
    }

    /// When it was captured.
    pub fn captured(&self) -> Option<DateTime<Utc>> {
        timestamp_time(&self.timestamp)
    }
}

/// A Wayback timestamp (4 to 14 digits; missing parts are the start of the period) as a time.
pub fn timestamp_time(ts: &str) -> Option<DateTime<Utc>> {
    if ts.len() < 4 || ts.len() > 14 || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let padded = format!("{ts:0<14}");
    let num = |r: std::ops::Range<usize>| padded[r].parse::<u32>().ok();
    let (y, mo, d) = (num(0..4)? as i32, num(4..6)?.max(1), num(6..8)?.max(1));
    Utc.with_ymd_and_hms(y, mo, d, num(8..10)?, num(10..12)?, num(12..14)?)
        .single()
}

/// Whether a capture time is not after the end of `not_after` (UTC).
fn not_after(ts: &str, day: NaiveDate) -> bool {
    let end = format!("{}235959", day.format("%Y%m%d"));
    ts.len() == 14 && ts <= end.as_str()
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The CDX query for the last successful capture of `url` up to `day`.
pub fn cdx_query(endpoint: &str, url: &str, day: NaiveDate) -> String {
    format!(
        "{}/cdx/search/cdx?url={}&to={}&output=json&filter=statuscode:200&limit=-1&fl=timestamp,original,statuscode",
        endpoint.trim_end_matches('/'),
        enc(url),
        day.format("%Y%m%d")
    )
}

/// The availability API query for the capture of `url` closest to `day`.
pub fn availability_query(endpoint: &str, url: &str, day: NaiveDate) -> String {
    format!(
        "{}/wayback/available?url={}&timestamp={}",
        endpoint.trim_end_matches('/'),
        enc(url),
        day.format("%Y%m%d")
    )
}

/// Reads a CDX JSON answer: the latest 200 capture not after `day`, if any. An empty body or
/// `[]` means no capture.
pub fn parse_cdx(body: &[u8], day: NaiveDate) -> Result<Option<Capture>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let rows: Vec<Vec<Value>> =
        serde_json::from_slice(body).map_err(|e| format!("CDX answer is not JSON rows: {e}"))?;
    let Some((header, rows)) = rows.split_first() else {
        return Ok(None);
    };
    let col = |name: &str| header.iter().position(|h| h.as_str() == Some(name));
    let (Some(ts), Some(orig)) = (col("timestamp"), col("original")) else {
        return Err("CDX answer has no timestamp/original columns".into());
    };
    let status = col("statuscode");
    let best = rows
        .iter()
        .filter_map(|r| {
            let t = r.get(ts)?.as_str()?;
            let o = r.get(orig)?.as_str()?;
            let ok = status
                .and_then(|s| r.get(s))
                .and_then(Value::as_str)
                .is_none_or(|s| s == "200");
            (ok && not_after(t, day)).then(|| Capture {
                timestamp: t.to_string(),
                original: o.to_string(),
            })
        })
        .max_by(|a, b| a.timestamp.cmp(&b.timestamp));
    Ok(best)
}

/// Reads an availability API answer: its closest capture, when it is available, a 200, and not
/// after `day`.
pub fn parse_availability(
    body: &[u8],
    url: &str,
    day: NaiveDate,
) -> Result<Option<Capture>, String> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| format!("availability answer is not JSON: {e}"))?;
    let Some(closest) = v.pointer("/archived_snapshots/closest") else {
        return Ok(None);
    };
    let available = closest.get("available").and_then(Value::as_bool) == Some(true);
    let status_ok = closest
        .get("status")
        .and_then(Value::as_str)
        .is_none_or(|s| s == "200");
    let Some(ts) = closest.get("timestamp").and_then(Value::as_str) else {
        return Ok(None);
    };
    if !(available && status_ok && not_after(ts, day)) {
        return Ok(None);
    }
    // The capture's URL names the original as the archive holds it.
    let original = closest
        .get("url")
        .and_then(Value::as_str)
        .and_then(wayback_capture)
        .map_or_else(|| url.to_string(), |c| c.original);
    Ok(Some(Capture {
        timestamp: ts.to_string(),
        original,
    }))
}

/// A Wayback capture URL (`…/web/20260704000000/https://…`, any modifier such as `id_`) as a
/// capture; None for any other URL.
pub fn wayback_capture(url: &str) -> Option<Capture> {
    let at = url.find("/web/")? + 5;
    let rest = &url[at..];
    let slash = rest.find('/')?;
    let stamp = &rest[..slash];
    let digits: String = stamp.chars().take_while(char::is_ascii_digit).collect();
    let modifier = &stamp[digits.len()..];
    if digits.len() < 4 || !modifier.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
        return None;
    }
    let original = &rest[slash + 1..];
    if original.is_empty() {
        return None;
    }
    Some(Capture {
        timestamp: format!("{digits:0<14}"),
        original: original.to_string(),
    })
}

/// Whether the evidence stands in an archived copy: with a quote, the quote is there (as
/// `verified` would find it); without one, the copy is a readable document with text.
pub fn stands(citation: &Citation, copy: &Extracted) -> bool {
    let text = crate::evidence::normalise(&copy.text);
    match &citation.quote {
        Some(q) => matches!(
            crate::evidence::find_quote(&crate::evidence::normalise(q), &text),
            crate::evidence::QuoteMatch::Exact { .. }
        ),
        None => copy.words > 0,
    }
}

/// What is recorded of a citation's archived copy (SPEC §4 `archived`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct ArchivedCopy {
    /// The capture as people open it.
    pub url: String,
    /// When it was captured (RFC 3339).
    pub captured: String,
    /// Whether the evidence stands in it.
    pub stands: bool,
}

impl ArchivedCopy {
    /// One line for people: "the quote stands in the archived copy of 2026-07-04".
    pub fn describe(&self, quoted: bool) -> String {
        let what = if quoted { "the quote" } else { "the evidence" };
        let day = &self.captured[..self.captured.len().min(10)];
        if self.stands {
            format!("{what} stands in the archived copy of {day}")
        } else {
            format!("{what} does not stand in the archived copy of {day} either")
        }
    }
}

/// The verdicts whose evidence an archived copy can back.
pub const LOST: [crate::verdict::Verdict; 5] = [
    crate::verdict::Verdict::Missing,
    crate::verdict::Verdict::Drifted,
    crate::verdict::Verdict::Gone,
    crate::verdict::Verdict::Moved,
    crate::verdict::Verdict::Blocked,
];

// ---------------------------------------------------------------------------------------------
// The run stage (I/O).

/// Where to look and whether to ask for captures (`archive_endpoint`, `archive_submit`).
#[derive(Debug, Clone, Default)]
pub struct ArchiveSettings {
    /// Base URL of a Wayback-compatible archive; None disables lookups (a registry
    /// `archived = "URL"` is still read).
    pub endpoint: Option<String>,
    /// Ask the archive to capture sources whose evidence was just verified.
    pub submit: bool,
}

/// What the stage did, for the run's summary and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FollowUp {
    /// Lookups made (requests to the archive), not counting those re-used from today.
    pub looked_up: usize,
    /// Citations with an archived copy judged.
    pub judged: usize,
    /// Of those, where the evidence stands.
    pub stands: usize,
    /// Lookups that failed (tried again on a later day).
    pub failed: usize,
    /// Capture requests sent.
    pub submitted: usize,
}

/// Space between two capture requests: far below Save Page Now's published limits.
pub const SUBMIT_GAP: std::time::Duration = std::time::Duration::from_secs(10);
/// Capture requests per run at most.
pub const SUBMIT_MAX: usize = 20;

/// Lost evidence in archived copies, and (optionally) capture requests for evidence just
/// verified. Runs after the run's fetches, until `deadline`; never fails for the archive's
/// sake (only when the database does).
#[allow(clippy::too_many_arguments)]
pub async fn follow_up(
    registry: &crate::registry::Registry,
    scope: &crate::plan::Scope,
    store: &crate::store::Store,
    snapshots: &crate::snapshot::SnapshotStore,
    fetcher: &crate::fetch::Fetcher,
    settings: &ArchiveSettings,
    clock: &crate::pipeline::Clock,
    deadline: tokio::time::Instant,
) -> Result<FollowUp, crate::store::StoreError> {
    use crate::verdict::Verdict;
    let mut done = FollowUp::default();
    // Nothing to look up or submit: no archive configured and no archived copy given.
    if settings.endpoint.is_none()
        && !registry
            .citations()
            .any(|c| c.archived.is_some() && scope.includes(c))
    {
        return Ok(done);
    }
    // Only the verdicts this stage acts on: lost evidence, and verified evidence when
    // captures are to be requested.
    let mut words: Vec<&str> = LOST.iter().map(|v| v.as_str()).collect();
    if settings.submit {
        words.push(Verdict::Verified.as_str());
    }
    let latest: std::collections::HashMap<crate::registry::CitationKey, String> = store
        .run_latest_verdicts_among(crate::store::VerdictColumns::Words, Some(&words))
        .await?
        .into_iter()
        .map(|(k, v)| (k, v.verdict().to_string()))
        .collect();
    // Lost evidence, grouped by what to look up: (URL, not_after) → citations.
    let mut wanted: std::collections::BTreeMap<(String, String), Vec<(&Citation, String)>> =
        Default::default();
    let mut verified: Vec<(&Citation, NaiveDate)> = Vec::new();
    for (cell, c) in registry.citations_in_cells() {
        if !scope.includes(c) {
            continue;
        }
        let Some(word) = latest.get(&c.identity()) else {
            continue;
        };
        let lost = LOST.iter().any(|v| v.as_str() == word);
        if word == Verdict::Verified.as_str()
            && let Some(day) = cell.verified
        {
            verified.push((c, day));
        }
        if !lost {
            continue;
        }
        let group = match (&c.archived, &settings.endpoint) {
            (Some(given), _) => (given.clone(), "given".to_string()),
            (None, Some(_)) => {
                let day = cell.verified.unwrap_or_else(|| clock().date_naive());
                (
                    c.fetch_url().to_string(),
                    day.format("%Y-%m-%d").to_string(),
                )
            }
            (None, None) => continue,
        };
        wanted.entry(group).or_default().push((c, c.key()));
    }
    for ((url, not_after), citations) in wanted {
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                "archive lookups: run deadline reached; the rest waits for the next run"
            );
            break;
        }
        let now = clock();
        let known = store.archive_lookup(&url, &not_after).await?;
        let fresh = known.as_ref().is_some_and(|k| {
            // A capture found and read never changes; anything else is retried the next day.
            (k.snapshot_hash.as_deref().is_some_and(|h| snapshots.has(h)))
                || k.looked_up_at.get(..10) == Some(&now.format("%Y-%m-%d").to_string()[..])
        });
        let lookup = match known {
            Some(k) if fresh => k,
            _ => {
                done.looked_up += 1;
                let (lookup, size) =
                    look_up(&url, &not_after, settings, fetcher, snapshots, now).await;
                if let Some(e) = &lookup.error {
                    done.failed += 1;
                    tracing::warn!(url = %crate::redact(&url), error = %e, "archive lookup failed; tried again on a later day");
                }
                store
                    .record_archive_lookup(&url, &not_after, &lookup, size)
                    .await?;
                lookup
            }
        };
        let copy = match (&lookup.capture_url, &lookup.captured, &lookup.snapshot_hash) {
            (Some(u), Some(at), Some(hash)) => snapshots.get(hash).ok().map(|b| (u, at, b)),
            _ => None,
        };
        for (c, key) in citations {
            match &copy {
                Some((u, at, bytes)) => {
                    let ex = crate::extract::extract(
                        bytes,
                        lookup.content_type.as_deref(),
                        c.selector.as_deref(),
                    );
                    let stands = ex.as_ref().is_ok_and(|ex| stands(c, ex));
                    done.judged += 1;
                    done.stands += usize::from(stands);
                    let copy = ArchivedCopy {
                        url: (*u).clone(),
                        captured: (*at).clone(),
                        stands,
                    };
                    store.set_archived_evidence(&key, Some(&copy), now).await?;
                }
                // No capture found: an earlier one (for another verified date) no longer applies.
                None if lookup.error.is_none() => {
                    store.set_archived_evidence(&key, None, now).await?;
                }
                None => {}
            }
        }
    }
    if settings.submit
        && let Some(endpoint) = &settings.endpoint
    {
        done.submitted = submit(store, fetcher, endpoint, &verified, clock, deadline).await?;
    }
    Ok(done)
}

/// One lookup: find the capture (or take the registry's), read its original bytes.
async fn look_up(
    url: &str,
    not_after: &str,
    settings: &ArchiveSettings,
    fetcher: &crate::fetch::Fetcher,
    snapshots: &crate::snapshot::SnapshotStore,
    now: DateTime<Utc>,
) -> (crate::store::ArchiveLookup, Option<i64>) {
    let mut out = crate::store::ArchiveLookup {
        looked_up_at: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ..Default::default()
    };
    // What to read, and the capture as people open it.
    let (view, raw, captured) = if not_after == "given" {
        match wayback_capture(url) {
            Some(c) => {
                let base = &url[..url.find("/web/").unwrap_or(0)];
                (url.to_string(), c.raw_url(base), c.captured())
            }
            None => (url.to_string(), url.to_string(), None),
        }
    } else {
        let Some(endpoint) = settings.endpoint.as_deref() else {
            return (out, None);
        };
        let day = match NaiveDate::parse_from_str(not_after, "%Y-%m-%d") {
            Ok(d) => d,
            Err(_) => {
                out.error = Some(format!("bad date {not_after}"));
                return (out, None);
            }
        };
        match find_capture(fetcher, endpoint, url, day).await {
            Ok(Some(c)) => (c.view_url(endpoint), c.raw_url(endpoint), c.captured()),
            Ok(None) => return (out, None),
            Err(e) => {
                out.error = Some(e);
                return (out, None);
            }
        }
    };
    out.capture_url = Some(view);
    out.captured = Some(
        captured
            .unwrap_or(now)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    match read(fetcher, &raw).await {
        Ok((bytes, content_type)) => match snapshots.put(&bytes) {
            Ok(hash) => {
                out.snapshot_hash = Some(hash);
                out.content_type = content_type;
                (out, Some(bytes.len() as i64))
            }
            Err(e) => {
                out.error = Some(format!("cannot store the archived copy: {e}"));
                (out, None)
            }
        },
        Err(e) => {
            out.error = Some(e);
            (out, None)
        }
    }
}

/// The capture not after `day`: CDX first, the availability API when CDX fails.
async fn find_capture(
    fetcher: &crate::fetch::Fetcher,
    endpoint: &str,
    url: &str,
    day: NaiveDate,
) -> Result<Option<Capture>, String> {
    let cdx = match read(fetcher, &cdx_query(endpoint, url, day)).await {
        Ok((body, _)) => parse_cdx(&body, day),
        Err(e) => Err(e),
    };
    match cdx {
        Ok(found) => Ok(found),
        Err(cdx_error) => {
            let (body, _) = read(fetcher, &availability_query(endpoint, url, day))
                .await
                .map_err(|e| format!("CDX: {cdx_error}; availability API: {e}"))?;
            parse_availability(&body, url, day)
        }
    }
}

/// Reads one URL through the polite, guarded fetcher: its body and Content-Type.
async fn read(
    fetcher: &crate::fetch::Fetcher,
    url: &str,
) -> Result<(Vec<u8>, Option<String>), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{}: {e}", crate::redact(url)))?;
    match fetcher
        .fetch(&parsed, &crate::fetch::Validators::default())
        .await
    {
        crate::fetch::FetchOutcome::Fetched(f) => Ok((f.body, f.content_type)),
        crate::fetch::FetchOutcome::NotModified { .. } => Err("unexpected 304".into()),
        crate::fetch::FetchOutcome::Failed { detail, .. } => Err(detail),
    }
}

/// Capture requests (Save Page Now) for evidence just verified whose URL has no capture since
/// the cell's verified date; one per URL and date, spaced [`SUBMIT_GAP`] apart, at most
/// [`SUBMIT_MAX`] per run.
async fn submit(
    store: &crate::store::Store,
    fetcher: &crate::fetch::Fetcher,
    endpoint: &str,
    verified: &[(&Citation, NaiveDate)],
    clock: &crate::pipeline::Clock,
    deadline: tokio::time::Instant,
) -> Result<usize, crate::store::StoreError> {
    let mut sent = 0;
    let mut seen = std::collections::HashSet::new();
    for (c, day) in verified {
        let url = c.fetch_url().to_string();
        let date = day.format("%Y-%m-%d").to_string();
        if !seen.insert((url.clone(), date.clone())) || store.archive_submitted(&url, &date).await?
        {
            continue;
        }
        if sent >= SUBMIT_MAX || tokio::time::Instant::now() >= deadline {
            break;
        }
        // A capture since the verified date already holds the evidence.
        let since = format!(
            "{}/cdx/search/cdx?url={}&from={}&output=json&filter=statuscode:200&limit=1&fl=timestamp,original,statuscode",
            endpoint.trim_end_matches('/'),
            enc(&url),
            day.format("%Y%m%d")
        );
        let outcome = match read(fetcher, &since).await {
            Ok((body, _)) if has_rows(&body) => "already captured".to_string(),
            Ok(_) => {
                if sent > 0 {
                    tokio::time::sleep(SUBMIT_GAP).await;
                }
                sent += 1;
                let save = format!("{}/save/{url}", endpoint.trim_end_matches('/'));
                match read(fetcher, &save).await {
                    Ok(_) => "requested".to_string(),
                    Err(e) => format!("request failed: {e}"),
                }
            }
            // The archive is unreachable: try again next run, record nothing.
            Err(e) => {
                tracing::warn!(error = %e, "archive: cannot check for captures; no capture requested");
                break;
            }
        };
        store
            .record_archive_submission(&url, &date, &outcome, clock())
            .await?;
    }
    Ok(sent)
}

/// Whether a CDX JSON answer has any capture row.
fn has_rows(body: &[u8]) -> bool {
    serde_json::from_slice::<Vec<Vec<Value>>>(body).is_ok_and(|rows| rows.len() > 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn cdx_answers_give_the_latest_capture_not_after_the_day() {
        let body = br#"[["timestamp","original","statuscode"],
            ["20260101120000","https://a.example/p","200"],
            ["20260704093000","https://a.example/p","200"],
            ["20260705235959","https://a.example/p","301"],
            ["20260706000001","https://a.example/p","200"]]"#;
        let c = parse_cdx(body, day("2026-07-05")).unwrap().unwrap();
        assert_eq!(c.timestamp, "20260704093000");
        assert_eq!(
            c.view_url("https://web.archive.org/"),
            "https://web.archive.org/web/20260704093000/https://a.example/p"
        );
        assert_eq!(
            c.raw_url("https://web.archive.org"),
            "https://web.archive.org/web/20260704093000id_/https://a.example/p"
        );
        assert_eq!(
            c.captured().unwrap().to_rfc3339(),
            "2026-07-04T09:30:00+00:00"
        );
        assert_eq!(parse_cdx(b"[]", day("2026-07-05")).unwrap(), None);
        assert_eq!(parse_cdx(b"", day("2026-07-05")).unwrap(), None);
        assert!(parse_cdx(b"<html>", day("2026-07-05")).is_err());
        assert!(parse_cdx(br#"[["a","b"],["1","2"]]"#, day("2026-07-05")).is_err());
    }

    #[test]
    fn availability_answers_refuse_a_closest_capture_after_the_day() {
        let after = br#"{"url":"a.example/p","archived_snapshots":{"closest":{"status":"200","available":true,"url":"http://web.archive.org/web/20260801000000/https://a.example/p","timestamp":"20260801000000"}}}"#;
        assert_eq!(
            parse_availability(after, "https://a.example/p", day("2026-07-05")).unwrap(),
            None
        );
        let before = br#"{"url":"a.example/p","archived_snapshots":{"closest":{"status":"200","available":true,"url":"http://web.archive.org/web/20260704000000/https://a.example/p","timestamp":"20260704000000"}}}"#;
        let c = parse_availability(before, "https://a.example/p", day("2026-07-05"))
            .unwrap()
            .unwrap();
        assert_eq!(c.original, "https://a.example/p");
        let none = br#"{"url":"a.example/p","archived_snapshots":{}}"#;
        assert_eq!(
            parse_availability(none, "https://a.example/p", day("2026-07-05")).unwrap(),
            None
        );
        assert!(parse_availability(b"nope", "u", day("2026-07-05")).is_err());
    }

    #[test]
    fn wayback_urls_are_read_as_captures() {
        let c = wayback_capture(
            "https://web.archive.org/web/20260704000000/https://help.mistral.ai/en/articles/x?y=1",
        )
        .unwrap();
        assert_eq!(c.timestamp, "20260704000000");
        assert_eq!(c.original, "https://help.mistral.ai/en/articles/x?y=1");
        let c = wayback_capture("https://web.archive.org/web/2026id_/https://a.example/").unwrap();
        assert_eq!(c.timestamp, "20260000000000");
        assert_eq!(wayback_capture("https://archive.ph/abc"), None);
        assert_eq!(wayback_capture("https://x.example/web/notes/1"), None);
        assert_eq!(
            timestamp_time("2026"),
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single()
        );
        assert_eq!(timestamp_time("20261399000000"), None);
    }

    #[test]
    fn queries_encode_the_url() {
        let q = cdx_query(
            "https://web.archive.org/",
            "https://a.example/p?x=1&y=2",
            day("2026-07-05"),
        );
        assert!(q.starts_with("https://web.archive.org/cdx/search/cdx?url=https%3A%2F%2Fa.example%2Fp%3Fx%3D1%26y%3D2&to=20260705&"), "{q}");
        let q = availability_query(
            "http://127.0.0.1:9",
            "https://a.example/p",
            day("2026-07-05"),
        );
        assert_eq!(
            q,
            "http://127.0.0.1:9/wayback/available?url=https%3A%2F%2Fa.example%2Fp&timestamp=20260705"
        );
    }
}
