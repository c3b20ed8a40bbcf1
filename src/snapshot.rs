//! Snapshots: raw response bodies, stored once, named by their SHA-256.
//!
//! An I/O edge. Files live at `DIR/ab/abcdef…` (two-character fan-out keeps directories small).
//! Each is written to a temporary file in the same directory, fsynced, then renamed, so a
//! crash never leaves a partial snapshot under a real name; a body already stored is not
//! written again. Reading re-hashes the bytes so a corrupted file is detected, never trusted.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Content-addressed storage for raw bodies.
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    dir: PathBuf,
}

/// A snapshot that cannot be read back intact.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The file could not be read or written.
    #[error("snapshot {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file's bytes no longer hash to its name.
    #[error("snapshot {path} is corrupt (content hash {actual})")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Hash of the bytes found.
        actual: String,
    },
}

/// Hex SHA-256 of bytes.
pub fn hash_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl SnapshotStore {
    /// A store rooted at `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SnapshotStore { dir: dir.into() }
    }

    /// The root directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the snapshot with this hash lives.
    pub fn path_of(&self, hash: &str) -> PathBuf {
        let fan = hash.get(..2).unwrap_or("xx");
        self.dir.join(fan).join(hash)
    }

    /// Stores bytes (if not already stored) and returns their hash.
    pub fn put(&self, bytes: &[u8]) -> Result<String, SnapshotError> {
        let hash = hash_bytes(bytes);
        let path = self.path_of(&hash);
        if let Ok(existing) = self.get(&hash) {
            debug_assert_eq!(existing.len(), bytes.len());
            return Ok(hash);
        }
        let io_err = |source| SnapshotError::Io {
            path: path.clone(),
            source,
        };
        let parent = path.parent().expect("snapshot path has a parent");
        std::fs::create_dir_all(parent).map_err(io_err)?;
        let mut tmp = tempfile::NamedTempFile::new_in(parent).map_err(io_err)?;
        tmp.write_all(bytes).map_err(io_err)?;
        tmp.as_file().sync_all().map_err(io_err)?;
        tmp.persist(&path).map_err(|e| io_err(e.error))?;
        // The rename must reach the disk before the database row that names it commits.
        if let Ok(d) = std::fs::File::open(parent) {
            let _ = d.sync_all();
        }
        Ok(hash)
    }

    /// Reads a snapshot back, checking that its bytes still hash to its name.
    pub fn get(&self, hash: &str) -> Result<Vec<u8>, SnapshotError> {
        let path = self.path_of(hash);
        let bytes = std::fs::read(&path).map_err(|source| SnapshotError::Io {
            path: path.clone(),
            source,
        })?;
        let actual = hash_bytes(&bytes);
        if actual != hash {
            return Err(SnapshotError::Corrupt { path, actual });
        }
        Ok(bytes)
    }

    /// Whether an intact snapshot with this hash is stored.
    pub fn has(&self, hash: &str) -> bool {
        self.get(hash).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_and_detect_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::new(dir.path());
        let h = store.put(b"hello").unwrap();
        assert_eq!(h, hash_bytes(b"hello"));
        assert_eq!(store.put(b"hello").unwrap(), h);
        assert_eq!(store.get(&h).unwrap(), b"hello");
        let p = store.path_of(&h);
        assert!(p.starts_with(dir.path().join(&h[..2])));
        std::fs::write(&p, b"hellO").unwrap();
        assert!(matches!(store.get(&h), Err(SnapshotError::Corrupt { .. })));
        // A corrupt file is replaced by a good copy on the next put.
        assert_eq!(store.put(b"hello").unwrap(), h);
        assert_eq!(store.get(&h).unwrap(), b"hello");
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }
}
