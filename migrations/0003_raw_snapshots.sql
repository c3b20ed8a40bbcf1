-- For pages rendered in a browser: the response body as the server sent it, beside the
-- rendered DOM recorded in snapshot_hash.
ALTER TABLE fetches ADD COLUMN raw_snapshot_hash TEXT REFERENCES snapshots(hash);
