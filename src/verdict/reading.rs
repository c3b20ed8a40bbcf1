//! What one fetch of a source means before any citation is judged: is the body the document,
//! or a failure — and does that failure count toward `gone`?
//!
//! Pure. The pipeline only gathers facts ([`Observed`], [`SourceHistory`]) and calls
//! [`assess`]; every citation of the source is then judged by [`super::judge`] on the
//! [`Reading`] this module's decision leads to. So a test can drive the exact production
//! decision from plain data, and no rule about pages (error pages, bot walls, redirect stubs,
//! application shells, empty or unreadable bodies, a `304` with nothing stored to re-use)
//! lives anywhere else. It refuses to look at the network, the disk or the database.

use chrono::{DateTime, Utc};

use super::{FailureClass, Reading};
use crate::extract::{self, Extracted};
use crate::registry::Render;

/// What the source's earlier runs left behind, as far as this decision needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceHistory {
    /// Consecutive failed runs before this one.
    pub consecutive_failures: u32,
    /// When the current failure streak began, if there is one.
    pub first_failure_at: Option<DateTime<Utc>>,
    /// Words of the last good body (whole page), when known: a page that now says it moved
    /// is a stub only if it lost most of them.
    pub last_good_words: Option<usize>,
}

/// What the fetch stage brought back for a source this run.
#[derive(Debug, Clone)]
pub enum Observed<'a> {
    /// A success with a body (or a browser-rendered DOM), and the whole page's extraction.
    Body {
        /// The bytes as stored in the snapshot.
        bytes: &'a [u8],
        /// The whole-page text, or why there is none (unsupported type, unreadable PDF,
        /// extraction over its time limit).
        full: Result<&'a Extracted, &'a str>,
        /// How the source is read: a browser-rendered page is never taken for a shell.
        render: Render,
    },
    /// `304 Not Modified`. `stored` says whether the body it lets us re-use could be read back
    /// (after one retry without validators when it could not).
    NotModified {
        /// Whether the stored body is there to judge on.
        stored: bool,
    },
    /// The fetch failed, classified where it happened.
    Failed {
        /// Its class.
        class: FailureClass,
        /// One line for people.
        detail: &'a str,
    },
}

/// The decision for a source.
#[derive(Debug, Clone, PartialEq)]
pub enum Assessment {
    /// The body is the document: its citations are judged on it, and it becomes the source's
    /// last good body.
    Document,
    /// Nothing was read that can stand as the document; every citation gets this failure.
    Failure(Failure),
}

/// A failed reading of a source, with its place in the failure streak.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// Its class.
    pub class: FailureClass,
    /// One line for people.
    pub detail: String,
    /// Consecutive failed runs, this one included (a deferred attempt does not count).
    pub consecutive: u32,
    /// When the streak began.
    pub first_failure_at: DateTime<Utc>,
}

impl Failure {
    /// The reading every citation of the source is judged on.
    pub fn reading(&self) -> Reading<'_> {
        Reading::Failed {
            class: self.class,
            detail: &self.detail,
            consecutive: self.consecutive,
            first_failure_at: self.first_failure_at,
        }
    }
}

/// Decides whether what was fetched is the document. A body that is an error page, a bot wall,
/// a redirect stub, an application shell (read without a browser), empty, or unreadable is a
/// failure and is never judged as evidence; a `304` with nothing stored to re-use is a
/// transient failure.
pub fn assess(observed: &Observed<'_>, history: &SourceHistory, now: DateTime<Utc>) -> Assessment {
    let (class, detail) = match observed {
        Observed::Failed { class, detail } => (*class, detail.to_string()),
        Observed::NotModified { stored: true } => return Assessment::Document,
        Observed::NotModified { stored: false } => (
            FailureClass::Transient,
            "the server answered 304 Not Modified but no stored copy was there to re-use, \
             even to a request without validators"
                .to_string(),
        ),
        Observed::Body { full: Err(why), .. } => (FailureClass::Blocked, why.to_string()),
        Observed::Body {
            bytes,
            full: Ok(ex),
            render,
        } => match body_problem(bytes, ex, *render, history.last_good_words) {
            None => return Assessment::Document,
            Some(p) => (p.class, p.detail),
        },
    };
    // An attempt that did not reach the page (robots.txt unreadable, host skipped) leaves the
    // streak as it was: it says nothing about the page.
    let counts = class != FailureClass::Deferred;
    Assessment::Failure(Failure {
        class,
        detail,
        consecutive: history.consecutive_failures + u32::from(counts),
        first_failure_at: history.first_failure_at.unwrap_or(now),
    })
}

/// Why a body with text is not the document, if it is not.
fn body_problem(
    bytes: &[u8],
    ex: &Extracted,
    render: Render,
    last_good_words: Option<usize>,
) -> Option<extract::PageProblem> {
    if let Some(p) = extract::page_problem(bytes, ex, last_good_words) {
        return Some(p);
    }
    if render == Render::Http
        && let Some(p) = extract::needs_javascript(ex)
    {
        return Some(p);
    }
    if ex.words == 0 {
        return Some(extract::PageProblem {
            class: FailureClass::Transient,
            detail: format!(
                "the server sent a page without any text ({} bytes)",
                bytes.len()
            ),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-26T00:00:00Z".parse().unwrap()
    }

    fn html(s: &str) -> Extracted {
        extract::html_extract(s, None)
    }

    fn body<'a>(bytes: &'a [u8], ex: &'a Extracted) -> Observed<'a> {
        Observed::Body {
            bytes,
            full: Ok(ex),
            render: Render::Http,
        }
    }

    #[test]
    fn a_304_with_nothing_stored_is_a_transient_failure_that_counts() {
        let h = SourceHistory::default();
        match assess(&Observed::NotModified { stored: false }, &h, now()) {
            Assessment::Failure(f) => {
                assert_eq!(f.class, FailureClass::Transient);
                assert_eq!(f.consecutive, 1);
                assert!(f.detail.contains("304"), "{}", f.detail);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            assess(&Observed::NotModified { stored: true }, &h, now()),
            Assessment::Document
        );
    }

    #[test]
    fn deferred_attempts_leave_the_streak_alone() {
        let first: DateTime<Utc> = "2026-11-20T00:00:00Z".parse().unwrap();
        let h = SourceHistory {
            consecutive_failures: 2,
            first_failure_at: Some(first),
            last_good_words: None,
        };
        let deferred = Observed::Failed {
            class: FailureClass::Deferred,
            detail: "robots.txt unreadable",
        };
        let Assessment::Failure(f) = assess(&deferred, &h, now()) else {
            panic!()
        };
        assert_eq!((f.consecutive, f.first_failure_at), (2, first));
        let dead = Observed::Failed {
            class: FailureClass::Dead,
            detail: "HTTP 404",
        };
        let Assessment::Failure(f) = assess(&dead, &h, now()) else {
            panic!()
        };
        assert_eq!((f.consecutive, f.first_failure_at), (3, first));
    }

    /// Regression (trust issue, defect 4): the shell's mount point may be quoted any way, or
    /// not at all, and the page may be tiny.
    #[test]
    fn regression_js_shell_detected_from_the_parsed_document() {
        for doc in [
            "<html><body><div id='root'></div><script src='/app.js'></script></body></html>",
            "<html><body><div id=app></div><script>boot()</script></body></html>",
            "<body><main data-mount></main><script type=module src=/x.js></script><noscript>You need to enable JavaScript to run this app.</noscript></body>",
            "<body><div class=spa>Loading\u{2026}</div><script defer src=/bundle.js></script></body>",
        ] {
            let ex = html(doc);
            match assess(&body(doc.as_bytes(), &ex), &SourceHistory::default(), now()) {
                Assessment::Failure(f) => {
                    assert_eq!(f.class, FailureClass::Blocked, "{doc}");
                    assert!(f.detail.contains("render = \"browser\""), "{}", f.detail);
                }
                other => panic!("{doc}: {other:?}"),
            }
            // Rendered in a browser, the same markup is the document as it stands (its
            // emptiness is then a transient failure, not a shell).
            let rendered = Observed::Body {
                bytes: doc.as_bytes(),
                full: Ok(&ex),
                render: Render::Browser,
            };
            let a = assess(&rendered, &SourceHistory::default(), now());
            assert!(
                !matches!(
                    a,
                    Assessment::Failure(Failure {
                        class: FailureClass::Blocked,
                        ..
                    })
                ),
                "{doc}: {a:?}"
            );
        }
        // A short real page that runs a script is the document.
        let doc = "<main><p>We hold ISO 27001.</p></main><script>var t = 1;</script>";
        let ex = html(doc);
        assert_eq!(
            assess(&body(doc.as_bytes(), &ex), &SourceHistory::default(), now()),
            Assessment::Document
        );
        // A short real page without scripts is the document.
        let doc = "<p>Reports on request.</p>";
        let ex = html(doc);
        assert_eq!(
            assess(&body(doc.as_bytes(), &ex), &SourceHistory::default(), now()),
            Assessment::Document
        );
    }

    /// Regression (trust issue, defect 5): a page that keeps its text and says one section
    /// moved is the document; one that lost most of its words, or only redirects, is a stub.
    #[test]
    fn regression_stub_only_when_most_wording_is_lost() {
        let intro = "Mistral AI Trust Center. We describe here how we protect the data our customers \
                     entrust to us, which certifications we hold, and how to request our audit reports. \
                     Our security programme covers infrastructure, people and processes.";
        let kept = format!(
            "<h1>Security</h1><p>{intro}</p><h2>Certifications</h2><p>This section has moved to our new Trust Portal.</p>"
        );
        let ex = html(&kept);
        let before = extract::word_count(&ex.text) + 12;
        let h = SourceHistory {
            last_good_words: Some(before),
            ..Default::default()
        };
        assert_eq!(
            assess(&body(kept.as_bytes(), &ex), &h, now()),
            Assessment::Document
        );
        // Without history, a page with that much text of its own is the document too.
        assert_eq!(
            assess(
                &body(kept.as_bytes(), &ex),
                &SourceHistory::default(),
                now()
            ),
            Assessment::Document
        );
        // The same words after a 2,000-word document: it lost most of its wording.
        let h = SourceHistory {
            last_good_words: Some(2000),
            ..Default::default()
        };
        let Assessment::Failure(f) = assess(&body(kept.as_bytes(), &ex), &h, now()) else {
            panic!()
        };
        assert_eq!(f.class, FailureClass::Dead);
        assert!(f.detail.contains("words left of 2000"), "{}", f.detail);
        // A bare "has moved" page, no history.
        let stub = "<p>This page has moved to https://legal.example/terms.</p>";
        let ex = html(stub);
        let Assessment::Failure(f) = assess(
            &body(stub.as_bytes(), &ex),
            &SourceHistory::default(),
            now(),
        ) else {
            panic!()
        };
        assert_eq!(f.class, FailureClass::Dead);
        // "Redirecting…" and meta refresh pages, whatever came before.
        for stub in [
            "<p>Redirecting to legal.mistral.ai</p>",
            "<html><head><meta http-equiv='refresh' content='0; url=https://x.example/'></head><body><p>Terms</p></body></html>",
        ] {
            let ex = html(stub);
            let h = SourceHistory {
                last_good_words: Some(3),
                ..Default::default()
            };
            let Assessment::Failure(f) = assess(&body(stub.as_bytes(), &ex), &h, now()) else {
                panic!("{stub}")
            };
            assert_eq!(f.class, FailureClass::Dead, "{stub}");
        }
    }

    #[test]
    fn empty_and_unreadable_bodies_are_failures() {
        let ex = Extracted::default();
        let Assessment::Failure(f) = assess(&body(b"", &ex), &SourceHistory::default(), now())
        else {
            panic!()
        };
        assert_eq!(f.class, FailureClass::Transient);
        let unreadable = Observed::Body {
            bytes: b"\x89PNG",
            full: Err("cannot extract text from image/png content"),
            render: Render::Http,
        };
        let Assessment::Failure(f) = assess(&unreadable, &SourceHistory::default(), now()) else {
            panic!()
        };
        assert_eq!(f.class, FailureClass::Blocked);
    }
}
