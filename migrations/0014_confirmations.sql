-- A judgement re-used (nothing it rests on changed: migration 0012) is recorded as a
-- confirmation instead of a verdicts row: the run, the fetch that confirmed it, and the
-- verdicts row holding the judgement (its first row, never a re-use). A quiet night at 2,000
-- citations wrote 2,000 verdicts rows that each repeated a verdict word, a snapshot hash and
-- a citation key, with two text indexes to keep; a confirmation is three integers, keyed by
-- run and verdict.
--
-- Every run still records each citation it judged, either way: its verdicts rows plus its
-- confirmations. When was a citation last checked: its latest verdicts row's `decided_at`,
-- or the `fetched_at` of the latest confirmation of the judgement that row holds, whichever
-- came last (a confirmation always comes later: it names a row that already existed).
--
-- Re-use rows written between migrations 0012 and this one stay as they are (their `reuses`
-- names the judgement's first row, as a confirmation does). `verdicts_resolved` shows both,
-- a confirmation as a row without an id of its own, for people and scripts reading the
-- database:
--   SELECT * FROM verdicts_resolved WHERE citation_key = ? ORDER BY run_id, fetch_id;
CREATE TABLE confirmations (
    run_id     INTEGER NOT NULL REFERENCES runs(id),
    verdict_id INTEGER NOT NULL REFERENCES verdicts(id), -- the row holding the judgement
    fetch_id   INTEGER NOT NULL REFERENCES fetches(id),  -- the fetch that confirmed it
    PRIMARY KEY (run_id, verdict_id)
) WITHOUT ROWID;
CREATE INDEX confirmations_latest ON confirmations(verdict_id, run_id, fetch_id);

DROP VIEW verdicts_resolved;
CREATE VIEW verdicts_resolved AS
SELECT v.id, v.run_id, v.fetch_id, v.citation_key, v.verdict,
       o.detail, o.text_hash, v.snapshot_hash, o.found, v.decided_at,
       o.link, o.location, o.basis, o.fingerprint, o.also, v.reuses
FROM verdicts v JOIN verdicts o ON o.id = COALESCE(v.reuses, v.id)
UNION ALL
SELECT NULL, k.run_id, k.fetch_id, o.citation_key, o.verdict,
       o.detail, o.text_hash, o.snapshot_hash, o.found, f.fetched_at,
       o.link, o.location, o.basis, o.fingerprint, o.also, o.id
FROM confirmations k JOIN verdicts o ON o.id = k.verdict_id JOIN fetches f ON f.id = k.fetch_id;
