//! Configuration: command-line flags merged over `citewatch.toml`, with documented defaults.
//!
//! A flag beats the file; the file beats the default. The file takes the long flag names as
//! keys (`_` for `-`) plus the policy keys `confirm_failures`, `confirm_hours` and
//! `user_agent`; an unknown key is an error naming the file and line, not silently ignored.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::fetch::{FetchConfig, default_user_agent};
use crate::verdict::ConfirmPolicy;

/// `citewatch.toml` as written.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Registry directory.
    pub registry: Option<PathBuf>,
    /// SQLite database file.
    pub db: Option<PathBuf>,
    /// Snapshot directory.
    pub snapshots: Option<PathBuf>,
    /// Lift the address guard.
    pub allow_private: Option<bool>,
    /// Limit runs to one offering.
    pub only: Option<String>,
    /// Requests per second per host.
    pub rate: Option<f64>,
    /// Requests in flight overall.
    pub concurrency: Option<usize>,
    /// Consecutive failed runs before `gone`.
    pub confirm_failures: Option<u32>,
    /// Hours those failures must span.
    pub confirm_hours: Option<u32>,
    /// User-Agent header.
    pub user_agent: Option<String>,
    /// Suppress the summary line.
    pub quiet: Option<bool>,
    /// Seconds a whole run may take.
    pub deadline: Option<u64>,
    /// Base URL of a Wayback-compatible archive for archived copies; empty disables lookups.
    pub archive_endpoint: Option<String>,
    /// Ask the archive to capture sources whose evidence was just verified.
    pub archive_submit: Option<bool>,
    /// Where the published HTML review report lives; notifications link to it (`#item-<id>`).
    pub report_url: Option<String>,
    /// Notification targets (`[[notify]]` tables).
    #[serde(default)]
    pub notify: Vec<toml::Spanned<crate::notify::Target>>,
}

/// The Internet Archive's Wayback Machine, the default `archive_endpoint`.
pub const DEFAULT_ARCHIVE: &str = "https://web.archive.org";

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("{path}:{line}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range.
    #[error("{0}")]
    Value(String),
}

/// Reads a config file. `Ok(None)` when `path` is the implicit default and does not exist.
pub fn read_file(path: &Path, explicit: bool) -> Result<Option<FileConfig>, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ConfigError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    parse_file(path, &text).map(Some)
}

/// Parses config text; relative paths are taken relative to the file's directory.
pub fn parse_file(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
    let mut cfg: FileConfig = toml::from_str(text).map_err(|e| ConfigError::Invalid {
        path: path.to_path_buf(),
        line: e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
            .unwrap_or(1),
        message: e
            .message()
            .lines()
            .next()
            .unwrap_or("invalid TOML")
            .to_string(),
    })?;
    let line_at = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    for t in &cfg.notify {
        t.get_ref()
            .validate()
            .map_err(|message| ConfigError::Invalid {
                path: path.to_path_buf(),
                line: line_at(t.span().start),
                message,
            })?;
    }
    for (key, value) in [
        ("archive_endpoint", cfg.archive_endpoint.as_deref()),
        ("report_url", cfg.report_url.as_deref()),
    ] {
        let Some(v) = value.filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        let ok = url::Url::parse(v)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
        if !ok {
            let at = text.find(key).unwrap_or(0);
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                line: line_at(at),
                message: format!("{key} `{v}` must be an http(s) URL"),
            });
        }
    }
    let base = path.parent().unwrap_or(Path::new(""));
    for p in [&mut cfg.registry, &mut cfg.db, &mut cfg.snapshots]
        .into_iter()
        .flatten()
    {
        if p.is_relative() && !base.as_os_str().is_empty() {
            *p = base.join(&*p);
        }
    }
    Ok(cfg)
}

/// Settings after merging flags, file and defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Registry directory (default `registry`).
    pub registry: PathBuf,
    /// Database file (default `citewatch.db`).
    pub db: PathBuf,
    /// Snapshot directory (default `snapshots`).
    pub snapshots: PathBuf,
    /// One offering only.
    pub only: Option<String>,
    /// Fetch knobs.
    pub fetch: FetchConfig,
    /// Failure confirmation policy.
    pub confirm: ConfirmPolicy,
    /// Suppress the summary line.
    pub quiet: bool,
    /// The whole run's deadline.
    pub deadline: std::time::Duration,
    /// Do not resume an interrupted run of the same day.
    pub refetch: bool,
    /// Notification targets.
    pub notify: Vec<crate::notify::Target>,
    /// Where the published review report lives.
    pub report_url: Option<String>,
    /// Wayback-compatible archive base URL (None: lookups disabled).
    pub archive_endpoint: Option<String>,
    /// Ask the archive to capture verified sources.
    pub archive_submit: bool,
}

/// Values given on the command line (None = not given).
#[derive(Debug, Clone, Default)]
pub struct FlagValues {
    /// `--registry`.
    pub registry: Option<PathBuf>,
    /// `--db`.
    pub db: Option<PathBuf>,
    /// `--snapshots`.
    pub snapshots: Option<PathBuf>,
    /// `--allow-private` (a flag can only switch it on).
    pub allow_private: bool,
    /// `--only`.
    pub only: Option<String>,
    /// `--rate`.
    pub rate: Option<f64>,
    /// `--concurrency`.
    pub concurrency: Option<usize>,
    /// `--quiet`.
    pub quiet: bool,
    /// `--deadline` (seconds).
    pub deadline: Option<u64>,
    /// `--refetch`.
    pub refetch: bool,
}

/// Merges flags over the file over defaults and checks ranges.
pub fn resolve(flags: FlagValues, file: FileConfig) -> Result<Settings, ConfigError> {
    let rate = flags.rate.or(file.rate).unwrap_or(1.0);
    if !(rate.is_finite() && rate > 0.0 && rate <= 1000.0) {
        return Err(ConfigError::Value(format!(
            "rate must be a number of requests per second between 0 and 1000, got {rate}"
        )));
    }
    let concurrency = flags.concurrency.or(file.concurrency).unwrap_or(8);
    if concurrency == 0 || concurrency > 1024 {
        return Err(ConfigError::Value(format!(
            "concurrency must be between 1 and 1024, got {concurrency}"
        )));
    }
    let confirm = ConfirmPolicy {
        failures: file.confirm_failures.unwrap_or(3),
        hours: file.confirm_hours.unwrap_or(48),
    };
    if confirm.failures == 0 {
        return Err(ConfigError::Value(
            "confirm_failures must be at least 1".into(),
        ));
    }
    let user_agent = file.user_agent.unwrap_or_else(default_user_agent);
    if user_agent.trim().is_empty() || reqwest::header::HeaderValue::from_str(&user_agent).is_err()
    {
        return Err(ConfigError::Value(format!(
            "user_agent `{user_agent}` is not a valid header value"
        )));
    }
    Ok(Settings {
        registry: flags
            .registry
            .or(file.registry)
            .unwrap_or_else(|| "registry".into()),
        db: flags
            .db
            .or(file.db)
            .unwrap_or_else(|| "citewatch.db".into()),
        snapshots: flags
            .snapshots
            .or(file.snapshots)
            .unwrap_or_else(|| "snapshots".into()),
        only: flags.only.or(file.only),
        fetch: FetchConfig {
            rate,
            concurrency,
            addresses: if crate::fetch::guard::loopback_only_from_env() {
                crate::fetch::guard::AddressPolicy::LoopbackOnly
            } else if flags.allow_private || file.allow_private.unwrap_or(false) {
                crate::fetch::guard::AddressPolicy::Any
            } else {
                crate::fetch::guard::AddressPolicy::PublicOnly
            },
            user_agent,
            ..FetchConfig::default()
        },
        confirm,
        quiet: flags.quiet || file.quiet.unwrap_or(false),
        refetch: flags.refetch,
        notify: file
            .notify
            .into_iter()
            .map(toml::Spanned::into_inner)
            .collect(),
        report_url: file.report_url.filter(|u| !u.trim().is_empty()),
        archive_endpoint: match file.archive_endpoint {
            Some(e) if e.trim().is_empty() => None,
            Some(e) => Some(e),
            None => Some(DEFAULT_ARCHIVE.to_string()),
        },
        archive_submit: file.archive_submit.unwrap_or(false),
        deadline: match flags.deadline.or(file.deadline) {
            Some(0) => {
                return Err(ConfigError::Value(
                    "deadline must be at least one second".into(),
                ));
            }
            Some(secs) => std::time::Duration::from_secs(secs),
            None => crate::pipeline::DEFAULT_RUN_DEADLINE,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_file_beats_defaults() {
        let file = parse_file(Path::new("citewatch.toml"), "rate = 2.5\nconcurrency = 3\nconfirm_failures = 5\nallow_private = true\nuser_agent = \"citewatch/9 (+https://example.org/contact)\"\n").unwrap();
        let s = resolve(
            FlagValues {
                rate: Some(4.0),
                ..Default::default()
            },
            file,
        )
        .unwrap();
        assert_eq!(s.fetch.rate, 4.0);
        assert_eq!(s.fetch.concurrency, 3);
        assert_eq!(s.confirm.failures, 5);
        assert_eq!(s.confirm.hours, 48);
        assert_eq!(s.fetch.addresses, crate::fetch::guard::AddressPolicy::Any);
        assert_eq!(
            s.fetch.user_agent,
            "citewatch/9 (+https://example.org/contact)"
        );
        assert_eq!(s.registry, PathBuf::from("registry"));
        assert_eq!(s.db, PathBuf::from("citewatch.db"));
    }

    #[test]
    fn unknown_key_names_file_and_line() {
        let e = parse_file(Path::new("c.toml"), "rate = 1\nrat = 2\n").unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("c.toml:2: "), "{msg}");
    }

    #[test]
    fn notify_targets_and_archive_keys_are_read_and_checked() {
        let text = "rate = 1\narchive_endpoint = \"\"\nreport_url = \"https://ci.example/report.html\"\n\n[[notify]]\nkind = \"webhook\"\nurl = \"https://hooks.example.org/cw\"\nsecret_env = \"CW_SECRET\"\n\n[[notify]]\nkind = \"github\"\nrepo = \"owner/name\"\ntoken_env = \"GITHUB_TOKEN\"\n";
        let f = parse_file(Path::new("c.toml"), text).unwrap();
        let s = resolve(FlagValues::default(), f).unwrap();
        assert_eq!(s.notify.len(), 2);
        assert_eq!(s.notify[1].kind, crate::notify::Kind::Github);
        assert_eq!(s.archive_endpoint, None, "empty disables lookups");
        assert_eq!(
            s.report_url.as_deref(),
            Some("https://ci.example/report.html")
        );
        let defaults = resolve(FlagValues::default(), FileConfig::default()).unwrap();
        assert_eq!(defaults.archive_endpoint.as_deref(), Some(DEFAULT_ARCHIVE));
        assert!(!defaults.archive_submit);

        // A table missing what its kind needs is named by file and line.
        let bad = "rate = 1\n\n[[notify]]\nkind = \"github\"\nrepo = \"owner/name\"\n";
        let e = parse_file(Path::new("c.toml"), bad)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("c.toml:3: ") && e.contains("token_env"),
            "{e}"
        );
        let bad = "[[notify]]\nkind = \"pager\"\nurl = \"https://x.example/\"\n";
        let e = parse_file(Path::new("c.toml"), bad)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c.toml:2: "), "{e}");
        let bad = "archive_endpoint = \"archive.org\"\n";
        let e = parse_file(Path::new("c.toml"), bad)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("c.toml:1: ") && e.contains("archive_endpoint"),
            "{e}"
        );
    }

    #[test]
    fn relative_paths_follow_the_file() {
        let f = parse_file(
            Path::new("conf/citewatch.toml"),
            "db = \"state.db\"\nregistry = \"/abs/reg\"\n",
        )
        .unwrap();
        assert_eq!(f.db, Some(PathBuf::from("conf/state.db")));
        assert_eq!(f.registry, Some(PathBuf::from("/abs/reg")));
    }

    #[test]
    fn ranges_are_checked() {
        assert!(
            resolve(
                FlagValues {
                    rate: Some(0.0),
                    ..Default::default()
                },
                FileConfig::default()
            )
            .is_err()
        );
        assert!(
            resolve(
                FlagValues {
                    concurrency: Some(0),
                    ..Default::default()
                },
                FileConfig::default()
            )
            .is_err()
        );
        let defaults = resolve(FlagValues::default(), FileConfig::default()).unwrap();
        assert_eq!(defaults.fetch.rate, 1.0);
        assert!(defaults.fetch.user_agent.starts_with("citewatch/"));
        assert_eq!(
            defaults.fetch.addresses,
            crate::fetch::guard::AddressPolicy::PublicOnly
        );
    }
}
