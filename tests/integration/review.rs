//! The review report on real histories (Open Terms Archive's replay corpus, ODC-BY — credit
//! "Open Terms Archive") and on a moved-paragraph fixture: change hunks by sentence and section,
//! where a quote went, the same in Markdown, HTML and on the terminal; the HTML rendered in
//! headless Chromium at phone and desktop width.

use std::path::{Path, PathBuf};

use crate::env::{Env, code, offering, source, stderr, stdout};
use crate::site::{Page, Site};

fn case_file(case: &str, prefix: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/replay-corpus/ota-genai-eu")
        .join(case);
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .unwrap()
}

/// The OpenAI DPA before and after its Dec 2025 rewrite, cited twice: as a whole (changed) and
/// for a sentence that was reworded beyond recognition (missing).
async fn rewritten_dpa(site: &Site) -> Env {
    let case = "01-OpenAI-DPA-rewritten-Dec-2025";
    let before = std::fs::read(case_file(case, "snapshot-1-")).unwrap();
    site.set("/dpa", Page::bytes("text/html; charset=utf-8", before));
    let env = Env::new(&[(
        "openai",
        offering(
            "openai",
            &[
                ("dpa", "yes_public", vec![source(&site.url("/dpa"), "")]),
                (
                    "soc2",
                    "yes_public",
                    vec![source(
                        &site.url("/dpa"),
                        "quote = \"not provide Customer with remuneration in exchange for Customer Data from Customer\"",
                    )],
                ),
            ],
        ),
    )]);
    let o = env.cli(&["run", "--allow-private", "--rate", "100"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let after = std::fs::read(case_file(case, "snapshot-3-")).unwrap();
    site.set("/dpa", Page::bytes("text/html; charset=utf-8", after));
    let o = env.cli(&["run", "--allow-private", "--rate", "100"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewrite_reads_as_sections_and_hunks_not_word_soup() {
    let site = Site::start().await;
    let env = rewritten_dpa(&site).await;
    let o = env.cli(&["report", "--format", "md"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let md = stdout(&o);
    assert!(md.contains("- change: largely rewritten: "), "{md}");
    assert!(md.contains("- changed sections: «"), "{md}");
    assert!(md.contains("```diff\n"), "{md}");
    assert!(md.contains("@@ Data processing addendum"), "{md}");
    assert!(md.contains("more hunks</summary>"), "the rest is folded");
    // No word soup: no line of the report is a 40 KB paragraph.
    let longest = md.lines().map(str::len).max().unwrap();
    assert!(longest < 4000, "a {longest}-byte line");
    // Where the reworded sentence went.
    assert!(md.contains("- at baseline"), "{md}");
    assert!(
        md.contains("- closest passage now (under «")
            && md.contains("monetary or other valuable consideration"),
        "{md}"
    );
    if let Ok(dir) = std::env::var("CITEWATCH_KEEP_REPORT") {
        std::fs::write(Path::new(&dir).join("report-case01.md"), &md).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_paragraph_is_reported_as_moved() {
    let site = Site::start().await;
    let page = |body: &str| Page::html(&format!("<main><h1>Trust</h1>{body}</main>"));
    site.set(
        "/t",
        page("<h2>Security</h2><p>We encrypt data at rest. Subprocessors are listed on our website and updated monthly. Keys rotate yearly.</p><h2>Privacy</h2><p>We never sell data.</p>"),
    );
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[("dpa", "yes_public", vec![source(&site.url("/t"), "")])],
        ),
    )]);
    assert_eq!(
        code(&env.cli(&["run", "--allow-private", "--rate", "100"])),
        0
    );
    site.set(
        "/t",
        page("<h2>Security</h2><p>We encrypt data at rest. Keys rotate yearly.</p><h2>Privacy</h2><p>We never sell data. Subprocessors are listed on our website and updated monthly.</p><p>Requests are answered within 30 days.</p>"),
    );
    assert_eq!(
        code(&env.cli(&["run", "--allow-private", "--rate", "100"])),
        0
    );
    let md = stdout(&env.cli(&["report", "--format", "md"]));
    assert!(
        md.contains("- [moved to «Trust › Privacy»] Subprocessors are listed on our website and updated monthly.")
            && md.contains("+ [moved from «Trust › Security»] Subprocessors are listed"),
        "{md}"
    );
    assert!(
        !md.contains("\n  - Subprocessors are listed")
            && !md.contains("\n  + Subprocessors are listed"),
        "not deleted plus added: {md}"
    );
    assert!(
        md.contains("+ Requests are answered within 30 days."),
        "{md}"
    );
    let html = stdout(&env.cli(&["report", "--format", "html"]));
    assert!(html.contains("moved to «Trust › Privacy»"), "{html}");
    // The terminal shows the same hunks (plain when piped).
    let o = env.cli(&["queue", "show", "1"]);
    let text = stdout(&o);
    assert!(
        text.contains("- [moved to «Trust › Privacy»] Subprocessors"),
        "{text}"
    );
    assert!(!text.contains('\x1b'), "no colour when piped");
    assert!(text.contains("citewatch queue resolve 1 --note"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_html_review_reads_at_phone_and_desktop_width() {
    let site = Site::start().await;
    let env = rewritten_dpa(&site).await;
    // Hostile text in the page stays text.
    site.set(
        "/evil",
        Page::html("<h2>Terms</h2><p>We keep logs for 30 days.</p>"),
    );
    env.write_offering(
        "evil",
        &offering(
            "evil",
            &[("dpa", "yes_public", vec![source(&site.url("/evil"), "")])],
        ),
    );
    assert_eq!(
        code(&env.cli(&["run", "--allow-private", "--rate", "100"])),
        0
    );
    site.set(
        "/evil",
        Page::html("<h2>Terms &lt;img src=x onerror=\"document.body.setAttribute('data-pwned','1')\"&gt;</h2><p>We keep logs for 90 days. &lt;script&gt;document.title='pwned'&lt;/script&gt; averyveryverylongwordwithoutanyspacesthatcouldpushthepagewiderthanaphonescreenifnothingwrappedit</p>"),
    );
    assert_eq!(
        code(&env.cli(&["run", "--allow-private", "--rate", "100"])),
        0
    );
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
    assert!(!html.contains("<script"), "no script element");
    for width in [412u32, 1280] {
        let shot = env.dir.path().join(format!("review-{width}.png"));
        let Some(v) = crate::chrome::look(
            &report,
            width,
            &shot,
            &[
                crate::chrome::OVERFLOWS,
                "document.querySelectorAll('details.hunk').length",
                "document.querySelectorAll('details.hunk[open]').length",
                "(() => { const d = document.querySelector('details.hunk[open]'); if (!d) return false; d.querySelector('summary').click(); const closed = !d.open; d.querySelector('summary').click(); return closed && d.open; })()",
                crate::chrome::PWNED,
            ],
        )
        .await
        else {
            return;
        };
        let (hunks, open) = (v[1].as_u64().unwrap(), v[2].as_u64().unwrap());
        assert_eq!(v[0], false, "{width}px: the page body scrolls sideways");
        assert!(hunks >= 10, "{width}px: {hunks} hunks");
        assert!(
            open >= 1 && open < hunks,
            "{width}px: the first hunks open, the rest folded ({open} of {hunks})"
        );
        assert_eq!(v[3], true, "{width}px: a hunk folds and unfolds");
        assert_eq!(v[4], false, "{width}px: hostile page text ran");
    }
}

const COMMENTED: &str = r#"# Acme — hand-written, with comments that must survive.
id = "acme"            # equals the file stem
name = "Acme"
developer = "D"
platform = "P"
category = "test"

[cells.soc2]
grade = "yes_public"
verified = 2026-07-05  # last human check
summary = "Audited yearly."

# The trust page.
[[cells.soc2.sources]]
url = "SITE/soc2"
quote = "complies with SOC 2 Type II audits"  # verbatim, July

[cells.iso]
grade = "yes_public"
verified = 2026-07-05
summary = "Certified."

[[cells.iso.sources]]
url = "SITE/old"   # moved in the autumn
quote = "ISO 27001 certified since 2024"

[cells.dpa]
grade = "yes_public"
verified = 2026-07-05
summary = "DPA."

[[cells.dpa.sources]]
url = "SITE/dpa"
quote = "We process personal data only on instructions"
"#;

fn items(env: &Env) -> Vec<(i64, String)> {
    let o = env.cli(&["queue", "list", "--json"]);
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    j.as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["id"].as_i64().unwrap(),
                i["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn id_of(items: &[(i64, String)], reason: &str) -> String {
    items
        .iter()
        .find(|(_, r)| r == reason)
        .unwrap_or_else(|| panic!("no {reason} item in {items:?}"))
        .0
        .to_string()
}

/// Lines of `after` that differ from `before` (same line count expected).
fn changed_lines(before: &str, after: &str) -> Vec<(String, String)> {
    assert_eq!(before.lines().count(), after.lines().count());
    before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_accept_round_trip_keeps_the_file_and_refuses_what_is_not_obvious() {
    let site = Site::start().await;
    site.set(
        "/soc2",
        Page::html("<p>Acme complies with SOC 2 Type 2 audits.</p>"),
    );
    site.set("/old", Page::redirect(301, "/new"));
    site.set("/new", Page::html("<p>ISO 27001 certified since 2024.</p>"));
    site.set("/dpa", Page::html("<p>We process data as we see fit.</p>"));
    let text = COMMENTED.replace("SITE/", &site.url("/"));
    let env = Env::new(&[("acme", text.clone())]);
    let file = env.registry.join("offerings/acme.toml");
    assert_eq!(code(&env.cli(&["lint"])), 0);
    assert_eq!(
        code(&env.cli(&["run", "--allow-private", "--rate", "100"])),
        0
    );
    let open = items(&env);
    let (drifted, moved, missing) = (
        id_of(&open, "drifted"),
        id_of(&open, "moved"),
        id_of(&open, "missing"),
    );

    // `queue show` offers the fix.
    let show = stdout(&env.cli(&["queue", "show", &drifted]));
    assert!(
        show.contains(&format!("citewatch queue accept {drifted}")),
        "{show}"
    );

    // --dry-run prints the diff and touches nothing.
    let o = env.cli(&["queue", "accept", &drifted, "--dry-run"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("+quote = \"complies with SOC 2 Type 2 audits\"  # verbatim, July"),
        "{}",
        stdout(&o)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
    assert!(items(&env).iter().any(|(id, _)| id.to_string() == drifted));

    // The drifted quote becomes the page's wording; only its line and `verified` change, and
    // the file keeps its mode.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let o = env.cli(&[
        "queue",
        "accept",
        &drifted,
        "--note",
        "Type 2 is the same report",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "the registry file keeps its permissions");
    let after = std::fs::read_to_string(&file).unwrap();
    let today = chrono::Utc::now().date_naive();
    assert_eq!(
        changed_lines(&text, &after),
        vec![
            (
                "verified = 2026-07-05  # last human check".to_string(),
                format!("verified = {today}  # last human check")
            ),
            (
                "quote = \"complies with SOC 2 Type II audits\"  # verbatim, July".to_string(),
                "quote = \"complies with SOC 2 Type 2 audits\"  # verbatim, July".to_string()
            ),
        ]
    );
    assert_eq!(code(&env.cli(&["lint"])), 0, "the registry still lints");
    let o = env.cli(&["queue", "list", "--status", "resolved", "--json"]);
    let resolved: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(resolved[0]["id"].to_string(), drifted);
    assert_eq!(resolved[0]["note"], "Type 2 is the same report");

    // The moved source's URL becomes the redirect's target.
    let before_moved = after.clone();
    let o = env.cli(&["queue", "accept", &moved]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let after = std::fs::read_to_string(&file).unwrap();
    let changes = changed_lines(&before_moved, &after);
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert_eq!(
        changes[1],
        (
            format!("url = \"{}\"   # moved in the autumn", site.url("/old")),
            format!("url = \"{}\"   # moved in the autumn", site.url("/new"))
        )
    );
    assert_eq!(code(&env.cli(&["lint"])), 0);

    // No obvious fix for a missing quote: refused, file byte-identical, item still open.
    let o = env.cli(&["queue", "accept", &missing]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("no obvious fix"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), after);

    // The file changed underneath (the citation was edited by hand): refused, untouched.
    site.set(
        "/dpa",
        Page::html("<p>We process personal data only on written instructions.</p>"),
    );
    assert_eq!(
        code(&env.cli(&["run", "--allow-private", "--rate", "100"])),
        0
    );
    let open = items(&env);
    let dpa_drift = id_of(&open, "drifted");
    let edited = after.replace(
        "quote = \"We process personal data only on instructions\"",
        "quote = \"We process personal data only on documented instructions\"",
    );
    std::fs::write(&file, &edited).unwrap();
    let o = env.cli(&["queue", "accept", &dpa_drift]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), edited);
}
