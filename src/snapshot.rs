//! Snapshots: raw response bodies, stored once, named by their SHA-256.
//!
//! An I/O edge. Files live at `DIR/ab/abcdef…` (two-character fan-out keeps directories small).
//! Each is written to a temporary file in the same directory, synced, then renamed (and the
//! rename synced), so a crash never leaves a partial snapshot under a real name; a body
//! already stored is not written again. A run stages the bodies of a commit group and
//! publishes them together, sharing the syncs. Reading re-hashes the bytes so a corrupted file is detected, never trusted.

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

/// A body written beside its place in the store under a temporary name, waiting to be
/// published (see [`SnapshotStore::stage`]). Dropped unpublished, its file is removed.
#[derive(Debug)]
pub struct Staged {
    tmp: tempfile::TempPath,
    path: PathBuf,
}

impl SnapshotError {
    /// The same error again (each fetch of a group whose snapshots failed is told why).
    pub fn again(&self) -> SnapshotError {
        match self {
            SnapshotError::Io { path, source } => SnapshotError::Io {
                path: path.clone(),
                source: io::Error::new(source.kind(), source.to_string()),
            },
            SnapshotError::Corrupt { path, actual } => SnapshotError::Corrupt {
                path: path.clone(),
                actual: actual.clone(),
            },
        }
    }
}

/// fsyncs directories, so the names made in them are on disk.
fn sync_dirs<'a>(dirs: impl IntoIterator<Item = &'a Path>) -> io::Result<()> {
    for d in dirs {
        std::fs::File::open(d)?.sync_all()?;
    }
    Ok(())
}

/// Opens a stored snapshot for reading, with its length: only a regular file is one. A FIFO,
/// device or directory put in its place is refused without blocking (opened non-blocking,
/// then its type read from the open file, so it cannot be swapped in between).
fn open_snapshot(path: &Path) -> io::Result<(std::fs::File, u64)> {
    open_snapshot_meta(path).map(|(f, m)| (f, m.len()))
}

/// [`open_snapshot`], with the open file's metadata.
fn open_snapshot_meta(path: &Path) -> io::Result<(std::fs::File, std::fs::Metadata)> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    Ok((file, meta))
}

/// A stored snapshot's bytes, unchecked (see [`open_snapshot`]).
fn read_regular(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let (mut file, len) = open_snapshot(path)?;
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Feeds an open file's bytes to `into`, one small buffer at a time (the thread's own,
/// zeroed once: a fresh 64 KiB buffer per file was a memset of every file's worth of
/// buffer, 9 % of a re-run's instructions under callgrind).
fn stream_file(mut file: std::fs::File, into: &mut dyn FnMut(&[u8])) -> io::Result<()> {
    use std::io::Read;
    thread_local! {
        static BUF: std::cell::RefCell<Box<[u8]>> =
            std::cell::RefCell::new(vec![0u8; 64 * 1024].into_boxed_slice());
    }
    BUF.with(|buf| {
        // Never re-entered (`into` only hashes); a re-entrant call would get its own buffer.
        let mut own;
        let mut held = buf.try_borrow_mut();
        let buf: &mut [u8] = match &mut held {
            Ok(b) => b,
            Err(_) => {
                own = vec![0u8; 64 * 1024];
                &mut own
            }
        };
        loop {
            match file.read(buf) {
                Ok(0) => return Ok(()),
                Ok(n) => into(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    })
}

/// What a snapshot file's metadata says of its identity and last change: device, inode,
/// size, and modification and status-change times to the nanosecond. Any write to the file,
/// a truncation, a rename over it, a `chmod` or a replacement by another file moves at least
/// one of them (the kernel sets the status-change time to the current time on any change,
/// and no call sets it to a chosen value; only moving the system clock could), so a file whose
/// stamp equals the one taken when its bytes were last checked has not been changed through
/// the file system since. What it cannot see is damage below the file system (a bad sector,
/// a flipped bit on the medium): the periodic full read is for that (see
/// [`SnapshotStore::check_unless_unchanged`]). `None` where the platform gives no such times.
pub fn stamp(meta: &std::fs::Metadata) -> Option<String> {
    let mut out = String::new();
    write_stamp(meta, &mut out).then_some(out)
}

/// Writes [`stamp`] into `out`; false (nothing written) where the platform has none.
fn write_stamp(meta: &std::fs::Metadata, out: &mut impl std::fmt::Write) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        write!(
            out,
            "{}:{}:{}:{}.{:09}:{}.{:09}",
            meta.dev(),
            meta.ino(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec()
        )
        .is_ok()
    }
    #[cfg(not(unix))]
    {
        let _ = (meta, out);
        false
    }
}

/// Whether the file's [`stamp`] is `recorded`, without building it: written piece by piece
/// against the recorded text (this runs once per stored body on every night).
fn stamp_is(meta: &std::fs::Metadata, recorded: &str) -> bool {
    /// Matches what is written against the rest of `recorded`, failing at the first difference.
    struct Against<'a>(&'a str);
    impl std::fmt::Write for Against<'_> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            match self.0.strip_prefix(s) {
                Some(rest) => {
                    self.0 = rest;
                    Ok(())
                }
                None => Err(std::fmt::Error),
            }
        }
    }
    let mut rest = Against(recorded);
    write_stamp(meta, &mut rest) && rest.0.is_empty()
}

/// How [`SnapshotStore::check_unless_unchanged`] found a stored snapshot intact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// Its stamp equals the one given: not changed through the file system since its bytes
    /// were last read and checked; not read now.
    Unchanged,
    /// Read and checked now; the file's stamp as it was opened, when the platform has one.
    Read(Option<String>),
}

/// A body made durable under its real name by [`SnapshotStore::publish`], with its file's
/// [`stamp`] as published (after the rename, which moves the status-change time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Its content hash (the file's name).
    pub hash: String,
    /// Its file's stamp, when the platform has one.
    pub stamp: Option<String>,
}

/// Hex XXH3-128 of bytes: the quick check recorded beside each snapshot (see
/// [`SnapshotStore::get_checked`]).
pub fn quick_check(bytes: &[u8]) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(bytes))
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
        let mut path = PathBuf::with_capacity(self.dir.as_os_str().len() + hash.len() + 8);
        path.push(&self.dir);
        path.push(fan);
        path.push(hash);
        path
    }

    /// Stores bytes (if not already stored) and returns their hash: [`SnapshotStore::stage`]
    /// and [`SnapshotStore::publish`] of one body.
    pub fn put(&self, bytes: &[u8]) -> Result<String, SnapshotError> {
        let (hash, staged) = self.stage(bytes)?;
        self.publish(staged.into_iter().collect())?;
        Ok(hash)
    }

    /// Writes bytes under a temporary name beside where they belong (unless an intact copy is
    /// stored already) and returns their hash. Nothing is synced or named yet: a group of
    /// staged bodies is made durable under their real names at once by
    /// [`SnapshotStore::publish`]; a staged body dropped unpublished leaves nothing behind.
    pub fn stage(&self, bytes: &[u8]) -> Result<(String, Option<Staged>), SnapshotError> {
        let hash = hash_bytes(bytes);
        let path = self.path_of(&hash);
        // Already stored (the same body again, from a server without validators or under
        // another URL): kept when its file holds exactly these bytes — compared, not
        // re-hashed — and written afresh when it does not (a damaged file heals).
        if read_regular(&path).is_ok_and(|existing| existing == bytes) {
            return Ok((hash, None));
        }
        let io_err = |source| SnapshotError::Io {
            path: path.clone(),
            source,
        };
        let parent = path.parent().expect("snapshot path has a parent");
        std::fs::create_dir_all(parent).map_err(io_err)?;
        let mut tmp = tempfile::NamedTempFile::new_in(parent).map_err(io_err)?;
        tmp.write_all(bytes).map_err(io_err)?;
        let tmp = tmp.into_temp_path();
        Ok((hash, Some(Staged { tmp, path })))
    }

    /// Makes staged bodies durable under their real names: their bytes reach the disk, then
    /// they are renamed into place, then the renames reach the disk — so a real name never
    /// holds a partial body, and once this returns, a database row may name them. Several
    /// bodies share the syncs (on Linux one `syncfs` before and one after the renames, instead
    /// of two `fsync`s per body); a single body is synced on its own. Returns each body's
    /// hash with its file's [`stamp`] as published.
    pub fn publish(&self, staged: Vec<Staged>) -> Result<Vec<Published>, SnapshotError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SnapshotError::Io { path, source }
        };
        let mut paths = Vec::with_capacity(staged.len());
        match staged.len() {
            0 => return Ok(Vec::new()),
            1 => {
                let Some(s) = staged.into_iter().next() else {
                    return Ok(Vec::new());
                };
                std::fs::File::open(&s.tmp)
                    .and_then(|f| f.sync_all())
                    .map_err(io_err(&s.path))?;
                let path = s.path;
                s.tmp.persist(&path).map_err(|e| io_err(&path)(e.error))?;
                let parent = path.parent().expect("snapshot path has a parent");
                sync_dirs([parent, self.dir.as_path()]).map_err(io_err(parent))?;
                paths.push(path);
            }
            _ => {
                self.sync_bodies(&staged)?;
                let mut parents = std::collections::BTreeSet::new();
                for s in staged {
                    let path = s.path;
                    s.tmp.persist(&path).map_err(|e| io_err(&path)(e.error))?;
                    if let Some(parent) = path.parent() {
                        parents.insert(parent.to_path_buf());
                    }
                    paths.push(path);
                }
                self.sync_names(&parents)?;
            }
        }
        // Stamped after the renames (a rename moves the status-change time). A file that
        // cannot be stat'ed now is published unstamped: its next check reads it in full.
        Ok(paths
            .into_iter()
            .map(|path| Published {
                hash: path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                stamp: std::fs::metadata(&path).ok().as_ref().and_then(stamp),
            })
            .collect())
    }

    /// Every staged body's bytes on disk.
    #[cfg(target_os = "linux")]
    fn sync_bodies(&self, _staged: &[Staged]) -> Result<(), SnapshotError> {
        self.syncfs()
    }

    #[cfg(not(target_os = "linux"))]
    fn sync_bodies(&self, staged: &[Staged]) -> Result<(), SnapshotError> {
        for s in staged {
            std::fs::File::open(&s.tmp)
                .and_then(|f| f.sync_all())
                .map_err(|source| SnapshotError::Io {
                    path: s.path.clone(),
                    source,
                })?;
        }
        Ok(())
    }

    /// The renames into these directories (and their creation) on disk.
    #[cfg(target_os = "linux")]
    fn sync_names(
        &self,
        _parents: &std::collections::BTreeSet<PathBuf>,
    ) -> Result<(), SnapshotError> {
        self.syncfs()
    }

    #[cfg(not(target_os = "linux"))]
    fn sync_names(
        &self,
        parents: &std::collections::BTreeSet<PathBuf>,
    ) -> Result<(), SnapshotError> {
        let dirs = parents
            .iter()
            .map(PathBuf::as_path)
            .chain([self.dir.as_path()]);
        sync_dirs(dirs).map_err(|source| SnapshotError::Io {
            path: self.dir.clone(),
            source,
        })
    }

    /// One `syncfs` of the file system the store is on: everything written to it so far is on
    /// disk when it returns (errors of any writeback since the last call are reported).
    #[cfg(target_os = "linux")]
    fn syncfs(&self) -> Result<(), SnapshotError> {
        use std::os::fd::AsRawFd;
        let err = |source| SnapshotError::Io {
            path: self.dir.clone(),
            source,
        };
        let dir = std::fs::File::open(&self.dir).map_err(err)?;
        // SAFETY: `syncfs` only reads the descriptor, which `dir` keeps open for the call.
        if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
            return Err(err(io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Reads a snapshot back, checking that its bytes still hash to its name.
    pub fn get(&self, hash: &str) -> Result<Vec<u8>, SnapshotError> {
        self.get_checked(hash, None)
    }

    /// Reads a snapshot back, checking its bytes against `check` (its [`quick_check`], as
    /// recorded when it was stored) when there is one, else against its name. Either way a
    /// changed byte is an error, never a body.
    pub fn get_checked(&self, hash: &str, check: Option<&str>) -> Result<Vec<u8>, SnapshotError> {
        let path = self.path_of(hash);
        let bytes = read_regular(&path).map_err(|source| SnapshotError::Io {
            path: path.clone(),
            source,
        })?;
        let corrupt = match check {
            Some(check) => {
                let actual = quick_check(&bytes);
                (actual != check).then(|| format!("xxh3 {actual}"))
            }
            None => {
                let actual = hash_bytes(&bytes);
                (actual != hash).then_some(actual)
            }
        };
        match corrupt {
            Some(actual) => Err(SnapshotError::Corrupt { path, actual }),
            None => Ok(bytes),
        }
    }

    /// Checks a stored snapshot as [`SnapshotStore::get_checked`] does, without keeping its
    /// bytes: the file streams through one small buffer into the hash. What a conditional
    /// request needs to know before it is sent (is the body it would let us re-use intact?)
    /// costs a read of the file and no allocation of its size. With the `size` recorded
    /// when it was stored, a file of any other length is corrupt without being read.
    pub fn verify(
        &self,
        hash: &str,
        check: Option<&str>,
        size: Option<u64>,
    ) -> Result<(), SnapshotError> {
        self.verify_stamped(&self.path_of(hash), hash, check, size)
            .map(|_| ())
    }

    /// [`SnapshotStore::verify`] of the file at `path`, returning its [`stamp`] as opened.
    fn verify_stamped(
        &self,
        path: &Path,
        hash: &str,
        check: Option<&str>,
        size: Option<u64>,
    ) -> Result<Option<String>, SnapshotError> {
        let path = path.to_path_buf();
        let io_err = |source| SnapshotError::Io {
            path: path.clone(),
            source,
        };
        let (file, meta) = open_snapshot_meta(&path).map_err(io_err)?;
        let len = meta.len();
        if let Some(size) = size
            && len != size
        {
            return Err(SnapshotError::Corrupt {
                path,
                actual: format!("{len} bytes where {size} were stored"),
            });
        }
        let corrupt = match check {
            Some(check) => {
                let mut q = xxhash_rust::xxh3::Xxh3::new();
                stream_file(file, &mut |b| q.update(b)).map_err(io_err)?;
                let actual = format!("{:032x}", q.digest128());
                (actual != check).then(|| format!("xxh3 {actual}"))
            }
            None => {
                let mut f = Sha256::new();
                stream_file(file, &mut |b| f.update(b)).map_err(io_err)?;
                let actual = hex::encode(f.finalize());
                (actual != hash).then_some(actual)
            }
        };
        match corrupt {
            Some(actual) => Err(SnapshotError::Corrupt { path, actual }),
            None => Ok(stamp(&meta)),
        }
    }

    /// [`SnapshotStore::verify`], skipped when the file is provably the one last checked: when
    /// `unchanged` (the [`stamp`] recorded when its bytes were last read and checked) equals
    /// its stamp now, it has not been changed through the file system since, and it is not
    /// read ([`Checked::Unchanged`]; one `stat`, no open or read). Otherwise, or when no
    /// stamp is given, it is read and checked in full, and its stamp as opened is returned
    /// for the next time. A caller that wants damage below the file system (the medium)
    /// caught too passes no stamp now and then (the run does at least weekly).
    pub fn check_unless_unchanged(
        &self,
        hash: &str,
        check: Option<&str>,
        size: Option<u64>,
        unchanged: Option<&str>,
    ) -> Result<Checked, SnapshotError> {
        let path = self.path_of(hash);
        if let Some(recorded) = unchanged
            && let Ok(meta) = std::fs::metadata(&path)
            && meta.is_file()
            && size.is_none_or(|n| n == meta.len())
            && stamp_is(&meta, recorded)
        {
            return Ok(Checked::Unchanged);
        }
        let stamp = self.verify_stamped(&path, hash, check, size)?;
        Ok(Checked::Read(stamp))
    }

    /// Whether an intact snapshot with this hash is stored.
    pub fn has(&self, hash: &str) -> bool {
        self.verify(hash, None, None).is_ok()
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

    /// The stamp compared in place says what comparing the built stamp says: equal only to
    /// exactly the file's stamp, not to a prefix of it, a longer text or a neighbour's.
    #[cfg(unix)]
    #[test]
    fn a_stamp_compared_in_place_matches_exactly_the_files_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, b"a").unwrap();
        std::fs::write(&b, b"b").unwrap();
        let meta = std::fs::metadata(&a).unwrap();
        let own = stamp(&meta).unwrap();
        assert!(stamp_is(&meta, &own));
        assert!(!stamp_is(&meta, &own[..own.len() - 1]));
        assert!(!stamp_is(&meta, &format!("{own}0")));
        assert!(!stamp_is(&meta, ""));
        assert!(!stamp_is(
            &meta,
            &stamp(&std::fs::metadata(&b).unwrap()).unwrap()
        ));
    }

    /// A file whose stamp is the one recorded at its last full check is not read (a wrong
    /// quick check does not matter then); any change through the file system — a byte
    /// rewritten in place at the same size, a replacement by an identical copy — moves the
    /// stamp, and the file is read and checked in full again.
    #[test]
    fn an_unchanged_stamp_skips_the_read_and_any_change_moves_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::new(dir.path());
        let body = b"<p>We are SOC 2 Type II audited.</p>".to_vec();
        let (h, staged) = store.stage(&body).unwrap();
        let published = store.publish(staged.into_iter().collect()).unwrap();
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].hash, h);
        let path = store.path_of(&h);
        let now = stamp(&std::fs::metadata(&path).unwrap());
        assert!(now.is_some());
        assert_eq!(published[0].stamp, now, "stamped as published");
        let check = quick_check(&body);
        let size = Some(body.len() as u64);
        // Read in full without a stamp; the stamp it returns is the file's.
        let Checked::Read(Some(recorded)) = store
            .check_unless_unchanged(&h, Some(&check), size, None)
            .unwrap()
        else {
            panic!("read in full without a stamp")
        };
        assert_eq!(Some(&recorded), now.as_ref());
        // Same stamp: not read (a wrong quick check would otherwise fail it).
        assert_eq!(
            store
                .check_unless_unchanged(&h, Some(&quick_check(b"other")), size, Some(&recorded))
                .unwrap(),
            Checked::Unchanged
        );
        // A recorded size the file does not have: read, and found corrupt.
        assert!(
            store
                .check_unless_unchanged(&h, Some(&check), Some(1), Some(&recorded))
                .is_err()
        );
        // One byte rewritten in place, same size: the stamp moves, the file is read.
        {
            use std::io::{Seek, SeekFrom};
            let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.seek(SeekFrom::Start(5)).unwrap();
            f.write_all(b"P").unwrap();
        }
        assert_ne!(stamp(&std::fs::metadata(&path).unwrap()), now);
        assert!(matches!(
            store.check_unless_unchanged(&h, Some(&check), size, Some(&recorded)),
            Err(SnapshotError::Corrupt { .. })
        ));
        // Replaced by an intact copy: a new stamp, read and found intact.
        std::fs::remove_file(&path).unwrap();
        store.put(&body).unwrap();
        match store
            .check_unless_unchanged(&h, Some(&check), size, Some(&recorded))
            .unwrap()
        {
            Checked::Read(Some(again)) => assert_ne!(again, recorded),
            other => panic!("a replaced file must be read, got {other:?}"),
        }
        // Gone: an error, whatever the stamp.
        std::fs::remove_file(&path).unwrap();
        assert!(
            store
                .check_unless_unchanged(&h, Some(&check), size, Some(&recorded))
                .is_err()
        );
    }

    /// Every file under `dir`, relative, sorted.
    fn files(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for fan in std::fs::read_dir(dir).unwrap() {
            let fan = fan.unwrap().path();
            for f in std::fs::read_dir(&fan).unwrap() {
                let f = f.unwrap().path();
                out.push(f.strip_prefix(dir).unwrap().display().to_string());
            }
        }
        out.sort();
        out
    }

    #[test]
    fn verify_streams_a_body_larger_than_its_buffer_and_agrees_with_get_checked() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::new(dir.path());
        // Several buffers' worth, not a multiple of the buffer.
        let body: Vec<u8> = (0..200_003u32).map(|i| (i * 31 % 253) as u8).collect();
        let h = store.put(&body).unwrap();
        let check = quick_check(&body);
        let size = Some(body.len() as u64);
        store.verify(&h, Some(&check), size).unwrap();
        store.verify(&h, None, size).unwrap();
        store.verify(&h, Some(&check), None).unwrap();
        assert!(store.has(&h));
        assert!(matches!(
            store.verify(&h, Some(&quick_check(b"other")), size),
            Err(SnapshotError::Corrupt { .. })
        ));
        // A recorded size that is not the file's: corrupt, whatever the bytes.
        assert!(matches!(
            store.verify(&h, Some(&check), Some(body.len() as u64 + 1)),
            Err(SnapshotError::Corrupt { .. })
        ));
        // A flipped byte in the first buffer, across a buffer boundary, in the last byte;
        // and a body cut short or grown by a byte: each is found both ways, as get_checked
        // finds it.
        let mut damaged = Vec::new();
        for at in [0, 65_535, 65_536, 131_072, 200_002] {
            let mut bad = body.clone();
            bad[at] ^= 0x10;
            damaged.push(bad);
        }
        damaged.push(body[..body.len() - 1].to_vec());
        damaged.push([body.as_slice(), b"x"].concat());
        for bad in damaged {
            std::fs::write(store.path_of(&h), &bad).unwrap();
            for c in [Some(check.as_str()), None] {
                for recorded in [size, None] {
                    assert!(matches!(
                        store.verify(&h, c, recorded),
                        Err(SnapshotError::Corrupt { .. })
                    ));
                }
                assert!(store.get_checked(&h, c).is_err());
            }
            assert!(!store.has(&h));
        }
        // A missing file is an I/O error naming it.
        std::fs::remove_file(store.path_of(&h)).unwrap();
        match store.verify(&h, Some(&check), size) {
            Err(SnapshotError::Io { path, .. }) => assert_eq!(path, store.path_of(&h)),
            other => panic!("{other:?}"),
        }
    }

    /// Something that is not a regular file where a snapshot belongs (a FIFO would block a
    /// plain open until a writer came; a directory reads as an error late) is refused at once
    /// by every read, never waited on.
    #[cfg(unix)]
    #[test]
    fn a_fifo_or_directory_in_a_snapshots_place_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::new(dir.path());
        let fifo_hash = hash_bytes(b"fifo");
        let dir_hash = hash_bytes(b"dir");
        let fifo = store.path_of(&fifo_hash);
        std::fs::create_dir_all(fifo.parent().unwrap()).unwrap();
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only reads it.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        std::fs::create_dir_all(store.path_of(&dir_hash)).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let probe = store.clone();
        // On its own thread: were an open to block, the test fails on the timeout below
        // instead of hanging.
        std::thread::spawn(move || {
            for h in [&fifo_hash, &dir_hash] {
                let refused = probe.verify(h, None, None).is_err()
                    && probe.verify(h, Some("0"), Some(0)).is_err()
                    && probe.get(h).is_err()
                    && probe.get_checked(h, Some("0")).is_err()
                    && !probe.has(h);
                let _ = tx.send(refused);
            }
        });
        for _ in 0..2 {
            let refused = rx
                .recv_timeout(std::time::Duration::from_secs(10))
                .expect("a read of a non-file snapshot returned");
            assert!(refused);
        }
        // Storing the body that belongs there replaces the FIFO with the body.
        let (tx, rx) = std::sync::mpsc::channel();
        let writer = store.clone();
        std::thread::spawn(move || {
            let _ = tx.send(writer.put(b"fifo").map_err(|e| e.to_string()));
        });
        let stored = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("storing over a FIFO returned");
        assert_eq!(stored.unwrap(), hash_bytes(b"fifo"));
        assert_eq!(store.get(&hash_bytes(b"fifo")).unwrap(), b"fifo");
    }

    #[test]
    fn a_quick_check_catches_every_flipped_byte_like_the_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::new(dir.path());
        let body: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8).collect();
        let h = store.put(&body).unwrap();
        let check = quick_check(&body);
        assert_eq!(store.get_checked(&h, Some(&check)).unwrap(), body);
        assert_eq!(store.get_checked(&h, None).unwrap(), body);
        // A check that is not this body's is a corrupt snapshot, not a body.
        assert!(matches!(
            store.get_checked(&h, Some(&quick_check(b"other"))),
            Err(SnapshotError::Corrupt { .. })
        ));
        for at in [0, 1, 2047, 4095] {
            for bit in [0u8, 3, 7] {
                let mut bad = body.clone();
                bad[at] ^= 1 << bit;
                std::fs::write(store.path_of(&h), &bad).unwrap();
                assert!(matches!(
                    store.get_checked(&h, Some(&check)),
                    Err(SnapshotError::Corrupt { .. })
                ));
                assert!(store.get_checked(&h, None).is_err());
            }
        }
    }

    #[test]
    fn staged_bodies_have_no_real_name_until_published_together() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::new(dir.path());
        let bodies: Vec<Vec<u8>> = (0..40).map(|i| format!("body {i}").into_bytes()).collect();
        let mut staged = Vec::new();
        let mut hashes = Vec::new();
        for b in &bodies {
            let (h, s) = store.stage(b).unwrap();
            assert_eq!(h, hash_bytes(b));
            // Staged is not stored: not readable, not found by a second stage.
            assert!(!store.has(&h));
            staged.push(s.expect("a new body is staged"));
            hashes.push(h);
        }
        // The same body twice in one group: both staged, one file after publishing.
        let (again, s) = store.stage(&bodies[0]).unwrap();
        assert_eq!(again, hashes[0]);
        staged.push(s.expect("not stored yet"));
        store.publish(staged).unwrap();
        for (h, b) in hashes.iter().zip(&bodies) {
            assert_eq!(&store.get(h).unwrap(), b);
        }
        let mut want: Vec<String> = hashes
            .iter()
            .map(|h| {
                store
                    .path_of(h)
                    .strip_prefix(dir.path())
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect();
        want.sort();
        assert_eq!(
            files(dir.path()),
            want,
            "only the real names, no temporary files"
        );
        // Stored now: staging it again writes nothing.
        assert!(store.stage(&bodies[3]).unwrap().1.is_none());
    }

    #[test]
    fn a_staged_body_dropped_unpublished_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::new(dir.path());
        let (h, s) = store.stage(b"never committed").unwrap();
        assert_eq!(
            files(dir.path()).len(),
            1,
            "the temporary file exists while staged"
        );
        drop(s);
        assert!(files(dir.path()).is_empty());
        assert!(!store.has(&h));
        // A corrupt stored copy is replaced when the body is staged and published again.
        let h = store.put(b"good").unwrap();
        std::fs::write(store.path_of(&h), b"bad!").unwrap();
        let (again, s) = store.stage(b"good").unwrap();
        assert_eq!(again, h);
        store.publish(s.into_iter().collect()).unwrap();
        assert_eq!(store.get(&h).unwrap(), b"good");
    }
}
