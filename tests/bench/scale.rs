//! Benchmark: peak memory and wall time of a real `citewatch run` over a large registry.
//!
//! Generates a registry of CITATIONS citations (default 100,000: offerings × 10 dimensions ×
//! sources) over URLS distinct URLs (default 20,000) on HOSTS local hosts, serves them from a
//! farm on 127.0.0.1 in this process, runs the release `citewatch` binary as a child process
//! with `--allow-private`, and reports the child's peak RSS (VmHWM), wall time, and wall time ÷
//! the politeness lower bound. Target: peak RSS ≤ 150 MB at 100k citations.
//!
//! Then runs it again over the same farm, every page now answering 304 (a quiet night), and
//! reports that run's CPU against the first's, its peak RSS, and how much the database grew.
//!
//! Run: `cargo bench --bench scale` (env: CITATIONS, URLS, HOSTS, RATE; RERUN=0 skips the
//! second run).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, Response};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn host(counter: Arc<AtomicUsize>) -> u16 {
    let app = axum::Router::new().fallback(move |req: Request<Body>| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::Relaxed);
            let path = req.uri().path().to_string();
            if path == "/robots.txt" {
                return Response::builder().status(404).body(Body::empty()).unwrap();
            }
            // Every page has a stable ETag: the second run is a quiet night (all 304).
            let etag = format!("\"{path}-v1\"");
            if req.headers().get("if-none-match").and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
                return Response::builder().status(304).header("etag", etag).body(Body::empty()).unwrap();
            }
            let body = format!(
                "<html><body><main><h1>{path}</h1><p>Quote A for {path}.</p><p>Quote B for {path}.</p><p>Quote C for {path}.</p><p>Quote D for {path}.</p><p>Quote E for {path}.</p>{}</main></body></html>",
                "<p>Filler paragraph of an ordinary policy page. </p>".repeat(40)
            );
            Response::builder().status(200).header("content-type", "text/html; charset=utf-8").header("etag", etag).body(Body::from(body)).unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

/// Peak resident set (VmHWM) of a process, in kB.
fn vm_hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// What one `citewatch run` child cost.
struct ChildRun {
    status: std::process::ExitStatus,
    stderr: String,
    wall: f64,
    cpu: f64,
    peak_kb: u64,
}

/// CPU (user + system) of this process's reaped children so far, in seconds.
fn children_cpu() -> f64 {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct; getrusage
    // writes into it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is valid for writes.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// "exit 0", or how the child ended otherwise ("signal: 9 (SIGKILL)").
fn exit_word(status: std::process::ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exit {code}"),
        None => status.to_string(),
    }
}

/// The database's size on disk, its write-ahead log included.
fn db_bytes(dir: &std::path::Path) -> u64 {
    ["scale.db", "scale.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

/// Runs the release `citewatch run` over the registry once, sampling its peak RSS.
async fn run_child(reg: &std::path::Path, dir: &std::path::Path, rate: f64) -> ChildRun {
    let cpu_before = children_cpu();
    let started = Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_citewatch"))
        .env("CITEWATCH_LOOPBACK_ONLY", "1")
        .args([
            "run",
            "--allow-private",
            "--rate",
            &rate.to_string(),
            "--concurrency",
            "64",
            "--registry",
        ])
        .arg(reg)
        .arg("--db")
        .arg(dir.join("scale.db"))
        .arg("--snapshots")
        .arg(dir.join("snapshots"))
        .env("RUST_LOG", "error")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut peak_kb = 0;
    let status = loop {
        if let Some(kb) = vm_hwm(pid) {
            peak_kb = peak_kb.max(kb);
        }
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let wall = started.elapsed().as_secs_f64();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    // The child is reaped (try_wait): its CPU time is in this process's children's usage.
    ChildRun {
        status,
        stderr,
        wall,
        cpu: children_cpu() - cpu_before,
        peak_kb,
    }
}

fn main() {
    let citations: usize = env_or("CITATIONS", 100_000);
    let urls: usize = env_or("URLS", 20_000);
    let hosts: usize = env_or("HOSTS", 100);
    let rate: f64 = env_or("RATE", 100.0);
    let dims = 10;
    let per_cell = 10;
    let offerings = citations.div_ceil(dims * per_cell);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let counters: Vec<Arc<AtomicUsize>> = (0..hosts).map(|_| Arc::new(AtomicUsize::new(0))).collect();
        let mut ports = Vec::new();
        for c in &counters {
            ports.push(host(c.clone()).await);
        }
        let dir = tempfile::tempdir().unwrap();
        let reg = dir.path().join("registry");
        std::fs::create_dir_all(reg.join("offerings")).unwrap();
        let mut vocab = String::from("name = \"scale\"\n[[grades]]\nid = \"yes\"\nsymbol = \"●\"\nlabel = \"Yes\"\n");
        for d in 0..dims {
            vocab.push_str(&format!("[[dimensions]]\nid = \"d{d}\"\nlabel = \"D{d}\"\nquestion = \"?\"\nmax_age_days = 365\n"));
        }
        std::fs::write(reg.join("registry.toml"), vocab).unwrap();
        let mut n = 0;
        for o in 0..offerings {
            let mut text = format!("id = \"o{o}\"\nname = \"Offering {o}\"\ndeveloper = \"D\"\nplatform = \"P\"\ncategory = \"scale\"\n");
            for d in 0..dims {
                text.push_str(&format!("\n[cells.d{d}]\ngrade = \"yes\"\nverified = 2026-07-05\nsummary = \"cell\"\n"));
                for _ in 0..per_cell {
                    if n == citations {
                        break;
                    }
                    let u = n % urls;
                    let quote = ["A", "B", "C", "D", "E"][(n / urls) % 5];
                    let url = format!("http://127.0.0.1:{}/page/{u}", ports[u % hosts]);
                    text.push_str(&format!("\n[[cells.d{d}.sources]]\nurl = \"{url}\"\nquote = \"Quote {quote} for /page/{u}.\"\n"));
                    n += 1;
                }
            }
            std::fs::write(reg.join("offerings").join(format!("o{o}.toml")), text).unwrap();
        }
        println!("registry: {n} citations, {offerings} offerings, {urls} URLs over {hosts} hosts; rate {rate}/s per host");
        let first = run_child(&reg, dir.path(), rate).await;
        let requests: Vec<usize> = counters.iter().map(|c| c.swap(0, Ordering::Relaxed)).collect();
        let max_requests = *requests.iter().max().unwrap();
        let bound = max_requests as f64 / rate;
        let db_first = db_bytes(dir.path());
        println!("first run: {}; {}", exit_word(first.status), first.stderr.trim());
        println!("peak RSS {:.1} MB (VmHWM, sampled every 20 ms; target <= 150 MB)", first.peak_kb as f64 / 1024.0);
        println!(
            "{:.0} citations/s (goal >= 1,500); citewatch CPU {:.1} s (user + system; the farm's is not in it)",
            citations as f64 / first.wall,
            first.cpu
        );
        println!("wall {:.1}s; politeness lower bound {:.1}s ({} requests to the busiest host); ratio {:.2}", first.wall, bound, max_requests, first.wall / bound);
        if let Ok(secs) = std::env::var("HOLD_SECS") {
            // Keep the farm up for profiling by hand (a copy of the state is a quiet night).
            println!(
                "holding the farm for {secs} s: CITEWATCH_LOOPBACK_ONLY=1 {} run --allow-private --rate {rate} --concurrency 64 --registry {} --db {} --snapshots {}",
                env!("CARGO_BIN_EXE_citewatch"),
                reg.display(),
                dir.path().join("scale.db").display(),
                dir.path().join("snapshots").display()
            );
            tokio::time::sleep(Duration::from_secs(secs.parse().unwrap_or(600))).await;
            return;
        }
        if env_or("RERUN", 1) == 0 {
            return;
        }
        // A quiet night: the same registry again, every page answering 304.
        let again = run_child(&reg, dir.path(), rate).await;
        let db_again = db_bytes(dir.path());
        println!("second run (every page 304): {}; {}", exit_word(again.status), again.stderr.trim());
        println!(
            "wall {:.1}s, {:.0} citations/s; CPU {:.1} s = {:.1}% of the first run's; peak RSS {:.1} MB; database {:.1} MB -> {:.1} MB (+{:.1} MB)",
            again.wall,
            citations as f64 / again.wall,
            again.cpu,
            100.0 * again.cpu / first.cpu,
            again.peak_kb as f64 / 1024.0,
            db_first as f64 / 1e6,
            db_again as f64 / 1e6,
            (db_again as f64 - db_first as f64) / 1e6
        );
    });
}
