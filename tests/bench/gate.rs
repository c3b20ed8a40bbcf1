//! Benchmark: the CI gate at scale. Builds, once, the recorded state of one finished run over
//! CITATIONS citations on as many URLs (default 100,000: 100 offering files × 1,000 cells, one
//! source each; OPEN of them with an open `missing` item, default 100), written straight into
//! the database through its schema, then times `check` (text, JSON) and `report` (md, html) as
//! child processes of the release binary, each with its exact peak RSS (`wait4`'s ru_maxrss).
//! Targets: `check` ≤ 2 s and ≤ 150 MB; `report` ≤ 3 s and ≤ 150 MB.
//!
//! Run: `cargo bench --bench gate` (env: CITATIONS, OPEN; KEEP=DIR keeps the state there for
//! profiling).

#[path = "child.rs"]
mod child;

use std::time::Instant;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs the binary with `args`, stdout and stderr to /dev/null; returns what it cost.
fn measure(args: &[&str]) -> child::Cost {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_citewatch"));
    cmd.env("CITEWATCH_LOOPBACK_ONLY", "1")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .env("RUST_LOG", "error");
    child::run(cmd)
}

fn main() {
    let citations: usize = env_or("CITATIONS", 100_000);
    let open: usize = env_or("OPEN", 100);
    let dims = 1000.min(citations);
    let offerings = citations.div_ceil(dims);
    let dir = tempfile::tempdir().unwrap();
    let keep = std::env::var_os("KEEP").map(std::path::PathBuf::from);
    let reg = dir.path().join("registry");
    std::fs::create_dir_all(reg.join("offerings")).unwrap();
    let mut vocab = String::from(
        "name = \"gate scale\"\n[[grades]]\nid = \"yes\"\nsymbol = \"●\"\nlabel = \"Yes\"\n",
    );
    for d in 0..dims {
        vocab.push_str(&format!(
            "[[dimensions]]\nid = \"d{d}\"\nlabel = \"Dimension {d}\"\nquestion = \"?\"\nmax_age_days = 3650\n"
        ));
    }
    std::fs::write(reg.join("registry.toml"), vocab).unwrap();
    let mut all = Vec::new();
    for o in 0..offerings {
        let mut text = format!(
            "id = \"o{o}\"\nname = \"Offering {o}\"\ndeveloper = \"D{o}\"\nplatform = \"P{o}\"\ncategory = \"scale\"\n"
        );
        for d in 0..dims {
            if all.len() == citations {
                break;
            }
            let url = format!("https://h{}.example/page/{o}/{d}", o % 100);
            let quote = format!("Quote for page {o}/{d}.");
            text.push_str(&format!(
                "\n[cells.d{d}]\ngrade = \"yes\"\nverified = 2026-07-05\nsummary = \"cell {o}/{d}\"\n\n[[cells.d{d}.sources]]\nurl = \"{url}\"\nquote = \"{quote}\"\n"
            ));
            all.push((format!("o{o}"), format!("d{d}"), url, quote));
        }
        std::fs::write(reg.join("offerings").join(format!("o{o}.toml")), text).unwrap();
    }
    let db = dir.path().join("gate.db");
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = citewatch::store::Store::open(&db).await.unwrap();
        let mut tx = store.pool().begin().await.unwrap();
        let at = "2026-11-26T03:00:00Z";
        let hash = "a".repeat(64);
        sqlx::query("INSERT INTO runs (id, started_at, finished_at, status, urls, citations) VALUES (1, $1, $1, 'finished', $2, $2)")
            .bind(at)
            .bind(citations as i64)
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query("INSERT INTO snapshots (hash, size, content_type, first_seen) VALUES ($1, 1000, 'text/html', $2)")
            .bind(&hash)
            .bind(at)
            .execute(&mut *tx)
            .await
            .unwrap();
        for (i, (o, d, url, quote)) in all.iter().enumerate() {
            let key = citewatch::registry::citation_key(o, d, url, Some(quote));
            let missing = i % (citations / open.max(1)).max(1) == 0 && i / (citations / open.max(1)).max(1) < open;
            let fetch: (i64,) = sqlx::query_as("INSERT INTO fetches (run_id, url, fetched_at, outcome, status, snapshot_hash, content_type, elapsed_ms) VALUES (1, $1, $2, 'fetched', 200, $3, 'text/html', 10) RETURNING id")
                .bind(url)
                .bind(at)
                .bind(&hash)
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            sqlx::query("INSERT INTO sources (url, last_good_snapshot, content_type, consecutive_failures) VALUES ($1, $2, 'text/html', 0)")
                .bind(url)
                .bind(&hash)
                .execute(&mut *tx)
                .await
                .unwrap();
            sqlx::query("INSERT INTO citations (key, offering, dimension, url, quote, baseline_snapshot, baseline_at, first_seen) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)")
                .bind(&key)
                .bind(o)
                .bind(d)
                .bind(url)
                .bind(quote)
                .bind(&hash)
                .bind(at)
                .execute(&mut *tx)
                .await
                .unwrap();
            let (verdict, detail) = if missing {
                ("missing", "the quote is not on the page".to_string())
            } else {
                ("verified", format!("quote found: \"{quote}\""))
            };
            sqlx::query("INSERT INTO verdicts (run_id, fetch_id, citation_key, verdict, detail, text_hash, snapshot_hash, decided_at, link) VALUES (1, $1, $2, $3, $4, $5, $5, $6, $7)")
                .bind(fetch.0)
                .bind(&key)
                .bind(verdict)
                .bind(&detail)
                .bind(&hash)
                .bind(at)
                .bind(format!("{url}#:~:text=Quote"))
                .execute(&mut *tx)
                .await
                .unwrap();
            if missing {
                sqlx::query("INSERT INTO reverify_queue (citation_key, offering, dimension, url, reason, status, detail, fingerprint, snapshot_hash, first_seen, last_seen) VALUES ($1, $2, $3, $4, 'missing', 'open', 'the quote is not on the page', 'missing:x', $5, $6, $6)")
                    .bind(&key)
                    .bind(o)
                    .bind(d)
                    .bind(url)
                    .bind(&hash)
                    .bind(at)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
        }
        tx.commit().await.unwrap();
        store.close().await;
    });
    println!(
        "state: {} citations on {} URLs, {} offering files × {dims} cells, {open} open items (built in {:.1}s)",
        all.len(),
        all.len(),
        offerings,
        started.elapsed().as_secs_f64()
    );
    let (r, d) = (reg.to_str().unwrap(), db.to_str().unwrap());
    let snaps = dir.path().join("snapshots");
    let s = snaps.to_str().unwrap();
    println!("| command | exit | wall | CPU (user+sys) | peak RSS | target |");
    println!("|---|---|---|---|---|---|");
    for (name, args, target) in [
        ("check", vec!["check"], "≤ 2 s, ≤ 150 MB"),
        (
            "check --format json",
            vec!["check", "--format", "json"],
            "≤ 2 s, ≤ 150 MB",
        ),
        (
            "report --format md",
            vec!["report", "--format", "md"],
            "≤ 3 s, ≤ 150 MB",
        ),
        (
            "report --format html",
            vec!["report", "--format", "html"],
            "≤ 3 s, ≤ 150 MB",
        ),
        ("lint", vec!["lint"], "linear in size"),
    ] {
        let mut full: Vec<&str> = args.clone();
        full.extend(["--registry", r, "--db", d, "--snapshots", s]);
        let c = measure(&full);
        println!(
            "| `{name}` | {} | {:.2} s | {:.2} s | {:.0} MB | {target} |",
            c.code, c.wall, c.cpu, c.rss_mb
        );
    }
    if let Some(to) = keep {
        let _ = std::fs::remove_dir_all(&to);
        std::fs::rename(dir.path(), &to)
            .or_else(|_| {
                std::process::Command::new("cp")
                    .arg("-r")
                    .arg(dir.path())
                    .arg(&to)
                    .status()
                    .map(|_| ())
            })
            .unwrap();
        println!("state kept in {}", to.display());
    }
}
