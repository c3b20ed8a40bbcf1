-- Notifications: every queue change and every abnormal run end becomes an outbox event in the
-- same transaction as the change itself (triggers, so no code path can forget one), and is
-- delivered to each configured target at most once per target as far as citewatch knows
-- (`deliveries`), with an idempotency key the receiver can use for the rest.

-- This database's identity, so idempotency keys of a new database never collide with an old
-- one's at a receiver.
CREATE TABLE meta (
    k TEXT PRIMARY KEY,
    v TEXT NOT NULL
);
INSERT INTO meta (k, v) VALUES ('instance', lower(hex(randomblob(8))));

CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY,
    event      TEXT NOT NULL CHECK (event IN ('opened', 'reopened', 'closed', 'resolved', 'dismissed', 'run_failed')),
    item_id    INTEGER REFERENCES reverify_queue(id), -- the queue item (NULL for run_failed)
    run_id     INTEGER REFERENCES runs(id),           -- the run (run_failed)
    created_at TEXT NOT NULL,
    key        TEXT NOT NULL UNIQUE                   -- idempotency key, stable across retries
);

-- Every target ever configured, and where its history starts: a target added later receives
-- the events after it was first seen, plus the opening of every item still open then, not the
-- whole history.
CREATE TABLE notify_targets (
    target     TEXT PRIMARY KEY,     -- kind and a digest of its URL or repository (never a secret)
    first_seen TEXT NOT NULL,
    after_id   INTEGER NOT NULL      -- outbox id at first sight
);

-- One row per (event, target) once delivery was tried.
CREATE TABLE deliveries (
    outbox_id       INTEGER NOT NULL REFERENCES outbox(id),
    target          TEXT NOT NULL,   -- the target's identity: kind and URL or repository
    attempts        INTEGER NOT NULL DEFAULT 0,
    delivered_at    TEXT,            -- NULL until the target accepted it
    last_error      TEXT,            -- one line, secrets redacted
    last_attempt_at TEXT,
    PRIMARY KEY (outbox_id, target)
);

CREATE TRIGGER outbox_item_opened AFTER INSERT ON reverify_queue
BEGIN
    INSERT INTO outbox (event, item_id, created_at, key)
    VALUES (
        CASE WHEN EXISTS (SELECT 1 FROM reverify_queue q
                          WHERE q.citation_key = NEW.citation_key AND q.reason = NEW.reason AND q.id <> NEW.id)
             THEN 'reopened' ELSE 'opened' END,
        NEW.id, NEW.first_seen,
        (SELECT v FROM meta WHERE k = 'instance') || '-item-' || NEW.id || '-open');
END;

CREATE TRIGGER outbox_item_closed AFTER UPDATE OF status ON reverify_queue
WHEN OLD.status = 'open' AND NEW.status <> 'open'
BEGIN
    INSERT INTO outbox (event, item_id, created_at, key)
    VALUES (
        CASE WHEN NEW.closed_by = 'citewatch' THEN 'closed' ELSE NEW.status END,
        NEW.id, COALESCE(NEW.closed_at, NEW.last_seen),
        (SELECT v FROM meta WHERE k = 'instance') || '-item-' || NEW.id || '-close');
END;

CREATE TRIGGER outbox_run_failed AFTER UPDATE OF status ON runs
WHEN NEW.status = 'failed' AND OLD.status <> 'failed'
BEGIN
    INSERT INTO outbox (event, run_id, created_at, key)
    VALUES ('run_failed', NEW.id, COALESCE(NEW.finished_at, NEW.started_at),
            (SELECT v FROM meta WHERE k = 'instance') || '-run-' || NEW.id || '-failed');
END;

CREATE INDEX outbox_by_item ON outbox(item_id);
