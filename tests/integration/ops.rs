//! Unattended operation with the real binary: the daemon and its signals, the lock, SIGKILL at
//! several points of a run followed by a clean resume, corrupted snapshots, secrets in URLs.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::env::{Env, offering, source, stderr, stdout};
use crate::site::{Page, Site};

fn spawn(env: &Env, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_citewatch"))
        .env("CITEWATCH_LOOPBACK_ONLY", "1")
        .args(args)
        .arg("--registry")
        .arg(&env.registry)
        .arg("--db")
        .arg(&env.db)
        .arg("--snapshots")
        .arg(&env.snapshots)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn wait_with_timeout(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            start.elapsed() < limit,
            "process did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_runs_on_schedule_holds_the_lock_and_stops_on_sigterm() {
    let site = Site::start().await;
    site.set("/p", Page::html("<p>We are SOC 2 Type II audited.</p>"));
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[(
                "soc2",
                "yes_public",
                vec![source(&site.url("/p"), "quote = \"SOC 2 Type II audited\"")],
            )],
        ),
    )]);
    let mut daemon = spawn(
        &env,
        &[
            "daemon",
            "--schedule",
            "* * * * * *",
            "--allow-private",
            "--rate",
            "100",
        ],
    );
    // Wait for a first scheduled run.
    let start = Instant::now();
    while site.hits("/p") == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the daemon never ran"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A second writer is refused while the daemon lives.
    let o = env.cli(&["run", "--allow-private"]);
    assert_eq!(o.status.code(), Some(75), "{}", stderr(&o));
    // Stop it once a run has finished (a SIGTERM during a run abandons that run).
    let store = env.store().await;
    let start = Instant::now();
    loop {
        let (finished,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM runs WHERE status = 'finished'")
                .fetch_one(store.pool())
                .await
                .unwrap();
        if finished > 0 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no run finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    store.close().await;
    signal(&daemon, "-TERM");
    let status = wait_with_timeout(&mut daemon, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    let mut err = String::new();
    std::io::Read::read_to_string(daemon.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(err.contains("next run at"), "{err}");
    assert!(err.contains("stopped after"), "{err}");
    let store = env.store().await;
    let (finished,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM runs WHERE status = 'finished'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(finished >= 1);
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_any_point_then_a_rerun_completes_without_duplicates() {
    let site = Site::start().await;
    let urls = 24;
    let mut sources = Vec::new();
    for i in 0..urls {
        let path = format!("/slow/{i}");
        // Each page takes ~150 ms to arrive: a slow farm to kill a run in.
        let mut page = Page::html(&format!(
            "<p>Page {i} says SOC 2 Type II audited.</p>{}",
            " ".repeat(30)
        ));
        page.drip = Some(Duration::from_millis(3));
        site.set(&path, page);
        // Half the citations miss their quote, so the queue has rows to duplicate if it could.
        let quote = if i % 2 == 0 {
            "quote = \"SOC 2 Type II audited\""
        } else {
            "quote = \"ISO 42001 certified\""
        };
        sources.push(source(&site.url(&path), quote));
    }
    let env = Env::new(&[("acme", offering("acme", &[("soc2", "yes_public", sources)]))]);
    for kill_after in [300u64, 700, 1200] {
        let mut child = spawn(
            &env,
            &[
                "run",
                "--allow-private",
                "--rate",
                "20",
                "--concurrency",
                "2",
            ],
        );
        std::thread::sleep(Duration::from_millis(kill_after));
        signal(&child, "-KILL");
        let _ = wait_with_timeout(&mut child, Duration::from_secs(10));
        let store = env.store().await;
        assert_eq!(
            store.integrity_check().await.unwrap(),
            "ok",
            "after SIGKILL at {kill_after} ms"
        );
        store.close().await;
    }
    // Until a run finishes, the gate names the interrupted one and is not green.
    let store = env.store().await;
    let last = store.last_run().await.unwrap().unwrap();
    store.close().await;
    assert_eq!(last.status, "running", "{last:?}");
    if last.citations_judged < last.citations {
        let o = env.cli(&["check"]);
        let out = stdout(&o);
        assert_eq!(o.status.code(), Some(1), "{out}");
        assert!(
            out.starts_with(&format!("INCOMPLETE: run #{} started", last.id))
                && out.contains("was interrupted (its process died: killed or crashed)")
                && out.contains(&format!(
                    "{} of {} citations judged",
                    last.citations_judged, last.citations
                )),
            "{out}"
        );
        assert!(!out.contains("\nOK:"), "{out}");
        let o = env.cli(&["check", "--format", "json"]);
        let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(j["incomplete"], true);
        assert_eq!(j["last_run"]["end"], "interrupted");
        assert_eq!(j["last_run"]["citations_judged"], last.citations_judged);
    }
    let hits_before = site.total_hits();
    let o = env.cli(&["run", "--allow-private", "--rate", "50"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("resumed after an interruption"),
        "{}",
        stderr(&o)
    );
    let store = env.store().await;
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
    let (verdicts,): (i64,) = sqlx::query_as("SELECT COUNT(DISTINCT citation_key) FROM verdicts")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(verdicts, urls as i64, "every citation has a verdict");
    let (dupes,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM (SELECT citation_key, reason FROM reverify_queue WHERE status = 'open' GROUP BY 1, 2 HAVING COUNT(*) > 1)")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(dupes, 0);
    let (open,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM reverify_queue WHERE status = 'open' AND reason = 'missing'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(open, urls as i64 / 2);
    let (unfinished,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM runs WHERE status = 'running'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(unfinished, 0);
    store.close().await;
    let o = env.cli(&["check", "--format", "json"]);
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(j["incomplete"], false, "a finished run clears it");
    assert_eq!(j["last_run"]["end"], "finished");
    // Same-day work was not fetched again: each page at most once per kill (the one in
    // flight) beyond its single successful fetch.
    let page_hits: usize = (0..urls).map(|i| site.hits(&format!("/slow/{i}"))).sum();
    assert!(
        page_hits <= urls + 3 * 2,
        "{page_hits} page requests for {urls} pages"
    );
    assert!(
        site.total_hits() > hits_before,
        "the rerun fetched the rest"
    );
}

/// One offering citing one page served with an ETag (`"v1"`), at `/p`.
async fn one_page_with_an_etag() -> (Site, Env) {
    let site = Site::start().await;
    site.set(
        "/p",
        Page::html("<p>We are SOC 2 Type II audited.</p>").with_header("etag", "\"v1\""),
    );
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[(
                "soc2",
                "yes_public",
                vec![source(&site.url("/p"), "quote = \"SOC 2 Type II audited\"")],
            )],
        ),
    )]);
    (site, env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_in_a_snapshot_is_detected_and_refetched() {
    let (site, env) = one_page_with_an_etag().await;
    assert_eq!(env.cli(&["run", "--allow-private"]).status.code(), Some(0));
    let store = env.store().await;
    let (hash,): (String,) = sqlx::query_as("SELECT last_good_snapshot FROM sources")
        .fetch_one(store.pool())
        .await
        .unwrap();
    store.close().await;
    let path = env.snapshot_store().path_of(&hash);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[5] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    let o = env.cli(&["run", "--allow-private", "--refetch"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("missing or corrupt"), "{}", stderr(&o));
    assert_eq!(
        site.last_header("/p", "if-none-match"),
        None,
        "no conditional request on a corrupt body"
    );
    assert!(
        env.snapshot_store().has(&hash),
        "the snapshot was written again intact"
    );
}

/// Damage the file system cannot see (a flipped bit on the medium leaves the file's stamp as
/// it was) is simulated by changing a byte and then recording the file's new stamp as the
/// one of its last full check. Within the week the body is trusted unread, and the server's
/// 304 re-uses it; once its last full check is seven days old it is read again, found
/// corrupt, and fetched in full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_below_the_file_system_is_caught_by_the_weekly_full_read() {
    let (site, env) = one_page_with_an_etag().await;
    env.run_at("2026-11-01T03:00:00Z").await;
    let store = env.store().await;
    let (hash, checked_at, recorded): (String, Option<String>, Option<String>) = sqlx::query_as(
        "SELECT s.hash, s.checked_at, s.stamp FROM sources JOIN snapshots s ON s.hash = sources.last_good_snapshot",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    let path = env.snapshot_store().path_of(&hash);
    let stamp_of = |p: &std::path::Path| citewatch::snapshot::stamp(&std::fs::metadata(p).unwrap());
    assert_eq!(
        recorded,
        stamp_of(&path),
        "a new body is stamped as published"
    );
    assert!(checked_at.is_some_and(|t| t.as_str() <= "2026-11-01T03:00:00.000Z"));
    // The damage, and the stamp as if nothing had changed.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[5] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    sqlx::query(
        "UPDATE snapshots SET stamp = $1, checked_at = '2026-11-01T03:00:00.000Z' WHERE hash = $2",
    )
    .bind(stamp_of(&path))
    .bind(&hash)
    .execute(store.pool())
    .await
    .unwrap();
    store.close().await;
    let s = env.run_at("2026-11-07T03:00:00Z").await;
    assert_eq!(s.reused, 1, "six days on, the body is trusted unread");
    assert_eq!(
        site.last_header("/p", "if-none-match").as_deref(),
        Some("\"v1\"")
    );
    assert!(!env.snapshot_store().has(&hash), "still damaged");
    let hits = site.hits("/p");
    env.run_at("2026-11-08T03:00:00Z").await;
    assert_eq!(site.hits("/p"), hits + 1, "one request");
    assert_eq!(
        site.last_header("/p", "if-none-match"),
        None,
        "a week on, the body is read, found corrupt, and fetched in full"
    );
    assert!(env.snapshot_store().has(&hash), "written again intact");
    let store = env.store().await;
    let (checked_at, recorded): (Option<String>, Option<String>) =
        sqlx::query_as("SELECT checked_at, stamp FROM snapshots WHERE hash = $1")
            .bind(&hash)
            .fetch_one(store.pool())
            .await
            .unwrap();
    store.close().await;
    assert_eq!(recorded, stamp_of(&path), "the new file's stamp");
    assert!(checked_at.is_some_and(|t| t.as_str() <= "2026-11-08T03:00:00.000Z" && t.as_str() >= "2026-11-02"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_in_url_query_strings_stay_out_of_logs_and_reports() {
    let site = Site::start().await;
    site.set("/p", Page::html("<p>Reports on request.</p>"));
    site.set(
        "/r",
        Page::redirect(302, "/p?session=SECRET-REDIRECT-TOKEN"),
    );
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[
                (
                    "soc2",
                    "yes_public",
                    vec![source(
                        &format!("{}?token=SECRET-API-KEY", site.url("/p")),
                        "quote = \"SOC 2 Type II audited\"",
                    )],
                ),
                (
                    "iso",
                    "yes_public",
                    vec![source(&site.url("/r"), "quote = \"SOC 2 Type II audited\"")],
                ),
            ],
        ),
    )]);
    let o = Command::new(env!("CARGO_BIN_EXE_citewatch"))
        .env("CITEWATCH_LOOPBACK_ONLY", "1")
        .args(["run", "--allow-private", "--registry"])
        .arg(&env.registry)
        .arg("--db")
        .arg(&env.db)
        .arg("--snapshots")
        .arg(&env.snapshots)
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let logs = stderr(&o);
    assert!(logs.contains("fetched"), "debug logs were produced: {logs}");
    for out in [
        logs,
        crate::env::stdout(&env.cli(&["report", "--format", "md"])),
        crate::env::stdout(&env.cli(&["report", "--format", "html"])),
        crate::env::stdout(&env.cli(&["check", "--format", "text"])),
        crate::env::stdout(&env.cli(&["check", "--format", "github"])),
        crate::env::stdout(&env.cli(&["check", "--format", "junit"])),
    ] {
        assert!(!out.contains("SECRET"), "a secret leaked:\n{out}");
    }
}
