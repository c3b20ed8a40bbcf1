//! Benchmark: how close a run over many hosts comes to the politeness lower bound.
//!
//! Serves a local farm of HOSTS sites (distinct ports on 127.0.0.1 are distinct hosts), each
//! answering after an injected latency, generates a registry citing URLS pages across them,
//! runs citewatch's pipeline over it at RATE requests per second per host, and prints wall
//! time ÷ max over hosts of (requests to that host ÷ rate). Target: ≤ 1.05 at 2,000 URLs over
//! 40 hosts. The farm's URL list is written to `target/farm-urls.txt`; set FARM_HOLD_SECS to
//! keep the farm up afterwards so other tools can be run against the same URLs.
//!
//! Run: `cargo bench --bench politeness` (env: URLS, HOSTS, RATE, LATENCY_MS).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, Response};
use citewatch::fetch::FetchConfig;
use citewatch::fetch::guard::AddressPolicy;
use citewatch::pipeline::{self, RunOptions};
use citewatch::registry;
use citewatch::snapshot::SnapshotStore;
use citewatch::store::Store;
use citewatch::verdict::ConfirmPolicy;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Starts one host of the farm; returns its port and request counter.
async fn host(latency: Duration, counter: Arc<AtomicUsize>) -> u16 {
    let app = axum::Router::new().fallback(move |req: Request<Body>| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(latency).await;
            let path = req.uri().path().to_string();
            if path == "/robots.txt" {
                return Response::builder().status(404).body(Body::empty()).unwrap();
            }
            let body = format!("<html><body><main><h1>Page {path}</h1><p>The evidence for {path} says the service complies with SOC 2 Type II.</p></main></body></html>");
            Response::builder().status(200).header("content-type", "text/html; charset=utf-8").body(Body::from(body)).unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

fn main() {
    let urls: usize = env_or("URLS", 2000);
    let hosts: usize = env_or("HOSTS", 40);
    let rate: f64 = env_or("RATE", 10.0);
    let latency = Duration::from_millis(env_or("LATENCY_MS", 20));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let counters: Vec<Arc<AtomicUsize>> = (0..hosts).map(|_| Arc::new(AtomicUsize::new(0))).collect();
        let mut ports = Vec::new();
        for c in &counters {
            ports.push(host(latency, c.clone()).await);
        }
        let dir = tempfile::tempdir().unwrap();
        let reg = dir.path().join("registry");
        std::fs::create_dir_all(reg.join("offerings")).unwrap();
        std::fs::write(reg.join("registry.toml"), "name = \"farm\"\n[[grades]]\nid = \"yes\"\nsymbol = \"●\"\nlabel = \"Yes\"\n[[dimensions]]\nid = \"d\"\nlabel = \"D\"\nquestion = \"?\"\n").unwrap();
        let mut list = String::new();
        let mut per_offering: HashMap<usize, String> = HashMap::new();
        for i in 0..urls {
            let h = i % hosts;
            let url = format!("http://127.0.0.1:{}/page/{i}", ports[h]);
            list.push_str(&url);
            list.push('\n');
            let o = per_offering.entry(h).or_insert_with(|| format!("id = \"host{h}\"\nname = \"Host {h}\"\ndeveloper = \"D\"\nplatform = \"P\"\ncategory = \"farm\"\n\n[cells.d]\ngrade = \"yes\"\nverified = 2026-07-05\n"));
            o.push_str(&format!("\n[[cells.d.sources]]\nurl = \"{url}\"\nquote = \"The evidence for /page/{i} says\"\n"));
        }
        for (h, text) in &per_offering {
            std::fs::write(reg.join("offerings").join(format!("host{h}.toml")), text).unwrap();
        }
        let list_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/farm-urls.txt");
        std::fs::write(&list_path, &list).unwrap();
        let parsed = registry::load(&reg).unwrap();
        let registry = parsed.registry.expect("valid farm registry");
        let store = Store::open(&dir.path().join("farm.db")).await.unwrap();
        let snaps = SnapshotStore::new(dir.path().join("snapshots"));
        let opts = RunOptions {
            scope: Default::default(),
            fetch: FetchConfig { rate, concurrency: 64, addresses: AddressPolicy::LoopbackOnly, ..FetchConfig::default() },
            confirm: ConfirmPolicy::default(),
            clock: pipeline::system_clock(),
            deadline: pipeline::DEFAULT_RUN_DEADLINE,
            resume: true,
            progress: None,
            archive: Default::default(),
        };
        let started = Instant::now();
        let summary = pipeline::run(&registry, &store, &snaps, &opts).await.unwrap();
        let wall = started.elapsed();
        let requests: Vec<usize> = counters.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        let max_requests = *requests.iter().max().unwrap();
        let bound = max_requests as f64 / rate;
        println!("farm: {urls} URLs over {hosts} hosts, {latency:?} latency, rate {rate}/s per host");
        println!("URL list: {}", list_path.display());
        println!("{summary}");
        println!("requests per host: max {max_requests} (robots.txt included), total {}", requests.iter().sum::<usize>());
        println!("wall {:.2}s, politeness lower bound {:.2}s, ratio {:.3} (target <= 1.05)", wall.as_secs_f64(), bound, wall.as_secs_f64() / bound);
        let hold: u64 = env_or("FARM_HOLD_SECS", 0);
        if hold > 0 {
            println!("holding the farm for {hold}s");
            tokio::time::sleep(Duration::from_secs(hold)).await;
        }
    });
}
