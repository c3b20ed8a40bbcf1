//! The binary: `check` exit codes 0/1/2/3, the JSON fields SPEC §4 fixes, `lint`, `report`
//! and `queue`.

use crate::env::{Env, code, offering, source, stderr, stdout};
use crate::site::{Page, Site};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_exit_codes_and_json_fields() {
    let site = Site::start().await;
    site.set("/p", Page::html("<p>We are SOC 2 Type II audited.</p>"));
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[(
                "iso",
                "yes_public",
                vec![source(
                    &site.url("/p#frag"),
                    "quote = \"SOC 2 Type II audited\"",
                )],
            )],
        ),
    )]);

    // Never checked: nothing open yet, so the gate passes but says so.
    let o = env.cli(&["check"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("never checked"), "{}", stdout(&o));

    let o = env.cli(&["run", "--allow-private", "--rate", "100"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains("1 verified"), "{}", stderr(&o));
    let o = env.cli(&["check", "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let c = &j["citations"][0];
    assert_eq!(c["offering"], "acme");
    assert_eq!(c["dimension"], "iso");
    assert_eq!(
        c["url"],
        site.url("/p#frag"),
        "url as written in the registry"
    );
    assert_eq!(c["verdict"], "verified");
    assert_eq!(c["expired"], false);
    assert_eq!(j["queue"].as_array().unwrap().len(), 0);

    site.set("/p", Page::html("<p>Reports on request.</p>"));
    // Flags are accepted before the command too.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_citewatch"))
        .env("CITEWATCH_LOOPBACK_ONLY", "1")
        .arg("--registry")
        .arg(&env.registry)
        .arg("--db")
        .arg(&env.db)
        .arg("--snapshots")
        .arg(&env.snapshots)
        .args(["check", "--fetch", "--allow-private", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(j["citations"][0]["verdict"], "missing");
    let q = &j["queue"][0];
    for field in ["id", "offering", "dimension", "url", "reason", "status"] {
        assert!(!q[field].is_null(), "queue[].{field} missing: {q}");
    }
    assert_eq!(q["reason"], "missing");
    assert_eq!(q["status"], "open");
    assert_eq!(q["url"], site.url("/p#frag"));
    let id = q["id"].as_i64().unwrap().to_string();

    let o = env.cli(&["check"]);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).contains("STALE"), "{}", stdout(&o));

    // The queue commands: resolve needs a note; afterwards the gate passes.
    let o = env.cli(&["queue", "list"]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("missing"), "{}", stdout(&o));
    let o = env.cli(&["queue", "resolve", &id]);
    assert_eq!(code(&o), 2, "--note is required");
    let o = env.cli(&[
        "queue",
        "dismiss",
        &id,
        "--note",
        "grade being revised",
        "--author",
        "carol",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = env.cli(&["queue", "show", &id]);
    assert!(
        stdout(&o).contains("dismissed") && stdout(&o).contains("carol"),
        "{}",
        stdout(&o)
    );
    let o = env.cli(&["check", "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(j["queue"][0]["status"], "dismissed");
    let o = env.cli(&["queue", "show", "999"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("no queue item with id 999"));

    // Usage and registry errors: exit 2 with a one-line message.
    let o = env.cli(&["check", "--format", "xml"]);
    assert_eq!(code(&o), 2);
    let o = env.cli(&["run", "--rate", "0"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("rate"), "{}", stderr(&o));
    std::fs::write(
        env.registry.join("offerings/broken.toml"),
        "id = \"broken\"\nname = 3\n",
    )
    .unwrap();
    let o = env.cli(&["check"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("broken.toml:2:"), "{}", stderr(&o));
    let o = env.cli(&["lint"]);
    assert_eq!(code(&o), 2);
    assert!(
        stdout(&o).contains("broken.toml:2: error: invalid TOML"),
        "{}",
        stdout(&o)
    );
    assert!(!stderr(&o).contains("panicked"));
    std::fs::remove_file(env.registry.join("offerings/broken.toml")).unwrap();

    // A database that cannot be opened: exit 3.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_citewatch"))
        .env("CITEWATCH_LOOPBACK_ONLY", "1")
        .arg("--registry")
        .arg(&env.registry)
        .args(["--db", "/nonexistent-dir/x/citewatch.db", "check"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_sets_policy_and_flags_win() {
    let site = Site::start().await;
    site.set("/p", Page::html("<p>text</p>"));
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[("iso", "yes_public", vec![source(&site.url("/p"), "")])],
        ),
    )]);
    std::fs::write(
        env.dir.path().join("citewatch.toml"),
        "allow_private = true\nrate = 50.0\nuser_agent = \"citewatch-test/1 (+https://example.org/contact)\"\n",
    )
    .unwrap();
    let o = env.cli(&["run"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        site.last_header("/p", "user-agent").as_deref(),
        Some("citewatch-test/1 (+https://example.org/contact)")
    );
    std::fs::write(
        env.dir.path().join("citewatch.toml"),
        "allow_privat = true\n",
    )
    .unwrap();
    let o = env.cli(&["run"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("citewatch.toml:1:"), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_lists_open_items_per_offering_and_cell_with_a_diff() {
    let site = Site::start().await;
    site.set(
        "/terms",
        Page::html("<p>Data is kept for 30 days and then deleted.</p>"),
    );
    site.set("/q", Page::html("<p>We are SOC 2 Type II audited.</p>"));
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[
                ("iso", "yes_public", vec![source(&site.url("/terms"), "")]),
                (
                    "soc2",
                    "yes_public",
                    vec![source(&site.url("/q"), "quote = \"SOC 2 Type II audited\"")],
                ),
            ],
        ),
    )]);
    assert_eq!(code(&env.cli(&["run", "--allow-private"])), 0);
    site.set(
        "/terms",
        Page::html("<p>Data is kept for 90 days and then deleted.</p>"),
    );
    site.set(
        "/q",
        Page::html("<p>We are <b>SOC 2 Type II</b> audited. <img src=x onerror=alert(1)></p>"),
    );
    assert_eq!(code(&env.cli(&["run", "--allow-private"])), 0);
    let out = env.dir.path().join("report.md");
    let o = env.cli(&["report", "--format", "md", "--out", out.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let md = std::fs::read_to_string(&out).unwrap();
    assert!(md.contains("### acme (`acme`)"), "{md}");
    assert!(md.contains("#### ISO 27001"), "{md}");
    assert!(md.contains("**changed**"), "{md}");
    assert!(
        md.contains("- Data is kept for [-30-] days and then deleted.\n  + Data is kept for {+90+} days and then deleted."),
        "{md}"
    );
    assert!(
        md.contains("## Changed sources with evidence intact"),
        "{md}"
    );
    assert!(
        md.contains("acme/soc2"),
        "the SOC 2 page changed but its quote stands: {md}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_over_the_same_database_exits_75_untouched() {
    let site = Site::start().await;
    site.set("/p", Page::html("<p>text</p>"));
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[("iso", "yes_public", vec![source(&site.url("/p"), "")])],
        ),
    )]);
    let mut lock_path = env.db.clone().into_os_string();
    lock_path.push(".lock");
    let holder = std::fs::File::create(&lock_path).unwrap();
    holder.try_lock().unwrap();
    let o = env.cli(&["run", "--allow-private"]);
    assert_eq!(code(&o), 75, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("another citewatch run"),
        "{}",
        stderr(&o)
    );
    assert!(!env.db.exists(), "nothing was touched");
    assert_eq!(site.total_hits(), 0);
    drop(holder);
    let o = env.cli(&["run", "--allow-private"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_name_what_is_wrong() {
    let site = Site::start().await;
    site.set("/p", Page::html("<p>text</p>"));
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[("iso", "yes_public", vec![source(&site.url("/p"), "")])],
        ),
    )]);
    let o = env.cli(&["run", "--allow-private", "--only", "nope"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("--only: no offering `nope`"),
        "{}",
        stderr(&o)
    );
    let o = env.cli(&["daemon", "--schedule", "every night"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("--schedule: invalid cron expression"),
        "{}",
        stderr(&o)
    );
    let o = env.cli(&["queue", "list", "--status", "sideways"]);
    assert_eq!(code(&o), 2);
    let o = env.cli(&["run", "--allow-private", "--only", "acme"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = env.cli(&["queue", "list", "--status", "all", "--json"]);
    assert_eq!(code(&o), 0);
    let items: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        items.as_array().unwrap().len(),
        0,
        "an unchanged first reading opens nothing"
    );
    assert_eq!(site.total_hits(), 2, "robots.txt and the page, once each");
}

/// The registry parse cache beside the database never stands in for a registry that changed:
/// an edit that keeps every file's size (a quote swapped for another of the same length) is
/// seen by the very next command, through the binary as users run it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_registry_is_read_afresh_past_the_parse_cache() {
    let site = Site::start().await;
    site.set(
        "/p",
        Page::html("<p>Alpha policy applies.</p><p>Omega policy applies.</p>"),
    );
    let cited = |quote: &str| {
        offering(
            "acme",
            &[(
                "soc2",
                "yes_public",
                vec![source(&site.url("/p"), &format!("quote = \"{quote}\""))],
            )],
        )
    };
    let (a, b) = ("Alpha policy applies", "Omega policy applies");
    assert_eq!(a.len(), b.len());
    let env = Env::new(&[("acme", cited(a))]);
    let quotes = |o: &std::process::Output| -> Vec<(String, String)> {
        let j: serde_json::Value = serde_json::from_str(&stdout(o)).unwrap();
        j["citations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["quote"].as_str().unwrap_or_default().to_string(),
                    c["verdict"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let o = env.cli(&["run", "--allow-private"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let mut cache = env.db.as_os_str().to_owned();
    cache.push("-registry-cache");
    assert!(
        std::path::Path::new(&cache).is_file(),
        "no parse cache beside the database"
    );
    let o = env.cli(&["check", "--format", "json"]);
    assert_eq!(quotes(&o), vec![(a.to_string(), "verified".to_string())]);

    let before = std::fs::read(&cache).unwrap();
    env.write_offering("acme", &cited(b));
    let o = env.cli(&["check", "--format", "json"]);
    assert_eq!(
        quotes(&o),
        vec![(b.to_string(), "pending".to_string())],
        "{}",
        stderr(&o)
    );
    assert_ne!(
        std::fs::read(&cache).unwrap(),
        before,
        "the cache was not rewritten"
    );
    let o = env.cli(&["run", "--allow-private"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = env.cli(&["check", "--format", "json"]);
    assert_eq!(quotes(&o), vec![(b.to_string(), "verified".to_string())]);
}
