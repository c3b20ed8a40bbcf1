//! WARC export checked by the web-archiving tools themselves: `warcio check` (every digest),
//! `warcio index` (every record), and a pywb replay of the file on a loopback port. The tools
//! come from `CITEWATCH_WARC_TOOLS` (a directory, e.g. a venv's `bin`) or PATH; `.ci/run`
//! installs them (`pip install warcio pywb`). Without them the test skips, except under `CI`.
//!
//! The PDF is from Open Terms Archive's dataset (ODC-BY), credited in the README.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::env::{Env, code, offering, source, stderr};
use crate::site::{Page, Site};

fn tool(name: &str) -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CITEWATCH_WARC_TOOLS") {
        let p = Path::new(&dir).join(name);
        if p.exists() {
            return Some(p);
        }
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.exists())
    })
}

fn tools() -> Option<(PathBuf, PathBuf, PathBuf)> {
    match (tool("warcio"), tool("wb-manager"), tool("wayback")) {
        (Some(a), Some(b), Some(c)) => Some((a, b, c)),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must install warcio and pywb (see .ci/run)"
            );
            eprintln!("warcio/pywb not installed: skipping (pip install warcio pywb)");
            None
        }
    }
}

const QUOTE: &str = "Customer content is encrypted at rest";
const PDF: &str = "tests/fixtures/replay-corpus/ota-genai-eu/31-OpenAI-law-enforcement-guidelines-PDF/snapshot-1-pdf-only-snapshot-2026-02-18-17daea49.pdf";

fn gzip(body: &str) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(body.as_bytes()).unwrap();
    e.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_warc_passes_warcio_and_replays_in_pywb() {
    let Some((warcio, wb_manager, wayback)) = tools() else {
        return;
    };
    let site = Site::start().await;
    let page = format!(
        "<html><body><main><h1>Security</h1><p>{QUOTE} with AES-256.</p></main></body></html>"
    );
    site.set(
        "/security",
        Page::bytes("text/html; charset=utf-8", gzip(&page))
            .with_header("content-encoding", "gzip")
            .with_header("etag", "\"v1\""),
    );
    site.set("/old", Page::redirect(301, "/moved"));
    site.set("/moved", Page::html(&format!("<p>{QUOTE}, always.</p>")));
    let pdf = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(PDF)).unwrap();
    site.set(
        "/guidelines.pdf",
        Page::bytes("application/pdf", pdf.clone()),
    );
    let browser = citewatch::fetch::browser::chromium_path().is_some();
    if !browser {
        assert!(std::env::var_os("CI").is_none(), "CI must install chromium");
    }
    site.set("/js", Page::html(crate::browser::SCRIPTED));
    let mut sources = vec![
        source(&site.url("/security"), &format!("quote = \"{QUOTE}\"")),
        source(&site.url("/old"), &format!("quote = \"{QUOTE}\"")),
        source(&site.url("/guidelines.pdf"), ""),
    ];
    if browser {
        sources.push(source(
            &site.url("/js"),
            "quote = \"never used for training\"\nrender = \"browser\"",
        ));
    }
    let env = Env::new(&[("acme", offering("acme", &[("soc2", "yes_public", sources)]))]);
    std::fs::write(
        env.dir.path().join("citewatch.toml"),
        "rate = 50\narchive_endpoint = \"\"\n",
    )
    .unwrap();
    // Two runs, a second apart (WARC dates are to the second): the second gets a 304 for the
    // page with an ETag (a revisit record).
    for i in 0..2 {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(1100));
        }
        let o = env.cli(&["run", "--allow-private"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    let warc = env.dir.path().join("evidence.warc.gz");
    let o = env.cli(&["export", "warc", "--out", warc.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let said = stderr(&o);
    let records: usize = said
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{said}"));

    // warcio: every digest verified, every record indexed.
    let check = Command::new(&warcio)
        .args(["check", "-v"])
        .arg(&warc)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&check.stdout).into_owned();
    assert!(check.status.success(), "warcio check failed:\n{report}");
    let passes = report.matches("digest pass").count();
    let revisits = report
        .matches("digest present but not checked (revisit)")
        .count();
    assert_eq!(
        passes + revisits,
        records,
        "every record checked:\n{report}"
    );
    assert!(revisits >= 1, "the 304 is a revisit:\n{report}");
    let index = Command::new(&warcio)
        .args(["index", "-f", "warc-type,warc-target-uri,warc-date"])
        .arg(&warc)
        .output()
        .unwrap();
    assert!(index.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&index.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), records, "every record indexed");
    let of_type = |t: &str| lines.iter().filter(|l| l["warc-type"] == t).count();
    assert_eq!(of_type("warcinfo"), 1);
    assert_eq!(of_type("request"), of_type("response") + of_type("revisit"));
    if browser {
        assert_eq!(of_type("conversion"), 2, "the rendered DOM, once per run");
    }
    let targets: Vec<&str> = lines
        .iter()
        .filter(|l| l["warc-type"] == "response")
        .filter_map(|l| l["warc-target-uri"].as_str())
        .collect();
    for path in ["/security", "/old", "/moved", "/guidelines.pdf"] {
        assert!(
            targets.contains(&site.url(path).as_str()),
            "a response for {path} (the redirect hop is its own): {targets:?}"
        );
    }
    // The gzip response is kept decoded, its head says so truthfully.
    let text = {
        let mut d = flate2::read::MultiGzDecoder::new(std::fs::File::open(&warc).unwrap());
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut d, &mut v).unwrap();
        String::from_utf8_lossy(&v).into_owned()
    };
    assert!(text.contains(&format!("Content-Length: {}\r\n\r\n{page}", page.len())));
    assert!(text.contains("HTTP/1.1 301 Moved Permanently\r\n"));
    assert!(text.contains("User-Agent: citewatch/"));

    // pywb: the replayed page carries the quote.
    let root = tempfile::tempdir().unwrap();
    let ok = Command::new(&wb_manager)
        .args(["init", "evidence"])
        .current_dir(root.path())
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let ok = Command::new(&wb_manager)
        .args(["add", "evidence"])
        .arg(&warc)
        .current_dir(root.path())
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut server = Command::new(&wayback)
        .args(["-b", "127.0.0.1", "-p", &port.to_string(), "-t", "2"])
        .current_dir(root.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    // The 200 that brought the body of /security (its later 304 is a revisit, which pywb
    // replays as the 304 it was).
    let first_security: String = lines
        .iter()
        .find(|l| l["warc-type"] == "response" && l["warc-target-uri"] == site.url("/security"))
        .and_then(|l| l["warc-date"].as_str())
        .unwrap()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let replay = |path: &str, when: &str| {
        let client = client.clone();
        let url = format!(
            "http://127.0.0.1:{port}/evidence/{when}id_/{}",
            site.url(path)
        );
        async move {
            let started = Instant::now();
            loop {
                match client.get(&url).send().await {
                    Ok(r) => return (r.status().as_u16(), r.bytes().await.unwrap_or_default()),
                    Err(_) if started.elapsed() < Duration::from_secs(30) => {
                        tokio::time::sleep(Duration::from_millis(200)).await
                    }
                    Err(e) => panic!("pywb did not answer: {e}"),
                }
            }
        }
    };
    let (status, body) = replay("/security", &first_security).await;
    let (revisit_status, _) = replay("/security", "2030").await;
    let (moved_status, moved) = replay("/moved", "2030").await;
    let (pdf_status, pdf_body) = replay("/guidelines.pdf", "2030").await;
    let rendered = if browser {
        Some(replay("/js", "2030").await)
    } else {
        None
    };
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(status, 200);
    assert!(
        String::from_utf8_lossy(&body).contains(QUOTE),
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(
        revisit_status, 304,
        "the later capture is the 304 as received"
    );
    assert_eq!(moved_status, 200);
    assert!(String::from_utf8_lossy(&moved).contains(QUOTE));
    assert_eq!(pdf_status, 200);
    assert_eq!(&pdf_body[..], &pdf[..], "the PDF replays byte for byte");
    if let Some((status, body)) = rendered {
        // pywb serves the rendered DOM (the conversion record), where the quote is; the
        // server's own document, a script shell, is the response record beside it.
        assert_eq!(status, 200);
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains("never used for training"), "{body}");
        assert!(
            text.contains(crate::browser::SCRIPTED),
            "the raw document is kept"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_filters_and_bad_input() {
    let site = Site::start().await;
    site.set("/a", Page::html(&format!("<p>{QUOTE}.</p>")));
    site.set("/b", Page::html(&format!("<p>{QUOTE}.</p>")));
    let env = Env::new(&[
        (
            "acme",
            offering(
                "acme",
                &[("soc2", "yes_public", vec![source(&site.url("/a"), "")])],
            ),
        ),
        (
            "beta",
            offering(
                "beta",
                &[("soc2", "yes_public", vec![source(&site.url("/b"), "")])],
            ),
        ),
    ]);
    let out = env.dir.path().join("x.warc.gz");
    let o = env.cli(&["export", "warc", "--out", out.to_str().unwrap()]);
    assert_eq!(code(&o), 2, "no database yet: {}", stderr(&o));
    let o = env.cli(&["run", "--allow-private", "--rate", "50"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let uris = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["export", "warc", "--out", out.to_str().unwrap()];
        all.extend_from_slice(args);
        let o = env.cli(&all);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let mut d = flate2::read::MultiGzDecoder::new(std::fs::File::open(&out).unwrap());
        let mut text = String::new();
        std::io::Read::read_to_string(&mut d, &mut text).unwrap();
        let mut u: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("WARC-Target-URI: "))
            .map(str::to_string)
            .collect();
        u.dedup();
        u
    };
    assert_eq!(uris(&[]), vec![site.url("/a"), site.url("/b")]);
    assert_eq!(uris(&["--only", "beta"]), vec![site.url("/b")]);
    assert!(uris(&["--since", "2999-01-01"]).is_empty());
    assert_eq!(uris(&["--since", "2000-01-01T00:00:00Z"]).len(), 2);
    for bad in [&["--since", "yesterday"][..], &["--only", "nobody"][..]] {
        let mut all = vec!["export", "warc", "--out", out.to_str().unwrap()];
        all.extend_from_slice(bad);
        let o = env.cli(&all);
        assert_eq!(code(&o), 2, "{bad:?}: {}", stderr(&o));
        assert_eq!(stderr(&o).lines().count(), 1, "one line: {}", stderr(&o));
    }
}
