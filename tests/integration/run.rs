//! `citewatch run` end to end: every verdict against pages that change between runs, queue
//! de-duplication, baselines, failure confirmation, redirects, the address guard.

use std::collections::HashMap;

use citewatch::pipeline;
use citewatch::store::QueueItem;

use crate::env::{Env, at, offering, source};
use crate::site::{Page, Site};

/// Latest verdict word per citation URL (each test URL is cited once).
async fn verdicts(env: &Env) -> HashMap<String, (String, String)> {
    let reg = env.registry();
    let store = env.store().await;
    let latest = store.latest_verdicts().await.unwrap();
    store.close().await;
    reg.citations()
        .filter_map(|c| {
            let l = latest.iter().find(|l| l.citation_key == c.key())?;
            Some((c.url.clone(), (l.verdict.clone(), l.detail.clone())))
        })
        .collect()
}

fn verdict_of<'a>(v: &'a HashMap<String, (String, String)>, url: &str) -> &'a str {
    &v.get(url)
        .unwrap_or_else(|| panic!("no verdict for {url}: {v:#?}"))
        .0
}

async fn open_items(env: &Env) -> Vec<QueueItem> {
    let store = env.store().await;
    let q = store.queue(Some("open")).await.unwrap();
    store.close().await;
    q
}

fn reasons(items: &[QueueItem]) -> Vec<(String, String)> {
    let mut r: Vec<(String, String)> = items
        .iter()
        .map(|i| (i.dimension.clone(), i.reason.clone()))
        .collect();
    r.sort();
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_verdict_against_a_site_that_changes() {
    let site = Site::start().await;
    site.set("/soc2", Page::html("<html><body><p>Acme \u{201c}complies with SOC&nbsp;2 Type II\u{201d} audits.</p></body></html>"));
    site.set(
        "/iso",
        Page::html("<main><p>We hold ISO 27001.</p></main><script>var t = 1;</script>"),
    );
    site.set("/dpa", Page::html("<p>Our data processing addendum.</p>"));
    site.set(
        "/markup",
        Page::html("<p>Stable text.</p><script>a()</script>"),
    );
    site.set("/down", Page::status(503));
    site.set(
        "/case",
        Page::html("<p>Models Are Stateless, and they store nothing.</p>"),
    );
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[
                (
                    "soc2",
                    "yes_public",
                    vec![
                        source(
                            &site.url("/soc2"),
                            "quote = \"complies with SOC 2 Type II\"",
                        ),
                        source(
                            &site.url("/case"),
                            "quote = \"Models are stateless, and they store nothing.\"",
                        ),
                    ],
                ),
                (
                    "iso",
                    "yes_public",
                    vec![
                        source(&site.url("/iso"), ""),
                        source(&site.url("/markup"), ""),
                    ],
                ),
                (
                    "hipaa",
                    "no_evidence",
                    vec![source(
                        &site.url("/dpa"),
                        "absent = [\"HIPAA\", \"Business Associate Agreement\"]",
                    )],
                ),
                (
                    "dpa",
                    "yes_public",
                    vec![source(
                        &site.url("/down"),
                        "quote = \"processes personal data\"",
                    )],
                ),
            ],
        ),
    )]);

    let s1 = env.run_at("2026-08-01T03:00:00Z").await;
    assert_eq!((s1.urls, s1.citations), (6, 6));
    let v = verdicts(&env).await;
    assert_eq!(verdict_of(&v, &site.url("/soc2")), "verified");
    assert_eq!(verdict_of(&v, &site.url("/case")), "drifted");
    assert_eq!(verdict_of(&v, &site.url("/iso")), "unchanged");
    assert_eq!(verdict_of(&v, &site.url("/markup")), "unchanged");
    assert_eq!(verdict_of(&v, &site.url("/dpa")), "unchanged");
    assert_eq!(verdict_of(&v, &site.url("/down")), "unreachable");
    assert_eq!(site.hits("/down"), 2, "one retry of a transient failure");
    assert_eq!(
        reasons(&open_items(&env).await),
        [("soc2".to_string(), "drifted".to_string())]
    );

    site.set(
        "/soc2",
        Page::html("<p>Acme no longer lists its audits.</p>"),
    );
    site.set(
        "/iso",
        Page::html("<main><p>We hold ISO 27001 and ISO 27701.</p></main>"),
    );
    site.set(
        "/dpa",
        Page::html("<p>Our data processing addendum. We sign a HIPAA BAA on request.</p>"),
    );
    site.set("/markup", Page::html("<div class=\"wrap\"><p>Stable\n   text.</p></div><script>b()</script><style>p { color: red }</style>"));
    env.run_at("2026-08-02T03:00:00Z").await;
    let v = verdicts(&env).await;
    assert_eq!(verdict_of(&v, &site.url("/soc2")), "missing");
    assert_eq!(verdict_of(&v, &site.url("/iso")), "changed");
    assert!(
        v[&site.url("/iso")].1.contains("words added"),
        "{:?}",
        v[&site.url("/iso")]
    );
    assert_eq!(
        verdict_of(&v, &site.url("/markup")),
        "unchanged",
        "markup, scripts and styles never count"
    );
    assert_eq!(verdict_of(&v, &site.url("/dpa")), "appeared");
    assert!(
        v[&site.url("/dpa")]
            .1
            .contains("We sign a HIPAA BAA on request."),
        "{:?}",
        v[&site.url("/dpa")]
    );
    let open = open_items(&env).await;
    assert_eq!(
        reasons(&open),
        [
            ("hipaa".to_string(), "appeared".to_string()),
            ("iso".to_string(), "changed".to_string()),
            ("soc2".to_string(), "drifted".to_string()),
            ("soc2".to_string(), "missing".to_string()),
        ]
    );

    // A third run over the same pages adds nothing and moves last_seen. (Still inside the
    // 48 hours that would confirm /down as gone.)
    env.run_at("2026-08-02T15:00:00Z").await;
    let again = open_items(&env).await;
    assert_eq!(reasons(&again), reasons(&open));
    for (a, b) in open.iter().zip(&again) {
        assert_eq!(a.id, b.id);
        assert_eq!(a.first_seen, b.first_seen);
        assert!(b.last_seen.starts_with("2026-08-02T15"), "{}", b.last_seen);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_problem_seen_on_three_runs_is_one_row() {
    let site = Site::start().await;
    site.set("/p", Page::html("<p>Nothing relevant here.</p>"));
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[(
                "soc2",
                "yes_public",
                vec![source(
                    &site.url("/p"),
                    "quote = \"complies with SOC 2 Type II\"",
                )],
            )],
        ),
    )]);
    for day in ["2026-08-01", "2026-08-02", "2026-08-03"] {
        env.run_at(&format!("{day}T03:00:00Z")).await;
    }
    let store = env.store().await;
    let all = store.queue(None).await.unwrap();
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0].reason, "missing");
    assert!(all[0].first_seen.starts_with("2026-08-01"));
    assert!(all[0].last_seen.starts_with("2026-08-03"));
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM reverify_queue WHERE status = 'open'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(n, 1);
    let (runs,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM runs WHERE status = 'finished'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(runs, 3);
    assert_eq!(site.hits("/p"), 3, "each distinct URL once per run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_moves_the_baseline_and_closed_items_stay_closed_until_content_changes() {
    let site = Site::start().await;
    site.set("/terms", Page::html("<p>Data is kept for 30 days.</p>"));
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
                    vec![source(
                        &site.url("/q"),
                        "quote = \"We are SOC 2 Type II audited.\"",
                    )],
                ),
            ],
        ),
    )]);
    env.run_at("2026-08-01T03:00:00Z").await;
    site.set("/terms", Page::html("<p>Data is kept for 90 days.</p>"));
    site.set("/q", Page::html("<p>Audit reports on request.</p>"));
    env.run_at("2026-08-02T03:00:00Z").await;
    let open = open_items(&env).await;
    assert_eq!(
        reasons(&open),
        [
            ("iso".to_string(), "changed".to_string()),
            ("soc2".to_string(), "missing".to_string())
        ]
    );

    let store = env.store().await;
    let changed = open.iter().find(|i| i.reason == "changed").unwrap();
    let missing = open.iter().find(|i| i.reason == "missing").unwrap();
    let r = store
        .close_item(
            changed.id,
            true,
            "90 days is still fine",
            "alice",
            at("2026-08-02T09:00:00Z"),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.status.as_str(), r.closed_by.as_deref(), r.note.as_deref()),
        ("resolved", Some("alice"), Some("90 days is still fine"))
    );
    store
        .close_item(
            missing.id,
            false,
            "known; grade under review",
            "bob",
            at("2026-08-02T09:00:00Z"),
        )
        .await
        .unwrap();
    assert!(
        store
            .close_item(missing.id, true, "again", "bob", at("2026-08-02T09:00:00Z"))
            .await
            .is_err(),
        "closing twice is refused"
    );
    store.close().await;

    // Same content: the resolved change is now the baseline, the dismissed item stays closed.
    env.run_at("2026-08-03T03:00:00Z").await;
    let v = verdicts(&env).await;
    assert_eq!(verdict_of(&v, &site.url("/terms")), "unchanged");
    assert_eq!(verdict_of(&v, &site.url("/q")), "missing");
    assert!(open_items(&env).await.is_empty());

    // New content: both reopen as new rows.
    site.set("/terms", Page::html("<p>Data is kept for 365 days.</p>"));
    site.set("/q", Page::html("<p>Audit reports on request only.</p>"));
    env.run_at("2026-08-04T03:00:00Z").await;
    let open = open_items(&env).await;
    assert_eq!(
        reasons(&open),
        [
            ("iso".to_string(), "changed".to_string()),
            ("soc2".to_string(), "missing".to_string())
        ]
    );
    assert!(open.iter().all(|i| i.first_seen.starts_with("2026-08-04")));

    // The problem clears by itself: citewatch closes the item, and reopens it when it returns.
    site.set("/q", Page::html("<p>We are SOC 2 Type II audited.</p>"));
    env.run_at("2026-08-05T03:00:00Z").await;
    let store = env.store().await;
    let closed: Vec<QueueItem> = store
        .queue(Some("resolved"))
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i.closed_by.as_deref() == Some("citewatch"))
        .collect();
    assert_eq!(closed.len(), 1);
    assert_eq!(
        closed[0].note.as_deref(),
        Some("no longer observed: verdict now verified")
    );
    assert_eq!(
        closed[0].closed_at.as_deref().map(|t| &t[..10]),
        Some("2026-08-05")
    );
    store.close().await;
    site.set("/q", Page::html("<p>Audit reports on request only.</p>"));
    env.run_at("2026-08-06T03:00:00Z").await;
    assert_eq!(
        open_items(&env)
            .await
            .iter()
            .filter(|i| i.reason == "missing")
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_is_gone_only_after_the_configured_runs_and_hours() {
    let site = Site::start().await;
    site.set("/ok", Page::html("<p>fine</p>"));
    site.set("/gone", Page::status(410));
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[(
                "iso",
                "yes_public",
                vec![
                    source(&site.url("/missing-page"), ""),
                    source(&site.url("/gone"), ""),
                ],
            )],
        ),
    )]);
    env.run_at("2026-08-01T00:00:00Z").await;
    let v = verdicts(&env).await;
    assert_eq!(verdict_of(&v, &site.url("/missing-page")), "unreachable");
    assert!(
        v[&site.url("/missing-page")].1.contains("failure 1 of 3"),
        "{:?}",
        v
    );
    assert_eq!(
        verdict_of(&v, &site.url("/gone")),
        "gone",
        "410 is confirmed at once"
    );
    assert_eq!(
        site.hits("/missing-page"),
        1,
        "a 404 is not retried within a run"
    );
    env.run_at("2026-08-02T00:00:00Z").await;
    env.run_at("2026-08-02T12:00:00Z").await;
    let v = verdicts(&env).await;
    assert_eq!(
        verdict_of(&v, &site.url("/missing-page")),
        "unreachable",
        "three runs, but only 36 hours"
    );
    env.run_at("2026-08-03T00:00:00Z").await;
    let v = verdicts(&env).await;
    assert_eq!(verdict_of(&v, &site.url("/missing-page")), "gone");
    assert_eq!(
        reasons(&open_items(&env).await),
        [
            ("iso".to_string(), "gone".to_string()),
            ("iso".to_string(), "gone".to_string())
        ]
    );

    // One success resets the count.
    site.set("/missing-page", Page::html("<p>back</p>"));
    env.run_at("2026-08-04T00:00:00Z").await;
    site.set("/missing-page", Page::status(404));
    site.set("/missing-page-x", Page::status(404));
    env.run_at("2026-08-05T00:00:00Z").await;
    let v = verdicts(&env).await;
    assert_eq!(verdict_of(&v, &site.url("/missing-page")), "unreachable");
    // Failures never overwrite the last good snapshot.
    let store = env.store().await;
    let state = store
        .source_state(&site.url("/missing-page"))
        .await
        .unwrap()
        .unwrap();
    assert!(state.last_good_snapshot.is_some());
    assert_eq!(state.consecutive_failures, 1);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_redirect_is_moved_when_the_evidence_stands_at_the_target() {
    let site = Site::start().await;
    site.set("/old", Page::redirect(301, "/new"));
    site.set("/new", Page::html("<p>We are SOC 2 Type II audited.</p>"));
    site.set("/temp", Page::redirect(302, "/new"));
    site.set("/old-missing", Page::redirect(308, "/elsewhere"));
    site.set("/elsewhere", Page::html("<p>Nothing.</p>"));
    let q = "quote = \"SOC 2 Type II audited\"";
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[(
                "soc2",
                "yes_public",
                vec![
                    source(&site.url("/old"), q),
                    source(&site.url("/temp"), q),
                    source(&site.url("/old-missing"), q),
                ],
            )],
        ),
    )]);
    env.run_at("2026-08-01T00:00:00Z").await;
    let v = verdicts(&env).await;
    assert_eq!(verdict_of(&v, &site.url("/old")), "moved");
    assert!(v[&site.url("/old")].1.contains(&site.url("/new")), "{v:?}");
    assert_eq!(
        verdict_of(&v, &site.url("/temp")),
        "verified",
        "a temporary redirect is not a move"
    );
    assert_eq!(
        verdict_of(&v, &site.url("/old-missing")),
        "missing",
        "the target's verdict wins"
    );
    assert!(v[&site.url("/old-missing")].1.contains("308"), "{v:?}");
    let r = reasons(&open_items(&env).await);
    assert!(
        r.contains(&("soc2".to_string(), "moved".to_string())),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_is_refused_without_allow_private() {
    let site = Site::start().await;
    site.set("/p", Page::html("<p>x</p>"));
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[("iso", "yes_public", vec![source(&site.url("/p"), "")])],
        ),
    )]);
    let store = env.store().await;
    let mut opts = env.options(at("2026-08-01T00:00:00Z"));
    opts.fetch.addresses = citewatch::fetch::guard::AddressPolicy::PublicOnly;
    pipeline::run(&env.registry(), &store, &env.snapshot_store(), &opts)
        .await
        .unwrap();
    store.close().await;
    let v = verdicts(&env).await;
    assert_eq!(verdict_of(&v, &site.url("/p")), "blocked");
    assert!(v[&site.url("/p")].1.contains("loopback"), "{v:?}");
    assert_eq!(site.total_hits(), 0, "no connection reached the server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etag_round_trip_reuses_the_stored_snapshot() {
    let site = Site::start().await;
    site.set(
        "/e",
        Page::html("<p>We are SOC 2 Type II audited.</p>").with_header("etag", "\"v1\""),
    );
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[(
                "soc2",
                "yes_public",
                vec![source(&site.url("/e"), "quote = \"SOC 2 Type II audited\"")],
            )],
        ),
    )]);
    env.run_at("2026-08-01T00:00:00Z").await;
    assert_eq!(site.last_header("/e", "if-none-match"), None);
    let s2 = env.run_at("2026-08-02T00:00:00Z").await;
    assert_eq!(
        site.last_header("/e", "if-none-match").as_deref(),
        Some("\"v1\"")
    );
    assert_eq!(s2.bytes, 0, "304: nothing downloaded");
    let v = verdicts(&env).await;
    assert_eq!(
        verdict_of(&v, &site.url("/e")),
        "verified",
        "the verdict is recomputed from the stored snapshot"
    );
    let store = env.store().await;
    let (outcome,): (String,) =
        sqlx::query_as("SELECT outcome FROM fetches ORDER BY id DESC LIMIT 1")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(outcome, "not_modified");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_a_citation_closes_its_predecessors_items() {
    let site = Site::start().await;
    site.set("/p", Page::html("<p>Reports on request.</p>"));
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[(
                "soc2",
                "yes_public",
                vec![source(&site.url("/p"), "quote = \"SOC 2 Type II audited\"")],
            )],
        ),
    )]);
    env.run_at("2026-08-01T00:00:00Z").await;
    assert_eq!(open_items(&env).await.len(), 1);
    env.write_offering(
        "acme",
        &offering(
            "acme",
            &[(
                "soc2",
                "yes_public",
                vec![source(&site.url("/p"), "quote = \"Reports on request.\"")],
            )],
        ),
    );
    let s = env.run_at("2026-08-02T00:00:00Z").await;
    assert!(open_items(&env).await.is_empty());
    assert_eq!(s.queue.closed, 1);
    let store = env.store().await;
    let closed = store.queue(Some("resolved")).await.unwrap();
    assert!(
        closed[0]
            .note
            .as_deref()
            .unwrap()
            .contains("edited or removed")
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_opens_after_the_boundary_date() {
    let site = Site::start().await;
    site.set("/p", Page::html("<p>We are SOC 2 Type II audited.</p>"));
    // soc2 allows 180 days; verified 2026-07-05 → last good day 2027-01-01.
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[(
                "soc2",
                "yes_public",
                vec![source(&site.url("/p"), "quote = \"SOC 2 Type II audited\"")],
            )],
        ),
    )]);
    let s = env.run_at("2027-01-01T23:00:00Z").await;
    assert_eq!(s.expired, 0);
    assert!(open_items(&env).await.is_empty());
    let s = env.run_at("2027-01-02T01:00:00Z").await;
    assert_eq!(s.expired, 1);
    let open = open_items(&env).await;
    assert_eq!(
        reasons(&open),
        [("soc2".to_string(), "expired".to_string())]
    );
    assert!(open[0].detail.contains("180-day"), "{}", open[0].detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_change_and_error_pages_served_with_200() {
    let site = Site::start().await;
    site.set("/ctx", Page::html("<h2>Certifications</h2><p>Mistral complies with SOC 2 Type II and ISO 27001/27701 frameworks.</p>"));
    site.set(
        "/flaky",
        Page::html("<p>Models are stateless, and they don't store any prompts or outputs.</p>"),
    );
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[
                (
                    "soc2",
                    "yes_public",
                    vec![source(
                        &site.url("/ctx"),
                        "quote = \"complies with SOC 2 Type II and ISO 27001/27701 frameworks\"",
                    )],
                ),
                (
                    "iso",
                    "yes_public",
                    vec![source(
                        &site.url("/flaky"),
                        "quote = \"Models are stateless, and they don’t store any prompts or outputs.\"",
                    )],
                ),
            ],
        ),
    )]);
    env.run_at("2026-08-01T00:00:00Z").await;
    let v = verdicts(&env).await;
    assert_eq!(verdict_of(&v, &site.url("/ctx")), "verified");
    assert_eq!(
        verdict_of(&v, &site.url("/flaky")),
        "verified",
        "curly and straight apostrophes are the same"
    );
    let store = env.store().await;
    let latest = store.latest_verdicts().await.unwrap();
    let ctx = latest.iter().find(|l| l.detail.contains("SOC 2")).unwrap();
    assert_eq!(ctx.location.as_deref(), Some("Certifications"));
    assert!(
        ctx.link
            .as_deref()
            .unwrap()
            .contains("#:~:text=complies%20with"),
        "{:?}",
        ctx.link
    );
    store.close().await;

    site.set("/ctx", Page::html("<h2>Certifications</h2><p>Mistral no longer complies with SOC 2 Type II and ISO 27001/27701 frameworks.</p>"));
    // Akamai's error page, served with 200 (replay corpus case 19, Open Terms Archive).
    site.set("/flaky", Page::html("<html><head><title>Error</title></head><body>\nAn error occurred while processing your request.<p>\nReference #30.dd4a4317.1775601335.4bb3b77b\n</p><p>https://errors.edgesuite.net/30.dd4a4317.1775601335.4bb3b77b</p>\n</body></html>"));
    env.run_at("2026-08-02T00:00:00Z").await;
    let v = verdicts(&env).await;
    assert_eq!(verdict_of(&v, &site.url("/ctx")), "context_changed");
    assert!(
        v[&site.url("/ctx")].1.contains("adds \"no longer\""),
        "{v:?}"
    );
    assert_eq!(
        verdict_of(&v, &site.url("/flaky")),
        "unreachable",
        "an error page is not evidence of absence"
    );
    assert!(v[&site.url("/flaky")].1.contains("error page"), "{v:?}");
    assert_eq!(
        reasons(&open_items(&env).await),
        [("soc2".to_string(), "context_changed".to_string())]
    );
    let store = env.store().await;
    let state = store
        .source_state(&site.url("/flaky"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.consecutive_failures, 1);
    let good: (String,) =
        sqlx::query_as("SELECT snapshot_hash FROM fetches WHERE url = $1 AND outcome = 'fetched'")
            .bind(site.url("/flaky"))
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(
        state.last_good_snapshot.as_deref(),
        Some(good.0.as_str()),
        "the error page never replaces the good body"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_deadline_keeps_what_finished() {
    let site = Site::start().await;
    site.set("/fast", Page::html("<p>We are SOC 2 Type II audited.</p>"));
    let mut slow = Page::html(&"x".repeat(100));
    slow.drip = Some(std::time::Duration::from_millis(100));
    site.set("/slow", slow);
    // A second host (another port) for the slow page, so the fast one is not queued behind it.
    let other = Site::start().await;
    let mut slow = Page::html(&"x".repeat(100));
    slow.drip = Some(std::time::Duration::from_millis(100));
    other.set("/slow", slow);
    let q = "quote = \"SOC 2 Type II audited\"";
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[(
                "soc2",
                "yes_public",
                vec![
                    source(&site.url("/fast"), q),
                    source(&other.url("/slow"), q),
                ],
            )],
        ),
    )]);
    let store = env.store().await;
    let mut opts = env.options(at("2026-08-01T00:00:00Z"));
    opts.deadline = std::time::Duration::from_secs(2);
    let started = std::time::Instant::now();
    let s = pipeline::run(&env.registry(), &store, &env.snapshot_store(), &opts)
        .await
        .unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert!(s.deadline_hit);
    assert_eq!(s.unfinished, 1);
    assert!(
        s.to_string()
            .contains("run deadline reached, 1 URLs not fetched"),
        "{s}"
    );
    store.close().await;
    let v = verdicts(&env).await;
    assert_eq!(
        verdict_of(&v, &site.url("/fast")),
        "verified",
        "finished work is kept"
    );
    assert!(
        !v.contains_key(&other.url("/slow")),
        "the abandoned URL has no verdict from this run"
    );
    // Recorded as ended abnormally, and the gate says so until a later run finishes.
    let o = env.cli(&["check"]);
    let out = crate::env::stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("ended abnormally (run deadline of 2s reached; 1 of 2 URLs not fetched): 1 of 2 URLs fetched, 1 of 2 citations judged"),
        "{out}"
    );
    assert!(out.contains("INCOMPLETE: 2 citations"), "{out}");
    let o = env.cli(&["check", "--fail-on", "missing"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "--fail-on without `incomplete` opts out"
    );
    other.set("/slow", Page::html("<p>We are SOC 2 Type II audited.</p>"));
    env.run_at("2026-08-02T00:00:00Z").await;
    let o = env.cli(&["check"]);
    let out = crate::env::stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.starts_with("OK: 2 citations"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_wall_is_blocked_not_missing() {
    let site = Site::start().await;
    site.set("/p", Page::html("<html><head><title>Just a moment...</title></head><body><h1>Checking your browser before accessing the site.</h1><p>Enable JavaScript and cookies to continue</p></body></html>"));
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[(
                "soc2",
                "yes_public",
                vec![source(&site.url("/p"), "quote = \"SOC 2 Type II audited\"")],
            )],
        ),
    )]);
    env.run_at("2026-08-01T00:00:00Z").await;
    let v = verdicts(&env).await;
    assert_eq!(verdict_of(&v, &site.url("/p")), "blocked");
    assert!(v[&site.url("/p")].1.contains("bot wall"), "{v:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_robots_txt_never_confirms_a_page_gone() {
    let site = Site::start().await;
    site.set("/robots.txt", Page::status(503));
    site.set("/p", Page::html("<p>fine</p>"));
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[("iso", "yes_public", vec![source(&site.url("/p"), "")])],
        ),
    )]);
    for at in [
        "2026-08-01T00:00:00Z",
        "2026-08-02T00:00:00Z",
        "2026-08-03T00:00:00Z",
        "2026-08-04T00:00:00Z",
    ] {
        env.run_at(at).await;
    }
    let v = verdicts(&env).await;
    assert_eq!(verdict_of(&v, &site.url("/p")), "unreachable");
    assert!(
        v[&site.url("/p")].1.contains("does not count toward gone"),
        "{v:?}"
    );
    assert_eq!(site.hits("/p"), 0, "the page itself is never requested");
    let store = env.store().await;
    let state = store.source_state(&site.url("/p")).await.unwrap().unwrap();
    assert_eq!(
        (state.consecutive_failures, state.first_failure_at),
        (0, None)
    );
    store.close().await;
}

/// Incremental judgement: a citation whose previous judgement rests on the same bytes,
/// citation, baseline and engine re-uses it; anything else under it changing re-judges it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn judgements_are_reused_only_while_nothing_they_rest_on_changed() {
    let site = Site::start().await;
    let page = |etag: &str, body: &str| Page::html(body).with_header("etag", etag);
    site.set(
        "/q",
        page(
            "\"q1\"",
            "<main><p>We are SOC 2 Type II audited.</p></main>",
        ),
    );
    site.set("/n", page("\"n1\"", "<p>Data stays in the EU.</p>"));
    let quoted = |extra: &str| {
        source(
            &site.url("/q"),
            &format!("quote = \"SOC 2 Type II audited\"\n{extra}"),
        )
    };
    let cells = |soc2_extra: &str| {
        offering(
            "acme",
            &[
                ("soc2", "yes_public", vec![quoted(soc2_extra)]),
                ("dpa", "yes_public", vec![source(&site.url("/n"), "")]),
            ],
        )
    };
    let env = Env::new(&[("acme", cells(""))]);
    let s1 = env.run_at("2026-08-01T00:00:00Z").await;
    assert_eq!(s1.reused, 0, "{s1}");
    let first = verdicts(&env).await;

    // 304s. The quote's first reading stands as it was; the quote-less citation's first
    // reading said so, and is judged again against its new baseline.
    let s2 = env.run_at("2026-08-02T00:00:00Z").await;
    assert_eq!(s2.bytes, 0, "304s");
    assert_eq!(s2.reused, 1, "{s2}");
    assert!(s2.to_string().contains("1 judgement re-used"), "{s2}");
    let second = verdicts(&env).await;
    assert_eq!(second[&site.url("/q")], first[&site.url("/q")]);
    assert_eq!(
        second[&site.url("/n")].1,
        "wording unchanged since baseline",
        "{second:?}"
    );
    // Every run records a judgement of every citation: a verdicts row when judged afresh,
    // a confirmation of the row holding it when re-used (migration 0014).
    let store = env.store().await;
    let (rows, confirmed): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM verdicts), (SELECT COUNT(*) FROM confirmations)",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!((rows, confirmed), (3, 1));
    assert_eq!(
        store.run_record(2).await.unwrap().unwrap().citations_judged,
        2
    );
    store.close().await;

    let s3 = env.run_at("2026-08-03T00:00:00Z").await;
    assert_eq!(s3.reused, 2, "{s3}");
    assert_eq!(verdicts(&env).await, second);

    // The citation changes (a selector now limits it, and an absent term is watched):
    // judged afresh, on the stored body.
    env.write_offering(
        "acme",
        &cells("selector = \"main\"\nabsent = [\"Type II audited\"]"),
    );
    let s4 = env.run_at("2026-08-04T00:00:00Z").await;
    assert_eq!(s4.bytes, 0, "still 304s");
    assert_eq!(s4.reused, 1, "only the unchanged citation: {s4}");
    let v = verdicts(&env).await;
    assert_eq!(verdict_of(&v, &site.url("/q")), "appeared", "{v:?}");

    // The page changes: judged afresh.
    site.set(
        "/q",
        page("\"q2\"", "<main><p>We are ISO 27001 certified.</p></main>"),
    );
    let s5 = env.run_at("2026-08-05T00:00:00Z").await;
    assert_eq!(s5.reused, 1, "{s5}");
    let v = verdicts(&env).await;
    assert_eq!(verdict_of(&v, &site.url("/q")), "missing", "{v:?}");

    // A failure is never re-used into a content verdict, and the next good reading of the
    // same bytes after it is judged afresh (the latest verdict no longer rests on them).
    site.set("/q", Page::status(503));
    env.run_at("2026-08-06T00:00:00Z").await;
    site.set(
        "/q",
        page("\"q2\"", "<main><p>We are ISO 27001 certified.</p></main>"),
    );
    let s7 = env.run_at("2026-08-07T00:00:00Z").await;
    assert_eq!(s7.reused, 1, "only /n: {s7}");
    assert_eq!(
        verdict_of(&verdicts(&env).await, &site.url("/q")),
        "missing"
    );
}

/// A quiet night (every page the same again: a 304, or a 200 with the same body) rewrites no
/// row of `sources` or `citations`: their rows change only when something in them changes.
/// A 304 after a failure still resets the failure count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_night_rewrites_no_source_or_citation_row() {
    let site = Site::start().await;
    let tagged =
        || Page::html("<p>We are SOC 2 Type II audited.</p>").with_header("etag", "\"v1\"");
    site.set("/tagged", tagged());
    site.set("/plain", Page::html("<p>We hold ISO 27001.</p>"));
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[
                (
                    "soc2",
                    "yes_public",
                    vec![source(
                        &site.url("/tagged"),
                        "quote = \"SOC 2 Type II audited\"",
                    )],
                ),
                ("iso", "yes_public", vec![source(&site.url("/plain"), "")]),
            ],
        ),
    )]);
    env.run_at("2026-08-01T00:00:00Z").await;
    // Count every rewrite of a row of either table from here on.
    let store = env.store().await;
    for stmt in [
        "CREATE TABLE test_rewrites (tbl TEXT NOT NULL)",
        "CREATE TRIGGER test_sources_rewritten AFTER UPDATE ON sources BEGIN INSERT INTO test_rewrites VALUES ('sources'); END",
        "CREATE TRIGGER test_citations_rewritten AFTER UPDATE ON citations BEGIN INSERT INTO test_rewrites VALUES ('citations'); END",
    ] {
        sqlx::query(stmt).execute(store.pool()).await.unwrap();
    }
    store.close().await;
    env.run_at("2026-08-02T00:00:00Z").await;
    let store = env.store().await;
    let outcomes: Vec<(String, String)> =
        sqlx::query_as("SELECT url, outcome FROM fetches WHERE run_id = 2 ORDER BY url")
            .fetch_all(store.pool())
            .await
            .unwrap();
    store.close().await;
    assert_eq!(
        outcomes,
        [
            (site.url("/plain"), "fetched".to_string()),
            (site.url("/tagged"), "not_modified".to_string())
        ]
    );
    let v = verdicts(&env).await;
    assert_eq!(verdict_of(&v, &site.url("/tagged")), "verified");
    assert_eq!(verdict_of(&v, &site.url("/plain")), "unchanged");
    assert_eq!(
        rewrites(&env).await,
        Vec::<String>::new(),
        "a quiet night rewrote rows"
    );

    // A failure is recorded on the source; the 304 that follows resets it.
    site.set("/tagged", Page::status(404));
    env.run_at("2026-08-03T00:00:00Z").await;
    assert_eq!(rewrites(&env).await, ["sources"], "the failure is counted");
    let store = env.store().await;
    let state = store
        .source_state(&site.url("/tagged"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.consecutive_failures, 1);
    store.close().await;
    site.set("/tagged", tagged());
    env.run_at("2026-08-04T00:00:00Z").await;
    assert_eq!(
        site.last_header("/tagged", "if-none-match").as_deref(),
        Some("\"v1\""),
        "the good body was kept through the failure"
    );
    let store = env.store().await;
    let state = store
        .source_state(&site.url("/tagged"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.consecutive_failures, 0, "a 304 is a success");
    assert_eq!(state.first_failure_at, None);
    store.close().await;
    assert_eq!(
        rewrites(&env).await,
        ["sources"],
        "the reset is the one rewrite"
    );
    let v = verdicts(&env).await;
    assert_eq!(verdict_of(&v, &site.url("/tagged")), "verified");
}

/// The rows the test triggers saw rewritten since last asked, by table.
async fn rewrites(env: &Env) -> Vec<String> {
    let store = env.store().await;
    let rows: Vec<(String,)> = sqlx::query_as("SELECT tbl FROM test_rewrites")
        .fetch_all(store.pool())
        .await
        .unwrap();
    sqlx::query("DELETE FROM test_rewrites")
        .execute(store.pool())
        .await
        .unwrap();
    store.close().await;
    rows.into_iter().map(|(t,)| t).collect()
}
