-- When each snapshot's bytes were last read and checked in full, and its file's stamp then
-- (device, inode, size, modification and status-change times; see `snapshot::stamp`).
--
-- Before a conditional request re-uses a stored body, its file is checked intact. A file
-- whose stamp is still the recorded one has not been changed through the file system since
-- that full check (any write, truncation, replacement or rename over it moves its
-- status-change time, which no program can set back), so it is not read again: one `stat`
-- instead of reading and hashing the whole body every night. What a stamp cannot see is
-- damage below the file system, on the medium; for that each body is still read and checked
-- in full at least every seven days (its first full re-read 0-6 days after it was stored,
-- spread by its hash, so a night re-reads about a seventh of the bodies, not all of them
-- once a week). A night's re-read of a body the page cache holds never reached the medium
-- either.
--
-- Rows without a stamp (stored before this migration, or not stat'able when published) are
-- read in full at their next check, which records one.
ALTER TABLE snapshots ADD COLUMN checked_at TEXT;
ALTER TABLE snapshots ADD COLUMN stamp TEXT;
