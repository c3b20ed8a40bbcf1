-- The fetch that first brought a body, found by the body's hash (a WARC export writes one
-- `revisit` record per 304, each pointing at that first capture). Without an index every
-- lookup read the whole fetch history: quadratic in the number of runs. Partial indexes:
-- only fetches that brought a body are in them, so a run of 304s adds nothing to maintain.
CREATE INDEX fetches_first_capture ON fetches(snapshot_hash, id) WHERE outcome = 'fetched';
CREATE INDEX fetches_first_raw_capture ON fetches(raw_snapshot_hash, id)
    WHERE outcome = 'fetched' AND raw_snapshot_hash IS NOT NULL;
