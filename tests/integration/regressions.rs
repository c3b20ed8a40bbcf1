//! Regressions of the trust issue ("every citation judged on every run"), each named after the
//! defect it pins, driven through the real binary. (Defects 3–7 are pinned beside the code they
//! concern: the browser test, `verdict::reading`'s unit tests, the replay corpus and the hostile
//! catalogue.)

use crate::env::{Env, code, offering, source, stderr, stdout};
use crate::site::{Page, Site};

fn verdicts(env: &Env) -> Vec<(String, String)> {
    let o = env.cli(&["check", "--format", "json"]);
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    j["citations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["url"].as_str().unwrap().to_string(),
                c["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Defect 1: a server answering `304 Not Modified` to a request without validators aborted the
/// whole run (panic, exit 101) and left every other citation `pending` behind a green `OK`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_304_without_validators_does_not_abort_the_run() {
    let site = Site::start().await;
    site.set("/always-304", Page::status(304));
    site.set("/fine", Page::html("<p>We are SOC 2 Type II audited.</p>"));
    let q = "quote = \"SOC 2 Type II audited\"";
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[(
                "soc2",
                "yes_public",
                vec![
                    source(&site.url("/always-304"), q),
                    source(&site.url("/fine"), q),
                ],
            )],
        ),
    )]);
    for _ in 0..2 {
        let o = env.cli(&["run", "--allow-private", "--rate", "100"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let mut v = verdicts(&env);
        v.sort();
        assert_eq!(
            v,
            [
                (site.url("/always-304"), "unreachable".to_string()),
                (site.url("/fine"), "verified".to_string())
            ]
        );
    }
    let o = env.cli(&["check"]);
    assert!(
        stdout(&o).contains("1 verified, 1 unreachable"),
        "{}",
        stdout(&o)
    );
}

/// Defect 2: a citation with a lint *warning* (a quote under 12 characters) was dropped from
/// the registry: `run` said 0 citations and `check` said OK.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_lint_warning_never_drops_a_citation() {
    let site = Site::start().await;
    site.set("/p", Page::html("<p>We hold SOC 2 reports.</p>"));
    let env = Env::new(&[(
        "acme",
        offering(
            "acme",
            &[(
                "soc2",
                "yes_public",
                vec![source(&site.url("/p"), "quote = \"SOC 2\"")],
            )],
        ),
    )]);
    let o = env.cli(&["lint"]);
    assert_eq!(code(&o), 0, "warnings do not fail lint");
    assert!(stdout(&o).contains("very short"), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("1 citations; 1 warning"),
        "{}",
        stderr(&o)
    );
    let o = env.cli(&["run", "--allow-private", "--rate", "100"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("1 citations over 1 URLs (1 verified)"),
        "{}",
        stderr(&o)
    );
    assert_eq!(verdicts(&env), [(site.url("/p"), "verified".to_string())]);
}
