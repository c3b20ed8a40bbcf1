//! Notifications with the real binary against loopback receivers that speak each target's
//! documented format: a webhook receiver that deduplicates by idempotency key and checks the
//! HMAC signature, a Slack-compatible incoming webhook, and GitHub's REST issues API (the
//! endpoints citewatch uses, their JSON shapes and rate-limit headers, as documented at
//! <https://docs.github.com/en/rest/issues/issues>, <https://docs.github.com/en/rest/issues/comments>
//! and <https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api>).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Request, Response};
use serde_json::{Value, json};

use crate::env::{Env, code, offering, source, stderr, stdout};
use crate::site::{Page, Site};

const TOKEN: &str = "tok-SECRET-gh";
const HOOK_SECRET: &str = "hook-SECRET-key";
const VARS: &[(&str, &str)] = &[("CW_GH_TOKEN", TOKEN), ("CW_HOOK_SECRET", HOOK_SECRET)];

async fn serve<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(Request<Body>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    let app = axum::Router::new().fallback(move |req: Request<Body>| {
        let h = handler.clone();
        async move { h(req).await }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    addr
}

/// A webhook receiver as the README tells users to write one: verify the signature, then
/// process each idempotency key once.
#[derive(Default)]
struct Hook {
    /// Every request: headers and body.
    received: Vec<(HeaderMap, Vec<u8>)>,
    /// Events processed, in order (first sighting of each key only).
    processed: Vec<Value>,
    /// Keys seen again and ignored.
    duplicates: Vec<String>,
    /// Requests whose signature did not verify.
    forged: usize,
    /// Statuses to answer with before answering 200.
    script: VecDeque<u16>,
    /// Record requests but never answer (a receiver that processed and then hung).
    hang: bool,
}

fn verify(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    use hmac::{KeyInit, Mac};
    let Some(hex_sig) = header.and_then(|h| h.strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

async fn start_hook(secret: Option<&'static str>) -> (SocketAddr, Arc<Mutex<Hook>>) {
    let hook = Arc::new(Mutex::new(Hook::default()));
    let h = hook.clone();
    let addr = serve(move |req: Request<Body>| {
        let h = h.clone();
        async move {
            let headers = req.headers().clone();
            let body = to_bytes(req.into_body(), 1 << 20).await.unwrap().to_vec();
            let (status, hang) = {
                let mut s = h.lock().unwrap();
                s.received.push((headers.clone(), body.clone()));
                let status = s.script.pop_front().unwrap_or(200);
                let hang = s.hang;
                if status == 200 {
                    let signed = match secret {
                        Some(k) => verify(
                            k.as_bytes(),
                            &body,
                            headers
                                .get("x-citewatch-signature")
                                .and_then(|v| v.to_str().ok()),
                        ),
                        None => true,
                    };
                    if !signed {
                        s.forged += 1;
                    } else {
                        let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        let key = headers
                            .get("idempotency-key")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string);
                        if let Some(key) = &key {
                            assert_eq!(&event["key"], &json!(key), "header and body keys agree");
                        }
                        // Slack messages carry no key: each is its own.
                        if let Some(key) =
                            key.filter(|k| s.processed.iter().any(|e| e["key"] == json!(k)))
                        {
                            s.duplicates.push(key);
                        } else {
                            s.processed.push(event);
                        }
                    }
                }
                (status, hang)
            };
            if hang {
                std::future::pending::<()>().await;
            }
            Response::builder()
                .status(status)
                .body(Body::from("ok"))
                .unwrap()
        }
    })
    .await;
    (addr, hook)
}

#[derive(Debug, Clone)]
struct GhIssue {
    number: u64,
    title: String,
    body: String,
    state: String,
    state_reason: Option<String>,
    labels: Vec<String>,
    comments: Vec<String>,
}

/// GitHub's issues API, in memory.
#[derive(Default)]
struct GitHub {
    issues: Vec<GhIssue>,
    /// Every request: method and path with query.
    requests: Vec<(String, String)>,
    /// Writes (POST/PATCH) and when they arrived.
    writes: Vec<Instant>,
    /// Create the next issue, then never answer.
    hang_after_create: bool,
    /// Answer everything with GitHub's primary rate-limit error.
    exhausted: bool,
    /// Requests with a wrong or missing token.
    unauthorised: usize,
    addr: Option<SocketAddr>,
}

fn issue_json(i: &GhIssue, addr: SocketAddr) -> Value {
    json!({
        "id": 1000 + i.number,
        "number": i.number,
        "title": i.title,
        "body": i.body,
        "state": i.state,
        "state_reason": i.state_reason,
        "labels": i.labels.iter().map(|l| json!({"name": l})).collect::<Vec<_>>(),
        "html_url": format!("http://{addr}/o/r/issues/{}", i.number),
        "comments": i.comments.len(),
    })
}

fn gh_response(status: u16, used: usize, body: Value, link: Option<String>) -> Response<Body> {
    let reset = chrono::Utc::now().timestamp() + 3600;
    let mut r = Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .header("x-ratelimit-limit", "5000")
        .header("x-ratelimit-remaining", (5000 - used).to_string())
        .header("x-ratelimit-used", used.to_string())
        .header("x-ratelimit-reset", reset.to_string())
        .header("x-ratelimit-resource", "core");
    if let Some(l) = link {
        r = r.header("link", l);
    }
    r.body(Body::from(body.to_string())).unwrap()
}

/// Two issues (or comments) per page, so pagination by `Link` is exercised.
const PAGE: usize = 2;

fn page_of<T: Clone>(all: &[T], query: &str) -> (Vec<T>, Option<usize>) {
    let page: usize = query
        .split('&')
        .find_map(|p| p.strip_prefix("page="))
        .and_then(|p| p.parse().ok())
        .unwrap_or(1);
    let start = (page - 1) * PAGE;
    let items = all.iter().skip(start).take(PAGE).cloned().collect();
    let next = (start + PAGE < all.len()).then_some(page + 1);
    (items, next)
}

async fn start_github() -> (SocketAddr, Arc<Mutex<GitHub>>) {
    let gh = Arc::new(Mutex::new(GitHub::default()));
    let g = gh.clone();
    let addr = serve(move |req: Request<Body>| {
        let g = g.clone();
        async move {
            let method = req.method().to_string();
            let path = req.uri().path().to_string();
            let query = req.uri().query().unwrap_or("").to_string();
            let auth = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let ua = req.headers().get("user-agent").is_some();
            let body = to_bytes(req.into_body(), 1 << 22).await.unwrap();
            let input: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let (response, hang) = {
                let mut s = g.lock().unwrap();
                let addr = s.addr.unwrap();
                s.requests.push((method.clone(), format!("{path}?{query}")));
                let used = s.requests.len();
                if auth.as_deref() != Some(&format!("Bearer {TOKEN}")) || !ua {
                    s.unauthorised += 1;
                    return gh_response(401, used, json!({"message": "Bad credentials"}), None);
                }
                if s.exhausted {
                    let reset = chrono::Utc::now().timestamp() + 3000;
                    return Response::builder()
                        .status(403)
                        .header("x-ratelimit-limit", "5000")
                        .header("x-ratelimit-remaining", "0")
                        .header("x-ratelimit-reset", reset.to_string())
                        .body(Body::from(
                            json!({"message": "API rate limit exceeded for user ID 1."}).to_string(),
                        ))
                        .unwrap();
                }
                if method != "GET" {
                    s.writes.push(Instant::now());
                }
                let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
                let mut hang = false;
                let response = match (method.as_str(), parts.as_slice()) {
                    ("GET", ["repos", "o", "r", "issues"]) => {
                        let label = query
                            .split('&')
                            .find_map(|p| p.strip_prefix("labels="))
                            .unwrap_or("");
                        let all: Vec<GhIssue> = s
                            .issues
                            .iter()
                            .filter(|i| label.is_empty() || i.labels.iter().any(|l| l == label))
                            .cloned()
                            .collect();
                        let (items, next) = page_of(&all, &query);
                        let link = next.map(|n| {
                            format!(
                                "<http://{addr}/repos/o/r/issues?state=all&labels={label}&page={n}>; rel=\"next\""
                            )
                        });
                        gh_response(
                            200,
                            used,
                            Value::Array(items.iter().map(|i| issue_json(i, addr)).collect()),
                            link,
                        )
                    }
                    ("POST", ["repos", "o", "r", "issues"]) => {
                        let number = s.issues.len() as u64 + 1;
                        let issue = GhIssue {
                            number,
                            title: input["title"].as_str().unwrap_or("").into(),
                            body: input["body"].as_str().unwrap_or("").into(),
                            state: "open".into(),
                            state_reason: None,
                            labels: input["labels"]
                                .as_array()
                                .map(|a| a.iter().filter_map(|l| l.as_str().map(String::from)).collect())
                                .unwrap_or_default(),
                            comments: vec![],
                        };
                        let out = issue_json(&issue, addr);
                        s.issues.push(issue);
                        hang = std::mem::take(&mut s.hang_after_create);
                        gh_response(201, used, out, None)
                    }
                    ("PATCH", ["repos", "o", "r", "issues", n]) => {
                        let n: u64 = n.parse().unwrap();
                        let i = s.issues.iter_mut().find(|i| i.number == n).unwrap();
                        if let Some(st) = input["state"].as_str() {
                            i.state = st.into();
                            i.state_reason = input["state_reason"].as_str().map(String::from);
                        }
                        if let Some(b) = input["body"].as_str() {
                            i.body = b.into();
                        }
                        let out = issue_json(i, addr);
                        gh_response(200, used, out, None)
                    }
                    ("GET", ["repos", "o", "r", "issues", n, "comments"]) => {
                        let n: u64 = n.parse().unwrap();
                        let i = s.issues.iter().find(|i| i.number == n).unwrap();
                        let all: Vec<Value> = i
                            .comments
                            .iter()
                            .enumerate()
                            .map(|(k, b)| json!({"id": k + 1, "body": b}))
                            .collect();
                        let (items, next) = page_of(&all, &query);
                        let link = next.map(|p| {
                            format!("<http://{addr}/repos/o/r/issues/{n}/comments?page={p}>; rel=\"next\"")
                        });
                        gh_response(200, used, Value::Array(items), link)
                    }
                    ("POST", ["repos", "o", "r", "issues", n, "comments"]) => {
                        let n: u64 = n.parse().unwrap();
                        let i = s.issues.iter_mut().find(|i| i.number == n).unwrap();
                        let b = input["body"].as_str().unwrap_or("").to_string();
                        i.comments.push(b.clone());
                        gh_response(201, used, json!({"id": i.comments.len(), "body": b}), None)
                    }
                    _ => gh_response(404, used, json!({"message": "Not Found"}), None),
                };
                (response, hang)
            };
            if hang {
                std::future::pending::<()>().await;
            }
            response
        }
    })
    .await;
    gh.lock().unwrap().addr = Some(addr);
    (addr, gh)
}

/// Three citations on one fixture site: A and C with quotes, B watching for an absent term.
async fn scenario() -> (Site, Env) {
    let site = Site::start().await;
    site.set(
        "/a",
        Page::html("<p>Alpha is SOC 2 Type II audited every year.</p>"),
    );
    site.set("/b", Page::html("<p>Beta has no certifications yet.</p>"));
    site.set(
        "/c",
        Page::html("<p>Gamma signs a data processing agreement.</p>"),
    );
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[
                (
                    "soc2",
                    "yes_public",
                    vec![source(&site.url("/a"), "quote = \"SOC 2 Type II audited\"")],
                ),
                (
                    "iso",
                    "no_evidence",
                    vec![source(&site.url("/b"), "absent = [\"ISO 27001\"]")],
                ),
                (
                    "dpa",
                    "yes_public",
                    vec![source(
                        &site.url("/c"),
                        "quote = \"signs a data processing agreement\"",
                    )],
                ),
            ],
        ),
    )]);
    (site, env)
}

fn config(env: &Env, targets: &str) {
    std::fs::write(
        env.dir.path().join("citewatch.toml"),
        format!("rate = 50\nreport_url = \"https://ci.example/report.html\"\n{targets}"),
    )
    .unwrap();
}

fn run(env: &Env) -> std::process::Output {
    let out = env.cli_env(&["run", "--allow-private"], VARS);
    assert_eq!(code(&out), 0, "run failed: {}", stderr(&out));
    out
}

fn no_secrets(env: &Env, outputs: &[&std::process::Output]) {
    for o in outputs {
        for text in [stdout(o), stderr(o)] {
            assert!(!text.contains("SECRET"), "a secret leaked:\n{text}");
        }
    }
    let db = std::fs::read(&env.db).unwrap();
    assert!(
        !db.windows(6).any(|w| w == b"SECRET"),
        "a secret reached the database"
    );
}

fn events(hook: &Mutex<Hook>) -> Vec<(String, i64, String)> {
    hook.lock()
        .unwrap()
        .processed
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_string(),
                e["item"]["id"].as_i64().unwrap_or(0),
                e["item"]["url"]
                    .as_str()
                    .unwrap_or("")
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_opened_and_closed_across_three_runs_reach_every_target_exactly_once() {
    let (site, env) = scenario().await;
    let (hook_addr, hook) = start_hook(Some(HOOK_SECRET)).await;
    let (slack_addr, slack) = start_hook(None).await;
    let (gh_addr, gh) = start_github().await;
    config(
        &env,
        &format!(
            "[[notify]]\nkind = \"webhook\"\nurl = \"http://{hook_addr}/hook\"\nsecret_env = \"CW_HOOK_SECRET\"\n\n\
             [[notify]]\nkind = \"slack\"\nurl = \"http://{slack_addr}/services/T000/B000/slack-SECRET\"\n\n\
             [[notify]]\nkind = \"github\"\nurl = \"http://{gh_addr}\"\nrepo = \"o/r\"\ntoken_env = \"CW_GH_TOKEN\"\n"
        ),
    );

    // Run 1: A's quote is gone, B's absent term appeared.
    site.set(
        "/a",
        Page::html("<p>Alpha's audit status is being reviewed.</p>"),
    );
    site.set("/b", Page::html("<p>Beta is ISO 27001 certified.</p>"));
    let r1 = run(&env);
    assert_eq!(
        events(&hook),
        vec![
            ("opened".into(), 1, "a".into()),
            ("opened".into(), 2, "b".into())
        ]
    );
    {
        let g = gh.lock().unwrap();
        assert_eq!(g.issues.len(), 2, "{:#?}", g.issues);
        let a = &g.issues[0];
        assert_eq!(a.state, "open");
        assert_eq!(a.labels, vec!["citewatch"]);
        assert!(
            a.title.contains("missing") && a.title.contains("acme / soc2"),
            "{}",
            a.title
        );
        assert!(a.body.contains("<!-- citewatch:item "), "{}", a.body);
        assert!(
            a.body.contains("SOC 2 Type II audited"),
            "the quote: {}",
            a.body
        );
        assert!(
            a.body.contains("citewatch queue resolve 1") && !a.body.contains("queue accept"),
            "a missing quote has no obvious fix to accept: {}",
            a.body
        );
        assert!(
            a.body.contains("https://ci.example/report.html#item-1"),
            "deep link: {}",
            a.body
        );
    }

    // Run 2: A recovers (citewatch closes its item), C's quote goes.
    site.set(
        "/a",
        Page::html("<p>Alpha is SOC 2 Type II audited every year.</p>"),
    );
    site.set(
        "/c",
        Page::html("<p>Gamma's agreements are under review.</p>"),
    );
    let r2 = run(&env);
    // A person resolves B between runs; it goes out with the next delivery.
    let resolved = env.cli_env(
        &[
            "queue", "resolve", "2", "--note", "checked", "--author", "tester",
        ],
        VARS,
    );
    assert_eq!(code(&resolved), 0, "{}", stderr(&resolved));
    // Run 3: A's quote goes again (new wording, so a new problem).
    site.set("/a", Page::html("<p>Alpha's audit lapsed this spring.</p>"));
    let r3 = run(&env);

    assert_eq!(
        events(&hook),
        vec![
            ("opened".into(), 1, "a".into()),
            ("opened".into(), 2, "b".into()),
            ("closed".into(), 1, "a".into()),
            ("opened".into(), 3, "c".into()),
            ("resolved".into(), 2, "b".into()),
            ("reopened".into(), 4, "a".into()),
        ]
    );
    {
        let h = hook.lock().unwrap();
        assert!(h.duplicates.is_empty(), "{:?}", h.duplicates);
        assert_eq!(h.forged, 0, "every signature verifies");
        let resolved = &h.processed[4];
        assert_eq!(resolved["item"]["status"], "resolved");
        assert_eq!(resolved["item"]["closed_by"], "tester");
        assert_eq!(resolved["item"]["note"], "checked");
        let opened = &h.processed[0];
        for field in ["id", "offering", "dimension", "url", "reason", "status"] {
            assert!(!opened["item"][field].is_null(), "item.{field}: {opened}");
        }
        assert_eq!(opened["item"]["quote"], "SOC 2 Type II audited");
        assert_eq!(opened["item"]["verdict"], "missing");
        assert_eq!(
            opened["links"]["item"],
            "https://ci.example/report.html#item-1"
        );
        // A body changed in transit no longer matches its signature.
        let (headers, body) = h.received[0].clone();
        let sig = headers
            .get("x-citewatch-signature")
            .unwrap()
            .to_str()
            .unwrap();
        assert!(verify(HOOK_SECRET.as_bytes(), &body, Some(sig)));
        let mut forged = body.clone();
        let at = forged.iter().position(|&b| b == b'o').unwrap();
        forged[at] = b'x';
        assert!(!verify(HOOK_SECRET.as_bytes(), &forged, Some(sig)));
        assert!(!verify(b"another key", &body, Some(sig)));
    }
    {
        let s = slack.lock().unwrap();
        let texts: Vec<String> = s
            .processed
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(texts.len(), 3, "one message per run: {texts:#?}");
        assert!(
            texts[0].starts_with("citewatch: 2 queue items opened, 0 closed"),
            "{}",
            texts[0]
        );
        assert!(
            texts[1].starts_with("citewatch: 1 queue item opened, 1 closed"),
            "{}",
            texts[1]
        );
        assert!(
            texts[2].starts_with("citewatch: 1 queue item opened, 1 closed"),
            "{}",
            texts[2]
        );
        assert!(
            texts[0].contains("<https://ci.example/report.html#item-1|#1>"),
            "{}",
            texts[0]
        );
    }
    let issue_states = |g: &GitHub| -> Vec<(u64, String, usize)> {
        g.issues
            .iter()
            .map(|i| (i.number, i.state.clone(), i.comments.len()))
            .collect()
    };
    let writes_after_three;
    {
        let g = gh.lock().unwrap();
        // A: opened, closed with a comment, reopened with a comment; B: closed with a comment;
        // C: opened.
        assert_eq!(
            issue_states(&g),
            vec![
                (1, "open".into(), 2),
                (2, "closed".into(), 1),
                (3, "open".into(), 0)
            ],
            "{:#?}",
            g.issues
        );
        assert!(g.issues[0].comments[0].contains("citewatch closed queue item #1"));
        assert!(g.issues[0].comments[1].starts_with("<!-- citewatch:event "));
        assert!(g.issues[0].comments[1].contains("Reopened"));
        assert!(g.issues[1].comments[0].contains("resolved by tester: checked"));
        assert_eq!(g.issues[1].state_reason.as_deref(), Some("completed"));
        assert_eq!(g.unauthorised, 0);
        // Within a delivery, writes are spaced as GitHub asks (one second apart).
        for run in [&g.writes[..2], &g.writes[2..5], &g.writes[5..]] {
            for pair in run.windows(2) {
                assert!(
                    pair[1] - pair[0] >= Duration::from_millis(900),
                    "writes too close"
                );
            }
        }
        assert_eq!(
            g.writes.len(),
            9,
            "2 creates; comment, close, create; 2 × comment and state"
        );
        writes_after_three = g.writes.len();
    }

    // Nothing pending: a manual flush sends nothing anywhere.
    let flush = env.cli_env(&["notify"], VARS);
    assert_eq!(code(&flush), 0, "{}", stderr(&flush));
    assert!(
        stdout(&flush).contains("github o/r: 0 sent, 0 waiting"),
        "{}",
        stdout(&flush)
    );
    assert_eq!(gh.lock().unwrap().writes.len(), writes_after_three);
    assert_eq!(hook.lock().unwrap().received.len(), 6);
    assert_eq!(slack.lock().unwrap().received.len(), 3);

    // The database is lost: a fresh one finds the issues again by their markers instead of
    // opening duplicates (B's problem is back as far as the new database knows: reopened).
    std::fs::remove_file(&env.db).unwrap();
    let r4 = run(&env);
    {
        let g = gh.lock().unwrap();
        assert_eq!(g.issues.len(), 3, "no duplicate issues: {:#?}", g.issues);
        assert_eq!(
            issue_states(&g)
                .iter()
                .map(|(n, s, _)| (*n, s.clone()))
                .collect::<Vec<_>>(),
            vec![(1, "open".into()), (2, "open".into()), (3, "open".into())]
        );
    }
    let check = env.cli_env(&["check"], VARS);
    assert!(!stdout(&check).contains("NOTIFY:"), "{}", stdout(&check));
    no_secrets(&env, &[&r1, &r2, &r3, &r4, &flush, &check, &resolved]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_answering_500_then_200_receives_every_event_once() {
    let (site, env) = scenario().await;
    let (hook_addr, hook) = start_hook(None).await;
    hook.lock().unwrap().script = VecDeque::from([500, 503]);
    config(
        &env,
        &format!("[[notify]]\nkind = \"webhook\"\nurl = \"http://{hook_addr}/hook\"\n"),
    );
    site.set(
        "/a",
        Page::html("<p>Alpha's audit status is being reviewed.</p>"),
    );
    site.set(
        "/c",
        Page::html("<p>Gamma's agreements are under review.</p>"),
    );
    run(&env);
    let h = hook.lock().unwrap();
    assert_eq!(h.received.len(), 4, "two failures, then the two events");
    assert_eq!(h.processed.len(), 2);
    assert!(h.duplicates.is_empty());
    let keys: Vec<&Value> = h.processed.iter().map(|e| &e["key"]).collect();
    assert_ne!(keys[0], keys[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_is_down_never_fails_the_run_and_check_counts_what_waits() {
    let (site, env) = scenario().await;
    // A port nobody listens on.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    config(
        &env,
        &format!("[[notify]]\nkind = \"webhook\"\nurl = \"http://{dead}/hook\"\n"),
    );
    site.set(
        "/a",
        Page::html("<p>Alpha's audit status is being reviewed.</p>"),
    );
    let out = run(&env);
    assert!(stderr(&out).contains("1 waiting"), "{}", stderr(&out));
    let check = env.cli(&["check"]);
    assert_eq!(
        code(&check),
        1,
        "stale evidence, not a notification failure"
    );
    let text = stdout(&check);
    assert!(
        text.contains(
            "NOTIFY: 1 event not yet delivered to webhook 127.0.0.1 (last error: cannot connect)"
        ),
        "{text}"
    );
    let json: Value =
        serde_json::from_str(&stdout(&env.cli(&["check", "--format", "json"]))).unwrap();
    assert_eq!(json["notifications"][0]["undelivered"], 1);
    assert_eq!(json["notifications"][0]["target"], "webhook 127.0.0.1");

    // The target comes back: the waiting event goes out with the next flush.
    let (hook_addr, hook) = start_hook(None).await;
    let port_text = std::fs::read_to_string(env.dir.path().join("citewatch.toml"))
        .unwrap()
        .replace(&dead.to_string(), &hook_addr.to_string());
    std::fs::write(env.dir.path().join("citewatch.toml"), port_text).unwrap();
    let flush = env.cli(&["notify"]);
    assert_eq!(code(&flush), 0);
    // A changed URL is a new target: it gets the items still open, not history.
    assert_eq!(hook.lock().unwrap().processed.len(), 1);
    assert_eq!(hook.lock().unwrap().processed[0]["event"], "opened");
}

/// Waits until `f` holds, polling; fails the test after `limit`.
fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < limit,
            "condition not met within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill9(child: &mut std::process::Child) {
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_between_send_and_mark_delivers_nothing_twice() {
    let (site, env) = scenario().await;
    let (hook_addr, hook) = start_hook(Some(HOOK_SECRET)).await;
    let (gh_addr, gh) = start_github().await;
    config(
        &env,
        &format!(
            "[[notify]]\nkind = \"webhook\"\nurl = \"http://{hook_addr}/hook\"\nsecret_env = \"CW_HOOK_SECRET\"\n\n\
             [[notify]]\nkind = \"github\"\nurl = \"http://{gh_addr}\"\nrepo = \"o/r\"\ntoken_env = \"CW_GH_TOKEN\"\n"
        ),
    );
    site.set(
        "/a",
        Page::html("<p>Alpha's audit status is being reviewed.</p>"),
    );
    site.set(
        "/c",
        Page::html("<p>Gamma's agreements are under review.</p>"),
    );

    // The webhook receiver processes the first event and never answers: citewatch is killed
    // while it waits, after sending and before marking.
    hook.lock().unwrap().hang = true;
    let mut child = env
        .command(&["run", "--allow-private"], VARS)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(30), || {
        !hook.lock().unwrap().received.is_empty()
    });
    kill9(&mut child);
    hook.lock().unwrap().hang = false;
    assert_eq!(hook.lock().unwrap().processed.len(), 1);

    // GitHub creates the first issue and never answers: killed again, after the create.
    gh.lock().unwrap().hang_after_create = true;
    let mut child = env
        .command(&["notify"], VARS)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(30), || {
        gh.lock().unwrap().issues.len() == 1
    });
    kill9(&mut child);

    // The next delivery completes both: the webhook sees the first key again and ignores
    // it; GitHub finds the issue it created by its marker.
    let flush = env.cli_env(&["notify"], VARS);
    assert_eq!(code(&flush), 0, "{}", stderr(&flush));
    let h = hook.lock().unwrap();
    assert_eq!(h.processed.len(), 2, "each event processed once");
    assert_eq!(
        h.duplicates.len(),
        1,
        "the one in flight was re-sent with its key"
    );
    assert_eq!(h.duplicates[0], h.processed[0]["key"].as_str().unwrap());
    let g = gh.lock().unwrap();
    assert_eq!(g.issues.len(), 2, "no duplicate issue: {:#?}", g.issues);
    assert!(g.issues.iter().all(|i| i.state == "open"));
    drop((h, g));
    let again = env.cli_env(&["notify"], VARS);
    assert!(
        stdout(&again).contains("0 sent, 0 waiting"),
        "{}",
        stdout(&again)
    );
    no_secrets(&env, &[&flush, &again]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_rate_limits_stop_delivery_until_reset_without_failing_the_run() {
    let (site, env) = scenario().await;
    let (gh_addr, gh) = start_github().await;
    config(
        &env,
        &format!(
            "[[notify]]\nkind = \"github\"\nurl = \"http://{gh_addr}/\"\nrepo = \"o/r\"\ntoken_env = \"CW_GH_TOKEN\"\nper = \"offering\"\nlabels = [\"evidence\", \"citewatch\"]\n"
        ),
    );
    site.set(
        "/a",
        Page::html("<p>Alpha's audit status is being reviewed.</p>"),
    );
    site.set(
        "/c",
        Page::html("<p>Gamma's agreements are under review.</p>"),
    );
    gh.lock().unwrap().exhausted = true;
    let out = run(&env);
    assert!(stderr(&out).contains("2 waiting"), "{}", stderr(&out));
    assert_eq!(
        gh.lock().unwrap().requests.len(),
        1,
        "one request, then it waits for the reset instead of hammering"
    );
    let check = env.cli_env(&["check"], VARS);
    assert!(
        stdout(&check).contains("GitHub rate limit exhausted until"),
        "{}",
        stdout(&check)
    );

    gh.lock().unwrap().exhausted = false;
    let flush = env.cli_env(&["notify"], VARS);
    assert!(
        stdout(&flush).contains("github o/r: 2 sent, 0 waiting"),
        "{}",
        stdout(&flush)
    );
    let g = gh.lock().unwrap();
    // One issue per offering, listing both open items.
    assert_eq!(g.issues.len(), 1, "{:#?}", g.issues);
    assert_eq!(g.issues[0].labels, vec!["evidence", "citewatch"]);
    assert!(
        g.issues[0]
            .body
            .contains("<!-- citewatch:offering acme -->")
    );
    assert!(
        g.issues[0].body.contains("(#1)") && g.issues[0].body.contains("(#2)"),
        "{}",
        g.issues[0].body
    );
    no_secrets(&env, &[&out, &check, &flush]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abnormal_run_end_is_an_event_too() {
    let (site, env) = scenario().await;
    let mut slow = Page::html(&"x".repeat(100));
    slow.drip = Some(Duration::from_millis(100));
    site.set("/c", slow);
    let (hook_addr, hook) = start_hook(None).await;
    config(
        &env,
        &format!("[[notify]]\nkind = \"webhook\"\nurl = \"http://{hook_addr}/hook\"\n"),
    );
    let out = env.cli(&["run", "--allow-private", "--deadline", "1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let h = hook.lock().unwrap();
    let failed: Vec<&Value> = h
        .processed
        .iter()
        .filter(|e| e["event"] == "run_failed")
        .collect();
    assert_eq!(failed.len(), 1, "{:#?}", h.processed);
    assert!(failed[0].get("item").is_none(), "no item for run_failed");
    assert_eq!(failed[0]["run"]["status"], "failed");
    assert!(
        failed[0]["run"]["ended"]
            .as_str()
            .unwrap()
            .contains("run deadline"),
        "{}",
        failed[0]
    );
}
