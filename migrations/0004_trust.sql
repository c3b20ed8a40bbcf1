-- Every citation judged on every run, and a run that did not finish says so.

-- Words of the last good body (whole page). A page that now says it moved is taken for a
-- redirect stub only when it has lost most of them. NULL until the next good fetch.
ALTER TABLE sources ADD COLUMN last_good_words INTEGER;

-- How a run that did not finish normally ended, in one line for people: the run deadline,
-- an internal error (a panic while processing one URL), or a database/disk failure. NULL for
-- runs that finished, and for runs whose process died (status stays 'running'; `check` tells
-- those apart from a live run by the run lock).
ALTER TABLE runs ADD COLUMN ended TEXT;
