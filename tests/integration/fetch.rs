//! The fetcher against real loopback servers: retries, Retry-After, robots.txt, redirects,
//! the address guard in every spelling, caps, deadlines and character sets. Every request
//! goes to 127.0.0.1 (or is refused before a packet leaves).

use std::time::Duration;

use citewatch::fetch::guard::AddressPolicy;
use citewatch::fetch::{FetchConfig, FetchOutcome, Fetcher, Validators};
use citewatch::verdict::FailureClass;

use crate::env::{Env, offering, source, test_fetch_config};
use crate::site::{Page, Site};

fn fetcher(cfg: FetchConfig) -> Fetcher {
    Fetcher::new(cfg).unwrap()
}

async fn get(f: &Fetcher, url: &str) -> FetchOutcome {
    f.fetch(&url.parse().unwrap(), &Validators::default()).await
}

fn failure(o: &FetchOutcome) -> (FailureClass, String) {
    match o {
        FetchOutcome::Failed { class, detail, .. } => (*class, detail.clone()),
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn body(o: &FetchOutcome) -> String {
    match o {
        FetchOutcome::Fetched(f) => String::from_utf8_lossy(&f.body).into_owned(),
        other => panic!("expected a body, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_once_then_200_is_retried() {
    let site = Site::start().await;
    site.queue("/p", vec![Page::status(503)]);
    site.set("/p", Page::html("<p>fine</p>"));
    let f = fetcher(test_fetch_config());
    assert_eq!(body(&get(&f, &site.url("/p")).await), "<p>fine</p>");
    assert_eq!(site.hits("/p"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured() {
    let site = Site::start().await;
    site.queue(
        "/p",
        vec![Page::status(429).with_header("retry-after", "2")],
    );
    site.set("/p", Page::html("<p>fine</p>"));
    let f = fetcher(test_fetch_config());
    assert_eq!(body(&get(&f, &site.url("/p")).await), "<p>fine</p>");
    let t = site.times("/p");
    assert_eq!(t.len(), 2);
    let waited = t[1] - t[0];
    assert!(
        waited >= Duration::from_millis(1950),
        "retried after {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "retried after {waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_beyond_the_cap_skips_the_host_for_this_run() {
    let site = Site::start().await;
    site.set("/p", Page::status(503).with_header("retry-after", "3600"));
    let f = fetcher(test_fetch_config());
    let (class, detail) = failure(&get(&f, &site.url("/p")).await);
    assert_eq!(class, FailureClass::Deferred);
    assert!(
        detail.contains("exceeds") && detail.contains("skipped"),
        "{detail}"
    );
    assert_eq!(site.hits("/p"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robots_txt_disallow_means_the_page_is_never_requested() {
    let site = Site::start().await;
    site.set(
        "/robots.txt",
        Page::bytes(
            "text/plain",
            b"User-agent: *\nAllow: /\n\nUser-agent: citewatch\nDisallow: /private\n".to_vec(),
        ),
    );
    site.set("/private/p", Page::html("<p>secret</p>"));
    site.set("/public", Page::html("<p>public</p>"));
    let f = fetcher(test_fetch_config());
    let (class, detail) = failure(&get(&f, &site.url("/private/p")).await);
    assert_eq!(class, FailureClass::Blocked);
    assert!(
        detail.contains("robots.txt") && detail.contains("/private/p"),
        "{detail}"
    );
    assert_eq!(site.hits("/private/p"), 0);
    assert_eq!(body(&get(&f, &site.url("/public")).await), "<p>public</p>");
    assert_eq!(
        site.hits("/robots.txt"),
        1,
        "robots.txt is fetched once per run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robots_txt_404_allows_and_500_defers() {
    let site = Site::start().await;
    site.set("/p", Page::html("<p>ok</p>"));
    let f = fetcher(test_fetch_config());
    assert_eq!(
        body(&get(&f, &site.url("/p")).await),
        "<p>ok</p>",
        "no robots.txt (404): everything allowed"
    );

    let site = Site::start().await;
    site.set("/robots.txt", Page::status(500));
    site.set("/p", Page::html("<p>ok</p>"));
    let f = fetcher(test_fetch_config());
    let (class, detail) = failure(&get(&f, &site.url("/p")).await);
    assert_eq!(class, FailureClass::Deferred);
    assert!(
        detail.contains("robots.txt") && detail.contains("500"),
        "{detail}"
    );
    assert_eq!(site.hits("/p"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawl_delay_spaces_requests() {
    let site = Site::start().await;
    site.set(
        "/robots.txt",
        Page::bytes(
            "text/plain",
            b"User-agent: citewatch\nCrawl-delay: 1\n".to_vec(),
        ),
    );
    site.set("/a", Page::html("<p>a</p>"));
    site.set("/b", Page::html("<p>b</p>"));
    let f = fetcher(test_fetch_config());
    get(&f, &site.url("/a")).await;
    get(&f, &site.url("/b")).await;
    let gap = site.times("/b")[0] - site.times("/a")[0];
    assert!(gap >= Duration::from_millis(950), "{gap:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_loops_and_chains_are_bounded() {
    let site = Site::start().await;
    site.set("/a", Page::redirect(302, "/b"));
    site.set("/b", Page::redirect(302, "/a"));
    let f = fetcher(test_fetch_config());
    let (class, detail) = failure(&get(&f, &site.url("/a")).await);
    assert_eq!(
        (class, detail.as_str()),
        (FailureClass::Dead, "redirect loop")
    );
    for i in 0..7 {
        site.set(
            &format!("/r{i}"),
            Page::redirect(301, &format!("/r{}", i + 1)),
        );
    }
    let (_, detail) = failure(&get(&f, &site.url("/r0")).await);
    assert!(detail.contains("more than 5 redirects"), "{detail}");
    assert_eq!(site.hits("/r6"), 0);
}

/// http requests never build the https client (a run of http sources loads no certificate
/// roots); an https hop — here the target of an http source's redirect — is sent by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_https_client_is_built_for_https_hops_only() {
    let site = Site::start().await;
    site.set("/p", Page::html("<p>plain</p>"));
    let https = site.url("/p").replacen("http://", "https://", 1);
    site.set("/up", Page::redirect(301, &https));
    let f = fetcher(test_fetch_config());
    assert!(body(&get(&f, &site.url("/p")).await).contains("plain"));
    assert!(!f.tls_ready(), "an http fetch built the https client");
    // Nothing speaks TLS on that port: the hop fails (its origin's robots.txt cannot be read),
    // and nothing is judged on it.
    let (class, detail) = failure(&get(&f, &site.url("/up")).await);
    assert_eq!(class, FailureClass::Deferred, "{detail}");
    assert!(
        detail.contains("robots.txt of https://127.0.0.1"),
        "{detail}"
    );
    assert!(
        f.tls_ready(),
        "the https hop did not go to the https client"
    );
    assert_eq!(site.hits("/p"), 1);

    let g = fetcher(test_fetch_config());
    g.prepare_tls().unwrap();
    assert!(g.tls_ready());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_spelling_of_loopback_is_refused_without_a_connection() {
    let site = Site::start().await;
    site.set("/p", Page::html("<p>x</p>"));
    let port = site.addr.port();
    let cfg = FetchConfig {
        addresses: AddressPolicy::PublicOnly,
        ..test_fetch_config()
    };
    let f = fetcher(cfg);
    for host in [
        "127.0.0.1",
        "2130706433",
        "0x7f000001",
        "0177.0.0.1",
        "127.1",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "localhost",
    ] {
        let url = format!("http://{host}:{port}/p");
        let (class, detail) = failure(&get(&f, &url).await);
        assert_eq!(class, FailureClass::Blocked, "{url}: {detail}");
        assert!(
            detail.contains("non-public") && detail.contains("--allow-private"),
            "{url}: {detail}"
        );
    }
    assert_eq!(site.total_hits(), 0, "no request reached the server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_a_metadata_address_is_refused_at_the_hop() {
    // Loopback-only policy: the first hop (127.0.0.1) is allowed, the redirect target
    // (169.254.169.254, the cloud metadata address) is refused before any packet is sent.
    let site = Site::start().await;
    site.set(
        "/p",
        Page::redirect(302, "http://169.254.169.254/latest/meta-data/"),
    );
    site.set("/q", Page::redirect(301, "http://10.0.0.1/internal"));
    let f = fetcher(test_fetch_config());
    for path in ["/p", "/q"] {
        let o = get(&f, &site.url(path)).await;
        let (class, detail) = failure(&o);
        assert_eq!(class, FailureClass::Blocked, "{detail}");
        assert!(
            detail.contains("link-local") || detail.contains("private"),
            "{detail}"
        );
        assert_eq!(o.redirects().len(), 1, "the hop is recorded");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_bomb_stops_at_the_cap() {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![b' '; 1 << 20];
    for _ in 0..64 {
        gz.write_all(&zeros).unwrap();
    }
    let bomb = gz.finish().unwrap();
    assert!(
        bomb.len() < 200_000,
        "64 MiB compress to {} bytes",
        bomb.len()
    );
    let site = Site::start().await;
    site.set(
        "/bomb",
        Page::bytes("text/html", bomb).with_header("content-encoding", "gzip"),
    );
    let cfg = FetchConfig {
        max_body_bytes: 4 << 20,
        ..test_fetch_config()
    };
    let f = fetcher(cfg);
    let (class, detail) = failure(&get(&f, &site.url("/bomb")).await);
    assert_eq!(class, FailureClass::Blocked);
    assert!(detail.contains("cap"), "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_drip_body_is_ended_by_the_deadline() {
    let site = Site::start().await;
    let mut page = Page::html(&"x".repeat(1000));
    page.drip = Some(Duration::from_millis(200));
    site.set("/drip", page);
    let cfg = FetchConfig {
        timeout: Duration::from_secs(2),
        retries: 0,
        ..test_fetch_config()
    };
    let f = fetcher(cfg);
    let started = std::time::Instant::now();
    let (class, detail) = failure(&get(&f, &site.url("/drip")).await);
    assert_eq!(class, FailureClass::Transient);
    assert!(detail.contains("timed out"), "{detail}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_1252_pages_verify_accented_quotes() {
    let site = Site::start().await;
    // "Les données sont « chiffrées » et “protégées” — toujours." in windows-1252, no charset
    // in the header: the <meta> says it.
    let mut bytes = b"<html><head><meta charset=\"windows-1252\"></head><body><p>Les donn\xe9es sont \xab chiffr\xe9es \xbb et \x93prot\xe9g\xe9es\x94 \x97 toujours.</p></body></html>".to_vec();
    bytes.extend_from_slice(b"\n");
    site.set("/fr", Page::bytes("text/html", bytes));
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[(
                "iso",
                "yes_public",
                vec![source(
                    &site.url("/fr"),
                    "quote = \"Les données sont « chiffrées » et \\\"protégées\\\" - toujours.\"",
                )],
            )],
        ),
    )]);
    env.run_at("2026-08-01T00:00:00Z").await;
    let store = env.store().await;
    let latest = store.latest_verdicts().await.unwrap();
    assert_eq!(latest[0].verdict, "verified", "{}", latest[0].detail);
    store.close().await;
}
