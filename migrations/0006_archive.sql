-- Archived copies of lost evidence (issue: evidence that outlives its source).

-- One archive lookup per cited URL and cell `verified` date ('given' for a registry
-- `archived = "URL"`), with the capture it found and its bytes. A found capture never changes;
-- a lookup that found nothing or failed is tried again on a later day, never twice a day.
CREATE TABLE archive_lookups (
    url           TEXT NOT NULL,    -- the cited URL as fetched, or the registry's archived URL
    not_after     TEXT NOT NULL,    -- YYYY-MM-DD, or 'given'
    looked_up_at  TEXT NOT NULL,
    capture_url   TEXT,             -- the capture as people open it; NULL: none found
    captured      TEXT,             -- RFC 3339
    snapshot_hash TEXT REFERENCES snapshots(hash), -- the capture's original bytes, once read
    content_type  TEXT,
    error         TEXT,             -- why the lookup or the read failed
    PRIMARY KEY (url, not_after)
);

-- Per citation: the archived copy found for its lost evidence and whether it stands there.
CREATE TABLE archived_evidence (
    citation_key TEXT PRIMARY KEY REFERENCES citations(key),
    url          TEXT NOT NULL,
    captured     TEXT NOT NULL,
    stands       INTEGER NOT NULL,
    checked_at   TEXT NOT NULL
);

-- Save Page Now requests (`archive_submit = true`): one per URL and verified date.
CREATE TABLE archive_submissions (
    url          TEXT NOT NULL,
    verified     TEXT NOT NULL,      -- the cell's verified date the capture is for
    submitted_at TEXT NOT NULL,
    outcome      TEXT NOT NULL,      -- 'requested', 'already captured', or the failure
    PRIMARY KEY (url, verified)
);
