//! Hostile servers: a catalogue of misbehaviours served over two runs (the second with
//! conditional requests), from raw TCP servers on 127.0.0.1 (port 0) that write whatever bytes
//! a broken or malicious server would. Whatever they do, every citation gets a verdict on every
//! run, nothing is `verified` on a body that lacks the quote, nothing panics, and each run
//! ends in bounded time. Nothing here sends a packet beyond loopback.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::env::{Env, at, code, offering, source, stdout};

const QUOTE: &str = "Customer data is encrypted at rest with AES-256";

fn good() -> String {
    format!(
        "<!doctype html><html><head><title>Security</title></head><body><main><h1>Security</h1>\
         <p>Our platform is built for enterprise customers and audited every year by independent firms.</p>\
         <p>{QUOTE}.</p><p>Access is logged and reviewed quarterly by the security team.</p></main></body></html>"
    )
}

/// What the server received: the request target as sent on the wire, and the header block.
#[derive(Debug, Clone)]
struct Request {
    target: String,
    head: String,
}

impl Request {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// A raw reply: bytes written as they are, after a pause.
struct Reply {
    delay: Duration,
    bytes: Vec<u8>,
}

impl Reply {
    fn raw(bytes: impl Into<Vec<u8>>) -> Reply {
        Reply {
            delay: Duration::ZERO,
            bytes: bytes.into(),
        }
    }
}

/// A response with a status line, headers and body. `Content-Length` is added unless the
/// headers set it or `Transfer-Encoding`; every response closes its connection.
fn http(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut out = format!("HTTP/1.1 {status}\r\n").into_bytes();
    let framed = headers.iter().any(|(k, _)| {
        k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding")
    });
    for (k, v) in headers {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    if !framed {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(body);
    Reply::raw(out)
}

fn html(status: &str, body: &str) -> Reply {
    http(
        status,
        &[("Content-Type", "text/html; charset=utf-8")],
        body.as_bytes(),
    )
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Deterministic junk with many control bytes.
fn junk(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 3) as u8
        })
        .collect()
}

type Behaviour = Box<dyn Fn(u32, &Request) -> Reply + Send + Sync>;

/// One misbehaviour: the path cited, whether the body served on day 1 and day 2 contains the
/// quote (where redirects lead included), and what is served.
struct Case {
    path: String,
    quote_on: [bool; 2],
    serve: Behaviour,
}

fn case(
    path: &str,
    quote_on: [bool; 2],
    serve: impl Fn(u32, &Request) -> Reply + Send + Sync + 'static,
) -> Case {
    Case {
        path: path.to_string(),
        quote_on,
        serve: Box::new(serve),
    }
}

/// The catalogue: over forty ways a server can misbehave.
fn catalogue() -> Vec<Case> {
    let big_etag = format!("\"{}\"", "e".repeat(9 * 1024));
    let big_cookie = format!("session={}", "c".repeat(30 * 1024));
    let long_location = format!("/{}", "a".repeat(20 * 1024));
    let deep = format!(
        "<html><body>{}<p>{QUOTE}.</p>{}</body></html>",
        "<div>".repeat(20_000),
        "</div>".repeat(20_000)
    );
    let gz = gzip(good().as_bytes());
    vec![
        // A well-behaved page that honours conditional requests: the control.
        case("/ok", [true, true], |_, r| {
            if r.header("if-none-match").as_deref() == Some("\"v1\"") {
                http("304 Not Modified", &[("ETag", "\"v1\"")], b"")
            } else {
                http(
                    "200 OK",
                    &[("Content-Type", "text/html"), ("ETag", "\"v1\"")],
                    good().as_bytes(),
                )
            }
        }),
        // Odd statuses.
        case("/s204", [false, false], |_, _| {
            http("204 No Content", &[], b"")
        }),
        case("/s206", [false, false], |_, _| {
            let g = good();
            http(
                "206 Partial Content",
                &[("Content-Type", "text/html")],
                &g.as_bytes()[..g.len() / 3],
            )
        }),
        case("/s418", [false, false], |_, _| {
            html("418 I'm a teapot", "teapot")
        }),
        case("/s599", [false, false], |_, _| {
            html("599 Network Error", "")
        }),
        case("/s999", [false, false], |_, _| {
            html("999 Request Denied", "")
        }),
        case("/s304-unconditional", [false, false], |_, _| {
            http("304 Not Modified", &[], b"")
        }),
        // A 304 after a 200 that carried no validators: the stored body is re-used.
        case("/s304-after-200", [true, true], |day, _| {
            if day == 1 {
                html("200 OK", &good())
            } else {
                http("304 Not Modified", &[], b"")
            }
        }),
        // Redirects.
        case("/redir-noloc", [false, false], |_, _| {
            http("302 Found", &[], b"")
        }),
        case("/redir-emptyloc", [false, false], |_, _| {
            http("301 Moved Permanently", &[("Location", "")], b"")
        }),
        case("/redir-relative", [true, true], |_, _| {
            http("302 Found", &[("Location", "target-rel")], b"")
        }),
        case("/target-rel", [true, true], |_, _| html("200 OK", &good())),
        case("/redir-js", [false, false], |_, _| {
            http("302 Found", &[("Location", "javascript:alert(1)")], b"")
        }),
        case("/redir-ftp", [false, false], |_, _| {
            http(
                "301 Moved Permanently",
                &[("Location", "ftp://ftp.invalid/file.txt")],
                b"",
            )
        }),
        case("/redir-unparsable", [false, false], |_, _| {
            http("302 Found", &[("Location", "http://[::1")], b"")
        }),
        case("/redir-20k", [false, false], move |_, _| {
            http("302 Found", &[("Location", &long_location)], b"")
        }),
        case("/redir-nonascii", [true, true], |_, _| {
            let mut r = b"HTTP/1.1 302 Found\r\nLocation: /caf\xc3\xa9\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec();
            r.shrink_to_fit();
            Reply::raw(r)
        }),
        case("/caf%C3%A9", [true, true], |_, _| html("200 OK", &good())),
        case("/redir-self", [false, false], |_, _| {
            http("301 Moved Permanently", &[("Location", "/redir-self")], b"")
        }),
        case("/redir-closed-port", [false, false], |_, _| {
            http("302 Found", &[("Location", "http://127.0.0.1:1/x")], b"")
        }),
        // Lying Content-Type.
        case("/ct-pdf-on-html", [true, true], |_, _| {
            http(
                "200 OK",
                &[("Content-Type", "application/pdf")],
                good().as_bytes(),
            )
        }),
        case("/ct-html-as-png", [true, true], |_, _| {
            http(
                "200 OK",
                &[("Content-Type", "image/png")],
                good().as_bytes(),
            )
        }),
        // Lying Content-Encoding.
        case("/ce-gzip-plain", [false, false], |_, _| {
            http(
                "200 OK",
                &[("Content-Type", "text/html"), ("Content-Encoding", "gzip")],
                good().as_bytes(),
            )
        }),
        case("/ce-br-plain", [false, false], |_, _| {
            http(
                "200 OK",
                &[("Content-Type", "text/html"), ("Content-Encoding", "br")],
                good().as_bytes(),
            )
        }),
        case("/ce-gzip-truncated", [false, false], move |_, _| {
            http(
                "200 OK",
                &[("Content-Type", "text/html"), ("Content-Encoding", "gzip")],
                &gz[..gz.len() * 2 / 3],
            )
        }),
        case("/ce-unknown", [true, true], |_, _| {
            http(
                "200 OK",
                &[
                    ("Content-Type", "text/html"),
                    ("Content-Encoding", "x-citewatch-unknown"),
                ],
                good().as_bytes(),
            )
        }),
        // Lying Content-Length.
        case("/cl-long", [false, false], |_, _| {
            http(
                "200 OK",
                &[("Content-Type", "text/html"), ("Content-Length", "100000")],
                good().as_bytes(),
            )
        }),
        case("/cl-nan", [false, false], |_, _| {
            http(
                "200 OK",
                &[("Content-Type", "text/html"), ("Content-Length", "lots")],
                good().as_bytes(),
            )
        }),
        // Bytes that are not text.
        case("/binary", [false, false], |_, _| {
            http(
                "200 OK",
                &[("Content-Type", "application/octet-stream")],
                &junk(4096),
            )
        }),
        case("/binary-as-html", [false, false], |_, _| {
            http("200 OK", &[("Content-Type", "text/html")], &junk(4096))
        }),
        // HTML parsing drops NUL characters, as browsers do: the reader sees the quote.
        case("/nul", [true, true], |_, _| {
            let g = good().replace("encrypted at rest", "encrypted\0 at rest");
            http("200 OK", &[("Content-Type", "text/html")], g.as_bytes())
        }),
        case("/invalid-utf8", [true, true], |_, _| {
            let mut g = good().into_bytes();
            let at = g.windows(6).position(|w| w == b"Access").unwrap();
            g.splice(at..at, b"\xff\xfe\xc3(".iter().copied());
            http(
                "200 OK",
                &[("Content-Type", "text/html; charset=utf-8")],
                &g,
            )
        }),
        case("/unknown-charset", [true, true], |_, _| {
            http(
                "200 OK",
                &[("Content-Type", "text/html; charset=x-klingon")],
                good().as_bytes(),
            )
        }),
        case("/deep-divs", [true, true], move |_, _| {
            html("200 OK", &deep)
        }),
        // Odd headers.
        case("/etag-9k", [true, true], move |_, r| {
            if r.header("if-none-match").as_deref() == Some(big_etag.as_str()) {
                http("304 Not Modified", &[("ETag", &big_etag)], b"")
            } else {
                http(
                    "200 OK",
                    &[("Content-Type", "text/html"), ("ETag", &big_etag)],
                    good().as_bytes(),
                )
            }
        }),
        case("/lm-garbage", [true, true], |_, _| {
            http(
                "200 OK",
                &[
                    ("Content-Type", "text/html"),
                    ("Last-Modified", "yesterday-ish, around teatime"),
                ],
                good().as_bytes(),
            )
        }),
        case("/retry-after-garbage", [false, false], |_, _| {
            http(
                "503 Service Unavailable",
                &[("Retry-After", "soon, maybe \u{1f600}")],
                b"",
            )
        }),
        case("/cookie-30k", [true, true], move |_, _| {
            http(
                "200 OK",
                &[("Content-Type", "text/html"), ("Set-Cookie", &big_cookie)],
                good().as_bytes(),
            )
        }),
        case("/slow-headers", [true, true], |_, _| {
            let mut r = html("200 OK", &good());
            r.delay = Duration::from_millis(2500);
            r
        }),
        case("/headers-300", [true, true], |_, _| {
            let names: Vec<String> = (0..300).map(|i| format!("X-Filler-{i}")).collect();
            let headers: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "1")).collect();
            let mut h = headers;
            h.push(("Content-Type", "text/html"));
            http("200 OK", &h, good().as_bytes())
        }),
        // Broken framing.
        case("/header-junk", [false, false], |_, _| {
            Reply::raw(format!(
                "HTTP/1.1 200 OK\r\nThis is not a header\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n{}",
                good()
            ))
        }),
        case("/chunked-bad", [false, false], |_, _| {
            http(
                "200 OK",
                &[
                    ("Content-Type", "text/html"),
                    ("Transfer-Encoding", "chunked"),
                ],
                b"zz\r\nhello\r\n0\r\n\r\n",
            )
        }),
        case("/status-garbage", [false, false], |_, _| {
            Reply::raw(format!(
                "HTTP/1.1 abc OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n{}",
                good()
            ))
        }),
        case("/http09", [false, false], |_, _| Reply::raw(good())),
        case("/hangup", [false, false], |_, _| Reply::raw(Vec::new())),
        case("/pdf-garbage", [false, false], |_, _| {
            http(
                "200 OK",
                &[("Content-Type", "application/pdf")],
                b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage trailer",
            )
        }),
        // Pages that are not the document.
        case("/bot-wall", [false, false], |_, _| {
            html(
                "200 OK",
                "<title>Just a moment...</title><p>Checking your browser before accessing the site.</p>",
            )
        }),
        case("/error-200", [false, false], |_, _| {
            html("200 OK", "<h1>502 Bad Gateway</h1><p>nginx</p>")
        }),
        // Fine on day 1, broken on day 2.
        case("/then-500", [true, false], |day, _| {
            if day == 1 {
                html("200 OK", &good())
            } else {
                html("500 Internal Server Error", "oops")
            }
        }),
        case("/then-binary", [true, false], |day, _| {
            if day == 1 {
                html("200 OK", &good())
            } else {
                http("200 OK", &[("Content-Type", "text/html")], &junk(2048))
            }
        }),
        case("/then-empty", [true, false], |day, _| {
            if day == 1 {
                html("200 OK", &good())
            } else {
                html("200 OK", "")
            }
        }),
        case("/then-stub", [true, false], |day, _| {
            if day == 1 {
                html("200 OK", &good())
            } else {
                html(
                    "200 OK",
                    "<p>This page has moved to https://new.invalid/security.</p>",
                )
            }
        }),
        case("/then-shell", [true, false], |day, _| {
            if day == 1 {
                html("200 OK", &good())
            } else {
                html(
                    "200 OK",
                    "<div id='root'></div><script src=/app.js></script>",
                )
            }
        }),
        // URLs fetched exactly as written (trust issue, defect 7).
        case("//folder/x.html", [true, true], |_, r| {
            if r.target == "//folder/x.html" {
                html("200 OK", &good())
            } else {
                html("404 Not Found", "wrong resource")
            }
        }),
        case("/q?b=2&a=1", [true, true], |_, r| {
            if r.target == "/q?b=2&a=1" {
                html("200 OK", &good())
            } else {
                html("404 Not Found", "wrong resource")
            }
        }),
    ]
}

/// A raw HTTP/1.1 server on 127.0.0.1 (port 0) serving a catalogue by request target.
struct RawServer {
    addr: SocketAddr,
    day: Arc<AtomicU32>,
    log: Arc<Mutex<Vec<Request>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RawServer {
    async fn start(cases: Vec<Case>, robots: Option<Reply>) -> RawServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let day = Arc::new(AtomicU32::new(1));
        let log = Arc::new(Mutex::new(Vec::new()));
        let cases: Arc<HashMap<String, Behaviour>> =
            Arc::new(cases.into_iter().map(|c| (c.path, c.serve)).collect());
        let robots = Arc::new(robots.map(|r| r.bytes));
        let (d, l) = (day.clone(), log.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (cases, d, l, robots) = (cases.clone(), d.clone(), l.clone(), robots.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    let read = tokio::time::timeout(Duration::from_secs(5), async {
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 128 * 1024 {
                            match sock.read(&mut chunk).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                    })
                    .await;
                    if read.is_err() {
                        return;
                    }
                    let head = String::from_utf8_lossy(&buf).into_owned();
                    let target = head
                        .lines()
                        .next()
                        .and_then(|l| l.split(' ').nth(1))
                        .unwrap_or("")
                        .to_string();
                    let req = Request { target, head };
                    l.lock().unwrap().push(req.clone());
                    let reply = if req.target == "/robots.txt" {
                        match robots.as_ref() {
                            Some(r) => Reply::raw(r.clone()),
                            None => html("404 Not Found", ""),
                        }
                    } else {
                        match cases.get(&req.target) {
                            Some(serve) => serve(d.load(Ordering::SeqCst), &req),
                            None => html("404 Not Found", "no such page"),
                        }
                    };
                    tokio::time::sleep(reply.delay).await;
                    let _ = sock.write_all(&reply.bytes).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        RawServer {
            addr,
            day,
            log,
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn quoted(url: &str) -> String {
    source(url, &format!("quote = \"{QUOTE}\""))
}

/// Latest verdict per cited URL.
async fn verdicts(env: &Env) -> HashMap<String, (String, String)> {
    let store = env.store().await;
    let latest = store.latest_verdicts().await.unwrap();
    store.close().await;
    env.registry()
        .citations()
        .map(|c| {
            let l = latest
                .iter()
                .find(|l| l.citation_key == c.key())
                .unwrap_or_else(|| panic!("no verdict at all for {}", c.url));
            (c.url.clone(), (l.verdict.clone(), l.detail.clone()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_servers_never_cost_a_verdict() {
    let cases = catalogue();
    let expect: Vec<(String, [bool; 2])> = cases
        .iter()
        .filter(|c| !matches!(c.path.as_str(), "/target-rel" | "/caf%C3%A9"))
        .map(|c| (c.path.clone(), c.quote_on))
        .collect();
    assert!(expect.len() >= 40, "{} misbehaviours", expect.len());
    let site = RawServer::start(cases, None).await;
    // A host whose robots.txt fails (5xx): nothing there is fetched, and each citation says so.
    let robots_down = RawServer::start(
        vec![case("/page", [true, true], |_, _| html("200 OK", &good()))],
        Some(html("500 Internal Server Error", "")),
    )
    .await;
    // A host that asks to be left alone for a day: the rest of its URLs are not attempted,
    // and do not sleep into the run deadline either.
    let stay_away = RawServer::start(
        vec![
            case("/first", [false, false], |_, _| {
                http("429 Too Many Requests", &[("Retry-After", "86400")], b"")
            }),
            case("/second", [true, true], |_, _| html("200 OK", &good())),
        ],
        None,
    )
    .await;
    let mut sources: Vec<String> = expect.iter().map(|(p, _)| quoted(&site.url(p))).collect();
    sources.push(quoted(&robots_down.url("/page")));
    sources.push(quoted(&stay_away.url("/first")));
    sources.push(quoted(&stay_away.url("/second")));
    let total = sources.len();
    let env = Env::new(&[(
        "hostile",
        offering("hostile", &[("soc2", "yes_public", sources)]),
    )]);
    assert_eq!(env.registry().citations().count(), total);

    for (day, when) in [(1u32, "2026-08-01T03:00:00Z"), (2, "2026-08-02T03:00:00Z")] {
        site.day.store(day, Ordering::SeqCst);
        let store = env.store().await;
        let started = std::time::Instant::now();
        let run = tokio::time::timeout(
            Duration::from_secs(120),
            citewatch::pipeline::run(
                &env.registry(),
                &store,
                &env.snapshot_store(),
                &env.options(at(when)),
            ),
        )
        .await
        .unwrap_or_else(|_| panic!("day {day}: the run did not end within 120 s"));
        let summary = run.unwrap_or_else(|e| panic!("day {day}: the run failed: {e}"));
        eprintln!("day {day}: {summary} (wall {:?})", started.elapsed());
        let last = store.last_run().await.unwrap().unwrap();
        assert_eq!(last.status, "finished", "day {day}: {last:?}");
        assert_eq!(
            last.citations_judged as usize, total,
            "day {day}: every citation judged"
        );
        store.close().await;

        let v = verdicts(&env).await;
        let table: Vec<String> = expect
            .iter()
            .map(|(path, _)| {
                let (verdict, detail) = &v[&site.url(path)];
                format!("{path:<22} {verdict:<12} {detail}")
            })
            .collect();
        eprintln!("{}", table.join("\n"));
        for (path, quote_on) in &expect {
            let (verdict, detail) = &v[&site.url(path)];
            assert_ne!(verdict, "pending", "day {day} {path}");
            if verdict == "verified" {
                assert!(
                    quote_on[day as usize - 1],
                    "day {day} {path}: verified on a body without the quote ({detail})"
                );
            }
        }
        for (url, want) in [
            (robots_down.url("/page"), "unreachable"),
            (stay_away.url("/first"), "unreachable"),
            (stay_away.url("/second"), "unreachable"),
        ] {
            assert_eq!(v[&url].0, want, "day {day} {url}: {}", v[&url].1);
        }
        // Controls: a well-behaved page, and URLs requested exactly as cited.
        assert_eq!(v[&site.url("/ok")].0, "verified");
        assert_eq!(v[&site.url("//folder/x.html")].0, "verified");
        assert_eq!(v[&site.url("/q?b=2&a=1")].0, "verified");
        assert_eq!(v[&site.url("/redir-relative")].0, "verified");
        assert_eq!(v[&site.url("/redir-nonascii")].0, "verified");
        assert_eq!(v[&site.url("/ct-pdf-on-html")].0, "verified");
        // The gate agrees: exit 0 or 1, every citation judged, no abnormal run to report.
        let o = env.cli(&["check", "--format", "json"]);
        assert!(
            matches!(code(&o), 0 | 1),
            "day {day}: check exit {}",
            code(&o)
        );
        let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        let citations = j["citations"].as_array().unwrap();
        assert_eq!(citations.len(), total);
        assert!(citations.iter().all(|c| c["verdict"] != "pending"));
        assert_eq!(j["incomplete"], false, "day {day}");
    }
    let requests = site.requests();
    assert!(
        requests.iter().any(|r| r.target == "//folder/x.html"),
        "the double slash is sent as cited"
    );
    assert!(
        !requests.iter().any(|r| r.target == "/folder/x.html"),
        "never the collapsed path"
    );
    // Day 2 sent conditional requests where day 1 gave validators.
    assert!(
        requests
            .iter()
            .filter(|r| r.target == "/ok")
            .any(|r| r.header("if-none-match").as_deref() == Some("\"v1\"")),
        "conditional request on day 2"
    );
    assert_eq!(
        stay_away
            .requests()
            .iter()
            .filter(|r| r.target == "/second")
            .count(),
        0,
        "a host that asked to be left alone is left alone"
    );
    assert!(
        robots_down
            .requests()
            .iter()
            .all(|r| r.target == "/robots.txt"),
        "nothing fetched where robots.txt is unreachable"
    );
}
