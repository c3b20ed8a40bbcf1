-- Incremental judgement: what a content verdict was decided on, so a later run that reads the
-- same bytes for the same citation against the same baseline with the same engine re-uses it
-- instead of extracting and matching again.
--   basis        hex SHA-256 over the engine version, the snapshot and its content type, the
--                citation (key, selector, absent terms, render mode), the baseline snapshot,
--                and the redirect chain; NULL for verdicts not decided on content and for rows
--                written before this migration (those are judged afresh once).
--   fingerprint  the judgement's fingerprint (what a closed queue item is compared against).
--   also         further queue reasons, comma-separated verdict words.
ALTER TABLE verdicts ADD COLUMN basis TEXT;
ALTER TABLE verdicts ADD COLUMN fingerprint TEXT;
ALTER TABLE verdicts ADD COLUMN also TEXT;
