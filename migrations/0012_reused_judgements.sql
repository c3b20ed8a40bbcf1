-- A judgement re-used is not written again. Every run still records one verdict row per
-- citation it judged (the gate's "every citation judged on every run" counts them, and the
-- per-run history reads them), but when a run re-uses the previous judgement because nothing
-- it rests on changed (a 304, or the same bytes again), its row keeps only what is the run's
-- own: run, fetch, citation, verdict word, snapshot and time, and names in `reuses` the row
-- that holds the judgement's text (detail, text hash, near match, link, location, basis,
-- fingerprint, the other reasons). That row is always a full one: a re-use of a re-use names
-- the original. A quiet night at 100,000 citations wrote ~70 MB of verdict text identical to
-- the night before's.
--
-- Rows written before this migration are full rows (`reuses` NULL), as are all first
-- judgements. `verdicts_resolved` shows every row with its judgement's text, for people
-- and scripts reading the database:
--   SELECT * FROM verdicts_resolved WHERE citation_key = ? ORDER BY id;
ALTER TABLE verdicts ADD COLUMN reuses INTEGER REFERENCES verdicts(id);

CREATE VIEW verdicts_resolved AS
SELECT v.id, v.run_id, v.fetch_id, v.citation_key, v.verdict,
       o.detail, o.text_hash, v.snapshot_hash, o.found, v.decided_at,
       o.link, o.location, o.basis, o.fingerprint, o.also, v.reuses
FROM verdicts v JOIN verdicts o ON o.id = COALESCE(v.reuses, v.id);
