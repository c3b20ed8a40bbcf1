//! Benchmark: extraction + matching throughput over the replay corpus (Open Terms Archive
//! genai-eu snapshots, ODC-BY 1.0), next to a bare html5ever parse of the same bytes.
//!
//! Run: `cargo bench --bench evidence`. Prints MB/s for each stage and the ratio of
//! citewatch's full evidence path to the bare parse (target ≤ 1.5×).

use std::path::Path;
use std::time::{Duration, Instant};

use citewatch::{evidence, extract};

struct Page {
    bytes: Vec<u8>,
    html: String,
    quotes: Vec<String>,
    absent_quote: String,
}

fn load() -> Vec<Page> {
    let root =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/replay-corpus/ota-genai-eu");
    let mut pages = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            if !(name.starts_with("snapshot-") && name.ends_with(".html")) {
                continue;
            }
            let bytes = std::fs::read(&f).unwrap();
            let html = extract::decode(&bytes, Some("text/html"), extract::MediaKind::Html);
            let text = extract::extract(&bytes, Some("text/html"), None)
                .unwrap()
                .text;
            // Ten real sentences of the page as the citations' quotes.
            let quotes: Vec<String> = text
                .lines()
                .filter(|l| (60..300).contains(&l.len()))
                .step_by(3)
                .take(10)
                .map(str::to_string)
                .collect();
            pages.push(Page {
                bytes,
                html,
                quotes,
                absent_quote:
                    "Customer data is never used to train the models of any third party provider."
                        .into(),
            });
        }
    }
    pages
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time(rounds: usize, mut f: impl FnMut()) -> Duration {
    let mut runs = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        f();
        runs.push(t.elapsed());
    }
    median(runs)
}

fn main() {
    let pages = load();
    let total: usize = pages.iter().map(|p| p.bytes.len()).sum();
    let mb = total as f64 / 1e6;
    let quotes: usize = pages.iter().map(|p| p.quotes.len()).sum();
    println!(
        "corpus: {} HTML snapshots, {:.1} MB, {} quotes",
        pages.len(),
        mb,
        quotes
    );
    let rounds = 5;

    let bare = time(rounds, || {
        for p in &pages {
            std::hint::black_box(scraper::Html::parse_document(&p.html));
        }
    });
    let decode = time(rounds, || {
        for p in &pages {
            std::hint::black_box(extract::decode(
                &p.bytes,
                Some("text/html"),
                extract::MediaKind::Html,
            ));
        }
    });
    let walk = time(rounds, || {
        for p in &pages {
            std::hint::black_box(extract::html_extract(&p.html, None));
        }
    });
    let extracted: Vec<extract::Extracted> = pages
        .iter()
        .map(|p| extract::extract(&p.bytes, Some("text/html"), None).unwrap())
        .collect();
    let docs = time(rounds, || {
        for e in &extracted {
            std::hint::black_box(evidence::Doc::new(e));
        }
    });
    let comparable = time(rounds, || {
        for e in &extracted {
            std::hint::black_box(evidence::comparable(&e.wording));
        }
    });
    let finds = time(rounds, || {
        for (p, e) in pages.iter().zip(&extracted) {
            let doc = evidence::Doc::new(e);
            for q in &p.quotes {
                std::hint::black_box(evidence::find_quote(&evidence::normalise(q), &doc.text));
            }
        }
    });
    println!(
        "decode {:.1} ms, parse+walk {:.1} ms, doc {:.1} ms, comparable {:.1} ms, doc+finds {:.1} ms",
        decode.as_secs_f64() * 1e3,
        walk.as_secs_f64() * 1e3,
        docs.as_secs_f64() * 1e3,
        comparable.as_secs_f64() * 1e3,
        finds.as_secs_f64() * 1e3
    );
    let extraction = time(rounds, || {
        for p in &pages {
            std::hint::black_box(extract::extract(&p.bytes, Some("text/html"), None).unwrap());
        }
    });
    let fast_pages = pages
        .iter()
        .filter(|p| extract::takes_fast_path(&p.html))
        .count();
    let tree_only = time(rounds, || {
        for p in &pages {
            std::hint::black_box(extract::html_extract_tree(&p.html, None));
        }
    });
    println!(
        "fast path reads {fast_pages} of {} pages; parse+walk through the tree for all: {:.1} ms",
        pages.len(),
        tree_only.as_secs_f64() * 1e3
    );
    let evidence_path = time(rounds, || {
        for p in &pages {
            let ex = extract::extract(&p.bytes, Some("text/html"), None).unwrap();
            let doc = evidence::Doc::new(&ex);
            for q in &p.quotes {
                std::hint::black_box(evidence::find_quote(&evidence::normalise(q), &doc.text));
            }
        }
    });
    let with_changes = time(rounds, || {
        for p in &pages {
            let ex = extract::extract(&p.bytes, Some("text/html"), None).unwrap();
            let doc = evidence::Doc::new(&ex);
            for q in &p.quotes {
                std::hint::black_box(evidence::find_quote(&evidence::normalise(q), &doc.text));
            }
            std::hint::black_box(evidence::comparable(&ex.wording));
        }
    });
    let with_missing = time(rounds, || {
        for p in &pages {
            let ex = extract::extract(&p.bytes, Some("text/html"), None).unwrap();
            let doc = evidence::Doc::new(&ex);
            for q in &p.quotes {
                std::hint::black_box(evidence::find_quote(&evidence::normalise(q), &doc.text));
            }
            std::hint::black_box(evidence::find_quote(
                &evidence::normalise(&p.absent_quote),
                &doc.text,
            ));
            std::hint::black_box(evidence::comparable(&ex.wording));
        }
    });
    let rate = |d: Duration| mb / d.as_secs_f64();
    println!(
        "bare html5ever parse (scraper tree):        {:>8.1} ms  {:>6.1} MB/s",
        bare.as_secs_f64() * 1e3,
        rate(bare)
    );
    println!(
        "extraction (decode, fast path or tree, walk):{:>7.1} ms  {:>6.1} MB/s",
        extraction.as_secs_f64() * 1e3,
        rate(extraction)
    );
    println!(
        "extraction + matching (10 quotes/page):     {:>8.1} ms  {:>6.1} MB/s",
        evidence_path.as_secs_f64() * 1e3,
        rate(evidence_path)
    );
    println!(
        "  + change detection (comparable wording):  {:>8.1} ms  {:>6.1} MB/s",
        with_changes.as_secs_f64() * 1e3,
        rate(with_changes)
    );
    println!(
        "  + one missing quote/page (fuzzy search):  {:>8.1} ms  {:>6.1} MB/s",
        with_missing.as_secs_f64() * 1e3,
        rate(with_missing)
    );
    println!(
        "ratio extraction+matching / bare parse: {:.2}x (target <= 1.5x)",
        evidence_path.as_secs_f64() / bare.as_secs_f64()
    );
    println!(
        "ratio with change detection / bare parse: {:.2}x",
        with_changes.as_secs_f64() / bare.as_secs_f64()
    );
    println!(
        "ratio with a missing quote / bare parse: {:.2}x",
        with_missing.as_secs_f64() / bare.as_secs_f64()
    );
}
