//! The registry's parse cache: the outcome of parsing and validating a registry, kept in one
//! file beside the database and keyed by everything that outcome depends on — every registry
//! file's path (as shown in messages) and bytes, in load order, and the binary that parsed them.
//! A night whose registry did not change reads its files and this file instead of parsing TOML,
//! re-checking every URL and hashing every citation's key again.
//!
//! The file is lines: a format line, the key, then one JSON value per line (the vocabularies,
//! each offering, each problem), then a checksum of those lines. It is read a line at a time,
//! so a large registry is never held twice.
//!
//! The cache is never trusted beyond what it can prove: its key (SHA-256) must equal the key of
//! the files read now, its lines' checksum (XXH3-128: it guards against a torn or damaged
//! file, not against someone who can write beside the database — they could rewrite the
//! database itself) must match before anything decoded from them is used, and its JSON
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
const MAGIC: &str = "citewatch-registry-cache 2";

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

/// The first lines of a cache after its key: the vocabularies (none when the parse found
/// errors) and how many offering and problem lines follow.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Head {
    registry: Option<Vocab>,
    offerings: usize,
    problems: usize,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Vocab {
    name: String,
    grades: Vec<super::Grade>,
    dimensions: Vec<super::Dimension>,
}

/// The cached parse when the cache holds one for exactly this key, intact. Read a line at a
/// time (one offering per line), so a large registry is never held twice — as the cache's
/// text and as the registry — and checked against the checksum on its last line before
/// anything read is used.
fn read_cache(cache: &Path, key: &str, registry_bytes: u64) -> Option<Parsed> {
    // A cache is a few times the size of the TOML it came from; a much larger file is not ours.
    let len = std::fs::metadata(cache).ok()?.len();
    if len > registry_bytes.saturating_mul(16).saturating_add(1 << 20) {
        tracing::debug!(cache = %cache.display(), len, "registry parse cache too large; ignored");
        return None;
    }
    let mut lines = Lines::new(std::fs::File::open(cache).ok()?);
    if lines.next_line()? != MAGIC.as_bytes() || lines.next_line()? != key.as_bytes() {
        return None;
    }
    lines.hashing = true;
    let decoded = (|| -> Result<Parsed, String> {
        let head: Head = lines.decode()?;
        let mut offerings = Vec::with_capacity(head.offerings.min(1 << 20));
        for _ in 0..head.offerings {
            let mut o: super::Offering = lines.decode()?;
            // Each citation's file is its offering's, shared as the parser shares it; and the
            // vectors exactly sized as the parser sizes them (decoded, they grow by doubling
            // from four: a cell's one citation would hold room for four, 60 MB at 100,000).
            let file: Arc<Path> = Arc::from(o.file.as_path());
            o.cells.shrink_to_fit();
            for cell in &mut o.cells {
                cell.citations.shrink_to_fit();
                for c in &mut cell.citations {
                    c.file = file.clone();
                    c.absent.shrink_to_fit();
                }
            }
            offerings.push(o);
        }
        let mut problems = Vec::with_capacity(head.problems.min(1 << 20));
        for _ in 0..head.problems {
            problems.push(lines.decode()?);
        }
        let registry = head.registry.map(|v| super::Registry {
            name: v.name,
            grades: v.grades,
            dimensions: v.dimensions,
            offerings,
        });
        Ok(Parsed { registry, problems })
    })();
    lines.hashing = false;
    let sum = lines.next_line().map(<[u8]>::to_vec);
    let intact = sum.as_deref() == Some(lines.checksum().as_bytes()) && lines.at_end();
    match decoded {
        Ok(parsed) if intact => Some(parsed),
        Ok(_) => {
            tracing::warn!(cache = %cache.display(), "registry parse cache corrupt; parsing the registry");
            None
        }
        Err(why) => {
            tracing::warn!(cache = %cache.display(), %why, "registry parse cache unreadable; parsing the registry");
            None
        }
    }
}

/// A cache file's lines, read through one buffer, the payload's hashed as they are read.
struct Lines {
    file: std::io::BufReader<std::fs::File>,
    line: Vec<u8>,
    hasher: xxhash_rust::xxh3::Xxh3,
    hashing: bool,
}

impl Lines {
    fn new(file: std::fs::File) -> Lines {
        Lines {
            file: std::io::BufReader::with_capacity(64 * 1024, file),
            line: Vec::new(),
            hasher: xxhash_rust::xxh3::Xxh3::new(),
            hashing: false,
        }
    }

    /// The next line without its newline; `None` at the end, on a read error, or for a last
    /// line that has no newline (a torn file).
    fn next_line(&mut self) -> Option<&[u8]> {
        use std::io::BufRead as _;
        self.line.clear();
        let n = self.file.read_until(b'\n', &mut self.line).ok()?;
        if n == 0 || self.line.last() != Some(&b'\n') {
            return None;
        }
        if self.hashing {
            self.hasher.update(&self.line);
        }
        self.line.pop();
        Some(&self.line)
    }

    /// The next line decoded as one JSON value.
    fn decode<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, String> {
        let line = self.next_line().ok_or("ends early")?;
        serde_json::from_slice(line).map_err(|e| e.to_string())
    }

    fn checksum(&self) -> String {
        format!("{:032x}", self.hasher.digest128())
    }

    fn at_end(&mut self) -> bool {
        use std::io::BufRead as _;
        self.file.fill_buf().is_ok_and(|b| b.is_empty())
    }
}

/// Writes the cache beside its final name and renames it into place, so a reader sees the old
/// file or the new one, never a mix. Written a line at a time (one offering per line); the
/// last line is the checksum of the lines between the key and it. Not synced: a file torn by
/// a crash fails its checksum.
fn write_cache(cache: &Path, key: &str, parsed: &Parsed) -> std::io::Result<()> {
    let mut tmp = cache.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let written = (|| {
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::fs::File::create(&tmp)?);
        out.write_all(format!("{MAGIC}\n{key}\n").as_bytes())?;
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        let mut line = Vec::new();
        let mut put = |value: &dyn erased::Value, out: &mut std::io::BufWriter<std::fs::File>| {
            line.clear();
            value.write_json(&mut line)?;
            line.push(b'\n');
            hasher.update(&line);
            out.write_all(&line)
        };
        let offerings = parsed
            .registry
            .as_ref()
            .map_or(&[][..], |r| &r.offerings[..]);
        let head = Head {
            registry: parsed.registry.as_ref().map(|r| Vocab {
                name: r.name.clone(),
                grades: r.grades.clone(),
                dimensions: r.dimensions.clone(),
            }),
            offerings: offerings.len(),
            problems: parsed.problems.len(),
        };
        put(&head, &mut out)?;
        for o in offerings {
            put(o, &mut out)?;
        }
        for p in &parsed.problems {
            put(p, &mut out)?;
        }
        out.write_all(format!("{:032x}\n", hasher.digest128()).as_bytes())?;
        out.flush()?;
        drop(out);
        std::fs::rename(&tmp, cache)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// One line's value, whatever its type.
mod erased {
    pub trait Value {
        fn write_json(&self, out: &mut Vec<u8>) -> std::io::Result<()>;
    }
    impl<T: serde::Serialize> Value for T {
        fn write_json(&self, out: &mut Vec<u8>) -> std::io::Result<()> {
            serde_json::to_writer(out, self).map_err(std::io::Error::from)
        }
    }
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
        let text = String::from_utf8(good.clone()).unwrap();
        let lines: Vec<&str> = text.split_terminator('\n').collect();
        // Format, key, head, two offerings, four problems, checksum.
        assert_eq!(lines.len(), 2 + 1 + 2 + 4 + 1, "{text}");
        let quote_at = text.find("complies").unwrap();

        let mut flipped = good.clone();
        flipped[quote_at] = b'C'; // still valid JSON, a different quote: caught by the checksum
        let mut other_key = good.clone();
        other_key[MAGIC.len() + 1] ^= 1;
        let mut other_format = good.clone();
        other_format[MAGIC.len() - 1] = b'9';
        let mut trailing = good.clone();
        trailing.extend_from_slice(b"{}\n");
        let without_offering: String = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 3)
            .map(|(_, l)| format!("{l}\n"))
            .collect();
        let mut oversized = good.clone();
        oversized.resize(64 << 20, b' ');
        let damaged: Vec<(&str, Vec<u8>)> = vec![
            ("a flipped byte", flipped),
            ("another key", other_key),
            ("another format", other_format),
            ("bytes after the checksum", trailing),
            ("an offering line left out", without_offering.into_bytes()),
            ("torn", good[..good.len() / 2].to_vec()),
            ("torn in the checksum", good[..good.len() - 2].to_vec()),
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

        // A cache of this key whose one payload line is `head`, with a matching checksum.
        let forge = |head: &str| {
            let forged = format!(
                "{}\n{}\n{head}\n{:032x}\n",
                lines[0],
                lines[1],
                xxhash_rust::xxh3::xxh3_128(format!("{head}\n").as_bytes())
            );
            std::fs::write(&cache, forged).unwrap();
            load_cached(&dir, &cache).unwrap()
        };
        // Lines whose checksum matches but whose value has the wrong shape: the decode
        // refuses them.
        let (p, hit) = forge(r#"{"registry":null,"offerings":0,"problems":0,"extra":1}"#);
        assert!(!hit, "an unknown field fails the decode");
        assert_eq!(shown(&p), fresh);
        // And the same lines without the unknown field are read (the forgery is well formed):
        // what makes a cache trusted is its key and checksum, not where it came from.
        let (p, hit) = forge(r#"{"registry":null,"offerings":0,"problems":0}"#);
        assert!(hit);
        assert!(p.registry.is_none() && p.problems.is_empty());
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
