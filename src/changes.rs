//! Which citations a change introduced: the registry at a git ref versus now.
//!
//! An I/O edge (it runs `git`). `check --fetch --changed-since REF` uses it so that a pull
//! request adding or editing a cell proves its evidence live without fetching everything.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::registry::{self, Citation, SourceFile};

/// Why the registry at a ref could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ChangesError {
    /// git is missing or failed.
    #[error("git {args}: {message}")]
    Git {
        /// The git arguments.
        args: String,
        /// Its error output.
        message: String,
    },
    /// The registry directory is not inside the git work tree.
    #[error("{0}: not inside a git work tree")]
    NotInRepo(PathBuf),
}

fn git(dir: &Path, args: &[&str]) -> Result<String, ChangesError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|e| ChangesError::Git {
            args: args.join(" "),
            message: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(ChangesError::Git {
            args: args.join(" "),
            message: String::from_utf8_lossy(&out.stderr)
                .lines()
                .next()
                .unwrap_or("failed")
                .trim()
                .to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Identity keys of the citations in the registry at `git_ref`. A registry that did not exist
/// or did not validate there yields an empty set: everything counts as new.
pub fn citation_keys_at(
    registry_dir: &Path,
    git_ref: &str,
) -> Result<HashSet<String>, ChangesError> {
    let top = PathBuf::from(git(registry_dir, &["rev-parse", "--show-toplevel"])?.trim());
    let dir = registry_dir
        .canonicalize()
        .map_err(|_| ChangesError::NotInRepo(registry_dir.to_path_buf()))?;
    let top = top.canonicalize().unwrap_or(top);
    let rel = dir
        .strip_prefix(&top)
        .map_err(|_| ChangesError::NotInRepo(registry_dir.to_path_buf()))?;
    let commit = format!("{git_ref}^{{commit}}");
    git(&top, &["rev-parse", "--verify", "--quiet", &commit])?;
    let rel_str = |p: &Path| p.to_string_lossy().replace('\\', "/");
    let vocab_path = rel.join("registry.toml");
    let Ok(vocab_text) = git(
        &top,
        &["show", &format!("{git_ref}:{}", rel_str(&vocab_path))],
    ) else {
        return Ok(HashSet::new());
    };
    let offerings_dir = rel.join("offerings");
    let listing = git(
        &top,
        &[
            "ls-tree",
            "-r",
            "--name-only",
            git_ref,
            "--",
            &rel_str(&offerings_dir),
        ],
    )?;
    let mut files = Vec::new();
    for path in listing.lines().filter(|p| p.ends_with(".toml")) {
        let text = git(&top, &["show", &format!("{git_ref}:{path}")])?;
        files.push(SourceFile {
            path: PathBuf::from(path),
            text,
        });
    }
    let vocab = SourceFile {
        path: vocab_path,
        text: vocab_text,
    };
    let parsed = registry::parse(&vocab, &files);
    Ok(parsed
        .registry
        .map(|r| r.citations().map(Citation::key).collect())
        .unwrap_or_default())
}
