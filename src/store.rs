//! The store: citewatch's state in SQLite (runs, fetches, sources, citations, verdicts and
//! their confirmations, and the re-verification queue).
//!
//! An I/O edge. Migrations in `migrations/` are embedded at compile time and applied on open;
//! queries are plain SQL with `.bind()` (no build-time database). Each finished fetch is
//! recorded by [`Store::record_fetch`] in one `BEGIN IMMEDIATE` transaction — snapshot row,
//! fetch row, source state, verdicts (a judgement re-used: a confirmation of the row holding
//! it) and queue changes together — so a run killed at any
//! moment loses only what was in flight. The queue keeps one open row per (citation, reason);
//! a repeated sighting moves `last_seen`, and a closed item is not reopened while the state
//! behind it (its fingerprint) is unchanged.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{FromRow, Sqlite, SqliteConnection, SqlitePool, Transaction};

use crate::verdict::Judgement;

/// The database cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Opening, migrating or querying failed.
    #[error("database {path}: {source}")]
    Sqlx {
        /// The database file.
        path: String,
        /// The cause.
        source: sqlx::Error,
    },
    /// Applying migrations failed.
    #[error("database {path}: migration failed: {source}")]
    Migrate {
        /// The database file.
        path: String,
        /// The cause.
        source: sqlx::migrate::MigrateError,
    },
    /// A queue item that does not exist.
    #[error("no queue item with id {0}")]
    NoSuchItem(i64),
    /// A queue item that is not open.
    #[error("queue item {id} is already {status}")]
    NotOpen {
        /// The item.
        id: i64,
        /// Its status.
        status: String,
    },
}

type Result<T> = std::result::Result<T, StoreError>;

/// `closed_by` of items citewatch closed itself.
pub const AUTO_AUTHOR: &str = "citewatch";

/// Handle to the SQLite database.
#[derive(Clone)]
pub struct Store {
    /// Connections for reading, opened on first use. A run never needs one: it reads and
    /// writes on `writer` only (one connection, one worker thread, a warm cache).
    pool: SqlitePool,
    /// The one connection every write transaction runs on ([`Store::write_tx`]).
    writer: SqlitePool,
    path: String,
}

pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A group's rows as one JSON array parameter (each row a JSON array, read back in SQL with
/// `jsonb_each`), serialized straight from borrowed fields into one buffer sized for them:
/// no intermediate `serde_json::Value` per field, and no string regrown (and its pages
/// faulted in afresh) as it fills.
fn json_rows<T: serde::Serialize>(rows: &[T], bytes_per_row: usize) -> serde_json::Result<String> {
    let mut out = Vec::with_capacity(2 + rows.len() * bytes_per_row);
    serde_json::to_writer(&mut out, rows)?;
    // serde_json writes only valid UTF-8.
    String::from_utf8(out).map_err(|e| serde::ser::Error::custom(e.to_string()))
}

/// Rows per multi-row `INSERT … VALUES`, largest first: a group's rows go in as few
/// statements as these sizes allow (a remainder in at most three of each smaller size), so
/// each table has at most four statements to prepare per connection, each prepared once.
/// Values are bound one by one: no JSON to write, escape, parse and pick apart again per
/// column (`->>` walks a row's array from its start for every column). Measured on the
/// 2,000-URL re-run (`valgrind --tool=callgrind`, instructions): SQLite's JSON functions
/// were the largest single part of the run's user-space work.
const VALUES_CHUNKS: [usize; 4] = [64, 16, 4, 1];

/// The recorded state of a batch of URLs (`$1`: a JSON array of them), as one JSON value:
/// SQLite hands over one value instead of a row per URL, each of whose columns sqlx would
/// copy and pass across its worker thread. Each element is a [`SourceState`]'s fields in
/// declaration order.
macro_rules! source_states_sql {
    () => {
        "SELECT json_group_array(json_array(url, last_good_snapshot, sources.content_type, etag, last_modified,
                consecutive_failures, first_failure_at, last_good_words, s.xxh3, s.size,
                s.checked_at, s.stamp))
         FROM sources LEFT JOIN snapshots s ON s.hash = sources.last_good_snapshot
         WHERE url IN (SELECT value FROM json_each($1))"
    };
}

/// What judging a batch of citations rests on (`$2`: a JSON array of their keys), as one
/// JSON value: per citation its key, baseline snapshot and that snapshot's Content-Type, and
/// of its latest judgement the basis, verdict, detail, fingerprint, other reasons and the
/// row holding its text. Only what re-using the judgement needs: its link, location, near
/// match and text hash stay in that row (a re-use names it; migration 0012).
macro_rules! judging_contexts_sql {
    () => {
        "SELECT json_group_array(json_array(k.value, s.hash, s.content_type,
                o.basis, v.verdict, o.detail, o.fingerprint, o.also, o.id))
         FROM json_each($2) k
         LEFT JOIN citations c ON c.key = k.value
         LEFT JOIN snapshots s ON s.hash = c.baseline_snapshot
         LEFT JOIN verdicts v ON v.id = (SELECT MAX(id) FROM verdicts w WHERE w.citation_key = k.value)
         LEFT JOIN verdicts o ON o.id = COALESCE(v.reuses, v.id)"
    };
}

/// When the judgement of verdicts row `$v` was last checked: the `fetched_at` of its latest
/// confirmation (a later fetch that re-used it, migration 0014), else the row's own
/// `decided_at`. One seek in `confirmations_latest`, which holds the fetch too.
macro_rules! checked_at_sql {
    ($v:literal) => {
        concat!(
            "COALESCE((SELECT f.fetched_at FROM confirmations k JOIN fetches f ON f.id = k.fetch_id
                       WHERE k.verdict_id = COALESCE(",
            $v,
            ".reuses, ",
            $v,
            ".id)
                       ORDER BY k.run_id DESC LIMIT 1), ",
            $v,
            ".decided_at)"
        )
    };
}

/// `head` (an `INSERT INTO t (…)` naming `cols` columns), `rows` row tuples of `?`, `tail`.
fn values_sql(head: &str, cols: usize, rows: usize, tail: &str) -> String {
    let mut row = String::with_capacity(2 * cols + 2);
    row.push('(');
    for c in 0..cols {
        row.push_str(if c == 0 { "?" } else { ",?" });
    }
    row.push(')');
    let mut sql = String::with_capacity(head.len() + tail.len() + rows * (row.len() + 1) + 16);
    sql.push_str(head);
    sql.push_str(" VALUES ");
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push_str(&row);
    }
    sql.push(' ');
    sql.push_str(tail);
    sql
}

type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments>;

/// Inserts `rows` in order with `INSERT … VALUES` statements of [`VALUES_CHUNKS`] rows, each
/// row's `cols` values bound by `bind`.
async fn insert_values<R>(
    conn: &mut SqliteConnection,
    head: &str,
    cols: usize,
    tail: &str,
    rows: &[R],
    bind: impl for<'q> Fn(SqliteQuery<'q>, &R) -> SqliteQuery<'q>,
) -> std::result::Result<(), sqlx::Error> {
    let mut rest = rows;
    while !rest.is_empty() {
        let n = VALUES_CHUNKS
            .into_iter()
            .find(|&n| n <= rest.len())
            .unwrap_or(1);
        let (chunk, tail_rows) = rest.split_at(n);
        let mut q = sqlx::query(sqlx::AssertSqlSafe(values_sql(head, cols, n, tail)));
        for row in chunk {
            q = bind(q, row);
        }
        q.execute(&mut *conn).await?;
        rest = tail_rows;
    }
    Ok(())
}

/// A `fetches` row of a group (see [`Store::record_fetches`]), in the statement's order.
struct FetchParam<'a>(
    i64,
    i64,
    &'a str,
    &'a str,
    &'a str,
    Option<u16>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    i64,
    Option<&'a str>,
    Option<&'a str>,
);

/// A `verdicts` row of a group, in the statement's order (a judgement made afresh: a re-used
/// one is a confirmation, migration 0014).
struct VerdictParam<'a>(
    i64,
    i64,
    &'a str,
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<String>,
);

/// Parses a stored timestamp.
pub fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Per-URL state the next fetch needs. Read as a row, or (in batches) from a JSON array of
/// its fields in this order.
#[derive(Debug, Clone, Default, FromRow, PartialEq, serde::Deserialize)]
pub struct SourceState {
    /// The URL.
    pub url: String,
    /// Last body read successfully.
    pub last_good_snapshot: Option<String>,
    /// Its Content-Type.
    pub content_type: Option<String>,
    /// Its ETag.
    pub etag: Option<String>,
    /// Its Last-Modified.
    pub last_modified: Option<String>,
    /// Failed runs in a row.
    pub consecutive_failures: i64,
    /// When the streak began.
    pub first_failure_at: Option<String>,
    /// Words of the last good body, when recorded.
    pub last_good_words: Option<i64>,
    /// The quick check of the last good body's bytes, when recorded.
    pub last_good_check: Option<String>,
    /// The last good body's size in bytes, as recorded when it was stored.
    pub last_good_size: Option<i64>,
    /// When the last good body's bytes were last read and checked in full.
    pub last_good_checked_at: Option<String>,
    /// Its file's [`crate::snapshot::stamp`] then.
    pub last_good_stamp: Option<String>,
}

/// A stored body read and checked in full (or just published), with its file's stamp then:
/// until the stamp moves, or the next full check is due, the body is not read again before
/// a conditional request (migration 0013).
#[derive(Debug, Clone)]
pub struct CheckedBody {
    /// Its content hash.
    pub hash: String,
    /// Its file's [`crate::snapshot::stamp`].
    pub stamp: String,
    /// When it counts as checked (a new body's is set back by up to six days, spreading the
    /// full re-reads over the week).
    pub at: DateTime<Utc>,
}

/// A snapshot row to insert if new.
#[derive(Debug, Clone)]
pub struct SnapshotRow {
    /// Content hash.
    pub hash: String,
    /// Size in bytes.
    pub size: i64,
    /// Content-Type.
    pub content_type: Option<String>,
    /// [`crate::snapshot::quick_check`] of the bytes.
    pub check: String,
}

/// A citation's identity as stored.
#[derive(Debug, Clone)]
pub struct CitationRef {
    /// Identity key.
    pub key: String,
    /// Offering id.
    pub offering: String,
    /// Dimension id.
    pub dimension: String,
    /// URL as written.
    pub url: String,
    /// Quote.
    pub quote: Option<String>,
}

/// One citation's verdict within a fetch record.
#[derive(Debug, Clone)]
pub struct VerdictRecord {
    /// Which citation.
    pub citation: CitationRef,
    /// The judgement.
    pub judgement: Judgement,
    /// The snapshot judged, if content was read.
    pub snapshot_hash: Option<String>,
    /// What a content verdict was decided on ([`crate::verdict::basis`]); `None` otherwise.
    pub basis: Option<String>,
    /// When the judgement is the previous one re-used (nothing it rests on changed): the
    /// verdict row that holds its text ([`JudgingContext::judgement_on`]). This run's row
    /// then records the verdict, snapshot and time, and names that row instead of repeating
    /// the text.
    pub reuses: Option<i64>,
    /// The citation's row was found stored with its baseline set, just before this fetch:
    /// recording the verdict changes nothing in it (a baseline is never replaced here), so
    /// its no-op upsert is left out of the group's statement. On a quiet night that is every
    /// citation.
    pub citation_stored: bool,
}

/// The outcome of a fetch as stored.
#[derive(Debug, Clone)]
pub enum FetchRow {
    /// A new body.
    Fetched {
        /// The body's snapshot.
        snapshot: SnapshotRow,
        /// ETag.
        etag: Option<String>,
        /// Last-Modified.
        last_modified: Option<String>,
        /// Words of the body's whole-page text.
        words: i64,
    },
    /// A 304 re-using this stored snapshot.
    NotModified {
        /// The re-used snapshot.
        snapshot_hash: String,
    },
    /// A failure: the source's good fields are left alone.
    Failed {
        /// Failure class.
        class: crate::verdict::FailureClass,
        /// Failed runs in a row including this one.
        consecutive: i64,
        /// Start of the streak.
        first_failure_at: DateTime<Utc>,
        /// What was served, when a body came with the failure (an error page with status
        /// 200): recorded for people, never as the source's last good body.
        snapshot: Option<SnapshotRow>,
    },
}

/// Everything one finished fetch produced, committed together.
#[derive(Debug, Clone)]
pub struct FetchRecord {
    /// The run.
    pub run_id: i64,
    /// URL fetched.
    pub url: String,
    /// When it finished.
    pub fetched_at: DateTime<Utc>,
    /// What happened.
    pub row: FetchRow,
    /// HTTP status, if any.
    pub status: Option<u16>,
    /// One line for people.
    pub detail: Option<String>,
    /// Where redirects ended.
    pub final_url: Option<String>,
    /// Redirect chain.
    pub redirects: Option<String>,
    /// Time taken.
    pub elapsed_ms: i64,
    /// Verdicts for every citation of this URL.
    pub verdicts: Vec<VerdictRecord>,
    /// For a browser render: the document as the server sent it.
    pub raw_snapshot: Option<SnapshotRow>,
    /// The HTTP exchanges (JSON), for the WARC export.
    pub exchanges: Option<String>,
    /// Stored bodies read and checked in full for this fetch, or published with it.
    pub checked: Vec<CheckedBody>,
}

/// The age policy's decision for one citation.
#[derive(Debug, Clone)]
pub struct ExpiryCheck {
    /// Which citation.
    pub citation: CitationRef,
    /// Whether its cell's evidence is older than allowed.
    pub expired: bool,
    /// Explanation for the queue item.
    pub detail: String,
    /// The verified date: a dismissed `expired` item stays closed until it changes.
    pub fingerprint: String,
}

/// Counts of queue changes, for the run summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDelta {
    /// Items opened.
    pub opened: u32,
    /// Items closed automatically.
    pub closed: u32,
}

impl std::ops::AddAssign for QueueDelta {
    fn add_assign(&mut self, o: Self) {
        self.opened += o.opened;
        self.closed += o.closed;
    }
}

/// A re-verification queue item.
#[derive(Debug, Clone, FromRow, Serialize, PartialEq)]
pub struct QueueItem {
    /// Row id.
    pub id: i64,
    /// Citation identity key.
    pub citation_key: String,
    /// Offering id.
    pub offering: String,
    /// Dimension id.
    pub dimension: String,
    /// URL as written.
    pub url: String,
    /// Reason.
    pub reason: String,
    /// open, resolved or dismissed.
    pub status: String,
    /// Latest explanation.
    pub detail: String,
    /// Body behind the latest sighting.
    pub snapshot_hash: Option<String>,
    /// First sighting.
    pub first_seen: String,
    /// Latest sighting.
    pub last_seen: String,
    /// When closed.
    pub closed_at: Option<String>,
    /// Who closed it.
    pub closed_by: Option<String>,
    /// Their note.
    pub note: Option<String>,
}

/// A fetch as the WARC export reads it.
#[derive(Debug, Clone, FromRow)]
pub struct ExportedFetch {
    /// Row id.
    pub id: i64,
    /// The URL (a browser render's is prefixed `browser:`).
    pub url: String,
    /// When (RFC 3339).
    pub fetched_at: String,
    /// `fetched` or `not_modified`.
    pub outcome: String,
    /// HTTP status.
    pub status: Option<i64>,
    /// Content-Type.
    pub content_type: Option<String>,
    /// Where redirects ended.
    pub final_url: Option<String>,
    /// The body (for a render: the DOM).
    pub snapshot_hash: Option<String>,
    /// For a render: the server's document.
    pub raw_snapshot_hash: Option<String>,
    /// The exchanges (JSON).
    pub exchanges: Option<String>,
}

/// A citation's latest verdict as `check` and `report` read it, its text fields packed into
/// one allocation: at 100,000 citations a `String` per field cost tens of megabytes in
/// allocations alone. Fields a [`VerdictColumns`] did not ask for read as empty or `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedVerdict {
    text: Box<str>,
    /// End of each field in `text` (each starts where the one before ends).
    ends: [u32; RecordedVerdict::FIELDS],
    /// Bit `i` set: field `i` is present (`Some`, possibly empty).
    present: u16,
}

impl RecordedVerdict {
    const FIELDS: usize = 9;
    const VERDICT: usize = 0;
    const DETAIL: usize = 1;
    const SNAPSHOT: usize = 2;
    const FOUND: usize = 3;
    const DECIDED_AT: usize = 4;
    const LINK: usize = 5;
    const LOCATION: usize = 6;
    const BASELINE: usize = 7;
    const BASELINE_AT: usize = 8;

    /// Packs the fields, in the order of the `FIELDS` constants. `None` when they exceed 4 GiB
    /// together (never for what citewatch writes).
    fn pack(fields: [Option<&str>; RecordedVerdict::FIELDS]) -> Option<RecordedVerdict> {
        let len: usize = fields.iter().map(|f| f.map_or(0, str::len)).sum();
        u32::try_from(len).ok()?;
        let mut text = String::with_capacity(len);
        let mut ends = [0u32; RecordedVerdict::FIELDS];
        let mut present = 0u16;
        for (i, f) in fields.iter().enumerate() {
            if let Some(f) = f {
                text.push_str(f);
                present |= 1 << i;
            }
            ends[i] = text.len() as u32;
        }
        Some(RecordedVerdict {
            text: text.into_boxed_str(),
            ends,
            present,
        })
    }

    fn field(&self, i: usize) -> Option<&str> {
        if self.present & (1 << i) == 0 {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.text.get(start..self.ends[i] as usize)
    }

    /// Verdict word.
    pub fn verdict(&self) -> &str {
        self.field(Self::VERDICT).unwrap_or_default()
    }
    /// Explanation.
    pub fn detail(&self) -> &str {
        self.field(Self::DETAIL).unwrap_or_default()
    }
    /// Snapshot judged.
    pub fn snapshot_hash(&self) -> Option<&str> {
        self.field(Self::SNAPSHOT)
    }
    /// Near-match variant.
    pub fn found(&self) -> Option<&str> {
        self.field(Self::FOUND)
    }
    /// When the judgement was last checked: decided, or since confirmed (`checked_at_sql!`).
    pub fn decided_at(&self) -> &str {
        self.field(Self::DECIDED_AT).unwrap_or_default()
    }
    /// Live link to the quote.
    pub fn link(&self) -> Option<&str> {
        self.field(Self::LINK)
    }
    /// Where on the page the quote is.
    pub fn location(&self) -> Option<&str> {
        self.field(Self::LOCATION)
    }
    /// Baseline snapshot of the citation.
    pub fn baseline_snapshot(&self) -> Option<&str> {
        self.field(Self::BASELINE)
    }
    /// When the baseline was set.
    pub fn baseline_at(&self) -> Option<&str> {
        self.field(Self::BASELINE_AT)
    }
}

/// The latest verdict of every citation, by its key.
pub type RecordedVerdicts =
    std::collections::HashMap<crate::registry::CitationKey, Box<RecordedVerdict>>;

/// Which columns of the latest verdicts a reader needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerdictColumns {
    /// The verdict and its time (a gate that prints counts).
    Words,
    /// Also what outputs show per citation: detail, near match, link, location (no hashes).
    Shown,
    /// Everything, snapshot and baseline hashes included (reviews).
    All,
    /// What the review report prints: everything for citations with an open item or whose
    /// source changed since its baseline, the verdict and its time for the rest.
    Reported,
}

/// One archive lookup as recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, FromRow)]
pub struct ArchiveLookup {
    /// When it was made.
    pub looked_up_at: String,
    /// The capture found, as people open it.
    pub capture_url: Option<String>,
    /// When that capture was made (RFC 3339).
    pub captured: Option<String>,
    /// Its original bytes.
    pub snapshot_hash: Option<String>,
    /// Their Content-Type.
    pub content_type: Option<String>,
    /// Why the lookup or the read failed.
    pub error: Option<String>,
}

/// An outbox row: id, event, item id, run id, created at, key, attempts so far.
type OutboxRow = (i64, String, Option<i64>, Option<i64>, String, String, i64);

/// One outbox event (a queue change or an abnormal run end) to deliver.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    /// Outbox row id.
    pub id: i64,
    /// `opened`, `reopened`, `closed`, `resolved`, `dismissed` or `run_failed`.
    pub event: String,
    /// Idempotency key, stable across retries.
    pub key: String,
    /// When the change happened.
    pub created_at: String,
    /// Delivery attempts to this target so far.
    pub attempts: i64,
    /// The queue item as it is now (item events).
    pub item: Option<QueueItem>,
    /// The run (`run_failed`).
    pub run: Option<RunRecord>,
}

/// One run as recorded, with how far it got.
#[derive(Debug, Clone, FromRow, PartialEq, Eq, Serialize)]
pub struct RunRecord {
    /// Run id.
    pub id: i64,
    /// When it started.
    pub started_at: String,
    /// When it ended (NULL while running, or when its process died).
    pub finished_at: Option<String>,
    /// `running`, `finished` or `failed`.
    pub status: String,
    /// How an abnormal run ended (deadline, internal error), when it did not finish normally.
    pub ended: Option<String>,
    /// URLs planned.
    pub urls: i64,
    /// Citations planned.
    pub citations: i64,
    /// URLs whose fetch was committed.
    pub urls_done: i64,
    /// Citations that got a verdict in this run.
    pub citations_judged: i64,
}

/// The latest verdict recorded for a citation.
#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct LatestVerdict {
    /// Citation key.
    pub citation_key: String,
    /// Verdict word.
    pub verdict: String,
    /// Explanation.
    pub detail: String,
    /// Snapshot judged.
    pub snapshot_hash: Option<String>,
    /// Near-match variant.
    pub found: Option<String>,
    /// When the judgement was last checked: decided, or since confirmed (`checked_at_sql!`).
    pub decided_at: String,
    /// Live link to the quote.
    pub link: Option<String>,
    /// Where on the page the quote is.
    pub location: Option<String>,
    /// Baseline snapshot of the citation.
    pub baseline_snapshot: Option<String>,
    /// When the baseline was set.
    pub baseline_at: Option<String>,
}

impl Store {
    /// Opens (creating if missing) the database at `path` and applies migrations.
    pub async fn open(path: &Path) -> Result<Store> {
        let p = path.display().to_string();
        let err = |source| StoreError::Sqlx {
            path: p.clone(),
            source,
        };
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // Statement journals (every multi-row upsert inside a transaction opens one) in
            // memory, not in a temporary file: they never outlive the statement.
            .pragma("temp_store", "memory");
        // Write transactions have a connection of their own, with a larger page cache. In WAL
        // mode a connection empties its page cache whenever another connection has committed
        // since its last transaction; when every connection took turns writing, every commit
        // group therefore found a cold cache and read the index pages it was about to change
        // again. A connection that alone commits keeps its cache across its own commits.
        // Measured on a quiet night at 100,000 citations (`perf stat`, copies of one state):
        // `pread` 4.2 M -> 2.1-2.5 M, `pwrite` 1.04 M -> 0.85 M, CPU 19.5 -> 17.7-18.7 s;
        // the first run unchanged (29.9 / 29.4 CPU-s, 130 / 128 MB peak).
        // Neither pool pings a connection before handing it out: a SQLite connection lives in
        // this process and cannot have been dropped by a peer, and the ping is a round trip
        // to the connection's worker thread before every statement run on the pool (the
        // first statement's error says as much as the ping would).
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(opts.clone().pragma("cache_size", "-16384"))
            .await
            .map_err(err)?;
        // Readers connect on first use: a run reads on the writing connection (whose cache
        // holds what it wrote), and a connection opened for nothing costs a thread, a file
        // open and a parse of the schema.
        let pool = SqlitePoolOptions::new()
            .max_connections(3)
            .test_before_acquire(false)
            .connect_lazy_with(opts);
        sqlx::migrate!("./migrations")
            .run(&writer)
            .await
            .map_err(|source| StoreError::Migrate {
                path: p.clone(),
                source,
            })?;
        Ok(Store {
            pool,
            writer,
            path: p,
        })
    }

    /// Wraps an existing pool (tests with `#[sqlx::test]`).
    pub fn from_pool(pool: SqlitePool) -> Store {
        Store {
            writer: pool.clone(),
            pool,
            path: ":memory:".into(),
        }
    }

    /// The underlying pool, for integrity checks and tests.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    fn err(&self) -> impl Fn(sqlx::Error) -> StoreError + '_ {
        move |source| StoreError::Sqlx {
            path: self.path.clone(),
            source,
        }
    }

    async fn write_tx(&self) -> Result<Transaction<'static, Sqlite>> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(self.err())
    }

    /// Starts a run.
    pub async fn begin_run(&self, now: DateTime<Utc>, urls: i64, citations: i64) -> Result<i64> {
        let row: (i64,) = sqlx::query_as(
            "INSERT INTO runs (started_at, urls, citations) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(ts(now))
        .bind(urls)
        .bind(citations)
        .fetch_one(&self.writer)
        .await
        .map_err(self.err())?;
        Ok(row.0)
    }

    /// The run to resume: a run still marked `running` (its process died: the caller holds the
    /// run lock) that started on `now`'s UTC day, with the URLs it already fetched. Older
    /// dead runs are marked `failed`.
    pub async fn resumable_run(&self, now: DateTime<Utc>) -> Result<Option<(i64, Vec<String>)>> {
        let e = self.err();
        let dead: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, started_at FROM runs WHERE status = 'running' ORDER BY id DESC",
        )
        .fetch_all(&self.writer)
        .await
        .map_err(&e)?;
        let mut resume = None;
        for (id, started) in dead {
            let same_day = parse_ts(&started).is_some_and(|t| t.date_naive() == now.date_naive());
            if resume.is_none() && same_day {
                resume = Some(id);
                continue;
            }
            sqlx::query("UPDATE runs SET status = 'failed', finished_at = $2 WHERE id = $1")
                .bind(id)
                .bind(ts(now))
                .execute(&self.writer)
                .await
                .map_err(&e)?;
        }
        let Some(id) = resume else { return Ok(None) };
        let urls: Vec<(String,)> =
            sqlx::query_as("SELECT DISTINCT url FROM fetches WHERE run_id = $1")
                .bind(id)
                .fetch_all(&self.writer)
                .await
                .map_err(&e)?;
        Ok(Some((id, urls.into_iter().map(|u| u.0).collect())))
    }

    /// Marks a run finished (`abnormal` is None) or failed, saying how it ended.
    pub async fn finish_run(
        &self,
        run_id: i64,
        now: DateTime<Utc>,
        abnormal: Option<&str>,
    ) -> Result<()> {
        sqlx::query("UPDATE runs SET finished_at = $1, status = $2, ended = $3 WHERE id = $4")
            .bind(ts(now))
            .bind(if abnormal.is_none() {
                "finished"
            } else {
                "failed"
            })
            .bind(abnormal)
            .bind(run_id)
            .execute(&self.writer)
            .await
            .map_err(self.err())?;
        Ok(())
    }

    /// The last `limit` runs, oldest first: (id, started_at).
    pub async fn recent_runs(&self, limit: i64) -> Result<Vec<(i64, String)>> {
        let mut rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, started_at FROM runs ORDER BY id DESC LIMIT $1")
                .bind(limit)
                .fetch_all(&self.pool)
                .await
                .map_err(self.err())?;
        rows.reverse();
        Ok(rows)
    }

    /// Every verdict of runs from `first_run` on, by run: (run id, citation key, verdict
    /// word), one per citation a run judged, whether judged afresh (a verdicts row) or
    /// re-used (a confirmation, migration 0014). Should a run have judged a citation twice,
    /// its later judgement (by fetch) is the run's.
    pub async fn verdicts_since_run(&self, first_run: i64) -> Result<Vec<(i64, String, String)>> {
        // SQLite takes the bare `verdict` from the row holding `MAX(fetch_id)` of each group.
        let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(
            "SELECT run_id, citation_key, verdict, MAX(fetch_id) FROM (
                 SELECT run_id, fetch_id, citation_key, verdict FROM verdicts WHERE run_id >= $1
                 UNION ALL
                 SELECT k.run_id, k.fetch_id, o.citation_key, o.verdict
                 FROM confirmations k JOIN verdicts o ON o.id = k.verdict_id WHERE k.run_id >= $1)
             GROUP BY run_id, citation_key ORDER BY run_id, citation_key",
        )
        .bind(first_run)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(rows.into_iter().map(|(r, k, v, _)| (r, k, v)).collect())
    }

    /// The latest run and how far it got, if any run was recorded.
    pub async fn last_run(&self) -> Result<Option<RunRecord>> {
        let (last,): (Option<i64>,) = sqlx::query_as("SELECT MAX(id) FROM runs")
            .fetch_one(&self.pool)
            .await
            .map_err(self.err())?;
        match last {
            Some(id) => self.run_record(id).await,
            None => Ok(None),
        }
    }

    /// Per-URL state, if the URL was fetched before.
    pub async fn source_state(&self, url: &str) -> Result<Option<SourceState>> {
        sqlx::query_as(
            "SELECT url, last_good_snapshot, sources.content_type, etag, last_modified, consecutive_failures, first_failure_at, last_good_words,
                    s.xxh3 AS last_good_check, s.size AS last_good_size,
                    s.checked_at AS last_good_checked_at, s.stamp AS last_good_stamp
             FROM sources LEFT JOIN snapshots s ON s.hash = sources.last_good_snapshot WHERE url = $1",
        )
        .bind(url)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.err())
    }

    /// [`Store::source_state`] of several URLs in one query (those without state are absent).
    ///
    /// Read on the writing connection, as [`Store::judging_contexts`] is: a run reads these
    /// rows just before it writes them, and only that connection's page cache survives the
    /// run's commits (a reading connection empties its cache whenever another one has
    /// committed since its last transaction, and read every index page again from the file).
    /// Measured on a re-run where every page answers 304 (2,000 URLs, `perf stat`, three
    /// alternating rounds): `pread` 3.7-3.9 K -> 1.8-1.9 K, page faults 6.7-7.0 K -> 5.3 K.
    pub async fn source_states(
        &self,
        urls: &[&str],
    ) -> Result<std::collections::HashMap<String, SourceState>> {
        Ok(self.states_and_contexts(urls, &[]).await?.0)
    }

    /// The state of these URLs and the judging contexts of these citation keys (as
    /// [`Store::source_states`] and [`Store::judging_contexts`]), read on one connection
    /// checked out once: every check-out of a pooled connection costs a round trip to its
    /// worker thread when it goes back.
    pub async fn states_and_contexts(
        &self,
        urls: &[&str],
        keys: &[&str],
    ) -> Result<(
        std::collections::HashMap<String, SourceState>,
        std::collections::HashMap<String, JudgingContext>,
    )> {
        let url_list = serde_json::to_string(urls).map_err(|e| self.encode_error(e))?;
        let key_list = serde_json::to_string(keys).map_err(|e| self.encode_error(e))?;
        let mut conn = self.writer.acquire().await.map_err(self.err())?;
        // Both statements in one query: one round trip to the worker thread, not two. Each
        // returns one row (an aggregate), in the order written.
        let rows: Vec<(Option<String>,)> = sqlx::query_as(concat!(
            source_states_sql!(),
            ";\n",
            judging_contexts_sql!()
        ))
        .bind(url_list)
        .bind(key_list)
        .fetch_all(&mut *conn)
        .await
        .map_err(self.err())?;
        let [(states,), (contexts,)] = <[(Option<String>,); 2]>::try_from(rows).map_err(|r| {
            self.decode_error(format!(
                "the batch read returned {} rows instead of 2",
                r.len()
            ))
        })?;
        Ok((
            self.source_states_from(states)?,
            self.judging_contexts_from(contexts)?,
        ))
    }

    /// The states read by `source_states_sql!`, by URL.
    fn source_states_from(
        &self,
        json: Option<String>,
    ) -> Result<std::collections::HashMap<String, SourceState>> {
        let rows: Vec<SourceState> = match json {
            Some(json) => serde_json::from_str(&json).map_err(|e| self.decode_error(e))?,
            None => Vec::new(),
        };
        Ok(rows.into_iter().map(|r| (r.url.clone(), r)).collect())
    }

    /// A JSON statement parameter that could not be encoded.
    fn encode_error(&self, e: serde_json::Error) -> StoreError {
        StoreError::Sqlx {
            path: self.path.clone(),
            source: sqlx::Error::Encode(Box::new(e)),
        }
    }

    /// Rows aggregated as JSON by SQLite that did not read back.
    fn decode_error(&self, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StoreError {
        StoreError::Sqlx {
            path: self.path.clone(),
            source: sqlx::Error::Decode(e.into()),
        }
    }

    /// What judging each of these citations rests on, in one query: its baseline snapshot
    /// and that snapshot's Content-Type (none when that snapshot has no row), and its latest
    /// judgement with the basis it was decided on, when it was decided on content. Read on
    /// the writing connection (see [`Store::source_states`]).
    pub async fn judging_contexts(
        &self,
        keys: &[&str],
    ) -> Result<std::collections::HashMap<String, JudgingContext>> {
        Ok(self.states_and_contexts(&[], keys).await?.1)
    }

    /// The contexts read by `judging_contexts_sql!`, by citation key.
    fn judging_contexts_from(
        &self,
        json: Option<String>,
    ) -> Result<std::collections::HashMap<String, JudgingContext>> {
        type Row = (
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<i64>,
        );
        let rows: Vec<Row> = match json {
            Some(json) => serde_json::from_str(&json).map_err(|e| self.decode_error(e))?,
            None => Vec::new(),
        };
        let mut out = std::collections::HashMap::with_capacity(rows.len());
        for (key, baseline, baseline_ct, basis, verdict, detail, fingerprint, also, row) in rows {
            // As `baseline`: a baseline whose snapshot row is missing is no baseline.
            let baseline = baseline.map(|b| (b, baseline_ct));
            let latest = match (basis, verdict, detail, fingerprint, row) {
                (Some(basis), Some(verdict), Some(detail), Some(fingerprint), Some(row)) => {
                    judgement_from(
                        &verdict,
                        detail,
                        None,
                        fingerprint,
                        None,
                        also.as_deref(),
                        None,
                        None,
                    )
                    .map(|judgement| Prior {
                        basis,
                        judgement,
                        row,
                    })
                }
                _ => None,
            };
            out.insert(key, JudgingContext { baseline, latest });
        }
        Ok(out)
    }

    /// Content-Type recorded for a snapshot.
    pub async fn snapshot_content_type(&self, hash: &str) -> Result<Option<String>> {
        let row: Option<(Option<String>,)> =
            sqlx::query_as("SELECT content_type FROM snapshots WHERE hash = $1")
                .bind(hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(self.err())?;
        Ok(row.and_then(|r| r.0))
    }

    /// Commits one finished fetch with all it implies, atomically.
    pub async fn record_fetch(&self, rec: &FetchRecord) -> Result<QueueDelta> {
        let mut tx = self.write_tx().await?;
        let delta = self.record_group_in(&mut tx, &[rec]).await?;
        tx.commit().await.map_err(self.err())?;
        Ok(delta.into_iter().next().unwrap_or_default())
    }

    /// Commits several finished fetches in one transaction (group commit: one transaction's
    /// page writes instead of one per fetch), each with all it implies. Nothing is reported
    /// for a fetch before its transaction committed. When the group's transaction fails, each
    /// fetch is committed alone, so one that cannot be recorded costs only itself.
    pub async fn record_fetches(&self, recs: &[&FetchRecord]) -> Vec<Result<QueueDelta>> {
        if recs.len() == 1 {
            return vec![self.record_fetch(recs[0]).await];
        }
        let together = async {
            let mut tx = self.write_tx().await?;
            let deltas = self.record_group_in(&mut tx, recs).await?;
            tx.commit().await.map_err(self.err())?;
            Ok::<_, StoreError>(deltas)
        };
        match together.await {
            Ok(deltas) => deltas.into_iter().map(Ok).collect(),
            Err(e) => {
                tracing::warn!(error = %e, fetches = recs.len(), "group commit failed; committing each fetch alone");
                let mut out = Vec::with_capacity(recs.len());
                for rec in recs {
                    out.push(self.record_fetch(rec).await);
                }
                out
            }
        }
    }

    /// The statements of [`Store::record_fetches`] for a group of fetches, inside the caller's
    /// transaction: one set-based statement per table for the whole group (each row read from
    /// one JSON parameter), so a group costs a handful of round trips to SQLite's worker
    /// thread, not five or more per fetch. The effect is that of recording each fetch in turn:
    /// rows apply in the group's order, and a group in which a URL repeats is recorded one
    /// fetch at a time.
    async fn record_group_in(
        &self,
        tx: &mut Transaction<'static, Sqlite>,
        recs: &[&FetchRecord],
    ) -> Result<Vec<QueueDelta>> {
        let mut urls = std::collections::HashSet::with_capacity(recs.len());
        if recs.len() > 1 && !recs.iter().all(|r| urls.insert(r.url.as_str())) {
            let mut deltas = Vec::with_capacity(recs.len());
            for rec in recs {
                deltas.extend(Box::pin(self.record_group_in(tx, &[*rec])).await?);
            }
            return Ok(deltas);
        }
        let e = self.err();
        let at: Vec<String> = recs.iter().map(|r| ts(r.fetched_at)).collect();

        // Bodies checked in full (or published) with these fetches, with their stamps: one per
        // body (a body shared by several fetches of the group: its latest check).
        let mut checked: std::collections::BTreeMap<&str, &CheckedBody> = Default::default();
        for c in recs.iter().flat_map(|r| &r.checked) {
            let slot = checked.entry(c.hash.as_str()).or_insert(c);
            if c.at >= slot.at {
                *slot = c;
            }
        }

        // Snapshots first: fetches and verdicts refer to them. A body published with the
        // group carries its stamp in its row; the others checked are updated below.
        let mut snapshots = Vec::new();
        for (rec, at) in recs.iter().zip(&at) {
            let body = match &rec.row {
                FetchRow::Fetched { snapshot, .. } => Some(snapshot),
                FetchRow::Failed { snapshot, .. } => snapshot.as_ref(),
                FetchRow::NotModified { .. } => None,
            };
            for s in body.into_iter().chain(rec.raw_snapshot.as_ref()) {
                let stamp = checked.remove(s.hash.as_str());
                snapshots.push(serde_json::json!([
                    s.hash,
                    s.size,
                    s.content_type,
                    at,
                    s.check,
                    stamp.map(|c| ts(c.at)),
                    stamp.map(|c| c.stamp.as_str())
                ]));
            }
        }
        if !snapshots.is_empty() {
            sqlx::query(
                "INSERT INTO snapshots (hash, size, content_type, first_seen, xxh3, checked_at, stamp)
                 SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6
                 FROM jsonb_each($1) WHERE true ORDER BY key
                 ON CONFLICT(hash) DO UPDATE SET xxh3 = COALESCE(snapshots.xxh3, excluded.xxh3),
                    checked_at = COALESCE(excluded.checked_at, snapshots.checked_at),
                    stamp = COALESCE(excluded.stamp, snapshots.stamp)
                 WHERE snapshots.xxh3 IS NULL OR excluded.stamp IS NOT NULL",
            )
            .bind(serde_json::Value::from(snapshots).to_string())
            .execute(&mut **tx)
            .await
            .map_err(&e)?;
        }

        // The fetches, with the ids SQLite would give them (the largest so far plus one, in
        // order: `BEGIN IMMEDIATE` holds the only write lock), so verdicts can refer to them.
        let (last,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(id), 0) FROM fetches")
            .fetch_one(&mut **tx)
            .await
            .map_err(&e)?;
        let mut fetches = Vec::with_capacity(recs.len());
        let (mut fetched, mut failed) = (Vec::new(), Vec::new());
        let mut not_modified: Vec<&str> = Vec::new();
        for (i, (rec, at)) in recs.iter().zip(&at).enumerate() {
            let (outcome, snapshot_hash, class, etag, lm, ct) = match &rec.row {
                FetchRow::Fetched {
                    snapshot,
                    etag,
                    last_modified,
                    words,
                } => {
                    fetched.push(serde_json::json!([
                        rec.url,
                        snapshot.hash,
                        snapshot.content_type,
                        etag,
                        last_modified,
                        words
                    ]));
                    (
                        "fetched",
                        Some(snapshot.hash.as_str()),
                        None,
                        etag.as_deref(),
                        last_modified.as_deref(),
                        snapshot.content_type.as_deref(),
                    )
                }
                FetchRow::NotModified { snapshot_hash } => {
                    not_modified.push(rec.url.as_str());
                    (
                        "not_modified",
                        Some(snapshot_hash.as_str()),
                        None,
                        None,
                        None,
                        None,
                    )
                }
                FetchRow::Failed {
                    class,
                    snapshot,
                    consecutive,
                    first_failure_at,
                } => {
                    failed.push(serde_json::json!([
                        rec.url,
                        consecutive,
                        (*consecutive > 0).then(|| ts(*first_failure_at))
                    ]));
                    (
                        "failed",
                        snapshot.as_ref().map(|s| s.hash.as_str()),
                        Some(class.as_str()),
                        None,
                        None,
                        snapshot.as_ref().and_then(|s| s.content_type.as_deref()),
                    )
                }
            };
            fetches.push(FetchParam(
                last + 1 + i as i64,
                rec.run_id,
                &rec.url,
                at,
                outcome,
                rec.status,
                class,
                rec.detail.as_deref(),
                rec.final_url.as_deref(),
                rec.redirects.as_deref(),
                snapshot_hash,
                ct,
                etag,
                lm,
                rec.elapsed_ms,
                rec.raw_snapshot.as_ref().map(|r| r.hash.as_str()),
                rec.exchanges.as_deref(),
            ));
        }
        insert_values(
            tx,
            "INSERT INTO fetches (id, run_id, url, fetched_at, outcome, status, failure_class, detail, final_url, redirects, snapshot_hash, content_type, etag, last_modified, elapsed_ms, raw_snapshot_hash, exchanges)",
            17,
            "",
            &fetches,
            |q, f| {
                q.bind(f.0)
                    .bind(f.1)
                    .bind(f.2)
                    .bind(f.3)
                    .bind(f.4)
                    .bind(f.5.map(i64::from))
                    .bind(f.6)
                    .bind(f.7)
                    .bind(f.8)
                    .bind(f.9)
                    .bind(f.10)
                    .bind(f.11)
                    .bind(f.12)
                    .bind(f.13)
                    .bind(f.14)
                    .bind(f.15)
                    .bind(f.16)
            },
        )
        .await
        .map_err(&e)?;

        // Stored bodies read and checked in full before a conditional request: their stamps.
        let checked: Vec<serde_json::Value> = checked
            .values()
            .map(|c| serde_json::json!([c.hash, ts(c.at), c.stamp]))
            .collect();
        if !checked.is_empty() {
            sqlx::query(
                "UPDATE snapshots SET checked_at = j.value->>1, stamp = j.value->>2
                 FROM (SELECT value FROM jsonb_each($1) ORDER BY key) j
                 WHERE snapshots.hash = j.value->>0",
            )
            .bind(serde_json::Value::from(checked).to_string())
            .execute(&mut **tx)
            .await
            .map_err(&e)?;
        }

        // The sources' state follows each fetch. A row is written only when something in it
        // changes: on a quiet night (the same body again, or a 304 after a success) every
        // source is left as it is, and no page of the table is rewritten.
        if !fetched.is_empty() {
            sqlx::query(
                "INSERT INTO sources (url, last_good_snapshot, content_type, etag, last_modified, consecutive_failures, first_failure_at, last_good_words)
                 SELECT value->>0, value->>1, value->>2, value->>3, value->>4, 0, NULL, value->>5
                 FROM jsonb_each($1) WHERE true ORDER BY key
                 ON CONFLICT(url) DO UPDATE SET last_good_snapshot = excluded.last_good_snapshot,
                    content_type = excluded.content_type, etag = excluded.etag, last_modified = excluded.last_modified,
                    consecutive_failures = 0, first_failure_at = NULL, last_good_words = excluded.last_good_words
                 WHERE sources.last_good_snapshot IS NOT excluded.last_good_snapshot
                    OR sources.content_type IS NOT excluded.content_type OR sources.etag IS NOT excluded.etag
                    OR sources.last_modified IS NOT excluded.last_modified OR sources.consecutive_failures <> 0
                    OR sources.first_failure_at IS NOT NULL OR sources.last_good_words IS NOT excluded.last_good_words",
            )
            .bind(serde_json::Value::from(fetched).to_string())
            .execute(&mut **tx)
            .await
            .map_err(&e)?;
        }
        if !not_modified.is_empty() {
            sqlx::query(
                "UPDATE sources SET consecutive_failures = 0, first_failure_at = NULL
                 FROM jsonb_each($1) j
                 WHERE sources.url = j.value AND (sources.consecutive_failures <> 0 OR sources.first_failure_at IS NOT NULL)",
            )
            .bind(json_rows(&not_modified, 48).map_err(|e| self.encode_error(e))?)
            .execute(&mut **tx)
            .await
            .map_err(&e)?;
        }
        if !failed.is_empty() {
            sqlx::query(
                "INSERT INTO sources (url, consecutive_failures, first_failure_at)
                 SELECT value->>0, value->>1, value->>2 FROM jsonb_each($1) WHERE true ORDER BY key
                 ON CONFLICT(url) DO UPDATE SET consecutive_failures = excluded.consecutive_failures, first_failure_at = excluded.first_failure_at",
            )
            .bind(serde_json::Value::from(failed).to_string())
            .execute(&mut **tx)
            .await
            .map_err(&e)?;
        }

        // Every judged citation: its row (and a first reading of its content as its baseline;
        // an existing baseline is never replaced here), its verdict, and the closing of open
        // items the judgement no longer raises.
        let mut citations = Vec::new();
        let mut verdicts = Vec::new();
        let mut confirmations: Vec<(i64, i64, i64)> = Vec::new();
        let mut closing = Vec::new();
        // Which fetch of the group first judged a citation: its queue changes count there.
        let mut owner: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for (i, (rec, at)) in recs.iter().zip(&at).enumerate() {
            for v in &rec.verdicts {
                let c = &v.citation;
                owner.entry(c.key.as_str()).or_insert(i);
                let j = &v.judgement;
                let first_baseline = v
                    .snapshot_hash
                    .as_deref()
                    .filter(|_| j.verdict.read_content());
                if !v.citation_stored {
                    citations.push((
                        c.key.as_str(),
                        c.offering.as_str(),
                        c.dimension.as_str(),
                        c.url.as_str(),
                        c.quote.as_deref(),
                        at.as_str(),
                        first_baseline,
                    ));
                }
                match v.reuses {
                    // Nothing the judgement rests on changed: it stands as recorded in `row`,
                    // confirmed by this fetch (migration 0014).
                    Some(row) => confirmations.push((rec.run_id, row, last + 1 + i as i64)),
                    None => {
                        let also: Vec<&str> = j.also.iter().map(|a| a.as_str()).collect();
                        verdicts.push(VerdictParam(
                            rec.run_id,
                            last + 1 + i as i64,
                            &c.key,
                            j.verdict.as_str(),
                            &j.detail,
                            j.text_hash.as_deref(),
                            v.snapshot_hash.as_deref(),
                            j.found.as_deref(),
                            at,
                            j.link.as_deref(),
                            j.location.as_deref(),
                            v.basis.as_deref(),
                            Some(&j.fingerprint),
                            Some(also.join(",")),
                        ));
                    }
                }
                // Only a reading of the content can show a content problem is gone; a failed
                // fetch leaves content items alone. Expiry is synced separately.
                if j.verdict.read_content() {
                    closing.push((
                        c.key.as_str(),
                        j.queue_reasons(),
                        at.as_str(),
                        j.verdict.as_str(),
                    ));
                }
            }
        }
        let mut deltas = vec![QueueDelta::default(); recs.len()];
        if !citations.is_empty() {
            sqlx::query(
                "INSERT INTO citations (key, offering, dimension, url, quote, first_seen, baseline_snapshot, baseline_at)
                 SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6,
                        CASE WHEN value->>6 IS NULL THEN NULL ELSE value->>5 END
                 FROM jsonb_each($1) WHERE true ORDER BY key
                 ON CONFLICT(key) DO UPDATE SET baseline_snapshot = excluded.baseline_snapshot, baseline_at = excluded.baseline_at
                 WHERE citations.baseline_snapshot IS NULL AND excluded.baseline_snapshot IS NOT NULL",
            )
            .bind(json_rows(&citations, 320).map_err(|e| self.encode_error(e))?)
            .execute(&mut **tx)
            .await
            .map_err(&e)?;
        }
        if !verdicts.is_empty() {
            // A second judgement of a citation in one run replaces the first.
            insert_values(
                tx,
                "INSERT INTO verdicts (run_id, fetch_id, citation_key, verdict, detail, text_hash, snapshot_hash, found, decided_at, link, location, basis, fingerprint, also)",
                14,
                "ON CONFLICT(run_id, citation_key) DO UPDATE SET fetch_id = excluded.fetch_id, verdict = excluded.verdict,
                    snapshot_hash = excluded.snapshot_hash, decided_at = excluded.decided_at,
                    detail = excluded.detail, text_hash = excluded.text_hash, found = excluded.found,
                    link = excluded.link, location = excluded.location, basis = excluded.basis,
                    fingerprint = excluded.fingerprint, also = excluded.also, reuses = NULL",
                &verdicts,
                |q, v| {
                    q.bind(v.0)
                        .bind(v.1)
                        .bind(v.2)
                        .bind(v.3)
                        .bind(v.4)
                        .bind(v.5)
                        .bind(v.6)
                        .bind(v.7)
                        .bind(v.8)
                        .bind(v.9)
                        .bind(v.10)
                        .bind(v.11)
                        .bind(v.12)
                        .bind(v.13.as_deref())
                },
            )
            .await
            .map_err(&e)?;
        }
        if !confirmations.is_empty() {
            // A judgement confirmed twice in one run: the later fetch confirmed it last.
            insert_values(
                tx,
                "INSERT INTO confirmations (run_id, verdict_id, fetch_id)",
                3,
                "ON CONFLICT(run_id, verdict_id) DO UPDATE SET fetch_id = excluded.fetch_id",
                &confirmations,
                |q, k| q.bind(k.0).bind(k.1).bind(k.2),
            )
            .await
            .map_err(&e)?;
        }
        if !closing.is_empty() {
            // An item is closed once, by the first judgement of its citation in the group.
            let closed: Vec<(String,)> = sqlx::query_as(
                "UPDATE reverify_queue SET status = 'resolved', closed_at = j.value->>2, closed_by = 'citewatch',
                    note = 'no longer observed: verdict now ' || (j.value->>3)
                 FROM (SELECT value FROM jsonb_each($1) ORDER BY key) j
                 WHERE reverify_queue.citation_key = j.value->>0 AND reverify_queue.status = 'open'
                   AND reverify_queue.reason <> 'expired'
                   AND reverify_queue.reason NOT IN (SELECT value FROM json_each(j.value->1))
                 RETURNING reverify_queue.citation_key",
            )
            .bind(json_rows(&closing, 120).map_err(|e| self.encode_error(e))?)
            .fetch_all(&mut **tx)
            .await
            .map_err(&e)?;
            for (key,) in closed {
                if let Some(&i) = owner.get(key.as_str()) {
                    deltas[i].closed += 1;
                }
            }
        }
        // Problems the judgements raise: each open item refreshed, or a new one opened.
        for (i, (rec, at)) in recs.iter().zip(&at).enumerate() {
            for v in &rec.verdicts {
                for reason in &v.judgement.queue_reasons() {
                    deltas[i] += open_or_touch(
                        tx,
                        &v.citation,
                        reason,
                        &v.judgement.detail,
                        &v.judgement.fingerprint,
                        v.snapshot_hash.as_deref(),
                        at,
                    )
                    .await
                    .map_err(&e)?;
                }
            }
        }
        Ok(deltas)
    }

    /// Opens, refreshes or closes the `expired` items of many citations in one transaction.
    pub async fn sync_expired(
        &self,
        items: &[ExpiryCheck],
        now: DateTime<Utc>,
    ) -> Result<QueueDelta> {
        let e = self.err();
        let at = ts(now);
        let mut tx = self.write_tx().await?;
        let mut delta = QueueDelta::default();
        for item in items {
            upsert_citation(&mut tx, &item.citation, &at)
                .await
                .map_err(&e)?;
            if item.expired {
                delta += open_or_touch(
                    &mut tx,
                    &item.citation,
                    crate::verdict::EXPIRED,
                    &item.detail,
                    &item.fingerprint,
                    None,
                    &at,
                )
                .await
                .map_err(&e)?;
            } else {
                let r = sqlx::query(
                    "UPDATE reverify_queue SET status = 'resolved', closed_at = $2, closed_by = 'citewatch', note = 'no longer expired (verified date updated)'
                     WHERE citation_key = $1 AND reason = 'expired' AND status = 'open'",
                )
                .bind(&item.citation.key)
                .bind(&at)
                .execute(&mut *tx)
                .await
                .map_err(&e)?;
                delta.closed += r.rows_affected() as u32;
            }
        }
        tx.commit().await.map_err(&e)?;
        Ok(delta)
    }

    /// Citation keys with an open item for `reason`.
    pub async fn open_keys(&self, reason: &str) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT citation_key FROM reverify_queue WHERE status = 'open' AND reason = $1",
        )
        .bind(reason)
        .fetch_all(&self.writer)
        .await
        .map_err(self.err())?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Moves `last_seen` of every open `expired` item to `now` (a full run saw them again).
    pub async fn touch_expired(&self, now: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "UPDATE reverify_queue SET last_seen = $1 WHERE status = 'open' AND reason = 'expired'",
        )
        .bind(ts(now))
        .execute(&self.writer)
        .await
        .map_err(self.err())?;
        Ok(())
    }

    /// Closes open items of citations no longer in the registry (edited or removed), given
    /// the registry's citation keys. Only open items are held (few, however large the
    /// registry): memory does not grow with the registry.
    pub async fn close_orphans(
        &self,
        current: impl IntoIterator<Item = crate::registry::CitationKey>,
        now: DateTime<Utc>,
    ) -> Result<u32> {
        let open: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, citation_key FROM reverify_queue WHERE status = 'open'")
                .fetch_all(&self.writer)
                .await
                .map_err(self.err())?;
        // A key that is not even one of ours names no citation of the registry either.
        let mut orphans = Vec::new();
        let mut by_key: std::collections::HashMap<crate::registry::CitationKey, Vec<i64>> =
            std::collections::HashMap::new();
        for (id, key) in open {
            match crate::registry::CitationKey::from_hex(&key) {
                Some(k) => by_key.entry(k).or_default().push(id),
                None => orphans.push(id),
            }
        }
        if !by_key.is_empty() {
            for k in current {
                by_key.remove(&k);
            }
        }
        orphans.extend(by_key.into_values().flatten());
        if orphans.is_empty() {
            return Ok(0);
        }
        let list = serde_json::to_string(&orphans).map_err(|e| StoreError::Sqlx {
            path: self.path.clone(),
            source: sqlx::Error::Encode(Box::new(e)),
        })?;
        let r = sqlx::query(
            "UPDATE reverify_queue SET status = 'resolved', closed_at = $1, closed_by = 'citewatch',
                note = 'citation edited or removed in the registry; its successor is tracked separately'
             WHERE status = 'open' AND id IN (SELECT value FROM json_each($2))",
        )
        .bind(ts(now))
        .bind(list)
        .execute(&self.writer)
        .await
        .map_err(self.err())?;
        Ok(r.rows_affected() as u32)
    }

    /// The latest verdict of every citation that has one, with its baseline.
    pub async fn latest_verdicts(&self) -> Result<Vec<LatestVerdict>> {
        sqlx::query_as(
            concat!(
                "SELECT v.citation_key, v.verdict, COALESCE(o.detail, v.detail) AS detail, v.snapshot_hash, o.found, ",
                checked_at_sql!("v"),
                " AS decided_at, o.link, o.location, c.baseline_snapshot, c.baseline_at
             FROM citations c JOIN verdicts v ON v.id = (SELECT MAX(w.id) FROM verdicts w WHERE w.citation_key = c.key)
             LEFT JOIN verdicts o ON o.id = COALESCE(v.reuses, v.id)"
            ),
        )
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())
    }

    /// The latest verdict of every citation, by citation key, with the columns `columns` asks
    /// for (the others empty). See [`Store::latest_verdicts_among`].
    pub async fn latest_verdicts_by_key(
        &self,
        columns: VerdictColumns,
    ) -> Result<RecordedVerdicts> {
        self.latest_verdicts_among(columns, None).await
    }

    /// The latest verdict of every citation whose latest verdict is one of `words` (all when
    /// `None`), by citation key, with the columns `columns` asks for (the others empty).
    ///
    /// The walk goes over citations, one index seek each for its latest verdict: its cost
    /// follows the registry's size, not the history of verdicts (a year of nightly runs is 365
    /// verdicts per citation). Rows come in batches of 5,000 citations aggregated into one
    /// JSON value each: SQLite hands over 20 values instead of 100,000 rows, each of which
    /// would otherwise cross from its worker thread separately (that hand-over, not the query,
    /// was most of `check`'s time at 100,000 citations).
    pub async fn latest_verdicts_among(
        &self,
        columns: VerdictColumns,
        words: Option<&[&str]>,
    ) -> Result<RecordedVerdicts> {
        self.latest_verdicts_among_on(&self.pool, columns, words)
            .await
    }

    /// [`Store::latest_verdicts_among`] for a run's own stages after its fetches (the archive
    /// follow-up), read on the writing connection: its page cache holds the index pages the
    /// run's commits just wrote, where a reading connection's cache was emptied by them.
    pub async fn run_latest_verdicts_among(
        &self,
        columns: VerdictColumns,
        words: Option<&[&str]>,
    ) -> Result<RecordedVerdicts> {
        self.latest_verdicts_among_on(&self.writer, columns, words)
            .await
    }

    async fn latest_verdicts_among_on(
        &self,
        conn: &SqlitePool,
        columns: VerdictColumns,
        words: Option<&[&str]>,
    ) -> Result<RecordedVerdicts> {
        const BATCH: i64 = 5000;
        // Literal statements (sqlx audits dynamic SQL), differing only in their columns. `x`
        // is a batch of citations with the id of each one's latest verdict; `o` the row
        // holding that verdict's text (itself, or the one it re-uses). Should `o` be missing
        // (a row deleted by hand), the citation still comes back, with an empty detail.
        let sql: &'static str = match columns {
            VerdictColumns::Words => {
                concat!(
                    "SELECT json_group_array(json_array(v.citation_key, v.verdict, '', NULL, NULL, ",
                    checked_at_sql!("v"),
                    ", NULL, NULL, NULL, NULL))
                        FILTER (WHERE v.id IS NOT NULL AND ($3 IS NULL OR v.verdict IN (SELECT value FROM json_each($3)))),
                        MAX(x.cr), COUNT(*)
                 FROM (SELECT c.rowid AS cr, (SELECT MAX(w.id) FROM verdicts w WHERE w.citation_key = c.key) AS vid
                       FROM citations c WHERE c.rowid > $1 ORDER BY c.rowid LIMIT $2) x
                 LEFT JOIN verdicts v ON v.id = x.vid"
                )
            }
            VerdictColumns::Shown => {
                concat!(
                    "SELECT json_group_array(json_array(v.citation_key, v.verdict, COALESCE(o.detail, v.detail), NULL, o.found, ",
                    checked_at_sql!("v"),
                    ", o.link, o.location, NULL, NULL))
                        FILTER (WHERE v.id IS NOT NULL AND ($3 IS NULL OR v.verdict IN (SELECT value FROM json_each($3)))),
                        MAX(x.cr), COUNT(*)
                 FROM (SELECT c.rowid AS cr, (SELECT MAX(w.id) FROM verdicts w WHERE w.citation_key = c.key) AS vid
                       FROM citations c WHERE c.rowid > $1 ORDER BY c.rowid LIMIT $2) x
                 LEFT JOIN verdicts v ON v.id = x.vid
                 LEFT JOIN verdicts o ON o.id = COALESCE(v.reuses, v.id)"
                )
            }
            VerdictColumns::Reported => {
                concat!(
                    "SELECT json_group_array(json_array(y.citation_key, y.verdict,
                        CASE WHEN y.keep THEN y.detail ELSE '' END, CASE WHEN y.keep THEN y.snapshot_hash END,
                        CASE WHEN y.keep THEN y.found END, y.decided_at, CASE WHEN y.keep THEN y.link END,
                        CASE WHEN y.keep THEN y.location END, CASE WHEN y.keep THEN y.bs END,
                        CASE WHEN y.keep THEN y.ba END))
                        FILTER (WHERE y.id IS NOT NULL AND ($3 IS NULL OR y.verdict IN (SELECT value FROM json_each($3)))),
                        MAX(y.cr), COUNT(*)
                 FROM (SELECT x.cr, x.bs, x.ba, v.id, v.citation_key, v.verdict, COALESCE(o.detail, v.detail) AS detail, v.snapshot_hash, o.found,
                              ",
                    checked_at_sql!("v"),
                    " AS decided_at, o.link, o.location,
                              (v.snapshot_hash IS NOT x.bs
                               OR EXISTS (SELECT 1 FROM reverify_queue q WHERE q.citation_key = v.citation_key AND q.status = 'open')) AS keep
                       FROM (SELECT c.rowid AS cr, c.baseline_snapshot AS bs, c.baseline_at AS ba,
                                    (SELECT MAX(w.id) FROM verdicts w WHERE w.citation_key = c.key) AS vid
                             FROM citations c WHERE c.rowid > $1 ORDER BY c.rowid LIMIT $2) x
                       LEFT JOIN verdicts v ON v.id = x.vid
                       LEFT JOIN verdicts o ON o.id = COALESCE(v.reuses, v.id)) y"
                )
            }
            VerdictColumns::All => {
                concat!(
                    "SELECT json_group_array(json_array(v.citation_key, v.verdict, COALESCE(o.detail, v.detail), v.snapshot_hash, o.found, ",
                    checked_at_sql!("v"),
                    ", o.link, o.location, x.bs, x.ba))
                        FILTER (WHERE v.id IS NOT NULL AND ($3 IS NULL OR v.verdict IN (SELECT value FROM json_each($3)))),
                        MAX(x.cr), COUNT(*)
                 FROM (SELECT c.rowid AS cr, c.baseline_snapshot AS bs, c.baseline_at AS ba,
                              (SELECT MAX(w.id) FROM verdicts w WHERE w.citation_key = c.key) AS vid
                       FROM citations c WHERE c.rowid > $1 ORDER BY c.rowid LIMIT $2) x
                 LEFT JOIN verdicts v ON v.id = x.vid
                 LEFT JOIN verdicts o ON o.id = COALESCE(v.reuses, v.id)"
                )
            }
        };
        let words = match words {
            Some(w) => Some(serde_json::to_string(w).map_err(|e| self.encode_error(e))?),
            None => None,
        };
        type Row = (
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let mut map = std::collections::HashMap::new();
        let mut after = 0i64;
        loop {
            let (json, last, n): (Option<String>, Option<i64>, i64) = sqlx::query_as(sql)
                .bind(after)
                .bind(BATCH)
                .bind(words.as_deref())
                .fetch_one(conn)
                .await
                .map_err(self.err())?;
            let (Some(json), Some(last)) = (json, last) else {
                break;
            };
            let rows: Vec<Row> = serde_json::from_str(&json).map_err(|e| self.decode_error(e))?;
            for (key, verdict, detail, snapshot_hash, found, decided_at, link, location, bs, ba) in
                rows
            {
                // A key that is not one of ours belongs to no citation of any registry.
                let Some(key) = crate::registry::CitationKey::from_hex(&key) else {
                    continue;
                };
                let packed = RecordedVerdict::pack([
                    Some(&verdict),
                    Some(&detail),
                    snapshot_hash.as_deref(),
                    found.as_deref(),
                    Some(&decided_at),
                    link.as_deref(),
                    location.as_deref(),
                    bs.as_deref(),
                    ba.as_deref(),
                ])
                .ok_or_else(|| self.decode_error("a verdict's text exceeds 4 GiB"))?;
                // Boxed: the map's table stays small, and each verdict's memory moves to the
                // caller without a copy.
                map.insert(key, Box::new(packed));
            }
            after = last;
            if n < BATCH {
                break;
            }
        }
        Ok(map)
    }

    /// Queue items, optionally only those with `status`, oldest first.
    pub async fn queue(&self, status: Option<&str>) -> Result<Vec<QueueItem>> {
        let q = match status {
            Some(_) => {
                "SELECT id, citation_key, offering, dimension, url, reason, status, detail, snapshot_hash, first_seen, last_seen, closed_at, closed_by, note FROM reverify_queue WHERE status = $1 ORDER BY id"
            }
            None => {
                "SELECT id, citation_key, offering, dimension, url, reason, status, detail, snapshot_hash, first_seen, last_seen, closed_at, closed_by, note FROM reverify_queue ORDER BY id"
            }
        };
        let mut query = sqlx::query_as(q);
        if let Some(s) = status {
            query = query.bind(s);
        }
        query.fetch_all(&self.pool).await.map_err(self.err())
    }

    /// One queue item.
    pub async fn queue_item(&self, id: i64) -> Result<QueueItem> {
        sqlx::query_as(
            "SELECT id, citation_key, offering, dimension, url, reason, status, detail, snapshot_hash, first_seen, last_seen, closed_at, closed_by, note FROM reverify_queue WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.err())?
        .ok_or(StoreError::NoSuchItem(id))
    }

    /// Registers a notification target (idempotent) and returns the outbox id its history
    /// starts after: events up to it are not sent, except openings of items still open.
    pub async fn notify_target(&self, target: &str, now: DateTime<Utc>) -> Result<i64> {
        let e = self.err();
        sqlx::query(
            "INSERT INTO notify_targets (target, first_seen, after_id)
             VALUES ($1, $2, (SELECT COALESCE(MAX(id), 0) FROM outbox))
             ON CONFLICT (target) DO NOTHING",
        )
        .bind(target)
        .bind(ts(now))
        .execute(&self.pool)
        .await
        .map_err(&e)?;
        let row: (i64,) = sqlx::query_as("SELECT after_id FROM notify_targets WHERE target = $1")
            .bind(target)
            .fetch_one(&self.pool)
            .await
            .map_err(&e)?;
        Ok(row.0)
    }

    /// Events `target` has not accepted yet, oldest first, at most `limit`, each with its queue
    /// item (as it is now) or run.
    pub async fn pending_events(&self, target: &str, limit: i64) -> Result<Vec<OutboxEvent>> {
        let e = self.err();
        let after = self.notify_target(target, Utc::now()).await?;
        let rows: Vec<OutboxRow> =
            sqlx::query_as(
                "SELECT o.id, o.event, o.item_id, o.run_id, o.created_at, o.key, COALESCE(d.attempts, 0)
                 FROM outbox o
                 LEFT JOIN deliveries d ON d.outbox_id = o.id AND d.target = $1
                 WHERE d.delivered_at IS NULL
                   AND (o.id > $2
                        OR (o.event IN ('opened', 'reopened')
                            AND EXISTS (SELECT 1 FROM reverify_queue q WHERE q.id = o.item_id AND q.status = 'open')))
                 ORDER BY o.id LIMIT $3",
            )
            .bind(target)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(&e)?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, event, item_id, run_id, created_at, key, attempts) in rows {
            let item = match item_id {
                Some(i) => Some(self.queue_item(i).await?),
                None => None,
            };
            let run = match run_id {
                Some(r) => self.run_record(r).await?,
                None => None,
            };
            out.push(OutboxEvent {
                id,
                event,
                key,
                created_at,
                attempts,
                item,
                run,
            });
        }
        Ok(out)
    }

    /// Events recorded in the outbox.
    pub async fn outbox_len(&self) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox")
            .fetch_one(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(n)
    }

    /// The archive lookup recorded for `url` and `not_after`, if any.
    pub async fn archive_lookup(
        &self,
        url: &str,
        not_after: &str,
    ) -> Result<Option<ArchiveLookup>> {
        sqlx::query_as(
            "SELECT looked_up_at, capture_url, captured, snapshot_hash, content_type, error
             FROM archive_lookups WHERE url = $1 AND not_after = $2",
        )
        .bind(url)
        .bind(not_after)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.err())
    }

    /// Records an archive lookup (and the capture's bytes, already stored as a snapshot file).
    pub async fn record_archive_lookup(
        &self,
        url: &str,
        not_after: &str,
        l: &ArchiveLookup,
        size: Option<i64>,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let e = self.err();
        if let (Some(hash), Some(size)) = (&l.snapshot_hash, size) {
            sqlx::query(
                "INSERT INTO snapshots (hash, size, content_type, first_seen) VALUES ($1, $2, $3, $4) ON CONFLICT(hash) DO NOTHING",
            )
            .bind(hash)
            .bind(size)
            .bind(&l.content_type)
            .bind(&l.looked_up_at)
            .execute(&mut *tx)
            .await
            .map_err(&e)?;
        }
        sqlx::query(
            "INSERT INTO archive_lookups (url, not_after, looked_up_at, capture_url, captured, snapshot_hash, content_type, error)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (url, not_after) DO UPDATE SET looked_up_at = $3, capture_url = $4, captured = $5,
                snapshot_hash = $6, content_type = $7, error = $8",
        )
        .bind(url)
        .bind(not_after)
        .bind(&l.looked_up_at)
        .bind(&l.capture_url)
        .bind(&l.captured)
        .bind(&l.snapshot_hash)
        .bind(&l.content_type)
        .bind(&l.error)
        .execute(&mut *tx)
        .await
        .map_err(&e)?;
        tx.commit().await.map_err(&e)?;
        Ok(())
    }

    /// Records (or, with None, forgets) a citation's archived copy.
    pub async fn set_archived_evidence(
        &self,
        citation_key: &str,
        copy: Option<&crate::archive::ArchivedCopy>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let q = match copy {
            Some(c) => sqlx::query(
                "INSERT INTO archived_evidence (citation_key, url, captured, stands, checked_at)
                 SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM citations WHERE key = $1)
                 ON CONFLICT (citation_key) DO UPDATE SET url = $2, captured = $3, stands = $4, checked_at = $5",
            )
            .bind(citation_key)
            .bind(&c.url)
            .bind(&c.captured)
            .bind(c.stands)
            .bind(ts(now)),
            None => sqlx::query("DELETE FROM archived_evidence WHERE citation_key = $1")
                .bind(citation_key),
        };
        q.execute(&self.pool).await.map_err(self.err())?;
        Ok(())
    }

    /// Every citation's archived copy, by citation key.
    pub async fn archived_evidence(
        &self,
    ) -> Result<std::collections::HashMap<String, crate::archive::ArchivedCopy>> {
        let rows: Vec<(String, String, String, bool)> =
            sqlx::query_as("SELECT citation_key, url, captured, stands FROM archived_evidence")
                .fetch_all(&self.pool)
                .await
                .map_err(self.err())?;
        Ok(rows
            .into_iter()
            .map(|(k, url, captured, stands)| {
                (
                    k,
                    crate::archive::ArchivedCopy {
                        url,
                        captured,
                        stands,
                    },
                )
            })
            .collect())
    }

    /// Whether a capture request for `url` and `verified` was recorded.
    pub async fn archive_submitted(&self, url: &str, verified: &str) -> Result<bool> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT 1 FROM archive_submissions WHERE url = $1 AND verified = $2")
                .bind(url)
                .bind(verified)
                .fetch_optional(&self.pool)
                .await
                .map_err(self.err())?;
        Ok(row.is_some())
    }

    /// Records a capture request's outcome.
    pub async fn record_archive_submission(
        &self,
        url: &str,
        verified: &str,
        outcome: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO archive_submissions (url, verified, submitted_at, outcome) VALUES ($1, $2, $3, $4)
             ON CONFLICT (url, verified) DO UPDATE SET submitted_at = $3, outcome = $4",
        )
        .bind(url)
        .bind(verified)
        .bind(ts(now))
        .bind(outcome)
        .execute(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(())
    }

    /// This database's identity (random, made when it was created).
    pub async fn instance_id(&self) -> Result<String> {
        let (v,): (String,) = sqlx::query_as("SELECT v FROM meta WHERE k = 'instance'")
            .fetch_one(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(v)
    }

    /// Fetches that brought or re-used a body, after fetch id `after`, oldest first.
    pub async fn fetches_for_export(
        &self,
        after: i64,
        since: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ExportedFetch>> {
        sqlx::query_as(
            "SELECT id, url, fetched_at, outcome, status, content_type, final_url, snapshot_hash, raw_snapshot_hash, exchanges
             FROM fetches
             WHERE id > $1 AND outcome IN ('fetched', 'not_modified') AND ($2 IS NULL OR fetched_at >= $2)
             ORDER BY id LIMIT $3",
        )
        .bind(after)
        .bind(since)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())
    }

    /// The fetch that first brought a body: its final URL and time.
    pub async fn first_capture(&self, hash: &str) -> Result<Option<(String, String)>> {
        sqlx::query_as(
            // Two indexed searches (see migration 0010); `OR` would scan every fetch.
            "SELECT COALESCE(final_url, url), fetched_at FROM (
                SELECT id, final_url, url, fetched_at FROM fetches
                WHERE outcome = 'fetched' AND snapshot_hash = $1
                UNION ALL
                SELECT id, final_url, url, fetched_at FROM fetches
                WHERE outcome = 'fetched' AND raw_snapshot_hash = $1 AND raw_snapshot_hash IS NOT NULL)
             ORDER BY id LIMIT 1",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.err())
    }

    /// Records that `target` accepted event `outbox_id`.
    pub async fn mark_delivered(
        &self,
        outbox_id: i64,
        target: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO deliveries (outbox_id, target, attempts, delivered_at, last_attempt_at)
             VALUES ($1, $2, 1, $3, $3)
             ON CONFLICT (outbox_id, target) DO UPDATE SET
                attempts = attempts + 1, delivered_at = $3, last_attempt_at = $3, last_error = NULL",
        )
        .bind(outbox_id)
        .bind(target)
        .bind(ts(now))
        .execute(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(())
    }

    /// Records a failed attempt to deliver event `outbox_id` to `target` (it stays pending).
    pub async fn mark_failed(
        &self,
        outbox_id: i64,
        target: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO deliveries (outbox_id, target, attempts, last_error, last_attempt_at)
             VALUES ($1, $2, 1, $3, $4)
             ON CONFLICT (outbox_id, target) DO UPDATE SET
                attempts = attempts + 1, last_error = $3, last_attempt_at = $4",
        )
        .bind(outbox_id)
        .bind(target)
        .bind(error)
        .bind(ts(now))
        .execute(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(())
    }

    /// Events not yet accepted by `target`, and the latest error it gave, if any.
    pub async fn undelivered(&self, target: &str) -> Result<(i64, Option<String>)> {
        let e = self.err();
        let after: Option<(i64,)> =
            sqlx::query_as("SELECT after_id FROM notify_targets WHERE target = $1")
                .bind(target)
                .fetch_optional(&self.pool)
                .await
                .map_err(&e)?;
        let after = match after {
            Some((a,)) => a,
            // Never delivered to: what it would get is what is pending.
            None => {
                sqlx::query_as::<_, (i64,)>("SELECT COALESCE(MAX(id), 0) FROM outbox")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(&e)?
                    .0
            }
        };
        let (count,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM outbox o
             LEFT JOIN deliveries d ON d.outbox_id = o.id AND d.target = $1
             WHERE d.delivered_at IS NULL
               AND (o.id > $2
                    OR (o.event IN ('opened', 'reopened')
                        AND EXISTS (SELECT 1 FROM reverify_queue q WHERE q.id = o.item_id AND q.status = 'open')))",
        )
        .bind(target)
        .bind(after)
        .fetch_one(&self.pool)
        .await
        .map_err(&e)?;
        let error: Option<(Option<String>,)> = sqlx::query_as(
            "SELECT last_error FROM deliveries WHERE target = $1 AND delivered_at IS NULL
             ORDER BY last_attempt_at DESC LIMIT 1",
        )
        .bind(target)
        .fetch_optional(&self.pool)
        .await
        .map_err(&e)?;
        Ok((count, error.and_then(|e| e.0)))
    }

    /// One run as recorded, with how far it got.
    pub async fn run_record(&self, id: i64) -> Result<Option<RunRecord>> {
        sqlx::query_as(
            "SELECT r.id, r.started_at, r.finished_at, r.status, r.ended, r.urls, r.citations,
                    (SELECT COUNT(DISTINCT f.url) FROM fetches f WHERE f.run_id = r.id) AS urls_done,
                    (SELECT COUNT(*) FROM (SELECT v.citation_key FROM verdicts v WHERE v.run_id = r.id
                                           UNION
                                           SELECT o.citation_key FROM confirmations k JOIN verdicts o ON o.id = k.verdict_id
                                           WHERE k.run_id = r.id)) AS citations_judged
             FROM runs r WHERE r.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.err())
    }

    /// What a queue item's latest sighting rests on: its fingerprint (e.g. `moved:<target>`)
    /// and the near-match variant of the citation's latest verdict, if any.
    pub async fn item_evidence(&self, id: i64) -> Result<(String, Option<String>)> {
        sqlx::query_as(
            "SELECT q.fingerprint,
                    (SELECT o.found FROM verdicts v JOIN verdicts o ON o.id = COALESCE(v.reuses, v.id)
                     WHERE v.citation_key = q.citation_key ORDER BY v.id DESC LIMIT 1)
             FROM reverify_queue q WHERE q.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.err())?
        .ok_or(StoreError::NoSuchItem(id))
    }

    /// Closes an open item as `resolved` (moving the citation's baseline to the snapshot
    /// judged last) or `dismissed` (baseline unchanged).
    pub async fn close_item(
        &self,
        id: i64,
        resolve: bool,
        note: &str,
        author: &str,
        now: DateTime<Utc>,
    ) -> Result<QueueItem> {
        let e = self.err();
        let mut tx = self.write_tx().await?;
        let status: Option<(String, String)> =
            sqlx::query_as("SELECT status, citation_key FROM reverify_queue WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(&e)?;
        let Some((status, key)) = status else {
            return Err(StoreError::NoSuchItem(id));
        };
        if status != "open" {
            return Err(StoreError::NotOpen { id, status });
        }
        sqlx::query("UPDATE reverify_queue SET status = $2, closed_at = $3, closed_by = $4, note = $5 WHERE id = $1")
            .bind(id)
            .bind(if resolve { "resolved" } else { "dismissed" })
            .bind(ts(now))
            .bind(author)
            .bind(note)
            .execute(&mut *tx)
            .await
            .map_err(&e)?;
        if resolve {
            sqlx::query(
                "UPDATE citations SET baseline_snapshot = COALESCE(
                    (SELECT snapshot_hash FROM verdicts WHERE citation_key = $1 AND snapshot_hash IS NOT NULL ORDER BY id DESC LIMIT 1),
                    baseline_snapshot), baseline_at = $2 WHERE key = $1",
            )
            .bind(&key)
            .bind(ts(now))
            .execute(&mut *tx)
            .await
            .map_err(&e)?;
        }
        tx.commit().await.map_err(&e)?;
        self.queue_item(id).await
    }

    /// Runs `PRAGMA integrity_check`, returning its first line (`ok` when healthy).
    pub async fn integrity_check(&self) -> Result<String> {
        let row: (String,) = sqlx::query_as("PRAGMA integrity_check")
            .fetch_one(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(row.0)
    }

    /// Closes the connections, checkpointing the WAL (the last one closed does).
    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }
}

async fn upsert_citation(
    tx: &mut Transaction<'static, Sqlite>,
    c: &CitationRef,
    at: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO citations (key, offering, dimension, url, quote, first_seen) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT(key) DO NOTHING",
    )
    .bind(&c.key)
    .bind(&c.offering)
    .bind(&c.dimension)
    .bind(&c.url)
    .bind(&c.quote)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// What judging a citation rests on (see [`Store::judging_contexts`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JudgingContext {
    /// Its baseline snapshot and that snapshot's Content-Type.
    pub baseline: Option<(String, Option<String>)>,
    /// Its latest judgement when that was decided on content, with the basis it rests on.
    pub latest: Option<Prior>,
}

/// A citation's latest judgement as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Prior {
    /// What it was decided on ([`crate::verdict::basis`]).
    pub basis: String,
    /// The judgement, as far as re-using it needs: its verdict, detail, fingerprint and
    /// other reasons. Its text hash, near match, link and location are left out (`None`):
    /// they stay in the row that holds its text, which a re-use names.
    pub judgement: crate::verdict::Judgement,
    /// The verdict row that holds its text (the one it was first written in).
    pub row: i64,
}

impl JudgingContext {
    /// The latest judgement, when it rests on exactly `basis`, with the row holding its text.
    pub fn judgement_on(&self, basis: &str) -> Option<(crate::verdict::Judgement, i64)> {
        self.latest
            .as_ref()
            .filter(|p| p.basis == basis)
            .map(|p| (p.judgement.clone(), p.row))
    }
}

/// A stored judgement rebuilt from its columns; `None` when a stored word no longer parses.
#[allow(clippy::too_many_arguments)]
fn judgement_from(
    verdict: &str,
    detail: String,
    text_hash: Option<String>,
    fingerprint: String,
    found: Option<String>,
    also: Option<&str>,
    link: Option<String>,
    location: Option<String>,
) -> Option<crate::verdict::Judgement> {
    let mut reasons = Vec::new();
    for word in also.unwrap_or("").split(',').filter(|w| !w.is_empty()) {
        reasons.push(word.parse().ok()?);
    }
    Some(crate::verdict::Judgement {
        verdict: verdict.parse().ok()?,
        detail,
        text_hash,
        fingerprint,
        found,
        also: reasons,
        link,
        location,
    })
}

/// Refreshes the open item for (citation, reason), or opens one unless the latest closed item
/// for the same pair was closed on the same fingerprint.
async fn open_or_touch(
    tx: &mut Transaction<'static, Sqlite>,
    c: &CitationRef,
    reason: &str,
    detail: &str,
    fingerprint: &str,
    snapshot: Option<&str>,
    at: &str,
) -> sqlx::Result<QueueDelta> {
    let touched = sqlx::query(
        "UPDATE reverify_queue SET last_seen = $3, detail = $4, fingerprint = $5, snapshot_hash = COALESCE($6, snapshot_hash)
         WHERE citation_key = $1 AND reason = $2 AND status = 'open'",
    )
    .bind(&c.key)
    .bind(reason)
    .bind(at)
    .bind(detail)
    .bind(fingerprint)
    .bind(snapshot)
    .execute(&mut **tx)
    .await?;
    if touched.rows_affected() > 0 {
        return Ok(QueueDelta::default());
    }
    // Only a person's decision holds an item closed; one citewatch closed itself (the problem
    // cleared) reopens as soon as the problem is back.
    let last_closed: Option<(String, Option<String>)> = sqlx::query_as(
        "SELECT fingerprint, closed_by FROM reverify_queue WHERE citation_key = $1 AND reason = $2 AND status <> 'open' ORDER BY id DESC LIMIT 1",
    )
    .bind(&c.key)
    .bind(reason)
    .fetch_optional(&mut **tx)
    .await?;
    if last_closed.is_some_and(|(f, by)| f == fingerprint && by.as_deref() != Some(AUTO_AUTHOR)) {
        return Ok(QueueDelta::default());
    }
    sqlx::query(
        "INSERT INTO reverify_queue (citation_key, offering, dimension, url, reason, detail, fingerprint, snapshot_hash, first_seen, last_seen)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
    )
    .bind(&c.key)
    .bind(&c.offering)
    .bind(&c.dimension)
    .bind(&c.url)
    .bind(reason)
    .bind(detail)
    .bind(fingerprint)
    .bind(snapshot)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(QueueDelta {
        opened: 1,
        closed: 0,
    })
}

#[cfg(test)]
mod recorded_tests {
    use super::RecordedVerdict;

    #[test]
    fn packed_fields_read_back_as_written() {
        let r = RecordedVerdict::pack([
            Some("drifted"),
            Some("quote changed: \"é\""),
            None,
            Some(""),
            Some("2026-11-26T03:00:00Z"),
            Some("https://a.example/#:~:text=x"),
            None,
            Some("abc"),
            None,
        ])
        .unwrap();
        assert_eq!(r.verdict(), "drifted");
        assert_eq!(r.detail(), "quote changed: \"é\"");
        assert_eq!(r.snapshot_hash(), None);
        // Present but empty is not absent.
        assert_eq!(r.found(), Some(""));
        assert_eq!(r.decided_at(), "2026-11-26T03:00:00Z");
        assert_eq!(r.link(), Some("https://a.example/#:~:text=x"));
        assert_eq!(r.location(), None);
        assert_eq!(r.baseline_snapshot(), Some("abc"));
        assert_eq!(r.baseline_at(), None);

        let empty = RecordedVerdict::pack([None; 9]).unwrap();
        assert_eq!((empty.verdict(), empty.detail()), ("", ""));
        assert_eq!(empty.link(), None);
    }
}

#[cfg(test)]
mod group_tests {
    use super::*;
    use crate::verdict::{FailureClass, Verdict};

    fn judged(key: &str, url: &str, verdict: Verdict, snapshot: Option<&str>) -> VerdictRecord {
        VerdictRecord {
            reuses: None,
            citation_stored: false,
            citation: CitationRef {
                key: key.into(),
                offering: "acme".into(),
                dimension: "soc2".into(),
                url: url.into(),
                quote: Some("SOC 2 Type II".into()),
            },
            judgement: Judgement {
                verdict,
                detail: format!("{verdict} on {url}"),
                text_hash: snapshot.map(|s| format!("t{s}")),
                fingerprint: format!("f-{verdict}"),
                found: (verdict == Verdict::Drifted).then(|| "SOC 2 Type 2".into()),
                also: if verdict == Verdict::Verified {
                    vec![]
                } else {
                    vec![Verdict::Changed]
                },
                link: Some(format!("{url}#:~:text=SOC")),
                location: None,
            },
            snapshot_hash: snapshot.map(str::to_string),
            basis: snapshot.map(|s| format!("basis-{s}")),
        }
    }

    fn fetched(run: i64, url: &str, hash: &str, verdicts: Vec<VerdictRecord>) -> FetchRecord {
        FetchRecord {
            run_id: run,
            url: url.into(),
            fetched_at: "2026-11-26T03:00:00Z".parse().unwrap(),
            row: FetchRow::Fetched {
                snapshot: SnapshotRow {
                    hash: hash.into(),
                    size: 10,
                    content_type: Some("text/html".into()),
                    check: format!("check-{hash}"),
                },
                etag: Some(format!("\"{hash}\"")),
                last_modified: None,
                words: 42,
            },
            status: Some(200),
            detail: None,
            final_url: Some(url.into()),
            redirects: None,
            elapsed_ms: 7,
            verdicts,
            raw_snapshot: None,
            exchanges: Some("[{\"status\":200}]".into()),
            checked: Vec::new(),
        }
    }

    fn failed(run: i64, url: &str, verdicts: Vec<VerdictRecord>) -> FetchRecord {
        FetchRecord {
            row: FetchRow::Failed {
                class: FailureClass::Transient,
                consecutive: 2,
                first_failure_at: "2026-11-25T03:00:00Z".parse().unwrap(),
                snapshot: None,
            },
            status: Some(503),
            detail: Some("service unavailable".into()),
            exchanges: None,
            ..fetched(run, url, "unused", verdicts)
        }
    }

    fn not_modified(run: i64, url: &str, hash: &str, verdicts: Vec<VerdictRecord>) -> FetchRecord {
        FetchRecord {
            row: FetchRow::NotModified {
                snapshot_hash: hash.into(),
            },
            status: Some(304),
            ..fetched(run, url, hash, verdicts)
        }
    }

    /// Every row of every table a fetch writes, in a fixed order.
    async fn dump(store: &Store) -> Vec<String> {
        let mut out = Vec::new();
        for (table, order) in [
            ("snapshots", "hash"),
            ("fetches", "id"),
            ("sources", "url"),
            ("citations", "key"),
            ("verdicts", "id"),
            ("reverify_queue", "id"),
        ] {
            let (columns,): (String,) = sqlx::query_as(
                "SELECT group_concat('quote(' || name || ')', ' || ''|'' || ') FROM pragma_table_info($1)",
            )
            .bind(table)
            .fetch_one(store.pool())
            .await
            .unwrap();
            let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {columns} FROM {table} ORDER BY {order}"
            )))
            .fetch_all(store.pool())
            .await
            .unwrap_or_else(|e| panic!("{table}: {e}"));
            out.extend(rows.into_iter().map(|(r,)| format!("{table}: {r}")));
        }
        out
    }

    /// A group recorded with set-based statements leaves exactly the rows, and reports
    /// exactly the queue changes, that recording its fetches one at a time does: fresh
    /// bodies, 304s and failures mixed; items opened, refreshed and closed; a URL twice.
    /// The batched read (a JSON array per source, decoded by field order) returns exactly
    /// what the row read returns, for a source with every field set, one in a failure
    /// streak, and one URL with no state.
    /// The bundled SQLite is built as `.cargo/config.toml` asks: without memory statistics
    /// (a global mutex taken by every allocation).
    #[tokio::test]
    async fn sqlite_is_built_without_memory_statistics() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).await.unwrap();
        let mut conn = store.writer.acquire().await.unwrap();
        let options: Vec<(String,)> =
            sqlx::query_as("SELECT compile_options FROM pragma_compile_options")
                .fetch_all(&mut *conn)
                .await
                .unwrap();
        assert!(
            options.iter().any(|(o,)| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
    }

    #[tokio::test]
    async fn batched_source_states_agree_with_the_row_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).await.unwrap();
        let now: DateTime<Utc> = "2026-11-26T03:00:00Z".parse().unwrap();
        let (a, b, c) = ("https://a.test/", "https://b.test/", "https://c.test/");
        let run = store.begin_run(now, 2, 0).await.unwrap();
        let mut tagged = fetched(run, a, "h1", vec![]);
        if let FetchRow::Fetched { last_modified, .. } = &mut tagged.row {
            *last_modified = Some("Wed, 25 Nov 2026 10:00:00 GMT".into());
        }
        for r in store
            .record_fetches(&[&tagged, &fetched(run, b, "h2", vec![])])
            .await
        {
            r.unwrap();
        }
        let run = store.begin_run(now, 1, 0).await.unwrap();
        store.record_fetch(&failed(run, b, vec![])).await.unwrap();
        let batch = store.source_states(&[a, b, c]).await.unwrap();
        assert_eq!(batch.len(), 2, "{batch:?}");
        for url in [a, b] {
            let row = store.source_state(url).await.unwrap().unwrap();
            assert_eq!(batch[url], row);
        }
        assert_eq!(batch[a].last_good_check.as_deref(), Some("check-h1"));
        assert_eq!(batch[a].last_good_size, Some(10));
        assert_eq!(batch[a].last_good_words, Some(42));
        assert!(batch[a].last_modified.is_some());
        assert_eq!(
            batch[b].consecutive_failures, 2,
            "as the failed fetch recorded it"
        );
        assert!(batch[b].first_failure_at.is_some());
    }

    #[tokio::test]
    async fn a_group_is_recorded_as_its_fetches_one_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let grouped = Store::open(&dir.path().join("grouped.db")).await.unwrap();
        let single = Store::open(&dir.path().join("single.db")).await.unwrap();
        let now: DateTime<Utc> = "2026-11-26T03:00:00Z".parse().unwrap();
        let (a, b, c) = ("https://a.test/", "https://b.test/", "https://c.test/");
        let rounds = |run: i64| match run {
            1 => vec![
                fetched(
                    1,
                    a,
                    "h1",
                    vec![judged("ka", a, Verdict::Missing, Some("h1"))],
                ),
                fetched(
                    1,
                    b,
                    "h2",
                    vec![
                        judged("kb1", b, Verdict::Verified, Some("h2")),
                        judged("kb2", b, Verdict::Drifted, Some("h2")),
                    ],
                ),
                failed(1, c, vec![judged("kc", c, Verdict::Unreachable, None)]),
            ],
            2 => vec![
                // The missing quote is back: its item closes; the drift stays and is refreshed.
                fetched(
                    2,
                    a,
                    "h3",
                    vec![judged("ka", a, Verdict::Verified, Some("h3"))],
                ),
                not_modified(
                    2,
                    b,
                    "h2",
                    vec![
                        judged("kb1", b, Verdict::Verified, Some("h2")),
                        judged("kb2", b, Verdict::Drifted, Some("h2")),
                    ],
                ),
                fetched(
                    2,
                    c,
                    "h4",
                    vec![judged("kc", c, Verdict::Verified, Some("h4"))],
                ),
            ],
            _ => vec![
                // The same URL twice in one group.
                failed(3, a, vec![judged("ka", a, Verdict::Unreachable, None)]),
                fetched(
                    3,
                    a,
                    "h5",
                    vec![judged("ka", a, Verdict::Missing, Some("h5"))],
                ),
                not_modified(
                    3,
                    c,
                    "h4",
                    vec![judged("kc", c, Verdict::Verified, Some("h4"))],
                ),
            ],
        };
        for run in 1..=3 {
            for store in [&grouped, &single] {
                assert_eq!(store.begin_run(now, 3, 4).await.unwrap(), run);
            }
            let recs = rounds(run);
            // The group leaves out the citation rows found stored with a baseline, as a run
            // does; recording them one at a time upserts every one. The rows come out equal.
            let stored: Vec<(String,)> =
                sqlx::query_as("SELECT key FROM citations WHERE baseline_snapshot IS NOT NULL")
                    .fetch_all(grouped.pool())
                    .await
                    .unwrap();
            let mut marked = recs.clone();
            let mut left_out = 0;
            for v in marked.iter_mut().flat_map(|r| r.verdicts.iter_mut()) {
                v.citation_stored = stored.iter().any(|(k,)| *k == v.citation.key);
                left_out += usize::from(v.citation_stored);
            }
            assert_eq!(left_out > 0, run > 1, "run {run} leaves out {left_out}");
            let refs: Vec<&FetchRecord> = marked.iter().collect();
            let together: Vec<QueueDelta> = grouped
                .record_fetches(&refs)
                .await
                .into_iter()
                .map(Result::unwrap)
                .collect();
            let mut alone = Vec::new();
            for rec in &recs {
                alone.push(single.record_fetch(rec).await.unwrap());
            }
            assert_eq!(together, alone, "queue changes of run {run}");
            let d = |opened, closed| QueueDelta { opened, closed };
            let expected = match run {
                // ka: missing + changed; kb2: drifted + changed; kc: changed.
                1 => vec![d(2, 0), d(2, 0), d(1, 0)],
                // ka verified: both close; kb2 still drifted: refreshed, nothing new; kc closes.
                2 => vec![d(0, 2), d(0, 0), d(0, 1)],
                // ka unreachable opens `changed`; then missing reopens `missing` (closed by
                // citewatch, so it comes back) and refreshes `changed`; kc stays verified.
                _ => vec![d(1, 0), d(1, 0), d(0, 0)],
            };
            assert_eq!(alone, expected, "queue changes of run {run}");
            assert_eq!(
                dump(&grouped).await,
                dump(&single).await,
                "rows after run {run}"
            );
        }
        // The scenario does what it says: items were opened and closed along the way.
        let (open, resolved): (i64, i64) = sqlx::query_as(
            "SELECT SUM(status = 'open'), SUM(status = 'resolved') FROM reverify_queue",
        )
        .fetch_one(grouped.pool())
        .await
        .unwrap();
        assert!(open > 0 && resolved > 0, "open {open}, resolved {resolved}");
    }

    /// The first capture of a body is the earliest fetch that brought it, found by the body's
    /// hash or by the raw document's beside a rendered one; a 304 is never a capture.
    #[tokio::test]
    async fn the_first_capture_of_a_body_is_the_earliest_fetch_that_brought_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("capture.db")).await.unwrap();
        let now: DateTime<Utc> = "2026-11-26T03:00:00Z".parse().unwrap();
        let (a, b, c) = ("https://a.test/", "https://b.test/", "https://c.test/");
        for run in 1..=3 {
            assert_eq!(store.begin_run(now, 3, 0).await.unwrap(), run);
            let recs = match run {
                1 => vec![fetched(1, b, "h2", vec![])],
                2 => vec![
                    fetched(2, a, "h1", vec![]),
                    FetchRecord {
                        raw_snapshot: Some(SnapshotRow {
                            hash: "raw1".into(),
                            size: 3,
                            content_type: Some("text/html".into()),
                            check: "check-raw1".into(),
                        }),
                        ..fetched(2, c, "dom1", vec![])
                    },
                ],
                // A 304 first, then the same body brought again under another URL: neither
                // is its first capture.
                _ => vec![
                    not_modified(3, a, "h1", vec![]),
                    fetched(3, b, "h1", vec![]),
                ],
            };
            let refs: Vec<&FetchRecord> = recs.iter().collect();
            for r in store.record_fetches(&refs).await {
                r.unwrap();
            }
        }
        let url = |h: &str| {
            let store = &store;
            let h = h.to_string();
            async move { store.first_capture(&h).await.unwrap().map(|(u, _)| u) }
        };
        assert_eq!(url("h1").await.as_deref(), Some(a));
        assert_eq!(url("h2").await.as_deref(), Some(b));
        assert_eq!(url("raw1").await.as_deref(), Some(c));
        assert_eq!(url("dom1").await.as_deref(), Some(c));
        assert_eq!(url("nothing").await, None);
    }

    /// The latest verdicts are read per citation of the store, not by scanning verdict
    /// history: whatever order the history was written in, each citation's newest verdict
    /// comes back, a citation without any verdict is no obstacle, and a word filter keeps
    /// only the citations whose latest verdict is one of its words.
    #[tokio::test]
    async fn latest_verdicts_are_each_citations_newest_with_or_without_a_filter() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("latest.db")).await.unwrap();
        let now: DateTime<Utc> = "2026-11-26T03:00:00Z".parse().unwrap();
        let key = |n: u8| format!("{n:032x}");
        let (a, b) = ("https://a.test/", "https://b.test/");
        let history = [
            [Verdict::Verified, Verdict::Drifted, Verdict::Gone],
            [Verdict::Verified, Verdict::Verified, Verdict::Missing],
            [Verdict::Missing, Verdict::Verified, Verdict::Verified],
        ];
        for (i, words) in history.iter().enumerate() {
            let run = i as i64 + 1;
            assert_eq!(store.begin_run(now, 2, 3).await.unwrap(), run);
            let h = format!("h{run}");
            // Citation 3 on its own URL, fetched first in runs 2 and 3: verdict ids do not
            // follow the citations' order.
            let mut recs = [
                fetched(
                    run,
                    a,
                    &h,
                    vec![
                        judged(&key(1), a, words[0], Some(&h)),
                        judged(&key(2), a, words[1], Some(&h)),
                    ],
                ),
                fetched(run, b, &h, vec![judged(&key(3), b, words[2], Some(&h))]),
            ];
            if run > 1 {
                recs.reverse();
            }
            let refs: Vec<&FetchRecord> = recs.iter().collect();
            for r in store.record_fetches(&refs).await {
                r.unwrap();
            }
        }
        // A citation the registry has but no run judged yet (as `sync_expired` leaves one).
        sqlx::query(
            "INSERT INTO citations (key, offering, dimension, url, first_seen)
             VALUES ($1, 'acme', 'iso', 'https://c.test/', 'x')",
        )
        .bind(key(4))
        .execute(store.pool())
        .await
        .unwrap();
        let words = |m: &RecordedVerdicts| {
            let mut v: Vec<(String, String)> = m
                .iter()
                .map(|(k, v)| (k.to_string(), v.verdict().to_string()))
                .collect();
            v.sort();
            v
        };
        let all = store
            .latest_verdicts_by_key(VerdictColumns::All)
            .await
            .unwrap();
        assert_eq!(
            words(&all),
            vec![
                (key(1), "missing".to_string()),
                (key(2), "verified".to_string()),
                (key(3), "verified".to_string()),
            ]
        );
        for columns in [
            VerdictColumns::Words,
            VerdictColumns::Shown,
            VerdictColumns::Reported,
            VerdictColumns::All,
        ] {
            let lost = store
                .latest_verdicts_among(columns, Some(&["missing", "gone", "drifted"]))
                .await
                .unwrap();
            assert_eq!(words(&lost), vec![(key(1), "missing".to_string())]);
        }
        let none = store
            .latest_verdicts_among(VerdictColumns::Words, Some(&[]))
            .await
            .unwrap();
        assert!(none.is_empty());
        let rows = store.latest_verdicts().await.unwrap();
        assert_eq!(rows.len(), 3);
    }

    /// A judgement re-used is stored once: each re-use is a confirmation naming the full row,
    /// always the original (a re-use of a re-use included); every reader returns exactly
    /// what it returns when every run writes the judgement out in full, when it was last
    /// checked included; a run's confirmations count as its judgements; a row confirmed
    /// within its own run keeps its text.
    #[tokio::test]
    async fn a_reused_judgement_is_stored_once_and_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let now: DateTime<Utc> = "2026-11-26T03:00:00Z".parse().unwrap();
        let key = |n: u8| format!("{n:032x}");
        let a = "https://a.test/";
        let keys = [key(1), key(2)];
        let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let mut seen = Vec::new();
        for compact in [false, true] {
            let store = Store::open(&dir.path().join(format!("{compact}.db")))
                .await
                .unwrap();
            let judgements = || {
                vec![
                    judged(&key(1), a, Verdict::Verified, Some("h1")),
                    judged(&key(2), a, Verdict::Drifted, Some("h1")),
                ]
            };
            assert_eq!(store.begin_run(now, 1, 2).await.unwrap(), 1);
            store
                .record_fetch(&fetched(1, a, "h1", judgements()))
                .await
                .unwrap();
            for run in 2..=3 {
                assert_eq!(store.begin_run(now, 1, 2).await.unwrap(), run);
                let contexts = store.judging_contexts(&key_refs).await.unwrap();
                let mut verdicts = judgements();
                for v in &mut verdicts {
                    let (judgement, row) = contexts[&v.citation.key]
                        .judgement_on(v.basis.as_deref().unwrap())
                        .expect("the previous judgement, on the same basis");
                    // What re-use needs comes back; the text stays in the row it names.
                    let reusable = crate::verdict::Judgement {
                        text_hash: None,
                        found: None,
                        link: None,
                        location: None,
                        ..v.judgement.clone()
                    };
                    assert_eq!(judgement, reusable);
                    // Re-used, the original row run after run (ids 1 and 2 are run 1's).
                    assert!(!compact || row <= 2, "re-use of row {row}");
                    v.reuses = compact.then_some(row);
                }
                // Each night at its own time: when a citation was last checked is the
                // latest re-use's time, however the re-use is stored.
                let mut night = not_modified(run, a, "h1", verdicts);
                night.fetched_at = now + chrono::TimeDelta::days(run - 1);
                store.record_fetch(&night).await.unwrap();
            }
            let (stored,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM verdicts WHERE detail <> '' AND fingerprint IS NOT NULL",
            )
            .fetch_one(store.pool())
            .await
            .unwrap();
            assert_eq!(stored, if compact { 2 } else { 6 });
            let mut read = Vec::new();
            for columns in [
                VerdictColumns::Words,
                VerdictColumns::Shown,
                VerdictColumns::Reported,
                VerdictColumns::All,
            ] {
                let mut rows: Vec<String> = store
                    .latest_verdicts_by_key(columns)
                    .await
                    .unwrap()
                    .iter()
                    .map(|(k, v)| format!("{k}: {v:?}"))
                    .collect();
                rows.sort();
                read.push(format!("{columns:?}: {rows:?}"));
            }
            read.push(format!("{:?}", store.latest_verdicts().await.unwrap()));
            let mut contexts: Vec<String> = store
                .judging_contexts(&key_refs)
                .await
                .unwrap()
                .into_iter()
                // The row holding the text differs by design; the rest may not.
                .map(|(k, c)| {
                    let latest = c.latest.map(|p| (p.basis, p.judgement));
                    format!("{k}: {:?} {latest:?}", c.baseline)
                })
                .collect();
            contexts.sort();
            read.push(format!("{contexts:?}"));
            for item in store.queue(None).await.unwrap() {
                read.push(format!("{:?}", store.item_evidence(item.id).await.unwrap()));
            }
            let resolved: Vec<(String,)> = sqlx::query_as(
                "SELECT json_array(run_id, fetch_id, citation_key, verdict, detail, text_hash, snapshot_hash, found, decided_at, link, location, basis, fingerprint, also)
                 FROM verdicts_resolved ORDER BY run_id, fetch_id, citation_key",
            )
            .fetch_all(store.pool())
            .await
            .unwrap();
            read.extend(resolved.into_iter().map(|(r,)| r));
            seen.push(read);
        }
        assert!(
            seen[0]
                .iter()
                .any(|r| r.contains("Drifted") || r.contains("drifted"))
        );
        assert!(
            seen[0].iter().any(|r| r.contains("2026-11-28T03:00:00")),
            "the last night's time is read back: {:?}",
            seen[0]
        );
        assert_eq!(seen[0], seen[1]);
        // Re-used, a judgement is confirmed: no verdicts row of its own (migration 0014).
        let store = Store::open(&dir.path().join("true.db")).await.unwrap();
        let counts: (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM verdicts), (SELECT COUNT(*) FROM confirmations)",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(counts, (2, 4));
        let run = store.run_record(3).await.unwrap().unwrap();
        assert_eq!(run.citations_judged, 2, "a confirmation counts as judged");
        let history = store.verdicts_since_run(2).await.unwrap();
        assert_eq!(
            history,
            vec![
                (2, key(1), "verified".to_string()),
                (2, key(2), "drifted".to_string()),
                (3, key(1), "verified".to_string()),
                (3, key(2), "drifted".to_string()),
            ]
        );
        store.close().await;

        // Run 4 writes a full row, then (as a second judgement of the same citation in the
        // same run would) a re-use of that very row: it keeps its text.
        let store = Store::open(&dir.path().join("true.db")).await.unwrap();
        assert_eq!(store.begin_run(now, 1, 2).await.unwrap(), 4);
        let mut first = judged(&key(1), a, Verdict::Missing, Some("h2"));
        first.judgement.detail = "missing after all".into();
        store
            .record_fetch(&fetched(4, a, "h2", vec![first.clone()]))
            .await
            .unwrap();
        let contexts = store.judging_contexts(&key_refs[..1]).await.unwrap();
        let (_, row) = contexts[&key(1)].judgement_on("basis-h2").unwrap();
        first.reuses = Some(row);
        store
            .record_fetch(&not_modified(4, a, "h2", vec![first]))
            .await
            .unwrap();
        let (detail, reuses): (String, Option<i64>) =
            sqlx::query_as("SELECT detail, reuses FROM verdicts WHERE run_id = 4")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!((detail.as_str(), reuses), ("missing after all", None));

        // Run 4's confirmation of its own row counts once, the row's.
        let run = store.run_record(4).await.unwrap().unwrap();
        assert_eq!(run.citations_judged, 1);
        assert_eq!(
            store.verdicts_since_run(4).await.unwrap(),
            vec![(4, key(1), "missing".to_string())]
        );

        // A database whose confirmed row went missing (deleted by hand with foreign keys off):
        // its confirmations name nothing and are passed over; the citation has no verdict
        // left (never checked, as far as the store can tell: the gate holds it unchecked),
        // and the judging context has no previous judgement, so the next run judges afresh.
        let mut conn = store.pool().acquire().await.unwrap();
        sqlx::query("PRAGMA foreign_keys = OFF")
            .execute(&mut *conn)
            .await
            .unwrap();
        sqlx::query("DELETE FROM verdicts WHERE id = 2")
            .execute(&mut *conn)
            .await
            .unwrap();
        drop(conn);
        for columns in [
            VerdictColumns::Words,
            VerdictColumns::Shown,
            VerdictColumns::Reported,
            VerdictColumns::All,
        ] {
            let latest = store.latest_verdicts_by_key(columns).await.unwrap();
            assert_eq!(latest.len(), 1, "{columns:?}");
            assert!(
                latest
                    .iter()
                    .all(|(k, _)| k.to_string().as_str() == key(1).as_str())
            );
        }
        let rows = store.latest_verdicts().await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].citation_key, key(1));
        assert_eq!(store.verdicts_since_run(1).await.unwrap().len(), 4);
        let contexts = store.judging_contexts(&key_refs).await.unwrap();
        assert!(contexts[&key(2)].latest.is_none());
    }
}
