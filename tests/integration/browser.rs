//! JS-rendered sources through headless Chromium (Debian's package; CI installs it). Every
//! page is served on 127.0.0.1; the renderer's address policy is loopback-only or stricter.

use std::time::Duration;

use citewatch::fetch::browser::{RenderLimits, Renderer, chromium_path};
use citewatch::fetch::guard::AddressPolicy;

use crate::site::{Page, Site};

/// Skips (outside CI) when Chromium is missing; CI must have it.
pub fn have_chromium() -> bool {
    if chromium_path().is_some() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "CI must install chromium");
    eprintln!("chromium not installed: skipping");
    false
}

pub const SCRIPTED: &str = "<html><body><main><div id=\"out\">Loading…</div></main><script>document.getElementById('out').textContent = 'Customer data is never used for training.';</script></body></html>";
pub const FETCHING: &str = "<html><body><main><p id=\"o\">Loading…</p></main><script>fetch('/data.txt').then(r => r.text()).then(t => { document.getElementById('o').textContent = t; });</script></body></html>";

fn site_pages(site: &Site) {
    site.set("/js", Page::html(SCRIPTED));
    site.set("/xhr", Page::html(FETCHING));
    site.set(
        "/data.txt",
        Page::bytes(
            "text/plain",
            b"Zero Data Retention is available on request.".to_vec(),
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_and_their_requests_are_rendered() {
    if !have_chromium() {
        return;
    }
    let site = Site::start().await;
    site_pages(&site);
    let launched = std::time::Instant::now();
    let r = Renderer::launch(
        AddressPolicy::LoopbackOnly,
        &citewatch::fetch::default_user_agent(),
    )
    .await
    .unwrap();
    eprintln!("render: browser launch {:?}", launched.elapsed());
    let t = std::time::Instant::now();
    let page = r
        .render(&site.url("/js").parse().unwrap(), RenderLimits::default())
        .await
        .unwrap();
    assert!(
        page.html
            .contains("Customer data is never used for training."),
        "{}",
        page.html
    );
    let first = t.elapsed();
    let t = std::time::Instant::now();
    let page = r
        .render(&site.url("/xhr").parse().unwrap(), RenderLimits::default())
        .await
        .unwrap();
    assert!(
        page.html
            .contains("Zero Data Retention is available on request."),
        "{}",
        page.html
    );
    assert!(
        page.requests >= 2,
        "document and XHR both went through the check: {}",
        page.requests
    );
    assert_eq!(site.hits("/data.txt"), 1);
    eprintln!(
        "render: first page {first:?} (incl. tab warm-up), second page {:?}",
        t.elapsed()
    );
    r.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browsers_requests_pass_the_address_guard() {
    if !have_chromium() {
        return;
    }
    let site = Site::start().await;
    site_pages(&site);
    let r = Renderer::launch(
        AddressPolicy::PublicOnly,
        &citewatch::fetch::default_user_agent(),
    )
    .await
    .unwrap();
    let page = r
        .render(&site.url("/xhr").parse().unwrap(), RenderLimits::default())
        .await
        .unwrap();
    assert!(!page.refused.is_empty(), "the document request was refused");
    assert!(page.refused[0].contains("non-public"), "{:?}", page.refused);
    assert!(!page.html.contains("Zero Data Retention"));
    assert_eq!(
        site.total_hits(),
        0,
        "no connection reached the loopback server"
    );
    r.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_that_never_settles_hits_the_deadline() {
    if !have_chromium() {
        return;
    }
    let site = Site::start().await;
    site.set(
        "/busy",
        Page::html("<html><body><main><p>Always busy.</p></main><script>setInterval(() => fetch('/tick?' + Date.now()), 100);</script></body></html>"),
    );
    site.set("/tick", Page::bytes("text/plain", b"tick".to_vec()));
    let r = Renderer::launch(
        AddressPolicy::LoopbackOnly,
        &citewatch::fetch::default_user_agent(),
    )
    .await
    .unwrap();
    let t = std::time::Instant::now();
    let limits = RenderLimits {
        deadline: Duration::from_secs(3),
        quiet: Duration::from_millis(800),
    };
    let page = r
        .render(&site.url("/busy").parse().unwrap(), limits)
        .await
        .unwrap();
    assert!(page.hit_deadline);
    assert!(page.html.contains("Always busy."));
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    // The tab is usable afterwards.
    site.set("/js", Page::html(SCRIPTED));
    let next = r
        .render(&site.url("/js").parse().unwrap(), RenderLimits::default())
        .await
        .unwrap();
    assert!(next.html.contains("never used for training"));
    r.close().await;
}

const APP_SHELL: &str = "<!DOCTYPE html><html><head><script src=\"/app.js\"></script></head><body><div id=\"root\"></div></body></html>";
const APP_JS: &str = "document.addEventListener('DOMContentLoaded', () => { document.getElementById('root').innerHTML = '<main><h1>Trust</h1><p>Mistral complies with SOC 2 Type II and ISO 27001/27701 frameworks.</p></main>'; });";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_js_only_page_is_blocked_plainly_and_verified_in_the_browser() {
    if !have_chromium() {
        return;
    }
    use crate::env::{Env, offering, source};
    let site = Site::start().await;
    site.set("/app", Page::html(APP_SHELL));
    site.set(
        "/app.js",
        Page::bytes("application/javascript", APP_JS.as_bytes().to_vec()),
    );
    let q = "quote = \"complies with SOC 2 Type II and ISO 27001/27701 frameworks\"";
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[
                ("soc2", "yes_public", vec![source(&site.url("/app"), q)]),
                (
                    "iso",
                    "yes_public",
                    vec![source(
                        &site.url("/app"),
                        &format!("{q}\nrender = \"browser\""),
                    )],
                ),
            ],
        ),
    )]);
    let t = std::time::Instant::now();
    let s = env.run_at("2026-08-01T00:00:00Z").await;
    eprintln!(
        "run with one plain and one browser-rendered source: {:?}",
        t.elapsed()
    );
    assert_eq!(
        (s.urls, s.citations),
        (2, 2),
        "the same URL is read both ways"
    );
    let store = env.store().await;
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT c.dimension, v.verdict, v.detail FROM verdicts v JOIN citations c ON c.key = v.citation_key ORDER BY c.dimension",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let (raw,): (Option<String>,) =
        sqlx::query_as("SELECT raw_snapshot_hash FROM fetches WHERE url LIKE 'browser:%'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    let raw = env
        .snapshot_store()
        .get(&raw.expect("raw snapshot recorded"))
        .unwrap();
    assert_eq!(
        raw,
        APP_SHELL.as_bytes(),
        "the server's document, before scripts"
    );
    store.close().await;
    // Regression (trust issue, defect 3): the browser's requests carry the configured
    // User-Agent, never Chromium's HeadlessChrome string. Only the browser asks for /app.js.
    let ua = site.last_header("/app.js", "user-agent");
    assert_eq!(
        ua.as_deref(),
        Some(citewatch::fetch::default_user_agent().as_str()),
        "the subrequest's User-Agent"
    );
    let iso = &rows[0];
    let soc2 = &rows[1];
    assert_eq!(iso.1, "verified", "{iso:?}");
    assert_eq!(soc2.1, "blocked", "{soc2:?}");
    assert!(
        soc2.2.contains("render = \"browser\""),
        "the plain reading suggests the browser: {soc2:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_chromium_a_browser_source_is_blocked_and_the_rest_runs() {
    use crate::env::{Env, offering, source, stderr};
    let site = Site::start().await;
    site.set("/plain", Page::html("<p>We are SOC 2 Type II audited.</p>"));
    site.set("/app", Page::html(APP_SHELL));
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[
                (
                    "soc2",
                    "yes_public",
                    vec![source(
                        &site.url("/plain"),
                        "quote = \"SOC 2 Type II audited\"",
                    )],
                ),
                (
                    "iso",
                    "yes_public",
                    vec![source(
                        &site.url("/app"),
                        "quote = \"SOC 2 Type II audited\"\nrender = \"browser\"",
                    )],
                ),
            ],
        ),
    )]);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_citewatch"))
        .env("CITEWATCH_LOOPBACK_ONLY", "1")
        .args([
            "check",
            "--fetch",
            "--allow-private",
            "--format",
            "json",
            "--registry",
        ])
        .arg(&env.registry)
        .arg("--db")
        .arg(&env.db)
        .arg("--snapshots")
        .arg(&env.snapshots)
        .env("CITEWATCH_CHROMIUM", "/nonexistent/chromium")
        .output()
        .unwrap();
    let j: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", stderr(&o)));
    let by_dim = |d: &str| {
        j["citations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["dimension"] == d)
            .unwrap()
            .clone()
    };
    assert_eq!(by_dim("soc2")["verdict"], "verified");
    assert_eq!(by_dim("iso")["verdict"], "blocked");
    assert!(
        by_dim("iso")["detail"]
            .as_str()
            .unwrap()
            .contains("needs Chromium"),
        "{}",
        by_dim("iso")
    );
    assert_eq!(
        site.hits("/app"),
        0,
        "nothing was fetched for the browser source"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rendered_page_is_capped_like_a_fetched_body() {
    if !have_chromium() {
        return;
    }
    use crate::env::{Env, at, offering, source};
    let site = Site::start().await;
    site.set("/big", Page::html("<main><p id=\"o\"></p></main><script>document.getElementById('o').textContent = 'x'.repeat(50000);</script>"));
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[(
                "iso",
                "yes_public",
                vec![source(&site.url("/big"), "render = \"browser\"")],
            )],
        ),
    )]);
    let store = env.store().await;
    let mut opts = env.options(at("2026-08-01T00:00:00Z"));
    opts.fetch.max_body_bytes = 20_000;
    citewatch::pipeline::run(&env.registry(), &store, &env.snapshot_store(), &opts)
        .await
        .unwrap();
    let (verdict, detail): (String, String) =
        sqlx::query_as("SELECT verdict, detail FROM verdicts")
            .fetch_one(store.pool())
            .await
            .unwrap();
    store.close().await;
    assert_eq!(verdict, "blocked");
    assert!(detail.contains("exceeds the 20000-byte cap"), "{detail}");
}
