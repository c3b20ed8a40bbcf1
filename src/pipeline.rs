//! The pipeline: the one place that wires the I/O edges (fetch, snapshot, store) to the pure
//! stages (plan, extract, evidence, verdict).
//!
//! Each host's sources are fetched one after another at the host's pace, all hosts at once
//! (the fetcher bounds requests in flight). Each finished fetch is committed as soon as it
//! finishes (snapshot file first, then one transaction shared with the fetches that finish
//! within a few milliseconds of it), so a run killed midway keeps what finished.
//! Bodies are held only while their citations are judged.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;

use crate::extract;
use crate::fetch::{self, FetchConfig, FetchOutcome, Fetcher, Validators};
use crate::plan::{self, HostQueue, PlannedSource};
use crate::registry::{Citation, Registry, Render};
use crate::snapshot::{Checked, SnapshotError, SnapshotStore, Staged};
use crate::store::{
    CheckedBody, CitationRef, FetchRecord, FetchRow, QueueDelta, SnapshotRow, Store, StoreError,
    VerdictRecord, parse_ts,
};
use crate::verdict::reading::{self, Assessment, Observed, SourceHistory};
use crate::verdict::{self, ConfirmPolicy, Reading, Verdict};

/// A source of the current time (tests control it).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The real clock.
pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// What a run needs beyond the registry.
#[derive(Clone)]
pub struct RunOptions {
    /// Which citations to cover.
    pub scope: plan::Scope,
    /// Fetch knobs.
    pub fetch: FetchConfig,
    /// Failure confirmation.
    pub confirm: ConfirmPolicy,
    /// Time.
    pub clock: Clock,
    /// The whole run's deadline.
    pub deadline: std::time::Duration,
    /// Resume a run of the same day that was killed, skipping the URLs it finished.
    pub resume: bool,
    /// A progress bar to advance per URL (interactive terminals only).
    pub progress: Option<indicatif::ProgressBar>,
    /// Archived copies of lost evidence.
    pub archive: crate::archive::ArchiveSettings,
}

/// Longest the archive stage of a run may take.
pub const ARCHIVE_BUDGET: std::time::Duration = std::time::Duration::from_secs(600);

/// Default run deadline: a nightly run that has not finished in four hours has a problem to
/// report, not more to fetch.
pub const DEFAULT_RUN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(4 * 3600);

/// What a run did, for the summary line.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// Run id.
    pub run_id: i64,
    /// Distinct URLs fetched.
    pub urls: usize,
    /// Citations judged.
    pub citations: usize,
    /// Verdict counts.
    pub verdicts: BTreeMap<Verdict, usize>,
    /// Citations whose evidence is expired.
    pub expired: usize,
    /// Queue changes.
    pub queue: QueueDelta,
    /// Body bytes downloaded.
    pub bytes: u64,
    /// Citations whose previous judgement was re-used: same bytes, citation, baseline and
    /// engine as when it was decided.
    pub reused: usize,
    /// Wall time.
    pub elapsed: std::time::Duration,
    /// URLs not fetched because the run deadline was reached.
    pub unfinished: usize,
    /// Whether the run deadline was reached.
    pub deadline_hit: bool,
    /// When this run resumed an interrupted one: how many URLs that one had finished.
    pub resumed: Option<usize>,
    /// Archived copies looked up and judged.
    pub archive: crate::archive::FollowUp,
}

impl std::fmt::Display for RunSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let counts = self
            .verdicts
            .iter()
            .map(|(v, n)| format!("{n} {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        write!(
            f,
            "run {}: {} citations over {} URLs ({}); {} expired; queue +{} opened, {} closed; {} bytes in {:.1}s",
            self.run_id,
            self.citations,
            self.urls,
            if counts.is_empty() {
                "none".into()
            } else {
                counts
            },
            self.expired,
            self.queue.opened,
            self.queue.closed,
            self.bytes,
            self.elapsed.as_secs_f64()
        )?;
        if self.reused > 0 {
            write!(
                f,
                "; {} judgement{} re-used (nothing they rest on changed)",
                self.reused,
                if self.reused == 1 { "" } else { "s" }
            )?;
        }
        if let Some(done) = self.resumed {
            write!(
                f,
                "; resumed after an interruption ({done} URLs were already done)"
            )?;
        }
        if self.deadline_hit {
            write!(
                f,
                "; run deadline reached, {} URLs not fetched",
                self.unfinished
            )?;
        }
        let a = &self.archive;
        if a.judged > 0 || a.failed > 0 {
            write!(
                f,
                "; archived copies: {} judged, evidence stands in {}",
                a.judged, a.stands
            )?;
            if a.failed > 0 {
                write!(
                    f,
                    ", {} lookup{} failed",
                    a.failed,
                    if a.failed == 1 { "" } else { "s" }
                )?;
            }
        }
        if a.submitted > 0 {
            write!(
                f,
                "; {} capture{} requested",
                a.submitted,
                if a.submitted == 1 { "" } else { "s" }
            )?;
        }
        Ok(())
    }
}

/// A run that could not complete.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The HTTP client could not be built.
    #[error(transparent)]
    Client(#[from] fetch::BuildError),
    /// Writing a snapshot failed (disk full, permissions).
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::SnapshotError),
    /// A bug in citewatch (a panic while processing a URL, a broken invariant). What the run
    /// finished is kept; the run is recorded as ended abnormally.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Fetches every planned source once, records snapshots, verdicts and queue changes.
pub async fn run(
    registry: &Registry,
    store: &Store,
    snapshots: &SnapshotStore,
    opts: &RunOptions,
) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    let now = (opts.clock)();
    let mut scope = opts.scope.clone();
    let resumed = if opts.resume {
        store.resumable_run(now).await?
    } else {
        None
    };
    if let Some((id, done)) = &resumed {
        tracing::warn!(
            run = id,
            done = done.len(),
            "resuming an interrupted run of today; its finished URLs are not fetched again"
        );
        scope.skip_urls.extend(done.iter().cloned());
    }
    let plan = plan::plan(registry, &scope);
    let run_id = match &resumed {
        Some((id, _)) => *id,
        None => {
            store
                .begin_run(now, plan.url_count() as i64, plan.citation_count() as i64)
                .await?
        }
    };
    if let Some(pb) = &opts.progress {
        pb.set_length(plan.url_count() as u64);
    }
    let fetcher = Fetcher::new(opts.fetch.clone())?;
    if plan
        .hosts
        .iter()
        .flat_map(|h| &h.sources)
        .any(|s| s.url.scheme() != "http")
    {
        fetcher.prepare_tls()?;
    }
    let (commits, incoming) = tokio::sync::mpsc::channel(GROUP_COMMIT_MAX * 4);
    let committer = tokio::spawn(commit_loop(store.clone(), snapshots.clone(), incoming));
    let ctx = Ctx {
        store,
        commits: Some(commits),
        snapshots,
        fetcher: &fetcher,
        opts,
        run_id,
        totals: std::sync::Mutex::new(HostResult::default()),
        panics: std::sync::Mutex::new(Vec::new()),
        renderer: tokio::sync::OnceCell::new(),
    };
    let mut summary = RunSummary {
        resumed: resumed.as_ref().map(|(_, done)| done.len()),
        run_id,
        urls: plan.url_count(),
        citations: plan.citation_count(),
        ..Default::default()
    };
    // Past the run deadline, hosts still working are abandoned: what they finished is already
    // committed; their remaining URLs keep their previous verdicts until the next run.
    let deadline = tokio::time::Instant::now() + opts.deadline;
    let results: Vec<Option<Result<(), RunError>>> = futures_util::stream::iter(plan.hosts.iter())
        .map(|h| async {
            tokio::time::timeout_at(deadline, ctx.process_host(h))
                .await
                .ok()
        })
        .buffer_unordered(256)
        .collect()
        .await;
    let mut ctx = ctx;
    if let Some(Ok(r)) = ctx.renderer.take() {
        r.close().await;
    }
    // Fetches a host abandoned at the deadline may still be waiting: commit them before the
    // run is closed.
    drop(ctx.commits.take());
    if let Err(e) = committer.await {
        tracing::error!(error = %e, "the group committer stopped");
    }
    let totals = std::mem::take(
        &mut *ctx
            .totals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    let panics = std::mem::take(
        &mut *ctx
            .panics
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    summary.unfinished = totals.planned_left(summary.urls);
    for v in totals.verdicts {
        *summary.verdicts.entry(v).or_default() += 1;
    }
    summary.queue += totals.queue;
    summary.bytes += totals.bytes;
    summary.reused += totals.reused;
    let mut first_error = None;
    for r in results {
        match r {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                first_error.get_or_insert(e);
            }
            None => summary.deadline_hit = true,
        }
    }
    if summary.deadline_hit {
        tracing::warn!(
            unfinished = summary.unfinished,
            "run deadline reached; unfinished URLs keep their previous verdicts"
        );
    }
    if let Some(e) = first_error {
        let how = format!(
            "failed after {} of {} URLs: {e}",
            summary.urls - summary.unfinished,
            summary.urls
        );
        let _ = store.finish_run(run_id, (opts.clock)(), Some(&how)).await;
        return Err(e);
    }
    // Lost evidence in archived copies: after the fetches, within the run's deadline (and at
    // most ten minutes); the archive failing never fails the run.
    if !summary.deadline_hit
        && archive_follow_up_needed(
            opts.archive.submit,
            resumed.is_none() && panics.is_empty() && summary.unfinished == 0,
            summary.verdicts.keys(),
        )
    {
        let budget = deadline.min(tokio::time::Instant::now() + ARCHIVE_BUDGET);
        summary.archive = crate::archive::follow_up(
            registry,
            &opts.scope,
            store,
            snapshots,
            &fetcher,
            &opts.archive,
            &opts.clock,
            budget,
        )
        .await?;
    }
    let (expired, delta) = sync_expiry(registry, store, &opts.scope, (opts.clock)()).await?;
    summary.expired = expired;
    summary.queue += delta;
    if opts.scope.is_full() {
        // Expired items still open were seen again by this run.
        store.touch_expired((opts.clock)()).await?;
        summary.queue.closed += store
            .close_orphans(registry.citations().map(Citation::identity), (opts.clock)())
            .await?;
    }
    let abnormal = if !panics.is_empty() {
        Some(format!(
            "{} URL{} not judged after an internal error: {}",
            panics.len(),
            if panics.len() == 1 { "" } else { "s" },
            panics[0]
        ))
    } else if summary.deadline_hit {
        Some(format!(
            "run deadline of {}s reached; {} of {} URLs not fetched",
            opts.deadline.as_secs(),
            summary.unfinished,
            summary.urls
        ))
    } else {
        None
    };
    store
        .finish_run(run_id, (opts.clock)(), abnormal.as_deref())
        .await?;
    summary.elapsed = started.elapsed();
    if let Some(first) = panics.into_iter().next() {
        return Err(RunError::Internal(first));
    }
    Ok(summary)
}

/// A stored snapshot's text for a citation (its selector applied), or None when the file is
/// gone or unreadable (the review then shows less, never fails).
async fn read_snapshot(
    store: &Store,
    snapshots: &SnapshotStore,
    hash: &str,
    st: &crate::report::CitationStatus<'_>,
) -> Result<Option<extract::Extracted>, StoreError> {
    let ct = store.snapshot_content_type(hash).await?;
    Ok(snapshots.get(hash).ok().and_then(|bytes| {
        extract::extract(&bytes, ct.as_deref(), st.citation.selector.as_deref()).ok()
    }))
}

/// Whether the archive follow-up has anything to act on. It acts only on citations whose
/// latest verdict is lost (and, when captures are requested, verified). When this run
/// judged every citation of its scope (`judged_all`: nothing left unfinished, no part done
/// by an earlier process of a resumed run, no URL lost to an internal error) and none of
/// `verdicts` (the words it recorded) is lost, no citation qualifies, and reading every
/// citation's latest verdict to find that out is skipped.
fn archive_follow_up_needed<'v>(
    submit: bool,
    judged_all: bool,
    mut verdicts: impl Iterator<Item = &'v verdict::Verdict>,
) -> bool {
    submit || !judged_all || verdicts.any(|v| crate::archive::LOST.contains(v))
}

/// Evaluates the age policy for every citation (optionally of one offering) against `now`,
/// opening or closing `expired` items. Returns the number expired.
pub async fn sync_expiry(
    registry: &Registry,
    store: &Store,
    scope: &plan::Scope,
    now: DateTime<Utc>,
) -> Result<(usize, QueueDelta), StoreError> {
    let today = now.date_naive();
    let limits = registry.age_limits();
    // Only changes are written: citations expired now without an open `expired` item, and
    // open items whose citation is no longer expired. A check of a large registry whose
    // expiry did not move writes nothing.
    // Keyed by the 16-byte key: no hex string per citation to look one up. A stored key that
    // is not one citewatch writes matches no citation, as its string would not.
    let open: std::collections::HashSet<crate::registry::CitationKey> = store
        .open_keys(verdict::EXPIRED)
        .await?
        .iter()
        .filter_map(|k| crate::registry::CitationKey::from_hex(k))
        .collect();
    let mut expired = 0;
    let mut delta = QueueDelta::default();
    let mut checks = Vec::new();
    for (cell, c) in registry.citations_in_cells() {
        if !scope.includes(c) {
            continue;
        }
        let max = limits.get(c.dimension.as_str()).copied().flatten();
        let is = verdict::is_expired(cell.verified, max, today);
        expired += usize::from(is);
        // Not expired and no open item to close: nothing to write, and no key to compute.
        if !is && open.is_empty() {
            continue;
        }
        let key = c.identity();
        if is == open.contains(&key) {
            continue;
        }
        let key = key.to_string();
        let (_, detail) = verdict::expiry(cell.verified, max, &c.dimension, today);
        checks.push(crate::store::ExpiryCheck {
            citation: citation_ref(c, key),
            expired: is,
            detail,
            fingerprint: cell.verified.map(|d| d.to_string()).unwrap_or_default(),
        });
        // A thousand citations per transaction: short writer locks, bounded memory.
        if checks.len() == 1000 {
            delta += store.sync_expired(&checks, now).await?;
            checks.clear();
        }
    }
    if !checks.is_empty() {
        delta += store.sync_expired(&checks, now).await?;
    }
    Ok((expired, delta))
}

/// The stored identity of a citation whose key (`Citation::key`) the caller already has.
pub fn citation_ref(c: &Citation, key: String) -> CitationRef {
    CitationRef {
        key,
        offering: c.offering.clone(),
        dimension: c.dimension.clone(),
        url: c.url.clone(),
        quote: c.quote.clone(),
    }
}

/// A fetch's HTTP exchanges as stored (JSON), written into a buffer sized for them up front
/// (the heads are most of a quiet night's fetch row).
fn exchanges_json(x: &[fetch::Exchange]) -> Option<String> {
    let size: usize = x
        .iter()
        .map(|e| 64 + e.url.len() + e.request.len() + e.response.len())
        .sum();
    let mut buf = Vec::with_capacity(size + size / 8);
    serde_json::to_writer(&mut buf, x).ok()?;
    String::from_utf8(buf).ok()
}

/// A citation's key, the basis it would be judged on, and its latest judgement (with the row
/// holding it) when that rests on exactly this basis: see [`Ctx::priors`].
type CitationBasis = (String, String, Option<(verdict::Judgement, i64)>);

struct Ctx<'a> {
    /// The run's headless browser, launched when the first `render = "browser"` source comes.
    renderer: tokio::sync::OnceCell<Result<fetch::browser::Renderer, String>>,
    /// Totals of committed fetches (shared by all hosts; kept outside the per-host futures
    /// so a deadline that abandons a host does not lose what it finished).
    totals: std::sync::Mutex<HostResult>,
    /// Internal errors caught while processing single URLs (each costs only that URL).
    panics: std::sync::Mutex<Vec<String>>,
    store: &'a Store,
    /// Finished fetches on their way to the group committer (see [`commit_loop`]).
    commits: Option<tokio::sync::mpsc::Sender<Commit>>,
    snapshots: &'a SnapshotStore,
    fetcher: &'a Fetcher,
    opts: &'a RunOptions,
    run_id: i64,
}

/// Sources whose recorded state is read together (see [`Ctx::known`]): two statements per
/// 64 sources of a host. Each read after a commit re-reads the index pages that commit
/// replaced, so fewer, larger reads cost less: 16 → 64 took a 2,000-URL re-run from 0.90 to
/// 0.84 CPU-s (median of five alternating rounds). Memory stays bounded per host.
const PREFETCH: usize = 64;

/// The recorded state of a few sources and what judging their citations rests on, read
/// just before they are fetched.
#[derive(Default)]
struct Known {
    /// Source state by state key.
    states: HashMap<String, crate::store::SourceState>,
    /// By citation key.
    judging: HashMap<String, crate::store::JudgingContext>,
}

/// The key a source's state is kept under: a browser render keeps its own (no validators,
/// its own failure count).
fn state_key(source: &PlannedSource<'_>) -> String {
    match source.render {
        Render::Http => source.url.to_string(),
        Render::Browser => format!("browser:{}", source.url),
    }
}

/// A finished fetch and where to say how its commit went.
type Commit = (
    FetchRecord,
    Vec<Staged>,
    tokio::sync::oneshot::Sender<Result<crate::store::QueueDelta, RunError>>,
);

/// How a commit went, once it is durable.
type CommitAnswer = tokio::sync::oneshot::Receiver<Result<crate::store::QueueDelta, RunError>>;

/// Most fetches committed in one transaction.
const GROUP_COMMIT_MAX: usize = 1024;

/// How long the group committer keeps a group open, at most, after its first fetch arrives,
/// for others to join it. Short against fetches that take tens to thousands of
/// milliseconds: a host keeps fetching meanwhile (see [`COMMITS_IN_FLIGHT`]), and busy hosts
/// share one transaction instead of one each. A transaction costs the same statements and
/// thread hand-overs whether it records one fetch or a hundred, and it rewrites every index
/// page its rows land on (citation keys and URLs spread them over the whole index): fewer,
/// larger groups write each such page once instead of once per group. Measured on a
/// re-run where every page answers 304 (2,000 URLs, 40 hosts, median of five alternating
/// rounds): 4 ms 1.03 CPU-s, 20 ms 0.91, 50 ms 0.87, 100 ms 0.86 (a fixed window then).
/// With at most 250 ms and [`GROUP_COMMIT_GAP`] instead of a fixed 50 ms, and groups of up
/// to 1,024 instead of 256 (`perf stat`): the 2,000-URL re-run `pwrite` 5.3-5.5 K -> 2.6 K.
/// A quiet night at 100,000 citations, with a fixed 200 ms window and groups of up to
/// 1,024 (two rounds): `pwrite` 842 K -> 568 K, `pread` -7 %, wall 18.7 and 22.1 -> 17.5
/// and 18.0 s, peak RSS +6 MB.
const GROUP_COMMIT_WINDOW: std::time::Duration = std::time::Duration::from_millis(250);

/// A group is committed early once no fetch has joined it for this long: when every host
/// waits on its commits (see [`COMMITS_IN_FLIGHT`]) or the run is slow, waiting out the
/// whole [`GROUP_COMMIT_WINDOW`] would only idle the hosts.
const GROUP_COMMIT_GAP: std::time::Duration = std::time::Duration::from_millis(50);

/// Fetches of one host handed to the group committer and not yet known durable while the
/// host goes on to its next URL: commits overlap fetching, and groups grow. Nothing is
/// counted before it is durable; a host abandoned at the run deadline leaves its in-flight
/// fetches to be committed, uncounted (the summary then says too few URLs were done, never
/// too many).
const COMMITS_IN_FLIGHT: usize = 16;

/// Group commit: commits finished fetches as they arrive, each [`group`] of them in one
/// transaction, and only then tells each sender. The group's staged snapshots are published
/// first (synced together), so no row names a snapshot that is not durable. Ends when every
/// sender is gone and nothing is waiting.
async fn commit_loop(
    store: Store,
    snapshots: SnapshotStore,
    mut incoming: tokio::sync::mpsc::Receiver<Commit>,
) {
    while let Some(first) = incoming.recv().await {
        let mut batch = group(
            first,
            &mut incoming,
            GROUP_COMMIT_MAX,
            GROUP_COMMIT_WINDOW,
            GROUP_COMMIT_GAP,
        )
        .await;
        let staged: Vec<Staged> = batch
            .iter_mut()
            .flat_map(|(_, staged, _)| std::mem::take(staged))
            .collect();
        let published = match publish(&snapshots, staged).await {
            Ok(p) => p,
            Err(e) => {
                // Nothing of the group is recorded: each fetch fails with the reason.
                for (_, _, reply) in batch {
                    let _ = reply.send(Err(RunError::Snapshot(e.again())));
                }
                continue;
            }
        };
        stamp_published(&mut batch, &published);
        let records: Vec<&FetchRecord> = batch.iter().map(|(r, _, _)| r).collect();
        let results = store.record_fetches(&records).await;
        for ((_, _, reply), result) in batch.into_iter().zip(results) {
            // A sender that gave up (the run deadline) needs no answer: its fetch is committed.
            let _ = reply.send(result.map_err(RunError::from));
        }
    }
}

/// Gives each fetch of a commit group the stamps of the bodies it stored that were just
/// published (see [`crate::store::CheckedBody`]): a new body counts as checked when it was
/// fetched, set back by 0-6 days by its hash, so that bodies stored on the same night do not
/// all come due for their full re-read on the same later night.
fn stamp_published(batch: &mut [Commit], published: &[crate::snapshot::Published]) {
    if published.is_empty() {
        return;
    }
    let stamps: HashMap<&str, &str> = published
        .iter()
        .filter_map(|p| Some((p.hash.as_str(), p.stamp.as_deref()?)))
        .collect();
    for (rec, _, _) in batch.iter_mut() {
        let body = match &rec.row {
            FetchRow::Fetched { snapshot, .. } => Some(snapshot),
            FetchRow::Failed { snapshot, .. } => snapshot.as_ref(),
            FetchRow::NotModified { .. } => None,
        };
        let bodies: Vec<&str> = body
            .into_iter()
            .chain(rec.raw_snapshot.as_ref())
            .map(|s| s.hash.as_str())
            .collect();
        for hash in bodies {
            if let Some(stamp) = stamps.get(hash) {
                rec.checked.push(CheckedBody {
                    hash: hash.to_string(),
                    stamp: (*stamp).to_string(),
                    at: rec.fetched_at - first_check_offset(hash),
                });
            }
        }
    }
}

/// How often, at most, a stored body goes without being read and checked in full before a
/// conditional request re-uses it. In between, a file whose stamp has not moved is trusted
/// unread (see [`crate::snapshot::stamp`]); this bounds how long damage below the file
/// system (the medium) can go unnoticed while the server still has the document.
const FULL_CHECK_EVERY: chrono::TimeDelta = chrono::TimeDelta::days(7);

/// Whether a body last checked in full at `last` (none recorded: never) is due for another
/// full check at `now`. A last check later than `now` (the clock was set back) is no
/// evidence of a recent one: due.
fn full_check_due(last: Option<&str>, now: DateTime<Utc>) -> bool {
    last.and_then(parse_ts).is_none_or(|at| {
        let age = now.signed_duration_since(at);
        age < chrono::TimeDelta::zero() || age >= FULL_CHECK_EVERY
    })
}

/// How far a new body's first check is set back: 0-6 whole days, from its hash.
fn first_check_offset(hash: &str) -> chrono::TimeDelta {
    let n = hash
        .get(..2)
        .and_then(|h| u8::from_str_radix(h, 16).ok())
        .unwrap_or(0);
    chrono::TimeDelta::days(i64::from(n % 7))
}

/// A commit group: `first` and those waiting or arriving while the group is open — until it
/// holds `max`, nothing has joined it for `gap`, `window` has passed since it opened, or
/// every sender is gone.
async fn group<T>(
    first: T,
    incoming: &mut tokio::sync::mpsc::Receiver<T>,
    max: usize,
    window: std::time::Duration,
    gap: std::time::Duration,
) -> Vec<T> {
    let mut batch = vec![first];
    let closes = tokio::time::Instant::now() + window;
    while batch.len() < max {
        match incoming.try_recv() {
            Ok(c) => batch.push(c),
            Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {
                let until = closes.min(tokio::time::Instant::now() + gap);
                match tokio::time::timeout_at(until, incoming.recv()).await {
                    Ok(Some(c)) => batch.push(c),
                    Ok(None) | Err(_) => break,
                }
            }
            Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => break,
        }
    }
    batch
}

/// Publishes a commit group's staged snapshots (blocking file system work, off the runtime).
async fn publish(
    snapshots: &SnapshotStore,
    staged: Vec<Staged>,
) -> Result<Vec<crate::snapshot::Published>, SnapshotError> {
    if staged.is_empty() {
        return Ok(Vec::new());
    }
    let snaps = snapshots.clone();
    match tokio::task::spawn_blocking(move || snaps.publish(staged)).await {
        Ok(r) => r,
        Err(e) => Err(SnapshotError::Io {
            path: snapshots.dir().to_path_buf(),
            source: std::io::Error::other(format!("publishing snapshots failed: {e}")),
        }),
    }
}

/// Running totals of a run, updated as each fetch is committed.
#[derive(Default)]
struct HostResult {
    verdicts: Vec<Verdict>,
    queue: QueueDelta,
    bytes: u64,
    reused: usize,
    urls_done: usize,
}

impl HostResult {
    fn planned_left(&self, planned: usize) -> usize {
        planned.saturating_sub(self.urls_done)
    }
}

/// The body a fetch left us with, if any. Its bytes are shared with the blocking tasks that
/// extract them; a 304's stored body is read back only when a citation is judged afresh.
struct Body {
    hash: String,
    bytes: Option<Arc<Vec<u8>>>,
    content_type: Option<String>,
}

/// The stored row of a body just fetched.
fn fresh_row(hash: &str, bytes: &[u8], content_type: Option<&str>) -> SnapshotRow {
    SnapshotRow {
        hash: hash.to_string(),
        size: bytes.len() as i64,
        content_type: content_type.map(str::to_string),
        check: crate::snapshot::quick_check(bytes),
    }
}

/// What one attempt at a source brought back, owned, before the verdict stage decides.
enum Gathered {
    /// A new body, already stored as a snapshot (`row`).
    Fresh {
        body: Body,
        bytes: Arc<Vec<u8>>,
        row: SnapshotRow,
        status: u16,
        final_url: String,
        validators: Validators,
    },
    /// A 304, with the stored body it points at when that could be read back.
    NotModified {
        body: Option<Body>,
        final_url: String,
    },
    /// A failed fetch.
    Failed {
        class: crate::verdict::FailureClass,
        status: Option<u16>,
        detail: String,
    },
}

/// The stored row of a failed reading; a body that came with it is kept for the record.
fn failed_row(f: &reading::Failure, snapshot: Option<SnapshotRow>) -> FetchRow {
    FetchRow::Failed {
        class: f.class,
        consecutive: i64::from(f.consecutive),
        first_failure_at: f.first_failure_at,
        snapshot,
    }
}

/// The text of a panic's payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

/// Longest a snapshot's text extraction may take. PDF readers can loop on hostile files; the
/// run moves on and the citation reads as unreadable.
const EXTRACT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// Extracts text on the blocking pool, within [`EXTRACT_DEADLINE`].
async fn extract_bounded(
    bytes: Arc<Vec<u8>>,
    content_type: Option<String>,
    selector: Option<String>,
) -> Result<extract::Extracted, String> {
    let task = tokio::task::spawn_blocking(move || {
        extract::extract(&bytes, content_type.as_deref(), selector.as_deref())
            .map_err(|e| e.to_string())
    });
    match tokio::time::timeout(EXTRACT_DEADLINE, task).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(format!("text extraction failed: {e}")),
        Err(_) => Err(format!(
            "text extraction took longer than {}s",
            EXTRACT_DEADLINE.as_secs()
        )),
    }
}

impl Ctx<'_> {
    async fn process_host(&self, host: &HostQueue<'_>) -> Result<(), RunError> {
        use futures_util::FutureExt as _;
        let mut known = Known::default();
        // Fetches of this host handed to the group committer and not yet durable, oldest first.
        let mut in_flight = std::collections::VecDeque::new();
        for (i, source) in host.sources.iter().enumerate() {
            // What the next few sources' fetches and judgements rest on, read in two queries
            // rather than three per source (bounded: memory does not grow with the host).
            if i % PREFETCH == 0 {
                let end = (i + PREFETCH).min(host.sources.len());
                known = self.known(&host.sources[i..end]).await?;
            }
            let mut out = HostResult::default();
            // A panic is a bug in citewatch, never the page's fault: it costs this URL its
            // verdicts for the run (recorded as an abnormal end), not the whole run.
            // Boxed: the source's future (3.5 KB) is written once to the heap, not copied
            // into each wrapper on the way to being polled.
            let processed = std::panic::AssertUnwindSafe(Box::pin(
                self.process_source(source, &known, &mut out),
            ))
            .catch_unwind()
            .await;
            match processed {
                Ok(processed) => {
                    // The fetch goes to the group committer and the host moves on; what it
                    // found counts (totals, progress) only once it is durable.
                    let (rec, staged) = processed?;
                    in_flight.push_back((out, self.commit(rec, staged).await?));
                    if in_flight.len() > COMMITS_IN_FLIGHT
                        && let Some((out, answer)) = in_flight.pop_front()
                    {
                        self.count_committed(out, answer).await?;
                    }
                }
                Err(payload) => {
                    let msg = panic_message(payload.as_ref());
                    tracing::error!(url = %crate::redact(source.url.as_str()), error = %msg, "internal error; this URL keeps its previous verdicts");
                    self.panics
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(format!(
                            "internal error while processing {}: {msg}",
                            crate::redact(source.url.as_str())
                        ));
                    continue;
                }
            }
        }
        while let Some((out, answer)) = in_flight.pop_front() {
            self.count_committed(out, answer).await?;
        }
        Ok(())
    }

    /// Waits until a fetch handed to the group committer is durable, then counts what it found.
    async fn count_committed(
        &self,
        mut out: HostResult,
        answer: CommitAnswer,
    ) -> Result<(), RunError> {
        let gone = || RunError::Internal("the group committer stopped".into());
        out.queue += answer.await.map_err(|_| gone())??;
        let mut totals = self
            .totals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        totals.verdicts.extend(out.verdicts);
        totals.queue += out.queue;
        totals.bytes += out.bytes;
        totals.reused += out.reused;
        totals.urls_done += 1;
        drop(totals);
        if let Some(pb) = &self.opts.progress {
            pb.inc(1);
        }
        Ok(())
    }

    /// Fetches one source, gathers the facts, lets the verdict stage decide; returns what is
    /// to be committed.
    async fn process_source(
        &self,
        source: &PlannedSource<'_>,
        known: &Known,
        out: &mut HostResult,
    ) -> Result<(FetchRecord, Vec<Staged>), RunError> {
        let state_key = state_key(source);
        let url = state_key.as_str();
        let no_state = crate::store::SourceState::default();
        let state = known.states.get(url).unwrap_or(&no_state);
        // Conditional requests only when the body they would let us re-use is intact on disk,
        // checked here before every conditional request (a 304 then re-uses it): read and
        // its bytes checked against the hash recorded when it was stored, unless its file
        // provably has not changed since its last such check and that check is recent
        // (see `full_check_due`).
        let checked_at = (self.opts.clock)();
        let mut checked = Vec::new();
        let intact = match state.last_good_snapshot.as_deref() {
            None => false,
            Some(h) => {
                let unchanged = state
                    .last_good_stamp
                    .as_deref()
                    .filter(|_| !full_check_due(state.last_good_checked_at.as_deref(), checked_at));
                match self.snapshots.check_unless_unchanged(
                    h,
                    state.last_good_check.as_deref(),
                    state.last_good_size.and_then(|n| u64::try_from(n).ok()),
                    unchanged,
                ) {
                    Ok(Checked::Unchanged) => true,
                    Ok(Checked::Read(stamp)) => {
                        checked.extend(stamp.map(|stamp| CheckedBody {
                            hash: h.to_string(),
                            stamp,
                            at: checked_at,
                        }));
                        true
                    }
                    Err(_) => false,
                }
            }
        };
        let validators = if intact {
            Validators {
                etag: state.etag.clone(),
                last_modified: state.last_modified.clone(),
            }
        } else {
            if let Some(h) = &state.last_good_snapshot {
                tracing::warn!(url = %crate::redact(url), snapshot = %h, "stored snapshot missing or corrupt; fetching in full");
            }
            Validators::default()
        };
        let started = Instant::now();
        let mut outcome = self.fetch_once(source, &validators).await;
        // A 304 points at the stored body. Its bytes are read back only when a citation is to
        // be judged afresh on them; a citation whose judgement rests on exactly this body
        // (and citation, baseline, redirects and engine) keeps it without them. When the body
        // cannot be had (it vanished or changed since it was checked, or the server answers
        // 304 to a request that carried no validators), ask once more without validators;
        // what that brings is the reading.
        let mut stored = None;
        let mut priors = None;
        if matches!(outcome, FetchOutcome::NotModified { .. }) {
            if intact && let Some(hash) = state.last_good_snapshot.clone() {
                let p = self.priors(
                    source,
                    known,
                    &hash,
                    state.content_type.as_deref(),
                    fetch::permanent_target(outcome.redirects()),
                    &fetch::describe_chain(outcome.redirects()),
                );
                stored = self.stored_body(state, hash, p.iter().any(|(_, _, j)| j.is_none()));
                priors = Some(p);
            }
            if stored.is_none() && validators != Validators::default() {
                priors = None;
                outcome = self.fetch_once(source, &Validators::default()).await;
                // Asked without validators, a 304 leaves nothing of ours to re-use.
            }
        }
        let now = (self.opts.clock)();
        let elapsed_ms = started.elapsed().as_millis() as i64;
        let exchanges = match &outcome {
            FetchOutcome::Fetched(f) => Some(&f.exchanges),
            FetchOutcome::NotModified { exchanges, .. } => Some(exchanges),
            FetchOutcome::Failed { .. } => None,
        }
        .filter(|x| !x.is_empty())
        .and_then(|x| exchanges_json(x));
        let redirects = fetch::describe_chain(outcome.redirects());
        let moved_to = fetch::permanent_target(outcome.redirects()).map(str::to_string);
        // The raw document beside a browser-rendered DOM.
        let mut raw_snapshot = None;
        // Bodies written but not yet durable: published with the fetch's commit group.
        let mut staged = Vec::new();
        // Texts extracted from the body, per selector (None = the whole page).
        let mut texts: HashMap<Option<String>, Result<extract::Extracted, String>> = HashMap::new();

        // Gather the facts (I/O): a fresh body is stored and its whole page extracted.
        let gathered = match outcome {
            FetchOutcome::Fetched(f) => {
                out.bytes += f.body.len() as u64;
                let (hash, bytes) = self.stage_snapshot(f.body, &mut staged).await?;
                if let Some(raw) = f.raw_body {
                    let (raw_hash, raw) = self.stage_snapshot(raw, &mut staged).await?;
                    raw_snapshot = Some(SnapshotRow {
                        hash: raw_hash,
                        size: raw.len() as i64,
                        content_type: Some("text/html".into()),
                        check: crate::snapshot::quick_check(&raw),
                    });
                }
                let bytes = Arc::new(bytes);
                let full = extract_bounded(bytes.clone(), f.content_type.clone(), None).await;
                texts.insert(None, full);
                Gathered::Fresh {
                    row: fresh_row(&hash, &bytes, f.content_type.as_deref()),
                    body: Body {
                        hash,
                        bytes: Some(bytes.clone()),
                        content_type: f.content_type,
                    },
                    bytes,
                    status: f.status,
                    final_url: f.final_url.to_string(),
                    validators: f.validators,
                }
            }
            FetchOutcome::NotModified { final_url, .. } => Gathered::NotModified {
                body: stored,
                final_url: final_url.to_string(),
            },
            FetchOutcome::Failed {
                class,
                status,
                detail,
                ..
            } => Gathered::Failed {
                class,
                status,
                detail,
            },
        };

        // Decide (pure): is what we have the document?
        let history = SourceHistory {
            consecutive_failures: u32::try_from(state.consecutive_failures).unwrap_or(0),
            first_failure_at: state.first_failure_at.as_deref().and_then(parse_ts),
            last_good_words: state.last_good_words.and_then(|w| usize::try_from(w).ok()),
        };
        let observed = match &gathered {
            Gathered::Fresh { bytes, .. } => Observed::Body {
                bytes,
                full: match &texts[&None] {
                    Ok(e) => Ok(e),
                    Err(why) => Err(why.as_str()),
                },
                render: source.render,
            },
            Gathered::NotModified { body, .. } => Observed::NotModified {
                stored: body.is_some(),
            },
            Gathered::Failed { class, detail, .. } => Observed::Failed {
                class: *class,
                detail,
            },
        };
        let assessment = reading::assess(&observed, &history, now);

        // What is recorded for the source follows the decision.
        let (row, body, status, detail, final_url) = match (gathered, &assessment) {
            (
                Gathered::Fresh {
                    body,
                    row: snapshot,
                    status,
                    final_url,
                    validators,
                    ..
                },
                Assessment::Document,
            ) => {
                let words = texts[&None].as_ref().map_or(0, |e| e.words);
                let row = FetchRow::Fetched {
                    snapshot,
                    etag: validators.etag,
                    last_modified: validators.last_modified,
                    words: i64::try_from(words).unwrap_or(i64::MAX),
                };
                (row, Some(body), Some(status), None, Some(final_url))
            }
            // Kept as a snapshot for the record, never as the last good body.
            (
                Gathered::Fresh {
                    row: snapshot,
                    status,
                    final_url,
                    ..
                },
                Assessment::Failure(f),
            ) => (
                failed_row(f, Some(snapshot)),
                None,
                Some(status),
                Some(f.detail.clone()),
                Some(final_url),
            ),
            (
                Gathered::NotModified {
                    body: Some(body),
                    final_url,
                },
                Assessment::Document,
            ) => (
                FetchRow::NotModified {
                    snapshot_hash: body.hash.clone(),
                },
                Some(body),
                Some(304),
                Some("not modified; stored snapshot re-used".to_string()),
                Some(final_url),
            ),
            (Gathered::NotModified { final_url, .. }, Assessment::Failure(f)) => (
                failed_row(f, None),
                None,
                Some(304),
                Some(f.detail.clone()),
                Some(final_url),
            ),
            (Gathered::Failed { status, .. }, Assessment::Failure(f)) => (
                failed_row(f, None),
                None,
                status,
                Some(f.detail.clone()),
                None,
            ),
            (
                Gathered::Failed { .. } | Gathered::NotModified { body: None, .. },
                Assessment::Document,
            ) => {
                return Err(RunError::Internal(format!(
                    "{}: the verdict stage took a failed fetch for the document",
                    crate::redact(url)
                )));
            }
        };

        // Judge every citation of the source (pure), on the same decision. A citation whose
        // latest judgement was decided on the same basis (same bytes, citation, baseline and
        // engine) re-uses it: a 304 or an unchanged body costs no extraction or matching.
        let mut baselines: HashMap<(String, Option<String>), Option<extract::Extracted>> =
            HashMap::new();
        let mut verdicts = Vec::with_capacity(source.citations.len());
        let mut priors = match (&assessment, &body) {
            (Assessment::Document, Some(b)) => priors
                .unwrap_or_else(|| {
                    self.priors(
                        source,
                        known,
                        &b.hash,
                        b.content_type.as_deref(),
                        moved_to.as_deref(),
                        &redirects,
                    )
                })
                .into_iter(),
            _ => Vec::new().into_iter(),
        };
        for (c, key) in source.citations.iter().zip(&source.keys) {
            let mut reuses = None;
            let (key, judgement, basis) = match (&assessment, &body) {
                (Assessment::Document, Some(b)) => {
                    let Some((key, basis, previous)) = priors.next() else {
                        return Err(RunError::Internal(format!(
                            "{}: a citation without its basis",
                            crate::redact(url)
                        )));
                    };
                    let judgement = match previous {
                        Some((previous, row)) => {
                            out.reused += 1;
                            reuses = Some(row);
                            previous
                        }
                        None => {
                            // Judged afresh: on the body's bytes, which a 304 read back for
                            // exactly this (see `priors`).
                            let Some(bytes) = &b.bytes else {
                                return Err(RunError::Internal(format!(
                                    "{}: a citation to judge afresh on a body not read back",
                                    crate::redact(url)
                                )));
                            };
                            let baseline_ref =
                                known.judging.get(&key).and_then(|j| j.baseline.clone());
                            if !texts.contains_key(&c.selector) {
                                let t = extract_bounded(
                                    bytes.clone(),
                                    b.content_type.clone(),
                                    c.selector.clone(),
                                )
                                .await;
                                texts.insert(c.selector.clone(), t);
                            }
                            let text = &texts[&c.selector];
                            let baseline = self
                                .baseline(c, baseline_ref, b, text, &mut baselines)
                                .await?;
                            let reading = Reading::Read {
                                text: text.as_ref().map_err(String::as_str),
                                moved_to: moved_to.as_deref(),
                                redirects: &redirects,
                            };
                            verdict::judge(c, &reading, baseline.as_ref(), self.opts.confirm, now)
                        }
                    };
                    (key, judgement, Some(basis))
                }
                (Assessment::Failure(f), _) => (
                    key.to_string(),
                    verdict::judge(c, &f.reading(), None, self.opts.confirm, now),
                    None,
                ),
                (Assessment::Document, None) => {
                    return Err(RunError::Internal(format!(
                        "{}: a document without a body",
                        crate::redact(url)
                    )));
                }
            };
            out.verdicts.push(judgement.verdict);
            let citation_stored = known
                .judging
                .get(&key)
                .is_some_and(|j| j.baseline.is_some());
            let citation = citation_ref(c, key);
            verdicts.push(VerdictRecord {
                citation,
                citation_stored,
                snapshot_hash: body
                    .as_ref()
                    .filter(|_| judgement.verdict.read_content())
                    .map(|b| b.hash.clone()),
                basis: basis.filter(|_| judgement.verdict.read_content()),
                reuses: reuses.filter(|_| judgement.verdict.read_content()),
                judgement,
            });
        }
        let rec = FetchRecord {
            run_id: self.run_id,
            url: url.to_string(),
            fetched_at: now,
            row,
            status,
            detail,
            final_url,
            redirects: (!redirects.is_empty()).then_some(redirects),
            elapsed_ms,
            verdicts,
            raw_snapshot,
            exchanges,
            checked,
        };
        tracing::info!(url = %crate::redact(url), elapsed_ms, "fetched");
        Ok((rec, staged))
    }

    /// The recorded state of these sources and what judging their citations rests on.
    async fn known(&self, sources: &[PlannedSource<'_>]) -> Result<Known, RunError> {
        let urls: Vec<String> = sources.iter().map(state_key).collect();
        let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
        let keys: Vec<String> = sources
            .iter()
            .flat_map(|s| s.keys.iter().map(|k| k.to_string()))
            .collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let (states, judging) = self.store.states_and_contexts(&urls, &keys).await?;
        Ok(Known { states, judging })
    }

    /// Hands a finished fetch to the group committer; the answer comes once it is durable.
    async fn commit(
        &self,
        rec: FetchRecord,
        staged: Vec<Staged>,
    ) -> Result<CommitAnswer, RunError> {
        let gone = || RunError::Internal("the group committer stopped".into());
        let commits = self.commits.as_ref().ok_or_else(gone)?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        commits
            .send((rec, staged, reply))
            .await
            .map_err(|_| gone())?;
        Ok(answer)
    }

    /// One attempt at a source: a plain fetch, or a browser render (launched on first use).
    async fn fetch_once(
        &self,
        source: &PlannedSource<'_>,
        validators: &Validators,
    ) -> FetchOutcome {
        match source.render {
            Render::Http => self.fetcher.fetch(&source.url, validators).await,
            // Boxed: the browser's futures are several times the size of a plain fetch's,
            // and every source's future (moved as it is set up) would otherwise carry them.
            Render::Browser => Box::pin(self.render_once(source)).await,
        }
    }

    /// One browser render of a source (the browser launched on first use).
    async fn render_once(&self, source: &PlannedSource<'_>) -> FetchOutcome {
        let policy = self.fetcher.config().addresses;
        let user_agent = self.fetcher.config().user_agent.clone();
        let renderer = self
            .renderer
            .get_or_init(|| async move {
                fetch::browser::Renderer::launch(policy, &user_agent)
                    .await
                    .map_err(|e| e.to_string())
            })
            .await;
        self.fetcher
            .render(renderer.as_ref().map_err(String::as_str), &source.url)
            .await
    }

    /// The stored body a 304 points at, `hash` (the last good body, checked intact before
    /// the request), with its bytes read back when `read` (a citation is to be judged
    /// afresh on them); nothing when they are wanted and cannot be had intact.
    fn stored_body(
        &self,
        state: &crate::store::SourceState,
        hash: String,
        read: bool,
    ) -> Option<Body> {
        let bytes = if read {
            match self
                .snapshots
                .get_checked(&hash, state.last_good_check.as_deref())
            {
                Ok(b) => Some(Arc::new(b)),
                Err(e) => {
                    tracing::warn!(url = %crate::redact(&state.url), error = %e, "stored snapshot changed since it was checked; fetching in full");
                    return None;
                }
            }
        } else {
            None
        };
        Some(Body {
            hash,
            bytes,
            content_type: state.content_type.clone(),
        })
    }

    /// Each citation of `source` in order: its key ([`crate::registry::Citation::key`]), the
    /// basis it would be judged on in this body (`hash`, as served with these redirects), and
    /// its latest judgement when that rests on exactly this basis (re-used; `None`: to be
    /// judged afresh).
    fn priors(
        &self,
        source: &PlannedSource<'_>,
        known: &Known,
        hash: &str,
        content_type: Option<&str>,
        moved_to: Option<&str>,
        redirects: &str,
    ) -> Vec<CitationBasis> {
        source
            .citations
            .iter()
            .zip(&source.keys)
            .map(|(c, key)| {
                let key = key.to_string();
                let context = known.judging.get(&key);
                let basis = verdict::basis(
                    c,
                    &key,
                    hash,
                    content_type,
                    context
                        .and_then(|j| j.baseline.as_ref())
                        .map(|(h, _)| h.as_str()),
                    moved_to,
                    redirects,
                );
                let previous = context.and_then(|j| j.judgement_on(&basis));
                (key, basis, previous)
            })
            .collect()
    }

    /// Writes a body as a content-addressed snapshot on the blocking pool, staged (added to
    /// `staged` unless already stored) for publishing with the fetch's commit group.
    async fn stage_snapshot(
        &self,
        bytes: Vec<u8>,
        staged: &mut Vec<Staged>,
    ) -> Result<(String, Vec<u8>), RunError> {
        let snaps = self.snapshots.clone();
        let put =
            tokio::task::spawn_blocking(move || snaps.stage(&bytes).map(|(h, s)| (h, s, bytes)))
                .await;
        match put {
            Ok(r) => {
                let (hash, s, bytes) = r?;
                staged.extend(s);
                Ok((hash, bytes))
            }
            Err(e) => Err(RunError::Internal(format!(
                "writing a snapshot failed: {e}"
            ))),
        }
    }

    /// The citation's extracted baseline, or None when it has no baseline yet. When the
    /// baseline is the snapshot just fetched, the text already extracted is reused; other
    /// baselines are extracted once per (snapshot, selector).
    async fn baseline(
        &self,
        c: &Citation,
        baseline: Option<(String, Option<String>)>,
        current: &Body,
        current_text: &Result<extract::Extracted, String>,
        cache: &mut HashMap<(String, Option<String>), Option<extract::Extracted>>,
    ) -> Result<Option<extract::Extracted>, RunError> {
        let Some((hash, ct)) = baseline else {
            return Ok(None);
        };
        if hash == current.hash {
            return Ok(current_text.as_ref().ok().cloned());
        }
        let key = (hash.clone(), c.selector.clone());
        if let Some(hit) = cache.get(&key) {
            return Ok(hit.clone());
        }
        let extracted = match self.snapshots.get(&hash) {
            Ok(bytes) => extract_bounded(Arc::new(bytes), ct, c.selector.clone())
                .await
                .ok(),
            Err(e) => {
                tracing::warn!(error = %e, "baseline snapshot unreadable; judging without baseline");
                None
            }
        };
        cache.insert(key, extracted.clone());
        Ok(extracted)
    }
}

/// How much of the recorded state an output needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// Each citation's verdict and when it was decided (the gate's counts and annotations).
    Verdicts,
    /// What outputs show per citation: details, links, locations (JSON, JUnit, GitHub,
    /// publish); no snapshot hashes.
    Full,
    /// Everything, snapshot hashes included, and the review of each open item (reports,
    /// `queue show`).
    Reviews,
}

impl Depth {
    /// The verdict columns this depth reads.
    pub fn columns(self) -> crate::store::VerdictColumns {
        match self {
            Depth::Verdicts => crate::store::VerdictColumns::Words,
            Depth::Full => crate::store::VerdictColumns::Shown,
            Depth::Reviews => crate::store::VerdictColumns::All,
        }
    }
}

/// Gathers the recorded state of every registry citation for `check` and `report`: latest
/// verdicts, expiry against `now`, queue items of current citations, with `with_reviews` the
/// review of each open item (change hunks and where a quote went, re-extracted from stored
/// snapshots, no network), and how the latest run ended (`run_live`: whether a run holds the
/// lock right now).
pub async fn load_state<'a>(
    registry: &'a Registry,
    store: &Store,
    snapshots: &SnapshotStore,
    now: DateTime<Utc>,
    depth: Depth,
    run_live: bool,
) -> Result<crate::report::State<'a>, StoreError> {
    let latest = store.latest_verdicts_by_key(depth.columns()).await?;
    load_state_from(registry, store, snapshots, now, depth, run_live, latest).await
}

/// [`load_state`] with the latest verdicts already read (by
/// [`Store::latest_verdicts_by_key`] with `depth.columns()`), so a
/// caller can read them while the registry parses.
pub async fn load_state_from<'a>(
    registry: &'a Registry,
    store: &Store,
    snapshots: &SnapshotStore,
    now: DateTime<Utc>,
    depth: Depth,
    run_live: bool,
    mut latest: crate::store::RecordedVerdicts,
) -> Result<crate::report::State<'a>, StoreError> {
    let with_reviews = depth == Depth::Reviews;
    use crate::report::{CitationStatus, State};
    let today = now.date_naive();
    let limits = registry.age_limits();
    let mut citations = Vec::with_capacity(registry.citations().count());
    for (cell, c) in registry.citations_in_cells() {
        let key = c.identity();
        let max = limits.get(c.dimension.as_str()).copied().flatten();
        let expired = verdict::is_expired(cell.verified, max, today);
        // Moved out of the map, not cloned: one copy of each verdict's text in memory.
        let recorded = latest.remove(&key);
        let verdict = recorded
            .as_ref()
            .and_then(|l| l.verdict().parse().ok())
            .unwrap_or(Verdict::Pending);
        citations.push(CitationStatus {
            citation: c,
            key,
            verdict,
            expired,
            recorded,
        });
    }
    drop(latest);
    let keys: std::collections::HashSet<crate::registry::CitationKey> =
        citations.iter().map(|c| c.key).collect();
    let is_current = |stored: &str| {
        crate::registry::CitationKey::from_hex(stored).is_some_and(|k| keys.contains(&k))
    };
    let mut queue: Vec<_> = store
        .queue(None)
        .await?
        .into_iter()
        .filter(|q| is_current(&q.citation_key))
        .collect();
    queue.sort_by_key(|q| (q.status != "open", q.id));
    let mut reviews = HashMap::new();
    if with_reviews {
        // Only open items are reviewed, so the cost follows the queue, not the registry.
        let open_keys: std::collections::HashSet<crate::registry::CitationKey> = queue
            .iter()
            .filter(|q| q.status == "open")
            .filter_map(|q| crate::registry::CitationKey::from_hex(&q.citation_key))
            .collect();
        for st in &citations {
            if !open_keys.contains(&st.key) || !st.verdict.read_content() {
                continue;
            }
            let Some(current_hash) = st.snapshot() else {
                continue;
            };
            let current = read_snapshot(store, snapshots, current_hash, st).await?;
            let Some(current) = current else { continue };
            let baseline = match st.baseline() {
                Some(b) if b == current_hash => Some(current.clone()),
                Some(b) => read_snapshot(store, snapshots, b, st).await?,
                None => None,
            };
            if let Some(r) = crate::report::review_of(st, baseline.as_ref(), &current) {
                reviews.insert(st.key.to_string(), r);
            }
        }
    }
    let last_run = store.last_run().await?.map(|record| {
        use crate::report::{LastRun, RunEnd};
        let end = match record.status.as_str() {
            "finished" => RunEnd::Finished,
            "running" if run_live => RunEnd::InProgress,
            "running" => RunEnd::Interrupted,
            _ => RunEnd::Failed,
        };
        LastRun { record, end }
    });
    Ok(State {
        registry,
        citations,
        queue,
        reviews,
        now,
        last_run,
        notifications: Vec::new(),
        archived: store.archived_evidence().await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::time::{Instant, sleep};

    /// Sends `n` items, one every `every`, starting at once; keeps the sender open after.
    fn arrivals(
        n: usize,
        every: Duration,
    ) -> (
        tokio::sync::mpsc::Receiver<usize>,
        tokio::sync::oneshot::Sender<()>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            for i in 0..n {
                if tx.send(i).await.is_err() {
                    return;
                }
                sleep(every).await;
            }
            let _ = stopped.await;
        });
        (rx, stop)
    }

    /// The archive follow-up is skipped only when the run itself shows that no citation
    /// of its scope can have lost evidence.
    #[test]
    fn the_archive_follow_up_is_skipped_only_when_nothing_can_be_lost() {
        use verdict::Verdict::{self, Unreachable, Verified};
        let quiet = [Verified, Verified, Unreachable];
        // A whole run that lost nothing: skipped.
        assert!(!archive_follow_up_needed(false, true, quiet.iter()));
        assert!(!archive_follow_up_needed(false, true, [].iter()));
        // Captures requested: verified evidence is acted on too.
        assert!(archive_follow_up_needed(true, true, quiet.iter()));
        // Part of the scope judged elsewhere (resumed, unfinished, an internal error): its
        // latest verdicts are not all in this run's words.
        assert!(archive_follow_up_needed(false, false, quiet.iter()));
        // Every lost word counts, and only those.
        for lost in crate::archive::LOST {
            assert!(archive_follow_up_needed(
                false,
                true,
                [Verified, lost].iter()
            ));
        }
        for word in Verdict::ALL {
            let lost = crate::archive::LOST.contains(&word);
            assert_eq!(archive_follow_up_needed(false, true, [word].iter()), lost);
        }
    }

    const MAX: usize = 8;
    const WINDOW: Duration = Duration::from_millis(250);
    const GAP: Duration = Duration::from_millis(50);

    /// A full check is due when none is recorded, or the last is seven days old; a new
    /// body's first one is set back by 0-6 days, by its hash, so a night re-reads a share of
    /// the bodies stored on one night instead of all of them a week later.
    #[test]
    fn a_full_check_is_due_weekly_and_new_bodies_are_spread_over_the_week() {
        let now: DateTime<Utc> = "2026-11-27T03:00:00Z".parse().unwrap();
        let ago = |d: i64, s: i64| {
            crate::store::ts(now - chrono::TimeDelta::days(d) + chrono::TimeDelta::seconds(s))
        };
        assert!(full_check_due(None, now));
        assert!(full_check_due(Some("not a time"), now));
        assert!(!full_check_due(Some(&ago(0, 0)), now));
        assert!(
            !full_check_due(Some(&ago(7, 1)), now),
            "a second short of a week"
        );
        assert!(full_check_due(Some(&ago(7, 0)), now));
        assert!(full_check_due(Some(&ago(30, 0)), now));
        assert!(
            full_check_due(Some(&ago(0, 1)), now),
            "a check in the future: clock set back"
        );
        let mut seen = std::collections::BTreeSet::new();
        for n in 0..=255u8 {
            let hash = format!("{n:02x}{}", "0".repeat(62));
            let back = first_check_offset(&hash);
            assert!(back >= chrono::TimeDelta::zero() && back < FULL_CHECK_EVERY);
            seen.insert(back.num_days());
        }
        assert_eq!(seen.len(), 7, "every day of the week is used");
        assert_eq!(first_check_offset(""), chrono::TimeDelta::zero());
    }

    #[tokio::test(start_paused = true)]
    async fn a_group_closes_when_nothing_has_joined_it_for_the_gap() {
        // Three fetches 20 ms apart, then silence with every sender still there.
        let (mut rx, _keep) = arrivals(3, Duration::from_millis(20));
        let first = rx.recv().await.unwrap();
        let opened = Instant::now();
        let batch = group(first, &mut rx, MAX, WINDOW, GAP).await;
        assert_eq!(batch, vec![0, 1, 2]);
        // The last joined at 40 ms; the group closed 50 ms later, not at 250 ms.
        assert_eq!(opened.elapsed(), Duration::from_millis(90));
    }

    #[tokio::test(start_paused = true)]
    async fn a_group_fed_steadily_closes_at_its_window() {
        let (mut rx, _keep) = arrivals(100, Duration::from_millis(30));
        let first = rx.recv().await.unwrap();
        let opened = Instant::now();
        let batch = group(first, &mut rx, 1000, WINDOW, GAP).await;
        assert_eq!(opened.elapsed(), WINDOW);
        // Joined at 0, 30, … 240 ms.
        assert_eq!(batch, (0..9).collect::<Vec<_>>());
        // The next group starts with the next arrival.
        let next = rx.recv().await.unwrap();
        assert_eq!(next, 9);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_group_closes_at_once() {
        let (mut rx, _keep) = arrivals(20, Duration::ZERO);
        let first = rx.recv().await.unwrap();
        let opened = Instant::now();
        let batch = group(first, &mut rx, MAX, WINDOW, GAP).await;
        assert_eq!(batch.len(), MAX);
        assert_eq!(opened.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_group_closes_when_every_sender_is_gone() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(8);
        tx.send(1).await.unwrap();
        tx.send(2).await.unwrap();
        drop(tx);
        let first = rx.recv().await.unwrap();
        let opened = Instant::now();
        let batch = group(first, &mut rx, MAX, WINDOW, GAP).await;
        assert_eq!(batch, vec![1, 2]);
        assert_eq!(opened.elapsed(), Duration::ZERO);
    }
}
