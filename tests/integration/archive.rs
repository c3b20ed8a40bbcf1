//! Archived copies of lost evidence, against a loopback server answering the Wayback Machine's
//! CDX and availability APIs exactly as documented:
//! - CDX server: <https://github.com/internetarchive/wayback/tree/master/wayback-cdx-server>
//!   (`output=json`: an array of rows, the first naming the fields);
//! - availability API: <https://archive.org/help/wayback_api.php>
//!   (`{"url", "archived_snapshots": {"closest": {"status", "available", "url", "timestamp"}}}`);
//! - captures: `/web/<timestamp>id_/<url>` serves the original bytes.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, Response};
use serde_json::{Value, json};

use crate::env::{Env, code, offering, source, stderr, stdout};
use crate::site::{Page, Site};

#[derive(Default)]
struct Archive {
    /// Status and body of CDX answers (None: the default, one capture on 2026-07-04).
    cdx: Option<(u16, String)>,
    /// Status and body of availability answers (None: 404).
    available: Option<(u16, String)>,
    /// The capture's page.
    page: String,
    /// Every request's path and query.
    hits: Vec<String>,
}

const CAPTURED: &str = "20260704093000";

async fn start_archive(page: &str) -> (std::net::SocketAddr, Arc<Mutex<Archive>>) {
    let state = Arc::new(Mutex::new(Archive {
        page: page.to_string(),
        ..Default::default()
    }));
    let st = state.clone();
    let app = axum::Router::new().fallback(move |req: Request<Body>| {
        let st = st.clone();
        async move {
            let path = req.uri().path().to_string();
            let query = req.uri().query().unwrap_or("").to_string();
            let mut s = st.lock().unwrap();
            s.hits.push(format!("{path}?{query}"));
            let (status, ctype, body) = if path == "/cdx/search/cdx" {
                let url = query
                    .split('&')
                    .find_map(|p| p.strip_prefix("url="))
                    .map(|u| {
                        url::form_urlencoded::parse(format!("u={u}").as_bytes())
                            .next()
                            .unwrap()
                            .1
                            .into_owned()
                    })
                    .unwrap_or_default();
                match &s.cdx {
                    Some((status, body)) => (*status, "application/json", body.clone()),
                    None => (
                        200,
                        "application/json",
                        json!([
                            ["timestamp", "original", "statuscode"],
                            ["20260101000000", url, "200"],
                            [CAPTURED, url, "200"]
                        ])
                        .to_string(),
                    ),
                }
            } else if path == "/wayback/available" {
                match &s.available {
                    Some((status, body)) => (*status, "application/json", body.clone()),
                    None => (404, "text/plain", "not found".into()),
                }
            } else if path.starts_with("/web/") && path.contains("id_/") {
                (200, "text/html; charset=utf-8", s.page.clone())
            } else if path.starts_with("/save/") {
                (200, "text/html", "<p>capture requested</p>".into())
            } else {
                (404, "text/plain", "not found".into())
            };
            Response::builder()
                .status(status)
                .header("content-type", ctype)
                .body(Body::from(body))
                .unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, state)
}

const QUOTE: &str = "SOC 2 Type II audited";

/// A citation whose quote is gone from the live page, and an archive at `endpoint`.
async fn lost_evidence(endpoint: &str, extra: &str) -> (Site, Env) {
    let site = Site::start().await;
    site.set(
        "/a",
        Page::html("<p>Alpha's audit status is being reviewed.</p>"),
    );
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[(
                "soc2",
                "yes_public",
                vec![source(
                    &site.url("/a"),
                    &format!("quote = \"{QUOTE}\"\n{extra}"),
                )],
            )],
        ),
    )]);
    std::fs::write(
        env.dir.path().join("citewatch.toml"),
        format!("rate = 50\narchive_endpoint = \"{endpoint}\"\n"),
    )
    .unwrap();
    (site, env)
}

fn check_json(env: &Env) -> Value {
    let o = env.cli(&["check", "--format", "json"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

fn run(env: &Env) -> std::process::Output {
    let o = env.cli(&["run", "--allow-private"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    o
}

fn count(a: &Mutex<Archive>, prefix: &str) -> usize {
    a.lock()
        .unwrap()
        .hits
        .iter()
        .filter(|h| h.starts_with(prefix))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_where_the_quote_stands_is_reported_everywhere() {
    let page = format!("<html><body><p>Alpha is {QUOTE} every year.</p></body></html>");
    let (addr, archive) = start_archive(&page).await;
    let endpoint = format!("http://{addr}");
    let (site, env) = lost_evidence(&endpoint, "").await;
    let out = run(&env);
    assert!(
        stderr(&out).contains("archived copies: 1 judged, evidence stands in 1"),
        "{}",
        stderr(&out)
    );
    let cited = site.url("/a");
    {
        let a = archive.lock().unwrap();
        let cdx = a.hits.iter().find(|h| h.starts_with("/cdx/")).unwrap();
        // Not after the cell's verified date (2026-07-05), the last capture, 200s only.
        assert!(cdx.contains("&to=20260705&"), "{cdx}");
        assert!(
            cdx.contains("limit=-1") && cdx.contains("filter=statuscode:200"),
            "{cdx}"
        );
        assert!(
            a.hits
                .iter()
                .any(|h| h == &format!("/web/{CAPTURED}id_/{cited}?")),
            "the original bytes, through the id_ form: {:?}",
            a.hits
        );
    }
    let json = check_json(&env);
    let item = &json["queue"][0];
    assert_eq!(item["reason"], "missing");
    assert_eq!(
        item["archived"],
        json!({
            "url": format!("{endpoint}/web/{CAPTURED}/{cited}"),
            "captured": "2026-07-04T09:30:00Z",
            "stands": true
        })
    );
    let md = stdout(&env.cli(&["report", "--format", "md"]));
    assert!(
        md.contains("the quote stands in the archived copy of 2026-07-04"),
        "{md}"
    );
    let html = stdout(&env.cli(&["report", "--format", "html"]));
    assert!(
        html.contains("the quote stands in the archived copy of 2026-07-04"),
        "{html}"
    );
    let show = stdout(&env.cli(&["queue", "show", "1"]));
    assert!(show.contains("archived copy of 2026-07-04"), "{show}");

    // At most one lookup per URL per day; a found capture is not looked up again at all.
    run(&env);
    assert_eq!(count(&archive, "/cdx/"), 1);
    assert_eq!(count(&archive, "/web/"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_without_the_quote_says_it_does_not_stand() {
    let (addr, _archive) = start_archive("<p>Alpha's audits are planned for next year.</p>").await;
    let (_site, env) = lost_evidence(&format!("http://{addr}/"), "").await;
    run(&env);
    let json = check_json(&env);
    assert_eq!(json["queue"][0]["archived"]["stands"], false);
    let md = stdout(&env.cli(&["report", "--format", "md"]));
    assert!(
        md.contains("the quote does not stand in the archived copy of 2026-07-04 either"),
        "{md}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_capture_means_no_archived_field_and_one_lookup_a_day() {
    let (addr, archive) = start_archive("unused").await;
    archive.lock().unwrap().cdx = Some((200, "[]".into()));
    let (_site, env) = lost_evidence(&format!("http://{addr}"), "").await;
    run(&env);
    let json = check_json(&env);
    assert!(
        json["queue"][0].get("archived").is_none(),
        "{}",
        json["queue"][0]
    );
    run(&env);
    assert_eq!(count(&archive, "/cdx/"), 1, "once per URL per day");
    assert_eq!(count(&archive, "/web/"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdx_failing_falls_back_to_the_availability_api() {
    let page = format!("<p>Alpha is {QUOTE}.</p>");
    let (addr, archive) = start_archive(&page).await;
    let (site, env) = lost_evidence(&format!("http://{addr}"), "").await;
    let cited = site.url("/a");
    {
        let mut a = archive.lock().unwrap();
        a.cdx = Some((500, "oops".into()));
        a.available = Some((
            200,
            json!({
                "url": cited,
                "archived_snapshots": {"closest": {
                    "status": "200", "available": true,
                    "url": format!("http://{addr}/web/20260702000000/{cited}"),
                    "timestamp": "20260702000000"
                }}
            })
            .to_string(),
        ));
    }
    run(&env);
    let json = check_json(&env);
    assert_eq!(
        json["queue"][0]["archived"]["captured"],
        "2026-07-02T00:00:00Z"
    );
    assert_eq!(json["queue"][0]["archived"]["stands"], true);
    assert!(
        archive
            .lock()
            .unwrap()
            .hits
            .iter()
            .any(|h| h.starts_with("/wayback/available?url=") && h.ends_with("&timestamp=20260705")),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_that_is_down_never_touches_the_run() {
    let (addr, archive) = start_archive("unused").await;
    {
        let mut a = archive.lock().unwrap();
        a.cdx = Some((503, "down".into()));
        a.available = Some((503, "down".into()));
    }
    let (_site, env) = lost_evidence(&format!("http://{addr}"), "").await;
    let out = run(&env);
    assert!(stderr(&out).contains("1 lookup failed"), "{}", stderr(&out));
    let json = check_json(&env);
    assert_eq!(json["citations"][0]["verdict"], "missing");
    assert_eq!(json["queue"][0]["reason"], "missing");
    assert!(json["queue"][0].get("archived").is_none());
    // Tried again on a later day, not within the same day.
    let before = archive.lock().unwrap().hits.len();
    run(&env);
    assert_eq!(archive.lock().unwrap().hits.len(), before);

    // Nobody listening at all: the same.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (_site, env) = lost_evidence(&format!("http://{dead}"), "").await;
    run(&env);
    assert_eq!(check_json(&env)["citations"][0]["verdict"], "missing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_archived_url_is_used_instead_of_a_lookup() {
    let page = format!("<p>Alpha is {QUOTE}.</p>");
    let (addr, archive) = start_archive(&page).await;
    let site = Site::start().await;
    let given = format!("http://{addr}/web/20260601000000/{}", site.url("/a"));
    let (_site2, env) = lost_evidence(
        // Lookups disabled: the given copy is still read.
        "",
        &format!("archived = \"{given}\""),
    )
    .await;
    run(&env);
    let json = check_json(&env);
    assert_eq!(
        json["queue"][0]["archived"],
        json!({"url": given, "captured": "2026-06-01T00:00:00Z", "stands": true})
    );
    let a = archive.lock().unwrap();
    assert_eq!(
        a.hits
            .iter()
            .filter(|h| h.starts_with("/cdx/") || h.starts_with("/wayback/"))
            .count(),
        0
    );
    assert!(
        a.hits
            .iter()
            .any(|h| h.starts_with("/web/20260601000000id_/")),
        "{:?}",
        a.hits
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_requests_are_off_by_default_and_once_per_url_when_on() {
    let (addr, archive) = start_archive("unused").await;
    let site = Site::start().await;
    site.set("/a", Page::html(&format!("<p>Alpha is {QUOTE}.</p>")));
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[(
                "soc2",
                "yes_public",
                vec![source(&site.url("/a"), &format!("quote = \"{QUOTE}\""))],
            )],
        ),
    )]);
    let config = |submit: bool| {
        std::fs::write(
            env.dir.path().join("citewatch.toml"),
            format!("rate = 50\narchive_endpoint = \"http://{addr}\"\narchive_submit = {submit}\n"),
        )
        .unwrap()
    };
    config(false);
    run(&env);
    assert!(
        archive.lock().unwrap().hits.is_empty(),
        "verified evidence needs no lookup"
    );
    config(true);
    // No capture since the verified date: one is requested.
    archive.lock().unwrap().cdx = Some((200, "[]".into()));
    let out = run(&env);
    assert!(
        stderr(&out).contains("1 capture requested"),
        "{}",
        stderr(&out)
    );
    run(&env);
    let a = archive.lock().unwrap();
    assert_eq!(
        a.hits.iter().filter(|h| h.starts_with("/save/")).count(),
        1,
        "{:?}",
        a.hits
    );
    assert!(
        a.hits.iter().any(|h| h.contains("&from=20260705&")),
        "{:?}",
        a.hits
    );
}
