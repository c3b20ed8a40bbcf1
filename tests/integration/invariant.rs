//! The invariant behind a green gate: every citation the registry has is judged on every run.
//! The citations `run` judges, the citations `lint` counts, and the source entries in the TOML
//! files (counted here independently, from the raw TOML) are the same number — for the bundled
//! registry (its URLs moved onto a loopback site) and for a registry full of lint warnings.

use std::path::Path;

use crate::env::{Env, code, offering, source, stderr, stdout};
use crate::site::{Page, Site};

/// Source entries in the offering files, counted from the raw TOML.
fn raw_sources(registry: &Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(registry.join("offerings")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let doc: toml::Table = toml::from_str(&text).unwrap();
        for (_, cell) in doc["cells"].as_table().unwrap() {
            n += cell
                .get("sources")
                .and_then(|s| s.as_array())
                .map_or(0, Vec::len);
        }
    }
    n
}

/// The citation count `lint` reports.
fn lint_count(env: &Env) -> usize {
    let o = env.cli(&["lint"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let err = stderr(&o);
    let before = err.split(" citations;").next().unwrap();
    before.rsplit(' ').next().unwrap().parse().unwrap()
}

/// Runs, then counts the citations judged by that run (from the run record and from `check`).
fn judged(env: &Env) -> usize {
    let o = env.cli(&["run", "--allow-private", "--rate", "1000"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = env.cli(&["check", "--format", "json"]);
    assert!(matches!(code(&o), 0 | 1), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(j["incomplete"], false);
    assert_eq!(j["pending"], 0);
    let run = &j["last_run"];
    assert_eq!(run["end"], "finished");
    assert_eq!(run["citations_judged"], run["citations"]);
    let citations = j["citations"].as_array().unwrap();
    assert!(citations.iter().all(|c| c["verdict"] != "pending"));
    assert_eq!(
        run["citations_judged"].as_u64().unwrap() as usize,
        citations.len()
    );
    citations.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundled_registry_is_judged_whole() {
    let site = Site::start().await;
    let env = Env::bundled(&site);
    // Some pages answer; the rest are 404 (unreachable): either way, judged.
    site.set(
        "/help.mistral.ai/en/articles/347638-do-you-have-soc-2-or-iso-27001-certification",
        Page::html("<p>Mistral complies with SOC 2 Type II and ISO 27001/27701 frameworks.</p>"),
    );
    let raw = raw_sources(&env.registry);
    assert!(raw >= 20, "{raw}");
    assert_eq!(lint_count(&env), raw);
    assert_eq!(judged(&env), raw);
    assert_eq!(judged(&env), raw, "and again on the next run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_full_of_warnings_is_judged_whole() {
    let site = Site::start().await;
    site.set("/p", Page::html("<p>We hold SOC 2 reports.</p>"));
    let mut text = offering(
        "acme",
        &[
            (
                "soc2",
                "yes_public",
                vec![
                    // A very short quote: a warning.
                    source(&site.url("/p"), "quote = \"SOC 2\""),
                    source(&site.url("/gone"), "quote = \"ISO\""),
                ],
            ),
            // Graded without a source: a warning, nothing to judge.
            ("iso", "yes_public", vec![]),
        ],
    );
    // A cell without a `verified` date: a warning.
    text.push_str(&format!(
        "\n[cells.dpa]\ngrade = \"yes_public\"\nsummary = \"x\"\n\n[[cells.dpa.sources]]\nurl = \"{}\"\n",
        site.url("/p")
    ));
    let env = Env::new(&[("acme", text)]);
    let o = env.cli(&["lint"]);
    let warnings = stdout(&o).lines().filter(|l| l.contains("warning")).count();
    assert!(warnings >= 4, "{}", stdout(&o));
    let raw = raw_sources(&env.registry);
    assert_eq!(raw, 3);
    assert_eq!(lint_count(&env), raw);
    assert_eq!(judged(&env), raw);
}
