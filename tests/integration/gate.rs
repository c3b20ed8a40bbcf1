//! The CI gate's formats (JUnit parsed back by a real XML parser, GitHub annotations at the
//! citation's file and line, the job summary), `--fail-on`, `--changed-since` against a real
//! temporary git repository, and the HTML report rendered in headless Chromium.

use std::path::Path;
use std::process::Command;

use crate::env::{Env, code, offering, source, stderr, stdout};
use crate::site::{Page, Site};

/// A workspace with one verified, one missing and one expired citation, already run.
async fn stale_env(site: &Site) -> Env {
    site.set("/ok", Page::html("<p>We are SOC 2 Type II audited.</p>"));
    site.set("/gone-quote", Page::html("<p>Reports on request.</p>"));
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[
                (
                    "iso",
                    "yes_public",
                    vec![source(
                        &site.url("/ok"),
                        "quote = \"SOC 2 Type II audited\"",
                    )],
                ),
                (
                    "dpa",
                    "yes_public",
                    vec![source(
                        &site.url("/gone-quote"),
                        "quote = \"SOC 2 Type II audited\"",
                    )],
                ),
            ],
        ),
    )]);
    let o = env.cli(&["run", "--allow-private", "--rate", "100"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junit_parses_back_with_one_case_per_citation() {
    let site = Site::start().await;
    let env = stale_env(&site).await;
    let o = env.cli(&["check", "--format", "junit"]);
    assert_eq!(code(&o), 1);
    let xml = stdout(&o);
    let mut reader = quick_xml::Reader::from_str(&xml);
    let (mut cases, mut failures, mut suites) = (0, 0, 0);
    let mut failure_messages = Vec::new();
    loop {
        match reader.read_event().expect("well-formed XML") {
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => {
                match e.name().as_ref() {
                    b"testsuite" => suites += 1,
                    b"testcase" => cases += 1,
                    b"failure" => {
                        failures += 1;
                        let msg = e.try_get_attribute("message").unwrap().unwrap();
                        failure_messages.push(String::from_utf8(msg.value.to_vec()).unwrap());
                    }
                    _ => {}
                }
            }
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!((suites, cases, failures), (1, 2, 1), "{xml}");
    assert!(
        failure_messages[0].starts_with("missing"),
        "{failure_messages:?}"
    );
    assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_annotations_point_at_the_citation_line() {
    let site = Site::start().await;
    let env = stale_env(&site).await;
    let summary = env.dir.path().join("summary.md");
    let o = Command::new(env!("CARGO_BIN_EXE_citewatch"))
        .env("CITEWATCH_LOOPBACK_ONLY", "1")
        .args(["check", "--format", "github", "--registry"])
        .arg(&env.registry)
        .arg("--db")
        .arg(&env.db)
        .arg("--snapshots")
        .arg(&env.snapshots)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    assert_eq!(code(&o), 1);
    let out = stdout(&o);
    let line = out
        .lines()
        .find(|l| l.starts_with("::error "))
        .expect("an annotation");
    // The missing citation's `[[cells.dpa.sources]]` header is on this line of the file:
    let file = env.registry.join("offerings/acme.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let expected_line = text
        .lines()
        .position(|l| l == "[[cells.dpa.sources]]")
        .unwrap()
        + 1;
    assert!(
        line.contains(&format!(
            "file={}",
            file.display().to_string().replace(':', "%3A")
        )),
        "{line}"
    );
    assert!(line.contains(&format!(",line={expected_line},")), "{line}");
    assert!(
        line.contains("title=citewatch%3A missing acme/dpa"),
        "{line}"
    );
    assert_eq!(out.lines().filter(|l| l.starts_with("::error")).count(), 1);
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.contains("# Review report") && md.contains("**missing**"),
        "{md}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_on_narrows_what_fails() {
    let site = Site::start().await;
    let env = stale_env(&site).await;
    assert_eq!(code(&env.cli(&["check", "--fail-on", "gone,blocked"])), 0);
    assert_eq!(code(&env.cli(&["check", "--fail-on", "missing"])), 1);
    let o = env.cli(&["check", "--format", "github", "--fail-on", "gone"]);
    assert_eq!(code(&o), 0);
    assert!(!stdout(&o).contains("::error"), "{}", stdout(&o));
}

fn git(dir: &Path, args: &[&str]) {
    let o = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.org",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_since_fetches_only_what_a_change_added() {
    let site = Site::start().await;
    site.set("/old", Page::html("<p>We are SOC 2 Type II audited.</p>"));
    site.set("/new", Page::html("<p>ISO 27001 certified since 2024.</p>"));
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[(
                "soc2",
                "yes_public",
                vec![source(
                    &site.url("/old"),
                    "quote = \"SOC 2 Type II audited\"",
                )],
            )],
        ),
    )]);
    git(env.dir.path(), &["init", "-q", "-b", "main"]);
    git(env.dir.path(), &["add", "registry"]);
    git(env.dir.path(), &["commit", "-q", "-m", "base"]);
    // The pull request adds a cell.
    env.write_offering(
        "acme",
        &offering(
            "acme",
            &[
                (
                    "soc2",
                    "yes_public",
                    vec![source(
                        &site.url("/old"),
                        "quote = \"SOC 2 Type II audited\"",
                    )],
                ),
                (
                    "iso",
                    "yes_public",
                    vec![source(&site.url("/new"), "quote = \"ISO 27001 certified\"")],
                ),
            ],
        ),
    );
    let o = env.cli(&[
        "check",
        "--fetch",
        "--allow-private",
        "--changed-since",
        "main",
        "--format",
        "json",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("1 citation added or edited"),
        "{}",
        stderr(&o)
    );
    assert_eq!(site.hits("/new"), 1);
    assert_eq!(site.hits("/old"), 0, "unchanged citations are not fetched");
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let verdicts: Vec<(&str, &str)> = j["citations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["dimension"].as_str().unwrap(),
                c["verdict"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        verdicts.contains(&("iso", "verified")) && verdicts.contains(&("soc2", "pending")),
        "{verdicts:?}"
    );
    // An unknown ref is a usage error.
    let o = env.cli(&[
        "check",
        "--fetch",
        "--allow-private",
        "--changed-since",
        "no-such-ref",
    ]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--changed-since"), "{}", stderr(&o));
}

/// Headless Chromium from Debian's package, if installed (CI installs it).
fn chromium() -> Option<std::path::PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
}

fn chromium_args(profile: &Path) -> Vec<String> {
    vec![
        "--headless".into(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        format!("--user-data-dir={}", profile.display()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_html_report_renders_in_chromium_and_runs_no_payload() {
    let site = Site::start().await;
    site.set("/x", Page::html("<p>We are SOC 2 Type II audited.</p>"));
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[
                (
                    "iso",
                    "yes_public",
                    vec![source(&site.url("/x"), "quote = \"SOC 2 Type II audited\"")],
                ),
                ("soc2", "yes_public", vec![source(&site.url("/x"), "")]),
            ],
        ),
    )]);
    assert_eq!(code(&env.cli(&["run", "--allow-private"])), 0);
    // The page turns hostile: its text now carries markup that must stay text.
    site.set(
        "/x",
        Page::html("<p>We are SOC 2 Type I audited. &lt;script&gt;document.title='pwned'&lt;/script&gt; &lt;img src=x onerror=\"document.body.setAttribute('data-pwned','1')\"&gt;</p>"),
    );
    assert_eq!(code(&env.cli(&["run", "--allow-private"])), 0);
    let report = env.dir.path().join("report.html");
    let o = env.cli(&[
        "report",
        "--format",
        "html",
        "--out",
        report.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("Content-Security-Policy") && html.contains("default-src 'none'"));
    assert!(
        !html.contains("<script"),
        "no script element, not even from page text"
    );
    assert!(
        html.contains("&lt;script&gt;document.title"),
        "page text is escaped: {html}"
    );
    assert!(
        html.contains("<del>II</del> <ins>I</ins>") || html.contains("<del>Type II</del>"),
        "the drift is shown as a word diff"
    );

    let Some(chromium) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install chromium for this test"
        );
        eprintln!("chromium not installed: skipping the browser render");
        return;
    };
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", report.display());
    let dom = Command::new(&chromium)
        .args(chromium_args(profile.path()))
        .args(["--dump-dom", &url])
        .output()
        .unwrap();
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom_text.contains("Review report: Test registry"),
        "the report loads: {}",
        stderr(&dom)
    );
    assert!(
        dom_text.contains("id=\"open-count\">2<"),
        "it shows the open items"
    );
    assert!(dom_text.contains("drifted"), "it shows the reason");
    assert!(
        !dom_text.contains("data-pwned=\"1\""),
        "no onerror handler ran"
    );
    assert!(
        dom_text.contains("&lt;img src=x onerror="),
        "the payload is shown as text"
    );
    assert!(
        dom_text.contains("<title>Review report: Test registry</title>"),
        "no script changed the title"
    );
    let shot = env.dir.path().join("report.png");
    let o = Command::new(&chromium)
        .args(chromium_args(profile.path()))
        .args([
            "--window-size=412,915",
            "--hide-scrollbars",
            &format!("--screenshot={}", shot.display()),
            &url,
        ])
        .output()
        .unwrap();
    assert!(shot.exists(), "screenshot: {}", stderr(&o));
    if let Ok(dir) = std::env::var("CITEWATCH_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, Path::new(&dir).join("report-phone.png")).unwrap();
        std::fs::copy(&report, Path::new(&dir).join("report.html")).unwrap();
    }
}
