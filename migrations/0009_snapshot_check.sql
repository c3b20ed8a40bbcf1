-- A fast checksum of each snapshot's bytes (hex XXH3-128), written with the snapshot. Before a
-- conditional request re-uses a stored body, the file is read back and checked against it:
-- a flipped byte is caught as surely as by re-hashing with SHA-256, at a fraction of the CPU.
-- Snapshots stored before this column existed are checked with SHA-256 (their name).
ALTER TABLE snapshots ADD COLUMN xxh3 TEXT;
