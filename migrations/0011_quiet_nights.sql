-- Quiet nights rewrite nothing they need not. Two columns moved on every run, for every
-- source and every citation, and nothing read them: `sources.last_good_at` (the last fetch that
-- read or confirmed the good body) and `citations.last_seen` (the last run that had the
-- citation). Keeping them current rewrote a page of each table per fetch and per citation on
-- every run, every page answering 304 included (at 100,000 citations about a sixth of a quiet
-- run's CPU). Both are in the history, so nothing is lost:
--   last good:  SELECT MAX(fetched_at) FROM fetches WHERE url = ? AND outcome IN ('fetched', 'not_modified')
--   last seen:  SELECT MAX(decided_at) FROM verdicts WHERE citation_key = ?
ALTER TABLE sources DROP COLUMN last_good_at;
ALTER TABLE citations DROP COLUMN last_seen;
