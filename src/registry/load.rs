//! The I/O edge of the registry: reads `registry.toml` and `offerings/*.toml` from disk.

use std::io;
use std::path::{Path, PathBuf};

use super::{Parsed, Parser, SourceFile};

/// A registry directory that cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// What was being read.
        path: PathBuf,
        /// Why it failed.
        source: io::Error,
    },
    /// A registry file is not UTF-8.
    #[error("{path}: not valid UTF-8 text")]
    NotUtf8 {
        /// The file.
        path: PathBuf,
    },
}

/// Reads one registry file as UTF-8 text.
pub fn read(path: &Path) -> Result<SourceFile, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|_| LoadError::NotUtf8 {
        path: path.to_path_buf(),
    })?;
    Ok(SourceFile {
        path: path.to_path_buf(),
        text,
    })
}

/// Reads and validates the registry in `dir`: `registry.toml`, then every
/// `offerings/*.toml` in name order, one file in memory at a time.
pub fn load(dir: &Path) -> Result<Parsed, LoadError> {
    load_with(dir, None)
}

/// Like [`load`], with one offering file's text replaced by `replacement` (path, text): lints
/// an edit before it is written.
pub fn load_with(dir: &Path, replacement: Option<(&Path, &str)>) -> Result<Parsed, LoadError> {
    let vocab = read(&dir.join("registry.toml"))?;
    let mut parser = Parser::new(&vocab);
    for p in offering_paths(dir)? {
        match replacement {
            Some((path, text)) if path == p => parser.add_offering(&SourceFile {
                path: p.clone(),
                text: text.to_string(),
            }),
            _ => parser.add_offering(&read(&p)?),
        }
    }
    Ok(parser.finish())
}

/// The offering files of the registry in `dir`: every `offerings/*.toml`, in name order.
pub(super) fn offering_paths(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let off_dir = dir.join("offerings");
    let entries = std::fs::read_dir(&off_dir).map_err(|source| LoadError::Io {
        path: off_dir.clone(),
        source,
    })?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| LoadError::Io {
            path: off_dir.clone(),
            source,
        })?;
        let p = entry.path();
        if p.extension().is_some_and(|e| e == "toml") && p.is_file() {
            paths.push(p);
        }
    }
    paths.sort();
    Ok(paths)
}
