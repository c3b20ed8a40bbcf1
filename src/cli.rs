//! The command line: parses flags, calls one stage, chooses the exit code.
//!
//! Every error that reaches a user is one line on stderr naming the file, line or URL at
//! fault, with the exit code of [`Exit`]; nothing here panics on bad input.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{self, FlagValues, Settings};
use crate::pipeline::{self, Clock, RunOptions};
use crate::registry::{self, Registry, Severity};
use crate::snapshot::SnapshotStore;
use crate::store::Store;

/// Exit codes of every command (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Fine.
    Ok = 0,
    /// `check` found stale evidence (an open queue item).
    Stale = 1,
    /// Usage, configuration or registry error.
    Usage = 2,
    /// The run itself failed (database or disk unusable).
    Failed = 3,
    /// Another run holds the lock.
    Locked = 75,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// citewatch keeps an evidence registry honest: it fetches every cited source politely,
/// checks that quoted evidence still stands, and keeps a re-verification queue.
#[derive(Debug, Parser)]
#[command(name = "citewatch", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct GlobalArgs {
    /// Registry directory [default: registry]
    #[arg(long, global = true, value_name = "DIR")]
    registry: Option<PathBuf>,
    /// SQLite database file [default: citewatch.db]
    #[arg(long, global = true, value_name = "PATH")]
    db: Option<PathBuf>,
    /// Snapshot directory [default: snapshots]
    #[arg(long, global = true, value_name = "DIR")]
    snapshots: Option<PathBuf>,
    /// Configuration file [default: ./citewatch.toml when present]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print nothing but errors and requested output
    #[arg(long, short, global = true)]
    quiet: bool,
}

#[derive(Debug, Args, Default)]
struct FetchArgs {
    /// Allow requests to loopback, private and other non-public addresses
    #[arg(long)]
    allow_private: bool,
    /// Only this offering's citations
    #[arg(long, value_name = "OFFERING_ID")]
    only: Option<String>,
    /// Requests per second per host [default: 1]
    #[arg(long, value_name = "PER_SECOND_PER_HOST")]
    rate: Option<f64>,
    /// Requests in flight across all hosts [default: 8]
    #[arg(long, value_name = "N")]
    concurrency: Option<usize>,
    /// Seconds the whole run may take; unfinished URLs keep their previous verdicts
    /// [default: 14400]
    #[arg(long, value_name = "SECONDS")]
    deadline: Option<u64>,
    /// Fetch everything again even if an interrupted run of today already fetched some URLs
    #[arg(long)]
    refetch: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate the registry; prints `file:line: message` per problem
    Lint,
    /// Fetch every cited source once, record snapshots and verdicts, update the queue
    Run(FetchArgs),
    /// CI gate over the recorded state: exit 1 when an open queue item exists
    Check(CheckArgs),
    /// Review report of open queue items and changed sources
    Report(ReportArgs),
    /// Work the re-verification queue
    #[command(subcommand)]
    Queue(QueueCommand),
    /// Write the registry as a static site with per-cell freshness: index.html, compare
    /// pages, one page per offering, data.json and its JSON Schema
    Publish(PublishArgs),
    /// Long-running scheduled worker: runs on a cron schedule until SIGTERM or SIGINT
    Daemon(DaemonArgs),
    /// Deliver pending notifications to the `[[notify]]` targets now (`run` and `daemon` also
    /// deliver after each run)
    Notify,
    /// Export the recorded fetches
    #[command(subcommand)]
    Export(ExportCommand),
}

#[derive(Debug, Subcommand)]
enum ExportCommand {
    /// The recorded fetches as WARC 1.1 (gzip per record): request and response records,
    /// redirect hops, 304s as revisits, browser renders with their DOM as a conversion
    Warc(WarcArgs),
}

#[derive(Debug, Args)]
struct WarcArgs {
    /// The file to write (e.g. evidence.warc.gz)
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Only fetches on or after this date (YYYY-MM-DD) or time (RFC 3339)
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// Only the sources cited by this offering
    #[arg(long, value_name = "OFFERING_ID")]
    only: Option<String>,
}

#[derive(Debug, Args)]
struct DaemonArgs {
    /// Cron expression: minute hour day-of-month month day-of-week (a leading seconds field
    /// is allowed), e.g. "0 3 * * *" for 03:00 every day
    #[arg(long, value_name = "CRON EXPR")]
    schedule: String,
    /// Time zone the schedule is read in
    #[arg(long, value_enum, default_value_t = TimeZone::Utc)]
    timezone: TimeZone,
    #[command(flatten)]
    fetch_args: FetchArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TimeZone {
    Utc,
    Local,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// Run a fetch first
    #[arg(long)]
    fetch: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    format: CheckFormat,
    /// Fail only on open items with these reasons (comma-separated, e.g. missing,gone;
    /// `incomplete` for a last run that ended abnormally)
    #[arg(long, value_name = "REASONS", value_delimiter = ',')]
    fail_on: Vec<String>,
    /// With --fetch: fetch only citations added or edited since this git ref (for pull
    /// requests)
    #[arg(long, value_name = "REF", requires = "fetch")]
    changed_since: Option<String>,
    #[command(flatten)]
    fetch_args: FetchArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CheckFormat {
    Text,
    Json,
    Junit,
    Github,
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
    format: ReportFormat,
    /// Write to this file instead of stdout
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct PublishArgs {
    /// Directory to write the site into (created if missing)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// A compare page for these two offering ids (repeatable) [default: every pair sharing a
    /// developer or a platform]
    #[arg(long, value_name = "A,B")]
    compare: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ReportFormat {
    Md,
    Html,
    Json,
}

#[derive(Debug, Subcommand)]
enum QueueCommand {
    /// List queue items (open ones unless --status says otherwise)
    List {
        /// open, resolved, dismissed or all
        #[arg(long, default_value = "open")]
        status: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Show one item
    Show {
        /// Item id
        id: i64,
    },
    /// Mark an item resolved: the evidence was re-checked; the citation's baseline moves to the
    /// current snapshot
    Resolve(CloseArgs),
    /// Dismiss an item as not a real problem (baseline unchanged)
    Dismiss(CloseArgs),
    /// Apply the obvious fix to the registry file and resolve the item: a drifted quote
    /// becomes the page's wording, a moved URL its target; the cell's `verified` becomes today
    Accept(AcceptArgs),
}

#[derive(Debug, Args)]
struct AcceptArgs {
    /// Item id
    id: i64,
    /// Why [default: says what was applied]
    #[arg(long)]
    note: Option<String>,
    /// Who [default: $USER]
    #[arg(long)]
    author: Option<String>,
    /// Print the edit without writing it or resolving the item
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Args)]
struct CloseArgs {
    /// Item id
    id: i64,
    /// Why (required)
    #[arg(long)]
    note: String,
    /// Who [default: $USER]
    #[arg(long)]
    author: Option<String>,
}

/// A failure that ends the command with an exit code and a one-line message.
struct Fail(Exit, String);

impl<E: std::fmt::Display> From<(Exit, E)> for Fail {
    fn from((code, e): (Exit, E)) -> Self {
        Fail(code, e.to_string())
    }
}

/// Entry point used by `main`.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                Exit::Usage
            } else {
                Exit::Ok
            };
            let _ = e.print();
            return code.into();
        }
    };
    init_tracing();
    // One thread runs every task: a run's hosts are polled together by one future anyway, and
    // what costs CPU (text extraction, snapshot files, SQLite) runs on threads of its own.
    // Without worker threads to hand wake-ups to, a re-run where every page answers 304
    // (2,000 URLs, 40 hosts, median of five alternating rounds) took 0.72 CPU-s instead of
    // 0.85; a first run was no slower (3.59 against 3.67 CPU-s, wall 2.99 against 3.20 s).
    let rt = match tokio::runtime::Builder::new_current_thread()
        // Blocking work (snapshot files, text extraction, syncs) queues for at most 32
        // threads rather than tokio's 512: with a hundred hosts at once the pool otherwise
        // grew past 250 threads, each with its own stack and malloc arena, for no throughput.
        .max_blocking_threads(32)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("citewatch: cannot start runtime: {e}");
            return Exit::Failed.into();
        }
    };
    match rt.block_on(dispatch(cli, pipeline::system_clock())) {
        Ok(code) => code.into(),
        Err(Fail(code, msg)) => {
            eprintln!("citewatch: {msg}");
            code.into()
        }
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

fn settings(global: &GlobalArgs, fetch: Option<&FetchArgs>) -> Result<Settings, Fail> {
    let (path, explicit) = match &global.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from("citewatch.toml"), false),
    };
    let file = config::read_file(&path, explicit)
        .map_err(|e| Fail(Exit::Usage, e.to_string()))?
        .unwrap_or_default();
    let default_fetch = FetchArgs::default();
    let f = fetch.unwrap_or(&default_fetch);
    config::resolve(
        FlagValues {
            registry: global.registry.clone(),
            db: global.db.clone(),
            snapshots: global.snapshots.clone(),
            allow_private: f.allow_private,
            only: f.only.clone(),
            rate: f.rate,
            concurrency: f.concurrency,
            quiet: global.quiet,
            deadline: f.deadline,
            refetch: f.refetch,
        },
        file,
    )
    .map_err(|e| Fail(Exit::Usage, e.to_string()))
}

/// Loads the registry, printing warnings; errors end the command with exit 2.
fn load_registry(s: &Settings, quiet: bool) -> Result<Registry, Fail> {
    let (parsed, cached) = registry::load_cached(&s.registry, &registry_cache_path(&s.db))
        .map_err(|e| Fail(Exit::Usage, format!("registry: {e}")))?;
    tracing::debug!(cached, "registry loaded");
    for p in &parsed.problems {
        if p.severity == Severity::Error || !quiet {
            eprintln!("{p}");
        }
    }
    let errors = parsed
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    match parsed.registry {
        Some(r) => {
            if let Some(only) = &s.only
                && r.offering(only).is_none()
            {
                return Err(Fail(
                    Exit::Usage,
                    format!("--only: no offering `{only}` in {}", s.registry.display()),
                ));
            }
            Ok(r)
        }
        None => Err(Fail(
            Exit::Usage,
            format!(
                "{}: {errors} error{} in the registry",
                s.registry.display(),
                if errors == 1 { "" } else { "s" }
            ),
        )),
    }
}

/// Where the registry's parse cache lives: beside the database, named like SQLite's own
/// companions (`citewatch.db-wal`), so what ignores those ignores it.
fn registry_cache_path(db: &std::path::Path) -> std::path::PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push("-registry-cache");
    std::path::PathBuf::from(p)
}

async fn open_store(s: &Settings) -> Result<Store, Fail> {
    if let Some(parent) = s.db.parent()
        && !parent.as_os_str().is_empty()
        && !parent.exists()
    {
        return Err(Fail(
            Exit::Failed,
            format!(
                "database {}: directory {} does not exist",
                s.db.display(),
                parent.display()
            ),
        ));
    }
    Store::open(&s.db)
        .await
        .map_err(|e| Fail(Exit::Failed, e.to_string()))
}

async fn dispatch(cli: Cli, clock: Clock) -> Result<Exit, Fail> {
    match &cli.command {
        Command::Lint => {
            let s = settings(&cli.global, None)?;
            let parsed = registry::load(&s.registry)
                .map_err(|e| Fail(Exit::Usage, format!("registry: {e}")))?;
            for p in &parsed.problems {
                println!("{p}");
            }
            let errors = parsed
                .problems
                .iter()
                .filter(|p| p.severity == Severity::Error)
                .count();
            let warnings = parsed.problems.len() - errors;
            if let Some(r) = &parsed.registry
                && !s.quiet
            {
                let citations = r.citations().count();
                let cells: usize = r.offerings.iter().map(|o| o.cells.len()).sum();
                eprintln!(
                    "{}: ok: {} offerings, {} dimensions, {} cells, {} citations; {} warning{}",
                    s.registry.display(),
                    r.offerings.len(),
                    r.dimensions.len(),
                    cells,
                    citations,
                    warnings,
                    if warnings == 1 { "" } else { "s" }
                );
            }
            Ok(if errors > 0 { Exit::Usage } else { Exit::Ok })
        }
        Command::Run(args) => {
            let s = settings(&cli.global, Some(args))?;
            let registry = load_registry(&s, s.quiet)?;
            let _lock = lock_run(&s)?;
            let store = open_store(&s).await?;
            run_once(&s, &registry, &store, clock).await?;
            store.close().await;
            Ok(Exit::Ok)
        }
        Command::Check(args) => {
            let s = settings(&cli.global, Some(&args.fetch_args))?;
            // The text format prints counts and open items only.
            let depth = match args.format {
                CheckFormat::Text => pipeline::Depth::Verdicts,
                CheckFormat::Json | CheckFormat::Junit | CheckFormat::Github => {
                    pipeline::Depth::Full
                }
            };
            let _lock = if args.fetch {
                Some(lock_run(&s)?)
            } else {
                None
            };
            // Without a fetch, the verdicts are read while the registry parses.
            let (registry, store, early) = if args.fetch {
                let registry = load_registry(&s, s.quiet)?;
                let store = open_store(&s).await?;
                (registry, store, None)
            } else {
                registry_and_verdicts(&s, depth.columns()).await?
            };
            if args.fetch {
                let keys = match &args.changed_since {
                    None => None,
                    Some(git_ref) => {
                        let before = crate::changes::citation_keys_at(&s.registry, git_ref)
                            .map_err(|e| Fail(Exit::Usage, format!("--changed-since: {e}")))?;
                        let changed: std::collections::HashSet<String> = registry
                            .citations()
                            .map(|c| c.key())
                            .filter(|k| !before.contains(k))
                            .collect();
                        if !s.quiet {
                            eprintln!(
                                "--changed-since {git_ref}: {} citation{} added or edited",
                                changed.len(),
                                if changed.len() == 1 { "" } else { "s" }
                            );
                        }
                        Some(changed)
                    }
                };
                run_once_scoped(&s, &registry, &store, clock.clone(), keys).await?;
            }
            let now = clock();
            pipeline::sync_expiry(&registry, &store, &Default::default(), now)
                .await
                .map_err(|e| Fail(Exit::Failed, e.to_string()))?;
            let snaps = SnapshotStore::new(&s.snapshots);
            // With --fetch our own run just ended; otherwise a run still marked running is live
            // only if its process holds the lock.
            let live = !args.fetch && run_lock_held(&s);
            let mut state = match early {
                Some(latest) => {
                    pipeline::load_state_from(&registry, &store, &snaps, now, depth, live, latest)
                        .await
                }
                None => pipeline::load_state(&registry, &store, &snaps, now, depth, live).await,
            }
            .map_err(|e| Fail(Exit::Failed, e.to_string()))?;
            for t in &s.notify {
                let (undelivered, error) = store
                    .undelivered(&t.id())
                    .await
                    .map_err(|e| Fail(Exit::Failed, e.to_string()))?;
                if undelivered > 0 {
                    state.notifications.push(crate::report::Undelivered {
                        target: t.name(),
                        undelivered,
                        error,
                    });
                }
            }
            let out = match args.format {
                CheckFormat::Text => crate::report::check_text(&state),
                CheckFormat::Json => {
                    // Streamed: a 100,000-citation registry's JSON is never held whole.
                    let stdout = std::io::stdout();
                    let mut w = std::io::BufWriter::new(stdout.lock());
                    crate::report::write_check_json(&state, &mut w)
                        .and_then(|()| std::io::Write::flush(&mut w))
                        .map_err(|e| Fail(Exit::Failed, format!("stdout: {e}")))?;
                    String::new()
                }
                CheckFormat::Junit => crate::report::check_junit(&state, &args.fail_on),
                CheckFormat::Github => {
                    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") {
                        use std::io::Write;
                        let summary = crate::report::report_md(&state);
                        let written = std::fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(&path)
                            .and_then(|mut f| f.write_all(summary.as_bytes()));
                        if let Err(e) = written {
                            eprintln!(
                                "citewatch: GITHUB_STEP_SUMMARY {}: {e}",
                                std::path::Path::new(&path).display()
                            );
                        }
                    }
                    crate::report::check_github(&state, &args.fail_on)
                }
            };
            print!("{out}");
            // A run that ended abnormally leaves citations unjudged: the gate is not green until
            // a later run finishes (`--fail-on` without `incomplete` opts out).
            let incomplete = state.incomplete().is_some()
                && (args.fail_on.is_empty() || args.fail_on.iter().any(|r| r == "incomplete"));
            let stale = !crate::report::failing(&state, &args.fail_on).is_empty() || incomplete;
            store.close().await;
            Ok(if stale { Exit::Stale } else { Exit::Ok })
        }
        Command::Report(args) => {
            let s = settings(&cli.global, None)?;
            // The Markdown and HTML reports print details of open items and changed sources
            // only; the JSON report prints every citation's.
            let columns = match args.format {
                ReportFormat::Md | ReportFormat::Html => crate::store::VerdictColumns::Reported,
                ReportFormat::Json => crate::store::VerdictColumns::All,
            };
            let (registry, store, early) = registry_and_verdicts(&s, columns).await?;
            let snaps = SnapshotStore::new(&s.snapshots);
            let live = run_lock_held(&s);
            let (now, depth) = (clock(), pipeline::Depth::Reviews);
            let state = match early {
                Some(latest) => {
                    pipeline::load_state_from(&registry, &store, &snaps, now, depth, live, latest)
                        .await
                }
                None => pipeline::load_state(&registry, &store, &snaps, now, depth, live).await,
            }
            .map_err(|e| Fail(Exit::Failed, e.to_string()))?;
            let out = match args.format {
                ReportFormat::Md => crate::report::report_md(&state),
                ReportFormat::Html => crate::report::report_html(&state),
                ReportFormat::Json => crate::report::check_json(&state),
            };
            store.close().await;
            match &args.out {
                Some(path) => write_atomically(path, out.as_bytes())
                    .map_err(|e| Fail(Exit::Failed, format!("{}: {e}", path.display())))?,
                None => print!("{out}"),
            }
            Ok(Exit::Ok)
        }
        Command::Publish(args) => {
            let s = settings(&cli.global, None)?;
            let registry = load_registry(&s, s.quiet)?;
            let mut pairs = Vec::new();
            for spec in &args.compare {
                let parts: Vec<&str> = spec.split(',').map(str::trim).collect();
                let [a, b] = parts[..] else {
                    return Err(Fail(
                        Exit::Usage,
                        format!("--compare `{spec}`: give two offering ids, A,B"),
                    ));
                };
                for id in [a, b] {
                    if registry.offering(id).is_none() {
                        return Err(Fail(
                            Exit::Usage,
                            format!("--compare `{spec}`: no offering `{id}` in the registry"),
                        ));
                    }
                }
                pairs.push((a.to_string(), b.to_string()));
            }
            if args.compare.is_empty() {
                pairs = crate::publish::default_pairs(&registry);
            }
            let store = open_store(&s).await?;
            let snaps = SnapshotStore::new(&s.snapshots);
            let live = run_lock_held(&s);
            let failed = |e: crate::store::StoreError| Fail(Exit::Failed, e.to_string());
            let state = pipeline::load_state(
                &registry,
                &store,
                &snaps,
                clock(),
                pipeline::Depth::Full,
                live,
            )
            .await
            .map_err(failed)?;
            let runs = store
                .recent_runs(crate::publish::TIMELINE_RUNS as i64)
                .await
                .map_err(failed)?;
            let history = match runs.first() {
                Some((first, _)) => store.verdicts_since_run(*first).await.map_err(failed)?,
                None => Vec::new(),
            };
            store.close().await;
            let data = crate::publish::build(&state, &runs, &history, &pairs);
            std::fs::create_dir_all(&args.out)
                .map_err(|e| Fail(Exit::Failed, format!("{}: {e}", args.out.display())))?;
            let pages = crate::publish::pages(&data);
            for (name, text) in &pages {
                let path = args.out.join(name);
                write_atomically(&path, text.as_bytes())
                    .map_err(|e| Fail(Exit::Failed, format!("{}: {e}", path.display())))?;
            }
            if !s.quiet {
                eprintln!(
                    "published {} files to {} ({} offerings, {} compare page{})",
                    pages.len(),
                    args.out.display(),
                    data.offerings.len(),
                    data.compare.len(),
                    if data.compare.len() == 1 { "" } else { "s" }
                );
            }
            Ok(Exit::Ok)
        }
        Command::Daemon(args) => {
            let s = settings(&cli.global, Some(&args.fetch_args))?;
            let zone = match args.timezone {
                TimeZone::Utc => crate::worker::Zone::Utc,
                TimeZone::Local => crate::worker::Zone::Local,
            };
            let schedule = crate::worker::Schedule::parse(&args.schedule, zone)
                .map_err(|e| Fail(Exit::Usage, format!("--schedule: {e}")))?;
            // The registry is read at every run (so edits apply), but it must be valid to start.
            load_registry(&s, true)?;
            let _lock = lock_run(&s)?;
            let store = open_store(&s).await?;
            let quiet = s.quiet;
            let runs = crate::worker::run_on_schedule(
                &schedule,
                &clock,
                shutdown_signal(),
                |next| {
                    tracing::info!(next = %next, "next run");
                    if !quiet {
                        eprintln!(
                            "citewatch daemon: {}; next run at {}",
                            schedule.describe(),
                            next.to_rfc3339()
                        );
                    }
                },
                |_| {
                    let (s, store, clock) = (&s, &store, clock.clone());
                    async move {
                        match load_registry(s, true) {
                            Ok(registry) => {
                                if let Err(Fail(_, msg)) =
                                    run_once(s, &registry, store, clock).await
                                {
                                    eprintln!("citewatch daemon: run failed: {msg}");
                                }
                            }
                            Err(Fail(_, msg)) => {
                                eprintln!("citewatch daemon: registry unusable, run skipped: {msg}")
                            }
                        }
                    }
                },
            )
            .await;
            if !quiet {
                eprintln!(
                    "citewatch daemon: stopped after {runs} run{}",
                    if runs == 1 { "" } else { "s" }
                );
            }
            store.close().await;
            Ok(Exit::Ok)
        }
        Command::Export(ExportCommand::Warc(args)) => export_warc(args, &cli.global, clock).await,
        Command::Notify => {
            let s = settings(&cli.global, None)?;
            // One deliverer at a time: a run delivers too, and holds this lock.
            let _lock = lock_run(&s)?;
            let store = open_store(&s).await?;
            if s.notify.is_empty() {
                let waiting = store
                    .outbox_len()
                    .await
                    .map_err(|e| Fail(Exit::Failed, e.to_string()))?;
                eprintln!(
                    "no [[notify]] targets are configured; {waiting} event{} recorded in the outbox",
                    if waiting == 1 { "" } else { "s" }
                );
                store.close().await;
                return Ok(Exit::Ok);
            }
            // The registry adds quotes and diff hunks; without a valid one, the queue rows
            // alone are sent.
            let registry = registry::load(&s.registry)
                .ok()
                .and_then(|p| if p.has_errors() { None } else { p.registry });
            let done = deliver_notifications(&s, registry.as_ref(), &store, &clock).await;
            store.close().await;
            let done = done?;
            for d in &done {
                println!("{d}");
            }
            Ok(Exit::Ok)
        }
        Command::Queue(q) => {
            let s = settings(&cli.global, None)?;
            let store = open_store(&s).await?;
            let r = queue_command(q, &s, &store, clock).await;
            store.close().await;
            r
        }
    }
}

/// `export warc`: streams the recorded fetches into a WARC file, written atomically.
async fn export_warc(args: &WarcArgs, global: &GlobalArgs, clock: Clock) -> Result<Exit, Fail> {
    let s = settings(global, None)?;
    let since = match &args.since {
        None => None,
        Some(d) => {
            let t = if let Ok(day) = chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d") {
                day.and_hms_opt(0, 0, 0).map(|t| t.and_utc())
            } else {
                chrono::DateTime::parse_from_rfc3339(d)
                    .ok()
                    .map(|t| t.with_timezone(&chrono::Utc))
            };
            let Some(t) = t else {
                return Err(Fail(
                    Exit::Usage,
                    format!("--since `{d}`: give a date (YYYY-MM-DD) or an RFC 3339 time"),
                ));
            };
            Some(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        }
    };
    let mut registry_name = String::from("citewatch");
    let urls = match &args.only {
        None => {
            if let Ok(p) = registry::load(&s.registry)
                && let Some(r) = p.registry
            {
                registry_name = r.name;
            }
            None
        }
        Some(id) => {
            let registry = load_registry(&s, true)?;
            let Some(offering) = registry.offering(id) else {
                return Err(Fail(
                    Exit::Usage,
                    format!("--only: no offering `{id}` in {}", s.registry.display()),
                ));
            };
            let urls = offering
                .cells
                .iter()
                .flat_map(|c| &c.citations)
                .map(|c| match c.render {
                    registry::Render::Http => c.fetch_url().to_string(),
                    registry::Render::Browser => format!("browser:{}", c.fetch_url()),
                })
                .collect();
            registry_name = registry.name.clone();
            Some(urls)
        }
    };
    if !s.db.exists() {
        return Err(Fail(
            Exit::Usage,
            format!(
                "{}: no database (run `citewatch run` first)",
                s.db.display()
            ),
        ));
    }
    let store = open_store(&s).await?;
    let snaps = SnapshotStore::new(&s.snapshots);
    let dir = args
        .out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let io = |e: std::io::Error| Fail(Exit::Failed, format!("{}: {e}", args.out.display()));
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    let filename = args
        .out
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let filter = crate::warc::Filter { since, urls };
    let written = crate::warc::export(
        &store,
        &snaps,
        &filter,
        &registry_name,
        &filename,
        clock(),
        std::io::BufWriter::new(tmp.as_file()),
    )
    .await;
    store.close().await;
    let done = written.map_err(|e| match e {
        crate::warc::ExportError::Store(e) => Fail(Exit::Failed, e.to_string()),
        crate::warc::ExportError::Io(e) => io(e),
    })?;
    tmp.as_file().sync_all().map_err(io)?;
    keep_permissions(tmp.as_file(), &args.out).map_err(io)?;
    tmp.persist(&args.out).map_err(|e| io(e.error))?;
    if !s.quiet {
        eprintln!(
            "wrote {} records ({} fetches) to {}{}",
            done.records,
            done.fetches,
            args.out.display(),
            if done.missing_bodies > 0 {
                format!(
                    "; {} fetches left out: their snapshot files are gone",
                    done.missing_bodies
                )
            } else {
                String::new()
            }
        );
    }
    Ok(Exit::Ok)
}

/// The registry, the store, and (when a database exists) the latest verdicts read while the
/// registry parses: on two cores the gate's two big reads take the time of the longer one.
async fn registry_and_verdicts(
    s: &Settings,
    columns: crate::store::VerdictColumns,
) -> Result<(Registry, Store, Option<crate::store::RecordedVerdicts>), Fail> {
    if !s.db.exists() {
        // A broken registry must not create a database as a side effect.
        let registry = load_registry(s, s.quiet)?;
        let store = open_store(s).await?;
        return Ok((registry, store, None));
    }
    let store = open_store(s).await?;
    let reader = store.clone();
    let verdicts = tokio::spawn(async move { reader.latest_verdicts_by_key(columns).await });
    let settings = s.clone();
    let registry =
        match tokio::task::spawn_blocking(move || load_registry(&settings, settings.quiet)).await {
            Ok(r) => r,
            Err(e) => Err(Fail(Exit::Failed, format!("registry: {e}"))),
        };
    let registry = match registry {
        Ok(r) => r,
        Err(f) => {
            verdicts.abort();
            return Err(f);
        }
    };
    let latest = match verdicts.await {
        Ok(r) => r.map_err(|e| Fail(Exit::Failed, e.to_string()))?,
        Err(e) => return Err(Fail(Exit::Failed, format!("reading verdicts: {e}"))),
    };
    Ok((registry, store, Some(latest)))
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Holds the single-writer lock: an OS file lock on `<db>.lock`, released by the kernel if the
/// process dies, so a crashed run never leaves a stale lock behind.
struct RunLock {
    _file: std::fs::File,
}

fn lock_path(s: &Settings) -> PathBuf {
    let mut path = s.db.clone().into_os_string();
    path.push(".lock");
    PathBuf::from(path)
}

/// Whether another process holds the run lock right now (a run is live). Probing takes the
/// lock for an instant when it is free; it never creates the lock file.
fn run_lock_held(s: &Settings) -> bool {
    let Ok(file) = std::fs::OpenOptions::new().write(true).open(lock_path(s)) else {
        return false;
    };
    matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock))
}

fn lock_run(s: &Settings) -> Result<RunLock, Fail> {
    let path = lock_path(s);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Fail(Exit::Failed, format!("{}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(RunLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => Err(Fail(
            Exit::Locked,
            format!(
                "another citewatch run holds {}; nothing was touched",
                path.display()
            ),
        )),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(Fail(Exit::Failed, format!("{}: {e}", path.display())))
        }
    }
}

async fn run_once(
    s: &Settings,
    registry: &Registry,
    store: &Store,
    clock: Clock,
) -> Result<(), Fail> {
    run_once_scoped(s, registry, store, clock, None).await
}

async fn run_once_scoped(
    s: &Settings,
    registry: &Registry,
    store: &Store,
    clock: Clock,
    keys: Option<std::collections::HashSet<String>>,
) -> Result<(), Fail> {
    let snaps = SnapshotStore::new(&s.snapshots);
    let progress = (!s.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr())).then(|| {
        let pb = indicatif::ProgressBar::new(0);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} URLs, eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    let opts = RunOptions {
        scope: crate::plan::Scope {
            only: s.only.clone(),
            keys,
            ..Default::default()
        },
        fetch: s.fetch.clone(),
        confirm: s.confirm,
        clock,
        deadline: s.deadline,
        resume: !s.refetch,
        progress: progress.clone(),
        archive: crate::archive::ArchiveSettings {
            endpoint: s.archive_endpoint.clone(),
            submit: s.archive_submit,
        },
    };
    let clock = opts.clock.clone();
    // A target configured since the last run receives this run's events (its history starts
    // here; earlier events are not replayed to it, except openings of items still open).
    for t in &s.notify {
        store
            .notify_target(&t.id(), clock())
            .await
            .map_err(|e| Fail(Exit::Failed, e.to_string()))?;
    }
    let summary = pipeline::run(registry, store, &snaps, &opts)
        .await
        .map_err(|e| Fail(Exit::Failed, e.to_string()))?;
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    if !s.quiet {
        eprintln!("{summary}");
    }
    // Notifications never fail the run: a target that is down keeps its events for later.
    match deliver_notifications(s, Some(registry), store, &clock).await {
        Ok(done) => {
            for d in done.iter().filter(|d| d.sent > 0 || d.waiting > 0) {
                if !s.quiet || d.waiting > 0 {
                    eprintln!("notify {d}");
                }
            }
        }
        Err(Fail(_, msg)) => eprintln!("citewatch: notifications not delivered: {msg}"),
    }
    Ok(())
}

/// Delivers pending notifications; loads the recorded state (for quotes and hunks) only when
/// something is pending. Fails only when the database does.
async fn deliver_notifications(
    s: &Settings,
    registry: Option<&Registry>,
    store: &Store,
    clock: &Clock,
) -> Result<Vec<crate::notify::Delivered>, Fail> {
    let failed = |e: crate::store::StoreError| Fail(Exit::Failed, e.to_string());
    if s.notify.is_empty() {
        return Ok(Vec::new());
    }
    let links = crate::notify::Links::from_env(s.report_url.as_deref());
    let snaps = SnapshotStore::new(&s.snapshots);
    let pending = crate::notify::anything_pending(store, &s.notify)
        .await
        .map_err(failed)?;
    let state = match registry {
        Some(r) if pending => Some(
            pipeline::load_state(r, store, &snaps, clock(), pipeline::Depth::Reviews, false)
                .await
                .map_err(failed)?,
        ),
        _ => None,
    };
    crate::notify::deliver(
        store,
        &s.notify,
        state.as_ref(),
        &links,
        &s.fetch.user_agent,
        clock,
    )
    .await
    .map_err(failed)
}

async fn queue_command(
    q: &QueueCommand,
    s: &Settings,
    store: &Store,
    clock: Clock,
) -> Result<Exit, Fail> {
    let failed = |e: crate::store::StoreError| match e {
        crate::store::StoreError::NoSuchItem(_) | crate::store::StoreError::NotOpen { .. } => {
            Fail(Exit::Usage, e.to_string())
        }
        e => Fail(Exit::Failed, e.to_string()),
    };
    match q {
        QueueCommand::List { status, json } => {
            let filter = match status.as_str() {
                "all" => None,
                "open" | "resolved" | "dismissed" => Some(status.as_str()),
                other => {
                    return Err(Fail(
                        Exit::Usage,
                        format!("--status: `{other}` is not open, resolved, dismissed or all"),
                    ));
                }
            };
            let items = store.queue(filter).await.map_err(failed)?;
            if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&items).expect("serialisable")
                );
            } else {
                for i in &items {
                    println!(
                        "#{:<5} {:<9} {:<15} {}/{} {}",
                        i.id, i.status, i.reason, i.offering, i.dimension, i.url
                    );
                }
                if items.is_empty() {
                    eprintln!("no {} items", status);
                }
            }
            Ok(Exit::Ok)
        }
        QueueCommand::Show { id } => {
            let i = store.queue_item(*id).await.map_err(failed)?;
            let colour = std::io::IsTerminal::is_terminal(&std::io::stdout())
                && std::env::var_os("NO_COLOR").is_none();
            // With a readable registry the item is shown in full (hunks, where the quote
            // went, the commands that settle it); without one, what the queue row holds.
            let registry = registry::load(&s.registry)
                .ok()
                .and_then(|p| if p.has_errors() { None } else { p.registry });
            match registry {
                Some(registry) => {
                    let snaps = SnapshotStore::new(&s.snapshots);
                    let state = pipeline::load_state(
                        &registry,
                        store,
                        &snaps,
                        clock(),
                        pipeline::Depth::Reviews,
                        false,
                    )
                    .await
                    .map_err(failed)?;
                    let view = crate::report::item_view(&state, &i);
                    print!("{}", crate::report::item_text(&view, colour));
                }
                None => {
                    println!("#{} {} ({})", i.id, i.reason, i.status);
                    println!(
                        "citation:   {}/{} {}",
                        i.offering,
                        i.dimension,
                        crate::redact(&i.url)
                    );
                    println!("detail:     {}", crate::redact(&i.detail));
                    println!("first seen: {}", i.first_seen);
                    println!("last seen:  {}", i.last_seen);
                    if let Some(c) = &i.closed_at {
                        println!(
                            "closed:     {c} by {}",
                            i.closed_by.as_deref().unwrap_or("?")
                        );
                        println!("note:       {}", i.note.as_deref().unwrap_or(""));
                    }
                }
            }
            Ok(Exit::Ok)
        }
        QueueCommand::Accept(a) => accept(a, s, store, clock).await,
        QueueCommand::Resolve(a) | QueueCommand::Dismiss(a) => {
            let resolve = matches!(q, QueueCommand::Resolve(_));
            if a.note.trim().is_empty() {
                return Err(Fail(Exit::Usage, "--note must say why".into()));
            }
            let author = author_or_user(&a.author);
            let i = store
                .close_item(a.id, resolve, a.note.trim(), &author, clock())
                .await
                .map_err(failed)?;
            println!("#{} {} by {}", i.id, i.status, author);
            Ok(Exit::Ok)
        }
    }
}

/// `queue accept`: the obvious fix, written into the registry file (formatting and comments
/// kept), linted before it is written, then the item resolved. Refuses with exit 2 and leaves
/// the file untouched when there is no obvious fix, the citation is not where the item says,
/// the edit would not lint, or the file changed meanwhile.
async fn accept(a: &AcceptArgs, s: &Settings, store: &Store, clock: Clock) -> Result<Exit, Fail> {
    use crate::registry::edit::{self, Fix};
    let refuse = |msg: String| Fail(Exit::Usage, format!("queue accept #{}: {msg}", a.id));
    let item = store
        .queue_item(a.id)
        .await
        .map_err(|e| refuse(e.to_string()))?;
    if item.status != "open" {
        return Err(refuse(format!("the item is {}, not open", item.status)));
    }
    let (fingerprint, found) = store
        .item_evidence(a.id)
        .await
        .map_err(|e| Fail(Exit::Failed, e.to_string()))?;
    let (fix, what) = match item.reason.as_str() {
        "drifted" => match found {
            Some(f) => (Fix::Quote(f.clone()), format!("quote → “{f}”")),
            None => return Err(refuse("no variant of the quote was recorded".into())),
        },
        "moved" => match fingerprint.strip_prefix("moved:") {
            Some(t) if !t.is_empty() => (Fix::Url(t.to_string()), format!("url → {t}")),
            _ => return Err(refuse("no redirect target was recorded".into())),
        },
        "expired" | "context_changed" => (Fix::Reverified, "re-verified as it stands".into()),
        other => {
            return Err(refuse(format!(
                "a `{other}` item has no obvious fix: edit the registry, then `citewatch queue resolve {} --note …` (or `dismiss`)",
                a.id
            )));
        }
    };
    let registry = load_registry(s, true)?;
    let Some(citation) = registry.citations().find(|c| c.key() == item.citation_key) else {
        return Err(refuse(
            "the registry no longer has this citation (edited since?)".into(),
        ));
    };
    let path = citation.file.to_path_buf();
    let before = registry::read(&path)
        .map_err(|e| refuse(e.to_string()))?
        .text;
    let today = clock().date_naive();
    let after = edit::apply(
        &before,
        &citation.dimension,
        &citation.url,
        citation.quote.as_deref(),
        &fix,
        today,
    )
    .map_err(|e| refuse(format!("{}: {e}", path.display())))?;
    let parsed = registry::load_with(&s.registry, Some((&path, &after)))
        .map_err(|e| refuse(e.to_string()))?;
    if parsed.has_errors() {
        let problems: Vec<String> = parsed
            .problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .map(ToString::to_string)
            .collect();
        return Err(refuse(format!(
            "the edit would not lint: {}",
            problems.join("; ")
        )));
    }
    let shown = path.display().to_string();
    let diff = similar::TextDiff::from_lines(&before, &after)
        .unified_diff()
        .context_radius(2)
        .header(&shown, &shown)
        .to_string();
    print!("{diff}");
    if a.dry_run {
        eprintln!("--dry-run: {what}; nothing written, #{} stays open", a.id);
        return Ok(Exit::Ok);
    }
    // The file must still be what the edit was computed from.
    let now_text = registry::read(&path)
        .map_err(|e| refuse(e.to_string()))?
        .text;
    if now_text != before {
        return Err(refuse(format!(
            "{shown} changed meanwhile; nothing written"
        )));
    }
    write_atomically(&path, after.as_bytes())
        .map_err(|e| Fail(Exit::Failed, format!("{shown}: {e}")))?;
    let author = author_or_user(&a.author);
    let note = a
        .note
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| format!("accepted: {what}; verified {today}"));
    let i = store
        .close_item(a.id, true, note.trim(), &author, clock())
        .await
        .map_err(|e| Fail(Exit::Failed, e.to_string()))?;
    eprintln!(
        "#{} {} by {author}: {what}; {shown} updated",
        i.id, i.status
    );
    Ok(Exit::Ok)
}

/// Who closes a queue item: `--author`, else `$USER`, else `$LOGNAME`.
fn author_or_user(author: &Option<String>) -> String {
    author
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// Writes a file via a temporary file and rename, so readers never see half a report.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    keep_permissions(tmp.as_file(), path)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Gives a temporary file the permissions of the file it will replace (a registry file keeps
/// its mode), or the usual 0644 for a new file, instead of the temporary file's 0600.
fn keep_permissions(tmp: &std::fs::File, path: &std::path::Path) -> std::io::Result<()> {
    let perms = match std::fs::metadata(path) {
        Ok(m) => m.permissions(),
        Err(_) => {
            #[cfg(unix)]
            {
                std::os::unix::fs::PermissionsExt::from_mode(0o644)
            }
            #[cfg(not(unix))]
            {
                return Ok(());
            }
        }
    };
    tmp.set_permissions(perms)
}
