-- citewatch's state. Applied by `sqlx::migrate!` when the database is opened.
-- Never edit a migration once released: add a new one.
-- Times are RFC 3339 UTC text (sortable); hashes are lowercase hex SHA-256.

-- One row per `citewatch run` (or `check --fetch`, or daemon tick).
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    started_at  TEXT NOT NULL,
    finished_at TEXT,                       -- NULL while running or if the process died
    status      TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'finished', 'failed')),
    urls        INTEGER NOT NULL DEFAULT 0, -- distinct URLs planned
    citations   INTEGER NOT NULL DEFAULT 0  -- citations planned
);

-- Raw bodies stored under snapshots/ by content hash. The bytes live on disk, not here.
CREATE TABLE snapshots (
    hash         TEXT PRIMARY KEY,          -- SHA-256 of the raw body = file name
    size         INTEGER NOT NULL,          -- bytes
    content_type TEXT,                      -- Content-Type of the response that first brought it
    first_seen   TEXT NOT NULL
);

-- Every HTTP fetch of a cited URL (one per distinct URL per run).
CREATE TABLE fetches (
    id            INTEGER PRIMARY KEY,
    run_id        INTEGER NOT NULL REFERENCES runs(id),
    url           TEXT NOT NULL,            -- the URL as fetched (registry URL without fragment)
    fetched_at    TEXT NOT NULL,
    outcome       TEXT NOT NULL CHECK (outcome IN ('fetched', 'not_modified', 'failed')),
    status        INTEGER,                  -- HTTP status of the last response, if any
    failure_class TEXT,                     -- transient | blocked | dead | gone, for failures
    detail        TEXT,                     -- one line for people
    final_url     TEXT,                     -- where the redirect chain ended
    redirects     TEXT,                     -- '301 a -> b; 302 b -> c' or NULL
    snapshot_hash TEXT REFERENCES snapshots(hash), -- body (fetched) or re-used body (not_modified)
    content_type  TEXT,
    etag          TEXT,
    last_modified TEXT,
    elapsed_ms    INTEGER NOT NULL
);
CREATE INDEX fetches_by_url ON fetches(url, id);
CREATE INDEX fetches_by_run ON fetches(run_id);

-- Per URL: what the next fetch needs to know. A failure never overwrites the good fields.
CREATE TABLE sources (
    url                  TEXT PRIMARY KEY,
    last_good_snapshot   TEXT REFERENCES snapshots(hash), -- last body read successfully
    last_good_at         TEXT,
    content_type         TEXT,              -- of last_good_snapshot
    etag                 TEXT,              -- validators of last_good_snapshot
    last_modified        TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0, -- reset by any success
    first_failure_at     TEXT               -- start of the current failure streak
);

-- Citations ever seen, keyed by identity (offering, dimension, url, quote).
CREATE TABLE citations (
    key                TEXT PRIMARY KEY,    -- hex digest of the identity
    offering           TEXT NOT NULL,
    dimension          TEXT NOT NULL,
    url                TEXT NOT NULL,       -- as written in the registry
    quote              TEXT,
    baseline_snapshot  TEXT REFERENCES snapshots(hash), -- what a human last accepted
    baseline_at        TEXT,
    first_seen         TEXT NOT NULL,
    last_seen          TEXT NOT NULL        -- last run that had it in the registry
);

-- One verdict per citation per run.
CREATE TABLE verdicts (
    id            INTEGER PRIMARY KEY,
    run_id        INTEGER NOT NULL REFERENCES runs(id),
    fetch_id      INTEGER NOT NULL REFERENCES fetches(id),
    citation_key  TEXT NOT NULL REFERENCES citations(key),
    verdict       TEXT NOT NULL,            -- SPEC §3 word
    detail        TEXT NOT NULL,
    text_hash     TEXT,                     -- normalised text judged, when content was read
    snapshot_hash TEXT REFERENCES snapshots(hash), -- body judged
    found         TEXT,                     -- near-match variant, for the report
    decided_at    TEXT NOT NULL
);
CREATE INDEX verdicts_latest ON verdicts(citation_key, id);
CREATE UNIQUE INDEX verdicts_once_per_run ON verdicts(run_id, citation_key);

-- The re-verification queue people work through (SPEC §4).
CREATE TABLE reverify_queue (
    id            INTEGER PRIMARY KEY,
    citation_key  TEXT NOT NULL REFERENCES citations(key),
    offering      TEXT NOT NULL,
    dimension     TEXT NOT NULL,
    url           TEXT NOT NULL,
    reason        TEXT NOT NULL,            -- a queued verdict word, or 'expired'
    status        TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved', 'dismissed')),
    detail        TEXT NOT NULL,            -- latest explanation
    fingerprint   TEXT NOT NULL,            -- state behind the item; a closed item reopens only when it changes
    snapshot_hash TEXT REFERENCES snapshots(hash), -- body behind the latest sighting, if any
    first_seen    TEXT NOT NULL,
    last_seen     TEXT NOT NULL,
    closed_at     TEXT,
    closed_by     TEXT,                     -- person, or 'citewatch' when closed automatically
    note          TEXT
);
-- One open row per (citation, reason): repeated sightings move last_seen instead.
CREATE UNIQUE INDEX reverify_queue_one_open ON reverify_queue(citation_key, reason) WHERE status = 'open';
CREATE INDEX reverify_queue_by_status ON reverify_queue(status, offering, dimension);
