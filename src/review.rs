//! Review: what changed between two readings of a source, in terms a reviewer can act on.
//!
//! Pure. A reading's wording becomes an [`Outline`]: sentences, each under its heading path
//! ("5. Further Requirements › Subprocessors"), compared in their comparable form so that
//! noise (list numbers, date formats, punctuation, block boundaries) never shows. Two outlines
//! give a [`ChangeSet`]: hunks of removed, added and changed sentences with one sentence of
//! context each side, like `git diff` by sentence, passages that moved reported as moved, and
//! a one-line summary. For a quote that went missing or drifted, [`whereabouts`] says where it
//! stood at baseline and which passage on the page now comes closest. It renders nothing:
//! every report format renders the same values.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::Serialize;

use crate::evidence;
use crate::extract::Extracted;

/// Share of sentences changed from which a source counts as largely rewritten: its report
/// shows the summary, the changed sections and the first hunks, and folds the rest.
pub const REWRITTEN_SHARE: f64 = 0.5;

/// Hunks shown unfolded when a source was largely rewritten (or has very many hunks).
pub const HUNKS_SHOWN: usize = 3;

/// Hunks past which the rest are folded even when the source was not rewritten.
pub const HUNKS_MAX_SHOWN: usize = 12;

/// A passage on the page now that shares fewer of the quote's words than this is no match.
pub const CLOSEST_MIN_SHARE: f64 = 0.3;

/// One sentence of a reading.
#[derive(Debug, Clone, PartialEq)]
struct Sentence {
    /// As a reader sees it (normalised whitespace and typography).
    text: String,
    /// Comparable form (noise removed): what alignment compares.
    key: String,
    /// Index into [`Outline::sections`].
    section: usize,
}

/// A reading's wording as sentences under heading paths.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outline {
    sentences: Vec<Sentence>,
    /// Heading paths, "" for text before the first heading.
    sections: Vec<String>,
}

impl Outline {
    /// Sentences in the reading.
    pub fn len(&self) -> usize {
        self.sentences.len()
    }

    /// Whether the reading has no sentence.
    pub fn is_empty(&self) -> bool {
        self.sentences.is_empty()
    }
}

/// Builds the outline of an extracted reading: its wording (the document's own text, without
/// navigation and banners), sections from its headings.
pub fn outline(ex: &Extracted) -> Outline {
    // Headings are marked on the lines of the whole-page text; the wording is a subset of it.
    let mut heading_level: HashMap<String, u8> = HashMap::new();
    for (line, info) in ex.text.lines().zip(&ex.lines) {
        if let Some(level) = info.heading {
            heading_level
                .entry(evidence::normalise(line))
                .or_insert(level);
        }
    }
    let mut out = Outline {
        sections: vec![String::new()],
        ..Outline::default()
    };
    let mut path: Vec<(u8, String)> = Vec::new();
    let mut body = String::new();
    let flush = |out: &mut Outline, body: &mut String| {
        let section = out.sections.len() - 1;
        for s in split_sentences(body) {
            let key = evidence::comparable(s);
            if !key.is_empty() {
                out.sentences.push(Sentence {
                    text: s.to_string(),
                    key,
                    section,
                });
            }
        }
        body.clear();
    };
    for line in ex.wording.lines() {
        let n = evidence::normalise(line);
        if n.is_empty() {
            continue;
        }
        match heading_level.get(&n) {
            Some(&level) => {
                flush(&mut out, &mut body);
                while path.last().is_some_and(|(l, _)| *l >= level) {
                    path.pop();
                }
                path.push((level, n.clone()));
                out.sections.push(
                    path.iter()
                        .map(|(_, t)| t.as_str())
                        .collect::<Vec<_>>()
                        .join(" › "),
                );
                // The heading is also a line of the text: a heading turned into a paragraph
                // (or back) is markup, not a change of wording.
                let key = evidence::comparable(&n);
                if !key.is_empty() {
                    out.sentences.push(Sentence {
                        text: n,
                        key,
                        section: out.sections.len() - 1,
                    });
                }
            }
            None => {
                // List numbering is layout: "B.3.c. except …" continues like "except …".
                let n = evidence::strip_list_marker(&n);
                // A block that ends mid-sentence ("Then" + "we delete them.") runs on into
                // the next; otherwise a block boundary ends a sentence, so a missing full stop
                // does not glue two sentences together.
                let runs_on = !body.is_empty()
                    && !body.ends_with(['.', '!', '?', ':', ';'])
                    && n.chars().next().is_some_and(char::is_lowercase);
                if !runs_on {
                    flush(&mut out, &mut body);
                }
                if !body.is_empty() {
                    body.push(' ');
                }
                body.push_str(n);
            }
        }
    }
    flush(&mut out, &mut body);
    out
}

/// Splits normalised text into sentences: after `.`, `!` or `?` followed by a space and a
/// capital letter, digit, opening bracket or quote mark.
fn split_sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let b = text.as_bytes();
    let mut i = 0;
    while i + 2 < b.len() {
        if matches!(b[i], b'.' | b'!' | b'?') && b[i + 1] == b' ' {
            let next = text[i + 2..].chars().next().unwrap_or(' ');
            // "e.g. the" and "No. 5" stay whole; a capital after a one-letter word is an
            // initial ("U. S."), not a sentence end.
            let word_before = text[start..=i]
                .rsplit(' ')
                .next()
                .unwrap_or("")
                .trim_end_matches(['.', '!', '?']);
            let initial = word_before.chars().count() == 1 || word_before.contains('.');
            if (next.is_uppercase() || next.is_ascii_digit() || matches!(next, '(' | '"' | '\''))
                && !initial
            {
                let s = text[start..=i].trim();
                if !s.is_empty() {
                    out.push(s);
                }
                start = i + 2;
            }
        }
        i += 1;
    }
    let s = text[start..].trim();
    if !s.is_empty() {
        out.push(s);
    }
    out
}

/// One piece of a compact word diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "text", rename_all = "snake_case")]
pub enum DiffPart {
    /// Unchanged words (context).
    Same(String),
    /// Unchanged words left out.
    Gap,
    /// Words only in the old text.
    Removed(String),
    /// Words only in the new text.
    Added(String),
}

/// A compact word-level diff: changed runs with up to six words of context each side, long
/// unchanged stretches as [`DiffPart::Gap`].
pub fn diff_parts(before: &str, after: &str) -> Vec<DiffPart> {
    const CONTEXT: usize = 6;
    let diff = similar::TextDiff::from_words(before, after);
    let mut runs: Vec<(similar::ChangeTag, String)> = Vec::new();
    for ch in diff.iter_all_changes() {
        match runs.last_mut() {
            // Whitespace between two changed words does not split the change.
            Some((tag, text)) if *tag == ch.tag() || ch.value().trim().is_empty() => {
                text.push_str(ch.value())
            }
            _ => runs.push((ch.tag(), ch.value().to_string())),
        }
    }
    let mut parts = Vec::new();
    let n = runs.len();
    for (i, (tag, text)) in runs.into_iter().enumerate() {
        let words: Vec<&str> = text.split_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        match tag {
            similar::ChangeTag::Equal => {
                let (first, last) = (i == 0, i + 1 == n);
                let keep = if first || last { CONTEXT } else { 2 * CONTEXT };
                if words.len() <= keep {
                    parts.push(DiffPart::Same(words.join(" ")));
                    continue;
                }
                if !first {
                    parts.push(DiffPart::Same(words[..CONTEXT].join(" ")));
                }
                parts.push(DiffPart::Gap);
                if !last {
                    parts.push(DiffPart::Same(words[words.len() - CONTEXT..].join(" ")));
                }
            }
            similar::ChangeTag::Delete => parts.push(DiffPart::Removed(words.join(" "))),
            similar::ChangeTag::Insert => parts.push(DiffPart::Added(words.join(" "))),
        }
    }
    parts
}

/// One line of a hunk: a sentence, marked.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HunkLine {
    /// Unchanged, shown for context.
    Context {
        /// The sentence.
        text: String,
    },
    /// Only at baseline.
    Removed {
        /// The sentence.
        text: String,
    },
    /// Only now.
    Added {
        /// The sentence.
        text: String,
    },
    /// Reworded: the sentence before and now, with the changed words marked.
    Changed {
        /// At baseline.
        before: String,
        /// Now.
        after: String,
        /// Word diff from `before` to `after`.
        parts: Vec<DiffPart>,
    },
    /// Moved away from here, unchanged.
    MovedOut {
        /// The sentence.
        text: String,
        /// The section it moved to.
        to: String,
    },
    /// Moved here, unchanged.
    MovedIn {
        /// The sentence.
        text: String,
        /// The section it came from.
        from: String,
    },
}

impl HunkLine {
    fn is_change(&self) -> bool {
        !matches!(self, HunkLine::Context { .. })
    }
}

/// Changed sentences close together, with context, under one heading path.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hunk {
    /// Heading path of the section ("" before the first heading).
    pub section: String,
    /// Its lines in reading order.
    pub lines: Vec<HunkLine>,
}

/// The figures above the hunks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Sentences at baseline and now.
    pub sentences_before: usize,
    /// Sentences now.
    pub sentences_after: usize,
    /// Share of sentences changed (0–1): 1 − 2 × kept ÷ (before + after); moved sentences
    /// count as kept.
    pub changed_share: f64,
    /// Sentences that moved, unchanged.
    pub moved: usize,
    /// Sections only now.
    pub sections_added: Vec<String>,
    /// Sections only at baseline.
    pub sections_removed: Vec<String>,
    /// Sections with changes (hunk titles, in order).
    pub sections_changed: Vec<String>,
}

impl Summary {
    /// Whether the source was largely rewritten.
    pub fn rewritten(&self) -> bool {
        self.changed_share >= REWRITTEN_SHARE
    }

    /// One line for people: "largely rewritten: 64% of sentences changed; 3 sections added, …".
    pub fn line(&self) -> String {
        let pct = self.changed_share * 100.0;
        let pct = if pct > 0.0 && pct < 1.0 {
            "<1".to_string()
        } else {
            format!("{pct:.0}")
        };
        let mut parts = vec![if self.rewritten() {
            format!("largely rewritten: {pct}% of sentences changed")
        } else {
            format!("{pct}% of sentences changed")
        }];
        let count =
            |n: usize, what: &str| format!("{n} section{} {what}", if n == 1 { "" } else { "s" });
        if !self.sections_added.is_empty() {
            parts.push(count(self.sections_added.len(), "added"));
        }
        if !self.sections_removed.is_empty() {
            parts.push(count(self.sections_removed.len(), "removed"));
        }
        if !self.sections_changed.is_empty() {
            parts.push(count(self.sections_changed.len(), "changed"));
        }
        if self.moved > 0 {
            parts.push(format!(
                "{} sentence{} moved",
                self.moved,
                if self.moved == 1 { "" } else { "s" }
            ));
        }
        parts.join("; ")
    }
}

/// What changed between two readings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeSet {
    /// The figures.
    pub summary: Summary,
    /// The hunks, in reading order.
    pub hunks: Vec<Hunk>,
}

impl ChangeSet {
    /// Hunks to show unfolded; the rest are folded.
    pub fn shown(&self) -> usize {
        if self.summary.rewritten() {
            HUNKS_SHOWN.min(self.hunks.len())
        } else {
            HUNKS_MAX_SHOWN.min(self.hunks.len())
        }
    }
}

/// Which reading a section index refers to.
#[derive(Clone, Copy)]
enum SectionOf {
    Before(usize),
    After(usize),
}

/// One step of the alignment, before hunks are cut.
enum Step {
    Same(usize),
    Line(HunkLine, SectionOf),
}

/// Compares two outlines sentence by sentence.
pub fn changes(before: &Outline, after: &Outline) -> ChangeSet {
    let a: Vec<&str> = before.sentences.iter().map(|s| s.key.as_str()).collect();
    let b: Vec<&str> = after.sentences.iter().map(|s| s.key.as_str()).collect();
    // The same words in the same order, only cut into sentences differently (a block split
    // or joined, a full stop lost): nothing changed.
    if a != b
        && a.iter()
            .flat_map(|k| k.split(' '))
            .eq(b.iter().flat_map(|k| k.split(' ')))
    {
        return ChangeSet {
            summary: Summary {
                sentences_before: a.len(),
                sentences_after: b.len(),
                changed_share: 0.0,
                moved: 0,
                sections_added: Vec::new(),
                sections_removed: Vec::new(),
                sections_changed: Vec::new(),
            },
            hunks: Vec::new(),
        };
    }
    let ops = similar::capture_diff_slices(similar::Algorithm::Patience, &a, &b);
    // Removed sentences that reappear, unchanged, among the added ones moved.
    let mut removed_keys: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut added: Vec<usize> = Vec::new();
    for op in &ops {
        for (tag, old, new) in op
            .iter_changes(&a, &b)
            .map(|c| (c.tag(), c.old_index(), c.new_index()))
        {
            match (tag, old, new) {
                (similar::ChangeTag::Delete, Some(i), _) => {
                    removed_keys.entry(a[i]).or_default().push(i)
                }
                (similar::ChangeTag::Insert, _, Some(j)) => added.push(j),
                _ => {}
            }
        }
    }
    let mut moved_to: HashMap<usize, usize> = HashMap::new();
    let mut moved_from: HashMap<usize, usize> = HashMap::new();
    for j in added {
        if let Some(list) = removed_keys.get_mut(b[j])
            && !list.is_empty()
        {
            let i = list.remove(0);
            moved_to.insert(i, j);
            moved_from.insert(j, i);
        }
    }
    let section_of_before = |i: usize| before.sections[before.sentences[i].section].clone();
    let section_of_after = |j: usize| after.sections[after.sentences[j].section].clone();
    let mut steps: Vec<Step> = Vec::new();
    let mut kept = 0usize;
    for op in &ops {
        let (tag, old, new) = op.as_tag_tuple();
        match tag {
            similar::DiffTag::Equal => {
                for (i, _) in old.clone().zip(new.clone()) {
                    kept += 1;
                    steps.push(Step::Same(i));
                }
            }
            _ => {
                let olds: Vec<usize> = old.clone().filter(|i| !moved_to.contains_key(i)).collect();
                let news: Vec<usize> = new
                    .clone()
                    .filter(|j| !moved_from.contains_key(j))
                    .collect();
                // Pair each removed sentence with the most similar added one of this op.
                let mut paired: HashMap<usize, usize> = HashMap::new();
                let mut taken: HashSet<usize> = HashSet::new();
                for &i in &olds {
                    let best = news
                        .iter()
                        .filter(|j| !taken.contains(j))
                        .map(|&j| (j, word_similarity(a[i], b[j])))
                        .filter(|(_, sim)| *sim >= 0.5)
                        .max_by(|x, y| x.1.total_cmp(&y.1));
                    if let Some((j, _)) = best {
                        taken.insert(j);
                        paired.insert(i, j);
                    }
                }
                for i in old.clone() {
                    if let Some(&j) = moved_to.get(&i) {
                        steps.push(Step::Line(
                            HunkLine::MovedOut {
                                text: before.sentences[i].text.clone(),
                                to: section_of_after(j),
                            },
                            SectionOf::Before(before.sentences[i].section),
                        ));
                    } else if let Some(&j) = paired.get(&i) {
                        let (bt, at) = (&before.sentences[i].text, &after.sentences[j].text);
                        steps.push(Step::Line(
                            HunkLine::Changed {
                                before: bt.clone(),
                                after: at.clone(),
                                parts: diff_parts(bt, at),
                            },
                            SectionOf::After(after.sentences[j].section),
                        ));
                    } else {
                        steps.push(Step::Line(
                            HunkLine::Removed {
                                text: before.sentences[i].text.clone(),
                            },
                            SectionOf::Before(before.sentences[i].section),
                        ));
                    }
                }
                for j in new.clone() {
                    if let Some(&i) = moved_from.get(&j) {
                        steps.push(Step::Line(
                            HunkLine::MovedIn {
                                text: after.sentences[j].text.clone(),
                                from: section_of_before(i),
                            },
                            SectionOf::After(after.sentences[j].section),
                        ));
                    } else if !taken.contains(&j) {
                        steps.push(Step::Line(
                            HunkLine::Added {
                                text: after.sentences[j].text.clone(),
                            },
                            SectionOf::After(after.sentences[j].section),
                        ));
                    }
                }
            }
        }
    }
    let moved = moved_to.len();
    kept += moved;
    let total = a.len() + b.len();
    let changed_share = if total == 0 {
        0.0
    } else {
        (1.0 - 2.0 * kept as f64 / total as f64).clamp(0.0, 1.0)
    };
    let hunks = cut_hunks(&steps, before, after);
    // Sections renamed or re-levelled without a word changing are markup, not news.
    let (before_sections, after_sections): (BTreeSet<&str>, BTreeSet<&str>) = if hunks.is_empty() {
        Default::default()
    } else {
        (before.sections_with_text(), after.sections_with_text())
    };
    let mut sections_changed: Vec<String> = Vec::new();
    for h in &hunks {
        if !sections_changed.contains(&h.section) {
            sections_changed.push(h.section.clone());
        }
    }
    ChangeSet {
        summary: Summary {
            sentences_before: a.len(),
            sentences_after: b.len(),
            changed_share,
            moved,
            sections_added: after_sections
                .difference(&before_sections)
                .map(|s| s.to_string())
                .collect(),
            sections_removed: before_sections
                .difference(&after_sections)
                .map(|s| s.to_string())
                .collect(),
            sections_changed,
        },
        hunks,
    }
}

impl Outline {
    fn sections_with_text(&self) -> BTreeSet<&str> {
        self.sentences
            .iter()
            .map(|s| self.sections[s.section].as_str())
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// Cuts the aligned steps into hunks: each change with one sentence of context each side,
/// changes close together merged, a new hunk wherever the section changes.
fn cut_hunks(steps: &[Step], before: &Outline, after: &Outline) -> Vec<Hunk> {
    let section = |of: SectionOf| -> String {
        match of {
            SectionOf::Before(i) => before.sections[i].clone(),
            SectionOf::After(j) => after.sections[j].clone(),
        }
    };
    let mut hunks: Vec<Hunk> = Vec::new();
    let mut pending_context: Option<&Step> = None;
    let mut open: Option<(Hunk, usize)> = None; // (hunk, context lines since last change)
    for step in steps {
        match step {
            Step::Same(i) => {
                if let Some((h, since)) = open.as_mut() {
                    if *since == 0 {
                        h.lines.push(HunkLine::Context {
                            text: before.sentences[*i].text.clone(),
                        });
                        *since = 1;
                        pending_context = Some(step);
                        continue;
                    }
                    // Two unchanged sentences in a row end the hunk.
                    if let Some((h, _)) = open.take() {
                        hunks.push(h);
                    }
                }
                pending_context = Some(step);
            }
            Step::Line(line, of) => {
                let title = section(*of);
                let same_section = open.as_ref().is_some_and(|(h, _)| h.section == title);
                if !same_section {
                    if let Some((h, _)) = open.take() {
                        hunks.push(h);
                    }
                    let mut h = Hunk {
                        section: title,
                        lines: Vec::new(),
                    };
                    if let Some(Step::Same(i)) = pending_context {
                        h.lines.push(HunkLine::Context {
                            text: before.sentences[*i].text.clone(),
                        });
                    }
                    open = Some((h, 0));
                }
                // After one context line, a change in the same section continues the hunk.
                if let Some((h, since)) = open.as_mut() {
                    h.lines.push(line.clone());
                    *since = 0;
                }
                pending_context = None;
            }
        }
    }
    if let Some((h, _)) = open {
        hunks.push(h);
    }
    hunks.retain(|h| h.lines.iter().any(HunkLine::is_change));
    hunks
}

/// Share of words two sentences have in common (Dice coefficient over word sets).
fn word_similarity(a: &str, b: &str) -> f64 {
    let wa: HashSet<&str> = a.split_whitespace().collect();
    let wb: HashSet<&str> = b.split_whitespace().collect();
    if wa.is_empty() && wb.is_empty() {
        return 1.0;
    }
    2.0 * wa.intersection(&wb).count() as f64 / (wa.len() + wb.len()) as f64
}

/// A passage and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Passage {
    /// The passage (a clause or sentence, or two sentences).
    pub text: String,
    /// Its heading path ("" before the first heading).
    pub section: String,
}

/// Where a quote stood at baseline, and what on the page now comes closest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Whereabouts {
    /// The quote's sentence at baseline, when the baseline had it.
    pub before: Option<Passage>,
    /// The quote's sentence now, when the page still has it verbatim (context changes).
    pub now_exact: Option<Passage>,
    /// The passage now sharing most of the quote's words, when one shares at least
    /// [`CLOSEST_MIN_SHARE`] of them.
    pub closest: Option<Passage>,
    /// Word diff from the quote to the closest passage.
    pub closest_diff: Vec<DiffPart>,
    /// The largest share of the quote's words any passage now has (0–1).
    pub best_share: f64,
}

impl Whereabouts {
    /// "no passage shares more than 12% of its words", when there is no closest passage.
    pub fn none_line(&self) -> String {
        format!(
            "no passage on the page now shares more than {:.0}% of the quote's words",
            self.best_share * 100.0
        )
    }
}

/// Finds where a quote stood at baseline and which passage now comes closest (even below the
/// drift threshold).
pub fn whereabouts(quote: &str, baseline: Option<&Extracted>, current: &Extracted) -> Whereabouts {
    let q = evidence::normalise(quote);
    let locate = |ex: &Extracted| -> Option<Passage> {
        let doc = evidence::Doc::new(ex);
        match evidence::find_quote(&q, &doc.text) {
            evidence::QuoteMatch::Exact { start, end } => Some(Passage {
                text: doc.context(start, end),
                section: doc.heading_path(start).join(" › "),
            }),
            _ => None,
        }
    };
    let before = baseline.and_then(locate);
    let now_exact = locate(current);
    let words = |s: &str| -> HashSet<String> {
        evidence::comparable(s)
            .split_whitespace()
            .map(str::to_lowercase)
            .collect()
    };
    let qw = words(&q);
    let now = outline(current);
    // The best single sentence, and the best pair of neighbours (for quotes that span two);
    // a pair must share clearly more of the quote's words to win.
    let mut best_of = [None::<(f64, String, usize)>, None];
    if !qw.is_empty() {
        for width in 1..=2 {
            for window in now.sentences.windows(width) {
                if window.iter().any(|s| s.section != window[0].section) {
                    continue;
                }
                let text = window
                    .iter()
                    .map(|s| s.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                let share = qw.intersection(&words(&text)).count() as f64 / qw.len() as f64;
                let slot = &mut best_of[width - 1];
                if slot.as_ref().is_none_or(|(b, _, _)| share > *b + 1e-9) {
                    *slot = Some((share, text, window[0].section));
                }
            }
        }
    }
    let [single, pair] = best_of;
    let best = match (single, pair) {
        (Some(s), Some(p)) if p.0 > s.0 + 0.1 => Some(p),
        (Some(s), _) => Some(s),
        (None, p) => p,
    };
    let best_share = best.as_ref().map_or(0.0, |b| b.0);
    let closest = best
        .filter(|(share, _, _)| *share >= CLOSEST_MIN_SHARE)
        .map(|(_, text, section)| Passage {
            text,
            section: now.sections[section].clone(),
        });
    let closest_diff = closest
        .as_ref()
        .map(|p| {
            // Sentence punctuation at the end is layout, not a difference from the quote.
            diff_parts(
                q.trim_end_matches(['.', ';', ',', ':']),
                p.text.trim_end_matches(['.', ';', ',', ':']),
            )
        })
        .unwrap_or_default();
    Whereabouts {
        before,
        now_exact,
        closest,
        closest_diff,
        best_share,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::html_extract;

    #[test]
    fn sentences_split_at_sentence_ends_only() {
        assert_eq!(
            split_sentences(
                "We keep logs. Data stays in the U.S. Privacy Laws apply, e.g. the CCPA. 30 days."
            ),
            vec![
                "We keep logs.",
                "Data stays in the U.S. Privacy Laws apply, e.g. the CCPA.",
                "30 days."
            ]
        );
    }

    #[test]
    fn outline_keeps_heading_paths_and_ignores_blocks() {
        let ex = html_extract(
            "<main><h1>Terms</h1><h2>1. Data</h2><p>We keep logs.</p><p>For 30 days. Then</p><p>we delete them.</p><h2>2. Law</h2><p>French law applies.</p></main>",
            None,
        );
        let o = outline(&ex);
        let got: Vec<(String, &str)> = o
            .sentences
            .iter()
            .map(|s| (o.sections[s.section].clone(), s.text.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("Terms".to_string(), "Terms"),
                ("Terms › 1. Data".to_string(), "1. Data"),
                ("Terms › 1. Data".to_string(), "We keep logs."),
                ("Terms › 1. Data".to_string(), "For 30 days."),
                ("Terms › 1. Data".to_string(), "Then we delete them."),
                ("Terms › 2. Law".to_string(), "2. Law"),
                ("Terms › 2. Law".to_string(), "French law applies."),
            ]
        );
    }

    fn cs(before: &str, after: &str) -> ChangeSet {
        changes(
            &outline(&html_extract(before, None)),
            &outline(&html_extract(after, None)),
        )
    }

    #[test]
    fn a_reworded_sentence_is_one_changed_line_with_context() {
        let c = cs(
            "<h2>Retention</h2><p>We keep logs. Logs are kept for 30 days. Then they are deleted. Backups exist.</p>",
            "<h2>Retention</h2><p>We keep logs. Logs are kept for 90 days. Then they are deleted. Backups exist.</p>",
        );
        assert_eq!(c.hunks.len(), 1, "{c:#?}");
        let h = &c.hunks[0];
        assert_eq!(h.section, "Retention");
        assert_eq!(
            h.lines[0],
            HunkLine::Context {
                text: "We keep logs.".into()
            }
        );
        match &h.lines[1] {
            HunkLine::Changed { parts, .. } => {
                assert!(parts.contains(&DiffPart::Removed("30".into())), "{parts:?}");
                assert!(parts.contains(&DiffPart::Added("90".into())), "{parts:?}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            h.lines[2],
            HunkLine::Context {
                text: "Then they are deleted.".into()
            }
        );
        assert_eq!(h.lines.len(), 3);
        assert!(!c.summary.rewritten());
    }

    #[test]
    fn a_moved_passage_is_moved_not_deleted_and_added() {
        let c = cs(
            "<h2>A</h2><p>One stays here. Subprocessors are listed on our website. Two stays.</p><h2>B</h2><p>Three stays here.</p>",
            "<h2>A</h2><p>One stays here. Two stays.</p><h2>B</h2><p>Three stays here. Subprocessors are listed on our website.</p>",
        );
        let lines: Vec<&HunkLine> = c.hunks.iter().flat_map(|h| &h.lines).collect();
        assert!(
            lines.contains(&&HunkLine::MovedOut {
                text: "Subprocessors are listed on our website.".into(),
                to: "B".into()
            }),
            "{c:#?}"
        );
        assert!(lines.contains(&&HunkLine::MovedIn {
            text: "Subprocessors are listed on our website.".into(),
            from: "A".into()
        }));
        assert!(
            !lines
                .iter()
                .any(|l| matches!(l, HunkLine::Removed { .. } | HunkLine::Added { .. })),
            "{c:#?}"
        );
        assert_eq!(c.summary.moved, 1);
        assert_eq!(c.summary.changed_share, 0.0);
    }

    #[test]
    fn sections_added_and_removed_are_named() {
        let c = cs(
            "<h2>Old</h2><p>Gone soon.</p><h2>Kept</h2><p>Same.</p>",
            "<h2>Kept</h2><p>Same.</p><h2>New</h2><p>Brand new text here.</p>",
        );
        assert_eq!(c.summary.sections_added, vec!["New".to_string()]);
        assert_eq!(c.summary.sections_removed, vec!["Old".to_string()]);
        assert!(
            c.summary.line().contains("1 section added"),
            "{}",
            c.summary.line()
        );
    }

    #[test]
    fn noise_makes_no_hunk() {
        let c = cs(
            "<ol><li>Updated 5 days ago. We keep logs.</li></ol><p>Effective December 17, 2025.</p>",
            "<p>1. Updated 2 days ago. We keep logs</p><p>Effective 17 December 2025.</p>",
        );
        assert!(c.hunks.is_empty(), "{c:#?}");
    }

    #[test]
    fn whereabouts_finds_the_closest_passage_and_says_when_there_is_none() {
        let before = html_extract(
            "<h2>Security</h2><p>Customer data is encrypted at rest with AES-256. Keys rotate yearly.</p>",
            None,
        );
        let after = html_extract(
            "<h2>Security</h2><h3>Encryption</h3><p>Keys rotate yearly. All stored customer data is encrypted using strong ciphers.</p>",
            None,
        );
        let w = whereabouts(
            "Customer data is encrypted at rest with AES-256",
            Some(&before),
            &after,
        );
        assert_eq!(
            w.before,
            Some(Passage {
                text: "Customer data is encrypted at rest with AES-256.".into(),
                section: "Security".into()
            })
        );
        let closest = w.closest.expect("a closest passage");
        assert_eq!(
            closest.text,
            "All stored customer data is encrypted using strong ciphers."
        );
        assert_eq!(closest.section, "Security › Encryption");
        assert!(!w.closest_diff.is_empty());
        let w = whereabouts(
            "Customer data is encrypted at rest with AES-256",
            Some(&before),
            &html_extract("<p>Nothing to see.</p>", None),
        );
        assert!(w.closest.is_none());
        assert_eq!(
            w.none_line(),
            "no passage on the page now shares more than 0% of the quote's words"
        );
    }
}
