//! The registry's parse cache: the outcome of parsing and validating a registry, kept in one
//! file beside the database and keyed by everything that outcome depends on — every registry
//! file's path (as shown in messages) and bytes, in load order, and the binary that parsed them.
//! A night whose registry did not change reads its files and this file instead of parsing TOML,
//! re-checking every URL and hashing every citation's key again.
//!
//! The cache is never trusted beyond what it can prove: its key (SHA-256) must equal the key of
//! the files read now, its payload carries a checksum (XXH3-128: it guards against a torn or
//! damaged file, not against someone who can write beside the database — they could rewrite
//! the database itself) checked before it is decoded, and its JSON
//! names every field (an unknown or missing one fails the decode). Anything else — no file, a
//! torn or corrupt one, another registry, another build, a file too large to be ours — is a
//! miss: the registry is parsed as if there were no cache, and the cache rewritten. A cache
//! that cannot be written is not an error (a read-only directory only costs the parse).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use sha2::{Digest, Sha256};

use super::load::{LoadError, offering_paths, read};
use super::{Parsed, Parser};

/// First line of a cache file; the number changes when the file's layout does.
const MAGIC: &str = "citewatch-registry-cache 1";

/// The registry in `dir`, validated, and whether it came from the cache at `cache`.
pub fn load_cached(dir: &Path, cache: &Path) -> Result<(Parsed, bool), LoadError> {
    let Some(build) = build_identity() else {
        return super::load(dir).map(|p| (p, false));
    };
    let files = registry_files(dir)?;
    let (key, total) = key_of(build, &files)?;
    if let Some(parsed) = read_cache(cache, &key, total) {
        return Ok((parsed, true));
    }
    // Parsed from the files read again: the cache is written under the key of exactly the
    // bytes parsed, so a file edited between the two reads cannot be cached under its old key.
    let mut h = key_hasher(build);
    let vocab = read(&files[0])?;
    add_file(&mut h, &vocab.path, vocab.text.as_bytes());
    let mut parser = Parser::new(&vocab);
    drop(vocab);
    for p in &files[1..] {
        let file = read(p)?;
        add_file(&mut h, &file.path, file.text.as_bytes());
        parser.add_offering(&file);
    }
    let parsed = parser.finish();
    let key = hex::encode(h.finalize());
    if let Err(why) = write_cache(cache, &key, &parsed) {
        tracing::debug!(cache = %cache.display(), %why, "registry parse cache not written");
    }
    Ok((parsed, false))
}

/// `registry.toml`, then the offering files in load order.
fn registry_files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let mut files = vec![dir.join("registry.toml")];
    files.extend(offering_paths(dir)?);
    Ok(files)
}

/// What identifies the running binary: its version, and its file's size, modification time
/// and inode (a rebuilt binary is a new file), hashed. `None` when the binary cannot be
/// found, and then nothing is cached.
fn build_identity() -> Option<&'static [u8; 32]> {
    static BUILD: OnceLock<Option<[u8; 32]>> = OnceLock::new();
    BUILD
        .get_or_init(|| {
            let exe = std::env::current_exe().ok()?;
            let meta = std::fs::metadata(&exe).ok()?;
            let mut h = Sha256::new();
            h.update(env!("CARGO_PKG_VERSION").as_bytes());
            h.update(meta.len().to_le_bytes());
            let modified = meta
                .modified()
                .ok()?
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?;
            h.update(modified.as_nanos().to_le_bytes());
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                h.update(meta.dev().to_le_bytes());
                h.update(meta.ino().to_le_bytes());
            }
            Some(h.finalize().into())
        })
        .as_ref()
}

fn key_hasher(build: &[u8; 32]) -> Sha256 {
    let mut h = Sha256::new();
    h.update(MAGIC.as_bytes());
    h.update(build);
    h
}

/// One file's part of the key: its path and its bytes, each with its length.
fn add_file(h: &mut Sha256, path: &Path, bytes: &[u8]) {
    let path = path.as_os_str().as_encoded_bytes();
    h.update((path.len() as u64).to_le_bytes());
    h.update(path);
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// The key of the files as they are now (hex), and their total size. Read one at a time.
fn key_of(build: &[u8; 32], files: &[PathBuf]) -> Result<(String, u64), LoadError> {
    let mut h = key_hasher(build);
    let mut total = 0u64;
    for p in files {
        let bytes = std::fs::read(p).map_err(|source| LoadError::Io {
            path: p.clone(),
            source,
        })?;
        total += bytes.len() as u64;
        add_file(&mut h, p, &bytes);
    }
    Ok((hex::encode(h.finalize()), total))
}

/// The cached parse when the cache holds one for exactly this key, intact.
fn read_cache(cache: &Path, key: &str, registry_bytes: u64) -> Option<Parsed> {
    // A cache is a few times the size of the TOML it came from; a much larger file is not ours.
    let len = std::fs::metadata(cache).ok()?.len();
    if len > registry_bytes.saturating_mul(16).saturating_add(1 << 20) {
        tracing::debug!(cache = %cache.display(), len, "registry parse cache too large; ignored");
        return None;
    }
    let bytes = std::fs::read(cache).ok()?;
    let (magic, rest) = split_line(&bytes)?;
    let (cached_key, rest) = split_line(rest)?;
    let (sum, payload) = split_line(rest)?;
    if magic != MAGIC.as_bytes() || cached_key != key.as_bytes() {
        return None;
    }
    if sum != checksum(payload).as_bytes() {
        tracing::warn!(cache = %cache.display(), "registry parse cache corrupt; parsing the registry");
        return None;
    }
    let mut parsed: Parsed = match serde_json::from_slice(payload) {
        Ok(p) => p,
        Err(why) => {
            tracing::warn!(cache = %cache.display(), %why, "registry parse cache unreadable; parsing the registry");
            return None;
        }
    };
    // Each citation's file is its offering's, shared as the parser shares it.
    for o in parsed
        .registry
        .iter_mut()
        .flat_map(|r| r.offerings.iter_mut())
    {
        let file: Arc<Path> = Arc::from(o.file.as_path());
        for c in o
            .cells
            .iter_mut()
            .flat_map(|cell| cell.citations.iter_mut())
        {
            c.file = file.clone();
        }
    }
    Some(parsed)
}

/// The payload's checksum, as written in the file's third line.
fn checksum(payload: &[u8]) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(payload))
}

fn split_line(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = bytes.iter().position(|&b| b == b'\n')?;
    Some((&bytes[..n], &bytes[n + 1..]))
}

/// Writes the cache beside its final name and renames it into place, so a reader sees the old
/// file or the new one, never a mix. Not synced: a file torn by a crash fails its checksum.
fn write_cache(cache: &Path, key: &str, parsed: &Parsed) -> std::io::Result<()> {
    let payload = serde_json::to_vec(parsed)?;
    let sum = checksum(&payload);
    let mut tmp = cache.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(format!("{MAGIC}\n{key}\n{sum}\n").as_bytes())?;
        f.write_all(&payload)?;
        f.flush()?;
        std::fs::rename(&tmp, cache)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    const VOCAB: &str = r#"name = "Cache test"

[[grades]]
id = "yes"
symbol = "●"
label = "Yes"

[[dimensions]]
id = "soc2"
label = "SOC 2"
question = "SOC 2?"
max_age_days = 180

[[dimensions]]
id = "iso"
label = "ISO"
question = "ISO?"
"#;

    fn offering(id: &str, quote: &str) -> String {
        format!(
            r#"id = "{id}"
name = "{id} API"
developer = "D"
platform = "P"
category = "first_party"

[cells.soc2]
grade = "yes"
confidence = "high"
verified = 2026-07-05
summary = "Public report."

[[cells.soc2.sources]]
url = "https://{id}.example/trust#soc2"
quote = "{quote}"
selector = "main"
absent = ["withdrawn"]

[[cells.soc2.sources]]
url = "https://{id}.example/other"
render = "browser"

[cells.iso]
grade = "yes"

[[cells.iso.sources]]
url = "https://{id}.example/iso"
quote = "short"
"#
        )
    }

    /// A registry of two offerings whose parse has warnings (a cell without a date, a short
    /// quote), and a cache path beside it.
    fn registry() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("registry");
        std::fs::create_dir_all(dir.join("offerings")).unwrap();
        std::fs::write(dir.join("registry.toml"), VOCAB).unwrap();
        for id in ["alpha", "beta"] {
            std::fs::write(
                dir.join("offerings").join(format!("{id}.toml")),
                offering(id, "complies with SOC 2 Type II"),
            )
            .unwrap();
        }
        let cache = tmp.path().join("citewatch.db-registry-cache");
        (tmp, dir, cache)
    }

    /// Everything a parse says, for comparison.
    fn shown(p: &Parsed) -> String {
        format!("{p:#?}")
    }

    #[test]
    fn a_registry_read_back_from_the_cache_is_the_registry_parsed() {
        let (_tmp, dir, cache) = registry();
        let fresh = super::super::load(&dir).unwrap();
        assert!(fresh.registry.is_some());
        assert_eq!(fresh.problems.len(), 4, "{:#?}", fresh.problems);

        let (first, hit) = load_cached(&dir, &cache).unwrap();
        assert!(!hit, "nothing was cached yet");
        assert!(cache.is_file());
        let (second, hit) = load_cached(&dir, &cache).unwrap();
        assert!(hit, "the unchanged registry comes from the cache");
        assert_eq!(shown(&first), shown(&fresh));
        assert_eq!(shown(&second), shown(&fresh));

        // Each citation names its offering's file, one shared path per file, as parsed.
        let r = second.registry.as_ref().unwrap();
        for o in &r.offerings {
            let cites: Vec<&crate::registry::Citation> =
                o.cells.iter().flat_map(|c| &c.citations).collect();
            assert_eq!(cites.len(), 3);
            for c in &cites {
                assert_eq!(&*c.file, o.file.as_path());
                assert!(Arc::ptr_eq(&c.file, &cites[0].file));
            }
        }
        let keys = |p: &Parsed| -> Vec<String> {
            p.registry
                .as_ref()
                .unwrap()
                .citations()
                .map(|c| c.key())
                .collect()
        };
        assert_eq!(keys(&second), keys(&fresh));
    }

    #[test]
    fn any_change_to_the_files_misses_the_cache() {
        let (_tmp, dir, cache) = registry();
        load_cached(&dir, &cache).unwrap();
        let alpha = dir.join("offerings/alpha.toml");

        // An edited quote.
        std::fs::write(&alpha, offering("alpha", "complies with SOC 2 Type I")).unwrap();
        let (p, hit) = load_cached(&dir, &cache).unwrap();
        assert!(!hit);
        assert_eq!(shown(&p), shown(&super::super::load(&dir).unwrap()));
        assert!(shown(&p).contains("SOC 2 Type I\""));
        assert!(load_cached(&dir, &cache).unwrap().1);

        // A new offering file; then one removed; then the vocabulary edited.
        std::fs::write(
            dir.join("offerings/gamma.toml"),
            offering("gamma", "complies with SOC 2 Type II"),
        )
        .unwrap();
        let (p, hit) = load_cached(&dir, &cache).unwrap();
        assert!(!hit);
        assert_eq!(p.registry.as_ref().unwrap().offerings.len(), 3);
        std::fs::remove_file(dir.join("offerings/beta.toml")).unwrap();
        let (p, hit) = load_cached(&dir, &cache).unwrap();
        assert!(!hit);
        assert_eq!(p.registry.as_ref().unwrap().offerings.len(), 2);
        std::fs::write(dir.join("registry.toml"), VOCAB.replace("SOC 2?", "SOC2?")).unwrap();
        let (p, hit) = load_cached(&dir, &cache).unwrap();
        assert!(!hit);
        assert_eq!(p.registry.as_ref().unwrap().dimensions[0].question, "SOC2?");

        // A registry with errors is reported as parsed, from the cache too.
        std::fs::write(
            &alpha,
            offering("alpha", "").replace("grade = \"yes\"", "grade = \"maybe\""),
        )
        .unwrap();
        let (p, hit) = load_cached(&dir, &cache).unwrap();
        assert!(!hit);
        assert!(p.has_errors() && p.registry.is_none());
        let (again, hit) = load_cached(&dir, &cache).unwrap();
        assert!(hit);
        assert_eq!(shown(&again), shown(&p));
    }

    #[test]
    fn a_damaged_foreign_or_oversized_cache_is_parsed_past_and_rewritten() {
        let (_tmp, dir, cache) = registry();
        let fresh = shown(&super::super::load(&dir).unwrap());
        load_cached(&dir, &cache).unwrap();
        let good = std::fs::read(&cache).unwrap();
        let payload_at = good
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(2)
            .unwrap()
            .0
            + 1;
        let quote_at = payload_at
            + good[payload_at..]
                .windows(8)
                .position(|w| w == b"complies")
                .unwrap();

        let mut flipped = good.clone();
        flipped[quote_at] = b'C'; // still valid JSON, a different quote: caught by the checksum
        let mut other_key = good.clone();
        other_key[MAGIC.len() + 1] ^= 1;
        let mut other_format = good.clone();
        other_format[MAGIC.len() - 1] = b'9';
        let mut oversized = good.clone();
        oversized.resize(64 << 20, b' ');
        let damaged: Vec<(&str, Vec<u8>)> = vec![
            ("a flipped byte", flipped),
            ("another key", other_key),
            ("another format", other_format),
            ("torn", good[..good.len() / 2].to_vec()),
            ("no header", b"{}".to_vec()),
            ("empty", Vec::new()),
            ("not ours", vec![0xff; 4096]),
            ("oversized", oversized),
        ];
        for (what, bytes) in damaged {
            std::fs::write(&cache, &bytes).unwrap();
            let (p, hit) = load_cached(&dir, &cache).unwrap();
            assert!(!hit, "{what}: must not be used");
            assert_eq!(shown(&p), fresh, "{what}");
            assert_eq!(std::fs::read(&cache).unwrap(), good, "{what}: rewritten");
        }

        // A checksum that matches a payload of the wrong shape: the decode refuses it.
        let text = String::from_utf8(good.clone()).unwrap();
        let mut lines = text.splitn(4, '\n');
        let (magic, key) = (lines.next().unwrap(), lines.next().unwrap());
        let payload = br#"{"registry":null,"problems":[],"extra":1}"#;
        let forged = format!("{magic}\n{key}\n{}\n", checksum(payload));
        let mut forged = forged.into_bytes();
        forged.extend_from_slice(payload);
        std::fs::write(&cache, forged).unwrap();
        let (p, hit) = load_cached(&dir, &cache).unwrap();
        assert!(!hit, "an unknown field fails the decode");
        assert_eq!(shown(&p), fresh);
    }

    #[test]
    fn a_cache_that_cannot_be_written_costs_only_the_parse() {
        let (tmp, dir, _) = registry();
        let nowhere = tmp.path().join("no/such/dir/citewatch.db-registry-cache");
        for _ in 0..2 {
            let (p, hit) = load_cached(&dir, &nowhere).unwrap();
            assert!(!hit);
            assert_eq!(shown(&p), shown(&super::super::load(&dir).unwrap()));
        }
        // A registry that cannot be read is the same error with or without a cache.
        std::fs::remove_file(dir.join("registry.toml")).unwrap();
        let cached = load_cached(&dir, &nowhere).unwrap_err().to_string();
        let plain = super::super::load(&dir).unwrap_err().to_string();
        assert_eq!(cached, plain);
        assert!(cached.contains("registry.toml"), "{cached}");
        // And one that is not UTF-8.
        std::fs::write(dir.join("registry.toml"), b"name = \"\xff\"").unwrap();
        assert_eq!(
            load_cached(&dir, &nowhere).unwrap_err().to_string(),
            super::super::load(&dir).unwrap_err().to_string()
        );
    }
}
