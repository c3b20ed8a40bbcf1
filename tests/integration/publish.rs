//! `citewatch publish`: the bundled registry (on a loopback copy of its sources) as the seed's
//! compare page with freshness on every cell, offering pages with a timeline, an index, and
//! `data.json` valid against its shipped JSON Schema; pages looked at in headless Chromium at
//! phone and desktop width with hostile registry text.

use std::path::{Path, PathBuf};

use crate::env::{Env, code, stderr};
use crate::site::{Page, Site};

/// The seed page's table: (dimension label, [first column, second column]).
fn seed_rows() -> (Vec<String>, Vec<(String, [String; 2])>) {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed-compare-page.txt"),
    )
    .unwrap();
    let mut header = Vec::new();
    let mut rows = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("| ")) {
        let cols: Vec<String> = line
            .trim_matches('|')
            .split(" | ")
            .map(|c| c.trim().to_string())
            .collect();
        if cols[0] == "Dimension" {
            header = cols[1..].to_vec();
            continue;
        }
        rows.push((cols[0].clone(), [cols[1].clone(), cols[2].clone()]));
    }
    (header, rows)
}

const HOSTILE: &str = r#"id = "hostile"
name = "Hostile <img src=x onerror=&quot;document.body.setAttribute('data-pwned','1')&quot;>"
developer = "Evil"
platform = "Evil Cloud"
category = "test"
summary = "<script>document.title='pwned'</script>"

[cells.soc2_type2]
grade = "yes_public"
verified = 2026-07-05
summary = "<img src=x onerror=\"document.body.setAttribute('data-pwned','1')\"> audited"

[[cells.soc2_type2.sources]]
url = "SITE/evil"
quote = "<script>document.title='pwned'</script> SOC 2"
"#;

async fn published() -> (Site, Env, PathBuf) {
    let site = Site::start().await;
    let env = Env::bundled(&site);
    env.write_offering("hostile", &HOSTILE.replace("SITE/", &site.url("/")));
    site.set(
        "/help.mistral.ai/en/articles/347638-do-you-have-soc-2-or-iso-27001-certification",
        Page::html("<p>Mistral complies with SOC 2 Type II and ISO 27001/27701 frameworks.</p>"),
    );
    // The opt-out article no longer says what was quoted: an open `missing` item.
    site.set(
        "/help.mistral.ai/en/articles/455207-can-i-opt-out-of-my-input-or-output-data-being-used-for-training",
        Page::html("<p>Training settings are described in your console.</p>"),
    );
    site.set(
        "/evil",
        Page::html("<p>&lt;script&gt;document.title='pwned'&lt;/script&gt; SOC 2</p>"),
    );
    for _ in 0..2 {
        let o = env.cli(&["run", "--allow-private", "--rate", "1000"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    let out = env.dir.path().join("site");
    let o = env.cli(&["publish", "--out", out.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    (site, env, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compare_page_expresses_the_seed_with_freshness() {
    let (_site, env, out) = published().await;
    let data: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("data.json")).unwrap()).unwrap();

    // data.json is valid against the schema shipped in the repository.
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("src/publish.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler.enable_format_assertions();
    compiler.add_resource("data.schema.json", schema).unwrap();
    let id = compiler.compile("data.schema.json", &mut schemas).unwrap();
    if let Err(e) = schemas.validate(&data, id) {
        panic!("data.json does not match its schema: {e:#}");
    }
    assert_eq!(
        std::fs::read_to_string(out.join("data.schema.json")).unwrap(),
        citewatch::publish::DATA_SCHEMA
    );

    // The default compare page is the seed's: same title order, dimensions and grades.
    let (header, rows) = seed_rows();
    assert_eq!(header, ["Mistral La Plateforme", "Mistral via Azure AI"]);
    let cmp = &data["compare"][0];
    assert_eq!(cmp["a"], "mistral-la-plateforme");
    assert_eq!(cmp["b"], "mistral-azure");
    let offering = |id: &str| {
        data["offerings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["id"] == id)
            .unwrap()
            .clone()
    };
    let (a, b) = (offering("mistral-la-plateforme"), offering("mistral-azure"));
    assert_eq!(rows.len(), 11);
    for (i, (label, cols)) in rows.iter().enumerate() {
        for (o, col) in [(&a, &cols[0]), (&b, &cols[1])] {
            let cell = &o["cells"][i];
            assert_eq!(cell["dimension_label"], label.as_str(), "row {i}");
            let grade = format!(
                "{}{}",
                cell["grade_symbol"].as_str().unwrap(),
                cell["grade_label"].as_str().unwrap()
            );
            assert!(
                col.starts_with(&grade),
                "{label}: seed `{col}` vs `{grade}`"
            );
        }
    }
    let page = std::fs::read_to_string(out.join(cmp["page"].as_str().unwrap())).unwrap();
    assert!(page.contains("<h1>Mistral La Plateforme vs Mistral via Azure AI</h1>"));
    assert!(page.contains(citewatch::publish::COMPARE_INTRO));
    let dims: Vec<&str> = page
        .split("<td class=\"dim\">")
        .skip(1)
        .map(|s| s.split("</td>").next().unwrap())
        .collect();
    let seed_dims: Vec<&str> = rows.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        dims, seed_dims,
        "one row per dimension, in the seed's order"
    );
    // Freshness on every cell: the verified quote links to its text fragment; the others say
    // what they are.
    let soc2 = &a["cells"][0];
    assert_eq!(soc2["status"], "stands", "{soc2:#}");
    assert!(
        soc2["sources"][0]["link"]
            .as_str()
            .unwrap()
            .contains("#:~:text=complies%20with%20SOC%202")
    );
    assert!(page.contains("✓ checked "), "a standing cell says so");
    assert!(page.contains("#:~:text=complies%20with%20SOC%202"));
    assert!(
        page.contains("⚠ missing since "),
        "a cell with an open item says so"
    );
    let training = a["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["dimension"] == "training_on_customer_data")
        .unwrap();
    assert_eq!(training["status"], "attention");
    assert_eq!(training["problems"][0]["reason"], "missing");
    assert_eq!(data["runs"].as_array().unwrap().len(), 2);
    assert!(
        a["cells"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["timeline"].as_array().unwrap().len() == 2)
    );

    // Every page is self-contained and inert.
    for name in [
        "index.html",
        "offering-hostile.html",
        cmp["page"].as_str().unwrap(),
    ] {
        let html = std::fs::read_to_string(out.join(name)).unwrap();
        assert!(html.contains("default-src 'none'"), "{name}");
        assert!(!html.contains("<script"), "{name}: no script element");
        assert!(
            !html.contains("<img"),
            "{name}: no image element from registry text"
        );
        assert!(
            !html.contains("http-equiv=\"refresh\"") && !html.contains("<link"),
            "{name}"
        );
    }
    let _ = env;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_pages_read_at_phone_and_desktop_width() {
    let (_site, env, out) = published().await;
    let compare = out.join("compare-mistral-la-plateforme-vs-mistral-azure.html");
    for width in [412u32, 1280] {
        let shot = env.dir.path().join(format!("publish-compare-{width}.png"));
        let Some(v) = crate::chrome::look(
            &compare,
            width,
            &shot,
            &[
                crate::chrome::OVERFLOWS,
                "[...document.querySelectorAll('td[data-status]')].filter(td => { const r = td.getBoundingClientRect(); return r.width > 50 && r.height > 20; }).length",
                crate::chrome::PWNED,
            ],
        )
        .await
        else {
            return;
        };
        assert_eq!(v[0], false, "{width}px: the page body scrolls sideways");
        assert_eq!(v[1], 22, "{width}px: every cell visible");
        assert_eq!(v[2], false);
        for page in [
            "offering-mistral-azure.html",
            "offering-hostile.html",
            "index.html",
        ] {
            let shot = env.dir.path().join(format!(
                "publish-{}-{width}.png",
                page.trim_end_matches(".html")
            ));
            let v = crate::chrome::look(
                &out.join(page),
                width,
                &shot,
                &[
                    crate::chrome::OVERFLOWS,
                    "new Set([...document.querySelectorAll('svg rect.run')].map(r => r.dataset.run)).size",
                    crate::chrome::PWNED,
                    "document.querySelectorAll('svg').length",
                ],
            )
            .await
            .unwrap();
            assert_eq!(v[0], false, "{page} at {width}px scrolls sideways");
            assert_eq!(v[2], false, "{page}: hostile registry text ran");
            if page != "index.html" {
                assert_eq!(v[3], 1, "{page}: one timeline");
                assert_eq!(v[1], 2, "{page}: one column per run");
            }
        }
    }
}
