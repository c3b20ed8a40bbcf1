//! citewatch keeps an evidence registry honest.
//!
//! A registry grades *offerings* on *dimensions*; every graded cell cites sources (a URL and
//! usually the sentence quoted as evidence). citewatch fetches each cited source politely,
//! snapshots what it got, decides per citation whether the evidence still stands, and keeps a
//! re-verification queue people work through.
//!
//! The modules follow the data:
//!
//! - [`registry`]: TOML files → validated [`registry::Registry`] (pure; `load` is the I/O edge).
//! - [`plan`]: which URLs to fetch for which citations, grouped by host (pure).
//! - [`fetch`]: polite, guarded HTTP; failures classified once (I/O edge).
//! - [`snapshot`]: raw bodies stored by content hash (I/O edge).
//! - [`extract`]: bytes → readable text (pure).
//! - [`evidence`]: normalisation, quote and term matching (pure).
//! - [`verdict`]: one verdict per citation per run (pure).
//! - [`store`]: SQLite state and the re-verification queue (I/O edge).
//! - [`review`]: what changed between two readings, by sentence and section, and where a
//!   quote went (pure).
//! - [`report`]: `check` output and the review report (pure).
//! - [`publish`]: the registry as a static site with per-cell freshness (pure).
//! - [`pipeline`]: the one place wiring I/O edges to pure stages.
//! - [`worker`]: the scheduled loop around the pipeline (`citewatch daemon`).
//! - [`changes`]: which citations a git ref's registry did not have (for pull requests).
//! - [`config`] and [`cli`]: flags, `citewatch.toml`, commands and exit codes.

pub mod archive;
pub mod changes;
pub mod cli;
pub mod config;
pub mod evidence;
pub mod extract;
pub mod fetch;
pub mod notify;
pub mod pipeline;
pub mod plan;
pub mod publish;
pub mod registry;
pub mod report;
pub mod review;
pub mod snapshot;
pub mod store;
pub mod verdict;
pub mod warc;
pub mod worker;

/// Removes credentials and query strings from every URL in `text`, so logs and reports never
/// carry tokens that a cited URL may hold.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest
        .find("http://")
        .into_iter()
        .chain(rest.find("https://"))
        .min()
    {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ')' | ']'))
            .unwrap_or(tail.len());
        let candidate = &tail[..end];
        match url::Url::parse(candidate) {
            Ok(mut u) => {
                let _ = u.set_username("");
                let _ = u.set_password(None);
                if u.query().is_some() {
                    u.set_query(Some("redacted"));
                }
                u.set_fragment(None);
                out.push_str(u.as_str());
            }
            Err(_) => out.push_str(candidate),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn redact_strips_secrets() {
        assert_eq!(
            super::redact(
                "GET https://user:pw@h.example/p?token=abc#x failed; see http://a.example/ok"
            ),
            "GET https://h.example/p?redacted failed; see http://a.example/ok"
        );
    }
}
